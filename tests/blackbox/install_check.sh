#!/usr/bin/env bash
# install_check.sh BUILD_DIR WORK_DIR -- install into WORK_DIR/prefix, build a
# consumer of the public API with pkg-config, run it, check the exports.
set -euo pipefail
build=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libkycbridge.so' | head -1)")
test -f "$prefix/include/kyc-bridge/kyc_bridge.h"
test -x "$prefix/bin/kyc-bridge"
export PKG_CONFIG_PATH=$libdir/pkgconfig
cat > "$work/consumer.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <kyc_bridge.h>

int main(void)
{
        kb_envelope_fields_t f, g;
        kb_envelope_opener_t op;
        kb_keyring_t *box, *signers;
        kb_key_t *bk, *sk;
        char *env = NULL, *tok = NULL;
        size_t env_len, tok_len;
        const char *token = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln";

        if (kb_init() != KB_OK)
                return 1;
        bk = kb_key_generate(KB_KEY_BOX);
        sk = kb_key_generate(KB_KEY_SIGN);
        memset(&f, 0, sizeof(f));
        strcpy(f.issuer_application_id, "11111111-1111-4111-8111-111111111111");
        strcpy(f.for_application_id, "22222222-2222-4222-8222-222222222222");
        strcpy(f.share_id, "share-1");
        strcpy(f.source_session_id, "33333333-3333-4333-8333-333333333333");
        f.session_kind = KB_SESSION_USER;
        f.created_at = (int64_t)time(NULL);
        f.expires_at = f.created_at + 600;
        if (kb_envelope_seal(&f, token, strlen(token), sk, bk, &env,
                             &env_len) != KB_OK)
                return 2;
        box = kb_keyring_new();
        signers = kb_keyring_new();
        if (kb_keyring_add(box, bk, f.for_application_id) ||
            kb_keyring_add(signers, sk, f.issuer_application_id))
                return 3;
        op.my_application_id = f.for_application_id;
        op.box_keys = box;
        op.signers = signers;
        op.now = f.created_at;
        if (kb_envelope_open(env, env_len, &op, NULL, &g, &tok, &tok_len) !=
                    KB_OK ||
            strcmp(tok, token) || strcmp(g.share_id, "share-1"))
                return 4;
        env[env_len / 2] ^= 1;
        if (kb_envelope_open(env, env_len, &op, NULL, &g, &tok, &tok_len) ==
            KB_OK)
                return 5;
        printf("consumer: sealed and opened, tamper refused (%s)\n",
               kb_err2name(kb_envelope_open(env, env_len, &op, NULL, &g, &tok,
                                            &tok_len)));
        free(env);
        kb_keyring_destroy(box);
        kb_keyring_destroy(signers);
        return 0;
}
C
cc -std=c11 -Wall -Werror $(pkg-config --cflags kycbridge) "$work/consumer.c" \
   -o "$work/consumer" $(pkg-config --libs kycbridge)
LD_LIBRARY_PATH=$libdir "$work/consumer"
# The shared library exports the public API only.
bad=$(nm -D --defined-only "$libdir/libkycbridge.so" | awk '$2 ~ /[TDB]/ {sub(/@.*/, "", $3); print $3}' |
      grep -Ev '^(kb_init|kb_err2str|kb_err2name|kb_key_.*|kb_bundle_.*|kb_keyring_.*|kb_envelope_.*|kb_session_kind.*)$' || true)
if [ -n "$bad" ]; then
  echo "install_check: internal symbols exported:" $bad >&2
  exit 1
fi
echo "install_check: OK"
