"""test_dlq.py -- black-box tests of `kyc-bridge dlq list|show` against real
dead letters: an issuer on a real Kafka broker (fixture `kafka`) and the
real sandbox is fed bad share requests, then the command reads its
dead-letter topic (Python 3 stdlib unittest; see dlq.cmake).

  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \
  python3 -m unittest -v test_dlq                  (from tests/blackbox)
"""
import json
import os
import re
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, wait_stable  # noqa: E402

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
ROW = re.compile(r"^(\d+):(\d+)\s+(%s)\s+(\S+)\s+(\S+)\s+(\S+)$" % ISO)


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
            self.assertEqual(d["dead_letter"], json.loads(r["value"]))
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
        self.assertNotIn("redrive", out)
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
        self.assertNotIn(b"redrive", out)


if __name__ == "__main__":
    unittest.main()
