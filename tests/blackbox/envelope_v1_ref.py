#!/usr/bin/env python3
# envelope_v1_ref.py -- an independent reader of envelope format v1, written
# from docs/envelope.md and docs/keys.md alone, in pure Python (standard
# library only: hashlib gives BLAKE2b and SHA-512; X25519, XSalsa20-Poly1305
# and Ed25519 are written out below from RFC 7748, the Salsa20/Poly1305
# papers and RFC 8032).
#
#   envelope_v1_ref.py VECTORS_DIR
#
# Loads the keys of tests/vectors/envelope-v1 (checking every key id and
# that every public key belongs to its secret key), then opens every vector
# of manifest.json and requires the result, the reported share_id and, for
# the valid ones, the fields and the token listed there. It shares no code
# with the C library: if the documents were incomplete or wrong, this would
# disagree with the vectors the C library produced and checks.
#
# Exit 0 when every vector agrees, 1 otherwise.
import base64
import hashlib
import json
import os
import re
import sys

# ---- limits and constants, as documented ----------------------------------

MAX_BYTES = 16384
MAX_INNER = 12288
MAX_TOKEN = 8192
MAX_ID = 128
MAX_TIME = 2**53 - 1
SEALBYTES = 48
CONTEXT = b"kyc-bridge envelope v1\x00"
KEYID_KEY = b"kyc-bridge key id v1"
OUTER = {"v", "for_application_id", "recipient_key_id", "signer_key_id",
         "share_id", "expires_at", "sealed"}
INNER = {"v", "issuer_application_id", "for_application_id",
         "recipient_key_id", "signer_key_id", "share_id", "session_kind",
         "source_session_id", "created_at", "expires_at", "share_token"}


class Refused(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.name = name


# ---- field 25519 -----------------------------------------------------------

P = 2**255 - 19


def inv(x):
    return pow(x, P - 2, P)


def x25519(k, u):
    """RFC 7748, section 5."""
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & (2**255 - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a % P, b * b % P
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + 121665 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * inv(z2) % P).to_bytes(32, "little")


# ---- Salsa20 family and Poly1305 -------------------------------------------

M32 = 0xFFFFFFFF
SIGMA = [int.from_bytes(b"expand 32-byte k"[i:i + 4], "little")
         for i in range(0, 16, 4)]


def _rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def _rounds(x):
    x = list(x)

    def qr(a, b, c, d):
        x[b] ^= _rotl((x[a] + x[d]) & M32, 7)
        x[c] ^= _rotl((x[b] + x[a]) & M32, 9)
        x[d] ^= _rotl((x[c] + x[b]) & M32, 13)
        x[a] ^= _rotl((x[d] + x[c]) & M32, 18)

    for _ in range(10):
        qr(0, 4, 8, 12)
        qr(5, 9, 13, 1)
        qr(10, 14, 2, 6)
        qr(15, 3, 7, 11)
        qr(0, 1, 2, 3)
        qr(5, 6, 7, 4)
        qr(10, 11, 8, 9)
        qr(15, 12, 13, 14)
    return x


def _words(b):
    return [int.from_bytes(b[i:i + 4], "little") for i in range(0, len(b), 4)]


def _state(key, inp16):
    k, n = _words(key), _words(inp16)
    return [SIGMA[0], k[0], k[1], k[2], k[3], SIGMA[1], n[0], n[1], n[2],
            n[3], SIGMA[2], k[4], k[5], k[6], k[7], SIGMA[3]]


def hsalsa20(key, inp16):
    z = _rounds(_state(key, inp16))
    return b"".join(z[i].to_bytes(4, "little")
                    for i in (0, 5, 10, 15, 6, 7, 8, 9))


def salsa20_stream(key, nonce8, length):
    out = bytearray()
    ctr = 0
    while len(out) < length:
        x = _state(key, nonce8 + ctr.to_bytes(8, "little"))
        z = _rounds(x)
        out += b"".join(((z[i] + x[i]) & M32).to_bytes(4, "little")
                        for i in range(16))
        ctr += 1
    return bytes(out[:length])


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & \
        0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p, acc = 2**130 - 5, 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) % 2**128).to_bytes(16, "little")


def secretbox_open(c, nonce24, key):
    """crypto_secretbox_open_easy: c = tag(16) || ciphertext."""
    if len(c) < 16:
        return None
    sub = hsalsa20(key, nonce24[:16])
    stream = salsa20_stream(sub, nonce24[16:], 32 + len(c) - 16)
    if poly1305(stream[:32], c[16:]) != c[:16]:  # not constant time: a test
        return None
    return bytes(a ^ b for a, b in zip(c[16:], stream[32:]))


def box_seal_open(c, pk, sk):
    """crypto_box_seal_open as documented in docs/envelope.md."""
    if len(c) < SEALBYTES:
        return None
    epk = c[:32]
    nonce = hashlib.blake2b(epk + pk, digest_size=24).digest()
    shared = x25519(sk, epk)
    if shared == bytes(32):
        return None
    key = hsalsa20(shared, bytes(16))
    return secretbox_open(c[32:], nonce, key)


# ---- Ed25519 (RFC 8032) ----------------------------------------------------

L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * inv(121666) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _encode(pt):
    x, y, z, _ = pt
    zi = inv(z)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(b):
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= 2**255 - 1
    if y >= P:
        return None
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
        if (x * x - x2) % P:
            return None
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return (x, y, 1, x * y % P)


BY = 4 * inv(5) % P
B = _decode(BY.to_bytes(32, "little"))


def ed25519_public(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return _encode(_mul(a, B))


def ed25519_verify(sig, msg, pk):
    if len(sig) != 64:
        return False
    A, R = _decode(pk), _decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if A is None or R is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + pk + msg).digest(),
                       "little") % L
    return _encode(_mul(s, B)) == _encode(_add(R, _mul(h, A)))


# ---- encodings -------------------------------------------------------------

B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_strict(s):
    """Unpadded base64url; the only spelling of its bytes, or None."""
    if not isinstance(s, str) or not B64URL.match(s) or len(s) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != s:
        return None  # non-zero unused bits
    return raw


def strict_json(data):
    """RFC 8259 JSON in UTF-8, no duplicate keys, no NaN/Infinity."""
    def pairs(kv):
        d = {}
        for k, v in kv:
            if k in d:
                raise ValueError("duplicate key")
            d[k] = v
        return d

    def bad_constant(c):
        raise ValueError("not JSON: " + c)

    text = data.decode("utf-8", errors="strict")
    return json.loads(text, object_pairs_hook=pairs,
                      parse_constant=bad_constant)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def id_ok(v):
    if not isinstance(v, str):
        return False
    try:
        b = v.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogate
        return False
    return 1 <= len(b) <= MAX_ID and all(c >= 0x20 and c != 0x7F for c in b)


def keyid_ok(v):
    return isinstance(v, str) and re.fullmatch(r"[0-9a-f]{16}", v) is not None


def time_ok(v):
    return is_int(v) and 0 <= v <= MAX_TIME


def token_ok(v):
    return (isinstance(v, str) and 1 <= len(v) <= MAX_TOKEN and
            all(0x21 <= ord(c) <= 0x7E for c in v))


def key_id(type_byte, pk):
    return hashlib.blake2b(bytes([type_byte]) + pk, key=KEYID_KEY,
                           digest_size=32).digest()[:8].hex()


# ---- keys (docs/keys.md) ---------------------------------------------------

class BadKey(Exception):
    """A key file or public-key bundle that breaks docs/keys.md."""


def need(cond, path, what):
    """Raises BadKey unless cond holds (python -O would strip an assert)."""
    if not cond:
        raise BadKey("%s: %s" % (path, what))


def load_secret(path):
    fields = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            if not line or line.startswith("#"):
                continue
            k, _, v = line.partition("=")
            need(k not in fields, path, "duplicate field " + k)
            fields[k] = v
    for k in ("format", "type", "key_id", "public_key", "secret_key"):
        need(k in fields, path, "no " + k + " field")
    need(fields["format"] == "kyc-bridge-secret-key/1", path,
         "format is not kyc-bridge-secret-key/1")
    pk = b64url_strict(fields["public_key"])
    sk = b64url_strict(fields["secret_key"])
    need(pk is not None and len(pk) == 32, path, "bad public_key")
    need(sk is not None and len(sk) == 32, path, "bad secret_key")
    if fields["type"] == "x25519":
        need(x25519(sk, (9).to_bytes(32, "little")) == pk, path,
             "public_key does not belong to secret_key")
        need(fields["key_id"] == key_id(1, pk), path, "wrong key_id")
        return {"type": "x25519", "id": fields["key_id"], "pk": pk, "sk": sk}
    need(fields["type"] == "ed25519", path, "type is neither x25519 nor ed25519")
    need(ed25519_public(sk) == pk, path,
         "public_key does not belong to secret_key")
    need(fields["key_id"] == key_id(2, pk), path, "wrong key_id")
    return {"type": "ed25519", "id": fields["key_id"], "pk": pk}


def load_bundle(path):
    with open(path, "rb") as f:
        b = strict_json(f.read())
    need(b["format"] == "kyc-bridge-public-keys/1", path,
         "format is not kyc-bridge-public-keys/1")
    out = []
    for k in b["keys"]:
        pk = b64url_strict(k["public_key"])
        need(pk is not None and len(pk) == 32, path,
             "bad public_key for key %s" % k.get("key_id"))
        need(k["key_id"] == key_id(1 if k["type"] == "x25519" else 2, pk),
             path, "wrong key_id %s" % k["key_id"])
        out.append({"type": k["type"], "id": k["key_id"], "pk": pk})
    return out


# ---- the opener (docs/envelope.md, "Opening") ------------------------------

def open_envelope(data, op, hdr):
    """Returns (fields, token) or raises Refused; fills hdr when the header
    parsed."""
    if len(data) > MAX_BYTES:
        raise Refused("KB_ERR_TOO_LARGE")
    try:
        root = strict_json(data)
    except (ValueError, UnicodeDecodeError):
        raise Refused("KB_ERR_MALFORMED")
    if not isinstance(root, dict) or not is_int(root.get("v")):
        raise Refused("KB_ERR_MALFORMED")
    if root["v"] != 1:
        raise Refused("KB_ERR_VERSION")
    if (set(root) != OUTER or not id_ok(root["for_application_id"]) or
            not keyid_ok(root["recipient_key_id"]) or
            not keyid_ok(root["signer_key_id"]) or
            not id_ok(root["share_id"]) or
            not time_ok(root["expires_at"]) or
            not isinstance(root["sealed"], str)):
        raise Refused("KB_ERR_MALFORMED")
    hdr.update(root)
    sealed = b64url_strict(root["sealed"])
    if sealed is None:
        raise Refused("KB_ERR_MALFORMED")
    if len(sealed) > SEALBYTES + 64 + MAX_INNER:
        raise Refused("KB_ERR_TOO_LARGE")
    if root["for_application_id"] != op["app_id"]:
        raise Refused("KB_ERR_NOT_FOR_US")
    box = op["box"].get(root["recipient_key_id"])
    signer = op["signers"].get(root["signer_key_id"])
    if box is None or signer is None:
        raise Refused("KB_ERR_UNKNOWN_KEY")
    if len(sealed) < SEALBYTES + 64 + 2:
        raise Refused("KB_ERR_AUTH")
    signed_inner = box_seal_open(sealed, box["pk"], box["sk"])
    if signed_inner is None:
        raise Refused("KB_ERR_AUTH")
    sig, inner = signed_inner[:64], signed_inner[64:]
    if not ed25519_verify(sig, CONTEXT + inner, signer["pk"]):
        raise Refused("KB_ERR_AUTH")
    # authentic from here on
    if len(inner) > MAX_INNER:
        raise Refused("KB_ERR_MALFORMED")
    try:
        f = strict_json(inner)
    except (ValueError, UnicodeDecodeError):
        raise Refused("KB_ERR_MALFORMED")
    want = INNER | ({"vendor_data_hint"} if isinstance(f, dict) and
                    "vendor_data_hint" in f else set())
    if (not isinstance(f, dict) or set(f) != want or not is_int(f["v"]) or
            f["v"] != 1 or
            not all(id_ok(f[k]) for k in
                    ("issuer_application_id", "for_application_id",
                     "share_id", "source_session_id")) or
            ("vendor_data_hint" in f and not id_ok(f["vendor_data_hint"])) or
            not keyid_ok(f["recipient_key_id"]) or
            not keyid_ok(f["signer_key_id"]) or
            f["session_kind"] not in ("user", "business") or
            not time_ok(f["created_at"]) or not time_ok(f["expires_at"]) or
            f["created_at"] > f["expires_at"] or
            not token_ok(f["share_token"])):
        raise Refused("KB_ERR_MALFORMED")
    for k in ("for_application_id", "recipient_key_id", "signer_key_id",
              "share_id", "expires_at"):
        if f[k] != root[k]:
            raise Refused("KB_ERR_AUTH")
    if (f["recipient_key_id"] != box["id"] or
            f["signer_key_id"] != signer["id"] or
            f["issuer_application_id"] != signer["owner"] or
            f["for_application_id"] != op["app_id"]):
        raise Refused("KB_ERR_AUTH")
    if op["now"] >= f["expires_at"]:
        raise Refused("KB_ERR_EXPIRED")
    return f, f["share_token"]


def main():
    if len(sys.argv) != 2:
        print("usage: envelope_v1_ref.py VECTORS_DIR", file=sys.stderr)
        return 2
    vdir = sys.argv[1]

    def path(n):
        return os.path.join(vdir, n)

    with open(path("manifest.json"), "rb") as f:
        man = strict_json(f.read())
    # every key file and bundle in the directory is self-consistent
    for n in sorted(os.listdir(vdir)):
        if n.endswith(".key") and "encrypted" not in n:
            load_secret(path(n))
        elif n.endswith(".pub.json"):
            load_bundle(path(n))
    openers = {}
    for name, o in man["openers"].items():
        box = {}
        for b in o["box_keys"]:
            k = load_secret(path(b))
            box[k["id"]] = k
        signers = {}
        for s in o["signers"]:
            for k in load_bundle(path(s["bundle"])):
                if k["type"] == "ed25519":
                    k["owner"] = s["app_id"]
                    signers[k["id"]] = k
        openers[name] = {"app_id": o["app_id"], "box": box,
                         "signers": signers, "now": o["now"]}

    failures = 0
    for v in man["vectors"]:
        with open(path(v["file"]), "rb") as f:
            data = f.read()
        hdr = {}
        try:
            fields, token = open_envelope(data, openers[v["opener"]], hdr)
            got = "KB_OK"
        except Refused as r:
            got, fields, token = r.name, None, None
        problems = []
        if got != v["expect"]:
            problems.append("got %s, expected %s" % (got, v["expect"]))
        if hdr.get("share_id") != v["header_share_id"]:
            problems.append("header share_id %r, expected %r" %
                            (hdr.get("share_id"), v["header_share_id"]))
        if got == "KB_OK" and v.get("expected"):
            with open(path(v["expected"]), "rb") as f:
                exp = strict_json(f.read())
            for k, want in exp["fields"].items():
                have = fields.get(k, "")
                if have != want:
                    problems.append("%s = %r, expected %r" % (k, have, want))
            if token != exp["share_token"]:
                problems.append("share_token differs")
        print("%-34s %-20s %s" % (v["file"], got,
                                  "ok" if not problems else
                                  "MISMATCH: " + "; ".join(problems)))
        failures += bool(problems)

    # the signed inner of valid.json, byte for byte
    with open(path("valid.json"), "rb") as f:
        root = strict_json(f.read())
    op = openers["recipient"]
    k = op["box"][root["recipient_key_id"]]
    si = box_seal_open(b64url_strict(root["sealed"]), k["pk"], k["sk"])
    with open(path("valid.signed_inner.b64")) as f:
        if si != b64url_strict(f.read().strip()):
            print("valid.signed_inner.b64: MISMATCH")
            failures += 1
    with open(path("valid.inner.json"), "rb") as f:
        if si[64:] != f.read():
            print("valid.inner.json: MISMATCH")
            failures += 1
    # the signature is over the context and the inner document, not the
    # inner document alone
    if ed25519_verify(si[:64], si[64:],
                      op["signers"][root["signer_key_id"]]["pk"]):
        print("signature verifies without the context string: MISMATCH")
        failures += 1

    print("%d vectors, %d mismatches" % (len(man["vectors"]), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BadKey as e:
        print("KEY MISMATCH: %s" % e)
        sys.exit(1)
