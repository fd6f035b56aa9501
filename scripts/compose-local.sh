#!/usr/bin/env bash
# compose-local.sh -- run docker/docker-compose.yml's services as local
# processes, in the same order, from the same scripts and config templates,
# against a real Kafka; print the downstream records and check them.
#
# Usage:
#   scripts/compose-local.sh [--bin PATH] [--kafka-dir DIR | --bootstrap HOST:PORT]
#                            [--count N] [--timeout SECONDS] [--keep]
#
#   --bin PATH         the kyc-bridge binary (default $KB_BIN, else build/kyc-bridge)
#   --kafka-dir DIR    a broker started by scripts/kafka.sh (default $KB_KAFKA_DIR)
#   --bootstrap ADDR   any reachable broker (plaintext) instead
#                      With neither, a broker is started in the work directory
#                      (scripts/kafka.sh) and stopped at the end.
#   --count N          finished sessions the share-job shares (default: the
#                      compose file's SHARE_COUNT)
#   --timeout SECONDS  how long to wait for every record (default 180)
#   --keep             keep the work directory (logs, keys, rendered configs)
#
# Each service of the compose file becomes one step (the `step` lines below,
# which tests/blackbox/compose_check.py holds to the compose file's
# depends_on order). A service's environment and command come from the
# compose file itself (compose_check.py plan), with container paths mapped
# to this machine: bind mounts to docker/ in this repository, named volumes
# to WORK/root/<mount point>. What differs from Docker, and only that:
#   kafka    scripts/kafka.sh's broker (same Kafka version) instead of the
#            apache/kafka container; KAFKA_BOOTSTRAP is its 127.0.0.1 address
#   tools    kafka-topics.sh, kafka-console-producer.sh and
#            kafka-console-consumer.sh are the same Kafka classes (Maven
#            artifact org.apache.kafka:kafka-tools) run with this machine's Java
#   sandbox  listens on 127.0.0.1 (a free port), not 0.0.0.0:8480;
#            VENDOR_URL is that address
#   webhooks the issuer's and the importer's intakes listen on 127.0.0.1
#            (free ports) instead of 0.0.0.0:PORT, and the setup job
#            registers http://127.0.0.1:PORT/PATH with the sandbox instead
#            of http://SERVICE:PORT/PATH (*_WEBHOOK_LISTEN, *_WEBHOOK_URL);
#            metrics.listen (*_METRICS_LISTEN) is that same local address,
#            as in compose; a daemon is "healthy" when its compose
#            healthcheck (GET /readyz answers 200) passes on that address
#   prometheus  (profile monitoring) not run: this script scrapes each
#            target of docker/prometheus/prometheus.yml (both daemons and
#            the sandbox) once, at its local address, once the records
#            arrived, and parses
#            the exposition (python3-prometheus-client, python3-yaml)
#   paths    KB_STATE_DIR points at WORK/root/var/lib/kyc-bridge
# Every service runs as this user; files keep the modes the scripts give them.
#
# Exit status: 0 when every share request of this run produced exactly one
# record, on the expected topic, the session the issuer's sharing rule
# shares (no share request) arrived as exactly one imported record, and the
# review-job's approval of an In Review import arrived as a status update;
# 1 otherwise; 2 on a usage error.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
prog=compose-local
check=$here/tests/blackbox/compose_check.py
die() {
        echo "$prog: $*" >&2
        exit 1
}
usage() {
        sed -n '/^# Usage:/,/^#   --keep/p' "$0" | sed -e 's/^# \{0,1\}//' >&2
        exit 2
}

bin=${KB_BIN:-$here/build/kyc-bridge}
kafka_dir=${KB_KAFKA_DIR:-}
bootstrap=
count=
timeout=180
keep=0
while [ $# -gt 0 ]; do
        case $1 in
        --bin) bin=${2:?}; shift 2 ;;
        --kafka-dir) kafka_dir=${2:?}; shift 2 ;;
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        --timeout) timeout=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage ;;
        *) echo "$prog: unknown argument $1" >&2; usage ;;
        esac
done
[ -x "$bin" ] || die "$bin: no kyc-bridge binary (build it, or --bin PATH)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[[ $timeout =~ ^[1-9][0-9]*$ ]] || usage
[ -z "$count" ] || [[ $count =~ ^[1-9][0-9]*$ ]] || usage
py=${KB_PYTHON3:-python3}
for t in "$py" java mvn setsid; do
        command -v "$t" >/dev/null 2>&1 || die "$t not found (scripts/setup.sh installs it)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kb-compose-local.XXXXXX")
root=$work/root
state=$root/var/lib/kyc-bridge
mkdir -p "$work/logs" "$work/bin" "$work/plans"
ln -s "$bin" "$work/bin/kyc-bridge"
own_kafka=
pids=()
ok=0

cleanup() {
        local i pid
        set +e
        # Reverse start order: watch, importer, issuer, sandbox. Each is the
        # leader of its own process group (setsid): the group goes.
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
                pid=${pids[i]}
                kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
                for _ in $(seq 1 600); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                if kill -0 "$pid" 2>/dev/null; then
                        echo "$prog: pid $pid ignored SIGTERM for 60 s; killing it" >&2
                        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
                fi
                wait "$pid" 2>/dev/null
        done
        [ -z "$own_kafka" ] || bash "$here/scripts/kafka.sh" stop "$own_kafka" >/dev/null 2>&1
        if [ $keep = 1 ] || [ $ok = 0 ]; then
                echo "$prog: work directory kept: $work" >&2
        else
                rm -rf "$work"
        fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# step NAME -- one compose service; the order of these lines is checked.
step() {
        printf '\n== %s\n' "$1"
}

# The compose file's view of a service, mapped to this machine.
plan() {
        "$py" "$check" plan "$1" --root "$root" >"$work/plans/$1.sh" ||
                die "compose_check.py plan $1 failed"
}

# Runs a service's command with its compose environment; the LOCAL_*
# variables replace the container addresses.
cat >"$work/run-service.sh" <<'EOF'
# run-service.sh PLAN -- written by compose-local.sh
. "$1"
[ -z "${KAFKA_BOOTSTRAP+x}" ] || export KAFKA_BOOTSTRAP=$LOCAL_KAFKA_BOOTSTRAP
[ -z "${VENDOR_URL+x}" ] || export VENDOR_URL=$LOCAL_VENDOR_URL
[ -z "${SHARE_COUNT+x}" ] || [ -z "$LOCAL_SHARE_COUNT" ] || export SHARE_COUNT=$LOCAL_SHARE_COUNT
# The webhook intakes: loopback addresses instead of the compose network's.
for v in ISSUER_WEBHOOK_LISTEN ISSUER_WEBHOOK_URL PARTNER_WEBHOOK_LISTEN PARTNER_WEBHOOK_URL \
        ISSUER_METRICS_LISTEN PARTNER_METRICS_LISTEN; do
        l=LOCAL_$v
        [ -z "${!v+x}" ] || [ -z "${!l:-}" ] || export "$v=${!l}"
        unset "$l"
done
if [ -n "$LOCAL_PORT_FILE" ]; then
        # The sandbox: loopback and a free port instead of 0.0.0.0:8480.
        args=()
        while [ $# -gt 0 ]; do
                case $1 in
                --listen) args+=(--listen 127.0.0.1:0 --port-file "$LOCAL_PORT_FILE"); shift 2 ;;
                --allow-remote) shift ;;
                *) args+=("$1"); shift ;;
                esac
        done
        set -- "${args[@]}"
fi
unset LOCAL_KAFKA_BOOTSTRAP LOCAL_VENDOR_URL LOCAL_SHARE_COUNT LOCAL_PORT_FILE
exec "$@"
EOF

# svc_env -- sets envcmd: a clean environment (the service sees its compose
# environment plus what every process needs, not this script's environment)
svc_env() {
        envcmd=(env -i PATH="$work/bin:$PATH" HOME="${HOME:-/tmp}" LANG=C.UTF-8)
        [ -z "${JAVA_HOME:-}" ] || envcmd+=(JAVA_HOME="$JAVA_HOME")
        envcmd+=(KB_STATE_DIR="$state" KAFKA_BIN="$work/kafka-bin"
                LOCAL_KAFKA_BOOTSTRAP="$bootstrap" LOCAL_VENDOR_URL="${vendor_url:-}"
                LOCAL_SHARE_COUNT="$count" LOCAL_PORT_FILE="${port_file:-}"
                LOCAL_ISSUER_WEBHOOK_LISTEN="${issuer_listen:-}"
                LOCAL_ISSUER_WEBHOOK_URL="${issuer_url:-}"
                LOCAL_PARTNER_WEBHOOK_LISTEN="${partner_listen:-}"
                LOCAL_PARTNER_WEBHOOK_URL="${partner_url:-}"
                LOCAL_ISSUER_METRICS_LISTEN="${issuer_listen:-}"
                LOCAL_PARTNER_METRICS_LISTEN="${partner_listen:-}")
}

# oneshot NAME -- runs to completion; exit status 0 or the run fails.
oneshot() {
        plan "$1"
        svc_env
        if ! "${envcmd[@]}" bash "$work/run-service.sh" "$work/plans/$1.sh" \
                >"$work/logs/$1.log" 2>&1; then
                sed "s/^/  $1| /" "$work/logs/$1.log"
                die "the $1 job failed (log above)"
        fi
        sed "s/^/  $1| /" "$work/logs/$1.log"
}

# daemon NAME -- started in its own process group, stopped at the end.
# (setsid is the background command itself: not a group leader, it does not
# fork, so $! is the group's id.)
daemon() {
        plan "$1"
        svc_env
        setsid "${envcmd[@]}" bash "$work/run-service.sh" "$work/plans/$1.sh" \
                </dev/null >"$work/logs/$1.log" 2>&1 &
        pids+=($!)
        echo "  started $1 (pid $!, log $work/logs/$1.log)"
}

alive_or_die() {
        local name=$1 pid=$2
        kill -0 "$pid" 2>/dev/null && return 0
        tail -n 30 "$work/logs/$name.log" | sed "s/^/  $name| /" >&2
        die "$name exited (log above)"
}

# wait_healthy NAME PID URL -- the compose healthcheck of a daemon (GET
# /readyz on its metrics.listen answers 200), on its local address.
wait_healthy() {
        local name=$1 pid=$2 url=$3 deadline=$((SECONDS + 90))
        until bash "$here/docker/scripts/health.sh" "$url" >/dev/null 2>&1; do
                alive_or_die "$name" "$pid"
                [ $SECONDS -lt $deadline ] || die "$name: $url did not answer 200 within 90 s"
                sleep 0.5
        done
        echo "  healthy: $url answers 200"
}

# free_port -- a TCP port free on 127.0.0.1 now
free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Kafka's command-line tools, as in the apache/kafka image: the same
# classes from Maven Central, run with this machine's Java.
kafka_tools() {
        local v l4j cache pom cp
        v=$(sed -n 's/^KAFKA_VERSION=\([0-9.]*\)$/\1/p' "$here/scripts/kafka.sh")
        l4j=$(sed -n 's/^LOG4J_VERSION=\([0-9.]*\)$/\1/p' "$here/scripts/kafka.sh")
        if [ -z "$v" ] || [ -z "$l4j" ]; then
                die "cannot read KAFKA_VERSION/LOG4J_VERSION from scripts/kafka.sh"
        fi
        cache=${KB_KAFKA_TOOLS_CACHE:-${HOME:-/tmp}/.cache/kyc-bridge/kafka-tools-$v}
        mkdir -p "$cache"
        pom="<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>
<groupId>kyc-bridge.local</groupId><artifactId>kafka-tools-classpath</artifactId>
<version>$v</version><packaging>pom</packaging><dependencies>
<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$v</version></dependency>
<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$l4j</version></dependency>
<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$l4j</version></dependency>
</dependencies></project>"
        (
                exec 9>"$cache/.lock"
                flock -w 900 9 || die "timed out waiting for $cache/.lock"
                if [ "$(cat "$cache/.fetched" 2>/dev/null)" != "$(printf '%s' "$pom" | sha256sum | cut -c1-32)" ]; then
                        echo "  fetching org.apache.kafka:kafka-tools:$v with Maven into $cache"
                        printf '%s\n' "$pom" >"$cache/pom.xml"
                        rm -rf "${cache:?}/lib"
                        mvn -q -B -Dstyle.color=never -f "$cache/pom.xml" \
                                org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
                                -DincludeScope=runtime -DoutputDirectory="$cache/lib" \
                                >"$cache/mvn.log" 2>&1 || die "mvn failed: $cache/mvn.log"
                        find "$cache/lib" -name '*.jar' | LC_ALL=C sort | paste -sd: - >"$cache/classpath"
                        printf '%s' "$pom" | sha256sum | cut -c1-32 >"$cache/.fetched"
                fi
        )
        cp=$(cat "$cache/classpath")
        mkdir -p "$work/kafka-bin"
        cat >"$work/kafka-bin/log4j2.properties" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
        local tool class
        for tool in kafka-topics:org.apache.kafka.tools.TopicCommand \
                kafka-console-producer:org.apache.kafka.tools.ConsoleProducer \
                kafka-console-consumer:org.apache.kafka.tools.consumer.ConsoleConsumer; do
                class=${tool#*:}
                cat >"$work/kafka-bin/${tool%%:*}.sh" <<EOF
#!/bin/sh
# ${tool%%:*}.sh as in the apache/kafka image (written by compose-local.sh)
exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xms32m -Xmx256m \\
        -Dlog4j2.configurationFile=$work/kafka-bin/log4j2.properties \\
        -cp '$cp' $class "\$@"
EOF
                chmod +x "$work/kafka-bin/${tool%%:*}.sh"
        done
}

echo "$prog: work directory $work"

step kafka
if [ -n "$bootstrap" ]; then
        echo "  using the broker at $bootstrap"
elif [ -n "$kafka_dir" ]; then
        bootstrap=$(cat "$kafka_dir/bootstrap" 2>/dev/null) ||
                die "$kafka_dir/bootstrap missing: no scripts/kafka.sh broker there"
        echo "  using the broker of $kafka_dir at $bootstrap"
else
        own_kafka=$work/kafka
        bootstrap=$(bash "$here/scripts/kafka.sh" start "$own_kafka") || die "could not start Kafka"
        echo "  started a broker at $bootstrap"
fi
kafka_tools

step topics
oneshot topics

# The volumes' mount points, as the image creates them.
mkdir -p "$state"
install -d -m 0700 "$state/issuer" "$state/partner" "$state/sandbox"
install -d -m 0755 "$state/exchange"

step sandbox
port_file=$work/sandbox.port
daemon sandbox
sandbox_pid=${pids[-1]}
for _ in $(seq 1 200); do
        [ -s "$port_file" ] && break
        alive_or_die sandbox "$sandbox_pid"
        sleep 0.1
done
[ -s "$port_file" ] || die "the sandbox wrote no port file"
vendor_url=http://127.0.0.1:$(cat "$port_file")
port_file=
bash "$here/docker/scripts/health.sh" "$vendor_url/sandbox/health" ||
        die "the sandbox is not healthy"
echo "  healthy at $vendor_url"

step keygen
oneshot keygen

step setup
# The intakes' local addresses; the URLs keep the compose file's paths.
plan setup
issuer_port=$(free_port)
partner_port=$(free_port)
while [ "$partner_port" = "$issuer_port" ]; do partner_port=$(free_port); done
issuer_listen=127.0.0.1:$issuer_port
partner_listen=127.0.0.1:$partner_port
# shellcheck disable=SC1091 # the plan written above
issuer_url=$(. "$work/plans/setup.sh"; echo "$ISSUER_WEBHOOK_URL" |
        sed "s#^http://[^/]*#http://$issuer_listen#")
# shellcheck disable=SC1091
partner_url=$(. "$work/plans/setup.sh"; echo "$PARTNER_WEBHOOK_URL" |
        sed "s#^http://[^/]*#http://$partner_listen#")
echo "  webhook intakes: issuer $issuer_url, importer $partner_url"
oneshot setup

step issuer
daemon issuer
issuer_pid=${pids[-1]}
wait_healthy issuer "$issuer_pid" "http://$issuer_listen/readyz"

step importer
daemon importer
importer_pid=${pids[-1]}
wait_healthy importer "$importer_pid" "http://$partner_listen/readyz"

step share-job
oneshot share-job
shares=$(grep '^share ' "$work/logs/share-job.log") || die "the share-job printed no shares"
read -r _ rule_sid _ _ rule_vd < <(grep '^rule ' "$work/logs/share-job.log") ||
        die "the share-job printed no rule session"

step review-job
oneshot review-job
read -r _ approved_sid approved_kind approved_status approved_share < \
        <(grep '^approved ' "$work/logs/review-job.log") ||
        die "the review-job approved nothing"

step watch
daemon watch
watch_pid=${pids[-1]}

# What should arrive where: the topics, as the product reads its configs.
topic_of() { # CONF ROLE OPTION
        "$bin" config dump -c "$1" --role "$2" | sed -n "s/^$3=\([^ ]*\).*/\1/p"
}
out_topic=$(topic_of "$state/partner/importer.conf" importer importer.output_topic)
status_topic=$(topic_of "$state/partner/importer.conf" importer importer.status_topic)
idlq_topic=$(topic_of "$state/issuer/issuer.conf" issuer issuer.dlq_topic)
if [ -z "$out_topic" ] || [ -z "$status_topic" ] || [ -z "$idlq_topic" ]; then
        die "cannot read the topics from the rendered configs"
fi

n=$(printf '%s\n' "$shares" | wc -l)
printf '\n%s: waiting up to %s s for %d + 2 records (%s, %s, %s)\n' "$prog" "$timeout" "$n" \
        "$out_topic" "$status_topic" "$idlq_topic"
deadline=$((SECONDS + timeout))
while :; do
        alive_or_die issuer "$issuer_pid"
        alive_or_die importer "$importer_pid"
        alive_or_die watch "$watch_pid"
        seen=0
        while read -r _ id _; do
                grep -v "^$status_topic " "$work/logs/watch.log" |
                        grep -qF "\"share_id\":\"$id\"" && seen=$((seen + 1))
        done <<<"$shares"
        grep "^$out_topic " "$work/logs/watch.log" |
                grep -qF "\"shared_from_session\":\"$rule_sid\"" && seen=$((seen + 1))
        grep "^$status_topic " "$work/logs/watch.log" |
                grep -qF "\"session_id\":\"$approved_sid\"" && seen=$((seen + 1))
        [ "$seen" -lt $((n + 2)) ] || break
        [ $SECONDS -lt $deadline ] || break
        sleep 1
done
# A little longer, so that a duplicate would show.
sleep 3

echo
echo "== records (watch)"
# shellcheck disable=SC1091 # the plan written above
for t in $(. "$work/plans/watch.sh"; echo "$WATCH_TOPICS"); do
        grep "^$t " "$work/logs/watch.log" | sed 's/^/  /' || true
done

echo
printf '%-36s %-8s %-12s %-13s %s\n' share_id kind source outcome topic
bad=0
while read -r _ id kind status _; do
        # (a status update names its import's share_id too: not counted here)
        lines=$(grep -v "^$status_topic " "$work/logs/watch.log" |
                grep -F "\"share_id\":\"$id\"" || true)
        k=$(printf '%s' "$lines" | grep -c . || true)
        topic=$(printf '%s' "$lines" | awk '{print $1}' | sort -u | paste -sd, -)
        if [ "$status" = Not_Started ]; then
                want=$idlq_topic outcome=dead-lettered
        else
                want=$out_topic outcome=imported
        fi
        if [ "$k" != 1 ] || [ "$topic" != "$want" ]; then
                outcome="WRONG: $k record(s), want 1 on $want"
                bad=$((bad + 1))
        fi
        printf '%-36s %-8s %-12s %-13s %s\n' "$id" "$kind" "$status" "$outcome" "${topic:--}"
done <<<"$shares"

# The webhook flows. The rule's share: exactly one imported record of the
# rule's session, with a webhook share_id, and no other rule share.
echo
rule_lines=$(grep "^$out_topic " "$work/logs/watch.log" |
        grep -F "\"shared_from_session\":\"$rule_sid\"" || true)
k=$(printf '%s' "$rule_lines" | grep -c . || true)
rule_share=$(printf '%s' "$rule_lines" | grep -o '"share_id":"[^"]*"' | head -n 1 |
        sed -e 's/^.*:"//' -e 's/"$//')
wh_all=$(grep -c '"share_id":"wh-' "$work/logs/watch.log" || true)
if [ "$k" = 1 ] && [[ $rule_share == wh-* ]] && [ "$wh_all" = 1 ]; then
        echo "rule:   session $rule_sid (no share request) shared by the issuer's rule as $rule_share: 1 record on $out_topic"
else
        echo "rule:   WRONG: session $rule_sid: $k record(s) on $out_topic (share_id '${rule_share:-}'), $wh_all webhook share(s) in all; want 1, share_id wh-..."
        bad=$((bad + 1))
fi
# The status update: the approved import, one change (a repeat of the
# record carries the same event_id), and nothing for any other session.
st_lines=$(grep "^$status_topic " "$work/logs/watch.log" || true)
k=$(printf '%s' "$st_lines" | grep -c . || true)
mine=$(printf '%s' "$st_lines" | grep -F "\"session_id\":\"$approved_sid\"" |
        grep -F "\"new_status\":\"$approved_status\"" | grep -F "\"share_id\":\"$approved_share\"" || true)
km=$(printf '%s' "$mine" | grep -c . || true)
events=$(printf '%s' "$mine" | grep -o '"event_id":"[^"]*"' | sort -u | grep -c . || true)
if [ "$km" -ge 1 ] && [ "$km" = "$k" ] && [ "$events" = 1 ]; then
        echo "status: session $approved_sid ($approved_kind, share $approved_share) approved by the partner: $km record(s) on $status_topic, 1 event"
else
        echo "status: WRONG: $k record(s) on $status_topic, $km for session $approved_sid -> $approved_status ($events event id(s)); want them all for it, 1 event"
        bad=$((bad + 1))
fi

# Prometheus's part (profile monitoring): each target of its scrape config,
# at the service's local address, answers /metrics in the text format: the
# daemons (job kyc-bridge) for the right daemon, with the records this run
# published, ready; the sandbox (job kyc-bridge-sandbox) with the requests
# it answered. Every metric the dashboard (docker/grafana/*.json) and the
# alert rules (docker/prometheus/alerts.yml) read is in the daemons' scrapes.
step prometheus
if ! "$py" - "$here" "$check" "issuer=$issuer_listen" "importer=$partner_listen" \
        "sandbox=${vendor_url#http://}" <<'EOF'; then
import glob
import json
import os
import re
import sys
import urllib.request

import yaml
from prometheus_client.parser import text_string_to_metric_families

here, check = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(check))
import compose_check  # noqa: E402 -- promql_metrics, the checks' PromQL reader

pdir = os.path.join(here, "docker", "prometheus")
with open(os.path.join(pdir, "prometheus.yml")) as f:
    prom = yaml.safe_load(f)
local = dict(a.split("=", 1) for a in sys.argv[3:])
bad = 0
declared = set()  # metric names the daemons' expositions declare (# TYPE)


def total(fams, fam, sample, **labels):
    return sum(s.value for s in fams[fam].samples if s.name == sample and
               all(s.labels.get(k) == v for k, v in labels.items())) if fam in fams else 0


for job in prom["scrape_configs"]:
    for sc in job.get("static_configs") or []:
        for t in sc.get("targets") or []:
            svc = t.rpartition(":")[0]
            url = "http://%s%s" % (local[svc], job.get("metrics_path", "/metrics"))
            with urllib.request.urlopen(url, timeout=10) as r:
                ctype = r.headers.get("Content-Type", "")
                text = r.read().decode()
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            good = ctype.startswith("text/plain")
            if job["job_name"] == "kyc-bridge-sandbox":
                n = total(fams, "kyc_bridge_sandbox_requests", "kyc_bridge_sandbox_requests_total")
                good = good and n > 0
                what = "%d requests answered" % n
            else:
                declared.update(re.findall(r"^# TYPE (\S+) ", text, re.M))
                pub = total(fams, "kyc_bridge_records", "kyc_bridge_records_total",
                            daemon=svc, outcome="published")
                ready = [s.value for s in fams["kyc_bridge_ready"].samples
                         if s.labels.get("daemon") == svc] if "kyc_bridge_ready" in fams else []
                good = good and "kyc_bridge_build_info" in fams and pub > 0 and ready == [1]
                what = "%d records published, kyc_bridge_ready %s" % (pub, ready or "missing")
            bad += not good
            print("  %s %s %s (%s as %s): %d families, %s%s"
                  % ("scraped" if good else "WRONG:", job["job_name"], t, svc, url, len(fams),
                     what, "" if good else ", content type %r" % ctype))
exprs = {}
for p in sorted(glob.glob(os.path.join(here, "docker", "grafana", "*.json"))):
    with open(p) as f:
        for panel in json.load(f).get("panels", []):
            for tg in panel.get("targets", []):
                exprs.setdefault(tg.get("expr", ""), "grafana/" + os.path.basename(p))
with open(os.path.join(pdir, "alerts.yml")) as f:
    for g in yaml.safe_load(f)["groups"]:
        for rule in g["rules"]:
            exprs.setdefault(rule["expr"], "alerts.yml " + rule["alert"])
used = {}
for e, where in exprs.items():
    for m in compose_check.promql_metrics(e):
        if m.startswith("kyc_bridge_"):
            used.setdefault(m, where)
missing = sorted(m for m in used if m not in declared and
                 re.sub(r"_(bucket|sum|count)$", "", m) not in declared and
                 re.sub(r"_total$", "", m) not in declared)
for m in missing:
    print("  WRONG: %s (%s) is in no daemon's scrape" % (m, used[m]))
print("  %d of the %d metrics the dashboard and the alert rules read are in the daemons' scrapes"
      % (len(used) - len(missing), len(used)))
sys.exit(1 if bad or missing else 0)
EOF
        bad=$((bad + 1))
fi

if [ $bad -ne 0 ]; then
        for s in issuer importer sandbox; do
                echo "---- last lines of $s.log:" >&2
                tail -n 20 "$work/logs/$s.log" >&2
        done
        die "$bad check(s) failed (above)"
fi
ok=1
echo "$prog: OK: $n share requests, each exactly one record on the expected topic; the rule's share and the status update arrived"
