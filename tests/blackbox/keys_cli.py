#!/usr/bin/env python3
# keys_cli.py -- black-box tests of `kyc-bridge keygen` and `kyc-bridge inspect`
#
#   keys_cli.py KYC_BRIDGE_BINARY VECTORS_DIR
#
# Drives the real binary: exit codes, files and modes, refusal to overwrite,
# merge order, and inspect against the committed envelope v1 vectors (every
# vector of manifest.json must give its expected error through the CLI too).
# Secrets must never reach stdout or stderr unless --show-token is given.
# Python 3 stdlib only.
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

BIN = None
VEC = None


def run(*args, env=None, stdin=None, timeout=60):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True,
                       env=e, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def vec(name):
    return os.path.join(VEC, name)


def secret_values(path):
    """Every secret-bearing value of a secret key file."""
    out = []
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k in ("secret_key", "secret_key_encrypted"):
                out.append(v)
    return out


class Manifest:
    def __init__(self):
        with open(vec("manifest.json")) as f:
            self.m = json.load(f)

    def opener_args(self, name):
        o = self.m["openers"][name]
        args = ["--app-id", o["app_id"], "--now", str(o["now"])]
        for b in o["box_keys"]:
            args += ["--box-key", vec(b)]
        for s in o["signers"]:
            args += ["--signer", "%s=%s" % (s["app_id"], vec(s["bundle"]))]
        return args


class KeygenTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kb-keys-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def keygen(self, name, *extra, env=None):
        return run("keygen", "--out-dir", os.path.join(self.tmp, "keys"),
                   "--name", name, *extra, env=env)

    def test_help_and_usage(self):
        rc, out, _ = run("keygen", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("Usage: kyc-bridge keygen --out-dir DIR --name NAME", out)
        self.assertIn("--merge", out)
        self.assertEqual(run("keygen")[0], 2)
        self.assertEqual(run("keygen", "--out-dir", self.tmp)[0], 2)
        self.assertEqual(run("keygen", "--bogus")[0], 2)
        self.assertEqual(self.keygen("../evil")[0], 2)
        self.assertEqual(self.keygen(".hidden")[0], 2)
        self.assertEqual(self.keygen("x", "extra-arg")[0], 2)
        self.assertEqual(self.keygen("x", "--label", "")[0], 2)
        self.assertEqual(self.keygen("x", "--passphrase-env", "A",
                                     "--passphrase-file", "B")[0], 2)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "keys")))

    def test_generate(self):
        rc, out, err = self.keygen("alice", "--label", "Alice Bank (test)")
        self.assertEqual(rc, 0, err)
        d = os.path.join(self.tmp, "keys")
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        box, sign, pub = (os.path.join(d, "alice" + s)
                          for s in (".box.key", ".sign.key", ".pub.json"))
        self.assertEqual(stat.S_IMODE(os.stat(box).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(sign).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(pub).st_mode), 0o644)
        kv = dict(l.split("=", 1) for l in out.strip().splitlines())
        self.assertRegex(kv["box_key_id"], r"^[0-9a-f]{16}$")
        self.assertRegex(kv["sign_key_id"], r"^[0-9a-f]{16}$")
        self.assertEqual(kv["box_key_file"], box)
        self.assertEqual(kv["sign_key_file"], sign)
        self.assertEqual(kv["public_keys_file"], pub)
        self.assertEqual(kv["encrypted"], "no")
        with open(pub) as f:
            b = json.load(f)
        self.assertEqual(b["format"], "kyc-bridge-public-keys/1")
        self.assertEqual(b["label"], "Alice Bank (test)")
        self.assertEqual([(k["type"], k["key_id"]) for k in b["keys"]],
                         [("x25519", kv["box_key_id"]),
                          ("ed25519", kv["sign_key_id"])])
        with open(box) as f:
            text = f.read()
        self.assertTrue(text.startswith(
            "# kyc-bridge secret key -- keep private\n"))
        self.assertIn("\nformat=kyc-bridge-secret-key/1\n", text)
        self.assertIn("\ntype=x25519\n", text)
        self.assertIn("\nkey_id=%s\n" % kv["box_key_id"], text)
        for s in secret_values(box) + secret_values(sign):
            self.assertNotIn(s, out)
            self.assertNotIn(s, err)

        # a second run refuses and changes nothing
        before = {p: open(p, "rb").read() for p in (box, sign, pub)}
        rc, out2, err2 = self.keygen("alice")
        self.assertEqual(rc, 1)
        self.assertIn("already exists", err2)
        self.assertEqual(out2, "")
        for p, data in before.items():
            self.assertEqual(open(p, "rb").read(), data)

    def test_any_existing_file_blocks_all(self):
        d = os.path.join(self.tmp, "keys")
        os.mkdir(d, 0o700)
        with open(os.path.join(d, "bob.pub.json"), "w") as f:
            f.write("{}")
        rc, _, err = self.keygen("bob")
        self.assertEqual(rc, 1)
        self.assertIn("bob.pub.json already exists", err)
        self.assertEqual(sorted(os.listdir(d)), ["bob.pub.json"])
        # the directory's parent must exist
        rc, _, err = run("keygen", "--out-dir",
                         os.path.join(self.tmp, "no", "such"), "--name", "x")
        self.assertEqual(rc, 1)

    def test_passphrase(self):
        rc, out, err = self.keygen("carol", "--passphrase-env", "KB_T_PASS",
                                   env={"KB_T_PASS": "pw for carol"})
        self.assertEqual(rc, 0, err)
        self.assertIn("encrypted=yes", out)
        box = os.path.join(self.tmp, "keys", "carol.box.key")
        with open(box) as f:
            text = f.read()
        self.assertIn("\nkdf=argon2id13\n", text)
        self.assertIn("\nsecret_key_encrypted=", text)
        self.assertNotIn("\nsecret_key=", text)
        self.assertNotIn("pw for carol", out + err)
        # unset variable: usage error, nothing written
        env = dict(os.environ)
        env.pop("KB_T_UNSET", None)
        rc, _, err = self.keygen("dave", "--passphrase-env", "KB_T_UNSET")
        self.assertEqual(rc, 2)
        self.assertIn("KB_T_UNSET is not set", err)
        self.assertFalse(os.path.exists(
            os.path.join(self.tmp, "keys", "dave.box.key")))
        # passphrase file
        pf = os.path.join(self.tmp, "pass.txt")
        with open(pf, "w") as f:
            f.write("file pw\n")
        rc, out, err = self.keygen("erin", "--passphrase-file", pf)
        self.assertEqual(rc, 0, err)

    def test_merge(self):
        for n in ("old", "new"):
            self.assertEqual(self.keygen(n, "--label", n + " keys")[0], 0)
        d = os.path.join(self.tmp, "keys")
        ids = {}
        for n in ("old", "new"):
            with open(os.path.join(d, n + ".pub.json")) as f:
                ids[n] = [k["key_id"] for k in json.load(f)["keys"]]
        out_path = os.path.join(self.tmp, "rotation.pub.json")
        rc, out, err = run("keygen", "--merge", out_path,
                           os.path.join(d, "new.pub.json"),
                           os.path.join(d, "old.pub.json"))
        self.assertEqual(rc, 0, err)
        with open(out_path) as f:
            b = json.load(f)
        self.assertEqual(b["label"], "new keys")
        box = [k["key_id"] for k in b["keys"] if k["type"] == "x25519"]
        sign = [k["key_id"] for k in b["keys"] if k["type"] == "ed25519"]
        self.assertEqual(box, [ids["new"][0], ids["old"][0]])
        self.assertEqual(sign, [ids["new"][1], ids["old"][1]])
        self.assertIn("box_key_ids=%s,%s" % (ids["new"][0], ids["old"][0]),
                      out)
        # refuses to overwrite
        before = open(out_path, "rb").read()
        rc, _, err = run("keygen", "--merge", out_path,
                         os.path.join(d, "old.pub.json"),
                         os.path.join(d, "new.pub.json"))
        self.assertEqual(rc, 1)
        self.assertEqual(open(out_path, "rb").read(), before)
        # duplicates are skipped, label override
        out2 = os.path.join(self.tmp, "dup.pub.json")
        rc, _, err = run("keygen", "--merge", out2, "--label", "L",
                         os.path.join(d, "old.pub.json"),
                         os.path.join(d, "old.pub.json"))
        self.assertEqual(rc, 0, err)
        self.assertIn("skipped", err)
        with open(out2) as f:
            b = json.load(f)
        self.assertEqual(len(b["keys"]), 2)
        self.assertEqual(b["label"], "L")
        # usage errors
        self.assertEqual(run("keygen", "--merge", out2 + "x",
                             os.path.join(d, "old.pub.json"))[0], 2)
        self.assertEqual(run("keygen", "--merge", out2 + "x", "--name", "n",
                             os.path.join(d, "old.pub.json"),
                             os.path.join(d, "new.pub.json"))[0], 2)
        # a broken input: failure, no output
        bad = os.path.join(self.tmp, "bad.pub.json")
        with open(bad, "w") as f:
            f.write('{"format":"kyc-bridge-public-keys/1","keys":[]}')
        rc, _, err = run("keygen", "--merge", out2 + "y", bad,
                         os.path.join(d, "old.pub.json"))
        self.assertEqual(rc, 1)
        self.assertIn("bad.pub.json", err)
        self.assertFalse(os.path.exists(out2 + "y"))


class InspectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.man = Manifest()
        with open(vec("valid.expected.json")) as f:
            cls.expected = json.load(f)

    def inspect(self, *args, opener="recipient", stdin=None, env=None):
        return run("inspect", *args, *self.man.opener_args(opener),
                   stdin=stdin, env=env)

    def test_help(self):
        rc, out, _ = run("inspect", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("Usage: kyc-bridge inspect [FILE|-] --app-id ID", out)
        self.assertIn("--header-only", out)

    def test_valid_text(self):
        token = self.expected["share_token"]
        rc, out, err = self.inspect(vec("valid.json"))
        self.assertEqual(rc, 0, err)
        self.assertIn("envelope: OK", out)
        self.assertRegex(out, r"share_id\s+share-0001\n")
        self.assertIn(self.expected["share_token_digest"], out)
        self.assertRegex(out, r"session_id\s+%s" %
                         self.expected["fields"]["source_session_id"])
        self.assertIn("NOT verified", out)
        # the token and its signature segment stay hidden
        self.assertNotIn(token, out + err)
        self.assertNotIn(token.rsplit(".", 1)[1], out + err)
        rc, out, err = self.inspect(vec("valid.json"), "--show-token")
        self.assertEqual(rc, 0, err)
        self.assertIn(token, out)

    def test_valid_json_and_stdin(self):
        token = self.expected["share_token"]
        with open(vec("valid-kyb.json"), "rb") as f:
            data = f.read()
        rc, out, err = self.inspect("--json", "-", stdin=data)
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        with open(vec("valid-kyb.expected.json")) as f:
            exp = json.load(f)
        self.assertTrue(j["ok"])
        self.assertTrue(j["verified"])
        for k, v in exp["fields"].items():
            if v == "":
                self.assertNotIn(k, j["signed"])
            else:
                self.assertEqual(j["signed"][k], v, k)
        self.assertEqual(j["share_token"]["digest"],
                         exp["share_token_digest"])
        self.assertNotIn("value", j["share_token"])
        self.assertEqual(j["share_token"]["claims_unverified"]["session_kind"],
                         "business")
        self.assertNotIn(exp["share_token"], out)
        rc, out, err = self.inspect(vec("valid.json"), "--json",
                                    "--show-token")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["share_token"]["value"], token)
        self.assertEqual(json.loads(out)["notes"], [])

    def test_every_vector(self):
        token = self.expected["share_token"]
        for v in self.man.m["vectors"]:
            rc, out, err = self.inspect(vec(v["file"]), opener=v["opener"])
            with self.subTest(file=v["file"]):
                if v["expect"] == "KB_OK":
                    self.assertEqual(rc, 0, err)
                    continue
                self.assertEqual(rc, 1, err)
                line = err.strip().splitlines()[-1]
                self.assertTrue(line.startswith("inspect: %s: " % v["expect"]),
                                line)
                if v["header_share_id"] is not None:
                    self.assertIn("share_id=" + v["header_share_id"], line)
                else:
                    self.assertNotIn("share_id=", line)
                self.assertEqual(out, "")
                self.assertNotIn(token, err)

    def test_size_limit_and_trailing_newline(self):
        with open(vec("valid.json")) as f:
            env = f.read()
        pad = env + " " * (16384 - len(env))  # trailing JSON whitespace
        self.assertEqual(self.inspect("-", stdin=pad.encode())[0], 0)
        # one final newline of a file is not part of the envelope...
        self.assertEqual(self.inspect("-", stdin=(pad + "\r\n").encode())[0],
                         0)
        # ...but the limit holds for everything else
        for extra in (" \n", "\n\n", " " * 100000):
            rc, _, err = self.inspect("-", stdin=(pad + extra).encode())
            self.assertEqual(rc, 1)
            self.assertIn("inspect: KB_ERR_TOO_LARGE:", err)

    def test_failure_json(self):
        rc, out, err = self.inspect(vec("tampered-share-id.json"), "--json")
        self.assertEqual(rc, 1)
        j = json.loads(out)
        self.assertEqual(j, {"ok": False, "error": "KB_ERR_AUTH",
                             "message": "authentication failed",
                             "share_id": "share-0001-x"})

    def test_expiry_uses_now(self):
        args = self.man.opener_args("recipient")
        i = args.index("--now")
        args[i + 1] = str(self.expected["fields"]["expires_at"])
        rc, _, err = run("inspect", vec("valid.json"), *args)
        self.assertEqual(rc, 1)
        self.assertIn("inspect: KB_ERR_EXPIRED: expired; share_id=share-0001",
                      err)

    def test_header_only(self):
        rc, out, err = run("inspect", "--header-only", vec("valid.json"))
        self.assertEqual(rc, 0, err)
        self.assertIn("NOT verified", out)
        self.assertRegex(out, r"share_id\s+share-0001\n")
        self.assertNotIn("signed:", out)
        with open(vec("tampered-share-id.json"), "rb") as f:
            rc, out, err = run("inspect", "--header-only", "--json",
                               stdin=f.read())
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertFalse(j["verified"])
        self.assertEqual(j["header"]["share_id"], "share-0001-x")
        rc, _, err = run("inspect", "--header-only", vec("wrong-version.json"))
        self.assertEqual(rc, 1)
        self.assertIn("inspect: KB_ERR_VERSION:", err)
        rc, _, err = run("inspect", "--header-only", vec("oversized.json"))
        self.assertEqual(rc, 1)
        self.assertIn("inspect: KB_ERR_TOO_LARGE:", err)
        self.assertEqual(run("inspect", "--header-only", "--app-id", "x",
                             vec("valid.json"))[0], 2)

    def test_encrypted_box_key(self):
        o = self.man.m["openers"]["recipient"]
        common = [vec("valid.json"), "--app-id", o["app_id"], "--now",
                  str(o["now"]), "--box-key",
                  vec("recipient-encrypted.box.key")]
        for s in o["signers"]:
            common += ["--signer", "%s=%s" % (s["app_id"], vec(s["bundle"]))]
        rc, out, err = run("inspect", *common, "--passphrase-file",
                           vec("recipient-encrypted.passphrase"))
        self.assertEqual(rc, 0, err)
        rc, out, err = run("inspect", *common, "--passphrase-env", "KB_T_PW",
                           env={"KB_T_PW": "not it"})
        self.assertEqual(rc, 2)
        self.assertIn("wrong passphrase or corrupted key file", err)
        rc, out, err = run("inspect", *common)
        self.assertEqual(rc, 2)
        self.assertIn("a passphrase is required", err)

    def test_usage_and_config_errors(self):
        o = self.man.m["openers"]["recipient"]
        box = ["--box-key", vec("recipient.box.key")]
        signer = ["--signer", "%s=%s" % (o["signers"][0]["app_id"],
                                         vec("issuer.pub.json"))]
        v = vec("valid.json")
        self.assertEqual(run("inspect", v, *box, *signer)[0], 2)  # no app id
        self.assertEqual(run("inspect", v, "--app-id", "a", *signer)[0], 2)
        self.assertEqual(run("inspect", v, "--app-id", "a", *box)[0], 2)
        self.assertEqual(run("inspect", v, "--app-id", "a", *box, *signer,
                             "--now", "soon")[0], 2)
        self.assertEqual(run("inspect", v, v, "--app-id", "a", *box,
                             *signer)[0], 2)
        self.assertEqual(run("inspect", v, "--app-id", "a", *box,
                             "--signer", "no-equals-sign")[0], 2)
        rc, _, err = run("inspect", v, "--app-id", "a", "--box-key",
                         vec("issuer.sign.key"), *signer)
        self.assertEqual(rc, 2)
        self.assertIn("not an x25519", err)
        rc, _, err = run("inspect", v, "--app-id", "a", *box, "--signer",
                         "a=" + vec("recipient.pub.json"))
        self.assertEqual(rc, 2)
        self.assertIn("no ed25519", err)
        rc, _, err = run("inspect", v, "--app-id", "a", "--box-key",
                         vec("missing.key"), *signer)
        self.assertEqual(rc, 2)
        self.assertIn("missing.key", err)
        rc, _, err = run("inspect", vec("no-such.json"), "--app-id", "a",
                         *box, *signer)
        self.assertEqual(rc, 1)


def main():
    global BIN, VEC
    if len(sys.argv) != 3:
        print("usage: keys_cli.py KYC_BRIDGE_BINARY VECTORS_DIR",
              file=sys.stderr)
        return 2
    BIN, VEC = sys.argv[1], sys.argv[2]
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
