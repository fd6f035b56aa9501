/* fuzz_keys.c -- public key bundles (kb_bundle_parse(): a partner hands
 * them over) and secret key files (kb_key_load_secret()); every input goes
 * to both parsers */
/* fuzz-options: -max_len=70000 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include <errno.h>

#include "fuzz.h"
#include "keys_int.h"

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        /* the key file lives in memory: nothing touches the disk */
        memfd = memfd_create("fuzz-keyfile", MFD_CLOEXEC);
        if (memfd < 0)
                abort();
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
        return 0;
}

static void bundle(const uint8_t *data, size_t size)
{
        char err[256], *json;
        kb_bundle_t *b, *b2;
        kb_keyring_t *ring;
        kb_key_type_t t;
        size_t i, n;

        b = kb_bundle_parse((const char *)data, size, err, sizeof(err));
        if (!b) {
                FUZZ_CHECK(errno == EINVAL || errno == ENOMEM);
                FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
                return;
        }
        /* what parses serialises, and reads back the same */
        json = kb_bundle_to_json(b);
        FUZZ_CHECK(json != NULL);
        b2 = kb_bundle_parse(json, strlen(json), err, sizeof(err));
        FUZZ_CHECK(b2 != NULL);
        FUZZ_CHECK((kb_bundle_label(b) == NULL) ==
                   (kb_bundle_label(b2) == NULL));
        FUZZ_CHECK(!kb_bundle_label(b) ||
                   !strcmp(kb_bundle_label(b), kb_bundle_label(b2)));
        ring = kb_keyring_new();
        FUZZ_CHECK(ring != NULL);
        for (t = KB_KEY_BOX; t <= KB_KEY_SIGN; t++) {
                n = kb_bundle_count(b, t);
                FUZZ_CHECK(n == kb_bundle_count(b2, t));
                for (i = 0; i < n; i++) {
                        const kb_key_t *k = kb_bundle_get(b, t, i);
                        const kb_key_t *k2 = kb_bundle_get(b2, t, i);
                        char id[KB_KEYID_BYTES];
                        FUZZ_CHECK(k && k2);
                        FUZZ_CHECK(kb_key_type(k) == t);
                        FUZZ_CHECK(!kb_key_has_secret(k));
                        FUZZ_CHECK(
                            !memcmp(kb_key_public(k), kb_key_public(k2), 32));
                        kb_key_id_derive(t, kb_key_public(k), id);
                        FUZZ_CHECK(!strcmp(id, kb_key_id(k)));
                }
                FUZZ_CHECK(kb_bundle_get(b, t, n) == NULL);
                FUZZ_CHECK(kb_keyring_add_bundle(ring, b, t, "owner") == KB_OK);
        }
        FUZZ_CHECK(kb_keyring_count(ring) ==
                   kb_bundle_count(b, KB_KEY_BOX) +
                       kb_bundle_count(b, KB_KEY_SIGN));
        kb_keyring_destroy(ring);
        kb_bundle_destroy(b2);
        kb_bundle_destroy(b);
        free(json);
}

static void keyfile(const uint8_t *data, size_t size)
{
        unsigned char secret[32];
        char err[512], id[KB_KEYID_BYTES];
        kb_key_t *k, *k2;

        if (ftruncate(memfd, 0) != 0 ||
            (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
                abort();
        /* no passphrase: an encrypted file is checked up to the key
         * derivation, which is libsodium's (and costs a second a run) */
        k = kb_key_load_secret(memfd_path, NULL, 0, err, sizeof(err));
        if (!k) {
                FUZZ_CHECK(errno == EINVAL || errno == ENOMEM ||
                           errno == EFBIG);
                return;
        }
        /* a loaded key is a pair whose id and public half match its secret
         */
        FUZZ_CHECK(kb_key_has_secret(k));
        kb_key_id_derive(kb_key_type(k), kb_key_public(k), id);
        FUZZ_CHECK(!strcmp(id, kb_key_id(k)));
        FUZZ_CHECK(kb_keyint_export_secret(k, secret) == KB_OK);
        k2 = kb_keyint_from_secret(kb_key_type(k), secret);
        FUZZ_CHECK(k2 != NULL);
        FUZZ_CHECK(!memcmp(kb_key_public(k), kb_key_public(k2), 32));
        kb_key_destroy(k2);
        kb_key_destroy(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        bundle(data, size);
        keyfile(data, size);
        return 0;
}
