#!/usr/bin/env bash
# kafka.sh -- a real single-node Apache Kafka broker (KRaft, no ZooKeeper) for
# the test suites: fetched from Maven Central with the machine's Maven, run
# with the machine's Java (17 or newer), listening on 127.0.0.1 only.
#
# Usage:
#   scripts/kafka.sh fetch                 resolve the broker's jars into the cache
#   scripts/kafka.sh start DIR             fresh broker in DIR; prints 127.0.0.1:PORT
#   scripts/kafka.sh start DIR --sasl-ssl  the same with a SASL_SSL listener
#                                          (SCRAM-SHA-512 over TLS) instead of
#                                          PLAINTEXT, an authorizer and the
#                                          users admin (super user), issuer
#                                          and importer (see --sasl-ssl further down)
#   scripts/kafka.sh start DIR [--sasl-ssl] --kafka-version V
#                                          the same with Kafka V (3.5 or newer)
#                                          instead of KAFKA_VERSION below, its jars
#                                          from Maven Central into a cache of
#                                          their own; restart and status find V
#                                          in DIR/kafka-version
#   scripts/kafka.sh stop DIR              stop it (idempotent)
#   scripts/kafka.sh restart DIR           start the broker stopped in DIR again:
#                                          same ports, same data (its topics,
#                                          offsets and transactions); prints
#                                          127.0.0.1:PORT
#   scripts/kafka.sh status DIR            exit 0 if it runs and answers
#   scripts/kafka.sh topic DIR NAME PARTS  create a topic (replication factor 1)
#   scripts/kafka.sh topic DIR NAME:PARTS [NAME:PARTS...]
#   scripts/kafka.sh acl DIR ARGS...       kafka-acls (org.apache.kafka.tools.
#                                          AclCommand) as admin against the
#                                          --sasl-ssl broker in DIR: ARGS are
#                                          kafka-acls.sh's (--add, --list, ...)
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
# --sasl-ssl: the broker listens with SASL_SSL (SCRAM-SHA-512, and PLAIN for
# librdkafka before 2.6.1, over TLS 1.2+) on 127.0.0.1 only, its controller
# with TLS and client certificates (principal User:CN=kb-kafka-broker, a
# super user, like User:admin). StandardAuthorizer: nothing is allowed to a user without an
# ACL (kafka.sh acl DIR ...). restart, status, topic and acl find the mode
# in DIR/security. DIR then also holds, all made by start with openssl:
#   tls/ca.pem                   the test CA (its key is deleted once the
#                                broker's certificate is signed)
#   tls/broker.pem               the broker's key and certificate (SAN
#                                IP:127.0.0.1, DNS:localhost), PEM keystore
#   sasl/USER.password           USER's random password (0600), for
#                                kafka.sasl.password = file:PATH
#   sasl/USER.librdkafka         librdkafka properties of USER (kcat -F),
#                                SCRAM-SHA-512
#   sasl/USER.plain.librdkafka   the same with PLAIN: for librdkafka before
#                                2.6.1, whose SCRAM Kafka 4 refuses
#   sasl/USER.properties         Java client properties of USER
#                                (--command-config of the Kafka tools)
# for USER in admin, issuer, importer (docs/kafka-security.md).
#
# Environment:
#   KB_KAFKA_CACHE          jar cache (default ~/.cache/kyc-bridge/kafka-VERSION);
#                           a --kafka-version V's go beside it, to kafka-V
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
# The version the script is for; KAFKA_VERSION and cache change for a
# broker of another one (use_version).
default_version=$KAFKA_VERSION
default_cache=$cache

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

# A broker of Kafka $1 instead of the default: its version and jar cache.
# 3.5 is the first whose storage tool creates SCRAM users (--add-scram)
# and whose KRaft broker runs the StandardAuthorizer as --sasl-ssl wants.
use_version() {
        local v=$1
        [[ $v =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "--kafka-version $v: want MAJOR.MINOR.PATCH (3.9.1)"
        if [ "${BASH_REMATCH[1]}" -lt 3 ] || { [ "${BASH_REMATCH[1]}" -eq 3 ] && [ "${BASH_REMATCH[2]}" -lt 5 ]; }; then
                die "--kafka-version $v: Kafka 3.5 or newer, please"
        fi
        [ "$v" = "$default_version" ] && return 0
        KAFKA_VERSION=$v
        cache=${default_cache%/*}/kafka-$v
}

# The version of the broker in DIR $1: DIR/kafka-version, written by start
# for another version than the default.
load_version() {
        [ -f "$1/kafka-version" ] || return 0
        use_version "$(cat "$1/kafka-version")"
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
        out=$(kcat "${kcat_opts[@]}" -b "$1" -L -m "${2:-5}" 2>/dev/null) || return 1
        grep -q '^  broker [0-9]* at ' <<<"$out"
}

# ---------------------------------------------------------------- --sasl-ssl

# The users a --sasl-ssl broker knows (SCRAM-SHA-512 credentials created
# when its storage is formatted); admin is a super user.
sasl_users=(admin issuer importer)
# The broker's TLS identity; a super user too (the controller listener
# authenticates the broker by this certificate).
broker_cn=kb-kafka-broker
# plaintext or sasl_ssl: the mode of the broker a command works on, and
# what kcat needs to talk to it (set by load_security).
sec_mode=plaintext
kcat_opts=()

# Reads DIR/security: for a --sasl-ssl broker, kcat and the wire helper
# talk to it as admin over SASL_SSL.
load_security() {
        local d=$1
        sec_mode=plaintext
        kcat_opts=()
        unset KB_WIRE_CA KB_WIRE_USER KB_WIRE_PASSWORD_FILE KB_WIRE_KCAT_CONF
        [ -f "$d/security" ] || return 0
        sec_mode=$(cat "$d/security")
        case $sec_mode in
        sasl_ssl) ;;
        *) die "$d/security: unknown mode '$sec_mode'" ;;
        esac
        [ -f "$d/sasl/admin.plain.librdkafka" ] || die "$d/sasl/admin.plain.librdkafka missing (start the broker again)"
        # PLAIN: kcat's librdkafka may be older than 2.6.1 (Debian 12's is)
        kcat_opts=(-F "$d/sasl/admin.plain.librdkafka")
        export KB_WIRE_CA=$d/tls/ca.pem KB_WIRE_USER=admin
        export KB_WIRE_PASSWORD_FILE=$d/sasl/admin.password
        export KB_WIRE_KCAT_CONF=$d/sasl/admin.plain.librdkafka
}

# A random password: 24 letters and digits (nothing to quote in a JAAS
# line or a properties file).
random_password() {
        local p=""
        while [ ${#p} -lt 24 ]; do
                p+=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
        done
        echo "${p:0:24}"
}

# DIR/tls: a CA of its own and the broker's key and certificate, signed by
# it (EC P-256, 365 days), nothing fetched. Kafka reads PEM key stores
# (ssl.keystore.type=PEM: the PKCS#8 key, then the certificate chain).
make_tls() {
        local t=$1/tls
        rm -rf "$t"
        mkdir -m 700 "$t"
        (
                umask 077
                cd "$t"
                openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
                        -nodes -keyout ca.key -out ca.pem -days 365 -sha256 \
                        -subj "/CN=kb-kafka-test-ca-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
                        -addext "basicConstraints=critical,CA:TRUE" \
                        -addext "keyUsage=critical,keyCertSign,cRLSign" >openssl.log 2>&1
                openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
                        -nodes -keyout broker.key -out broker.csr -subj "/CN=$broker_cn" \
                        >>openssl.log 2>&1
                cat >broker.ext <<EOF2
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF2
                openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key \
                        -set_serial "0x$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
                        -days 365 -sha256 -extfile broker.ext -out broker.crt >>openssl.log 2>&1
                cat broker.key broker.crt >broker.pem
                # only the broker's certificate is ever signed: the CA key goes
                rm -f ca.key broker.csr broker.ext
                chmod 644 ca.pem
        ) || { cat "$t/openssl.log" >&2; die "openssl could not make the test CA and certificate in $t"; }
}

# DIR/sasl: each user's password and client configurations.
make_users() {
        local d=$1 u pw m f
        rm -rf "$d/sasl"
        mkdir -m 700 "$d/sasl"
        for u in "${sasl_users[@]}"; do
                pw=$(random_password)
                (
                        umask 077
                        printf '%s\n' "$pw" >"$d/sasl/$u.password"
                        for m in SCRAM-SHA-512 PLAIN; do
                                f=$d/sasl/$u.librdkafka
                                [ $m = PLAIN ] && f=$d/sasl/$u.plain.librdkafka
                                cat >"$f" <<EOF2
# written by kyc-bridge scripts/kafka.sh: librdkafka properties of $u (kcat -F)
security.protocol=SASL_SSL
sasl.mechanism=$m
sasl.username=$u
sasl.password=$pw
ssl.ca.location=$d/tls/ca.pem
EOF2
                        done
                        cat >"$d/sasl/$u.properties" <<EOF2
# written by kyc-bridge scripts/kafka.sh: Java client properties of $u
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$u" password="$pw";
ssl.truststore.type=PEM
ssl.truststore.location=$d/tls/ca.pem
EOF2
                )
        done
}

# The PLAIN login module's user_NAME="PASSWORD" options for every user.
plain_users() {
        local u
        for u in "${sasl_users[@]}"; do
                printf ' user_%s="%s"' "$u" "$(cat "$1/sasl/$u.password")"
        done
}

# kafka-storage format options that create every user's SCRAM credentials.
# (On the format's command line, like the apache/kafka image does it: a
# test broker's passwords, visible to this machine's users for a moment.)
scram_opts=()
load_scram_opts() {
        local d=$1 u
        scram_opts=()
        for u in "${sasl_users[@]}"; do
                scram_opts+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(cat "$d/sasl/$u.password")]")
        done
}

# The listeners of server.properties: PLAINTEXT, or with --sasl-ssl
# SASL_SSL (SCRAM-SHA-512, PLAIN) for clients and the broker itself, TLS
# with client certificates for the controller, and an authorizer.
listener_config() {
        local d=$1 bport=$2 cport=$3
        if [ "$sec_mode" != sasl_ssl ]; then
                cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
EOF
                return 0
        fi
        cat <<EOF
listeners=SASL_SSL://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$bport
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
# SCRAM-SHA-512: the users' credentials were created by the format. PLAIN
# (the same users and passwords, over TLS only) for clients on librdkafka
# before 2.6.1, whose SCRAM Kafka 4 refuses (docs/kafka-security.md).
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "$d/sasl/admin.password")";
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$(cat "$d/sasl/admin.password")"$(plain_users "$d");
# TLS: the key store and the CA as PEM files (tls/, made by openssl)
ssl.keystore.type=PEM
ssl.keystore.location=$d/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$d/tls/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
# the controller listener: only the broker itself, by its certificate
listener.name.controller.ssl.client.auth=required
# Authorization: nothing without an ACL, except for the super users
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:CN=$broker_cn
allow.everyone.if.no.acl.found=false
EOF
}

write_config() {
        local d=$1 bport=$2 cport=$3
        if [ "$sec_mode" = sasl_ssl ]; then
                # it holds the admin's password
                rm -f "$d/server.properties"
                (umask 077 && : >"$d/server.properties")
        fi
        cat >"$d/server.properties" <<EOF
# written by kyc-bridge scripts/kafka.sh: single-node KRaft test broker
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
$(listener_config "$d" "$bport" "$cport")
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
                --config "$d/server.properties" "${scram_opts[@]}" >"$d/format.log" 2>&1; then
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
        local d java major cp t0 attempt pid mode=plaintext version=
        [ $# -ge 1 ] || usage
        d=$1
        shift
        while [ $# -gt 0 ]; do
                case $1 in
                --sasl-ssl) mode=sasl_ssl ;;
                --kafka-version) [ $# -ge 2 ] || usage; version=$2; shift ;;
                *) usage ;;
                esac
                shift
        done
        [ -z "$version" ] || use_version "$version"
        t0=$(now_ms)
        d=$(broker_dir "$d")
        need kcat
        need python3
        need setsid
        [ "$mode" = plaintext ] || need openssl
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
        rm -rf "$d/tls" "$d/sasl"
        rm -f "$d/security" "$d/kafka-version"
        [ "$KAFKA_VERSION" = "$default_version" ] || echo "$KAFKA_VERSION" >"$d/kafka-version"
        scram_opts=()
        if [ "$mode" = sasl_ssl ]; then
                make_tls "$d"
                make_users "$d"
                load_scram_opts "$d"
                echo sasl_ssl >"$d/security"
        fi
        load_security "$d"
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
        load_security "$d"
        load_version "$d"
        java=$(java_bin)
        fetch
        cp=$(cat "$cache/classpath")
        if [ "$sec_mode" = sasl_ssl ]; then
                bport=$(sed -n 's/^listeners=SASL_SSL:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$d/server.properties")
                [ -n "$bport" ] || die "no SASL_SSL listener in $d/server.properties"
        else
                bport=$(sed -n 's/^listeners=PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$d/server.properties")
                [ -n "$bport" ] || die "no PLAINTEXT listener in $d/server.properties"
        fi
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
        load_security "$d"
        load_version "$d"
        boot=$(cat "$d/bootstrap" 2>/dev/null || true)
        if [ -z "$boot" ]; then
                echo "starting (pid $pid)"
                return 1
        fi
        if broker_answers "$boot" 5; then
                echo "running (pid $pid) at $boot, Kafka $KAFKA_VERSION${kcat_opts[*]:+, SASL_SSL}"
                return 0
        fi
        echo "not answering (pid $pid) at $boot"
        return 1
}

# ---------------------------------------------------------------- wire

# A few Kafka requests straight over the wire (Python 3 stdlib; no JVM start;
# to a --sasl-ssl broker over TLS as the user KB_WIRE_USER, SCRAM-SHA-512,
# see load_security):
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
import base64, hashlib, hmac, json, os, socket, ssl, struct, subprocess, sys, time

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
        ca = os.environ.get("KB_WIRE_CA")
        if ca:
            # verifies the broker's certificate and its name (IP SAN)
            ctx = ssl.create_default_context(cafile=ca)
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        user = os.environ.get("KB_WIRE_USER")
        if user:
            with open(os.environ["KB_WIRE_PASSWORD_FILE"]) as f:
                self.scram(user, f.read().strip())

    def scram(self, user, password):
        # SaslHandshake v1, then RFC 5802 in two SaslAuthenticate v1 rounds
        r = self.call(17, 1, string("SCRAM-SHA-512"))
        code = r.take(">h")
        if code != 0:
            fail("SaslHandshake: error %d (is SCRAM-SHA-512 enabled?)" % code)
        nonce = base64.b64encode(os.urandom(24)).decode()
        bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)
        first = self.sasl_auth(user, ("n,," + bare).encode()).decode()
        attrs = dict(kv.split("=", 1) for kv in first.split(",") if "=" in kv)
        if not attrs.get("r", "").startswith(nonce) or "s" not in attrs or "i" not in attrs:
            fail("SCRAM: unexpected server-first-message")
        salted = hashlib.pbkdf2_hmac("sha512", password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha512").digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join((bare, first, without_proof)).encode()
        sig = hmac.new(hashlib.sha512(client_key).digest(), auth_msg, "sha512").digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        final = self.sasl_auth(user, (without_proof + ",p=" + proof).encode()).decode()
        server_key = hmac.new(salted, b"Server Key", "sha512").digest()
        want = "v=" + base64.b64encode(hmac.new(server_key, auth_msg, "sha512").digest()).decode()
        if not hmac.compare_digest(final, want):
            fail("SCRAM: the broker's signature does not verify")

    def sasl_auth(self, user, data):
        r = self.call(36, 1, struct.pack(">i", len(data)) + data)
        code, msg = r.take(">h"), r.str()
        if code != 0:
            fail("SASL authentication as %s failed: error %d: %s" % (user, code, msg))
        n = r.take(">i")
        r.pos += n
        return r.data[r.pos - n:r.pos]

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
        kconf = os.environ.get("KB_WIRE_KCAT_CONF")
        p = subprocess.run(["kcat"] + (["-F", kconf] if kconf else [])
                           + ["-b", boot, "-L", "-J", "-m", "5"],
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
        load_security "$d"
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

# ---------------------------------------------------------------- acl

# kafka-acls.sh against the --sasl-ssl broker in DIR, as admin.
acl() {
        [ $# -ge 2 ] || usage
        local d java
        [ -d "$1" ] || die "$1: no broker directory"
        d=$(cd "$1" && pwd)
        shift
        [ -f "$d/bootstrap" ] || die "no broker running in $d (no $d/bootstrap)"
        load_security "$d"
        [ "$sec_mode" = sasl_ssl ] ||
                die "$d: not a --sasl-ssl broker (only that one has an authorizer)"
        java=$(java_bin)
        fetch_tools
        cat >"$d/tools-log4j2.properties" <<EOF
# written by kyc-bridge scripts/kafka.sh: the tools' log, warnings only
status = error
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
        # shellcheck disable=SC2086 # option lists split on purpose
        "$java" -Xms32m -Xmx256m $jvm_opts -Xshare:auto \
                -Dlog4j2.configurationFile="$d/tools-log4j2.properties" \
                -cp "$(cat "$tools_cache/classpath")" org.apache.kafka.tools.AclCommand \
                --bootstrap-server "$(cat "$d/bootstrap")" \
                --command-config "$d/sasl/admin.properties" "$@" </dev/null
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
acl) acl "$@" ;;
stage-image) stage_image "$@" ;;
-h | --help | help) usage 0 ;;
*) echo "$prog: unknown command: $cmd" >&2; usage ;;
esac
