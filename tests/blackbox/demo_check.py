#!/usr/bin/env python3
"""demo_check.py -- runs `kyc-bridge demo` and checks what it says and did.

Embedded: exit status 0, the exact last two lines, the at-least-once notice,
nothing but the demo's own lines on stdout, a summary row per share with the
rule's share (step 2: "rule approved-kyc", arrived at Y) among them, and the
status update of step 3 (Z's In Review import approved: In Review ->
Approved). Real broker (--kafka-dir): refused (status 2) as 0.0.0.0:PORT, no
loopback address, in plaintext; then run there with --kafka-allow-plaintext:
the same checks as embedded, plus every share of the run
read back from the topics with read_committed: each exactly once, the rule's
share request written by the issuer's intake, downstream records for the
finished sessions, dead letters with the two expected reasons, exactly one
session-status record (the approved import, Z's summary shape), and no
share token or webhook secret in any topic or in the demo's output.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbharness as h  # noqa: E402

ROW = re.compile(r"^([0-9a-f]{8}|wh-[0-9a-f]{5}) (user|business) ")
UPD = re.compile(r"^  session ([0-9a-f]{8}) \(Z's import of share ([0-9a-f]{8}), "
                 r"(z-customer-\d{4})\): (.+) -> (.+)$")
COLS = ("share", "kind", "source", "requested by", "partner", "imported",
        "vendor_data", "where")


def last_lines(count):
    return ["demo: 1 status update(s) published",
            "demo: %d requested, %d imported, 2 dead-lettered" % (count + 3, count + 1)]


def table(lines):
    """The summary rows as dicts, cut at the header's column starts."""
    hdr = [l for l in lines if l.startswith("share    kind")]
    h.check(len(hdr) == 1, "want one table header, got %r" % hdr)
    at = [hdr[0].index(c) for c in COLS] + [None]
    rows = []
    for l in lines:
        if ROW.match(l):
            rows.append({c: l[at[i]:at[i + 1]].strip() for i, c in enumerate(COLS)})
    return rows


def check_output(out, count):
    """What every run prints; returns (rows, the status update match)."""
    lines = out.strip().splitlines()
    h.check(lines[-2:] == last_lines(count),
            "last lines %r, want %r" % (lines[-2:], last_lines(count)))
    # only the demo's own lines: nothing else in the process writes to stdout
    stray = [l for l in lines if l.lstrip().startswith("{") or '"result"' in l]
    h.check(not stray, "stray output on stdout: %r" % stray)
    for step in ("[1/3] share requests", "[2/3] a sharing rule", "[3/3] a status update"):
        h.check(("demo: " + step) in out, "no step line %r" % step)
    rows = table(lines)
    h.check(len(rows) == count + 3, "%d summary rows, want %d" % (len(rows), count + 3))
    h.check(sum("importer-dlq: expired" in r["where"] for r in rows) == 1,
            "want exactly one row dead-lettered by the importer as expired")
    h.check(sum("issuer-dlq: session_not_finished" in r["where"] for r in rows) == 1,
            "want exactly one row dead-lettered by the issuer as session_not_finished")
    for r in rows:
        if r["where"] != "imported-sessions":
            continue
        if r["partner"] == "Y (trusts X)":
            h.check(r["source"] == r["imported"],
                    "trusting partner must keep the status: %r" % r)
        else:
            h.check(r["partner"] == "Z (re-reviews)", repr(r))
            h.check(r["imported"] in ("In Review", "IN_REVIEW"), repr(r))
    # step 2: one share requested by the rule, the rest by share requests
    by_rule = [r for r in rows if r["requested by"] == "rule approved-kyc"]
    h.check(len(by_rule) == 1, "want one share by the rule, got %r" % by_rule)
    h.check(sum(r["requested by"] == "share request" for r in rows) == count + 2,
            "every other share is requested by a share request")
    rr = by_rule[0]
    h.check(rr["share"].startswith("wh-") and rr["kind"] == "user" and
            rr["source"] == "Approved" and rr["partner"] == "Y (trusts X)" and
            rr["imported"] == "Approved" and rr["where"] == "imported-sessions" and
            re.match(r"^y-x-customer-\d{4}$", rr["vendor_data"]),
            "the rule's share must arrive at Y as Approved: %r" % rr)
    h.check(re.search(r"^demo:   share wh-[0-9a-f]{5} arrived at Y: imported Approved",
                      out, re.M), "step 2 does not say the rule's share arrived")
    # step 3: exactly one status update, of a KYC import of Z's (In Review)
    upd = [UPD.match(l) for l in lines if l.startswith("  session ")]
    h.check(len(upd) == 1 and upd[0], "want one status update line, got %r" % upd)
    m = upd[0]
    h.check(m.group(4) == "In Review" and m.group(5) == "Approved",
            "status update %r, want In Review -> Approved" % m.group(0))
    src = [r for r in rows if r["share"] == m.group(2)]
    h.check(len(src) == 1 and src[0]["partner"] == "Z (re-reviews)" and
            src[0]["kind"] == "user" and src[0]["imported"] == "In Review" and
            src[0]["vendor_data"] == m.group(3),
            "the approved session must be one of Z's In Review imports: %r" % src)
    h.check("demo:   published on session-status: %s In Review -> Approved"
            % m.group(1) in out, "step 3 does not show the status update")
    return rows, m


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
        # 0.0.0.0 reaches this machine, but is no loopback address: the
        # demo refuses it in plaintext (status 2, before any work) unless
        # --kafka-allow-plaintext passes kafka_allow_plaintext on to the
        # daemons, which would refuse it too
        port = k.bootstrap.rsplit(":", 1)[1]
        anyaddr = "0.0.0.0:" + port
        r = subprocess.run(cmd + ["--kafka", anyaddr], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        h.check(r.returncode == 2 and r.stdout == b"" and
                ("demo: --kafka: broker %s is not loopback and would be reached in "
                 "plaintext" % anyaddr).encode() in r.stderr and
                b"--kafka-allow-plaintext" in r.stderr,
                "--kafka %s without --kafka-allow-plaintext: status %d, %r"
                % (anyaddr, r.returncode, r.stderr[-500:]))
        cmd += ["--kafka", anyaddr, "--kafka-allow-plaintext"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=170)
    out, err = p.stdout.decode(), p.stderr.decode()
    sys.stdout.write(out)
    sys.stderr.write(err)
    h.check(p.returncode == 0, "exit status %d" % p.returncode)
    rows, upd = check_output(out, a.count)
    if a.kafka_dir:
        h.check("exactly-once" in out and "AT-LEAST-ONCE" not in out,
                "a real broker must say exactly-once, not at-least-once")
    else:
        h.check("AT-LEAST-ONCE" in out, "embedded mode must say it is at-least-once")
    wd = re.search(r"^demo: kyc-bridge \S+ -- work dir (\S+)$", out, re.M).group(1)
    secrets = []
    for f in ("x.webhook-secret", "z.webhook-secret"):
        with open(os.path.join(wd, f), "rb") as fp:
            secrets.append(fp.read().strip())
        h.check(len(secrets[-1]) >= 16, "%s: no secret" % f)
        h.check(os.stat(os.path.join(wd, f)).st_mode & 0o077 == 0,
                "%s readable by others" % f)
        h.check(secrets[-1] not in p.stdout and secrets[-1] not in p.stderr,
                "a webhook secret in the demo's output")
    if k:
        m = re.search(r"(\S+)\.share-requests; waiting", out)
        h.check(m, "no topic prefix in the output")
        pfx = m.group(1)
        seen, imported = {}, {}
        for t in ("imported-sessions", "issuer-dlq", "importer-dlq"):
            for rec in k.consume_all(pfx + "." + t):
                d = json.loads(rec["value"])
                seen.setdefault(d["share_id"], []).append(t)
                if t == "imported-sessions":
                    imported[d["share_id"]] = d
        h.check(len(seen) == a.count + 3, "%d shares in the topics" % len(seen))
        dup = {s: v for s, v in seen.items() if len(v) != 1}
        h.check(not dup, "not exactly once: %r" % dup)
        # the rule's share: requested by the issuer's intake, not by the demo
        reqs = [json.loads(r["value"]) for r in k.consume_all(pfx + ".share-requests")]
        wh = [r for r in reqs if r["share_id"].startswith("wh-")]
        h.check(len(wh) == 1 and len(reqs) == a.count + 3,
                "want %d share requests, one of them the rule's: %r"
                % (a.count + 3, [r["share_id"] for r in reqs]))
        h.check(re.fullmatch(r"wh-[0-9a-f]{32}", wh[0]["share_id"]), repr(wh[0]))
        h.check(seen.get(wh[0]["share_id"]) == ["imported-sessions"] and
                imported[wh[0]["share_id"]]["status"] == "Approved",
                "the rule's share must be imported once, Approved")
        # the status update: one record, the approved import's
        st = [json.loads(r["value"]) for r in k.consume_all(pfx + ".session-status")]
        h.check(len(st) == 1, "want one session-status record, got %d" % len(st))
        st = st[0]
        src = [d for d in imported.values() if d["session_id"] == st["session_id"]]
        h.check(st["format"] == "kyc-bridge-session-status/1" and
                st["old_status"] == "In Review" and st["new_status"] == "Approved" and
                st["record"] == "summary" and re.fullmatch(r"ev-[0-9a-f]{32}", st["event_id"]) and
                st["session_id"].startswith(upd.group(1)) and
                st["share_id"].startswith(upd.group(2)) and len(src) == 1 and
                src[0]["share_id"] == st["share_id"] and
                st["vendor_data"] == src[0]["vendor_data"],
                "status update record: %r" % st)
        for t in ("share-requests", "share-tokens", "imported-sessions",
                  "issuer-dlq", "importer-dlq", "issuer-state", "importer-state",
                  "session-status"):
            for rec in k.consume_all(pfx + "." + t, committed_only=False):
                # an envelope's "sealed" member is random base64url and
                # can hold "eyJ" by chance: look at everything else, and
                # for JWT shapes everywhere
                h.check(b"eyJ" not in h.strip_sealed(rec["value"]) and
                        not h.find_tokens(rec["value"]),
                        "token in plaintext in " + t)
                for sec in secrets:
                    h.check(sec not in rec["value"] and
                            sec.decode() not in rec["key"] + rec["headers"],
                            "webhook secret in " + t)
    shutil.rmtree(wd, ignore_errors=True)
    print("demo_check: OK")


def check_keep(count):
    """--keep: the banner names the sandbox, the webhook intakes, the topics,
    a kcat command that really shows the downstream records, and a curl
    command that really decides another of Z's imports (a second status
    update); SIGINT ends it cleanly."""
    p = subprocess.Popen([h.kb_bin(), "demo", "--count", str(count), "--keep"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        keep_session(p, count)
    finally:
        if p.poll() is None:  # a failed check: do not leave it running
            p.kill()
            p.wait()


def keep_session(p, count):
    import select
    import signal
    import time
    out = b""
    deadline = time.monotonic() + 150
    while b"curl -X PATCH" not in out or not out.endswith(b"\n") or \
            b"new_status" not in out.split(b"curl -X PATCH")[-1]:
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
    h.check(re.search(r"issuer \(X's webhooks\) http://127\.0\.0\.1:\d+/webhooks/vendor\n"
                      r" +importer Z \(Z's webhooks\) http://127\.0\.0\.1:\d+/webhooks/vendor",
                      text), "the banner does not name both webhook intakes")
    topics = dict(re.findall(r"^  topic (\S+) +(\S+)$", text, re.M))
    for t in ("share-requests", "share-tokens", "imported-sessions", "importer-dlq",
              "session-status"):
        h.check(t in topics, "topic %s not named" % t)
    # the printed command, made to stop at the end of the topic
    kcat = m.group(1).replace("kcat -b", "kcat -e -q -b", 1)
    got = subprocess.run(kcat, shell=True, stdout=subprocess.PIPE, timeout=60).stdout
    recs = [json.loads(l.split(" ", 1)[1]) for l in got.decode().splitlines() if l.strip()]
    h.check(len(recs) >= count + 1,
            "kcat showed %d downstream records, want %d" % (len(recs), count + 1))
    # the printed curl command, on another of Z's In Review imports
    approved = re.search(r"its In Review import ([0-9a-f]{8})", text).group(1)
    other = [r["session_id"] for r in recs
             if r["status"] == "In Review" and r["vendor_data"].startswith("z-") and
             not r["session_id"].startswith(approved)]
    h.check(other, "no other In Review import of Z's to decide")
    curl = re.search(r"^    (curl -X PATCH .*\\)\n(.*)$", text, re.M)
    h.check(curl, "no copy-paste curl command")
    cmd = (curl.group(1)[:-1] + curl.group(2)).replace("<session_id>", other[0])
    r = subprocess.run(cmd + " -sS -o /dev/null -w '%{http_code}'", shell=True,
                       stdout=subprocess.PIPE, timeout=60)
    h.check(r.stdout == b"200", "the printed curl command: HTTP %r" % r.stdout)
    st_kcat = "kcat -e -q -b %s -C -t %s -f '%%s\\n'" % (
        re.search(r"kcat -b (\S+)", m.group(1)).group(1), topics["session-status"])

    def status_records():
        got = subprocess.run(st_kcat, shell=True, stdout=subprocess.PIPE,
                             timeout=60).stdout.decode()
        return [json.loads(l) for l in got.splitlines() if l.strip()]

    h.wait_for(lambda: len(status_records()) >= 2, 60, "a second status update",
               interval=0.5)
    st = status_records()
    h.check(any(u["session_id"] == other[0] and u["old_status"] == "In Review" and
                u["new_status"] == "Declined" for u in st),
            "the decision of the printed curl command did not arrive: %r" % st)
    time.sleep(2)  # the demo's own consumer reads it too
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate(timeout=60)
    full = text + rest.decode()
    sys.stdout.write(rest.decode())
    lines = full.strip().splitlines()
    h.check(p.returncode == 0, "exit status %d: %s" % (p.returncode, err.decode()[-500:]))
    want = ["demo: 2 status update(s) published"] + last_lines(count)[1:]
    h.check(lines[-2:] == want, "last lines %r, want %r" % (lines[-2:], want))
    wd = re.search(r"^demo: kyc-bridge \S+ -- work dir (\S+)$", full, re.M).group(1)
    shutil.rmtree(wd, ignore_errors=True)
    print("demo_check --keep: OK (%d records via the printed kcat command, "
          "a decision via the printed curl command)" % len(recs))


if __name__ == "__main__":
    main()
