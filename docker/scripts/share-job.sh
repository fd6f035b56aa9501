#!/usr/bin/env bash
# share-job.sh -- the `share-job`: finished sessions at the issuer, and one
# share request each on the issuer's request topic
#
# Plays the issuer's own systems. Runs in the apache/kafka image as the
# kyc-bridge uid (it reads the issuer's API key from the issuer's volume)
# or on the host through scripts/compose-local.sh. Against the sandbox it
# creates SHARE_COUNT sessions in the issuer's application (KYC and KYB,
# Approved/Declined/In Review) and completes them, plus one session that
# never finishes; then it produces one share request per session
# (schemas/share-request.schema.json, key = share_id) with
# kafka-console-producer.sh. The issuer daemon takes it from there. Expect
# SHARE_COUNT imported sessions and one dead letter (the unfinished session).
#
# Then one more KYC session, in the issuer's auto-share workflow, completed
# Approved and NOT requested: the vendor's status.updated webhook reaches
# the issuer's intake, whose sharing rule (rule.auto-share in issuer.conf)
# writes the share request itself. Expect one more imported session, with a
# share_id starting "wh-".
#
# Prints one line per request: "share SHARE_ID KIND STATUS SESSION_ID"
# (spaces in STATUS become underscores), and for the rule's session
# "rule SESSION_ID user Approved VENDOR_DATA".
#
# Environment:
#   VENDOR_URL         the sandbox (required)
#   KAFKA_BOOTSTRAP    broker address (required)
#   REQUEST_TOPIC      the issuer's issuer.request_topic (required)
#   SHARE_COUNT        finished sessions to share, 1..100 (default 6)
#   KAFKA_BIN          directory of the Kafka tools (default /opt/kafka/bin)
#   KAFKA_TOOL_CONFIG  optional client properties file (--command-config)
#   KB_STATE_DIR       root of the volumes (default /var/lib/kyc-bridge)
set -euo pipefail
kb_prog=share-job
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${VENDOR_URL:?VENDOR_URL is not set}"
: "${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is not set}"
: "${REQUEST_TOPIC:?REQUEST_TOPIC is not set}"
count=${SHARE_COUNT:-6}
if ! [[ $count =~ ^[1-9][0-9]*$ ]] || [ "$count" -gt 100 ]; then
        kb_die "SHARE_COUNT must be 1..100 (the sandbox allows 300 writes a minute)"
fi
kbin=${KAFKA_BIN:-/opt/kafka/bin}
state=${KB_STATE_DIR:-/var/lib/kyc-bridge}
cfg=()
[ -z "${KAFKA_TOOL_CONFIG:-}" ] || cfg=(--command-config "$KAFKA_TOOL_CONFIG")

[ -r "$state/exchange/world.env" ] || kb_die "$state/exchange/world.env missing: the setup job has not run"
# shellcheck disable=SC1091 # written by setup.sh
. "$state/exchange/world.env"
key=$(cat "$state/issuer/vendor-api-key") || kb_die "cannot read the issuer's API key"
[ -n "$key" ] || kb_die "the issuer's API key file is empty"

kb_wait_sandbox 60

# session WORKFLOW VENDOR_DATA STATUS -> sets sid (STATUS "" = never finished)
session() {
        kb_call 201 POST /v3/session/ "{\"workflow_id\":\"$1\",\"vendor_data\":\"$2\"}" "$key"
        sid=$(kb_json_str session_id)
        kb_is_uuid "$sid" || kb_die "POST /v3/session/: no session_id in the answer"
        if [ -n "$3" ]; then
                kb_call 200 POST "/sandbox/sessions/$sid/complete" "{\"status\":\"$3\"}" "$key"
        fi
}

user_status=("Approved" "Declined" "In Review")
business_status=("APPROVED" "DECLINED" "IN_REVIEW")
run=$(date -u +%Y%m%dT%H%M%SZ)
lines=
i=0
while [ $i -le "$count" ]; do
        if [ $i -eq "$count" ]; then
                # The one that cannot be shared: started, never finished.
                kind=user status='' wf=$ISSUER_WORKFLOW_USER
        elif [ $((i % 3)) -eq 2 ]; then
                kind=business status=${business_status[i % 3]} wf=$ISSUER_WORKFLOW_BUSINESS
        else
                kind=user status=${user_status[i % 3]} wf=$ISSUER_WORKFLOW_USER
        fi
        vd="customer-$run-$i"
        session "$wf" "$vd" "$status"
        share_id=$(kb_uuid)
        req="{\"share_id\":\"$share_id\",\"session_id\":\"$sid\",\"for_application_id\":\"$PARTNER_APPLICATION_ID\",\"vendor_data\":\"$vd\"}"
        lines+="$share_id"$'\t'"$req"$'\n'
        label=${status:-Not Started}
        printf 'share %s %s %s %s\n' "$share_id" "$kind" "${label// /_}" "$sid"
        i=$((i + 1))
done

printf '%s' "$lines" |
        "$kbin/kafka-console-producer.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" \
                "${cfg[@]}" --topic "$REQUEST_TOPIC" \
                --reader-property parse.key=true \
                --command-property acks=all \
                --command-property enable.idempotence=true
kb_say "$((count + 1)) share requests produced to $REQUEST_TOPIC (expect $count imported, 1 dead-lettered)"

# The rule's turn: no share request from us. (Last, so that the issuer's
# intake has had the most time to listen; the vendor retries a delivery
# that found no one.)
vd="customer-$run-auto"
session "$ISSUER_WORKFLOW_RULE" "$vd" Approved
printf 'rule %s user Approved %s\n' "$sid" "$vd"
kb_say "session $sid completed Approved in the auto-share workflow, no share request: the issuer's sharing rule shares it (expect 1 more imported, share_id wh-...)"
