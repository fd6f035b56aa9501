#!/usr/bin/env python3
"""state.py -- what the remembered share_ids cost as the state grows (issue 13):
start-up until ready, one assignment catch-up, and memory per share_id, for
each daemon, with N share_ids in the window and 10,000 partners configured.

Not a test: it prints figures and asserts nothing about speed (it does check
that each daemon says it took all N share_ids).

For each daemon and each N it fills a fresh state topic with N state records
within the window (one kcat run from a generated file; the issuer's records
as the issuer writes them, the importer's with the members its status index
reads), starts the daemon on it and reads from its log:

  load_ms      the start-up read of the state topic ("state: read N new
               record(s) in X ms")
  ready_s      process start -> the catch-up of its first assignment is done
               (the "state: read" line after "pipeline: assigned")
  catchup_ms   that first assignment's catch-up (X of its line)
  catchup_new_ms  a later assignment's catch-up, after 1,000 more records
               were written to the topic and a second member joined the
               group (the rebalance assigns the first one again)
  rss_bytes    VmRSS once ready; peak_rss_bytes VmHWM
  cpu_s        CPU time (user + system, all threads) the daemon used until
               then
  bytes_per_share_id  (rss - rss of the same daemon on an empty state topic
               with the same partners) / N
  marginal_bytes_per_share_id  (rss - rss at the next smaller N) / the
               difference in N: what one more share_id costs, without the
               fixed costs a load leaves (allocator, reader buffers)

The importer is measured twice: "importer" on records with the status
members (what it writes: the share_ids and the status index of imported
sessions), "importer-plain" on the same records without them (the index
does not track those; records written before status updates existed look
so): the first minus the second, per share_id, is the status index's cost
per session.

The 10,000 partners' public key files hold random 32-byte public keys with
their derived key ids (docs/keys.md): loading checks the id, not the point,
and no partner ever sends anything here.

  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<dir of scripts/kafka.sh start> \\
    python3 bench/state.py [--sizes 10000,100000,1000000] [--json FILE]
"""
import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "blackbox"))

import kbharness as h  # noqa: E402
from e2e import bench_world, cpu_seconds, log_time  # noqa: E402

PARTNERS = 10000
ISSUER_WINDOW_S = 86400         # issuer.dedup_window_s default
IMPORTER_WINDOW_S = 25 * 3600   # KB_IMPORTER_STATE_WINDOW_S
KEYID_KEY = b"kyc-bridge key id v1"
STATE_RX = re.compile(r"^(\S+) \S+ info +\S+: state: read (\d+) new record\(s\) in "
                      r"(\d+) ms, (\d+) share_id\(s\) within the window added, (\d+) known"
                      r" \(table (\d+) bytes\)",
                      re.M)
ASSIGNED_RX = re.compile(r"^(\S+) \S+ info +pipeline: assigned (\d+) partition", re.M)


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _key_id(kind, pk):
    return hashlib.blake2b(bytes([kind]) + pk, digest_size=32,
                           key=KEYID_KEY).hexdigest()[:16]


def make_partners(wd, n):
    """@n public key bundles (random keys) in @wd/partners; returns
    [(section, application_id, path)]."""
    d = os.path.join(wd, "partners")
    os.makedirs(d, exist_ok=True)
    out = []
    for i in range(n):
        keys = []
        for kind, name in ((1, "x25519"), (2, "ed25519")):
            pk = os.urandom(32)
            keys.append({"type": name, "key_id": _key_id(kind, pk), "public_key": _b64(pk)})
        path = os.path.join(d, "p%05d.pub.json" % i)
        with open(path, "w") as f:
            json.dump({"format": "kyc-bridge-public-keys/1", "keys": keys}, f)
        out.append(("p%05d" % i, str(uuid.uuid4()), path))
    return out


def read_conf(path):
    c = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                c[k.strip()] = v.strip()
    return c


def with_partners(conf, partners, importer, workflow):
    c = dict(conf)
    for sec, app, path in partners:
        c["partner.%s.application_id" % sec] = app
        c["partner.%s.keys" % sec] = path
        if importer:
            c["partner.%s.workflow_id.user" % sec] = workflow
    return c


def state_records(kind, n, partners, path):
    """Writes @n state records (key TAB value, a line each) to @path."""
    now = int(time.time())
    with open(path, "w") as f:
        for i in range(n):
            sid = str(uuid.uuid4())
            if kind == "issuer":
                at = now - (i % (ISSUER_WINDOW_S // 2))
                rec = '{"share_id":"%s","outcome":"published","at":%d,"until":%d}' % (
                    sid, at, at + ISSUER_WINDOW_S)
            else:
                at = now - (i % (IMPORTER_WINDOW_S // 2))
                rec = ('{"share_id":"%s","outcome":"imported","at":%d,"until":%d,'
                       '"ref":"%s"' % (sid, at, at + IMPORTER_WINDOW_S, uuid.uuid4()))
                if kind == "importer":
                    rec += (',"issuer_application_id":"%s","shared_from_session":"%s",'
                            '"session_kind":"user","vendor_data":"bench-%d",'
                            '"record":"summary","status":"Approved","status_at":%d,'
                            '"status_seq":2' % (partners[i % len(partners)][1],
                                                 uuid.uuid4(), i, at))
                rec += "}"
            f.write("%s\t%s\n" % (sid, rec))


def fill(kafka, topic, path):
    subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", topic, "-K", "\t",
                    "-l", "-X", "linger.ms=50", "-X", "batch.num.messages=10000",
                    "-X", "queue.buffering.max.messages=1000000",
                    "-X", "enable.idempotence=true", path],
                   check=True, timeout=900)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def state_lines(d):
    """(time, records, ms, added, known, table bytes) of each "state: read" line of the
    daemon's current run, and the times of its "assigned" lines."""
    t = d.logtext().split("==== start %d of " % d.starts)[-1]
    st = [(log_time(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)),
           int(m.group(5)), int(m.group(6))) for m in STATE_RX.finditer(t)]
    asg = [(log_time(m.group(1)), int(m.group(2))) for m in ASSIGNED_RX.finditer(t)]
    return st, asg


def run_daemon(w, role, conf, name, n, timeout):
    """Starts @role on @conf; returns its figures once its first assignment's
    catch-up is done, and the daemon (running)."""
    t0 = time.time()
    d = w.daemon(role, conf, name)

    def ready():
        if not d.alive():
            raise AssertionError("%s exited:\n%s" % (name, d.logtext()[-3000:]))
        st, asg = state_lines(d)
        first = [a[0] for a in asg if a[1] > 0]
        after = [s for s in st if first and s[0] >= first[0]]
        return (st, asg, after) if st and after else None
    st, asg, after = h.wait_for(ready, timeout, "%s ready" % name, 0.02)
    time.sleep(1.0)   # let the allocator and the fetcher settle
    ps = proc_status(d.pid)
    cpu = cpu_seconds(d.pid)
    first, catch = st[0], after[0]
    h.check(first[4] == n, "%s: %d share_id(s) known, not %d" % (name, first[4], n))
    return {"load_ms": first[2], "records_read": first[1],
            "ready_s": round(catch[0] - t0, 3), "catchup_ms": catch[2],
            "table_bytes": first[5],
            "rss_bytes": ps["VmRSS"], "peak_rss_bytes": ps["VmHWM"],
            "cpu_s": round(cpu, 2)}, d


def catchup_after(w, kind, role, conf, name, d, partners, topic, timeout):
    """1,000 records more, then a second member joins: the time of @d's next
    catch-up (ms), None when none came within @timeout."""
    path = os.path.join(w.wd, "more.tsv")
    state_records(kind, 1000, partners, path)
    fill(w.kafka, topic, path)
    _, asg0 = state_lines(d)
    c = dict(conf)
    c["issuer.transactional_id" if role == "issuer" else "importer.transactional_id"] += "-2"
    conf2 = h.write_conf(os.path.join(w.wd, name + "-2.conf"), c)
    d2 = w.daemon(role, conf2, name + "-2")
    try:
        def pred():
            st, asg = state_lines(d)
            if len(asg) <= len(asg0):
                return None
            late = [s for s in st if s[0] >= asg[len(asg0)][0] and s[1] > 0]
            return late[0][2] if late else None
        return h.wait_for(pred, timeout, "%s catch-up" % name, 0.05)
    except (AssertionError, TimeoutError):
        return None
    finally:
        d2.stop()


def state_growth(build_dir, sizes=(10000, 100000, 1000000), kinds=None):
    """The figures of issue 13's state growth (see the module doc): a dict
    {daemon kind: {"base": {...}, "<N>": {...}}}."""
    if build_dir and not os.environ.get("KB_BIN"):
        os.environ["KB_BIN"] = os.path.join(build_dir, "kyc-bridge")
    kinds = kinds or ("issuer", "importer", "importer-plain")
    w, _, iconf, mconf = bench_world("bench-state", 0, 16, 4, "info", "bench")
    out = {"partners": PARTNERS}
    try:
        t = time.time()
        partners = make_partners(w.wd, PARTNERS - 1)   # + the world's partner app
        out["partner_files_s"] = round(time.time() - t, 2)
        wf = w.apps[1].wf["kyc"]
        for kind in kinds:
            role = "issuer" if kind == "issuer" else "importer"
            base_conf = with_partners(read_conf(iconf if role == "issuer" else mconf),
                                      partners, role == "importer", wf)
            res = {}
            for n in (0,) + tuple(sizes):
                tag = "%s-%d" % (kind, n)
                topic = w.topic("state-" + tag, 4 if role == "issuer" else 3)
                c = dict(base_conf)
                c["%s.state_topic" % role] = topic
                c["%s.group_id" % role] = "%s-%s" % (w.prefix, tag)
                c["%s.transactional_id" % role] = "%s-%s-tx" % (w.prefix, tag)
                conf = h.write_conf(os.path.join(w.wd, tag + ".conf"), c)
                fill_s = 0.0
                if n:
                    path = os.path.join(w.wd, "state.tsv")
                    t = time.time()
                    state_records(kind, n, partners, path)
                    fill(w.kafka, topic, path)
                    fill_s = time.time() - t
                    os.unlink(path)
                r, d = run_daemon(w, role, conf, tag, n, 120 + n / 2000)
                r["fill_s"] = round(fill_s, 1)
                smaller = [m for m in (0,) + tuple(sizes) if m < n]
                if n and smaller and smaller[-1]:
                    prev = res[str(smaller[-1])]
                    r["marginal_bytes_per_share_id"] = round(
                        (r["rss_bytes"] - prev["rss_bytes"]) / (n - smaller[-1]), 1)
                if n:
                    r["bytes_per_share_id"] = round(
                        (r["rss_bytes"] - res["base"]["rss_bytes"]) / n, 1)
                    r["table_bytes_per_share_id"] = round(r["table_bytes"] / n, 1)
                    r["catchup_new_ms"] = catchup_after(
                        w, kind, role, c, tag, d, partners, topic, 60 + n / 2000)
                d.stop()
                res["base" if n == 0 else str(n)] = r
                print("  %-15s N=%-8d %s" % (kind, n, json.dumps(r)), flush=True)
            out[kind] = res
        if "importer" in out and "importer-plain" in out:
            out["status_index_bytes_per_session"] = {
                str(n): round((out["importer"][str(n)]["rss_bytes"] -
                               out["importer-plain"][str(n)]["rss_bytes"]) / n, 1)
                for n in sizes}
    finally:
        w.close()
    return out


def table(res, sizes):
    rows = ["| daemon | N | load ms | ready s | CPU s | catch-up ms | catch-up (+1,000) ms | "
            "RSS MiB | peak MiB | B/share_id | marginal B/share_id |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("issuer", "importer", "importer-plain"):
        if kind not in res:
            continue
        for key in ("base",) + tuple(str(n) for n in sizes):
            r = res[kind][key]
            rows.append("| %s | %s | %d | %.2f | %s | %d | %s | %.1f | %.1f | %s | %s |" % (
                kind, key, r["load_ms"], r["ready_s"], r.get("cpu_s", "-"), r["catchup_ms"],
                r.get("catchup_new_ms", "-"), r["rss_bytes"] / 1048576.0,
                r["peak_rss_bytes"] / 1048576.0, r.get("bytes_per_share_id", "-"),
                r.get("marginal_bytes_per_share_id", "-")))
    if "status_index_bytes_per_session" in res:
        rows.append("")
        rows.append("status index, bytes per imported session: %s" %
                    json.dumps(res["status_index_bytes_per_session"]))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--kinds", default="issuer,importer,importer-plain")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    sizes = tuple(int(s) for s in a.sizes.split(","))
    res = state_growth(None, sizes, tuple(a.kinds.split(",")))
    print(table(res, sizes))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
