"""test_sasl.py -- the daemons on a broker that wants SASL_SSL and ACLs.

The broker (scripts/kafka.sh start DIR --sasl-ssl): a SASL_SSL listener on
127.0.0.1 (SCRAM-SHA-512 and PLAIN over TLS, a CA and certificates of its
own made by openssl), StandardAuthorizer, the users admin (super user),
issuer and importer. Each test grants its daemons only the ACLs they need
(docs/kafka-security.md lists them) with kafka-acls as admin.

  TestSaslScram.test_scram      issuer and importer over SCRAM-SHA-512:
                                share requests end to end, one downstream
                                record each, one dead letter of each daemon;
                                on a Kafka SCRAM_KAFKA_VERSION (3.9) broker,
                                which accepts the SCRAM of librdkafka before
                                2.6.1 (SCRAM_MIN_RDKAFKA; Debian 12 has 2.0.2)
  TestSaslPipeline.test_plain   the same over PLAIN (over TLS), on Kafka 4
  TestSaslPipeline.test_scram_kafka4
                                SCRAM-SHA-512 on Kafka 4: with librdkafka >=
                                2.6.1 the pipeline passes; an older one is
                                refused by the broker, and the daemon must
                                say so within DENIAL_BOUND_S (the limitation
                                docs/kafka-security.md documents)
  TestSaslPipeline.test_listener_wants_tls_and_sasl
                                no plaintext or TLS-only client gets in
  TestSaslDenials.test_acl_denials
                                a daemon denied a topic, its transactional
                                id or its group, or logged in as the other
                                daemon, stops within DENIAL_BOUND_S with an
                                error naming the authorization failure, what
                                was refused and the principal
  TestSaslDenials.test_wrong_password
                                the same for a refused login
  TestSaslDenials.test_no_broker_sigterm
                                no broker answers: a SIGTERM stops the
                                waiting start at once

Run (from tests/blackbox; CTest does it, see sasl.cmake):
  KB_BIN=build/kyc-bridge KB_SASL_KAFKA_DIR=<dir of kafka.sh start --sasl-ssl> \\
  python3 -m unittest -v test_sasl.TestSaslPipeline
Without KB_SASL_KAFKA_DIR each class starts a broker of its own (under
KB_TEST_TMP; TestSaslScram's of Kafka SCRAM_KAFKA_VERSION) and stops it at
the end. KB_KEEP=1 keeps the work directories.
"""
import ctypes
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, WorldsCase, exactly_once_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")

# librdkafka's SCRAM sends the client nonce twice in its final message up
# to 2.6.0 (confluentinc/librdkafka#4895); Kafka 4 compares the nonce
# strictly (RFC 5802) and refuses it as "invalid credentials".
SCRAM_MIN_RDKAFKA = (2, 6, 1)
# A broker that accepts it: TestSaslScram's (and sasl.cmake's).
SCRAM_KAFKA_VERSION = "3.9.1"
# Every wait of a denial: a daemon must have stopped by then.
DENIAL_BOUND_S = 20
# The error a denial must end with: librdkafka's name or text of it.
AUTHZ_RX = re.compile(r"(TOPIC|GROUP|TRANSACTIONAL_ID|CLUSTER)_AUTHORIZATION_FAILED|"
                      r"(Topic|Group|Transactional Id|Cluster) authorization failed")
# ... and a login refused (a wrong password)
AUTHN_RX = re.compile(r"SASL_AUTHENTICATION_FAILED|_AUTHENTICATION|"
                      r"[Aa]uthentication (error|failed)")
# A log line: time, role, level, "facility: message".
LOG_RX = re.compile(r"^\S+ +\S+ +(\w+) +(\S+): (.*)$")


def last_own_error(log):
    """The last error the daemon itself logged (not a line relayed from
    librdkafka): what it stopped with."""
    last = None
    for line in log.splitlines():
        m = LOG_RX.match(line)
        if m and m.group(1) == "error" and m.group(2) != "rdkafka":
            last = line
    return last


def rdkafka_version():
    """(major, minor, patch) of the librdkafka the kyc-bridge binary loads
    (ldd's choice, asked with rd_kafka_version())."""
    path = "librdkafka.so.1"
    try:
        out = subprocess.run(["ldd", h.kb_bin()], stdout=subprocess.PIPE,
                             text=True, timeout=30).stdout
        m = re.search(r"librdkafka\.so\.1 => (\S+)", out)
        if m:
            path = m.group(1)
    except (OSError, subprocess.SubprocessError):
        pass
    lib = ctypes.CDLL(path)
    lib.rd_kafka_version.restype = ctypes.c_int
    v = lib.rd_kafka_version()
    return ((v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff)


def vstr(v):
    return ".".join(str(x) for x in v)


def broker_version(d):
    """(major, minor, patch) of the kafka.sh broker in @d: DIR/kafka-version
    (start --kafka-version), else kafka.sh's own KAFKA_VERSION."""
    v = h._read(os.path.join(d, "kafka-version"))
    if not v:
        with open(KAFKA_SH) as f:
            v = re.search(r"^KAFKA_VERSION=(\S+)$", f.read(), re.M).group(1)
    return tuple(int(x) for x in v.split("."))


def wait_exit(daemons, bound):
    """Waits for every daemon to exit, all within @bound seconds of now;
    returns {name: (status or None if still running, seconds)}."""
    t0 = time.monotonic()
    out = {}
    while len(out) < len(daemons):
        for d in daemons:
            if d.name not in out and not d.alive():
                out[d.name] = (d.proc.returncode, time.monotonic() - t0)
        if time.monotonic() - t0 > bound:
            break
        time.sleep(0.1)
    for d in daemons:
        out.setdefault(d.name, (None, time.monotonic() - t0))
    return out


class SaslKafka(h.Kafka):
    """h.Kafka on the --sasl-ssl broker in @dir: topics through kafka.sh
    (as admin), kcat as admin over SASL_SSL (PLAIN: kcat's librdkafka may
    be older than 2.6.1, see SCRAM_MIN_RDKAFKA)."""

    def __init__(self, dir):
        self.dir = dir
        self.bootstrap = h._read(os.path.join(dir, "bootstrap"))
        if not self.bootstrap:
            raise RuntimeError("no broker in %s" % dir)
        self.kcat = ["kcat", "-F", os.path.join(dir, "sasl", "admin.plain.librdkafka")]

    def produce(self, topic, records, partition=None):
        payload = bytearray()
        for k, v in records:
            k = k.encode() if isinstance(k, str) else k
            v = v.encode() if isinstance(v, str) else v
            payload += (k or b"") + b"\x1f" + v + b"\x1e"
        cmd = self.kcat + ["-b", self.bootstrap, "-P", "-t", topic, "-K", "\x1f",
                           "-D", "\x1e", "-X", "enable.idempotence=true"]
        if partition is not None:
            cmd += ["-p", str(partition)]
        subprocess.run(cmd, input=bytes(payload), check=True, timeout=120,
                       stderr=subprocess.DEVNULL)

    def consume_all(self, topic, committed_only=True, timeout=60):
        cmd = self.kcat + ["-b", self.bootstrap, "-C", "-t", topic, "-e", "-q",
                           "-f", h._KCAT_FMT, "-o", "beginning", "-X",
                           "isolation.level=" + ("read_committed" if committed_only
                                                 else "read_uncommitted")]
        out = subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout
        return h._RecordParser().feed(out)

    def follow(self, topic, committed_only=True):
        raise NotImplementedError("SaslKafka: poll consume_all instead")


class SaslCase(WorldsCase, unittest.TestCase):
    """A --sasl-ssl broker for the class (the CTest fixture's, or one of its
    own), Worlds on it, ACLs and daemon configurations."""

    own_broker = None
    # Kafka version of the class's own broker (None: kafka.sh's)
    kafka_version = None
    N = 4  # share requests of run_pipeline()

    @classmethod
    def setUpClass(cls):
        cls.rdkafka = rdkafka_version()
        d = os.environ.get("KB_SASL_KAFKA_DIR")
        if not d:
            d = h.new_workdir("sasl-broker")
            cmd = ["bash", KAFKA_SH, "start", d, "--sasl-ssl"]
            if cls.kafka_version:
                cmd += ["--kafka-version", cls.kafka_version]
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, timeout=600)
            if r.returncode != 0:
                raise RuntimeError("kafka.sh %s failed (%d)"
                                   % (" ".join(cmd[2:]), r.returncode))
            cls.own_broker = d
        cls.dir = d
        cls.kafka = SaslKafka(d)
        cls.kafka_is = broker_version(d)
        print("\n[%s] broker %s (%s), Kafka %s, librdkafka %s" % (
            cls.__name__, cls.kafka.bootstrap, d, vstr(cls.kafka_is),
            vstr(cls.rdkafka)), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if cls.own_broker:
            subprocess.run(["bash", KAFKA_SH, "stop", cls.own_broker],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=120)

    def world(self, tag, **kw):
        w = World(tag, kafka=self.kafka, **kw)
        self.worlds.append(w)
        return w

    def acl(self, *runs):
        """kafka-acls as admin (scripts/kafka.sh acl DIR ARGS...), one run
        per argument list in @runs, all at once (a JVM start each)."""
        procs = [(args, subprocess.Popen(["bash", KAFKA_SH, "acl", self.dir] + list(args),
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)) for args in runs]
        for args, p in procs:
            out, _ = p.communicate(timeout=600)
            if p.returncode != 0:
                self.fail("kafka-acls %s failed (%d):\n%s" % (
                    " ".join(args), p.returncode, out[-3000:]))

    @staticmethod
    def grant(user, read=(), write=(), groups=(), tids=(), prefixed=False):
        """The kafka-acls argument lists of a daemon's ACLs: Read on @read
        topics and @groups, Write on @write topics and transactional ids
        @tids (Read and Write imply Describe)."""
        pat = ["--resource-pattern-type", "prefixed"] if prefixed else []
        base = ["--add", "--allow-principal", "User:" + user] + pat
        runs = []
        if read or groups:
            runs.append(base + ["--operation", "Read"]
                        + sum((["--topic", t] for t in read), [])
                        + sum((["--group", g] for g in groups), []))
        if write or tids:
            runs.append(base + ["--operation", "Write"]
                        + sum((["--topic", t] for t in write), [])
                        + sum((["--transactional-id", x] for x in tids), []))
        return runs

    def sasl(self, user, mechanism="SCRAM-SHA-512", password_of=None):
        """The kafka.* options of a daemon that logs in as @user (with the
        password of @password_of, default @user's own)."""
        return {
            "kafka.security.protocol": "SASL_SSL",
            "kafka.sasl.mechanism": mechanism,
            "kafka.sasl.username": user,
            "kafka.sasl.password": "file:" + os.path.join(
                self.dir, "sasl", (password_of or user) + ".password"),
            "kafka.ssl.ca.location": os.path.join(self.dir, "tls", "ca.pem"),
        }

    @staticmethod
    def names(w, name):
        """The group and transactional id World.*_conf give daemon @name."""
        return "%s-%s" % (w.prefix, name), "%s-%s-tx" % (w.prefix, name)

    def grant_pipeline(self, w, issuer="issuer", importer="importer"):
        """What the issuer and the importer of world @w need, and nothing
        more (docs/kafka-security.md)."""
        t = w.t
        ig, itx = self.names(w, issuer)
        mg, mtx = self.names(w, importer)
        self.acl(*self.grant("issuer", read=[t["requests"], t["state"]], groups=[ig],
                             write=[t["tokens"], t["issuer_dlq"], t["state"]],
                             tids=[itx]),
                 *self.grant("importer", read=[t["tokens"], t["importer_state"]],
                             groups=[mg], tids=[mtx],
                             write=[t["imported"], t["importer_dlq"],
                                    t["importer_state"]]))

    def run_pipeline(self, tag, mechanism):
        w = self.world(tag, request_partitions=2, token_partitions=2,
                       out_partitions=2)
        X, Y = w.app("x"), w.app("y")
        self.grant_pipeline(w)
        self.note("ACLs granted")
        reqs = []
        for i in range(self.N):
            kind = ("kyc", "kyb")[i % 2]
            status = ("Approved", "APPROVED")[i % 2]
            sid = w.sb.finished_session(X.key, X.wf[kind], status,
                                        vendor_data="src-%d" % i)
            reqs.append(h.share_request(sid, Y.id, vendor_data="y-%s-%d" % (tag, i)))
        # and one of each daemon's dead letters (their DLQ ACLs): a
        # request without a valid session_id, an envelope that does not open
        bad = {"share_id": "bad-%s" % tag, "session_id": "not-a-uuid",
               "for_application_id": Y.id}
        ic = w.issuer_conf(X, [Y], extra=self.sasl("issuer", mechanism))
        mc = w.importer_conf(Y, [(X, {})], extra=self.sasl("importer", mechanism))
        iss = w.daemon("issuer", ic, "issuer")
        imp = w.daemon("importer", mc, "importer")
        w.produce_requests(reqs + [bad])
        w.kafka.produce(w.t["tokens"], [(Y.id, "not an envelope")])
        want = {"imported": self.N, "issuer_dlq": 1, "importer_dlq": 1}
        deadline = time.monotonic() + 60
        last, since = None, time.monotonic()
        while True:
            for d in (iss, imp):
                h.check(d.alive(), "%s exited (%s):\n%s" % (
                    d.name, d.proc.returncode, d.logtext()[-3000:]))
            n = {k: len(w.kafka.consume_all(w.t[k])) for k in want}
            if n != last:
                last, since = n, time.monotonic()
            elif all(n[k] >= want[k] for k in want) and time.monotonic() - since >= 1.5:
                break
            if time.monotonic() > deadline:
                self.fail("records after 60 s over SASL_SSL (%s): %s, want %s\n"
                          "issuer log:\n%s\nimporter log:\n%s" % (
                              mechanism, n, want, iss.logtext()[-2500:],
                              imp.logtext()[-2500:]))
            time.sleep(0.3)
        self.note("records: %s", last)
        self.assertEqual(imp.stop(), 0)
        self.assertEqual(iss.stop(), 0)
        outs = w.outputs()
        # each request once downstream or dead-lettered by the issuer; the
        # importer's dead letter is the broken envelope's
        problems = exactly_once_report([r["share_id"] for r in reqs] + [bad["share_id"]],
                                       dict(outs, importer_dlq=[]))
        self.assertEqual(problems, [], "over SASL_SSL (%s)" % mechanism)
        self.assertEqual({k: len(outs[k]) for k in want}, want)
        self.assertEqual(outs["issuer_dlq"][0]["doc"]["share_id"], bad["share_id"])
        self.assertEqual(outs["importer_dlq"][0]["doc"]["stage"], "envelope")
        for r in outs["imported"]:
            self.assertEqual(r["doc"]["issuer_application_id"], X.id)
        for d in (iss, imp):
            log = d.logtext()
            # the connections were authenticated and authorized throughout
            self.assertIsNone(AUTHZ_RX.search(log), "%s: %s" % (d.name, log[-2000:]))
            self.assertNotIn("SASL authentication error", log, d.name)
            # no password in the log
            with open(os.path.join(self.dir, "sasl", d.role + ".password")) as f:
                self.assertNotIn(f.read().strip(), log)

    def check_stops(self, scen):
        """@scen: {name: (Daemon, what, regex, [words])}. Each daemon must
        exit non-zero within DENIAL_BOUND_S, and the error it stops with (the
        last error it logs itself) match @regex and hold each of @words
        (what was refused, the principal). Waits, reports, asserts."""
        got = wait_exit([v[0] for v in scen.values()], DENIAL_BOUND_S)
        report, bad = [], []
        for name in sorted(scen):
            d, what, rx, words = scen[name]
            status, secs = got[d.name]
            if status is None:
                d.stop(timeout=10)  # SIGTERM (SIGKILL 10 s later)
            log = d.logtext()
            last = last_own_error(log) if status is not None else None
            seen = [ln for ln in log.splitlines() if rx.search(ln)]
            stats = d.last_stats()
            missing = [x for x in words if not last or x not in last]
            report.append("%s (%s): %s after %.1f s; stopped with: %s\n"
                          "      %d line(s) name the failure, e.g. %s%s%s" % (
                              name, what,
                              "still running" if status is None else "exit %s" % status,
                              secs, last or "-", len(seen), seen[-1] if seen else "-",
                              "\n      vendor calls ok: %s" % stats.get("vendor ok")
                              if stats.get("vendor ok") else "",
                              "\n      does not name: %s" % ", ".join(missing)
                              if missing else ""))
            if status is None or status <= 0 or not last or not rx.search(last) \
                    or missing:
                bad.append(name)
        self.note("stops:\n  %s", "\n  ".join(report))
        self.assertEqual(bad, [], "scenarios that did not stop with an error naming "
                         "the failure within %d s:\n  %s"
                         % (DENIAL_BOUND_S, "\n  ".join(report)))


class TestSaslScram(SaslCase):
    """SCRAM-SHA-512 over TLS end to end, on a broker whose SCRAM the
    daemons' librdkafka can log in to: Kafka 3.9 (SCRAM_KAFKA_VERSION) while
    it is older than 2.6.1, any with a newer one."""

    kafka_version = SCRAM_KAFKA_VERSION

    def test_scram(self):
        if self.rdkafka < SCRAM_MIN_RDKAFKA and self.kafka_is >= (4,):
            self.skipTest("librdkafka %s < %s cannot log in to Kafka %s with SCRAM "
                          "(test_scram_kafka4 shows it): run this class on a Kafka "
                          "%s broker (sasl.cmake does)" % (
                              vstr(self.rdkafka), vstr(SCRAM_MIN_RDKAFKA),
                              vstr(self.kafka_is), SCRAM_KAFKA_VERSION))
        self.run_pipeline("sasl-scram", "SCRAM-SHA-512")


class TestSaslPipeline(SaslCase):
    """Share requests end to end, every Kafka connection SASL_SSL, on the
    Kafka 4 broker (kafka.sh's version)."""

    def test_plain(self):
        self.run_pipeline("sasl-plain", "PLAIN")

    def test_listener_wants_tls_and_sasl(self):
        """The broker's only client listener refuses a plaintext client and
        a TLS client without SASL: the daemons above can only have talked
        SASL_SSL."""
        boot = self.kafka.bootstrap
        ca = os.path.join(self.dir, "tls", "ca.pem")
        for extra in ([], ["-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + ca]):
            r = subprocess.run(["kcat", "-b", boot, "-L", "-m", "3"] + extra,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, (extra, r.stdout))
            self.assertIn("Failed to acquire metadata", r.stderr)

    def test_scram_kafka4(self):
        """SCRAM-SHA-512 with a Kafka 4 broker and the right password. With
        librdkafka >= 2.6.1 the pipeline passes. An older one sends the
        client nonce twice and Kafka 4 refuses the login as if the password
        were wrong: the issuer must then exit at once (no hang, not after
        init_transactions' 60 s) with an error naming the refused login,
        the principal and the librdkafka version that causes it."""
        if self.kafka_is < (4,):
            self.skipTest("Kafka %s: not a Kafka 4 broker" % vstr(self.kafka_is))
        if self.rdkafka >= SCRAM_MIN_RDKAFKA:
            self.run_pipeline("sasl-scram4", "SCRAM-SHA-512")
            return
        w = self.world("sasl-scram4", request_partitions=1, token_partitions=1,
                       out_partitions=1)
        X, Y = w.app("x"), w.app("y")
        self.grant_pipeline(w)
        conf = w.issuer_conf(X, [Y], extra=self.sasl("issuer", "SCRAM-SHA-512"))
        d = w.daemon("issuer", conf, "issuer")
        self.check_stops({"scram-kafka4": (
            d, "SCRAM-SHA-512 with librdkafka %s on Kafka %s" % (
                vstr(self.rdkafka), vstr(self.kafka_is)), AUTHN_RX,
            ["User:issuer may not log in",
             "librdkafka %s is older than 2.6.1" % vstr(self.rdkafka)])})


class TestSaslDenials(SaslCase):
    """Each scenario starts one daemon that is denied one thing; the
    scenarios of a test run at once. Each daemon must exit non-zero within
    DENIAL_BOUND_S, and the error it stops with (the last error it logs
    itself) must name the failure -- librdkafka's TOPIC_/GROUP_/
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED or its text (a wrong password:
    the authentication failure) -- what was refused, and the principal."""

    def mechanism(self):
        return "SCRAM-SHA-512" if self.rdkafka >= SCRAM_MIN_RDKAFKA else "PLAIN"

    def test_acl_denials(self):
        mech = self.mechanism()
        w = self.world("sasl-deny", request_partitions=1, token_partitions=1,
                       out_partitions=1)
        X, Y = w.app("x"), w.app("y")
        P, t = w.prefix, w.t
        noacl = w.topic("tokens-noacl", 1)        # the issuer has no ACL at all
        describe = w.topic("tokens-describe", 1)  # Describe, no Write
        noread = w.topic("requests-noread", 1)    # no Read for the issuer
        req_b = w.topic("in-b", 1)                # scenario B's requests
        state_g = w.topic("state-describe", 1)    # Describe, no Read
        mg, mtx = self.names(w, "importer")
        # The issuer: everything of the world's pipeline, groups and
        # transactional ids by prefix (one of each per scenario), and
        # Describe only on one token topic; the importer: its own.
        self.acl(*self.grant("issuer", read=[t["requests"], t["state"], req_b],
                             write=[t["tokens"], t["issuer_dlq"], t["state"]]),
                 *self.grant("issuer", groups=[P + "-issuer"], tids=[P + "-issuer"],
                             prefixed=True),
                 ["--add", "--allow-principal", "User:issuer", "--operation",
                  "Describe", "--topic", describe, "--topic", state_g],
                 *self.grant("importer", read=[t["tokens"], t["importer_state"]],
                             groups=[mg], tids=[mtx],
                             write=[t["imported"], t["importer_dlq"],
                                    t["importer_state"]]))
        self.note("ACLs granted (mechanism %s)", mech)

        scen = {}

        def issuer(name, what, words, **opts):
            c = {"issuer.group_id": "%s-issuer-%s" % (P, name),
                 "issuer.transactional_id": "%s-issuer-%s-tx" % (P, name)}
            c.update(self.sasl("issuer", mech))
            c.update(opts)
            conf = w.issuer_conf(X, [Y], name="issuer-" + name, extra=c)
            scen[name] = (w.daemon("issuer", conf, "issuer-" + name), what, AUTHZ_RX,
                          words)

        # A: a token topic the issuer may not even describe (start-up,
        # pipeline_meta.c), the principal named, no "never create" hint
        issuer("a", "token topic without any ACL",
               ["output topic %s: TOPIC_AUTHORIZATION_FAILED: User:issuer may not "
                "write to topic %s" % (noacl, noacl)],
               **{"issuer.token_topic": noacl})
        # B: a token topic it may describe, not write: denied when the
        # first envelope is produced, after the vendor's mint
        issuer("b", "token topic with Describe only",
               ["User:issuer may not write to", describe],
               **{"issuer.token_topic": describe, "issuer.request_topic": req_b})
        # C: a transactional id not granted
        issuer("c", "transactional id not granted",
               ["User:issuer may not use transactional id %s-rogue-tx" % P],
               **{"issuer.transactional_id": P + "-rogue-tx"})
        # D: a consumer group not granted
        issuer("d", "consumer group not granted",
               ["User:issuer may not use group %s-rogue" % P],
               **{"issuer.group_id": P + "-rogue"})
        # E: a request topic it may not read
        issuer("e", "request topic not readable",
               ["User:issuer may not read topic " + noread],
               **{"issuer.request_topic": noread})
        # G: a state topic it may describe, not read (a record in it, so
        # that the start-up load must fetch)
        w.kafka.produce(state_g, [("share-g", "{}")])
        issuer("g", "state topic with Describe only",
               ["cannot read state topic " + state_g,
                "User:issuer may not read topic " + state_g],
               **{"issuer.state_topic": state_g})
        # F: an importer that logs in with the issuer's credentials
        fconf = w.importer_conf(Y, [(X, {})], name="importer-f",
                                extra=self.sasl("issuer", mech))
        scen["f"] = (w.daemon("importer", fconf, "importer-f"),
                     "importer with the issuer's credentials", AUTHZ_RX,
                     ["User:issuer may not use transactional id "
                      + self.names(w, "importer-f")[1]])
        # B's request: minted by the sandbox, then the envelope is denied
        sid = w.sb.finished_session(X.key, X.wf["kyc"], "Approved")
        w.kafka.produce(req_b, [("b", json.dumps(h.share_request(sid, Y.id)))])
        self.note("%d daemons started", len(scen))
        self.check_stops(scen)
        # B minted once: no abort and retry, which would mint again
        self.assertEqual(scen["b"][0].last_stats().get("vendor ok"), 1,
                         scen["b"][0].logtext()[-3000:])

    def test_wrong_password(self):
        """Not an ACL: the login itself is refused (the issuer with the
        importer's password, and a user the broker does not know)."""
        mech = self.mechanism()
        w = self.world("sasl-pw", request_partitions=1, token_partitions=1,
                       out_partitions=1)
        X, Y = w.app("x"), w.app("y")
        scen = {}
        for name, user, sasl in (
                ("wrong-password", "issuer", self.sasl("issuer", mech, "importer")),
                ("unknown-user", "nobody", dict(self.sasl("issuer", mech),
                                                **{"kafka.sasl.username": "nobody"}))):
            conf = w.issuer_conf(X, [Y], name="issuer-" + name, extra=sasl)
            scen[name] = (w.daemon("issuer", conf, "issuer-" + name),
                          "login refused (%s)" % mech, AUTHN_RX,
                          ["User:%s may not log in" % user])
        self.check_stops(scen)

    def test_no_broker_sigterm(self):
        """Nothing listens at the broker address: the start waits for a
        broker (at most 60 s, then a clear error) and a SIGTERM meanwhile
        stops the daemon at once, cleanly. (Before the login probe the
        transactional producer's init_transactions() held it for 60 s.)"""
        w = self.world("sasl-nobroker", request_partitions=1, token_partitions=1,
                       out_partitions=1)
        X, Y = w.app("x"), w.app("y")
        extra = dict(self.sasl("issuer", self.mechanism()),
                     **{"kafka.bootstrap.servers": "127.0.0.1:%d" % h.free_port()})
        d = w.daemon("issuer", w.issuer_conf(X, [Y], name="issuer-nobroker", extra=extra),
                     "issuer-nobroker")
        # its Kafka settings are taken: it is waiting for a broker now
        d.wait_log(r"transactional\.id", 20)
        time.sleep(1.5)
        self.assertTrue(d.alive(), d.logtext()[-2000:])
        t0 = time.monotonic()
        rc = d.stop(timeout=20)
        took = time.monotonic() - t0
        self.note("SIGTERM while waiting for a broker: exit %s after %.1f s", rc, took)
        self.assertEqual(rc, 0, d.logtext()[-2000:])
        self.assertLess(took, 5, d.logtext()[-2000:])


if __name__ == "__main__":
    unittest.main()
