"""test_keyrotation.py -- the box key rotation runbook of docs/operations.md,
step by step, on a real Kafka broker and the sandbox (Python 3 stdlib
unittest): the partner (importer side) adds a key, its issuers switch to
it, the old key retires -- and no envelope is ever refused.

Run (CTest does, see keyrotation.cmake):
  KB_BIN=build/kyc-bridge KB_KAFKA_DIR=<broker dir of scripts/kafka.sh> \
  KB_TEST_TMP=/tmp/kbt python3 -m unittest test_keyrotation.TestKeyRotation

KB_KEEP=1 keeps the work directory (configs, keys, logs).
"""
import collections
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbharness as h  # noqa: E402
from pipeline_world import World, exactly_once_report, token_leaks  # noqa: E402


def load(path):
    with open(path) as f:
        return json.load(f)


def kv(out):
    """key=value lines (keygen's output) as a dict."""
    return dict(l.split("=", 1) for l in out.decode().splitlines() if "=" in l)


class TestKeyRotation(unittest.TestCase):
    """Partner Y rotates its box (receiving) key while issuer X sends:
      0. X seals to Y's bundle (old key); Y's importer opens with the old
         box key.
      1. Y: `kyc-bridge keygen` a new pair; `keygen --merge` a bundle with
         the new keys first, the old after.
      2. Y: importer configured with both box keys, restarted. Envelopes
         sealed to the old key while it was down are opened after it.
      3. X: partner.y.keys = the merged bundle, issuer restarted: it seals
         to the new key from then on; old-key envelopes still in flight
         are opened.
      4. Y: once its importer has drained the token topic (consumer lag 0
         in /metrics, every old-key envelope has its record), the old box
         key is retired (importer restarted with the new key only) and
         the bundle without it (the new pair's own) goes to X, who
         restarts.
    Every request gets exactly one downstream record; no dead letter, on
    either side, at any step."""

    def setUp(self):
        self.w = World("keyrot", metrics=True)
        self.failed = True

    def tearDown(self):
        self.w.close(keep=self.failed)
        if self.failed:
            print("[%s] kept %s" % (self.id(), self.w.wd), file=sys.stderr)

    def note(self, fmt, *a):
        print("[keyrot +%.1fs] %s" % (time.monotonic() - self.t0, fmt % a), file=sys.stderr)

    def send(self, tag, n=4):
        w = self.w
        reqs = [h.share_request(
            w.sb.finished_session(self.X.key, self.X.wf["kyc"], "Approved"), self.Y.id,
            "kr-%s-%d-%s" % (tag, i, uuid.uuid4().hex[:8]),
            vendor_data="kr-%s-%d-%s" % (tag, i, uuid.uuid4().hex[:6]))
            for i in range(n)]
        w.produce_requests(reqs)
        ids = [r["share_id"] for r in reqs]
        self.sent[tag] = ids
        return ids

    def envelopes(self):
        """share_id -> [recipient_key_id, ...] of the committed envelopes."""
        out = collections.defaultdict(list)
        for r in self.w.kafka.consume_all(self.w.t["tokens"]):
            d = json.loads(r["value"])
            out[d["share_id"]].append(d["recipient_key_id"])
        return out

    def imported(self):
        return {json.loads(r["value"])["share_id"]
                for r in self.w.kafka.consume_all(self.w.t["imported"])}

    def wait_imported(self, ids, timeout=90):
        h.wait_for(lambda: set(ids) <= self.imported(), timeout,
                   "%d downstream records" % len(ids), interval=0.5)

    def no_dead_letters(self, d):
        """@d's /metrics: not one dead letter in this run; its key ids."""
        m = d.scrape()
        self.assertEqual(m.total("kyc_bridge_records_total", outcome="dead_lettered"), 0,
                         "%s dead-lettered: %s" % (d.name,
                                                   m.samples("kyc_bridge_dead_letters_total")))
        self.assertEqual(m.total("kyc_bridge_dead_letters_total"), 0)
        return m

    def key_ids(self, d, role):
        """The key ids @d's /metrics reports for @role; None when the
        daemon has no kyc_bridge_key_ids family."""
        m = d.scrape()
        if m.type_of("kyc_bridge_key_ids") is None:
            return None
        return {l["key_id"] for l, v in m.samples("kyc_bridge_key_ids", role=role) if v == 1}

    def test_box_key_rotation(self):
        self.t0 = time.monotonic()
        w = self.w
        X, Y = self.X, self.Y = w.app("x"), w.app("y")
        self.sent = {}
        kdir = os.path.dirname(Y.keys.box)
        old_id = load(Y.keys.pub)["keys"][0]["key_id"]

        # 0. running on the old key
        iconf = w.issuer_conf(X, [Y])
        mconf = w.importer_conf(Y, [(X, {})])
        iss = w.daemon("issuer", iconf, "issuer")
        imp = w.daemon("importer", mconf, "importer")
        self.wait_imported(self.send("a"))
        self.assertEqual(self.key_ids(imp, "box") or {old_id}, {old_id})
        self.note("step 0 done")

        # 1. the partner makes a new pair and a rotation bundle
        rc, out, err = h.run_cli(["keygen", "--out-dir", kdir, "--name", "y-2"])
        self.assertEqual(rc, 0, err)
        new = kv(out)
        new_id, new_box, new_pub = new["box_key_id"], new["box_key_file"], \
            new["public_keys_file"]
        self.assertNotEqual(new_id, old_id)
        rot = os.path.join(kdir, "y-rotation.pub.json")
        rc, out, err = h.run_cli(["keygen", "--merge", rot, new_pub, Y.keys.pub])
        self.assertEqual(rc, 0, err)
        bundle = load(rot)
        self.assertEqual([k["key_id"] for k in bundle["keys"] if k["type"] == "x25519"],
                         [new_id, old_id], "the rotation bundle: new box key first")

        # 2. the importer takes both keys; envelopes sealed to the old key
        #    while it restarts wait on the topic and are opened after
        self.assertEqual(imp.stop(), 0)
        self.no_dead_letters_from_texts(imp)
        b_ids = self.send("b")
        h.wait_for(lambda: set(b_ids) <= set(self.envelopes()), 60,
                   "envelopes of batch b", interval=0.5)
        w.importer_conf(Y, [(X, {})], extra={
            "keys.box_secret": "%s, %s" % (new_box, Y.keys.box)})
        imp.start()
        self.wait_imported(b_ids)
        self.assertEqual(self.key_ids(imp, "box") or {old_id, new_id}, {old_id, new_id})
        self.note("step 2 done: importer opens both")

        # 3. the issuer switches to the rotation bundle; a batch sent just
        #    before the switch is in flight, sealed to the old key
        c_ids = self.send("c")
        h.wait_for(lambda: set(c_ids) <= set(self.envelopes()), 60,
                   "envelopes of batch c", interval=0.5)
        self.no_dead_letters(iss)
        self.assertEqual(iss.stop(), 0)
        w.issuer_conf(X, [("y", Y.id, rot)])
        iss.start()
        d_ids = self.send("d")
        self.wait_imported(c_ids + d_ids)
        # (the issuer seals to the first box key of the bundle only)
        self.assertEqual(self.key_ids(iss, "partner_box") or {new_id}, {new_id})
        self.note("step 3 done: issuer seals to the new key")

        # 4. drained (lag 0 on every token partition, every old-key
        #    envelope imported): the old key retires
        env = self.envelopes()
        old_sealed = [s for s, ks in env.items() if old_id in ks]
        self.assertEqual(set(old_sealed), set(self.sent["a"] + b_ids + c_ids))
        self.assertTrue(set(old_sealed) <= self.imported())

        def drained():
            m = imp.scrape()
            lags = m.samples("kyc_bridge_consumer_lag", topic=w.t["tokens"])
            return len(lags) == 4 and not any(v for _, v in lags) and \
                m.get("kyc_bridge_records_in_flight", daemon="importer") == 0
        h.wait_for(drained, 30, "importer lag 0 on the 4 token partitions", interval=0.5)
        self.no_dead_letters(imp)
        self.assertEqual(imp.stop(), 0)
        w.importer_conf(Y, [(X, {})], extra={"keys.box_secret": new_box})
        imp.start()
        self.assertEqual(iss.stop(), 0)
        w.issuer_conf(X, [("y", Y.id, new_pub)])
        iss.start()
        e_ids = self.send("e")
        self.wait_imported(e_ids)
        self.assertEqual(self.key_ids(imp, "box") or {new_id}, {new_id})
        self.note("step 4 done: old key retired")

        # nothing refused, nothing doubled
        time.sleep(2)
        self.no_dead_letters(imp)
        self.no_dead_letters(iss)
        self.assertEqual(imp.stop(), 0)
        self.assertEqual(iss.stop(), 0)
        outs = w.outputs()
        self.assertEqual([r["doc"] for r in outs["importer_dlq"]], [])
        self.assertEqual([r["doc"] for r in outs["issuer_dlq"]], [])
        every = [s for ids in self.sent.values() for s in ids]
        problems = exactly_once_report(every, outs)
        self.assertEqual(problems, [], "\n".join(problems))
        env = self.envelopes()
        for tag, want in (("a", old_id), ("b", old_id), ("c", old_id), ("d", new_id),
                          ("e", new_id)):
            for s in self.sent[tag]:
                self.assertEqual(env[s], [want], "batch %s, share %s: sealed to %s"
                                 % (tag, s, env[s]))
        leaks = token_leaks(w)
        self.assertEqual(leaks, [], "\n".join(leaks[:20]))
        self.failed = False

    def no_dead_letters_from_texts(self, d):
        """The /metrics text @d kept at its last clean stop: no dead letter."""
        self.assertTrue(d.metrics_texts, "%s kept no /metrics text" % d.name)
        m = h.parse_metrics(d.metrics_texts[-1])
        self.assertEqual(m.total("kyc_bridge_dead_letters_total"), 0)


if __name__ == "__main__":
    unittest.main()
