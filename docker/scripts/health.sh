#!/usr/bin/env bash
# health.sh -- container healthcheck: exit 0 when URL answers HTTP STATUS
#
# Usage: health.sh URL [STATUS]   (STATUS default 200)
#   health.sh http://127.0.0.1:8480/sandbox/health
#   health.sh http://127.0.0.1:8490/webhooks/vendor 405
# The second form is a daemon's readiness: its webhook intake listens only
# once its Kafka pipeline is built, and answers a GET on the webhook path
# with 405 (only POST is routed) without acting on anything.
# The kyc-bridge image has no curl; this uses lib.sh's /dev/tcp client.
set -euo pipefail
kb_prog=health
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || [ $# -eq 2 ] || kb_die "usage: health.sh URL [STATUS]"
want=${2:-200}
[[ $want =~ ^[1-5][0-9][0-9]$ ]] || kb_die "STATUS must be an HTTP status code"
KB_HTTP_TIMEOUT=5
kb_http GET "$1" || kb_die "$1: no answer"
[ "$KB_HTTP_STATUS" = "$want" ] || kb_die "$1: HTTP $KB_HTTP_STATUS (want $want)"
