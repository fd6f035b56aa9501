#!/usr/bin/env python3
"""bench.py -- the bridge's figures next to the limits they run against and
next to a peer, in one run: prints a table (Markdown, as the README shows
it) and writes every figure as JSON. Not a test: it asserts nothing about
speed (it fails only when a request is lost or duplicated, or a section
cannot run). scripts/bench.sh builds, starts the broker and runs it.

Sections, in order (every one on the same machine, broker and build):
  limits    the crypto and JSON micro-costs (bench_envelope, bench_json on
            a real import answer), the sandbox's own import rate
            (bench_sandbox, 64 keep-alive connections) and the broker's
            produce and consume rate (kcat, 1 KB records);
  pair      issuer + importer end to end at 0 ms vendor latency, rate
            limits off, with each daemon's CPU per token from /proc;
  alone     the importer alone on envelopes published before it starts;
  bound     100 ms vendor latency, 64 calls in flight: tokens/s and the
            fraction of the bound 64 / 0.1 s;
  handoff   p50/p99/max from share request to committed downstream record
            at a steady 100 requests/s;
  instr     instructions per token of each daemon (callgrind, a fixed
            workload, collection on only while the tokens pass);
  rss       peak RSS of each daemon with 1,000 vendor calls in flight;
  peer      a sequential consume -> import -> produce -> commit loop in
            Python (confluent-kafka, requests), at 0 and 100 ms;
  scale     two importers in one group against one, latency-bound;
  state     what the remembered share_ids cost as they grow (bench/state.py):
            start-up until ready, an assignment's catch-up and memory per
            share_id at 10k, 100k and 1M share_ids, 10,000 partners.

  python3 bench/bench.py --build build-bench --json bench.json
  python3 bench/bench.py --only limits,pair --quick
Environment: KB_BIN, KB_KAFKA_DIR (scripts/kafka.sh start), KB_PEER_PYTHON
(a python with confluent_kafka and requests; the peer section needs it).
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "blackbox"))

import e2e  # noqa: E402
import state  # noqa: E402
import kbharness as h  # noqa: E402
from pipeline_world import exactly_once_report  # noqa: E402

SECTIONS = ("limits", "pair", "alone", "bound", "handoff", "instr", "rss", "peer",
            "scale", "state")


def log(msg):
    print(msg, flush=True)


def run(cmd, timeout=600, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s" % (" ".join(cmd), p.returncode, p.stdout[-2000:]))
    return p.stdout


def median_us(text, what):
    m = re.search(r"^%s\s+median\s+([\d.]+) us" % re.escape(what), text, re.M)
    if not m:
        raise RuntimeError("no '%s' figure in:\n%s" % (what, text))
    return float(m.group(1))


# ---- limits -----------------------------------------------------------------

def import_answer(path):
    """Writes a real import answer (a KYC session record as the vendor
    gives it) to @path; returns its size."""
    w, reqs, _, _ = e2e.bench_world("bench-doc", 1, 1, 1, "info", "doc")
    try:
        x, y = w.apps[0], w.apps[1]
        tok = w.sb.share_token(x.key, reqs[0]["session_id"], y.id)
        st, _, raw = w.sb.http.raw("POST", "/v3/session/import-shared/",
                                   {"share_token": tok, "workflow_id": y.wf["kyc"],
                                    "trust_review": True}, y.key)
        if st != 201:
            raise RuntimeError("import for the JSON document: %d" % st)
        with open(path, "wb") as f:
            f.write(raw if isinstance(raw, bytes) else raw.encode())
        return len(raw)
    finally:
        w.close()


def limits(a, tmp):
    res = {}
    out = run([os.path.join(a.build, "bench_envelope"), "5000", "400"])
    res["seal_sign_us"] = median_us(out, "seal")
    res["verify_open_us"] = median_us(out, "open")
    doc = os.path.join(tmp, "import-answer.json")
    res["session_bytes"] = import_answer(doc)
    out = run([os.path.join(a.build, "bench_json"), doc, "5000"])
    res["json_parse_us"] = median_us(out, "parse")
    res["json_parse_serialise_us"] = median_us(out, "parse+serialise")
    # the sandbox's own import rate: a fresh sandbox, 64 connections
    wd = h.new_workdir("bench-sbx")
    sb = h.Sandbox(wd, seed=7)
    try:
        out = run([os.path.join(a.build, "bench_sandbox"), "--url", sb.url,
                   "--imports", str(a.scale(10000)), "--conns", "64"], timeout=900)
    finally:
        sb.stop()
    m = re.search(r"^import\S*\s+n=\d+ conns=\d+: [\d.]+ s, (\d+) req/s", out, re.M)
    if not m:
        raise RuntimeError("no import rate in:\n" + out)
    res["sandbox_imports_per_s"] = int(m.group(1))
    res.update(broker_rate(a))
    return res


def broker_rate(a):
    """kcat: @n 1 KB records produced (idempotent, acks all) to an
    8-partition topic, then consumed read_committed from the beginning."""
    k = h.Kafka()
    n = a.scale(100000)
    topic = "kbt-bench-broker-%d-%d" % (os.getpid(), int(time.time()))
    k.create_topics([(topic, 8)])
    payload = ("x" * 999 + "\n") * n
    t0 = time.time()
    subprocess.run(["kcat", "-b", k.bootstrap, "-P", "-t", topic, "-X", "enable.idempotence=true",
                    "-X", "linger.ms=5"], input=payload.encode(), check=True, timeout=600)
    prod = time.time() - t0
    t0 = time.time()
    out = subprocess.run(["kcat", "-b", k.bootstrap, "-C", "-t", topic, "-e", "-q", "-o",
                          "beginning", "-X", "isolation.level=read_committed", "-f", "%o\n"],
                         stdout=subprocess.PIPE, check=True, timeout=600).stdout
    cons = time.time() - t0
    got = len(out.split())
    if got != n:
        raise RuntimeError("broker rate: consumed %d of %d" % (got, n))
    return {"broker_records": n, "broker_produce_per_s": round(n / prod),
            "broker_consume_per_s": round(n / cons)}


# ---- the bridge -------------------------------------------------------------

def checked(res, what):
    if res.get("exactly_once_problems") or res.get("completed", res["requests"]) != res["requests"]:
        raise RuntimeError("%s: %s" % (what, json.dumps(res)[:1500]))
    return res


def pair(a, latency, m, in_flight=64):
    res, w = e2e.one_run(latency, m, in_flight, 8, "info", False, 0)
    w.close()
    if latency:
        # every call waits the latency: in-flight / latency bounds the rate
        res["bound_tokens_per_s"] = round(in_flight / (latency / 1000.0), 1)
        res["fraction_of_bound"] = round(res["tokens_per_s"] / res["bound_tokens_per_s"], 3)
    return checked(res, "pair at %d ms" % latency)


def alone(a, m):
    res, w = e2e.importer_alone(m, 64, 8, "info")
    w.close()
    return checked(res, "importer alone")


def held_partitions(d):
    """Partitions a daemon holds now, from its log (assigned - revoked/lost)."""
    n = 0
    for m in re.finditer(r"pipeline: (assigned|revoked|lost) (\d+) partition", d.logtext()):
        n += int(m.group(2)) * (1 if m.group(1) == "assigned" else -1)
    return n


def importers(m, latency, count):
    """@count importers in one group, vendor latency @latency ms on the
    import (64 calls in flight each): they start first, and once the group
    is settled (every importer holds partitions, 8 in all) the issuer
    starts and @m requests are produced. Timed from the first request
    produced to the last downstream record committed."""
    w, reqs, iconf, _ = e2e.bench_world("bench-scale", m, 64, 8, "info", "bench")
    try:
        if latency:
            w.sb.set_faults("/v3/session/import-shared/", latency_ms=latency)
        fo = w.follow(w.t["imported"])
        x, y = w.apps[0], w.apps[1]
        # one group, a transactional.id each
        imps = [w.daemon("importer", w.importer_conf(
            y, [(x, {"trust_review": "true", "record": "summary"})], name="importer-%d" % i,
            group=w.prefix + "-importers",
            extra={"vendor.max_in_flight": 64, "vendor.rate_limit_per_minute": 0}),
            "importer-%d" % i) for i in range(count)]
        h.wait_for(lambda: all(held_partitions(d) > 0 for d in imps) and
                   sum(held_partitions(d) for d in imps) == 8, 120, "a settled group")
        iss = w.daemon("issuer", iconf, "issuer")
        iss.wait_log(r"pipeline: assigned \d+ partition", 60)
        cpu0 = {d.name: e2e.cpu_seconds(d.pid) for d in imps}
        t0 = time.time()
        w.produce_requests(reqs)
        h.wait_for(lambda: fo.count() >= m, max(120, m / 5), "%d downstream records" % m,
                   interval=0.005)
        el = time.time() - t0
        cpu = sum(e2e.cpu_seconds(d.pid) - cpu0[d.name] for d in imps)
        for d in imps + [iss]:
            d.stop()
        problems = exactly_once_report([r["share_id"] for r in reqs], w.outputs())
        w.close()
        return checked({"requests": m, "importers": count, "latency_ms": latency,
                        "seconds": round(el, 3), "tokens_per_s": round(m / el, 1),
                        "importer_cpu_us_per_token": round(cpu * 1e6 / m, 1),
                        "exactly_once_problems": len(problems)}, "%d importers" % count)
    except BaseException:
        w.close(keep=True)
        raise


def callgrind_total(path):
    """The instruction count (Ir) of a callgrind dump."""
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def instr(a, m):
    """Both daemons under callgrind, collection off until both have their
    partitions, on while @m tokens pass, dumped at the end: instructions per
    token of each, every thread counted."""
    w, reqs, iconf, mconf = e2e.bench_world("bench-instr", m, 64, 8, "info", "bench")
    try:
        cg = {}
        ds = []
        for role in ("issuer", "importer"):
            cg[role] = os.path.join(w.wd, "callgrind.%s" % role)
            ds.append(w.daemon(role, iconf if role == "issuer" else mconf, role, prefix=[
                "valgrind", "--tool=callgrind", "--instr-atstart=no",
                "--callgrind-out-file=" + cg[role] + ".%p"]))
        for d in ds:
            d.wait_log(r"pipeline: assigned \d+ partition", 300)
        fo = w.follow(w.t["imported"])
        for d in ds:
            run(["callgrind_control", "--instr=on", str(d.pid)], timeout=60)
        w.produce_requests(reqs)
        h.wait_for(lambda: fo.count() >= m, max(300, m / 2), "%d downstream records" % m,
                   interval=0.05)
        res = {"requests": m}
        for d in ds:
            run(["callgrind_control", "--dump", str(d.pid)], timeout=120)
            run(["callgrind_control", "--instr=off", str(d.pid)], timeout=60)
        for d in ds:
            dumps = [os.path.join(w.wd, f) for f in os.listdir(w.wd)
                     if f.startswith("callgrind.%s.%d" % (d.role, d.pid))
                     and not f.endswith(".%d" % d.pid)]
            if not dumps:
                raise RuntimeError("no callgrind dump of the %s" % d.role)
            res["%s_instructions_per_token" % d.role] = round(
                sum(callgrind_total(p) for p in dumps) / m)
        for d in ds:
            d.stop(timeout=120)
        problems = exactly_once_report([r["share_id"] for r in reqs], w.outputs())
        res["exactly_once_problems"] = len(problems)
        w.close()
        return checked(res, "instr")
    except BaseException:
        w.close(keep=True)
        raise


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def rss(a, in_flight=1000, latency=2000):
    """Peak RSS of each daemon (VmHWM) over a run with @in_flight calls in
    flight: @latency ms per vendor call, 3 x @in_flight requests; and the
    RSS at rest (after start-up) for comparison."""
    m = 3 * in_flight
    w, reqs, iconf, mconf = e2e.bench_world("bench-rss", m, in_flight, 8, "info", "bench")
    try:
        w.sb.set_faults("*", latency_ms=latency)
        ds = [w.daemon("issuer", iconf, "issuer"), w.daemon("importer", mconf, "importer")]
        for d in ds:
            d.wait_log(r"pipeline: assigned \d+ partition", 60)
        rest = {d.role: vm_hwm_kb(d.pid) for d in ds}
        fo = w.follow(w.t["imported"])
        w.produce_requests(reqs)
        h.wait_for(lambda: fo.count() >= m, 300, "%d downstream records" % m, interval=0.1)
        peak = {d.role: vm_hwm_kb(d.pid) for d in ds}
        for d in ds:
            d.stop()
        problems = exactly_once_report([r["share_id"] for r in reqs], w.outputs())
        w.close()
        return checked({"requests": m, "in_flight": in_flight, "latency_ms": latency,
                        "rest_kb": rest, "peak_kb": peak,
                        "exactly_once_problems": len(problems)}, "rss")
    except BaseException:
        w.close(keep=True)
        raise


# ---- the peer ---------------------------------------------------------------

def peer(a, m, latency):
    """bench/peer.py on @m plain share tokens (minted here, no bridge),
    vendor latency @latency ms on the import."""
    py = os.environ.get("KB_PEER_PYTHON")
    if not py:
        raise RuntimeError("KB_PEER_PYTHON is not set (scripts/bench.sh makes the venv)")
    w, reqs, _, _ = e2e.bench_world("bench-peer", m, 1, 8, "info", "peer")
    try:
        x, y = w.apps[0], w.apps[1]
        topic = w.topic("plain-tokens", 8)
        out = w.topic("peer-out", 8)
        recs = [(r["share_id"], json.dumps({"share_token": w.sb.share_token(
            x.key, r["session_id"], y.id)})) for r in reqs]
        w.kafka.produce(topic, recs)
        if latency:
            w.sb.set_faults("/v3/session/import-shared/", latency_ms=latency)
        text = run([py, os.path.join(HERE, "peer.py"), "--bootstrap", w.kafka.bootstrap,
                    "--topic", topic, "--output", out, "--group", w.prefix + "-peer",
                    "--url", w.sb.url, "--key-file", y.keyfile, "--workflow", y.wf["kyc"],
                    "--count", str(m)], timeout=900)
        res = json.loads(text.strip().splitlines()[-1])
        res["latency_ms"] = latency
        got = len(w.kafka.consume_all(out))
        if got != m:
            raise RuntimeError("peer: %d records out of %d" % (got, m))
        w.close()
        return res
    except BaseException:
        w.close(keep=True)
        raise


# ---- the table --------------------------------------------------------------

def ratio(x, y):
    return round(x / y, 2) if x and y else None


def table(R):
    """Markdown rows: what, figure, what it is compared with, target."""
    rows = []
    L = R.get("limits", {})

    def row(what, fig, cmp="", target=""):
        rows.append("| %s | %s | %s | %s |" % (what, fig, cmp, target))

    def met(ok):
        return "met" if ok else "**not met**"
    if L:
        row("seal + sign one envelope (libsodium)", "%.0f µs" % L["seal_sign_us"])
        row("verify + open one envelope", "%.0f µs" % L["verify_open_us"])
        row("parse a %.1f KB import answer (json-c)" % (L["session_bytes"] / 1024.0),
            "%.0f µs" % L["json_parse_us"], "parse + serialise %.0f µs" %
            L["json_parse_serialise_us"])
        row("sandbox imports alone (64 connections)", "%d /s" % L["sandbox_imports_per_s"])
        row("broker, 1 KB records (kcat)", "produce %d /s, consume %d /s" % (
            L["broker_produce_per_s"], L["broker_consume_per_s"]))
    P = R.get("pair")
    if P:
        row("pair end to end, 0 ms vendor latency", "%.0f tokens/s" % P["tokens_per_s"],
            "%.2f of the sandbox's import rate" % (P["tokens_per_s"] / L["sandbox_imports_per_s"])
            if L else "", "≥ 3,000: %s" % met(P["tokens_per_s"] >= 3000))
        cpu = P["cpu_us_per_token"]
        work_i = L.get("seal_sign_us")
        work_m = L.get("verify_open_us", 0) + L.get("json_parse_us", 0)
        row("issuer CPU per token", "%.0f µs" % cpu["issuer"],
            "%.1f× its seal + sign" % (cpu["issuer"] / work_i) if work_i else "",
            "≤ 140: %s" % met(cpu["issuer"] <= 140))
        row("importer CPU per token", "%.0f µs" % cpu["importer"],
            "%.1f× its verify + open + parse" % (cpu["importer"] / work_m) if work_m else "",
            "≤ 160: %s" % met(cpu["importer"] <= 160))
        row("sandbox CPU per token (share + import)", "%.0f µs" % cpu["sandbox"])
    A = R.get("alone")
    if A:
        row("importer alone, 0 ms", "%.0f tokens/s" % A["tokens_per_s"],
            "%.2f of the sandbox's import rate" % (A["tokens_per_s"] / L["sandbox_imports_per_s"])
            if L else "")
    B = R.get("bound")
    if B:
        row("latency-bound: 100 ms, 64 in flight", "%.0f tokens/s" % B["tokens_per_s"],
            "%.2f of the bound 640/s" % B["fraction_of_bound"],
            "≥ 0.9: %s" % met(B["fraction_of_bound"] >= 0.9))
    H = R.get("handoff")
    if H:
        row("hand-off at 100 requests/s", "p50 %.0f, p99 %.0f, max %.0f ms" % (
            H["p50_ms"], H["p99_ms"], H["max_ms"]), "", "p99 ≤ 50: %s" % met(H["p99_ms"] <= 50))
    I = R.get("instr")
    if I:
        row("instructions per token (callgrind, %d tokens)" % I["requests"],
            "issuer %.2f M, importer %.2f M" % (I["issuer_instructions_per_token"] / 1e6,
                                               I["importer_instructions_per_token"] / 1e6))
    S = R.get("rss")
    if S:
        row("peak RSS, %d calls in flight" % S["in_flight"],
            "issuer %.0f MB, importer %.0f MB" % (S["peak_kb"]["issuer"] / 1024.0,
                                                  S["peak_kb"]["importer"] / 1024.0),
            "at rest %.0f and %.0f MB" % (S["rest_kb"]["issuer"] / 1024.0,
                                         S["rest_kb"]["importer"] / 1024.0))
    Q = R.get("peer")
    if Q:
        q0, q1 = Q.get("0"), Q.get("100")
        if q0:
            row("peer (Python loop), 0 ms", "%.0f tokens/s" % q0["tokens_per_s"])
        if q1:
            row("peer (Python loop), 100 ms", "%.1f tokens/s" % q1["tokens_per_s"])
        if q0 and A:
            r = A["tokens_per_s"] / q0["tokens_per_s"]
            row("importer alone ÷ peer, 0 ms", "%.1f×" % r, "", "≥ 5: %s" % met(r >= 5))
        if q0 and P:
            r = P["tokens_per_s"] / q0["tokens_per_s"]
            row("pair ÷ peer, 0 ms", "%.1f×" % r, "the pair also mints, seals, signs, verifies",
                "≥ 3.5: %s" % met(r >= 3.5))
        if q1 and B:
            r = B["tokens_per_s"] / q1["tokens_per_s"]
            row("pair ÷ peer, 100 ms", "%.0f×" % r, "", "≥ 50: %s" % met(r >= 50))
    C = R.get("scale")
    if C:
        r = C["two"]["tokens_per_s"] / C["one"]["tokens_per_s"]
        row("two importers ÷ one, 100 ms", "%.2f×" % r, "%.0f vs %.0f tokens/s" % (
            C["two"]["tokens_per_s"], C["one"]["tokens_per_s"]), "≥ 1.8: %s" % met(r >= 1.8))
    G = R.get("state")
    if G:
        for kind in ("issuer", "importer"):
            if kind not in G:
                continue
            top = max((k for k in G[kind] if k != "base"), key=int)
            r = G[kind][top]
            row("%s restart with %s share_ids, %s partners" % (kind, "{:,}".format(int(top)),
                                                                "{:,}".format(G["partners"])),
                "ready in %.1f s, %.0f B a share_id (RSS), %.0f B (table)" % (
                    r["ready_s"], r["bytes_per_share_id"], r["table_bytes_per_share_id"]),
                "catch-up on assignment %s ms" % r.get("catchup_new_ms", "-"),
                "ready < 5 s: %s" % met(r["ready_s"] < 5) + (
                    ", < 64 B: %s" % met(r["bytes_per_share_id"] < 64)
                    if kind == "issuer" else " (B: with the status index)"))
        if "importer-plain" in G:
            top = max((k for k in G["importer-plain"] if k != "base"), key=int)
            r = G["importer-plain"][top]
            row("importer share_ids alone (no status index), %s" % "{:,}".format(int(top)),
                "%.0f B a share_id (RSS), %.0f B (table)" % (r["bytes_per_share_id"],
                                                            r["table_bytes_per_share_id"]),
                "status index %s B a session" % G.get("status_index_bytes_per_session",
                                                      {}).get(top, "-"),
                "< 64 B: %s" % met(r["bytes_per_share_id"] < 64))
    return ["| measure | figure | compared with | target |", "|---|---|---|---|"] + rows


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return "%d cores (%s), %.0f GB, %s %s" % (os.cpu_count(), cpu, mem, platform.system(),
                                             platform.release())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="the build directory (bench_* programs)")
    ap.add_argument("--only", help="comma-separated sections (default: all): " +
                    ",".join(SECTIONS))
    ap.add_argument("--quick", action="store_true",
                    help="a tenth of the work in each section (a smoke run)")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON here")
    a = ap.parse_args()
    a.scale = (lambda n: max(100, n // 10)) if a.quick else (lambda n: n)
    only = a.only.split(",") if a.only else list(SECTIONS)
    for s in only:
        if s not in SECTIONS:
            ap.error("unknown section %s (known: %s)" % (s, ", ".join(SECTIONS)))
    R = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    log("bench.py: %s; sections %s" % (R["machine"], ",".join(only)))
    t_all = time.time()
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        for s in SECTIONS:
            if s not in only:
                continue
            t0 = time.time()
            log("--- %s" % s)
            if s == "limits":
                R[s] = limits(a, tmp)
            elif s == "pair":
                R[s] = pair(a, 0, a.scale(10000))
            elif s == "alone":
                R[s] = alone(a, a.scale(10000))
            elif s == "bound":
                R[s] = pair(a, 100, a.scale(6000))
            elif s == "handoff":
                R[s], w = e2e.handoff(100, 20 if not a.quick else 5, 64, 8, "info")
                w.close()
                checked(R[s], "handoff")
            elif s == "instr":
                R[s] = instr(a, a.scale(1000))
            elif s == "rss":
                R[s] = rss(a, in_flight=1000 if not a.quick else 200)
            elif s == "peer":
                R[s] = {"0": peer(a, a.scale(3000), 0), "100": peer(a, a.scale(300) // 2, 100)}
            elif s == "scale":
                n = a.scale(8000)
                R[s] = {"one": importers(n, 100, 1), "two": importers(n, 100, 2)}
            elif s == "state":
                R[s] = state.state_growth(a.build, sizes=(10000, 100000, 1000000)
                                          if not a.quick else (1000, 10000))
            log("  %s (%.0f s)" % (json.dumps(R[s]), time.time() - t0))
    R["seconds"] = round(time.time() - t_all)
    log("")
    log("kyc-bridge benchmark, %s, on %s" % (R["started"], R["machine"]))
    if a.quick:
        log("(--quick: a tenth of the work, where start-up and fixed costs weigh on every "
            "figure; the targets are for a full run)")
    log("")
    for line in table(R):
        log(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(R, f, indent=1)
        log("\n(all figures in %s)" % a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
