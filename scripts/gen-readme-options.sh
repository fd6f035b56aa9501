#!/usr/bin/env bash
# gen-readme-options.sh -- regenerate the README's configuration reference from
# the option table (bridge/conf/conf_options.c). Usage: scripts/gen-readme-options.sh [BIN]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/kyc-bridge}
table=$("$bin" config options --markdown)
python3 - "$here/README.md" "$table" <<'PY'
import re, sys
path, table = sys.argv[1], sys.argv[2] + "\n"
s = open(path).read()
s2 = re.sub(r"(<!-- options:begin -->\n).*?(<!-- options:end -->)",
            lambda m: m.group(1) + table + m.group(2), s, flags=re.S)
open(path, "w").write(s2)
PY
