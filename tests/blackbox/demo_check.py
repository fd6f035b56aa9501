#!/usr/bin/env python3
"""demo_check.py -- runs `kyc-bridge demo` and checks what it says and did.

Embedded: exit status 0, the exact final line, the at-least-once notice, a
summary row per share. Real broker (--kafka-dir): the same, plus every share
of the run read back from the topics with read_committed: each exactly once,
downstream records for the finished sessions, dead letters with the two
expected reasons, no share token in any topic.
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbharness as h  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=7)
    ap.add_argument("--kafka-dir")
    ap.add_argument("--keep", action="store_true",
                    help="run with --keep: use the printed kcat command, then Ctrl-C")
    a = ap.parse_args()
    if a.keep:
        return check_keep(a.count)
    cmd = [h.kb_bin(), "demo", "--count", str(a.count)]
    k = None
    if a.kafka_dir:
        os.environ["KB_KAFKA_DIR"] = a.kafka_dir
        k = h.Kafka()
        cmd += ["--kafka", k.bootstrap]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=170)
    out = p.stdout.decode()
    sys.stdout.write(out)
    sys.stderr.write(p.stderr.decode())
    lines = out.strip().splitlines()
    want = "demo: %d requested, %d imported, 2 dead-lettered" % (a.count + 2, a.count)
    h.check(p.returncode == 0, "exit status %d" % p.returncode)
    h.check(lines[-1] == want, "last line %r, want %r" % (lines[-1], want))
    if a.kafka_dir:
        h.check("exactly-once" in out and "AT-LEAST-ONCE" not in out,
                "a real broker must say exactly-once, not at-least-once")
    else:
        h.check("AT-LEAST-ONCE" in out, "embedded mode must say it is at-least-once")
    rows = [l for l in lines if re.match(r"^[0-9a-f]{8} (user|business) ", l)]
    h.check(len(rows) == a.count + 2, "%d summary rows" % len(rows))
    h.check(sum("importer-dlq: expired" in r for r in rows) == 1,
            "want exactly one row dead-lettered by the importer as expired")
    h.check(sum("issuer-dlq: session_not_finished" in r for r in rows) == 1,
            "want exactly one row dead-lettered by the issuer as session_not_finished")
    for r in rows:
        # fixed-width columns: share(8) kind(8) source(11) partner(18) imported(10)
        src, partner, imp = r[18:29].strip(), r[30:48].strip(), r[49:59].strip()
        if "imported-sessions" not in r:
            continue
        if partner == "Y (trusts X)":
            h.check(src == imp, "trusting partner must keep the status: %s" % r)
        else:
            h.check(partner == "Z (re-reviews)", r)
            h.check(imp in ("In Review", "IN_REVIEW"), r)
    if k:
        m = re.search(r"sent to (\S+)\.share-requests;", out)
        h.check(m, "no topic prefix in the output")
        pfx = m.group(1)
        seen = {}
        for t in ("imported-sessions", "issuer-dlq", "importer-dlq"):
            for rec in k.consume_all(pfx + "." + t):
                d = json.loads(rec["value"])
                seen.setdefault(d["share_id"], []).append(t)
        h.check(len(seen) == a.count + 2, "%d shares in the topics" % len(seen))
        dup = {s: v for s, v in seen.items() if len(v) != 1}
        h.check(not dup, "not exactly once: %r" % dup)
        for t in ("share-requests", "share-tokens", "imported-sessions",
                  "issuer-dlq", "importer-dlq", "issuer-state", "importer-state"):
            for rec in k.consume_all(pfx + "." + t, committed_only=False):
                h.check(b"eyJ" not in rec["value"], "token in plaintext in " + t)
    print("demo_check: OK")


def check_keep(count):
    """--keep: the banner names the sandbox, topics and a kcat command that
    really shows the downstream records; SIGINT ends it cleanly."""
    import select
    import signal
    import time
    p = subprocess.Popen([h.kb_bin(), "demo", "--count", str(count), "--keep"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    deadline = time.monotonic() + 150
    while b"kcat -b" not in out or not out.endswith(b"\n") or b"share another" not in out:
        h.check(time.monotonic() < deadline, "no --keep banner: %r" % out[-2000:])
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            chunk = p.stdout.read1(65536)
            h.check(chunk, "demo exited early: %r" % out[-2000:])
            out += chunk
    text = out.decode()
    sys.stdout.write(text)
    m = re.search(r"^    (kcat -b .*)$", text, re.M)
    h.check(m, "no copy-paste kcat command")
    h.check(re.search(r"sandbox \(vendor API\): http://127\.0\.0\.1:\d+", text),
            "the banner does not name the sandbox's loopback URL")
    for t in ("share-requests", "share-tokens", "imported-sessions", "importer-dlq"):
        h.check("topic " + t in text, "topic %s not named" % t)
    # the printed command, made to stop at the end of the topic
    cmd = m.group(1).replace("kcat -b", "kcat -e -q -b", 1)
    got = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, timeout=60).stdout
    n = len([l for l in got.decode().splitlines() if l.strip()])
    h.check(n >= count, "kcat showed %d downstream records, want %d" % (n, count))
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate(timeout=60)
    lines = (text + rest.decode()).strip().splitlines()
    h.check(p.returncode == 0, "exit status %d: %s" % (p.returncode, err.decode()[-500:]))
    want = "demo: %d requested, %d imported, 2 dead-lettered" % (count + 2, count)
    h.check(lines[-1] == want, "last line %r, want %r" % (lines[-1], want))
    print("demo_check --keep: OK (%d records via the printed kcat command)" % n)


if __name__ == "__main__":
    main()
