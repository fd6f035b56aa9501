"""test_failpoints.py -- failpoints (docs/failpoints.md) seen from outside.

TestReleaseBuild: a KB_BUILD_TESTS=OFF build holds no failpoint (names,
environment variable, symbols); the test build holds them all.
TestIssuerCommitCrash: the issuer killed by txn.before_commit=crash@1 on a
real broker, then restarted without failpoints: each request published once.

Run from tests/blackbox (CTest does, see failpoints.cmake):
  KB_BIN=build/kyc-bridge KB_SOURCE_DIR=. KB_RELEASE_DIR=/tmp/rel \
    python3 -m unittest test_failpoints.TestReleaseBuild
  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \
    python3 -m unittest test_failpoints.TestIssuerCommitCrash
"""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, WorldsCase  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPOT_RE = re.compile(r'KB_FAILPOINT(?:_BEGIN|_END)?\("([^"]+)"\)')
# what only the failpoint code says: the variables and two log texts
TEXTS = ("KB_FAILPOINTS", "KB_FAILPOINTS_SEED", "failpoints armed", "fired: crash")


def spot_names(src):
    """Every failpoint name at a spot in bridge/ (failpoint.[ch] excluded:
    examples)."""
    names = set()
    for d, _, files in os.walk(os.path.join(src, "bridge")):
        for f in files:
            if f.endswith(".c") and f != "failpoint.c":
                with open(os.path.join(d, f), encoding="utf-8") as fh:
                    names.update(SPOT_RE.findall(fh.read()))
    return sorted(names)


def findings(path, needles):
    """The needles found in the bytes of @path (any section, debug info
    included) and the kb_failpoint* symbols nm lists, defined or referenced
    (a spot that did not expand to nothing calls kb_failpoint_hit)."""
    with open(path, "rb") as f:
        data = f.read()
    found = ["%r in the bytes" % n for n in needles if n.encode() in data]
    r = subprocess.run(["nm", "-P", "-a", path], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=60)
    for line in r.stdout.decode(errors="replace").splitlines():
        parts = line.split()
        # symbol lines have a name and a type; an archive member's header
        # ("lib.a[failpoint.c.o]:") has one field. (The release archive
        # does hold failpoint.c.o, compiled to nothing: its file symbol is
        # "failpoint.c", hence the prefix.)
        if len(parts) >= 2 and parts[0].startswith("kb_failpoint"):
            found.append("symbol %s" % parts[0])
    return found


class TestReleaseBuild(unittest.TestCase):
    def test_release_build_has_no_failpoint(self):
        src = os.environ.get("KB_SOURCE_DIR") or ROOT
        rel = os.environ["KB_RELEASE_DIR"]
        cmake = os.environ.get("KB_CMAKE") or "cmake"
        names = spot_names(src)
        # the issue's spots, at least: the scan found the sources' spots
        for n in ("issuer.after_mint", "importer.after_import", "txn.before_commit",
                  "txn.during_commit", "txn.after_produce", "txn.before_send_offsets",
                  "txn.after_send_offsets"):
            self.assertIn(n, names)
        needles = names + list(TEXTS)

        # the control: this (test) build has every one of them
        test_bin = h.kb_bin()
        missing = set(needles) - {n for n in needles
                                  if n.encode() in open(test_bin, "rb").read()}
        self.assertEqual(missing, set(), "test build %s lacks them" % test_bin)
        self.assertTrue(any(f.startswith("symbol kb_failpoint_hit")
                            for f in findings(test_bin, [])),
                        "no kb_failpoint_hit symbol in the test build")

        cfg = [cmake, "-S", src, "-B", rel, "-DKB_BUILD_TESTS=OFF",
               "-DKB_WERROR=ON", "-DKB_SANITIZE=OFF"]
        if os.environ.get("KB_CMAKE_GENERATOR") and \
                not os.path.exists(os.path.join(rel, "CMakeCache.txt")):
            cfg += ["-G", os.environ["KB_CMAKE_GENERATOR"]]
        if os.environ.get("KB_CC"):
            cfg += ["-DCMAKE_C_COMPILER=" + os.environ["KB_CC"]]
        if os.environ.get("KB_BUILD_TYPE"):
            cfg += ["-DCMAKE_BUILD_TYPE=" + os.environ["KB_BUILD_TYPE"]]
        t0 = time.monotonic()
        for cmd, tmo in ((cfg, 300),
                         ([cmake, "--build", rel, "-j2", "--target", "kyc-bridge"], 800)):
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=tmo)
            self.assertEqual(r.returncode, 0, "%s failed:\n%s" % (
                " ".join(cmd), r.stdout.decode(errors="replace")[-4000:]))
        print("[release build: %.0f s]" % (time.monotonic() - t0), file=sys.stderr)
        with open(os.path.join(rel, "CMakeCache.txt")) as f:
            self.assertIn("KB_BUILD_TESTS:BOOL=OFF", f.read())

        targets = [os.path.join(rel, "kyc-bridge")] + [
            os.path.join(rel, "bridge", part, "libkb_%s.a" % part)
            for part in ("common", "kafka", "daemons")]
        problems = []
        for t in targets:
            self.assertTrue(os.path.exists(t), t)
            problems += ["%s: %s" % (t, f) for f in findings(t, needles)]
        self.assertEqual(problems, [], "failpoints in the release build")
        # and the release binary is a working one
        r = subprocess.run([targets[0], "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)


def share_ids(records):
    out = []
    for r in records:
        m = re.search(r"(?:^|,)kb-share-id=([^,]*)", r["headers"])
        out.append(m.group(1) if m else None)
    return out


class TestIssuerCommitCrash(WorldsCase, unittest.TestCase):
    """txn.before_commit=crash@1: the issuer dies by SIGKILL at its first
    commit; restarted without failpoints, it publishes every request once."""

    def setUp(self):
        super().setUp()
        self.w = World("fp", request_partitions=2, token_partitions=2)
        self.worlds.append(self.w)

    def test_before_commit_crash_then_exactly_once(self):
        w = self.w
        X, Y = w.app("x"), w.app("y")
        # the broker's default transaction.timeout.ms (60 s) on purpose: the
        # restarted issuer's init_transactions must abort the transaction
        # the killed run left open (on the state topic too) at once, not
        # leave its read_committed state load waiting for the broker to
        conf = w.issuer_conf(X, [Y], extra={"pipeline.commit_interval_ms": 200})

        # a bad spec: a start-up error that says why, before any Kafka work
        rc, _, err = h.run_cli(["issuer", "-c", conf], timeout=60,
                               env={"KB_FAILPOINTS": "txn.before_commit=crsh"})
        self.assertEqual(rc, 2, err)
        self.assertIn('issuer: KB_FAILPOINTS: "txn.before_commit=crsh": unknown action',
                      err)

        reqs = [h.share_request(w.sb.finished_session(X.key, X.wf[k], st), Y.id)
                for k, st in (("kyc", "Approved"), ("kyb", "DECLINED"),
                              ("kyc", "In Review"))]
        want = sorted(r["share_id"] for r in reqs)
        w.produce_requests(reqs)
        d = h.Daemon(w.wd, "issuer", conf, env={"KB_FAILPOINTS": "txn.before_commit=crash@1",
                                                "KB_FAILPOINTS_SEED": "1"})
        w.daemons.append(d)
        self.assertEqual(d.wait(120), -signal.SIGKILL, d.logtext()[-3000:])
        log = d.logtext()
        self.assertIn("failpoints armed (test build), KB_FAILPOINTS_SEED=1: "
                      "txn.before_commit=crash@1", log)
        self.assertEqual(re.findall(r"failpoint (\S+) fired: crash \(hit (\d+)\)", log),
                         [("txn.before_commit", "1")], log[-3000:])
        # killed with the transaction open: nothing committed, but what it
        # produced is at the broker (so the crash came after the produce)
        tokens = w.t["tokens"]
        self.assertEqual(w.kafka.consume_all(tokens), [])
        first = share_ids(w.kafka.consume_all(tokens, committed_only=False))
        self.assertGreaterEqual(len(first), 1)
        self.assertTrue(set(first) <= set(want), first)

        # restart without failpoints: every request published once
        del d.env["KB_FAILPOINTS"]
        t0 = time.monotonic()
        d.start()
        h.wait_for(lambda: len(w.kafka.consume_all(tokens)) >= len(want), 120,
                   "the envelopes committed")
        took = time.monotonic() - t0
        # well under the 60 s a wait for the broker's timeout would take
        self.assertLess(took, 30, "the restart took %.1f s to commit: did it wait "
                        "for the killed run's transaction to time out?" % took)
        time.sleep(2)  # a late duplicate would show up now
        committed = share_ids(w.kafka.consume_all(tokens))
        self.assertEqual(sorted(committed), want)
        self.assertEqual(w.kafka.consume_all(w.t["issuer_dlq"]), [])
        # the aborted first attempt is still in the log, next to the rest
        everything = share_ids(w.kafka.consume_all(tokens, committed_only=False))
        self.assertEqual(sorted(everything), sorted(first + committed))
        self.assertEqual(d.stop(), 0)
        after = d.logtext().split("==== start 2 of ")[-1]
        self.assertNotIn("failpoints armed", after)
        self.assertNotRegex(after, r"failpoint \S+ (not )?fired")


if __name__ == "__main__":
    unittest.main()


# the issuer's transaction.timeout.ms in the watchdog tests: short, so
# that a stuck or timed-out call shows within seconds
TXN_MS = 6000
GRACE_MS = 15000   # KB_WATCHDOG_TXN_GRACE_MS (bridge/kafka/watchdog.h)


class TestWatchdog(WorldsCase, unittest.TestCase):
    """A transactional call that does not return: txn.before_commit=delay
    (30 s)@1 holds the first commit past its watchdog limit (the commit's
    timeout, kafka.transaction.timeout.ms, plus 15 s: the watchdog is armed
    before that failpoint). The watchdog ends the issuer with exit status 1
    and a line naming the call, at the limit and not before; restarted, the
    issuer publishes each request exactly once."""

    def setUp(self):
        super().setUp()
        self.w = World("wd", request_partitions=2, token_partitions=2)
        self.worlds.append(self.w)

    def test_stuck_commit_ends_the_process(self):
        w = self.w
        X, Y = w.app("x"), w.app("y")
        conf = w.issuer_conf(X, [Y], extra={"pipeline.commit_interval_ms": 200,
                                            "kafka.transaction.timeout.ms": TXN_MS})
        reqs = [h.share_request(w.sb.finished_session(X.key, X.wf[k], st), Y.id)
                for k, st in (("kyc", "Approved"), ("kyb", "DECLINED"))]
        want = sorted(r["share_id"] for r in reqs)
        w.produce_requests(reqs)
        d = h.Daemon(w.wd, "issuer", conf, env={"KB_FAILPOINTS": "txn.before_commit=delay(30000)@1",
                                                "KB_FAILPOINTS_SEED": "1"})
        w.daemons.append(d)
        h.wait_for(lambda: "failpoint txn.before_commit fired" in d.logtext(), 120,
                   "the first commit's failpoint")
        fired = time.monotonic()
        self.assertEqual(d.wait(TXN_MS / 1000 + GRACE_MS / 1000 + 20), 1,
                         d.logtext()[-3000:])
        took = time.monotonic() - fired
        log = d.logtext()
        self.assertIn("watchdog: pipeline: commit_transaction has not returned within "
                      "%d ms" % (TXN_MS + GRACE_MS), log)
        # at the limit, not before it (the failpoint's delay is longer)
        self.assertGreaterEqual(took, (TXN_MS + GRACE_MS) / 1000 - 1, log[-2000:])
        tokens = w.t["tokens"]
        self.assertEqual(w.kafka.consume_all(tokens), [])

        # restarted without failpoints: every request published once
        del d.env["KB_FAILPOINTS"]
        d.start()
        h.wait_for(lambda: len(w.kafka.consume_all(tokens)) >= len(want), 120,
                   "the envelopes committed")
        time.sleep(2)  # a late duplicate would show up now
        self.assertEqual(sorted(share_ids(w.kafka.consume_all(tokens))), want)
        self.assertEqual(w.kafka.consume_all(w.t["issuer_dlq"]), [])
        self.assertEqual(d.stop(), 0)
        self.assertNotIn("watchdog:", d.logtext().split("==== start 2 of ")[-1])


class TestBrokerFreezeMidTransaction(WorldsCase, unittest.TestCase):
    """The broker stops answering (SIGSTOP) while the issuer's transaction
    is open (txn.after_produce=delay(3000)@1 holds it there): each
    transactional call returns within its timeout -- the issuer fails with
    a Kafka error naming the call, exit status 1, within
    transaction.timeout.ms and the watchdog's grace, the watchdog never
    firing -- and once the broker answers again a restart publishes each
    request exactly once. A broker of the test's own."""

    def setUp(self):
        super().setUp()
        self.pb = self.private_broker("freeze-broker")
        self.w = World("freeze", kafka=self.pb.kafka(), request_partitions=2,
                       token_partitions=2)
        self.worlds.append(self.w)

    def test_calls_return_after_broker_loss(self):
        w = self.w
        X, Y = w.app("x"), w.app("y")
        conf = w.issuer_conf(X, [Y], extra={"pipeline.commit_interval_ms": 200,
                                            "kafka.transaction.timeout.ms": TXN_MS,
                                            "kafka.reconnect.backoff.max.ms": 1000})
        reqs = [h.share_request(w.sb.finished_session(X.key, X.wf[k], st), Y.id)
                for k, st in (("kyc", "Approved"), ("kyb", "APPROVED"))]
        want = sorted(r["share_id"] for r in reqs)
        w.produce_requests(reqs)
        d = h.Daemon(w.wd, "issuer", conf, env={"KB_FAILPOINTS": "txn.after_produce=delay(3000)@1",
                                                "KB_FAILPOINTS_SEED": "1"})
        w.daemons.append(d)
        h.wait_for(lambda: "failpoint txn.after_produce fired" in d.logtext(), 120,
                   "the transaction open")
        self.pb.pause()
        frozen = time.monotonic()
        rc = d.wait(TXN_MS / 1000 * 2 + GRACE_MS / 1000 + 30)
        took = time.monotonic() - frozen
        log = d.logtext()
        self.assertEqual(rc, 1, log[-3000:])
        self.assertNotIn("watchdog:", log)
        self.assertRegex(log, r"(send_offsets_to_transaction|abort_transaction|"
                         r"commit_transaction)[^\n]*(Timed out|timed out|no answer)",
                         log[-3000:])
        print("[issuer failed %.1f s after the broker froze]" % took, file=sys.stderr)

        # the broker answers again: a restart publishes each request once
        self.pb.resume()
        del d.env["KB_FAILPOINTS"]
        d.start()
        tokens = w.t["tokens"]
        h.wait_for(lambda: len(w.kafka.consume_all(tokens)) >= len(want), 180,
                   "the envelopes committed")
        time.sleep(2)
        self.assertEqual(sorted(share_ids(w.kafka.consume_all(tokens))), want)
        self.assertEqual(w.kafka.consume_all(w.t["issuer_dlq"]), [])
        self.assertEqual(d.stop(), 0)
