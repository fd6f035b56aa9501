#!/usr/bin/env python3
"""mkcorpus.py -- (re)writes the seed corpora and dictionaries of tests/fuzz/.

Seeds are small, realistic inputs: the project's own test vectors
(tests/vectors/), its configuration templates (docker/config/), answers the
sandbox gives (recorded with fuzz_sandbox and KB_FUZZ_DUMP=1, see
README.md), plus edge cases. Run it from anywhere; it only writes under
tests/fuzz/corpus/ and tests/fuzz/*.dict. The fuzzers add what they find to
copies of these directories (scripts/fuzz.sh), never to them.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
VEC = os.path.join(ROOT, "tests", "vectors")
CORPUS = os.path.join(HERE, "corpus")

# fuzz_jwt's HMAC key (tests/fuzz/fuzz_jwt.c)
JWT_KEY = b"fuzz-share-token-hmac-key-32-byt"
# tests/vectors/webhook/vectors.jsonl's secret, fuzz_webhook's too
WH_SECRET = b"whsec_sandbox_0123456789abcdef"
RECIPIENT = "d3b07384-d9a0-4c9b-8f1e-3a5c7e9b1d2f"
ISSUER = "6f1d2c3b-4a59-4e87-9b10-2c3d4e5f6a7b"
ISSUER2 = "0b7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
SESSION = "5c0ffee0-1234-4abc-9def-0123456789ab"
WORKFLOW = "7a3c1e5f-2b4d-4c6e-8f0a-1b2c3d4e5f60"


def compact(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, key=JWT_KEY, header=None):
    h = b64url(compact(header or {"alg": "HS256", "typ": "JWT"}).encode())
    p = b64url(compact(claims).encode())
    sig = hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64url(sig)


class Corpus:
    def __init__(self, target):
        self.dir = os.path.join(CORPUS, target)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def copy(self, name, path):
        with open(path, "rb") as f:
            self.add(name, f.read())


def dictionary(target, words):
    with open(os.path.join(HERE, target + ".dict"), "w") as f:
        f.write("# %s.dict -- written by mkcorpus.py\n" % target)
        for w in words:
            f.write('"%s"\n' % "".join(
                c if 0x20 <= ord(c) < 0x7f and c not in '"\\'
                else "\\x%02x" % ord(c) for c in w))


def envelope():
    c = Corpus("envelope")
    d = os.path.join(VEC, "envelope-v1")
    for f in sorted(os.listdir(d)):
        if f.endswith(".json") and not (
                f.endswith(".pub.json") or f.endswith(".expected.json")
                or f in ("manifest.json", "valid.inner.json")):
            c.copy(f, os.path.join(d, f))
    c.add("empty", "")
    c.add("null", "null")
    c.add("v2.json", '{"v":2}')


def inner_docs():
    with open(os.path.join(VEC, "envelope-v1", "valid.inner.json")) as f:
        text = f.read()
    base = json.loads(text)
    docs = {"valid.inner.json": text}
    kyb = dict(base, session_kind="business", share_id="share-0002-kyb",
               vendor_data_hint="Acme \"Ü\" /ltd", expires_at=1795312800)
    docs["kyb-hint.json"] = compact(kyb)
    docs["issuer2.json"] = compact(dict(
        base, issuer_application_id=ISSUER2,
        signer_key_id="822f4af7c8cfe3a6"))
    docs["expired.json"] = compact(dict(base, expires_at=1795306000,
                                        created_at=1795305000))
    docs["not-for-us.json"] = compact(dict(
        base, for_application_id="9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"))
    docs["created-after-expiry.json"] = compact(dict(base,
                                                     created_at=1795309300))
    docs["extra-member.json"] = compact(dict(base, extra=1))
    docs["wrong-issuer.json"] = compact(dict(base,
                                             issuer_application_id=ISSUER2))
    m = dict(base)
    del m["share_token"]
    docs["no-token.json"] = compact(m)
    docs["token-space.json"] = compact(dict(base, share_token="a b"))
    docs["kind-nul.json"] = compact(dict(base, session_kind="user\u0000"))
    docs["token-empty.json"] = compact(dict(base, share_token=""))
    docs["hint-empty.json"] = compact(dict(base, vendor_data_hint=""))
    docs["hint-control.json"] = compact(dict(base, vendor_data_hint="a\tb"))
    docs["hint-null.json"] = compact(dict(base, vendor_data_hint=None))
    docs["pretty.json"] = json.dumps(base, indent=2)
    docs["empty-object.json"] = "{}"
    return docs


def envelope_inner():
    c = Corpus("envelope_inner")
    for name, doc in inner_docs().items():
        c.add(name, doc)


def keys():
    c = Corpus("keys")
    d = os.path.join(VEC, "envelope-v1")
    for f in sorted(os.listdir(d)):
        if f.endswith(".pub.json") or f.endswith(".key"):
            c.copy(f, os.path.join(d, f))
    c.add("bundle-empty.json",
          '{"format":"kyc-bridge-public-keys/1","keys":[]}')
    with open(os.path.join(d, "recipient.box.key")) as f:
        text = f.read()
    c.add("keyfile-crlf.key", text.replace("\n", "\r\n"))
    c.add("keyfile-dup.key", text + "type=x25519\n")


def share_request():
    c = Corpus("share_request")
    ok = {"share_id": "share-0001", "session_id": SESSION,
          "for_application_id": RECIPIENT}
    c.add("minimal.json", compact(ok))
    c.add("full.json", compact(dict(ok, ttl_in_seconds=3600,
                                    vendor_data="partner-user-1")))
    c.add("unicode.json", compact(dict(ok, share_id="partage-\u00e9t\u00e9",
                                       vendor_data="\u6771\u4eac")))
    c.add("ttl-low.json", compact(dict(ok, ttl_in_seconds=59)))
    c.add("ttl-float.json", '{"share_id":"s","session_id":"%s",'
          '"for_application_id":"%s","ttl_in_seconds":60.0}'
          % (SESSION, RECIPIENT))
    c.add("unknown-member.json", compact(dict(ok, foo=1)))
    c.add("duplicate.json", '{"share_id":"a","share_id":"b"}')
    c.add("control.json", compact(dict(ok, share_id="a\u0001b")))
    c.add("webhook-rule.json", compact({
        "share_id": "wh-41d49efda0003481fa42d71897ab21d5",
        "session_id": SESSION, "for_application_id": RECIPIENT,
        "ttl_in_seconds": 3600, "vendor_data": "user-123"}))
    c.add("not-object.json", "[1,2]")
    c.add("too-large.json", compact(dict(ok, vendor_data="v" * 65536)))


def webhook_vectors():
    out = []
    with open(os.path.join(VEC, "webhook", "vectors.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def canon():
    c = Corpus("canon")
    for v in webhook_vectors():
        c.add("body-" + v["name"], v["body"])
        c.add("canonical-" + v["name"], v["canonical"])
    # one seed of the float vectors: every value in an array
    vals = []
    with open(os.path.join(VEC, "canon", "floats.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1] not in ("nan", "inf", "-inf"):
                vals.append(parts[1])
    for i in range(0, len(vals), 500):
        c.add("floats-%02d" % (i // 500), "[" + ",".join(vals[i:i + 500]) + "]")
    for i, d in enumerate([0.1, 1e-05, 1e16, 5e-324, 1.7976931348623157e308,
                           -0.0, 2.0 ** 63, 123456.789]):
        c.add("double-%d" % i, struct.pack("<d", d))
    c.add("deep", "[" * 70 + "]" * 70)
    c.add("big-ints", "[18446744073709551615,-9223372036854775808,"
          "123456789012345678901234567890,1e400,1E2]")
    c.add("strings", '["\\u0000","\\ud83d\\ude00","\\/","\u2028","\x7f"]')
    c.add("keys", '{"\u00e9":1,"z":2,"\U0001f600":3,"\ue000":4,"a":{"b":1,'
          '"a":2}}')


def webhook():
    c = Corpus("webhook")
    for v in webhook_vectors():
        n = v["name"]
        c.add("v2-" + n, "%s\n%s\n-\n%s" % (v["timestamp"], v["sig_v2"],
                                             v["body"]))
        c.add("simple-" + n, "%s\n-\n%s\n%s" % (v["timestamp"],
                                                 v["sig_simple"], v["body"]))
    # a delivery that the issuer's rules turn into share requests
    body = compact({
        "session_id": SESSION, "status": "Approved",
        "webhook_type": "status.updated", "vendor_data": "user-123",
        "timestamp": 1795312800,
        "decision": {"workflow_id": WORKFLOW, "session_kind": "user",
                     "status": "Approved"}})
    sig = hmac.new(WH_SECRET, ("1795312800:" + json.dumps(
        json.loads(body), sort_keys=True, separators=(",", ":"),
        ensure_ascii=False)).encode(), hashlib.sha256).hexdigest()
    c.add("rule-match", "1795312800\n%s\n-\n%s" % (sig, body))
    c.add("rule-match-kyb", "1795312800\n-\n-\n" + body.replace(
        "Approved", "IN_REVIEW").replace('"user"', '"business"'))
    c.add("no-headers", "-\n-\n-\n{}")
    c.add("bad-ts", "+1795312800\n%s\n-\n%s" % (sig, body))


def jwt_corpus():
    c = Corpus("jwt")
    claims = {"session_id": SESSION, "session_kind": "user",
              "from_application_id": ISSUER, "for_application_id": RECIPIENT,
              "iat": 1795305600, "exp": 1795309200}
    c.add("valid", jwt(claims))
    c.add("valid-kyb", jwt(dict(claims, session_kind="business")))
    c.add("other-key", jwt(claims, key=b"another key"))
    c.add("alg-none", jwt(claims, header={"alg": "none"}).rsplit(".", 1)[0]
          + ".")
    c.add("hs512", jwt(claims, header={"alg": "HS512", "typ": "JWT"}))
    c.add("crit", jwt(claims, header={"alg": "HS256", "crit": ["exp"]}))
    c.add("typ-lower", jwt(claims, header={"alg": "HS256", "typ": "jwt"}))
    c.add("claims-array", jwt([1, 2]))
    with open(os.path.join(VEC, "envelope-v1", "valid.inner.json")) as f:
        c.add("vector-token", json.load(f)["share_token"])
    c.add("padded", jwt(claims) + "=")
    c.add("two-segments", "eyJhbGciOiJIUzI1NiJ9.e30")
    c.add("too-long", jwt(dict(claims, pad="x" * 6200)))


def render_conf(path):
    values = {
        "ISSUER_APPLICATION_ID": ISSUER,
        "PARTNER_APPLICATION_ID": RECIPIENT,
        "VENDOR_URL": "http://127.0.0.1:8480",
        "KB_STATE_DIR": "/var/lib/kyc-bridge",
        "KAFKA_BOOTSTRAP": "127.0.0.1:9092",
        "ISSUER_WEBHOOK_LISTEN": "127.0.0.1:8490",
        "ISSUER_METRICS_LISTEN": "127.0.0.1:8490",
        "PARTNER_WEBHOOK_LISTEN": "127.0.0.1:8491",
        "PARTNER_METRICS_LISTEN": "127.0.0.1:8491",
        "ISSUER_WORKFLOW_RULE": WORKFLOW,
        "PARTNER_WORKFLOW_USER": WORKFLOW,
        "PARTNER_WORKFLOW_BUSINESS": "8b4d2f6a-3c5e-4d7f-9a1b-2c3d4e5f6a70",
    }
    with open(path) as f:
        text = f.read()
    text = re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], text)
    # file: secrets read files; the seeds use env: ones (fuzz_conf.c)
    return re.sub(r"= file:\S+", "= env:KB_FUZZ_SECRET", text)


def conf():
    c = Corpus("conf")
    for name in ("issuer.conf", "importer.conf"):
        text = render_conf(os.path.join(ROOT, "docker", "config", name))
        c.add(name, text)
        c.add(name + "-x", text + "\0issuer.group_id=g2\0kafka.linger.ms=5"
              "\0vendor.timeout_ms=2000")
    c.add("x-only", "\0vendor.url=https://vendor.invalid\0"
          "vendor.api_key=env:KB_FUZZ_SECRET\0kafka.consumer.fetch.wait.max.ms"
          "=100\0partner.y.application_id=" + RECIPIENT)
    c.add("bad-line", "vendor.url\n")
    c.add("twice", "vendor.timeout_ms = 1\nvendor.timeout_ms = 2\n")
    c.add("comments", "# c\n! c\n\n   \t\nvendor.max_in_flight=4\r\n")
    c.add("bad-x", "\0=v\0novalue\0unknown.key=1")
    # every option name, for the dictionary
    with open(os.path.join(ROOT, "bridge", "conf", "conf_options.c")) as f:
        names = re.findall(r'\{\s*"([a-z_.*]+)"\s*,\s*KB_CONF_', f.read())
    dictionary("conf", [n.replace("*", "y") for n in names] + [
        "=", " = ", "\n", "#", "!", "env:", "file:", "kafka.", "true",
        "false", "-1", "9223372036854775808", "{for_application_id}",
        "kafka.consumer.", "kafka.producer.", "kafka.security.protocol",
        "kafka.sasl.password", "SASL_SSL", "PLAINTEXT", "\x00"])


# Answers of the sandbox, recorded with fuzz_sandbox (KB_FUZZ_DUMP=1)
# from corpus/sandbox/share-import (shortened: the KYC arrays cut to one
# item each).
SESSION_BODY = {
    "session_id": "586a11d1-b124-4b33-874d-999f9f47e0bd",
    "session_number": 1, "session_kind": "user", "status": "Approved",
    "workflow_id": "d5c4efc1-2157-439c-95e2-e4fbc72efcb4",
    "vendor_data": "partner-user-1",
    "shared_from_session": SESSION,
    "created_at": "2026-11-22T00:10:00Z",
    "id_verifications": [{
        "id": "64b56f45-1920-49df-a881-4da4a94d4df0", "status": "Approved",
        "document_type": "Identity Card",
        "document_subtype": "Carta d'identit\u00e0",
        "full_name": "Alessia Rossi", "date_of_birth": "1995-11-21",
        "age": 30, "parsed_address": {"city": "Milano", "country": "ITA"},
        "mrz_verified": True, "warnings": []}],
    "liveness_checks": [{"id": "6f19b50c-6df1-4809-ba32-064ed506f78d",
                         "status": "Approved", "method": "passive",
                         "score": 97.01, "age_estimation": 32.3,
                         "warnings": []}],
    "aml_screenings": [{"id": "a25009b7-022b-48b4-8d49-643972beb48a",
                        "status": "Approved", "total_hits": 0, "score": 0.0,
                        "hits": [], "ongoing_monitoring": True}],
}


def vendor():
    c = Corpus("vendor")
    RS = "\x1e"
    tok = jwt({"session_id": SESSION, "session_kind": "user",
               "from_application_id": ISSUER,
               "for_application_id": RECIPIENT, "iat": 1795306200,
               "exp": 1795309800}, key=b"sandbox secret")
    share = compact({"share_token": tok, "for_application_id": RECIPIENT,
                     "session_kind": "user"})
    c.add("share-201", "share" + RS + "201\n" + share)
    c.add("share-429-then-201", "share" + RS + "429 30\n" + compact(
        {"detail": "Request was throttled. Expected available in 30 "
         "seconds."}) + RS + "201\n" + share)
    c.add("share-503-timeout-201", "share" + RS + "503\n" + RS + "T\n" + RS
          + "201\n" + share.replace('"user"', '"business"'))
    c.add("share-400", "share" + RS + "400\n" + compact(
        {"detail": "Only finished sessions (Approved, Declined or In Review)"
         " can be shared."}))
    c.add("share-expired-token", "share" + RS + "201\n" + compact(
        {"share_token": jwt({"exp": 1}), "session_kind": "business"}))
    c.add("share-garbled", b"share\x1e201\n<\xff\xfe garbled in transit "
          b"(sandbox fault)>")
    body = compact(SESSION_BODY)
    c.add("import-201", "import" + RS + "201\n" + body)
    c.add("import-403-token", "import" + RS + "403\n" + compact(
        {"detail": "Share token " + tok + " was already imported."}))
    c.add("import-X", "import" + RS + "X\n")
    c.add("import-too-large", "import" + RS + "B\n")
    c.add("decision-200", "decision" + RS + "200\n" + compact(dict(
        SESSION_BODY, features=["ID_VERIFICATION"], reviews=[], metadata=None,
        callback=None)))
    c.add("decision-404", "decision" + RS + "404\n" + compact(
        {"detail": "Session not found."}))
    results = [{k: SESSION_BODY[k] for k in (
        "session_id", "session_number", "session_kind", "status",
        "vendor_data", "workflow_id", "shared_from_session", "created_at")}]
    c.add("list-200", "list" + RS + "200\n" + compact(
        {"count": 3, "next": "http://127.0.0.1:8480/v3/sessions/?limit=1&"
         "offset=1", "previous": None, "results": results + [
             dict(results[0], session_number=7,
                  created_at="2026-11-22T01:10:00.123456+01:00"),
             dict(results[0], shared_from_session=None)]}))
    c.add("workflow-200", "workflow" + RS + "200\n" + compact(
        {"uuid": WORKFLOW, "workflow_label": "KYC", "workflow_type": "kyc"}))
    c.add("workflow-404", "workflow" + RS + "404\n")


def sandbox():
    c = Corpus("sandbox")
    c.add("share-import",
          "A session_share $S - {\"for_application_id\":\"$B\","
          "\"ttl_in_seconds\":600}\n"
          "B session_import - - {\"share_token\":\"$T\",\"workflow_id\":"
          "\"$WB\",\"vendor_data\":\"partner-user-1\",\"trust_review\":true}\n"
          "B session_decision $L - \n"
          "B sessions_list - vendor_data=partner-user-1&limit=5 \n"
          "B session_import - - {\"share_token\":\"$T\",\"workflow_id\":"
          "\"$WB\"}\n")
    c.add("create-complete",
          "A session_create - - {\"workflow_id\":\"$WK\",\"vendor_data\":"
          "\"acme-ltd\",\"metadata\":{\"a\":[1,2]},\"callback\":"
          "\"https://x.invalid/cb\"}\n"
          "A session_complete $L - {\"status\":\"IN_REVIEW\"}\n"
          "A session_update_status $L - {\"new_status\":\"APPROVED\","
          "\"comment\":\"ok\"}\n"
          "A entities - vendor_data=acme-ltd \n"
          "A sessions_list - status=APPROVED&offset=0&limit=1 \n")
    c.add("workflows",
          "A workflow_create - - {\"workflow_label\":\"L\",\"workflow_type\":"
          "\"kyb\",\"is_default\":true,\"is_aml_enabled\":true}\n"
          "A workflow_list - - \n"
          "A workflow_get $W - \n"
          "A workflow_delete $WK - \n"
          "B workflow_get $W - \n")
    c.add("webhooks",
          "A webhook_patch - - {\"webhook_url\":\"http://127.0.0.1:9/wh\","
          "\"webhook_version\":\"v3\",\"rotate_secret_key\":true,"
          "\"capture_method\":\"both\",\"data_retention_months\":12}\n"
          "A webhook_get - - \n"
          "A dest_create - - {\"url\":\"http://[::1]:9/d\","
          "\"subscribed_events\":[\"status.updated\",\"data.updated\"]}\n"
          "A dest_list - - \n"
          "A dest_delete $D - \n")
    c.add("extras",
          "- faults_put - - {\"path\":\"/v3/session/import-shared/\","
          "\"latency_ms\":100,\"error_rate\":0.5,\"error_status\":429,"
          "\"retry_after\":3,\"corrupt_body_rate\":0.1}\n"
          "- faults_get - - \n"
          "- ratelimits_put - - {\"per_minute\":2,\"decision\":0}\n"
          "A session_decision $S - \n"
          "A session_decision $S - \n"
          "A session_decision $S - \n"
          "- clock_put - - {\"offset_s\":90000}\n"
          "A session_share $S - {\"for_application_id\":\"$B\"}\n"
          "- verify $ST - \n"
          "- app_create - - {\"name\":\"Z\"}\n"
          "- app_list - - \n"
          "- app_delete $B - \n"
          "B webhook_get - - \n"
          "- faults_delete - - \n- ratelimits_delete - - \n- health - - \n")
    c.add("kyb-mismatch",
          "A session_create - - {\"workflow_id\":\"$WK\"}\n"
          "A session_complete $L - {\"status\":\"DECLINED\"}\n"
          "A session_share $L - {\"for_application_id\":\"$B\","
          "\"ttl_in_seconds\":60}\n"
          "B session_import - - {\"share_token\":\"$T\",\"workflow_id\":"
          "\"$WB\"}\n"
          "A session_import - - {\"share_token\":\"$T\",\"workflow_id\":"
          "\"$W\"}\n"
          "- clock_put - - {\"offset_s\":61}\n"
          "B session_import - - {\"share_token\":\"$T\",\"workflow_id\":"
          "\"$WB\"}\n")
    c.add("bad-fields",
          "B session_import - - {\"share_token\":\"$T\",\"workflow_id\":"
          "\"$WB\",\"trust_review\":\"yes\"}\n"
          "A session_share $S - {\"for_application_id\":\"$B\","
          "\"ttl_in_seconds\":\"600\"}\n"
          "A session_share $S - {\"for_application_id\":\"$B\","
          "\"ttl_in_seconds\":5}\n"
          "A session_create - - {\"workflow_id\":\"$W\",\"contact_details\":"
          "[]}\n"
          "A workflow_create - - {\"workflow_type\":\"aml\"}\n"
          "A webhook_patch - - {\"webhook_url\":\"http://example.com/\","
          "\"data_retention_months\":0}\n"
          "- faults_put - - {\"path\":\"/sandbox/x\",\"x\":1}\n"
          "- ratelimits_put - - {\"per_minute\":-1}\n"
          "- clock_put - - {\"offset_s\":1e3}\n")
    c.add("errors",
          "A session_create - - [1]\n"
          "A session_create - - {\"workflow_id\":1}\n"
          "A session_share $S - {\"for_application_id\":\"$A\"}\n"
          "A session_update_status $S - {\"new_status\":\"Resubmitted\","
          "\"send_email\":true}\n"
          "A session_delete $S - \n"
          "A session_decision $S - \n")
    dictionary("sandbox", [
        "A ", "B ", "- ", "$A", "$B", "$S", "$ST", "$W", "$WK", "$WB", "$T",
        "$L", "$D", "\n"] + [
        h for h in re.findall(r'\{ "([a-z_]+)", kb_sbx_h_', open(
            os.path.join(HERE, "fuzz_sandbox.c")).read())] + [
        "workflow_id", "vendor_data", "share_token", "for_application_id",
        "ttl_in_seconds", "trust_review", "new_status", "status", "offset",
        "limit", "webhook_url", "subscribed_events", "per_minute", "offset_s",
        "Approved", "IN_REVIEW", "Declined", "Resubmitted", "kyb", "kyc"])


def dlq():
    c = Corpus("dlq")
    RS = "\x1e"
    value = compact({"share_id": "share-1", "session_id": SESSION,
                     "for_application_id": RECIPIENT}).encode()
    inp = {"key": base64.b64encode(b"share-1").decode(),
           "value": base64.b64encode(value).decode(), "size": len(value),
           "sha256": hashlib.sha256(value).hexdigest(),
           "headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                       "00f067aa0ba902b7-01"}}
    dl = {"format": "kyc-bridge-dead-letter/1", "share_id": "share-1",
          "stage": "mint", "reason": "vendor_unavailable",
          "detail": "HTTP 503", "at": 1795306200,
          "source": {"topic": "kyc-bridge.share-requests", "partition": 0,
                     "offset": 41},
          "http_status": 503, "session_id": SESSION, "input": inp}
    marker = {"format": "kyc-bridge-dead-letter-redriven/1",
              "share_id": "share-1",
              "of": {"topic": "kyc-bridge.issuer-dlq", "partition": 0,
                     "offset": 1},
              "to": {"topic": "kyc-bridge.share-requests", "partition": 0},
              "at": 1795306300, "by": "redrive"}
    c.add("dead-letter", "share-1\nvendor_unavailable\n" + compact(dl))
    c.add("with-marker", "share-1\nvendor_unavailable\n" + compact(dl) + RS
          + "share-1\n-\n" + compact(marker))
    c.add("malformed", "-\nmalformed_request\n" + compact(dict(
        dl, reason="malformed_request", share_id=None, stage="request",
        detail="share_id: required string, token eyJa.eyJb.c")) + RS
        + "-\n-\nnot json" + RS + "k\n-\n[1]")
    bad = dict(inp, sha256="0" * 64)
    c.add("bad-digest", "share-1\n-\n" + compact(dict(dl, input=bad)))
    c.add("bad-header", "share-1\n-\n" + compact(dict(dl, input=dict(
        inp, headers={"x-evil": "1"}))))
    c.add("bad-types", "share-1\n-\n" + compact(dict(dl, input=dict(
        inp, key=5))) + RS + "share-1\n-\n" + compact(dict(dl, input=dict(
            inp, headers=["traceparent"]))))


def values():
    c = Corpus("values")
    c.add("traceparent", "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-"
          "00f067aa0ba902b7-01\ntracestate=congo=t61rcWkgMzE,rojo="
          "00f067aa0ba902b7\nkb-requested-at=1795306200123\n")
    c.add("traceparent-future", "traceparent=cc-4bf92f3577b34da6a3ce929d0e0e"
          "4736-00f067aa0ba902b7-09-what-the-future-will-be-like\n")
    c.add("traceparent-zero", "traceparent=00-00000000000000000000000000000"
          "000-00f067aa0ba902b7-01\n")
    c.add("tracestate-long", "traceparent=00-4bf92f3577b34da6a3ce929d0e0e473"
          "6-00f067aa0ba902b7-01\ntracestate=" + ",".join(
              "k%d=%s" % (i, "v" * 40) for i in range(20)) + "\n")
    c.add("times", "date=2026-11-22T00:10:00Z\nd=2026-12-05T16:19:34.123456"
          "+02:00\nd=2024-02-29T23:59:60-0530\nd=2026-11-22T00:10:00\n")
    c.add("retry-after", "Retry-After=120\nRetry-After=Sun, 22 Nov 2026 "
          "00:12:00 GMT\nRetry-After=-1\nRetry-After=99999999999\n")
    c.add("numbers", "n=-9223372036854775808\nn=9223372036854775807\n"
          "n=+1\nn= 1\nn=007\n")
    c.add("misc", "id=5c0ffee0-1234-4abc-9def-0123456789ab\nl=[::1]:8480\n"
          "l=localhost:0\nl=127.0.0.1:65536\nu=https://vendor.invalid/v3\n"
          "t=kyc-bridge.{for_application_id}\nv={vendor_data_hint}-x\n"
          "k=business\n")
    c.add("text", b"m=caf\xc3\xa9 \x1b[31mred\x1b[0m\r\n"
          b"j=bearer eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln and eyJ.eyJ.\n"
          b"b=\xff\xfe\xc0\xaf\xed\xa0\x80\n")
    dictionary("values", [
        "traceparent=", "tracestate=", "kb-requested-at=", "00-", "-01",
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "T", "Z",
        "+02:00", "GMT", "eyJ", ".", "[::1]:", "127.0.0.1:", "\n", "="])


def json_dict():
    words = ['{', '}', '[', ']', ',', ':', '"', 'true', 'false', 'null',
             '\\u0000', '\\ud800', '\\udc00', '\\"', '\\\\', '1e400', '-0',
             '0.1', '1E2', '9223372036854775808', '-9223372036854775809']
    for t in ("canon", "envelope", "envelope_inner", "share_request", "jwt",
              "keys", "webhook", "vendor", "dlq"):
        extra = {
            "envelope": ["\"v\":1", "for_application_id", "recipient_key_id",
                         "signer_key_id", "share_id", "expires_at", "sealed",
                         "a8fbaac8be692e9d", "72c0f6a043e4fc36"],
            "envelope_inner": ["issuer_application_id", "for_application_id",
                               "recipient_key_id", "signer_key_id",
                               "share_id", "session_kind", "user", "business",
                               "source_session_id", "vendor_data_hint",
                               "created_at", "expires_at", "share_token",
                               "822f4af7c8cfe3a6"],
            "share_request": ["share_id", "session_id", "for_application_id",
                              "ttl_in_seconds", "vendor_data", SESSION],
            "jwt": ["eyJ", ".", "alg", "HS256", "typ", "JWT", "crit", "none"],
            "keys": ["format=kyc-bridge-secret-key/1", "type=x25519",
                     "type=ed25519", "key_id=", "public_key=", "secret_key=",
                     "kdf=", "opslimit=", "memlimit=", "salt=", "nonce=",
                     "secret_key_encrypted=", "kyc-bridge-public-keys/1",
                     "keys", "label"],
            "webhook": ["timestamp", "session_id", "status", "webhook_type",
                        "status.updated", "decision", "workflow_id",
                        "session_kind", "Approved", "IN_REVIEW", WORKFLOW,
                        "1795312800", "\n", "-\n"],
            "vendor": ["\x1e", "share", "import", "list", "decision",
                       "workflow", "201\n", "429 ", "503\n", "T\n", "X\n",
                       "B\n", "share_token", "session_kind", "detail",
                       "results", "next", "shared_from_session",
                       "created_at", "session_number", SESSION],
            "dlq": ["\x1e", "\n", "-\n", "format", "kyc-bridge-dead-letter/1",
                    "kyc-bridge-dead-letter-redriven/1", "reason", "input",
                    "value", "size", "sha256", "headers", "key", "of",
                    "topic", "partition", "offset", "kyc-bridge.issuer-dlq",
                    "vendor_unavailable", "malformed_request"],
        }.get(t, [])
        dictionary(t, words + extra)


def main():
    envelope()
    envelope_inner()
    keys()
    share_request()
    canon()
    webhook()
    jwt_corpus()
    conf()
    vendor()
    sandbox()
    dlq()
    values()
    json_dict()


if __name__ == "__main__":
    main()
