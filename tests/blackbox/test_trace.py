"""test_trace.py -- W3C trace context through both daemons on a real Kafka
broker and the real sandbox (docs/pipeline.md, "Trace context"):

  (a) a share request with a traceparent (and tracestate): the envelope
      and the downstream record carry its trace id with new span ids, the
      vendor calls (share, import) carry this hop's traceparent, and the
      daemons' log lines about the share carry the trace id;
  (b) a share request without one: a trace is started and carried the
      same way;
  (c) a dead-lettered request: its dead letter carries the trace id.
  kb-requested-at (the request record's timestamp) goes issuer ->
  envelope -> downstream record, and the importer observes the hand-off
  latency once per imported share.

The vendor calls are seen through a small recording HTTP proxy in front of
the sandbox (the sandbox itself does not report request headers).
"""
import http.client
import http.server
import json
import os
import re
import subprocess
import threading
import time
import unittest
import urllib.parse
import uuid

import kbharness as h
from pipeline_world import wait_stable
from test_pipeline import PipelineCase

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class VendorProxy:
    """Forwards every request to @target (the sandbox) and records
    (method, path, traceparent header or None) of each."""

    def __init__(self, target):
        u = urllib.parse.urlsplit(target)
        self.host, self.port = u.hostname, u.port
        self.lock = threading.Lock()
        self.calls = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                with proxy.lock:
                    proxy.calls.append((self.command, self.path,
                                        self.headers.get("traceparent")))
                fwd = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection",
                                            "content-length")}
                c = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
                try:
                    c.request(self.command, self.path, body=body, headers=fwd)
                    r = c.getresponse()
                    data = r.read()
                    st, ah = r.status, r.getheaders()
                finally:
                    c.close()
                self.send_response(st)
                for k, v in ah:
                    if k.lower() in ("content-type", "retry-after"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def records(self):
        with self.lock:
            return list(self.calls)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def produce_with_headers(kafka, topic, key, value, headers):
    """One record with @headers (list of (name, value)) by kcat -H."""
    cmd = ["kcat", "-b", kafka.bootstrap, "-P", "-t", topic, "-k", key,
           "-X", "enable.idempotence=true"]
    for n, v in headers:
        cmd += ["-H", "%s=%s" % (n, v)]
    subprocess.run(cmd, input=value.encode(), check=True, timeout=120)


def headers_of(rec):
    """kcat's %h ("n1=v1,n2=v2") as a dict (our values hold no ',')."""
    out = {}
    for item in rec["headers"].split(","):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k] = v
    return out


def span(tp):
    m = TRACEPARENT_RE.match(tp or "")
    if not m:
        raise AssertionError("not a version-00 traceparent: %r" % (tp,))
    return m.group(1), m.group(2), m.group(3)


class TestTrace(PipelineCase):
    def test_trace_round_trip(self):
        w = self.world("trace")
        X = w.app("x")
        Y = w.app("y")
        proxy = VendorProxy(w.sb.url)
        self.addCleanup(proxy.close)
        common = {"vendor.url": proxy.url, "log.level": "debug"}
        iconf = w.issuer_conf(X, [Y], extra=common)
        mconf = w.importer_conf(Y, [(X, {})], extra=common)

        tid_a = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent_a = "00f067aa0ba902b7"
        tp_a = "00-%s-%s-01" % (tid_a, parent_a)
        tid_c = "0af7651916cd43dd8448eb211c80319c"
        parent_c = "b7ad6b7169203331"
        tp_c = "00-%s-%s-01" % (tid_c, parent_c)

        sa = w.sb.finished_session(X.key, X.wf["kyc"], "Approved")
        sb = w.sb.finished_session(X.key, X.wf["kyc"], "Approved")
        ra = h.share_request(sa, Y.id, vendor_data="trace-a-" + uuid.uuid4().hex[:8])
        rb = h.share_request(sb, Y.id, vendor_data="trace-b-" + uuid.uuid4().hex[:8])
        # (c): a partner the issuer does not know -> unknown_partner
        rc = h.share_request(sa, str(uuid.uuid4()))
        # (d): the same with no headers at all: the dead letter still
        # carries the trace the issuer started for it
        rd = h.share_request(sb, str(uuid.uuid4()))
        w.share_ids += [ra["share_id"], rb["share_id"], rc["share_id"], rd["share_id"]]

        t0 = int(time.time() * 1000)
        # (b): no traceparent (a header of another name, so the record has
        # headers; one without any is covered by the end-to-end suite),
        # written before the issuer runs: its kb-requested-at is the
        # record's timestamp, not when the issuer took it
        produce_with_headers(w.kafka, w.t["requests"], rb["share_id"], json.dumps(rb),
                             [("x-other", "1")])
        t_b = int(time.time() * 1000)
        time.sleep(1.5)
        iss = w.daemon("issuer", iconf, "issuer")
        imp = w.daemon("importer", mconf, "importer")
        produce_with_headers(w.kafka, w.t["requests"], ra["share_id"], json.dumps(ra),
                             [("traceparent", tp_a), ("tracestate", "kbtest=t61rcWkgMzE")])
        produce_with_headers(w.kafka, w.t["requests"], rc["share_id"], json.dumps(rc),
                             [("traceparent", tp_c)])
        produce_with_headers(w.kafka, w.t["requests"], rd["share_id"], json.dumps(rd), [])
        out = w.follow(w.t["imported"])
        wait_stable(out.count, 2, 120, what="downstream records")
        wait_stable(lambda: len(w.kafka.consume_all(w.t["issuer_dlq"])), 2, 60,
                    what="the dead letters")
        # the importer observed one hand-off per imported share, once its
        # downstream record committed
        m = h.wait_for(lambda: (lambda mm: mm if mm.total(
            "kyc_bridge_handoff_latency_seconds_count") >= 2 else None)(imp.scrape()),
            30, "two hand-off observations", interval=0.25)
        self.assertEqual(m.total("kyc_bridge_handoff_latency_seconds_count"), 2)
        t1 = int(time.time() * 1000)
        self.assertEqual(iss.stop(), 0)
        self.assertEqual(imp.stop(), 0)

        tokens = w.kafka.consume_all(w.t["tokens"])
        self.assertEqual(len(tokens), 2)
        down = {json.loads(r["value"])["share_id"]: r
                for r in w.kafka.consume_all(w.t["imported"])}
        self.assertEqual(set(down), {ra["share_id"], rb["share_id"]})
        # envelopes: which is which by their kb-share-id header
        env = {headers_of(r)["kb-share-id"]: r for r in tokens}
        self.assertEqual(set(env), set(down))

        seen_spans = set()
        trace_of = {}
        for r, tid_in, parent_in in ((ra, tid_a, parent_a), (rb, None, None)):
            sid = r["share_id"]
            eh, dh = headers_of(env[sid]), headers_of(down[sid])
            et, es, ef = span(eh.get("traceparent"))
            dt, ds, df = span(dh.get("traceparent"))
            if tid_in:
                self.assertEqual(et, tid_in, "envelope keeps the trace id")
                self.assertEqual(eh.get("tracestate"), "kbtest=t61rcWkgMzE")
                self.assertEqual(dh.get("tracestate"), "kbtest=t61rcWkgMzE")
                self.assertNotEqual(es, parent_in)
            else:
                self.assertNotIn("tracestate", eh)
                self.assertNotEqual(et, "0" * 32)
            self.assertEqual(dt, et, "downstream record keeps the trace id")
            self.assertNotEqual(ds, es, "the importer's hop has its own span")
            self.assertEqual((ef, df), ("01", "01"))
            for s in (es, ds):
                self.assertNotIn(s, seen_spans)
                seen_spans.add(s)
            trace_of[sid] = (et, es, ds)
            # kb-requested-at: set by the issuer (no header came in: the
            # request record's timestamp), carried unchanged
            ra_ms = int(eh["kb-requested-at"])
            self.assertEqual(dh.get("kb-requested-at"), eh["kb-requested-at"])
            self.assertTrue(t0 - 5000 <= ra_ms <= (t1 if tid_in else t_b),
                            (t0, ra_ms, t_b, t1))
        self.assertNotEqual(trace_of[ra["share_id"]][0], trace_of[rb["share_id"]][0])

        # the vendor calls carried the hop's traceparent: the issuer's share
        # call its envelope span, the importer's import call its own
        calls = proxy.records()
        for sid, (tid, es, ds) in trace_of.items():
            share = [c for c in calls if c[1].endswith("/share/") and c[2]
                     and span(c[2])[1] == es]
            imports = [c for c in calls if "/import-shared/" in c[1] and c[2]
                       and span(c[2])[1] == ds]
            self.assertTrue(share, "no share call with span %s: %r" % (es, calls))
            self.assertTrue(imports, "no import call with span %s: %r" % (ds, calls))
            self.assertEqual(span(share[0][2])[0], tid)
            self.assertEqual(span(imports[0][2])[0], tid)
        # every vendor call of the daemons carried one
        self.assertEqual([c for c in calls if not c[2]], [])

        # logs: the lines about each share carry its trace id, in both
        # daemons' logs; no line about it carries another trace id
        for d in (iss, imp):
            with open(d.logpath, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
            for sid, (tid, _, _) in trace_of.items():
                about = [ln for ln in lines if "share %s:" % sid in ln]
                self.assertTrue(about, "%s: no line about share %s" % (d.name, sid))
                for ln in about:
                    self.assertTrue(ln.endswith(" trace_id=" + tid),
                                    "%s: %r" % (d.name, ln))
                self.assertTrue(any("trace continued" in ln or "trace started" in ln
                                    for ln in lines if ln.endswith(tid)),
                                "%s: no start line for %s" % (d.name, sid))

        # (c) the dead letter carries the request's trace id, with the
        # issuer's span, and its kb-requested-at
        dls = w.kafka.consume_all(w.t["issuer_dlq"])
        self.assertEqual(len(dls), 2)
        for r in dls:
            self.assertEqual(json.loads(r["value"])["reason"], "unknown_partner")
        dl = [r for r in dls if json.loads(r["value"])["share_id"] == rc["share_id"]]
        self.assertEqual(len(dl), 1)
        dh = headers_of(dl[0])
        t, s, _ = span(dh.get("traceparent"))
        self.assertEqual(t, tid_c)
        self.assertNotEqual(s, parent_c)
        self.assertTrue(t0 - 5000 <= int(dh["kb-requested-at"]) <= t1)
        with open(iss.logpath, encoding="utf-8", errors="replace") as f:
            dl_lines = [ln for ln in f if "share %s: dead-lettered" % rc["share_id"] in ln]
        self.assertEqual(len(dl_lines), 1)
        self.assertTrue(dl_lines[0].rstrip("\n").endswith(" trace_id=" + tid_c), dl_lines)

        # (d) no headers in: the trace the issuer started is on the dead
        # letter (headers and kept input) and on its log line
        dd = [r for r in dls if json.loads(r["value"])["share_id"] == rd["share_id"]]
        self.assertEqual(len(dd), 1)
        t_d, _, _ = span(headers_of(dd[0]).get("traceparent"))
        self.assertTrue(t0 - 5000 <= int(headers_of(dd[0])["kb-requested-at"]) <= t1)
        kept = json.loads(dd[0]["value"])["input"]["headers"]
        self.assertEqual(span(kept.get("traceparent"))[0], t_d)
        with open(iss.logpath, encoding="utf-8", errors="replace") as f:
            d_lines = [ln for ln in f if "share %s: dead-lettered" % rd["share_id"] in ln]
        self.assertEqual(len(d_lines), 1)
        self.assertTrue(d_lines[0].rstrip("\n").endswith(" trace_id=" + t_d), d_lines)


if __name__ == "__main__":
    unittest.main()
