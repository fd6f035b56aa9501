#!/usr/bin/env python3
# webhook_sig_check.py -- independent check of the webhook signature vectors
# with the vendor's own sample code (seed 004, "Webhook Events & Signatures").
#
#   webhook_sig_check.py check tests/vectors/webhook/vectors.jsonl
#       every vector's X-Signature-V2 and X-Signature-Simple must be accepted
#       by the vendor's verify functions, and must be rejected after a
#       one-character change of body, secret or timestamp; exit 0 / 1.
#   webhook_sig_check.py gen [EXTRA_BODY_FILE ...] > vectors.jsonl
#       (re)generates the vectors from the built-in bodies (plus extra raw
#       bodies, e.g. a synthetic KYB session) with the vendor's algorithm.
#
# The C unit test tests/unit/test_webhook_sig.c checks that the C signer
# reproduces these vectors byte for byte. Python 3 stdlib only.
import hashlib
import hmac
import json
import sys
import time

# --- vendor sample, verbatim apart from indentation (seed 004) -------------


def verify_webhook_v2(body_dict: dict, signature: str, timestamp: str, secret: str) -> bool:
    if abs(time.time() - int(timestamp)) > 300:
        return False

    def process_value(v):
        if isinstance(v, float) and v == int(v):
            return int(v)
        if isinstance(v, dict):
            return {k: process_value(val) for k, val in v.items()}
        if isinstance(v, list):
            return [process_value(i) for i in v]
        return v
    canonical = json.dumps(process_value(body_dict), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    message = f"{timestamp}:{canonical}"
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def verify_webhook_simple(session_id, status, webhook_type, timestamp, signature, secret):
    message = f"{timestamp}:{session_id}:{status}:{webhook_type}"
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected)

# --- end of vendor sample ----------------------------------------------------


def process_value(v):
    if isinstance(v, float) and v == int(v):
        return int(v)
    if isinstance(v, dict):
        return {k: process_value(val) for k, val in v.items()}
    if isinstance(v, list):
        return [process_value(i) for i in v]
    return v


def canonical(body_dict):
    return json.dumps(process_value(body_dict), sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))


def sign(secret, timestamp, msg):
    return hmac.new(secret.encode(), f"{timestamp}:{msg}".encode(),
                    hashlib.sha256).hexdigest()


class FrozenClock:
    """Runs the vendor's verify at the delivery's own time."""

    def __init__(self, t):
        self.t = t
        self.saved = None

    def __enter__(self):
        self.saved = time.time
        time.time = lambda: float(self.t)

    def __exit__(self, *exc):
        time.time = self.saved


SID = "3f1c2a9e-5b7d-4e8f-a1c3-d5e7f9b1c3e5"
BODIES = [
    ("basic", "whsec_sandbox_0123456789abcdef", 1795312800,
     '{"session_id":"%s","status":"Approved","webhook_type":"status.updated",'
     '"vendor_data":"user-123","timestamp":1795312800,"decision":{"status":'
     '"Approved","face_matches":[{"score":91.25,"status":"Approved"}],'
     '"liveness_checks":[{"score":99.0,"method":"passive"}]}}' % SID),
    ("pretty-printed-body", "whsec_sandbox_0123456789abcdef", 1795312801,
     '{\n  "webhook_type" : "status.updated",\n  "timestamp" : 1795312801 ,\n'
     '  "status" : "Declined",\n  "session_id" : "%s",\n'
     '  "vendor_data" : null,\n  "decision" : null\n}\n' % SID),
    ("unicode-and-escapes", "whsec_\u00f1and\u00fc_\u6771\u4eac", 1795312802,
     '{"session_id":"%s","status":"In Review","webhook_type":"data.updated",'
     '"vendor_data":"Ł\u00f3d\u017a/\u6771\u4eac \U0001F600","timestamp":1795312802,'
     '"decision":{"note":"tab\\there\\nnew\\u0000nul\\u001f\\u007f\\u2028'
     '\\u2029 \\"q\\" \\\\ \\/ \\u00e9","full_name":"Jos\u00e9 M\u00fcller"}}' % SID),
    ("key-order-code-points", "whsec_sandbox_keys", 1795312803,
     '{"timestamp":1795312803,"webhook_type":"status.updated","status":'
     '"APPROVED","session_id":"%s","vendor_data":"biz-9","decision":{'
     '"\\u00e9":1,"z":2,"Z":3,"a":4,"\\u00e4":5,"\\ud83d\\ude00":6,'
     '"\\uffff":7,"\\ue000":8,"":9,"aa":10,"a\\u0001":11,"a b":12}}' % SID),
    ("numbers", "whsec_sandbox_numbers", 1795312804,
     '{"session_id":"%s","status":"Approved","webhook_type":"status.updated",'
     '"vendor_data":"n","timestamp":1795312804,"decision":{"whole":[1.0,'
     '-0.0,100.00,1e2,1E20,1.5e300,-2.0e3],"frac":[0.1,87.35,1e-7,-1.5e-7,'
     '0.0001,1e-05,123456789.25,0.30000000000000004,5e-324],"ints":[0,-0,'
     '-1,9223372036854775807,-9223372036854775808,18446744073709551615],'
     '"bools":[true,false,null],"empty":[{},[],""]}}' % SID),
    ("deep-nesting", "s", 1,
     '{"session_id":"s","status":"Approved","webhook_type":"status.updated",'
     '"timestamp":1,"decision":' + '{"k":[' * 20 + '1' + ']}' * 20 + '}'),
]


def vector(name, secret, ts, body):
    d = json.loads(body)
    if d["timestamp"] != ts:  # not an assert: python -O would drop it
        raise ValueError("vector %s: body timestamp %r, want %r"
                         % (name, d["timestamp"], ts))
    return {
        "name": name,
        "secret": secret,
        "timestamp": str(ts),
        "body": body,
        "canonical": canonical(d),
        "sig_v2": sign(secret, ts, canonical(d)),
        "sig_simple": sign(secret, ts, "%s:%s:%s" % (
            d["session_id"], d["status"], d["webhook_type"])),
    }


def gen(extra):
    out = [vector(*b) for b in BODIES]
    for i, path in enumerate(extra):
        with open(path, encoding="utf-8") as f:
            body = f.read()
        ts = json.loads(body)["timestamp"]
        out.append(vector("extra-%d" % i, "whsec_sandbox_extra", ts, body))
    for v in out:
        sys.stdout.write(json.dumps(v, ensure_ascii=True) + "\n")
    return 0


def flip(s):
    i = len(s) // 2
    return s[:i] + ("b" if s[i] != "b" else "c") + s[i + 1:]


def check(path):
    bad = 0
    n = 0
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f.read().split("\n") if ln]
    for ln in lines:
        v = json.loads(ln)
        d = json.loads(v["body"])
        ts, sec = v["timestamp"], v["secret"]
        n += 1
        with FrozenClock(int(ts)):
            ok = [
                verify_webhook_v2(d, v["sig_v2"], ts, sec),
                verify_webhook_simple(d["session_id"], d["status"],
                                      d["webhook_type"], ts, v["sig_simple"],
                                      sec),
                canonical(d) == v["canonical"],
            ]
            no = [
                verify_webhook_v2(d, v["sig_v2"], ts, flip(sec)),
                verify_webhook_v2(d, v["sig_v2"], str(int(ts) + 1), sec),
                verify_webhook_v2(dict(d, status=d["status"] + "x"),
                                  v["sig_v2"], ts, sec),
                verify_webhook_simple(d["session_id"], d["status"],
                                      d["webhook_type"], ts, v["sig_simple"],
                                      flip(sec)),
            ]
        with FrozenClock(int(ts) + 301):
            no.append(verify_webhook_v2(d, v["sig_v2"], ts, sec))
        if not all(ok) or any(no):
            print("vector %s: accepted %s, forgeries accepted %s"
                  % (v["name"], ok, no), file=sys.stderr)
            bad += 1
    if n < len(BODIES):
        print("only %d vectors in %s" % (n, path), file=sys.stderr)
        return 1
    print("%d vectors checked with the vendor's sample, %d bad" % (n, bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "gen":
        return gen(argv[2:])
    if len(argv) == 3 and argv[1] == "check":
        return check(argv[2])
    print(__doc__ or "usage: webhook_sig_check.py check FILE | gen [FILE...]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
