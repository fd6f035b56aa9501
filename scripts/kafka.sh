#!/usr/bin/env bash
# kafka.sh -- a real single-node Apache Kafka broker (KRaft, no ZooKeeper) for
# the test suites: fetched from Maven Central with the machine's Maven, run
# with the machine's Java (17 or newer), listening on 127.0.0.1 only.
#
# Usage:
#   scripts/kafka.sh fetch                 resolve the broker's jars into the cache
#   scripts/kafka.sh start DIR             fresh broker in DIR; prints 127.0.0.1:PORT
#   scripts/kafka.sh stop DIR              stop it (idempotent)
#   scripts/kafka.sh restart DIR           start the broker stopped in DIR again:
#                                          same ports, same data (its topics,
#                                          offsets and transactions); prints
#                                          127.0.0.1:PORT
#   scripts/kafka.sh status DIR            exit 0 if it runs and answers
#   scripts/kafka.sh topic DIR NAME PARTS  create a topic (replication factor 1)
#   scripts/kafka.sh topic DIR NAME:PARTS [NAME:PARTS...]
#   scripts/kafka.sh stage-image DIR       the build context of the offline
#                                          Kafka image (docker/kafka/Dockerfile):
#                                          docker/kafka/* and lib/ = the broker's
#                                          and the tools' jars (hard links into
#                                          the caches where possible)
#
# DIR afterwards holds: bootstrap (the address), kafka.pid, server.properties,
# log4j2.properties, logs/server.log (broker log), kafka.out (JVM stdout and
# stderr), format.log, data/ (log and metadata directories). `start` first
# stops a broker still running there and replaces whatever it left.
#
# Environment:
#   KB_KAFKA_CACHE          jar cache (default ~/.cache/kyc-bridge/kafka-VERSION)
#   KB_KAFKA_TOOLS_CACHE    the command-line tools' jar cache (default
#                           ~/.cache/kyc-bridge/kafka-tools-VERSION; shared with
#                           scripts/compose-local.sh)
#   KB_KAFKA_JAVA           java binary (default $JAVA_HOME/bin/java, then PATH)
#   KB_KAFKA_HEAP           heap options (default -Xms64m -Xmx512m)
#   KB_KAFKA_JVM_OPTS       replaces the default JVM tuning options below
#   KB_KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 90)
#   KB_KAFKA_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 30)
set -euo pipefail

KAFKA_VERSION=4.3.1
SCALA_VERSION=2.13
# SLF4J binding for the broker's logs. Keep it equal to the log4j-core that
# kafka-server depends on (mvn dependency:tree shows it); log4j-api and
# log4j-core are pinned to the same version so the three always match.
LOG4J_VERSION=2.25.4
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

cache=${KB_KAFKA_CACHE:-${HOME:-/tmp}/.cache/kyc-bridge/kafka-$KAFKA_VERSION}
heap=${KB_KAFKA_HEAP:--Xms64m -Xmx512m}
# Start-up speed over peak throughput: the serial collector and the C1
# compiler only (a test broker moves little data), no perf-data file.
jvm_opts=${KB_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}
start_timeout=${KB_KAFKA_START_TIMEOUT:-90}
stop_timeout=${KB_KAFKA_STOP_TIMEOUT:-30}

prog=kafka.sh
die() { echo "$prog: $*" >&2; exit 1; }
usage() {
        sed -n '/^# Usage:/,/^#$/p' "$0" | sed -e 's/^# \{0,1\}//' >&2
        exit "${1:-2}"
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found (scripts/setup.sh installs it)"; }
now_ms() { date +%s%3N; }
# True while process $1 exists and is not a zombie (a broker whose parent,
# this script, has exited stays a zombie until init or a subreaper reaps it).
alive() {
        local st
        kill -0 "$1" 2>/dev/null || return 1
        st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
        [ -n "$st" ] && [ "$st" != Z ]
}

# ---------------------------------------------------------------- fetch

pom() {
        cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- written by kyc-bridge scripts/kafka.sh: the test broker's runtime classpath -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kyc-bridge.test</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

fetched() {
        [ -f "$cache/.fetched" ] && [ -f "$cache/classpath" ] &&
                [ "$(cat "$cache/.fetched")" = "$(pom | sha256sum | cut -c1-32)" ]
}

fetch() {
        fetched && return 0
        need mvn
        need flock
        mkdir -p "$cache"
        # One fetch at a time per cache; the others wait and reuse its result.
        exec 9>"$cache/.lock"
        flock -w 600 9 || die "timed out waiting for another fetch ($cache/.lock)"
        if fetched; then
                exec 9>&-
                return 0
        fi
        local t0 lib
        t0=$(now_ms)
        echo "$prog: fetching Apache Kafka $KAFKA_VERSION from Maven Central into $cache" >&2
        rm -f "$cache/.fetched" "$cache/classpath"
        rm -rf "$cache/lib.new" "$cache/cds"
        pom >"$cache/pom.xml"
        if ! mvn -q -B -Dstyle.color=never -f "$cache/pom.xml" \
                "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
                -DoutputDirectory="$cache/lib.new" >"$cache/mvn.log" 2>&1; then
                sed 's/\x1b\[[0-9;]*m//g' "$cache/mvn.log" >&2
                die "mvn could not resolve the broker's dependencies (log above, kept in $cache/mvn.log)"
        fi
        lib=$cache/lib.new
        [ -f "$lib/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ] || die "kafka_$SCALA_VERSION-$KAFKA_VERSION.jar missing after mvn"
        # The binding matches SLF4J 1.x; a Kafka on SLF4J 2 needs log4j-slf4j2-impl.
        compgen -G "$lib/slf4j-api-1.*.jar" >/dev/null ||
                die "Kafka $KAFKA_VERSION does not use SLF4J 1.x: switch the binding to log4j-slf4j2-impl"
        rm -rf "${cache:?}/lib"
        mv "$lib" "$cache/lib"
        find "$cache/lib" -name '*.jar' | LC_ALL=C sort | paste -sd: - >"$cache/classpath"
        pom | sha256sum | cut -c1-32 >"$cache/.fetched"
        exec 9>&-
        echo "$prog: fetched $(find "$cache/lib" -name '*.jar' | wc -l) jars ($(du -sh "$cache/lib" | cut -f1)) in $(( $(now_ms) - t0 )) ms" >&2
}

# ---------------------------------------------------------------- java

java_bin() {
        local j=${KB_KAFKA_JAVA:-}
        if [ -z "$j" ] && [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
                j=$JAVA_HOME/bin/java
        fi
        if [ -z "$j" ]; then
                j=$(command -v java) || die "java not found (Kafka $KAFKA_VERSION needs Java 17 or newer)"
        fi
        readlink -f "$j"
}

# Prints the Java feature version (17, 21, ...) of java binary $1.
java_major() {
        local rel v
        rel=$(dirname "$(dirname "$1")")/release
        if [ -f "$rel" ]; then
                v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$rel")
        else
                v=$("$1" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)
        fi
        v=${v#1.}
        echo "${v%%[.+-]*}"
}

# A class-data-sharing archive of the broker's classes (made by the first
# broker run, used by every later one) halves the JVM's start-up time. It is
# only valid for one JVM build and one classpath: the name carries both.
cds_archive() {
        local key
        key=$( (echo "$1"; stat -c %Y "$1"; cat "$cache/classpath") | sha256sum | cut -c1-16)
        echo "$cache/cds/kafka-$key.jsa"
}

# ---------------------------------------------------------------- helpers

# Absolute path of DIR (created if missing); refuses a directory that holds
# anything but a previous broker of ours, since start wipes parts of it.
broker_dir() {
        local d=$1
        [ -n "$d" ] || usage
        mkdir -p "$d"
        d=$(cd "$d" && pwd)
        if [ ! -f "$d/.kb-kafka" ] && [ -n "$(ls -A "$d")" ]; then
                die "$d is not empty and not a kafka.sh broker directory; refusing to use it"
        fi
        echo "$d"
}

# Prints the PID from DIR/kafka.pid if that process is our broker for DIR.
broker_pid() {
        local d=$1 pid cmd
        [ -f "$d/kafka.pid" ] || return 1
        pid=$(cat "$d/kafka.pid")
        [[ $pid =~ ^[0-9]+$ ]] || return 1
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        [[ $cmd == *"kafka.Kafka $d/server.properties"* ]] || return 1
        echo "$pid"
}

# 16 random bytes, URL-safe base64 without padding: a Kafka cluster id.
cluster_id() {
        local id
        while :; do
                id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
                [ "${id:0:1}" != "-" ] && break
        done
        echo "$id"
}

# Metadata request through librdkafka: succeeds once the broker serves
# requests (it only does after it is registered and unfenced).
broker_answers() {
        local out
        out=$(kcat -b "$1" -L -m "${2:-5}" 2>/dev/null) || return 1
        grep -q '^  broker [0-9]* at ' <<<"$out"
}

write_config() {
        local d=$1 bport=$2 cport=$3
        cat >"$d/server.properties" <<EOF
# written by kyc-bridge scripts/kafka.sh: single-node KRaft test broker
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
# Tests create every topic explicitly; a typo must fail, not create a topic.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
# Transactions and consumer groups on one node. One partition each for the
# internal topics: created in a moment (start creates both up front), and a
# coordinator that has loaded once has loaded for every id.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Timed-out transactions are aborted within a second, not ten.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# A small machine: few threads, a small log cleaner buffer.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=8388608
EOF
        cat >"$d/log4j2.properties" <<EOF
# written by kyc-bridge scripts/kafka.sh: broker log to a file, not the terminal
status = warn
name = kb-kafka
# Kafka logs its own shutdown; log4j must not stop first.
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $d/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

log_tail() {
        local d=$1
        echo "---- last lines of $d/logs/server.log:" >&2
        tail -n 40 "$d/logs/server.log" 2>/dev/null >&2 || true
        if [ -s "$d/kafka.out" ]; then
                echo "---- last lines of $d/kafka.out:" >&2
                tail -n 20 "$d/kafka.out" >&2
        fi
}

# Moves a class-data-sharing archive the stopped broker wrote into place;
# with a second argument (the broker was killed, maybe while writing it)
# throws it away instead.
cds_collect() {
        local d=$1 tmp final
        [ -f "$d/cds.pending" ] || return 0
        { read -r tmp; read -r final; } <"$d/cds.pending" || true
        rm -f "$d/cds.pending"
        if [ -z "${2:-}" ] && [ -n "${tmp:-}" ] && [ -s "$tmp" ] && [ -n "${final:-}" ]; then
                mv -f "$tmp" "$final" || true
        elif [ -n "${tmp:-}" ]; then
                rm -f "$tmp"
        fi
}

# ---------------------------------------------------------------- start

# One attempt: ports, config, format, launch, wait. Sets attempt_result to
# "up" when the broker answers, "port" when it died because a port was taken
# meanwhile (worth another try), "failed" otherwise (broker gone, log tail
# printed). Returns 0 either way, so that callers never test its status:
# bash turns `set -e` off inside a function whose status is tested.
attempt_result=failed
start_once() {
        local d=$1 java=$2 cp=$3 t0=$4 bport cport archive pid deadline
        local -a cds_opts=() fmt_opts=(-Xshare:auto)

        read -r bport cport < <(wire ports)
        [ -n "${cport:-}" ] || die "could not find two free ports"
        rm -rf "$d/data" "$d/logs"
        rm -f "$d/bootstrap" "$d/kafka.pid" "$d/kafka.out" "$d/format.log" "$d/cds.pending"
        mkdir -p "$d/data" "$d/logs"
        write_config "$d" "$bport" "$cport"

        archive=$(cds_archive "$java")
        if [ -s "$archive" ]; then
                cds_opts=(-XX:SharedArchiveFile="$archive" -Xshare:auto)
                fmt_opts=("${cds_opts[@]}")
        else
                mkdir -p "$(dirname "$archive")"
                cds_opts=(-XX:ArchiveClassesAtExit="$archive.$$.tmp")
                printf '%s\n%s\n' "$archive.$$.tmp" "$archive" >"$d/cds.pending"
        fi

        # shellcheck disable=SC2086 # option lists split on purpose
        if ! "$java" $heap $jvm_opts "${fmt_opts[@]}" \
                -Dlog4j2.configurationFile="$d/log4j2.properties" -cp "$cp" \
                kafka.tools.StorageTool format --cluster-id "$(cluster_id)" \
                --config "$d/server.properties" >"$d/format.log" 2>&1; then
                cat "$d/format.log" >&2
                die "formatting the storage in $d/data failed"
        fi

        # setsid: own session, so the test runner's signals and terminal do
        # not reach it; every descriptor redirected, so that whoever runs this
        # script (CTest reads our output through a pipe) is not kept waiting.
        # shellcheck disable=SC2086
        setsid "$java" $heap $jvm_opts "${cds_opts[@]}" \
                -Dlog4j2.configurationFile="$d/log4j2.properties" \
                -Dkafka.logs.dir="$d/logs" -cp "$cp" \
                kafka.Kafka "$d/server.properties" \
                </dev/null >"$d/kafka.out" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$d/kafka.pid"

        deadline=$(( $(now_ms) + start_timeout * 1000 ))
        while :; do
                if ! alive "$pid"; then
                        wait "$pid" 2>/dev/null || true
                        rm -f "$d/kafka.pid"
                        cds_collect "$d"
                        if grep -q 'Address already in use' "$d/logs/server.log" "$d/kafka.out" 2>/dev/null; then
                                attempt_result=port
                                return 0
                        fi
                        echo "$prog: the broker exited during start-up" >&2
                        log_tail "$d"
                        attempt_result=failed
                        return 0
                fi
                # Cheap check first: is the port open at all?
                if (exec 3<>"/dev/tcp/127.0.0.1/$bport") 2>/dev/null &&
                        broker_answers "127.0.0.1:$bport" 5; then
                        break
                fi
                if [ "$(now_ms)" -ge "$deadline" ]; then
                        echo "$prog: the broker did not answer within ${start_timeout}s; killing it" >&2
                        log_tail "$d"
                        kill_pid "$pid"
                        rm -f "$d/kafka.pid"
                        cds_collect "$d" killed
                        attempt_result=failed
                        return 0
                fi
                sleep 0.05
        done
        if ! wire warmup "127.0.0.1:$bport"; then
                log_tail "$d"
                kill_pid "$pid"
                rm -f "$d/kafka.pid"
                cds_collect "$d" killed
                attempt_result=failed
                return 0
        fi
        echo "127.0.0.1:$bport" >"$d/bootstrap.tmp"
        mv -f "$d/bootstrap.tmp" "$d/bootstrap"
        echo "$prog: Kafka $KAFKA_VERSION up at 127.0.0.1:$bport (pid $pid) in $(( $(now_ms) - t0 )) ms" >&2
        attempt_result=up
}

start() {
        [ $# -eq 1 ] || usage
        local d java major cp t0 attempt pid
        t0=$(now_ms)
        d=$(broker_dir "$1")
        need kcat
        need python3
        need setsid
        java=$(java_bin)
        major=$(java_major "$java")
        if ! [[ $major =~ ^[0-9]+$ ]] || [ "$major" -lt 17 ]; then
                die "$java is Java ${major:-?}; Kafka $KAFKA_VERSION brokers need Java 17 or newer (set KB_KAFKA_JAVA)"
        fi
        fetch
        cp=$(cat "$cache/classpath")
        touch "$d/.kb-kafka"
        # Always a fresh broker: stop one a previous run left behind.
        if pid=$(broker_pid "$d"); then
                echo "$prog: stopping the broker still running from $d (pid $pid)" >&2
                stop_pid "$d" "$pid"
        fi
        for attempt in 1 2 3; do
                start_once "$d" "$java" "$cp" "$t0"
                case $attempt_result in
                up) cat "$d/bootstrap"; return 0 ;;
                port) echo "$prog: a port was taken meanwhile; retrying ($attempt)" >&2 ;;
                *) exit 1 ;;
                esac
        done
        log_tail "$d"
        die "could not bind the broker's ports after 3 attempts"
}

# ---------------------------------------------------------------- restart

# The broker DIR held, again: same server.properties (so the same ports)
# and the same data directory. For tests of a broker outage and return
# (`stop DIR`, then `restart DIR`); `start` always makes a fresh one.
restart() {
        [ $# -eq 1 ] || usage
        local d java cp t0 pid bport archive deadline
        local -a cds_opts=(-Xshare:auto)
        t0=$(now_ms)
        [ -d "$1" ] || die "$1: no broker directory"
        d=$(cd "$1" && pwd)
        [ -f "$d/.kb-kafka" ] && [ -f "$d/server.properties" ] && [ -d "$d/data" ] ||
                die "$d holds no broker that ran before (kafka.sh start it first)"
        if pid=$(broker_pid "$d"); then
                die "the broker in $d still runs (pid $pid); stop it first"
        fi
        need kcat
        need setsid
        java=$(java_bin)
        fetch
        cp=$(cat "$cache/classpath")
        bport=$(sed -n 's/^listeners=PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$d/server.properties")
        [ -n "$bport" ] || die "no PLAINTEXT listener in $d/server.properties"
        archive=$(cds_archive "$java")
        [ -s "$archive" ] && cds_opts=(-XX:SharedArchiveFile="$archive" -Xshare:auto)
        rm -f "$d/bootstrap" "$d/kafka.pid"
        # shellcheck disable=SC2086 # option lists split on purpose
        setsid "$java" $heap $jvm_opts "${cds_opts[@]}" \
                -Dlog4j2.configurationFile="$d/log4j2.properties" \
                -Dkafka.logs.dir="$d/logs" -cp "$cp" \
                kafka.Kafka "$d/server.properties" \
                </dev/null >>"$d/kafka.out" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$d/kafka.pid"
        deadline=$(( $(now_ms) + start_timeout * 1000 ))
        while :; do
                if ! alive "$pid"; then
                        wait "$pid" 2>/dev/null || true
                        rm -f "$d/kafka.pid"
                        echo "$prog: the broker exited while restarting" >&2
                        log_tail "$d"
                        exit 1
                fi
                if (exec 3<>"/dev/tcp/127.0.0.1/$bport") 2>/dev/null &&
                        broker_answers "127.0.0.1:$bport" 5; then
                        break
                fi
                if [ "$(now_ms)" -ge "$deadline" ]; then
                        echo "$prog: the restarted broker did not answer within ${start_timeout}s; killing it" >&2
                        log_tail "$d"
                        kill_pid "$pid"
                        rm -f "$d/kafka.pid"
                        exit 1
                fi
                sleep 0.05
        done
        echo "127.0.0.1:$bport" >"$d/bootstrap.tmp"
        mv -f "$d/bootstrap.tmp" "$d/bootstrap"
        echo "$prog: Kafka $KAFKA_VERSION back at 127.0.0.1:$bport (pid $pid) in $(( $(now_ms) - t0 )) ms" >&2
        cat "$d/bootstrap"
}

# ---------------------------------------------------------------- stop

# SIGKILL, then wait (at most 5 s) until the process is gone.
kill_pid() {
        local pid=$1 n=0
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$pid" && [ $n -lt 100 ]; do
                sleep 0.05
                n=$((n + 1))
        done
}

# SIGTERM (a clean shutdown takes ~0.3 s), SIGKILL after stop_timeout.
stop_pid() {
        local d=$1 pid=$2 deadline killed=
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$(( $(now_ms) + stop_timeout * 1000 ))
        while alive "$pid"; do
                if [ "$(now_ms)" -ge "$deadline" ]; then
                        echo "$prog: broker pid $pid ignored SIGTERM for ${stop_timeout}s; killing it" >&2
                        kill_pid "$pid"
                        killed=yes
                        break
                fi
                sleep 0.05
        done
        rm -f "$d/kafka.pid" "$d/bootstrap"
        cds_collect "$d" $killed
}

stop() {
        [ $# -eq 1 ] || usage
        local d pid
        [ -d "$1" ] || { echo "$prog: $1: no broker" >&2; return 0; }
        d=$(cd "$1" && pwd)
        if pid=$(broker_pid "$d"); then
                stop_pid "$d" "$pid"
                echo "$prog: stopped the broker in $d (pid $pid)" >&2
        else
                rm -f "$d/kafka.pid" "$d/bootstrap"
                cds_collect "$d"
                echo "$prog: no broker running in $d" >&2
        fi
}

# ---------------------------------------------------------------- status

status() {
        [ $# -eq 1 ] || usage
        local d pid boot
        [ -d "$1" ] || { echo "stopped (no directory $1)"; return 1; }
        d=$(cd "$1" && pwd)
        if ! pid=$(broker_pid "$d"); then
                echo "stopped"
                return 1
        fi
        boot=$(cat "$d/bootstrap" 2>/dev/null || true)
        if [ -z "$boot" ]; then
                echo "starting (pid $pid)"
                return 1
        fi
        if broker_answers "$boot" 5; then
                echo "running (pid $pid) at $boot, Kafka $KAFKA_VERSION"
                return 0
        fi
        echo "not answering (pid $pid) at $boot"
        return 1
}

# ---------------------------------------------------------------- wire

# A few Kafka requests straight over the wire (Python 3 stdlib; no JVM start):
#   wire ports                 two free TCP ports on 127.0.0.1
#   wire topics BOOT N:P...    CreateTopics v4 for all topics in one request,
#                              then wait until librdkafka's metadata (kcat)
#                              shows every partition with a leader; an
#                              existing topic with the same count is fine
#   wire warmup BOOT           FindCoordinator v1 for a group and for a
#                              transactional id until both answer, then one
#                              InitProducerId: makes the broker create
#                              __consumer_offsets and __transaction_state and
#                              fetch producer ids now, not in the first test
# The request versions used are understood by Kafka 2.4 up to 4.x.
wire() {
        python3 - "$@" <<'EOF'
import json, socket, struct, subprocess, sys, time

def fail(msg):
    sys.exit("kafka.sh: " + msg)

def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b

class Conn:
    def __init__(self, boot):
        host, port = boot.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=40)
        self.corr = 0

    def call(self, api_key, version, body):
        # request header v1: api_key, api_version, correlation_id, client_id
        self.corr += 1
        req = struct.pack(">hhi", api_key, version, self.corr) + string("kyc-bridge-kafka.sh") + body
        self.sock.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", self.recv(4))[0]
        r = Reader(self.recv(size))
        if r.take(">i") != self.corr:
            fail("unexpected correlation id in a response")
        return r

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                fail("the broker closed the connection")
            buf += chunk
        return buf

class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def str(self):
        n = self.take(">h")
        if n < 0:
            return None
        v = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return v

def ports():
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))

def topics(boot, specs):
    want = {}
    for spec in specs:
        name, _, parts = spec.rpartition(":")
        if not name or not parts.isdigit() or not 1 <= int(parts) <= 10000:
            fail("bad topic spec %r (want NAME:PARTITIONS)" % spec)
        want[name] = int(parts)
    body = struct.pack(">i", len(want))
    for name, parts in want.items():
        # name, num_partitions, replication_factor, assignments[], configs[]
        body += string(name) + struct.pack(">ihii", parts, 1, 0, 0)
    body += struct.pack(">ib", 30000, 0)  # timeout_ms, validate_only
    r = Conn(boot).call(19, 4, body)  # CreateTopics v4
    r.take(">i")  # throttle_time_ms
    failed = False
    for _ in range(r.take(">i")):
        name, code, msg = r.str(), r.take(">h"), r.str()
        if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS, count checked below
            print("kafka.sh: creating topic %s failed: error %d: %s" % (name, code, msg),
                  file=sys.stderr)
            failed = True
    if failed:
        sys.exit(1)
    deadline = time.monotonic() + 30
    while True:
        problem = None
        p = subprocess.run(["kcat", "-b", boot, "-L", "-J", "-m", "5"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            problem = p.stderr.strip()
        else:
            seen = {t["topic"]: t for t in json.loads(p.stdout).get("topics", [])}
            for name, parts in want.items():
                t = seen.get(name)
                if t is None or t.get("error"):
                    problem = "topic %s not in the metadata" % name
                elif len(t["partitions"]) != parts:
                    fail("topic %s exists with %d partitions, not %d"
                         % (name, len(t["partitions"]), parts))
                elif any(q.get("leader", -1) < 0 or q.get("error") for q in t["partitions"]):
                    problem = "topic %s has partitions without a leader" % name
                if problem:
                    break
        if problem is None:
            return
        if time.monotonic() > deadline:
            fail("%s after 30 s" % problem)
        time.sleep(0.05)

def warmup(boot):
    conn = Conn(boot)
    deadline = time.monotonic() + 60
    for key, key_type in (("kb-warmup", 0), ("kb-warmup", 1)):  # group, transaction
        while True:
            r = conn.call(10, 1, string(key) + struct.pack(">b", key_type))  # FindCoordinator v1
            r.take(">i")  # throttle_time_ms
            code, msg = r.take(">h"), r.str()
            if code == 0:
                break
            if code not in (14, 15):  # COORDINATOR_LOAD_IN_PROGRESS, _NOT_AVAILABLE
                fail("FindCoordinator(%d): error %d: %s" % (key_type, code, msg))
            if time.monotonic() > deadline:
                fail("the coordinators were not ready after 60 s")
            time.sleep(0.05)
    # InitProducerId v1 without a transactional id: the broker fetches its
    # first block of producer ids from the controller now (until then every
    # producer's first InitProducerId fails with "load in progress" and
    # librdkafka retries ~0.5 s later).
    while True:
        r = conn.call(22, 1, struct.pack(">hi", -1, 60000))
        r.take(">i")  # throttle_time_ms
        code = r.take(">h")
        if code == 0:
            break
        if code not in (14, 15):
            fail("InitProducerId: error %d" % code)
        if time.monotonic() > deadline:
            fail("no producer ids after 60 s")
        time.sleep(0.05)

mode = sys.argv[1]
if mode == "ports":
    ports()
elif mode == "topics":
    topics(sys.argv[2], sys.argv[3:])
elif mode == "warmup":
    warmup(sys.argv[2])
else:
    fail("wire: unknown mode " + mode)
EOF
}

# ---------------------------------------------------------------- topic

topic() {
        [ $# -ge 2 ] || usage
        local d boot
        local -a specs=()
        d=$1
        shift
        [ -f "$d/bootstrap" ] || die "no broker running in $d (no $d/bootstrap)"
        boot=$(cat "$d/bootstrap")
        if [ $# -eq 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [[ $1 != *:* ]]; then
                specs=("$1:$2")
        else
                specs=("$@")
        fi
        need python3
        need kcat
        wire topics "$boot" "${specs[@]}"
}

# ---------------------------------------------------------------- tools

# The command-line tools (org.apache.kafka:kafka-tools: kafka-topics, the
# console producer and consumer, kafka-broker-api-versions). The same pom,
# byte for byte, as scripts/compose-local.sh's, so both share the cache.
tools_cache=${KB_KAFKA_TOOLS_CACHE:-${HOME:-/tmp}/.cache/kyc-bridge/kafka-tools-$KAFKA_VERSION}
tools_pom() {
        local v=$KAFKA_VERSION l4j=$LOG4J_VERSION
        printf '%s' "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>
<groupId>kyc-bridge.local</groupId><artifactId>kafka-tools-classpath</artifactId>
<version>$v</version><packaging>pom</packaging><dependencies>
<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$v</version></dependency>
<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$l4j</version></dependency>
<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$l4j</version></dependency>
</dependencies></project>"
}

fetch_tools() {
        local sum
        sum=$(tools_pom | sha256sum | cut -c1-32)
        mkdir -p "$tools_cache"
        (
                exec 9>"$tools_cache/.lock"
                flock -w 900 9 || die "timed out waiting for $tools_cache/.lock"
                [ "$(cat "$tools_cache/.fetched" 2>/dev/null)" = "$sum" ] && exit 0
                need mvn
                echo "$prog: fetching org.apache.kafka:kafka-tools:$KAFKA_VERSION from Maven Central into $tools_cache" >&2
                tools_pom >"$tools_cache/pom.xml"
                echo >>"$tools_cache/pom.xml"
                rm -rf "${tools_cache:?}/lib"
                mvn -q -B -Dstyle.color=never -f "$tools_cache/pom.xml" \
                        "$DEPENDENCY_PLUGIN:copy-dependencies" \
                        -DincludeScope=runtime -DoutputDirectory="$tools_cache/lib" \
                        >"$tools_cache/mvn.log" 2>&1 || die "mvn failed: $tools_cache/mvn.log"
                find "$tools_cache/lib" -name '*.jar' | LC_ALL=C sort | paste -sd: - >"$tools_cache/classpath"
                echo "$sum" >"$tools_cache/.fetched"
        )
}

# ---------------------------------------------------------------- stage-image

# DIR := docker/kafka (Dockerfile, launcher, bin/, config/) + lib/ (the
# union of the broker's and the tools' runtime jars; one version of each).
stage_image() {
        { [ $# -eq 1 ] && [ -n "$1" ]; } || usage
        local src d j base
        src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/docker/kafka
        [ -f "$src/Dockerfile" ] || die "$src/Dockerfile missing"
        fetch
        fetch_tools
        mkdir -p "$1"
        d=$(cd "$1" && pwd)
        case $d/ in "$src"/*) die "$d: stage outside docker/kafka (the jars stay out of the repository)" ;; esac
        rm -rf "${d:?}/lib.new" "${d:?}/bin" "${d:?}/config"
        mkdir -p "$d/lib.new"
        for j in "$cache"/lib/*.jar "$tools_cache"/lib/*.jar; do
                base=${j##*/}
                [ -e "$d/lib.new/$base" ] && continue
                ln "$j" "$d/lib.new/$base" 2>/dev/null || cp -p "$j" "$d/lib.new/$base"
        done
        # Two versions of one artifact would make the classpath ambiguous.
        local dup
        dup=$(find "$d/lib.new" -name '*.jar' -printf '%f\n' |
                sed -E 's/-[0-9][0-9A-Za-z.+-]*\.jar$//' | LC_ALL=C sort | uniq -d)
        [ -z "$dup" ] || die "the broker's and the tools' jars disagree on the version of: $dup"
        rm -rf "${d:?}/lib"
        mv "$d/lib.new" "$d/lib"
        cp -R "$src/bin" "$src/config" "$d/"
        cp "$src/Dockerfile" "$src/kafka-launch.sh" "$d/"
        echo "$prog: staged the Kafka image's build context in $d ($(find "$d/lib" -name '*.jar' | wc -l) jars, $(du -shL "$d/lib" | cut -f1))" >&2
        echo "$d"
}

# ---------------------------------------------------------------- main

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
fetch) [ $# -eq 0 ] || usage; fetch ;;
start) start "$@" ;;
stop) stop "$@" ;;
restart) restart "$@" ;;
status) status "$@" ;;
topic) topic "$@" ;;
stage-image) stage_image "$@" ;;
-h | --help | help) usage 0 ;;
*) echo "$prog: unknown command: $cmd" >&2; usage ;;
esac
