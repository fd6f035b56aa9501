#!/usr/bin/env bash
# install_check.sh BUILD_DIR WORK_DIR -- install into WORK_DIR/prefix, build a
# consumer of the public API with pkg-config, run it, check the exports, the
# shared library's NEEDED list, the .pc file's Requires.private, and a
# static consumer linked with `pkg-config --static --libs`.
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

# ---- what the shared library needs, and what its .pc file says it needs
#
# libkycbridge is the envelope part alone: libsodium and json-c, nothing of
# Kafka, HTTP or OpenSSL. Its NEEDED list must be exactly libsodium, libjson-c
# and libc. libm and libpthread are not allowed either: the library calls no
# libm function and no pthread function (nm -u shows none), and since glibc
# 2.34 the pthread API lives in libc, so either appearing means a new
# dependency slipped in and this list has to be reconsidered on purpose.
# The .pc file's Requires.private must name exactly the pkg-config modules of
# those libraries (libsodium, json-c): the public headers include neither, so
# Requires stays empty, and a static consumer needs both.
forbidden_re='^lib(rdkafka|curl|microhttpd|crypto|ssl|cmocka|m|pthread)[.-]'

# check_needed SO: exit status 0 when SO's NEEDED list is exactly
# {libsodium, libjson-c, libc} (one of each, any soname version).
check_needed() {
        local so=$1 needed n ok=0
        needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | LC_ALL=C sort)
        if [ -z "$needed" ]; then
                echo "install_check: $so: readelf shows no NEEDED entries" >&2
                return 1
        fi
        while read -r n; do
                if [[ $n =~ $forbidden_re ]]; then
                        echo "install_check: $so needs forbidden $n" >&2
                        ok=1
                elif ! [[ $n =~ ^(libsodium\.so\.[0-9]+|libjson-c\.so\.[0-9]+|libc\.so\.6)$ ]]; then
                        echo "install_check: $so needs unexpected $n" >&2
                        ok=1
                fi
        done <<<"$needed"
        for n in libsodium libjson-c libc; do
                if [ "$(grep -c "^$n\.so\." <<<"$needed")" != 1 ]; then
                        echo "install_check: $so: want exactly one $n in NEEDED, have:" $needed >&2
                        ok=1
                fi
        done
        return $ok
}

# check_requires PC_NAME: Requires.private is exactly "json-c libsodium"
# (sorted, version constraints dropped) and Requires is empty.
check_requires() {
        local priv pub
        priv=$(pkg-config --print-requires-private "$1" | awk '{print $1}' | LC_ALL=C sort | paste -sd' ' -)
        pub=$(pkg-config --print-requires "$1" | paste -sd' ' -)
        if [ "$priv" != "json-c libsodium" ] || [ -n "$pub" ]; then
                echo "install_check: $1.pc: Requires.private '$priv' (want 'json-c libsodium'), Requires '$pub' (want none)" >&2
                return 1
        fi
}

so=$(readlink -f "$libdir/libkycbridge.so")
check_needed "$so"
check_requires kycbridge
# Nothing of the forbidden libraries linked in statically either.
if nm -D "$so" | grep -E ' (rd_kafka_|curl_|MHD_|EVP_|SSL_|OPENSSL_|cmocka_)' >&2; then
        echo "install_check: $so refers to Kafka, HTTP or OpenSSL symbols" >&2
        exit 1
fi

# The checks above can fail: a decoy library that also needs libcurl, and a
# decoy .pc that forgets json-c, must both be refused.
mkdir -p "$work/decoy/pkgconfig"
echo 'int kb_decoy(void); int kb_decoy(void) { return 0; }' >"$work/decoy/decoy.c"
cc -shared -fPIC "$work/decoy/decoy.c" -o "$work/decoy/libdecoy.so" \
   -Wl,--no-as-needed $(pkg-config --libs libsodium json-c libcurl)
if check_needed "$work/decoy/libdecoy.so" 2>/dev/null; then
        echo "install_check: check_needed accepted a library that needs libcurl" >&2
        exit 1
fi
sed 's/^Requires.private:.*/Requires.private: libsodium/' "$libdir/pkgconfig/kycbridge.pc" \
        >"$work/decoy/pkgconfig/kbdecoy.pc"
if PKG_CONFIG_PATH=$work/decoy/pkgconfig check_requires kbdecoy 2>/dev/null; then
        echo "install_check: check_requires accepted a .pc without json-c" >&2
        exit 1
fi

# A static consumer: the library's own objects (the build tree's archives of
# the envelope and common parts, what libkycbridge.so is made of) plus
# exactly `pkg-config --static --libs kycbridge`, linked with -static, so
# every symbol must come from the archives the .pc file names.
envelope_a=$(find "$build/bridge/envelope" -name 'libkb_envelope.a' | head -1)
common_a=$(find "$build/bridge/common" -name 'libkb_common.a' | head -1)
test -f "$envelope_a" && test -f "$common_a"
static_libs=$(pkg-config --static --libs kycbridge | sed 's/ -lkycbridge\b//; s/^-lkycbridge\b//')
cc -std=c11 -Wall -Werror -static $(pkg-config --cflags kycbridge) "$work/consumer.c" \
   -o "$work/consumer-static" "$envelope_a" "$common_a" $static_libs
"$work/consumer-static"
if readelf -d "$work/consumer-static" | grep -q NEEDED; then
        echo "install_check: the static consumer still needs shared libraries" >&2
        exit 1
fi

echo "install_check: OK"
