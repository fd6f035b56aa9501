#!/usr/bin/env python3
"""chaos.py -- the chaos suite: kills, broker crashes, vendor faults, lost
answers and a frozen group member, on a real Kafka broker, with a verifier
that reads every output topic read_committed.

    chaos.py --quick            CI: >= 1,000 requests, >= 30 kills
    chaos.py --full             on demand: >= 10,000 requests, >= 300 kills
    chaos.py --quick --only kills,freeze --seed 7 --report out.json

Runs (each on topics, applications and a sandbox of its own; one private
broker for all, started here with scripts/kafka.sh, because it is killed):

  kills    an issuer and two importers (one consumer group) through a
           paced stream of share requests (KYC and KYB, every finished
           status, repeats of the same share_id, requests that must
           dead-letter); a random daemon SIGKILLed at random moments, and
           restarted, often with one failpoint armed (docs/failpoints.md) so
           that it kills itself at that spot -- every failpoint fires at
           least once; the broker SIGKILLed and restarted on its data
           several times mid-run.
  faults   the sandbox answers 20 % of imports 503, 10 % of mints 429 with
           Retry-After, and delays every answer 100 ms.
  lost     every import is done by the vendor but its answer comes after the
           importer's timeout: every record takes the reconcile path.
  freeze   an importer with records in flight is stopped (SIGSTOP) past its
           session timeout; the other takes its partitions and finishes the
           stream; resumed, the frozen one must publish nothing.

The verifier (every run): each share request ends as exactly one downstream
or dead-letter record; none for an unknown share_id; the requests that must
dead-letter do, at the issuer (no envelope for them), with their reason, and
no other does; every downstream record names a distinct vendor session, one
the vendor made for the partner, whose shared_from_session is the request's
source; every import the vendor performed for the partner is downstream (no
orphan); one committed envelope per request the issuer accepted.

Prints its figures and exits 1 on any loss, duplicate, orphan or other
problem (the problems listed), 0 otherwise. Needs KB_BIN (a test build: the
failpoints) and kcat, Java, Maven (scripts/kafka.sh).
"""
import argparse
import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))

import kbharness as h  # noqa: E402
from pipeline_world import (FINISHED, World, exactly_once_report,  # noqa: E402
                            wait_stable)

MODES = {
    "quick": {"kill_requests": 1000, "kills": 30, "broker_kills": 2,
              "fault_requests": 300, "lost_requests": 100, "freeze_requests": 300},
    "full": {"kill_requests": 10000, "kills": 300, "broker_kills": 6,
             "fault_requests": 2000, "lost_requests": 600, "freeze_requests": 1500},
}
RUNS = ("kills", "faults", "lost", "freeze")

# The failpoints each daemon passes, and the action the kills run arms:
# @N picks the Nth pass (the spot is passed once per record or per
# transaction); txn.during_commit=crash(0) kills as soon as its timer
# thread runs, when the commit call has not returned by then
# (docs/failpoints.md): the call, left with the EndTxn round trip on
# loopback, takes a millisecond or two, so a later moment rarely hits.
FAILPOINTS = {
    "issuer": ["issuer.after_mint", "txn.after_produce", "txn.before_send_offsets",
               "txn.after_send_offsets", "txn.before_commit", "txn.during_commit"],
    "importer": ["importer.after_import", "txn.after_produce",
                 "txn.before_send_offsets", "txn.after_send_offsets",
                 "txn.before_commit", "txn.during_commit"],
}
FIRED_RX = re.compile(r"failpoint (\S+) fired: crash")
SESSION_TIMEOUT_MS = 6000


def say(fmt, *args):
    sys.stderr.write("[chaos %s] %s\n" % (time.strftime("%H:%M:%S"), fmt % args if args else fmt))
    sys.stderr.flush()


class Figures:
    """What a run did and found; printed, and written with --report."""

    def __init__(self, name):
        self.name = name
        self.t0 = time.monotonic()
        self.requests = 0          # distinct share_ids produced
        self.repeats = 0           # extra records repeating a share_id
        self.expected_dead = 0
        self.kills = collections.Counter()   # "sigkill issuer", "failpoint X"
        self.exits = collections.Counter()   # other ends: "issuer exit 1"
        self.broker_restarts = 0
        self.produce_retries = 0
        self.faults = {}
        self.records = {}
        self.lost = self.duplicated = self.orphaned = self.unexpected = 0
        self.reconciled = 0
        self.problems = []
        self.notes = []
        self.seconds = 0.0

    def as_dict(self):
        return {"run": self.name, "requests": self.requests, "repeats": self.repeats,
                "expected_dead_letters": self.expected_dead,
                "kills": dict(self.kills), "kills_total": sum(self.kills.values()),
                "other_exits": dict(self.exits), "broker_restarts": self.broker_restarts,
                "produce_retries": self.produce_retries,
                "faults": self.faults, "records": self.records,
                "reconciled": self.reconciled, "lost": self.lost,
                "duplicated": self.duplicated, "orphaned": self.orphaned,
                "unexpected": self.unexpected, "problems": self.problems,
                "notes": self.notes, "seconds": round(self.seconds, 1)}

    def print(self):
        d = self.as_dict()
        print("== %s: %d requests (+%d repeats, %d must dead-letter), %.0f s" % (
            self.name, self.requests, self.repeats, self.expected_dead, self.seconds))
        if self.kills:
            print("   kills: %d -- %s" % (d["kills_total"], ", ".join(
                "%s %d" % kv for kv in sorted(self.kills.items()))))
        if self.exits:
            print("   other exits: %s" % ", ".join("%s %d" % kv for kv in sorted(self.exits.items())))
        if self.broker_restarts:
            print("   broker SIGKILLed and restarted: %d (share requests sent again "
                  "after a failed produce: %d batches)" % (self.broker_restarts,
                                                           self.produce_retries))
        if self.faults:
            print("   vendor answers: %s" % ", ".join(
                "%s %s" % kv for kv in sorted(self.faults.items())))
        print("   records: %s; reconciled %d" % (
            ", ".join("%s %d" % kv for kv in sorted(self.records.items())), self.reconciled))
        print("   lost %d, duplicated %d, orphaned %d, unexpected %d" % (
            self.lost, self.duplicated, self.orphaned, self.unexpected))
        for n in self.notes:
            print("   note: %s" % n)
        for p in self.problems[:50]:
            print("   PROBLEM: %s" % p)
        if len(self.problems) > 50:
            print("   ... %d more problems" % (len(self.problems) - 50))
        sys.stdout.flush()


# ---------------------------------------------------------------- requests

def make_requests(w, X, Y, n, rng, repeat_share=0.05, dead_share=0.05):
    """@n share requests of X's sessions for Y: 3/4 KYC, 1/4 KYB, every
    finished status; a share @dead_share of them must dead-letter at the
    issuer (unfinished session, a session id that is no UUID, an unknown
    partner). Returns (records, expect): the records to produce in order
    (repeats of a share_id included, @repeat_share of them) and
    {share_id: ("ok", source session) | ("dead", reason)}."""
    n_dead = max(3, int(n * dead_share))
    n_ok = n - n_dead
    n_kyb = n_ok // 4
    per = {}
    for kind, count in (("kyc", n_ok - n_kyb), ("kyb", n_kyb)):
        statuses = FINISHED[kind]
        for i, st in enumerate(statuses):
            c = count // len(statuses) + (1 if i < count % len(statuses) else 0)
            if c:
                per[(kind, st)] = w.sb.finished_sessions(
                    X.key, X.wf[kind], st, c, "%s-%s-" % (kind, i), threads=8)
    reqs, expect = [], {}
    for (kind, st), sids in per.items():
        for s in sids:
            r = h.share_request(s, Y.id, vendor_data="vd-%s" % uuid.uuid4().hex[:12])
            reqs.append(r)
            expect[r["share_id"]] = ("ok", s)
    for i in range(n_dead):
        k = i % 3
        if k == 0:
            s = w.sb.finished_session(X.key, X.wf["kyc"], None)
            r = h.share_request(s, Y.id)
            expect[r["share_id"]] = ("dead", "session_not_finished")
        elif k == 1:
            r = h.share_request("not-a-uuid", Y.id)
            expect[r["share_id"]] = ("dead", "malformed_request")
        else:
            s = w.sb.finished_session(X.key, X.wf["kyc"], FINISHED["kyc"][0])
            r = h.share_request(s, str(uuid.uuid4()))
            expect[r["share_id"]] = ("dead", "unknown_partner")
        reqs.append(r)
    rng.shuffle(reqs)
    # repeats: the same record again, a little later in the stream (the
    # issuer system retried): one outcome still
    out = []
    pending = []
    for r in reqs:
        out.append(r)
        if rng.random() < repeat_share:
            pending.append((len(out) + rng.randint(1, 50), r))
        for due, rr in [p for p in pending if p[0] <= len(out)]:
            out.append(rr)
            pending.remove((due, rr))
    out += [rr for _, rr in pending]
    return out, expect


def produce(w, batch, fig, tries=30):
    """Produces @batch, again after a failure (kcat gives up while the
    broker is down): a batch sent twice only repeats share_ids, which the
    issuer must handle anyway."""
    for i in range(tries):
        try:
            w.produce_requests(batch)
            return
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if i == tries - 1:
                raise
            fig.produce_retries += 1
            time.sleep(2)


def producer(w, records, duration_s, stop, fig):
    """Produces @records in batches spread over @duration_s seconds, from a
    background thread. Returns (thread, errors)."""
    batches = max(1, int(duration_s / 0.5))
    size = -(-len(records) // batches)
    gap = duration_s / batches
    errors = []

    def run():
        try:
            for i in range(0, len(records), size):
                if stop.is_set():
                    return
                produce(w, records[i:i + size], fig)
                time.sleep(gap)
        except Exception as e:  # noqa: BLE001 -- reported by the run
            errors.append(e)
    t = threading.Thread(target=run, name="chaos-producer", daemon=True)
    t.start()
    return t, errors


# ------------------------------------------------------------------ world

def new_world(ctx, tag, imp_extra=None, metrics=False, token_partitions=4):
    w = World("chaos-" + tag, kafka=ctx.broker.kafka(), request_partitions=4,
              token_partitions=token_partitions, seed=ctx.rng.randrange(1 << 30),
              sandbox_args=["--log-level", "debug"], metrics=metrics)
    X, Y = w.app("x"), w.app("y")
    w.X, w.Y = X, Y
    w.iconf = w.issuer_conf(X, [Y])
    extra = {"pipeline.drain_timeout_ms": 2000}
    extra.update(imp_extra or {})
    w.mconf_a = w.importer_conf(Y, [(X, {"trust_review": "true", "record": "summary"})],
                                name="importer-a", extra=extra)
    w.mconf_b = w.importer_conf(Y, [(X, {"trust_review": "true", "record": "summary"})],
                                name="importer-b", group="%s-importer-a" % w.prefix,
                                extra=extra)
    return w


def start_daemons(w):
    w.iss = w.daemon("issuer", w.iconf, "issuer")
    w.imps = [w.daemon("importer", w.mconf_a, "importer-a"),
              w.daemon("importer", w.mconf_b, "importer-b")]
    for d in [w.iss] + w.imps:
        d.wait_log(r"pipeline: assigned \d+ partition", 90)
    follow_outputs(w)
    w.done = lambda: outcomes(w)


def follow_outputs(w):
    """(Re)starts the read_committed followers of the output topics: kcat
    gives up when the broker is gone, so after a broker restart they are
    started again, from the beginning."""
    for f in getattr(w, "f_out", []):
        f.stop()
        w.followers.remove(f)
    w.f_out = [w.follow(w.t[k]) for k in ("imported", "importer_dlq", "issuer_dlq")]
    w.seen_ids = set()
    w.seen_pos = [0] * len(w.f_out)


def outcomes(w):
    """The distinct share_ids that have an outcome so far (downstream or
    dead letter, read_committed): one share_id counts once however many
    records name it (a malformed request repeated has several)."""
    for i, f in enumerate(w.f_out):
        recs = f.records()
        for r in recs[w.seen_pos[i]:]:
            try:
                w.seen_ids.add(json.loads(r["value"]).get("share_id"))
            except ValueError:
                w.seen_ids.add(None)
        w.seen_pos[i] = len(recs)
    return len(w.seen_ids)


def owned(d):
    """Partitions @d holds now, from its log of this run."""
    t = last_run_log(d)
    return (sum(int(x) for x in re.findall(r"assigned (\d+) partition", t))
            - sum(int(x) for x in re.findall(r"(?:revoked|lost) (\d+) partition", t)))


def last_run_log(d):
    t = d.logtext()
    i = t.rfind("==== start %d of " % d.starts)
    return t[i:] if i >= 0 else t


# --------------------------------------------------------------- verifier

def verify(w, expect, fig, all_reconciled=False):
    """The checks listed at the top; fills @fig and returns its problems."""
    outs = w.outputs()
    # A malformed request is dead-lettered each time it comes: its share_id
    # is not claimed (the issuer system may send a corrected request under
    # the same share_id). So it gets one dead letter per input record --
    # counted on the request topic, where repeats and batches produced
    # again after a broker loss are.
    inputs = collections.Counter(r["key"] for r in w.kafka.consume_all(w.t["requests"]))
    malformed = {sid for sid, want in expect.items() if want == ("dead", "malformed_request")}
    p = exactly_once_report([sid for sid in expect if sid not in malformed],
                            {k: [r for r in v if r["doc"].get("share_id") not in malformed]
                             for k, v in outs.items()})
    got = collections.Counter(r["doc"].get("share_id") for r in outs["issuer_dlq"]
                              if r["doc"].get("share_id") in malformed)
    for sid in sorted(malformed):
        if got[sid] != inputs[sid]:
            p.append("%s share request %s: %d dead letter(s) for %d input record(s)" % (
                "LOST" if got[sid] < inputs[sid] else "DUPLICATE", sid, got[sid],
                inputs[sid]))
    fig.lost = sum(int(m.group(1)) for m in
                   (re.match(r"LOST (\d+) share", x) for x in p) if m)
    fig.lost += sum(1 for x in p if x.startswith("LOST share request"))
    fig.duplicated = sum(1 for x in p if x.startswith("DUPLICATE"))
    fig.unexpected = sum(1 for x in p if x.startswith("UNEXPECTED"))
    imported = outs["imported"]
    fig.records = {"downstream": len(imported),
                   "importer dead letters": len(outs["importer_dlq"]),
                   "issuer dead letters": len(outs["issuer_dlq"])}
    for k in ("importer_dlq", "issuer_dlq"):
        for r in outs[k]:
            d = r["doc"]
            want = expect.get(d.get("share_id"))
            if want is None:
                continue
            if want[0] == "ok":
                p.append("DEAD-LETTERED though it should succeed: %s %s/%s: %s" % (
                    d.get("share_id"), d.get("stage"), d.get("reason"), d.get("detail")))
            elif d.get("reason") != want[1]:
                p.append("dead letter of %s: reason %s, want %s" % (
                    d.get("share_id"), d.get("reason"), want[1]))
            elif k != "issuer_dlq":
                # every reason a request is made to dead-letter with is the
                # issuer's to find: no envelope may have left for it
                p.append("dead letter of %s (%s) from the importer, want the issuer's" % (
                    d.get("share_id"), want[1]))
    sessions = collections.Counter()
    for r in imported:
        d = r["doc"]
        want = expect.get(d.get("share_id"))
        sessions[d.get("session_id")] += 1
        if d.get("reconciled"):
            fig.reconciled += 1
        if want is None:
            continue
        if want[0] != "ok":
            p.append("IMPORTED though it must dead-letter (%s): %s" % (want[1], d.get("share_id")))
        elif d.get("shared_from_session") != want[1]:
            p.append("share %s: downstream shared_from_session %s, request's source %s" % (
                d.get("share_id"), d.get("shared_from_session"), want[1]))
        if all_reconciled and not d.get("reconciled"):
            p.append("share %s was not reconciled (its answer should have been lost)" %
                     d.get("share_id"))
    for s, c in sessions.items():
        if c > 1:
            p.append("vendor session %s named by %d downstream records" % (s, c))
    # the vendor's side: every session made for Y is downstream, from the
    # right source
    by_session = {r["doc"]["session_id"]: r["doc"] for r in imported}
    vendor = w.sb.sessions(w.Y.key)
    # and the other way: every downstream record names a session the vendor
    # made for Y
    known = {v["session_id"] for v in vendor}
    for sid, d in sorted(by_session.items(), key=lambda kv: str(kv[0])):
        if sid not in known:
            p.append("share %s: downstream names vendor session %s, which the vendor "
                     "did not make for the partner" % (d.get("share_id"), sid))
    for v in vendor:
        d = by_session.get(v["session_id"])
        if d is None:
            fig.orphaned += 1
            p.append("ORPHAN import: vendor session %s (from %s) is in no downstream record" % (
                v["session_id"], v.get("shared_from_session")))
        elif v.get("shared_from_session") != d.get("shared_from_session"):
            p.append("vendor session %s comes from %s, its record says %s" % (
                v["session_id"], v.get("shared_from_session"), d.get("shared_from_session")))
    # the issuer: one committed envelope per request it accepted
    envs = collections.Counter()
    for r in w.kafka.consume_all(w.t["tokens"]):
        m = re.search(r"kb-share-id=([^,]*)", r["headers"])
        envs[m.group(1) if m else None] += 1
    for sid, c in envs.items():
        if c != 1:
            p.append("share %s has %d committed envelopes" % (sid, c))
        if sid not in expect:
            p.append("envelope for an unknown share_id %r" % sid)
        elif expect[sid][0] == "dead":
            p.append("envelope for %s, which must dead-letter at the issuer (%s)" % (
                sid, expect[sid][1]))
    for sid, want in expect.items():
        if want[0] == "ok" and sid not in envs:
            p.append("no envelope for %s" % sid)
    fig.records["envelopes"] = sum(envs.values())
    fig.problems += p
    return p


def vendor_figures(w, fig):
    """Answers the sandbox gave, by status (its /metrics)."""
    m = w.sandbox_metrics()
    if m is None:
        return
    c = collections.Counter()
    names = {"/v3/session/{}/share/": "mint", "/v3/session/import-shared/": "import"}
    for labels, v in m.samples("kyc_bridge_sandbox_requests_total"):
        what = names.get(labels.get("endpoint"))
        if what and v:
            c["%s %s" % (what, labels.get("status"))] += int(v)
    fig.faults = dict(c)


def finish(w, expect, fig, timeout):
    """Waits for one outcome per share request (and a quiet spell, so that
    late duplicates show), stops every daemon with SIGTERM (each must exit 0)."""
    n = len(expect)
    try:
        wait_stable(w.done, n, timeout, settle=5.0)
    except TimeoutError as e:
        fig.problems.append("STUCK: %s" % e)
    for d in w.daemons:
        if d.alive():
            rc = d.stop(timeout=90)
            if rc != 0:
                fig.problems.append("%s: exit %s after SIGTERM (%s)" % (d.name, rc, d.stop_note))
        else:
            fig.problems.append("%s died before the end (exit %s):\n%s" % (
                d.name, d.proc.returncode, last_run_log(d)[-1500:]))


# ------------------------------------------------------------------ runs

def requests_for(w, fig, n, rng, **kw):
    """make_requests() for @w's applications, counted in @fig."""
    records, expect = make_requests(w, w.X, w.Y, n, rng, **kw)
    fig.requests = len(expect)
    fig.repeats = len(records) - len(expect)
    fig.expected_dead = sum(1 for v in expect.values() if v[0] == "dead")
    return records, expect


@contextlib.contextmanager
def running(w, fig):
    """A run's world: what raises is a problem (and the logs are kept); at
    the end a frozen daemon is resumed, every process stopped and the work
    directory removed unless a problem was found."""
    try:
        yield
    except BaseException as e:
        fig.problems.append("the run stopped: %s: %s" % (type(e).__name__, e))
        raise
    finally:
        if getattr(w, "frozen", None) and w.frozen.alive():
            os.kill(w.frozen.pid, signal.SIGCONT)  # so that close() can stop it
        fig.seconds = time.monotonic() - fig.t0
        w.close(keep=bool(fig.problems))


class Ctx:
    def __init__(self, args):
        self.args = args
        self.mode = {k: max(1, int(v * args.scale)) if k != "broker_kills" else v
                     for k, v in MODES[args.mode].items()}
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.broker = None


def run_kills(ctx):
    fig = Figures("kills")
    m = ctx.mode
    rng = random.Random(ctx.rng.random())
    w = new_world(ctx, "kills")
    with running(w, fig):
        records, expect = requests_for(w, fig, m["kill_requests"], rng)
        # a reserve: more requests while failpoints are still to fire
        reserve, rexpect = make_requests(w, w.X, w.Y, max(200, m["kill_requests"] // 5), rng,
                                         repeat_share=0, dead_share=0)
        start_daemons(w)
        procs = [w.iss] + w.imps
        for d in procs:
            d.armed = None
            d.ours = False
        # a kill comes a random time after the victim has joined its group
        # and the stream has moved on since the last kill (else the run
        # only measures restarts: an importer killed leaves its partitions
        # stalled for the session timeout)
        gap = (0.5, 3.0)
        duration = m["kills"] * 5.0
        stop = threading.Event()
        prod, perr = producer(w, records, duration, stop, fig)
        fired = collections.Counter()      # (role, failpoint)
        todo = {role: list(names) for role, names in FAILPOINTS.items()}
        broker_killed_at = [-1e9]
        for names in todo.values():
            rng.shuffle(names)
        broker_at = sorted(rng.uniform(0.15, 0.85) * duration for _ in range(m["broker_kills"]))
        t0 = time.monotonic()
        cap = duration + 300
        next_note = 0
        next_kill = t0 + rng.uniform(*gap)
        progress_at_kill = -1

        def unfired():
            """(role, failpoint) pairs still to fire: each daemon kind
            passes the transaction's spots on a path of its own."""
            return {(r, n) for r, names in FAILPOINTS.items() for n in names} - set(fired)

        def joined(d):
            return d.alive() and re.search(r"pipeline: assigned \d+ partition", last_run_log(d))

        def revive(d, arm=True):
            rc = d.proc.returncode
            seg = last_run_log(d)
            fp = FIRED_RX.findall(seg)
            if rc == -signal.SIGKILL and d.ours:
                pass  # counted when sent
            elif rc == -signal.SIGKILL and fp:
                fired[(d.role, fp[-1])] += 1
                fig.kills["failpoint %s (%s)" % (fp[-1], d.role)] += 1
            else:
                fig.exits["%s exit %s" % (d.role, rc)] += 1
                if rc == 2:
                    raise RuntimeError("%s refused to start (exit 2):\n%s" % (d.name, seg[-2000:]))
                # a fatal Kafka error (exit 1) is a designed way to stop while
                # the broker is gone (nothing uncommitted is lost); any other
                # end -- a crash, an exit long after a broker loss -- is not
                if rc != 1 or time.monotonic() - broker_killed_at[0] > 120:
                    fig.problems.append("%s ended with %s, not by a kill:\n%s" % (
                        d.name, rc, seg[-1500:]))
            d.ours = False
            restart(d, arm)

        def restart(d, arm=True):
            """Starts @d again, on 3 restarts in 4 with one failpoint
            armed, one that has not fired in its kind preferred."""
            d.env.pop("KB_FAILPOINTS", None)
            d.armed = None
            if arm and rng.random() < 0.75:
                # prefer a failpoint that has not fired yet in this kind
                cands = [n for n in todo[d.role] if (d.role, n) not in fired] or todo[d.role]
                name = cands[0] if rng.random() < 0.85 else rng.choice(todo[d.role])
                if name == "txn.during_commit":
                    spec = "%s=crash(0)" % name
                elif name.endswith(("after_mint", "after_import")):
                    spec = "%s=crash@%d" % (name, rng.randint(1, 15))
                else:
                    spec = "%s=crash@%d" % (name, rng.randint(1, 4))
                d.env["KB_FAILPOINTS"] = spec
                d.env["KB_FAILPOINTS_SEED"] = str(rng.randrange(1 << 31))
                d.armed = name
            d.armed_at = time.monotonic()
            d.start()

        def kills_total():
            return sum(fig.kills.values())

        top_ups = 0
        while True:
            now = time.monotonic()
            el = now - t0
            if el > cap:
                fig.problems.append("the kill loop did not reach its targets in %.0f s: "
                                    "%d kills, failpoints never fired: %s" % (
                                        cap, kills_total(), sorted(unfired())))
                break
            if kills_total() >= m["kills"] and not unfired() and not prod.is_alive() \
                    and not broker_at:
                break
            if el >= next_note:
                next_note = el + 20
                say("kills: %d of %d (%s), failpoints to fire: %s, broker restarts %d, "
                    "producing: %s, outcomes %d", kills_total(), m["kills"],
                    ", ".join("%s %d" % kv for kv in sorted(fig.kills.items())),
                    sorted(unfired()), fig.broker_restarts, prod.is_alive(), w.done())
            time.sleep(0.25)
            for d in procs:
                if not d.alive():
                    revive(d)
                elif d.armed and time.monotonic() - d.armed_at > 30:
                    # armed and not fired in 30 s (its spot not reached, a
                    # commit that always returned first): a clean stop, and
                    # armed anew (or not), so that it can be a victim again
                    rc = d.stop(timeout=90)
                    if rc != 0:
                        fig.problems.append("%s: exit %s after SIGTERM (%s)" % (d.name, rc, d.stop_note))
                    restart(d)
            if broker_at and el >= broker_at[0]:
                broker_at.pop(0)
                pid = ctx.broker.pid
                broker_killed_at[0] = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                h.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 30, "broker gone")
                down = rng.uniform(1.0, 6.0)
                say("broker SIGKILLed, restarting in %.1f s", down)
                time.sleep(down)
                ctx.broker.restart()
                fig.broker_restarts += 1
                follow_outputs(w)
                continue
            done = w.done()
            if now >= next_kill and done > progress_at_kill and \
                    (kills_total() < m["kills"] or unfired()):
                ready = [d for d in procs if joined(d) and not d.armed]
                if ready:
                    victim = rng.choice(ready)
                    victim.ours = True
                    victim.proc.send_signal(signal.SIGKILL)
                    victim.proc.wait(30)
                    fig.kills["sigkill " + victim.role] += 1
                    revive(victim)
                    progress_at_kill = done
                    next_kill = time.monotonic() + rng.uniform(*gap)
            if not prod.is_alive() and done >= len(expect) and \
                    (kills_total() < m["kills"] or unfired()) and \
                    top_ups < len(reserve) // 10:
                # the stream ran dry before the targets: more traffic
                batch = reserve[top_ups * 10:(top_ups + 1) * 10]
                top_ups += 1
                for r in batch:
                    expect[r["share_id"]] = rexpect[r["share_id"]]
                fig.requests += len(batch)
                produce(w, batch, fig)
        stop.set()
        prod.join(600)
        if perr:
            raise perr[0]
        # the end: every daemon running, none armed
        for d in procs:
            if d.alive() and d.armed:
                # stopped below once it has started (a process signalled
                # before its handler is set dies by the signal)
                h.wait_for(lambda: not d.alive() or joined(d), 120,
                           "%s to join its group" % d.name)
            if not d.alive():
                revive(d, arm=False)
            elif d.armed:
                # armed, never fired: a clean stop, then unarmed
                rc = d.stop(timeout=90)
                if rc != 0:
                    fig.problems.append("%s: exit %s after SIGTERM (%s)" % (d.name, rc, d.stop_note))
                d.env.pop("KB_FAILPOINTS", None)
                d.armed = None
                d.start()
        fig.notes.append("failpoints fired: %s" % ", ".join(
            "%s (%s) %d" % (n, r, c) for (r, n), c in sorted(fired.items())))
        finish(w, expect, fig, timeout=600)
        verify(w, expect, fig)
        vendor_figures(w, fig)
    return fig


def run_stream(ctx, name, n, faults, imp_extra=None, all_reconciled=False):
    """One paced stream through an issuer and two importers with @faults
    set in the sandbox."""
    fig = Figures(name)
    rng = random.Random(ctx.rng.random())
    w = new_world(ctx, name, imp_extra=imp_extra)
    with running(w, fig):
        records, expect = requests_for(w, fig, n, rng)
        for f in faults:
            w.sb.http.req("PUT", "/sandbox/faults", f, expect=200)
        start_daemons(w)
        stop = threading.Event()
        prod, perr = producer(w, records, max(5.0, n / 100.0), stop, fig)
        prod.join(600)
        if perr:
            raise perr[0]
        finish(w, expect, fig, timeout=900)  # a daemon that died is a problem there
        verify(w, expect, fig, all_reconciled=all_reconciled)
        vendor_figures(w, fig)
    return fig


def run_faults(ctx):
    return run_stream(ctx, "faults", ctx.mode["fault_requests"], [
        {"path": "*", "latency_ms": 100},
        {"path": "/v3/session/import-shared/", "latency_ms": 100,
         "error_rate": 0.2, "error_status": 503},
        {"path": "/v3/session/{}/share/", "latency_ms": 100,
         "error_rate": 0.1, "error_status": 429, "retry_after": 1},
    ])


def run_lost(ctx):
    # answers to imports the vendor did arrive 2.5 s after the request,
    # the importer gives up after 1 s; its retry learns at once that the
    # token is spent (403) and reconciles
    return run_stream(ctx, "lost", ctx.mode["lost_requests"], [
        {"path": "/v3/session/import-shared/", "latency_ms": 2500,
         "latency_only_2xx": True},
    ], imp_extra={"vendor.timeout_ms": 1000}, all_reconciled=True)


def run_freeze(ctx):
    fig = Figures("freeze")
    rng = random.Random(ctx.rng.random())
    n = ctx.mode["freeze_requests"]
    w = new_world(ctx, "freeze", metrics=True, token_partitions=6)
    with running(w, fig):
        records, expect = requests_for(w, fig, n, rng)
        # every answer 300 ms late: always work in flight
        w.sb.http.req("PUT", "/sandbox/faults", {"path": "*", "latency_ms": 300}, expect=200)
        start_daemons(w)
        a, b = w.imps
        stop = threading.Event()
        prod, perr = producer(w, records, max(10.0, n / 40.0), stop, fig)

        def in_flight(d):
            m = d.scrape()
            return (m.total("kyc_bridge_records_in_flight"),
                    m.total("kyc_bridge_records_total", outcome="published"))

        st = h.wait_for(lambda: (lambda f: f if f[0] > 0 and f[1] > 0 else None)(in_flight(b)),
                        120, "importer-b to have records in flight", interval=0.05)
        os.kill(b.pid, signal.SIGSTOP)
        w.frozen = b
        frozen_at = time.monotonic()
        fig.notes.append("importer-b frozen with %d records in flight, %d published" % st)
        say("importer-b frozen with %d records in flight", st[0])
        # past the session timeout: the group gives b's partitions to a
        h.wait_for(lambda: owned(a) == 6, 120, "importer-a to own all 6 partitions")
        fig.notes.append("importer-a owned every partition %.1f s after the freeze" %
                         (time.monotonic() - frozen_at))
        prod.join(600)
        if perr:
            raise perr[0]
        try:
            wait_stable(w.done, len(expect), 600, settle=5.0)
        except TimeoutError as e:
            fig.problems.append("STUCK while importer-b was frozen: %s" % e)
        before = w.done()
        os.kill(b.pid, signal.SIGCONT)
        w.frozen = None
        fig.notes.append("importer-b resumed after %.1f s" % (time.monotonic() - frozen_at))
        pub0 = in_flight(b)[1]
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 6)
        pub1 = in_flight(b)[1]
        if pub1 != pub0:
            fig.problems.append("importer-b published %d record(s) after it was resumed" %
                                (pub1 - pub0))
        if w.done() != before:
            fig.problems.append("%d output record(s) committed after the resume" %
                                (w.done() - before))
        tail = last_run_log(b)
        fig.notes.append("importer-b after the resume: %s" % "; ".join(sorted(set(
            re.findall(r"(lost \d+ partition\S*|fenced[^\n]{0,60}|abort[^\n]{0,60})", tail)))[:5]))
        finish(w, expect, fig, timeout=300)
        verify(w, expect, fig)
        vendor_figures(w, fig)
    return fig


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(
        description="The chaos suite (tests/chaos/README.md): kills, broker crashes, "
                    "vendor faults, lost answers and a frozen group member, verified "
                    "read_committed. Exit 0: no loss, no duplicate, no orphan.")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="CI size: >= 1,000 requests, >= 30 kills (default)")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="on demand: >= 10,000 requests, >= 300 kills")
    ap.add_argument("--only", default=",".join(RUNS),
                    help="runs to do, comma-separated (default: %s)" % ",".join(RUNS))
    ap.add_argument("--seed", type=int, default=None,
                    help="random seed (default: from the clock; printed)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the mode's request and kill counts (development: "
                    "below 1 the run cannot pass, it is shorter than the mode)")
    ap.add_argument("--report", help="write the figures as JSON to this file")
    ap.add_argument("--workdir", help="broker and logs here, emptied first (default: a "
                    "new temporary directory under KB_TEST_TMP); removed after a "
                    "run without problems, kept otherwise")
    ap.set_defaults(mode="quick")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = int(time.time()) % 100000
    runs = [r.strip() for r in args.only.split(",") if r.strip()]
    for r in runs:
        if r not in RUNS:
            ap.error("unknown run %r (runs: %s)" % (r, ", ".join(RUNS)))
    h.kb_bin()
    # SIGTERM (a ctest timeout, ^C in a wrapper): the finally blocks stop
    # the daemons, the sandboxes and the broker
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = Ctx(args)
    base = args.workdir or h.new_workdir("chaos")
    if args.workdir and os.path.isdir(os.path.join(base, "kafka")):
        # what a run killed midway left (its broker may still run)
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "kafka.sh"), "stop",
                        os.path.join(base, "kafka")], timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base, exist_ok=True)
    os.environ["KB_TEST_TMP"] = base
    say("mode %s, seed %d, runs %s, work directory %s", args.mode, args.seed,
        ",".join(runs), base)
    t0 = time.monotonic()
    ctx.broker = h.PrivateBroker(os.path.join(base, "kafka"))
    os.environ["KB_KAFKA_DIR"] = ctx.broker.dir
    figs = []
    try:
        for r in runs:
            say("run %s", r)
            f = globals()["run_" + r](ctx)
            f.print()
            figs.append(f)
    finally:
        ctx.broker.stop()
    total = time.monotonic() - t0
    bad = [f for f in figs if f.problems]
    mode = MODES[args.mode]
    short = []
    if args.scale != 1.0:
        short.append("--scale %g: not a %s run" % (args.scale, args.mode))
    kf = [f for f in figs if f.name == "kills"]
    if kf and (kf[0].requests < mode["kill_requests"] or
               sum(kf[0].kills.values()) < mode["kills"]):
        short.append("the kills run did fewer requests or kills than the %s mode's "
                     "%d / %d" % (args.mode, mode["kill_requests"], mode["kills"]))
    print("== chaos %s, seed %d: %d runs in %.0f s; %s" % (
        args.mode, args.seed, len(figs), total,
        "PASSED" if not bad and not short else "FAILED"))
    for s in short:
        print("   PROBLEM: %s" % s)
    if args.report:
        with open(args.report, "w") as fh:
            json.dump({"mode": args.mode, "seed": args.seed, "seconds": round(total, 1),
                       "runs": [f.as_dict() for f in figs]}, fh, indent=2)
    if not bad and not short:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print("   work directory kept: %s" % base)
    return 1 if bad or short else 0


if __name__ == "__main__":
    sys.exit(main())
