/* bench_json.c -- CPU cost of parsing (and re-serialising) one JSON
 * document with json-c, one core */
/*
 * Usage: bench_json FILE [ITERATIONS]
 *
 * Reads FILE (a session record, as the vendor's import answer gives it),
 * then parses it ITERATIONS times (default 5000) with kb_json_parse(), and
 * parses and serialises it as many times again, and prints the median and
 * 99th percentile per operation in microseconds. Exit 1 if a parse fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "json.h"
#include "bench_stats.h"
#include "util.h"

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        kb_buf_t b = KB_BUF_INIT;
        char chunk[4096];
        size_t n;

        if (!f)
                return NULL;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (kb_buf_append(&b, chunk, n) == -1) {
                        fclose(f);
                        kb_buf_free(&b, 0);
                        return NULL;
                }
        fclose(f);
        return kb_buf_steal(&b, len);
}

int main(int argc, char **argv)
{
        int64_t n = 5000, *t_parse, *t_round;
        size_t len = 0, i;
        char *doc;
        int rc = 0;

        if (argc < 2 || argc > 3 ||
            (argc > 2 && kb_parse_i64(argv[2], 100, 10000000, &n) == -1)) {
                fprintf(stderr, "usage: %s FILE [ITERATIONS]\n", argv[0]);
                return 2;
        }
        doc = slurp(argv[1], &len);
        if (!doc) {
                fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[1]);
                return 1;
        }
        t_parse = calloc((size_t)n, sizeof(int64_t));
        t_round = calloc((size_t)n, sizeof(int64_t));
        if (!t_parse || !t_round)
                return 1;
        for (i = 0; i < (size_t)n; i++) {
                int64_t t0 = bench_now_ns();
                json_object *o = kb_json_parse(doc, len, 64, NULL, 0);
                t_parse[i] = bench_now_ns() - t0;
                if (!o)
                        rc = 1;
                json_object_put(o);
        }
        for (i = 0; i < (size_t)n; i++) {
                int64_t t0 = bench_now_ns();
                json_object *o = kb_json_parse(doc, len, 64, NULL, 0);
                size_t sl = 0;
                if (!o || !kb_json_str(o, &sl) || sl == 0)
                        rc = 1;
                json_object_put(o);
                t_round[i] = bench_now_ns() - t0;
        }
        printf("%lld iterations, document %zu bytes\n", (long long)n, len);
        bench_report("parse", t_parse, (long)n);
        bench_report("parse+serialise", t_round, (long)n);
        if (rc)
                printf("FAILED: the document did not parse\n");
        free(t_parse);
        free(t_round);
        free(doc);
        return rc;
}
