/* cmd_keygen.c -- `kyc-bridge keygen`: create key pairs, merge public bundles
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "keys_int.h"
#include "kyc_bridge.h"
#include "util.h"

#define NAME_MAX_LEN 64

static void usage(FILE *fp)
{
        /* clang-format off */
        fprintf(fp,
"Usage: kyc-bridge keygen --out-dir DIR --name NAME [--label TEXT]\n"
"                         [--passphrase-env VAR | --passphrase-file FILE]\n"
"       kyc-bridge keygen --merge OUT.pub.json IN1.pub.json IN2.pub.json...\n"
"                         [--label TEXT]\n"
"\n"
"Creates the two key pairs of one party:\n"
"  DIR/NAME.box.key   X25519 secret key (mode 0600). Opens the envelopes your\n"
"                     partners seal to you: keep it on your importer.\n"
"  DIR/NAME.sign.key  Ed25519 secret key (mode 0600). Signs the envelopes you\n"
"                     send: keep it on your issuer.\n"
"  DIR/NAME.pub.json  both public keys (mode 0644): give it to your partners.\n"
"Nothing is written when any of the three exists. DIR is created (mode 0700)\n"
"when missing; its parent must exist. Prints the key ids and the paths, one\n"
"key=value per line; never prints a secret. File formats: docs/keys.md.\n"
"\n"
"With --merge, writes OUT, a public key bundle holding the keys of IN1, then\n"
"those of IN2, and so on (a key already taken is skipped). For rotation, name\n"
"the bundle with the new keys first: senders seal to the first box key, and\n"
"receivers accept every listed signing key. OUT must not exist. Its label is\n"
"--label, else IN1's label.\n"
"\n"
"Options:\n"
"  --out-dir DIR           directory for the three files\n"
"  --name NAME             file name stem: 1..%d of [A-Za-z0-9._-], not\n"
"                          starting with '.'\n"
"  --label TEXT            free text for the public bundle, e.g. who you are\n"
"                          (1..256 bytes, no control characters)\n"
"  --passphrase-env VAR    encrypt both secret key files with the passphrase\n"
"                          held in environment variable VAR (Argon2id)\n"
"  --passphrase-file FILE  the same, passphrase read from FILE (one trailing\n"
"                          newline is not part of it)\n"
"  --merge OUT             merge mode, see above\n"
"  -h, --help              this text\n"
"\n"
"Exit status: 0 done, 1 failure (nothing left half-written), 2 usage error.\n",
                NAME_MAX_LEN);
        /* clang-format on */
}

static int name_ok(const char *name)
{
        size_t i, len = strlen(name);

        if (len == 0 || len > NAME_MAX_LEN || name[0] == '.')
                return 0;
        for (i = 0; i < len; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return 0;
        }
        return 1;
}

static int path_exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Creates @p dir (0700) unless it exists as a directory. */
static int ensure_dir(const char *dir)
{
        struct stat st;

        if (stat(dir, &st) == 0) {
                if (S_ISDIR(st.st_mode))
                        return 0;
                fprintf(stderr, "keygen: %s: not a directory\n", dir);
                return -1;
        }
        if (errno != ENOENT || mkdir(dir, 0700) == -1) {
                fprintf(stderr, "keygen: %s: %s\n", dir, strerror(errno));
                return -1;
        }
        return 0;
}

static int write_bundle(const kb_bundle_t *bundle, const char *path)
{
        char *json = kb_bundle_to_json(bundle);
        int rc = 0;

        if (!json) {
                fprintf(stderr, "keygen: out of memory\n");
                return -1;
        }
        if (kb_write_file_excl(path, json, strlen(json), 0644) == -1) {
                fprintf(stderr, "keygen: %s: %s\n", path,
                        errno == EEXIST ? "already exists (refusing to "
                                          "overwrite)"
                                        : strerror(errno));
                rc = -1;
        }
        free(json);
        return rc;
}

static int do_generate(const char *dir, const char *name, const char *label,
                       const char *pass_env, const char *pass_file)
{
        char paths[3][PATH_MAX];
        static const char *const suffix[3] = { ".box.key", ".sign.key",
                                               ".pub.json" };
        char errstr[512];
        char *pass = NULL;
        size_t pass_len = 0, i;
        int written = 0, rc = KB_EXIT_FAIL;
        kb_key_t *box = NULL, *sign = NULL;
        kb_bundle_t *bundle = NULL;

        for (i = 0; i < 3; i++) {
                int n = snprintf(paths[i], sizeof(paths[i]), "%s/%s%s", dir,
                                 name, suffix[i]);
                if (n < 0 || (size_t)n >= sizeof(paths[i])) {
                        fprintf(stderr, "keygen: path too long\n");
                        return KB_EXIT_USAGE;
                }
        }
        if ((pass_env || pass_file) &&
            kb_keyint_passphrase_read(pass_env, pass_file, &pass, &pass_len,
                                      errstr, sizeof(errstr)) != KB_OK) {
                fprintf(stderr, "keygen: %s\n", errstr);
                return KB_EXIT_USAGE;
        }
        if (ensure_dir(dir) == -1)
                goto out;
        for (i = 0; i < 3; i++)
                if (path_exists(paths[i])) {
                        fprintf(stderr,
                                "keygen: %s already exists; nothing written\n",
                                paths[i]);
                        goto out;
                }
        box = kb_key_generate(KB_KEY_BOX);
        sign = kb_key_generate(KB_KEY_SIGN);
        bundle = kb_bundle_new(label);
        if (!box || !sign || !bundle || kb_bundle_add(bundle, box) != KB_OK ||
            kb_bundle_add(bundle, sign) != KB_OK) {
                fprintf(stderr,
                        "keygen: cannot create keys (out of memory?)\n");
                goto out;
        }
        if (kb_key_save_secret(box, paths[0], pass, pass_len, errstr,
                               sizeof(errstr)) != KB_OK) {
                fprintf(stderr, "keygen: %s\n", errstr);
                goto out;
        }
        written = 1;
        if (kb_key_save_secret(sign, paths[1], pass, pass_len, errstr,
                               sizeof(errstr)) != KB_OK) {
                fprintf(stderr, "keygen: %s\n", errstr);
                goto out;
        }
        written = 2;
        if (write_bundle(bundle, paths[2]) == -1)
                goto out;
        written = 3;
        printf("box_key_id=%s\n"
               "box_key_file=%s\n"
               "sign_key_id=%s\n"
               "sign_key_file=%s\n"
               "public_keys_file=%s\n"
               "encrypted=%s\n",
               kb_key_id(box), paths[0], kb_key_id(sign), paths[1], paths[2],
               pass ? "yes" : "no");
        rc = KB_EXIT_OK;
out:
        /* all three or none: remove what this run created */
        if (written < 3)
                for (i = 0; i < (size_t)written; i++)
                        unlink(paths[i]);
        kb_key_destroy(box);
        kb_key_destroy(sign);
        kb_bundle_destroy(bundle);
        kb_keyint_passphrase_free(pass);
        return rc;
}

static int do_merge(const char *out, char **inputs, int ninputs,
                    const char *label)
{
        static const kb_key_type_t types[2] = { KB_KEY_BOX, KB_KEY_SIGN };
        kb_bundle_t *in = NULL, *merged = NULL;
        char errstr[512];
        int i, t, rc = KB_EXIT_FAIL;
        size_t k;

        if (path_exists(out)) {
                fprintf(stderr,
                        "keygen: %s already exists (refusing to "
                        "overwrite)\n",
                        out);
                return KB_EXIT_FAIL;
        }
        for (i = 0; i < ninputs; i++) {
                in = kb_bundle_load(inputs[i], errstr, sizeof(errstr));
                if (!in) {
                        fprintf(stderr, "keygen: %s\n", errstr);
                        goto out;
                }
                if (!merged) {
                        merged =
                            kb_bundle_new(label ? label : kb_bundle_label(in));
                        if (!merged) {
                                fprintf(stderr, "keygen: out of memory\n");
                                goto out;
                        }
                }
                for (t = 0; t < 2; t++)
                        for (k = 0; k < kb_bundle_count(in, types[t]); k++) {
                                const kb_key_t *key =
                                    kb_bundle_get(in, types[t], k);
                                int err = kb_bundle_add(merged, key);
                                if (err == KB_ERR_EXISTS) {
                                        fprintf(stderr,
                                                "keygen: %s: key %s already "
                                                "taken, skipped\n",
                                                inputs[i], kb_key_id(key));
                                } else if (err != KB_OK) {
                                        fprintf(stderr, "keygen: %s: %s\n",
                                                inputs[i], kb_err2str(err));
                                        goto out;
                                }
                        }
                kb_bundle_destroy(in);
                in = NULL;
        }
        if (write_bundle(merged, out) == -1)
                goto out;
        printf("public_keys_file=%s\n", out);
        for (t = 0; t < 2; t++) {
                printf("%s_key_ids=", types[t] == KB_KEY_BOX ? "box" : "sign");
                for (k = 0; k < kb_bundle_count(merged, types[t]); k++)
                        printf("%s%s", k ? "," : "",
                               kb_key_id(kb_bundle_get(merged, types[t], k)));
                printf("\n");
        }
        rc = KB_EXIT_OK;
out:
        kb_bundle_destroy(in);
        kb_bundle_destroy(merged);
        return rc;
}

int kb_cmd_keygen(int argc, char **argv)
{
        enum { O_OUTDIR = 256, O_NAME, O_LABEL, O_PENV, O_PFILE, O_MERGE };
        static const struct option opts[] = {
                { "out-dir", required_argument, NULL, O_OUTDIR },
                { "name", required_argument, NULL, O_NAME },
                { "label", required_argument, NULL, O_LABEL },
                { "passphrase-env", required_argument, NULL, O_PENV },
                { "passphrase-file", required_argument, NULL, O_PFILE },
                { "merge", required_argument, NULL, O_MERGE },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        const char *dir = NULL, *name = NULL, *label = NULL, *penv = NULL,
                   *pfile = NULL, *merge = NULL;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case O_OUTDIR:
                        dir = optarg;
                        break;
                case O_NAME:
                        name = optarg;
                        break;
                case O_LABEL:
                        label = optarg;
                        break;
                case O_PENV:
                        penv = optarg;
                        break;
                case O_PFILE:
                        pfile = optarg;
                        break;
                case O_MERGE:
                        merge = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return KB_EXIT_OK;
                default:
                        fprintf(stderr,
                                "keygen: unknown or incomplete option '%s' "
                                "(see --help)\n",
                                argv[optind - 1]);
                        return KB_EXIT_USAGE;
                }
        }
        if (label && (strlen(label) == 0 || strlen(label) > 256 ||
                      !kb_utf8_is_text(label, strlen(label)))) {
                fprintf(stderr, "keygen: --label must be 1..256 bytes of "
                                "UTF-8 text without control characters\n");
                return KB_EXIT_USAGE;
        }
        if (merge) {
                if (dir || name || penv || pfile) {
                        fprintf(stderr, "keygen: --merge takes only --label "
                                        "and input files (see --help)\n");
                        return KB_EXIT_USAGE;
                }
                if (argc - optind < 2) {
                        fprintf(stderr, "keygen: --merge needs at least two "
                                        "input bundles\n");
                        return KB_EXIT_USAGE;
                }
                return do_merge(merge, argv + optind, argc - optind, label);
        }
        if (optind < argc) {
                fprintf(stderr,
                        "keygen: unexpected argument '%s' (see "
                        "--help)\n",
                        argv[optind]);
                return KB_EXIT_USAGE;
        }
        if (!dir || !name) {
                fprintf(stderr, "keygen: --out-dir and --name are required "
                                "(see --help)\n");
                return KB_EXIT_USAGE;
        }
        if (!name_ok(name)) {
                fprintf(stderr,
                        "keygen: --name must be 1..%d of "
                        "[A-Za-z0-9._-], not starting with '.'\n",
                        NAME_MAX_LEN);
                return KB_EXIT_USAGE;
        }
        if (penv && pfile) {
                fprintf(stderr, "keygen: give --passphrase-env or "
                                "--passphrase-file, not both\n");
                return KB_EXIT_USAGE;
        }
        return do_generate(dir, name, label, penv, pfile);
}
