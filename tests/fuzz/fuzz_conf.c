/* fuzz_conf.c -- the configuration: a properties file and -X overrides as
 * every command loads them (kb_cmd_conf_load()), then the accessors and
 * the dump.
 *
 * Input: the file's bytes, then for each -X argument a NUL byte and the
 * argument ("key=value"). The file lives in a memfd: nothing on disk. */
/* fuzz-options: -max_len=20000 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "cmd.h"
#include "conf.h"
#include "fuzz.h"

#define MAX_X 16

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        memfd = memfd_create("fuzz-conf", MFD_CLOEXEC);
        if (memfd < 0)
                abort();
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
        /* what env: secrets of the seeds name */
        setenv("KB_FUZZ_SECRET", "fuzz-secret-value", 1);
        return 0;
}

static const char *lookup(void *opaque, const char *name)
{
        (void)opaque;
        return !strcmp(name, "for_application_id") ? "app" : NULL;
}

static int on_kafka(void *opaque, const char *key, const char *value,
                    const char *origin)
{
        size_t *n = opaque;

        FUZZ_CHECK(key && value && origin);
        (*n)++;
        return 0;
}

/* What every command reads after loading, read back for checks. */
static void use(kb_conf_t *conf, int resolve_files, int secret_in_input)
{
        const kb_conf_opt_t *o;
        char **list, err[512], *dump = NULL, out[512];
        size_t n, i, dlen = 0, nk = 0;
        FILE *fp;

        for (o = kb_conf_options; o->name; o++) {
                const char *v = kb_conf_get(conf, o->name);
                FUZZ_CHECK(kb_conf_origin(conf, o->name) != NULL);
                if (o->type == KB_CONF_INT || o->type == KB_CONF_BOOL) {
                        int64_t x = kb_conf_get_int(conf, o->name);
                        /* a value that was let in is in range */
                        if (o->type == KB_CONF_INT && v && *v)
                                FUZZ_CHECK(x >= o->min && x <= o->max);
                }
                if (o->type == KB_CONF_LIST) {
                        list = kb_conf_get_list(conf, o->name, &n);
                        for (i = 0; list && i < n; i++)
                                FUZZ_CHECK(list[i] != NULL);
                        kb_conf_list_free(list);
                }
                if (o->type == KB_CONF_STR && v && strchr(o->name, '*') == NULL)
                        (void)kb_conf_expand(v, lookup, NULL, out, sizeof(out));
        }
        list = kb_conf_sections(conf, "partner", &n);
        FUZZ_CHECK(list != NULL);
        for (i = 0; i < n; i++)
                FUZZ_CHECK(list[i] && list[i][0]);
        kb_conf_list_free(list);
        list = kb_conf_sections(conf, "rule", &n);
        kb_conf_list_free(list);
        /* the dump never writes a secret's value (unless the input wrote
         * it as a plain value itself) */
        fp = open_memstream(&dump, &dlen);
        FUZZ_CHECK(fp != NULL);
        kb_conf_dump(conf, 0, fp);
        fclose(fp);
        FUZZ_CHECK(secret_in_input || !dump ||
                   !strstr(dump, "fuzz-secret-value"));
        free(dump);
        /* secrets resolve from the environment; file: ones would read any
         * path the input names (a FIFO would block): only when none */
        if (resolve_files) {
                (void)kb_conf_check(conf, 0, err, sizeof(err));
                (void)kb_conf_check(conf, KB_SCOPE_ISSUER, err, sizeof(err));
                (void)kb_conf_check(conf, KB_SCOPE_IMPORTER, err, sizeof(err));
                (void)kb_conf_foreach_kafka(conf, on_kafka, &nk, err,
                                            sizeof(err));
        }
}

/* Case-insensitive search in @p n bytes (by hand: libFuzzer's hooks on
 * strncasecmp would make this the slowest part of a run). */
static int contains(const uint8_t *data, size_t n, const char *word)
{
        size_t wl = strlen(word), i, j;

        for (i = 0; i + wl <= n; i++) {
                for (j = 0; j < wl; j++) {
                        uint8_t c = data[i + j];
                        if (c >= 'A' && c <= 'Z')
                                c = (uint8_t)(c - 'A' + 'a');
                        if (c != (uint8_t)word[j])
                                break;
                }
                if (j == wl)
                        return 1;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nul = memchr(data, '\0', size);
        size_t flen = nul ? (size_t)(nul - data) : size;
        char *argv[2 * MAX_X + 1], err[1024];
        int argc = 0, r;
        kb_conf_t *conf;

        /* librdkafka dlopen()s kafka.plugin.library.paths while the value
         * is checked (tests/fuzz/README.md, "Findings"): not in a fuzzer */
        if (contains(data, size, "plugin"))
                return 0;
        if (ftruncate(memfd, 0) != 0 ||
            (flen && pwrite(memfd, data, flen, 0) != (ssize_t)flen))
                abort();
        if (nul) {
                const uint8_t *p = nul + 1;
                size_t left = size - flen - 1;
                while (argc < 2 * MAX_X) {
                        char *x = fuzz_field(&p, &left, '\0');
                        if (!x)
                                break;
                        argv[argc++] = strdup("-X");
                        argv[argc++] = x;
                }
        }
        argv[argc] = NULL;

        conf = kb_conf_new();
        FUZZ_CHECK(conf != NULL);
        memset(err, 'x', sizeof(err));
        r = kb_cmd_conf_load(conf, memfd_path, argc, argv, 0, err, sizeof(err));
        FUZZ_CHECK(r == KB_OK || r == KB_ERR_CONFIG);
        if (r != KB_OK) {
                /* "file:line: reason" or "-X ...: reason" */
                FUZZ_CHECK(memchr(err, '\0', sizeof(err)) && err[0]);
        }
        /* also what loaded before an error stays usable */
        use(conf, !contains(data, size, "file:"),
            contains(data, size, "fuzz-secret-value"));
        kb_conf_destroy(conf);
        while (argc > 0)
                free(argv[--argc]);
        return 0;
}
