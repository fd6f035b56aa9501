"""test_pipeline.py -- black-box tests of the issuer and importer daemons
against a real Kafka broker and the real sandbox (Python 3 stdlib unittest).

Run one class at a time (CTest does, see pipeline.cmake):
  KB_BIN=build/kyc-bridge KB_FORGE=build/tests/kb_forge \
  KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \
  python3 -m unittest test_pipeline.TestEndToEnd        (from tests/blackbox)

Every test makes its own World: topics under a fresh prefix, its own
consumer groups and transactional ids, its own sandbox. KB_KEEP=1 keeps the
work directories (logs, configs); KB_TEST_SEED fixes the random kill points.
"""
import collections
import json
import os
import random
import re
import signal
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from group_leader import GroupLeader  # noqa: E402
from pipeline_world import (FINISHED, IN_REVIEW, KYB_ARRAYS, KYC_ARRAYS,  # noqa: E402
                            World, WorldsCase, exactly_once_report, metrics_leak_findings,
                            token_leaks, wait_metrics, wait_stable)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = int(os.environ.get("KB_TEST_SEED") or time.time_ns() % 1000000)

IMPORTED_REQUIRED = ("format", "share_id", "issuer_application_id",
                     "partner_application_id", "session_id", "shared_from_session",
                     "session_kind", "status", "vendor_data", "workflow_id",
                     "imported_at", "reconciled", "record", "session")
DLQ_REQUIRED = ("format", "share_id", "stage", "reason", "detail", "at", "source")
SUMMARY_KEEP = {"status", "score", "method", "role", "type", "total_hits"}
# Members that carry documents, images, identity data or AML details: never
# in a summary record.
PERSONAL_KEYS = {"document_number", "portrait_image", "front_image", "back_image",
                 "reference_image", "source_image", "target_image", "video_url",
                 "document_file", "file_url", "hits", "screened_name",
                 "first_name", "last_name", "full_name", "date_of_birth",
                 "address", "phone_number", "email", "ip_address",
                 "registration_number", "company_name", "kyc", "answers",
                 "extracted_data", "name_on_document", "registered_address"}


def schema_enum(name, path):
    with open(os.path.join(ROOT, "schemas", name)) as f:
        doc = json.load(f)
    for p in path:
        doc = doc[p]
    return doc


class PipelineCase(WorldsCase, unittest.TestCase):
    """Base: a World per test, closed (and kept on failure) afterwards."""

    maxDiff = 4000

    def setUp(self):
        super().setUp()
        print("\n[%s] seed %d" % (self.id(), SEED), file=sys.stderr)

    def world(self, tag, **kw):
        # every daemon serves /metrics (a port of its own, in its log):
        # the suites check the counters, and the leak scan reads them
        kw.setdefault("metrics", True)
        w = World(tag, **kw)
        self.worlds.append(w)
        return w

    def assertNoProblems(self, problems, what):
        if problems:
            self.fail("%s: %d problem(s):\n  %s" % (what, len(problems),
                                                      "\n  ".join(problems[:60])))

    def assertMetrics(self, d, published=None, dead=None, skipped=None,
                      replayed=None, vendor_ok=None, vendor_error=None, timeout=30):
        """Scrapes daemon @d's /metrics (prometheus_client's parser) until
        its counters are what the test knows happened, then checks them
        exactly: records by outcome (@published; @skipped: another
        partner's envelopes; @replayed: a share_id already handled; @dead:
        a dict reason -> count, every other reason 0), vendor calls
        (@vendor_ok, @vendor_error), none in flight; and that the
        exposition keeps the conventions. None: not checked. Returns the
        Metrics. The histograms must agree with the counters: one commit
        duration per committed transaction, their records adding up to the
        records committed, one vendor latency per answered attempt, one
        2xx attempt per successful vendor call, and (importer) one
        hand-off per published record."""
        role = d.role
        rec, dl = "kyc_bridge_records_total", "kyc_bridge_dead_letters_total"
        calls = "kyc_bridge_vendor_calls_total"
        want = {}
        if published is not None:
            want[(rec, (("daemon", role), ("outcome", "published")))] = published
        if skipped is not None:
            want[(rec, (("daemon", role), ("outcome", "skipped")))] = skipped
        if replayed is not None:
            want[(rec, (("daemon", role), ("outcome", "replayed")))] = replayed
        if dead is not None:
            want[(rec, (("daemon", role), ("outcome", "dead_lettered")))] = \
                sum(dead.values())
        if vendor_ok is not None:
            want[(calls, (("daemon", role), ("result", "ok")))] = vendor_ok
        if vendor_error is not None:
            want[(calls, (("daemon", role), ("result", "error")))] = vendor_error

        def got(m):
            return {k: m.get(k[0], 0, **dict(k[1])) for k in want}

        def settled(m):
            return got(m) == want and (
                dead is None or {l["reason"]: v for l, v in m.samples(dl, daemon=role)
                                 if v} == {r: n for r, n in dead.items() if n}) and \
                m.get("kyc_bridge_records_in_flight", daemon=role) == 0
        try:
            m = wait_metrics(d, settled, timeout, "%s /metrics to settle" % d.name)
        except AssertionError:
            m = d.scrape()
            self.assertEqual(
                {"%s%s" % (k[0], dict(k[1])): v for k, v in got(m).items()},
                {"%s%s" % (k[0], dict(k[1])): v for k, v in want.items()},
                "%s /metrics" % d.name)
            if dead is not None:
                self.assertEqual({l["reason"]: v for l, v in m.samples(dl, daemon=role) if v},
                                 {r: n for r, n in dead.items() if n},
                                 "%s /metrics dead letters by reason" % d.name)
            self.assertEqual(m.get("kyc_bridge_records_in_flight", daemon=role), 0)
            raise
        for name in (rec, dl, calls, "kyc_bridge_transactions_total"):
            self.assertEqual(m.type_of(name), "counter", name)
        self.assertEqual(m.get("kyc_bridge_transactions_total", daemon=role,
                               result="aborted"), 0, "%s: aborted transactions" % d.name)
        if published or dead:
            self.assertGreaterEqual(m.get("kyc_bridge_transactions_total", daemon=role,
                                          result="committed"), 1)
        self.assertEqual(m.total("kyc_bridge_metrics_label_sets_dropped_total"), 0)
        self.assertNoProblems(h.metrics_convention_problems(m),
                              "%s /metrics conventions" % d.name)
        self.assertHistogramsAgree(m, role, vendor_ok)
        return m

    def assertHistogramsAgree(self, m, role, vendor_ok):
        """The per-event families of /metrics against the counters (a run
        with no aborted transaction, which assertMetrics checked)."""
        committed = m.total("kyc_bridge_records_total", daemon=role)
        self.assertEqual(m.get("kyc_bridge_transaction_records_sum", daemon=role), committed,
                         "%s: records per transaction add up to the records" % role)
        self.assertEqual(m.get("kyc_bridge_transaction_commit_duration_seconds_count",
                               daemon=role),
                         m.get("kyc_bridge_transaction_records_count", daemon=role),
                         "%s: one commit duration per committed transaction" % role)
        reqs = m.samples("kyc_bridge_vendor_requests_total", daemon=role)
        if vendor_ok is not None:
            self.assertEqual(sum(v for l, v in reqs if l["status"].startswith("2")), vendor_ok,
                             "%s: 2xx attempts vs vendor calls ok" % role)
        for ep in {l["endpoint"] for l, _ in reqs}:
            self.assertEqual(
                m.get("kyc_bridge_vendor_request_duration_seconds_count", 0,
                      daemon=role, endpoint=ep),
                sum(v for l, v in reqs if l["endpoint"] == ep and l["status"] != "0"),
                "%s: one latency per answered %s attempt" % (role, ep))
        handoffs = m.get("kyc_bridge_handoff_latency_seconds_count", daemon=role)
        if role == "importer":
            # at most one per downstream record: an envelope the test
            # wrote itself carries no kb-requested-at (TestEndToEnd, where
            # the issuer wrote every one, checks equality)
            self.assertLessEqual(handoffs, m.get("kyc_bridge_records_total", daemon=role,
                                                 outcome="published") +
                                 m.get("kyc_bridge_records_total", daemon=role,
                                       outcome="reconciled"),
                                 "importer: one hand-off per downstream record")
        else:
            self.assertEqual(handoffs, 0)

    def assertNoLeaks(self, w, **kw):
        self.assertNoProblems(token_leaks(w, **kw), "share tokens in plaintext")

    def check_imported_shape(self, rec, partner_app, issuer_app):
        d = rec["doc"]
        for k in IMPORTED_REQUIRED:
            self.assertIn(k, d, "imported record lacks %r: %s" % (k, d))
        self.assertEqual(d["format"], "kyc-bridge-imported-session/1")
        self.assertEqual(d["partner_application_id"], partner_app.id)
        self.assertEqual(d["issuer_application_id"], issuer_app.id)
        self.assertIn(d["session_kind"], ("user", "business"))
        self.assertIn(d["record"], ("full", "summary"))
        self.assertIsInstance(d["imported_at"], int)
        self.assertIsInstance(d["reconciled"], bool)
        self.assertEqual(rec["key"], d["vendor_data"], "record key is not vendor_data")
        self.assertNotIn(b"eyJ", rec["value"])


# --------------------------------------------------------------------------
class TestEndToEnd(PipelineCase):
    """KYC and KYB, trust_review true/false, full and summary records; two
    importer applications share one token topic (each with its own output,
    dead-letter and state topics)."""

    def test_kyc_kyb_full_and_summary(self):
        w = self.world("e2e")
        X = w.app("x")
        Y1 = w.app("y1")
        Y2 = w.app("y2")
        out1, dlq1 = w.topic("imported-y1", 4), w.topic("importer-dlq-y1", 1)
        out2, dlq2 = w.topic("imported-y2", 4), w.topic("importer-dlq-y2", 1)
        st1, st2 = w.topic("importer-state-y1", 2), w.topic("importer-state-y2", 2)

        # Finished sessions of every status of both kinds, each shared with
        # both partners; one request per partner without a vendor_data hint
        # (the record is then keyed by share_id).
        reqs, src = [], {}
        for kind in ("kyc", "kyb"):
            for status in FINISHED[kind]:
                for rep in range(2):
                    sid = w.sb.finished_session(X.key, X.wf[kind], status,
                                                vendor_data="src-%s-%s-%d" % (kind, status, rep))
                    src[sid] = (kind, status)
                    for Y in (Y1, Y2):
                        hint = None if (rep == 1 and status == FINISHED[kind][0]) \
                            else "%s-%s" % (Y.name, uuid.uuid4().hex[:12])
                        reqs.append((Y, h.share_request(sid, Y.id, vendor_data=hint)))
        iconf = w.issuer_conf(X, [Y1, Y2])
        c1 = w.importer_conf(Y1, [(X, {"trust_review": "true", "record": "full"})],
                             name="importer-y1", output=out1, dlq=dlq1, state=st1)
        c2 = w.importer_conf(Y2, [(X, {"trust_review": "false", "record": "summary"})],
                             name="importer-y2", output=out2, dlq=dlq2, state=st2)
        iss = w.daemon("issuer", iconf, "issuer")
        m1 = w.daemon("importer", c1, "importer-y1")
        m2 = w.daemon("importer", c2, "importer-y2")
        w.produce_requests([r for _, r in reqs])
        f1, f2 = w.follow(out1), w.follow(out2)
        per = {Y1.id: [r for Y, r in reqs if Y is Y1], Y2.id: [r for Y, r in reqs if Y is Y2]}
        wait_stable(lambda: f1.count() + f2.count(), len(reqs), 120)
        # /metrics agrees: the issuer minted and published every request;
        # each importer published its own and skipped the other's
        self.assertMetrics(iss, published=len(reqs), dead={}, skipped=0, replayed=0,
                           vendor_ok=len(reqs), vendor_error=0)
        # (skipped: the other partner's envelopes on the shared topic)
        for m, Y, other in ((m1, Y1, Y2), (m2, Y2, Y1)):
            mm = self.assertMetrics(m, published=len(per[Y.id]), dead={},
                                    skipped=len(per[other.id]), replayed=0,
                                    vendor_ok=len(per[Y.id]),
                                    vendor_error=0)
            # the issuer wrote every envelope: one hand-off each
            self.assertEqual(mm.get("kyc_bridge_handoff_latency_seconds_count",
                                    daemon="importer"), len(per[Y.id]))
            self.assertEqual(mm.get("kyc_bridge_vendor_requests_total", daemon="importer",
                                    endpoint="import", status="201"), len(per[Y.id]))
        self.assertEqual(m1.stop(), 0)
        self.assertEqual(m2.stop(), 0)
        self.assertEqual(iss.stop(), 0)

        self.assertEqual(w.kafka.consume_all(w.t["issuer_dlq"]), [])
        self.assertEqual(w.kafka.consume_all(dlq1), [])
        self.assertEqual(w.kafka.consume_all(dlq2), [])
        tokens = w.kafka.consume_all(w.t["tokens"])
        self.assertEqual(len(tokens), len(reqs))
        self.assertEqual(collections.Counter(r["key"] for r in tokens),
                         collections.Counter({Y1.id: len(per[Y1.id]), Y2.id: len(per[Y2.id])}))

        decisions = {sid: w.sb.decision(X.key, sid) for sid in src}
        for Y, out, full in ((Y1, out1, True), (Y2, out2, False)):
            recs = w.kafka.consume_all(out)
            for r in recs:
                r["doc"] = json.loads(r["value"])
            want = {r["share_id"]: r for r in per[Y.id]}
            got = collections.Counter(r["doc"]["share_id"] for r in recs)
            # each importer published exactly its own shares: the other's
            # records on the shared topic were skipped
            self.assertEqual(set(got), set(want), "%s: wrong set of share_ids" % Y.name)
            self.assertEqual(max(got.values()), 1, "%s: duplicates %s" % (Y.name, got))
            for rec in recs:
                self.check_record(w, rec, want[rec["doc"]["share_id"]], X, Y, full,
                                  src, decisions)
        # the skip counters agree: each importer saw the other's envelopes
        # on the shared topic and left them alone
        s1, s2 = m1.last_stats(), m2.last_stats()
        self.assertEqual(s1.get("other partners'"), len(per[Y2.id]), s1)
        self.assertEqual(s2.get("other partners'"), len(per[Y1.id]), s2)
        self.assertEqual(s1.get("imported"), len(per[Y1.id]), s1)
        self.assertEqual(s2.get("imported"), len(per[Y2.id]), s2)
        self.assertEqual((s1.get("replays"), s2.get("replays")), (0, 0), (s1, s2))
        # each importer's state topic remembers exactly its own imports
        for Y, st in ((Y1, st1), (Y2, st2)):
            docs = [json.loads(r["value"]) for r in w.kafka.consume_all(st)]
            self.assertEqual(sorted(d["share_id"] for d in docs),
                             sorted(r["share_id"] for r in per[Y.id]),
                             "%s: state topic %s" % (Y.name, st))
            self.assertEqual({d["outcome"] for d in docs}, {"imported"})
        self.assertEqual(w.kafka.consume_all(w.t["importer_state"]), [],
                         "the world's default importer state topic was written")
        self.assertNoLeaks(w)

    def check_record(self, w, rec, req, X, Y, full, src, decisions):
        d = rec["doc"]
        self.check_imported_shape(rec, Y, X)
        kind, status = src[req["session_id"]]
        skind = "user" if kind == "kyc" else "business"
        self.assertEqual(d["shared_from_session"], req["session_id"])
        self.assertEqual(d["session_kind"], skind)
        self.assertEqual(d["workflow_id"], Y.wf[kind])
        self.assertEqual(d["vendor_data"], req.get("vendor_data") or req["share_id"])
        self.assertEqual(rec["key"], d["vendor_data"])
        self.assertIs(d["reconciled"], False)
        # status: preserved with trust_review, In Review without
        self.assertEqual(d["status"], status if full else IN_REVIEW[skind],
                         "%s: status of %s" % (Y.name, req["share_id"]))
        # the vendor's session in the partner's application agrees
        mine = w.sb.decision(Y.key, d["session_id"])
        self.assertEqual(mine["status"], d["status"])
        self.assertEqual(mine["shared_from_session"], req["session_id"])
        self.assertEqual(mine["vendor_data"], d["vendor_data"])
        sess = d["session"]
        self.assertEqual(sess.get("session_id"), d["session_id"])
        source = decisions[req["session_id"]]
        arrays = KYC_ARRAYS if kind == "kyc" else KYB_ARRAYS
        if full:
            self.assertEqual(d["record"], "full")
            for a in arrays:
                self.assertIn(a, sess, "full record lacks %s" % a)
                self.assertEqual(sess[a], source[a], "full record: %s differs from the "
                                 "source decision" % a)
            self.assertTrue(any(sess[a] for a in arrays))
        else:
            self.assertEqual(d["record"], "summary")
            self.assertEqual(sess.get("status"), d["status"])
            for a in arrays:
                self.assertIn(a, sess, "summary lacks %s" % a)
                self.assertEqual(len(sess[a]), len(source[a]))
                for el in sess[a]:
                    self.assertLessEqual(set(el), SUMMARY_KEEP, "summary %s element: %s" % (a, el))
            bad = sorted(personal_keys(sess))
            self.assertEqual(bad, [], "summary carries personal members")
            # nothing personal leaked by value either: document numbers,
            # names, AML hit names, image and document URLs of the source
            blob = json.dumps(sess)
            pv = list(personal_values(source))
            self.assertGreater(len(pv), 5, "test data without personal values?")
            for v in pv:
                self.assertNotIn(v, blob, "summary contains %r from the source" % v)


class Case:
    """One bad (or good) input and the outcome it must have."""

    def __init__(self, name, topic, key, value, reason=None, stage=None,
                 share_id=None, http_status=None, detail=None, injected=False):
        self.name, self.topic, self.key = name, topic, key
        self.value = value if isinstance(value, bytes) else value.encode()
        self.reason, self.stage, self.share_id = reason, stage, share_id
        self.http_status, self.detail, self.injected = http_status, detail, injected


def flip_sealed(env):
    """@env (bytes) with one character in the middle of "sealed" changed."""
    d = json.loads(env)
    s = d["sealed"]
    i = len(s) // 2
    d["sealed"] = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
    return json.dumps(d).encode()


class TestDeadLetters(PipelineCase):
    """Every dead-letter reason the daemons have, each from a real input
    (or, where marked, a vendor answer injected through the sandbox's
    fault API). Reasons that no input can produce are listed in
    NOT_PRODUCIBLE and checked against the schema so the list stays
    honest."""

    # reason -> why no real input can produce it
    NOT_PRODUCIBLE = {
        "vendor_bad_response": "the vendor (and the sandbox) never answer "
                               "201 without a share_token",
        "token_unsealable": "the vendor never mints a token over 8 KiB or "
                            "with bytes the envelope refuses",
        "unknown_issuer": "the envelope's issuer must be the owner of its "
                          "signing key, and every signing key belongs to a "
                          "partner: a mismatch is authentication_failed",
    }

    def share_out(self, conf, session, for_app, share_id, ttl=86400, vendor_data=None):
        args = ["share", "-c", conf, "--session-id", session, "--for", for_app,
                "--share-id", share_id, "--out", "-", "--ttl", str(ttl)]
        if vendor_data:
            args += ["--vendor-data", vendor_data]
        rc, out, err = h.run_cli(args)
        self.assertEqual(rc, 0, "share failed: %s" % err)
        self.assertNotIn(b"eyJ", err.encode())
        return out.strip()

    def test_every_reason(self):
        w = self.world("dlq")
        sb = w.sb
        X, Y, Z = w.app("x"), w.app("y"), w.app("z")
        W, V = w.app("w", ("kyc",)), w.app("v", ("kyb",))
        U, T = w.app("u", ("kyb",)), w.app("t", ("kyc",))
        ghost_keys = h.Keys(w.wd, "ghost")
        rogue = h.Keys(w.wd, "rogue")      # a signer nobody knows
        y_other = h.Keys(w.wd, "y-other")  # a box key Y does not hold
        ghost_app = str(uuid.uuid4())      # unknown to the vendor
        req_t, tok_t = w.t["requests"], w.t["tokens"]

        def fin(app, kind="kyc", status=None, vd=None):
            return sb.finished_session(app.key, app.wf[kind],
                                       status or FINISHED[kind][0], vendor_data=vd)

        iconf = w.issuer_conf(X, [Y, Z, ("ghost", ghost_app, ghost_keys.pub)],
                              extra={"issuer.default_ttl_s": 86400})
        sconf = {A.name: w.issuer_conf(A, [Y], name="share-" + A.name)
                 for A in (W, V, U, T)}
        cases, phase2 = [], []

        def sid(tag):
            return "dl-%s-%s" % (tag, uuid.uuid4().hex[:10])

        def req_case(name, body, reason, share_id=None, stage="request", **kw):
            value = body if isinstance(body, (bytes, str)) else json.dumps(body)
            cases.append(Case(name, req_t, share_id or "k-" + name, value, reason,
                              stage, share_id, **kw))

        # ---- issuer: requests ----
        req_case("garbage", b"\x00\x01 this is not JSON {", "malformed_request")
        req_case("json-array", "[1, 2, 3]", "malformed_request")
        s = sid("missing")
        req_case("missing-session", {"share_id": s, "for_application_id": Y.id},
                 "malformed_request", s)
        s = sid("baduuid")
        req_case("session-not-uuid", {"share_id": s, "session_id": "nope",
                                      "for_application_id": Y.id}, "malformed_request", s)
        s = sid("ttl")
        req_case("ttl-too-small", h.share_request(fin(X), Y.id, s, ttl=10),
                 "malformed_request", s)
        s = sid("unknownmember")
        body = h.share_request(fin(X), Y.id, s)
        body["colour"] = "blue"
        req_case("unknown-member", body, "malformed_request", s)
        s = sid("big")
        body = h.share_request(fin(X), Y.id, s, vendor_data="v" * 100)
        body["vendor_data"] = "v" * 70000
        req_case("too-large", body, "request_too_large", None)
        s = sid("unknownpartner")
        req_case("unknown-partner", h.share_request(fin(X), str(uuid.uuid4()), s),
                 "unknown_partner", s)
        s = sid("notfinished")
        req_case("not-finished", h.share_request(
                     sb.finished_session(X.key, X.wf["kyc"], None), Y.id, s),
                 "session_not_finished", s, stage="mint", http_status=400)
        s = sid("notfound")
        req_case("session-not-found", h.share_request(str(uuid.uuid4()), Y.id, s),
                 "session_not_found", s, stage="mint", http_status=404)
        s = sid("foreignsession")
        req_case("foreign-session", h.share_request(fin(Y), Y.id, s),
                 "session_not_found", s, stage="mint", http_status=404)
        s = sid("ghost")
        req_case("partner-app-unknown", h.share_request(fin(X), ghost_app, s),
                 "partner_application_unknown", s, stage="mint", http_status=404)
        s, bad_sess = sid("mint400"), fin(X)
        sb.set_faults("/v3/session/%s/share/" % bad_sess, error_rate=1.0, error_status=400)
        req_case("mint-400", h.share_request(bad_sess, Y.id, s), "bad_request", s,
                 stage="mint", http_status=400, injected=True)
        s, rej_sess = sid("mint409"), fin(X)
        sb.set_faults("/v3/session/%s/share/" % rej_sess, error_rate=1.0, error_status=409)
        req_case("mint-409", h.share_request(rej_sess, Y.id, s), "vendor_rejected", s,
                 stage="mint", http_status=409, injected=True)
        good_req = h.share_request(fin(X, "kyb"), Y.id, sid("good-issuer"), vendor_data="good-1")
        cases.append(Case("good-through-issuer", req_t, good_req["share_id"],
                          json.dumps(good_req), share_id=good_req["share_id"]))
        # an id the envelope refuses (a lone surrogate is no UTF-8) is a
        # malformed request, not a token minted and then left unsealable
        req_case("share-id-surrogate",
                 '{"share_id": "dl-sur-\\ud800", "session_id": "%s", '
                 '"for_application_id": "%s"}' % (fin(X), Y.id),
                 "malformed_request")
        # the vendor compares application ids case-insensitively: an
        # upper-case id of a partner is that partner, and the envelope
        # carries the id as configured (else Y refuses it as not for us)
        upper_req = h.share_request(fin(X), Y.id.upper(), sid("upper-issuer"))
        cases.append(Case("upper-case-partner-through-issuer", req_t,
                          upper_req["share_id"], json.dumps(upper_req),
                          share_id=upper_req["share_id"]))

        # ---- importer: envelopes (made before anything runs) ----
        def env_case(name, env, reason, share_id, stage="envelope", key=Y.id,
                     into=cases, **kw):
            into.append(Case(name, tok_t, key, env, reason, stage, share_id, **kw))

        # expired: minted while the vendor's clock is two hours behind, so
        # the token's exp (and the envelope's expires_at) is already past
        sb.set_clock(-7200)
        s = sid("expired")
        env_case("expired", self.share_out(iconf, fin(X), Y.id, s, ttl=3600), "expired", s)
        sb.set_clock(0)
        # token_rejected: a short token, redeemed while the vendor's clock
        # is two hours ahead (set below, before the importer starts)
        s = sid("rejected")
        env_case("token-rejected", self.share_out(iconf, fin(X), Y.id, s, ttl=600),
                 "token_rejected", s, stage="import", http_status=401)
        env_case("garbage", b"not an envelope at all", "malformed_envelope", None)
        env_case("json-no-members", b'{"v": 1, "sealed": "AAAA"}', "malformed_envelope", None)
        env_case("too-large", json.dumps({"v": 1, "for_application_id": Y.id,
                                          "sealed": "A" * 20000}),
                 "envelope_too_large", None)
        s = sid("v2")
        d = json.loads(self.share_out(iconf, fin(X), Y.id, s))
        d["v"] = 2
        env_case("version-2", json.dumps(d), "unsupported_version", None)
        s = sid("forz")
        env_case("for-z-rekeyed", self.share_out(iconf, fin(X), Z.id, s),
                 "not_addressed_to_us", s)
        s = sid("forz-skipped")
        skipped = Case("for-z-keyed-z", tok_t, Z.id, self.share_out(iconf, fin(X), Z.id, s),
                       share_id=s)
        s = sid("flip")
        env_case("sealed-flipped", flip_sealed(self.share_out(iconf, fin(X), Y.id, s)),
                 "authentication_failed", s)
        s, ses = sid("wrongissuer"), fin(X)
        env_case("issuer-not-signer", h.forge(X.keys.sign, Y.keys.pub, W.id, Y.id, s, ses,
                                              sb.share_token(X.key, ses, Y.id, 86400)),
                 "authentication_failed", s)
        s, ses = sid("unknownbox"), fin(X)
        env_case("unknown-box-key", h.forge(X.keys.sign, y_other.pub, X.id, Y.id, s, ses,
                                            sb.share_token(X.key, ses, Y.id, 86400)),
                 "unknown_key", s)
        s, ses = sid("unknownsigner"), fin(X)
        env_case("unknown-signer", h.forge(rogue.sign, Y.keys.pub, X.id, Y.id, s, ses,
                                           sb.share_token(X.key, ses, Y.id, 86400)),
                 "unknown_key", s)
        minted = []
        s, ses = sid("forbidden"), fin(X)
        tok = sb.share_token(X.key, ses, Z.id, 86400)   # a token for Z ...
        minted.append(tok)
        env_case("token-for-other-app",                 # ... sealed to Y
                 h.forge(X.keys.sign, Y.keys.pub, X.id, Y.id, s, ses, tok,
                         vendor_data="forb-" + s),
                 "forbidden", s, stage="import", http_status=403, detail="not intended")
        s, ses = sid("gone"), fin(X)
        # the vendor answers 404 for both; the importer asks for its
        # workflow to tell them apart (see docs/pipeline.md)
        env_case("source-deleted", self.share_out(iconf, ses, Y.id, s),
                 "source_session_gone", s, stage="import", http_status=404)
        sb.delete_session(X.key, ses)
        s = sid("nowf")
        env_case("workflow-unknown", self.share_out(sconf["w"], fin(W), Y.id, s),
                 "workflow_not_found", s, stage="import", http_status=404)
        s = sid("nokind")
        env_case("no-workflow-for-kyb", self.share_out(sconf["v"], fin(V, "kyb"), Y.id, s),
                 "no_workflow_for_kind", s, stage="import")
        s = sid("kindmismatch")
        env_case("kyc-workflow-for-kyb", self.share_out(sconf["u"], fin(U, "kyb"), Y.id, s),
                 "bad_request", s, stage="import", http_status=400)
        s = sid("novd")
        env_case("vendor-data-template-empty", self.share_out(sconf["t"], fin(T), Y.id, s),
                 "vendor_data_invalid", s, stage="import")
        s = sid("good-env")
        good_env = Case("good-envelope", tok_t, Y.id,
                        self.share_out(iconf, fin(X), Y.id, s, vendor_data="good-2"),
                        share_id=s)
        cases.append(good_env)
        s = sid("upper-env")
        upper_env = self.share_out(iconf, fin(X), Y.id.upper(), s)
        self.assertEqual(json.loads(upper_env)["for_application_id"], Y.id)
        cases.append(Case("upper-case-partner-through-share", tok_t, Y.id,
                          upper_env, share_id=s))
        # phase 2, one at a time: vendor answers injected on every import
        # (409) and on the session list used by reconciliation (400)
        s = sid("import409")
        env_case("import-409", self.share_out(iconf, fin(X), Y.id, s), "vendor_rejected",
                 s, stage="import", http_status=409, into=phase2, injected=True)
        s, ses = sid("reconcile400"), fin(X)
        tok = sb.share_token(X.key, ses, Z.id, 86400)
        minted.append(tok)
        env_case("reconcile-list-400", h.forge(X.keys.sign, Y.keys.pub, X.id, Y.id, s, ses,
                                               tok, vendor_data="rec-" + s),
                 "reconcile_failed", s, stage="reconcile", http_status=400, into=phase2,
                 injected=True)

        # ---- run ----
        mconf = w.importer_conf(Y, [
            (X, {}),
            (W, {"workflow_id.user": str(uuid.uuid4())}),
            (V, {"workflow_id.business": None}),
            (U, {"workflow_id.business": Y.wf["kyc"]}),
            (T, {"vendor_data": "{vendor_data_hint}"})])
        sb.set_clock(7200)
        iss = w.daemon("issuer", iconf, "issuer")
        imp = w.daemon("importer", mconf, "importer")
        for c in cases + [skipped]:
            w.kafka.produce(c.topic, [(c.key, c.value)])
        n_dlq = sum(1 for c in cases if c.reason)
        n_ok = sum(1 for c in cases if not c.reason)
        fi, fd, fo = (w.follow(w.t["issuer_dlq"]), w.follow(w.t["importer_dlq"]),
                      w.follow(w.t["imported"]))
        wait_stable(lambda: fi.count() + fd.count() + fo.count(), n_dlq + n_ok, 90)
        for c, status, path in ((phase2[0], 409, "/v3/session/import-shared/"),
                                (phase2[1], 400, "/v3/sessions/")):
            sb.clear_faults()
            sb.set_faults(path, error_rate=1.0, error_status=status)
            before = fd.count()
            w.kafka.produce(c.topic, [(c.key, c.value)])
            h.wait_for(lambda: fd.count() > before, 60, "dead letter of " + c.name)
            cases.append(c)
        sb.clear_faults()
        time.sleep(1)
        self.assertTrue(iss.alive() and imp.alive(), "a daemon stopped on bad input")
        # /metrics counts each dead letter under its reason (one `expired`,
        # ...), the good inputs as published, the other partner's envelope
        # as skipped
        self.assertMetrics(
            iss, published=sum(1 for c in cases if c.topic == req_t and not c.reason),
            dead=collections.Counter(c.reason for c in cases
                                     if c.topic == req_t and c.reason), skipped=0,
            replayed=0)
        mi = self.assertMetrics(
            # (the issuer's envelopes of the good requests included)
            imp, published=sum(1 for c in cases if not c.reason),
            dead=collections.Counter(c.reason for c in cases
                                     if c.topic == tok_t and c.reason), skipped=1,
            replayed=0)
        self.assertEqual(mi.get("kyc_bridge_dead_letters_total", daemon="importer",
                                reason="expired"), 1)
        self.assertEqual(imp.stop(), 0)
        self.assertEqual(iss.stop(), 0)

        # ---- check ----
        outs = w.outputs()
        sources = {}
        for topic in (req_t, tok_t):
            for r in w.kafka.consume_all(topic):
                sources[(topic, r["partition"], r["offset"])] = r
        by_source = collections.defaultdict(list)
        for kind in ("issuer_dlq", "importer_dlq"):
            for r in outs[kind]:
                src = r["doc"].get("source") or {}
                by_source[(src.get("topic"), src.get("partition"), src.get("offset"))].append(r)
        where = {}
        for coords, r in sources.items():
            where.setdefault((coords[0], r["value"]), coords)
        problems, seen_reasons = [], set()
        imported = {r["doc"]["share_id"]: r for r in outs["imported"]}
        for c in cases:
            coords = where.get((c.topic, c.value))
            if coords is None:
                problems.append("%s: input not found in %s" % (c.name, c.topic))
                continue
            dl = by_source.pop(coords, [])
            if not c.reason:
                if dl or c.share_id not in imported:
                    problems.append("%s: good input not imported (dead letters: %s)"
                                    % (c.name, [d["doc"]["reason"] for d in dl]))
                continue
            if len(dl) != 1:
                problems.append("%s: %d dead letters for its input, want 1 (%s)"
                                % (c.name, len(dl), [d["doc"]["reason"] for d in dl]))
                continue
            problems += self.check_dead_letter(c, dl[0], coords)
            if c.share_id and c.share_id in imported:
                problems.append("%s: also has a downstream record" % c.name)
            seen_reasons.add(c.reason)
        for coords, dl in by_source.items():
            problems.append("dead letter(s) for an input no case made: %s %s"
                            % (coords, [d["doc"]["reason"] for d in dl]))
        self.assertNotIn(skipped.share_id, imported)
        self.assertNoProblems(problems, "dead letters")
        self.assertEqual(set(imported), {c.share_id for c in cases if not c.reason})

        # every reason of the schema is produced here or listed as impossible
        enum = set(schema_enum("dead-letter.schema.json",
                               ("properties", "reason", "enum")))
        self.assertEqual(enum - seen_reasons, set(self.NOT_PRODUCIBLE),
                         "reasons neither produced nor explained")
        self.assertEqual(seen_reasons - enum, set(), "reasons outside the schema")
        # the other partner's envelope on the shared topic was skipped
        self.assertEqual(imp.last_stats().get("other partners'"), 1)
        self.assertNoLeaks(w, known_tokens=minted)

    def test_foreign_token_after_earlier_import_is_not_reconciled(self):
        """A token minted for another application (403 "not intended")
        whose source session this importer already imported earlier,
        under the same vendor_data, must be dead-lettered as forbidden --
        not "reconciled" onto the earlier import's session, which would
        give two downstream records for one vendor session."""
        w = self.world("dlq-rec")
        X, Y, Z = w.app("x"), w.app("y"), w.app("z")
        iconf = w.issuer_conf(X, [Y, Z])
        mconf = w.importer_conf(Y, [(X, {})])
        ses = w.sb.finished_session(X.key, X.wf["kyc"], "Approved")
        hint = "same-person-%s" % uuid.uuid4().hex[:8]
        first = "first-%s" % uuid.uuid4().hex[:8]
        env1 = self.share_out(iconf, ses, Y.id, first, vendor_data=hint)
        second = "second-%s" % uuid.uuid4().hex[:8]
        tok = w.sb.share_token(X.key, ses, Z.id, 86400)      # for Z ...
        env2 = h.forge(X.keys.sign, Y.keys.pub, X.id, Y.id, second, ses, tok,
                       vendor_data=hint)                     # ... sealed to Y
        imp = w.daemon("importer", mconf, "importer")
        fo, fd = w.follow(w.t["imported"]), w.follow(w.t["importer_dlq"])
        w.kafka.produce(w.t["tokens"], [(Y.id, env1)])
        h.wait_for(lambda: fo.count() == 1, 60, "the first import")
        w.kafka.produce(w.t["tokens"], [(Y.id, env2)])
        wait_stable(lambda: fo.count() + fd.count(), 2, 60, settle=1.0)
        self.assertMetrics(imp, published=1, dead={"forbidden": 1}, skipped=0, replayed=0)
        self.assertEqual(imp.stop(), 0)
        outs = w.outputs()
        got = {r["doc"]["share_id"]: r["doc"] for r in outs["imported"]}
        dl = {r["doc"]["share_id"]: r["doc"] for r in outs["importer_dlq"]}
        self.assertIn(first, got)
        if second in got:
            self.fail("share %s (a token for another application) was published as "
                      "reconciled=%s onto session %s, the session of share %s; want a "
                      "'forbidden' dead letter" % (second, got[second]["reconciled"],
                                                   got[second]["session_id"], first))
        self.assertEqual(dl.get(second, {}).get("reason"), "forbidden")
        self.assertEqual(w.sb.session_count(Y.key), 1)
        self.assertNoLeaks(w, known_tokens=[tok])

    def test_replayed_envelope_gives_no_second_record(self):
        """An envelope already imported and committed, written to the token
        topic again (a replay by anyone with write access, or a producer
        retry outside the issuer's transaction): the importer finds its
        share_id in its state topic (importer.state_topic), skips it
        without asking the vendor, and publishes no second downstream
        record -- also after a restart, when only the state topic
        remembers the import."""
        w = self.world("dlq-replay", sandbox_args=["--log-level", "debug"])
        X, Y = w.app("x"), w.app("y")
        iconf = w.issuer_conf(X, [Y])
        mconf = w.importer_conf(Y, [(X, {})])
        ses = w.sb.finished_session(X.key, X.wf["kyc"], "Approved")
        sid = "replay-%s" % uuid.uuid4().hex[:8]
        env = self.share_out(iconf, ses, Y.id, sid, vendor_data="rp-" + sid)
        imports = w.sb.log_counter(rb"POST /v3/session/import-shared/ -> ")
        imp = w.daemon("importer", mconf, "importer")
        fo, fd = w.follow(w.t["imported"]), w.follow(w.t["importer_dlq"])
        w.kafka.produce(w.t["tokens"], [(Y.id, env)])
        h.wait_for(lambda: fo.count() == 1, 60, "the import")
        time.sleep(0.5)
        # 1. replayed while the importer runs
        w.kafka.produce(w.t["tokens"], [(Y.id, env)])
        imp.wait_log(r"share %s: envelope already imported; replay skipped" % re.escape(sid),
                     60)
        self.assertMetrics(imp, published=1, skipped=0, replayed=1, dead={}, vendor_ok=1)
        self.assertEqual(imp.stop(), 0)
        self.assertEqual(imp.last_stats().get("replays"), 1, imp.last_stats())
        # 2. replayed after a restart: the memory is gone, the state topic
        #    is read back at start-up
        mark = len(imp.logtext())
        imp.start()
        imp.wait_log(r"pipeline: assigned \d+ partition", 60, after=mark)
        w.kafka.produce(w.t["tokens"], [(Y.id, env)])
        imp.wait_log(r"share %s: envelope already imported; replay skipped" % re.escape(sid),
                     60, after=mark)
        wait_stable(lambda: fo.count() + fd.count(), 1, 60, settle=2.0)
        # this run only skipped the replay (counters start at 0 per run)
        self.assertMetrics(imp, published=0, skipped=0, replayed=1, dead={}, vendor_ok=0)
        self.assertEqual(imp.stop(), 0)
        self.assertEqual(imp.last_stats().get("replays"), 1, imp.last_stats())
        outs = w.outputs()
        recs = [r["doc"] for r in outs["imported"] if r["doc"]["share_id"] == sid]
        self.assertEqual(len(recs), 1, "share %s has %d downstream records: %s" % (
            sid, len(recs), [(d["session_id"], d["reconciled"]) for d in recs]))
        self.assertEqual(outs["importer_dlq"], [], "a replay was dead-lettered")
        self.assertEqual(imports(), 1, "the vendor was asked to import %d times" % imports())
        self.assertEqual(w.sb.session_count(Y.key), 1)
        # the state record: key share_id, committed with the import
        st = w.kafka.consume_all(w.t["importer_state"])
        self.assertEqual(len(st), 1, st)
        self.assertEqual(st[0]["key"], sid)
        d = json.loads(st[0]["value"])
        # what the importer needs to know a status update's session again
        # after a restart rides along (schemas/share-state.schema.json)
        self.assertEqual(set(d), {"share_id", "outcome", "at", "until", "ref",
                                  "issuer_application_id", "shared_from_session",
                                  "session_kind", "vendor_data", "record", "status",
                                  "status_at", "status_seq"}, d)
        self.assertEqual((d["share_id"], d["outcome"]), (sid, "imported"))
        # ref: the session the share was imported as (reconcile skips it
        # for any other share_id)
        self.assertEqual(d["ref"], recs[0]["session_id"], d)
        self.assertLessEqual(abs(d["at"] - time.time()), 600, d)
        self.assertGreater(d["until"], d["at"] + 86400 - 1, d)

    def check_dead_letter(self, c, rec, coords):
        p = []
        d = rec["doc"]
        for k in DLQ_REQUIRED:
            if k not in d:
                p.append("%s: dead letter lacks %r" % (c.name, k))
        if d.get("format") != "kyc-bridge-dead-letter/1":
            p.append("%s: format %r" % (c.name, d.get("format")))
        if (d.get("stage"), d.get("reason")) != (c.stage, c.reason):
            p.append("%s: stage/reason %s/%s, want %s/%s (detail %r)" % (
                c.name, d.get("stage"), d.get("reason"), c.stage, c.reason, d.get("detail")))
        if d.get("share_id") != c.share_id:
            p.append("%s: share_id %r, want %r" % (c.name, d.get("share_id"), c.share_id))
        if rec["key"] != (c.share_id or ""):
            p.append("%s: record key %r, want the share_id %r" % (c.name, rec["key"], c.share_id))
        if "kb-reason=%s" % c.reason not in rec["headers"]:
            p.append("%s: header kb-reason missing or wrong: %r" % (c.name, rec["headers"]))
        src = d.get("source", {})
        if (src.get("topic"), src.get("partition"), src.get("offset")) != coords:
            p.append("%s: source %s, want %s" % (c.name, src, coords))
        if c.http_status is not None and d.get("http_status") != c.http_status:
            p.append("%s: http_status %r, want %r" % (c.name, d.get("http_status"),
                                                      c.http_status))
        if c.detail and c.detail not in d.get("detail", ""):
            p.append("%s: detail %r lacks %r" % (c.name, d.get("detail"), c.detail))
        if not isinstance(d.get("at"), int) or abs(d["at"] - time.time()) > 600:
            p.append("%s: at %r" % (c.name, d.get("at")))
        # the kept input (base64 of the input) is decoded and looked into
        # like the input itself (an envelope's random "sealed" left out)
        if b"eyJ" in h.strip_sealed(rec["value"]):
            p.append("%s: dead letter carries a token" % c.name)
        return p


class StreamCase(PipelineCase):
    """A stream of share requests through both daemons with vendor latency
    injected (every endpoint), so that there is always work in flight."""

    N = 600

    def stream_world(self, tag, n, token_partitions=4, latency_ms=50, imp_extra=None,
                     iss_extra=None):
        w = self.world(tag, token_partitions=token_partitions,
                       sandbox_args=["--log-level", "debug"])
        X, Y = w.app("x"), w.app("y")
        kyb = n // 4
        sessions = (w.sb.finished_sessions(X.key, X.wf["kyc"], "Approved", n - kyb, "k")
                    + w.sb.finished_sessions(X.key, X.wf["kyb"], "APPROVED", kyb, "b"))
        reqs = [h.share_request(sid, Y.id, vendor_data="vd-%d-%s" % (i, uuid.uuid4().hex[:8]))
                for i, sid in enumerate(sessions)]
        random.Random(SEED).shuffle(reqs)
        w.iconf = w.issuer_conf(X, [Y], extra=iss_extra)
        w.mconf = w.importer_conf(Y, [(X, {"trust_review": "true", "record": "summary"})],
                                  extra=imp_extra)
        w.X, w.Y, w.reqs = X, Y, reqs
        # what the vendor has done so far (the sandbox logs each request)
        w.minted = w.sb.log_counter(rb"POST /v3/session/\{\}/share/ -> 201")
        w.redeemed = w.sb.log_counter(rb"POST /v3/session/import-shared/ -> 201")
        if latency_ms:
            w.sb.set_faults("*", latency_ms=latency_ms)
        return w

    def start_daemons(self, w, importers=("importer",)):
        self.note("set up")
        w.iss = w.daemon("issuer", w.iconf, "issuer")
        w.imps = [w.daemon("importer", w.mconf, name) for name in importers]
        for d in [w.iss] + w.imps:
            d.wait_log(r"pipeline: assigned \d+ partition", 60)
        self.note("daemons running")
        self.follow_outputs(w)

    def produce_paced(self, w, batches, gap):
        """Produces w.reqs in @batches batches @gap seconds apart, from a
        background thread: a steady stream instead of one burst, so that
        there is a long stretch with records committed and vendor calls
        still arriving (kill_mid_stream needs one). All requests at once go
        through in a second or two, in one to three transactions: a kill
        point between "some committed" and "calls in flight" may never
        come. Returns a function that waits for the thread and re-raises
        its error."""
        size = -(-len(w.reqs) // batches)
        err = []

        def run():
            try:
                for i in range(0, len(w.reqs), size):
                    w.produce_requests(w.reqs[i:i + size])
                    time.sleep(gap)
            except Exception as e:  # noqa: BLE001 -- handed to the test thread
                err.append(e)
        t = threading.Thread(target=run, name="produce-paced", daemon=True)
        t.start()

        def join():
            t.join(batches * gap + 120)
            if t.is_alive():
                raise TimeoutError("paced producer still running")
            if err:
                raise err[0]
        return join

    def follow_outputs(self, w):
        w.f_tok = w.follow(w.t["tokens"])
        w.f_out = [w.follow(w.t[k]) for k in ("imported", "importer_dlq", "issuer_dlq")]
        w.done = lambda: sum(f.count() for f in w.f_out)

    def finish_and_check(self, w, timeout=300):
        """Waits for every request's outcome, stops the daemons cleanly and
        checks exactly-once (downstream + dead letters, envelopes, vendor
        sessions); returns the outputs."""
        n = len(w.reqs)
        wait_stable(w.done, n, timeout, settle=2.0)
        self.note("all %d outcomes committed", n)
        # a daemon that ran through the stream in one run (not killed nor
        # restarted) counted every request once in /metrics; an issuer
        # always sees all n, an importer only when it is alone
        for d in w.daemons:
            if d.alive() and d.starts == 1 and (d.role == "issuer" or len(w.imps) == 1):
                self.assertMetrics(d, published=n, dead={}, skipped=0, replayed=0,
                                   vendor_ok=n, vendor_error=0)
        for d in w.daemons:
            if d.alive():
                self.assertEqual(d.stop(), 0, "%s did not stop cleanly" % d.name)
        outs = w.outputs()
        ids = [r["share_id"] for r in w.reqs]
        problems = exactly_once_report(ids, outs)
        # the issuer's output too: one committed envelope per share_id
        envs = collections.Counter()
        for r in w.kafka.consume_all(w.t["tokens"]):
            m = re.search(r"kb-share-id=([^,]*)", r["headers"])
            envs[m.group(1) if m else None] += 1
        for sid, c in sorted(envs.items(), key=lambda kv: str(kv[0])):
            if c != 1:
                problems.append("DUPLICATE envelope: share_id %s has %d committed "
                                "envelopes" % (sid, c))
        for sid in sorted(set(ids) - set(envs)):
            problems.append("LOST envelope: share_id %s" % sid)
        for k in ("importer_dlq", "issuer_dlq"):
            for r in outs[k]:
                problems.append("dead letter where none was expected: %s %s/%s: %s" % (
                    r["doc"].get("share_id"), r["doc"].get("stage"),
                    r["doc"].get("reason"), r["doc"].get("detail")))
        # the vendor redeemed every token once: one session per record
        n_sessions = w.sb.session_count(w.Y.key)
        if n_sessions != len(outs["imported"]):
            problems.append("vendor has %d imported sessions for %d records"
                            % (n_sessions, len(outs["imported"])))
        sess = collections.Counter(r["doc"]["session_id"] for r in outs["imported"])
        for s_, c in sess.items():
            if c > 1:
                problems.append("vendor session %s published %d times" % (s_, c))
        self.assertNoProblems(problems, "exactly-once")
        self.note("exactly-once checked")
        return outs

    def kill_mid_stream(self, w, victim, sig, committed, vendor_done, lo=0.1, hi=0.5,
                        restart=True):
        """Waits until a random share of the stream is committed and the
        vendor has just received new calls from @victim (the sandbox logs a
        call when it arrives, then holds the answer for the injected
        latency: so these calls are certainly in flight), then sends @sig
        to @victim and (by default) restarts it with the same config."""
        n = len(w.reqs)
        rng = random.Random("%d-%s" % (SEED, self.id()))
        at = rng.randint(int(n * lo), int(n * hi))
        state = {"v": vendor_done()}

        def ready():
            c, v = committed(), vendor_done()
            fresh = v > state["v"]
            state.update(c=c, v=v)
            return c >= at and fresh
        h.wait_for(ready, 120, "%d of %d committed and calls in flight" % (at, n),
                   interval=0.003)
        rc = victim.stop(sig, timeout=90)
        self.note("%s %s: %d/%d committed, %d done at the vendor (aimed at %d), exit %s",
                  signal.Signals(sig).name, victim.name, state["c"], n, state["v"], at, rc)
        self.assertLess(state["c"], n, "the kill came after the stream was through")
        if sig == signal.SIGTERM:
            self.assertEqual(rc, 0, "%s: exit status after SIGTERM" % victim.name)
        else:
            self.assertEqual(rc, -signal.SIGKILL)
        if restart:
            victim.start()
        return state


class RestartCase(StreamCase):
    def scenario(self, role, sig):
        w = self.stream_world("rs-%s-%s" % (role[:3], signal.Signals(sig).name.lower()),
                              self.N)
        self.start_daemons(w)
        produced = self.produce_paced(w, batches=20, gap=0.25)
        if role == "issuer":
            self.kill_mid_stream(w, w.iss, sig, w.f_tok.count, w.minted)
        else:
            self.kill_mid_stream(w, w.imps[0], sig, w.done, w.redeemed)
        produced()
        outs = self.finish_and_check(w)
        rec = sum(1 for r in outs["imported"] if r["doc"]["reconciled"])
        print("[%s] %d records, %d reconciled; vendor: %d mints, %d imports" % (
            self.id(), len(outs["imported"]), rec, w.minted(), w.redeemed()),
            file=sys.stderr)
        self.assertNoLeaks(w)
        return outs


class TestRestartIssuer(RestartCase):
    """SIGTERM and SIGKILL of the issuer in the middle of a stream:
    afterwards every share request has exactly one downstream or
    dead-letter record (read_committed), and one envelope."""

    def test_issuer_sigterm(self):
        self.scenario("issuer", signal.SIGTERM)

    def test_issuer_sigkill(self):
        self.scenario("issuer", signal.SIGKILL)


class TestRestartImporter(RestartCase):
    """SIGTERM and SIGKILL of the importer in the middle of a stream."""

    def test_importer_sigterm(self):
        self.scenario("importer", signal.SIGTERM)

    def test_importer_sigkill(self):
        self.scenario("importer", signal.SIGKILL)


class TestReconcile(StreamCase):
    def test_importer_sigkill_before_commit_reconciles(self):
        """Imports done, transaction not yet committed (long commit
        interval), SIGKILL: on restart the vendor answers 403 and the
        importer reconciles instead of dead-lettering or duplicating."""
        n = 100
        w = self.stream_world("reconcile", n, latency_ms=20,
                              imp_extra={"pipeline.commit_interval_ms": 20000,
                                         "pipeline.commit_when_idle": "false"})
        self.start_daemons(w)
        w.produce_requests(w.reqs)
        # wait until the vendor made sessions the importer has not
        # committed records for
        h.wait_for(lambda: w.redeemed() >= n // 3, 90, "imports at the vendor")
        committed = w.done()
        imported_at_kill = w.redeemed()
        self.assertEqual(w.imps[0].kill(), -signal.SIGKILL)
        print("[%s] SIGKILL with %d imports at the vendor, %d records committed" % (
            self.id(), imported_at_kill, committed), file=sys.stderr)
        self.assertLess(committed, imported_at_kill)
        # restart with a short commit interval (the long one only served
        # to open the window before the kill)
        w.imps[0].args = ["-X", "pipeline.commit_interval_ms=100"]
        w.imps[0].start()
        outs = self.finish_and_check(w)
        rec = [r for r in outs["imported"] if r["doc"]["reconciled"]]
        print("[%s] %d of %d records reconciled" % (self.id(), len(rec), n), file=sys.stderr)
        self.assertGreaterEqual(len(rec), 1, "no record was reconciled")
        for r in rec:
            d = r["doc"]
            mine = w.sb.decision(w.Y.key, d["session_id"])
            self.assertEqual(mine["shared_from_session"], d["shared_from_session"])
            self.assertEqual(mine["vendor_data"], d["vendor_data"])
            self.assertEqual(d["status"], mine["status"])
            self.assertEqual(d["record"], "summary")
        self.assertIn("reconciled", w.imps[0].logtext())
        self.assertNoLeaks(w)


    def test_unreadable_import_answer_reconciles(self):
        """The vendor performs the import, but its 201 reaches the
        importer as bytes that are no JSON (the sandbox's
        corrupt_body_rate fault): the token is spent, so the importer
        reconciles -- exactly one downstream record, reconciled, for the
        one session the vendor made -- instead of dead-lettering a share
        whose import did happen."""
        w = self.world("rec-garbled", sandbox_args=["--log-level", "debug"])
        X, Y = w.app("x"), w.app("y")
        iconf = w.issuer_conf(X, [Y])
        mconf = w.importer_conf(Y, [(X, {})])
        ses = w.sb.finished_session(X.key, X.wf["kyc"], "Approved")
        sid = "garbled-%s" % uuid.uuid4().hex[:8]
        rc, env, err = h.run_cli(["share", "-c", iconf, "--session-id", ses,
                                  "--for", Y.id, "--share-id", sid,
                                  "--vendor-data", "gb-" + sid, "--out", "-"])
        self.assertEqual(rc, 0, "share failed: %s" % err)
        imports = w.sb.log_counter(rb"POST /v3/session/import-shared/ -> 201")
        garbled = w.sb.log_counter(rb"POST /v3/session/import-shared/: 2xx body garbled")
        w.sb.http.req("PUT", "/sandbox/faults",
                      {"path": "/v3/session/import-shared/", "corrupt_body_rate": 1.0},
                      expect=200)
        imp = w.daemon("importer", mconf, "importer")
        fo, fd = w.follow(w.t["imported"]), w.follow(w.t["importer_dlq"])
        w.kafka.produce(w.t["tokens"], [(Y.id, env.strip())])
        wait_stable(lambda: fo.count() + fd.count(), 1, 60, settle=2.0)
        self.assertTrue(imp.alive(), "the importer stopped")
        self.assertEqual(imp.stop(), 0)
        self.assertEqual(garbled(), 1, "the fault did not garble the import's answer")
        self.assertEqual(imports(), 1, "the vendor was asked to import %d times" % imports())
        outs = w.outputs()
        self.assertEqual(outs["importer_dlq"], [], "dead-lettered: %s" % [
            (r["doc"]["reason"], r["doc"]["detail"]) for r in outs["importer_dlq"]])
        recs = [r for r in outs["imported"] if r["doc"]["share_id"] == sid]
        self.assertEqual(len(recs), 1, "share %s has %d downstream records" % (sid, len(recs)))
        self.assertEqual(len(outs["imported"]), 1)
        d = recs[0]["doc"]
        self.check_imported_shape(recs[0], Y, X)
        self.assertIs(d["reconciled"], True, d)
        self.assertEqual(w.sb.session_count(Y.key), 1)
        mine = w.sb.decision(Y.key, d["session_id"])
        self.assertEqual(mine["shared_from_session"], ses)
        self.assertEqual(d["shared_from_session"], ses)
        self.assertEqual(d["vendor_data"], "gb-" + sid)
        self.assertIn("share %s: already imported as session %s; reconciled"
                      % (sid, d["session_id"]), imp.logtext())
        self.assertNoLeaks(w)


class TestImporterGroup(StreamCase):
    """Two importer instances in one consumer group share the token
    topic's partitions; stopping one (SIGTERM) moves its work to the
    other without loss or duplicates."""

    def owned(self, d):
        t = d.logtext().split("==== start")[-1]
        return (sum(int(x) for x in re.findall(r"assigned (\d+) partition", t))
                - sum(int(x) for x in re.findall(r"(?:revoked|lost) (\d+) partition", t)))

    def test_two_instances_then_one(self):
        """Both importers hold partitions of the issuer's own token topic
        (six partitions) before the issuer starts; the issuer spreads one
        partner's envelopes over the partitions by share_id, so both
        instances get work. One is stopped mid-stream; the other takes its
        partitions over (re-reading the importer state topic) and finishes
        the stream."""
        n = 500
        w = self.stream_world("group", n, token_partitions=6)
        conf_b = w.importer_conf(w.Y, [(w.X, {"trust_review": "true", "record": "summary"})],
                                 name="importer-b", group="%s-importer" % w.prefix)
        a = w.daemon("importer", w.mconf, "importer-a")
        b = w.daemon("importer", conf_b, "importer-b")
        w.imps = [a, b]
        h.wait_for(lambda: self.owned(a) > 0 and self.owned(b) > 0
                   and self.owned(a) + self.owned(b) == 6,
                   60, "both importers to hold partitions", interval=0.1)
        self.note("a holds %d, b holds %d partitions", self.owned(a), self.owned(b))
        self.follow_outputs(w)
        w.iss = w.daemon("issuer", w.iconf, "issuer")
        w.iss.wait_log(r"pipeline: assigned \d+ partition", 60)
        produced = self.produce_paced(w, batches=20, gap=0.25)
        self.kill_mid_stream(w, b, signal.SIGTERM, w.done, w.redeemed, lo=0.2, hi=0.5,
                             restart=False)
        h.wait_for(lambda: self.owned(a) == 6, 60, "importer-a to own every partition")
        produced()
        outs = self.finish_and_check(w)
        parts = collections.Counter(r["partition"] for r in w.kafka.consume_all(w.t["tokens"]))
        self.note("envelopes per partition: %s", dict(sorted(parts.items())))
        self.assertEqual(len(parts), 6, "the issuer used partitions %s of 6" % dict(parts))
        sa, sb_ = a.last_stats(), b.last_stats()
        self.note("a: %s; b: %s", sa, sb_)
        self.assertGreater(sb_.get("imported", 0), 0, "importer-b did no work")
        self.assertGreater(sa.get("imported", 0), 0, "importer-a did no work")
        self.assertEqual(len(outs["imported"]), n)
        # after the hand-over importer-a read the state topic again
        self.assertGreaterEqual(len(re.findall(r"importer: state: read \d+ new record",
                                               a.logtext())), 2, "no state re-read")
        self.assertNoLeaks(w)

    def test_issuer_spreads_one_partner(self):
        """A consumer group of importers can only share a partner's load if
        the issuer's envelopes for that partner use more than one partition
        of the token topic."""
        n = 60
        w = self.stream_world("spread", n, token_partitions=6, latency_ms=0)
        w.iss = w.daemon("issuer", w.iconf, "issuer")
        f_tok = w.follow(w.t["tokens"])
        w.produce_requests(w.reqs)
        wait_stable(f_tok.count, n, 120)
        self.assertEqual(w.iss.stop(), 0)
        parts = collections.Counter(r["partition"] for r in w.kafka.consume_all(w.t["tokens"]))
        self.assertGreater(len(parts), 1,
                           "all %d envelopes for partner %s went to partition(s) %s of 6: "
                           "a second importer instance in the group gets nothing to do"
                           % (n, w.Y.id, dict(parts)))


class TestStopMidRebalance(PipelineCase):
    """A daemon stopped while its first rebalance is unfinished -- it has
    its JoinGroup answer, the SyncGroup answer does not come (the broker
    lost at that moment, a slow leader) -- stops cleanly. librdkafka before
    2.3.0 aborts destroying such a consumer (SIGABRT: "Assertion
    `assignor_state' failed"); the pipeline parks it instead. The moment
    is made on purpose: the group's leader is a member of the test's own
    (group_leader.py) that withholds the SyncGroup."""

    def test_sigterm_between_join_and_sync(self):
        w = self.world("midjoin", token_partitions=4)
        X, Y = w.app("x"), w.app("y")
        conf = w.importer_conf(Y, [(X, {"trust_review": "true"})])
        leader = GroupLeader(w.kafka.bootstrap, "%s-importer" % w.prefix, w.t["tokens"], 4)
        leader.join()
        left = threading.Timer(2.0, leader.leave)
        try:
            imp = w.daemon("importer", conf, "importer")
            members = leader.wait_withholding(60)
            self.assertEqual(len(members), 2, "the importer did not join: %s" % members)
            time.sleep(1.0)  # its SyncGroup is sent; no answer comes
            # SIGTERM now; 2 s later the leader leaves, which fails the
            # importer's SyncGroup and lets its close finish
            left.start()
            rc = imp.stop(timeout=60)
        finally:
            if left.is_alive() or left.finished.is_set():
                left.join(30)
            else:
                leader.leave()
        log = imp.logtext().split("==== start")[-1]
        self.assertNotRegex(log, r"pipeline: assigned \d+ partition",
                            "the importer got an assignment: the moment was missed")
        self.assertEqual(rc, 0, "importer: exit %s (%s):\n%s" % (rc, imp.stop_note, log[-3000:]))
        self.assertIn("importer: stopped", log)


class TestIssuerDedup(PipelineCase):
    """The same share_id sent again -- at once, on another partition, with
    other content, after a clean restart and after a SIGKILL -- gives one
    envelope and one downstream record."""

    def test_repeats(self):
        w = self.world("dedup")
        X, Y = w.app("x"), w.app("y")
        ses = [w.sb.finished_session(X.key, X.wf["kyc"], "Approved") for _ in range(6)]
        r = [h.share_request(ses[i], Y.id, "dedup-%d-%s" % (i, uuid.uuid4().hex[:8]),
                             vendor_data="dd-%d-%s" % (i, uuid.uuid4().hex[:8]))
             for i in range(5)]
        iconf = w.issuer_conf(X, [Y])
        mconf = w.importer_conf(Y, [(X, {})])
        iss = w.daemon("issuer", iconf, "issuer")
        imp = w.daemon("importer", mconf, "importer")
        fo, ft = w.follow(w.t["imported"]), w.follow(w.t["tokens"])
        repeats = 0

        def send(recs):
            w.kafka.produce(w.t["requests"], [(k, json.dumps(v)) for k, v in recs])

        # 1. twice in one go (same key, same partition), once more under
        #    another key (another partition), once with other content
        other = dict(r[0], session_id=ses[5], vendor_data="other-content")
        # (the repeat with other content goes under the same key, after the
        # original: Kafka orders one partition, not several)
        send([(r[0]["share_id"], r[0]), (r[0]["share_id"], r[0]), ("another-key", r[0]),
              (r[0]["share_id"], other), (r[1]["share_id"], r[1])])
        repeats += 3
        wait_stable(fo.count, 2, 60, settle=2.0)
        self.assertMetrics(iss, published=2, skipped=0, replayed=3, dead={}, vendor_ok=2)
        # 2. after a clean restart
        self.assertEqual(iss.stop(), 0)
        iss.start()
        iss.wait_log(r"pipeline: assigned \d+ partition", 60, count=2)
        send([(x["share_id"], x) for x in (r[0], r[1], r[2])])
        repeats += 2
        wait_stable(fo.count, 3, 60, settle=2.0)
        self.assertMetrics(iss, published=1, skipped=0, replayed=2, dead={}, vendor_ok=1)
        # 3. after a SIGKILL
        self.assertEqual(iss.kill(), -signal.SIGKILL)
        iss.start()
        iss.wait_log(r"pipeline: assigned \d+ partition", 60, count=3)
        send([(x["share_id"], x) for x in (r[0], r[2], r[3], r[3])])
        repeats += 3
        wait_stable(fo.count, 4, 60, settle=3.0)
        self.assertMetrics(imp, published=4, skipped=0, replayed=0, dead={}, vendor_ok=4)
        self.assertEqual(iss.stop(), 0)
        self.assertEqual(imp.stop(), 0)

        outs = w.outputs()
        self.assertNoProblems(exactly_once_report([x["share_id"] for x in r[:4]], outs),
                              "dedup")
        envs = collections.Counter(re.search(r"kb-share-id=([^,]*)", x["headers"]).group(1)
                                   for x in w.kafka.consume_all(w.t["tokens"]))
        self.assertEqual(envs, collections.Counter({x["share_id"]: 1 for x in r[:4]}))
        first = [x for x in outs["imported"] if x["doc"]["share_id"] == r[0]["share_id"]]
        self.assertEqual(first[0]["doc"]["shared_from_session"], r[0]["session_id"],
                         "the repeat with other content won")
        log = iss.logtext()
        self.assertEqual(len(re.findall(r"repeated within the dedup window", log)), repeats,
                         "repeats logged")
        self.assertEqual(w.sb.session_count(Y.key), 4)
        self.assertNoLeaks(w)


class TestNoPlaintextTokens(StreamCase):
    """Tokens never appear in plaintext: a stream with debug logging on
    every process, both daemons SIGKILLed and restarted mid-stream, a few
    envelopes that fail; then every topic's bytes (read_uncommitted and
    the broker's segment files) and every log are searched."""

    def test_no_token_anywhere(self):
        n = 200
        dbg = {"log.level": "debug"}
        w = self.stream_world("leak", n, latency_ms=20, imp_extra=dbg, iss_extra=dbg)
        minted = []
        bad = []
        for i in range(3):
            ses = w.sb.finished_session(w.X.key, w.X.wf["kyc"], "Approved")
            sid = "leak-bad-%d-%s" % (i, uuid.uuid4().hex[:8])
            tok = w.sb.share_token(w.X.key, ses, w.Y.id if i else w.X.id, 86400) \
                if i else None
            if tok:
                minted.append(tok)
            env = h.forge(w.X.keys.sign, w.Y.keys.pub, w.X.id, w.Y.id, sid, ses,
                          tok or "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2lnbmF0dXJlc2lnbmF0dXJl",
                          vendor_data="leak-%d" % i)
            if i == 2:
                env = flip_sealed(env)
            bad.append((w.Y.id, env))
        self.start_daemons(w)
        w.kafka.produce(w.t["tokens"], bad)
        # two kills, the first with a restart in between: a longer stream
        produced = self.produce_paced(w, batches=60, gap=0.25)
        self.kill_mid_stream(w, w.iss, signal.SIGKILL, w.f_tok.count, w.minted, 0.1, 0.3)
        self.kill_mid_stream(w, w.imps[0], signal.SIGKILL, w.done, w.redeemed, 0.3, 0.6)
        produced()
        wait_stable(w.done, n + len(bad), 300, settle=2.0)
        for d in w.daemons:
            self.assertEqual(d.stop(), 0)
        self.assertIn("token ", w.iss.logtext(), "issuer debug log lacks the token digest "
                      "line: is debug logging on?")
        leaks = token_leaks(w, known_tokens=minted)
        self.assertNoProblems(leaks, "share tokens in plaintext")
        # the search itself finds tokens where they are
        probe = os.path.join(w.wd, "probe.log")
        with open(probe, "w") as f:
            f.write("x %s y\n" % minted[0])
        self.assertTrue(token_leaks(w, extra_logs=[probe]))
        # ... and in /metrics: every daemon's last text was scanned (kept
        # at its clean stops), and a canary there would be found
        self.assertTrue(all(d.metrics_texts for d in w.daemons))
        w.iss.metrics_texts.append(
            '# HELP kyc_bridge_probe Probe.\n# TYPE kyc_bridge_probe gauge\n'
            'kyc_bridge_probe{k="%s"} 1\n' % w.X.key)
        self.assertTrue(metrics_leak_findings(w))


class TestConfigValidation(PipelineCase):
    """A bad config stops the daemon at start-up: exit status 2 and
    `file:line: reason`."""

    def run_bad(self, role, conf, key, line=None, mention=None):
        t0 = time.monotonic()
        rc, out, err = h.run_cli([role, "-c", conf], timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(rc, 2, "%s %s: exit %d, stderr: %s" % (role, key, rc, err))
        if line is None:
            line = h.conf_line(conf, key)
        rx = r"^(?:%s: )?%s:%d: " % (role, re.escape(conf), line)
        self.assertTrue(any(re.match(rx, l) for l in err.splitlines()),
                        "%s, %s: want `%s:%d: reason`, got: %r" % (role, key, conf, line, err))
        self.assertIn(mention or key, err)
        self.assertLess(took, 10, "config error took %.1f s to report" % took)
        self.assertNotIn(b"eyJ", out)

    def test_bad_configs(self):
        w = self.world("conf")
        X, Y = w.app("x"), w.app("y")
        cases = []

        def variant(role, name, change, key, remove=(), mention=None):
            path = (w.issuer_conf(X, [Y], name=name) if role == "issuer"
                    else w.importer_conf(Y, [(X, {})], name=name))
            with open(path) as f:
                lines = f.read().splitlines()
            lines = [l for l in lines if l.split("=", 1)[0].strip() not in remove]
            for k, v in change.items():
                done = False
                for i, l in enumerate(lines):
                    if l.split("=", 1)[0].strip() == k:
                        lines[i] = "%s = %s" % (k, v)
                        done = True
                if not done:
                    lines.append("%s = %s" % (k, v))
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            cases.append((role, path, key, mention))

        for role in ("issuer", "importer"):
            variant(role, role + "-unknown", {"vendor.colour": "blue"}, "vendor.colour")
            variant(role, role + "-badint", {"vendor.timeout_ms": "soon"}, "vendor.timeout_ms")
            variant(role, role + "-range", {"vendor.max_in_flight": "0"}, "vendor.max_in_flight")
            variant(role, role + "-literal", {"vendor.api_key": "sk_live_literal"},
                    "vendor.api_key")
            variant(role, role + "-pass", {"keys.passphrase": "hunter2"}, "keys.passphrase")
            variant(role, role + "-nobundle", {"partner.y.keys" if role == "issuer"
                                               else "partner.x.keys": "/nonexistent/p.json"},
                    "partner.y.keys" if role == "issuer" else "partner.x.keys")
        variant("issuer", "issuer-nosign", {"keys.sign_secret": "/nonexistent/x.sign.key"},
                "keys.sign_secret")
        variant("importer", "importer-nobox", {"keys.box_secret": "/nonexistent/y.box.key"},
                "keys.box_secret")
        variant("importer", "importer-badbool", {"partner.x.trust_review": "maybe"},
                "partner.x.trust_review")
        variant("importer", "importer-badrecord", {"partner.x.record": "everything"},
                "partner.x.record")
        # no workflow at all for a partner: the error points at the
        # partner's section (its application_id line)
        variant("importer", "importer-noworkflow", {}, "partner.x.application_id",
                remove=("partner.x.workflow_id.user", "partner.x.workflow_id.business"),
                mention="workflow_id")
        failures = []
        for role, path, key, mention in cases:
            try:
                self.run_bad(role, path, key, mention=mention)
            except AssertionError as e:
                failures.append(str(e).splitlines()[0][:400])
        self.assertNoProblems(failures, "config validation")

    def test_missing_state_topic(self):
        """A state topic that does not exist (a deployment that forgot to
        create it): the daemon refuses to start, exit status 1, naming the
        topic; it does not run without its dedup memory."""
        w = self.world("nostate")
        X, Y = w.app("x"), w.app("y")
        ghost = w.prefix + ".no-such-state"
        for role, conf in (
                ("issuer", w.issuer_conf(X, [Y], name="issuer-nostate",
                                         extra={"issuer.state_topic": ghost})),
                ("importer", w.importer_conf(Y, [(X, {})], name="importer-nostate",
                                             state=ghost))):
            t0 = time.monotonic()
            rc, out, err = h.run_cli([role, "-c", conf], timeout=90)
            took = time.monotonic() - t0
            self.assertEqual(rc, 1, "%s: exit %d, stderr: %s" % (role, rc, err))
            # the state topic is one of the daemon's outputs: checked when
            # the producer starts, before the state is read
            self.assertIn("output topic %s: Broker: Unknown topic or partition "
                          "(the daemons never create topics)" % ghost, err,
                          "%s: %s" % (role, err))
            self.assertLess(took, 45, "%s: took %.1f s to give up" % (role, took))
            self.assertNotIn(ghost, w.kafka.topics(w.prefix + "."),
                             "%s created the state topic" % role)


def personal_keys(o, path=""):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in PERSONAL_KEYS:
                yield path + "." + k
            yield from personal_keys(v, path + "." + k)
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from personal_keys(v, "%s[%d]" % (path, i))


def personal_values(o, key=None):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from personal_values(v, k)
    elif isinstance(o, list):
        for v in o:
            yield from personal_values(v, key)
    elif isinstance(o, str) and (key in PERSONAL_KEYS or o.startswith("https://")
                                 or key in ("name", "matched_name")):
        if len(o) >= 4:
            yield o


if __name__ == "__main__":
    unittest.main()
