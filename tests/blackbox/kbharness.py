"""kbharness.py -- test tooling: drive kyc-bridge, the sandbox and a real Kafka.

Python 3 stdlib only. Used by the black-box suites (test_pipeline.py) and by
bench/e2e.py. Every process it starts listens on loopback, and every wait is
bounded.

Public API (keep it compatible; the suites and the benchmark use it):
  kb_bin(), kb_forge(), wait_for(), new_workdir(), topic_names(),
  share_request(), write_conf(), check()
  Http            keep-alive JSON client (one connection per thread)
  Sandbox         `kyc-bridge sandbox` on a free loopback port + helpers
  Kafka           the test broker: topics, produce, consume, follow, scans
  Follower        a background read_committed consumer that counts records
  Keys            `kyc-bridge keygen` output files
  Daemon          an issuer or importer process (start, stop, kill, restart)
  forge()         kb_forge: seal arbitrary envelopes
  run_cli()       one kyc-bridge command, its exit status and output
  find_tokens()   JWT-looking strings in bytes (token leak checks)
  wh_sign_v2(), wh_sign_simple(), wh_canonical()   the vendor's webhook
                  signatures, computed independently of the C code
  WebhookProxy    loopback proxy that forwards and records webhook deliveries
  PrivateBroker   a broker of the test's own (scripts/kafka.sh), for outages
  free_port()     a free loopback TCP port
  scrape_metrics()  GET /metrics, parsed with prometheus_client's parser
  Metrics         one parsed scrape: get(), total(), samples(), text
  metrics_convention_problems()  what the parser does not enforce
"""
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import http.server
import json
import socket
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class CheckFailed(AssertionError):
    """A failed check(); an AssertionError, so unittest counts a failure."""


def check(cond, msg="check failed"):
    """What `assert cond, msg` means, also under python -O (which strips
    assert statements): raises CheckFailed(msg) unless cond is true."""
    if not cond:
        raise CheckFailed(msg)
    return cond


def kb_bin():
    b = os.environ.get("KB_BIN")
    if not b:
        raise RuntimeError("KB_BIN (path of the kyc-bridge binary) is not set")
    return b


def kb_run_prefix():
    """The command the long-running processes (daemons, sandbox) are
    started under: KB_BIN_WRAPPER split like a shell would (e.g.
    "valgrind --error-exitcode=99 --leak-check=full"), [] when unset."""
    import shlex
    return shlex.split(os.environ.get("KB_BIN_WRAPPER", ""))


def kb_forge():
    b = os.environ.get("KB_FORGE")
    if not b:
        raise RuntimeError("KB_FORGE (path of the kb_forge test tool) is not set")
    return b


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError("timed out after %.0f s waiting for %s" % (timeout, what))


class Http:
    """Minimal JSON client for the sandbox: one keep-alive connection per
    thread (http.client), so bulk set-up does not open a socket per call."""

    def __init__(self, base, timeout=30):
        self.base = base.rstrip("/")
        u = urllib.parse.urlsplit(self.base)
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path
        self.timeout = timeout
        self._local = threading.local()
        self._all = []
        self._all_lock = threading.Lock()

    def _conn(self, fresh=False):
        c = getattr(self._local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(self.host, self.port,
                                           timeout=self.timeout)
            self._local.conn = c
            with self._all_lock:
                self._all.append(c)
        return c

    def raw(self, method, path, body=None, key=None, headers=None):
        """(status, response headers dict (lower-case names), body bytes)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        if key:
            h["x-api-key"] = key
        h.update(headers or {})
        for attempt in range(2):
            c = self._conn(fresh=attempt > 0)
            try:
                c.request(method, self.prefix + path, body=data, headers=h)
                resp = c.getresponse()
                raw = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if resp.getheader("Connection", "").lower() == "close":
                    self._conn(fresh=True)
                return resp.status, hdrs, raw
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, http.client.CannotSendRequest,
                    http.client.BadStatusLine):
                # A keep-alive connection the server closed meanwhile: one
                # retry on a fresh connection.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        """Closes every connection this client opened, in any thread."""
        with self._all_lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()

    def req(self, method, path, body=None, key=None, expect=None):
        status, _, raw = self.raw(method, path, body, key)
        doc = json.loads(raw) if raw else None
        if expect is not None and status != expect:
            raise AssertionError("%s %s -> %d (want %d): %s"
                                 % (method, path, status, expect, raw[:300]))
        return status, doc


class Sandbox:
    def __init__(self, workdir, seed=7, name="sandbox", extra_args=None):
        self.workdir = workdir
        portfile = os.path.join(workdir, name + ".port")
        self.logpath = os.path.join(workdir, name + ".log")
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            kb_run_prefix() + [kb_bin(), "sandbox", "--listen", "127.0.0.1:0", "--port-file",
             portfile, "--seed", str(seed), "--webhook-backoff-ms", "100"]
            + list(extra_args or []),
            stdout=self.log, stderr=subprocess.STDOUT)
        port = wait_for(lambda: self.proc.poll() is not None or _read(portfile),
                        20, "sandbox port file")
        if self.proc.poll() is not None:
            raise RuntimeError("sandbox exited with %s; see %s"
                               % (self.proc.returncode, self.logpath))
        self.url = "http://127.0.0.1:%d" % int(port)
        self.http = Http(self.url)

    def app(self, name):
        _, d = self.http.req("POST", "/sandbox/applications", {"name": name}, expect=201)
        return d["application_id"], d["api_key"]

    def workflow(self, key, kind):
        _, d = self.http.req("POST", "/v3/workflows/",
                             {"workflow_label": "wf-" + kind, "workflow_type": kind},
                             key=key, expect=201)
        return d["uuid"]

    def finished_session(self, key, workflow, status, vendor_data=None):
        body = {"workflow_id": workflow}
        if vendor_data:
            body["vendor_data"] = vendor_data
        _, d = self.http.req("POST", "/v3/session/", body, key=key, expect=201)
        sid = d["session_id"]
        if status:
            self.http.req("POST", "/sandbox/sessions/%s/complete" % sid,
                          {"status": status}, key=key, expect=200)
        return sid

    def finished_sessions(self, key, workflow, status, n, vendor_prefix="u",
                          threads=8):
        """@n finished sessions (vendor_data = prefix + index), in parallel;
        returns their ids in index order."""
        with concurrent.futures.ThreadPoolExecutor(threads) as ex:
            return list(ex.map(
                lambda i: self.finished_session(key, workflow, status,
                                                "%s%d" % (vendor_prefix, i)),
                range(n)))

    def decision(self, key, session_id, expect=200):
        return self.http.req("GET", "/v3/session/%s/decision/" % session_id,
                             key=key, expect=expect)[1]

    def delete_session(self, key, session_id):
        self.http.req("DELETE", "/v3/session/%s/delete/" % session_id,
                      key=key, expect=204)

    def share_token(self, key, session_id, for_app, ttl=None):
        """Mints a share token directly (no bridge): the raw JWT."""
        body = {"for_application_id": for_app}
        if ttl is not None:
            body["ttl_in_seconds"] = ttl
        _, d = self.http.req("POST", "/v3/session/%s/share/" % session_id,
                             body, key=key, expect=201)
        return d["share_token"]

    def sessions(self, key, **query):
        """Every session of @key's application (all pages) matching @query."""
        out, offset = [], 0
        while True:
            q = dict(query, limit=100, offset=offset)
            _, d = self.http.req("GET", "/v3/sessions/?" + urllib.parse.urlencode(q),
                                 key=key, expect=200)
            out += d["results"]
            if not d.get("next") or not d["results"]:
                return out
            offset += len(d["results"])

    def session_count(self, key, **query):
        q = dict(query, limit=1)
        _, d = self.http.req("GET", "/v3/sessions/?" + urllib.parse.urlencode(q),
                             key=key, expect=200)
        return d["count"]

    def set_rate_limits(self, per_minute):
        self.http.req("PUT", "/sandbox/rate-limits", {"per_minute": per_minute}, expect=200)

    def set_faults(self, path, latency_ms=0, error_rate=0.0, error_status=503):
        self.http.req("PUT", "/sandbox/faults",
                      {"path": path, "latency_ms": latency_ms,
                       "error_rate": error_rate, "error_status": error_status},
                      expect=200)

    def clear_faults(self):
        self.http.req("DELETE", "/sandbox/faults", expect=200)

    def set_clock(self, offset_s):
        self.http.req("PUT", "/sandbox/clock", {"offset_s": offset_s}, expect=200)

    def webhook_config(self, key):
        """GET /v3/webhook/ of @key's application (secret_shared_key...)."""
        return self.http.req("GET", "/v3/webhook/", key=key, expect=200)[1]

    def set_webhook(self, key, url=None, rotate=False):
        """PATCH /v3/webhook/: the delivery URL and/or a new secret;
        returns the config (with secret_shared_key)."""
        body = {"webhook_version": "v3"}
        if url is not None:
            body["webhook_url"] = url
        if rotate:
            body["rotate_secret_key"] = True
        return self.http.req("PATCH", "/v3/webhook/", body, key=key, expect=200)[1]

    def update_status(self, key, session_id, new_status, comment="test"):
        return self.http.req("PATCH", "/v3/session/%s/update-status/" % session_id,
                             {"new_status": new_status, "comment": comment},
                             key=key, expect=200)[1]

    def logtext(self):
        self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def log_counter(self, pattern):
        """A function returning how many log lines so far match regex
        @pattern (bytes); reads the log incrementally. Request lines need
        --log-level debug."""
        rx = re.compile(pattern)
        state = {"pos": 0, "n": 0, "tail": b""}

        def count():
            with open(self.logpath, "rb") as f:
                f.seek(state["pos"])
                data = f.read()
            state["pos"] += len(data)
            data = state["tail"] + data
            lines = data.split(b"\n")
            state["tail"] = lines.pop()
            state["n"] += sum(1 for l in lines if rx.search(l))
            return state["n"]
        return count

    def stop(self):
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self.log.closed:
            self.log.close()


def _read(path):
    try:
        with open(path) as f:
            s = f.read().strip()
        return s or None
    except FileNotFoundError:
        return None


# kcat output format: key, partition, offset, headers, value size, value,
# record separator. The size makes the parser independent of the bytes a
# value holds.
_KCAT_FMT = "%k\x1f%p\x1f%o\x1f%h\x1f%S\x1f%s\x1e"


class _RecordParser:
    """Incremental parser of kcat output in _KCAT_FMT."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            b = self.buf
            # skip stray separators/newlines between records
            i = 0
            while i < len(b) and b[i] in (0x0a, 0x1e):
                i += 1
            if i:
                del b[:i]
            pos, fields = 0, []
            for _ in range(5):
                j = b.find(b"\x1f", pos)
                if j < 0:
                    return out
                fields.append(bytes(b[pos:j]))
                pos = j + 1
            k, p, o, h, size = fields
            n = int(size) if size.strip().lstrip(b"-").isdigit() else -1
            need = max(n, 0)
            if len(b) < pos + need + 1:
                return out
            value = bytes(b[pos:pos + need]) if n >= 0 else b""
            if b[pos + need] != 0x1e:
                raise ValueError("kcat output out of step at offset %s" % o)
            del b[:pos + need + 1]
            out.append({"key": k.decode(errors="replace"),
                        "partition": int(p), "offset": int(o),
                        "headers": h.decode(errors="replace"),
                        "value": value})


class Follower:
    """Background consumer of one topic (all partitions, from the
    beginning): keeps every record, counts them. read_committed unless told
    otherwise. Stop it with stop()."""

    def __init__(self, bootstrap, topic, committed_only=True):
        self.topic = topic
        cmd = ["kcat", "-b", bootstrap, "-C", "-t", topic, "-q", "-u",
               "-f", _KCAT_FMT, "-o", "beginning",
               "-X", "fetch.wait.max.ms=50"]
        if committed_only:
            cmd += ["-X", "isolation.level=read_committed"]
        else:
            cmd += ["-X", "isolation.level=read_uncommitted"]
        self._lock = threading.Lock()
        self._recs = []
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        parser = _RecordParser()
        fd = self._proc.stdout.fileno()
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            recs = parser.feed(data)
            if recs:
                with self._lock:
                    self._recs += recs

    def count(self):
        with self._lock:
            return len(self._recs)

    def records(self):
        with self._lock:
            return list(self._recs)

    def stop(self):
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._thread.join(10)
        self._proc.stdout.close()


class Kafka:
    """The test broker started by scripts/kafka.sh (CTest fixture `kafka`)."""

    def __init__(self, bootstrap=None):
        if bootstrap is None:
            bootstrap = os.environ.get("KB_KAFKA_BOOTSTRAP")
        if not bootstrap:
            d = os.environ.get("KB_KAFKA_DIR")
            bootstrap = _read(os.path.join(d, "bootstrap")) if d else None
        if not bootstrap:
            raise RuntimeError("no Kafka: set KB_KAFKA_BOOTSTRAP or KB_KAFKA_DIR")
        self.bootstrap = bootstrap
        self.dir = os.environ.get("KB_KAFKA_DIR")

    def create_topics(self, specs):
        """specs: list of (name, partitions)."""
        if not self.dir:
            raise RuntimeError("KB_KAFKA_DIR is needed to create topics")
        args = ["%s:%d" % (n, p) for n, p in specs]
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "kafka.sh"), "topic",
                        self.dir] + args, check=True, timeout=120,
                       stdout=subprocess.DEVNULL)

    def produce(self, topic, records, partition=None):
        """records: list of (key, value-bytes-or-str). One kcat run. A key
        of None produces a record without a key. @partition pins them all to
        one partition (default: kcat's partitioner on the key)."""
        delim = b"\x1e"
        kd = b"\x1f"
        payload = bytearray()
        for k, v in records:
            if isinstance(v, str):
                v = v.encode()
            if isinstance(k, str):
                k = k.encode()
            if delim in v or kd in v or (k and (kd in k or delim in k)):
                raise ValueError("record contains a kcat delimiter")
            payload += (k or b"") + kd + v + delim
        cmd = ["kcat", "-b", self.bootstrap, "-P", "-t", topic,
               "-K", kd.decode(), "-D", delim.decode(),
               "-X", "enable.idempotence=true",
               "-X", "message.max.bytes=2000000"]
        if partition is not None:
            cmd += ["-p", str(partition)]
        subprocess.run(cmd, input=bytes(payload), check=True, timeout=120)

    def consume_all(self, topic, committed_only=True, timeout=60):
        """Every record of @topic (all partitions), up to the end. Returns a
        list of dicts {key, value, partition, offset, headers}."""
        cmd = ["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-e", "-q",
               "-f", _KCAT_FMT, "-o", "beginning"]
        if committed_only:
            cmd += ["-X", "isolation.level=read_committed"]
        else:
            cmd += ["-X", "isolation.level=read_uncommitted"]
        out = subprocess.run(cmd, check=True, timeout=timeout,
                             stdout=subprocess.PIPE).stdout
        return _RecordParser().feed(out)

    def follow(self, topic, committed_only=True):
        return Follower(self.bootstrap, topic, committed_only)

    def partitions(self, topic):
        r = subprocess.run(["kcat", "-b", self.bootstrap, "-L", "-J", "-t", topic],
                           check=True, timeout=30, stdout=subprocess.PIPE)
        for t in json.loads(r.stdout).get("topics", []):
            if t["topic"] == topic:
                return len(t["partitions"])
        return 0

    def topics(self, prefix=""):
        r = subprocess.run(["kcat", "-b", self.bootstrap, "-L", "-J"],
                           check=True, timeout=30, stdout=subprocess.PIPE)
        return sorted(t["topic"] for t in json.loads(r.stdout).get("topics", [])
                      if t["topic"].startswith(prefix))

    def segment_files(self, topic):
        """The broker's log segment files of @topic (raw bytes on disk);
        empty when the broker directory is not known."""
        if not self.dir:
            return []
        data = os.path.join(self.dir, "data")
        out = []
        try:
            names = os.listdir(data)
        except FileNotFoundError:
            return []
        for d in names:
            t, _, p = d.rpartition("-")
            if t == topic and p.isdigit():
                pd = os.path.join(data, d)
                out += [os.path.join(pd, f) for f in sorted(os.listdir(pd))
                        if f.endswith(".log")]
        return out


# A JWT as the vendor mints it: base64url header "{"..." and payload "{"...",
# then a signature. A sealed envelope (base64url, no dots) can contain "eyJ"
# by chance, never this.
_JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{10,}")


def find_tokens(data):
    """JWT-looking strings in @data (bytes or str)."""
    if isinstance(data, str):
        data = data.encode()
    return [m.group(0) for m in _JWT_RE.finditer(data)]


def strip_sealed(value):
    """@value (bytes) with the "sealed" member of a JSON envelope removed:
    what is left must not contain "eyJ" at all. A dead letter's kept input
    (member "input": base64 key and value, schemas/dead-letter.schema.json)
    is decoded and stripped the same way, so the input it keeps is scanned
    as the input itself would be (its base64 of a JSON document always
    starts with "eyJ"); an input that does not decode is left as it is,
    and then fails the scan. Non-JSON is returned as is."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return value
    if not isinstance(doc, dict):
        return value
    changed = False
    if "sealed" in doc:
        doc = dict(doc)
        doc.pop("sealed")
        changed = True
    inp = doc.get("input")
    if (doc.get("format") == "kyc-bridge-dead-letter/1"
            and isinstance(inp, dict)):
        try:
            plain = dict(inp)
            for k in ("key", "value"):
                if plain.get(k) is not None:
                    raw = base64.b64decode(plain[k], validate=True)
                    plain[k] = strip_sealed(raw).decode("utf-8", "replace")
            doc = dict(doc)
            doc["input"] = plain
            changed = True
        except (ValueError, TypeError):
            pass
    return json.dumps(doc).encode() if changed else value


def wh_canonical(payload):
    """The vendor's canonical JSON (API-CONTRACT.md "Webhooks"): its own
    sample, whole floats as integers, sorted keys, raw UTF-8."""
    def fix(v):
        if isinstance(v, float) and v == int(v):
            return int(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v
    return json.dumps(fix(payload), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def wh_sign_v2(secret, timestamp, payload):
    """X-Signature-V2 of @payload (a dict) at @timestamp."""
    msg = "%s:%s" % (timestamp, wh_canonical(payload))
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def wh_sign_simple(secret, timestamp, session_id, status, webhook_type):
    msg = "%s:%s:%s:%s" % (timestamp, session_id, status, webhook_type)
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def wh_headers(secret, payload, timestamp=None, v2=True, simple=True):
    """Signed delivery headers for @payload; @timestamp defaults to the
    payload's own."""
    ts = str(payload["timestamp"] if timestamp is None else timestamp)
    hd = {"Content-Type": "application/json", "X-Timestamp": ts}
    if v2:
        hd["X-Signature-V2"] = wh_sign_v2(secret, ts, payload)
    if simple:
        hd["X-Signature-Simple"] = wh_sign_simple(
            secret, ts, payload["session_id"], payload["status"],
            payload["webhook_type"])
    return hd


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class WebhookProxy:
    """A loopback HTTP server that forwards every POST to @target (a
    base URL) and records the delivery and the answer: {"path", "headers"
    (lower-case names), "body" (bytes), "status", "answer" (bytes),
    "answer_headers", "t"}. What the vendor sent can be sent again with
    post()."""

    def __init__(self, target, timeout=30):
        self.target = Http(target, timeout=timeout)
        self.lock = threading.Lock()
        self.recs = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                fwd = {k: v for k, v in self.headers.items()
                       if k.lower() in ("content-type", "x-timestamp",
                                        "x-signature-v2", "x-signature-simple")}
                try:
                    st, ah, ans = proxy.target.raw("POST", self.path, body,
                                                   headers=fwd)
                except OSError as e:
                    st, ah, ans = 502, {}, json.dumps({"detail": str(e)}).encode()
                with proxy.lock:
                    proxy.recs.append({"path": self.path, "headers": hdrs,
                                       "body": body, "status": st, "answer": ans,
                                       "answer_headers": ah, "t": time.monotonic()})
                self.send_response(st)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(ans)))
                if "retry-after" in ah:
                    self.send_header("Retry-After", ah["retry-after"])
                self.end_headers()
                self.wfile.write(ans)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def records(self, session_id=None, status=None):
        """Recorded deliveries, optionally of one session / status."""
        with self.lock:
            recs = list(self.recs)
        out = []
        for r in recs:
            try:
                p = json.loads(r["body"])
            except ValueError:
                p = {}
            if session_id and p.get("session_id") != session_id:
                continue
            if status and p.get("status") != status:
                continue
            out.append(dict(r, payload=p))
        return out

    def wait(self, session_id, status, timeout=30, answered=None):
        """The first recorded delivery for @session_id/@status (answered
        @answered, when given)."""
        def pred():
            for r in self.records(session_id, status):
                if answered is None or r["status"] == answered:
                    return r
            return None
        return wait_for(pred, timeout, "a delivery for %s/%s%s" % (
            session_id, status, "" if answered is None else " answered %d" % answered), 0.05)

    def post(self, path, body, headers):
        """Sends a delivery straight to the target; (status, headers, body)."""
        return self.target.raw("POST", path, body, headers=headers)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.target.close()


class PrivateBroker:
    """A broker of the test's own (scripts/kafka.sh start @dir), for tests
    that must stop it without disturbing the shared one: pause() stops the
    JVM with SIGSTOP (clients see a broker that does not answer), resume()
    lets it go on; stop() always ends it, also when paused."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        sh = os.path.join(ROOT, "scripts", "kafka.sh")
        r = subprocess.run(["bash", sh, "start", dir], stdout=subprocess.PIPE,
                           timeout=300)
        if r.returncode != 0:
            raise RuntimeError("kafka.sh start %s failed (%d); see %s/logs"
                               % (dir, r.returncode, dir))
        self.bootstrap = _read(os.path.join(dir, "bootstrap"))
        self.pid = int(_read(os.path.join(dir, "kafka.pid")))
        self.paused = False

    def kafka(self):
        """A Kafka helper on this broker."""
        k = Kafka(self.bootstrap)
        k.dir = self.dir
        return k

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.paused = False
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "kafka.sh"), "stop",
                        self.dir], timeout=120, stdout=subprocess.DEVNULL)

    def restart(self):
        """Starts the stopped broker again (scripts/kafka.sh restart): the
        same ports and data, so clients find it where it was."""
        sh = os.path.join(ROOT, "scripts", "kafka.sh")
        r = subprocess.run(["bash", sh, "restart", self.dir], stdout=subprocess.PIPE,
                           timeout=300)
        if r.returncode != 0:
            raise RuntimeError("kafka.sh restart %s failed (%d); see %s/logs"
                               % (self.dir, r.returncode, self.dir))
        boot = _read(os.path.join(self.dir, "bootstrap"))
        if boot != self.bootstrap:
            raise RuntimeError("the broker came back at %s, not %s" % (boot, self.bootstrap))
        self.pid = int(_read(os.path.join(self.dir, "kafka.pid")))


# ---------------------------------------------------------------- /metrics

PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Label values no metric may carry: a UUID (session, application or share
# id), a JWT, a trace id or other long hex, a key-sized base64url blob.
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LONG_HEX_RE = re.compile(r"[0-9a-fA-F]{24,}")
_BLOB_RE = re.compile(r"[A-Za-z0-9_-]{40,}")


def _blob(v):
    """A base64url run of key size with mixed case and digits (metric
    names, lower-case, are not)."""
    return any(re.search(r"[a-z]", b) and re.search(r"[A-Z]", b) and
               re.search(r"[0-9]", b) for b in _BLOB_RE.findall(v))


class MetricsError(AssertionError):
    """/metrics did not answer 200 with the exposition format, or the text
    did not parse: always a test failure (an AssertionError), never a
    skip."""


class Metrics:
    """One scrape of /metrics, parsed with prometheus_client's text parser
    (python3-prometheus-client). Sample names are the exposition's own
    (counters keep their _total, histograms have _bucket/_sum/_count).

      text                  the exposition as served
      families              {family name: prometheus_client Metric} (the
                            parser names a counter family without _total)
      get(name, **labels)   the value of the sample with exactly these
                            labels, else None
      total(name, **labels) sum of the samples of @name whose labels
                            include @labels (0.0 when none)
      samples(name, **labels)  [(labels dict, value)] of those samples
      type_of(name)         the family type of sample @name ("counter"...)
    """

    def __init__(self, text):
        from prometheus_client.parser import text_string_to_metric_families
        self.text = text
        self.families = {}
        self._by_name = {}
        self._type = {}
        try:
            fams = list(text_string_to_metric_families(text))
        except Exception as e:  # noqa: BLE001 -- any parse error fails
            raise MetricsError("/metrics does not parse (%s: %s); text begins:\n%s"
                               % (type(e).__name__, e, text[:1500])) from None
        for f in fams:
            if f.name in self.families:
                raise MetricsError("family %s appears twice in /metrics" % f.name)
            self.families[f.name] = f
            for sm in f.samples:
                key = tuple(sorted(sm.labels.items()))
                per = self._by_name.setdefault(sm.name, {})
                if key in per:
                    raise MetricsError("sample %s%r twice in /metrics" % (sm.name, key))
                per[key] = sm.value
                self._type[sm.name] = f.type

    def get(self, name, default=None, **labels):
        return self._by_name.get(name, {}).get(tuple(sorted(labels.items())), default)

    def samples(self, name, **labels):
        want = set(labels.items())
        return [(dict(k), v) for k, v in self._by_name.get(name, {}).items()
                if want <= set(k)]

    def total(self, name, **labels):
        return float(sum(v for _, v in self.samples(name, **labels)))

    def names(self):
        return set(self._by_name)

    def type_of(self, name):
        """The type of the family of sample or family @name (a family with
        no samples yet too), else None."""
        if name in self._type:
            return self._type[name]
        f = self.families.get(name)
        if f is None and name.endswith("_total"):
            f = self.families.get(name[:-6])
            if f is not None and f.type != "counter":
                f = None
        return f.type if f is not None else None


def parse_metrics(text):
    """Parses exposition @text (str) into Metrics; MetricsError when it
    does not parse."""
    return Metrics(text)


def scrape_metrics(port, host="127.0.0.1", path="/metrics", timeout=5,
                   optional=False):
    """GET http://@host:@port@path, checked (200, the 0.0.4 content type)
    and parsed (Metrics). Raises MetricsError when it is refused, answers
    anything else or does not parse; with @optional, a 404 gives None (a
    process without /metrics)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        st, ct = r.status, r.getheader("Content-Type")
    except (OSError, http.client.HTTPException) as e:
        raise MetricsError("GET %s:%d%s: %s" % (host, port, path, e)) from None
    finally:
        c.close()
    if st == 404 and optional:
        return None
    if st != 200:
        raise MetricsError("GET %s:%d%s -> %d: %r" % (host, port, path, st, body[:300]))
    if ct != PROM_CONTENT_TYPE:
        raise MetricsError("GET %s:%d%s: Content-Type %r, want %r"
                           % (host, port, path, ct, PROM_CONTENT_TYPE))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MetricsError("/metrics is not UTF-8: %s" % e) from None
    return Metrics(text)


def metrics_convention_problems(m, prefix="kyc_bridge_",
                                exempt=("process_start_time_seconds",)):
    """What prometheus_client's (lax) parser lets through, for Metrics @m:
    every family has a HELP and a TYPE line (a sample outside its typed
    family comes out as an "untyped" family), one @prefix on every family
    but @exempt, counters end in _total, histograms in a unit (_seconds or
    a count), buckets cumulative with +Inf equal to _count, and no label
    value that looks unbounded or personal (a UUID, a JWT, long hex such
    as a trace id, a key-sized base64url blob, a newline). Returns a list
    of problems."""
    p = []
    helps, types = {}, {}
    for line in m.text.split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not parts[3].strip():
                p.append("empty %s line: %r" % (parts[1], line))
                continue
            (helps if parts[1] == "HELP" else types)[parts[2]] = parts[3]
    for name, f in m.families.items():
        exp = name + "_total" if f.type == "counter" else name
        if f.type in ("untyped", "unknown"):
            p.append("family %s has no TYPE line (or a sample outside its "
                     "family)" % exp)
        if exp not in helps:
            p.append("family %s has no HELP line" % exp)
        if exp not in types:
            p.append("family %s has no TYPE line" % exp)
        if f.type == "counter" and exp not in types:
            p.append("counter %s does not end in _total" % exp)
        if name not in exempt and not name.startswith(prefix):
            p.append("family %s lacks the %s prefix" % (exp, prefix))
        if name.startswith(prefix + prefix):
            p.append("family %s has the prefix twice" % exp)
        if f.type != "counter" and exp.endswith("_total"):
            p.append("%s %s ends in _total" % (f.type, exp))
        for sm in f.samples:
            for k, v in sm.labels.items():
                if k == "le" and f.type == "histogram":
                    continue
                if (_UUID_RE.search(v) or "eyJ" in v or _LONG_HEX_RE.search(v)
                        or _blob(v) or "\n" in v or len(v) > 128):
                    p.append("%s{%s=%r}: label value looks unbounded or "
                             "personal" % (sm.name, k, v))
        if f.type == "histogram":
            series = {}
            for sm in f.samples:
                rest = tuple(sorted((k, v) for k, v in sm.labels.items() if k != "le"))
                series.setdefault(rest, {"b": []})
                if sm.name.endswith("_bucket"):
                    series[rest]["b"].append((float(sm.labels["le"]), sm.value))
                elif sm.name.endswith("_count"):
                    series[rest]["count"] = sm.value
            for rest, d in series.items():
                b = sorted(d["b"])
                if not b or b[-1][0] != float("inf"):
                    p.append("histogram %s%r has no +Inf bucket" % (name, rest))
                    continue
                if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                    p.append("histogram %s%r: buckets not cumulative" % (name, rest))
                if d.get("count") != b[-1][1]:
                    p.append("histogram %s%r: +Inf bucket %s != _count %s"
                             % (name, rest, b[-1][1], d.get("count")))
    return p


def metrics_leaks(text, canaries):
    """Which of @canaries (strings: API keys, secret keys, webhook secrets,
    share ids, tokens) appear in /metrics @text, and any JWT-looking or
    "eyJ" text at all; a list of findings."""
    out = []
    if "eyJ" in text:
        i = text.find("eyJ")
        out.append("/metrics contains 'eyJ': %r" % text[max(0, i - 60):i + 40])
    for c in canaries:
        if c and c in text:
            i = text.find(c)
            out.append("/metrics holds a canary secret (%s...): %r"
                       % (c[:6], text[max(0, i - 60):i]))
    return out


def secret_key_values(path):
    """The secret_key= values of a kyc-bridge secret key file (canaries)."""
    try:
        with open(path) as f:
            return [l.split("=", 1)[1].strip() for l in f
                    if l.startswith("secret_key=")]
    except FileNotFoundError:
        return []


class Keys:
    def __init__(self, workdir, name):
        d = os.path.join(workdir, "keys")
        os.makedirs(d, exist_ok=True)
        subprocess.run([kb_bin(), "keygen", "--out-dir", d, "--name", name],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        self.box = os.path.join(d, name + ".box.key")
        self.sign = os.path.join(d, name + ".sign.key")
        self.pub = os.path.join(d, name + ".pub.json")


def write_conf(path, entries):
    with open(path, "w") as f:
        f.write("# generated by the test harness\n")
        for k, v in entries.items():
            f.write("%s = %s\n" % (k, v))
    return path


def _conf_value(path, key):
    """The value of @key in a `key = value` config file, else None."""
    try:
        with open(path) as f:
            for line in f:
                k, eq, v = line.partition("=")
                if eq and k.strip() == key:
                    return v.strip() or None
    except (FileNotFoundError, TypeError):
        pass
    return None


def conf_line(path, key):
    """1-based line number of @key in a config file written by write_conf."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.split("=", 1)[0].strip() == key:
                return n
    raise KeyError(key)


class Daemon:
    """A kyc-bridge issuer or importer process."""

    def __init__(self, workdir, role, conf, name=None, env=None, args=None,
                 prefix=None):
        """@prefix: the command to start it under (a list), instead of
        KB_BIN_WRAPPER's."""
        self.role = role
        self.prefix = prefix
        self.conf = conf
        self.name = name or role
        self.args = list(args or [])
        self.logpath = os.path.join(workdir, self.name + ".log")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.log = None
        self.starts = 0
        # metrics.listen of the config (port 0: found in the log); every
        # /metrics text scraped, for the leak scan (token_leaks)
        self.metrics_listen = _conf_value(conf, "metrics.listen")
        self.metrics_texts = []
        self.stop_note = ""    # how the last stop() ended (for reports)
        self.start()

    def start(self):
        """Starts (or restarts, same config) the process; output is appended
        to the same log file."""
        if self.proc and self.proc.poll() is None:
            raise RuntimeError("%s is still running" % self.name)
        if self.log and not self.log.closed:
            self.log.close()
        self.log = open(self.logpath, "ab")
        self.log.write(("==== start %d of %s\n" % (self.starts + 1, self.name)).encode())
        self.log.flush()
        self.proc = subprocess.Popen((self.prefix if self.prefix is not None
                                      else kb_run_prefix()) +
                                     [kb_bin(), self.role, "-c", self.conf] + self.args,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        self.starts += 1

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the process and waits for it (SIGKILL after @timeout).
        Returns the exit status (negative: killed by that signal). With
        metrics.listen set, a clean stop (SIGTERM) first keeps one last
        /metrics text for the leak scan (a failed scrape is not an error
        here: the scan parses what it keeps)."""
        self.stop_note = ""
        if self.proc and self.proc.poll() is None:
            if sig == signal.SIGTERM and self.metrics_listen:
                self._keep_last_metrics()
            t0 = time.monotonic()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
                self.stop_note = "ended %.1f s after signal %d" % (
                    time.monotonic() - t0, sig)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.stop_note = "SIGKILLed by the harness: still running %.0f s " \
                    "after signal %d" % (timeout, sig)
        if self.log and not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL, 30)

    def metrics_port(self, timeout=30):
        """The port of this run's metrics.listen server (the ops log line
        "listening on ADDR (port N)"; waits for it up to @timeout s)."""
        if not self.metrics_listen:
            raise RuntimeError("%s: no metrics.listen in %s" % (self.name, self.conf))
        host, _, port = self.metrics_listen.rpartition(":")
        if port != "0":
            return int(port)
        rx = re.compile(r"%s-ops.*listening on \S+ \(port (\d+)\)" % re.escape(self.role))

        def pred():
            t = self.logtext().split("==== start %d of " % self.starts)[-1]
            m = rx.search(t)
            if not m and not self.alive():
                raise AssertionError("%s exited before its metrics server "
                                     "listened:\n%s" % (self.name, t[-2000:]))
            return int(m.group(1)) if m else None
        return wait_for(pred, timeout, "%s's metrics port" % self.name, 0.05)

    def metrics_host(self):
        host = self.metrics_listen.rpartition(":")[0].strip("[]")
        return host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"

    def scrape(self, timeout=5):
        """GET /metrics of this daemon, parsed (Metrics); MetricsError when
        refused or not parseable. The text is kept for the leak scan."""
        m = scrape_metrics(self.metrics_port(), self.metrics_host(), timeout=timeout)
        self.metrics_texts.append(m.text)
        return m

    def _keep_last_metrics(self):
        try:
            port = self.metrics_port(timeout=0.5)
            c = http.client.HTTPConnection(self.metrics_host(), port, timeout=2)
            try:
                c.request("GET", "/metrics")
                r = c.getresponse()
                body = r.read()
                if r.status == 200:
                    self.metrics_texts.append(body.decode("utf-8", "replace"))
            finally:
                c.close()
        except (OSError, http.client.HTTPException, TimeoutError, AssertionError):
            pass

    def wait(self, timeout):
        """Waits for the process to exit by itself; its status."""
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is not None and self.log and not self.log.closed:
                self.log.close()

    def alive(self):
        return self.proc.poll() is None

    def logtext(self):
        if self.log and not self.log.closed:
            self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout, count=1, after=0):
        """Waits until regex @pattern matched @count times in the log text
        from character @after on; returns the last match."""
        rx = re.compile(pattern)

        def pred():
            ms = list(rx.finditer(self.logtext(), after))
            if not self.alive() and len(ms) < count:
                raise AssertionError("%s exited (%s) before logging %r:\n%s"
                                     % (self.name, self.proc.returncode, pattern,
                                        self.logtext()[-3000:]))
            return ms[count - 1] if len(ms) >= count else None
        return wait_for(pred, timeout, "%s to log %r" % (self.name, pattern), 0.1)

    def last_stats(self):
        """The counters of the last stats line (the one logged at stop), as
        a dict, e.g. {"consumed": 20, "imported": 19, "dead-lettered": 1,
        "other partners'": 4, "in flight": 0, ...}; {} when none yet."""
        rx = re.compile(r"%s: (consumed \d+, .*)$" % self.role)
        last = None
        for line in self.logtext().splitlines():
            m = rx.search(line)
            if m:
                last = m.group(1)
        if last is None:
            return {}
        return {k.strip(): int(v) for k, v in
                re.findall(r"([a-zA-Z][a-zA-Z' -]*?) (\d+)", last.replace("(", ""))}


def run_cli(args, timeout=60, env=None, input=None):
    """Runs `kyc-bridge ARGS`; returns (exit status, stdout bytes, stderr
    text)."""
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([kb_bin()] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=e,
                       input=input)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def forge(sign, to, issuer, for_app, share_id, session, token, kind="user",
          expires_at=None, vendor_data=None):
    """kb_forge: an envelope (bytes) sealed to bundle @to, signed with
    secret key file @sign, carrying @token and the given fields."""
    cmd = [kb_forge(), "--sign", sign, "--to", to, "--issuer", issuer,
           "--for", for_app, "--share-id", share_id, "--session", session,
           "--kind", kind, "--token", token]
    if expires_at is not None:
        cmd += ["--expires-at", str(int(expires_at))]
    if vendor_data is not None:
        cmd += ["--vendor-data", vendor_data]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("kb_forge failed (%d): %s" % (r.returncode, r.stderr.decode()))
    return r.stdout


def topic_names(prefix):
    return {
        "requests": prefix + ".requests",
        "tokens": prefix + ".tokens",
        "issuer_dlq": prefix + ".issuer-dlq",
        "state": prefix + ".issuer-state",
        "imported": prefix + ".imported",
        "importer_dlq": prefix + ".importer-dlq",
        "importer_state": prefix + ".importer-state",
    }


def new_workdir(tag):
    base = os.environ.get("KB_TEST_TMP") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix="kb-%s-" % tag, dir=base)
    return d


def share_request(session_id, for_app, share_id=None, ttl=None, vendor_data=None):
    r = {"share_id": share_id or str(uuid.uuid4()), "session_id": session_id,
         "for_application_id": for_app}
    if ttl is not None:
        r["ttl_in_seconds"] = ttl
    if vendor_data is not None:
        r["vendor_data"] = vendor_data
    return r
