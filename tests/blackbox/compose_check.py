#!/usr/bin/env python3
"""compose_check.py -- check docker/ (compose file, Dockerfile, configs) without Docker.

No Docker engine runs where the tests run, so this reads the files the way
Docker would and checks what can be checked on the host:

  check --kb-bin BIN   structure of docker/docker-compose.yml (services,
                       depends_on, healthchecks, mounts, ports bound to
                       127.0.0.1, addresses between services), the Dockerfile
                       (stages, runtime packages = the binary's libraries),
                       the config templates (every key a real option from
                       `kyc-bridge config options`, for the right role;
                       rendered with placeholder ids by docker/scripts/lib.sh
                       and accepted by `kyc-bridge config check`), that
                       config/topics.txt creates exactly the topics the
                       configs name (defaults included; state topics
                       compacted, the rest not; no topic for two purposes),
                       the webhook flows (each daemon's intake, the URL the
                       setup job registers for its application: one port,
                       one path), health and monitoring (metrics.listen =
                       the intake's address, the healthcheck asks /readyz
                       there, prometheus.yml scrapes the daemons at those
                       ports, the optional `monitoring` profile's
                       prometheus service and docker/prometheus/Dockerfile,
                       the sandbox's scrape, the alert rules (alerts.yml
                       loaded and mounted, equal to docs/operations.md
                       "Alert rules"), the Grafana dashboard's metrics
                       (registered, filtered by $daemon), the profile's
                       grafana service (upstream image pinned to a
                       release, loopback, /api/health, uid 472, read-only
                       mounts where the provisioning files say, data
                       source = the prometheus service); python3-yaml
                       reads those files), and that
                       every secret a config names is a file the jobs write
                       into that party's own volume, which only that
                       party's services mount; and the offline override
                       (docker-compose.offline.yml: exactly the services
                       running apache/kafka get kyc-bridge-kafka:local, built
                       from docker/kafka) with its Dockerfile (Debian's JRE
                       17 on the runtime base, the launcher, every Kafka
                       tool the jobs and healthchecks call, the data
                       volume's mount point owned by the broker's user).
  build                replays the Dockerfile's build stage on the host: the
                       context filtered by .dockerignore, the COPY steps, the
                       cmake RUN steps; then checks the binary's libraries.
  selftest --kb-bin BIN
                       breaks copies of the files in ~135 ways, one at a
                       time, and expects `check` to notice each.
  plan SERVICE --root DIR
                       prints shell code (for scripts/compose-local.sh) that
                       sets SERVICE's environment and its argv (`set --`),
                       with container paths mapped to the host: bind mounts
                       to the repository, named volumes under DIR.

YAML: Python's standard library has no YAML parser. Rather than keep a
second copy of the compose file in JSON (two sources that drift), this reads
the real file with a small, strict parser for the subset it uses (see
docker-compose.yml's header) and refuses anything outside it, so what it
checks is what Docker reads. Python 3 standard library only.
"""
import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = DOCKER = COMPOSE = None


def set_repo(path):
    """The repository whose docker/ is checked (selftest checks copies)."""
    global ROOT, DOCKER, COMPOSE
    ROOT = os.path.abspath(path)
    DOCKER = os.path.join(ROOT, "docker")
    COMPOSE = os.path.join(DOCKER, "docker-compose.yml")


set_repo(os.path.dirname(os.path.dirname(HERE)))
OUR_IMAGE = "kyc-bridge:local"
# Images built from a Dockerfile of their own (context: its directory under
# docker/), each for the services of one optional profile only.
AUX_IMAGES = {"kyc-bridge-prometheus:local": ("prometheus", "monitoring")}
PROFILES = {"monitoring"}
# Grafana is not packaged by Debian: the monitoring profile runs the
# upstream image (pinned to a release), as the image's own non-root user,
# its default http_port; provisioning under its default provisioning path.
GRAFANA_REPO = "grafana/grafana-oss"
GRAFANA_UID = "472"
GRAFANA_PORT = "3000"
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
OUR_UID = "10001:10001"
STATE_DIR = "/var/lib/kyc-bridge"


# ---------------------------------------------------------------- YAML subset

class YamlError(Exception):
    pass


_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_INT = re.compile(r"[-+]?[0-9]+$")
_YAML11_BOOLS = {"y", "n", "yes", "no", "on", "off"}


class _Yaml:
    """Block mappings and sequences (2-space indentation), one-line plain,
    single- and double-quoted scalars, one-line flow sequences of scalars,
    comments, and whole-node anchors (`key: &name` + block) with aliases
    (`key: *name`). No '$' except '$$' (Compose interpolation)."""

    def __init__(self, text, path):
        self.path = path
        self.anchors = {}
        self.lines = []  # (lineno, indent, content)
        for n, raw in enumerate(text.split("\n"), 1):
            if "\t" in raw:
                raise YamlError("%s:%d: tab character" % (path, n))
            s = raw.rstrip(" ")
            body = s.lstrip(" ")
            if not body or body.startswith("#"):
                continue
            if n == 1 and body == "---":
                continue
            ind = len(s) - len(body)
            if ind % 2:
                raise YamlError("%s:%d: indentation is not a multiple of 2" % (path, n))
            self.lines.append((n, ind, body))
        self.pos = 0

    def err(self, n, msg):
        return YamlError("%s:%d: %s" % (self.path, n, msg))

    def parse(self):
        if not self.lines:
            raise YamlError("%s: empty document" % self.path)
        if self.lines[0][1] != 0:
            raise self.err(self.lines[0][0], "document does not start at column 0")
        v = self.block(0)
        if self.pos != len(self.lines):
            n = self.lines[self.pos][0]
            raise self.err(n, "unexpected indentation")
        return v

    def block(self, ind):
        n, i, body = self.lines[self.pos]
        if i != ind:
            raise self.err(n, "expected indentation %d, got %d" % (ind, i))
        if body == "-" or body.startswith("- "):
            return self.seq(ind)
        return self.mapping(ind)

    def seq(self, ind):
        out = []
        while self.pos < len(self.lines):
            n, i, body = self.lines[self.pos]
            if i < ind:
                break
            if i > ind:
                raise self.err(n, "unexpected indentation")
            if not body.startswith("- "):
                raise self.err(n, "expected a sequence item ('- ')")
            self.pos += 1
            item = body[2:].lstrip(" ")
            if re.match(r"[A-Za-z0-9_.-]+:( |$)", item):
                raise self.err(n, "mappings inside sequences are outside the subset")
            out.append(self.inline(n, item))
        return out

    def mapping(self, ind):
        out = {}
        while self.pos < len(self.lines):
            n, i, body = self.lines[self.pos]
            if i < ind:
                break
            if i > ind:
                raise self.err(n, "unexpected indentation")
            if body.startswith("- "):
                raise self.err(n, "sequence item where a mapping key was expected")
            key, sep, rest = body.partition(":")
            if not sep or not _KEY.match(key):
                raise self.err(n, "expected 'key: value' (plain key of [A-Za-z0-9_.-])")
            if rest and not rest.startswith(" "):
                raise self.err(n, "expected a space after ':'")
            if key in out:
                raise self.err(n, "duplicate key %r" % key)
            self.pos += 1
            rest = _strip_comment(rest.strip(" "))
            anchor = None
            if rest.startswith("&"):
                anchor = rest[1:]
                if not _KEY.match(anchor):
                    raise self.err(n, "bad anchor name")
                rest = ""
            if rest == "":
                nxt = self.lines[self.pos] if self.pos < len(self.lines) else None
                if nxt and nxt[1] > ind:
                    val = self.block(ind + 2)
                else:
                    val = None
                if anchor:
                    if val is None:
                        raise self.err(n, "an anchor must name a block")
                    self.anchors[anchor] = val
            else:
                val = self.inline(n, rest)
            out[key] = val
        return out

    def inline(self, n, s):
        s = s.strip(" ")
        if s.startswith("*"):
            name = _strip_comment(s[1:])
            if name not in self.anchors:
                raise self.err(n, "unknown alias *%s" % name)
            return copy.deepcopy(self.anchors[name])
        if s.startswith("["):
            return self.flow_seq(n, s)
        v, rest = self.scalar(n, s, flow=False)
        if rest.strip(" "):
            raise self.err(n, "trailing text after a value: %r" % rest)
        return v

    def flow_seq(self, n, s):
        out = []
        s = s[1:].lstrip(" ")
        if s.startswith("]"):
            rest = s[1:]
        else:
            while True:
                v, s = self.scalar(n, s, flow=True)
                out.append(v)
                s = s.lstrip(" ")
                if s.startswith(","):
                    s = s[1:].lstrip(" ")
                    continue
                if s.startswith("]"):
                    rest = s[1:]
                    break
                raise self.err(n, "expected ',' or ']' in a flow sequence")
        if _strip_comment(rest.strip(" ")):
            raise self.err(n, "trailing text after ']'")
        return out

    def scalar(self, n, s, flow):
        """Returns (value, rest of the line after the scalar)."""
        if s.startswith('"'):
            out, i = [], 1
            while True:
                if i >= len(s):
                    raise self.err(n, "unterminated double-quoted string")
                c = s[i]
                if c == '"':
                    break
                if c == "\\":
                    e = s[i + 1:i + 2]
                    m = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "/": "/"}
                    if e not in m:
                        raise self.err(n, "escape \\%s is outside the subset" % e)
                    out.append(m[e])
                    i += 2
                    continue
                out.append(c)
                i += 1
            v = "".join(out)
            self.no_dollar(n, v)
            return v, s[i + 1:]
        if s.startswith("'"):
            out, i = [], 1
            while True:
                if i >= len(s):
                    raise self.err(n, "unterminated single-quoted string")
                if s[i] == "'":
                    if s[i + 1:i + 2] == "'":
                        out.append("'")
                        i += 2
                        continue
                    break
                out.append(s[i])
                i += 1
            v = "".join(out)
            self.no_dollar(n, v)
            return v, s[i + 1:]
        # plain scalar ("-5" and "-x" are fine, "- x" is a sequence item)
        if not s:
            raise self.err(n, "empty value")
        dash_ok = s[0] == "-" and s[1:2] not in ("", " ")
        if s[0] in "&*!|>%@`{}[],#?-:" and not dash_ok:
            raise self.err(n, "a plain value may not start with %r" % s[:1])
        stop = len(s)
        m = re.search(r" #", s)
        if m:
            stop = m.start()
        if flow:
            for j, c in enumerate(s[:stop]):
                if c in ",]":
                    stop = j
                    break
        v = s[:stop].rstrip(" ")
        rest = s[stop:]
        if not flow and rest.startswith(" #"):
            rest = ""
        if ": " in v or v.endswith(":"):
            raise self.err(n, "':' followed by a space in a plain value: quote it")
        if flow and any(c in v for c in "{}[]"):
            raise self.err(n, "brackets in a plain flow value: quote it")
        self.no_dollar(n, v)
        if v in ("true", "false"):
            return v == "true", rest
        if v in ("null", "~"):
            return None, rest
        if v.lower() in _YAML11_BOOLS or v.lower() in ("true", "false", "null"):
            raise self.err(n, "%r means a boolean or null to some YAML parsers: quote it" % v)
        if _INT.match(v):
            if re.match(r"[-+]?0[0-9]", v):
                raise self.err(n, "%r: a leading zero (octal to some parsers): quote it" % v)
            return int(v), rest
        if re.match(r"[-+]?([0-9]*\.[0-9]+|[0-9]+\.)([eE][-+]?[0-9]+)?$", v):
            raise self.err(n, "%r: floats are outside the subset: quote it" % v)
        return v, rest

    def no_dollar(self, n, v):
        if "$" in v.replace("$$", ""):
            raise self.err(n, "'$' in a value: Compose would interpolate it (write $$)")


def _strip_comment(s):
    m = re.search(r"(^| )#", s)
    return s[:m.start()].rstrip(" ") if m else s


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return _Yaml(f.read(), path).parse()


# ---------------------------------------------------------------- Dockerfile

def load_dockerfile(path):
    """[(stage_name, instruction, args, lineno)]"""
    out, stage, buf, start = [], None, "", 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        s = line.rstrip()
        if not buf and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if buf and s.lstrip().startswith("#"):
            continue
        if not buf:
            start = n
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        ins, _, args = buf.strip().partition(" ")
        ins = ins.upper()
        args = args.strip()
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
            if not m:
                raise ValueError("%s:%d: bad FROM" % (path, start))
            stage = m.group(2) or m.group(1)
        out.append((stage, ins, args, start))
        buf = ""
    return out


def stage_of(df, name):
    return [d for d in df if d[0] == name]


def apt_packages(run_args):
    """Package names of an `apt-get install` in a RUN line."""
    m = re.search(r"apt-get install(.*?)(&&|$)", run_args)
    if not m:
        return None
    return [w for w in m.group(1).split() if not w.startswith("-")]


# ---------------------------------------------------------------- .dockerignore

def _glob_re(pat):
    out = ""
    for c in pat:
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        else:
            out += re.escape(c)
    return re.compile(out + "$")


def load_dockerignore(path):
    pats = []
    if not os.path.exists(path):
        return pats
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            neg = s.startswith("!")
            p = s[1:] if neg else s
            p = p.strip("/")
            if "**" in p or "[" in p or "\\" in p:
                raise ValueError("%s:%d: pattern outside what this check understands: %s"
                                 % (path, n, s))
            pats.append((neg, _glob_re(p), p))
    return pats


def ignored(pats, rel):
    """Docker semantics for the patterns we allow: the last pattern matching
    the path or one of its parent directories decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for neg, rx, _ in pats:
        if any(rx.match(p) for p in prefixes):
            result = not neg
    return result


# ---------------------------------------------------------------- kyc-bridge

def config_options(kb_bin):
    """{name: {"default": str|None, "roles": set}} from `config options`."""
    r = subprocess.run([kb_bin, "config", "options"], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError("kyc-bridge config options failed: %s" % r.stderr)
    opts, name = {}, None
    for line in r.stdout.split("\n"):
        if line and not line[0].isspace():
            name = line.strip()
            opts[name] = {"default": None, "roles": set(), "detail": None}
        elif name and opts[name]["detail"] is None and line.strip():
            d = line.strip()
            opts[name]["detail"] = d
            m = re.search(r"default: (.*?); used by: (.*)$", d)
            if m:
                dflt = m.group(1)
                opts[name]["default"] = None if dflt in ("required", "none") else dflt
                opts[name]["roles"] = {x.strip() for x in m.group(2).split(",")}
    if len(opts) < 10:
        raise RuntimeError("kyc-bridge config options: too few options parsed")
    return opts


def option_for(opts, key):
    """The option entry a config key belongs to, or None."""
    if key in opts:
        return key
    for name in opts:
        if "*" in name or "<" in name:
            # partner.*.keys: one name segment; kafka.<property>: the rest
            rx = ""
            for part in re.split(r"(\*|<[^>]*>)", name):
                if part == "*":
                    rx += r"[A-Za-z0-9_-]+"
                elif part.startswith("<"):
                    rx += r"[A-Za-z0-9_.-]+"
                else:
                    rx += re.escape(part)
            if re.match(rx + "$", key):
                return name
    return None


def read_conf(path):
    """[(lineno, key, value)] of a properties file."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            k, sep, v = s.partition("=")
            if not sep:
                raise ValueError("%s:%d: not key = value" % (path, n))
            out.append((n, k.strip(), v.strip()))
    return out


ROLE_TOPICS = {
    "issuer": ["issuer.request_topic", "issuer.token_topic", "issuer.state_topic",
               "issuer.dlq_topic"],
    "importer": ["importer.token_topics", "importer.output_topic", "importer.dlq_topic",
                 "importer.state_topic", "importer.status_topic"],
}
# Compacted topics: the latest outcome per share_id (and the importer's index
# of imported sessions). Every other topic is a stream of events.
STATE_TOPIC_OPTIONS = ("issuer.state_topic", "importer.state_topic")
# The one topic two options may name: the issuer writes it, the importer reads it.
SHARED_TOPIC_OPTIONS = {"issuer.token_topic", "importer.token_topics"}
# Environment variables of the jobs that name a topic, and the option they mirror.
ENV_TOPICS = {"REQUEST_TOPIC": "issuer.request_topic",
              "OUTPUT_TOPIC": "importer.output_topic",
              "STATUS_TOPIC": "importer.status_topic"}
# Status updates are keyed like the imported-session records (vendor_data):
# the same partition count puts a session's import and its updates on the
# same partition number.
COPARTITIONED = (("importer.output_topic", "importer.status_topic"),)


def topic_options(opts, role):
    """Options of @role (per `kyc-bridge config options`) that name Kafka
    topics: ROLE_TOPICS must list every one, or topics.txt could miss a
    topic the daemon needs."""
    return sorted(o for o in opts if o.startswith(role + ".") and
                  re.search(r"(^|[._])topics?$", o))


def effective_topics(opts, conf, role):
    """{option: [topic,...]} for a role: the file's value, else the default."""
    vals = {k: v for _, k, v in conf}
    out = {}
    for o in ROLE_TOPICS[role]:
        v = vals.get(o, opts[o]["default"])
        out[o] = [t.strip() for t in (v or "").split(",") if t.strip()]
    return out


# ---------------------------------------------------------------- compose model

class Compose:
    def __init__(self, path=None):
        path = path or COMPOSE
        self.path = path
        self.dir = os.path.dirname(path)
        self.doc = load_yaml(path)
        self.services = self.doc.get("services") or {}

    def mounts(self, svc):
        """[(kind, source, target, ro)] kind = bind|volume"""
        out = []
        for v in self.services[svc].get("volumes") or []:
            parts = str(v).split(":")
            ro = False
            if len(parts) == 3:
                if parts[2] not in ("ro", "rw"):
                    raise ValueError("%s: volume %r: bad mode" % (svc, v))
                ro = parts[2] == "ro"
            elif len(parts) != 2:
                raise ValueError("%s: volume %r: want SOURCE:TARGET[:ro]" % (svc, v))
            src, tgt = parts[0], parts[1]
            if src.startswith("./") or src.startswith("../") or src.startswith("/"):
                out.append(("bind", os.path.normpath(os.path.join(self.dir, src)), tgt, ro))
            else:
                out.append(("volume", src, tgt, ro))
        return out

    def env(self, svc):
        e = self.services[svc].get("environment") or {}
        if not isinstance(e, dict):
            raise ValueError("%s: environment must be a mapping" % svc)
        return {k: ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in e.items()}

    def argv(self, svc, df):
        s = self.services[svc]
        ep = s.get("entrypoint")
        if ep is None and s.get("image") == OUR_IMAGE:
            ep = dockerfile_entrypoint(df)
        cmd = s.get("command")
        if ep is None:
            raise ValueError("%s: no entrypoint known (image default)" % svc)
        if isinstance(ep, str) or isinstance(cmd, str):
            raise ValueError("%s: entrypoint/command must be lists" % svc)
        return list(ep) + list(cmd or [])

    def depends(self, svc):
        d = self.services[svc].get("depends_on") or {}
        if not isinstance(d, dict):
            raise ValueError("%s: depends_on must be a mapping with conditions" % svc)
        return {k: (v or {}).get("condition") for k, v in d.items()}

    def topo_ok(self, order):
        pos = {s: i for i, s in enumerate(order)}
        bad = []
        for s in self.services:
            for d in self.depends(s):
                if d in pos and s in pos and pos[d] > pos[s]:
                    bad.append("%s before %s" % (s, d))
        return bad


def is_grafana(svc):
    """A service running Grafana's upstream image (any tag)."""
    return isinstance(svc, dict) and str(svc.get("image", "")).startswith("grafana/")


def dockerfile_entrypoint(df):
    ep = [d for d in df if d[1] == "ENTRYPOINT"]
    if not ep:
        return None
    return json.loads(ep[-1][2])


def host_path(c, svc, path, root):
    """Container path -> host path for scripts/compose-local.sh."""
    best = None
    for kind, src, tgt, _ in c.mounts(svc):
        if path == tgt or path.startswith(tgt.rstrip("/") + "/"):
            if best is None or len(tgt) > len(best[2]):
                best = (kind, src, tgt)
    if best is None:
        return None
    kind, src, tgt = best
    rest = path[len(tgt):]
    if kind == "bind":
        return src + rest
    return os.path.join(root, tgt.lstrip("/")) + rest


# ---------------------------------------------------------------- checks

class Checker:
    def __init__(self):
        self.fails = []
        self.passes = 0

    def ok(self, cond, what):
        if cond:
            self.passes += 1
        else:
            self.fails.append(what)
            print("FAIL: " + what)
        return cond


def kafka_version():
    with open(os.path.join(ROOT, "scripts", "kafka.sh")) as f:
        m = re.search(r"^KAFKA_VERSION=([0-9.]+)$", f.read(), re.M)
    return m.group(1) if m else None


def script_of(c, svc):
    """Host path of the bash script a service runs, if any."""
    s = c.services[svc]
    ep = s.get("entrypoint") or []
    if len(ep) >= 2 and ep[0] == "bash":
        return host_path(c, svc, ep[1], "/nonexistent")
    return None


def required_env(script):
    with open(script) as f:
        return re.findall(r'^: "\$\{([A-Z_][A-Z0-9_]*):\?', f.read(), re.M)


def check_compose(ck, c, df):
    doc = c.doc
    allowed_top = {"name", "services", "volumes", "networks"}
    for k in doc:
        ck.ok(k in allowed_top or k.startswith("x-"), "compose: unknown top-level key %r" % k)
    ck.ok(bool(c.services), "compose: no services")
    svc_keys = {"image", "build", "command", "entrypoint", "environment", "volumes", "ports",
                "depends_on", "healthcheck", "restart", "hostname", "user", "init",
                "stop_grace_period", "profiles"}
    declared_vols = set((doc.get("volumes") or {}).keys())
    used_vols = set()
    stages = {d[0] for d in df}
    builds = {}
    for name, s in c.services.items():
        if not ck.ok(isinstance(s, dict), "%s: not a mapping" % name):
            continue
        for k in s:
            ck.ok(k in svc_keys, "%s: unknown or unexpected key %r" % (name, k))
        img = s.get("image")
        ck.ok(isinstance(img, str) and ":" in img and not img.endswith(":latest"),
              "%s: image must be pinned to a tag (got %r)" % (name, img))
        profiles = s.get("profiles")
        if profiles is not None:
            ck.ok(isinstance(profiles, list) and profiles and
                  all(isinstance(p, str) and p in PROFILES for p in profiles),
                  "%s: profiles %r: want a list of %s" % (name, profiles, sorted(PROFILES)))
        if "build" in s and img in AUX_IMAGES:
            b = s["build"]
            sub, prof = AUX_IMAGES[img]
            ctx = os.path.normpath(os.path.join(c.dir, b.get("context", ".")))
            ck.ok(os.path.isdir(ctx) and os.path.samefile(ctx, os.path.join(DOCKER, sub)),
                  "%s: builds %s, whose context is docker/%s" % (name, img, sub))
            ck.ok(b.get("dockerfile", "Dockerfile") == "Dockerfile" and set(b) <= {
                "context", "dockerfile"}, "%s: build of %s: want context and Dockerfile only"
                  % (name, img))
            ck.ok(profiles == [prof], "%s: %s is for the optional profile %r only "
                  "(profiles: [\"%s\"])" % (name, img, prof, prof))
        elif "build" in s:
            b = s["build"]
            ck.ok(img == OUR_IMAGE, "%s: a built service must be tagged %s (or one of %s)"
                  % (name, OUR_IMAGE, sorted(AUX_IMAGES)))
            ctx = os.path.normpath(os.path.join(c.dir, b.get("context", ".")))
            dfile = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
            ck.ok(os.path.isdir(ctx), "%s: build context %s missing" % (name, ctx))
            if ck.ok(os.path.isfile(dfile), "%s: Dockerfile %s missing" % (name, dfile)):
                ck.ok(os.path.samefile(dfile, os.path.join(DOCKER, "Dockerfile")),
                      "%s: builds from another Dockerfile than docker/Dockerfile" % name)
            ck.ok(os.path.samefile(ctx, ROOT) if os.path.isdir(ctx) else False,
                  "%s: the build context must be the repository (.dockerignore there)" % name)
            ck.ok(b.get("target") in stages, "%s: build target %r is no stage" % (name, b.get("target")))
            builds[name] = b
        elif img == OUR_IMAGE or img in AUX_IMAGES:
            ck.ok(False, "%s: uses %s without its build section" % (name, img))
        if is_grafana(s):
            ck.ok(s.get("user") == GRAFANA_UID, "%s: user %r: want \"%s\" (the %s image's "
                  "own non-root user)" % (name, s.get("user"), GRAFANA_UID, GRAFANA_REPO))
        else:
            ck.ok(s.get("user") in (None, OUR_UID), "%s: user %r: only %s (the image's uid)"
                  % (name, s.get("user"), OUR_UID))
        ck.ok(s.get("restart") in ("no", "always", "on-failure", "unless-stopped"),
              "%s: restart must be one of no/always/on-failure/unless-stopped (quoted \"no\")"
              % name)
        # mounts
        for kind, src, tgt, ro in c.mounts(name):
            if kind == "bind":
                ck.ok(os.path.exists(src), "%s: bind mount source %s missing" % (name, src))
                ck.ok(ro, "%s: bind mount %s must be read-only" % (name, tgt))
                ck.ok(src.startswith(DOCKER + os.sep),
                      "%s: bind mount %s is outside docker/" % (name, src))
            else:
                ck.ok(src in declared_vols, "%s: volume %s not declared" % (name, src))
                used_vols.add(src)
                if tgt.startswith(STATE_DIR + "/"):
                    ck.ok(img == OUR_IMAGE or s.get("user") == OUR_UID,
                          "%s: mounts %s but runs neither our image nor as %s"
                          % (name, src, OUR_UID))
        # ports: loopback only
        for p in s.get("ports") or []:
            ck.ok(isinstance(p, str) and re.match(r"127\.0\.0\.1:[0-9]+:[0-9]+$", p),
                  "%s: port %r must be published as \"127.0.0.1:HOST:CONTAINER\"" % (name, p))
        # depends_on
        try:
            deps = c.depends(name)
        except ValueError as e:
            ck.ok(False, str(e))
            deps = {}
        for d, cond in deps.items():
            ck.ok(d in c.services, "%s: depends on unknown service %s" % (name, d))
            ck.ok(d != name, "%s: depends on itself" % name)
            ck.ok(cond in ("service_started", "service_healthy",
                           "service_completed_successfully"),
                  "%s: depends_on %s: bad condition %r" % (name, d, cond))
            if d in c.services:
                ck.ok(not c.services[d].get("profiles") or
                      set(c.services[d]["profiles"]) <= set(s.get("profiles") or []),
                      "%s: depends on %s, a service of an optional profile (%s) it is not in"
                      % (name, d, c.services[d].get("profiles")))
                if cond == "service_healthy":
                    ck.ok("healthcheck" in c.services[d],
                          "%s: waits for %s healthy, which has no healthcheck" % (name, d))
                if cond == "service_completed_successfully":
                    ck.ok(c.services[d].get("restart") == "no",
                          "%s: waits for %s to complete, which is not a one-shot (restart \"no\")"
                          % (name, d))
        # healthcheck
        hc = s.get("healthcheck")
        if hc is not None:
            t = hc.get("test")
            ck.ok(isinstance(t, list) and t and t[0] == "CMD",
                  "%s: healthcheck test must be [\"CMD\", ...]" % name)
            for a in (t or [])[1:]:
                if isinstance(a, str) and a.startswith("/opt/kyc-bridge/"):
                    hp = host_path(c, name, a, "/nonexistent")
                    ck.ok(hp and os.path.exists(hp),
                          "%s: healthcheck uses %s, not mounted from the repository" % (name, a))
        # argv: repository files exist, volume paths are mounted
        try:
            argv = c.argv(name, df)
        except ValueError:
            argv = []
        for a in argv:
            if not isinstance(a, str):
                ck.ok(False, "%s: non-string argument %r" % (name, a))
                continue
            if a.startswith("/opt/kyc-bridge/") or a.startswith(STATE_DIR + "/"):
                hp = host_path(c, name, a, "/nonexistent")
                ck.ok(hp is not None, "%s: argument %s is in no mount of the service" % (name, a))
                if hp and a.startswith("/opt/kyc-bridge/"):
                    ck.ok(os.path.exists(hp), "%s: %s (from %s) missing" % (name, hp, a))
        # scripts: their mounts and required environment
        sc = script_of(c, name)
        if sc:
            if not ck.ok(os.path.isfile(sc), "%s: script %s missing" % (name, sc)):
                continue
            with open(sc) as fh:
                text = fh.read()
            if 'dirname "$0")/lib.sh' in text:
                ck.ok(os.path.isfile(os.path.join(os.path.dirname(sc), "lib.sh")),
                      "%s: lib.sh beside %s missing" % (name, sc))
            if "/../config" in text:
                ck.ok(any(k == "bind" and tgt == "/opt/kyc-bridge/config"
                          for k, _, tgt, _ in c.mounts(name)),
                      "%s: %s reads ../config but config is not mounted" % (name, sc))
            env = c.env(name)
            for v in required_env(sc):
                ck.ok(v in env, "%s: %s needs %s in the environment" % (name, sc, v))
        for k in c.env(name):
            ck.ok(not re.search(r"KEY|SECRET|PASSW|TOKEN", k),
                  "%s: environment variable %s looks like a secret: use a file in a volume"
                  % (name, k))
    for v in declared_vols:
        ck.ok(v in used_vols, "compose: volume %s declared but unused" % v)
    if builds:
        first = list(builds.values())[0]
        ck.ok(all(b == first for b in builds.values()),
              "compose: services building %s disagree on the build" % OUR_IMAGE)
    # cycles
    seen, stack = set(), set()

    def visit(n):
        if n in stack:
            return False
        if n in seen:
            return True
        stack.add(n)
        good = all(visit(d) for d in c.depends(n) if d in c.services)
        stack.discard(n)
        seen.add(n)
        return good
    ck.ok(all(visit(n) for n in c.services), "compose: depends_on has a cycle")


def check_addresses(ck, c):
    s = c.services
    # Kafka: internal listener = service name, published one on loopback.
    kaf = [n for n in s if str(s[n].get("image", "")).startswith("apache/kafka:")
           and "KAFKA_PROCESS_ROLES" in c.env(n)]
    if not ck.ok(len(kaf) == 1, "compose: want exactly one broker service"):
        return
    k = kaf[0]
    ke = c.env(k)
    ver = kafka_version()
    ck.ok(s[k]["image"] == "apache/kafka:%s" % ver,
          "kafka: image %s, but scripts/kafka.sh (the test broker) runs %s"
          % (s[k]["image"], ver))
    for n in s:
        img = str(s[n].get("image", ""))
        if img.startswith("apache/kafka:"):
            ck.ok(img == s[k]["image"], "%s: Kafka tools %s differ from the broker %s"
                  % (n, img, s[k]["image"]))
    adv = dict(x.split("://", 1) for x in ke.get("KAFKA_ADVERTISED_LISTENERS", "").split(","))
    lis = dict(x.split("://", 1) for x in ke.get("KAFKA_LISTENERS", "").split(","))
    pmap = dict(x.split(":", 1) for x in ke.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(","))
    names = set(s) | {s[n].get("hostname") for n in s if s[n].get("hostname")}
    internal = [a for a in adv.values() if a.rsplit(":", 1)[0] in names]
    ck.ok(len(internal) == 1, "kafka: want one advertised listener named after the service")
    ctl = ke.get("KAFKA_CONTROLLER_LISTENER_NAMES")
    ck.ok(ctl in lis and ctl not in adv, "kafka: controller listener %r" % ctl)
    for name in lis:
        ck.ok(name in pmap, "kafka: listener %s has no security protocol" % name)
    for name, a in adv.items():
        ck.ok(name in lis and lis[name].rsplit(":", 1)[1] == a.rsplit(":", 1)[1],
              "kafka: advertised %s://%s has no listener on that port" % (name, a))
        host, port = a.rsplit(":", 1)
        if host not in names:
            ck.ok(host == "127.0.0.1" and "127.0.0.1:%s:%s" % (port, port) in
                  (s[k].get("ports") or []),
                  "kafka: advertised %s://%s must be 127.0.0.1 and published on it" % (name, a))
    for p in s[k].get("ports") or []:
        cport = p.rsplit(":", 1)[1]
        ck.ok(any(a.endswith(":" + cport) and a.startswith("127.0.0.1:") for a in adv.values()),
              "kafka: published port %s is not an advertised 127.0.0.1 listener" % p)
    ck.ok(ke.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false",
          "kafka: auto topic creation must be off (the topics service creates them)")
    boot = internal[0] if internal else None
    qv = ke.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")
    if boot and ctl in lis:
        want = "%s@%s:%s" % (ke.get("KAFKA_NODE_ID"), boot.rsplit(":", 1)[0],
                             lis[ctl].rsplit(":", 1)[1])
        ck.ok(qv == want, "kafka: controller.quorum.voters %r, want %r" % (qv, want))
    for n in s:
        e = c.env(n)
        if "KAFKA_BOOTSTRAP" in e:
            ck.ok(e["KAFKA_BOOTSTRAP"] == boot,
                  "%s: KAFKA_BOOTSTRAP %s is not the broker's listener %s"
                  % (n, e["KAFKA_BOOTSTRAP"], boot))
            sc = script_of(c, n)
            connects = sc is None or "$kbin/kafka-" in open(sc).read()
            ck.ok(not connects or c.depends(n).get(k) == "service_healthy" or any(
                c.depends(d).get(k) == "service_healthy" for d in c.depends(n) if d in s),
                "%s: uses Kafka without waiting for it (directly or via a dependency)" % n)
    # Sandbox: --listen 0.0.0.0:PORT --allow-remote, VENDOR_URL = http://sandbox:PORT
    sb = [n for n in s if (s[n].get("command") or [None])[0] == "sandbox"]
    if not ck.ok(len(sb) == 1, "compose: want exactly one sandbox service"):
        return
    sbn = sb[0]
    cmd = s[sbn]["command"]
    listen = cmd[cmd.index("--listen") + 1] if "--listen" in cmd else "127.0.0.1:8480"
    lhost, lport = listen.rsplit(":", 1)
    ck.ok(lhost == "127.0.0.1" or "--allow-remote" in cmd,
          "sandbox: --listen %s needs --allow-remote" % listen)
    ck.ok(lhost in ("0.0.0.0", "::"), "sandbox: must listen on the compose network, not %s" % lhost)
    for p in s[sbn].get("ports") or []:
        ck.ok(p.rsplit(":", 1)[1] == lport, "sandbox: published %s is not the listen port %s"
              % (p, lport))
    hc = (s[sbn].get("healthcheck") or {}).get("test") or []
    ck.ok("http://127.0.0.1:%s/sandbox/health" % lport in hc,
          "sandbox: healthcheck does not ask /sandbox/health on port %s" % lport)
    want = "http://%s:%s" % (sbn, lport)
    for n in s:
        e = c.env(n)
        if "VENDOR_URL" in e:
            ck.ok(e["VENDOR_URL"] == want, "%s: VENDOR_URL %s, sandbox serves %s"
                  % (n, e["VENDOR_URL"], want))
            chain = set(c.depends(n))
            ck.ok(c.depends(n).get(sbn) == "service_healthy" or any(
                c.depends(d).get(sbn) == "service_healthy" for d in chain if d in s),
                "%s: talks to the sandbox without waiting for it healthy" % n)


def load_topics_txt(path):
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            w = line.split()
            if not w or w[0].startswith("#"):
                continue
            if len(w) < 2 or not w[1].isdigit():
                raise ValueError("%s:%d: want NAME PARTITIONS [CONFIG=VALUE...]" % (path, n))
            out[w[0]] = (int(w[1]), dict(x.split("=", 1) for x in w[2:]))
    return out


PLACEHOLDER_IDS = {
    "ISSUER_APPLICATION_ID": "123e4567-e89b-42d3-a456-426614174000",
    "PARTNER_APPLICATION_ID": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
    "PARTNER_WORKFLOW_USER": "0c7e6a4e-2f9d-4d8a-9c1b-3e5f7a9b1c2d",
    "PARTNER_WORKFLOW_BUSINESS": "6a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d",
    "ISSUER_WORKFLOW_RULE": "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091",
}
ROLES = {"issuer.conf": "issuer", "importer.conf": "importer"}
SERVICE_OF_ROLE = {"issuer": "issuer", "importer": "importer"}
# The volumes that hold a party's secrets (mount point under STATE_DIR).
SECRET_DIRS = ("issuer", "partner")


def webhook_calls(setup_sh):
    """[(party, URL variable, how)] of setup.sh's `webhook PARTY "$VAR" HOW`
    lines: which application's webhooks go where."""
    with open(setup_sh) as f:
        return re.findall(r'^webhook ([a-z]+) "\$\{?([A-Z_][A-Z0-9_]*)\}?" ([a-z]+)[ \t]*$',
                          f.read(), re.M)


def setup_writes(setup_sh):
    """{"DIR/NAME": mode} of the files setup.sh writes under the volume root
    (its `kb_write_file "$state/DIR/NAME" MODE` lines; DIR "$party" stands
    for each party of its webhook lines)."""
    with open(setup_sh) as f:
        text = f.read()
    parties = [p for p, _, _ in webhook_calls(setup_sh)]
    out = {}
    for d, name, mode in re.findall(
            r'kb_write_file "\$state/(\$party|[a-z]+)/([A-Za-z0-9._-]+)" (0[0-7]{3})', text):
        for dd in (parties if d == "$party" else [d]):
            out["%s/%s" % (dd, name)] = mode
    return out


def party_of(c, df, svc):
    """The directory under STATE_DIR of the config a daemon service reads."""
    try:
        cmd = c.argv(svc, df)
    except ValueError:
        return None
    if "-c" not in cmd or cmd.index("-c") + 1 >= len(cmd):
        return None
    path = cmd[cmd.index("-c") + 1]
    if not path.startswith(STATE_DIR + "/"):
        return None
    return path[len(STATE_DIR) + 1:].split("/")[0]


def state_refs(text):
    """Directories under the volume root a script or template names
    literally ($state/DIR/..., @KB_STATE_DIR@/DIR/...), and whether it
    names some dynamically ($state/$x)."""
    lit = set(re.findall(r"(?:\$state|\$\{state\}|@KB_STATE_DIR@)/([a-z][a-z0-9_-]*)\b", text))
    dyn = re.search(r"(?:\$state|\$\{state\}|@KB_STATE_DIR@)/\$", text) is not None
    return lit, dyn


def exported_names(script):
    with open(script) as f:
        text = f.read().replace("\\\n", " ")
    names = set()
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("export "):
            for w in line.split()[1:]:
                names.add(w.split("=", 1)[0])
    return names


def render(tpl, out, env):
    """Renders a template with docker/scripts/lib.sh's kb_render."""
    lib = os.path.join(DOCKER, "scripts", "lib.sh")
    r = subprocess.run(["bash", "-c", 'set -euo pipefail; . "$1"; kb_render "$2" "$3"',
                        "render", lib, tpl, out], env=env, capture_output=True, text=True,
                       timeout=30)
    return r


def check_configs(ck, c, df, kb_bin, work):
    opts = config_options(kb_bin)
    confdir = os.path.join(DOCKER, "config")
    confs = sorted(f for f in os.listdir(confdir) if f.endswith(".conf"))
    ck.ok(confs == sorted(ROLES), "config: want exactly %s, found %s" % (sorted(ROLES), confs))
    setup_sh = os.path.join(DOCKER, "scripts", "setup.sh")
    exported = exported_names(setup_sh)
    # Keys from the real keygen job, placeholders for what setup makes.
    state = os.path.join(work, "state")
    for d in ("issuer", "partner", "exchange"):
        os.makedirs(os.path.join(state, d), mode=0o700)
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    os.symlink(os.path.abspath(kb_bin), os.path.join(bindir, "kyc-bridge"))
    env = dict(os.environ, KB_STATE_DIR=state, PATH=bindir + os.pathsep + os.environ["PATH"])
    r = subprocess.run(["bash", os.path.join(DOCKER, "scripts", "keygen.sh")], env=env,
                       capture_output=True, text=True, timeout=60)
    ck.ok(r.returncode == 0, "keygen.sh failed: %s" % r.stderr.strip())
    # What setup.sh writes (API keys, webhook secrets), as placeholders: a
    # file a config names must be one of these or keygen's.
    for rel, mode in sorted(setup_writes(setup_sh).items()):
        if rel.split("/")[0] in SECRET_DIRS:
            ck.ok(mode == "0600", "setup.sh writes %s with mode %s: a file in a party's "
                  "secrets volume must be 0600" % (rel, mode))
        if mode == "0600":
            ck.ok(rel.split("/")[0] in SECRET_DIRS,
                  "setup.sh writes the secret %s outside the parties' own volumes (%s)"
                  % (rel, ", ".join(SECRET_DIRS)))
        p = os.path.join(state, rel)
        if rel.split("/")[0] in ("issuer", "partner", "exchange") and not os.path.exists(p):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, int(mode, 8))
            os.write(fd, b"placeholder-not-a-secret")
            os.close(fd)
    setup_env = c.env("setup")
    renv = dict(env, **PLACEHOLDER_IDS)
    # Every placeholder the compose file's setup environment gives (the
    # addresses: vendor, Kafka, the webhook intakes).
    renv.update(setup_env)
    dumps = {}
    topics_named = {}
    role_topics = {}
    for role in sorted(ROLE_TOPICS):
        ck.ok(topic_options(opts, role) == sorted(ROLE_TOPICS[role]),
              "compose_check.py ROLE_TOPICS[%r] is %s; the %s's topic options are %s"
              % (role, sorted(ROLE_TOPICS[role]), role, topic_options(opts, role)))
    for f in confs:
        role = ROLES.get(f)
        if role is None:
            continue
        path = os.path.join(confdir, f)
        conf = read_conf(path)
        keys = [k for _, k, _ in conf]
        ck.ok(len(keys) == len(set(keys)), "%s: a key is set twice" % f)
        for n, k, v in conf:
            o = option_for(opts, k)
            if not ck.ok(o is not None, "%s:%d: %s is not an option of `kyc-bridge config options`"
                         % (f, n, k)):
                continue
            roles = opts[o]["roles"]
            if roles:
                ck.ok("all" in roles or role in roles,
                      "%s:%d: %s is used by %s, not by the %s" % (f, n, k, ", ".join(sorted(roles)),
                                                                  role))
            if opts[o]["detail"] and opts[o]["detail"].startswith("secret") or \
                    (k.startswith("kafka.") and re.search(r"password|secret", k)):
                ck.ok(v.startswith("file:") or v.startswith("env:"),
                      "%s:%d: secret %s must be a file: or env: reference" % (f, n, k))
        for ph in sorted(set(re.findall(r"@([A-Z][A-Z0-9_]*)@", open(path).read()))):
            ck.ok(ph in exported, "%s: placeholder @%s@ is not exported by setup.sh" % (f, ph))
        # Render as setup.sh would, and let the product judge the result.
        out = os.path.join(work, f)
        r = render(path, out, renv)
        if not ck.ok(r.returncode == 0, "%s: rendering failed: %s" % (f, r.stderr.strip())):
            continue
        st = os.stat(out).st_mode & 0o777
        ck.ok(st == 0o600, "%s: rendered file mode %o, want 600" % (f, st))
        r = subprocess.run([kb_bin, "config", "check", "-c", out, "--role", role],
                           capture_output=True, text=True, timeout=30)
        ck.ok(r.returncode == 0, "%s: `kyc-bridge config check --role %s` on the rendered file: "
              "exit %d: %s" % (f, role, r.returncode, (r.stderr or r.stdout).strip()))
        # The topics, from the options' defaults, and from the product's dump.
        eff = effective_topics(opts, conf, role)
        r = subprocess.run([kb_bin, "config", "dump", "-c", out, "--role", role],
                           capture_output=True, text=True, timeout=30)
        dump = {}
        for line in r.stdout.split("\n"):
            m = re.match(r"([^#=\s][^=]*)=(.*?)\s*(#.*)?$", line)
            if m:
                dump[m.group(1)] = m.group(2)
        # The addresses: the ones check_addresses holds to the services.
        for o, want in (("vendor.url", setup_env.get("VENDOR_URL")),
                        ("kafka.bootstrap.servers", setup_env.get("KAFKA_BOOTSTRAP"))):
            ck.ok(dump.get(o) == want, "%s: %s is %r in the container, the service is at %r"
                  % (f, o, dump.get(o), want))
        for o, ts in eff.items():
            ck.ok([t.strip() for t in dump.get(o, "").split(",") if t.strip()] == ts,
                  "%s: %s: computed %s, `config dump` says %r" % (f, o, ts, dump.get(o)))
            for t in ts:
                ck.ok("{" not in t, "%s: %s: templated topic %s: topics.txt cannot list it"
                      % (f, o, t))
                topics_named.setdefault(t, set()).add("%s %s" % (f, o))
        role_topics[role] = eff
        dumps[role] = dump
        # `config check` does not open key files: the files the config
        # names in the volumes must exist once keygen and setup have run.
        svc = SERVICE_OF_ROLE[role]
        party = party_of(c, df, svc)
        for n, k, v in conf:
            if "@KB_STATE_DIR@" not in v:
                continue
            o = option_for(opts, k)
            secret = (o is not None and (opts[o]["detail"] or "").startswith("secret")) or \
                k.startswith("keys.")
            for p in (v[5:] if v.startswith("file:") else v).split(","):
                p = p.strip()
                hp = p.replace("@KB_STATE_DIR@", state)
                ck.ok(os.path.isfile(hp), "%s: %s names a missing file %s (after keygen "
                      "and setup)" % (f, k, hp))
                # Inside the reading service's mounts (rendered for the
                # container: KB_STATE_DIR = /var/lib/kyc-bridge).
                cp = p.replace("@KB_STATE_DIR@", STATE_DIR)
                ck.ok(host_path(c, svc, cp, "/x") is not None,
                      "%s:%d: %s is in no volume of the %s service" % (f, n, cp, svc))
                if secret and party:
                    ck.ok(cp.startswith("%s/%s/" % (STATE_DIR, party)),
                          "%s:%d: secret %s is %s, not in the %s's own volume (%s/%s)"
                          % (f, n, k, cp, role, STATE_DIR, party))
        cmd = c.argv(svc, df)
        ck.ok(cmd[:2] == ["kyc-bridge", role] and "-c" in cmd,
              "%s service: want kyc-bridge %s -c FILE, got %s" % (svc, role, cmd))
    # The topics service creates exactly those topics.
    tt = load_topics_txt(os.path.join(confdir, "topics.txt"))
    ck.ok(set(tt) == set(topics_named),
          "topics.txt lists %s; the configs name %s" % (sorted(tt), sorted(topics_named)))
    iss, imp = role_topics.get("issuer"), role_topics.get("importer")
    if iss and imp:
        req, state_t = iss["issuer.request_topic"][0], iss["issuer.state_topic"][0]
        if req in tt and state_t in tt:
            ck.ok(tt[state_t][0] >= tt[req][0],
                  "topics.txt: %s needs at least as many partitions as %s" % (state_t, req))
        state_ts = {}
        for role, eff in ((r, role_topics[r]) for r in ("issuer", "importer")):
            for o in STATE_TOPIC_OPTIONS:
                for t in eff.get(o, []):
                    state_ts[t] = o
                    if t in tt:
                        ck.ok(tt[t][1].get("cleanup.policy") == "compact",
                              "topics.txt: %s (%s) must be compacted" % (t, o))
        ck.ok(iss["issuer.state_topic"] != imp["importer.state_topic"],
              "issuer.state_topic and importer.state_topic are both %s: the importer "
              "would take the issuer's share_ids for imports"
              % ",".join(iss["issuer.state_topic"]))
        ck.ok(iss["issuer.token_topic"] == imp["importer.token_topics"],
              "issuer.token_topic %s is not what the importer reads %s"
              % (iss["issuer.token_topic"], imp["importer.token_topics"]))
        for t, (_, cfg) in tt.items():
            # (a topic no config names is reported above)
            if t not in state_ts and t in topics_named:
                ck.ok(cfg.get("cleanup.policy", "delete") == "delete",
                      "topics.txt: %s must not be compacted" % t)
        # One topic, one purpose (the token topic is the one both name).
        by_topic = {}
        for eff in (iss, imp):
            for o, ts in eff.items():
                for t in ts:
                    by_topic.setdefault(t, set()).add(o)
        for t, os_ in sorted(by_topic.items()):
            ck.ok(len(os_) == 1 or os_ == SHARED_TOPIC_OPTIONS,
                  "topic %s is named by %s: one topic, one purpose" % (t, ", ".join(sorted(os_))))
        eff_all = dict(iss, **imp)
        for a, b in COPARTITIONED:
            ta, tb = eff_all[a][0], eff_all[b][0]
            if ta in tt and tb in tt:
                ck.ok(tt[ta][0] == tt[tb][0],
                      "topics.txt: %s (%s) has %d partitions, %s (%s) %d: both are keyed by "
                      "vendor_data, give them the same partition count"
                      % (tb, b, tt[tb][0], ta, a, tt[ta][0]))
        sj = c.env("share-job") if "share-job" in c.services else {}
        ck.ok(sj.get("REQUEST_TOPIC") == req,
              "share-job: REQUEST_TOPIC %r, issuer.request_topic %r" % (sj.get("REQUEST_TOPIC"), req))
        for n in c.services:
            for var, val in c.env(n).items():
                if var in ENV_TOPICS:
                    o = ENV_TOPICS[var]
                    ck.ok([val] == eff_all[o], "%s: %s %r, %s %r" % (n, var, val, o, eff_all[o]))
        w = c.env("watch") if "watch" in c.services else {}
        want = {imp["importer.output_topic"][0], imp["importer.status_topic"][0],
                imp["importer.dlq_topic"][0], iss["issuer.dlq_topic"][0]}
        ck.ok(set(w.get("WATCH_TOPICS", "").split()) == want,
              "watch: WATCH_TOPICS %r, want %s" % (w.get("WATCH_TOPICS"), sorted(want)))
    topics_svc = [n for n in c.services if script_of(c, n) and
                  script_of(c, n).endswith("/topics.sh")]
    ck.ok(len(topics_svc) == 1, "compose: want one service running topics.sh")
    return check_webhooks(ck, c, df, dumps, setup_sh)


def check_webhooks(ck, c, df, dumps, setup_sh):
    """Each daemon's intake, the URL setup.sh registers for its party's
    application, and the daemon's healthcheck: one port, one path."""
    setup_env = c.env("setup")
    calls = webhook_calls(setup_sh)
    metrics_ports = {}
    for role in sorted(dumps):
        d = dumps[role]
        svc = SERVICE_OF_ROLE[role]
        party = party_of(c, df, svc)
        listen = d.get("webhook.listen", "")
        if not ck.ok(listen, "%s: webhook.listen is empty: the sandbox's webhooks for the %s's "
                     "application would reach nothing" % (role, role)):
            continue
        host, _, port = listen.rpartition(":")
        ck.ok(host in ("0.0.0.0", "[::]"),
              "%s: webhook.listen %s: must listen on the compose network (0.0.0.0:PORT), "
              "the sandbox is another container" % (role, listen))
        ck.ok(d.get("webhook.allow_non_loopback") == "true",
              "%s: webhook.listen %s needs webhook.allow_non_loopback = true" % (role, listen))
        path = d.get("webhook.path", "")
        mine = [(v, how) for p, v, how in calls if p == party]
        if not ck.ok(len(mine) == 1, "setup.sh registers %d webhook URL(s) for the %s "
                     "application (party %s), want 1: %s" % (len(mine), role, party, calls)):
            continue
        var, how = mine[0]
        ck.ok(how in ("url", "destination"), "setup.sh: webhook %s ... %s: want url or "
              "destination" % (party, how))
        url = setup_env.get(var)
        m = re.match(r"http://([A-Za-z0-9_.-]+):([0-9]+)(/.*)$", url or "")
        if not ck.ok(m, "setup: %s %r is not http://SERVICE:PORT/PATH" % (var, url)):
            continue
        ck.ok(m.group(1) == svc, "setup: %s %s: the %s's intake is the %s service"
              % (var, url, role, svc))
        cmd = c.services["sandbox"].get("command") or []
        allowed = [cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a == "--webhook-allow-host"]
        ck.ok(m.group(1) in allowed,
              "sandbox: command lacks --webhook-allow-host %s: it would refuse the %s's "
              "webhook URL %s (only loopback receivers by default)" % (m.group(1), role, url))
        ck.ok(m.group(2) == port, "setup: %s %s: the %s listens on port %s (webhook.listen)"
              % (var, url, role, port))
        ck.ok(m.group(3) == path, "setup: %s %s: the %s's webhook.path is %s"
              % (var, url, role, path))
        for p in c.services[svc].get("ports") or []:
            ck.ok(p.rsplit(":", 1)[1] != port,
                  "%s: the webhook intake's port %s is published (%s): only the sandbox, on "
                  "the compose network, delivers to it" % (svc, port, p))
        # /livez, /readyz, /metrics: on the intake's own server (the same
        # address), so that /readyz answering means the intake listens too
        # (a separate server answers from the daemon's start), reachable
        # by Prometheus on the compose network.
        mlisten = d.get("metrics.listen", "")
        if not ck.ok(mlisten, "%s: metrics.listen is empty: no /readyz for the healthcheck, "
                     "no /metrics for Prometheus" % role):
            continue
        ck.ok(mlisten == listen, "%s: metrics.listen %s is not webhook.listen %s: in compose "
              "one server answers both (its /readyz then says the intake listens)"
              % (role, mlisten, listen))
        ck.ok(d.get("metrics.allow_non_loopback") == "true",
              "%s: metrics.listen %s needs metrics.allow_non_loopback = true (Prometheus "
              "scrapes over the compose network)" % (role, mlisten))
        mport = mlisten.rpartition(":")[2]
        metrics_ports[svc] = mport
        hcs = c.services[svc].get("healthcheck") or {}
        hc = hcs.get("test") or []
        want = ["CMD", "bash", "/opt/kyc-bridge/scripts/health.sh",
                "http://127.0.0.1:%s/readyz" % mport]
        ck.ok(hc == want, "%s: healthcheck %s, want %s (GET /readyz on metrics.listen "
              "answers 200 once the daemon is ready)" % (svc, hc, want))
        secs = {}
        for k in ("interval", "timeout", "start_period"):
            m = re.match(r"([0-9]+)s$", str(hcs.get(k, "")))
            secs[k] = int(m.group(1)) if m else None
            ck.ok(m is not None, "%s: healthcheck %s %r: want N s" % (svc, k, hcs.get(k)))
        r = hcs.get("retries")
        ck.ok(isinstance(r, int) and r >= 1, "%s: healthcheck retries %r" % (svc, r))
        if None not in secs.values() and isinstance(r, int):
            ck.ok(1 <= secs["interval"] <= 30 and secs["timeout"] <= 30 and
                  60 <= secs["start_period"] + secs["interval"] * r <= 600,
                  "%s: healthcheck interval %ss x %s retries (+%ss start): want a check at "
                  "most every 30 s and 1 to 10 minutes to become healthy"
                  % (svc, secs["interval"], r, secs["start_period"]))
    # Jobs waiting for a daemon's intake: healthy, not just started.
    for n in c.services:
        for dep, cond in c.depends(n).items():
            if dep in SERVICE_OF_ROLE.values() and c.services[n].get("restart") == "no":
                ck.ok(cond == "service_healthy",
                      "%s: depends on %s %s: a job's sessions fire webhooks at its intake, "
                      "wait for service_healthy" % (n, dep, cond))
    return metrics_ports


def check_volumes(ck, c, df):
    """A party's volume is mounted only where it is used, and every
    $state/DIR a script names is mounted."""
    for n in c.services:
        mounted = {}
        for kind, src, tgt, _ in c.mounts(n):
            if kind == "volume" and tgt.startswith(STATE_DIR + "/"):
                mounted[tgt[len(STATE_DIR) + 1:].split("/")[0]] = src
        if not mounted:
            continue
        lit, dyn = set(), False
        sc = script_of(c, n)
        if sc and os.path.isfile(sc):
            with open(sc) as fh:
                lit, dyn = state_refs(fh.read())
            for d in sorted(lit):
                ck.ok(d in mounted, "%s: %s reads $state/%s/ but the service mounts no volume "
                      "there" % (n, os.path.basename(sc), d))
        try:
            argv = c.argv(n, df)
        except ValueError:
            argv = []
        for a in argv:
            if isinstance(a, str) and a.startswith(STATE_DIR + "/"):
                lit.add(a[len(STATE_DIR) + 1:].split("/")[0])
        role = {v: k for k, v in SERVICE_OF_ROLE.items()}.get(n)
        if role:
            tpl = os.path.join(DOCKER, "config", "%s.conf" % role)
            if os.path.isfile(tpl):
                with open(tpl) as fh:
                    lit |= state_refs(fh.read())[0]
        if dyn:
            continue
        for d, vol in sorted(mounted.items()):
            ck.ok(d in lit, "%s: mounts %s at %s/%s but never uses it%s" % (
                n, vol, STATE_DIR, d,
                ": only a party's own services may see its secrets" if d in SECRET_DIRS else ""))


def needed_packages(binary):
    """Debian packages owning the binary's direct NEEDED libraries."""
    r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)
    # A sanitizer build (KB_SANITIZE=ON) links the sanitizer runtimes; the
    # image is a Release build without them.
    sonames = [so for so in sonames if not re.match(r"lib(a|ub|l|t|hwa)san\.so", so)]
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", r.stdout, re.M))
    # The dynamic loader has no "=>": ldd prints its path alone. It is a
    # NEEDED library once the binary uses dynamic thread-local storage
    # (__tls_get_addr), e.g. a _Thread_local in position-independent code.
    for path in re.findall(r"^\s*(/\S+) \(0x", r.stdout, re.M):
        where.setdefault(os.path.basename(path), path)
    pkgs = {}
    for so in sonames:
        path = where.get(so)
        if not path:
            raise RuntimeError("ldd does not resolve %s" % so)
        real = os.path.realpath(path)
        owner = None
        for cand in (path, real, "/usr" + path, "/usr" + real):
            q = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if q.returncode == 0:
                owner = q.stdout.split(":")[0].strip()
                break
        if owner is None:
            raise RuntimeError("no Debian package owns %s" % path)
        pkgs[so] = owner
    return pkgs


def check_dockerfile(ck, c, df, kb_bin):
    st = [d[0] for d in df if d[1] == "FROM"]
    froms = [d[2] for d in df if d[1] == "FROM"]
    ck.ok(len(froms) == 2 and re.match(r"debian:bookworm\s+AS\s+build$", froms[0], re.I)
          and re.match(r"debian:bookworm-slim\s+AS\s+runtime$", froms[1], re.I),
          "Dockerfile: want FROM debian:bookworm AS build, FROM debian:bookworm-slim AS runtime")
    if len(st) != 2:
        return
    build, run = stage_of(df, "build"), stage_of(df, "runtime")
    for stage, ins in ((build, "build"), (run, "runtime")):
        for d in stage:
            if d[1] == "RUN" and "apt-get install" in d[2]:
                ck.ok("--no-install-recommends" in d[2],
                      "Dockerfile:%d: apt-get install without --no-install-recommends" % d[3])
                ck.ok("rm -rf /var/lib/apt/lists/*" in d[2],
                      "Dockerfile:%d: apt lists left in the layer" % d[3])
    rpk = [apt_packages(d[2]) for d in run if d[1] == "RUN" and apt_packages(d[2])]
    ck.ok(len(rpk) == 1, "Dockerfile: want one apt-get install in the runtime stage")
    if rpk:
        got = set(rpk[0])
        try:
            need = needed_packages(kb_bin)
        except (RuntimeError, subprocess.CalledProcessError, FileNotFoundError) as e:
            ck.ok(False, "Dockerfile: cannot map the binary's libraries to packages: %s" % e)
            need = None
        if need is not None:
            want = (set(need.values()) - {"libc6"}) | {"ca-certificates"}
            ck.ok(got == want, "Dockerfile: runtime packages %s; the binary needs %s (%s) "
                  "plus ca-certificates" % (sorted(got), sorted(want),
                                            ", ".join("%s=%s" % kv for kv in sorted(need.items()))))
        q = subprocess.run(["apt-cache", "show", "--no-all-versions"] + sorted(got),
                           capture_output=True, text=True)
        known = set(re.findall(r"^Package: (\S+)$", q.stdout, re.M))
        for p in sorted(got):
            ck.ok(p in known, "Dockerfile: apt-cache knows no package %s" % p)
    user = [d[2] for d in run if d[1] == "USER"]
    ck.ok(user == [OUR_UID], "Dockerfile: runtime stage must end as USER %s (got %s)"
          % (OUR_UID, user))
    ck.ok(dockerfile_entrypoint(df) == ["kyc-bridge"], "Dockerfile: ENTRYPOINT must be [\"kyc-bridge\"]")
    cps = [d[2] for d in run if d[1] == "COPY"]
    ck.ok(any(re.match(r"--from=build\s+\S+/kyc-bridge\s+/usr/local/bin/kyc-bridge$", x)
              for x in cps), "Dockerfile: the binary must be copied to /usr/local/bin/kyc-bridge")
    ck.ok(all(x.startswith("--from=build") for x in cps),
          "Dockerfile: the runtime stage copies only from the build stage")
    runtext = " ".join(d[2] for d in run if d[1] == "RUN")
    mtargets = set()
    for n, s in c.services.items():
        if s.get("image") == OUR_IMAGE:
            for kind, _, tgt, _ in c.mounts(n):
                if kind == "volume":
                    mtargets.add(tgt)
    for t in sorted(mtargets):
        ck.ok(re.search(r"install -d -o 10001 -g 10001 -m 07[05][05]\b[^&]*" + re.escape(t)
                        + r"(\s|$)", runtext) is not None,
              "Dockerfile: volume mount point %s is not created owned by 10001" % t)
    # Build context: COPY sources exist and are not ignored.
    ctx = ROOT
    pats = load_dockerignore(os.path.join(ctx, ".dockerignore"))
    for d in build:
        if d[1] == "COPY":
            srcs = d[2].split()[:-1]
            for s in srcs:
                ck.ok(os.path.exists(os.path.join(ctx, s)), "Dockerfile:%d: COPY %s: missing" % (d[3], s))
                ck.ok(not ignored(pats, os.path.normpath(s)),
                      "Dockerfile:%d: COPY %s: excluded by .dockerignore" % (d[3], s))
    for bad in ("build-x", ".git/config", "tests/unit/x.c", "out/x"):
        ck.ok(ignored(pats, bad), ".dockerignore lets %s into the context" % bad)


def check_local_steps(ck, c):
    path = os.path.join(ROOT, "scripts", "compose-local.sh")
    if not ck.ok(os.path.isfile(path), "scripts/compose-local.sh missing"):
        return
    with open(path) as f:
        order = re.findall(r"^\s*step (\S+)", f.read(), re.M)
    # Grafana is the upstream image only (not in Debian): nothing of it runs
    # on this machine, so the script may have no step for it.
    not_local = {n for n, s in c.services.items() if is_grafana(s)}
    ck.ok(sorted(order) in (sorted(c.services), sorted(set(c.services) - not_local)),
          "compose-local.sh steps %s != compose services %s" % (order, sorted(c.services)))
    bad = c.topo_ok(order)
    ck.ok(not bad, "compose-local.sh runs %s" % "; ".join(bad))


# ---------------------------------------------------------------- monitoring

# Names PromQL itself or Prometheus's scrape gives, not the daemons'.
PROM_BUILTIN = {"up", "process_start_time_seconds", "scrape_duration_seconds",
                "scrape_samples_scraped"}
PROMQL_WORDS = {"sum", "by", "rate", "irate", "increase", "avg", "max", "min",
                "count", "without", "histogram_quantile", "time", "on", "ignoring",
                "group_left", "group_right", "and", "or", "unless", "offset",
                "topk", "bottomk", "le", "job", "instance", "daemon", "outcome",
                "reason", "result", "status_class", "topic", "partition", "broker",
                "version", "endpoint", "status", "role", "key_id", "cause", "rule",
                "delta", "deriv", "abs", "clamp_min", "clamp_max", "vector",
                "label_replace", "absent"}


def registered_metrics():
    """The metric family names the daemons register: every string literal
    "kyc_bridge_..." of bridge/daemons/ops_http.c and bridge/metrics/, plus
    process_start_time_seconds."""
    names = {"process_start_time_seconds"}
    paths = [os.path.join(ROOT, "bridge", "daemons", "ops_http.c")]
    mdir = os.path.join(ROOT, "bridge", "metrics")
    if os.path.isdir(mdir):
        paths += [os.path.join(mdir, f) for f in sorted(os.listdir(mdir))
                  if f.endswith(".c")]
    for p in paths:
        with open(p) as f:
            names |= set(re.findall(r'"(kyc_bridge_[a-z0-9_]+)"', f.read()))
    return names


def promql_metrics(expr):
    """The metric names an expression reads (identifiers outside label
    matchers and strings, not functions or keywords)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)        # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)      # ranges
    e = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", e)
    out = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", e):
        name, call = m.group(1), m.group(2)
        if call or name in PROMQL_WORDS:
            continue
        out.add(name)
    return out


def check_prometheus_service(ck, c, jobs):
    """The `prometheus` service of the monitoring profile: built from
    docker/prometheus/Dockerfile (Debian's package on the runtime stage's
    base), started with the scrape config that is checked here mounted
    where --config.file says, its data in a named volume the image owns."""
    img = [n for n, s in c.services.items() if s.get("image") == "kyc-bridge-prometheus:local"]
    if not ck.ok(len(img) == 1, "compose: want one service running kyc-bridge-prometheus:local "
                 "(profile monitoring), found %s" % img):
        return
    name = img[0]
    svc = c.services[name]
    dpath = os.path.join(DOCKER, "prometheus", "Dockerfile")
    try:
        pdf = load_dockerfile(dpath)
    except (OSError, ValueError) as e:
        ck.ok(False, "docker/prometheus/Dockerfile: %s" % e)
        return
    runtime_from = [d[2] for d in load_dockerfile(os.path.join(DOCKER, "Dockerfile"))
                    if d[1] == "FROM"][-1:]
    base = runtime_from[0].split()[0] if runtime_from else None
    froms = [d[2] for d in pdf if d[1] == "FROM"]
    ck.ok(froms == [base], "docker/prometheus/Dockerfile: FROM %s, want one stage FROM %s "
          "(the runtime stage's base; Debian's prometheus package, no other registry image)"
          % (froms, base))
    pk = []
    for d in pdf:
        if d[1] in ("COPY", "ADD"):
            ck.ok(False, "docker/prometheus/Dockerfile:%d: %s: the config is mounted, "
                  "not copied" % (d[3], d[1]))
        if d[1] == "RUN" and "apt-get install" in d[2]:
            ck.ok("--no-install-recommends" in d[2],
                  "docker/prometheus/Dockerfile:%d: apt-get install without "
                  "--no-install-recommends" % d[3])
            ck.ok("rm -rf /var/lib/apt/lists/*" in d[2],
                  "docker/prometheus/Dockerfile:%d: apt lists left in the layer" % d[3])
            pk += apt_packages(d[2]) or []
    ck.ok("prometheus" in pk, "docker/prometheus/Dockerfile: does not install Debian's "
          "prometheus package (got %s)" % pk)
    if pk:
        q = subprocess.run(["apt-cache", "show", "--no-all-versions"] + sorted(set(pk)),
                           capture_output=True, text=True)
        known = set(re.findall(r"^Package: (\S+)$", q.stdout, re.M))
        for p in sorted(set(pk)):
            ck.ok(p in known, "docker/prometheus/Dockerfile: apt-cache knows no package %s" % p)
    user = [d[2] for d in pdf if d[1] == "USER"]
    ck.ok(user == ["prometheus"], "docker/prometheus/Dockerfile: want USER prometheus (the "
          "package's system user), got %s" % user)
    ck.ok(dockerfile_entrypoint(pdf) == ["/usr/bin/prometheus"],
          "docker/prometheus/Dockerfile: ENTRYPOINT must be [\"/usr/bin/prometheus\"]")
    cmd = svc.get("command")
    if not ck.ok(isinstance(cmd, list), "%s: command must be a list of flags" % name):
        return
    flags = dict(a.split("=", 1) for a in cmd if isinstance(a, str) and "=" in a)
    mounts = c.mounts(name)
    cfg = flags.get("--config.file")
    want = os.path.join(DOCKER, "prometheus", "prometheus.yml")
    ck.ok(any(k == "bind" and tgt == cfg and src == want and ro
              for k, src, tgt, ro in mounts),
          "%s: --config.file %s is not docker/prometheus/prometheus.yml mounted read-only"
          % (name, cfg))
    data = flags.get("--storage.tsdb.path", "")
    vol = [(src, tgt) for k, src, tgt, _ in mounts if k == "volume" and
           (data == tgt or data.startswith(tgt.rstrip("/") + "/"))]
    ck.ok(vol, "%s: --storage.tsdb.path %r is in no named volume" % (name, data))
    runtext = " ".join(d[2] for d in pdf if d[1] == "RUN")
    for _, tgt in vol:
        ck.ok(re.search(r"install -d -o prometheus -g prometheus -m 07[0-7]0\b[^&]*"
                        + re.escape(tgt) + r"(\s|$)", runtext) is not None,
              "docker/prometheus/Dockerfile: volume mount point %s is not created owned by "
              "prometheus" % tgt)
    lport = flags.get("--web.listen-address", "0.0.0.0:9090").rpartition(":")[2]
    hc = (svc.get("healthcheck") or {}).get("test") or []
    ck.ok(hc == ["CMD", "bash", "/opt/kyc-bridge/scripts/health.sh",
                 "http://127.0.0.1:%s/-/ready" % lport],
          "%s: healthcheck %s: want health.sh on /-/ready, port %s" % (name, hc, lport))
    for p in svc.get("ports") or []:
        ck.ok(p.rsplit(":", 1)[1] == lport, "%s: published %s is not the listen port %s"
              % (name, p, lport))
    scraped = set()
    for j in jobs or []:
        for sc in (j or {}).get("static_configs") or []:
            scraped |= {str(t).rpartition(":")[0] for t in (sc or {}).get("targets") or []}
    for t in sorted(scraped & set(c.services)):
        ck.ok(t in c.depends(name), "%s: scrapes %s but does not depend on it (started)"
              % (name, t))


# prometheus.yml's jobs: the daemons (at their metrics.listen) and the
# vendor sandbox (at its --listen).
SCRAPE_JOBS = ("kyc-bridge", "kyc-bridge-sandbox")


def sandbox_metrics_ports(c):
    """{service: port} of the services running `kyc-bridge sandbox` (our
    image), from their --listen: the sandbox answers GET /metrics there."""
    out = {}
    for name, svc in c.services.items():
        cmd = svc.get("command")
        if svc.get("image") != OUR_IMAGE or not isinstance(cmd, list) or cmd[:1] != ["sandbox"]:
            continue
        for i, a in enumerate(cmd):
            if a == "--listen" and i + 1 < len(cmd):
                out[name] = str(cmd[i + 1]).rpartition(":")[2]
            elif str(a).startswith("--listen="):
                out[name] = str(a).rpartition(":")[2]
    return out


def check_metric_names(ck, where, used, known):
    """Each metric name of @used is one the daemons register (a registered
    histogram's _bucket/_sum/_count too) or one Prometheus gives."""
    for name in sorted(used):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        ck.ok(name in known or name in PROM_BUILTIN or base in known,
              "%s: metric %s is not registered by the daemons "
              "(bridge/daemons/ops_http.c)" % (where, name))


def _norm_expr(e):
    return " ".join(str(e).split())


def docs_alert_rules(path):
    """The ```yaml block of docs/operations.md's "### Alert rules" section."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^### Alert rules\n(.*?)(?=^#{1,3} )", text, re.M | re.S)
    if not m:
        raise ValueError("no \"### Alert rules\" section")
    b = re.search(r"^```yaml\n(.*?)^```", m.group(1), re.M | re.S)
    if not b:
        raise ValueError("\"Alert rules\": no ```yaml block")
    return b.group(1)


def check_alert_rules(ck, c, prom, known, load_yaml):
    """prometheus.yml's rule_files: each mounted read-only from
    docker/prometheus/ where the service's config file finds it, a rules
    file whose rules each have alert, expr, annotations.summary, using only
    registered metrics; and the same alerts, exprs, `for` and labels as the
    YAML block of docs/operations.md "Alert rules"."""
    import yaml
    rf = prom.get("rule_files") if isinstance(prom, dict) else None
    if not ck.ok(isinstance(rf, list) and rf, "prometheus.yml: no rule_files (the alert "
                 "rules of docs/operations.md, docker/prometheus/alerts.yml)"):
        return
    img = [n for n, s in c.services.items() if s.get("image") == "kyc-bridge-prometheus:local"]
    if not img:
        return
    name = img[0]
    cmd = c.services[name].get("command") or []
    flags = dict(a.split("=", 1) for a in cmd if isinstance(a, str) and "=" in a)
    cfg_dir = os.path.dirname(flags.get("--config.file", "/etc/prometheus/prometheus.yml"))
    mounts = c.mounts(name)
    rules = []
    for r in rf:
        tgt = os.path.normpath(os.path.join(cfg_dir, str(r)))
        src = [s for k, s, t, ro in mounts if k == "bind" and t == tgt and ro]
        if not ck.ok(len(src) == 1 and os.path.dirname(src[0]) == os.path.join(DOCKER, "prometheus"),
                     "%s: rule file %s (rule_files of prometheus.yml) is not mounted read-only "
                     "from docker/prometheus/" % (name, tgt)):
            continue
        try:
            doc = load_yaml(src[0])
        except (OSError, yaml.YAMLError, ValueError) as e:
            ck.ok(False, "docker/prometheus/%s: %s" % (os.path.basename(src[0]), e))
            continue
        where = "docker/prometheus/%s" % os.path.basename(src[0])
        groups = doc.get("groups") if isinstance(doc, dict) else None
        if not ck.ok(isinstance(groups, list) and groups, "%s: no groups" % where):
            continue
        for g in groups:
            ck.ok(isinstance(g, dict) and g.get("name") and isinstance(g.get("rules"), list),
                  "%s: a group without name or rules" % where)
            for rule in (g or {}).get("rules") or []:
                rule = rule if isinstance(rule, dict) else {}
                a = rule.get("alert")
                ck.ok(a and rule.get("expr"), "%s: a rule without alert or expr: %r"
                      % (where, rule))
                ck.ok(set(rule) <= {"alert", "expr", "for", "labels", "annotations"},
                      "%s: %s: unknown keys %s" % (where, a, sorted(set(rule) - {
                          "alert", "expr", "for", "labels", "annotations"})))
                ck.ok(str((rule.get("annotations") or {}).get("summary") or "").strip(),
                      "%s: %s has no annotations summary" % (where, a))
                check_metric_names(ck, "%s: %s" % (where, a),
                                   promql_metrics(str(rule.get("expr", ""))), known)
                rules.append(rule)
    names = [r.get("alert") for r in rules]
    ck.ok(len(names) == len(set(names)), "rule files: an alert defined twice: %s" % names)
    # The docs show the same rules (docs/operations.md "Alert rules").
    dpath = os.path.join(ROOT, "docs", "operations.md")
    try:
        ddoc = yaml.safe_load(docs_alert_rules(dpath))
        drules = [r for g in ddoc["groups"] for r in g["rules"]]
    except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as e:
        ck.ok(False, "docs/operations.md \"Alert rules\": %s" % e)
        return
    mine = {r.get("alert"): r for r in rules}
    theirs = {r.get("alert"): r for r in drules if isinstance(r, dict)}
    ck.ok(set(mine) == set(theirs), "alerts.yml and docs/operations.md \"Alert rules\" differ: "
          "only in alerts.yml %s, only in the docs %s"
          % (sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))))
    for a in sorted(set(mine) & set(theirs)):
        m, t = mine[a], theirs[a]
        ck.ok(_norm_expr(m.get("expr")) == _norm_expr(t.get("expr")),
              "alerts.yml: %s: expr %r differs from docs/operations.md's %r"
              % (a, _norm_expr(m.get("expr")), _norm_expr(t.get("expr"))))
        for k in ("for", "labels"):
            ck.ok(m.get(k) == t.get(k), "alerts.yml: %s: %s %r differs from "
                  "docs/operations.md's %r" % (a, k, m.get(k), t.get(k)))
    for a, t in sorted(theirs.items()):
        check_metric_names(ck, "docs/operations.md \"Alert rules\": %s" % a,
                           promql_metrics(str(t.get("expr", ""))), known)


def _datasource_refs(x, out):
    """Every "datasource" object ({type, uid}) of a dashboard JSON."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "datasource" and isinstance(v, dict):
                out.append(v)
            _datasource_refs(v, out)
    elif isinstance(x, list):
        for v in x:
            _datasource_refs(v, out)
    return out


def check_grafana_service(ck, c, load_yaml):
    """The `grafana` service of the monitoring profile: Grafana's upstream
    image (Debian has no package) pinned to a release, in that profile
    only and needed by no service outside it, as the image's non-root
    user, published on loopback at its http port, healthy on /api/health,
    anonymous visitors Viewers at most; every file of docker/grafana/
    mounted read-only where the others name it: each provisioning file in
    Grafana's provisioning directory, each dashboard in the directory a
    dashboards provider's `path` names (and each provider's path holding
    one); the data source is the prometheus service at its listen port,
    which Grafana waits for; the dashboards use only provisioned data
    sources (uid and type)."""
    import yaml
    gdir = os.path.join(DOCKER, "grafana")
    names = [n for n, s in c.services.items() if is_grafana(s)]
    if not ck.ok(len(names) == 1, "compose: want one grafana service (image %s:X.Y.Z, "
                 "profile monitoring), found %s" % (GRAFANA_REPO, names)):
        return
    name = names[0]
    svc = c.services[name]
    repo, _, tag = str(svc.get("image")).partition(":")
    ck.ok(repo == GRAFANA_REPO and re.match(r"[0-9]+\.[0-9]+\.[0-9]+$", tag),
          "%s: image %s: want %s pinned to a release (X.Y.Z; not latest, main or a "
          "floating major)" % (name, svc.get("image"), GRAFANA_REPO))
    ck.ok("build" not in svc, "%s: Grafana is the upstream image, not built here" % name)
    ck.ok(svc.get("profiles") == ["monitoring"], "%s: Grafana is for the optional profile "
          "'monitoring' only (profiles: [\"monitoring\"])" % name)
    for other, s in sorted(c.services.items()):
        deps = (s.get("depends_on") or {}) if isinstance(s, dict) else {}
        ck.ok(other == name or name not in deps or s.get("profiles") == ["monitoring"],
              "%s: depends on %s: no service outside the monitoring profile may need Grafana"
              % (other, name))
    env = c.env(name)
    # Anonymous access: the dashboard without a login, never more than Viewer.
    if env.get("GF_AUTH_ANONYMOUS_ENABLED", "false") == "true":
        ck.ok(env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer") == "Viewer",
              "%s: anonymous visitors get role %r: Viewer at most"
              % (name, env.get("GF_AUTH_ANONYMOUS_ORG_ROLE")))
    port = env.get("GF_SERVER_HTTP_PORT", GRAFANA_PORT)
    ports = svc.get("ports") or []
    ck.ok(ports, "%s: not published (want \"127.0.0.1:%s:%s\")" % (name, port, port))
    for p in ports:
        ck.ok(str(p).rsplit(":", 1)[-1] == port, "%s: published %s is not Grafana's http "
              "port %s" % (name, p, port))
    hc = (svc.get("healthcheck") or {}).get("test") or []
    url = "http://127.0.0.1:%s/api/health" % port
    ck.ok(hc[:2] == ["CMD", "curl"] and hc[-1:] == [url] and any(
        a == "--fail" or (a.startswith("-") and not a.startswith("--") and "f" in a)
        for a in hc[2:-1]),
        "%s: healthcheck %s: want [\"CMD\", \"curl\", \"-f\"..., \"%s\"] (curl fails on an "
        "HTTP error only with -f)" % (name, hc, url))
    # Mounts: only docker/grafana/'s files, read-only.
    mounts = c.mounts(name)
    binds = {}
    for kind, src, tgt, ro in mounts:
        ck.ok(kind == "bind" and ro and src.startswith(gdir + os.sep),
              "%s: mount %s -> %s: want only read-only bind mounts from docker/grafana/"
              % (name, src, tgt))
        if kind == "bind":
            binds.setdefault(src, []).append(tgt)
    prov = env.get("GF_PATHS_PROVISIONING", GRAFANA_PROVISIONING)
    docs = {}
    for sub in ("datasources", "dashboards"):
        d = os.path.join(gdir, "provisioning", sub)
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not f.endswith((".yml", ".yaml")):
                continue
            want = "%s/%s/%s" % (prov, sub, f)
            ck.ok(want in binds.get(os.path.join(d, f), []),
                  "%s: docker/grafana/provisioning/%s/%s is not mounted at %s"
                  % (name, sub, f, want))
            try:
                docs[(sub, f)] = load_yaml(os.path.join(d, f))
            except (OSError, yaml.YAMLError, ValueError):
                pass  # reported by check_monitoring
    # The dashboards providers' paths = the directories the dashboards are in.
    paths = []
    for (sub, f), doc in sorted(docs.items()):
        if sub != "dashboards":
            continue
        for pr in (doc if isinstance(doc, dict) else {}).get("providers") or []:
            pr = pr if isinstance(pr, dict) else {}
            path = str((pr.get("options") or {}).get("path") or "").rstrip("/")
            ck.ok(pr.get("type", "file") == "file" and path.startswith("/"),
                  "dashboards provider %s (%s): want type file with an absolute options.path"
                  % (pr.get("name"), f))
            paths.append(path)
    dash_dirs = set()
    mounted_dash = set()
    for f in sorted(os.listdir(gdir)) if os.path.isdir(gdir) else []:
        if not f.endswith(".json"):
            continue
        tg = binds.get(os.path.join(gdir, f), [])
        ck.ok(tg and all(posix_dir(t) in paths for t in tg),
              "%s: docker/grafana/%s is mounted at %s, not in a dashboards provider's path %s"
              % (name, f, tg, paths))
        dash_dirs |= {posix_dir(t) for t in tg}
        mounted_dash |= set(tg)
    for path in paths:
        ck.ok(path in dash_dirs, "dashboards provider path %s: no dashboard mounted there "
              "(%s)" % (path, sorted(mounted_dash)))
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    ck.ok(home is None or home in mounted_dash, "%s: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH "
          "%s is no mounted dashboard (%s)" % (name, home, sorted(mounted_dash)))
    # Data sources: Prometheus = the prometheus service at its listen port.
    proms = {}
    for n, s in c.services.items():
        if s.get("image") == "kyc-bridge-prometheus:local":
            flags = dict(a.split("=", 1) for a in s.get("command") or []
                         if isinstance(a, str) and "=" in a)
            proms[n] = flags.get("--web.listen-address", "0.0.0.0:9090").rpartition(":")[2]
    uids = {}
    for (sub, f), doc in sorted(docs.items()):
        if sub != "datasources":
            continue
        for ds in (doc if isinstance(doc, dict) else {}).get("datasources") or []:
            ds = ds if isinstance(ds, dict) else {}
            uids[ds.get("uid")] = ds.get("type")
            if ds.get("type") != "prometheus":
                continue
            u = re.match(r"http://([A-Za-z0-9_.-]+):([0-9]+)/?$", str(ds.get("url")))
            host, dport = (u.group(1), u.group(2)) if u else (None, None)
            ck.ok(host in proms and dport == proms[host],
                  "datasources/%s: %s url %s: want http://SERVICE:PORT of the prometheus "
                  "service at its --web.listen-address port (%s)" % (
                      f, ds.get("name"), ds.get("url"),
                      ", ".join("http://%s:%s" % kv for kv in sorted(proms.items()))))
            if host in proms:
                ck.ok(host in c.depends(name), "%s: its data source is %s but it does not "
                      "depend on it" % (name, host))
    for f in sorted(os.listdir(gdir)) if os.path.isdir(gdir) else []:
        if not f.endswith(".json"):
            continue
        try:
            with open(os.path.join(gdir, f)) as fh:
                dash = json.load(fh)
        except (OSError, ValueError):
            continue  # reported by check_monitoring
        for ref in _datasource_refs(dash, []):
            uid = ref.get("uid")
            if str(uid).startswith("$") or uid in ("-- Grafana --", "grafana"):
                continue
            ck.ok(uid in uids and ref.get("type") in (None, uids[uid]),
                  "grafana/%s: uses data source uid %r (type %r), not a provisioned one %s"
                  % (f, uid, ref.get("type"), sorted(map(str, uids))))


def posix_dir(path):
    return path.rpartition("/")[0]


def check_monitoring(ck, c, metrics_ports):
    """docker/prometheus/prometheus.yml and docker/grafana/: they parse
    (YAML, JSON), the scrape targets are the daemons' services at the port
    of their metrics.listen (@metrics_ports, {service: port} from the
    rendered configs), the prometheus service loads this file, and every
    metric a dashboard panel reads is one the daemons register (a
    histogram's _bucket/_sum/_count of a registered histogram too)."""
    pdir = os.path.join(DOCKER, "prometheus")
    gdir = os.path.join(DOCKER, "grafana")
    if not ck.ok(os.path.isdir(pdir) and os.path.isdir(gdir),
                 "docker/prometheus and docker/grafana: want both (the monitoring profile)"):
        return
    known = registered_metrics()
    # Prometheus's and Grafana's files need mappings inside sequences,
    # outside load_yaml's subset: Debian's python3-yaml reads them.
    try:
        import yaml
    except ImportError:
        ck.ok(False, "docker/prometheus, docker/grafana: python3-yaml is needed "
              "to check them (apt-get install python3-yaml)")
        return

    def load_yaml(path):  # noqa: F811 -- the full YAML here
        with open(path) as f:
            return yaml.safe_load(f)
    try:
        prom = load_yaml(os.path.join(pdir, "prometheus.yml"))
    except (OSError, yaml.YAMLError, ValueError) as e:
        ck.ok(False, "prometheus.yml: %s" % e)
        prom = None
    if prom is not None:
        jobs = prom.get("scrape_configs") if isinstance(prom, dict) else None
        ck.ok(isinstance(jobs, list) and jobs, "prometheus.yml: no scrape_configs")
        targets = []
        by_job = {}
        for j in jobs or []:
            jt = []
            for sc in (j or {}).get("static_configs") or []:
                jt += (sc or {}).get("targets") or []
            by_job.setdefault((j or {}).get("job_name"), []).extend(jt)
            targets += jt
        services = set(c.services)
        sandbox_ports = sandbox_metrics_ports(c)
        ck.ok(targets, "prometheus.yml: no targets")
        ck.ok(set(by_job) <= set(SCRAPE_JOBS), "prometheus.yml: jobs %s, want only %s"
              % (sorted(map(str, by_job)), ", ".join(SCRAPE_JOBS)))
        ck.ok(len(jobs or []) == len(by_job), "prometheus.yml: a job_name listed twice")
        for job, jt in sorted(by_job.items(), key=lambda kv: str(kv[0])):
            for t in jt:
                host, _, port = str(t).rpartition(":")
                ck.ok(host in services, "prometheus.yml: target %s is no compose service" % t)
                if job == "kyc-bridge-sandbox":
                    ck.ok(host in sandbox_ports and port == sandbox_ports[host],
                          "prometheus.yml: job kyc-bridge-sandbox: target %s is not the "
                          "sandbox at the port of its --listen (%s)"
                          % (t, ", ".join("%s:%s" % kv for kv in sorted(sandbox_ports.items()))))
                    continue
                ck.ok(host not in metrics_ports or port == metrics_ports[host],
                      "prometheus.yml: target %s: %s serves /metrics on port %s (metrics.listen "
                      "of its config template)" % (t, host, metrics_ports.get(host)))
                ck.ok(host in metrics_ports, "prometheus.yml: target %s is not a daemon with "
                      "metrics.listen (%s)" % (t, ", ".join(sorted(metrics_ports))))
        ck.ok(set(metrics_ports) <= {str(t).rpartition(":")[0]
                                     for t in by_job.get("kyc-bridge", [])},
              "prometheus.yml: job kyc-bridge does not scrape every daemon (%s)"
              % ", ".join(sorted(metrics_ports)))
        ck.ok(set(sandbox_ports) <= {str(t).rpartition(":")[0]
                                     for t in by_job.get("kyc-bridge-sandbox", [])},
              "prometheus.yml: job kyc-bridge-sandbox does not scrape the sandbox (%s)"
              % ", ".join(sorted(sandbox_ports)))
        ck.ok(len(targets) == len(set(targets)), "prometheus.yml: a target listed twice")
        for j in jobs or []:
            ck.ok((j or {}).get("metrics_path", "/metrics") == "/metrics",
                  "prometheus.yml: job %s: metrics_path %r, the daemons serve /metrics"
                  % ((j or {}).get("job_name"), (j or {}).get("metrics_path")))
        check_prometheus_service(ck, c, jobs)
        check_alert_rules(ck, c, prom, known, load_yaml)
    for sub in ("datasources", "dashboards"):
        d = os.path.join(gdir, "provisioning", sub)
        files = sorted(f for f in os.listdir(d) if f.endswith((".yml", ".yaml"))) \
            if os.path.isdir(d) else []
        ck.ok(files, "grafana: no provisioning file in %s" % d)
        for f in files:
            try:
                doc = load_yaml(os.path.join(d, f))
                ck.ok(isinstance(doc, dict) and doc.get("apiVersion") in (1, "1"),
                      "grafana provisioning %s/%s: apiVersion 1 expected" % (sub, f))
            except (OSError, yaml.YAMLError, ValueError) as e:
                ck.ok(False, "grafana provisioning %s/%s: %s" % (sub, f, e))
    check_grafana_service(ck, c, load_yaml)
    dashboards = sorted(f for f in os.listdir(gdir) if f.endswith(".json")) \
        if os.path.isdir(gdir) else []
    ck.ok(dashboards, "grafana: no dashboard JSON in %s" % gdir)
    for f in dashboards:
        try:
            with open(os.path.join(gdir, f)) as fh:
                dash = json.load(fh)
        except (OSError, ValueError) as e:
            ck.ok(False, "grafana/%s: %s" % (f, e))
            continue
        exprs = [t.get("expr", "") for p in dash.get("panels", [])
                 for t in p.get("targets", [])]
        ck.ok(exprs, "grafana/%s: no PromQL expression" % f)
        used = set()
        for e in exprs:
            used |= promql_metrics(e)
        check_metric_names(ck, "grafana/%s" % f, used, known)
        ck.ok(any(n.startswith("kyc_bridge_") for n in used),
              "grafana/%s: reads no kyc_bridge_ metric" % f)
        # Every selector of a daemon family (all but build_info, which has
        # no daemon label) follows the dashboard's $daemon variable.
        for e in exprs:
            for m in re.finditer(r"\b(kyc_bridge_[a-z0-9_]+)(\{[^}]*\})?", e):
                if m.group(1) == "kyc_bridge_build_info":
                    continue
                ck.ok('daemon=~"$daemon"' in (m.group(2) or ""),
                      "grafana/%s: %s is not filtered by daemon=~\"$daemon\" in %s"
                      % (f, m.group(1), e))


# ---------------------------------------------------------------- offline Kafka

KAFKA_STANDIN = "kyc-bridge-kafka:local"


def check_offline(ck, c):
    """docker-compose.offline.yml: every service that runs apache/kafka runs
    the stand-in built from docker/kafka/Dockerfile instead, and nothing
    else changes; that image has every Kafka tool the jobs and healthchecks
    call, Debian's JRE on the runtime stage's base, and the launcher."""
    path = os.path.join(DOCKER, "docker-compose.offline.yml")
    try:
        o = load_yaml(path)
    except (OSError, YamlError, ValueError) as e:
        ck.ok(False, "docker-compose.offline.yml: %s" % e)
        return
    for k in o:
        ck.ok(k == "services" or k.startswith("x-"),
              "docker-compose.offline.yml: unexpected top-level key %r" % k)
    osvc = o.get("services") or {}
    kafka_svcs = {n for n, v in c.services.items()
                  if str(v.get("image", "")).startswith("apache/kafka:")}
    ck.ok(set(osvc) == kafka_svcs, "docker-compose.offline.yml: overrides %s; the services "
          "running apache/kafka are %s" % (sorted(osvc), sorted(kafka_svcs)))
    kdir = os.path.join(DOCKER, "kafka")
    for n, v in osvc.items():
        if not ck.ok(isinstance(v, dict) and set(v) == {"image", "build"},
                     "docker-compose.offline.yml: %s: want image and build only" % n):
            continue
        ck.ok(v["image"] == KAFKA_STANDIN, "docker-compose.offline.yml: %s: image %r, want %s"
              % (n, v["image"], KAFKA_STANDIN))
        b = v["build"]
        ok = isinstance(b, dict) and set(b) <= {"context", "dockerfile"}
        ctx = os.path.normpath(os.path.join(DOCKER, b.get("context", "."))) if ok else ""
        ck.ok(ok and os.path.isdir(ctx) and os.path.samefile(ctx, kdir) and
              b.get("dockerfile", "Dockerfile") == "Dockerfile",
              "docker-compose.offline.yml: %s: build: want context ./kafka, Dockerfile" % n)
    try:
        kdf = load_dockerfile(os.path.join(kdir, "Dockerfile"))
    except (OSError, ValueError) as e:
        ck.ok(False, "docker/kafka/Dockerfile: %s" % e)
        return
    runtime_from = [d[2] for d in load_dockerfile(os.path.join(DOCKER, "Dockerfile"))
                    if d[1] == "FROM" and d[0] == "runtime"]
    base = runtime_from[0].split()[0] if runtime_from else "debian:bookworm-slim"
    ck.ok([d[2] for d in kdf if d[1] == "FROM"] == [base],
          "docker/kafka/Dockerfile: want one stage FROM %s (the runtime stage's base)" % base)
    pk = []
    for d in kdf:
        if d[1] == "RUN" and "apt-get install" in d[2]:
            pk += apt_packages(d[2]) or []
            ck.ok("--no-install-recommends" in d[2], "docker/kafka/Dockerfile:%d: apt-get "
                  "install without --no-install-recommends" % d[3])
            ck.ok("rm -rf /var/lib/apt/lists" in d[2],
                  "docker/kafka/Dockerfile:%d: apt lists left in the layer" % d[3])
    ck.ok(pk == ["openjdk-17-jre-headless"], "docker/kafka/Dockerfile: installs %s, want "
          "openjdk-17-jre-headless only (Kafka 4 needs Java 17)" % pk)
    copies = {tuple(d[2].split()) for d in kdf if d[1] == "COPY"}
    for src, dst in (("lib/", "/opt/kafka/libs/"), ("bin/", "/opt/kafka/bin/"),
                     ("kafka-launch.sh", "/etc/kafka/docker/run")):
        ck.ok((src, dst) in copies, "docker/kafka/Dockerfile: want COPY %s %s" % (src, dst))
    ck.ok(os.path.isfile(os.path.join(kdir, "kafka-launch.sh")),
          "docker/kafka/kafka-launch.sh missing")
    cmd = [d[2] for d in kdf if d[1] in ("CMD", "ENTRYPOINT")]
    ck.ok(cmd == ['["/etc/kafka/docker/run"]'], "docker/kafka/Dockerfile: want only "
          "CMD [\"/etc/kafka/docker/run\"] (the official image's launcher path)")
    ck.ok(not os.path.exists(os.path.join(kdir, "lib")),
          "docker/kafka/lib: the jars are staged outside the repository (kafka.sh stage-image)")
    # The tools: what the jobs' scripts run from KAFKA_BIN, and what the
    # overridden services' healthchecks and commands name.
    tools = set()
    for f in sorted(os.listdir(os.path.join(DOCKER, "scripts"))):
        if f.endswith(".sh"):
            with open(os.path.join(DOCKER, "scripts", f)) as fh:
                tools |= set(re.findall(r'"\$kbin/([a-z0-9-]+\.sh)"', fh.read()))
    for n in osvc:
        v = c.services.get(n) or {}
        argv = list((v.get("healthcheck") or {}).get("test") or []) + \
            list(v.get("command") or []) + list(v.get("entrypoint") or [])
        tools |= {os.path.basename(a) for a in argv if str(a).startswith("/opt/kafka/bin/")}
    ck.ok(bool(tools), "compose: no Kafka tool found in docker/scripts (\"$kbin/NAME.sh\")")
    for t in sorted(tools):
        f = os.path.join(kdir, "bin", t)
        ck.ok(os.path.isfile(f) and os.access(f, os.X_OK),
              "docker/kafka/bin/%s: missing or not executable (called by the compose "
              "services)" % t)
    # The launcher needs the cluster id and the log directory; the data
    # volume's mount point exists in the image, owned by the broker's user.
    k = [n for n in osvc if "KAFKA_PROCESS_ROLES" in (c.services[n].get("environment") or {})]
    if ck.ok(len(k) == 1, "docker-compose.offline.yml: want the broker service overridden"):
        ke = c.env(k[0])
        ck.ok("CLUSTER_ID" in ke and "KAFKA_LOG_DIRS" in ke,
              "kafka: CLUSTER_ID and KAFKA_LOG_DIRS needed (the launcher formats the storage)")
        run = " ".join(d[2] for d in kdf if d[1] == "RUN")
        for kind, _src, tgt, _ro in c.mounts(k[0]):
            if kind == "volume":
                ck.ok(re.search(r"install -d -o appuser [^&]*%s(\s|$)" % re.escape(tgt), run)
                      is not None, "docker/kafka/Dockerfile: volume mount point %s is not "
                      "created owned by appuser" % tgt)


def cmd_check(args):
    ck = Checker()
    try:
        c = Compose()
    except (YamlError, ValueError) as e:
        print("FAIL: " + str(e))
        return 1
    df = load_dockerfile(os.path.join(DOCKER, "Dockerfile"))
    work = tempfile.mkdtemp(prefix="kb-compose-check-")
    try:
        check_compose(ck, c, df)
        check_addresses(ck, c)
        metrics_ports = check_configs(ck, c, df, args.kb_bin, work)
        check_dockerfile(ck, c, df, args.kb_bin)
        check_volumes(ck, c, df)
        check_local_steps(ck, c)
        check_monitoring(ck, c, metrics_ports)
        check_offline(ck, c)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("compose_check: %d checks passed, %d failed" % (ck.passes, len(ck.fails)))
    return 1 if ck.fails else 0


def cmd_build(args):
    """Replays the build stage on the host."""
    df = load_dockerfile(os.path.join(DOCKER, "Dockerfile"))
    pats = load_dockerignore(os.path.join(ROOT, ".dockerignore"))
    work = tempfile.mkdtemp(prefix="kb-docker-build-")
    try:
        ctx = os.path.join(work, "context")
        n = 0
        for dp, dns, fns in os.walk(ROOT):
            rel = os.path.relpath(dp, ROOT)
            rel = "" if rel == "." else rel
            # Skip a directory that is ignored and that no '!' pattern
            # reaches into (build directories are large).
            dns[:] = [d for d in dns
                      if not ignored(pats, os.path.join(rel, d))
                      or any(neg and raw.startswith(os.path.join(rel, d) + "/")
                             for neg, _, raw in pats)]
            for fn in fns:
                r = os.path.join(rel, fn)
                if not ignored(pats, r):
                    os.makedirs(os.path.join(ctx, rel), exist_ok=True)
                    shutil.copy2(os.path.join(ROOT, r), os.path.join(ctx, r))
                    n += 1
        print("build: context of %d files (.dockerignore applied)" % n)
        fs = os.path.join(work, "fs")
        cwd = fs
        for stage, ins, a, line in stage_of(df, "build"):
            if ins == "FROM":
                continue
            if ins == "WORKDIR":
                cwd = os.path.join(fs, a.lstrip("/"))
                os.makedirs(cwd, exist_ok=True)
            elif ins == "COPY":
                w = a.split()
                if any(x.startswith("--") for x in w):
                    print("FAIL: Dockerfile:%d: COPY options in the build stage" % line)
                    return 1
                dst = os.path.join(cwd, w[-1])
                for s in w[:-1]:
                    src = os.path.join(ctx, s)
                    if not os.path.exists(src):
                        print("FAIL: Dockerfile:%d: COPY %s: not in the context" % (line, s))
                        return 1
                    if os.path.isdir(src):
                        shutil.copytree(src, dst if not w[-1].endswith("/") or len(w) == 2
                                        else os.path.join(dst, os.path.basename(s)),
                                        dirs_exist_ok=True)
                    else:
                        os.makedirs(dst if w[-1].endswith("/") else os.path.dirname(dst),
                                    exist_ok=True)
                        shutil.copy2(src, dst if not w[-1].endswith("/")
                                     else os.path.join(dst, os.path.basename(s)))
            elif ins == "RUN":
                pk = apt_packages(a)
                if pk is not None:
                    missing = [p for p in pk if subprocess.run(
                        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                        text=True).stdout != "install ok installed"]
                    if missing:
                        print("FAIL: Dockerfile:%d: build packages not installed here: %s"
                              % (line, " ".join(missing)))
                        return 1
                    print("build: Dockerfile:%d: packages present on the host: %s"
                          % (line, " ".join(pk)))
                    continue
                print("build: Dockerfile:%d: RUN %s" % (line, a))
                # nproc honours OMP_NUM_THREADS: at most -j2 on the test machines.
                r = subprocess.run(["sh", "-c", a], cwd=cwd,
                                   env=dict(os.environ, OMP_NUM_THREADS="2"))
                if r.returncode != 0:
                    print("FAIL: Dockerfile:%d: RUN exited %d" % (line, r.returncode))
                    return 1
            elif ins in ("ARG", "ENV", "LABEL"):
                print("FAIL: Dockerfile:%d: %s in the build stage is not replayed" % (line, ins))
                return 1
        # What the runtime stage copies out of the build stage.
        for stage, ins, a, line in stage_of(df, "runtime"):
            if ins == "COPY" and a.startswith("--from=build"):
                src = a.split()[1]
                p = os.path.join(fs, src.lstrip("/"))
                if not os.path.isfile(p) or not os.access(p, os.X_OK):
                    print("FAIL: Dockerfile:%d: %s was not built" % (line, src))
                    return 1
                r = subprocess.run([p, "version"], capture_output=True, text=True)
                if r.returncode != 0:
                    print("FAIL: %s version exited %d" % (src, r.returncode))
                    return 1
                print("build: %s: %s" % (src, r.stdout.strip()))
                ck = Checker()
                check_dockerfile(ck, Compose(), df, p)
                if ck.fails:
                    return 1
        print("build: OK")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("build: kept %s" % work)


def cmd_plan(args):
    c = Compose()
    df = load_dockerfile(os.path.join(DOCKER, "Dockerfile"))
    if args.service not in c.services:
        print("compose_check: no service %s" % args.service, file=sys.stderr)
        return 2
    root = os.path.abspath(args.root)

    def tr(v):
        for tok in (v,):
            if tok.startswith("/"):
                hp = host_path(c, args.service, tok, root)
                if hp is not None:
                    return hp
        return v
    out = []
    for k, v in sorted(c.env(args.service).items()):
        out.append("export %s=%s" % (k, shlex.quote(tr(v))))
    try:
        argv = [tr(a) for a in c.argv(args.service, df)]
    except ValueError as e:
        print("compose_check: %s" % e, file=sys.stderr)
        return 2
    out.append("set -- " + " ".join(shlex.quote(a) for a in argv))
    print("\n".join(out))
    return 0


# Each mutation breaks one thing the check must notice: (file, old, new,
# text the failure must contain). None as the text: the check must still pass.
MUTATIONS = [
    ("docker/docker-compose.yml", ', "--webhook-allow-host", "importer"]', ']',
     "lacks --webhook-allow-host importer"),
    ("docker/docker-compose.yml", '"127.0.0.1:8480:8480"', '"8480:8480"',
     "must be published as"),
    ("docker/docker-compose.yml", "      keygen:\n        condition: service_completed",
     "      keygn:\n        condition: service_completed", "depends on unknown service keygn"),
    ("docker/docker-compose.yml", "VENDOR_URL: http://sandbox:8480",
     "VENDOR_URL: http://sandbox:8481", "VENDOR_URL http://sandbox:8481"),
    ("docker/docker-compose.yml", "./config:/opt/kyc-bridge/config:ro",
     "./config:/opt/kyc-bridge/config", "must be read-only"),
    ("docker/docker-compose.yml", "./scripts:/opt/kyc-bridge/scripts:ro",
     "./scriptz:/opt/kyc-bridge/scripts:ro", "bind mount source"),
    ("docker/docker-compose.yml", "image: apache/kafka:4.3.1", "image: apache/kafka:4.2.0",
     "scripts/kafka.sh"),
    ("docker/docker-compose.yml", 'SHARE_COUNT: "6"', 'SHARE_COUNT: "${N}"', "'$' in a value"),
    ("docker/docker-compose.yml", 'restart: "no"', "restart: no", "boolean"),
    ("docker/docker-compose.yml", "    hostname: kafka\n", "    hostname: kafka\n    hostname: k\n",
     "duplicate key"),
    ("docker/docker-compose.yml", '    user: "10001:10001"\n', "",
     "runs neither our image nor as"),
    ("docker/docker-compose.yml", "      sandbox:\n        condition: service_healthy",
     "      sandbox:\n        condition: service_started", "without waiting for it healthy"),
    ("docker/docker-compose.yml", "kyc-bridge.issuer-dlq kyc-bridge.importer-dlq",
     "kyc-bridge.importer-dlq", "WATCH_TOPICS"),
    ("docker/docker-compose.yml", "PLAINTEXT://kafka:9092,", "PLAINTEXT://kafka:9094,",
     "no listener on that port"),
    ("docker/docker-compose.yml", "      KAFKA_BOOTSTRAP: kafka:9092\n      ISSUER_WEBHOOK_LISTEN:",
     "      KAFKA_BOOTSTRAP: kafka:9092\n      VENDOR_API_KEY: abc\n      ISSUER_WEBHOOK_LISTEN:",
     "looks like a secret"),
    ("docker/docker-compose.yml",
     "      - issuer-secrets:/var/lib/kyc-bridge/issuer:ro\n      - exchange:/var/lib/kyc-bridge/exchange:ro\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    healthcheck:",
     "      - exchange:/var/lib/kyc-bridge/exchange:ro\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    healthcheck:",
     "in no"),
    ("docker/config/topics.txt", "kyc-bridge.importer-dlq      1", "kyc-bridge.importer-dlx      1",
     "topics.txt lists"),
    ("docker/config/topics.txt", "  cleanup.policy=compact", "", "must be compacted"),
    ("docker/config/topics.txt", "kyc-bridge.issuer-state      3", "kyc-bridge.issuer-state      2",
     "at least as many partitions"),
    ("docker/config/topics.txt", "kyc-bridge.importer-state    3  cleanup.policy=compact",
     "kyc-bridge.importer-state    3", "(importer.state_topic) must be compacted"),
    ("docker/config/topics.txt", "kyc-bridge.importer-state    3  cleanup.policy=compact\n", "",
     "topics.txt lists"),
    ("docker/config/topics.txt", "kyc-bridge.importer-dlq      1",
     "kyc-bridge.importer-dlq      1  cleanup.policy=compact", "must not be compacted"),
    ("docker/config/importer.conf", "importer.state_topic = kyc-bridge.importer-state",
     "importer.state_topic = kyc-bridge.issuer-state", "are both kyc-bridge.issuer-state"),
    # The default of importer.state_topic is the name topics.txt has.
    ("docker/config/importer.conf", "importer.state_topic = kyc-bridge.importer-state\n", "",
     None),
    ("docker/config/issuer.conf", "issuer.dlq_topic =", "issuer.dlq_topics =", "is not an option"),
    ("docker/config/issuer.conf", "vendor.url = @VENDOR_URL@", "vendor.url = http://sandbox:9999",
     "vendor.url is 'http://sandbox:9999'"),
    ("docker/config/importer.conf", "kafka.bootstrap.servers = @KAFKA_BOOTSTRAP@\n", "",
     "kafka.bootstrap.servers is None"),
    ("docker/config/issuer.conf", "partner.y.keys = @KB_STATE_DIR@/exchange/partner.pub.json",
     "partner.y.keys = @KB_STATE_DIR@/exchange/partner.pub.jsn", "names a missing file"),
    ("docker/config/issuer.conf", "partner.y.keys =", "partner.y.trust_review = true\npartner.y.keys =",
     "not by the issuer"),
    ("docker/config/issuer.conf", "@PARTNER_APPLICATION_ID@", "@PARTNER_APP_ID@",
     "not exported by setup.sh"),
    ("docker/config/importer.conf", "importer.output_topic = kyc-bridge.imported-sessions",
     "importer.output_topic = kyc-bridge.imported", "topics.txt lists"),
    # The default of importer.output_topic is the name topics.txt has.
    ("docker/config/importer.conf", "importer.output_topic = kyc-bridge.imported-sessions\n", "",
     None),
    ("docker/Dockerfile", "        ca-certificates \\\n", "        ca-certificates curl \\\n",
     "runtime packages"),
    ("docker/Dockerfile", "USER 10001:10001", "USER root", "USER"),
    ("docker/Dockerfile", "        /var/lib/kyc-bridge/sandbox \\\n", "",
     "/var/lib/kyc-bridge/sandbox is not created"),
    (".dockerignore", "!bridge\n", "", "excluded by .dockerignore"),
    ("scripts/compose-local.sh", "step keygen\noneshot keygen\n\nstep setup\n",
     "step setup\noneshot setup\n\nstep keygen\noneshot keygen\n", "compose-local.sh runs"),
    ("scripts/compose-local.sh", "step review-job\n", "", "compose-local.sh steps"),
    # --- the webhook flows (issue 9)
    # Each daemon listens on the compose network, where the sandbox is.
    ("docker/config/issuer.conf", "webhook.listen = @ISSUER_WEBHOOK_LISTEN@\n", "",
     "webhook.listen is empty"),
    ("docker/config/importer.conf", "webhook.listen = @PARTNER_WEBHOOK_LISTEN@\n", "",
     "webhook.listen is empty"),
    ("docker/docker-compose.yml", "ISSUER_WEBHOOK_LISTEN: 0.0.0.0:8490",
     "ISSUER_WEBHOOK_LISTEN: 127.0.0.1:8490", "must listen on the compose network"),
    ("docker/config/issuer.conf", "vendor.allow_insecure_http = true\n", "",
     "vendor.allow_insecure_http"),
    ("docker/config/importer.conf", "kafka_allow_plaintext = true\n", "",
     "kafka_allow_plaintext"),
    ("docker/config/issuer.conf", "webhook.allow_non_loopback = true\n", "",
     "needs webhook.allow_non_loopback"),
    # The URL setup.sh registers = the daemon's service, port and path.
    ("docker/docker-compose.yml", "ISSUER_WEBHOOK_URL: http://issuer:8490/",
     "ISSUER_WEBHOOK_URL: http://issuer:8491/", "the issuer listens on port 8490"),
    ("docker/docker-compose.yml", "PARTNER_WEBHOOK_URL: http://importer:8491/",
     "PARTNER_WEBHOOK_URL: http://issuer:8491/", "the importer's intake is the importer service"),
    ("docker/config/importer.conf", "webhook.path = /webhooks/vendor",
     "webhook.path = /webhooks/partner", "webhook.path is /webhooks/partner"),
    ("docker/scripts/setup.sh", 'webhook partner "$PARTNER_WEBHOOK_URL" destination',
     'webhook issuer "$PARTNER_WEBHOOK_URL" destination', "setup.sh registers"),
    # The daemons' healthchecks ask their intakes; the jobs wait for them.
    ("docker/docker-compose.yml", '"http://127.0.0.1:8490/readyz"',
     '"http://127.0.0.1:8480/readyz"', "healthcheck"),
    ("docker/docker-compose.yml", "      issuer:\n        condition: service_healthy",
     "      issuer:\n        condition: service_started", "wait for service_healthy"),
    ("docker/docker-compose.yml",
     '    command: ["issuer", "-c", "/var/lib/kyc-bridge/issuer/issuer.conf"]\n',
     '    command: ["issuer", "-c", "/var/lib/kyc-bridge/issuer/issuer.conf"]\n'
     '    ports:\n      - "127.0.0.1:8490:8490"\n', "is published"),
    # Webhook secrets: written 0600 by setup into the party's own volume,
    # named there by its config, mounted only by its own services.
    ("docker/config/importer.conf", "webhook.secret = file:@KB_STATE_DIR@/partner/webhook-secret",
     "webhook.secret = file:@KB_STATE_DIR@/issuer/webhook-secret",
     "is in no volume of the importer service"),
    ("docker/config/issuer.conf", "webhook.secret = file:@KB_STATE_DIR@/issuer/webhook-secret",
     "webhook.secret = file:@KB_STATE_DIR@/exchange/webhook-secret",
     "not in the issuer's own volume"),
    ("docker/scripts/setup.sh", 'kb_write_file "$state/$party/webhook-secret" 0600',
     'kb_write_file "$state/exchange/webhook-secret" 0600', "outside the parties' own volumes"),
    ("docker/scripts/setup.sh", 'kb_write_file "$state/$party/webhook-secret" 0600',
     'kb_write_file "$state/$party/webhook-secret" 0644', "must be 0600"),
    ("docker/scripts/setup.sh", 'kb_write_file "$state/$party/webhook-secret" 0600',
     'kb_write_file "$state/$party/webhook-key" 0600', "names a missing file"),
    ("docker/docker-compose.yml",
     "      - partner-secrets:/var/lib/kyc-bridge/partner:ro\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      setup:",
     "      - issuer-secrets:/var/lib/kyc-bridge/issuer:ro\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      setup:",
     "reads $state/partner/ but the service mounts no volume"),
    ("docker/docker-compose.yml",
     "      - partner-secrets:/var/lib/kyc-bridge/partner:ro\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      setup:",
     "      - partner-secrets:/var/lib/kyc-bridge/partner:ro\n      - issuer-secrets:/var/lib/kyc-bridge/issuer:ro\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      setup:",
     "never uses it: only a party's own services"),
    # The rule: validated by the product, its workflow made by setup.sh.
    ("docker/config/issuer.conf", "rule.auto-share.partners = y", "rule.auto-share.partners = z",
     "unknown partner"),
    ("docker/config/issuer.conf", "@ISSUER_WORKFLOW_RULE@", "@ISSUER_WORKFLOW_AUTO@",
     "not exported by setup.sh"),
    # The status topic: listed, a stream (not compacted), co-partitioned
    # with the imported sessions, its own topic, watched, the job's.
    ("docker/config/topics.txt", "kyc-bridge.session-status    3\n", "", "topics.txt lists"),
    ("docker/config/topics.txt", "kyc-bridge.session-status    3",
     "kyc-bridge.session-status    3  cleanup.policy=compact", "must not be compacted"),
    ("docker/config/topics.txt", "kyc-bridge.session-status    3",
     "kyc-bridge.session-status    1", "same partition count"),
    ("docker/config/importer.conf", "importer.status_topic = kyc-bridge.session-status",
     "importer.status_topic = kyc-bridge.imported-sessions", "one topic, one purpose"),
    ("docker/config/importer.conf", "importer.state_topic = kyc-bridge.importer-state",
     "importer.state_topic = kyc-bridge.importer-dlq", "one topic, one purpose"),
    # The default of importer.status_topic is the name topics.txt has.
    ("docker/config/importer.conf", "importer.status_topic = kyc-bridge.session-status\n", "",
     None),
    ("docker/docker-compose.yml", "kyc-bridge.imported-sessions kyc-bridge.session-status ",
     "kyc-bridge.imported-sessions ", "WATCH_TOPICS"),
    ("docker/docker-compose.yml", "STATUS_TOPIC: kyc-bridge.session-status",
     "STATUS_TOPIC: kyc-bridge.status", "STATUS_TOPIC"),
    # --- health and monitoring (issue 10)
    # metrics.listen: set, the intake's address, reachable by Prometheus.
    ("docker/config/issuer.conf", "metrics.listen = @ISSUER_METRICS_LISTEN@\n", "",
     "metrics.listen is empty"),
    ("docker/docker-compose.yml", "PARTNER_METRICS_LISTEN: 0.0.0.0:8491",
     "PARTNER_METRICS_LISTEN: 0.0.0.0:9464", "is not webhook.listen"),
    ("docker/config/importer.conf", "metrics.allow_non_loopback = true\n", "",
     "needs metrics.allow_non_loopback"),
    ("docker/docker-compose.yml", "      ISSUER_METRICS_LISTEN: 0.0.0.0:8490\n", "",
     "needs ISSUER_METRICS_LISTEN"),
    ("docker/scripts/setup.sh", "        ISSUER_METRICS_LISTEN PARTNER_METRICS_LISTEN\n",
     "        ISSUER_METRICS_LISTEN\n", "@PARTNER_METRICS_LISTEN@ is not exported"),
    # The daemons' healthchecks ask /readyz on that port, at a sane pace.
    ("docker/docker-compose.yml", '"http://127.0.0.1:8490/readyz"',
     '"http://127.0.0.1:8490/webhooks/vendor", "405"', "healthcheck"),
    ("docker/docker-compose.yml", '"http://127.0.0.1:8491/readyz"',
     '"http://127.0.0.1:8490/readyz"', "healthcheck"),
    ("docker/docker-compose.yml", '"http://127.0.0.1:8491/readyz"]\n      interval: 5s',
     '"http://127.0.0.1:8491/readyz"]\n      interval: 120s', "at most every 30 s"),
    # Prometheus scrapes each daemon at its metrics.listen port.
    ("docker/prometheus/prometheus.yml", '"importer:8491"', '"importer:9464"',
     "importer serves /metrics on port 8491"),
    ("docker/prometheus/prometheus.yml", '          - "importer:8491"\n', "",
     "does not scrape every daemon"),
    ("docker/prometheus/prometheus.yml", '"issuer:8490"', '"sandbox:8480"',
     "is not a daemon with metrics.listen"),
    ("docker/prometheus/prometheus.yml", "metrics_path: /metrics", "metrics_path: /metricz",
     "metrics_path"),
    ("docker/prometheus/prometheus.yml", "  - job_name: kyc-bridge\n", "  - job_name: kyc-bridge\n  bad\n",
     "prometheus.yml"),
    # The prometheus service: optional, built from Debian's package, its
    # config mounted where --config.file says, its data in a volume.
    ("docker/docker-compose.yml", '    profiles: ["monitoring"]\n', "",
     "is for the optional profile"),
    ("docker/docker-compose.yml", 'profiles: ["monitoring"]', 'profiles: ["monitor"]',
     "want a list of"),
    ("docker/docker-compose.yml", 'profiles: ["monitoring"]', 'profile: ["monitoring"]',
     "unknown or unexpected key 'profile'"),
    ("docker/docker-compose.yml", "      LOG_DIR: /tmp\n    volumes:\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      topics:\n",
     "      LOG_DIR: /tmp\n    volumes:\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      prometheus:\n        condition: service_started\n      topics:\n",
     "a service of an optional profile"),
    ("docker/docker-compose.yml", "image: kyc-bridge-prometheus:local", "image: prom/prometheus:v2.42.0",
     "a built service must be tagged"),
    ("docker/docker-compose.yml", "      context: ./prometheus\n", "      context: .\n",
     "whose context is docker/prometheus"),
    ("docker/docker-compose.yml", "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
     "./prometheus/prometheus.yml:/etc/prometheus/prom.yml:ro", "--config.file"),
    ("docker/docker-compose.yml", "      - prometheus-data:/var/lib/prometheus\n", "",
     "is in no named volume"),
    ("docker/docker-compose.yml", '"http://127.0.0.1:9090/-/ready"', '"http://127.0.0.1:9091/-/ready"',
     "want health.sh on /-/ready"),
    ("docker/docker-compose.yml", "      importer:\n        condition: service_started\n    restart: unless-stopped",
     "    restart: unless-stopped", "scrapes importer but does not depend on it"),
    ("docker/docker-compose.yml", '"127.0.0.1:9090:9090"', '"9090:9090"', "must be published as"),
    ("docker/prometheus/Dockerfile", "FROM debian:bookworm-slim", "FROM prom/prometheus:v2.42.0",
     "want one stage FROM debian:bookworm-slim"),
    ("docker/prometheus/Dockerfile", "        prometheus \\\n", "        prometheus-node-exporter \\\n",
     "does not install Debian's prometheus package"),
    ("docker/prometheus/Dockerfile", "install -y --no-install-recommends", "install -y",
     "without --no-install-recommends"),
    ("docker/prometheus/Dockerfile", "USER prometheus", "USER root", "want USER prometheus"),
    ("docker/prometheus/Dockerfile", "ENTRYPOINT [\"/usr/bin/prometheus\"]", "ENTRYPOINT [\"prometheus\"]",
     "ENTRYPOINT"),
    ("docker/prometheus/Dockerfile", "-m 0750 /var/lib/prometheus \\\n", "-m 0750 \\\n",
     "is not created owned by prometheus"),
    ("scripts/compose-local.sh", "step prometheus\n", "", "compose-local.sh steps"),
    # The sandbox's /metrics: its own job, at the port of its --listen.
    ("docker/prometheus/prometheus.yml", '"sandbox:8480"', '"sandbox:8481"',
     "is not the sandbox at the port of its --listen"),
    ("docker/prometheus/prometheus.yml", "  - job_name: kyc-bridge-sandbox\n",
     "  - job_name: kyc-bridge-vendor\n", "want only kyc-bridge, kyc-bridge-sandbox"),
    ("docker/docker-compose.yml",
     "      sandbox:\n        condition: service_started\n      issuer:\n        condition: service_started\n",
     "      issuer:\n        condition: service_started\n",
     "scrapes sandbox but does not depend on it"),
    # The alert rules: loaded, mounted, complete, registered metrics only,
    # the same as docs/operations.md "Alert rules".
    ("docker/prometheus/prometheus.yml", "rule_files:\n  - /etc/prometheus/alerts.yml\n", "",
     "no rule_files"),
    ("docker/docker-compose.yml", "      - ./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro\n", "",
     "is not mounted read-only from docker/prometheus/"),
    ("docker/prometheus/alerts.yml", "(increase(kyc_bridge_dead_letters_total[15m])) > 20",
     "(increase(kyc_bridge_dead_letters_total[15m])) > 25", "differs from docs/operations.md"),
    ("docker/prometheus/alerts.yml", "    for: 2m\n", "    for: 5m\n",
     "for '5m' differs from docs/operations.md's '2m'"),
    ("docker/prometheus/alerts.yml", "labels: { severity: page }", "labels: { severity: ticket }",
     "labels {'severity': 'ticket'} differs"),
    ("docker/prometheus/alerts.yml", "(kyc_bridge_broker_state_up) == 0", "(kyc_bridge_broker_up) == 0",
     "metric kyc_bridge_broker_up is not registered"),
    ("docker/prometheus/alerts.yml", '      summary: "hand-off p95', '      description: "hand-off p95',
     "KycBridgeHandoffSlow has no annotations summary"),
    ("docs/operations.md", "rate(kyc_bridge_vendor_requests_total{status=\"429\"}[5m])",
     "rate(kyc_bridge_vendor_requests_total{status=\"429\"}[1m])",
     "KycBridgeVendorRateLimited: expr"),
    ("docs/operations.md", "  - alert: KycBridgeBrokerDown\n", "  - alert: KycBridgeBrokersDown\n",
     "only in alerts.yml ['KycBridgeBrokerDown'], only in the docs ['KycBridgeBrokersDown']"),
    # The dashboard: registered metrics, each filtered by $daemon.
    ("docker/grafana/kyc-bridge.json", "kyc_bridge_key_ids{", "kyc_bridge_key_id{",
     "metric kyc_bridge_key_id is not registered"),
    ("docker/grafana/kyc-bridge.json", 'kyc_bridge_ready{daemon=~\\"$daemon\\"}', "kyc_bridge_ready",
     "kyc_bridge_ready is not filtered by daemon"),
    # The grafana service: the upstream image pinned to a release, in the
    # monitoring profile only, needed by nothing outside it, as uid 472.
    ("docker/docker-compose.yml", '    profiles: ["monitoring"]\n    image: grafana/grafana-oss:11.4.0\n',
     "    image: grafana/grafana-oss:11.4.0\n", "Grafana is for the optional profile 'monitoring' only"),
    ("docker/docker-compose.yml", "      LOG_DIR: /tmp\n    volumes:\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      topics:\n",
     "      LOG_DIR: /tmp\n    volumes:\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n    depends_on:\n      grafana:\n        condition: service_started\n      topics:\n",
     "watch: depends on grafana: no service outside the monitoring profile"),
    ("docker/docker-compose.yml", "image: grafana/grafana-oss:11.4.0", "image: grafana/grafana-oss:latest",
     "want grafana/grafana-oss pinned to a release"),
    ("docker/docker-compose.yml", "image: grafana/grafana-oss:11.4.0", "image: grafana/grafana-oss:11",
     "want grafana/grafana-oss pinned to a release"),
    ("docker/docker-compose.yml", '    user: "472"\n', '    user: "0"\n',
     "grafana: user '0': want \"472\""),
    # Its files: read-only from docker/grafana/, where they name each other.
    ("docker/docker-compose.yml", "/dashboards/kyc-bridge/kyc-bridge.json:ro\n",
     "/dashboards/kyc-bridge/kyc-bridge.json\n",
     "want only read-only bind mounts from docker/grafana/"),
    ("docker/docker-compose.yml", "/dashboards/kyc-bridge/kyc-bridge.json:ro\n",
     "/dashboards/kyc-bridge/kyc-bridge.json:ro\n      - ./scripts:/opt/kyc-bridge/scripts:ro\n",
     "want only read-only bind mounts from docker/grafana/"),
    ("docker/docker-compose.yml", "./grafana/kyc-bridge.json:/var/lib/grafana/dashboards/kyc-bridge/kyc-bridge.json:ro",
     "./grafana/kyc-bridge.json:/var/lib/grafana/dashboards/kyc-bridge.json:ro",
     "not in a dashboards provider's path"),
    ("docker/grafana/provisioning/dashboards/kyc-bridge.yml", "path: /var/lib/grafana/dashboards/kyc-bridge",
     "path: /var/lib/grafana/dashboards", "not in a dashboards provider's path"),
    ("docker/docker-compose.yml", ":/etc/grafana/provisioning/datasources/kyc-bridge.yml:ro",
     ":/etc/grafana/datasources/kyc-bridge.yml:ro",
     "datasources/kyc-bridge.yml is not mounted at /etc/grafana/provisioning/datasources/"),
    ("docker/docker-compose.yml",
     "      - ./grafana/provisioning/dashboards/kyc-bridge.yml:/etc/grafana/provisioning/dashboards/kyc-bridge.yml:ro\n",
     "", "dashboards/kyc-bridge.yml is not mounted at /etc/grafana/provisioning/dashboards/"),
    ("docker/docker-compose.yml", "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /var/lib/grafana/dashboards/kyc-bridge/kyc-bridge.json",
     "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /var/lib/grafana/dashboards/kyc-bridge/home.json",
     "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH /var/lib/grafana/dashboards/kyc-bridge/home.json "
     "is no mounted dashboard"),
    # The data source: the prometheus service at its port, waited for, the
    # uid the dashboard uses.
    ("docker/grafana/provisioning/datasources/kyc-bridge.yml", '"http://prometheus:9090"',
     '"http://prometheus:9091"', "want http://SERVICE:PORT of the prometheus service"),
    ("docker/grafana/provisioning/datasources/kyc-bridge.yml", '"http://prometheus:9090"',
     '"http://localhost:9090"', "want http://SERVICE:PORT of the prometheus service"),
    ("docker/grafana/provisioning/datasources/kyc-bridge.yml", "    uid: prometheus\n",
     "    uid: prom\n", "uses data source uid 'prometheus'"),
    ("docker/docker-compose.yml", "    depends_on:\n      prometheus:\n        condition: service_healthy\n",
     "", "grafana: its data source is prometheus but it does not depend on it"),
    # Loopback only, at its http port; healthy on /api/health (curl -f).
    ("docker/docker-compose.yml", '"127.0.0.1:3000:3000"', '"3000:3000"',
     "grafana: port '3000:3000' must be published as"),
    ("docker/docker-compose.yml", '"127.0.0.1:3000:3000"', '"127.0.0.1:3000:80"',
     "is not Grafana's http port 3000"),
    ("docker/docker-compose.yml", '"http://127.0.0.1:3000/api/health"',
     '"http://127.0.0.1:3000/login"', "grafana: healthcheck"),
    ("docker/docker-compose.yml", '"curl", "-fsS"', '"curl", "-sS"', "grafana: healthcheck"),
    # Anonymous visitors Viewers at most; no admin password in the file.
    ("docker/docker-compose.yml", "GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer", "GF_AUTH_ANONYMOUS_ORG_ROLE: Admin",
     "anonymous visitors get role 'Admin'"),
    ("docker/docker-compose.yml", '      GF_USERS_ALLOW_SIGN_UP: "false"\n',
     '      GF_USERS_ALLOW_SIGN_UP: "false"\n      GF_SECURITY_ADMIN_PASSWORD: kyc\n',
     "GF_SECURITY_ADMIN_PASSWORD looks like a secret"),
    # compose-local.sh runs no Grafana; a step for it is still allowed.
    ("scripts/compose-local.sh", "step prometheus\n", "step prometheus\nstep grafana\n", None),
    # The offline stand-in for apache/kafka.
    ("docker/docker-compose.offline.yml", "  watch:\n    image: kyc-bridge-kafka:local\n    build: *kafka-build\n",
     "", "the services running apache/kafka are"),
    ("docker/docker-compose.offline.yml", "  topics:\n    image: kyc-bridge-kafka:local",
     "  topics:\n    image: apache/kafka:4.3.1", "topics: image 'apache/kafka:4.3.1'"),
    ("docker/docker-compose.offline.yml", "  context: ./kafka", "  context: ..",
     "build: want context ./kafka"),
    ("docker/kafka/Dockerfile", "        openjdk-17-jre-headless \\\n", "        default-jdk \\\n",
     "want openjdk-17-jre-headless only"),
    ("docker/scripts/watch.sh", '"$kbin/kafka-console-consumer.sh"', '"$kbin/kafka-console-consumer2.sh"',
     "docker/kafka/bin/kafka-console-consumer2.sh: missing"),
    ("docker/kafka/Dockerfile", "/var/lib/kafka /var/lib/kafka/data", "/var/lib/kafka",
     "volume mount point /var/lib/kafka/data is not created owned by appuser"),
]


def cmd_selftest(args):
    """Each mutation of a copy of the files must make `check` fail."""
    work = tempfile.mkdtemp(prefix="kb-compose-selftest-")
    src = ROOT
    fails = 0
    try:
        repo = os.path.join(work, "repo")
        shutil.copytree(os.path.join(src, "docker"), os.path.join(repo, "docker"))
        os.makedirs(os.path.join(repo, "scripts"))
        os.makedirs(os.path.join(repo, "docs"))
        for f in ("scripts/kafka.sh", "scripts/compose-local.sh", ".dockerignore",
                  "CMakeLists.txt", "docs/operations.md"):
            shutil.copy2(os.path.join(src, f), os.path.join(repo, f))
        os.symlink(os.path.join(src, "bridge"), os.path.join(repo, "bridge"))

        def run():
            return subprocess.run([sys.executable, os.path.abspath(__file__), "--repo", repo,
                                   "check", "--kb-bin", args.kb_bin],
                                  capture_output=True, text=True, timeout=300)
        r = run()
        if r.returncode != 0:
            print("FAIL: the unmodified copy does not pass:\n" + r.stdout + r.stderr)
            return 1
        for f, old, new, want in MUTATIONS:
            path = os.path.join(repo, f)
            with open(path) as fh:
                orig = fh.read()
            what = "%s: %r -> %r" % (f, old[:50], new[:50])
            if orig.count(old) < 1:
                print("FAIL: mutation does not apply (stale?): " + what)
                fails += 1
                continue
            with open(path, "w") as fh:
                fh.write(orig.replace(old, new, 1))
            try:
                r = run()
            finally:
                with open(path, "w") as fh:
                    fh.write(orig)
            out = r.stdout + r.stderr
            if want is None:
                good = r.returncode == 0
            else:
                good = r.returncode == 1 and want in out
            print("%s: %s" % ("ok" if good else "FAIL", what))
            if not good:
                fails += 1
                print("  wanted %s; exit %d, output:\n  %s" % (
                    "a pass" if want is None else "a failure mentioning %r" % want,
                    r.returncode, "\n  ".join(out.strip().split("\n")[-8:])))
        print("selftest: %d mutations, %d not caught as expected" % (len(MUTATIONS), fails))
        return 1 if fails else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", help="repository to check (default: this one)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check")
    p.add_argument("--kb-bin", required=True)
    p = sub.add_parser("selftest")
    p.add_argument("--kb-bin", required=True)
    p = sub.add_parser("build")
    p.add_argument("--keep", action="store_true")
    p = sub.add_parser("plan")
    p.add_argument("service")
    p.add_argument("--root", required=True)
    args = ap.parse_args()
    if args.repo:
        set_repo(args.repo)
    return {"check": cmd_check, "build": cmd_build, "plan": cmd_plan,
            "selftest": cmd_selftest}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
