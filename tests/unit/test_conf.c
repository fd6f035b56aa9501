/* test_conf.c -- unit tests for conf.c: files, validation, secrets, -X, dump */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "kyc_bridge.h"
#include "util.h"

#define UUID_A "123e4567-e89b-42d3-a456-426614174000"
#define UUID_B "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"

/* Known secret values: their bytes must never appear in any output. */
#define SECRET_ENV_VALUE   "Sx-env-0xC0FFEE-dont-print"
#define SECRET_FILE_VALUE  "Sx-file-0xBADCAFE-dont-print"
#define SECRET_KAFKA_VALUE "Sx-kafka-0xFEED-dont-print"

typedef struct {
        char dir[64];
        char path[PATH_MAX];
        char err[1024];
        kb_conf_t *conf;
} fx_t;

static int setup(void **state)
{
        fx_t *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        kb_strlcpy(f->dir, "/tmp/kb-test-conf-XXXXXX", sizeof(f->dir));
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        f->conf = kb_conf_new();
        if (!f->conf)
                return -1;
        setenv("KB_TEST_ENV_SECRET", SECRET_ENV_VALUE, 1);
        setenv("KB_TEST_KAFKA_SECRET", SECRET_KAFKA_VALUE, 1);
        unsetenv("KB_TEST_MISSING_VAR");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fx_t *f = *state;
        DIR *d = opendir(f->dir);
        struct dirent *de;
        char p[PATH_MAX];

        while (d && (de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                kb_snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
                (void)unlink(p);
        }
        if (d)
                closedir(d);
        (void)rmdir(f->dir);
        kb_conf_destroy(f->conf);
        free(f);
        return 0;
}

/* Writes @p text to DIR/@p name; the path goes to f->path (and is
 * returned). */
static const char *put_file(fx_t *f, const char *name, const char *text,
                            size_t len)
{
        FILE *fp;

        kb_snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
        fp = fopen(f->path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(text, 1, len, fp), len);
        assert_int_equal(fclose(fp), 0);
        return f->path;
}

static const char *put_conf(fx_t *f, const char *text)
{
        return put_file(f, "bridge.conf", text, strlen(text));
}

/* Loads @p text; returns the result code; the message is in f->err. */
static int load(fx_t *f, const char *text)
{
        f->err[0] = '\0';
        return kb_conf_load_file(f->conf, put_conf(f, text), f->err,
                                 sizeof(f->err));
}

/* Expects a load failure whose message is exactly "<path>:<rest>". */
static void expect_load_error(fx_t *f, const char *text, const char *rest)
{
        char want[PATH_MAX + 512];

        assert_int_equal(load(f, text), KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want), "%s:%s", f->path, rest);
        assert_string_equal(f->err, want);
}

/* Expects a load failure starting with "<path>:<prefix>". */
static void expect_load_error_prefix(fx_t *f, const char *text,
                                     const char *prefix)
{
        char want[PATH_MAX + 512];

        assert_int_equal(load(f, text), KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want), "%s:%s", f->path, prefix);
        if (strncmp(f->err, want, strlen(want)))
                fail_msg("error '%s' does not start with '%s'", f->err, want);
}

/* Fresh config between sub-cases of one test. */
static void reset_conf(fx_t *f)
{
        kb_conf_destroy(f->conf);
        f->conf = kb_conf_new();
        assert_non_null(f->conf);
}

static const kb_conf_opt_t *first_opt_of_type(kb_conf_type_t type)
{
        const kb_conf_opt_t *o;

        for (o = kb_conf_options; o->name; o++)
                if (o->type == type)
                        return o;
        return NULL;
}

/* An option's key with any '*' section replaced by "acme". */
static void opt_key(const kb_conf_opt_t *o, char *out, size_t outsz)
{
        const char *star = strchr(o->name, '*');

        if (!star)
                kb_strlcpy(out, o->name, outsz);
        else
                kb_snprintf(out, outsz, "%.*sacme%s", (int)(star - o->name),
                            o->name, star + 1);
}

/* ------------------------------------------------------------ loading */

static void test_defaults(void **state)
{
        fx_t *f = *state;
        const kb_conf_opt_t *o;

        for (o = kb_conf_options; o->name; o++) {
                if (strchr(o->name, '*'))
                        continue;
                assert_false(kb_conf_is_set(f->conf, o->name));
                assert_string_equal(kb_conf_origin(f->conf, o->name),
                                    "default");
                if (o->def)
                        assert_string_equal(kb_conf_get(f->conf, o->name),
                                            o->def);
                else
                        assert_null(kb_conf_get(f->conf, o->name));
                /* every default passes the option's own validation */
                if (o->def && *o->def) {
                        kb_conf_t *c = kb_conf_new();
                        assert_non_null(c);
                        if (kb_conf_set(c, o->name, o->def, "t", f->err,
                                        sizeof(f->err)))
                                fail_msg("default of %s is invalid: %s",
                                         o->name, f->err);
                        kb_conf_destroy(c);
                }
        }
        assert_int_equal(kb_conf_get_int(f->conf, "vendor.timeout_ms"), 30000);
        assert_string_equal(kb_conf_get(f->conf, "log.level"), "info");
        assert_null(kb_conf_get(f->conf, "no.such.option"));
        assert_string_equal(kb_conf_path(f->conf), "");
}

static void test_load_syntax(void **state)
{
        fx_t *f = *state;
        char origin[PATH_MAX + 16];

        assert_int_equal(load(f, "# a comment\n"
                                 "! another comment\n"
                                 "\n"
                                 "   \t  \n"
                                 "  log.level   =   debug   \n"
                                 "\tvendor.timeout_ms=1234\t\r\n"
                                 "   # indented comment = with equals\n"
                                 "vendor.url = http://127.0.0.1:9/x?a=b&c=d\n"
                                 "application_id=" UUID_A "\n"
                                 "vendor.ca_file =\n"
                                 "log.format = json"), /* no final newline */
                         KB_OK);
        assert_string_equal(f->err, "");
        assert_string_equal(kb_conf_get(f->conf, "log.level"), "debug");
        assert_int_equal(kb_conf_get_int(f->conf, "vendor.timeout_ms"), 1234);
        /* only the first '=' separates */
        assert_string_equal(kb_conf_get(f->conf, "vendor.url"),
                            "http://127.0.0.1:9/x?a=b&c=d");
        assert_string_equal(kb_conf_get(f->conf, "vendor.ca_file"), "");
        assert_true(kb_conf_is_set(f->conf, "vendor.ca_file"));
        assert_string_equal(kb_conf_get(f->conf, "log.format"), "json");
        assert_string_equal(kb_conf_path(f->conf), f->path);

        kb_snprintf(origin, sizeof(origin), "%s:5", f->path);
        assert_string_equal(kb_conf_origin(f->conf, "log.level"), origin);
        kb_snprintf(origin, sizeof(origin), "%s:6", f->path);
        assert_string_equal(kb_conf_origin(f->conf, "vendor.timeout_ms"),
                            origin);
        kb_snprintf(origin, sizeof(origin), "%s:11", f->path);
        assert_string_equal(kb_conf_origin(f->conf, "log.format"), origin);
        assert_string_equal(kb_conf_origin(f->conf, "vendor.max_in_flight"),
                            "default");
}

static void test_load_errors(void **state)
{
        fx_t *f = *state;
        char want[PATH_MAX + 64], big[4096];
        FILE *fp;
        int i;

        expect_load_error(f, "# c\nlog.level\n", "2: expected 'key = value'");
        reset_conf(f);
        expect_load_error(f, "\n\n = x\n", "3: empty key");
        reset_conf(f);
        expect_load_error_prefix(f, "log.level=info\nnope.nope = 1\n",
                                 "2: unknown option 'nope.nope'");
        reset_conf(f);
        expect_load_error_prefix(f, "LOG.LEVEL=info\n",
                                 "1: unknown option 'LOG.LEVEL'");

        /* missing file */
        reset_conf(f);
        kb_snprintf(f->path, sizeof(f->path), "%s/missing.conf", f->dir);
        assert_int_equal(
            kb_conf_load_file(f->conf, f->path, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want), "%s: %s", f->path, strerror(ENOENT));
        assert_string_equal(f->err, want);

        /* NUL byte */
        reset_conf(f);
        put_file(f, "nul.conf", "log.level=info\n\0\n", 17);
        assert_int_equal(
            kb_conf_load_file(f->conf, f->path, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want), "%s: NUL byte in file", f->path);
        assert_string_equal(f->err, want);

        /* over 16 MiB */
        reset_conf(f);
        kb_snprintf(f->path, sizeof(f->path), "%s/big.conf", f->dir);
        fp = fopen(f->path, "wb");
        assert_non_null(fp);
        memset(big, '#', sizeof(big));
        big[sizeof(big) - 1] = '\n';
        for (i = 0; i < 4097; i++)
                assert_int_equal(fwrite(big, 1, sizeof(big), fp), sizeof(big));
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(
            kb_conf_load_file(f->conf, f->path, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want), "%s: file too large", f->path);
        assert_string_equal(f->err, want);
}

static void test_duplicate_key(void **state)
{
        fx_t *f = *state;

        expect_load_error(f,
                          "# header\n"
                          "log.level = info\n"
                          "\n"
                          "vendor.timeout_ms = 500\n"
                          "  log.level=debug\n"
                          "vendor.timeout_ms = 600\n",
                          "5: log.level: set twice in this file");
        /* same value twice is still twice */
        reset_conf(f);
        expect_load_error(f, "log.format=json\nlog.format=json\n",
                          "2: log.format: set twice in this file");
        /* kafka keys too */
        reset_conf(f);
        expect_load_error(f, "kafka.client.id=a\n# x\n# y\nkafka.client.id=b\n",
                          "4: kafka.client.id: set twice in this file");
        /* in two different files: the later file wins */
        reset_conf(f);
        assert_int_equal(load(f, "log.level=warn\n"), KB_OK);
        assert_int_equal(
            kb_conf_load_file(f->conf,
                              put_file(f, "b.conf", "log.level=error\n", 16),
                              f->err, sizeof(f->err)),
            KB_OK);
        assert_string_equal(kb_conf_get(f->conf, "log.level"), "error");
}

/* ------------------------------------------------------------- values */

static void test_int_range(void **state)
{
        fx_t *f = *state;
        static const char *const bad[] = {
                "99",  "600001", "abc",  "",   "+500",
                "1e3", "0x64",   "50 0", "-1", "99999999999999999999"
        };
        size_t i;
        char text[128];

        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                reset_conf(f);
                kb_snprintf(text, sizeof(text), "vendor.timeout_ms=%s\n",
                            bad[i]);
                expect_load_error(f, text,
                                  "1: vendor.timeout_ms: expected an integer "
                                  "from 100 to 600000");
        }
        reset_conf(f);
        assert_int_equal(load(f, "vendor.timeout_ms=100\n"
                                 "vendor.connect_timeout_ms=60000\n"
                                 "vendor.rate_limit_per_minute=0\n"),
                         KB_OK);
        assert_int_equal(kb_conf_get_int(f->conf, "vendor.timeout_ms"), 100);
        assert_int_equal(kb_conf_get_int(f->conf, "vendor.connect_timeout_ms"),
                         60000);
        assert_int_equal(
            kb_conf_get_int(f->conf, "vendor.rate_limit_per_minute"), 0);

        /* every INT option: its bounds are accepted, one past is not */
        {
                const kb_conf_opt_t *o;
                char key[256], v[32];
                for (o = kb_conf_options; o->name; o++) {
                        if (o->type != KB_CONF_INT)
                                continue;
                        opt_key(o, key, sizeof(key));
                        reset_conf(f);
                        kb_snprintf(v, sizeof(v), "%lld", (long long)o->min);
                        assert_int_equal(kb_conf_set(f->conf, key, v, "t",
                                                     f->err, sizeof(f->err)),
                                         KB_OK);
                        assert_true(kb_conf_get_int(f->conf, key) == o->min);
                        kb_snprintf(v, sizeof(v), "%lld", (long long)o->max);
                        assert_int_equal(kb_conf_set(f->conf, key, v, "t",
                                                     f->err, sizeof(f->err)),
                                         KB_OK);
                        kb_snprintf(v, sizeof(v), "%lld",
                                    (long long)o->max + 1);
                        assert_int_equal(kb_conf_set(f->conf, key, v, "t",
                                                     f->err, sizeof(f->err)),
                                         KB_ERR_CONFIG);
                        kb_snprintf(v, sizeof(v), "%lld",
                                    (long long)o->min - 1);
                        assert_int_equal(kb_conf_set(f->conf, key, v, "t",
                                                     f->err, sizeof(f->err)),
                                         KB_ERR_CONFIG);
                        /* a failed set keeps the previous value */
                        assert_true(kb_conf_get_int(f->conf, key) == o->max);
                }
        }
}

static void test_enum(void **state)
{
        fx_t *f = *state;

        expect_load_error(f, "log.level = verbose\n",
                          "1: log.level: expected one of "
                          "error|warn|notice|info|debug");
        reset_conf(f);
        expect_load_error(f, "\nlog.level = INFO\n",
                          "2: log.level: expected one of "
                          "error|warn|notice|info|debug");
        reset_conf(f);
        expect_load_error(f, "log.level = inf\n",
                          "1: log.level: expected one of "
                          "error|warn|notice|info|debug");
        reset_conf(f);
        expect_load_error(f, "log.level = info|debug\n",
                          "1: log.level: expected one of "
                          "error|warn|notice|info|debug");
        reset_conf(f);
        expect_load_error(f, "log.format = \n",
                          "1: log.format: expected one of text|json");
        reset_conf(f);
        assert_int_equal(load(f, "log.level = notice \n"), KB_OK);
        assert_string_equal(kb_conf_get(f->conf, "log.level"), "notice");
}

static void test_bool(void **state)
{
        fx_t *f = *state;
        const kb_conf_opt_t *o = first_opt_of_type(KB_CONF_BOOL);
        static const char *const bad[] = { "yes",   "1",  "0", "TRUE",
                                           "False", "on", "",  "true1" };
        char key[256], text[512], rest[512];
        size_t i;

        if (!o)
                fail_msg("the option table has no BOOL option to test");
        opt_key(o, key, sizeof(key));
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                reset_conf(f);
                kb_snprintf(text, sizeof(text), "%s = %s\n", key, bad[i]);
                kb_snprintf(rest, sizeof(rest), "1: %s: expected true or false",
                            key);
                expect_load_error(f, text, rest);
        }
        reset_conf(f);
        kb_snprintf(text, sizeof(text), "%s = true\n", key);
        assert_int_equal(load(f, text), KB_OK);
        assert_int_equal(kb_conf_get_bool(f->conf, key), 1);
        assert_int_equal(kb_conf_get_int(f->conf, key), 1);
        assert_int_equal(
            kb_conf_set(f->conf, key, "false", "-X", f->err, sizeof(f->err)),
            KB_OK);
        assert_int_equal(kb_conf_get_bool(f->conf, key), 0);
        assert_int_equal(kb_conf_get_int(f->conf, key), 0);
}

static void test_string_validators(void **state)
{
        fx_t *f = *state;

        expect_load_error(f, "application_id = not-a-uuid\n",
                          "1: application_id: expected a UUID");
        reset_conf(f);
        expect_load_error(f, "application_id =\n",
                          "1: application_id: empty value");
        reset_conf(f);
        expect_load_error(f, "vendor.url = ftp://x\n",
                          "1: vendor.url: expected an http:// or https:// URL");
        reset_conf(f);
        expect_load_error(f, "vendor.url = http://a b\n",
                          "1: vendor.url: URL contains a space or control "
                          "character");

        assert_int_equal(kb_conf_valid_url("https://h", NULL, 0), 0);
        assert_int_equal(kb_conf_valid_url("http://h:1/p?q", NULL, 0), 0);
        assert_int_equal(kb_conf_valid_url("http://", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_url("http:///x", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_url("HTTP://h", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_url("http://h\x7f", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_uuid(UUID_A, NULL, 0), 0);
        assert_int_equal(kb_conf_valid_uuid(UUID_A "0", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_topic("a.b_c-D9", NULL, 0), 0);
        assert_int_equal(kb_conf_valid_topic("", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_topic(".", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_topic("..", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_topic("a/b", NULL, 0), -1);
        {
                char t[251];
                memset(t, 'a', sizeof(t) - 1);
                t[250] = '\0';
                assert_int_equal(kb_conf_valid_topic(t, NULL, 0), -1);
                t[249] = '\0';
                assert_int_equal(kb_conf_valid_topic(t, NULL, 0), 0);
        }
        assert_int_equal(
            kb_conf_valid_topic_template("x.{for_application_id}.y", NULL, 0),
            0);
        assert_int_equal(kb_conf_valid_topic_template("x.{other}", NULL, 0),
                         -1);
        assert_int_equal(
            kb_conf_valid_topic_template("x{for_application_id", NULL, 0), -1);
        assert_int_equal(kb_conf_valid_topic_template("x y", NULL, 0), -1);
}

static void test_list(void **state)
{
        fx_t *f = *state;
        char **l;
        size_t n = 99;

        assert_int_equal(load(f, "keys.box_secret =  a.key , b.key,c.key  \n"),
                         KB_OK);
        l = kb_conf_get_list(f->conf, "keys.box_secret", &n);
        assert_non_null(l);
        assert_int_equal(n, 3);
        assert_string_equal(l[0], "a.key");
        assert_string_equal(l[1], "b.key");
        assert_string_equal(l[2], "c.key");
        assert_null(l[3]);
        kb_conf_list_free(l);

        /* unset list: empty array */
        l = kb_conf_get_list(f->conf, "keys.sign_secret", &n);
        assert_non_null(l);
        assert_int_equal(n, 0);
        assert_null(l[0]);
        kb_conf_list_free(l);

        reset_conf(f);
        expect_load_error(f, "keys.box_secret = a,,b\n",
                          "1: keys.box_secret: empty item in list");
        reset_conf(f);
        expect_load_error(f, "keys.box_secret = a, \n",
                          "1: keys.box_secret: empty item in list");
        reset_conf(f);
        expect_load_error(f, "keys.box_secret =\n",
                          "1: keys.box_secret: expected a list");
        /* a list whose items have a validator: each item is checked */
        {
                const kb_conf_opt_t *o;
                char key[256];
                for (o = kb_conf_options; o->name; o++) {
                        if (o->type != KB_CONF_LIST || !o->validate)
                                continue;
                        opt_key(o, key, sizeof(key));
                        reset_conf(f);
                        if (!strcmp(o->name, "importer.token_topics")) {
                                assert_int_equal(
                                    kb_conf_set(f->conf, key, "a, b.c", "t",
                                                f->err, sizeof(f->err)),
                                    KB_OK);
                                assert_int_equal(
                                    kb_conf_set(f->conf, key, "a, b/c", "t",
                                                f->err, sizeof(f->err)),
                                    KB_ERR_CONFIG);
                                assert_non_null(strstr(f->err, "topic"));
                        }
                }
        }
}

/* ------------------------------------------------------------ secrets */

static void test_literal_secret_refused(void **state)
{
        fx_t *f = *state;
        static const char *const refs[] = { "hunter2-literal",
                                            "env:", "file:", "ENV:X", "env" };
        size_t i;
        char text[256];

        for (i = 0; i < KB_ARRAY_SIZE(refs); i++) {
                reset_conf(f);
                kb_snprintf(text, sizeof(text), "\nvendor.api_key = %s\n",
                            refs[i]);
                expect_load_error(f, text,
                                  "2: vendor.api_key: secrets are not "
                                  "accepted as literal values; use env:NAME "
                                  "or file:PATH");
        }
        reset_conf(f);
        assert_int_equal(kb_conf_set(f->conf, "keys.passphrase",
                                     "correct horse battery", "-X", f->err,
                                     sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_null(strstr(f->err, "horse"));
        assert_false(kb_conf_is_set(f->conf, "keys.passphrase"));
}

static void test_env_secret(void **state)
{
        fx_t *f = *state;
        char *s = (char *)0x1;
        size_t len = 99;

        assert_int_equal(load(f, "vendor.api_key = env:KB_TEST_ENV_SECRET\n"),
                         KB_OK);
        assert_int_equal(kb_conf_get_secret(f->conf, "vendor.api_key", &s, &len,
                                            f->err, sizeof(f->err)),
                         KB_OK);
        assert_non_null(s);
        assert_string_equal(s, SECRET_ENV_VALUE);
        assert_int_equal(len, strlen(SECRET_ENV_VALUE));
        kb_conf_secret_free(s, len);
        /* the reference, not the value, is what kb_conf_get returns */
        assert_string_equal(kb_conf_get(f->conf, "vendor.api_key"),
                            "env:KB_TEST_ENV_SECRET");

        /* unset option */
        assert_int_equal(kb_conf_get_secret(f->conf, "keys.passphrase", &s,
                                            &len, f->err, sizeof(f->err)),
                         KB_ERR_NOT_FOUND);
        assert_null(s);
        assert_int_equal(len, 0);
}

static void test_env_secret_missing(void **state)
{
        fx_t *f = *state;
        char *s = (char *)0x1, want[PATH_MAX + 256];
        size_t len;

        assert_int_equal(load(f, "# x\nvendor.api_key = env:KB_TEST_MISSING_VAR"
                                 "\n"),
                         KB_OK);
        assert_int_equal(kb_conf_get_secret(f->conf, "vendor.api_key", &s, &len,
                                            f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_null(s);
        kb_snprintf(want, sizeof(want),
                    "%s:2: vendor.api_key: environment variable "
                    "KB_TEST_MISSING_VAR is not set",
                    f->path);
        assert_string_equal(f->err, want);

        /* set but empty counts as missing */
        setenv("KB_TEST_MISSING_VAR", "", 1);
        assert_int_equal(kb_conf_get_secret(f->conf, "vendor.api_key", &s, &len,
                                            f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_string_equal(f->err, want);
        unsetenv("KB_TEST_MISSING_VAR");

        /* the message of another failing variable never holds any value */
        reset_conf(f);
        assert_int_equal(load(f, "vendor.api_key=env:KB_TEST_MISSING_VAR\n"
                                 "keys.passphrase=env:KB_TEST_ENV_SECRET\n"),
                         KB_OK);
        assert_int_equal(
            kb_conf_check(f->conf, KB_SCOPE_ISSUER, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        assert_null(strstr(f->err, SECRET_ENV_VALUE));
}

static void test_file_secret(void **state)
{
        fx_t *f = *state;
        static const struct {
                const char *content;
                size_t len;
                const char *want;
        } cases[] = {
                { SECRET_FILE_VALUE "\n", sizeof(SECRET_FILE_VALUE),
                  SECRET_FILE_VALUE },
                { SECRET_FILE_VALUE, sizeof(SECRET_FILE_VALUE) - 1,
                  SECRET_FILE_VALUE },
                { "crlf\r\n", 6, "crlf" },
                { "many\n\n\n", 7, "many" },
                { "two\nlines\n", 10, "two\nlines" },
                { " spaced \n", 9, " spaced " },
        };
        char text[PATH_MAX + 64], secret_path[PATH_MAX], *s;
        size_t i, len;

        for (i = 0; i < KB_ARRAY_SIZE(cases); i++) {
                reset_conf(f);
                kb_strlcpy(
                    secret_path,
                    put_file(f, "secret", cases[i].content, cases[i].len),
                    sizeof(secret_path));
                kb_snprintf(text, sizeof(text), "keys.passphrase=file:%s\n",
                            secret_path);
                assert_int_equal(load(f, text), KB_OK);
                assert_int_equal(kb_conf_get_secret(f->conf, "keys.passphrase",
                                                    &s, &len, f->err,
                                                    sizeof(f->err)),
                                 KB_OK);
                assert_int_equal(len, strlen(cases[i].want));
                assert_string_equal(s, cases[i].want);
                kb_conf_secret_free(s, len);
        }

        /* empty (after the newline is dropped) */
        reset_conf(f);
        kb_strlcpy(secret_path, put_file(f, "secret", "\n", 1),
                   sizeof(secret_path));
        kb_snprintf(text, sizeof(text), "keys.passphrase=file:%s\n",
                    secret_path);
        assert_int_equal(load(f, text), KB_OK);
        assert_int_equal(kb_conf_get_secret(f->conf, "keys.passphrase", &s,
                                            &len, f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_non_null(strstr(f->err, "keys.passphrase: secret is empty"));

        /* missing file: origin, key, path and reason */
        reset_conf(f);
        kb_snprintf(text, sizeof(text), "keys.passphrase=file:%s/nope\n",
                    f->dir);
        assert_int_equal(load(f, text), KB_OK);
        assert_int_equal(kb_conf_get_secret(f->conf, "keys.passphrase", &s,
                                            &len, f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        {
                char want[PATH_MAX * 2 + 128];
                kb_snprintf(want, sizeof(want),
                            "%s:1: keys.passphrase: %s/nope: %s", f->path,
                            f->dir, strerror(ENOENT));
                assert_string_equal(f->err, want);
        }

        /* too large (over 64 KiB): refused, content never echoed */
        {
                size_t big = 70 * 1024;
                char *b = malloc(big);
                assert_non_null(b);
                memset(b, 'Q', big);
                reset_conf(f);
                kb_strlcpy(secret_path, put_file(f, "secret", b, big),
                           sizeof(secret_path));
                free(b);
                kb_snprintf(text, sizeof(text), "keys.passphrase=file:%s\n",
                            secret_path);
                assert_int_equal(load(f, text), KB_OK);
                assert_int_equal(kb_conf_get_secret(f->conf, "keys.passphrase",
                                                    &s, &len, f->err,
                                                    sizeof(f->err)),
                                 KB_ERR_CONFIG);
                assert_non_null(strstr(f->err, "file too large"));
                assert_null(strstr(f->err, "QQQQ"));
        }
}

/* -------------------------------------------------------------- kafka */

static int collect_kafka(void *opaque, const char *key, const char *value,
                         const char *origin)
{
        kb_buf_t *b = opaque;

        return kb_buf_printf(b, "%s=%s@%s;", key, value, origin) ? -1 : 0;
}

static int stop_kafka(void *opaque, const char *key, const char *value,
                      const char *origin)
{
        int *calls = opaque;

        (void)key;
        (void)value;
        (void)origin;
        (*calls)++;
        return 42;
}

static void test_kafka_passthrough(void **state)
{
        fx_t *f = *state;
        kb_buf_t b = KB_BUF_INIT;
        char want[PATH_MAX * 2 + 256];
        int calls = 0;

        assert_int_equal(load(f, "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                                 "kafka.linger.ms=5\n"
                                 "kafka.sasl.password=env:KB_TEST_KAFKA_SECRET"
                                 "\n"),
                         KB_OK);
        assert_null(kb_conf_find_opt("kafka.linger.ms"));
        assert_string_equal(kb_conf_get(f->conf, "kafka.linger.ms"), "5");
        assert_int_equal(kb_conf_foreach_kafka(f->conf, collect_kafka, &b,
                                               f->err, sizeof(f->err)),
                         0);
        kb_snprintf(want, sizeof(want),
                    "bootstrap.servers=127.0.0.1:9092@%s:1;"
                    "linger.ms=5@%s:2;"
                    "sasl.password=" SECRET_KAFKA_VALUE "@%s:3;",
                    f->path, f->path, f->path);
        assert_string_equal(b.data, want);
        kb_buf_free(&b, 1);
        /* the callback's non-zero return stops the walk and is returned */
        assert_int_equal(kb_conf_foreach_kafka(f->conf, stop_kafka, &calls,
                                               f->err, sizeof(f->err)),
                         42);
        assert_int_equal(calls, 1);

        /* unknown property: librdkafka says so, with file:line */
        reset_conf(f);
        expect_load_error_prefix(f,
                                 "kafka.linger.ms=5\n\nkafka.no.such.prop=1\n",
                                 "3: kafka.no.such.prop: librdkafka: ");
        assert_non_null(strstr(f->err, "No such configuration property"));
        /* invalid value */
        reset_conf(f);
        expect_load_error_prefix(f, "kafka.linger.ms=-5\n",
                                 "1: kafka.linger.ms: librdkafka: ");
        reset_conf(f);
        expect_load_error(f, "kafka. = x\n",
                          "1: kafka.: empty librdkafka property name");
        /* an unknown property is refused even when its name looks like a
         * secret */
        reset_conf(f);
        expect_load_error_prefix(
            f, "kafka.no.such.password=env:KB_TEST_KAFKA_SECRET\n",
            "1: kafka.no.such.password: librdkafka: ");
}

static void test_kafka_secrets(void **state)
{
        fx_t *f = *state;
        static const char *const keys[] = { "kafka.sasl.password",
                                            "kafka.ssl.key.password",
                                            "kafka.ssl.keystore.password",
                                            "kafka.ssl.key.pem",
                                            "kafka.sasl.oauthbearer.config" };
        char text[256], rest[256];
        size_t i;

        for (i = 0; i < KB_ARRAY_SIZE(keys); i++) {
                reset_conf(f);
                kb_snprintf(text, sizeof(text), "%s = hunter2-kafka\n",
                            keys[i]);
                kb_snprintf(rest, sizeof(rest),
                            "1: %s: secrets are not accepted as literal "
                            "values; use env:NAME or file:PATH",
                            keys[i]);
                expect_load_error(f, text, rest);
                reset_conf(f);
                kb_snprintf(text, sizeof(text),
                            "%s = env:KB_TEST_KAFKA_SECRET\n", keys[i]);
                assert_int_equal(load(f, text), KB_OK);
        }
        /* an unresolvable kafka secret fails the walk and the check */
        reset_conf(f);
        assert_int_equal(load(f, "kafka.sasl.password=env:KB_TEST_MISSING_VAR"
                                 "\n"),
                         KB_OK);
        {
                kb_buf_t b = KB_BUF_INIT;
                assert_int_equal(kb_conf_foreach_kafka(f->conf, collect_kafka,
                                                       &b, f->err,
                                                       sizeof(f->err)),
                                 KB_ERR_CONFIG);
                assert_non_null(strstr(f->err, "KB_TEST_MISSING_VAR"));
                kb_buf_free(&b, 0);
        }
        assert_int_equal(kb_conf_check(f->conf, 0, f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        {
                char want[PATH_MAX + 128];
                kb_snprintf(want, sizeof(want),
                            "%s:1: kafka.sasl.password: environment variable "
                            "KB_TEST_MISSING_VAR is not set",
                            f->path);
                assert_string_equal(f->err, want);
        }
}

/* --------------------------------------------------- transport security */

static void test_host_is_loopback(void **state)
{
        static const struct {
                const char *host;
                int want;
        } v[] = {
                { "localhost", 1 },
                { "LocalHost", 1 },
                { "127.0.0.1", 1 },
                { "127.255.3.4", 1 },
                { "::1", 1 },
                { "[::1]", 1 },
                { "::ffff:127.0.0.1", 1 },
                { "[::ffff:127.0.0.2]", 1 },
                { "0:0:0:0:0:0:0:1", 1 },
                { "128.0.0.1", 0 },
                { "126.255.255.255", 0 },
                { "0.0.0.0", 0 },
                { "::", 0 },
                { "::2", 0 },
                { "::ffff:10.0.0.1", 0 },
                { "[127.0.0.1]", 0 },
                { "[::1", 0 },
                { "127.0.0.1.example.com", 0 },
                { "localhost.example.com", 0 },
                { "localhost.", 0 },
                { "kafka", 0 },
                { "127.1", 0 }, /* not a literal inet_pton takes */
                { "", 0 },
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(v); i++) {
                if (kb_conf_host_is_loopback(v[i].host) != v[i].want)
                        fail_msg("kb_conf_host_is_loopback(\"%s\") != %d",
                                 v[i].host, v[i].want);
        }
}

static void test_kafka_plaintext(void **state)
{
        static const struct {
                const char *servers, *protocol, *bad; /* bad NULL: ok */
        } v[] = {
                { "127.0.0.1:9092", NULL, NULL },
                { "127.0.0.1:9092", "", NULL },
                { "localhost:9092, 127.0.0.2:9093 [::1]:9094,::1", "plaintext",
                  NULL },
                { "", "plaintext", NULL },
                { ",,  ,", NULL, NULL },
                { ":9092", NULL, NULL }, /* librdkafka: localhost */
                { "kafka:9092", NULL, "kafka:9092" },
                { "kafka:9092", "PLAINTEXT", "kafka:9092" },
                { "kafka:9092", "sasl_plaintext", "kafka:9092" },
                { "kafka:9092", "SASL_PLAINTEXT", "kafka:9092" },
                { "kafka:9092", "ssl", NULL },
                { "kafka:9092", "SASL_SSL", NULL },
                { "127.0.0.1:9092,10.1.2.3:9092", NULL, "10.1.2.3:9092" },
                { "127.0.0.1:9092 b.example:9092", NULL, "b.example:9092" },
                { "[2001:db8::1]:9092", NULL, "[2001:db8::1]:9092" },
                { "2001:db8::1", NULL, "2001:db8::1" },
                { "kafka", NULL, "kafka" },
                /* the entry's own protocol: plaintext is refused whatever
                 * security.protocol says, and an ssl:// entry does not
                 * make a plaintext client safe (the brokers it learns
                 * are reached by security.protocol) */
                { "plaintext://b.example:9092", "sasl_ssl",
                  "plaintext://b.example:9092" },
                { "SASL_PLAINTEXT://b.example:9092", "ssl",
                  "SASL_PLAINTEXT://b.example:9092" },
                { "ssl://b.example:9093", "plaintext", "ssl://b.example:9093" },
                { "ssl://b.example:9093", "ssl", NULL },
                { "plaintext://127.0.0.1:9092", "ssl", NULL },
        };
        char bad[256];
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(v); i++) {
                int r;
                bad[0] = '\0';
                r = kb_conf_kafka_plaintext(v[i].servers, v[i].protocol, bad,
                                            sizeof(bad));
                if (r != (v[i].bad ? -1 : 0) ||
                    (v[i].bad && strcmp(bad, v[i].bad)))
                        fail_msg("\"%s\" over %s: %d \"%s\"", v[i].servers,
                                 v[i].protocol ? v[i].protocol : "(unset)", r,
                                 bad);
        }
        /* too long to be a loopback address: refused, cut short */
        {
                char longs[1024];
                memset(longs, 'a', sizeof(longs) - 1);
                longs[sizeof(longs) - 1] = '\0';
                assert_int_equal(
                    kb_conf_kafka_plaintext(longs, NULL, bad, sizeof(bad)), -1);
                assert_true(strlen(bad) < 100);
                assert_int_equal(
                    kb_conf_kafka_plaintext(longs, "ssl", bad, sizeof(bad)), 0);
                memcpy(longs, "plaintext://", 12);
                assert_int_equal(
                    kb_conf_kafka_plaintext(longs, "ssl", bad, sizeof(bad)),
                    -1);
                assert_true(!strncmp(bad, "plaintext://aaa", 15));
        }
        assert_int_equal(kb_conf_kafka_plaintext(NULL, NULL, bad, sizeof(bad)),
                         0);
}

/* Expects kb_conf_check() (any role: scope 0, which checks no required
 * option) to refuse the loaded file's Kafka listener with "<path>:<rest>"
 * (@p rest NULL: to pass). */
static void expect_kafka_check(fx_t *f, const char *text, const char *rest)
{
        char want[PATH_MAX + 1024];

        reset_conf(f);
        assert_int_equal(load(f, text), KB_OK);
        f->err[0] = '\0';
        if (!rest) {
                if (kb_conf_check(f->conf, 0, f->err, sizeof(f->err)) != KB_OK)
                        fail_msg("refused: %s", f->err);
                return;
        }
        assert_int_equal(kb_conf_check(f->conf, 0, f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want), "%s:%s", f->path, rest);
        assert_string_equal(f->err, want);
}

#define HINT                                                                   \
        "; use kafka.security.protocol = SASL_SSL (or SSL), or set "           \
        "kafka_allow_plaintext = true if the network to the broker is "        \
        "private"

static void test_check_kafka_plaintext(void **state)
{
        fx_t *f = *state;

        /* the default security.protocol is plaintext */
        expect_kafka_check(
            f, "log.level = info\nkafka.bootstrap.servers = kafka:9092\n",
            "2: kafka.bootstrap.servers: broker kafka:9092 is not a "
            "loopback address and the connection to it would not "
            "be encrypted (kafka.security.protocol = plaintext, the "
            "default)" HINT);
        expect_kafka_check(
            f,
            "kafka.security.protocol = SASL_PLAINTEXT\n"
            "kafka.bootstrap.servers = 127.0.0.1:9092, 10.0.0.7:9092\n",
            "2: kafka.bootstrap.servers: broker 10.0.0.7:9092 is not "
            "a loopback address and the connection to it would not "
            "be encrypted (kafka.security.protocol = "
            "SASL_PLAINTEXT)" HINT);
        /* librdkafka's alias, and one kind of client only */
        expect_kafka_check(
            f, "kafka.metadata.broker.list = kafka:9092\n",
            "1: kafka.metadata.broker.list: broker kafka:9092 is "
            "not a loopback address and the connection to it would "
            "not be encrypted (kafka.security.protocol = "
            "plaintext, the default)" HINT);
        expect_kafka_check(
            f,
            "kafka.bootstrap.servers = 127.0.0.1:9092\n"
            "kafka.security.protocol = ssl\n"
            "kafka.producer.bootstrap.servers = b.example:9093\n"
            "kafka.producer.security.protocol = plaintext\n",
            "3: kafka.producer.bootstrap.servers: broker "
            "b.example:9093 is not a loopback address and the "
            "connection to it would not be encrypted "
            "(kafka.producer.security.protocol = plaintext)" HINT);
        /* the consumer's own protocol is TLS, the producer's is not */
        expect_kafka_check(
            f,
            "kafka.bootstrap.servers = b.example:9093\n"
            "kafka.consumer.security.protocol = ssl\n",
            "1: kafka.bootstrap.servers: broker b.example:9093 is "
            "not a loopback address and the connection to it would "
            "not be encrypted (kafka.security.protocol = "
            "plaintext, the default)" HINT);

        /* what passes */
        expect_kafka_check(
            f, "kafka.bootstrap.servers = 127.0.0.1:9092,[::1]:9093\n", NULL);
        expect_kafka_check(
            f,
            "kafka.bootstrap.servers = b1.example:9093,b2.example:9093\n"
            "kafka.security.protocol = SASL_SSL\n",
            NULL);
        expect_kafka_check(f,
                           "kafka.bootstrap.servers = b1.example:9093\n"
                           "kafka.consumer.security.protocol = ssl\n"
                           "kafka.producer.security.protocol = sasl_ssl\n",
                           NULL);
        expect_kafka_check(f,
                           "kafka.bootstrap.servers = kafka:9092\n"
                           "kafka_allow_plaintext = true\n",
                           NULL);
        expect_kafka_check(f, "log.level = info\n", NULL);

        /* -X: the origin follows the value, the option can be given there */
        reset_conf(f);
        assert_int_equal(load(f, "kafka.bootstrap.servers = 127.0.0.1:9092\n"),
                         KB_OK);
        assert_int_equal(kb_conf_check(f->conf, 0, f->err, sizeof(f->err)),
                         KB_OK);
        assert_int_equal(kb_conf_set_kv(f->conf,
                                        "kafka.bootstrap.servers=kafka:9092",
                                        f->err, sizeof(f->err)),
                         KB_OK);
        assert_int_equal(kb_conf_check(f->conf, 0, f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_string_equal(f->err,
                            "-X: kafka.bootstrap.servers: broker kafka:9092 is "
                            "not a loopback address and the connection to it "
                            "would not be encrypted (kafka.security.protocol "
                            "= plaintext, the default)" HINT);
        assert_int_equal(kb_conf_set_kv(f->conf, "kafka_allow_plaintext=true",
                                        f->err, sizeof(f->err)),
                         KB_OK);
        assert_int_equal(kb_conf_check(f->conf, 0, f->err, sizeof(f->err)),
                         KB_OK);
        /* a bool like any other; not a librdkafka property */
        assert_int_equal(kb_conf_set_kv(f->conf, "kafka_allow_plaintext=yes",
                                        f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_string_equal(
            f->err, "-X: kafka_allow_plaintext: expected true or false");
        assert_non_null(kb_conf_find_opt("kafka_allow_plaintext"));
        assert_non_null(kb_conf_find_opt("vendor.allow_insecure_http"));
        assert_string_equal(kb_conf_get(f->conf, "vendor.allow_insecure_http"),
                            "false");
}

#undef HINT

/* ----------------------------------------------------------------- -X */

static void test_overrides(void **state)
{
        fx_t *f = *state;

        assert_int_equal(load(f, "log.level=info\nvendor.timeout_ms=500\n"),
                         KB_OK);
        assert_int_equal(
            kb_conf_set_kv(f->conf, "log.level=debug", f->err, sizeof(f->err)),
            KB_OK);
        assert_string_equal(kb_conf_get(f->conf, "log.level"), "debug");
        assert_string_equal(kb_conf_origin(f->conf, "log.level"), "-X");
        /* last wins */
        assert_int_equal(
            kb_conf_set_kv(f->conf, "log.level=warn", f->err, sizeof(f->err)),
            KB_OK);
        assert_string_equal(kb_conf_get(f->conf, "log.level"), "warn");
        /* value may contain '=' and be empty */
        assert_int_equal(kb_conf_set_kv(f->conf, "vendor.url=http://h/?a=b",
                                        f->err, sizeof(f->err)),
                         KB_OK);
        assert_string_equal(kb_conf_get(f->conf, "vendor.url"),
                            "http://h/?a=b");
        assert_int_equal(
            kb_conf_set_kv(f->conf, "vendor.ca_file=", f->err, sizeof(f->err)),
            KB_OK);
        assert_string_equal(kb_conf_get(f->conf, "vendor.ca_file"), "");
        /* untouched options keep their file origin */
        assert_non_null(
            strstr(kb_conf_origin(f->conf, "vendor.timeout_ms"), ":2"));

        /* errors read "-X: key: reason" */
        assert_int_equal(kb_conf_set_kv(f->conf, "vendor.timeout_ms=5", f->err,
                                        sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_string_equal(f->err, "-X: vendor.timeout_ms: expected an "
                                    "integer from 100 to 600000");
        assert_int_equal(kb_conf_get_int(f->conf, "vendor.timeout_ms"), 500);
        assert_int_equal(
            kb_conf_set_kv(f->conf, "log.level", f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        assert_non_null(strstr(f->err, "expected key=value"));
        assert_int_equal(
            kb_conf_set_kv(f->conf, "=debug", f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        assert_int_equal(
            kb_conf_set_kv(f->conf, "nope=1", f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        assert_non_null(strstr(f->err, "-X: unknown option 'nope'"));
        assert_int_equal(kb_conf_set_kv(f->conf,
                                        "kafka.sasl.password=hunter2-x", f->err,
                                        sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_null(strstr(f->err, "hunter2"));
        {
                char kv[400];
                memset(kv, 'k', 300);
                kb_strlcpy(kv + 300, "=1", sizeof(kv) - 300);
                assert_int_equal(
                    kb_conf_set_kv(f->conf, kv, f->err, sizeof(f->err)),
                    KB_ERR_CONFIG);
        }
}

/* ----------------------------------------------------------- sections */

static void test_sections(void **state)
{
        fx_t *f = *state;
        char **secs;
        size_t n = 0;
        char name64[65], text[512];
        const kb_conf_opt_t *o;

        assert_int_equal(load(f, "partner.zeta.keys = z.pub.json\n"
                                 "partner.acme.application_id = " UUID_A "\n"
                                 "partner.acme.keys = acme.pub.json\n"
                                 "partner.b-2_c.keys = b.pub.json\n"),
                         KB_OK);
        secs = kb_conf_sections(f->conf, "partner", &n);
        assert_non_null(secs);
        assert_int_equal(n, 3);
        assert_string_equal(secs[0], "zeta");
        assert_string_equal(secs[1], "acme");
        assert_string_equal(secs[2], "b-2_c");
        assert_null(secs[3]);
        kb_conf_list_free(secs);
        secs = kb_conf_sections(f->conf, "nothing", &n);
        assert_non_null(secs);
        assert_int_equal(n, 0);
        kb_conf_list_free(secs);
        /* "part" is not a prefix of "partner.<x>" */
        secs = kb_conf_sections(f->conf, "part", &n);
        assert_int_equal(n, 0);
        kb_conf_list_free(secs);

        o = kb_conf_find_opt("partner.acme.keys");
        assert_non_null(o);
        assert_string_equal(o->name, "partner.*.keys");
        assert_null(kb_conf_find_opt("partner.keys"));
        assert_null(kb_conf_find_opt("partner..keys"));
        assert_null(kb_conf_find_opt("partner.Acme.keys"));
        assert_null(kb_conf_find_opt("partner.a.b.keys"));
        assert_null(kb_conf_find_opt("partner.a b.keys"));
        assert_null(kb_conf_find_opt("partner.acme.nope"));
        assert_null(kb_conf_find_opt("partner.*.keys"));

        memset(name64, 'n', 64);
        name64[64] = '\0';
        kb_snprintf(text, sizeof(text), "partner.%s.keys", name64);
        assert_non_null(kb_conf_find_opt(text));
        kb_snprintf(text, sizeof(text), "partner.%sn.keys", name64);
        assert_null(kb_conf_find_opt(text));

        reset_conf(f);
        expect_load_error_prefix(f, "partner.ACME.keys = x\n",
                                 "1: unknown option 'partner.ACME.keys'");
        reset_conf(f);
        expect_load_error(f, "partner.acme.application_id = nope\n",
                          "1: partner.acme.application_id: expected a UUID");
}

/* ---------------------------------------------------------- required */

static void test_check_required(void **state)
{
        fx_t *f = *state;
        char want[PATH_MAX + 256], text[2048];

        /* nothing set: the first required issuer option is named */
        assert_int_equal(load(f, "log.level=info\n"), KB_OK);
        assert_int_equal(
            kb_conf_check(f->conf, KB_SCOPE_ISSUER, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want),
                    "%s: application_id: required option is not set", f->path);
        assert_memory_equal(f->err, want, strlen(want));

        /* a complete issuer configuration */
        reset_conf(f);
        kb_snprintf(text, sizeof(text),
                    "application_id = " UUID_A "\n"
                    "vendor.api_key = env:KB_TEST_ENV_SECRET\n"
                    "keys.sign_secret = %s/sign.key\n"
                    "partner.acme.application_id = " UUID_B "\n"
                    "partner.acme.keys = %s/acme.pub.json\n",
                    f->dir, f->dir);
        assert_int_equal(load(f, text), KB_OK);
        assert_int_equal(
            kb_conf_check(f->conf, KB_SCOPE_ISSUER, f->err, sizeof(f->err)),
            KB_OK);
        /* the importer needs its box keys */
        assert_int_equal(
            kb_conf_check(f->conf, KB_SCOPE_IMPORTER, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want),
                    "%s: keys.box_secret: required option is not set", f->path);
        assert_memory_equal(f->err, want, strlen(want));
        assert_int_equal(kb_conf_set_kv(f->conf, "keys.box_secret=a.key",
                                        f->err, sizeof(f->err)),
                         KB_OK);
        assert_int_equal(
            kb_conf_check(f->conf, KB_SCOPE_IMPORTER, f->err, sizeof(f->err)),
            KB_OK);

        /* a section missing one of its required options */
        assert_int_equal(kb_conf_set_kv(f->conf,
                                        "partner.beta.application_id=" UUID_A,
                                        f->err, sizeof(f->err)),
                         KB_OK);
        assert_int_equal(
            kb_conf_check(f->conf, KB_SCOPE_ISSUER, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want),
                    "%s: partner.beta.keys: required option is not set",
                    f->path);
        assert_memory_equal(f->err, want, strlen(want));

        /* a required secret that does not resolve */
        reset_conf(f);
        kb_snprintf(text, sizeof(text),
                    "application_id = " UUID_A "\n"
                    "keys.sign_secret = s.key\n"
                    "vendor.api_key = env:KB_TEST_MISSING_VAR\n");
        assert_int_equal(load(f, text), KB_OK);
        assert_int_equal(
            kb_conf_check(f->conf, KB_SCOPE_ISSUER, f->err, sizeof(f->err)),
            KB_ERR_CONFIG);
        kb_snprintf(want, sizeof(want),
                    "%s:3: vendor.api_key: environment variable "
                    "KB_TEST_MISSING_VAR is not set",
                    f->path);
        assert_string_equal(f->err, want);
        /* without a role, set secrets must still resolve */
        assert_int_equal(kb_conf_check(f->conf, 0, f->err, sizeof(f->err)),
                         KB_ERR_CONFIG);
        assert_string_equal(f->err, want);
}

/* -------------------------------------------------------------- dump */

static char *dump_to_string(const kb_conf_t *conf, unsigned scope)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&buf, &len);

        assert_non_null(fp);
        kb_conf_dump(conf, scope, fp);
        assert_int_equal(fclose(fp), 0);
        assert_non_null(buf);
        return buf;
}

static void test_dump_never_prints_secrets(void **state)
{
        fx_t *f = *state;
        char text[PATH_MAX * 2 + 512], secret_path[PATH_MAX], *out, *line;
        unsigned scopes[] = { 0, KB_SCOPE_ISSUER, KB_SCOPE_IMPORTER };
        size_t i;

        kb_strlcpy(secret_path,
                   put_file(f, "pass", SECRET_FILE_VALUE "\n",
                            sizeof(SECRET_FILE_VALUE)),
                   sizeof(secret_path));
        kb_snprintf(text, sizeof(text),
                    "application_id = " UUID_A "\n"
                    "vendor.api_key = env:KB_TEST_ENV_SECRET\n"
                    "keys.passphrase = file:%s\n"
                    "kafka.sasl.password = env:KB_TEST_KAFKA_SECRET\n"
                    "kafka.ssl.key.password = file:%s\n"
                    "kafka.client.id = bridge-1\n"
                    "partner.acme.keys = acme.pub.json\n",
                    secret_path, secret_path);
        assert_int_equal(load(f, text), KB_OK);
        assert_int_equal(
            kb_conf_set_kv(f->conf, "log.level=debug", f->err, sizeof(f->err)),
            KB_OK);
        /* the secrets do resolve (so a dump could leak them) */
        assert_int_equal(kb_conf_check(f->conf, 0, f->err, sizeof(f->err)),
                         KB_OK);

        for (i = 0; i < KB_ARRAY_SIZE(scopes); i++) {
                out = dump_to_string(f->conf, scopes[i]);
                assert_null(strstr(out, SECRET_ENV_VALUE));
                assert_null(strstr(out, SECRET_FILE_VALUE));
                assert_null(strstr(out, SECRET_KAFKA_VALUE));
                /* not even a recognisable piece of them */
                assert_null(strstr(out, "0xC0FFEE"));
                assert_null(strstr(out, "0xBADCAFE"));
                assert_null(strstr(out, "0xFEED"));
                assert_null(strstr(out, "dont-print"));
                free(out);
        }

        out = dump_to_string(f->conf, 0);
        assert_non_null(strstr(out, "\nvendor.api_key=env:KB_TEST_ENV_SECRET  "
                                    "# "));
        assert_non_null(strstr(out, "\nkafka.sasl.password="
                                    "env:KB_TEST_KAFKA_SECRET  # "));
        /* log.level is the first option of the table */
        assert_memory_equal(out, "log.level=debug  # -X\n", 22);
        assert_non_null(strstr(out, "vendor.timeout_ms=30000  # default\n"));
        assert_non_null(strstr(out, "partner.acme.keys=acme.pub.json  # "));
        assert_non_null(strstr(out, "# keys.sign_secret is not set\n"));
        assert_non_null(strstr(out, "kafka.client.id=bridge-1  # "));
        /* every line is a comment or "key=value  # origin" */
        for (line = out; *line;) {
                char *nl = strchr(line, '\n');
                assert_non_null(nl);
                *nl = '\0';
                if (line[0] != '#') {
                        assert_non_null(strchr(line, '='));
                        assert_non_null(strstr(line, "  # "));
                }
                line = nl + 1;
        }
        free(out);

        /* scope: the issuer dump leaves importer-only options out */
        out = dump_to_string(f->conf, KB_SCOPE_ISSUER);
        assert_null(strstr(out, "keys.box_secret"));
        assert_non_null(strstr(out, "keys.sign_secret"));
        assert_non_null(strstr(out, "log.level="));
        free(out);
        out = dump_to_string(f->conf, KB_SCOPE_IMPORTER);
        assert_non_null(strstr(out, "keys.box_secret"));
        assert_null(strstr(out, "keys.sign_secret"));
        free(out);
}

/* ---------------------------------------------------------- describe */

static void test_describe(void **state)
{
        char *buf = NULL, *line, pat[300];
        size_t len = 0, rows = 0, nopts = 0;
        const kb_conf_opt_t *o;
        FILE *fp;

        (void)state;
        fp = open_memstream(&buf, &len);
        assert_non_null(fp);
        kb_conf_describe(fp, 1);
        assert_int_equal(fclose(fp), 0);

        assert_memory_equal(buf,
                            "| option | type | default | used by | "
                            "description |\n|---|---|---|---|---|\n",
                            strlen("| option | type | default | used by | "
                                   "description |\n|---|---|---|---|---|\n"));
        for (o = kb_conf_options; o->name; o++) {
                nopts++;
                kb_snprintf(pat, sizeof(pat), "\n| `%s` | ", o->name);
                if (!strstr(buf, pat))
                        fail_msg("option %s missing from the Markdown table",
                                 o->name);
                if (o->flags & KB_OPT_REQUIRED) {
                        kb_snprintf(pat, sizeof(pat), "\n| `%s` | ", o->name);
                        assert_non_null(strstr(strstr(buf, pat), "required"));
                }
        }
        assert_non_null(strstr(buf, "\n| `kafka.*` | "));
        /* well-formed table: every row has exactly 6 unescaped '|' (enum
         * values such as "error|warn" must be escaped) */
        for (line = buf; *line;) {
                char *nl = strchr(line, '\n'), *c;
                size_t bars = 0;
                assert_non_null(nl);
                for (c = line; c < nl; c++)
                        bars += *c == '|' && (c == line || c[-1] != '\\');
                if (bars != 6)
                        fail_msg("table row with %zu cells separators: %.*s",
                                 bars, (int)(nl - line), line);
                rows++;
                line = nl + 1;
        }
        assert_int_equal(rows, nopts + 3); /* header, rule, kafka.* */
        free(buf);

        /* plain text: every option at the start of a line */
        buf = NULL;
        fp = open_memstream(&buf, &len);
        assert_non_null(fp);
        kb_conf_describe(fp, 0);
        assert_int_equal(fclose(fp), 0);
        for (o = kb_conf_options; o->name; o++) {
                kb_snprintf(pat, sizeof(pat), "%s\n    ", o->name);
                line = strstr(buf, pat);
                assert_non_null(line);
                assert_true(line == buf || line[-1] == '\n');
        }
        free(buf);
}

/* kafka.plugin.library.paths would make librdkafka dlopen() a library
 * while the configuration is checked: refused, for every client kind,
 * before librdkafka sees it (a library that does not exist would be an
 * error from librdkafka too: the message tells which). */
static void test_kafka_plugin_refused(void **state)
{
        fx_t *f = *state;
        static const char *const keys[] = {
                "kafka.plugin.library.paths",
                "kafka.consumer.plugin.library.paths",
                "kafka.producer.plugin.library.paths",
        };
        size_t i;

        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                assert_int_equal(kb_conf_set(f->conf, keys[i],
                                             "/nonexistent/libx.so", "t",
                                             f->err, sizeof(f->err)),
                                 KB_ERR_CONFIG);
                assert_non_null(strstr(f->err, "would load (dlopen)"));
        }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_defaults),
                T(test_load_syntax),
                T(test_load_errors),
                T(test_duplicate_key),
                T(test_int_range),
                T(test_enum),
                T(test_bool),
                T(test_string_validators),
                T(test_list),
                T(test_literal_secret_refused),
                T(test_env_secret),
                T(test_env_secret_missing),
                T(test_file_secret),
                T(test_kafka_passthrough),
                T(test_kafka_plugin_refused),
                T(test_kafka_secrets),
                T(test_host_is_loopback),
                T(test_kafka_plaintext),
                T(test_check_kafka_plaintext),
                T(test_overrides),
                T(test_sections),
                T(test_check_required),
                T(test_dump_never_prints_secrets),
                T(test_describe),
        };
#undef T

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
