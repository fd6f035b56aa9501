"""test_status_updates.py -- black-box tests of the importer's status
updates: a session imported In Review is approved by the partner's
compliance team (the sandbox's update-status, its real signed webhook,
through a recording proxy into the importer's intake) and arrives on the
status topic once; older statuses redelivered late publish nothing, also
after a restart; a session the bridge did not import is ignored. Real
Kafka broker, real sandbox, Python 3 stdlib unittest.

Run (CTest does, see status_updates.cmake):
  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \\
  KB_TEST_TMP=/tmp/kbt python3 -m unittest test_status_updates

The redeliveries are re-signed here, from API-CONTRACT.md, never by the C
code; the event ids expected are computed here from
schemas/session-status.schema.json. KB_KEEP=1 keeps the work directories.
"""
import copy
import datetime
import hashlib
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, wait_stable  # noqa: E402

PATH = "/webhooks/vendor"
SUMMARY_KEYS = {"status", "score", "method", "role", "type", "total_hits"}


def event_id(session_id, status, status_at, status_seq):
    m = b"kyc-bridge/session-status/v1\0" + session_id.encode() + b"\0" + \
        status.encode() + b"\0" + str(status_at).encode() + b"\0" + \
        str(status_seq).encode()
    return "ev-" + hashlib.blake2b(m, digest_size=16).hexdigest()


def unix(iso):
    return int(datetime.datetime.fromisoformat(
        iso.replace("Z", "+00:00")).timestamp())


class TestStatusUpdates(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.w = None
        self.proxy = None
        self.t0 = time.monotonic()

    def note(self, fmt, *args):
        print("[+%.1fs] %s" % (time.monotonic() - self.t0, fmt % args),
              file=sys.stderr)

    def tearDown(self):
        r = getattr(getattr(self, "_outcome", None), "result", None)
        failed = r is not None and any(t is self for t, _ in
                                       list(r.failures) + list(r.errors))
        if self.proxy:
            self.proxy.close()
        if self.w:
            self.w.close(keep=failed)
            if failed:
                print("[%s] kept %s" % (self.id(), self.w.wd), file=sys.stderr)

    # ---- helpers ----

    def start_importer(self, restart=False):
        """Waits for the importer's intake (after restarting it)."""
        d = self.imp
        if restart:
            d.start()
        d.wait_log(r"listening on 127\.0\.0\.1:%d \(port %d\)"
                   % (self.port, self.port), 60, count=d.starts)
        return d

    def resign(self, rec, ts=None):
        """Sends the recorded delivery @rec again as the vendor's retry
        would: the same body with a new timestamp, signed again.
        Returns (status, answer doc)."""
        payload = copy.deepcopy(rec["payload"])
        payload["timestamp"] = int(time.time()) if ts is None else ts
        hd = h.wh_headers(self.secret, payload)
        st, _, ans = self.proxy.post(PATH, json.dumps(payload).encode(), hd)
        return st, json.loads(ans) if ans else None

    def status_records(self):
        out = []
        for r in self.w.kafka.consume_all(self.status_topic):
            r["doc"] = json.loads(r["value"])
            out.append(r)
        return out

    def check_summary(self, dec):
        for k, v in dec.items():
            self.assertNotIsInstance(v, dict, "summary keeps object %s" % k)
            if isinstance(v, list):
                for el in v:
                    self.assertLessEqual(set(el), SUMMARY_KEYS, k)

    # ---- the test ----

    def test_in_review_import_approved_then_declined(self):
        w = self.w = World("status", sandbox_args=["--webhook-backoff-ms", "1000"])
        X, Y = w.app("x"), w.app("y")
        self.status_topic = w.topic("session-status", 2)
        self.secret = w.sb.webhook_config(Y.key)["secret_shared_key"]
        self.port = h.free_port()
        conf = w.importer_conf(
            Y, [(X, {"trust_review": "false", "record": "summary"})],
            name="importer-y",
            extra={"webhook.listen": "127.0.0.1:%d" % self.port,
                   "webhook.secret": w.webhook_secret_file(Y, self.secret),
                   "webhook.kafka_timeout_ms": 2000,
                   "webhook.retry_after_s": 1,
                   "importer.status_topic": self.status_topic})
        self.imp = w.daemon("importer", conf, "importer-y")
        self.start_importer()
        iss = w.daemon("issuer", w.issuer_conf(X, [Y]), "issuer")
        # the partner application's webhooks go to the importer's intake
        self.proxy = p = h.WebhookProxy("http://127.0.0.1:%d" % self.port)
        cfg = w.sb.set_webhook(Y.key, p.url + PATH)
        self.assertEqual(cfg["secret_shared_key"], self.secret)

        # an Approved session of X, shared with Y, lands In Review
        src = w.sb.finished_session(X.key, X.wf["kyc"], "Approved", "src-1")
        req = h.share_request(src, Y.id, vendor_data="y-customer-1")
        w.produce_requests([req])
        out = w.follow(w.t["imported"])
        wait_stable(out.count, 1, 90, what="the imported record")
        imported = json.loads(out.records()[0]["value"])
        sid, vd = imported["session_id"], imported["vendor_data"]
        self.assertEqual(imported["status"], "In Review")
        self.assertEqual(vd, "y-customer-1")
        self.note("imported as %s", sid)
        # the import's own In Review delivery is answered 200 (after a 503
        # while the import was not committed, or ignored if it came before
        # the import was known) and publishes nothing
        created = p.wait(sid, "In Review", 60, answered=200)
        self.assertEqual(json.loads(created["answer"])["records"], 0)

        # compliance approves it: one status update
        w.sb.update_status(Y.key, sid, "Approved", "looks fine")
        rec = p.wait(sid, "Approved", 60, answered=200)
        self.assertEqual(json.loads(rec["answer"]),
                         {"result": "accepted", "records": 2})
        wait_stable(lambda: len(self.status_records()), 1, 30,
                    what="the status update")
        recs = self.status_records()
        self.assertEqual(len(recs), 1, recs)
        r = recs[0]
        d = r["doc"]
        decision = w.sb.decision(Y.key, sid)
        review = decision["reviews"][-1]
        self.assertEqual(review["new_status"], "Approved")
        self.assertEqual(r["key"], vd)
        self.assertEqual(d["format"], "kyc-bridge-session-status/1")
        self.assertEqual(d["share_id"], req["share_id"])
        self.assertEqual(d["session_id"], sid)
        self.assertEqual(d["shared_from_session"], src)
        self.assertEqual(d["issuer_application_id"], X.id)
        self.assertEqual(d["partner_application_id"], Y.id)
        self.assertEqual(d["session_kind"], "user")
        self.assertEqual(d["vendor_data"], vd)
        self.assertEqual((d["old_status"], d["new_status"]), ("In Review", "Approved"))
        self.assertEqual(d["status_at"], unix(review["created_at"]))
        self.assertEqual(d["status_seq"], len(decision["reviews"]))
        self.assertEqual(d["event_id"], event_id(sid, "Approved", d["status_at"],
                                                 d["status_seq"]))
        self.assertEqual(d["record"], "summary")
        self.assertEqual(d["decision"]["session_id"], sid)
        self.assertEqual(d["decision"]["status"], "Approved")
        self.check_summary(d["decision"])

        # the In Review delivery again, re-signed (a late vendor retry):
        # older than the approval, nothing
        self.assertEqual(self.resign(created), (200, {"result": "accepted", "records": 0}))

        # a session of Y's own, not imported by the bridge: ignored
        own = w.sb.finished_session(Y.key, Y.wf["kyc"], "Approved", "own-1")
        ans = p.wait(own, "Approved", 60, answered=200)
        self.assertEqual(json.loads(ans["answer"]), {"result": "accepted", "records": 0})
        time.sleep(1.0)
        self.assertEqual(len(self.status_records()), 1)
        self.assertEqual(self.imp.stop(), 0)
        s = self.imp.last_stats()
        self.assertEqual(s.get("status updates"), 1, s)
        self.assertGreaterEqual(s.get("status stale", 0), 1, s)
        self.assertGreaterEqual(s.get("status not imported", 0), 1, s)
        self.note("first life: %s", s)

        # restart: the index comes back from the state topic
        self.start_importer(restart=True)
        self.assertEqual(self.resign(created), (200, {"result": "accepted", "records": 0}))
        w.sb.update_status(Y.key, sid, "Declined", "second look")
        rec2 = p.wait(sid, "Declined", 60, answered=200)
        self.assertEqual(json.loads(rec2["answer"])["records"], 2)
        # the approval redelivered after the decline: older, nothing
        self.assertEqual(self.resign(rec), (200, {"result": "accepted", "records": 0}))
        wait_stable(lambda: len(self.status_records()), 2, 30,
                    what="the second status update")
        recs = self.status_records()
        self.assertEqual([(x["doc"]["old_status"], x["doc"]["new_status"]) for x in recs],
                         [("In Review", "Approved"), ("Approved", "Declined")])
        self.assertEqual(recs[1]["key"], vd)
        self.assertEqual(recs[1]["partition"], recs[0]["partition"])
        self.assertNotEqual(recs[1]["doc"]["event_id"], recs[0]["doc"]["event_id"])

        # the newest status redelivered (the vendor got no 200): the same
        # change again, with the same event id
        self.assertEqual(self.resign(rec2)[1], {"result": "accepted", "records": 2})
        wait_stable(lambda: len(self.status_records()), 3, 30, what="the repeat")
        recs = self.status_records()
        self.assertEqual(recs[2]["doc"]["event_id"], recs[1]["doc"]["event_id"])

        self.assertEqual(self.imp.stop(), 0)
        self.assertEqual(iss.stop(), 0)
        s = self.imp.last_stats()
        self.assertEqual((s.get("status updates"), s.get("status repeats")), (1, 1), s)
        self.assertEqual(s.get("status stale"), 2, s)
        # the importer's state topic: the share, and the index's record
        keys = sorted(x["key"] for x in w.kafka.consume_all(w.t["importer_state"]))
        # approved, declined, the repeat
        self.assertEqual(keys, sorted([req["share_id"]] + ["status:" + sid] * 3))
        for x in w.kafka.consume_all(w.t["importer_state"]):
            doc = json.loads(x["value"])
            self.assertEqual(doc["ref"], sid)
            self.assertEqual(doc["vendor_data"], vd)


if __name__ == "__main__":
    unittest.main()
