"""test_dlq.py -- black-box tests of `kyc-bridge dlq list|show|redrive`
against real dead letters: an issuer on a real Kafka broker (fixture
`kafka`) and the real sandbox is fed bad share requests, then the command
reads its dead-letter topic; an importer missing its partner dead-letters
envelopes that `dlq redrive` puts back once the configuration is fixed,
also across interrupted runs (Python 3 stdlib unittest; see dlq.cmake).

  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \
  python3 -m unittest -v test_dlq                  (from tests/blackbox)
"""
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, wait_stable  # noqa: E402

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
ROW = re.compile(r"^(\d+):(\d+)\s+(%s)\s+(\S+)\s+(\S+)\s+(\S+)\s+(yes|-)$"
                 % ISO)


def rows(out):
    """The per-record lines of `dlq list`: (partition, offset, at, reason,
    share_id, stage)."""
    return [(int(m.group(1)), int(m.group(2)), m.group(3), m.group(4),
             m.group(5), m.group(6))
            for m in map(ROW.match, out.splitlines()) if m]


def by_reason(out):
    """The "by reason:" block of `dlq list`: {reason: count}."""
    counts, inside = {}, False
    for line in out.splitlines():
        if line == "by reason:":
            inside = True
        elif inside and line.startswith("  "):
            reason, n = line.split()
            counts[reason] = int(n)
        elif inside:
            break
    return counts


class TestDlq(unittest.TestCase):
    """One world, one issuer, five real dead letters of three reasons."""

    @classmethod
    def setUpClass(cls):
        cls.w = w = World("dlq")
        try:
            X, Y = w.app("x"), w.app("y")
            sb = w.sb
            cls.iconf = w.issuer_conf(X, [Y])
            cls.sid = {}
            reqs = []

            def sid(tag):
                s = "dlq-%s-%s" % (tag, uuid.uuid4().hex[:10])
                cls.sid[tag] = s
                return s

            fin = sb.finished_session(X.key, X.wf["kyc"], "Approved")
            # malformed_request x2: not JSON at all (no share_id), and a
            # request without session_id
            w.kafka.produce(w.t["requests"],
                            [("k-garbage", "\x01 this is not JSON {")])
            s = sid("missing")
            reqs.append({"share_id": s, "for_application_id": Y.id})
            # unknown_partner x2
            for tag in ("up1", "up2"):
                reqs.append(h.share_request(fin, str(uuid.uuid4()), sid(tag)))
            # session_not_finished x1 (stage mint, the vendor's 400)
            reqs.append(h.share_request(
                sb.finished_session(X.key, X.wf["kyc"], None), Y.id,
                sid("notfinished")))
            w.produce_requests(reqs)
            cls.issuer = w.daemon("issuer", cls.iconf, "issuer")
            wait_stable(lambda: len(w.kafka.consume_all(w.t["issuer_dlq"])),
                        5, 120, what="issuer dead letters")
            cls.issuer.stop()
            cls.kcat = w.kafka.consume_all(w.t["issuer_dlq"])
            cls.iconf_importer = w.importer_conf(Y, [(X, {})])
        except BaseException:
            w.close(keep=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def dlq(self, *args, expect=0, timeout=60):
        rc, out, err = h.run_cli(["dlq"] + list(args), timeout=timeout)
        out = out.decode()
        self.assertEqual(rc, expect, "dlq %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(args), rc, out, err))
        self.assertNotIn("eyJ", out + err)
        return out, err

    def test_list_counts_by_reason(self):
        self.assertEqual(len(self.kcat), 5)
        out, _ = self.dlq("list", "-c", self.iconf)
        self.assertIn("topic %s: 5 dead letters" % self.w.t["issuer_dlq"], out)
        self.assertEqual(by_reason(out), {"malformed_request": 2,
                                          "unknown_partner": 2,
                                          "session_not_finished": 1})
        self.assertRegex(out, r"time range: %s \.\. %s" % (ISO, ISO))
        got = rows(out)
        self.assertEqual(sorted((p, o) for p, o, *_ in got),
                         sorted((r["partition"], r["offset"]) for r in self.kcat))
        want = {self.sid["missing"]: ("malformed_request", "request"),
                self.sid["up1"]: ("unknown_partner", "request"),
                self.sid["up2"]: ("unknown_partner", "request"),
                self.sid["notfinished"]: ("session_not_finished", "mint")}
        self.assertEqual({s: (r, st) for _, _, _, r, s, st in got if s != "-"},
                         want)
        self.assertEqual([r for _, _, _, r, s, _ in got if s == "-"],
                         ["malformed_request"])

    def test_list_reason_filter(self):
        out, _ = self.dlq("list", "-c", self.iconf, "--reason", "unknown_partner")
        got = rows(out)
        self.assertEqual(sorted(s for *_, s, _ in got),
                         sorted([self.sid["up1"], self.sid["up2"]]))
        self.assertEqual({r for _, _, _, r, _, _ in got}, {"unknown_partner"})
        self.assertEqual(by_reason(out), {"unknown_partner": 2})
        out, _ = self.dlq("list", "-c", self.iconf, "--reason", "expired")
        self.assertEqual(rows(out), [])
        self.assertIn("0 dead letters", out)

    def test_list_json(self):
        out, _ = self.dlq("list", "-c", self.iconf, "--json")
        docs = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(docs), 5)
        kcat = {(r["partition"], r["offset"]): r for r in self.kcat}
        for d in docs:
            r = kcat[(d["partition"], d["offset"])]
            want = json.loads(r["value"])
            if want["reason"] == "malformed_request":
                # never redrivable: its input is not kept
                self.assertNotIn("input", want)
            else:
                # the kept input is shown without its bytes
                self.assertIn("input", want)
                self.assertIn("value", want["input"])
                del want["input"]["value"]
                want["input"].pop("key")
            self.assertEqual(d["dead_letter"], want)
            self.assertFalse(d["redriven"])
            self.assertEqual(d["kb_reason"], d["dead_letter"]["reason"])
            self.assertEqual(d["dead_letter"]["format"], "kyc-bridge-dead-letter/1")
        out, _ = self.dlq("list", "-c", self.iconf, "--json", "--reason",
                          "session_not_finished")
        docs = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([d["dead_letter"]["share_id"] for d in docs],
                         [self.sid["notfinished"]])

    def test_show(self):
        r = next(r for r in self.kcat
                 if json.loads(r["value"])["share_id"] == self.sid["notfinished"])
        pos = "%d:%d" % (r["partition"], r["offset"])
        out, _ = self.dlq("show", "-c", self.iconf, "--offset", pos)
        self.assertIn("record:     %s" % pos, out)
        self.assertIn('"reason": "session_not_finished"', out)
        self.assertIn('"share_id": "%s"' % self.sid["notfinished"], out)
        self.assertIn('"stage": "mint"', out)
        self.assertRegex(out, r"at:\s+%s" % ISO)
        out2, _ = self.dlq("show", "-c", self.iconf, "--share-id",
                           self.sid["notfinished"])
        self.assertIn("record:     %s" % pos, out2)
        # not there: past the end, a partition the topic lacks, an id
        self.dlq("show", "-c", self.iconf, "--offset", "%d:999999" % r["partition"],
                 expect=1)
        self.dlq("show", "-c", self.iconf, "--offset", "7:0", expect=1)
        _, err = self.dlq("show", "-c", self.iconf, "--share-id", "no-such-id",
                          expect=1)
        self.assertIn("no dead letter with share_id no-such-id", err)

    def test_roles(self):
        # the importer config implies the importer's (empty) topic
        out, _ = self.dlq("list", "-c", self.iconf_importer)
        self.assertIn("topic %s: 0 dead letters" % self.w.t["importer_dlq"], out)
        out, _ = self.dlq("list", "-c", self.iconf_importer, "--role", "issuer",
                          "-X", "issuer.dlq_topic=" + self.w.t["issuer_dlq"])
        self.assertIn("5 dead letters", out)
        # neither role's options: --role is required
        bare = h.write_conf(os.path.join(self.w.wd, "bare.conf"),
                            {"kafka.bootstrap.servers": self.w.kafka.bootstrap})
        _, err = self.dlq("list", "-c", bare, expect=2)
        self.assertIn("--role", err)
        out, _ = self.dlq("list", "-c", bare, "--role", "issuer", "-X",
                          "issuer.dlq_topic=" + self.w.t["issuer_dlq"])
        self.assertIn("5 dead letters", out)

    def test_errors(self):
        _, err = self.dlq("list", "-c", self.iconf, "-X",
                          "issuer.dlq_topic=%s.nope" % self.w.prefix, expect=1)
        self.assertIn("does not exist", err)
        t0 = time.monotonic()
        _, err = self.dlq("list", "-c", self.iconf, "--timeout", "3", "-X",
                          "kafka.bootstrap.servers=127.0.0.1:%d" % h.free_port(),
                          expect=1)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertRegex(err, "unreachable|not reached")

    def test_bad_args(self):
        out, _ = self.dlq("--help")
        self.assertIn("dlq list", out)
        self.assertIn("dlq redrive", out)
        # every reason code of the schema is in the redrive table
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "..", "..", "schemas",
                               "dead-letter.schema.json")) as f:
            codes = json.load(f)["properties"]["reason"]["enum"]
        listed = re.findall(r"^    ([a-z_]+) ", out, re.M)
        self.assertEqual(sorted(listed), sorted(codes))
        out, _ = self.dlq("list", "--help")
        self.assertIn("--reason", out)
        for args in (["list"], ["frob", "-c", self.iconf],
                     ["show", "-c", self.iconf],
                     ["show", "-c", self.iconf, "--offset", "0:1",
                      "--share-id", "x"],
                     ["show", "-c", self.iconf, "--offset", "abc"],
                     ["show", "-c", self.iconf, "--offset", "0:-1"],
                     ["list", "-c", self.iconf, "--role", "broker"],
                     ["list", "-c", self.iconf, "--bogus"],
                     ["list", "-c", self.iconf, "--offset", "0:1"],
                     ["list", "-c", self.iconf, "--timeout", "0"],
                     ["list", "-c", os.path.join(self.w.wd, "missing.conf")],
                     ["list", "-c", self.iconf, "-X", "issuer.dlq_topic=bad topic"]):
            _, err = self.dlq(*args, expect=2)
            self.assertTrue(err.strip(), args)
        rc, _, _ = h.run_cli(["dlq"])
        self.assertEqual(rc, 2)
        rc, out, _ = h.run_cli(["--help"])
        self.assertIn(b"dlq", out)
        for args in (["redrive", "-c", self.iconf],
                     ["redrive", "-c", self.iconf, "--from-offset", "1"],
                     ["redrive", "-c", self.iconf, "--partition", "0",
                      "--from-offset", "5", "--to-offset", "4"],
                     ["redrive", "-c", self.iconf, "--reason", "x",
                      "--batch", "0"],
                     ["redrive", "-c", self.iconf, "--reason", "x",
                      "--offset", "0:1"],
                     ["list", "-c", self.iconf, "--share-id", "x"]):
            _, err = self.dlq(*args, expect=2)
            self.assertTrue(err.strip(), args)
        rc, _, err = h.run_cli(["dlq", "redrive", "-c", self.iconf, "--reason",
                                "x"], env={"KB_TEST_REDRIVE_KILL": "yes"})
        self.assertEqual(rc, 2, err)
        self.assertIn("test hook", err)


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CANARY = "hdr-canary-%s" % uuid.uuid4().hex


def trace_id(traceparent):
    """The trace id of a W3C traceparent (None when it is none)."""
    m = re.match(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$", traceparent or "")
    return m and m.group(1)


def headers(rec):
    """kcat's %h ("n=v,n2=v2") as a dict."""
    return dict(kv.split("=", 1) for kv in rec["headers"].split(",")
                if "=" in kv)


class TestRedrive(unittest.TestCase):
    """An importer that lacks its partner (the issuer X) dead-letters four
    envelopes (unknown_key); the fixed importer dead-letters an expired one
    and a broken one. `dlq redrive` puts the four back: selection, refusal,
    interrupted runs, and exactly one imported record each."""

    @classmethod
    def setUpClass(cls):
        cls.w = w = World("redrive")
        try:
            X, Y, Z = w.app("x"), w.app("y"), w.app("z")
            sb = w.sb
            cls.Y = Y
            iconf = w.issuer_conf(X, [Y])
            cls.sid = ["rd-%d-%s" % (i, uuid.uuid4().hex[:10]) for i in range(4)]

            def share(sid, ttl=86400):
                sess = sb.finished_session(X.key, X.wf["kyc"], "Approved")
                rc, out, err = h.run_cli(
                    ["share", "-c", iconf, "--session-id", sess, "--for", Y.id,
                     "--share-id", sid, "--out", "-", "--ttl", str(ttl)])
                assert rc == 0, err
                return out.strip().decode()

            cls.envs = {s: share(s) for s in cls.sid}
            sb.set_clock(-7200)
            cls.expired_sid = "rd-exp-" + uuid.uuid4().hex[:10]
            expired = share(cls.expired_sid, ttl=3600)
            sb.set_clock(0)
            cls.produce_with_headers(w, [(Y.id, cls.envs[s]) for s in cls.sid])
            group = "%s-importer" % w.prefix
            bad = w.importer_conf(Y, [(Z, {})], name="imp-bad", group=group)
            d = w.daemon("importer", bad, "imp-bad")
            wait_stable(lambda: len(w.kafka.consume_all(w.t["importer_dlq"])),
                        4, 120, what="importer dead letters")
            d.stop()
            # the fix: X is a partner now; the same consumer group goes on
            cls.conf = w.importer_conf(Y, [(X, {})], name="imp-good",
                                       group=group)
            w.kafka.produce(w.t["tokens"], [(Y.id, expired),
                                            (Y.id, "not an envelope")])
            cls.importer = w.daemon("importer", cls.conf, "imp-good")
            wait_stable(lambda: len(w.kafka.consume_all(w.t["importer_dlq"])),
                        6, 120, what="importer dead letters")
        except BaseException:
            w.close(keep=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    @staticmethod
    def produce_with_headers(w, records):
        payload = b"".join(k.encode() + b"\x1f" + v.encode() + b"\x1e"
                           for k, v in records)
        subprocess.run(["kcat", "-b", w.kafka.bootstrap, "-P", "-t",
                        w.t["tokens"], "-K", "\x1f", "-D", "\x1e",
                        "-H", "traceparent=" + TRACEPARENT,
                        "-H", "tracestate=vendor=abc",
                        "-H", "kb-requested-at=1700000000123",
                        "-H", "x-partner-canary=" + CANARY],
                       input=payload, check=True, timeout=60)

    def run_dlq(self, *args, env=None):
        rc, out, err = h.run_cli(["dlq", args[0], "-c", self.conf] +
                                 list(args[1:]), timeout=120, env=env)
        out = out.decode()
        self.assertNotIn("eyJ", out + err)
        return rc, out, err

    def dlq(self, *args, expect=0, env=None):
        rc, out, err = self.run_dlq(*args, env=env)
        self.assertEqual(rc, expect, "dlq %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(args), rc, out, err))
        return out, err

    def dead_letters(self, committed_only=True):
        recs = self.w.kafka.consume_all(self.w.t["importer_dlq"],
                                        committed_only=committed_only)
        for r in recs:
            r["doc"] = json.loads(r["value"])
        return recs

    def redriven_inputs(self, committed_only=True):
        return [r for r in self.w.kafka.consume_all(
                    self.w.t["tokens"], committed_only=committed_only)
                if "kb-redrive-of" in headers(r)]

    def pos_of(self, sid):
        r = next(r for r in self.dead_letters()
                 if r["doc"].get("share_id") == sid
                 and r["doc"]["format"] == "kyc-bridge-dead-letter/1")
        return r["partition"], r["offset"]

    def would(self, out):
        return sorted(m.group(1) for m in
                      re.finditer(r"^would redrive \d+:\d+ share_id (\S+)", out, re.M))

    def test_redrive(self):
        w, sid = self.w, self.sid
        dls = self.dead_letters()
        self.assertEqual(sorted(r["doc"]["reason"] for r in dls),
                         sorted(["unknown_key"] * 4 + ["expired", "malformed_envelope"]))
        for r in dls:
            doc = r["doc"]
            if doc["reason"] != "unknown_key":
                # expired, malformed_envelope: never redrivable, so no
                # sealed token or raw input is kept
                self.assertNotIn("input", doc)
                continue
            # the input is kept, whole, with its digest; the allow-listed
            # headers only, in the document and on the record
            env = self.envs[doc["share_id"]].encode()
            self.assertEqual(base64.b64decode(doc["input"]["value"]), env)
            self.assertEqual(doc["input"]["size"], len(env))
            self.assertEqual(doc["input"]["sha256"], hashlib.sha256(env).hexdigest())
            self.assertEqual(base64.b64decode(doc["input"]["key"]).decode(), self.Y.id)
            # the trace: the same trace id (the daemon may have put its
            # own span id in)
            ih = dict(doc["input"]["headers"])
            self.assertEqual(trace_id(ih.pop("traceparent")), trace_id(TRACEPARENT))
            self.assertEqual(ih, {"tracestate": "vendor=abc",
                                  "kb-requested-at": "1700000000123"})
            hd = headers(r)
            self.assertEqual(trace_id(hd.get("traceparent")), trace_id(TRACEPARENT))
            self.assertEqual(hd.get("kb-requested-at"), "1700000000123")
            self.assertNotIn(CANARY, r["headers"] + r["value"].decode())

        # ---- selection, dry runs: nothing written ----
        out, _ = self.dlq("redrive", "--reason", "unknown_key", "--dry-run")
        self.assertEqual(self.would(out), sorted(sid))
        out, _ = self.dlq("redrive", "--share-id", sid[0], "--share-id", sid[1],
                          "--dry-run")
        self.assertEqual(self.would(out), sorted(sid[:2]))
        p, o = self.pos_of(sid[2])
        out, _ = self.dlq("redrive", "--partition", str(p), "--from-offset", str(o),
                          "--to-offset", str(o), "--dry-run")
        self.assertEqual(self.would(out), [sid[2]])
        out, _ = self.dlq("redrive", "--reason", "unknown_key", "--share-id", sid[3],
                          "--dry-run")
        self.assertEqual(self.would(out), [sid[3]])
        out, _ = self.dlq("redrive", "--share-id", "no-such-share")
        self.assertIn("nothing to redrive", out)
        # ---- refused: expired, malformed; the rest goes on (dry run) ----
        out, _ = self.dlq("redrive", "--reason", "expired", expect=3)
        self.assertRegex(out, r"refused \d+:\d+ share_id %s reason expired: .*"
                         r"ask the issuer to share again" % self.expired_sid)
        out, _ = self.dlq("redrive", "--reason", "expired", "--reason",
                          "malformed_envelope", "--reason", "unknown_key",
                          "--dry-run", expect=3)
        self.assertEqual(self.would(out), sorted(sid))
        self.assertEqual(len(re.findall(r"^refused ", out, re.M)), 2)
        self.assertEqual(self.redriven_inputs(committed_only=False), [])
        self.assertEqual(len(self.dead_letters(committed_only=False)), 6)

        # ---- interrupted inside the first transaction ----
        kill = {"KB_TEST_REDRIVE_KILL": "before-commit:1"}
        rc, out, err = self.run_dlq("redrive", "--share-id", sid[0], "--share-id",
                                    sid[1], "--batch", "1", env=kill)
        self.assertEqual(rc, -9, "stdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertIn("TEST HOOK", err)
        # the records reached the broker, in a transaction never committed
        self.assertEqual(len(self.redriven_inputs(committed_only=False)), 1)
        self.assertEqual(self.redriven_inputs(), [])
        self.assertEqual(len(self.dead_letters()), 6)
        # ---- interrupted between transactions (after the first commit) ----
        kill = {"KB_TEST_REDRIVE_KILL": "after-commit:1"}
        rc, out, err = self.run_dlq("redrive", "--share-id", sid[0], "--share-id",
                                    sid[1], "--batch", "1", env=kill)
        self.assertEqual(rc, -9, "stdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertEqual(len(self.redriven_inputs()), 1)
        # ---- the rerun finishes the job ----
        out, _ = self.dlq("redrive", "--share-id", sid[0], "--share-id", sid[1],
                          "--batch", "1")
        self.assertIn("1 to redrive, 1 already redriven, 0 refused", out)
        self.assertEqual(len(self.redriven_inputs()), 2)
        # ---- two runs at once, configured for two consumer groups (a
        # blue/green switch): one dead-letter topic, one transactional id,
        # so the second fences the first, which had read and judged the
        # dead letters and stopped before its first transaction ----
        blue = ["-X", "importer.group_id=%s-blue" % w.prefix]
        green = ["-X", "importer.group_id=%s-green" % w.prefix]
        e = dict(os.environ, KB_TEST_REDRIVE_KILL="stop-before-txn:1")
        first = subprocess.Popen(
            [h.kb_bin(), "dlq", "redrive", "-c", self.conf, "--reason",
             "unknown_key", "--batch", "1"] + blue,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        try:
            _, status = os.waitpid(first.pid, os.WUNTRACED)
            self.assertTrue(os.WIFSTOPPED(status), status)
            out, _ = self.dlq("redrive", "--reason", "unknown_key", *green)
            self.assertIn("2 to redrive, 2 already redriven, 0 refused", out)
        finally:
            os.kill(first.pid, signal.SIGCONT)
            fout, ferr = first.communicate(timeout=120)
        fout, ferr = fout.decode(), ferr.decode(errors="replace")
        self.assertIn("2 to redrive, 2 already redriven, 0 refused", fout)
        self.assertEqual(first.returncode, 1,
                         "stdout:\n%s\nstderr:\n%s" % (fout, ferr))
        self.assertIn("fenced", ferr)
        self.assertNotIn("\nredriven ", fout)
        self.assertEqual(len(self.redriven_inputs()), 4)
        out, _ = self.dlq("redrive", "--reason", "unknown_key")
        self.assertIn("0 to redrive, 4 already redriven, 0 refused", out)

        # exactly one redriven input per dead letter, with the kept key,
        # value and allow-listed headers, and no other input header
        red = self.redriven_inputs()
        self.assertEqual(len(red), 4)
        dl_pos = {"%s/%d/%d" % (w.t["importer_dlq"], r["partition"], r["offset"]):
                  r["doc"]["share_id"] for r in self.dead_letters()
                  if r["doc"].get("reason") == "unknown_key"}
        self.assertEqual(sorted(headers(r)["kb-redrive-of"] for r in red),
                         sorted(dl_pos))
        for r in red:
            hd = headers(r)
            s = dl_pos[hd["kb-redrive-of"]]
            self.assertEqual(r["value"].decode(), self.envs[s])
            self.assertEqual(r["key"], self.Y.id)
            self.assertEqual(trace_id(hd["traceparent"]), trace_id(TRACEPARENT))
            self.assertEqual(hd["tracestate"], "vendor=abc")
            self.assertEqual(hd["kb-requested-at"], "1700000000123")
            self.assertNotIn(CANARY, r["headers"])
        # ---- the fixed importer imports each exactly once ----
        wait_stable(lambda: len(w.kafka.consume_all(w.t["imported"])), 4, 120,
                    what="imported records")
        imported = [json.loads(r["value"])["share_id"]
                    for r in w.kafka.consume_all(w.t["imported"])]
        self.assertEqual(sorted(imported), sorted(sid))
        markers = [r for r in self.dead_letters()
                   if r["doc"]["format"] == "kyc-bridge-dead-letter-redriven/1"]
        self.assertEqual(len(markers), 4)
        self.assertEqual(len(self.dead_letters()), 6 + 4)  # no new dead letter

        # ---- list and show: redriven, markers not counted, no input ----
        out, _ = self.dlq("list")
        self.assertIn("6 dead letters, 4 redriven", out)
        got = [m.group(5) for m in map(ROW.match, out.splitlines())
               if m and m.group(7) == "yes"]
        self.assertEqual(sorted(got), sorted(sid))
        out, _ = self.dlq("show", "--share-id", sid[0])
        self.assertIn("redriven:   yes", out)
        env = self.envs[sid[0]]
        self.assertIn(hashlib.sha256(env.encode()).hexdigest(), out)
        self.assertIn('"size": %d' % len(env), out)
        self.assertIn(trace_id(TRACEPARENT), out)
        for needle in (env, base64.b64encode(env.encode()).decode(),
                       json.loads(env)["sealed"][:40], CANARY):
            self.assertNotIn(needle, out)
        out, _ = self.dlq("list", "--json")
        self.assertEqual(len(out.splitlines()), 6)
        for needle in (env, base64.b64encode(env.encode()).decode()[:60]):
            self.assertNotIn(needle, out)

        # ---- two dead letters of one input (pipeline.at_least_once can
        # write both): the input goes back once, both are marked; one
        # without source.partition is refused, never sent to partition 0 --
        # copies of sid[0]'s dead letter under a new share_id and input
        # offset ----
        dl = next(r for r in self.dead_letters()
                  if r["doc"].get("share_id") == sid[0]
                  and r["doc"]["format"] == "kyc-bridge-dead-letter/1")
        dup_sid = "rd-dup-" + uuid.uuid4().hex[:10]
        doc = dict(dl["doc"], share_id=dup_sid)
        doc["source"] = dict(doc["source"], offset=doc["source"]["offset"] + 10**6)
        nopart = dict(doc, source={k: v for k, v in doc["source"].items()
                                   if k != "partition"})
        w.kafka.produce(w.t["importer_dlq"],
                        [(dup_sid, json.dumps(doc)), (dup_sid, json.dumps(doc)),
                         (dup_sid, json.dumps(nopart))],
                        partition=dl["partition"])
        mine = sorted((r["partition"], r["offset"], "partition" in r["doc"]["source"])
                      for r in self.dead_letters()
                      if r["doc"].get("share_id") == dup_sid
                      and r["doc"]["format"] == "kyc-bridge-dead-letter/1")
        self.assertEqual([m[2] for m in mine], [True, True, False])
        dup_pos = ["%s/%d/%d" % (w.t["importer_dlq"], p, o) for p, o, _ in mine[:2]]
        out, _ = self.dlq("redrive", "--share-id", dup_sid, expect=3)
        self.assertIn("2 to redrive, 0 already redriven, 1 refused "
                      "(1 of them the same input as another", out)
        self.assertRegex(out, r"refused %d:%d share_id %s reason unknown_key: "
                         r"source partition missing" % (mine[2][0], mine[2][1],
                                                        dup_sid))
        again = [r for r in self.redriven_inputs()
                 if headers(r)["kb-redrive-of"] in dup_pos]
        self.assertEqual(len(again), 1)
        self.assertEqual(again[0]["partition"], dl["doc"]["source"]["partition"])
        self.assertEqual(len(self.redriven_inputs()), 5)
        named = sorted("%s/%d/%d" % (m["doc"]["of"]["topic"], m["doc"]["of"]["partition"],
                                     m["doc"]["of"]["offset"])
                       for m in self.dead_letters()
                       if m["doc"]["format"] == "kyc-bridge-dead-letter-redriven/1"
                       and m["doc"]["share_id"] == dup_sid)
        self.assertEqual(named, sorted(dup_pos))
        out, _ = self.dlq("redrive", "--share-id", dup_sid, expect=3)
        self.assertIn("0 to redrive, 2 already redriven, 1 refused", out)
        self.assertEqual(len(self.redriven_inputs()), 5)


if __name__ == "__main__":
    unittest.main()
