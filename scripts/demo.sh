#!/usr/bin/env bash
# demo.sh -- install what is missing, build, and run `kyc-bridge demo` (the
# whole hand-off on this machine). Arguments go to the demo: --count N,
# --kafka BOOTSTRAP, --keep, --verbose.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh" "$here/build" >&2
exec "$here/build/kyc-bridge" demo "$@"
