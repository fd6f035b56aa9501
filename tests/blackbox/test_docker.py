#!/usr/bin/env python3
"""test_docker.py -- the docker-compose topology, for real (issue 11).

Starts a dockerd of its own (scripts/docker-env.sh: data root under the
build directory, no iptables, ports on 127.0.0.1 only), makes the Debian
base images from Debian's packages, builds Compose v2, every image of the
topology (the offline Kafka stand-in selected by
docker/docker-compose.offline.yml), runs `docker compose up` of the whole
topology and checks from outside the containers:

- every service reached healthy, or completed with exit 0;
- the watch consumer (read_committed) shows every share-job request exactly
  once on the imported-sessions topic, the rule's share, the status update,
  and the dead-letter example with its reason;
- secrets (the keygen job's secret keys, the API keys) live in their volumes
  and in no image layer;
- every container runs as a non-root user;
- a second `up` after `down` (without -v) resumes: new shares imported once,
  none of the first run's again;
- `down -v` leaves no container, volume or network of the project.

Environment: KB_BUILD_DIR (the build tree; the engine lives in
KB_BUILD_DIR/docker-test), KB_DOCKER_CACHE (caches reused across runs).
Where dockerd cannot run, the test fails and says so: it never skips.
"""
import base64
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
ENV_SH = os.path.join(SRC, "scripts", "docker-env.sh")
COMPOSE = [os.path.join(SRC, "docker", "docker-compose.yml"),
           os.path.join(SRC, "docker", "docker-compose.offline.yml")]
UP_TIMEOUT_S = 420
SHARE_COUNT = 6


def log(msg):
    sys.stderr.write("[docker] %s\n" % msg)
    sys.stderr.flush()


class Engine:
    """Our own dockerd under @root, driven through docker-env.sh."""

    def __init__(self, root):
        self.root = root
        self.env = None

    def sh(self, *args, timeout=1800, check=True):
        t0 = time.monotonic()
        r = subprocess.run([ENV_SH] + list(args), capture_output=True, text=True,
                           timeout=timeout)
        log("docker-env.sh %s: exit %d in %.1f s" % (" ".join(args), r.returncode,
                                                    time.monotonic() - t0))
        if check and r.returncode != 0:
            raise AssertionError("docker-env.sh %s failed (exit %d):\n%s\n%s" % (
                " ".join(args), r.returncode, r.stdout[-4000:], r.stderr[-4000:]))
        return r

    def start(self):
        r = self.sh("dockerd", "start", self.root, check=False, timeout=300)
        if r.returncode != 0:
            raise AssertionError(
                "THIS MACHINE CANNOT RUN THE DOCKER TESTS: dockerd did not start "
                "(exit %d):\n%s\n%s" % (r.returncode, r.stdout[-2000:], r.stderr[-4000:]))
        env = dict(os.environ)
        out = self.sh("env", self.root).stdout
        for line in out.splitlines():
            m = re.match(r"^(?:export )?([A-Z_]+)=(.*)$", line.strip())
            if m:
                # shell words: quotes removed, $PATH and the like expanded
                words = shlex.split(m.group(2))
                v = os.path.expandvars(words[0]) if words else ""
                env[m.group(1)] = v
        self.env = env
        # the engine is the test's own: whatever an earlier run killed
        # midway left in it (its restart policies bring containers back
        # at every start) goes first
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            log("removing %d container(s) an earlier run left" % len(ids))
            self.docker("rm", "-f", *ids, timeout=300)
        self.docker("volume", "prune", "-f")
        self.docker("network", "prune", "-f")

    def stop(self):
        return self.sh("dockerd", "stop", self.root, check=False, timeout=300).returncode

    def docker(self, *args, timeout=600, check=True, input=None):
        r = subprocess.run([self.env.get("KB_DOCKER", "docker")] + list(args),
                           capture_output=True, text=input is None or isinstance(input, str),
                           env=self.env, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("docker %s failed (exit %d):\n%s\n%s" % (
                " ".join(args), r.returncode, r.stdout[-4000:] if isinstance(r.stdout, str)
                else "", r.stderr[-4000:] if isinstance(r.stderr, str) else ""))
        return r


# The test publishes nothing on the host (other tests, or a developer's
# own sandbox or Kafka, may hold 8480 or 29092): it checks through the
# engine (logs, inspect, run).
NO_PORTS = """services:
  kafka:
    ports: !reset []
  sandbox:
    ports: !reset []
"""


class Project:
    def __init__(self, engine, name, workdir):
        self.e = engine
        self.name = name
        self.files = list(COMPOSE) + [os.path.join(workdir, "no-ports.yml")]
        with open(self.files[-1], "w") as fh:
            fh.write(NO_PORTS)

    def compose(self, *args, timeout=900, check=True):
        files = []
        for f in self.files:
            files += ["-f", f]
        return self.e.docker("compose", "-p", self.name, *files, *args,
                             timeout=timeout, check=check)

    def ps(self):
        out = self.compose("ps", "-a", "--format", "json").stdout.strip()
        if not out:
            return []
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def logs(self, service):
        return self.compose("logs", "--no-color", "--no-log-prefix", service).stdout


def service_state(c):
    return c.get("Service"), c.get("State"), c.get("Health", ""), c.get("ExitCode")


class TestDockerCompose(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        build = os.environ.get("KB_BUILD_DIR") or os.path.join(SRC, "build")
        cls.engine = Engine(os.path.join(build, "docker-test"))
        cls.engine.start()
        try:
            cls.engine.sh("base-images", cls.engine.root)
            cls.engine.sh("compose-plugin")
            t0 = time.monotonic()
            cls.engine.sh("images", cls.engine.root)
            log("images built in %.1f s" % (time.monotonic() - t0))
        except BaseException:
            cls.engine.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.engine.stop() != 0:
            raise AssertionError("our dockerd did not stop cleanly (docker-env.sh "
                                 "dockerd stop %s)" % cls.engine.root)

    def wait_done(self, p, one_shots, daemons, timeout=UP_TIMEOUT_S):
        """Until every one-shot in @one_shots exited and every daemon in
        @daemons is healthy; fails on a one-shot that exited non-zero."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            st = {c["Service"]: c for c in p.ps()}
            last = st
            bad = [s for s in one_shots if s in st and st[s].get("State") == "exited"
                   and st[s].get("ExitCode") not in (0, None)]
            if bad:
                self.fail("one-shot service(s) failed: %s\n%s" % (
                    bad, "\n".join(p.logs(s)[-3000:] for s in bad)))
            done = all(s in st and st[s].get("State") == "exited" for s in one_shots)
            healthy = all(s in st and st[s].get("Health") == "healthy" for s in daemons)
            if done and healthy:
                return st
            time.sleep(3)
        self.fail("topology not done within %d s: %s" % (
            timeout, [service_state(c) for c in (last or {}).values()]))

    def watch_records(self, p):
        """The watch service's lines as (topic, key, doc)."""
        recs = []
        for line in p.logs("watch").splitlines():
            m = re.match(r"^(kyc-bridge\.[a-z-]+)\s+(\S*)\t(\{.*\})\s*$", line)
            if m:
                recs.append((m.group(1), m.group(2), json.loads(m.group(3))))
        return recs

    def shares_of(self, p):
        """The share-job's requests: [(share_id, status label)], and the
        rule's vendor_data."""
        shares, rule_vd = [], None
        for line in p.logs("share-job").splitlines():
            f = line.split()
            if len(f) >= 5 and f[0] == "share":
                shares.append((f[1], f[3]))
            elif len(f) >= 5 and f[0] == "rule":
                rule_vd = f[4]
        return shares, rule_vd

    def wait_watch(self, p, pred, timeout=120):
        deadline = time.monotonic() + timeout
        recs = []
        while time.monotonic() < deadline:
            recs = self.watch_records(p)
            if pred(recs):
                return recs
            time.sleep(2)
        return recs

    def check_run(self, p, shares, rule_vds, seen_before=()):
        """Every share of @shares imported exactly once (or dead-lettered),
        each rule share once; nothing of @seen_before imported again."""
        finished = [s for s, label in shares if label != "Not_Started"]
        unfinished = [s for s, label in shares if label == "Not_Started"]
        self.assertEqual(len(unfinished), len(shares) // (SHARE_COUNT + 1))

        def complete(recs):
            imp = [d["share_id"] for t, _, d in recs if t == "kyc-bridge.imported-sessions"]
            return all(s in imp for s in finished) and \
                sum(1 for x in imp if x.startswith("wh-")) >= len(rule_vds)

        recs = self.wait_watch(p, complete)
        # then until nothing more comes for 15 s: a duplicate arriving
        # after the last expected record must be seen too
        stable_since, n = time.monotonic(), len(recs)
        deadline = time.monotonic() + 120
        while time.monotonic() - stable_since < 15 and time.monotonic() < deadline:
            time.sleep(3)
            recs = self.watch_records(p)
            if len(recs) != n:
                stable_since, n = time.monotonic(), len(recs)
        imported = [d for t, _, d in recs if t == "kyc-bridge.imported-sessions"]
        ids = [d["share_id"] for d in imported]
        for s in finished:
            self.assertEqual(ids.count(s), 1, "share %s imported %d times" % (s, ids.count(s)))
        for s in seen_before:
            self.assertLessEqual(ids.count(s), 1, "share %s imported again" % s)
        self.assertEqual(len(ids), len(set(ids)), "a share imported twice: %s" % ids)
        rule = [d for d in imported if d["share_id"].startswith("wh-")]
        self.assertEqual(sorted(d["vendor_data"] for d in rule), sorted(rule_vds))
        dl = [d for t, _, d in recs if t == "kyc-bridge.issuer-dlq"]
        for s in unfinished:
            got = [d for d in dl if d.get("share_id") == s]
            self.assertEqual(len(got), 1, "dead letter of %s: %s" % (s, got))
            self.assertEqual(got[0]["reason"], "session_not_finished")
        return recs

    def test_topology(self):
        e = self.engine
        name = "kbtest%d" % os.getpid()
        with tempfile.TemporaryDirectory() as work:
            p = Project(e, name, work)
            try:
                self.run_topology(p)
            finally:
                p.compose("down", "-v", "--remove-orphans", check=False, timeout=300)

    def run_topology(self, p):
        e = self.engine
        daemons = ["kafka", "sandbox", "issuer", "importer"]
        one_shots = ["topics", "keygen", "setup", "share-job", "review-job"]
        services = p.compose("config", "--services").stdout.split()
        one_shots = [s for s in one_shots if s in services]
        self.assertIn("watch", services)

        # what the engine holds before: `down -v` must leave exactly that
        before = self.engine_objects()
        t0 = time.monotonic()
        p.compose("up", "-d", "--no-build")
        st = self.wait_done(p, one_shots, daemons)
        log("first up: done in %.1f s" % (time.monotonic() - t0))
        for s in services:
            self.assertIn(s, st, "service %s never ran" % s)
        # the daemons without a healthcheck still run
        for s in set(services) - set(one_shots) - set(daemons):
            self.assertEqual(st[s].get("State"), "running", "%s: %s" % (s, service_state(st[s])))

        shares, rule_vd = self.shares_of(p)
        self.assertEqual(len(shares), SHARE_COUNT + 1, shares)
        recs = self.check_run(p, shares, [rule_vd])
        status = [d for t, _, d in recs if t == "kyc-bridge.session-status"]
        self.assertGreaterEqual(len(status), 1, "no status update on the watch")

        # every container of the project runs as a non-root user (its
        # configuration, and for a running one its process as the kernel
        # sees it); no daemon restarted (a restart policy would hide a
        # crash behind a later "healthy")
        for c in p.ps():
            cid = c["ID"]
            user, pid, restarts = e.docker(
                "inspect", "-f", "{{.Config.User}}|{{.State.Pid}}|{{.RestartCount}}",
                cid).stdout.strip().split("|")
            self.assertNotIn(user.split(":")[0], ("", "0", "root"),
                             "%s runs as %r" % (c["Service"], user))
            self.assertEqual(restarts, "0", "%s restarted" % c["Service"])
            if pid not in ("", "0"):
                with open("/proc/%s/status" % pid) as fh:
                    uid = [ln.split()[1] for ln in fh if ln.startswith("Uid:")][0]
                self.assertNotEqual(uid, "0", "%s's process runs as root" % c["Service"])

        # secrets: in their volumes, in no image layer
        self.check_secrets_not_in_images(p)

        # down without -v, up again: the volumes keep keys and state; a new
        # share-job run is imported, nothing of the first run again
        p.compose("down", timeout=300)
        t0 = time.monotonic()
        p.compose("up", "-d", "--no-build")
        self.wait_done(p, one_shots, daemons)
        log("second up: done in %.1f s" % (time.monotonic() - t0))
        shares2, rule_vd2 = self.shares_of(p)
        self.assertEqual(len(shares2), SHARE_COUNT + 1, shares2)
        self.assertFalse({s for s, _ in shares} & {s for s, _ in shares2})
        self.check_run(p, shares + shares2, [rule_vd, rule_vd2],
                       seen_before=[s for s, _ in shares])

        p.compose("down", "-v", "--remove-orphans", timeout=300)
        self.assertEqual(self.engine_objects(), before,
                         "the engine's containers, volumes and networks after down -v "
                         "differ from before the first up")
        size = e.docker("image", "inspect", "-f", "{{.Size}}", "kyc-bridge:local").stdout.strip()
        log("kyc-bridge:local image size: %s bytes" % size)

    def engine_objects(self):
        """Every container, volume and network of the engine (not only
        the project's: an object made without the project's label counts
        too)."""
        e = self.engine
        return {
            "containers": sorted(e.docker("ps", "-a", "-q", "--no-trunc").stdout.split()),
            "volumes": sorted(e.docker("volume", "ls", "-q").stdout.split()),
            "networks": sorted(e.docker("network", "ls", "-q", "--no-trunc").stdout.split()),
        }

    def secrets(self, p):
        """Every file of the project's secrets volumes but the public
        bundles and the daemons' configurations (which name their secrets
        by file), {volume/path: bytes} (read by a throw-away container of
        the project's own image). Exactly the files keygen and setup make:
        per party a box and a signing secret key, the vendor API key and
        the webhook secret."""
        out = {}
        vols = [v for v in p.e.docker("volume", "ls", "-q", "--filter",
                                      "label=com.docker.compose.project=%s" % p.name
                                      ).stdout.split() if v.endswith("secrets")]
        self.assertEqual(len(vols), 2, "secrets volumes: %s" % vols)
        for v in vols:
            r = p.e.docker("run", "--rm", "--user", "0", "--entrypoint", "sh",
                           "-v", "%s:/v:ro" % v, "kyc-bridge:local", "-c",
                           "find /v -type f ! -name '*.pub.json' ! -name '*.conf' -exec sh -c "
                           "'printf \"%s %s\\n\" \"$1\" \"$(base64 -w0 \"$1\")\"' _ {} \\;")
            for line in r.stdout.splitlines():
                name, b64 = line.split(" ", 1)
                out["%s:%s" % (v, name)] = base64.b64decode(b64)
        kinds = sorted(re.sub(r"^.*/(?:[a-z]+\.)?", "", k) for k in out)
        self.assertEqual(kinds, sorted(["box.key", "sign.key"] * 2 +
                                       ["vendor-api-key", "webhook-secret"] * 2),
                         "secret files: %s" % sorted(out))
        for k, v in out.items():
            self.assertGreaterEqual(len(v.strip()), 16, "%s is too short to scan for" % k)
        return out

    def scan_members(self, tf, secrets, what):
        """Fails if a regular file of the open tar @tf holds one of
        @secrets; returns the number of files read."""
        n = 0
        for m in tf.getmembers():
            if not m.isfile():
                continue
            blob = tf.extractfile(m).read()
            self.assertEqual(len(blob), m.size, "%s: %s read short" % (what, m.name))
            n += 1
            for name, sec in secrets.items():
                self.assertNotIn(sec.strip(), blob,
                                 "%s: %s holds the secret of %s" % (what, m.name, name))
        return n

    def scan_image(self, path, secrets, what):
        """`docker image save` output at @path: every file of it (the
        image configuration and history included) and every file of each
        layer its manifest.json names -- each layer opened as a tar
        whatever its compression and name, none left out. Returns
        (layers, files)."""
        with tarfile.open(path, mode="r:*") as tf:
            files = self.scan_members(tf, secrets, what)
            manifest = json.load(tf.extractfile("manifest.json"))
            layers = [layer for img in manifest for layer in img["Layers"]]
            self.assertGreater(len(layers), 0, "%s: no layer in manifest.json" % what)
            for layer in layers:
                blob = tf.extractfile(layer).read()
                with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as lt:
                    files += self.scan_members(lt, secrets, "%s layer %s" % (what, layer))
        return len(layers), files

    def check_secrets_not_in_images(self, p):
        """The secrets are in their volumes only: not in a layer of any
        image, not in any container's own file system (docker export,
        which leaves the volumes out), not in a container's configuration
        or in any service's log."""
        secrets = self.secrets(p)
        docker = p.e.env.get("KB_DOCKER", "docker")
        images = sorted({c.get("Image") for c in p.ps() if c.get("Image")})
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.tar")
            for what, argv in [("image " + i, ["image", "save", i]) for i in images] + \
                    [("container " + c["Service"], ["export", c["ID"]]) for c in p.ps()]:
                with open(path, "wb") as fh:
                    r = subprocess.run([docker] + argv, stdout=fh, env=p.e.env, timeout=600)
                self.assertEqual(r.returncode, 0, "docker %s" % " ".join(argv))
                if argv[0] == "image":
                    layers, files = self.scan_image(path, secrets, what)
                    log("%s: %d layers, %d files scanned" % (what, layers, files))
                else:
                    with tarfile.open(path, mode="r:*") as tf:
                        files = self.scan_members(tf, secrets, what)
                self.assertGreater(files, 0, "%s: nothing scanned" % what)
                os.unlink(path)
        for c in p.ps():
            conf = p.e.docker("inspect", c["ID"]).stdout
            for name, sec in secrets.items():
                self.assertNotIn(sec.strip().decode("latin-1"), conf,
                                 "%s's configuration holds %s" % (c["Service"], name))
        logs = p.compose("logs", "--no-color").stdout
        for name, sec in secrets.items():
            self.assertNotIn(sec.strip().decode("latin-1"), logs, "a log holds %s" % name)



def pids_of(root):
    """Pids whose command line names @root's engine (its dockerd,
    containerd, shims)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as fh:
                args = fh.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        # whole arguments under ROOT/exec or ROOT/data, not substrings
        for arg in args:
            arg = arg.split("=", 1)[-1]
            if any(arg == root + sub or arg.startswith(root + sub + "/")
                   for sub in ("/exec", "/data")):
                out.append(int(d))
                break
    return out


def mounts_under(root):
    with open("/proc/self/mountinfo") as fh:
        return [ln.split()[4] for ln in fh if ln.split()[4].startswith(root + "/")]


POOL_REGISTRY = "/run/kyc-bridge-docker-pools"   # docker-env.sh's default


def pool_twin(root):
    """A sibling directory of @root whose hash starts the pool search at the
    same 10.X as @root's (docker-env.sh address_pool)."""
    import hashlib

    def start(p):
        return 200 + int(hashlib.sha256(p.encode()).hexdigest()[:4], 16) % 50
    return next(p for p in ("%s-twin-%d" % (root, i) for i in range(100000))
                if start(p) == start(root))


class TestEngineLifecycle(unittest.TestCase):
    """docker-env.sh's engine on its own (an empty data root of its own):
    its address pool is reserved from start to stop (an engine started
    meanwhile whose hash points at the same pool gets another), a hung
    dockerd is replaced, a crashed engine's leftovers (containerd, shims,
    container processes, mounts, its networks' bridges) are cleaned up, and
    a stop leaves nothing of it running."""

    def setUp(self):
        build = os.environ.get("KB_BUILD_DIR") or os.path.join(SRC, "build")
        self.e = Engine(os.path.join(build, "docker-life"))

    def tearDown(self):
        self.e.stop()

    def pid(self, name):
        with open(os.path.join(self.e.root, name + ".pid")) as fh:
            return int(fh.read().strip())

    def assert_gone(self, bridge):
        self.assertEqual(pids_of(self.e.root), [], "processes of the engine left")
        self.assertEqual(mounts_under(self.e.root), [], "mounts of the engine left")
        self.assertFalse(os.path.exists("/sys/class/net/" + bridge), "%s left" % bridge)

    def test_hang_crash_stop(self):
        e = self.e
        e.start()
        # its pool reserved before it has a network (no route shows it
        # yet): a twin directory gets another one, released by its stop
        mine = e.sh("dockerd", "pool", e.root).stdout.strip()
        x = mine.split(".")[1]
        with open(os.path.join(POOL_REGISTRY, "10." + x)) as fh:
            self.assertEqual(fh.read().strip(), e.root)
        twin = pool_twin(e.root)
        os.makedirs(twin, exist_ok=True)
        try:
            other = e.sh("dockerd", "pool", twin).stdout.strip()
            self.assertRegex(other, r"^10\.(2[0-4][0-9])\.0\.0/16$")
            self.assertNotEqual(other, mine)
            e.sh("dockerd", "stop", twin)
            self.assertFalse(os.path.exists(os.path.join(
                POOL_REGISTRY, other.rsplit(".", 2)[0])), "the twin's pool not released")
        finally:
            import shutil
            shutil.rmtree(twin, ignore_errors=True)
        e.sh("base-images", e.root)
        # its own containerd, not one a dockerd would share
        ctd = self.pid("containerd")
        with open("/proc/%d/cmdline" % ctd, "rb") as fh:
            self.assertIn((e.root + "/exec/containerd.toml").encode(), fh.read())
        net = e.docker("network", "create", "kb-life").stdout.strip()
        bridge = "br-" + net[:12]
        self.assertTrue(os.path.exists("/sys/class/net/" + bridge), bridge)
        sub = e.docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}",
                       net).stdout.strip()
        self.assertRegex(sub, r"^10\.(2[0-4][0-9])\.\d+\.0/24$")
        self.assertEqual(sub.split(".")[1], x, "a network outside the reserved pool")
        # a container that keeps running: its process, shim and mounts
        # (--stop-timeout 1: sleep as pid 1 ignores SIGTERM; the engine's
        # graceful stop would wait 10 s for it)
        e.docker("run", "-d", "--name", "kb-life-c", "--network", "kb-life",
                 "--stop-timeout", "1", "debian:bookworm-slim", "sleep", "600")

        # hung: stopped (SIGSTOP), does not answer -> stopped and started anew
        old = self.pid("dockerd")
        os.kill(old, 19)
        r = e.sh("dockerd", "start", e.root, timeout=300)
        self.assertIn("does not answer", r.stderr)
        self.assertNotEqual(self.pid("dockerd"), old)
        self.assertFalse(os.path.exists("/proc/%d" % old), "the hung dockerd still exists")

        # crashed: every process of the engine killed, leaving mounts,
        # shims and the bridge; `dockerd stop` cleans all of it up
        e.docker("run", "-d", "--network", "kb-life", "--stop-timeout", "1",
                 "debian:bookworm-slim", "sleep", "600")
        self.assertNotEqual(mounts_under(e.root), [])
        for p in (self.pid("dockerd"), self.pid("containerd")):
            os.kill(p, 9)
        time.sleep(1)
        self.assertTrue(os.path.exists("/sys/class/net/" + bridge), bridge)
        self.assertEqual(e.stop(), 0)
        self.assert_gone(bridge)

        # and a crash, then `start`: cleaned up first, the engine answers
        e.start()
        os.kill(self.pid("dockerd"), 9)
        os.kill(self.pid("containerd"), 9)
        r = e.sh("dockerd", "start", e.root, timeout=300)
        self.assertIn("cleaning up after an engine", r.stderr)
        self.assertEqual(e.stop(), 0)
        self.assert_gone(bridge)
        self.assertFalse(os.path.exists(os.path.join(POOL_REGISTRY, "10." + x)),
                         "the pool still reserved after the stop")


if __name__ == "__main__":
    unittest.main()
