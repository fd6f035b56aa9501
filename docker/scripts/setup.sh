#!/usr/bin/env bash
# setup.sh -- the `setup` job: the two vendor applications, their workflows,
# their API keys, and the rendered issuer/importer configurations
#
# Runs in the kyc-bridge image after `sandbox` is healthy and `keygen` is
# done (or on the host through scripts/compose-local.sh). Against the
# sandbox's /sandbox/ and /v3/ endpoints it creates:
#   - application "issuer (Service X)" and "partner (Service Y)"; each API
#     key goes into that party's own directory only (vendor-api-key, 0600);
#   - a KYC and a KYB workflow in each application (the issuer's are where
#     the share-job's sessions run; the partner's are where imports land),
#     and the issuer's "auto-share" KYC workflow, which its sharing rule
#     watches;
#   - exchange/world.env: the public identifiers (application and workflow
#     ids), read by the share-job;
#   - each application's webhooks pointed at its daemon's intake: the
#     issuer's webhook_url (PATCH /v3/webhook/) -> ISSUER_WEBHOOK_URL, a
#     status.updated destination of the partner's (POST
#     /v3/webhook/destinations/) -> PARTNER_WEBHOOK_URL; each application's
#     secret_shared_key (GET /v3/webhook/) into that party's own directory
#     only (webhook-secret, 0600);
# then renders config/issuer.conf and config/importer.conf (templates with
# @NAME@ placeholders) into issuer/issuer.conf and partner/importer.conf and
# validates both with `kyc-bridge config check`.
#
# Idempotent: when world.env names applications the sandbox still has (its
# state lives in a volume), they are reused and only the configurations are
# rendered again. With the real vendor there is no setup job: applications,
# workflows and API keys come from the vendor's console (docker/README.md).
#
# Environment:
#   VENDOR_URL       the sandbox (required), e.g. http://sandbox:8480
#   KAFKA_BOOTSTRAP  broker address written into the configs (required)
#   ISSUER_WEBHOOK_LISTEN, PARTNER_WEBHOOK_LISTEN
#                    webhook.listen of the issuer and of the importer
#                    (required), e.g. 0.0.0.0:8490
#   ISSUER_METRICS_LISTEN, PARTNER_METRICS_LISTEN
#                    metrics.listen of the issuer and of the importer
#                    (/livez, /readyz, /metrics; required), e.g. the same
#                    address as its webhook.listen (one server)
#   ISSUER_WEBHOOK_URL, PARTNER_WEBHOOK_URL
#                    where the sandbox delivers each application's webhooks
#                    (required), e.g. http://issuer:8490/webhooks/vendor
#   KB_STATE_DIR     root of the volumes (default /var/lib/kyc-bridge)
set -euo pipefail
kb_prog=setup
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${VENDOR_URL:?VENDOR_URL is not set}"
: "${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is not set}"
: "${ISSUER_WEBHOOK_LISTEN:?ISSUER_WEBHOOK_LISTEN is not set}"
: "${ISSUER_WEBHOOK_URL:?ISSUER_WEBHOOK_URL is not set}"
: "${PARTNER_WEBHOOK_LISTEN:?PARTNER_WEBHOOK_LISTEN is not set}"
: "${PARTNER_WEBHOOK_URL:?PARTNER_WEBHOOK_URL is not set}"
: "${ISSUER_METRICS_LISTEN:?ISSUER_METRICS_LISTEN is not set}"
: "${PARTNER_METRICS_LISTEN:?PARTNER_METRICS_LISTEN is not set}"
export VENDOR_URL KAFKA_BOOTSTRAP ISSUER_WEBHOOK_LISTEN PARTNER_WEBHOOK_LISTEN \
        ISSUER_METRICS_LISTEN PARTNER_METRICS_LISTEN
KB_STATE_DIR=${KB_STATE_DIR:-/var/lib/kyc-bridge}
export KB_STATE_DIR
state=$KB_STATE_DIR
templates=$(dirname "$0")/../config
world=$state/exchange/world.env
umask 077

for f in "$state/issuer/keys/issuer.sign.key" "$state/partner/keys/partner.box.key" \
        "$state/exchange/issuer.pub.json" "$state/exchange/partner.pub.json"; do
        [ -r "$f" ] || kb_die "$f missing: the keygen job has not run"
done

kb_wait_sandbox 60

# A world from an earlier run: reuse it while the sandbox still knows both
# applications (and hence their keys and workflows).
reuse=0
if [ -r "$world" ] && [ -r "$state/issuer/vendor-api-key" ] &&
        [ -r "$state/partner/vendor-api-key" ]; then
        # shellcheck disable=SC1090 # written by this script
        . "$world"
        kb_call 200 GET /sandbox/applications
        if [[ $KB_HTTP_BODY == *"\"$ISSUER_APPLICATION_ID\""* ]] &&
                [[ $KB_HTTP_BODY == *"\"$PARTNER_APPLICATION_ID\""* ]]; then
                reuse=1
                kb_say "reusing applications $ISSUER_APPLICATION_ID (issuer) and $PARTNER_APPLICATION_ID (partner)"
        fi
fi

# app NAME -> sets app_id, app_key
app() {
        kb_call 201 POST /sandbox/applications "{\"name\":\"$1\"}"
        app_id=$(kb_json_str application_id)
        app_key=$(kb_json_str api_key)
        kb_is_uuid "$app_id" || kb_die "POST /sandbox/applications: no application_id in the answer"
        [ -n "$app_key" ] || kb_die "POST /sandbox/applications: no api_key in the answer"
}

# workflow API_KEY TYPE [LABEL] -> prints the workflow id
workflow() {
        local id
        kb_call 201 POST /v3/workflows/ \
                "{\"workflow_label\":\"docker demo ${3:-$2}\",\"workflow_type\":\"$2\"}" "$1"
        id=$(kb_json_str uuid)
        kb_is_uuid "$id" || kb_die "POST /v3/workflows/: no uuid in the answer"
        printf '%s' "$id"
}

if [ $reuse = 0 ]; then
        app "issuer (Service X)"
        ISSUER_APPLICATION_ID=$app_id
        kb_write_file "$state/issuer/vendor-api-key" 0600 "$app_key"
        ISSUER_WORKFLOW_USER=$(workflow "$app_key" kyc)
        ISSUER_WORKFLOW_BUSINESS=$(workflow "$app_key" kyb)

        app "partner (Service Y)"
        PARTNER_APPLICATION_ID=$app_id
        kb_write_file "$state/partner/vendor-api-key" 0600 "$app_key"
        PARTNER_WORKFLOW_USER=$(workflow "$app_key" kyc)
        PARTNER_WORKFLOW_BUSINESS=$(workflow "$app_key" kyb)
        app_key=
        ISSUER_WORKFLOW_RULE=
        kb_say "issuer application $ISSUER_APPLICATION_ID, workflows kyc $ISSUER_WORKFLOW_USER kyb $ISSUER_WORKFLOW_BUSINESS"
        kb_say "partner application $PARTNER_APPLICATION_ID, workflows kyc $PARTNER_WORKFLOW_USER kyb $PARTNER_WORKFLOW_BUSINESS"
        kb_say "API keys written to $state/issuer/vendor-api-key and $state/partner/vendor-api-key (0600, not shown)"
fi

# The workflow of the issuer's sharing rule (also added to a world made
# before the rule existed).
if [ -z "${ISSUER_WORKFLOW_RULE:-}" ]; then
        ISSUER_WORKFLOW_RULE=$(workflow "$(cat "$state/issuer/vendor-api-key")" kyc "kyc auto-share")
        kb_say "issuer workflow kyc auto-share $ISSUER_WORKFLOW_RULE (its Approved sessions are shared by rule.auto-share)"
fi
kb_write_file "$world" 0644 "# world.env -- public ids of the docker demo, written by setup.sh
ISSUER_APPLICATION_ID=$ISSUER_APPLICATION_ID
ISSUER_WORKFLOW_USER=$ISSUER_WORKFLOW_USER
ISSUER_WORKFLOW_BUSINESS=$ISSUER_WORKFLOW_BUSINESS
ISSUER_WORKFLOW_RULE=$ISSUER_WORKFLOW_RULE
PARTNER_APPLICATION_ID=$PARTNER_APPLICATION_ID
PARTNER_WORKFLOW_USER=$PARTNER_WORKFLOW_USER
PARTNER_WORKFLOW_BUSINESS=$PARTNER_WORKFLOW_BUSINESS
"

# webhook PARTY URL HOW -- points the PARTY application's status.updated
# webhooks at URL, with PARTY's own API key: HOW "url" sets the
# application's webhook_url (PATCH /v3/webhook/), "destination" adds a
# destination subscribed to status.updated (POST
# /v3/webhook/destinations/) unless one has that URL already. Then writes
# the application's secret_shared_key (GET /v3/webhook/) to PARTY's own
# directory, 0600, and never prints it. Idempotent.
webhook() {
        local party=$1 url=$2 how=$3 key secret
        key=$(cat "$state/$party/vendor-api-key") || kb_die "cannot read the $party's API key"
        case $how in
        url)
                kb_call 200 PATCH /v3/webhook/ \
                        "{\"webhook_url\":\"$url\",\"webhook_version\":\"v3\"}" "$key"
                ;;
        destination)
                kb_call 200 GET /v3/webhook/destinations/ "" "$key"
                if [[ $KB_HTTP_BODY != *"\"url\":\"$url\""* ]]; then
                        kb_call 201 POST /v3/webhook/destinations/ \
                                "{\"url\":\"$url\",\"subscribed_events\":[\"status.updated\"]}" "$key"
                fi
                ;;
        *) kb_die "webhook: unknown way $how" ;;
        esac
        KB_HTTP_BODY=
        kb_call 200 GET /v3/webhook/ "" "$key"
        secret=$(kb_json_str secret_shared_key)
        KB_HTTP_BODY=
        [ -n "$secret" ] || kb_die "GET /v3/webhook/: no secret_shared_key in the $party's answer"
        kb_write_file "$state/$party/webhook-secret" 0600 "$secret"
        secret=
        kb_say "$party: webhooks to $url ($how); secret_shared_key written to $state/$party/webhook-secret (0600, not shown)"
}
webhook issuer "$ISSUER_WEBHOOK_URL" url
webhook partner "$PARTNER_WEBHOOK_URL" destination

export ISSUER_APPLICATION_ID PARTNER_APPLICATION_ID PARTNER_WORKFLOW_USER \
        PARTNER_WORKFLOW_BUSINESS ISSUER_WORKFLOW_RULE
kb_render "$templates/issuer.conf" "$state/issuer/issuer.conf"
kb_render "$templates/importer.conf" "$state/partner/importer.conf"
kyc-bridge config check -c "$state/issuer/issuer.conf" --role issuer |
        sed "s/^/$kb_prog: /"
kyc-bridge config check -c "$state/partner/importer.conf" --role importer |
        sed "s/^/$kb_prog: /"
kb_say "ready"
