#!/usr/bin/env bash
# keygen.sh -- the `keygen` job: each party's key pairs, made at run time
#
# Runs in the kyc-bridge image (or on the host through
# scripts/compose-local.sh). For each party -- the issuer ("Service X") and
# the partner ("Service Y") -- `kyc-bridge keygen` writes the secret keys
# into that party's own directory (its own named volume in compose, mode
# 0700, files 0600); only the public bundle is copied to the exchange
# directory, which is what two companies would send each other. Keys that
# exist are kept (a restart does not rotate them); `docker compose down -v`
# forgets them.
#
# Environment:
#   KB_STATE_DIR   root of the volumes (default /var/lib/kyc-bridge)
set -euo pipefail
kb_prog=keygen
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

state=${KB_STATE_DIR:-/var/lib/kyc-bridge}
umask 077
for d in issuer partner exchange; do
        if ! [ -d "$state/$d" ] || ! [ -w "$state/$d" ]; then
                kb_die "$state/$d is not a writable directory (uid $(id -u)); a volume made by another image? try 'docker compose down -v'"
        fi
done

keygen() {
        local party=$1 label=$2 dir=$state/$1/keys
        if [ -f "$dir/$party.pub.json" ] && [ -f "$dir/$party.box.key" ] &&
                [ -f "$dir/$party.sign.key" ]; then
                kb_say "$party: keeping the keys in $dir"
        else
                # keygen refuses to overwrite; a half-made set (a crash
                # between files) is removed first.
                rm -f "$dir/$party.pub.json" "$dir/$party.box.key" "$dir/$party.sign.key"
                kyc-bridge keygen --out-dir "$dir" --name "$party" --label "$label" |
                        sed "s/^/$kb_prog: $party: /"
        fi
        # The exchange: only the public bundle leaves the party's volume.
        cp "$dir/$party.pub.json" "$state/exchange/$party.pub.json.tmp"
        chmod 0644 "$state/exchange/$party.pub.json.tmp"
        mv -f "$state/exchange/$party.pub.json.tmp" "$state/exchange/$party.pub.json"
}

keygen issuer "issuer (Service X), docker demo"
keygen partner "partner (Service Y), docker demo"
kb_say "public bundles in $state/exchange: $(cd "$state/exchange" && echo *.pub.json)"
