#!/usr/bin/env python3
"""try.py -- run one share hand-off end to end on this machine and print it.

Real Kafka (already started by scripts/try.sh), the sandbox as the vendor, an
issuer and an importer with fresh keys. Shares a mix of KYC and KYB sessions
(some Declined, some In Review) and prints, per share, what arrived where.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "blackbox"))
import kbharness as h  # noqa: E402

COUNT = int(os.environ.get("KB_TRY_COUNT", "12"))


def main():
    wd = h.new_workdir("try")
    k = h.Kafka()
    pfx = "try%d" % int(time.time())
    t = h.topic_names(pfx)
    k.create_topics([(t["requests"], 2), (t["tokens"], 2), (t["issuer_dlq"], 1),
                     (t["state"], 1), (t["imported"], 2), (t["importer_dlq"], 1)])
    sb = h.Sandbox(wd)
    try:
        x_app, x_key = sb.app("issuer (Service X)")
        y_app, y_key = sb.app("partner (Service Y)")
        x_wf = {"user": sb.workflow(x_key, "kyc"), "business": sb.workflow(x_key, "kyb")}
        y_wf = {"user": sb.workflow(y_key, "kyc"), "business": sb.workflow(y_key, "kyb")}
        for name, key in (("x", x_key), ("y", y_key)):
            with open(os.path.join(wd, name + ".api-key"), "w") as f:
                f.write(key)
            os.chmod(os.path.join(wd, name + ".api-key"), 0o600)
        kx, ky = h.Keys(wd, "issuer"), h.Keys(wd, "partner")
        common = {"kafka.bootstrap.servers": k.bootstrap, "vendor.url": sb.url}
        iconf = h.write_conf(os.path.join(wd, "issuer.conf"), dict(common, **{
            "application_id": x_app, "vendor.api_key": "file:" + wd + "/x.api-key",
            "keys.sign_secret": kx.sign, "issuer.request_topic": t["requests"],
            "issuer.token_topic": t["tokens"], "issuer.dlq_topic": t["issuer_dlq"],
            "issuer.state_topic": t["state"], "issuer.group_id": pfx + "-issuer",
            "partner.y.application_id": y_app, "partner.y.keys": ky.pub}))
        mconf = h.write_conf(os.path.join(wd, "importer.conf"), dict(common, **{
            "application_id": y_app, "vendor.api_key": "file:" + wd + "/y.api-key",
            "keys.box_secret": ky.box, "importer.token_topics": t["tokens"],
            "importer.output_topic": t["imported"], "importer.dlq_topic": t["importer_dlq"],
            "importer.group_id": pfx + "-importer",
            "partner.x.application_id": x_app, "partner.x.keys": kx.pub,
            "partner.x.workflow_id.user": y_wf["user"],
            "partner.x.workflow_id.business": y_wf["business"],
            "partner.x.trust_review": "true", "partner.x.record": "summary"}))
        statuses = {"user": ["Approved", "Declined", "In Review"],
                    "business": ["APPROVED", "DECLINED", "IN_REVIEW"]}
        reqs, meta = [], {}
        for i in range(COUNT):
            kind = "business" if i % 3 == 2 else "user"
            st = statuses[kind][i % 3]
            sid = sb.finished_session(x_key, x_wf[kind], st, vendor_data="x-%d" % i)
            r = h.share_request(sid, y_app, vendor_data="y-customer-%d" % i)
            reqs.append(r)
            meta[r["share_id"]] = (kind, st)
        # one request for a session that never finished: dead-lettered
        sid = sb.finished_session(x_key, x_wf["user"], None)
        r = h.share_request(sid, y_app)
        reqs.append(r)
        meta[r["share_id"]] = ("user", "Not Started")
        print("try: %d share requests -> %s (Kafka %s, sandbox %s)"
              % (len(reqs), t["requests"], k.bootstrap, sb.url))
        iss = h.Daemon(wd, "issuer", iconf)
        imp = h.Daemon(wd, "importer", mconf)
        k.produce(t["requests"], [(r["share_id"], json.dumps(r)) for r in reqs])
        out = {}

        def collect():
            for rec in k.consume_all(t["imported"]):
                d = json.loads(rec["value"])
                out[d["share_id"]] = ("imported", d["status"], d["vendor_data"], t["imported"])
            for topic in (t["issuer_dlq"], t["importer_dlq"]):
                for rec in k.consume_all(topic):
                    d = json.loads(rec["value"])
                    out[d["share_id"]] = ("dead-lettered", "-", d["reason"], topic)
            return len(out) >= len(reqs)

        h.wait_for(collect, 90, "every share to arrive", interval=0.5)
        print("%-36s %-8s %-10s %-13s %-10s %-20s %s" % (
            "share_id", "kind", "source", "outcome", "imported", "vendor_data/reason", "topic"))
        for r in reqs:
            kind, st = meta[r["share_id"]]
            o = out[r["share_id"]]
            print("%-36s %-8s %-10s %-13s %-10s %-20s %s"
                  % (r["share_id"], kind, st, o[0], o[1], o[2], o[3]))
        iss.stop()
        imp.stop()
        n_imp = sum(1 for v in out.values() if v[0] == "imported")
        print("try: %d requested, %d imported, %d dead-lettered (work dir %s)"
              % (len(reqs), n_imp, len(reqs) - n_imp, wd))
    finally:
        sb.stop()


if __name__ == "__main__":
    main()
