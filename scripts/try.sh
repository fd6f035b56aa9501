#!/usr/bin/env bash
# try.sh -- install what is missing, build, and run a share hand-off end to end
# on a real local Kafka (fetched from Maven Central) with the sandbox as the
# vendor. Leaves nothing running.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh" "$here/build"
kdir=$(mktemp -d "${TMPDIR:-/tmp}/kb-try-kafka.XXXXXX")
trap 'bash "$here/scripts/kafka.sh" stop "$kdir" >/dev/null 2>&1 || true' EXIT
echo "try: starting a local Kafka broker (first run fetches it with Maven)..."
bash "$here/scripts/kafka.sh" start "$kdir" >/dev/null
KB_BIN="$here/build/kyc-bridge" KB_KAFKA_DIR="$kdir" python3 "$here/scripts/try.py"
