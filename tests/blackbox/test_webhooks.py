"""test_webhooks.py -- black-box tests of the issuer's webhook intake and
sharing rules: the sandbox's real signed deliveries (through a recording
proxy) into a real issuer on a real Kafka broker (Python 3 stdlib unittest).

Run one class at a time (CTest does, see webhooks.cmake):
  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \
  KB_TEST_TMP=/tmp/kbt python3 -m unittest test_webhooks.TestWebhookRules

The signatures the tests make themselves (redeliveries, refusals, the old
secret) are computed here, from API-CONTRACT.md, never by the C code. The
share_ids expected are computed here too, from docs/webhooks.md.
TestWebhookOutage starts a broker of its own (scripts/kafka.sh) and stops
it; the shared broker is never touched. KB_KEEP=1 keeps the work
directories.
"""
import collections
import copy
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, token_leaks, wait_stable  # noqa: E402

PATH = "/webhooks/vendor"
CANON = {"Approved": "APPROVED", "APPROVED": "APPROVED", "Declined": "DECLINED",
         "DECLINED": "DECLINED", "In Review": "IN_REVIEW", "IN_REVIEW": "IN_REVIEW"}


def share_id(session_id, for_app, rule, status):
    """docs/webhooks.md: "wh-" + hex(BLAKE2b-128(domain NUL session NUL
    app (lowercase) NUL rule NUL folded status))."""
    m = b"kyc-bridge/webhook-share/v1\0" + session_id.encode() + b"\0" + \
        for_app.lower().encode() + b"\0" + rule.encode() + b"\0" + \
        CANON[status].encode()
    return "wh-" + hashlib.blake2b(m, digest_size=16).hexdigest()


class WebhookCase(unittest.TestCase):
    """Base: worlds, proxies and private brokers closed afterwards (work
    directories kept when the test failed)."""

    maxDiff = 4000

    def setUp(self):
        self.worlds, self.proxies, self.brokers = [], [], []
        self.answers = []   # every HTTP answer body seen (leak scan)
        self.t0 = time.monotonic()

    def note(self, fmt, *args):
        print("[%s +%.1fs] %s" % (self.id().split(".", 1)[-1],
                                  time.monotonic() - self.t0, fmt % args),
              file=sys.stderr)

    def tearDown(self):
        failed = any(e for _, e in getattr(self._outcome, "errors", []) or []) or \
            not getattr(self._outcome, "success", True)
        r = getattr(getattr(self, "_outcome", None), "result", None)
        if r is not None and any(t is self for t, _ in
                                 list(r.failures) + list(r.errors)):
            failed = True
        for p in self.proxies:
            p.close()
        for w in self.worlds:
            w.close(keep=failed)
            if failed:
                print("[%s] kept %s" % (self.id(), w.wd), file=sys.stderr)
        for b in self.brokers:
            b.stop()
            if not failed and not os.environ.get("KB_KEEP"):
                shutil.rmtree(b.dir, ignore_errors=True)

    # ---- set-up ----

    def world(self, tag, kafka=None):
        # a 1 s backoff gives the sandbox a 5 s HTTP timeout, above the
        # intake's webhook.kafka_timeout_ms (2 s here)
        w = World(tag, kafka=kafka, sandbox_args=["--webhook-backoff-ms", "1000"])
        self.worlds.append(w)
        w.X, w.Y1, w.Y2 = w.app("x"), w.app("y1"), w.app("y2")
        w.secret = w.sb.webhook_config(w.X.key)["secret_shared_key"]
        return w

    def rules(self, w):
        return {
            "rule.kyc.workflow_id": w.X.wf["kyc"],
            "rule.kyc.statuses": "Approved, In Review",
            "rule.kyc.partners": "y1, y2",
            "rule.kyc.vendor_data": "{partner}-{vendor_data}",
            # KYC casing: folded, it matches the KYB session's APPROVED
            "rule.kyb.workflow_id": w.X.wf["kyb"],
            "rule.kyb.statuses": "Approved",
            "rule.kyb.partners": "y1",
            "rule.kyb.ttl_s": 600,
        }

    def issuer(self, w, name="issuer", secret=None, previous=None, extra=None,
               rules=True, restart=None):
        """An issuer with an intake on a free port (d.intake: its URL);
        @restart: restart that daemon with the new configuration instead."""
        c = {"webhook.listen": "127.0.0.1:0",
             "webhook.secret": w.webhook_secret_file(w.X, secret or w.secret, name),
             "webhook.kafka_timeout_ms": 2000,
             "webhook.retry_after_s": 1}
        if previous:
            c["webhook.secret_previous"] = w.webhook_secret_file(
                w.X, previous, name + "-previous")
        if rules:
            c.update(self.rules(w))
        c.update(extra or {})
        conf = w.issuer_conf(w.X, [w.Y1, w.Y2], name=name, extra=c)
        if restart:
            d = restart
            d.start()
        else:
            d = w.daemon("issuer", conf, name)
        m = d.wait_log(r"listening on 127\.0\.0\.1:0 \(port (\d+)\): POST %s"
                       % re.escape(PATH), 60, count=d.starts)
        d.intake = "http://127.0.0.1:%s" % m.group(1)
        return d

    def proxy(self, w, daemon):
        """A recording proxy in front of @daemon's intake, registered as
        the issuer application's webhook URL."""
        p = h.WebhookProxy(daemon.intake)
        self.proxies.append(p)
        cfg = w.sb.set_webhook(w.X.key, p.url + PATH)
        self.assertEqual(cfg["secret_shared_key"], w.secret,
                         "setting the url changed the secret")
        return p

    def importer(self, w):
        return w.daemon("importer", w.importer_conf(
            w.Y1, [(w.X, {"trust_review": "true", "record": "full"})],
            name="importer-y1"), "importer-y1")

    # ---- deliveries of our own ----

    def post(self, p, payload, secret, ts=None, v2=True, simple=True, mangle=None,
             headers=None, drop=()):
        """Signs @payload (timestamp @ts, default: now, also in the body)
        with @secret and POSTs it to the intake, its body passed through
        @mangle (bytes -> bytes) after signing, @headers overriding and
        @drop removing headers; (status, doc)."""
        payload = copy.deepcopy(payload)
        if ts is None:
            ts = int(time.time())
        payload["timestamp"] = ts
        hd = h.wh_headers(secret, payload, ts, v2=v2, simple=simple) \
            if secret else {"Content-Type": "application/json", "X-Timestamp": str(ts)}
        hd.update(headers or {})
        for k in drop:
            hd.pop(k, None)
        body = json.dumps(payload).encode()
        if mangle:
            body = mangle(body)
        st, ah, ans = p.post(PATH, body, hd)
        self.answers.append(ans)
        return st, (json.loads(ans) if ans else None)

    def resend(self, p, rec):
        """Sends a recorded delivery again, byte for byte."""
        hd = {k: v for k, v in rec["headers"].items()
              if k in ("content-type", "x-timestamp", "x-signature-v2",
                       "x-signature-simple")}
        st, _, ans = p.post(PATH, rec["body"], hd)
        self.answers.append(ans)
        return st, json.loads(ans)

    # ---- what reached Kafka ----

    def requests(self, w):
        """Share requests on the request topic: [(key, doc)]."""
        return [(r["key"], json.loads(r["value"]))
                for r in w.kafka.consume_all(w.t["requests"])]

    def envelopes(self, w):
        """Envelopes on the token topic: Counter of share_id."""
        c = collections.Counter()
        for r in w.kafka.consume_all(w.t["tokens"]):
            c[json.loads(r["value"])["share_id"]] += 1
        return c

    def assertNoSecretLeak(self, w, secrets):
        self.assertTrue(all(secrets))
        problems = token_leaks(w, secrets=secrets, extra_texts=self.answers + [
            r["answer"] for p in self.proxies for r in p.records()])
        if problems:
            self.fail("leaks:\n  " + "\n  ".join(problems[:40]))
        # the scan finds a secret where there is one
        probe = os.path.join(w.wd, "probe.log")
        with open(probe, "w") as f:
            f.write("x %s y\n" % secrets[0])
        self.assertTrue(token_leaks(w, extra_logs=[probe], secrets=secrets[:1]))
        os.unlink(probe)


# --------------------------------------------------------------------------
class TestWebhookRules(WebhookCase):
    """KYC and KYB deliveries matched by rules into share requests, then
    envelopes, then the partner's imported records; unmatched deliveries;
    a redelivery (byte for byte, and re-signed as the vendor's retries
    are) and a second change to the same status give one share."""

    def test_rules_end_to_end(self):
        w = self.world("wh-rules")
        X, Y1, Y2 = w.X, w.Y1, w.Y2
        iss = self.issuer(w)
        imp = self.importer(w)
        p = self.proxy(w, iss)
        other_wf = w.sb.workflow(X.key, "kyc")
        sb = w.sb

        a = sb.finished_session(X.key, X.wf["kyc"], "Approved", "user-a")
        b = sb.finished_session(X.key, X.wf["kyc"], "In Review", "user-b")
        c = sb.finished_session(X.key, X.wf["kyc"], "Declined", "user-c")
        d = sb.finished_session(X.key, X.wf["kyb"], "APPROVED", "biz-d")
        e = sb.finished_session(X.key, X.wf["kyb"], "DECLINED", "biz-e")
        f = sb.finished_session(X.key, other_wf, "Approved", "user-f")
        want = {  # share_id -> (session, partner, vendor_data of the request)
            share_id(a, Y1.id, "kyc", "Approved"): (a, Y1, "y1-user-a"),
            share_id(a, Y2.id, "kyc", "Approved"): (a, Y2, "y2-user-a"),
            share_id(b, Y1.id, "kyc", "In Review"): (b, Y1, "y1-user-b"),
            share_id(b, Y2.id, "kyc", "In Review"): (b, Y2, "y2-user-b"),
            share_id(d, Y1.id, "kyb", "APPROVED"): (d, Y1, None),
        }
        answers = {}
        for sid, st, n in ((a, "Approved", 2), (b, "In Review", 2), (c, "Declined", 0),
                           (d, "APPROVED", 1), (e, "DECLINED", 0), (f, "Approved", 0)):
            rec = p.wait(sid, st, 30, answered=200)
            doc = json.loads(rec["answer"])
            self.assertEqual(doc, {"result": "accepted", "records": n},
                             "%s %s: %r" % (sid, st, doc))
            answers[sid] = rec
        self.note("deliveries answered")

        # the share requests, exactly as the rules say
        reqs = self.requests(w)
        self.assertEqual(sorted(k for k, _ in reqs), sorted(want))
        for key, r in reqs:
            sid, partner, vd = want[key]
            self.assertEqual(r["share_id"], key)
            self.assertEqual(r["session_id"], sid)
            self.assertEqual(r["for_application_id"], partner.id)
            self.assertEqual(r.get("vendor_data"), vd)
            self.assertEqual(r.get("ttl_in_seconds"), 600 if sid == d else None)

        # envelopes, and the partner's records
        wait_stable(lambda: sum(self.envelopes(w).values()), len(want), 90,
                    what="envelopes")
        self.assertEqual(self.envelopes(w), collections.Counter(want.keys()))
        out = w.follow(w.t["imported"])
        wait_stable(out.count, 3, 90, what="imported records")
        recs = [json.loads(r["value"]) for r in out.records()]
        self.assertEqual(sorted(r["share_id"] for r in recs),
                         sorted(k for k, v in want.items() if v[1] is Y1))
        for r in recs:
            sid, _, vd = want[r["share_id"]]
            self.assertEqual(r["shared_from_session"], sid)
            self.assertEqual(r["vendor_data"], vd or r["share_id"])
            self.assertEqual(r["session_kind"], "business" if sid == d else "user")
            self.assertEqual(r["status"], sb.decision(X.key, sid)["status"])

        # a redelivery, byte for byte: acknowledged, nothing done
        st, doc = self.resend(p, answers[a])
        self.assertEqual((st, doc), (200, {"result": "duplicate"}))
        # ... without its V2 header (remembered under the Simple one too)
        rec = dict(answers[a], headers={k: v for k, v in answers[a]["headers"].items()
                                        if k != "x-signature-v2"})
        self.assertEqual(self.resend(p, rec), (200, {"result": "duplicate"}))
        self.assertEqual(len(self.requests(w)), len(want))
        # the vendor's retry: re-signed with a new timestamp -- acted on
        # again, the same share_ids, deduplicated by the issuer
        st, doc = self.post(p, answers[a]["payload"], w.secret, int(time.time()) - 5)
        self.assertEqual((st, doc), (200, {"result": "accepted", "records": 2}))
        # a second change to the same status: Approved -> Declined -> Approved
        sb.update_status(X.key, a, "Declined")
        p.wait(a, "Declined", 30, answered=200)
        sb.update_status(X.key, a, "Approved")
        wait_for_n = 2
        h.wait_for(lambda: len([r for r in p.records(a, "Approved")
                                if r["status"] == 200]) >= wait_for_n, 30,
                   "the second Approved delivery")
        # 2 + 2 more requests, same share_ids
        h.wait_for(lambda: len(self.requests(w)) == len(want) + 4, 30,
                   "the repeated share requests")
        c2 = collections.Counter(k for k, _ in self.requests(w))
        self.assertEqual(set(c2), set(want))
        iss.wait_log(r"repeated within the dedup window", 60, count=4)
        time.sleep(2)
        self.assertEqual(self.envelopes(w), collections.Counter(want.keys()),
                         "a redelivery or a repeated status made a second share")
        self.assertEqual(out.count(), 3)

        self.assertEqual(imp.stop(), 0)
        self.assertEqual(iss.stop(), 0)
        self.assertEqual(w.kafka.consume_all(w.t["issuer_dlq"]), [])
        stats = iss.last_stats()
        self.assertEqual(stats.get("rules matched"), 5, stats)      # a, b, d, a, a
        self.assertEqual(stats.get("unmatched"), 4, stats)          # c, e, f, a Declined
        self.assertEqual(stats.get("webhooks accepted"), 9, stats)
        self.assertEqual(stats.get("duplicate"), 2, stats)
        self.assertEqual(stats.get("repeats"), 4, stats)
        self.assertEqual(stats.get("published"), 5, stats)
        # unmatched deliveries are logged with the session id only
        log = iss.logtext()
        for sid in (c, e, f):
            self.assertRegex(log, r"delivery for session %s matched no rule" % sid)
        self.assertNotIn("user-c", log)
        self.assertNoSecretLeak(w, [w.secret])


# --------------------------------------------------------------------------
class TestWebhookRefusals(WebhookCase):
    """Forged, tampered, stale, future-dated, oversized, duplicate-key,
    wrong-secret, unsigned and non-UTF-8 deliveries are refused with a
    JSON detail and produce nothing; Simple-only deliveries are not acted
    on by the rules."""

    def test_refused(self):
        w = self.world("wh-refuse")
        X, Y1, Y2 = w.X, w.Y1, w.Y2
        iss = self.issuer(w, extra={"webhook.body_max": 65536})
        p = self.proxy(w, iss)
        # one real delivery, to learn its shape (it is acted on)
        s0 = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "real")
        real = p.wait(s0, "Approved", 30, answered=200)["payload"]
        h.check(real["decision"]["workflow_id"] == X.wf["kyc"])
        # the victim: a session that is not finished; a delivery that
        # says it is Approved must never be acted on
        v = w.sb.finished_session(X.key, X.wf["kyc"], None)
        forged = copy.deepcopy(real)
        forged["session_id"] = v
        forged["vendor_data"] = "victim"
        forged["decision"]["session_id"] = v
        other = w.sb.webhook_config(Y1.key)["secret_shared_key"]
        now = int(time.time())
        cases = []

        def case(what, want, **kw):
            st, doc = self.post(p, kw.pop("payload", forged), kw.pop("secret", w.secret),
                                **kw)
            cases.append((what, st, want, doc))

        case("forged (random secret)", 401, secret=uuid.uuid4().hex)
        case("wrong secret (another application's)", 401, secret=other)
        case("tampered (vendor_data changed after signing)", 401,
             mangle=lambda b: b.replace(b'"victim"', b'"tampered"'))
        case("tampered (workflow_id changed after signing)", 401,
             mangle=lambda b: b.replace(X.wf["kyc"].encode(), X.wf["kyb"].encode()))
        case("stale (301 s old)", 401, ts=now - 301)
        case("future-dated (301 s ahead)", 401, ts=now + 301)
        big = copy.deepcopy(forged)
        big["decision"]["padding"] = "x" * 70000
        case("oversized (over webhook.body_max)", 413, payload=big)
        case("duplicate key", 400, mangle=lambda b: b.replace(
            b'"status": "Approved"', b'"status": "Approved", "status": "Approved"', 1))
        case("no signature header", 401, secret=None)
        case("no X-Timestamp", 401, drop=("X-Timestamp",))
        case("invalid UTF-8", 400, mangle=lambda b: b.replace(b'"victim"', b'"vict\xffm"'))
        # header timestamp and body timestamp disagree
        case("X-Timestamp other than the body's", 401,
             headers={"X-Timestamp": str(now - 10)})
        # Simple only: verified, but it does not cover the decision; the
        # rules do not act on it (issuer.rules_allow_simple = false)
        st, doc = self.post(p, forged, w.secret, v2=False)
        cases.append(("Simple signature only", st, 200, doc))

        problems = []
        for what, st, want, doc in cases:
            if st != want:
                problems.append("%s: %d, want %d (%r)" % (what, st, want, doc))
            elif want != 200 and not (isinstance(doc, dict) and doc.get("detail")):
                problems.append("%s: no JSON detail: %r" % (what, doc))
        if problems:
            self.fail("\n".join(problems))
        self.assertEqual(cases[-1][3], {"result": "accepted", "records": 0})
        # the same detail whichever check of the signature failed
        details = {doc["detail"] for what, st, want, doc in cases
                   if what.split(" ")[0] in ("forged", "wrong", "tampered", "stale",
                                             "future-dated")}
        self.assertEqual(len(details), 1, details)

        # other routes and methods
        direct = h.Http(iss.intake)
        st, hd, ans = direct.raw("GET", PATH)
        self.assertEqual(st, 405)
        st, hd, ans = direct.raw("POST", "/other", b"{}")
        self.assertEqual(st, 404)
        self.assertIn("detail", json.loads(ans))
        direct.close()

        # nothing reached the request topic but the real delivery's shares
        time.sleep(2)
        keys = sorted(k for k, _ in self.requests(w))
        self.assertEqual(keys, sorted([share_id(s0, Y1.id, "kyc", "Approved"),
                                       share_id(s0, Y2.id, "kyc", "Approved")]))
        self.assertEqual(iss.stop(), 0)
        stats = iss.last_stats()
        self.assertEqual(stats.get("unverified"), 1, stats)
        # the server answers 413 before the intake sees the delivery
        self.assertEqual(stats.get("refused"), len(cases) - 2, stats)
        self.assertNotIn(v, "".join(l for l in iss.logtext().splitlines(True)
                                    if "matched" in l))
        self.assertNoSecretLeak(w, [w.secret, other])


# --------------------------------------------------------------------------
class TestWebhookRotation(WebhookCase):
    """rotate_secret_key with two secrets configured: deliveries signed
    with the new one (the sandbox's) and the old one (in flight during
    the rotation) are both accepted; with only the new one configured,
    the old one is refused."""

    def test_two_secrets(self):
        w = self.world("wh-rotate")
        X, Y1, Y2 = w.X, w.Y1, w.Y2
        old = w.secret
        iss = self.issuer(w, name="issuer")
        p = self.proxy(w, iss)
        s1 = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "before")
        tmpl = p.wait(s1, "Approved", 30, answered=200)["payload"]

        new = w.sb.set_webhook(X.key, rotate=True)["secret_shared_key"]
        self.assertNotEqual(new, old)
        w.secret = new
        # the daemon still has only the old secret: the sandbox's
        # deliveries are refused (and retried)
        s2 = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "during")
        p.wait(s2, "Approved", 30, answered=401)
        self.assertEqual(iss.stop(), 0)

        iss2 = self.issuer(w, secret=new, previous=old, restart=iss)
        p.target.close()
        p.target = h.Http(iss2.intake)
        s3 = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "after")
        p.wait(s3, "Approved", 30, answered=200)
        # sessions whose own deliveries go nowhere (404): only ours count
        w.sb.set_webhook(X.key, p.url + "/nowhere")
        s4, s5 = (w.sb.finished_session(X.key, X.wf["kyc"], "Approved", v)
                  for v in ("old", "new-only"))
        p.wait(s4, "Approved", 30, answered=404)
        p.wait(s5, "Approved", 30, answered=404)
        # signed with the old secret (sent before the rotation, say)
        old_one = dict(copy.deepcopy(tmpl), session_id=s4, vendor_data="old")
        st, doc = self.post(p, old_one, old)
        self.assertEqual((st, doc), (200, {"result": "accepted", "records": 2}))
        # and s2 again, as the vendor's retry would, now with the new one
        st, doc = self.post(p, dict(copy.deepcopy(tmpl), session_id=s2), new)
        self.assertEqual((st, doc), (200, {"result": "accepted", "records": 2}))
        st, doc = self.post(p, dict(copy.deepcopy(tmpl), session_id=s4), uuid.uuid4().hex)
        self.assertEqual(st, 401)
        self.assertEqual(iss2.stop(), 0)

        # only the new secret: the old one is refused
        iss3 = self.issuer(w, secret=new, restart=iss)
        p.target.close()
        p.target = h.Http(iss3.intake)
        st, doc = self.post(p, dict(copy.deepcopy(tmpl), session_id=s5), old)
        self.assertEqual(st, 401)
        st, doc = self.post(p, dict(copy.deepcopy(tmpl), session_id=s5), new)
        self.assertEqual((st, doc), (200, {"result": "accepted", "records": 2}))

        want = collections.Counter(share_id(s, Y.id, "kyc", "Approved")
                                   for s in (s1, s2, s3, s4, s5) for Y in (Y1, Y2))
        wait_stable(lambda: sum(self.envelopes(w).values()), len(want), 90,
                    what="envelopes")
        self.assertEqual(self.envelopes(w), want)
        self.assertEqual(iss3.stop(), 0)
        self.assertNoSecretLeak(w, [old, new])


# --------------------------------------------------------------------------
class TestWebhookOutage(WebhookCase):
    """A broker that stops answering (a private one, SIGSTOPped): the
    intake answers 503 with Retry-After while Kafka cannot take the
    records, 200 once it is back; exactly one share in the end."""

    def test_broker_outage(self):
        base = os.environ.get("KB_TEST_TMP") or "/tmp"
        bdir = os.path.join(base, "kafka-outage-%d-%s" % (os.getpid(), uuid.uuid4().hex[:6]))
        self.note("starting a private broker in %s", bdir)
        pb = h.PrivateBroker(bdir)
        self.brokers.append(pb)
        w = self.world("wh-outage", kafka=pb.kafka())
        X, Y1, Y2 = w.X, w.Y1, w.Y2
        iss = self.issuer(w)
        p = self.proxy(w, iss)
        s0 = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "warm-up")
        p.wait(s0, "Approved", 60, answered=200)
        iss.wait_log(r"issuer: running", 60)

        self.note("pausing the broker")
        pb.pause()
        s1 = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "outage")
        rec = p.wait(s1, "Approved", 30, answered=503)
        self.assertEqual(rec["answer_headers"].get("retry-after"), "1")
        self.assertIn("detail", json.loads(rec["answer"]))
        # our own retry while it is down: 503 again
        st, doc = self.post(p, rec["payload"], w.secret)
        self.assertEqual(st, 503, doc)
        self.note("resuming the broker")
        pb.resume()

        # the vendor's retries (or ours, re-signed as the vendor's are, once
        # the sandbox gave up) carry the delivery through
        def accepted():
            if p.records(s1, "Approved") and any(
                    r["status"] == 200 for r in p.records(s1, "Approved")):
                return True
            st, doc = self.post(p, rec["payload"], w.secret)
            return st == 200 and doc["records"] == 2
        h.wait_for(accepted, 90, "a 200 for the delivery after the outage", 1.0)

        want = collections.Counter(share_id(s, Y.id, "kyc", "Approved")
                                   for s in (s0, s1) for Y in (Y1, Y2))
        wait_stable(lambda: sum(self.envelopes(w).values()), len(want), 120,
                    settle=3.0, what="envelopes")
        self.assertEqual(self.envelopes(w), want,
                         "not exactly one share per share_id after the outage")
        self.assertEqual(iss.stop(), 0)
        self.assertNoSecretLeak(w, [w.secret])


# --------------------------------------------------------------------------
class TestWebhookShutdown(WebhookCase):
    """SIGTERM while deliveries keep coming: the daemon exits 0, no
    delivery is answered 500 or left without an answer, and every
    delivery answered 200 has its share requests on the request topic
    (200 means acked by Kafka, also at shutdown)."""

    def test_sigterm_under_load(self):
        w = self.world("wh-stop")
        X, Y1, Y2 = w.X, w.Y1, w.Y2
        iss = self.issuer(w)
        p = self.proxy(w, iss)
        s0 = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "tmpl")
        tmpl = p.wait(s0, "Approved", 30, answered=200)["payload"]
        w.sb.set_webhook(X.key, p.url + "/nowhere")
        results, stop = [], threading.Event()

        def sender():
            http = h.Http(iss.intake, timeout=20)
            while not stop.is_set():
                sid = str(uuid.uuid4())
                body = dict(copy.deepcopy(tmpl), session_id=sid, timestamp=int(time.time()))
                try:
                    st, _, ans = http.raw("POST", PATH, json.dumps(body).encode(),
                                          headers=h.wh_headers(w.secret, body))
                except OSError as e:
                    st, ans = None, str(e).encode()
                results.append((sid, st, ans))
                if st is None:
                    time.sleep(0.05)
            http.close()

        threads = [threading.Thread(target=sender) for _ in range(4)]
        for t in threads:
            t.start()
        h.wait_for(lambda: sum(1 for r in results if r[1] == 200) >= 20, 60,
                   "20 accepted deliveries")
        self.assertEqual(iss.stop(), 0, "issuer exit status under load")
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        self.answers += [r[2] for r in results]
        codes = collections.Counter(r[1] for r in results)
        self.note("answers: %r", dict(codes))
        self.assertLessEqual(set(codes), {200, 503, None}, codes)
        ok = [sid for sid, st, _ in results if st == 200]
        want = sorted(share_id(sid, Y.id, "kyc", "Approved") for sid in ok + [s0]
                      for Y in (Y1, Y2))
        got = sorted(set(k for k, _ in self.requests(w)))
        missing = sorted(set(want) - set(got))
        self.assertEqual(missing, [], "answered 200 but not in Kafka")
        self.assertNotIn("ERROR: AddressSanitizer", iss.logtext())
        self.assertNoSecretLeak(w, [w.secret])


# --------------------------------------------------------------------------
class TestWebhookConfig(WebhookCase):
    """`config check --role issuer` and the daemon itself report webhook and
    rule mistakes as `file:line: reason`, exit 2, before any connection."""

    def test_bad_configs(self):
        w = self.world("wh-conf")
        sec = w.webhook_secret_file(w.X, w.secret)
        good = dict(self.rules(w), **{"webhook.listen": "127.0.0.1:0",
                                      "webhook.secret": sec})
        cases = [
            ("rule.kyc.partners", {"rule.kyc.partners": "y1, nobody"}, "unknown partner"),
            ("rule.kyc.statuses", {"rule.kyc.statuses": "Approved, Pending"},
             "not a finished status"),
            ("rule.kyc.workflow_id", {"rule.kyc.workflow_id": "not-a-uuid"}, "UUID"),
            ("rule.kyb.ttl_s", {"rule.kyb.ttl_s": "30"}, "ttl"),
            ("rule.kyc.vendor_data", {"rule.kyc.vendor_data": "{nope}"}, "vendor_data"),
            ("webhook.listen", {"webhook.listen": "192.0.2.1:8490"}, "loopback"),
            ("webhook.listen", {"webhook.listen": "127.0.0.1"}, "webhook.listen"),
            ("webhook.secret", {"webhook.secret": "file:/nonexistent/secret"},
             "webhook.secret"),
            ("webhook.path", {"webhook.path": "hooks"}, "webhook.path"),
        ]
        problems = []
        for i, (key, change, mention) in enumerate(cases):
            c = dict(good, **change)
            conf = w.issuer_conf(w.X, [w.Y1, w.Y2], name="bad-%d" % i, extra=c)
            problems += self.check_bad(conf, key, mention)
        # rules without an intake could never fire
        c = self.rules(w)
        conf = w.issuer_conf(w.X, [w.Y1, w.Y2], name="bad-nolisten", extra=c)
        problems += self.check_bad(conf, "rule.kyc.workflow_id", "webhook.listen")
        # an intake without its secret: the error points at webhook.listen
        conf = w.issuer_conf(w.X, [w.Y1, w.Y2], name="bad-nosecret",
                             extra={"webhook.listen": "127.0.0.1:0"})
        problems += self.check_bad(conf, "webhook.listen", "webhook.secret")
        # the good one passes
        conf = w.issuer_conf(w.X, [w.Y1, w.Y2], name="good", extra=good)
        rc, out, err = h.run_cli(["config", "check", "-c", conf, "--role", "issuer"])
        if rc != 0:
            problems.append("good config: exit %d: %s" % (rc, err))
        if problems:
            self.fail("\n".join(problems))

    def check_bad(self, conf, key, mention):
        out = []
        line = h.conf_line(conf, key)
        rx = r"^(?:issuer: )?%s:%d: " % (re.escape(conf), line)
        for args in (["config", "check", "-c", conf, "--role", "issuer"],
                     ["issuer", "-c", conf]):
            t0 = time.monotonic()
            rc, _, err = h.run_cli(args, timeout=60)
            if rc != 2 or not any(re.match(rx, l) for l in err.splitlines()) \
                    or mention not in err:
                out.append("%s (%s): exit %d, want 2 and `%s:%d: ...%s...`: %r"
                           % (key, args[0], rc, conf, line, mention, err))
            if time.monotonic() - t0 > 10:
                out.append("%s (%s): took %.1f s" % (key, args[0], time.monotonic() - t0))
        return out


if __name__ == "__main__":
    unittest.main()
