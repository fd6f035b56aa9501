#!/usr/bin/env python3
"""readme_check.py -- the README documents every option exactly as the option
table says (`kyc-bridge config options --markdown`), and names no option the
table lacks. Regenerate with scripts/gen-readme-options.sh."""
import os
import re
import subprocess
import sys


def check(cond, msg):
    """Exits 1 with msg unless cond holds (python -O strips assert)."""
    if not cond:
        sys.stderr.write("readme_check: %s\n" % msg)
        sys.exit(1)


readme = open(sys.argv[1]).read()
m = re.search(r"<!-- options:begin -->\n(.*?)<!-- options:end -->", readme, re.S)
check(m, "README has no options:begin/end section")
table = subprocess.run([os.environ["KB_BIN"], "config", "options", "--markdown"],
                       check=True, stdout=subprocess.PIPE, text=True).stdout
if m.group(1) != table:
    sys.stderr.write("README options section differs from `config options --markdown`;"
                     " run scripts/gen-readme-options.sh\n")
    sys.exit(1)
names = set(re.findall(r"^\| `([^`]+)`", table, re.M))
# every key used in the README's example configs is a real option
for key in re.findall(r"^([a-z_]+(?:\.[a-z0-9_*.-]+)*) = ", readme, re.M):
    pat = re.sub(r"^partner\.[a-z0-9_-]+\.", "partner.*.", key)
    check(pat in names or key.startswith("kafka."), "README example uses unknown option " + key)
print("readme_check: OK (%d options)" % len(names))
