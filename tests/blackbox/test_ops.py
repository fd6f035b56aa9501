"""test_ops.py -- black-box tests of a daemon's operations endpoints
(metrics.listen): /livez, /readyz and /metrics, on a real issuer against a
real Kafka broker and the sandbox (Python 3 stdlib unittest).

Run one class at a time (CTest does, see ops.cmake):
  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \
  KB_TEST_TMP=/tmp/kbt python3 -m unittest test_ops.TestOpsEndpoints

/metrics is read with the small strict parser of the text exposition
format 0.0.4 below (HELP/TYPE once per family and before its samples,
name{label="value",...} value lines, escapes), never with a regex over
the whole text. KB_KEEP=1 keeps the work directories.
"""
import collections
import http.client
import json
import math
import os
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, WorldsCase, wait_stable  # noqa: E402

PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ParseError(ValueError):
    pass


def _name(s, i):
    j = i
    while j < len(s) and (s[j].isalnum() and s[j].isascii() or s[j] in "_:"):
        j += 1
    if j == i or s[i].isdigit():
        raise ParseError("metric or label name expected at %d: %r" % (i, s))
    return s[i:j], j


def _labels(s, i):
    """{a="x",b="y"} from s[i] == '{'; returns (dict, index after '}')."""
    out = {}
    i += 1
    while True:
        if s[i] == "}":
            return out, i + 1
        k, i = _name(s, i)
        if k in out:
            raise ParseError("label %s twice: %r" % (k, s))
        if s[i:i + 2] != '="':
            raise ParseError("'=\"' expected after %s: %r" % (k, s))
        i += 2
        v = []
        while True:
            if i >= len(s):
                raise ParseError("unterminated label value: %r" % s)
            c = s[i]
            if c == "\\":
                e = s[i + 1:i + 2]
                if e not in ("\\", '"', "n"):
                    raise ParseError("bad escape \\%s: %r" % (e, s))
                v.append("\n" if e == "n" else e)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ParseError("newline in a label value")
            else:
                v.append(c)
                i += 1
        out[k] = "".join(v)
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise ParseError("',' or '}' expected: %r" % s)


def _value(t):
    if t in ("+Inf", "-Inf", "NaN"):
        return float(t.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(t)
    except ValueError:
        raise ParseError("not a number: %r" % t) from None


def parse_exposition(text):
    """Parses Prometheus text format 0.0.4 strictly. Returns (types, help,
    samples): {family: type}, {family: help}, {(name, ((k, v), ...)): value}.
    Raises ParseError on anything it does not accept."""
    if text and not text.endswith("\n"):
        raise ParseError("the text does not end with a newline")
    types, helps, samples, seen_sample = {}, {}, {}, set()
    for line in text.split("\n")[:-1]:
        if not line:
            raise ParseError("empty line")
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                raise ParseError("bad comment line: %r" % line)
            fam = parts[2]
            _name(fam, 0)
            if parts[1] == "HELP":
                if fam in helps:
                    raise ParseError("HELP %s twice" % fam)
                helps[fam] = parts[3] if len(parts) > 3 else ""
            else:
                if fam in types or fam in seen_sample:
                    raise ParseError("TYPE %s twice or after its samples" % fam)
                if len(parts) != 4 or parts[3] not in TYPES:
                    raise ParseError("bad TYPE line: %r" % line)
                types[fam] = parts[3]
            continue
        name, i = _name(line, 0)
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _labels(line, i)
        if line[i:i + 1] != " ":
            raise ParseError("space expected before the value: %r" % line)
        rest = line[i + 1:].split(" ")
        if not 1 <= len(rest) <= 2:
            raise ParseError("value [timestamp] expected: %r" % line)
        v = _value(rest[0])
        fam = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == "histogram":
                fam = name[:-len(suf)]
        if fam not in types:
            raise ParseError("sample %s before (or without) its TYPE" % name)
        if types[fam] == "counter" and (math.isnan(v) or v < 0):
            raise ParseError("counter %s is %r" % (name, v))
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise ParseError("sample twice: %r" % line)
        seen_sample.add(fam)
        samples[key] = v
    return types, helps, samples


def get(port, path, timeout=5):
    """(status, content-type, body text) of GET @path; None if refused."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    except (ConnectionError, OSError):
        return None
    finally:
        c.close()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class TestParser(unittest.TestCase):
    """The parser refuses what it must (so the scrape checks can fail)."""

    def test_accepts_and_refuses(self):
        ok = ('# HELP a_total A.\n# TYPE a_total counter\n'
              'a_total{x="q\\"\\\\\\n",y="2"} 3\n')
        _, _, s = parse_exposition(ok)
        self.assertEqual(s[("a_total", (("x", 'q"\\\n'), ("y", "2")))], 3.0)
        for bad in ("a_total 1\n",                              # no TYPE
                    "# TYPE a_total counter\na_total{x=1} 1\n",  # unquoted
                    "# TYPE a_total counter\na_total -1\n",      # negative
                    "# TYPE a_total counter\na_total 1\na_total 2\n",
                    "# TYPE a gauge\n# TYPE a gauge\na 1\n",
                    "# TYPE a gauge\na x\n",
                    "# TYPE a gauge\na 1"):                     # no final \n
            with self.assertRaises(ParseError, msg=bad):
                parse_exposition(bad)


class TestMetricsHelpers(unittest.TestCase):
    """kbharness's /metrics helpers (prometheus_client's parser plus the
    convention and leak checks the pipeline suites use) refuse what they
    must, so that those checks can fail."""

    GOOD = ('# HELP kyc_bridge_a_total A.\n# TYPE kyc_bridge_a_total counter\n'
            'kyc_bridge_a_total{daemon="issuer",reason="expired"} 3\n'
            '# HELP kyc_bridge_h_seconds H.\n# TYPE kyc_bridge_h_seconds histogram\n'
            'kyc_bridge_h_seconds_bucket{le="0.1"} 1\n'
            'kyc_bridge_h_seconds_bucket{le="+Inf"} 2\n'
            'kyc_bridge_h_seconds_sum 0.3\nkyc_bridge_h_seconds_count 2\n'
            '# HELP process_start_time_seconds S.\n'
            '# TYPE process_start_time_seconds gauge\n'
            'process_start_time_seconds 1.7e9\n')

    def test_parse_and_read(self):
        m = h.parse_metrics(self.GOOD)
        self.assertEqual(m.get("kyc_bridge_a_total", daemon="issuer", reason="expired"), 3)
        self.assertIsNone(m.get("kyc_bridge_a_total", daemon="issuer"))
        self.assertEqual(m.total("kyc_bridge_a_total", daemon="issuer"), 3)
        self.assertEqual(m.type_of("kyc_bridge_a_total"), "counter")
        self.assertEqual(m.get("kyc_bridge_h_seconds_count"), 2)
        self.assertEqual(h.metrics_convention_problems(m), [])
        for bad in ("# TYPE a counter\na{x=1} 1\n", "# TYPE a gauge\na x\n",
                    '# TYPE a gauge\na{x="y" 1\n',
                    "# TYPE a gauge\na 1\na 2\n"):
            with self.assertRaises(h.MetricsError, msg=bad):
                h.parse_metrics(bad)

    def test_conventions(self):
        cases = {
            "no TYPE": "# HELP kyc_bridge_x X.\nkyc_bridge_x 1\n",
            "no HELP": "# TYPE kyc_bridge_x gauge\nkyc_bridge_x 1\n",
            "prefix": "# HELP other_x X.\n# TYPE other_x gauge\nother_x 1\n",
            "_total": "# HELP kyc_bridge_x X.\n# TYPE kyc_bridge_x counter\n"
                      "kyc_bridge_x 1\n",
            "uuid": '# HELP kyc_bridge_x X.\n# TYPE kyc_bridge_x gauge\n'
                    'kyc_bridge_x{s="%s"} 1\n' % uuid.uuid4(),
            "jwt": '# HELP kyc_bridge_x X.\n# TYPE kyc_bridge_x gauge\n'
                   'kyc_bridge_x{t="eyJhbGciOiJIUzI1NiJ9"} 1\n',
            "trace id": '# HELP kyc_bridge_x X.\n# TYPE kyc_bridge_x gauge\n'
                        'kyc_bridge_x{t="%s"} 1\n' % uuid.uuid4().hex,
            "buckets": '# HELP kyc_bridge_h_seconds H.\n'
                       '# TYPE kyc_bridge_h_seconds histogram\n'
                       'kyc_bridge_h_seconds_bucket{le="1"} 2\n'
                       'kyc_bridge_h_seconds_bucket{le="+Inf"} 1\n'
                       'kyc_bridge_h_seconds_sum 1\nkyc_bridge_h_seconds_count 1\n',
        }
        for what, text in cases.items():
            self.assertTrue(h.metrics_convention_problems(h.parse_metrics(text)), what)
        # a key id (16 hex) and a topic name are fine as label values
        ok = ('# HELP kyc_bridge_k X.\n# TYPE kyc_bridge_k gauge\n'
              'kyc_bridge_k{key_id="a8fbaac8be692e9d",topic="kbt-x-12-ab12cd34.tokens"} 1\n')
        self.assertEqual(h.metrics_convention_problems(h.parse_metrics(ok)), [])

    def test_leaks(self):
        self.assertEqual(h.metrics_leaks(self.GOOD, ["sk_canary_0123456789"]), [])
        self.assertTrue(h.metrics_leaks(self.GOOD.replace("expired", "sk_canary_0123456789"),
                                        ["sk_canary_0123456789"]))
        self.assertTrue(h.metrics_leaks(self.GOOD + "# eyJx\n", []))


class TestOpsEndpoints(WorldsCase, unittest.TestCase):
    """One issuer with metrics.listen on its own port; one with it on the
    webhook intake's server."""

    def setUp(self):
        super().setUp()
        self.w = World("ops")
        self.worlds.append(self.w)

    def scrape(self, port):
        r = get(port, "/metrics")
        self.assertIsNotNone(r, "/metrics refused")
        st, ct, body = r
        self.assertEqual(st, 200, body)
        self.assertEqual(ct, PROM_TYPE)
        return body, parse_exposition(body)

    def test_health_and_metrics(self):
        w = self.w
        X, Y = w.app("x"), w.app("y")
        port = h.free_port()
        conf = w.issuer_conf(X, [Y], extra={
            "metrics.listen": "127.0.0.1:%d" % port})
        issuer = w.daemon("issuer", conf, "issuer")

        # /livez answers as soon as the server listens; /readyz is 503
        # with a reason until the pipeline runs, then 200
        wait_for(lambda: get(port, "/livez"), 30, "/livez to answer")
        st, ct, body = get(port, "/livez")
        self.assertEqual((st, json.loads(body)), (200, {"status": "ok"}))
        seen = []

        def ready():
            r = get(port, "/readyz")
            if r:
                seen.append(r)
            return r and r[0] == 200
        wait_for(ready, 60, "/readyz 200")
        for st, ct, body in seen[:-1]:
            self.assertEqual(st, 503, body)
            self.assertEqual(ct, "application/json")
            self.assertIn("detail", json.loads(body))
        self.assertEqual(json.loads(seen[-1][2]), {"status": "ready"})
        self.assertEqual(get(port, "/nothing")[0], 404)

        # N good requests and one that is not JSON at all
        n = 3
        sids = ["ops-%d-%s" % (i, uuid.uuid4().hex[:8]) for i in range(n)]
        reqs = [h.share_request(w.sb.finished_session(X.key, X.wf["kyc"], "Approved"),
                                Y.id, s) for s in sids]
        w.produce_requests(reqs)
        w.kafka.produce(w.t["requests"], [("k-garbage", "\x01 not JSON {")])
        rec = "kyc_bridge_records_total"

        def count(samples, outcome):
            return samples.get((rec, (("daemon", "issuer"), ("outcome", outcome))))

        def settled():
            _, (_, _, s) = self.scrape(port)
            return count(s, "published") == n and count(s, "dead_lettered") == 1 \
                and s
        wait_for(settled, 90, "%d published and 1 dead letter in /metrics" % n)
        # the same request again: handled already, a replay (counted as
        # skipped by a daemon without the replayed outcome)
        rep = "replayed" if count(self.scrape(port)[1][2], "replayed") is not None \
            else "skipped"
        w.produce_requests(reqs[:1])
        wait_for(lambda: count(self.scrape(port)[1][2], rep) == 1, 60,
                 "1 %s in /metrics" % rep)
        body, (types, helps, s) = self.scrape(port)
        self.assertEqual(count(s, "published"), n)
        self.assertEqual(count(s, "dead_lettered"), 1)
        self.assertEqual(count(s, rep), 1)
        self.assertEqual(sum(v for (name, lab), v in s.items() if name == rec
                             and dict(lab)["outcome"] not in
                             ("published", "dead_lettered", rep)), 0)
        self.assertEqual(types[rec], "counter")
        self.assertEqual(
            s[("kyc_bridge_dead_letters_total",
               (("daemon", "issuer"), ("reason", "malformed_request")))], 1)
        self.assertEqual(
            sum(v for (name, _), v in s.items()
                if name == "kyc_bridge_dead_letters_total"), 1)
        # published from the engine thread about once a second
        txn = "kyc_bridge_transactions_total"
        self.assertEqual(types[txn], "counter")
        wait_for(lambda: self.scrape(port)[1][2].get(
            (txn, (("daemon", "issuer"), ("result", "committed"))), 0) >= 2,
            30, ">= 2 committed transactions")
        self.assertEqual(s[(txn, (("daemon", "issuer"), ("result", "aborted")))], 0)
        self.assertEqual(types["kyc_bridge_records_in_flight"], "gauge")
        wait_for(lambda: self.scrape(port)[1][2].get(
            ("kyc_bridge_records_in_flight", (("daemon", "issuer"),))) == 0,
            30, "0 records in flight")
        # the vendor (the sandbox) minted exactly n tokens, none failed
        calls = "kyc_bridge_vendor_calls_total"
        self.assertEqual(types[calls], "counter")
        wait_for(lambda: self.scrape(port)[1][2].get(
            (calls, (("daemon", "issuer"), ("result", "ok")))) == n,
            30, "%d ok vendor calls" % n)
        vs = self.scrape(port)[1][2]
        self.assertEqual(vs[(calls, (("daemon", "issuer"), ("result", "ok")))], n)
        self.assertEqual(vs[(calls, (("daemon", "issuer"), ("result", "error")))], 0)
        self.assertEqual(vs[("kyc_bridge_vendor_answered_total",
                             (("daemon", "issuer"),))], n)
        self.assertEqual(vs[("kyc_bridge_vendor_retries_total",
                             (("daemon", "issuer"),))], 0)
        self.assertGreater(vs[("kyc_bridge_vendor_latency_seconds_total",
                               (("daemon", "issuer"),))], 0)
        self.assertEqual(types["kyc_bridge_vendor_in_flight"], "gauge")
        self.assertEqual(vs[("kyc_bridge_vendor_in_flight",
                             (("daemon", "issuer"),))], 0)
        # consumer lag of each request partition, 0 once all is committed
        # (librdkafka's statistics every 5 s)
        lag = "kyc_bridge_consumer_lag"
        want = {(lag, (("daemon", "issuer"), ("partition", str(i)),
                       ("topic", w.t["requests"]))) for i in range(4)}

        last = {}

        def lags():
            last.clear()
            last.update((k, v) for k, v in self.scrape(port)[1][2].items()
                        if k[0] == lag)
            return set(last) == want and not any(last.values())
        try:
            wait_for(lags, 30, "lag 0 on the 4 request partitions")
        except AssertionError as e:
            raise AssertionError("%s; last seen: %r" % (e, last)) from None
        self.assertEqual(self.scrape(port)[1][0][lag], "gauge")
        brokers = {k: v for k, v in self.scrape(port)[1][2].items()
                   if k[0] == "kyc_bridge_broker_state_up"}
        self.assertIn(1.0, brokers.values(), brokers)
        # brokers by librdkafka's name, host:port/<node id>: its bootstrap
        # entries (host:port/bootstrap) are not brokers and not shown
        for _, lab in brokers:
            name = dict(lab)["broker"]
            self.assertRegex(name, r"^[^/]+:\d+/\d+$", brokers)
        self.assertFalse([k for k in self.scrape(port)[1][2]
                          if k[0] == "kyc_bridge_broker_request_timeouts_total"
                          and dict(k[1])["broker"].endswith("/bootstrap")])
        # /readyz 200, and the gauge says so
        self.assertEqual(get(port, "/readyz")[0], 200)
        self.assertEqual(self.scrape(port)[1][2][
            ("kyc_bridge_ready", (("daemon", "issuer"),))], 1)
        self.assertEqual(self.scrape(port)[1][0]["kyc_bridge_ready"], "gauge")
        self.assertEqual(s[("kyc_bridge_build_info",
                            (("version", h.run_cli(["--version"])[1].decode()
                              .split()[-1]),))], 1)
        start = s[("process_start_time_seconds", ())]
        self.assertTrue(time.time() - 600 < start <= time.time(), start)
        for fam in types:
            self.assertIn(fam, helps)
            self.assertTrue(fam == "process_start_time_seconds" or
                            fam.startswith("kyc_bridge_"), fam)

        # no secret in what /metrics says
        with open(X.keyfile) as f:
            key = f.read().strip()
        with open(X.keys.sign, "rb") as f:
            sign = f.read().strip()
        self.assertNotIn(key, body)
        self.assertNotIn(sign.decode(errors="replace"), body)
        for sid in sids:
            self.assertNotIn(sid, body)

        # an idle daemon is alive: its loop turns with nothing in flight
        time.sleep(11)
        st, _, body = get(port, "/livez")
        self.assertEqual(st, 200, body)
        self.assertEqual(get(port, "/readyz")[0], 200)

        self.assertEqual(issuer.stop(), 0, "SIGTERM: exit status")
        self.assertIsNone(get(port, "/livez", timeout=2))

    def test_shared_with_webhook_intake(self):
        w = self.w
        X, Y = w.app("x"), w.app("y")
        secret = w.sb.webhook_config(X.key)["secret_shared_key"]
        port = h.free_port()
        addr = "127.0.0.1:%d" % port
        conf = w.issuer_conf(X, [Y], extra={
            "webhook.listen": addr, "metrics.listen": addr,
            "webhook.secret": w.webhook_secret_file(X, secret),
            "rule.kyc.workflow_id": X.wf["kyc"],
            "rule.kyc.statuses": "Approved", "rule.kyc.partners": "y"})
        issuer = w.daemon("issuer", conf, "issuer")
        wait_for(lambda: (get(port, "/readyz") or (0,))[0] == 200, 60,
                 "/readyz 200 on the intake's server")
        self.assertEqual(get(port, "/livez")[0], 200)
        body, (types, _, s) = self.scrape(port)
        self.assertIn("kyc_bridge_records_total", types)
        self.assertNotIn(secret, body)
        # the configured rule at 0 from the start, by daemon and rule
        self.assertEqual(s[("kyc_bridge_webhook_share_requests_total",
                            (("daemon", "issuer"), ("rule", "kyc")))], 0)
        self.assertEqual(s[("kyc_bridge_ready", (("daemon", "issuer"),))], 1)
        # the intake still answers on the same server (unsigned: refused)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/webhooks/vendor", body=b"{}",
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        self.assertIn(r.status, (400, 401))
        self.assertEqual(issuer.stop(), 0, "SIGTERM: exit status")


class TestReadyzBrokerLoss(WorldsCase, unittest.TestCase):
    """/readyz across start-up, the loss of the only broker and its return,
    on a broker of the test's own (scripts/kafka.sh start, stop, restart
    on the same ports and data: the shared one serves other tests):
    503 while starting, then 200; 503 "no broker reachable" within a
    bounded time once the broker is gone (two of the consumer's
    statistics in a row, every 5 s, show no connection up), with
    kyc_bridge_ready 0; 200 again after it returned, and a
    request sent then is processed exactly once. /livez stays 200
    throughout: the loop turns while the broker is away."""

    LOSS_DEADLINE = 30     # s from the broker's stop to /readyz 503
    RETURN_DEADLINE = 60   # s from the broker's return to /readyz 200

    def setUp(self):
        super().setUp()
        self.pb = self.private_broker("readyz-broker")
        self.w = World("readyz", kafka=self.pb.kafka(), request_partitions=2,
                       token_partitions=2)
        self.worlds.append(self.w)

    def test_flips(self):
        w = self.w
        X, Y = w.app("x"), w.app("y")
        port = h.free_port()
        conf = w.issuer_conf(X, [Y], extra={
            "metrics.listen": "127.0.0.1:%d" % port,
            # come back quickly once the broker is there again
            "kafka.reconnect.backoff.max.ms": 1000})
        # (read with kcat runs of their own: a following kcat gives up
        # when all brokers are down)
        def envelopes():
            return len(w.kafka.consume_all(w.t["tokens"], timeout=30))

        # /livez, sampled in the background the whole time
        livez, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                r = get(port, "/livez", timeout=3)
                if r or livez:   # refused only before the server listens
                    livez.append((time.monotonic(), r and r[0]))
                stop.wait(0.2)
        t = threading.Thread(target=sample, daemon=True)

        # 1. start-up: 503 (starting) before the first 200. The broker is
        #    held (SIGSTOP) while the daemon starts, so that its producer
        #    cannot be initialised before the first /readyz: the start-up
        #    window is there for certain, not only on a slow machine.
        self.pb.pause()
        try:
            issuer = w.daemon("issuer", conf, "issuer")
            t.start()
            r = wait_for(lambda: get(port, "/readyz", timeout=3), 30,
                         "/readyz to answer while starting")
            self.assertEqual(r[0], 503, r)
            self.assertIn("starting", json.loads(r[2])["detail"])
            time.sleep(1)
            r = get(port, "/readyz", timeout=3)
            self.assertEqual(r and r[0], 503, r)
        finally:
            self.pb.resume()
        seen = []

        def ready():
            r = get(port, "/readyz", timeout=3)
            if r:
                seen.append(r)
            return r and r[0] == 200
        wait_for(ready, 60, "/readyz 200 after start-up")
        for st, _, body in seen[:-1]:
            self.assertEqual(st, 503, body)
            self.assertIn("starting", json.loads(body)["detail"])
        self.assertEqual(json.loads(seen[-1][2]), {"status": "ready"})

        def share(tag):
            sid = "rz-%s-%s" % (tag, uuid.uuid4().hex[:8])
            ses = w.sb.finished_session(X.key, X.wf["kyc"], "Approved")
            w.produce_requests([h.share_request(ses, Y.id, sid)])
            return sid
        before = share("before")
        wait_for(lambda: envelopes() == 1, 60, "the envelope of the first request")

        # 2. the broker goes away: 503 "no broker reachable", bounded
        self.pb.stop()
        t_lost = time.monotonic()
        last = {}

        def not_ready():
            r = get(port, "/readyz", timeout=3)
            last["r"] = r
            return r and r[0] == 503 and "no broker" in json.loads(r[2]).get("detail", "")
        try:
            wait_for(not_ready, self.LOSS_DEADLINE, "/readyz 503 'no broker reachable'")
        except AssertionError as e:
            raise AssertionError("%s; last answer %r" % (e, last.get("r"))) from None
        took = time.monotonic() - t_lost
        print("[%s] /readyz 503 %.1f s after the broker stopped" % (self.id(), took),
              file=sys.stderr)
        # ... and stays so while the broker is away (kyc_bridge_ready 0
        # with it); the daemon runs on
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            r = get(port, "/readyz", timeout=3)
            self.assertEqual(r and r[0], 503, r)
            self.assertEqual(h.scrape_metrics(port).get("kyc_bridge_ready",
                                                        daemon="issuer"), 0)
            time.sleep(0.5)
        self.assertTrue(issuer.alive(), "the issuer exited while the broker was away:\n"
                        + issuer.logtext()[-3000:])

        # 3. the broker returns (same ports, same data): 200 again
        self.pb.restart()
        t_back = time.monotonic()
        wait_for(lambda: (get(port, "/readyz", timeout=3) or (0,))[0] == 200,
                 self.RETURN_DEADLINE, "/readyz 200 after the broker returned")
        print("[%s] /readyz 200 %.1f s after the broker returned"
              % (self.id(), time.monotonic() - t_back), file=sys.stderr)
        self.assertEqual(h.scrape_metrics(port).get("kyc_bridge_ready",
                                                    daemon="issuer"), 1)
        after = share("after")
        wait_stable(envelopes, 2, 90, settle=3.0, what="envelopes")
        self.assertTrue(issuer.alive())
        m = h.scrape_metrics(port)
        self.assertEqual(m.get("kyc_bridge_records_total", daemon="issuer",
                               outcome="published"), 2)
        self.assertEqual(m.total("kyc_bridge_dead_letters_total"), 0)
        self.assertEqual(issuer.stop(), 0, "SIGTERM: exit status")
        stop.set()
        t.join(10)

        # exactly once: one envelope per request, no dead letter
        envs = collections.Counter()
        for r in w.kafka.consume_all(w.t["tokens"]):
            envs[json.loads(r["value"])["share_id"]] += 1
        self.assertEqual(envs, collections.Counter({before: 1, after: 1}))
        self.assertEqual(w.kafka.consume_all(w.t["issuer_dlq"]), [])
        # /livez: 200 at every sample from the first answer to the stop
        # (the stop itself may refuse the last ones)
        self.assertGreater(len(livez), 20, livez)
        bad = [(round(ts - t_lost, 1), st) for ts, st in livez[:-3] if st != 200]
        self.assertEqual(bad, [], "/livez not 200 at (s after the loss, status)")


if __name__ == "__main__":
    unittest.main()
