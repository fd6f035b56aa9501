#!/usr/bin/env python3
# test_sandbox.py -- black-box tests of `kyc-bridge sandbox` against API-CONTRACT.md
#
# Drives the real binary over HTTP on loopback, nothing else. Every assertion is
# derived from /work/shared/API-CONTRACT.md (the vendor pages in seeds/ behind it)
# and the fixed sandbox CLI; nothing here reads the implementation.
#
# Run:  KB_BIN=build/kyc-bridge python3 tests/blackbox/test_sandbox.py [-v] [Class[.test]]
#   or: python3 tests/blackbox/test_sandbox.py --kb-bin build/kyc-bridge
# Python 3 standard library only, but for TestMetrics, which parses GET /metrics
# with prometheus_client (Debian's python3-prometheus-client, see tests/CMakeLists.txt).

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

KB_BIN = None  # set in main()

KYC_ARRAYS = ("id_verifications", "liveness_checks", "face_matches",
              "aml_screenings", "database_validations", "proof_of_address",
              "location_checks", "phone_verifications", "email_verifications")
KYB_ARRAYS = ("registry_checks", "key_people_checks", "document_verifications",
              "aml_screenings", "questionnaires")
KYC_FINISHED = ("Approved", "Declined", "In Review")
KYB_FINISHED = ("APPROVED", "DECLINED", "IN_REVIEW")
CLAIMS = {"session_id", "session_kind", "from_application_id",
          "for_application_id", "iat", "exp"}
LIST_MEMBERS = ("session_id", "session_number", "session_kind", "status",
                "vendor_data", "workflow_id", "shared_from_session", "created_at")
MIB = 1024 * 1024
IMPORT = "/v3/session/import-shared/"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --------------------------------------------------------------------------
# helpers: JWT, HTTP, the sandbox process, the webhook receiver
# --------------------------------------------------------------------------

def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode("ascii"))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), s


def jwt_tamper_signature(token):
    """Flips one character in the middle of the signature (6 full bits)."""
    h, p, s = token.split(".")
    i = len(s) // 2
    c = "A" if s[i] != "A" else "B"
    return "%s.%s.%s" % (h, p, s[:i] + c + s[i + 1:])


def jwt_resign_payload(token, **changes):
    """Same header and signature, payload changed: an attacker's forgery."""
    h, p, s = token.split(".")
    claims = json.loads(b64url_decode(p))
    claims.update(changes)
    p2 = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    return "%s.%s.%s" % (h, p2, s)


def jwt_hs256(claims, key):
    h = b64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    p = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (h, p, b64url_encode(sig))


def is_uuid(s):
    return isinstance(s, str) and bool(UUID_RE.match(s))


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def process_value(v):
    """The vendor's own sample (seed 004), verbatim in behaviour."""
    if isinstance(v, float) and v == int(v):
        return int(v)
    if isinstance(v, dict):
        return {k: process_value(val) for k, val in v.items()}
    if isinstance(v, list):
        return [process_value(i) for i in v]
    return v


def sig_v2(secret, timestamp, body_dict):
    canonical = json.dumps(process_value(body_dict), sort_keys=True,
                           ensure_ascii=False, separators=(",", ":"))
    message = "%s:%s" % (timestamp, canonical)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sig_simple(secret, timestamp, session_id, status, webhook_type):
    message = "%s:%s:%s:%s" % (timestamp, session_id, status, webhook_type)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class Resp:
    def __init__(self, status, headers, body, elapsed=0.0):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def h(self, name):
        return self.headers.get(name) if self.headers is not None else None

    def __repr__(self):
        return "<HTTP %s %r>" % (self.status, self.body[:400])


class App:
    def __init__(self, d):
        self.id = d["application_id"]
        self.key = d["api_key"]
        self.name = d.get("name")


class Sandbox:
    """One `kyc-bridge sandbox` process on an ephemeral loopback port."""

    def __init__(self, *extra, state=None, seed=None, backoff_ms=None):
        self.tmp = tempfile.mkdtemp(prefix="kb-sbx-")
        self.port_file = os.path.join(self.tmp, "port")
        self.out_path = os.path.join(self.tmp, "stdout")
        self.err_path = os.path.join(self.tmp, "stderr")
        args = [KB_BIN, "sandbox", "--listen", "127.0.0.1:0",
                "--port-file", self.port_file]
        if state is not None:
            args += ["--state", state]
        if seed is not None:
            args += ["--seed", str(seed)]
        if backoff_ms is not None:
            args += ["--webhook-backoff-ms", str(backoff_ms)]
        args += list(extra)
        self.args = args
        self.secrets = set()
        self._local = threading.local()
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        deadline = time.monotonic() + 20
        self.port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with open(self.port_file) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        if self.port is None:
            rc = self.proc.poll()
            self.stop(timeout=2)
            raise RuntimeError("sandbox did not write its port file (rc=%r): %s"
                               % (rc, self.logs()[-2000:]))

    # -- process
    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Sends @sig and waits; returns the exit status (kills on timeout)."""
        self.close_conns()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._out.close()
                self._err.close()
                return "timeout"
        self._out.close()
        self._err.close()
        return self.proc.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def logs(self):
        txt = ""
        for p in (self.out_path, self.err_path):
            try:
                with open(p, "rb") as f:
                    txt += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return txt

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    # -- HTTP
    def new_conn(self, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c

    def _conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self.new_conn()
            self._local.conn = c
            conns = getattr(self, "_all_conns", None)
            if conns is None:
                conns = self._all_conns = []
            conns.append(c)
        return c

    def close_conns(self):
        for c in getattr(self, "_all_conns", []):
            try:
                c.close()
            except OSError:
                pass
        self._all_conns = []
        self._local = threading.local()

    def req(self, method, path, body=None, key=None, raw=None, headers=None,
            key_header="x-api-key", conn=None):
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw
            hdrs["Content-Type"] = "application/json"
        if key is not None:
            hdrs[key_header] = key
        if headers:
            hdrs.update(headers)
        for attempt in range(2):
            c = conn or self._conn()
            t0 = time.monotonic()
            try:
                c.request(method, path, body=data, headers=hdrs)
                r = c.getresponse()
                b = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, http.client.CannotSendRequest,
                    http.client.ResponseNotReady):
                # The server may close an idle keep-alive connection; the
                # request never reached it, so one retry on a new one.
                c.close()
                if conn is not None or attempt == 1:
                    raise
                self._local.conn = None
                continue
            resp = Resp(r.status, r.headers, b, time.monotonic() - t0)
            self._harvest(resp)
            return resp
        raise AssertionError("unreachable")

    def _harvest(self, resp):
        """Remembers every secret the sandbox hands out (for the log check)."""
        try:
            j = resp.json()
        except (ValueError, UnicodeDecodeError):
            return
        if isinstance(j, dict):
            for k in ("api_key", "share_token", "secret_shared_key"):
                v = j.get(k)
                if isinstance(v, str) and len(v) >= 8:
                    self.secrets.add(v)

    # -- convenience
    def new_app(self, name="app"):
        r = self.req("POST", "/sandbox/applications", {"name": name})
        if r.status != 201:
            raise AssertionError("POST /sandbox/applications: %r" % r)
        return App(r.json())


def raw_exchange(port, data, timeout=5.0, shutdown_write=False):
    """Sends raw bytes; returns what came back until close or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            m = parse_raw_response(out)
            if m is not None and m[2]:
                break
    finally:
        s.close()
    return out


def parse_raw_response(buf):
    """(status, body, complete) of the first response in @buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    lines = head.split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    clen = None
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        if k.strip().lower() == "content-length":
            try:
                clen = int(v.strip())
            except ValueError:
                pass
    body = buf[end + 4:]
    complete = clen is not None and len(body) >= clen
    if clen is not None:
        body = body[:clen]
    return status, body, complete


def send_declared_body(port, path, key, declared, send_bytes=True, timeout=20):
    """Announces a body of @declared bytes and streams it while watching for an
    early answer (the server may refuse from Content-Length alone)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (path, key, declared)).encode()
    buf = b""
    sent = 0
    chunk = b" " * 65536
    s.setblocking(False)
    try:
        view = head
        while view:
            _, w, _ = select.select([], [s], [], timeout)
            if not w:
                raise AssertionError("cannot send request head")
            n = s.send(view)
            view = view[n:]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            want_w = [s] if (send_bytes and sent < declared) else []
            r, w, _ = select.select([s], want_w, [], 0.5)
            if r:
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    break
                buf += data
                m = parse_raw_response(buf)
                if m is not None and m[2]:
                    break
            elif w:
                try:
                    n = s.send(chunk[:min(len(chunk), declared - sent)])
                    sent += n
                except (BrokenPipeError, ConnectionResetError):
                    want_w = []
                    send_bytes = False
                except BlockingIOError:
                    pass
    finally:
        s.close()
    return parse_raw_response(buf)


class Receiver:
    """Loopback webhook receiver; per-path scripted answers and a log."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.plans = {}
        self.records = {}
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                t = time.monotonic()
                te = (self.headers.get("Transfer-Encoding") or "").lower()
                if "chunked" in te:
                    body = b""
                    while True:
                        ln = self.rfile.readline().strip()
                        n = int(ln.split(b";")[0], 16)
                        if n == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(n)
                        self.rfile.readline()
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n)
                with rcv.cond:
                    plan = rcv.plans.get(self.path)
                    code = plan.pop(0) if plan else 200
                    rcv.records.setdefault(self.path, []).append(
                        {"t": t, "wall": time.time(), "method": "POST",
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": body, "answered": code})
                    rcv.cond.notify_all()
                out = b'{"ok":true}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def plan(self, path, codes):
        with self.lock:
            self.plans[path] = list(codes)

    def get(self, path):
        with self.lock:
            return list(self.records.get(path, []))

    def wait(self, path, pred=None, count=1, timeout=10.0):
        """Waits until @count records on @path satisfy @pred; returns them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                recs = [r for r in self.records.get(path, [])
                        if pred is None or pred(r)]
                if len(recs) >= count:
                    return recs
                left = deadline - time.monotonic()
                if left <= 0:
                    return recs
                self.cond.wait(left)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------
# base class: one sandbox per test class, helpers and contract assertions
# --------------------------------------------------------------------------

class SandboxCase(unittest.TestCase):
    SANDBOX_KW = {}
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.sb = Sandbox(**cls.SANDBOX_KW)

    @classmethod
    def tearDownClass(cls):
        # SIGTERM is a graceful stop with exit status 0; under an ASan/UBSan
        # build a sanitizer report (leaks are reported at exit) fails the class.
        rc = cls.sb.stop()
        problems = sanitizer_reports(cls.sb.logs())
        cls.sb.cleanup()
        if rc != 0:
            problems.insert(0, "exit status after SIGTERM: %r" % (rc,))
        if problems:
            raise AssertionError("%s: %s" % (cls.__name__, "\n".join(problems)))

    # -- contract assertions
    def assertError(self, r, status, contains=None, msg=None):
        """Status matches; body is JSON {"detail": "<string>"} (sandbox choice)."""
        self.assertEqual(r.status, status, msg or repr(r))
        try:
            j = r.json()
        except (ValueError, UnicodeDecodeError):
            self.fail("error body is not JSON: %r" % r)
        self.assertIsInstance(j, dict, repr(r))
        self.assertIsInstance(j.get("detail"), str, "no string detail: %r" % r)
        self.assertTrue(j["detail"], "empty detail: %r" % r)
        for sec in self.sb.secrets:
            self.assertNotIn(sec, j["detail"], "a secret leaked into an error")
        if contains is not None:
            self.assertIn(contains.lower(), j["detail"].lower(), repr(r))
        return j["detail"]

    def assertStatus(self, r, status):
        self.assertEqual(r.status, status, repr(r))
        return r.json() if r.body else None

    # -- API helpers (each asserts the success the contract promises)
    def app(self, name="app"):
        return self.sb.new_app(name)

    def wf(self, app, wtype="kyc", label=None):
        r = self.sb.req("POST", "/v3/workflows/",
                        {"workflow_label": label or ("wf-" + wtype),
                         "workflow_type": wtype}, key=app.key)
        j = self.assertStatus(r, 201)
        self.assertTrue(is_uuid(j.get("uuid")), repr(r))
        return j["uuid"]

    def session(self, app, wf, vendor_data=None):
        body = {"workflow_id": wf}
        if vendor_data is not None:
            body["vendor_data"] = vendor_data
        r = self.sb.req("POST", "/v3/session/", body, key=app.key)
        return self.assertStatus(r, 201)

    def complete(self, app, sid, status="Approved"):
        r = self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                        {"status": status}, key=app.key)
        return self.assertStatus(r, 200)

    def finished(self, app, wf, status="Approved", vendor_data=None):
        sid = self.session(app, wf, vendor_data)["session_id"]
        self.complete(app, sid, status)
        return sid

    def share(self, app, sid, for_id, ttl=None, extra=None):
        body = {"for_application_id": for_id}
        if ttl is not None:
            body["ttl_in_seconds"] = ttl
        if extra:
            body.update(extra)
        return self.sb.req("POST", "/v3/session/%s/share/" % sid, body, key=app.key)

    def mint(self, issuer, wf, for_app, status="Approved", ttl=None,
             vendor_data=None):
        sid = self.finished(issuer, wf, status, vendor_data)
        r = self.share(issuer, sid, for_app.id, ttl)
        j = self.assertStatus(r, 201)
        return sid, j["share_token"]

    def imp(self, app, token, wf, vendor_data=None, trust_review=None, key=None):
        body = {"share_token": token, "workflow_id": wf}
        if vendor_data is not None:
            body["vendor_data"] = vendor_data
        if trust_review is not None:
            body["trust_review"] = trust_review
        return self.sb.req("POST", IMPORT, body,
                           key=app.key if key is None else key)

    def decision(self, app, sid):
        return self.sb.req("GET", "/v3/session/%s/decision/" % sid, key=app.key)

    def set_clock(self, offset):
        r = self.sb.req("PUT", "/sandbox/clock", {"offset_s": offset})
        self.assertEqual(r.status, 200, repr(r))
        return r

    def list_sessions(self, app, **q):
        path = "/v3/sessions/"
        if q:
            path += "?" + urllib.parse.urlencode(q)
        r = self.sb.req("GET", path, key=app.key)
        return self.assertStatus(r, 200)

    def assert_kyc_arrays(self, j):
        for a in KYC_ARRAYS:
            self.assertIn(a, j, "missing %s" % a)
            self.assertIsInstance(j[a], list, a)
            self.assertTrue(j[a], "%s is empty" % a)

    def assert_kyb_arrays(self, j):
        for a in KYB_ARRAYS:
            self.assertIn(a, j, "missing %s" % a)
            self.assertIsInstance(j[a], list, a)
            self.assertTrue(j[a], "%s is empty" % a)
        for person in j["key_people_checks"]:
            self.assertIsInstance(person, dict)
            self.assertTrue(contains_kyc(person),
                            "key_people_checks item without nested KYC: %s"
                            % json.dumps(person)[:300])

    # inherited by every class: runs last (alphabetical order)
    def test_zz_no_secret_in_output(self):
        """Team rule: API keys, share tokens, webhook secrets never reach the
        sandbox's stdout/stderr."""
        logs = self.sb.logs()
        for sec in self.sb.secrets:
            self.assertNotIn(sec, logs, "a secret appears in the sandbox output")


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "WARNING: ThreadSanitizer")


def sanitizer_reports(logs):
    out = []
    for ln in logs.splitlines():
        if any(m in ln for m in SANITIZER_MARKERS):
            out.append(ln.strip()[:300])
    return out[:10]


def contains_kyc(obj, depth=0):
    """A nested KYC: some object below carries KYC verification arrays."""
    if depth > 8:
        return False
    if isinstance(obj, dict):
        if any(k in obj for k in ("id_verifications", "liveness_checks",
                                  "face_matches")):
            return True
        return any(contains_kyc(v, depth + 1) for v in obj.values())
    if isinstance(obj, list):
        return any(contains_kyc(v, depth + 1) for v in obj)
    return False


# --------------------------------------------------------------------------
# applications, authentication, start-up
# --------------------------------------------------------------------------

class TestApplicationsAuth(SandboxCase):

    def test_listening_line_on_stdout(self):
        want = "sandbox: listening on http://127.0.0.1:%d" % self.sb.port
        deadline = time.monotonic() + 5
        while want not in self.sb.stdout() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(want, self.sb.stdout())

    def test_create_application_shape(self):
        r = self.sb.req("POST", "/sandbox/applications", {"name": "Acme Bank"})
        j = self.assertStatus(r, 201)
        self.assertTrue(is_uuid(j.get("application_id")), j)
        self.assertIsInstance(j.get("api_key"), str)
        self.assertTrue(j["api_key"])
        self.assertEqual(j.get("name"), "Acme Bank")
        r2 = self.sb.req("POST", "/sandbox/applications", {"name": "Acme Bank"})
        j2 = self.assertStatus(r2, 201)
        self.assertNotEqual(j["application_id"], j2["application_id"])
        self.assertNotEqual(j["api_key"], j2["api_key"])

    def test_list_applications(self):
        a, b = self.app("list-a"), self.app("list-b")
        r = self.sb.req("GET", "/sandbox/applications")
        j = self.assertStatus(r, 200)
        items = j if isinstance(j, list) else next(
            (v for v in j.values() if isinstance(v, list)), [])
        ids = {i.get("application_id") for i in items if isinstance(i, dict)}
        self.assertIn(a.id, ids)
        self.assertIn(b.id, ids)
        names = {i.get("application_id"): i.get("name") for i in items
                 if isinstance(i, dict)}
        self.assertEqual(names[a.id], "list-a")

    def test_create_application_bad_body(self):
        self.assertError(self.sb.req("POST", "/sandbox/applications",
                                     raw=b'{"name": '), 400)
        self.assertError(self.sb.req("POST", "/sandbox/applications",
                                     {"name": 42}), 400)

    V3_PROBES = (("GET", "/v3/workflows/"), ("POST", "/v3/workflows/"),
                 ("POST", "/v3/session/"), ("GET", "/v3/sessions/"),
                 ("POST", IMPORT), ("GET", "/v3/webhook/"),
                 ("PATCH", "/v3/webhook/"),
                 ("POST", "/v3/session/%s/share/" % uuid.uuid4()),
                 ("GET", "/v3/session/%s/decision/" % uuid.uuid4()),
                 ("DELETE", "/v3/session/%s/delete/" % uuid.uuid4()),
                 ("PATCH", "/v3/session/%s/update-status/" % uuid.uuid4()))

    def test_missing_key_401(self):
        for m, p in self.V3_PROBES:
            body = {} if m in ("POST", "PATCH") else None
            with self.subTest(method=m, path=p):
                self.assertError(self.sb.req(m, p, body), 401)

    def test_unknown_key_401(self):
        self.app("exists")
        for bad in ("nope", "x" * 64, str(uuid.uuid4()), ""):
            for m, p in self.V3_PROBES:
                body = {} if m in ("POST", "PATCH") else None
                with self.subTest(key=bad[:10], method=m, path=p):
                    self.assertError(self.sb.req(m, p, body, key=bad), 401)

    def test_key_header_name_case_insensitive(self):
        a = self.app("case")
        for name in ("x-api-key", "X-API-Key", "X-Api-Key", "X-API-KEY", "x-API-key"):
            with self.subTest(header=name):
                r = self.sb.req("GET", "/v3/workflows/", key=a.key, key_header=name)
                self.assertEqual(r.status, 200, repr(r))

    def test_key_is_case_sensitive_value(self):
        """The header *name* is case-insensitive; the key value is a secret and
        an altered one is an unknown key."""
        a = self.app("val")
        alt = a.key.swapcase()
        if alt == a.key:
            alt = a.key + "x"
        self.assertError(self.sb.req("GET", "/v3/workflows/", key=alt), 401)

    def test_complete_requires_key(self):
        a = self.app("c")
        sid = self.session(a, self.wf(a))["session_id"]
        self.assertError(self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                     {"status": "Approved"}), 401)
        self.assertError(self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                     {"status": "Approved"}, key="bogus"), 401)


# --------------------------------------------------------------------------
# workflows
# --------------------------------------------------------------------------

class TestWorkflows(SandboxCase):

    def setUp(self):
        self.a = self.app("wf-a")
        self.b = self.app("wf-b")

    def _items(self, j):
        if isinstance(j, list):
            return j
        if isinstance(j, dict) and isinstance(j.get("results"), list):
            return j["results"]
        self.fail("GET /v3/workflows/ is neither an array nor {results: []}: %r" % j)

    def test_create_kyc_and_kyb(self):
        for t in ("kyc", "kyb"):
            r = self.sb.req("POST", "/v3/workflows/",
                            {"workflow_label": "L-" + t, "workflow_type": t},
                            key=self.a.key)
            j = self.assertStatus(r, 201)
            self.assertTrue(is_uuid(j.get("uuid")), j)
            self.assertEqual(j.get("workflow_type"), t)
            self.assertEqual(j.get("workflow_label"), "L-" + t)

    def test_list_and_get(self):
        w1, w2 = self.wf(self.a, "kyc"), self.wf(self.a, "kyb")
        wb = self.wf(self.b, "kyc")
        items = self._items(self.assertStatus(
            self.sb.req("GET", "/v3/workflows/", key=self.a.key), 200))
        ids = {i.get("uuid") for i in items}
        self.assertTrue({w1, w2} <= ids)
        self.assertNotIn(wb, ids, "another application's workflow is listed")
        for w, t in ((w1, "kyc"), (w2, "kyb")):
            j = self.assertStatus(self.sb.req("GET", "/v3/workflows/%s/" % w,
                                              key=self.a.key), 200)
            self.assertEqual(j.get("uuid"), w)
            self.assertEqual(j.get("workflow_type"), t)

    def test_delete(self):
        w = self.wf(self.a)
        r = self.sb.req("DELETE", "/v3/workflows/%s/" % w, key=self.a.key)
        self.assertEqual(r.status, 204, repr(r))
        self.assertEqual(r.body, b"")
        self.assertError(self.sb.req("GET", "/v3/workflows/%s/" % w, key=self.a.key), 404)
        self.assertError(self.sb.req("DELETE", "/v3/workflows/%s/" % w, key=self.a.key), 404)
        items = self._items(self.assertStatus(
            self.sb.req("GET", "/v3/workflows/", key=self.a.key), 200))
        self.assertNotIn(w, {i.get("uuid") for i in items})
        self.assertError(self.sb.req("POST", "/v3/session/", {"workflow_id": w},
                                     key=self.a.key), 404)

    def test_bad_workflow_type_400(self):
        for t in ("kyx", "", 5, True, ["kyc"], {"t": "kyc"}):
            with self.subTest(workflow_type=t):
                self.assertError(self.sb.req(
                    "POST", "/v3/workflows/",
                    {"workflow_label": "x", "workflow_type": t}, key=self.a.key), 400)

    def test_malformed_body_400(self):
        self.assertError(self.sb.req("POST", "/v3/workflows/", raw=b"{nope",
                                     key=self.a.key), 400)
        self.assertError(self.sb.req("POST", "/v3/workflows/", raw=b"[]",
                                     key=self.a.key), 400)

    def test_other_apps_workflow_404(self):
        w = self.wf(self.a)
        self.assertError(self.sb.req("GET", "/v3/workflows/%s/" % w, key=self.b.key), 404)
        self.assertError(self.sb.req("DELETE", "/v3/workflows/%s/" % w, key=self.b.key), 404)
        self.assertError(self.sb.req("POST", "/v3/session/", {"workflow_id": w},
                                     key=self.b.key), 404)
        # still there for its owner
        self.assertStatus(self.sb.req("GET", "/v3/workflows/%s/" % w, key=self.a.key), 200)

    def test_unknown_workflow_404(self):
        self.assertError(self.sb.req("GET", "/v3/workflows/%s/" % uuid.uuid4(),
                                     key=self.a.key), 404)


# --------------------------------------------------------------------------
# sessions: create, complete, decision, delete, update-status
# --------------------------------------------------------------------------

class TestSessions(SandboxCase):

    def setUp(self):
        self.a = self.app("s-a")
        self.b = self.app("s-b")
        self.kyc = self.wf(self.a, "kyc")
        self.kyb = self.wf(self.a, "kyb")

    def test_create_kyc_session(self):
        r = self.sb.req("POST", "/v3/session/",
                        {"workflow_id": self.kyc, "vendor_data": "u-1"}, key=self.a.key)
        j = self.assertStatus(r, 201)
        for k in ("session_id", "session_number", "session_token", "url",
                  "status", "workflow_id"):
            self.assertIn(k, j)
        self.assertTrue(is_uuid(j["session_id"]))
        self.assertTrue(is_int(j["session_number"]))
        self.assertEqual(j["status"], "Not Started")
        self.assertEqual(j["workflow_id"], self.kyc)
        self.assertIsInstance(j["session_token"], str)
        self.assertIsInstance(j["url"], str)

    def test_create_kyb_session(self):
        j = self.session(self.a, self.kyb, "biz-1")
        self.assertEqual(j["status"], "NOT_STARTED")
        self.assertEqual(j["workflow_id"], self.kyb)

    def test_create_session_errors(self):
        k = self.a.key
        self.assertError(self.sb.req("POST", "/v3/session/", {}, key=k), 400)
        self.assertError(self.sb.req("POST", "/v3/session/", {"workflow_id": 7}, key=k), 400)
        self.assertError(self.sb.req("POST", "/v3/session/", raw=b'{"workflow_id":',
                                     key=k), 400)
        self.assertError(self.sb.req("POST", "/v3/session/",
                                     {"workflow_id": str(uuid.uuid4())}, key=k), 404)
        wb = self.wf(self.b)
        self.assertError(self.sb.req("POST", "/v3/session/", {"workflow_id": wb}, key=k), 404)

    def test_session_numbers_increase(self):
        nums = [self.session(self.a, self.kyc)["session_number"] for _ in range(4)]
        nums.append(self.session(self.a, self.kyb)["session_number"])
        self.assertEqual(nums, sorted(set(nums)), "not strictly increasing: %r" % nums)

    def test_session_number_is_per_application(self):
        """`session_number (int, per application)`: two fresh applications
        each start their own sequence."""
        x, y = self.app("n-x"), self.app("n-y")
        wx, wy = self.wf(x), self.wf(y)
        for _ in range(3):
            self.session(x, wx)
        nx = self.session(x, wx)["session_number"]
        ny = self.session(y, wy)["session_number"]
        self.assertLess(ny, nx, "y's first session shares x's counter")

    def test_complete_kyc_each_finished_status(self):
        for st in KYC_FINISHED:
            with self.subTest(status=st):
                sid = self.session(self.a, self.kyc, "p-" + st)["session_id"]
                r = self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                {"status": st}, key=self.a.key)
                j = self.assertStatus(r, 200)
                self.assertEqual(j.get("status"), st)
                self.assertEqual(j.get("session_id"), sid)
                self.assertEqual(j.get("session_kind"), "user")
                self.assert_kyc_arrays(j)
                d = self.assertStatus(self.decision(self.a, sid), 200)
                self.assertEqual(d["status"], st)
                for a in KYC_ARRAYS:
                    self.assertEqual(d[a], j[a], a)

    def test_complete_kyb_each_finished_status(self):
        for st in KYB_FINISHED:
            with self.subTest(status=st):
                sid = self.session(self.a, self.kyb, "b-" + st)["session_id"]
                j = self.complete(self.a, sid, st)
                self.assertEqual(j.get("status"), st)
                self.assertEqual(j.get("session_kind"), "business")
                self.assert_kyb_arrays(j)
                d = self.assertStatus(self.decision(self.a, sid), 200)
                self.assertEqual(d["status"], st)
                for a in KYB_ARRAYS:
                    self.assertEqual(d[a], j[a], a)

    def test_complete_wrong_casing_or_unfinished_400(self):
        cases = ((self.kyc, ("APPROVED", "approved", "IN_REVIEW", "Not Started",
                             "Abandoned", "Resubmitted", "")),
                 (self.kyb, ("Approved", "In Review", "declined", "NOT_STARTED")))
        for wf, bad in cases:
            sid = self.session(self.a, wf)["session_id"]
            for st in bad:
                with self.subTest(wf=wf, status=st):
                    self.assertError(self.sb.req(
                        "POST", "/sandbox/sessions/%s/complete" % sid,
                        {"status": st}, key=self.a.key), 400)
            self.assertError(self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                         {"status": 1}, key=self.a.key), 400)
            self.assertError(self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                         raw=b'{"status":', key=self.a.key), 400)
            # nothing happened: still not started
            d = self.assertStatus(self.decision(self.a, sid), 200)
            self.assertIn(d["status"], ("Not Started", "NOT_STARTED"))

    def test_complete_other_app_or_unknown_404(self):
        sid = self.session(self.a, self.kyc)["session_id"]
        self.assertError(self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                     {"status": "Approved"}, key=self.b.key), 404)
        self.assertError(self.sb.req("POST", "/sandbox/sessions/%s/complete" % uuid.uuid4(),
                                     {"status": "Approved"}, key=self.a.key), 404)

    def test_decision_shape(self):
        sid = self.session(self.a, self.kyc, "dec-1")["session_id"]
        self.complete(self.a, sid, "Declined")
        d = self.assertStatus(self.decision(self.a, sid), 200)
        for k in ("session_id", "session_number", "session_kind", "status",
                  "shared_from_session", "vendor_data", "workflow_id",
                  "features", "reviews"):
            self.assertIn(k, d)
        self.assertEqual(d["session_id"], sid)
        self.assertEqual(d["session_kind"], "user")
        self.assertEqual(d["status"], "Declined")
        self.assertIsNone(d["shared_from_session"])
        self.assertEqual(d["vendor_data"], "dec-1")
        self.assertEqual(d["workflow_id"], self.kyc)
        self.assert_kyc_arrays(d)
        sid2 = self.finished(self.a, self.kyb, "IN_REVIEW", "dec-2")
        d2 = self.assertStatus(self.decision(self.a, sid2), 200)
        self.assertEqual(d2["session_kind"], "business")
        self.assertEqual(d2["status"], "IN_REVIEW")
        self.assert_kyb_arrays(d2)

    def test_decision_other_app_or_unknown_404(self):
        sid = self.finished(self.a, self.kyc)
        self.assertError(self.decision(self.b, sid), 404)
        self.assertError(self.sb.req("GET", "/v3/session/%s/decision/" % uuid.uuid4(),
                                     key=self.a.key), 404)

    def test_delete_session(self):
        sid = self.finished(self.a, self.kyc)
        self.assertError(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.b.key), 404)
        self.assertStatus(self.decision(self.a, sid), 200)
        r = self.sb.req("DELETE", "/v3/session/%s/delete/" % sid, key=self.a.key)
        self.assertEqual(r.status, 204, repr(r))
        self.assertEqual(r.body, b"")
        self.assertError(self.decision(self.a, sid), 404)
        self.assertError(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.a.key), 404)
        self.assertError(self.sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                     {"status": "Approved"}, key=self.a.key), 404)

    def test_update_status_kyc(self):
        sid = self.finished(self.a, self.kyc, "In Review", "upd")
        # (the vendor allows Resubmitted only from Declined / In Review / Abandoned)
        for st in ("Approved", "Declined", "Resubmitted"):
            with self.subTest(new_status=st):
                r = self.sb.req("PATCH", "/v3/session/%s/update-status/" % sid,
                                {"new_status": st, "comment": "manual review"},
                                key=self.a.key)
                j = self.assertStatus(r, 200)
                self.assertEqual(j.get("status"), st)
                self.assertEqual(j.get("session_id"), sid)
                self.assertEqual(self.decision(self.a, sid).json()["status"], st)

    def test_update_status_kyb(self):
        sid = self.finished(self.a, self.kyb, "IN_REVIEW")
        for st in ("APPROVED", "DECLINED", "RESUBMITTED"):
            with self.subTest(new_status=st):
                r = self.sb.req("PATCH", "/v3/session/%s/update-status/" % sid,
                                {"new_status": st}, key=self.a.key)
                j = self.assertStatus(r, 200)
                self.assertEqual(j.get("status"), st)

    def test_update_status_invalid_400(self):
        sk = self.finished(self.a, self.kyc, "In Review")
        sb_ = self.finished(self.a, self.kyb, "IN_REVIEW")
        for sid, bad in ((sk, ("Bogus", "approved", "APPROVED", "Not Started", 3, None)),
                         (sb_, ("Approved", "Declined", "approved", "Bogus"))):
            for st in bad:
                with self.subTest(sid=sid, new_status=st):
                    self.assertError(self.sb.req(
                        "PATCH", "/v3/session/%s/update-status/" % sid,
                        {"new_status": st}, key=self.a.key), 400)
        self.assertError(self.sb.req("PATCH", "/v3/session/%s/update-status/" % sk,
                                     {"comment": "no status"}, key=self.a.key), 400)
        self.assertError(self.sb.req("PATCH", "/v3/session/%s/update-status/" % sk,
                                     raw=b"{", key=self.a.key), 400)
        self.assertEqual(self.decision(self.a, sk).json()["status"], "In Review")
        self.assertEqual(self.decision(self.a, sb_).json()["status"], "IN_REVIEW")

    def test_update_status_other_app_404(self):
        sid = self.finished(self.a, self.kyc)
        self.assertError(self.sb.req("PATCH", "/v3/session/%s/update-status/" % sid,
                                     {"new_status": "Declined"}, key=self.b.key), 404)
        self.assertEqual(self.decision(self.a, sid).json()["status"], "Approved")
        self.assertError(self.sb.req("PATCH", "/v3/session/%s/update-status/" % uuid.uuid4(),
                                     {"new_status": "Declined"}, key=self.a.key), 404)


# --------------------------------------------------------------------------
# sessions list: filters and pagination
# --------------------------------------------------------------------------

class TestSessionList(SandboxCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls("setUp")
        cls.a = t.app("list")
        cls.other = t.app("list-other")
        cls.wk = t.wf(cls.a, "kyc")
        cls.wb = t.wf(cls.a, "kyb")
        cls.all_ids = set()
        cls.approved = set()
        for i in range(25):
            sid = t.session(cls.a, cls.wk, "vd-A")["session_id"]
            cls.all_ids.add(sid)
            if i < 2:
                t.complete(cls.a, sid, "Approved")
                cls.approved.add(sid)
            elif i == 2:
                t.complete(cls.a, sid, "Declined")
                cls.declined = sid
        for i in range(3):
            cls.all_ids.add(t.session(cls.a, cls.wb, "vd-B")["session_id"])
        # one imported session
        issuer = t.app("list-issuer")
        iw = t.wf(issuer, "kyc")
        cls.src_sid, token = t.mint(issuer, iw, cls.a)
        r = t.imp(cls.a, token, cls.wk, vendor_data="vd-imp")
        cls.imported = t.assertStatus(r, 201)["session_id"]
        cls.all_ids.add(cls.imported)

    def _get(self, path):
        return self.assertStatus(self.sb.req("GET", path, key=self.a.key), 200)

    def _follow(self, link):
        u = urllib.parse.urlsplit(link)
        return self._get(u.path + ("?" + u.query if u.query else ""))

    def test_count_and_default_limit_20(self):
        j = self.list_sessions(self.a)
        for k in ("count", "next", "previous", "results"):
            self.assertIn(k, j)
        self.assertEqual(j["count"], 29)
        self.assertEqual(len(j["results"]), 20)
        self.assertIsNone(j["previous"])
        self.assertIsInstance(j["next"], str)

    def test_offset_limit(self):
        j = self.list_sessions(self.a, offset=20)
        self.assertEqual(j["count"], 29)
        self.assertEqual(len(j["results"]), 9)
        self.assertIsNone(j["next"])
        self.assertIsInstance(j["previous"], str)
        j = self.list_sessions(self.a, offset=10, limit=5)
        self.assertEqual(len(j["results"]), 5)
        self.assertIsInstance(j["next"], str)
        self.assertIsInstance(j["previous"], str)
        j = self.list_sessions(self.a, offset=100)
        self.assertEqual(j["count"], 29)
        self.assertEqual(j["results"], [])

    def test_pages_cover_everything_once(self):
        seen = []
        j = self.list_sessions(self.a, limit=7)
        pages = 1
        while True:
            seen += [r["session_id"] for r in j["results"]]
            if j["next"] is None:
                break
            self.assertLess(pages, 10, "pagination does not end")
            j = self._follow(j["next"])
            pages += 1
        self.assertEqual(pages, 5)
        self.assertEqual(len(seen), len(set(seen)), "a session appears twice")
        self.assertEqual(set(seen), self.all_ids)
        # and back
        back = self._follow(j["previous"])
        self.assertEqual(len(back["results"]), 7)

    def test_filters(self):
        j = self.list_sessions(self.a, vendor_data="vd-B")
        self.assertEqual(j["count"], 3)
        self.assertTrue(all(r["vendor_data"] == "vd-B" for r in j["results"]))
        j = self.list_sessions(self.a, workflow_id=self.wb)
        self.assertEqual(j["count"], 3)
        self.assertTrue(all(r["workflow_id"] == self.wb for r in j["results"]))
        self.assertTrue(all(r["session_kind"] == "business" for r in j["results"]))
        j = self.list_sessions(self.a, status="Approved")
        self.assertEqual({r["session_id"] for r in j["results"]}, self.approved)
        j = self.list_sessions(self.a, status="Not Started")
        self.assertEqual(j["count"], 22)
        j = self.list_sessions(self.a, status="NOT_STARTED")
        self.assertEqual(j["count"], 3)
        j = self.list_sessions(self.a, vendor_data="vd-A", status="Declined")
        self.assertEqual([r["session_id"] for r in j["results"]], [self.declined])
        j = self.list_sessions(self.a, vendor_data="vd-A", workflow_id=self.wb)
        self.assertEqual(j["count"], 0)
        j = self.list_sessions(self.a, vendor_data="nobody")
        self.assertEqual((j["count"], j["results"], j["next"], j["previous"]),
                         (0, [], None, None))

    def test_filter_with_pagination(self):
        j = self.list_sessions(self.a, vendor_data="vd-A", limit=10, offset=20)
        self.assertEqual(j["count"], 25)
        self.assertEqual(len(j["results"]), 5)
        self.assertIsNone(j["next"])
        prev = self._follow(j["previous"])
        self.assertTrue(all(r["vendor_data"] == "vd-A" for r in prev["results"]),
                        "previous link lost the filter")

    def test_result_members(self):
        j = self.list_sessions(self.a, limit=100)
        self.assertEqual(len(j["results"]), 29)
        for r in j["results"]:
            for k in LIST_MEMBERS:
                self.assertIn(k, r)
            self.assertTrue(is_uuid(r["session_id"]))
            self.assertTrue(is_int(r["session_number"]))
            self.assertIn(r["session_kind"], ("user", "business"))
            self.assertIsInstance(r["status"], str)
            self.assertIsInstance(r["created_at"], str)
            if r["session_id"] == self.imported:
                self.assertEqual(r["shared_from_session"], self.src_sid)
                self.assertEqual(r["vendor_data"], "vd-imp")
                self.assertEqual(r["status"], "In Review")
            else:
                self.assertIsNone(r["shared_from_session"])

    def test_only_own_sessions(self):
        j = self.list_sessions(self.other)
        self.assertEqual(j["count"], 0)
        self.assertEqual(j["results"], [])

    def test_deleted_session_leaves_list(self):
        x = self.app("list-del")
        w = self.wf(x)
        s1 = self.session(x, w)["session_id"]
        s2 = self.session(x, w)["session_id"]
        self.assertEqual(self.list_sessions(x)["count"], 2)
        self.assertEqual(self.sb.req("DELETE", "/v3/session/%s/delete/" % s1,
                                     key=x.key).status, 204)
        j = self.list_sessions(x)
        self.assertEqual(j["count"], 1)
        self.assertEqual(j["results"][0]["session_id"], s2)


# --------------------------------------------------------------------------
# share
# --------------------------------------------------------------------------

class ShareWorld(SandboxCase):
    """Per test: issuer I, importer P, third application Q, workflows."""

    def setUp(self):
        self.I = self.app("issuer")
        self.P = self.app("importer")
        self.Q = self.app("third")
        self.I_kyc = self.wf(self.I, "kyc")
        self.I_kyb = self.wf(self.I, "kyb")
        self.P_kyc = self.wf(self.P, "kyc")
        self.P_kyb = self.wf(self.P, "kyb")
        self.Q_kyc = self.wf(self.Q, "kyc")


class TestShare(ShareWorld):

    def test_share_201_shape(self):
        for wf, kind, st in ((self.I_kyc, "user", "Approved"),
                             (self.I_kyb, "business", "APPROVED")):
            with self.subTest(kind=kind):
                sid = self.finished(self.I, wf, st)
                r = self.share(self.I, sid, self.P.id, 3600)
                j = self.assertStatus(r, 201)
                self.assertIsInstance(j.get("share_token"), str)
                self.assertEqual(j["share_token"].count("."), 2)
                self.assertEqual(j.get("for_application_id"), self.P.id)
                self.assertEqual(j.get("session_kind"), kind)

    def test_jwt_header_and_exact_claims(self):
        for wf, kind, st in ((self.I_kyc, "user", "Declined"),
                             (self.I_kyb, "business", "IN_REVIEW")):
            with self.subTest(kind=kind):
                sid = self.finished(self.I, wf, st)
                now = time.time()
                tok = self.assertStatus(self.share(self.I, sid, self.P.id), 201)["share_token"]
                hdr, claims, sig = jwt_parts(tok)
                self.assertEqual(hdr.get("alg"), "HS256")
                self.assertIn(hdr.get("typ", "JWT"), ("JWT",))
                self.assertEqual(set(claims), CLAIMS, "claims must be exactly %s" % CLAIMS)
                self.assertEqual(claims["session_id"], sid)
                self.assertEqual(claims["session_kind"], kind)
                self.assertEqual(claims["from_application_id"], self.I.id)
                self.assertEqual(claims["for_application_id"], self.P.id)
                self.assertTrue(is_int(claims["iat"]) and is_int(claims["exp"]))
                self.assertLessEqual(abs(claims["iat"] - now), 5)
                self.assertEqual(claims["exp"] - claims["iat"], 3600, "default ttl")
                self.assertEqual(len(b64url_decode(sig)), 32, "HS256 MAC is 32 bytes")

    def test_ttl_values_accepted(self):
        sid = self.finished(self.I, self.I_kyc)
        for ttl in (60, 61, 1234, 3600, 86399, 86400):
            with self.subTest(ttl=ttl):
                j = self.assertStatus(self.share(self.I, sid, self.P.id, ttl), 201)
                _, c, _ = jwt_parts(j["share_token"])
                self.assertEqual(c["exp"] - c["iat"], ttl)

    def test_ttl_bad_400(self):
        sid = self.finished(self.I, self.I_kyc)
        for ttl in (59, 0, -1, 86401, 10 ** 12, "3600", 3600.5, True, [60], {"s": 60}):
            with self.subTest(ttl=ttl):
                self.assertError(self.share(self.I, sid, self.P.id, ttl), 400)

    def test_unfinished_400_both_casings(self):
        for wf in (self.I_kyc, self.I_kyb):
            sid = self.session(self.I, wf)["session_id"]
            with self.subTest(wf=wf):
                d = self.assertError(self.share(self.I, sid, self.P.id), 400)
                self.assertIn("only finished sessions", d.lower())
                self.assertIn("can be shared", d.lower())

    def test_resubmitted_not_shareable(self):
        for wf, st, resub in ((self.I_kyc, "Declined", "Resubmitted"),
                              (self.I_kyb, "DECLINED", "RESUBMITTED")):
            sid = self.finished(self.I, wf, st)
            self.assertStatus(self.sb.req("PATCH", "/v3/session/%s/update-status/" % sid,
                                          {"new_status": resub}, key=self.I.key), 200)
            self.assertError(self.share(self.I, sid, self.P.id), 400,
                             contains="only finished sessions")

    def test_every_finished_status_shareable(self):
        for wf, sts in ((self.I_kyc, KYC_FINISHED), (self.I_kyb, KYB_FINISHED)):
            for st in sts:
                with self.subTest(status=st):
                    sid = self.finished(self.I, wf, st)
                    self.assertStatus(self.share(self.I, sid, self.P.id), 201)

    def test_for_application_id_errors(self):
        sid = self.finished(self.I, self.I_kyc)
        r = self.sb.req("POST", "/v3/session/%s/share/" % sid, {"ttl_in_seconds": 60},
                        key=self.I.key)
        self.assertError(r, 400)
        for bad in (12345, None, ["x"], {"id": self.P.id}, True):
            with self.subTest(for_application_id=bad):
                self.assertError(self.share(self.I, sid, bad), 400)
        self.assertError(self.share(self.I, sid, self.I.id), 400)
        self.assertError(self.share(self.I, sid, str(uuid.uuid4())), 404)
        self.assertError(self.sb.req("POST", "/v3/session/%s/share/" % sid, raw=b"{,}",
                                     key=self.I.key), 400)

    def test_other_apps_or_unknown_session_404(self):
        sid = self.finished(self.I, self.I_kyc)
        # P tries to share I's session (to Q): unknown to P
        self.assertError(self.share(self.P, sid, self.Q.id), 404)
        self.assertError(self.share(self.P, str(uuid.uuid4()), self.Q.id), 404)
        self.assertError(self.share(self.I, str(uuid.uuid4()), self.P.id), 404)

    def test_deleted_session_404(self):
        sid = self.finished(self.I, self.I_kyc)
        self.assertEqual(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.I.key).status, 204)
        self.assertError(self.share(self.I, sid, self.P.id), 404)

    def test_same_second_same_token(self):
        """iat in whole seconds, no nonce: same session, partner, TTL and second
        give the same token; a different TTL a different one."""
        sid = self.finished(self.I, self.I_kyc)
        for _ in range(5):
            a = self.assertStatus(self.share(self.I, sid, self.P.id, 600), 201)["share_token"]
            b = self.assertStatus(self.share(self.I, sid, self.P.id, 600), 201)["share_token"]
            if jwt_parts(a)[1]["iat"] == jwt_parts(b)[1]["iat"]:
                self.assertEqual(a, b)
                break
        else:
            self.fail("could not get two shares in the same second")
        c = self.assertStatus(self.share(self.I, sid, self.P.id, 601), 201)["share_token"]
        self.assertNotEqual(a, c)
        d = self.assertStatus(self.share(self.I, sid, self.Q.id, 600), 201)["share_token"]
        self.assertNotEqual(a, d)


# --------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------

class TestImport(ShareWorld):

    def tearDown(self):
        self.sb.req("PUT", "/sandbox/clock", {"offset_s": 0})

    def test_201_shape_kyc_deep_clone(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P, "Approved", vendor_data="src-u")
        src = self.assertStatus(self.decision(self.I, sid), 200)
        r = self.imp(self.P, tok, self.P_kyc, vendor_data="partner-user-42")
        j = self.assertStatus(r, 201)
        self.assertTrue(is_uuid(j.get("session_id")))
        self.assertNotEqual(j["session_id"], sid)
        self.assertTrue(is_int(j.get("session_number")))
        self.assertEqual(j.get("session_kind"), "user")
        self.assertEqual(j.get("status"), "In Review")
        self.assertEqual(j.get("shared_from_session"), sid)
        self.assertEqual(j.get("vendor_data"), "partner-user-42")
        self.assertEqual(j.get("workflow_id"), self.P_kyc)
        self.assert_kyc_arrays(j)
        for a in KYC_ARRAYS:
            self.assertEqual(json.dumps(j[a], sort_keys=True),
                             json.dumps(src[a], sort_keys=True), "clone differs: " + a)

    def test_201_shape_kyb_deep_clone(self):
        sid, tok = self.mint(self.I, self.I_kyb, self.P, "APPROVED")
        src = self.assertStatus(self.decision(self.I, sid), 200)
        j = self.assertStatus(self.imp(self.P, tok, self.P_kyb, "biz-9", True), 201)
        self.assertEqual(j.get("session_kind"), "business")
        self.assertEqual(j.get("status"), "APPROVED")
        self.assertEqual(j.get("shared_from_session"), sid)
        self.assertEqual(j.get("vendor_data"), "biz-9")
        self.assertEqual(j.get("workflow_id"), self.P_kyb)
        self.assert_kyb_arrays(j)
        for a in KYB_ARRAYS:
            self.assertEqual(json.dumps(j[a], sort_keys=True),
                             json.dumps(src[a], sort_keys=True), "clone differs: " + a)

    def test_imported_session_is_readable_by_importer_only(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P, "Declined")
        j = self.assertStatus(self.imp(self.P, tok, self.P_kyc, "v", True), 201)
        d = self.assertStatus(self.decision(self.P, j["session_id"]), 200)
        self.assertEqual(d["shared_from_session"], sid)
        self.assertEqual(d["status"], "Declined")
        self.assertEqual(d["session_kind"], "user")
        for a in KYC_ARRAYS:
            self.assertEqual(d[a], j[a])
        self.assertError(self.decision(self.I, j["session_id"]), 404)
        # the source is untouched
        self.assertEqual(self.decision(self.I, sid).json()["status"], "Declined")

    def test_trust_review_true_preserves_status(self):
        for wf, pwf, sts in ((self.I_kyc, self.P_kyc, KYC_FINISHED),
                             (self.I_kyb, self.P_kyb, KYB_FINISHED)):
            for st in sts:
                with self.subTest(status=st):
                    _, tok = self.mint(self.I, wf, self.P, st)
                    j = self.assertStatus(self.imp(self.P, tok, pwf, trust_review=True), 201)
                    self.assertEqual(j["status"], st)

    def test_trust_review_false_or_absent_in_review(self):
        for wf, pwf, sts, rev in ((self.I_kyc, self.P_kyc, KYC_FINISHED, "In Review"),
                                  (self.I_kyb, self.P_kyb, KYB_FINISHED, "IN_REVIEW")):
            for st in sts:
                for tr in (False, None):
                    with self.subTest(status=st, trust_review=tr):
                        _, tok = self.mint(self.I, wf, self.P, st)
                        j = self.assertStatus(self.imp(self.P, tok, pwf, trust_review=tr), 201)
                        self.assertEqual(j["status"], rev)

    def test_session_number_per_application_increasing(self):
        base = self.session(self.P, self.P_kyc)["session_number"]
        nums = []
        for _ in range(4):
            _, tok = self.mint(self.I, self.I_kyc, self.P)
            nums.append(self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)["session_number"])
        self.assertEqual(nums, sorted(set(nums)))
        self.assertGreater(nums[0], base)

    def test_vendor_data_optional(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P)
        j = self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)
        self.assertEqual(j["shared_from_session"], sid)

    def _entities(self, app, vendor_data):
        r = self.sb.req("GET", "/sandbox/entities", key=app.key)
        j = self.assertStatus(r, 200)
        items = j if isinstance(j, list) else next(
            (v for v in j.values() if isinstance(v, list)), None)
        self.assertIsInstance(items, list, "GET /sandbox/entities: no list in %r" % r)
        return [i for i in items if isinstance(i, dict) and i.get("vendor_data") == vendor_data]

    def test_entity_created_once_per_vendor_data(self):
        """"a User or Business entity is created if none exists": observed through
        the sandbox's own documented extra GET /sandbox/entities (x-api-key)."""
        self.assertEqual(self._entities(self.P, "ent-u"), [])
        for _ in range(2):
            _, tok = self.mint(self.I, self.I_kyc, self.P)
            self.assertStatus(self.imp(self.P, tok, self.P_kyc, "ent-u"), 201)
            ents = self._entities(self.P, "ent-u")
            self.assertEqual(len(ents), 1, ents)
            self.assertIn("user", json.dumps(ents[0]).lower())
        _, tok = self.mint(self.I, self.I_kyb, self.P, "APPROVED")
        self.assertStatus(self.imp(self.P, tok, self.P_kyb, "ent-b"), 201)
        ents = self._entities(self.P, "ent-b")
        self.assertEqual(len(ents), 1, ents)
        self.assertIn("business", json.dumps(ents[0]).lower())
        self.assertEqual(self._entities(self.Q, "ent-u"), [], "entities leak across apps")

    def test_tampered_token_401(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P)
        _, claims, _ = jwt_parts(tok)
        forged = [jwt_tamper_signature(tok),
                  jwt_resign_payload(tok, exp=claims["exp"] + 86400),
                  jwt_resign_payload(tok, for_application_id=self.Q.id),
                  b64url_encode(b'{"alg":"none","typ":"JWT"}') + "." + tok.split(".")[1] + ".",
                  jwt_hs256(claims, b"secret"),
                  jwt_hs256(claims, b""),
                  tok + "x", tok.split(".")[0] + "." + tok.split(".")[1],
                  "garbage", "a.b.c"]
        for f in forged:
            with self.subTest(token=f[-12:]):
                self.assertError(self.imp(self.P, f, self.P_kyc), 401)
        # the forged payload for Q is not accepted by Q either
        self.assertError(self.imp(self.Q, forged[2], self.Q_kyc), 401)
        # the genuine token was not consumed by any of that
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)

    def test_expired_token_401_via_clock(self):
        _, t60 = self.mint(self.I, self.I_kyc, self.P, ttl=60)
        _, tday = self.mint(self.I, self.I_kyc, self.P, ttl=86400)
        r = self.sb.req("PUT", "/sandbox/clock", {"offset_s": 90000})
        self.assertEqual(r.status, 200, repr(r))
        self.assertError(self.imp(self.P, t60, self.P_kyc), 401)
        self.assertError(self.imp(self.P, tday, self.P_kyc), 401)
        self.set_clock(0)
        self.assertStatus(self.imp(self.P, t60, self.P_kyc), 201)
        self.assertStatus(self.imp(self.P, tday, self.P_kyc), 201)

    def test_not_intended_403(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        d = self.assertError(self.imp(self.Q, tok, self.Q_kyc), 403, contains="not intended")
        self.assertNotIn("already imported", d.lower())
        # the issuer itself cannot import either
        self.assertError(self.imp(self.I, tok, self.I_kyc), 403, contains="not intended")
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)

    def test_duplicate_403(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        self.assertStatus(self.imp(self.P, tok, self.P_kyc, "v1"), 201)
        d = self.assertError(self.imp(self.P, tok, self.P_kyc, "v1"), 403,
                             contains="already imported")
        self.assertNotIn("not intended", d.lower())
        # any other body with the same token: still the duplicate
        self.assertError(self.imp(self.P, tok, self.P_kyc, "other", True), 403,
                         contains="already imported")
        n = self.list_sessions(self.P)["count"]
        self.assertEqual(n, 1, "the duplicate created a session")

    def test_duplicate_is_per_token_not_per_session(self):
        sid = self.finished(self.I, self.I_kyc)
        t1 = self.assertStatus(self.share(self.I, sid, self.P.id, 600), 201)["share_token"]
        t2 = self.assertStatus(self.share(self.I, sid, self.P.id, 700), 201)["share_token"]
        self.assertNotEqual(t1, t2)
        a = self.assertStatus(self.imp(self.P, t1, self.P_kyc), 201)
        b = self.assertStatus(self.imp(self.P, t2, self.P_kyc), 201)
        self.assertNotEqual(a["session_id"], b["session_id"])
        self.assertEqual(a["shared_from_session"], b["shared_from_session"])

    def test_source_deleted_404(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P)
        self.assertEqual(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.I.key).status, 204)
        self.assertError(self.imp(self.P, tok, self.P_kyc), 404)

    def test_unknown_workflow_404(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        self.assertError(self.imp(self.P, tok, str(uuid.uuid4())), 404)
        self.assertError(self.imp(self.P, tok, self.Q_kyc), 404)   # another app's
        self.assertError(self.imp(self.P, tok, self.I_kyc), 404)   # the issuer's
        gone = self.wf(self.P, "kyc")
        self.assertEqual(self.sb.req("DELETE", "/v3/workflows/%s/" % gone,
                                     key=self.P.key).status, 204)
        self.assertError(self.imp(self.P, tok, gone), 404)
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)   # not consumed

    def test_kind_mismatch_400(self):
        _, tu = self.mint(self.I, self.I_kyc, self.P)
        _, tb = self.mint(self.I, self.I_kyb, self.P, "APPROVED")
        self.assertError(self.imp(self.P, tu, self.P_kyb), 400)
        self.assertError(self.imp(self.P, tb, self.P_kyc), 400)
        self.assertStatus(self.imp(self.P, tu, self.P_kyc), 201)
        self.assertStatus(self.imp(self.P, tb, self.P_kyb), 201)

    def test_body_shape_400(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        k = self.P.key
        bodies = [b"", b"{", b'{"share_token": "x", }', b"[]", b'"x"', b"null",
                  b'{"share_token": "a"}{"x": 1}']
        for raw in bodies:
            with self.subTest(raw=raw):
                self.assertError(self.sb.req("POST", IMPORT, raw=raw, key=k), 400)
        shapes = [{"workflow_id": self.P_kyc},
                  {"share_token": tok},
                  {"share_token": 5, "workflow_id": self.P_kyc},
                  {"share_token": None, "workflow_id": self.P_kyc},
                  {"share_token": [tok], "workflow_id": self.P_kyc},
                  {"share_token": tok, "workflow_id": 5},
                  {"share_token": tok, "workflow_id": None},
                  {"share_token": tok, "workflow_id": self.P_kyc, "vendor_data": 5},
                  {"share_token": tok, "workflow_id": self.P_kyc, "vendor_data": {"a": 1}},
                  {"share_token": tok, "workflow_id": self.P_kyc, "trust_review": "true"},
                  {"share_token": tok, "workflow_id": self.P_kyc, "trust_review": 1}]
        for body in shapes:
            with self.subTest(body=body):
                self.assertError(self.sb.req("POST", IMPORT, body, key=k), 400)
        # duplicate key is malformed JSON for a strict parser
        dup = ('{"share_token": "%s", "workflow_id": "%s", "workflow_id": "%s"}'
               % (tok, self.P_kyc, self.P_kyc)).encode()
        self.assertError(self.sb.req("POST", IMPORT, raw=dup, key=k), 400)
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)

    def test_missing_or_bad_key_401(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        body = {"share_token": tok, "workflow_id": self.P_kyc}
        self.assertError(self.sb.req("POST", IMPORT, body), 401)
        self.assertError(self.sb.req("POST", IMPORT, body, key="bogus-key"), 401)
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)

    # -- check order: API key → body shape → token sig/exp → addressed to caller →
    #    not yet imported → source exists → workflow exists → workflow kind
    def test_order_1_key_before_body(self):
        self.assertError(self.sb.req("POST", IMPORT, raw=b"{broken"), 401)
        self.assertError(self.sb.req("POST", IMPORT, {"share_token": 1}, key="nope"), 401)

    def test_order_2_body_before_token(self):
        _, tok = self.mint(self.I, self.I_kyc, self.Q)  # not for P
        bad = jwt_tamper_signature(tok)
        self.assertError(self.sb.req("POST", IMPORT, {"share_token": bad},
                                     key=self.P.key), 400)
        self.assertError(self.sb.req("POST", IMPORT,
                                     {"share_token": bad, "workflow_id": self.P_kyc,
                                      "trust_review": "yes"}, key=self.P.key), 400)
        self.assertError(self.sb.req("POST", IMPORT,
                                     {"share_token": tok, "workflow_id": self.P_kyc,
                                      "vendor_data": 9}, key=self.P.key), 400)

    def test_order_3_signature_before_addressee(self):
        _, tok = self.mint(self.I, self.I_kyc, self.Q)
        self.assertError(self.imp(self.P, jwt_tamper_signature(tok), self.P_kyc), 401)
        self.assertError(self.imp(self.P, jwt_tamper_signature(tok), str(uuid.uuid4())), 401)

    def test_order_3_expiry_before_addressee(self):
        _, tok = self.mint(self.I, self.I_kyc, self.Q, ttl=60)
        self.set_clock(3600)
        self.assertError(self.imp(self.P, tok, self.P_kyc), 401)

    def test_order_3_expiry_before_duplicate(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P, ttl=60)
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)
        self.set_clock(3600)
        self.assertError(self.imp(self.P, tok, self.P_kyc), 401)
        self.set_clock(0)
        self.assertError(self.imp(self.P, tok, self.P_kyc), 403, contains="already imported")

    def test_order_3_expiry_before_source_and_workflow(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P, ttl=60)
        self.assertEqual(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.I.key).status, 204)
        self.set_clock(3600)
        self.assertError(self.imp(self.P, tok, str(uuid.uuid4())), 401)
        self.assertError(self.imp(self.P, tok, self.P_kyb), 401)

    def test_order_4_addressee_before_later_checks(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P)
        # Q: not intended + unknown workflow + kind mismatch
        self.assertError(self.imp(self.Q, tok, str(uuid.uuid4())), 403, contains="not intended")
        q_kyb = self.wf(self.Q, "kyb")
        self.assertError(self.imp(self.Q, tok, q_kyb), 403, contains="not intended")
        # P imports; Q still gets "not intended", not "already imported"
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)
        self.assertError(self.imp(self.Q, tok, self.Q_kyc), 403, contains="not intended")
        # source deleted: not intended still wins
        self.assertEqual(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.I.key).status, 204)
        self.assertError(self.imp(self.Q, tok, self.Q_kyc), 403, contains="not intended")

    def test_order_5_duplicate_before_source_and_workflow(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P)
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)
        self.assertError(self.imp(self.P, tok, str(uuid.uuid4())), 403,
                         contains="already imported")
        self.assertError(self.imp(self.P, tok, self.P_kyb), 403, contains="already imported")
        self.assertEqual(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.I.key).status, 204)
        self.assertError(self.imp(self.P, tok, self.P_kyc), 403, contains="already imported")

    def test_order_6_source_before_workflow_and_kind(self):
        sid, tok = self.mint(self.I, self.I_kyc, self.P)
        self.assertEqual(self.sb.req("DELETE", "/v3/session/%s/delete/" % sid,
                                     key=self.I.key).status, 204)
        self.assertError(self.imp(self.P, tok, self.P_kyb), 404)  # not the 400 mismatch
        self.assertError(self.imp(self.P, tok, str(uuid.uuid4())), 404)

    def test_order_7_workflow_before_kind(self):
        _, tok = self.mint(self.I, self.I_kyb, self.P, "APPROVED")
        self.assertError(self.imp(self.P, tok, self.Q_kyc), 404)
        self.assertError(self.imp(self.P, tok, self.P_kyc), 400)
        self.assertStatus(self.imp(self.P, tok, self.P_kyb), 201)

    def test_body_over_1mib_413_and_exactly_1mib_ok(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        m = send_declared_body(self.sb.port, IMPORT, self.P.key, MIB + 1)
        self.assertIsNotNone(m, "no HTTP answer to a body over 1 MiB")
        self.assertEqual(m[0], 413)
        self.assertIsInstance(json.loads(m[1].decode()).get("detail"), str)
        m = send_declared_body(self.sb.port, IMPORT, self.P.key, 8 * MIB, send_bytes=False)
        self.assertIsNotNone(m, "no answer from Content-Length alone")  # may answer early
        self.assertEqual(m[0], 413)
        body = json.dumps({"share_token": tok, "workflow_id": self.P_kyc}).encode()
        body += b" " * (MIB - len(body))
        self.assertEqual(len(body), MIB)
        r = self.sb.req("POST", IMPORT, raw=body, key=self.P.key)
        self.assertStatus(r, 201)

    def test_concurrent_same_token_imports_exactly_once(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        n = 12
        barrier = threading.Barrier(n)
        results = [None] * n

        def worker(i):
            c = self.sb.new_conn()
            try:
                barrier.wait(10)
                results[i] = self.sb.req("POST", IMPORT,
                                         {"share_token": tok, "workflow_id": self.P_kyc},
                                         key=self.P.key, conn=c)
            finally:
                c.close()
        ths = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(30)
        codes = sorted(r.status for r in results)
        self.assertEqual(codes, [201] + [403] * (n - 1), codes)
        for r in results:
            if r.status == 403:
                self.assertIn("already imported", r.json()["detail"].lower())
        self.assertEqual(self.list_sessions(self.P)["count"], 1)

    def test_concurrent_distinct_imports_unique_numbers(self):
        toks = [self.mint(self.I, self.I_kyc, self.P)[1] for _ in range(10)]
        results = [None] * len(toks)

        def worker(i):
            c = self.sb.new_conn()
            try:
                results[i] = self.sb.req("POST", IMPORT,
                                         {"share_token": toks[i], "workflow_id": self.P_kyc},
                                         key=self.P.key, conn=c)
            finally:
                c.close()
        ths = [threading.Thread(target=worker, args=(i,)) for i in range(len(toks))]
        for t in ths:
            t.start()
        for t in ths:
            t.join(30)
        self.assertTrue(all(r.status == 201 for r in results), results)
        nums = [r.json()["session_number"] for r in results]
        ids = [r.json()["session_id"] for r in results]
        self.assertEqual(len(set(nums)), len(nums), nums)
        self.assertEqual(len(set(ids)), len(ids))


# --------------------------------------------------------------------------
# routes, methods, error bodies
# --------------------------------------------------------------------------

class TestRoutes(SandboxCase):

    def setUp(self):
        self.a = self.app("routes")

    def test_unknown_route_404(self):
        u = uuid.uuid4()
        for m, p in (("GET", "/"), ("GET", "/nope"), ("GET", "/v3/nope/"),
                     ("POST", "/v3/nope/"), ("GET", "/v3/session/%s/" % u),
                     ("POST", "/v3/session/%s/nope/" % u), ("GET", "/v4/sessions/"),
                     ("GET", "/sandbox/nope"), ("POST", "/sandbox/sessions/%s/nope" % u),
                     ("GET", "/v3/session/%s/decision/extra/" % u)):
            with self.subTest(method=m, path=p):
                self.assertError(self.sb.req(m, p, {} if m == "POST" else None,
                                             key=self.a.key), 404)

    def test_wrong_method_405(self):
        u = uuid.uuid4()
        for m, p in (("GET", IMPORT), ("PUT", IMPORT), ("DELETE", IMPORT),
                     ("GET", "/v3/session/"), ("DELETE", "/v3/workflows/"),
                     ("PUT", "/v3/sessions/"), ("POST", "/v3/sessions/"),
                     ("GET", "/v3/session/%s/share/" % u),
                     ("POST", "/v3/session/%s/decision/" % u),
                     ("GET", "/v3/session/%s/delete/" % u),
                     ("GET", "/v3/session/%s/update-status/" % u),
                     ("DELETE", "/v3/webhook/"), ("PUT", "/v3/webhook/destinations/"),
                     ("PATCH", "/sandbox/faults"), ("POST", "/sandbox/clock"),
                     ("POST", "/sandbox/rate-limits"), ("PUT", "/sandbox/applications"),
                     ("GET", "/sandbox/sessions/%s/complete" % u)):
            with self.subTest(method=m, path=p):
                self.assertError(self.sb.req(m, p, {} if m in ("POST", "PUT") else None,
                                             key=self.a.key), 405)

    def test_json_content_type(self):
        for r in (self.sb.req("GET", "/v3/workflows/", key=self.a.key),
                  self.sb.req("GET", "/v3/nope/", key=self.a.key),
                  self.sb.req("GET", "/v3/workflows/"),
                  self.sb.req("POST", "/sandbox/applications", {"name": "ct"})):
            with self.subTest(r=r):
                self.assertIn("application/json", (r.h("Content-Type") or "").lower())
                r.json()

    def test_query_string_ignored_by_routing(self):
        r = self.sb.req("GET", "/v3/workflows/?foo=bar", key=self.a.key)
        self.assertEqual(r.status, 200, repr(r))

    def test_413_on_other_endpoints(self):
        for path in ("/v3/workflows/", "/v3/session/", "/sandbox/applications"):
            with self.subTest(path=path):
                m = send_declared_body(self.sb.port, path, self.a.key, 2 * MIB)
                self.assertIsNotNone(m)
                self.assertEqual(m[0], 413)
                self.assertIsInstance(json.loads(m[1].decode()).get("detail"), str)
        self.assertEqual(self.sb.req("GET", "/v3/workflows/", key=self.a.key).status, 200)


# --------------------------------------------------------------------------
# rate limits
# --------------------------------------------------------------------------

class TestRateLimits(SandboxCase):

    def setUp(self):
        r = self.sb.req("DELETE", "/sandbox/rate-limits")
        self.assertIn(r.status, (200, 204), repr(r))
        self.a = self.app("rl-a")
        self.b = self.app("rl-b")

    def tearDown(self):
        self.sb.req("DELETE", "/sandbox/rate-limits")

    def put_limits(self, body):
        r = self.sb.req("PUT", "/sandbox/rate-limits", body)
        self.assertEqual(r.status, 200, repr(r))

    def assert_rl_headers(self, r, limit=None):
        for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            self.assertIsNotNone(r.h(h), "%s missing on %r" % (h, r))
            self.assertRegex(r.h(h).strip(), r"^\d+$", h)
        now = time.time()
        reset = int(r.h("X-RateLimit-Reset"))
        self.assertTrue(now - 2 <= reset <= now + 62,
                        "X-RateLimit-Reset %d is not epoch seconds within the window" % reset)
        if limit is not None:
            self.assertEqual(int(r.h("X-RateLimit-Limit")), limit, repr(r))
        return int(r.h("X-RateLimit-Remaining"))

    def test_headers_on_every_v3_response_with_class_limits(self):
        k = self.a.key
        w = self.wf(self.a)
        sid = self.session(self.a, w)["session_id"]
        cases = [
            (self.sb.req("GET", "/v3/workflows/", key=k), 200, 600),
            (self.sb.req("GET", "/v3/sessions/", key=k), 200, 600),
            (self.sb.req("GET", "/v3/webhook/", key=k), 200, 600),
            (self.sb.req("POST", "/v3/workflows/", {"workflow_type": "kyc",
                                                     "workflow_label": "x"}, key=k), 201, 300),
            (self.sb.req("POST", "/v3/workflows/", {"workflow_type": "bad"}, key=k), 400, 300),
            (self.sb.req("GET", "/v3/workflows/%s/" % uuid.uuid4(), key=k), 404, 600),
            (self.sb.req("POST", "/v3/session/", {"workflow_id": w}, key=k), 201, 600),
            (self.sb.req("GET", "/v3/session/%s/decision/" % sid, key=k), 200, 100),
            (self.sb.req("GET", "/v3/session/%s/decision/" % uuid.uuid4(), key=k), 404, 100),
            (self.share(self.a, sid, self.b.id), 400, 300),
            (self.sb.req("POST", IMPORT, {"share_token": "x.y.z", "workflow_id": w},
                         key=k), 401, 300),
            (self.sb.req("PATCH", "/v3/webhook/", {"webhook_version": "v3"}, key=k), 200, 300),
            (self.sb.req("DELETE", "/v3/session/%s/delete/" % sid, key=k), 204, 300),
            (self.sb.req("GET", "/v3/nope/", key=k), 404, None),
            (self.sb.req("PUT", IMPORT, {}, key=k), 405, None),
        ]
        for r, st, lim in cases:
            with self.subTest(r=r):
                self.assertEqual(r.status, st, repr(r))
                self.assert_rl_headers(r, lim)

    def test_remaining_counts_down(self):
        r1 = self.sb.req("GET", "/v3/workflows/", key=self.a.key)
        r2 = self.sb.req("GET", "/v3/workflows/", key=self.a.key)
        self.assertEqual(self.assert_rl_headers(r1, 600), 599)
        self.assertEqual(self.assert_rl_headers(r2, 600), 598)

    def test_writes_3_then_429(self):
        self.put_limits({"writes": 3})
        k = self.a.key
        rem = []
        for i in range(3):
            r = self.sb.req("POST", "/v3/workflows/",
                            {"workflow_label": "w%d" % i, "workflow_type": "kyc"}, key=k)
            self.assertEqual(r.status, 201, repr(r))
            rem.append(self.assert_rl_headers(r, 3))
        self.assertEqual(rem, [2, 1, 0])
        r = self.sb.req("POST", "/v3/workflows/",
                        {"workflow_label": "w4", "workflow_type": "kyc"}, key=k)
        self.assertError(r, 429)
        ra = r.h("Retry-After")
        self.assertIsNotNone(ra, "429 without Retry-After")
        self.assertRegex(ra.strip(), r"^\d+$")
        self.assertTrue(1 <= int(ra) <= 60, ra)
        self.assertEqual(self.assert_rl_headers(r, 3), 0)
        # the refused request was not processed
        items = self.sb.req("GET", "/v3/workflows/", key=k).json()
        items = items if isinstance(items, list) else items.get("results", [])
        self.assertEqual(len(items), 3)
        # other writes of the same key are refused too (PATCH, DELETE)
        self.assertError(self.sb.req("PATCH", "/v3/webhook/", {"webhook_version": "v3"},
                                     key=k), 429)
        self.assertError(self.sb.req("DELETE", "/v3/workflows/%s/" % items[0]["uuid"],
                                     key=k), 429)
        # reads are another class
        self.assertEqual(self.sb.req("GET", "/v3/workflows/", key=k).status, 200)
        # per API key: b is unaffected
        r = self.sb.req("POST", "/v3/workflows/",
                        {"workflow_label": "b", "workflow_type": "kyc"}, key=self.b.key)
        self.assertEqual(r.status, 201, repr(r))
        self.assertEqual(self.assert_rl_headers(r, 3), 2)

    def test_session_creation_is_its_own_class(self):
        w = self.wf(self.a)
        self.put_limits({"writes": 1})
        r = self.sb.req("POST", "/v3/workflows/", {"workflow_type": "kyc",
                                                    "workflow_label": "x"}, key=self.a.key)
        self.assertEqual(r.status, 201, repr(r))
        self.assertError(self.sb.req("POST", "/v3/workflows/", {"workflow_type": "kyc",
                                                                 "workflow_label": "y"},
                                     key=self.a.key), 429)
        r = self.sb.req("POST", "/v3/session/", {"workflow_id": w}, key=self.a.key)
        self.assertEqual(r.status, 201, repr(r))
        self.assert_rl_headers(r, 600)

    def test_window_restarts_on_change(self):
        self.put_limits({"writes": 1})
        body = {"workflow_type": "kyc", "workflow_label": "x"}
        self.assertEqual(self.sb.req("POST", "/v3/workflows/", body, key=self.a.key).status, 201)
        self.assertEqual(self.sb.req("POST", "/v3/workflows/", body, key=self.a.key).status, 429)
        self.put_limits({"writes": 1})
        self.assertEqual(self.sb.req("POST", "/v3/workflows/", body, key=self.a.key).status, 201)

    def test_per_minute_sets_every_class(self):
        w = self.wf(self.a)
        sid = self.session(self.a, w)["session_id"]
        self.put_limits({"per_minute": 2})
        k = self.a.key
        calls = {
            "reads": lambda: self.sb.req("GET", "/v3/workflows/", key=k),
            "decision": lambda: self.sb.req("GET", "/v3/session/%s/decision/" % sid, key=k),
            "session_create": lambda: self.sb.req("POST", "/v3/session/",
                                                  {"workflow_id": w}, key=k),
            "writes": lambda: self.sb.req("PATCH", "/v3/webhook/",
                                          {"webhook_version": "v3"}, key=k),
        }
        for cls_, f in calls.items():
            with self.subTest(cls=cls_):
                r1, r2, r3 = f(), f(), f()
                self.assertLess(r1.status, 300, repr(r1))
                self.assertLess(r2.status, 300, repr(r2))
                self.assert_rl_headers(r2, 2)
                self.assertError(r3, 429)
                self.assertIsNotNone(r3.h("Retry-After"))

    def test_per_class_settings(self):
        w = self.wf(self.a)
        sid = self.session(self.a, w)["session_id"]
        self.put_limits({"reads": 5, "decision": 4, "session_create": 3, "writes": 7})
        k = self.a.key
        self.assert_rl_headers(self.sb.req("GET", "/v3/workflows/", key=k), 5)
        self.assert_rl_headers(self.sb.req("GET", "/v3/session/%s/decision/" % sid, key=k), 4)
        self.assert_rl_headers(self.sb.req("POST", "/v3/session/", {"workflow_id": w},
                                           key=k), 3)
        self.assert_rl_headers(self.sb.req("PATCH", "/v3/webhook/", {"webhook_version": "v3"},
                                           key=k), 7)

    def test_per_minute_0_is_unlimited(self):
        self.put_limits({"writes": 3})
        self.put_limits({"per_minute": 0})
        for i in range(40):
            r = self.sb.req("POST", "/v3/workflows/",
                            {"workflow_label": "u%d" % i, "workflow_type": "kyc"},
                            key=self.a.key)
            self.assertEqual(r.status, 201, "write %d: %r" % (i, r))

    def test_delete_restores_defaults(self):
        w = self.wf(self.a)
        sid = self.session(self.a, w)["session_id"]
        self.put_limits({"per_minute": 3})
        self.assert_rl_headers(self.sb.req("GET", "/v3/workflows/", key=self.a.key), 3)
        r = self.sb.req("DELETE", "/sandbox/rate-limits")
        self.assertIn(r.status, (200, 204), repr(r))
        k = self.a.key
        self.assert_rl_headers(self.sb.req("POST", "/v3/workflows/",
                                           {"workflow_type": "kyc", "workflow_label": "d"},
                                           key=k), 300)
        self.assert_rl_headers(self.sb.req("GET", "/v3/workflows/", key=k), 600)
        self.assert_rl_headers(self.sb.req("POST", "/v3/session/", {"workflow_id": w},
                                           key=k), 600)
        self.assert_rl_headers(self.sb.req("GET", "/v3/session/%s/decision/" % sid,
                                           key=k), 100)

    def test_default_decision_budget_is_enforced(self):
        w = self.wf(self.a)
        sid = self.session(self.a, w)["session_id"]
        path = "/v3/session/%s/decision/" % sid
        for i in range(100):
            r = self.sb.req("GET", path, key=self.a.key)
            self.assertEqual(r.status, 200, "decision %d: %r" % (i, r))
        r = self.sb.req("GET", path, key=self.a.key)
        self.assertError(r, 429)
        self.assertIsNotNone(r.h("Retry-After"))
        # another key's budget is its own
        w2 = self.wf(self.b)
        sid2 = self.session(self.b, w2)["session_id"]
        self.assertEqual(self.decision(self.b, sid2).status, 200)

    def test_bad_rate_limit_bodies_400(self):
        for raw in (b"{", b'{"per_minute": "5"}', b'{"writes": -1}', b'{"reads": 1.5}',
                    b"[]"):
            with self.subTest(raw=raw):
                self.assertError(self.sb.req("PUT", "/sandbox/rate-limits", raw=raw), 400)


# --------------------------------------------------------------------------
# injected faults
# --------------------------------------------------------------------------

class TestFaults(ShareWorld):

    def setUp(self):
        r = self.sb.req("DELETE", "/sandbox/faults")
        self.assertIn(r.status, (200, 204), repr(r))
        super().setUp()

    def tearDown(self):
        self.sb.req("DELETE", "/sandbox/faults")

    def put_faults(self, body):
        r = self.sb.req("PUT", "/sandbox/faults", body)
        self.assertEqual(r.status, 200, repr(r))

    def test_import_503_is_not_processed(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        self.put_faults({"path": IMPORT, "error_rate": 1.0, "error_status": 503})
        for _ in range(3):
            self.assertError(self.imp(self.P, tok, self.P_kyc), 503)
        # other paths are not affected
        self.assertEqual(self.sb.req("GET", "/v3/workflows/", key=self.P.key).status, 200)
        _, tok2 = self.mint(self.I, self.I_kyc, self.P)
        r = self.sb.req("DELETE", "/sandbox/faults")
        self.assertIn(r.status, (200, 204), repr(r))
        self.assertEqual(self.list_sessions(self.P)["count"], 0)
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)
        self.assertStatus(self.imp(self.P, tok2, self.P_kyc), 201)

    def test_injected_429_has_retry_after(self):
        _, tok = self.mint(self.I, self.I_kyc, self.P)
        self.put_faults({"path": IMPORT, "error_rate": 1.0, "error_status": 429})
        r = self.imp(self.P, tok, self.P_kyc)
        self.assertError(r, 429)
        ra = r.h("Retry-After")
        self.assertIsNotNone(ra)
        self.assertRegex(ra.strip(), r"^\d+$")
        self.assertGreaterEqual(int(ra), 1)
        self.sb.req("DELETE", "/sandbox/faults")
        self.assertStatus(self.imp(self.P, tok, self.P_kyc), 201)

    def test_latency_1500ms(self):
        # a long latency, so that "cleared" (well under half of it) holds
        # on a loaded machine too
        self.put_faults({"path": "/v3/workflows/", "latency_ms": 1500, "error_rate": 0})
        t0 = time.monotonic()
        r = self.sb.req("GET", "/v3/workflows/", key=self.P.key)
        dt = time.monotonic() - t0
        self.assertEqual(r.status, 200, repr(r))
        self.assertGreaterEqual(dt, 1.5)
        self.sb.req("DELETE", "/sandbox/faults")
        t0 = time.monotonic()
        self.sb.req("GET", "/v3/workflows/", key=self.P.key)
        dt = time.monotonic() - t0
        self.assertLess(dt, 0.75, "latency still injected after DELETE: %.3f s" % dt)

    def test_latency_with_star(self):
        self.put_faults({"path": "*", "latency_ms": 300})
        t0 = time.monotonic()
        r = self.sb.req("GET", "/v3/sessions/", key=self.P.key)
        self.assertEqual(r.status, 200, repr(r))
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)

    def test_star_matches_every_path(self):
        sid = self.finished(self.I, self.I_kyc)
        self.put_faults({"path": "*", "error_rate": 1.0, "error_status": 500})
        for r in (self.sb.req("GET", "/v3/workflows/", key=self.P.key),
                  self.sb.req("POST", "/v3/session/", {"workflow_id": self.P_kyc},
                              key=self.P.key),
                  self.share(self.I, sid, self.P.id),
                  self.decision(self.I, sid)):
            with self.subTest(r=r):
                self.assertError(r, 500)
        r = self.sb.req("DELETE", "/sandbox/faults")
        self.assertIn(r.status, (200, 204), repr(r))
        self.assertEqual(self.list_sessions(self.P)["count"], 0, "faulted create was processed")
        self.assertStatus(self.share(self.I, sid, self.P.id), 201)

    def test_error_rate_fraction(self):
        self.put_faults({"path": "/v3/workflows/", "error_rate": 0.5, "error_status": 503})
        codes = [self.sb.req("GET", "/v3/workflows/", key=self.P.key).status
                 for _ in range(200)]
        bad = codes.count(503)
        self.assertEqual(bad + codes.count(200), 200, set(codes))
        self.assertTrue(50 <= bad <= 150, "error_rate 0.5 gave %d/200" % bad)

    def test_corrupt_body_import_is_processed(self):
        """corrupt_body_rate: the import happens (the token is spent), the
        201's body the client reads is no JSON; errors and other paths are
        untouched."""
        sid, tok = self.mint(self.I, self.I_kyc, self.P)
        r = self.sb.req("PUT", "/sandbox/faults", {"path": IMPORT, "corrupt_body_rate": 1.0})
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.json()["corrupt_body_rate"], 1)
        self.assertEqual(r.json()["error_rate"], 0)
        self.assertEqual(self.sb.req("GET", "/sandbox/faults").json()["faults"][0]
                         ["corrupt_body_rate"], 1)
        r = self.imp(self.P, tok, self.P_kyc, vendor_data="garbled-1")
        self.assertEqual(r.status, 201, repr(r))
        self.assertTrue(r.body.startswith(b"<\xff\xfe"), repr(r))
        with self.assertRaises((ValueError, UnicodeDecodeError)):
            json.loads(r.body)
        self.assertNotIn(b"eyJ", r.body)
        # an error answer is sent as it is: the token is spent now
        self.assertError(self.imp(self.P, tok, self.P_kyc), 403, "already imported")
        # other paths are not affected
        self.assertStatus(self.sb.req("GET", "/v3/workflows/", key=self.P.key), 200)
        r = self.sb.req("DELETE", "/sandbox/faults")
        self.assertIn(r.status, (200, 204), repr(r))
        # the import did happen: the session is there, made from the token
        j = self.list_sessions(self.P, vendor_data="garbled-1")
        self.assertEqual(j["count"], 1, j)
        self.assertEqual(j["results"][0]["shared_from_session"], sid)

    def test_corrupt_body_rate_fraction(self):
        self.put_faults({"path": "/v3/workflows/", "corrupt_body_rate": 0.5})
        bodies = [self.sb.req("GET", "/v3/workflows/", key=self.P.key) for _ in range(200)]
        self.assertEqual({r.status for r in bodies}, {200})
        bad = sum(1 for r in bodies if r.body.startswith(b"<\xff\xfe"))
        self.assertTrue(50 <= bad <= 150, "corrupt_body_rate 0.5 gave %d/200" % bad)

    def test_bad_fault_bodies_400(self):
        for raw in (b"{", b'{"path": "*", "error_rate": "high"}',
                    b'{"path": 5, "error_rate": 1.0}', b'{"path": "*", "latency_ms": "x"}',
                    b'{"path": "*", "corrupt_body_rate": 1.5}',
                    b'{"path": "*", "corrupt_body_rate": "all"}'):
            with self.subTest(raw=raw):
                self.assertError(self.sb.req("PUT", "/sandbox/faults", raw=raw), 400)
        self.assertEqual(self.sb.req("GET", "/v3/workflows/", key=self.P.key).status, 200)


# --------------------------------------------------------------------------
# clock
# --------------------------------------------------------------------------

class TestClock(ShareWorld):

    def tearDown(self):
        self.sb.req("PUT", "/sandbox/clock", {"offset_s": 0})

    def test_put_echo_and_reset(self):
        r = self.sb.req("PUT", "/sandbox/clock", {"offset_s": 90000})
        self.assertEqual(self.assertStatus(r, 200).get("offset_s"), 90000)
        r = self.sb.req("PUT", "/sandbox/clock", {"offset_s": 0})
        self.assertEqual(self.assertStatus(r, 200).get("offset_s"), 0)

    def test_iat_follows_clock(self):
        sid = self.finished(self.I, self.I_kyc)
        self.set_clock(1000)
        now = time.time()
        tok = self.assertStatus(self.share(self.I, sid, self.P.id, 60), 201)["share_token"]
        iat = jwt_parts(tok)[1]["iat"]
        self.assertLessEqual(abs(iat - (now + 1000)), 5, iat - now)
        self.set_clock(0)
        tok = self.assertStatus(self.share(self.I, sid, self.P.id, 60), 201)["share_token"]
        self.assertLessEqual(abs(jwt_parts(tok)[1]["iat"] - time.time()), 5)

    def test_expiry_boundaries(self):
        _, a = self.mint(self.I, self.I_kyc, self.P, ttl=60)
        _, b = self.mint(self.I, self.I_kyc, self.P, ttl=60)
        _, day = self.mint(self.I, self.I_kyc, self.P, ttl=86400)
        self.set_clock(30)
        self.assertStatus(self.imp(self.P, a, self.P_kyc), 201)
        self.set_clock(120)
        self.assertError(self.imp(self.P, b, self.P_kyc), 401)
        self.set_clock(86000)
        self.assertStatus(self.imp(self.P, day, self.P_kyc), 201)
        self.set_clock(0)
        self.assertStatus(self.imp(self.P, b, self.P_kyc), 201)

    def test_bad_clock_bodies_400(self):
        for raw in (b"{", b'{"offset_s": "9"}', b'{"offset_s": 1.5}', b"{}", b"[]"):
            with self.subTest(raw=raw):
                self.assertError(self.sb.req("PUT", "/sandbox/clock", raw=raw), 400)


# --------------------------------------------------------------------------
# webhooks
# --------------------------------------------------------------------------

class TestWebhooks(SandboxCase):
    SANDBOX_KW = {"backoff_ms": 200}
    counter = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rcv = Receiver()

    @classmethod
    def tearDownClass(cls):
        cls.rcv.close()
        super().tearDownClass()

    def tearDown(self):
        self.sb.req("PUT", "/sandbox/clock", {"offset_s": 0})

    def hook_app(self, name="wh", codes=None, set_url=True):
        """An application whose webhook points at a fresh receiver path."""
        TestWebhooks.counter += 1
        path = "/hook/%d" % TestWebhooks.counter
        a = self.app(name)
        if codes:
            self.rcv.plan(path, codes)
        a.path = path
        a.secret = None
        if set_url:
            self.set_url(a)
        return a

    def set_url(self, a):
        r = self.sb.req("PATCH", "/v3/webhook/",
                        {"webhook_url": self.rcv.url(a.path), "webhook_version": "v3"},
                        key=a.key)
        j = self.assertStatus(r, 200)
        self.assertEqual(j.get("webhook_url"), self.rcv.url(a.path))
        self.assertIsInstance(j.get("secret_shared_key"), str)
        self.assertTrue(j["secret_shared_key"])
        a.secret = j["secret_shared_key"]
        return j

    def verify(self, rec, secret, now_offset=0):
        """Checks one delivery exactly as a receiver following the vendor's sample."""
        h = rec["headers"]
        self.assertIn("application/json", h.get("content-type", ""))
        payload = json.loads(rec["body"].decode("utf-8"))
        for k in ("session_id", "status", "webhook_type", "vendor_data", "timestamp",
                  "decision"):
            self.assertIn(k, payload, "payload lacks %s" % k)
        ts = payload["timestamp"]
        self.assertTrue(is_int(ts))
        self.assertEqual(h.get("x-timestamp"), str(ts))
        self.assertLessEqual(abs(time.time() + now_offset - ts), 300)
        v2 = h.get("x-signature-v2")
        self.assertIsNotNone(v2, "no X-Signature-V2")
        self.assertRegex(v2, r"^[0-9a-f]{64}$")
        self.assertTrue(hmac.compare_digest(v2, sig_v2(secret, h["x-timestamp"], payload)),
                        "X-Signature-V2 does not verify")
        simple = h.get("x-signature-simple")
        self.assertIsNotNone(simple, "no X-Signature-Simple")
        self.assertRegex(simple, r"^[0-9a-f]{64}$")
        self.assertTrue(hmac.compare_digest(
            simple, sig_simple(secret, h["x-timestamp"], payload["session_id"],
                               payload["status"], payload["webhook_type"])),
            "X-Signature-Simple does not verify")
        self.assertIsInstance(payload["decision"], dict)
        return payload

    def wait_status(self, a, sid, status, count=1, timeout=10):
        def pred(r):
            try:
                p = json.loads(r["body"].decode("utf-8"))
            except ValueError:
                return False
            return p.get("session_id") == sid and p.get("status") == status
        recs = self.rcv.wait(a.path, pred, count, timeout)
        self.assertGreaterEqual(len(recs), count,
                                "no webhook %s/%s on %s; got %r" %
                                (sid, status, a.path, self.rcv.get(a.path)))
        return recs

    def test_config_get_and_patch(self):
        a = self.app("cfg")
        j = self.assertStatus(self.sb.req("GET", "/v3/webhook/", key=a.key), 200)
        self.assertIsInstance(j.get("secret_shared_key"), str)
        self.assertTrue(j["secret_shared_key"])
        self.assertIn("webhook_url", j)
        self.assertIsNone(j["webhook_url"])
        a.path = "/hook/cfg"
        p = self.set_url(a)
        self.assertEqual(p.get("webhook_version"), "v3")
        g = self.assertStatus(self.sb.req("GET", "/v3/webhook/", key=a.key), 200)
        self.assertEqual(g["webhook_url"], self.rcv.url("/hook/cfg"))
        self.assertEqual(g["secret_shared_key"], p["secret_shared_key"])
        self.assertEqual(g["secret_shared_key"], j["secret_shared_key"],
                         "setting the url changed the secret")
        b = self.app("cfg2")
        gb = self.sb.req("GET", "/v3/webhook/", key=b.key).json()
        self.assertNotEqual(gb["secret_shared_key"], g["secret_shared_key"])
        self.assertError(self.sb.req("PATCH", "/v3/webhook/", {"webhook_url": 5},
                                     key=a.key), 400)
        self.assertError(self.sb.req("PATCH", "/v3/webhook/", raw=b"{", key=a.key), 400)

    def test_complete_delivers_signed_status_updated(self):
        a = self.hook_app(set_url=False)
        w = self.wf(a)
        sid = self.session(a, w, "user-wh-1")["session_id"]
        self.set_url(a)
        self.complete(a, sid, "Approved")
        rec = self.wait_status(a, sid, "Approved")[0]
        p = self.verify(rec, a.secret)
        self.assertEqual(p["webhook_type"], "status.updated")
        self.assertEqual(p["vendor_data"], "user-wh-1")
        self.assertEqual(p["status"], "Approved")
        for r in self.rcv.get(a.path):
            self.assertEqual(json.loads(r["body"])["session_id"], sid,
                             "another session's delivery on this app's url")

    def test_kyb_delivery(self):
        a = self.hook_app(set_url=False)
        w = self.wf(a, "kyb")
        sid = self.session(a, w, "biz-wh")["session_id"]
        self.set_url(a)
        self.complete(a, sid, "IN_REVIEW")
        p = self.verify(self.wait_status(a, sid, "IN_REVIEW")[0], a.secret)
        self.assertEqual(p["vendor_data"], "biz-wh")

    def test_signature_over_unicode_and_escapes(self):
        """Canonical JSON: raw UTF-8, minimal escapes -- the vendor's sample."""
        a = self.hook_app(set_url=False)
        w = self.wf(a)
        vd = 'Zoë/東京 "q" \\ tab\there\nnl \u0001 \u2028 😀 é'
        sid = self.session(a, w, vd)["session_id"]
        self.set_url(a)
        self.complete(a, sid, "Declined")
        p = self.verify(self.wait_status(a, sid, "Declined")[0], a.secret)
        self.assertEqual(p["vendor_data"], vd)

    def test_update_status_delivers(self):
        a = self.hook_app(set_url=False)
        w = self.wf(a)
        sid = self.finished(a, w, "In Review", "upd-wh")
        self.set_url(a)
        r = self.sb.req("PATCH", "/v3/session/%s/update-status/" % sid,
                        {"new_status": "Declined", "comment": "fraud"}, key=a.key)
        self.assertStatus(r, 200)
        p = self.verify(self.wait_status(a, sid, "Declined")[0], a.secret)
        self.assertEqual(p["webhook_type"], "status.updated")

    def test_import_delivers_to_importer(self):
        i = self.app("wh-issuer")
        iw = self.wf(i)
        p_app = self.hook_app("wh-importer")
        pw = self.wf(p_app)
        sid, tok = self.mint(i, iw, p_app, "Approved")
        j = self.assertStatus(self.imp(p_app, tok, pw, "imp-wh", True), 201)
        p = self.verify(self.wait_status(p_app, j["session_id"], "Approved")[0],
                        p_app.secret)
        self.assertEqual(p["vendor_data"], "imp-wh")

    def test_retry_500_500_200_with_backoff(self):
        a = self.hook_app(set_url=False, codes=[500, 500, 200])
        w = self.wf(a)
        sid = self.session(a, w, "retry")["session_id"]
        self.set_url(a)
        self.complete(a, sid, "Approved")
        recs = self.wait_status(a, sid, "Approved", count=3, timeout=15)
        time.sleep(3.5)   # a 4th attempt would come 16x base (3.2 s) later at the earliest
        recs = self.rcv.get(a.path)
        self.assertEqual([r["answered"] for r in recs], [500, 500, 200],
                         "expected exactly 3 attempts")
        g1 = recs[1]["t"] - recs[0]["t"]
        g2 = recs[2]["t"] - recs[1]["t"]
        self.assertGreaterEqual(g1, 0.15, "first retry after the base delay (200 ms)")
        self.assertGreaterEqual(g2, 0.6, "second retry after 4x base (800 ms)")
        for r in recs:
            self.verify(r, a.secret)

    def test_retry_gives_up_after_two_retries(self):
        a = self.hook_app(set_url=False, codes=[500] * 10)
        w = self.wf(a)
        sid = self.session(a, w)["session_id"]
        self.set_url(a)
        self.complete(a, sid, "Declined")
        self.wait_status(a, sid, "Declined", count=3, timeout=15)
        time.sleep(4.5)   # 16 x 200 ms = 3.2 s would be a third retry
        self.assertEqual(len(self.rcv.get(a.path)), 3)

    def test_rotate_secret_key(self):
        a = self.hook_app(set_url=False)
        w = self.wf(a)
        sid = self.session(a, w)["session_id"]
        old = self.set_url(a)["secret_shared_key"]
        r = self.sb.req("PATCH", "/v3/webhook/", {"rotate_secret_key": True}, key=a.key)
        j = self.assertStatus(r, 200)
        new = j["secret_shared_key"]
        self.assertNotEqual(new, old)
        self.assertEqual(j["webhook_url"], self.rcv.url(a.path), "rotation lost the url")
        self.assertEqual(self.sb.req("GET", "/v3/webhook/", key=a.key).json()
                         ["secret_shared_key"], new)
        self.complete(a, sid, "Approved")
        rec = self.wait_status(a, sid, "Approved")[0]
        self.verify(rec, new)
        payload = json.loads(rec["body"])
        self.assertNotEqual(rec["headers"]["x-signature-v2"],
                            sig_v2(old, rec["headers"]["x-timestamp"], payload))

    def test_timestamp_follows_clock(self):
        a = self.hook_app(set_url=False)
        w = self.wf(a)
        sid = self.session(a, w)["session_id"]
        self.set_url(a)
        self.set_clock(1000)
        self.complete(a, sid, "Approved")
        rec = self.wait_status(a, sid, "Approved")[0]
        self.verify(rec, a.secret, now_offset=1000)
        self.assertLessEqual(abs(int(rec["headers"]["x-timestamp"]) - (time.time() + 1000)), 10)

    def test_destinations(self):
        a = self.app("dest")
        r = self.sb.req("POST", "/v3/webhook/destinations/",
                        {"url": self.rcv.url("/dest"),
                         "subscribed_events": ["status.updated", "data.updated"]},
                        key=a.key)
        j = self.assertStatus(r, 201)
        self.assertIsInstance(j, dict)
        self.assertError(self.sb.req("POST", "/v3/webhook/destinations/",
                                     {"subscribed_events": ["status.updated"]},
                                     key=a.key), 400)
        self.assertError(self.sb.req("POST", "/v3/webhook/destinations/",
                                     {"url": self.rcv.url("/d"),
                                      "subscribed_events": ["nope.event"]}, key=a.key), 400)
        self.assertError(self.sb.req("POST", "/v3/webhook/destinations/",
                                     {"url": self.rcv.url("/d")}), 401)


# --------------------------------------------------------------------------
# --state: persistence across restarts, SIGTERM
# --------------------------------------------------------------------------

class TestWebhookHosts(unittest.TestCase):
    """Webhook receivers: loopback only, plus exactly the host names given
    with --webhook-allow-host (a compose network's services)."""

    def check(self, sb, url, status, where="webhook_url"):
        t = SandboxCase("setUp")
        t.sb = sb
        a = t.app("wh-hosts")
        r = sb.req("PATCH", "/v3/webhook/", {"webhook_url": url}, key=a.key)
        self.assertEqual(r.status, status, repr(r))
        if status == 400:
            self.assertIn(where, r.json()["detail"])
        r = sb.req("POST", "/v3/webhook/destinations/",
                   {"url": url, "subscribed_events": ["status.updated"]}, key=a.key)
        self.assertEqual(r.status, 201 if status == 200 else 400, repr(r))

    def test_loopback_only_by_default(self):
        sb = Sandbox()
        try:
            self.check(sb, "http://127.0.0.1:9/hook", 200)
            self.check(sb, "http://issuer:8490/hook", 400)
            self.assertEqual(sb.stop(), 0)
        finally:
            sb.cleanup()

    def test_allowed_hosts(self):
        sb = Sandbox("--webhook-allow-host", "issuer",
                     "--webhook-allow-host", "importer")
        try:
            self.check(sb, "http://issuer:8490/webhooks/vendor", 200)
            self.check(sb, "http://IMPORTER:8491/webhooks/vendor", 200)
            self.check(sb, "http://issuer.example.com/x", 400)
            self.check(sb, "http://setup:1/x", 400)
            self.assertEqual(sb.stop(), 0)
        finally:
            sb.cleanup()

    def test_bad_host_name_is_a_usage_error(self):
        p = subprocess.run([KB_BIN, "sandbox", "--listen", "127.0.0.1:0",
                            "--webhook-allow-host", "bad name"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn(b"--webhook-allow-host", p.stderr)


class TestState(unittest.TestCase):

    def test_state_survives_restart(self):
        tmp = tempfile.mkdtemp(prefix="kb-state-")
        state = os.path.join(tmp, "sandbox.state")
        s1 = Sandbox(state=state)
        s2 = None
        try:
            t = SandboxCase("setUp")
            t.sb = s1
            I, P = t.app("st-issuer"), t.app("st-importer")
            iw, pw = t.wf(I), t.wf(P)
            sid = t.finished(I, iw, "Approved", "st-user")
            t1 = t.assertStatus(t.share(I, sid, P.id, 3600), 201)["share_token"]
            t2 = t.assertStatus(t.share(I, sid, P.id, 7200), 201)["share_token"]
            imp1 = t.assertStatus(t.imp(P, t1, pw, "st-p"), 201)
            src_before = t.decision(I, sid).body
            imp_before = t.decision(P, imp1["session_id"]).body
            secret = t.sb.req("GET", "/v3/webhook/", key=P.key).json()["secret_shared_key"]
            rc = s1.stop()
            self.assertEqual(rc, 0, "SIGTERM must stop the sandbox with exit 0")
            self.assertEqual(sanitizer_reports(s1.logs()), [])
            self.assertTrue(os.path.exists(state), "no state file written")

            s2 = Sandbox(state=state)
            t.sb = s2
            j = t.assertStatus(s2.req("GET", "/sandbox/applications"), 200)
            items = j if isinstance(j, list) else next(
                (v for v in j.values() if isinstance(v, list)), [])
            ids = {i.get("application_id") for i in items}
            self.assertTrue({I.id, P.id} <= ids)
            items = s2.req("GET", "/v3/workflows/", key=I.key).json()
            items = items if isinstance(items, list) else items.get("results", [])
            self.assertIn(iw, {x.get("uuid") for x in items})
            self.assertEqual(json.loads(t.decision(I, sid).body), json.loads(src_before))
            self.assertEqual(json.loads(t.decision(P, imp1["session_id"]).body),
                             json.loads(imp_before))
            t.assertError(t.imp(P, t1, pw), 403, contains="already imported")
            imp2 = t.assertStatus(t.imp(P, t2, pw), 201)
            self.assertGreater(imp2["session_number"], imp1["session_number"])
            self.assertEqual(s2.req("GET", "/v3/webhook/", key=P.key).json()
                             ["secret_shared_key"], secret)
            self.assertEqual(s2.stop(), 0)
            self.assertEqual(sanitizer_reports(s2.logs()), [])
        finally:
            s1.cleanup()
            if s2 is not None:
                s2.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_sigterm_exits_0_with_open_connections(self):
        s = Sandbox()
        try:
            c = s.new_conn()
            c.request("GET", "/sandbox/applications")
            c.getresponse().read()
            idle = socket.create_connection(("127.0.0.1", s.port))
            t0 = time.monotonic()
            rc = s.stop()
            self.assertEqual(rc, 0)
            self.assertLess(time.monotonic() - t0, 10)
            self.assertEqual(sanitizer_reports(s.logs()), [])
            idle.close()
            c.close()
        finally:
            s.cleanup()


# --------------------------------------------------------------------------
# --seed: reproducible synthetic data
# --------------------------------------------------------------------------

_DATETIME = re.compile(
    rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?")


def mask_times(body):
    return _DATETIME.sub(b"<date-time>", body)


class TestSeed(unittest.TestCase):

    def run_sequence(self, boxes):
        """Same requests on every sandbox, interleaved in the same second."""
        # start just after a second boundary so second-resolution stamps agree
        frac = time.time() % 1.0
        if frac > 0.5:
            time.sleep(1.02 - frac)
        out = []
        ts = []
        for sb in boxes:
            t = SandboxCase("setUp")
            t.sb = sb
            ts.append(t)
        apps = [t.app("seeded") for t in ts]
        wk = [t.wf(a, "kyc") for t, a in zip(ts, apps)]
        wb = [t.wf(a, "kyb") for t, a in zip(ts, apps)]
        sk = [t.session(a, w, "seed-user")["session_id"] for t, a, w in zip(ts, apps, wk)]
        sb_ = [t.session(a, w, "seed-biz")["session_id"] for t, a, w in zip(ts, apps, wb)]
        for t, a, s in zip(ts, apps, sk):
            t.complete(a, s, "Approved")
        for t, a, s in zip(ts, apps, sb_):
            t.complete(a, s, "APPROVED")
        for t, a, s1, s2 in zip(ts, apps, sk, sb_):
            out.append((t.decision(a, s1), t.decision(a, s2)))
        return out

    def test_same_seed_byte_identical_decisions(self):
        boxes = [Sandbox(seed=1234), Sandbox(seed=1234)]
        try:
            (k1, b1), (k2, b2) = self.run_sequence(boxes)
            for r in (k1, b1, k2, b2):
                self.assertEqual(r.status, 200, repr(r))
            # the seed fixes the data, the clock the timestamps: compare
            # byte for byte with date-times masked, so that two sandboxes
            # answering in different seconds on a loaded machine agree
            if mask_times(k1.body) != mask_times(k2.body):
                d1, d2 = k1.json(), k2.json()
                diff = sorted(k for k in set(d1) | set(d2) if d1.get(k) != d2.get(k))
                self.fail("KYC decision differs between equal seeds in: %s" % diff)
            if mask_times(b1.body) != mask_times(b2.body):
                d1, d2 = b1.json(), b2.json()
                diff = sorted(k for k in set(d1) | set(d2) if d1.get(k) != d2.get(k))
                self.fail("KYB decision differs between equal seeds in: %s" % diff)
            for b in boxes:
                self.assertEqual(b.stop(), 0)
                self.assertEqual(sanitizer_reports(b.logs()), [])
        finally:
            for b in boxes:
                b.cleanup()

    def test_different_seed_different_data(self):
        boxes = [Sandbox(seed=1), Sandbox(seed=2)]
        try:
            (k1, b1), (k2, b2) = self.run_sequence(boxes)
            d1, d2 = k1.json(), k2.json()
            self.assertNotEqual([d1[a] for a in KYC_ARRAYS], [d2[a] for a in KYC_ARRAYS],
                                "the seed does not influence the synthetic person")
            e1, e2 = b1.json(), b2.json()
            self.assertNotEqual([e1[a] for a in KYB_ARRAYS], [e2[a] for a in KYB_ARRAYS],
                                "the seed does not influence the synthetic business")
        finally:
            for b in boxes:
                b.cleanup()


# --------------------------------------------------------------------------
# synthetic data: every answer is strict UTF-8 JSON ("JSON in, JSON out")
# --------------------------------------------------------------------------

class TestSyntheticData(unittest.TestCase):
    """Many completed sessions over several seeds: every complete/decision body
    decodes as strict UTF-8 and parses as JSON. (Seed 18, 30 KYC sessions
    completed "In Review", hit a name cut inside a multi-byte character with
    the generator of 2026-11-22; the sweep keeps its value if that changes.)"""

    def check_body(self, r, what):
        try:
            txt = r.body.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail("%s: invalid UTF-8 at byte %d: %r" % (
                what, e.start, r.body[max(0, e.start - 40):e.start + 16]))
        return json.loads(txt)

    def test_complete_and_decision_bodies_are_valid_utf8(self):
        plan = [("kyc", "In Review", 30), ("kyb", "IN_REVIEW", 30),
                ("kyc", "Declined", 10), ("kyc", "Approved", 10),
                ("kyb", "DECLINED", 10), ("kyb", "APPROVED", 10)]
        for seed in (18, 7, 99):
            sb = Sandbox(seed=seed)
            try:
                t = SandboxCase("setUp")
                t.sb = sb
                a = t.app("utf8")
                wfs = {}
                for wt, st, n in plan:
                    if wt not in wfs:
                        wfs[wt] = t.wf(a, wt)
                    for i in range(n):
                        sid = t.session(a, wfs[wt])["session_id"]
                        r = sb.req("POST", "/sandbox/sessions/%s/complete" % sid,
                                   {"status": st}, key=a.key)
                        self.assertEqual(r.status, 200, repr(r))
                        what = "seed %d %s %s #%d" % (seed, wt, st, i)
                        j = self.check_body(r, "complete " + what)
                        self.assertEqual(j["status"], st)
                        self.check_body(t.decision(a, sid), "decision " + what)
                self.assertEqual(sb.stop(), 0)
            finally:
                sb.cleanup()


# --------------------------------------------------------------------------
# robustness: garbage never crashes the process
# --------------------------------------------------------------------------

class TestRobustness(SandboxCase):

    def setUp(self):
        if self.sb.alive():   # test_zy_ stops it; test_zz_ only reads logs
            self.a = self.app("rob")
            self.w = self.wf(self.a)

    def assert_alive(self):
        self.assertTrue(self.sb.alive(), "the sandbox died: %s" % self.sb.logs()[-3000:])
        r = self.sb.req("GET", "/sandbox/applications")
        self.assertEqual(r.status, 200)
        r = self.sb.req("GET", "/v3/workflows/", key=self.a.key)
        self.assertEqual(r.status, 200)

    def test_random_bytes(self):
        rnd = random.Random(7)
        for i in range(60):
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4096)))
            raw_exchange(self.sb.port, data, timeout=1.0, shutdown_write=(i % 2 == 0))
        self.assert_alive()

    def test_random_bodies_on_every_endpoint(self):
        rnd = random.Random(8)
        sid = self.session(self.a, self.w)["session_id"]
        eps = [("POST", "/sandbox/applications"), ("POST", "/v3/workflows/"),
               ("POST", "/v3/session/"), ("POST", IMPORT),
               ("POST", "/v3/session/%s/share/" % sid),
               ("PATCH", "/v3/session/%s/update-status/" % sid),
               ("POST", "/sandbox/sessions/%s/complete" % sid),
               ("PATCH", "/v3/webhook/"), ("POST", "/v3/webhook/destinations/"),
               ("PUT", "/sandbox/faults"), ("PUT", "/sandbox/rate-limits"),
               ("PUT", "/sandbox/clock")]
        for m, p in eps:
            for _ in range(5):
                body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2048)))
                r = self.sb.req(m, p, raw=body, key=self.a.key)
                with self.subTest(method=m, path=p):
                    self.assertError(r, 400)
        self.sb.req("DELETE", "/sandbox/faults")
        self.sb.req("DELETE", "/sandbox/rate-limits")
        self.sb.req("PUT", "/sandbox/clock", {"offset_s": 0})
        self.assert_alive()

    def test_huge_headers(self):
        big = "x" * (256 * 1024)
        for req in (
                "GET /v3/workflows/ HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n" % big,
                "GET /v3/workflows/ HTTP/1.1\r\nHost: a\r\n%s\r\n" %
                "".join("X-H%d: v\r\n" % i for i in range(5000)),
                "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n" % big,
                "GET /v3/workflows/ HTTP/1.1\r\nx-api-key: %s\r\n\r\n" % big):
            out = raw_exchange(self.sb.port, req.encode(), timeout=3.0)
            m = parse_raw_response(out)
            if m is not None:
                self.assertGreaterEqual(m[0], 400)
        self.assert_alive()

    def test_truncated_json_400(self):
        full = json.dumps({"share_token": "a.b.c", "workflow_id": self.w,
                           "vendor_data": "v"}).encode()
        for cut in range(1, len(full), 7):
            r = self.sb.req("POST", IMPORT, raw=full[:cut], key=self.a.key)
            self.assertError(r, 400)
        self.assert_alive()

    def test_body_shorter_than_content_length(self):
        for _ in range(5):
            raw_exchange(self.sb.port,
                         ("POST /v3/workflows/ HTTP/1.1\r\nHost: a\r\nx-api-key: %s\r\n"
                          "Content-Length: 1000\r\n\r\n{\"workflow_type\"" % self.a.key).encode(),
                         timeout=0.3)
        for cl in ("abc", "-1", "99999999999999999999999", "1, 2"):
            raw_exchange(self.sb.port,
                         ("POST /v3/workflows/ HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n"
                          "\r\n{}" % cl).encode(), timeout=1.0)
        self.assert_alive()

    def test_deep_nesting_10000(self):
        deep_a = b"[" * 10000 + b"]" * 10000
        deep_o = b'{"a":' * 10000 + b"1" + b"}" * 10000
        paths = (IMPORT, "/v3/workflows/", "/sandbox/applications", "/v3/session/")
        # never a valid body: an array, an unterminated one, a token that is an array
        for body in (deep_a, b"[" * 10000,
                     b'{"share_token": ' + deep_a + b', "workflow_id": "x", "name": '
                     + deep_a + b', "workflow_type": ' + deep_a + b'}'):
            for path in paths:
                with self.subTest(path=path, n=len(body)):
                    self.assertError(self.sb.req("POST", path, raw=body, key=self.a.key), 400)
        # an object whose unknown member is deep: refused or ignored, never a crash
        for body in (deep_o, b'{"share_token": "a.b.c", "workflow_id": "%s", "x": %s}'
                     % (self.w.encode(), deep_o)):
            for path in paths:
                with self.subTest(path=path, n=len(body)):
                    r = self.sb.req("POST", path, raw=body, key=self.a.key)
                    self.assertLess(r.status, 500, repr(r))
        self.assert_alive()

    def test_invalid_utf8_400(self):
        for raw in (b'{"name": "\xff\xfe"}', b'{"name": "\xc3\x28"}',
                    b'{"name": "\xed\xa0\x80"}', b'{"name": "\xf8\x88\x80\x80\x80"}',
                    b'{"name": "a\x00b"}', b'{"na\xffme": "x"}'):
            with self.subTest(raw=raw):
                self.assertError(self.sb.req("POST", "/sandbox/applications", raw=raw), 400)
        bad = b'{"share_token": "a.b.c", "workflow_id": "%s", "vendor_data": "\xff"}' % \
            self.w.encode()
        self.assertError(self.sb.req("POST", IMPORT, raw=bad, key=self.a.key), 400)
        self.assertError(self.sb.req("GET", "/v3/workflows/", key="\xff\xfe".encode("latin-1")
                                     .decode("latin-1")), 401)
        self.assert_alive()

    def test_connection_churn_and_half_requests(self):
        socks = []
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", self.sb.port), timeout=2)
            if i % 3 == 0:
                s.sendall(b"GET /v3/workflows/ HT")
            elif i % 3 == 1:
                s.sendall(b"POST /v3/session/ HTTP/1.1\r\nContent-Length: 5\r\n\r\n{")
            socks.append(s)
            if len(socks) > 50:
                socks.pop(0).close()
        for s in socks:
            s.close()
        self.assert_alive()

    def test_pipelined_requests(self):
        req = ("GET /v3/workflows/ HTTP/1.1\r\nHost: a\r\nx-api-key: %s\r\n\r\n"
               % self.a.key).encode()
        out = raw_exchange(self.sb.port, req * 3 + b"garbage\r\n\r\n", timeout=2.0)
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:100])
        self.assert_alive()

    def test_zy_still_exits_0_after_abuse(self):
        """Runs after the other tests of this class (alphabetical order)."""
        self.assert_alive()
        self.assertEqual(self.sb.stop(), 0)
        self.assertEqual(sanitizer_reports(self.sb.logs()), [])


# --------------------------------------------------------------------------
# keep-alive latency (the Nagle / delayed-ACK trap)
# --------------------------------------------------------------------------

class TestKeepAlive(SandboxCase):
    """Judged per request, not by a total: a delayed-ACK stall adds >= 40 ms
    to each request it hits, so a p75 under 25 ms fails when a quarter of the
    requests stall, and a loaded machine's scattered pauses do not."""

    def assertQuick(self, times, what):
        times = sorted(times)
        p75 = times[int(len(times) * 0.75)]
        self.assertLess(p75, 0.025, "%s: p75 %.1f ms, max %.1f ms"
                        % (what, p75 * 1000, times[-1] * 1000))

    def test_200_sequential_gets_on_one_connection(self):
        a = self.app("ka")
        self.wf(a)
        c = self.sb.new_conn()
        try:
            sock = c.sock
            times = []
            for i in range(200):
                t0 = time.monotonic()
                c.request("GET", "/v3/workflows/" if i % 2 else "/v3/sessions/",
                          headers={"x-api-key": a.key})
                r = c.getresponse()
                r.read()
                times.append(time.monotonic() - t0)
                self.assertEqual(r.status, 200)
                self.assertIs(c.sock, sock, "connection not kept alive (request %d)" % i)
        finally:
            c.close()
        self.assertQuick(times, "200 keep-alive GETs")

    def test_100_sequential_posts_on_one_connection(self):
        a = self.app("ka-post")
        w = self.wf(a)
        c = self.sb.new_conn()
        try:
            sock = c.sock
            body = json.dumps({"workflow_id": w, "vendor_data": "ka"}).encode()
            times = []
            for i in range(100):
                t0 = time.monotonic()
                c.request("POST", "/v3/session/", body=body,
                          headers={"x-api-key": a.key, "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                times.append(time.monotonic() - t0)
                self.assertEqual(r.status, 201)
                self.assertIs(c.sock, sock, "connection not kept alive (request %d)" % i)
        finally:
            c.close()
        self.assertQuick(times, "100 keep-alive POSTs")

    def test_error_responses_keep_the_connection(self):
        c = self.sb.new_conn()
        try:
            sock = c.sock
            times = []
            for i in range(50):
                t0 = time.monotonic()
                c.request("GET", "/v3/workflows/", headers={"x-api-key": "bad"})
                r = c.getresponse()
                r.read()
                times.append(time.monotonic() - t0)
                self.assertEqual(r.status, 401)
                self.assertIs(c.sock, sock, "connection closed after a 401 (request %d)" % i)
        finally:
            c.close()
        self.assertQuick(times, "50 keep-alive 401s")


# --------------------------------------------------------------------------
# GET /metrics (operations, not a vendor route: no API key)
# --------------------------------------------------------------------------

class TestMetrics(SandboxCase):
    """The sandbox's Prometheus metrics, parsed with the real Prometheus text
    parser (python3-prometheus-client) and checked against the requests this
    class made on its own sandbox."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rcv = Receiver()

    @classmethod
    def tearDownClass(cls):
        cls.rcv.close()
        super().tearDownClass()

    def scrape(self):
        """{(name, labels tuple): value} of every sample, and the raw text."""
        from prometheus_client.parser import text_string_to_metric_families
        r = self.sb.req("GET", "/metrics")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.h("Content-Type"),
                         "text/plain; version=0.0.4; charset=utf-8")
        text = r.body.decode("utf-8")
        samples, types = {}, {}
        for fam in text_string_to_metric_families(text):
            types[fam.name] = fam.type
            for smp in fam.samples:
                key = (smp.name, tuple(sorted(smp.labels.items())))
                self.assertNotIn(key, samples, "sample twice: %r" % (key,))
                samples[key] = smp.value
        return samples, types, text

    @staticmethod
    def val(samples, name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def test_requests_by_route_pattern_and_status(self):
        req_n = "kyc_bridge_sandbox_requests_total"
        dur_n = "kyc_bridge_sandbox_request_duration_seconds_count"
        samples, types, text = self.scrape()
        # the parser names a counter family without its _total suffix
        self.assertEqual(types.get("kyc_bridge_sandbox_requests"), "counter")
        self.assertEqual(
            types.get("kyc_bridge_sandbox_request_duration_seconds"), "histogram")
        self.assertEqual(types.get("kyc_bridge_build_info"), "gauge")
        self.assertEqual(types.get("process_start_time_seconds"), "gauge")
        self.assertEqual(self.val(samples, req_n, endpoint="/v3/workflows/",
                                  status="201"), 0)
        self.assertLessEqual(
            abs(self.val(samples, "process_start_time_seconds") - time.time()),
            300)

        a = self.app("metrics")
        wf = self.wf(a)                              # POST /v3/workflows/ 201
        self.wf(a, "kyb")                            # again
        sids = [self.session(a, wf)["session_id"] for _ in range(3)]
        self.decision(a, sids[0])                    # 200
        self.decision(a, str(uuid.uuid4()))          # 404, same route
        self.assertEqual(self.sb.req("GET", "/v3/workflows/").status, 401)
        self.assertEqual(self.sb.req("GET", "/nowhere/%s" % sids[1]).status, 404)
        self.assertEqual(self.sb.req("DELETE", "/metrics").status, 405)

        samples, _, text = self.scrape()
        want = {("/sandbox/applications", "201"): 1,
                ("/v3/workflows/", "201"): 2,
                ("/v3/workflows/", "401"): 1,
                ("/v3/session/", "201"): 3,
                ("/v3/session/{}/decision/", "200"): 1,
                ("/v3/session/{}/decision/", "404"): 1,
                ("unmatched", "404"): 1,
                ("unmatched", "405"): 1,
                ("/metrics", "200"): 1}          # the first scrape
        for (ep, st), n in want.items():
            self.assertEqual(self.val(samples, req_n, endpoint=ep, status=st), n,
                             "%s %s" % (ep, st))
        got = {k: v for k, v in samples.items() if k[0] == req_n}
        self.assertEqual(sum(got.values()), sum(want.values()), repr(got))
        # the histogram counts the same requests, by endpoint
        for ep in ("/v3/workflows/", "/v3/session/", "/v3/session/{}/decision/"):
            n = sum(v for (ep2, _), v in want.items() if ep2 == ep)
            self.assertEqual(self.val(samples, dur_n, endpoint=ep), n, ep)
            self.assertEqual(
                self.val(samples,
                         "kyc_bridge_sandbox_request_duration_seconds_bucket",
                         endpoint=ep, le="+Inf"), n, ep)
        # patterns only: no id, path or key is ever a label value
        for sid in sids:
            self.assertNotIn(sid, text)
        self.assertNotIn("nowhere", text)
        self.assertNotIn(a.key, text)
        self.assertNotIn(wf, text)

    def test_webhook_deliveries(self):
        ok_n = "kyc_bridge_sandbox_webhook_deliveries_total"
        samples, types, _ = self.scrape()
        self.assertEqual(types.get("kyc_bridge_sandbox_webhook_deliveries"),
                         "counter")
        before = self.val(samples, ok_n, result="delivered")
        self.assertEqual(self.val(samples, ok_n, result="failed"), 0)
        a = self.app("metrics-hook")
        r = self.sb.req("PATCH", "/v3/webhook/",
                        {"webhook_url": self.rcv.url("/m"),
                         "webhook_version": "v3"}, key=a.key)
        self.assertEqual(r.status, 200, repr(r))
        self.sb.secrets.add(r.json().get("secret_shared_key") or "")
        wf = self.wf(a)
        self.finished(a, wf)
        recs = self.rcv.wait("/m", count=1)
        self.assertTrue(recs, "no webhook delivery arrived")
        # the sandbox counts a delivery once it read the answer: wait a bit
        deadline = time.monotonic() + 10
        while True:
            samples, _, _ = self.scrape()
            got = self.val(samples, ok_n, result="delivered") - before
            n = len(self.rcv.get("/m"))
            if got == n or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(got, n)
        self.assertEqual(self.val(samples, ok_n, result="failed"), 0)
        self.assertIn(("kyc_bridge_sandbox_webhook_deliveries_pending", ()),
                      samples)


# --------------------------------------------------------------------------

def load_tests(loader, standard_tests, pattern):
    """Only the concrete Test* classes (the bases start no sandbox)."""
    suite = unittest.TestSuite()
    for name, obj in sorted(globals().items()):
        if (name.startswith("Test") and isinstance(obj, type)
                and issubclass(obj, unittest.TestCase)):
            suite.addTests(loader.loadTestsFromTestCase(obj))
    return suite


def main():
    global KB_BIN
    argv = list(sys.argv)
    if "--kb-bin" in argv:
        i = argv.index("--kb-bin")
        KB_BIN = argv[i + 1]
        del argv[i:i + 2]
    KB_BIN = KB_BIN or os.environ.get("KB_BIN")
    if not KB_BIN or not os.access(KB_BIN, os.X_OK):
        sys.stderr.write("test_sandbox.py: set KB_BIN or --kb-bin to the kyc-bridge binary "
                         "(got %r)\n" % KB_BIN)
        return 2
    KB_BIN = os.path.abspath(KB_BIN)
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
