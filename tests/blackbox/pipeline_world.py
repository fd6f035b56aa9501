"""pipeline_world.py -- one isolated bridge set-up for the pipeline suites
and the end-to-end benchmark: a sandbox, topics under a fresh prefix,
applications with keys and workflows, issuer/importer configs and daemons.

Python 3 stdlib only, built on kbharness. Everything a World creates is
named after its prefix (topics, consumer groups, transactional ids), so
worlds never see each other on a shared broker.
"""
import collections
import json
import os
import shutil
import sys
import time
import uuid

import kbharness as h

KYC_ARRAYS = ("id_verifications", "liveness_checks", "face_matches",
              "aml_screenings", "database_validations", "proof_of_address",
              "location_checks", "phone_verifications", "email_verifications")
KYB_ARRAYS = ("registry_checks", "key_people_checks", "document_verifications",
              "aml_screenings", "questionnaires")
FINISHED = {"kyc": ("Approved", "Declined", "In Review"),
            "kyb": ("APPROVED", "DECLINED", "IN_REVIEW")}
IN_REVIEW = {"user": "In Review", "business": "IN_REVIEW"}


class WorldsCase:
    """unittest.TestCase mixin: the Worlds a test makes (self.worlds) are
    closed after it, and kept on disk when that test failed; so are the
    brokers of its own it starts with private_broker(). note() prints a
    line with the time since the test began."""

    def setUp(self):
        self.worlds = []
        self.t0 = time.monotonic()
        self.fails0 = self.n_failed()
        self.failed = None   # known in tearDown

    def private_broker(self, tag):
        """A broker of the test's own (kbharness.PrivateBroker) in a new
        work directory: stopped after the test (also when set-up failed
        midway), its directory removed unless the test failed or KB_KEEP
        is set."""
        pb = h.PrivateBroker(os.path.join(h.new_workdir(tag), "kafka"))
        self.addCleanup(self._broker_gone, pb)
        return pb

    def _broker_gone(self, pb):
        # after tearDown: the worlds on it are closed
        pb.stop()
        if self.failed is not False:
            print("[%s] kept %s" % (self.id(), pb.dir), file=sys.stderr)
        elif not os.environ.get("KB_KEEP"):
            shutil.rmtree(os.path.dirname(pb.dir), ignore_errors=True)

    def note(self, fmt, *args):
        print("[%s +%.1fs] %s" % (self.id().split(".", 1)[-1], time.monotonic() - self.t0,
                                  fmt % args), file=sys.stderr)

    def n_failed(self):
        """Failures and errors the result holds so far (Python 3.11 adds a
        test's own at once, before tearDown)."""
        r = getattr(getattr(self, "_outcome", None), "result", None)
        return len(getattr(r, "failures", ())) + len(getattr(r, "errors", ()))

    def tearDown(self):
        # this test failed: not an earlier test of the same run
        failed = bool(getattr(self._outcome, "errors", None) and any(
            e for _, e in self._outcome.errors)) or self.n_failed() > self.fails0
        self.failed = failed
        for w in self.worlds:
            w.close(keep=failed)
            if failed:
                print("[%s] kept %s" % (self.id(), w.wd), file=sys.stderr)


class App:
    """A sandbox application with its key file, bridge keys and workflows."""

    def __init__(self, world, name, kinds=("kyc", "kyb")):
        self.name = name
        self.id, self.key = world.sb.app(name)
        self.keyfile = os.path.join(world.wd, name + ".apikey")
        with open(self.keyfile, "w") as f:
            f.write(self.key)
        self.keys = h.Keys(world.wd, name)
        self.wf = {k: world.sb.workflow(self.key, k) for k in kinds}


class World:
    def __init__(self, tag, request_partitions=4, token_partitions=4,
                 out_partitions=4, seed=7, sandbox_args=None, kafka=None,
                 metrics=False):
        """@kafka: an h.Kafka (default: the shared test broker). @metrics:
        every daemon config gets metrics.listen = 127.0.0.1:0 (its port is
        in its log, see Daemon.metrics_port), and token_leaks() scans the
        /metrics text of every daemon (and of the sandbox, when it has
        one) for the world's canary secrets."""
        self.tag = tag
        self.metrics = metrics
        self.apps = []
        self.secrets = []      # webhook secrets written by webhook_secret_file
        self.share_ids = []    # share_ids and vendor_data of produce_requests
        self.wd = h.new_workdir(tag)
        self.kafka = kafka or h.Kafka()
        self.prefix = "kbt-%s-%d-%s" % (tag, os.getpid(), uuid.uuid4().hex[:8])
        self.t = h.topic_names(self.prefix)
        self.daemons = []
        self.followers = []
        self.sb = None
        self.kafka.create_topics([
            (self.t["requests"], request_partitions),
            (self.t["tokens"], token_partitions),
            (self.t["issuer_dlq"], 2),
            # the state topic needs as many partitions as the request topic
            (self.t["state"], request_partitions),
            (self.t["imported"], out_partitions),
            (self.t["importer_dlq"], 2),
            # read in full by every importer at start-up and on every
            # assignment; any partition count works (compaction only
            # matters for long-lived deployments, not for a test)
            (self.t["importer_state"], 3)])
        self.sb = h.Sandbox(self.wd, seed=seed, extra_args=sandbox_args)
        self.sb.set_rate_limits(0)

    def topic(self, suffix, partitions):
        name = "%s.%s" % (self.prefix, suffix)
        self.kafka.create_topics([(name, partitions)])
        return name

    def app(self, name, kinds=("kyc", "kyb")):
        a = App(self, name, kinds)
        self.apps.append(a)
        return a

    def canaries(self):
        """Strings that must never appear in logs' neighbours such as
        /metrics: the applications' API keys, their secret keys, the
        webhook secrets, the share_ids and vendor_data of the requests
        produced (each at least 8 characters)."""
        out = []
        for a in self.apps:
            out.append(a.key)
            out += h.secret_key_values(a.keys.box) + h.secret_key_values(a.keys.sign)
        out += self.secrets + self.share_ids
        return sorted({c for c in out if c and len(c) >= 8})

    def sandbox_metrics(self):
        """The sandbox's /metrics (Metrics), None while it has none."""
        port = int(self.sb.url.rsplit(":", 1)[1])
        return h.scrape_metrics(port, optional=True)

    def common(self):
        return {
            "kafka.bootstrap.servers": self.kafka.bootstrap,
            "vendor.url": self.sb.url,
            "vendor.rate_limit_per_minute": 0,
            "log.level": "info",
            # a SIGKILLed member must leave the group quickly
            "kafka.session.timeout.ms": 6000,
            "kafka.heartbeat.interval.ms": 1000,
        } | ({"metrics.listen": "127.0.0.1:0"} if self.metrics else {})

    def issuer_conf(self, app, partners, name="issuer", extra=None):
        """@partners: list of App (or (section, application_id, keys.pub))."""
        c = self.common()
        c.update({
            "application_id": app.id,
            "vendor.api_key": "file:" + app.keyfile,
            "keys.sign_secret": app.keys.sign,
            "issuer.request_topic": self.t["requests"],
            "issuer.token_topic": self.t["tokens"],
            "issuer.dlq_topic": self.t["issuer_dlq"],
            "issuer.state_topic": self.t["state"],
            "issuer.group_id": "%s-%s" % (self.prefix, name),
            "issuer.transactional_id": "%s-%s-tx" % (self.prefix, name),
        })
        for p in partners:
            sec, pid, pub = (p.name, p.id, p.keys.pub) if isinstance(p, App) else p
            c["partner.%s.application_id" % sec] = pid
            c["partner.%s.keys" % sec] = pub
        c.update(extra or {})
        return h.write_conf(os.path.join(self.wd, name + ".conf"), c)

    def importer_conf(self, app, partners, name="importer", group=None,
                      output=None, dlq=None, token_topics=None, state=None,
                      extra=None):
        """@partners: list of (App, {option: value}) -- options of
        partner.<app.name>.*; workflow_id.user/.business default to @app's
        kyc/kyb workflows unless given (None: leave unset). @state: the
        importer.state_topic (default: the world's importer-state topic;
        importers of different applications should each get their own,
        like their output topics, see World.topic)."""
        c = self.common()
        c.update({
            "application_id": app.id,
            "vendor.api_key": "file:" + app.keyfile,
            "keys.box_secret": app.keys.box,
            "importer.token_topics": token_topics or self.t["tokens"],
            "importer.output_topic": output or self.t["imported"],
            "importer.dlq_topic": dlq or self.t["importer_dlq"],
            "importer.state_topic": state or self.t["importer_state"],
            "importer.group_id": group or "%s-%s" % (self.prefix, name),
            "importer.transactional_id": "%s-%s-tx" % (self.prefix, name),
        })
        for p, opts in partners:
            o = {"workflow_id.user": app.wf.get("kyc"),
                 "workflow_id.business": app.wf.get("kyb")}
            o.update(opts)
            c["partner.%s.application_id" % p.name] = p.id
            c["partner.%s.keys" % p.name] = p.keys.pub
            for k, v in o.items():
                if v is not None:
                    c["partner.%s.%s" % (p.name, k)] = v
        c.update(extra or {})
        return h.write_conf(os.path.join(self.wd, name + ".conf"), c)

    def daemon(self, role, conf, name, args=None, prefix=None):
        d = h.Daemon(self.wd, role, conf, name=name, args=args, prefix=prefix)
        self.daemons.append(d)
        return d

    def follow(self, topic):
        f = self.kafka.follow(topic)
        self.followers.append(f)
        return f

    def webhook_secret_file(self, app, secret, name=None):
        """Writes @secret to a 0600 file for `webhook.secret = file:...`;
        returns the option value."""
        path = os.path.join(self.wd, (name or app.name) + ".webhook-secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        self.secrets.append(secret)
        return "file:" + path

    def produce_requests(self, reqs):
        for r in reqs:
            self.share_ids += [str(r.get("share_id") or ""),
                               str(r.get("vendor_data") or "")]
        self.kafka.produce(self.t["requests"],
                           [(r["share_id"], json.dumps(r)) for r in reqs])

    def outputs(self, imported=None, importer_dlq=None, issuer_dlq=None):
        """Committed records of the output topics, values parsed:
        {"imported": [...], "importer_dlq": [...], "issuer_dlq": [...]};
        each item is the kcat record dict plus "doc" and "topic"."""
        out = {}
        for k, topic in (("imported", imported or self.t["imported"]),
                         ("importer_dlq", importer_dlq or self.t["importer_dlq"]),
                         ("issuer_dlq", issuer_dlq or self.t["issuer_dlq"])):
            recs = self.kafka.consume_all(topic)
            for r in recs:
                r["topic"] = topic
                r["doc"] = json.loads(r["value"])
            out[k] = recs
        return out

    def close(self, keep=False):
        for f in self.followers:
            f.stop()
        for d in self.daemons:
            d.stop()
        if self.sb:
            self.sb.stop()
        if not keep and not os.environ.get("KB_KEEP"):
            shutil.rmtree(self.wd, ignore_errors=True)


def exactly_once_report(share_ids, outputs):
    """Checks that every share_id in @share_ids has exactly one record among
    the downstream and dead-letter outputs (see World.outputs). Returns a
    list of problems (empty when all is well), each precise enough to act
    on."""
    seen = collections.defaultdict(list)
    for kind in ("imported", "importer_dlq", "issuer_dlq"):
        for r in outputs[kind]:
            seen[r["doc"].get("share_id")].append((kind, r))
    want = set(share_ids)
    problems = []
    lost = sorted(s for s in want if s not in seen)
    if lost:
        problems.append("LOST %d share request(s) (no downstream or dead-letter "
                        "record): %s" % (len(lost), ", ".join(lost[:20])))
    for sid, recs in sorted(seen.items(), key=lambda kv: str(kv[0])):
        if sid not in want:
            problems.append("UNEXPECTED record for share_id %r: %s" % (
                sid, "; ".join(_describe(k, r) for k, r in recs)))
        elif len(recs) > 1:
            problems.append("DUPLICATE: share_id %s has %d records: %s" % (
                sid, len(recs), "; ".join(_describe(k, r) for k, r in recs)))
    return problems


def _describe(kind, r):
    d = r["doc"]
    extra = ""
    if kind == "imported":
        extra = " session %s reconciled=%s" % (d.get("session_id"), d.get("reconciled"))
    else:
        extra = " %s/%s" % (d.get("stage"), d.get("reason"))
    return "%s %s[%d]@%d%s" % (kind, r["topic"], r["partition"], r["offset"], extra)


def token_leaks(world, extra_logs=(), known_tokens=(), secrets=(),
                extra_texts=()):
    """Looks for share tokens in plaintext: every topic of @world read with
    read_uncommitted (aborted transactions included), the broker's segment
    files of those topics, every daemon log, the sandbox log and
    @extra_logs; for a world made with metrics=True also every /metrics
    text its daemons served (kept by Daemon.scrape and at a clean stop,
    one more scraped now from each running one) and the sandbox's, which
    must parse and hold none of world.canaries() nor @known_tokens nor
    @secrets. In decoded records and logs "eyJ" must not appear at all
    (an envelope's "sealed" member, random base64url, is left out); in raw
    segment files nothing JWT-shaped may appear, nor any of @known_tokens.
    @secrets (webhook secrets, strings) must appear nowhere: not in a
    record, a segment file, a log, nor in @extra_texts (bytes: HTTP
    answers, error output). Returns a list of findings."""
    found = []
    known = [t.encode() for t in known_tokens]
    sigs = [t.rsplit(b".", 1)[-1] for t in known if b"." in t]
    secret_bytes = [s.encode() for s in secrets if s]
    for i, text in enumerate(extra_texts):
        for s in secret_bytes:
            if s in text:
                found.append("text %d (%r...) holds a webhook secret" % (i, text[:60]))
    for topic in world.kafka.topics(world.prefix + "."):
        for r in world.kafka.consume_all(topic, committed_only=False):
            for what, data in (("key", r["key"].encode()),
                               ("headers", r["headers"].encode()),
                               ("value", h.strip_sealed(r["value"]))):
                if b"eyJ" in data:
                    found.append("topic %s[%d]@%d %s contains 'eyJ': %r" % (
                        topic, r["partition"], r["offset"], what,
                        data[max(0, data.find(b"eyJ") - 40):data.find(b"eyJ") + 40]))
            for s in sigs:
                if s in r["value"]:
                    found.append("topic %s[%d]@%d carries a known token" % (
                        topic, r["partition"], r["offset"]))
            for s in secret_bytes:
                if s in r["value"] or s in r["key"].encode() or \
                        s in r["headers"].encode():
                    found.append("topic %s[%d]@%d carries a webhook secret" % (
                        topic, r["partition"], r["offset"]))
        for path in world.kafka.segment_files(topic):
            with open(path, "rb") as f:
                raw = f.read()
            for tok in h.find_tokens(raw):
                found.append("segment %s holds a JWT: %s..." % (path, tok[:24]))
            for s in sigs:
                if s in raw:
                    found.append("segment %s holds a known token" % path)
            for s in secret_bytes:
                if s in raw:
                    found.append("segment %s holds a webhook secret" % path)
    if getattr(world, "metrics", False):
        found += metrics_leak_findings(world, known_tokens, secrets)
    logs = [d.logpath for d in world.daemons] + [world.sb.logpath] + list(extra_logs)
    for path in logs:
        with open(path, "rb") as f:
            raw = f.read()
        if b"eyJ" in raw:
            i = raw.find(b"eyJ")
            found.append("log %s contains 'eyJ': %r" % (path, raw[max(0, i - 60):i + 40]))
        for s in secret_bytes:
            if s in raw:
                found.append("log %s holds a webhook secret" % path)
    return found


def metrics_leak_findings(world, known_tokens=(), secrets=()):
    """The /metrics part of token_leaks (see there)."""
    found = []
    canaries = world.canaries() + list(known_tokens) + [s for s in secrets if s]
    texts = []
    for d in world.daemons:
        if d.metrics_listen and d.alive():
            try:
                d.scrape()
            except h.MetricsError as e:
                found.append("%s: %s" % (d.name, e))
        texts += [("%s /metrics" % d.name, t) for t in d.metrics_texts]
    if world.sb and world.sb.proc.poll() is None:
        try:
            m = world.sandbox_metrics()
            if m is not None:
                texts.append(("sandbox /metrics", m.text))
        except h.MetricsError as e:
            found.append("sandbox: %s" % e)
    for what, text in texts:
        try:
            h.parse_metrics(text)
        except h.MetricsError as e:
            found.append("%s: %s" % (what, e))
        found += ["%s: %s" % (what, f) for f in h.metrics_leaks(text, canaries)]
    return found


def wait_metrics(daemon, pred, timeout, what):
    """Scrapes @daemon's /metrics until @pred(Metrics) is true; returns
    that Metrics. On timeout the last scrape's figures are in the error."""
    last = {}

    def once():
        m = daemon.scrape()
        last["m"] = m
        return m if pred(m) else None
    try:
        return h.wait_for(once, timeout, what, interval=0.25)
    except TimeoutError as e:
        m = last.get("m")
        fig = "" if m is None else "; last /metrics records/dead letters: %s %s" % (
            m.samples("kyc_bridge_records_total"),
            m.samples("kyc_bridge_dead_letters_total"))
        raise AssertionError("%s%s" % (e, fig)) from None


def wait_stable(count_fn, target, timeout, settle=1.5, what="outputs"):
    """Waits until count_fn() >= @target and then for it to stay unchanged
    for @settle seconds (late duplicates show up). Returns the count."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        n = count_fn()
        if n != last:
            last, since = n, time.monotonic()
        elif n >= target and time.monotonic() - since >= settle:
            return n
        time.sleep(0.1)
    raise TimeoutError("timed out after %.0f s waiting for %s: %s of %d"
                       % (timeout, what, last, target))
