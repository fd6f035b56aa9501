/* cmd_inspect.c -- `kyc-bridge inspect`: verify and open an envelope, print it
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cmd.h"
#include "json.h"
#include "jwt.h"
#include "keys_int.h"
#include "kyc_bridge.h"
#include "utf8.h"
#include "util.h"

#define MAX_KEYS 32

static void usage(FILE *fp)
{
        /* clang-format off */
        fprintf(fp,
"Usage: kyc-bridge inspect [FILE|-] --app-id ID --box-key FILE [--box-key FILE...]\n"
"                          --signer APP_ID=BUNDLE.pub.json [--signer ...]\n"
"                          [--passphrase-env VAR | --passphrase-file FILE]\n"
"                          [--now UNIX] [--show-token] [--json]\n"
"       kyc-bridge inspect --header-only [FILE|-] [--json]\n"
"\n"
"Verifies and opens one share envelope (format v1, docs/envelope.md) read from\n"
"FILE, or from standard input when FILE is '-' or absent, exactly as an\n"
"importer would, and prints its header and its signed fields. The share token\n"
"is shown as a digest (d:...) and its length, followed by the claims of the\n"
"token decoded WITHOUT verification (only the vendor can verify a token);\n"
"the token itself is printed only with --show-token.\n"
"\n"
"With --header-only, prints the unencrypted header only: no keys are needed\n"
"and nothing is verified.\n"
"\n"
"Options:\n"
"  --app-id ID              your application id: envelopes for another\n"
"                           application are refused (KB_ERR_NOT_FOR_US)\n"
"  --box-key FILE           your X25519 secret key file (NAME.box.key); repeat\n"
"                           for every key still in use during a rotation\n"
"  --signer APP_ID=BUNDLE   accept the signing keys of BUNDLE (a .pub.json\n"
"                           file) as keys of issuer application APP_ID;\n"
"                           repeat for every issuer\n"
"  --passphrase-env VAR     passphrase of encrypted box key files, taken from\n"
"                           environment variable VAR\n"
"  --passphrase-file FILE   the same, read from FILE\n"
"  --now UNIX               check expiry against this time (unix seconds)\n"
"                           instead of the clock\n"
"  --show-token             also print the share token (a bearer credential:\n"
"                           whoever holds it can import the session)\n"
"  --json                   print one JSON object instead of text\n"
"  --header-only            see above\n"
"  -h, --help               this text\n"
"\n"
"On failure prints 'inspect: <error name>: <description>' (and the share_id\n"
"when the header could be read) to standard error; with --json, standard\n"
"output also gets {\"ok\":false,\"error\":...}.\n"
"Exit status: 0 opened (or header read), 1 the envelope was refused or could\n"
"not be read, 2 usage or key/configuration error.\n");
        /* clang-format on */
}

typedef struct {
        const char *app_id;
        const char *box_keys[MAX_KEYS];
        int nbox;
        const char *signers[MAX_KEYS];
        int nsigners;
        const char *pass_env, *pass_file;
        const char *input;
        int64_t now;
        int have_now, show_token, json, header_only;
} inspect_opts_t;

/*
 * Reads at most KB_ENVELOPE_MAX_BYTES + 3 bytes: enough for the library to
 * tell "too large" without holding an arbitrarily large input. One trailing
 * newline of a complete file (as `echo` or an editor leaves it) is not part
 * of the envelope: a Kafka record value has none.
 */
static char *read_input(const char *path, size_t *len)
{
        size_t cap = KB_ENVELOPE_MAX_BYTES + 3, off = 0;
        char *buf = malloc(cap + 1);
        int fd = 0, eof = 0;

        if (!buf) {
                fprintf(stderr, "inspect: out of memory\n");
                return NULL;
        }
        if (path && strcmp(path, "-") != 0) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd == -1) {
                        fprintf(stderr, "inspect: %s: %s\n", path,
                                strerror(errno));
                        free(buf);
                        return NULL;
                }
        }
        while (off < cap) {
                ssize_t r = read(fd, buf + off, cap - off);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        fprintf(stderr, "inspect: %s: %s\n",
                                fd ? path : "stdin", strerror(errno));
                        if (fd)
                                close(fd);
                        free(buf);
                        return NULL;
                }
                if (r == 0) {
                        eof = 1;
                        break;
                }
                off += (size_t)r;
        }
        if (fd)
                close(fd);
        if (eof && off > 0 && buf[off - 1] == '\n') {
                off--;
                if (off > 0 && buf[off - 1] == '\r')
                        off--;
        }
        buf[off] = '\0';
        *len = off;
        return buf;
}

static void iso_time(int64_t t, char out[32])
{
        struct tm tm;
        time_t tt = (time_t)t;

        if (!gmtime_r(&tt, &tm) ||
            !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
                kb_strlcpy(out, "?", 32);
}

/* Prints @p s with control characters, broken UTF-8 and '\\' escaped as
 * \\xNN, for untrusted text. */
static void print_escaped(const char *s, size_t len)
{
        kb_buf_t b = KB_BUF_INIT;

        if (kb_utf8_escape_text(&b, s, len, KB_UTF8_ESC_BACKSLASH) == 0 &&
            b.len)
                fwrite(b.data, 1, b.len, stdout);
        kb_buf_free(&b, 1);
}

static void print_row(const char *name, const char *val)
{
        printf("  %-22s %s\n", name, val);
}

static void print_time_row(const char *name, int64_t t)
{
        char iso[32];

        iso_time(t, iso);
        printf("  %-22s %lld (%s)\n", name, (long long)t, iso);
}

static void print_header_text(const kb_envelope_header_t *hdr)
{
        char v[16];

        printf("header:\n");
        kb_snprintf(v, sizeof(v), "%d", hdr->version);
        print_row("v", v);
        print_row("for_application_id", hdr->for_application_id);
        print_row("recipient_key_id", hdr->recipient_key_id);
        print_row("signer_key_id", hdr->signer_key_id);
        print_row("share_id", hdr->share_id);
        print_time_row("expires_at", hdr->expires_at);
}

static json_object *header_json(const kb_envelope_header_t *hdr)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        kb_json_add_i64(o, "v", hdr->version);
        kb_json_add_str(o, "for_application_id", hdr->for_application_id);
        kb_json_add_str(o, "recipient_key_id", hdr->recipient_key_id);
        kb_json_add_str(o, "signer_key_id", hdr->signer_key_id);
        kb_json_add_str(o, "share_id", hdr->share_id);
        kb_json_add_i64(o, "expires_at", hdr->expires_at);
        return o;
}

static json_object *fields_json(const kb_envelope_fields_t *f)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        kb_json_add_str(o, "issuer_application_id", f->issuer_application_id);
        kb_json_add_str(o, "for_application_id", f->for_application_id);
        kb_json_add_str(o, "recipient_key_id", f->recipient_key_id);
        kb_json_add_str(o, "signer_key_id", f->signer_key_id);
        kb_json_add_str(o, "share_id", f->share_id);
        kb_json_add_str(o, "session_kind",
                        kb_session_kind2str(f->session_kind));
        kb_json_add_str(o, "source_session_id", f->source_session_id);
        if (f->vendor_data_hint[0])
                kb_json_add_str(o, "vendor_data_hint", f->vendor_data_hint);
        kb_json_add_i64(o, "created_at", f->created_at);
        kb_json_add_i64(o, "expires_at", f->expires_at);
        return o;
}

static void print_json(json_object *o)
{
        size_t len = 0;
        const char *s = kb_json_str(o, &len);

        if (s)
                printf("%s\n", s);
}

/* Prints a failure; returns the exit status for it. */
static int fail(const inspect_opts_t *o, int err,
                const kb_envelope_header_t *hdr)
{
        json_object *j;

        if (hdr && hdr->valid)
                fprintf(stderr, "inspect: %s: %s; share_id=%s\n",
                        kb_err2name(err), kb_err2str(err), hdr->share_id);
        else
                fprintf(stderr, "inspect: %s: %s\n", kb_err2name(err),
                        kb_err2str(err));
        if (o->json && (j = json_object_new_object()) != NULL) {
                json_object_object_add(j, "ok", json_object_new_boolean(0));
                kb_json_add_str(j, "error", kb_err2name(err));
                kb_json_add_str(j, "message", kb_err2str(err));
                if (hdr && hdr->valid)
                        kb_json_add_str(j, "share_id", hdr->share_id);
                print_json(j);
                json_object_put(j);
        }
        return KB_EXIT_FAIL;
}

static int run_header_only(const inspect_opts_t *o, const char *env, size_t len)
{
        kb_envelope_header_t hdr;
        json_object *j;
        int rc = kb_envelope_peek(env, len, &hdr);

        if (rc != KB_OK)
                return fail(o, rc, &hdr);
        if (o->json) {
                j = json_object_new_object();
                if (!j)
                        return KB_EXIT_FAIL;
                json_object_object_add(j, "ok", json_object_new_boolean(1));
                json_object_object_add(j, "verified",
                                       json_object_new_boolean(0));
                json_object_object_add(j, "header", header_json(&hdr));
                print_json(j);
                json_object_put(j);
        } else {
                printf("envelope: header only (NOT verified, nothing "
                       "decrypted)\n");
                print_header_text(&hdr);
        }
        return KB_EXIT_OK;
}

/* Hints the unverified token claims give that disagree with the envelope. */
static void claim_notes(json_object *claims, const kb_envelope_fields_t *f,
                        json_object *notes)
{
        const char *s;
        int64_t exp;
        char buf[160];

        if (kb_json_get_i64(claims, "exp", &exp) == 0 && exp != f->expires_at) {
                kb_snprintf(buf, sizeof(buf),
                            "token exp %lld differs from envelope expires_at "
                            "%lld",
                            (long long)exp, (long long)f->expires_at);
                json_object_array_add(notes, json_object_new_string(buf));
        }
        s = kb_json_get_str(claims, "for_application_id");
        if (s && strcmp(s, f->for_application_id) != 0)
                json_object_array_add(
                    notes,
                    json_object_new_string("token for_application_id differs "
                                           "from the envelope's"));
        s = kb_json_get_str(claims, "session_kind");
        if (!s)
                s = "user"; /* older tokens: no claim means user */
        if (strcmp(s, kb_session_kind2str(f->session_kind)) != 0)
                json_object_array_add(notes,
                                      json_object_new_string(
                                          "token session_kind differs from the "
                                          "envelope's"));
        s = kb_json_get_str(claims, "session_id");
        if (s && strcmp(s, f->source_session_id) != 0)
                json_object_array_add(
                    notes,
                    json_object_new_string("token session_id differs from the "
                                           "envelope's source_session_id"));
}

static void print_claims_text(json_object *claims)
{
        struct json_object_iterator it = json_object_iter_begin(claims);
        struct json_object_iterator end = json_object_iter_end(claims);

        while (!json_object_iter_equal(&it, &end)) {
                const char *name = json_object_iter_peek_name(&it);
                json_object *v = json_object_iter_peek_value(&it);
                const char *s;
                size_t len = 0;

                printf("  ");
                print_escaped(name, strlen(name));
                printf("%*s", (int)(strlen(name) < 22 ? 23 - strlen(name) : 1),
                       "");
                if (json_object_is_type(v, json_type_string)) {
                        print_escaped(json_object_get_string(v),
                                      (size_t)json_object_get_string_len(v));
                } else {
                        s = kb_json_str(v, &len);
                        print_escaped(s ? s : "?", s ? len : 1);
                }
                if (json_object_is_type(v, json_type_int) &&
                    (!strcmp(name, "iat") || !strcmp(name, "exp") ||
                     !strcmp(name, "nbf"))) {
                        char iso[32];
                        iso_time(json_object_get_int64(v), iso);
                        printf(" (%s)", iso);
                }
                printf("\n");
                json_object_iter_next(&it);
        }
}

static int print_opened(const inspect_opts_t *o,
                        const kb_envelope_header_t *hdr,
                        const kb_envelope_fields_t *f, const char *token,
                        size_t token_len)
{
        char digest[KB_DIGEST_STR_BYTES], iso[32], len_s[32];
        json_object *claims = NULL, *notes = json_object_new_array(), *j, *t;
        size_t i;
        int crc;

        if (!notes)
                return KB_EXIT_FAIL;
        kb_digest_str(token, token_len, digest);
        crc = kb_jwt_decode_unverified(token, token_len, &claims);
        if (crc == KB_OK)
                claim_notes(claims, f, notes);
        if (o->json) {
                j = json_object_new_object();
                t = json_object_new_object();
                if (!j || !t) {
                        json_object_put(j);
                        json_object_put(t);
                        json_object_put(claims);
                        json_object_put(notes);
                        return KB_EXIT_FAIL;
                }
                json_object_object_add(j, "ok", json_object_new_boolean(1));
                json_object_object_add(j, "verified",
                                       json_object_new_boolean(1));
                kb_json_add_i64(j, "now", o->now);
                json_object_object_add(j, "header", header_json(hdr));
                json_object_object_add(j, "signed", fields_json(f));
                kb_json_add_str(t, "digest", digest);
                kb_json_add_i64(t, "length", (int64_t)token_len);
                json_object_object_add(t, "claims_unverified", claims);
                claims = NULL;
                if (o->show_token)
                        json_object_object_add(
                            t, "value",
                            json_object_new_string_len(token, (int)token_len));
                json_object_object_add(j, "share_token", t);
                json_object_object_add(j, "notes", notes);
                notes = NULL;
                print_json(j);
                /* the serialised copy of the token sits in j's buffer */
                if (o->show_token) {
                        size_t len = 0;
                        const char *s = kb_json_str(j, &len);
                        if (s)
                                sodium_memzero((char *)s, len);
                }
                json_object_put(j);
                return KB_EXIT_OK;
        }
        iso_time(o->now, iso);
        printf("envelope: OK (signature verified, sealed to our key, "
               "addressed to us, not expired at %s)\n",
               iso);
        print_header_text(hdr);
        printf("signed:\n");
        print_row("issuer_application_id", f->issuer_application_id);
        print_row("for_application_id", f->for_application_id);
        print_row("recipient_key_id", f->recipient_key_id);
        print_row("signer_key_id", f->signer_key_id);
        print_row("share_id", f->share_id);
        print_row("session_kind", kb_session_kind2str(f->session_kind));
        print_row("source_session_id", f->source_session_id);
        print_row("vendor_data_hint",
                  f->vendor_data_hint[0] ? f->vendor_data_hint : "(none)");
        print_time_row("created_at", f->created_at);
        print_time_row("expires_at", f->expires_at);
        print_row("share_token_digest", digest);
        kb_snprintf(len_s, sizeof(len_s), "%zu bytes", token_len);
        print_row("share_token_length", len_s);
        if (o->show_token)
                print_row("share_token", token);
        else
                print_row("share_token", "(hidden; --show-token prints it)");
        if (crc == KB_OK) {
                printf("token claims (decoded, NOT verified: only the vendor "
                       "can verify a token):\n");
                print_claims_text(claims);
        } else {
                printf("token claims: not a decodable JWT (%s)\n",
                       kb_err2name(crc));
        }
        for (i = 0; i < json_object_array_length(notes); i++)
                printf("note: %s\n", json_object_get_string(
                                         json_object_array_get_idx(notes, i)));
        json_object_put(claims);
        json_object_put(notes);
        return KB_EXIT_OK;
}

/* Loads keys into the two rings; returns 0 or an exit status. */
static int load_keys(const inspect_opts_t *o, kb_keyring_t *box_keys,
                     kb_keyring_t *signers)
{
        char errstr[512], path[4096];
        char *pass = NULL;
        size_t pass_len = 0;
        int i, rc = KB_EXIT_USAGE, err;

        if ((o->pass_env || o->pass_file) &&
            kb_keyint_passphrase_read(o->pass_env, o->pass_file, &pass,
                                      &pass_len, errstr,
                                      sizeof(errstr)) != KB_OK) {
                fprintf(stderr, "inspect: %s\n", errstr);
                return KB_EXIT_USAGE;
        }
        for (i = 0; i < o->nbox; i++) {
                kb_key_t *key = kb_key_load_secret(
                    o->box_keys[i], pass, pass_len, errstr, sizeof(errstr));
                if (!key) {
                        fprintf(stderr, "inspect: %s\n", errstr);
                        goto out;
                }
                if (kb_key_type(key) != KB_KEY_BOX) {
                        fprintf(stderr,
                                "inspect: %s: not an x25519 (box) key\n",
                                o->box_keys[i]);
                        kb_key_destroy(key);
                        goto out;
                }
                err = kb_keyring_add(box_keys, key, NULL);
                if (err != KB_OK) {
                        fprintf(stderr, "inspect: %s: %s\n", o->box_keys[i],
                                err == KB_ERR_EXISTS ? "key given twice"
                                                     : kb_err2str(err));
                        kb_key_destroy(key);
                        goto out;
                }
        }
        for (i = 0; i < o->nsigners; i++) {
                const char *eq = strchr(o->signers[i], '=');
                char app[KB_ENVELOPE_MAX_ID + 1];
                kb_bundle_t *bundle;

                if (!eq || eq == o->signers[i] || !eq[1] ||
                    (size_t)(eq - o->signers[i]) > KB_ENVELOPE_MAX_ID) {
                        fprintf(stderr,
                                "inspect: --signer wants APP_ID=BUNDLE, got "
                                "'%s'\n",
                                o->signers[i]);
                        goto out;
                }
                kb_snprintf(app, sizeof(app), "%.*s", (int)(eq - o->signers[i]),
                            o->signers[i]);
                kb_strlcpy(path, eq + 1, sizeof(path));
                bundle = kb_bundle_load(path, errstr, sizeof(errstr));
                if (!bundle) {
                        fprintf(stderr, "inspect: %s\n", errstr);
                        goto out;
                }
                if (kb_bundle_count(bundle, KB_KEY_SIGN) == 0) {
                        fprintf(stderr,
                                "inspect: %s: no ed25519 (signing) "
                                "key in the bundle\n",
                                path);
                        kb_bundle_destroy(bundle);
                        goto out;
                }
                err = kb_keyring_add_bundle(signers, bundle, KB_KEY_SIGN, app);
                kb_bundle_destroy(bundle);
                if (err != KB_OK) {
                        fprintf(stderr, "inspect: %s: %s\n", path,
                                err == KB_ERR_EXISTS
                                    ? "a signing key of this bundle is "
                                      "already given for an issuer"
                                    : kb_err2str(err));
                        goto out;
                }
        }
        rc = 0;
out:
        kb_keyint_passphrase_free(pass);
        return rc;
}

static int run_open(const inspect_opts_t *o, const char *env, size_t len)
{
        kb_keyring_t *box_keys = kb_keyring_new(), *signers = kb_keyring_new();
        kb_envelope_opener_t opener;
        kb_envelope_header_t hdr;
        kb_envelope_fields_t fields;
        char *token = NULL;
        size_t token_len = 0;
        int rc, err;

        if (!box_keys || !signers) {
                fprintf(stderr, "inspect: out of memory\n");
                rc = KB_EXIT_FAIL;
                goto out;
        }
        rc = load_keys(o, box_keys, signers);
        if (rc != 0)
                goto out;
        opener.my_application_id = o->app_id;
        opener.box_keys = box_keys;
        opener.signers = signers;
        opener.now = o->now;
        err = kb_envelope_open(env, len, &opener, &hdr, &fields, &token,
                               &token_len);
        if (err != KB_OK) {
                rc = fail(o, err, &hdr);
                goto out;
        }
        rc = print_opened(o, &hdr, &fields, token, token_len);
out:
        kb_envelope_token_free(token);
        kb_keyring_destroy(box_keys);
        kb_keyring_destroy(signers);
        return rc;
}

int kb_cmd_inspect(int argc, char **argv)
{
        enum {
                O_APP = 256,
                O_BOX,
                O_SIGNER,
                O_PENV,
                O_PFILE,
                O_NOW,
                O_SHOW,
                O_JSON,
                O_HDR
        };
        static const struct option opts[] = {
                { "app-id", required_argument, NULL, O_APP },
                { "box-key", required_argument, NULL, O_BOX },
                { "signer", required_argument, NULL, O_SIGNER },
                { "passphrase-env", required_argument, NULL, O_PENV },
                { "passphrase-file", required_argument, NULL, O_PFILE },
                { "now", required_argument, NULL, O_NOW },
                { "show-token", no_argument, NULL, O_SHOW },
                { "json", no_argument, NULL, O_JSON },
                { "header-only", no_argument, NULL, O_HDR },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        inspect_opts_t o;
        char *env;
        size_t len = 0;
        int c, rc;

        memset(&o, 0, sizeof(o));
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case O_APP:
                        o.app_id = optarg;
                        break;
                case O_BOX:
                        if (o.nbox == MAX_KEYS) {
                                fprintf(stderr, "inspect: too many "
                                                "--box-key\n");
                                return KB_EXIT_USAGE;
                        }
                        o.box_keys[o.nbox++] = optarg;
                        break;
                case O_SIGNER:
                        if (o.nsigners == MAX_KEYS) {
                                fprintf(stderr, "inspect: too many "
                                                "--signer\n");
                                return KB_EXIT_USAGE;
                        }
                        o.signers[o.nsigners++] = optarg;
                        break;
                case O_PENV:
                        o.pass_env = optarg;
                        break;
                case O_PFILE:
                        o.pass_file = optarg;
                        break;
                case O_NOW:
                        if (kb_parse_i64(optarg, 0, INT64_C(9007199254740991),
                                         &o.now) == -1) {
                                fprintf(stderr, "inspect: --now wants unix "
                                                "seconds\n");
                                return KB_EXIT_USAGE;
                        }
                        o.have_now = 1;
                        break;
                case O_SHOW:
                        o.show_token = 1;
                        break;
                case O_JSON:
                        o.json = 1;
                        break;
                case O_HDR:
                        o.header_only = 1;
                        break;
                case 'h':
                        usage(stdout);
                        return KB_EXIT_OK;
                default:
                        fprintf(stderr,
                                "inspect: unknown or incomplete option '%s' "
                                "(see --help)\n",
                                argv[optind - 1]);
                        return KB_EXIT_USAGE;
                }
        }
        if (argc - optind > 1) {
                fprintf(stderr, "inspect: one envelope at a time (see "
                                "--help)\n");
                return KB_EXIT_USAGE;
        }
        if (optind < argc)
                o.input = argv[optind];
        if (o.header_only) {
                if (o.app_id || o.nbox || o.nsigners || o.pass_env ||
                    o.pass_file || o.have_now || o.show_token) {
                        fprintf(stderr, "inspect: --header-only takes only "
                                        "FILE and --json\n");
                        return KB_EXIT_USAGE;
                }
        } else {
                if (!o.app_id || !o.nbox || !o.nsigners) {
                        fprintf(stderr,
                                "inspect: --app-id, --box-key and --signer "
                                "are required (or --header-only; see "
                                "--help)\n");
                        return KB_EXIT_USAGE;
                }
                if (o.pass_env && o.pass_file) {
                        fprintf(stderr, "inspect: give --passphrase-env or "
                                        "--passphrase-file, not both\n");
                        return KB_EXIT_USAGE;
                }
                if (!o.have_now)
                        o.now = kb_time_now();
        }
        env = read_input(o.input, &len);
        if (!env)
                return KB_EXIT_FAIL;
        rc = o.header_only ? run_header_only(&o, env, len)
                           : run_open(&o, env, len);
        free(env);
        return rc;
}
