#!/usr/bin/env bash
# config_cli.sh -- black-box test of `kyc-bridge config`: exit codes and file:line messages
#
# Usage: config_cli.sh /path/to/kyc-bridge
# Every case runs the real binary in a scratch directory and checks the exit
# status, and stdout/stderr exactly or by substring. Exit status: 0 when all
# cases pass, 1 otherwise (each failure is printed).
set -u

BIN=${1:?usage: config_cli.sh KB_BIN}
case $BIN in
/*) ;;
*) BIN=$PWD/$BIN ;;
esac
[ -x "$BIN" ] || { echo "config_cli: $BIN is not executable" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kb-config-cli.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

UUID_A=123e4567-e89b-42d3-a456-426614174000
UUID_B=9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f
SECRET=Sx-cli-0xDEADBEEF-dont-print
export KB_CLI_SECRET=$SECRET
unset KB_CLI_MISSING

fails=0
cases=0
OUT=$WORK/out
ERR=$WORK/err

# run EXPECTED_STATUS ARGS...: runs the binary, stdout in $OUT, stderr in $ERR
run() {
        local want=$1 got
        shift
        cases=$((cases + 1))
        timeout 20 "$BIN" "$@" >"$OUT" 2>"$ERR"
        got=$?
        CASE="kyc-bridge $*"
        if [ "$got" != "$want" ]; then
                fail "exit status $got, expected $want"
        fi
}

fail() {
        fails=$((fails + 1))
        echo "FAIL: $CASE: $1" >&2
        echo "  stdout: $(head -c 600 "$OUT")" >&2
        echo "  stderr: $(head -c 600 "$ERR")" >&2
}

# stderr_is TEXT: stderr is exactly TEXT (one line)
stderr_is() {
        [ "$(cat "$ERR")" = "$1" ] || fail "stderr is not '$1'"
}

stderr_has() {
        grep -qF -- "$1" "$ERR" || fail "stderr lacks '$1'"
}

stdout_is() {
        [ "$(cat "$OUT")" = "$1" ] || fail "stdout is not '$1'"
}

stdout_has() {
        grep -qF -- "$1" "$OUT" || fail "stdout lacks '$1'"
}

# the secret's bytes never appear anywhere
no_secret() {
        if grep -qF -e "$SECRET" -e "0xDEADBEEF" -e "hunter2" "$OUT" "$ERR"; then
                fail "a secret value was printed"
        fi
}

good_issuer() {
        cat <<EOF
# issuer configuration
log.level = info

application_id = $UUID_A
vendor.api_key = env:KB_CLI_SECRET
keys.sign_secret = sign.key
partner.acme.application_id = $UUID_B
partner.acme.keys = acme.pub.json
kafka.bootstrap.servers = 127.0.0.1:9092
EOF
}

# ---------------------------------------------------------------- usage
run 2 config
stderr_has "Usage: kyc-bridge config check"
run 0 config --help
stdout_has "Usage: kyc-bridge config check"
run 2 config frobnicate
stderr_has "config: unknown subcommand 'frobnicate'"
run 2 config check
stderr_is "$(printf 'config check: -c FILE is required')"
run 2 config check -c
stderr_has "config: unexpected argument '-c'"
run 2 config check --role admin -c x.conf
stderr_has "config: --role takes issuer or importer"
run 2 config check -c x.conf --bogus
stderr_has "config: unexpected argument '--bogus'"

# ----------------------------------------------------------- check: ok
# --role builds the daemon's offline parts: the files must be real keys
"$BIN" keygen --out-dir . --name us >/dev/null &&
"$BIN" keygen --out-dir . --name acme >/dev/null &&
"$BIN" keygen --out-dir . --name old >/dev/null &&
cp us.sign.key sign.key && cp acme.pub.json acme.pub.json.tmp &&
mv acme.pub.json.tmp acme.pub.json && cp us.box.key a.key &&
cp old.box.key b.key || { echo "config_cli: keygen failed"; exit 1; }
good_issuer >good.conf
run 0 config check -c good.conf
stdout_is "good.conf: OK"
run 0 config check -c good.conf --role issuer
stdout_is "good.conf: OK"
run 2 config check -c good.conf --role issuer -X keys.sign_secret=missing.key
stderr_has "-X: keys.sign_secret: missing.key"
run 2 config check -c good.conf --role issuer -X keys.sign_secret=a.key
stderr_has "keys.sign_secret: not an ed25519 key"
run 2 config check -c good.conf --role issuer -X partner.acme.keys=nope.json
stderr_has "partner.acme.keys: nope.json"
no_secret
# the issuer file lacks the importer's box keys
run 2 config check -c good.conf --role importer
stderr_has "good.conf: keys.box_secret: required option is not set"
run 2 config check -c good.conf --role importer -X keys.box_secret=a.key,b.key
stderr_has "partner.acme: set workflow_id.user and/or workflow_id.business"
run 0 config check -c good.conf --role importer -X keys.box_secret=a.key,b.key \
        -X partner.acme.workflow_id.user=wf-1
stdout_is "good.conf: OK"

# ------------------------------------------------ share: ids and messages
# An id the envelope would refuse is a usage error found before any vendor
# call, and the message never echoes control characters or broken UTF-8.
stderr_clean() {
        if LC_ALL=C grep -q "$(printf '[\001-\010\016-\037\177\200-\377]')" "$ERR"; then
                fail "stderr echoes a control character or a non-ASCII byte"
        fi
}
SHARE="share -c good.conf --session-id $UUID_A --for $UUID_B --out -"
run 2 $SHARE --share-id "$(printf 'bad\377id')"
stderr_has "share: bad?id: share id: 1-128 bytes of UTF-8 without control characters"
stderr_clean
run 2 $SHARE --share-id "$(printf 'a\033[31mb')"
stderr_has "share: a?[31mb: share id:"
stderr_clean
run 2 $SHARE --vendor-data "$(printf '\300\200')"
stderr_has "vendor data: 1-128 bytes"
run 2 $SHARE --share-id "$(printf '%0129d' 0)"
stderr_has "share: --share-id takes 1-128 bytes"
run 2 share -c good.conf --session-id $UUID_A --for $UUID_A --out -
stderr_has "$UUID_A is not a configured partner"
run 2 share -c good.conf --session-id $UUID_A --for $UUID_B --out - \
        "$(printf 'x\033y')" 1
stderr_has "share: unexpected argument 'x?y'"
stderr_clean

# -------------------------------------------------- check: file:line errors
run 2 config check -c missing.conf
stderr_is "missing.conf: No such file or directory"

printf 'log.level = info\n# c\n\nlog.format=json\n  log.level=debug\n' >dup.conf
run 2 config check -c dup.conf
stderr_is "dup.conf:5: log.level: set twice in this file"

printf 'log.level = info\nno.such.key = 1\n' >unknown.conf
run 2 config check -c unknown.conf
stderr_is "unknown.conf:2: unknown option 'no.such.key' (see 'kyc-bridge config options')"

printf '\n\nvendor.timeout_ms = 99\n' >range.conf
run 2 config check -c range.conf
stderr_is "range.conf:3: vendor.timeout_ms: expected an integer from 100 to 600000"

printf 'vendor.timeout_ms = 1e3\n' >notint.conf
run 2 config check -c notint.conf
stderr_is "notint.conf:1: vendor.timeout_ms: expected an integer from 100 to 600000"

printf 'log.level = loud\n' >enum.conf
run 2 config check -c enum.conf
stderr_is "enum.conf:1: log.level: expected one of error|warn|notice|info|debug"

printf 'partner.acme.trust_review = yes\n' >bool.conf
run 2 config check -c bool.conf
stderr_is "bool.conf:1: partner.acme.trust_review: expected true or false"

printf 'log.level\n' >syntax.conf
run 2 config check -c syntax.conf
stderr_is "syntax.conf:1: expected 'key = value'"

printf '# x\nvendor.api_key = hunter2\n' >literal.conf
run 2 config check -c literal.conf
stderr_is "literal.conf:2: vendor.api_key: secrets are not accepted as literal values; use env:NAME or file:PATH"
no_secret

printf 'kafka.sasl.password = hunter2\n' >kliteral.conf
run 2 config check -c kliteral.conf
stderr_is "kliteral.conf:1: kafka.sasl.password: secrets are not accepted as literal values; use env:NAME or file:PATH"
no_secret

printf 'kafka.client.id = x\nkafka.no.such.property = 1\n' >kunknown.conf
run 2 config check -c kunknown.conf
stderr_has "kunknown.conf:2: kafka.no.such.property: librdkafka: "
stderr_has "No such configuration property"

# ------------------------------------------------------ secrets resolve
good_issuer | sed 's/env:KB_CLI_SECRET/env:KB_CLI_MISSING/' >nosecret.conf
run 2 config check -c nosecret.conf --role issuer
stderr_is "nosecret.conf:5: vendor.api_key: environment variable KB_CLI_MISSING is not set"
# without a role too: a set secret must resolve
run 2 config check -c nosecret.conf
stderr_is "nosecret.conf:5: vendor.api_key: environment variable KB_CLI_MISSING is not set"

printf '%s\n' "$SECRET" >pass.txt
printf 'keys.passphrase = file:%s/nope.txt\n' "$WORK" >nofile.conf
run 2 config check -c nofile.conf
stderr_is "nofile.conf:1: keys.passphrase: $WORK/nope.txt: No such file or directory"

# ------------------------------------------------------------ overrides
run 2 config check -c good.conf -X vendor.timeout_ms=5
stderr_is "-X: vendor.timeout_ms: expected an integer from 100 to 600000"
run 2 config check -c good.conf -X nope=1
stderr_has "-X: unknown option 'nope'"
run 2 config check -c good.conf -X log.level
stderr_has "expected key=value"
run 2 config check -c good.conf -X
stderr_has "config: unexpected argument '-X'"
run 2 config check -c good.conf -X kafka.sasl.password=hunter2
stderr_is "-X: kafka.sasl.password: secrets are not accepted as literal values; use env:NAME or file:PATH"
no_secret

# ---------------------------------------------------- transport security
# Kafka in plaintext to a broker that is not loopback: refused at start-up
# by every command that reads the file, with the broker list's file:line
# and the option that allows it (docs/operations.md "Transport security").
good_issuer | sed 's/^kafka.bootstrap.servers = .*/kafka.bootstrap.servers = 127.0.0.1:9092,kafka.example.net:9092/' >kplain.conf
KPLAIN="kplain.conf:9: kafka.bootstrap.servers: broker kafka.example.net:9092 is not a loopback address and the connection to it would not be encrypted (kafka.security.protocol = plaintext, the default); use kafka.security.protocol = SASL_SSL (or SSL), or set kafka_allow_plaintext = true if the network to the broker is private"
run 2 config check -c kplain.conf
stderr_is "$KPLAIN"
run 2 config check -c kplain.conf --role issuer
stderr_is "$KPLAIN"
run 2 issuer -c kplain.conf
stderr_is "issuer: $KPLAIN"
run 2 importer -c kplain.conf -X keys.box_secret=a.key \
        -X partner.acme.workflow_id.user=wf-1
stderr_is "importer: $KPLAIN"
run 2 dlq list -c kplain.conf --role issuer
stderr_is "$KPLAIN"
run 2 issuer -c kplain.conf -X kafka.security.protocol=SASL_PLAINTEXT
stderr_has "(kafka.security.protocol = SASL_PLAINTEXT); use"
run 2 issuer -c good.conf -X kafka.producer.bootstrap.servers=10.1.2.3:9092
stderr_is "issuer: -X: kafka.producer.bootstrap.servers: broker 10.1.2.3:9092 is not a loopback address and the connection to it would not be encrypted (kafka.security.protocol = plaintext, the default); use kafka.security.protocol = SASL_SSL (or SSL), or set kafka_allow_plaintext = true if the network to the broker is private"
no_secret
run 0 config check -c kplain.conf --role issuer -X kafka_allow_plaintext=true
stdout_is "kplain.conf: OK"
run 0 config check -c kplain.conf --role issuer \
        -X kafka.security.protocol=SASL_SSL
stdout_is "kplain.conf: OK"
run 2 config check -c kplain.conf -X kafka_allow_plaintext=1
stderr_is "-X: kafka_allow_plaintext: expected true or false"

# plain http:// to a vendor that is not loopback: the API key would cross
# the network in clear text
{ good_issuer; echo "vendor.url = http://vendor.example.com/api"; } >vplain.conf
VPLAIN="vplain.conf:10: vendor.url: plain http:// to vendor.example.com, which is not a loopback address: the API key and share tokens would cross the network unencrypted; use https://, or set vendor.allow_insecure_http = true if the network to it is private"
run 2 config check -c vplain.conf --role issuer
stderr_is "$VPLAIN"
run 2 issuer -c vplain.conf
stderr_is "issuer: $VPLAIN"
run 2 importer -c vplain.conf -X keys.box_secret=a.key \
        -X partner.acme.workflow_id.user=wf-1
stderr_is "importer: $VPLAIN"
run 2 config check -c good.conf --role issuer \
        -X vendor.url=http://127.0.0.1@sandbox:8480
stderr_has "-X: vendor.url: plain http:// to sandbox, which is not a loopback address"
no_secret
run 0 config check -c vplain.conf --role issuer \
        -X vendor.allow_insecure_http=true
stdout_is "vplain.conf: OK"
stderr_has "allowed by vendor.allow_insecure_http"
run 0 config check -c good.conf --role issuer \
        -X vendor.url=https://vendor.example.com
stdout_is "good.conf: OK"
run 0 config check -c good.conf --role importer -X keys.box_secret=a.key \
        -X partner.acme.workflow_id.user=wf-1 -X vendor.url=http://[::1]:8480
stdout_is "good.conf: OK"

# ----------------------------------------------------------------- dump
good_issuer >dump.conf
printf 'keys.passphrase = file:%s/pass.txt\n' "$WORK" >>dump.conf
printf 'kafka.sasl.password = env:KB_CLI_SECRET\n' >>dump.conf
run 0 config dump -c dump.conf -X log.level=debug -X log.level=warn
no_secret
stdout_has "log.level=warn  # -X"
stdout_has "vendor.api_key=env:KB_CLI_SECRET  # dump.conf:5"
stdout_has "keys.passphrase=file:$WORK/pass.txt  # dump.conf:10"
stdout_has "kafka.sasl.password=env:KB_CLI_SECRET  # dump.conf:11"
stdout_has "vendor.timeout_ms=30000  # default"
stdout_has "partner.acme.keys=acme.pub.json  # dump.conf:8"
run 0 config dump -c dump.conf --role issuer
no_secret
if grep -q '^keys.box_secret\|^# keys.box_secret' "$OUT"; then
        fail "the issuer dump shows an importer-only option"
fi
run 0 config dump -c dump.conf --role importer
no_secret
stdout_has "# keys.box_secret is not set"

# -------------------------------------------------------------- options
run 0 config options
stdout_has "vendor.api_key"
stdout_has "kafka.<property>"
run 0 config options --markdown
stdout_has "| option | type | default | used by | description |"
stdout_has "| \`application_id\` |"
stdout_has "| \`kafka.*\` |"
# each option of the table is listed once
n_text=$(grep -c '^[a-z_]\+[a-z0-9_.*]*$' <("$BIN" config options))
n_md=$(grep -c '^| `[a-z]' <("$BIN" config options --markdown))
cases=$((cases + 1))
if [ "$n_md" != "$((n_text + 1))" ] || [ "$n_text" -lt 10 ]; then
        CASE="config options (text vs markdown)"
        fail "text lists $n_text options, markdown $n_md rows"
fi

echo "config_cli: $cases cases, $fails failures"
[ "$fails" = 0 ]
