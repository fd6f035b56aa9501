#!/usr/bin/env python3
"""e2e.py -- end-to-end throughput of the bridge: share requests in, imported
session records out, through the issuer and importer daemons, a real Kafka
broker and the sandbox (rate limits off, optional injected latency).

Not a test: it prints figures and asserts nothing about speed (it does check
that every request came out exactly once). Python 3 with what the black-box
suites use (prometheus_client: the importer-alone run reads /metrics).

For each latency L (ms) it makes a fresh world (topics, sandbox, apps,
keys), pre-creates M finished sessions, starts both daemons with
vendor.max_in_flight=C and pacing off, produces all M requests in one go
and times from the first request produced (its Kafka timestamp) to the
moment the last downstream record is committed (a read_committed consumer
sees it).

  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<dir of scripts/kafka.sh start> \\
    python3 bench/e2e.py                       # L=0 M=5000, L=100 M=2000
  python3 bench/e2e.py --run 0:20000 --run 50:5000 --in-flight 128
  python3 bench/e2e.py --run 0:2000 --importer-alone 5000 --handoff 100:20

--importer-alone M times the importer alone on M envelopes published before
it starts; --handoff RATE:SECONDS sends requests at a steady rate and gives
the hand-off latency (request produced (its timestamp) -> downstream record
seen by a read_committed consumer) as p50/p99/max; --perf DIR profiles each
daemon with perf record. A run with latency prints its fraction of the bound
in-flight / latency.

scripts/bench-e2e.sh builds, starts a broker in a temporary directory, runs
this and stops the broker.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "blackbox"))

import kbharness as h  # noqa: E402
from pipeline_world import World, exactly_once_report  # noqa: E402

TARGETS = {0: 3000, 100: 576}  # issue 13: tokens/s at 0 ms, 0.9 x 64 / 0.1 s


def cpu_seconds(pid):
    """utime + stime of a live process (s)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def thread_cpu(pid):
    """{thread name: cpu seconds} of a live process (librdkafka names its
    threads rdk:main, rdk:broker1, ...), summed by name."""
    out = {}
    hz = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        name = "rdk:broker" if name.startswith("rdk:broker") else name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / hz
    return out


# requests sent and finished before the timed ones (see one_run())
WARMUP = 200


class Offset:
    """A follower's count from a base on."""

    def __init__(self, follower, base):
        self.f, self.base = follower, base

    def count(self):
        return self.f.count() - self.base


class Sampler:
    """Samples the counts of followers every 0.1 s (throughput curve)."""

    def __init__(self, fns):
        self.fns = fns
        self.samples = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            self.samples.append((time.time(),) + tuple(f() for f in self.fns))
            time.sleep(0.1)

    def stop(self):
        self.stop_ev.set()
        self.t.join()


def bench_world(tag, m, in_flight, partitions, log_level, vd_prefix, **kw):
    """A fresh world with @m finished KYC sessions at app x, one share
    request each for app y (vendor_data <vd_prefix>-<i>), and the daemons'
    configurations (@in_flight vendor calls, rate limit off). Returns
    (world, requests, issuer conf, importer conf)."""
    w = World(tag, request_partitions=partitions, token_partitions=partitions,
              out_partitions=partitions, **kw)
    try:
        X, Y = w.app("x"), w.app("y")
        sessions = w.sb.finished_sessions(X.key, X.wf["kyc"], "Approved", m, "b", threads=8)
        reqs = [h.share_request(s, Y.id, vendor_data="%s-%d" % (vd_prefix, i))
                for i, s in enumerate(sessions)]
        extra = {"vendor.max_in_flight": in_flight, "vendor.rate_limit_per_minute": 0,
                 "log.level": log_level}
        iconf = w.issuer_conf(X, [Y], extra=extra)
        mconf = w.importer_conf(Y, [(X, {"trust_review": "true", "record": "summary"})],
                                extra=extra)
    except BaseException:
        w.close(keep=True)
        print("  kept %s" % w.wd, file=sys.stderr)
        raise
    return w, reqs, iconf, mconf


def one_run(latency, m, in_flight, partitions, log_level, keep, sandbox_threads,
            sandbox_debug=False, perf_dir=None, warmup=WARMUP):
    sbargs = ["--threads", str(sandbox_threads)] if sandbox_threads else []
    if sandbox_debug:
        sbargs += ["--log-level", "debug"]
    t_setup = time.time()
    w, reqs, iconf, mconf = bench_world("bench-l%d" % latency, m + warmup, in_flight,
                                        partitions, log_level, "bench", sandbox_args=sbargs)
    print("  %d sessions created in %.1f s" % (m + warmup, time.time() - t_setup), flush=True)
    try:
        if latency:
            # "*": the daemons only call share and import here
            w.sb.set_faults("*", latency_ms=latency)
        iss = w.daemon("issuer", iconf, "issuer")
        imp = w.daemon("importer", mconf, "importer")
        for d in (iss, imp):
            d.wait_log(r"pipeline: assigned \d+ partition", 60)
        ft, fo = w.follow(w.t["tokens"]), w.follow(w.t["imported"])
        fd = w.follow(w.t["importer_dlq"])
        fi = w.follow(w.t["issuer_dlq"])
        # Warm-up: a consumer's first fetch of a partition that was always
        # empty waits out fetch.wait.max.ms (500 ms) at the broker even when
        # records arrive meanwhile (measured: the issuer took its first
        # request 600 ms after its assignment, 150 ms with
        # fetch.wait.max.ms=50) -- a cost of the fresh test topic, paid
        # once, not a rate: the timed requests start once @warmup requests
        # went through.
        warm, timed = reqs[:warmup], reqs[warmup:]
        if warm:
            w.produce_requests(warm)
            h.wait_for(lambda: fo.count() + fd.count() + fi.count() >= warmup, 120,
                       "%d warm-up records" % warmup, interval=0.01)
        base = {f: f.count() for f in (ft, fo, fd, fi)}
        ft, fo, fd, fi = (Offset(f, base[f]) for f in (ft, fo, fd, fi))
        cpu0 = {d.name: cpu_seconds(d.pid) for d in (iss, imp)}
        thr0 = {d.name: thread_cpu(d.pid) for d in (iss, imp)}
        cpu0["sandbox"] = cpu_seconds(w.sb.proc.pid)
        sampler = Sampler([ft.count, fo.count])
        perfs = []
        if perf_dir:
            # a CPU profile of each daemon over the run (cpu-clock: this
            # machine has no hardware counters), read with perf report
            os.makedirs(perf_dir, exist_ok=True)
            for d in (iss, imp):
                perfs.append(subprocess.Popen(
                    ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "--call-graph", "dwarf,16384",
                     "-p", str(d.pid), "-o",
                     os.path.join(perf_dir, "%s-l%d.data" % (d.name, latency))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
        t_prod = time.time()
        w.produce_requests(timed)
        t_prod_done = time.time()
        deadline = time.time() + max(120, m / 20)
        t_tok = None
        while time.time() < deadline:
            if t_tok is None and ft.count() + fi.count() >= m:
                t_tok = time.time()
            if fo.count() + fd.count() + fi.count() >= m:
                break
            time.sleep(0.005)
        t_end = time.time()
        sampler.stop()
        for pp in perfs:
            pp.send_signal(signal.SIGINT)
            pp.wait(60)
        cpu = {d.name: cpu_seconds(d.pid) - cpu0[d.name] for d in (iss, imp)}
        cpu["sandbox"] = cpu_seconds(w.sb.proc.pid) - cpu0["sandbox"]
        threads = {}
        for d in (iss, imp):
            t1 = thread_cpu(d.pid)
            threads[d.name] = {k: round(v - thr0[d.name].get(k, 0.0), 2)
                               for k, v in sorted(t1.items(), key=lambda kv: -kv[1])
                               if v - thr0[d.name].get(k, 0.0) >= 0.01}
        done = fo.count() + fd.count() + fi.count()
        # the first timed request's own timestamp (CreateTime, ms)
        keys = {r["share_id"] for r in timed}
        first = [line.split() for line in subprocess.run(
            ["kcat", "-b", w.kafka.bootstrap, "-C", "-t", w.t["requests"], "-e", "-q",
             "-f", "%k %T\n", "-o", "beginning"], stdout=subprocess.PIPE, check=True,
            timeout=120).stdout.decode().splitlines()]
        first = [int(t) for k, t in first if k in keys]
        t0 = min(first) / 1000.0 if first else t_prod
        stats = {}
        for d in (iss, imp):
            rc = d.stop()
            stats[d.name] = (rc, d.last_stats())
        outs = w.outputs()
        problems = exactly_once_report([r["share_id"] for r in reqs], outs)
        el = t_end - t0
        res = {
            "latency_ms": latency, "requests": m, "warmup": warmup, "in_flight": in_flight,
            "partitions": partitions, "completed": done,
            "seconds": round(el, 3), "tokens_per_s": round(done / el, 1) if el > 0 else 0,
            "issuer_seconds": round(t_tok - t0, 3) if t_tok else None,
            "produce_seconds": round(t_prod_done - t_prod, 3),
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "cpu_us_per_token": {k: round(v * 1e6 / max(done, 1), 1) for k, v in cpu.items()},
            "cpu_by_thread_s": threads,
            "dead_letters": len(outs["importer_dlq"]) + len(outs["issuer_dlq"]),
            "exactly_once_problems": len(problems),
            "daemon_stats": stats,
        }
        # steadiest second of the run (best 1 s window of downstream output)
        best = 0.0
        s = sampler.samples
        j = 0
        for i in range(len(s)):
            while j < len(s) and s[j][0] - s[i][0] < 1.0:
                j += 1
            if j < len(s):
                best = max(best, (s[j][2] - s[i][2]) / (s[j][0] - s[i][0]))
        res["best_1s_tokens_per_s"] = round(best, 1)
        if problems:
            res["problem_sample"] = problems[:5]
        return res, w
    except BaseException:
        w.close(keep=True)
        print("  kept %s" % w.wd, file=sys.stderr)
        raise


def log_time(match_text):
    """The wall-clock time (s) of a daemon log line (its ISO timestamp)."""
    import datetime
    ts = match_text.split(" ", 1)[0]
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def importer_alone(m, in_flight, partitions, log_level):
    """The importer alone: the issuer publishes @m envelopes first and
    stops; then the importer starts on the full token topic, timed from its
    partition assignment (its log line) to the last downstream record
    committed."""
    w, reqs, iconf, mconf = bench_world("bench-imp", m, in_flight, partitions, log_level,
                                        "bench", metrics=True)
    try:
        ft, fo = w.follow(w.t["tokens"]), w.follow(w.t["imported"])
        iss = w.daemon("issuer", iconf, "issuer")
        w.produce_requests(reqs)
        h.wait_for(lambda: ft.count() >= m, max(120, m / 50), "%d envelopes" % m)
        iss.stop()
        imp = w.daemon("importer", mconf, "importer")
        line = imp.wait_log(r"\S+ importer info +pipeline: assigned [1-9]\d* partition", 60)
        t0 = log_time(line.group(0))
        cpu0 = cpu_seconds(imp.pid)
        h.wait_for(lambda: fo.count() >= m, max(120, m / 20), "%d downstream records" % m,
                   interval=0.005)
        t_end = time.time()
        cpu = cpu_seconds(imp.pid) - cpu0
        met = h.scrape_metrics(imp.metrics_port())
        imp.stop()
        stats = imp.last_stats()

        def mean_ms(name):
            n = met.total(name + "_count")
            return round(met.total(name + "_sum") * 1000.0 / n, 2) if n else None
        # where the time goes: a vendor call from send to answer, a commit
        timing = {"vendor_request_mean_ms": mean_ms("kyc_bridge_vendor_request_duration_seconds"),
                  "commit_mean_ms": mean_ms("kyc_bridge_transaction_commit_duration_seconds"),
                  "commits": met.total("kyc_bridge_transaction_commit_duration_seconds_count"),
                  "handoff_mean_ms": mean_ms("kyc_bridge_handoff_latency_seconds")}
        problems = exactly_once_report([r["share_id"] for r in reqs], w.outputs())
        el = t_end - t0
        return {"requests": m, "in_flight": in_flight, "seconds": round(el, 3),
                "tokens_per_s": round(m / el, 1),
                "cpu_us_per_token": round(cpu * 1e6 / m, 1),
                "exactly_once_problems": len(problems), "daemon_stats": stats,
                "timing": timing}, w
    except BaseException:
        w.close(keep=True)
        print("  kept %s" % w.wd, file=sys.stderr)
        raise


def percentile(xs, q):
    """The @q-quantile (0..1) of the sorted list @xs, nearest rank."""
    if not xs:
        return float("nan")
    import math
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def handoff(rate, seconds, in_flight, partitions, log_level):
    """Hand-off latency at a steady @rate share requests a second for
    @seconds: from a request's timestamp (CreateTime, set by the producer
    that sends it: one kcat kept open, linger 0) to the moment its
    downstream record is seen by a read_committed consumer (so after the
    importer's commit). Returns p50/p99/max in ms."""
    n = int(rate * seconds)
    w, reqs, iconf, mconf = bench_world("bench-hand", n, in_flight, partitions, log_level,
                                        "hand")
    try:
        iss = w.daemon("issuer", iconf, "issuer")
        imp = w.daemon("importer", mconf, "importer")
        for d in (iss, imp):
            d.wait_log(r"pipeline: assigned \d+ partition", 60)
        # downstream records are keyed by vendor_data: hand-<i>
        arrived = {}
        cons = subprocess.Popen(
            ["kcat", "-b", w.kafka.bootstrap, "-C", "-t", w.t["imported"], "-q", "-u",
             "-f", "%k\n", "-o", "end", "-X", "isolation.level=read_committed",
             "-X", "fetch.wait.max.ms=10"], stdout=subprocess.PIPE)

        def read():
            for line in cons.stdout:
                k = line.strip().decode()
                if k.startswith("hand-"):
                    arrived.setdefault(int(k[5:]), time.time())
        rt = threading.Thread(target=read, daemon=True)
        rt.start()
        time.sleep(2.0)  # the consumer has its partitions
        prod = subprocess.Popen(
            ["kcat", "-b", w.kafka.bootstrap, "-P", "-t", w.t["requests"], "-K", "\x1f",
             "-D", "\x1e", "-X", "linger.ms=0", "-X", "enable.idempotence=true"],
            stdin=subprocess.PIPE)
        sent = {}
        t0 = time.time()
        for i, r in enumerate(reqs):
            due = t0 + i / rate
            while True:
                now = time.time()
                if now >= due:
                    break
                time.sleep(min(0.002, due - now))
            prod.stdin.write(r["share_id"].encode() + b"\x1f" + json.dumps(r).encode()
                             + b"\x1e")
            prod.stdin.flush()
            sent[i] = time.time()
        prod.stdin.close()
        prod.wait(60)
        h.wait_for(lambda: len(arrived) >= n, 120, "%d downstream records" % n,
                   interval=0.05)
        cons.terminate()
        cons.wait(10)
        for d in (iss, imp):
            d.stop()
        problems = exactly_once_report([r["share_id"] for r in reqs], w.outputs())
        # from each request's own timestamp (CreateTime: when the producer
        # took it, same clock), not from the write to kcat's stdin, which
        # kcat reads in its own time (~25 ms late at this rate)
        created = {}
        for line in subprocess.run(
                ["kcat", "-b", w.kafka.bootstrap, "-C", "-t", w.t["requests"], "-e", "-q",
                 "-f", "%k %T\n", "-o", "beginning"], stdout=subprocess.PIPE, check=True,
                timeout=120).stdout.decode().splitlines():
            k, t = line.split()
            created[k] = int(t) / 1000.0
        lat = sorted((arrived[i] - created.get(reqs[i]["share_id"], sent[i])) * 1000.0
                     for i in range(n))
        return {"rate": rate, "requests": n, "in_flight": in_flight,
                "exactly_once_problems": len(problems),
                "p50_ms": round(percentile(lat, 0.50), 1),
                "p99_ms": round(percentile(lat, 0.99), 1),
                "max_ms": round(lat[-1], 1)}, w
    except BaseException:
        w.close(keep=True)
        print("  kept %s" % w.wd, file=sys.stderr)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", metavar="LATENCY_MS:M",
                    help="one run (repeatable); default 0:5000 and 100:2000")
    ap.add_argument("--in-flight", type=int, default=64, help="vendor.max_in_flight (64)")
    ap.add_argument("--partitions", type=int, default=8,
                    help="partitions of the request, token and output topics (8)")
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--sandbox-threads", type=int, default=0)
    ap.add_argument("--sandbox-debug", action="store_true",
                    help="sandbox logs every request (timing analysis; costs CPU)")
    ap.add_argument("--keep", action="store_true", help="keep work directories")
    ap.add_argument("--handoff", metavar="RATE:SECONDS",
                    help="also measure the hand-off latency (share request to committed "
                         "downstream record) at a steady RATE requests/s for SECONDS")
    ap.add_argument("--importer-alone", type=int, metavar="M", default=0,
                    help="also time the importer alone on M envelopes published "
                         "before it starts")
    ap.add_argument("--perf", metavar="DIR",
                    help="profile each daemon with perf record (cpu-clock, flat) "
                         "into DIR/<daemon>-l<latency>.data")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    a = ap.parse_args()
    runs = [tuple(int(x) for x in r.split(":")) for r in (a.run or ["0:5000", "100:2000"])]
    print("bench/e2e.py: %s, vendor.max_in_flight=%d, %d partitions, %d cores" % (
        ", ".join("latency %d ms x %d" % r for r in runs), a.in_flight, a.partitions,
        os.cpu_count()), flush=True)
    results = []
    for lat, m in runs:
        print("--- latency %d ms, %d requests" % (lat, m), flush=True)
        res, w = one_run(lat, m, a.in_flight, a.partitions, a.log_level, a.keep,
                         a.sandbox_threads, a.sandbox_debug, a.perf)
        results.append(res)
        tgt = TARGETS.get(lat)
        print("  end to end: %d of %d in %.2f s = %.0f tokens/s (best 1 s: %.0f/s)%s" % (
            res["completed"], m, res["seconds"], res["tokens_per_s"],
            res["best_1s_tokens_per_s"],
            "  [target >= %d: %s]" % (tgt, "met" if res["tokens_per_s"] >= tgt else "NOT met")
            if tgt else ""))
        if lat:
            # in-flight calls each waiting the vendor's latency bound the rate
            bound = a.in_flight / (lat / 1000.0)
            res["bound_tokens_per_s"] = round(bound, 1)
            res["fraction_of_bound"] = round(res["tokens_per_s"] / bound, 3)
            print("  latency-bound: %.0f of %d/%.1f s = %.0f tokens/s, %.2f of the bound" % (
                res["tokens_per_s"], a.in_flight, lat / 1000.0, bound,
                res["fraction_of_bound"]))
        print("  issuer done after %s s; produce took %.2f s" % (res["issuer_seconds"],
                                                               res["produce_seconds"]))
        print("  CPU: " + ", ".join("%s %.2f s (%.0f us/token)" % (
            k, res["cpu_s"][k], res["cpu_us_per_token"][k]) for k in res["cpu_s"]))
        for name, th in res["cpu_by_thread_s"].items():
            print("  %s CPU by thread: %s" % (name, ", ".join("%s %.2f s" % kv
                                                             for kv in th.items())))
        for name, (rc, st) in res["daemon_stats"].items():
            print("  %s (exit %s): %s" % (name, rc, ", ".join(
                "%s %s" % kv for kv in st.items() if kv[0] != "s")))
        print("  dead letters %d, exactly-once problems %d" % (
            res["dead_letters"], res["exactly_once_problems"]), flush=True)
        w.close(keep=a.keep)
        if a.keep:
            print("  kept %s" % w.wd)
    if a.importer_alone:
        print("--- importer alone, %d envelopes" % a.importer_alone, flush=True)
        res, w = importer_alone(a.importer_alone, a.in_flight, a.partitions, a.log_level)
        res["mode"] = "importer_alone"
        results.append(res)
        print("  importer alone: %d in %.2f s = %.0f tokens/s, CPU %.0f us/token, "
              "exactly-once problems %d" % (res["requests"], res["seconds"],
                                            res["tokens_per_s"], res["cpu_us_per_token"],
                                            res["exactly_once_problems"]), flush=True)
        print("  importer: %s" % ", ".join("%s %s" % kv for kv in res["daemon_stats"].items()
                                          if kv[0] != "s"), flush=True)
        print("  importer timing: %s" % ", ".join("%s %s" % kv for kv in res["timing"].items()),
              flush=True)
        w.close(keep=a.keep)
    if a.handoff:
        rate, secs = (float(x) for x in a.handoff.split(":"))
        print("--- hand-off latency at %.0f requests/s for %.0f s" % (rate, secs), flush=True)
        res, w = handoff(rate, secs, a.in_flight, a.partitions, a.log_level)
        res["mode"] = "handoff"
        results.append(res)
        print("  hand-off: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d requests; "
              "exactly-once problems %d" % (res["p50_ms"], res["p99_ms"], res["max_ms"],
                                            res["requests"], res["exactly_once_problems"]),
              flush=True)
        w.close(keep=a.keep)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if all(r["exactly_once_problems"] == 0 and
                    r.get("completed", r["requests"]) == r["requests"]
                    for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
