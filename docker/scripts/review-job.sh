#!/usr/bin/env bash
# review-job.sh -- the `review-job`: the partner's compliance team approves
# one imported session that landed In Review, and sees the status update
#
# Plays Service Y's own systems. Runs in the apache/kafka image as the
# kyc-bridge uid (it reads the partner's API key from the partner's volume,
# and nothing of the issuer's) or on the host through
# scripts/compose-local.sh. It reads the importer's output topic and the
# status topic (read_committed, from the beginning) until it finds an
# imported session still In Review (an In Review import with no status
# update yet), approves it at the vendor with PATCH
# /v3/session/{id}/update-status/ and the partner's API key, and waits for
# the importer to publish the change on the status topic: the sandbox's
# status.updated webhook goes to the importer's intake, which writes a
# status-update record (schemas/session-status.schema.json). A second run
# approves another In Review import, if the share-job made one.
#
# Prints "approved SESSION_ID KIND NEW_STATUS SHARE_ID" for the session it
# approved, then the status record's event id when it arrived.
#
# Environment:
#   VENDOR_URL         the sandbox (required)
#   KAFKA_BOOTSTRAP    broker address (required)
#   OUTPUT_TOPIC       the importer's importer.output_topic (required)
#   STATUS_TOPIC       the importer's importer.status_topic (required)
#   REVIEW_TIMEOUT_S   how long to wait for an import, then for its status
#                      update (default 120)
#   KAFKA_BIN          directory of the Kafka tools (default /opt/kafka/bin)
#   KAFKA_TOOL_CONFIG  optional client properties file (--command-config)
#   KB_STATE_DIR       root of the volumes (default /var/lib/kyc-bridge)
set -euo pipefail
kb_prog=review-job
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${VENDOR_URL:?VENDOR_URL is not set}"
: "${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is not set}"
: "${OUTPUT_TOPIC:?OUTPUT_TOPIC is not set}"
: "${STATUS_TOPIC:?STATUS_TOPIC is not set}"
wait_s=${REVIEW_TIMEOUT_S:-120}
[[ $wait_s =~ ^[1-9][0-9]*$ ]] || kb_die "REVIEW_TIMEOUT_S must be a positive number"
kbin=${KAFKA_BIN:-/opt/kafka/bin}
state=${KB_STATE_DIR:-/var/lib/kyc-bridge}
cfg=()
[ -z "${KAFKA_TOOL_CONFIG:-}" ] || cfg=(--command-config "$KAFKA_TOOL_CONFIG")

key=$(cat "$state/partner/vendor-api-key") || kb_die "cannot read the partner's API key"
[ -n "$key" ] || kb_die "the partner's API key file is empty"

kb_wait_sandbox 60

# records TOPIC -- every committed record of TOPIC (one JSON per line), as a
# consumer of the partner's would read it; ends 4 s after the last one.
records() {
        "$kbin/kafka-console-consumer.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" \
                "${cfg[@]}" --topic "$1" --from-beginning \
                --isolation-level read_committed --timeout-ms 4000 2>/dev/null || true
}

# field NAME -- the first string member NAME of the record on stdin (the
# records are compact JSON; the top-level members come before the nested
# session or decision).
field() {
        grep -o '"'"$1"'":"[^"\\]*"' | head -n 1 | sed -e 's/^.*:"//' -e 's/"$//'
}

deadline=$((SECONDS + wait_s))
sid=
while [ -z "$sid" ]; do
        updated=$(records "$STATUS_TOPIC" | grep -o '"session_id":"[^"\\]*"' || true)
        while IFS= read -r rec; do
                status=$(printf '%s' "$rec" | field status)
                case $status in "In Review" | IN_REVIEW) ;; *) continue ;; esac
                s=$(printf '%s' "$rec" | field session_id)
                [ -n "$s" ] || continue
                # Already decided by an earlier run: it has a status update.
                [[ $updated == *"\"session_id\":\"$s\""* ]] && continue
                sid=$s
                kind=$(printf '%s' "$rec" | field session_kind)
                share_id=$(printf '%s' "$rec" | field share_id)
                break
        done < <(records "$OUTPUT_TOPIC")
        [ -n "$sid" ] && break
        [ $SECONDS -lt $deadline ] ||
                kb_die "no In Review import without a status update on $OUTPUT_TOPIC within $wait_s s (has the share-job run?)"
        sleep 2
done

# The vendor's casing: KYB sessions' statuses are upper case.
if [ "$kind" = business ]; then new=APPROVED; else new=Approved; fi
kb_call 200 PATCH "/v3/session/$sid/update-status/" \
        "{\"new_status\":\"$new\",\"comment\":\"docker demo: approved by Service Y's compliance team\"}" "$key"
printf 'approved %s %s %s %s\n' "$sid" "$kind" "$new" "$share_id"
kb_say "session $sid ($kind, share $share_id) approved with the partner's API key; waiting for its status update on $STATUS_TOPIC"

deadline=$((SECONDS + wait_s))
while :; do
        rec=$(records "$STATUS_TOPIC" | grep -F "\"session_id\":\"$sid\"" |
                grep -F "\"new_status\":\"$new\"" | head -n 1 || true)
        if [ -n "$rec" ]; then
                kb_say "status update on $STATUS_TOPIC: session $sid $(printf '%s' "$rec" | field old_status) -> $new, event $(printf '%s' "$rec" | field event_id)"
                break
        fi
        [ $SECONDS -lt $deadline ] ||
                kb_die "no status update for session $sid on $STATUS_TOPIC within $wait_s s (see the importer's and the sandbox's logs)"
        sleep 2
done
