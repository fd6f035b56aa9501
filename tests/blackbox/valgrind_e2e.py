#!/usr/bin/env python3
"""valgrind_e2e.py -- the end-to-end pipeline test (test_pipeline.TestEndToEnd:
sandbox, issuer, two importers, KYC and KYB, a real broker) with every
kyc-bridge process run under valgrind memcheck.

Each process writes its own valgrind log. The test passes only if the
end-to-end test passed, a log exists for each process it started (the
sandbox, the issuer, the two importers at least), and every log reports
0 errors and no definitely or indirectly lost block. A daemon with an error
also exits 99 (--error-exitcode), which the end-to-end test itself refuses.

Environment: as test_pipeline.py (KB_BIN, KB_FORGE, KB_KAFKA_DIR,
KB_TEST_TMP). Needs valgrind (scripts/setup.sh --test installs it).
"""
import glob
import os
import re
import shlex
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    if not shutil.which("valgrind"):
        print("valgrind_e2e: valgrind is not installed (scripts/setup.sh --test)")
        return 1
    import kbharness as h
    logs = h.new_workdir("valgrind")
    # --fair-sched: valgrind runs one thread at a time; without it a busy
    # thread can starve librdkafka's heartbeats
    os.environ["KB_BIN_WRAPPER"] = shlex.join([
        "valgrind", "--error-exitcode=99", "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect",
        "--show-leak-kinds=definite,indirect", "--num-callers=30",
        "--fair-sched=yes", "--log-file=%s/vg-%%p.log" % logs])
    import test_pipeline
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(test_pipeline.TestEndToEnd)
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    problems = []
    if not res.wasSuccessful():
        problems.append("the end-to-end test failed under valgrind")
    found = {}
    for path in sorted(glob.glob(os.path.join(logs, "vg-*.log"))):
        with open(path, errors="replace") as fh:
            text = fh.read()
        m = re.search(r"Command: \S+ (\S+)", text)
        role = m.group(1) if m else "?"
        found[role] = found.get(role, 0) + 1
        errs = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        if not errs:
            problems.append("%s (%s): no ERROR SUMMARY (did it end?)" % (path, role))
        elif errs.group(1) != "0":
            problems.append("%s (%s): %s errors" % (path, role, errs.group(1)))
        for kind in ("definitely", "indirectly"):
            lost = re.search(r"%s lost: ([\d,]+) bytes" % kind, text)
            if lost and lost.group(1) != "0":
                problems.append("%s (%s): %s lost %s bytes" % (path, role, kind, lost.group(1)))
    print("valgrind_e2e: processes checked: %s" % found)
    for role, n in (("sandbox", 1), ("issuer", 1), ("importer", 2)):
        if found.get(role, 0) < n:
            problems.append("%d %s log(s), want at least %d" % (found.get(role, 0), role, n))
    for p in problems:
        print("valgrind_e2e: PROBLEM: %s" % p)
    if problems:
        print("valgrind_e2e: logs kept in %s" % logs)
        return 1
    shutil.rmtree(logs, ignore_errors=True)
    print("valgrind_e2e: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
