#!/usr/bin/env bash
# health.sh -- container healthcheck: exit 0 when URL answers HTTP 200
#
# Usage: health.sh URL   (e.g. http://127.0.0.1:8480/sandbox/health)
# The kyc-bridge image has no curl; this uses lib.sh's /dev/tcp client.
set -euo pipefail
kb_prog=health
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || kb_die "usage: health.sh URL"
KB_HTTP_TIMEOUT=5
kb_http GET "$1" || kb_die "$1: no answer"
[ "$KB_HTTP_STATUS" = 200 ] || kb_die "$1: HTTP $KB_HTTP_STATUS"
