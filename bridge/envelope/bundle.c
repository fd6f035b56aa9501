/* bundle.c -- public key bundles (kyc-bridge-public-keys/1 JSON files) */
#include "kyc_bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "json.h"
#include "util.h"

#define BUNDLE_FORMAT    "kyc-bridge-public-keys/1"
#define BUNDLE_MAX_KEYS  64U
#define BUNDLE_MAX_LABEL 256U         /* bytes */
#define BUNDLE_MAX_FILE  (64U * 1024) /* bytes */

struct kb_bundle_s {
        char *label;     /* NULL when none */
        kb_key_t **keys; /* in file order: newest first within each type */
        size_t n;
};

static int label_ok(const char *label)
{
        size_t len = strlen(label);

        return len > 0 && len <= BUNDLE_MAX_LABEL &&
               kb_utf8_is_text(label, len);
}

kb_bundle_t *kb_bundle_new(const char *label)
{
        kb_bundle_t *bundle;

        if (label && !label_ok(label)) {
                errno = EINVAL;
                return NULL;
        }
        bundle = calloc(1, sizeof(*bundle));
        if (!bundle) {
                errno = ENOMEM;
                return NULL;
        }
        bundle->keys = calloc(BUNDLE_MAX_KEYS, sizeof(*bundle->keys));
        if (!bundle->keys || (label && !(bundle->label = strdup(label)))) {
                kb_bundle_destroy(bundle);
                errno = ENOMEM;
                return NULL;
        }
        return bundle;
}

void kb_bundle_destroy(kb_bundle_t *bundle)
{
        size_t i;

        if (!bundle)
                return;
        for (i = 0; i < bundle->n; i++)
                kb_key_destroy(bundle->keys[i]);
        free(bundle->keys);
        free(bundle->label);
        free(bundle);
}

const char *kb_bundle_label(const kb_bundle_t *bundle)
{
        return bundle->label;
}

static int bundle_has(const kb_bundle_t *bundle, const char *key_id)
{
        size_t i;

        for (i = 0; i < bundle->n; i++)
                if (!strcmp(kb_key_id(bundle->keys[i]), key_id))
                        return 1;
        return 0;
}

int kb_bundle_add(kb_bundle_t *bundle, const kb_key_t *key)
{
        kb_key_t *copy;

        if (!bundle || !key)
                return KB_ERR_INVALID_ARG;
        if (bundle_has(bundle, kb_key_id(key)))
                return KB_ERR_EXISTS;
        if (bundle->n == BUNDLE_MAX_KEYS)
                return KB_ERR_TOO_LARGE;
        copy = kb_key_from_public(kb_key_type(key), kb_key_public(key));
        if (!copy)
                return KB_ERR_NOMEM;
        bundle->keys[bundle->n++] = copy;
        return KB_OK;
}

size_t kb_bundle_count(const kb_bundle_t *bundle, kb_key_type_t type)
{
        size_t i, n = 0;

        for (i = 0; i < bundle->n; i++)
                n += kb_key_type(bundle->keys[i]) == type;
        return n;
}

const kb_key_t *kb_bundle_get(const kb_bundle_t *bundle, kb_key_type_t type,
                              size_t idx)
{
        size_t i;

        for (i = 0; i < bundle->n; i++)
                if (kb_key_type(bundle->keys[i]) == type && idx-- == 0)
                        return bundle->keys[i];
        return NULL;
}

char *kb_bundle_to_json(const kb_bundle_t *bundle)
{
        json_object *root = NULL, *arr, *ent;
        char pk64[64];
        const char *txt;
        char *out = NULL;
        size_t i, len;

        if (!bundle)
                return NULL;
        root = json_object_new_object();
        arr = json_object_new_array();
        if (!root || !arr) {
                json_object_put(arr);
                goto out;
        }
        /* member order: format, label, keys */
        if (kb_json_add_str(root, "format", BUNDLE_FORMAT) == -1 ||
            kb_json_add_str(root, "label", bundle->label) == -1 ||
            json_object_object_add(root, "keys", arr) != 0) {
                json_object_put(arr);
                goto out;
        }
        for (i = 0; i < bundle->n; i++) {
                const kb_key_t *key = bundle->keys[i];
                ent = json_object_new_object();
                if (!ent || json_object_array_add(arr, ent) != 0) {
                        json_object_put(ent);
                        goto out;
                }
                sodium_bin2base64(pk64, sizeof(pk64), kb_key_public(key), 32,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
                if (kb_json_add_str(ent, "type",
                                    kb_key_type(key) == KB_KEY_BOX
                                        ? "x25519"
                                        : "ed25519") == -1 ||
                    kb_json_add_str(ent, "key_id", kb_key_id(key)) == -1 ||
                    kb_json_add_str(ent, "public_key", pk64) == -1)
                        goto out;
        }
        txt = json_object_to_json_string_length(
            root,
            JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                JSON_C_TO_STRING_NOSLASHESCAPE,
            &len);
        if (!txt)
                goto out;
        out = malloc(len + 2);
        if (!out)
                goto out;
        memcpy(out, txt, len);
        out[len] = '\n';
        out[len + 1] = '\0';
out:
        json_object_put(root);
        return out;
}

/* Parses one element of "keys". NULL with *e = EINVAL (a bad entry) or
 * ENOMEM. */
static kb_key_t *parse_key(json_object *ent, size_t idx, int *e, char *errstr,
                           size_t errstr_size)
{
        const char *type, *id, *pk64, *end = NULL;
        unsigned char pk[32];
        char derived[KB_KEYID_BYTES];
        size_t pklen = 0;
        kb_key_type_t t;
        kb_key_t *key;

        *e = EINVAL;
        if (!json_object_is_type(ent, json_type_object) ||
            json_object_object_length(ent) != 3 ||
            !(type = kb_json_get_str(ent, "type")) ||
            !(id = kb_json_get_str(ent, "key_id")) ||
            !(pk64 = kb_json_get_str(ent, "public_key"))) {
                kb_snprintf(errstr, errstr_size,
                            "keys[%zu]: expected exactly the string members "
                            "type, key_id, public_key",
                            idx);
                return NULL;
        }
        /* a "\u0000" inside a value must not pass as a shorter string */
        if (strlen(type) !=
                (size_t)json_object_get_string_len(kb_json_get(ent, "type")) ||
            strlen(id) != (size_t)json_object_get_string_len(
                              kb_json_get(ent, "key_id")) ||
            strlen(pk64) != (size_t)json_object_get_string_len(
                                kb_json_get(ent, "public_key"))) {
                kb_snprintf(errstr, errstr_size, "keys[%zu]: NUL in a value",
                            idx);
                return NULL;
        }
        if (!strcmp(type, "x25519")) {
                t = KB_KEY_BOX;
        } else if (!strcmp(type, "ed25519")) {
                t = KB_KEY_SIGN;
        } else {
                kb_snprintf(errstr, errstr_size,
                            "keys[%zu]: type must be x25519 or ed25519", idx);
                return NULL;
        }
        if (sodium_base642bin(pk, sizeof(pk), pk64, strlen(pk64), NULL, &pklen,
                              &end,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            pklen != sizeof(pk) || end != pk64 + strlen(pk64)) {
                kb_snprintf(errstr, errstr_size,
                            "keys[%zu]: public_key must be 32 bytes of "
                            "unpadded base64url",
                            idx);
                return NULL;
        }
        kb_key_id_derive(t, pk, derived);
        if (strcmp(derived, id) != 0) {
                kb_snprintf(errstr, errstr_size,
                            "keys[%zu]: key_id does not match public_key", idx);
                return NULL;
        }
        key = kb_key_from_public(t, pk);
        if (!key) {
                *e = errno == ENOMEM ? ENOMEM : EINVAL;
                kb_snprintf(errstr, errstr_size, "%s",
                            *e == ENOMEM ? "out of memory" : "bad key");
        }
        return key;
}

kb_bundle_t *kb_bundle_parse(const char *json, size_t len, char *errstr,
                             size_t errstr_size)
{
        json_object *root, *keys, *label;
        kb_bundle_t *bundle = NULL;
        const char *format;
        char jerr[128];
        size_t i, n, members = 2;
        kb_key_t *key;
        int rc, e = EINVAL; /* errno on failure: see kb_keys.h */

        /* kb_json_parse() does not tell a syntax error from a failed
         * allocation; an allocation that failed leaves ENOMEM behind */
        errno = 0;
        root = kb_json_parse(json, len, 8, jerr, sizeof(jerr));
        if (!root) {
                e = errno == ENOMEM ? ENOMEM : EINVAL;
                kb_snprintf(errstr, errstr_size, "%s", jerr);
                errno = e;
                return NULL;
        }
        if (!json_object_is_type(root, json_type_object)) {
                kb_snprintf(errstr, errstr_size, "not a JSON object");
                goto fail;
        }
        format = kb_json_get_str(root, "format");
        if (!format || strcmp(format, BUNDLE_FORMAT) != 0) {
                kb_snprintf(errstr, errstr_size,
                            "format must be \"" BUNDLE_FORMAT "\"");
                goto fail;
        }
        label = kb_json_get(root, "label");
        if (label) {
                members++;
                if (!json_object_is_type(label, json_type_string) ||
                    !label_ok(json_object_get_string(label)) ||
                    strlen(json_object_get_string(label)) !=
                        (size_t)json_object_get_string_len(label)) {
                        kb_snprintf(errstr, errstr_size,
                                    "label must be 1..%u bytes of text "
                                    "without control characters",
                                    BUNDLE_MAX_LABEL);
                        goto fail;
                }
        }
        keys = kb_json_get(root, "keys");
        if (!keys || !json_object_is_type(keys, json_type_array)) {
                kb_snprintf(errstr, errstr_size, "keys must be an array");
                goto fail;
        }
        if ((size_t)json_object_object_length(root) != members) {
                kb_snprintf(errstr, errstr_size,
                            "unknown member (allowed: format, label, keys)");
                goto fail;
        }
        n = json_object_array_length(keys);
        if (n == 0 || n > BUNDLE_MAX_KEYS) {
                kb_snprintf(errstr, errstr_size, "keys must hold 1..%u entries",
                            BUNDLE_MAX_KEYS);
                goto fail;
        }
        bundle = kb_bundle_new(label ? json_object_get_string(label) : NULL);
        if (!bundle) {
                e = ENOMEM; /* the label is checked above */
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        for (i = 0; i < n; i++) {
                key = parse_key(json_object_array_get_idx(keys, i), i, &e,
                                errstr, errstr_size);
                if (!key)
                        goto fail;
                rc = kb_bundle_add(bundle, key);
                kb_key_destroy(key);
                if (rc != KB_OK) {
                        e = rc == KB_ERR_NOMEM ? ENOMEM : EINVAL;
                        kb_snprintf(errstr, errstr_size, "keys[%zu]: %s", i,
                                    rc == KB_ERR_EXISTS ? "duplicate key_id"
                                                        : kb_err2str(rc));
                        goto fail;
                }
        }
        json_object_put(root);
        return bundle;
fail:
        kb_bundle_destroy(bundle);
        json_object_put(root);
        errno = e;
        return NULL;
}

kb_bundle_t *kb_bundle_load(const char *path, char *errstr, size_t errstr_size)
{
        char reason[256];
        char *buf = NULL;
        size_t len = 0;
        kb_bundle_t *bundle;
        int e;

        if (!path) {
                kb_snprintf(errstr, errstr_size, "(null): no path");
                errno = EINVAL;
                return NULL;
        }
        if (kb_read_file(path, BUNDLE_MAX_FILE, &buf, &len) == -1) {
                e = errno ? errno : EIO; /* ENOMEM, EFBIG or the system's */
                kb_snprintf(errstr, errstr_size, "%s: %s", path,
                            e == EFBIG ? "file too large" : strerror(e));
                errno = e;
                return NULL;
        }
        bundle = kb_bundle_parse(buf, len, reason, sizeof(reason));
        e = errno;
        if (!bundle)
                kb_snprintf(errstr, errstr_size, "%s: %s", path, reason);
        free(buf);
        if (!bundle)
                errno = e;
        return bundle;
}
