"""kbharness.py -- test tooling: drive kyc-bridge, the sandbox and a real Kafka.

Python 3 stdlib only. Used by the black-box suites (test_pipeline.py) and by
bench/e2e.py. Every process it starts listens on loopback, and every wait is
bounded.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def kb_bin():
    b = os.environ.get("KB_BIN")
    if not b:
        raise RuntimeError("KB_BIN (path of the kyc-bridge binary) is not set")
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
    """Minimal JSON client for the sandbox (urllib, keep it simple)."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def req(self, method, path, body=None, key=None, expect=None):
        data = None if body is None else json.dumps(body).encode()
        r = urllib.request.Request(self.base + path, data=data, method=method)
        r.add_header("Content-Type", "application/json")
        if key:
            r.add_header("x-api-key", key)
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        doc = json.loads(raw) if raw else None
        if expect is not None and status != expect:
            raise AssertionError("%s %s -> %d (want %d): %s"
                                 % (method, path, status, expect, raw[:300]))
        return status, doc


class Sandbox:
    def __init__(self, workdir, seed=7):
        self.workdir = workdir
        portfile = os.path.join(workdir, "sandbox.port")
        self.log = open(os.path.join(workdir, "sandbox.log"), "wb")
        self.proc = subprocess.Popen(
            [kb_bin(), "sandbox", "--listen", "127.0.0.1:0", "--port-file",
             portfile, "--seed", str(seed), "--webhook-backoff-ms", "100"],
            stdout=self.log, stderr=subprocess.STDOUT)
        port = wait_for(lambda: _read(portfile), 20, "sandbox port file")
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

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def _read(path):
    try:
        with open(path) as f:
            s = f.read().strip()
        return s or None
    except FileNotFoundError:
        return None


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

    def produce(self, topic, records):
        """records: list of (key, value-bytes-or-str). One kcat run."""
        delim = b"\x1e"
        kd = b"\x1f"
        payload = b""
        for k, v in records:
            if isinstance(v, str):
                v = v.encode()
            if isinstance(k, str):
                k = k.encode()
            if delim in v or kd in v or (k and (kd in k or delim in k)):
                raise ValueError("record contains a kcat delimiter")
            payload += (k or b"") + kd + v + delim
        subprocess.run(["kcat", "-b", self.bootstrap, "-P", "-t", topic,
                        "-K", kd.decode(), "-D", delim.decode(),
                        "-X", "enable.idempotence=true"],
                       input=payload, check=True, timeout=60)

    def consume_all(self, topic, committed_only=True, timeout=30):
        """Every record of @topic (all partitions), up to the end. Returns a
        list of dicts {key, value, partition, offset, headers}."""
        fmt = "%k\x1f%p\x1f%o\x1f%h\x1f%S\x1f%s\x1e"
        cmd = ["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-e", "-q",
               "-f", fmt, "-o", "beginning"]
        if committed_only:
            cmd += ["-X", "isolation.level=read_committed"]
        out = subprocess.run(cmd, check=True, timeout=timeout,
                             stdout=subprocess.PIPE).stdout
        recs = []
        for raw in out.split(b"\x1e"):
            if not raw.strip(b"\n"):
                continue
            raw = raw.lstrip(b"\n")
            k, p, o, h, size, rest = raw.split(b"\x1f", 5)
            n = int(size) if size.strip().lstrip(b"-").isdigit() else -1
            value = rest[:n] if n >= 0 else b""
            recs.append({"key": k.decode(errors="replace"),
                         "partition": int(p), "offset": int(o),
                         "headers": h.decode(errors="replace"),
                         "value": value})
        return recs


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


class Daemon:
    """A kyc-bridge issuer or importer process."""

    def __init__(self, workdir, role, conf, name=None, env=None):
        self.role = role
        self.conf = conf
        self.name = name or role
        self.logpath = os.path.join(workdir, self.name + ".log")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([kb_bin(), self.role, "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode

    def alive(self):
        return self.proc.poll() is None

    def logtext(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")


def topic_names(prefix):
    return {
        "requests": prefix + ".requests",
        "tokens": prefix + ".tokens",
        "issuer_dlq": prefix + ".issuer-dlq",
        "state": prefix + ".issuer-state",
        "imported": prefix + ".imported",
        "importer_dlq": prefix + ".importer-dlq",
    }


def new_workdir(tag):
    base = os.environ.get("KB_TEST_TMP") or tempfile.gettempdir()
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
