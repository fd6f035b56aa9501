/* test_failpoint.c -- unit tests for failpoint.c: the spec, crash, delay, @N,
 * %P, the during-a-call scope, start-up from the environment */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "failpoint.h"
#include "log.h"
#include "util.h"

#ifndef KB_FAILPOINTS
#error "test_failpoint needs KB_FAILPOINTS (tests/CMakeLists.txt)"
#endif

static const char *const all_names[] = {
        "issuer.after_mint",      "importer.after_import",
        "txn.after_produce",      "txn.before_send_offsets",
        "txn.after_send_offsets", "txn.before_commit",
        "txn.during_commit",      "redrive.before_commit",
};

static uint64_t fired(const char *name)
{
        uint64_t f = 0;

        assert_int_equal(kb_failpoint_counts(name, NULL, &f), 0);
        return f;
}

static uint64_t hits(const char *name)
{
        uint64_t h = 0;

        assert_int_equal(kb_failpoint_counts(name, &h, NULL), 0);
        return h;
}

static void configure_ok(const char *spec, uint64_t seed)
{
        char err[512] = "";

        if (kb_failpoints_configure(spec, seed, err, sizeof(err)))
                fail_msg("spec \"%s\" refused: %s", spec, err);
}

/* ---- a child process: its log, its stdout, how it ended ---- */

/* In a child: no cmocka assertion (it would jump back into the parent's
 * copy of the test); a refused spec ends the child with status 90. */
#define CHILD_CONFIGURE(spec, seed)                                            \
        do {                                                                   \
                char err_[512];                                                \
                if (kb_failpoints_configure((spec), (seed), err_,              \
                                            sizeof(err_))) {                   \
                        fputs(err_, out);                                      \
                        return 90;                                             \
                }                                                              \
        } while (0)

typedef struct {
        int status;
        int64_t ms;
        char log[8192];
        char out[256];
} child_t;

static void read_all(int fd, char *buf, size_t size)
{
        size_t n = 0;
        ssize_t r;

        while (n + 1 < size) {
                r = read(fd, buf + n, size - 1 - n);
                if (r == -1 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                n += (size_t)r;
        }
        buf[n] = '\0';
        close(fd);
}

/* Runs @p fn in a child whose log goes to a pipe and who gets a fully
 * buffered FILE on another pipe (@p out); the child ends with fn's
 * result through exit(3) -- which flushes -- unless something kills it. */
static void run_child(int (*fn)(FILE *out), child_t *res)
{
        int lp[2], op[2];
        int64_t t0;
        pid_t pid;

        memset(res, 0, sizeof(*res));
        assert_int_equal(pipe(lp), 0);
        assert_int_equal(pipe(op), 0);
        fflush(NULL); /* nothing of ours is flushed twice by the child */
        t0 = kb_mono_ms();
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                FILE *out;
                close(lp[0]);
                close(op[0]);
                kb_log_setup(KB_LOG_INFO, 0, lp[1], "test");
                out = fdopen(op[1], "w");
                if (!out)
                        _exit(99);
                setvbuf(out, NULL, _IOFBF, 4096);
                exit(fn(out));
        }
        close(lp[1]);
        close(op[1]);
        read_all(lp[0], res->log, sizeof(res->log));
        read_all(op[0], res->out, sizeof(res->out));
        assert_int_equal(waitpid(pid, &res->status, 0), pid);
        res->ms = kb_mono_ms() - t0;
}

static void assert_killed(const child_t *c)
{
        if (!WIFSIGNALED(c->status) || WTERMSIG(c->status) != SIGKILL)
                fail_msg("child not killed by SIGKILL (status 0x%x); log:\n%s",
                         c->status, c->log);
}

static void assert_exit0(const child_t *c)
{
        if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)
                fail_msg("child did not exit 0 (status 0x%x); log:\n%s",
                         c->status, c->log);
}

static void assert_has(const char *text, const char *needle)
{
        if (!strstr(text, needle))
                fail_msg("\"%s\" not in:\n%s", needle, text);
}

/* ---- the spec ---- */

static void test_spec_accepted(void **state)
{
        static const char *const ok[] = {
                "",
                " ; ;; ",
                "txn.before_commit=crash",
                "txn.before_commit=crash@3",
                "txn.before_commit=crash%0.5",
                "txn.before_commit=crash%100",
                "importer.after_import=delay(0)",
                "importer.after_import=delay(3600000)",
                "issuer.after_mint=delay(5-10)%50",
                "issuer.after_mint=delay(7-7)@1",
                "txn.during_commit=crash",
                "txn.during_commit=crash(20)",
                "txn.during_commit=crash(0-20)@2",
                " txn.after_produce = delay(1) ; txn.before_send_offsets="
                "crash%25 ;txn.after_send_offsets=delay(2);",
                "issuer.after_mint=crash;importer.after_import=delay(2000);"
                "txn.before_commit=crash@3;redrive.before_commit=crash",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(ok); i++)
                configure_ok(ok[i], 1);
        configure_ok("", 0);
}

static void test_spec_refused(void **state)
{
        static const struct {
                const char *spec, *why;
        } bad[] = {
                { "nope=crash",
                  "unknown failpoint (known: issuer.after_mint," },
                { "txn.before_commit", "expected NAME=ACTION" },
                { "txn.before_commit=", "unknown action" },
                { "txn.before_commit=boom", "unknown action" },
                { "txn.before_commit=Crash", "unknown action" },
                { "txn.before_commit=crashy", "unexpected text" },
                { "txn.before_commit=crash@", "@N" },
                { "txn.before_commit=crash@0", "@N" },
                { "txn.before_commit=crash@-1", "@N" },
                { "txn.before_commit=crash@ 2", "@N" },
                { "txn.before_commit=crash@4294967296", "@N" },
                { "txn.before_commit=crash@3%5", "@N" },
                { "txn.before_commit=crash%0", "%P" },
                { "txn.before_commit=crash%100.1", "%P" },
                { "txn.before_commit=crash%1.", "%P" },
                { "txn.before_commit=crash%.5", "%P" },
                { "txn.before_commit=crash%nan", "%P" },
                { "txn.before_commit=crash%1e1", "%P" },
                { "txn.before_commit=crash(5)", "txn.during_commit only" },
                { "importer.after_import=delay", "delay(MS)" },
                { "importer.after_import=delay()", "(MS) or (MIN-MAX)" },
                { "importer.after_import=delay(abc)", "(MS) or (MIN-MAX)" },
                { "importer.after_import=delay(-5)", "(MS) or (MIN-MAX)" },
                { "importer.after_import=delay(10-5)", "(MS) or (MIN-MAX)" },
                { "importer.after_import=delay(3600001)", "(MS) or (MIN-MAX)" },
                { "importer.after_import=delay(5", "(MS) or (MIN-MAX)" },
                { "importer.after_import=delay(5)x", "unexpected text" },
                { "txn.during_commit=delay(5)", "cannot be delayed" },
                { "issuer.after_mint=crash;issuer.after_mint=delay(1)",
                  "named twice" },
                { "issuer.after_mint=crash;bogus", "expected NAME=ACTION" },
        };
        char err[512];
        size_t i;

        (void)state;
        /* a refused spec leaves the configuration as it was */
        configure_ok("txn.after_produce=delay(0)", 1);
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                err[0] = '\0';
                if (kb_failpoints_configure(bad[i].spec, 1, err, sizeof(err)) !=
                    -1)
                        fail_msg("spec \"%s\" accepted", bad[i].spec);
                if (strncmp(err, "KB_FAILPOINTS: \"", 16) ||
                    !strstr(err, bad[i].why))
                        fail_msg("spec \"%s\": error \"%s\" lacks \"%s\"",
                                 bad[i].spec, err, bad[i].why);
        }
        KB_FAILPOINT("txn.after_produce");
        assert_int_equal(fired("txn.after_produce"), 1);
        configure_ok("", 0);
}

/* ---- counting, delay, @N, %P ---- */

static void test_counts(void **state)
{
        size_t i;
        int k;

        (void)state;
        configure_ok("", 0);
        for (i = 0; i < KB_ARRAY_SIZE(all_names); i++)
                for (k = 0; k < 3; k++)
                        KB_FAILPOINT(all_names[i]);
        KB_FAILPOINT_BEGIN("txn.during_commit");
        KB_FAILPOINT_END("txn.during_commit");
        KB_FAILPOINT("no.such.failpoint"); /* ignored */
        for (i = 0; i < KB_ARRAY_SIZE(all_names); i++) {
                /* a scope counts its begins, not KB_FAILPOINT() */
                if (!strcmp(all_names[i], "txn.during_commit"))
                        assert_int_equal(hits(all_names[i]), 1);
                else
                        assert_int_equal(hits(all_names[i]), 3);
                assert_int_equal(fired(all_names[i]), 0);
        }
        assert_int_equal(kb_failpoint_counts("no.such.failpoint", NULL, NULL),
                         -1);
        /* a new configuration starts the counts again */
        configure_ok("issuer.after_mint=delay(0)", 0);
        assert_int_equal(hits("txn.after_produce"), 0);
        configure_ok("", 0);
}

static void test_names(void **state)
{
        const char *const *n = kb_failpoint_names();
        size_t i;

        (void)state;
        for (i = 0; n[i]; i++) {
                assert_true(i < KB_ARRAY_SIZE(all_names));
                assert_string_equal(n[i], all_names[i]);
        }
        assert_int_equal(i, KB_ARRAY_SIZE(all_names));
}

static int child_delay(FILE *out)
{
        int64_t t0;

        CHILD_CONFIGURE("issuer.after_mint=delay(150)", 0);
        t0 = kb_mono_ms();
        KB_FAILPOINT("issuer.after_mint");
        fprintf(out, "%lld", (long long)(kb_mono_ms() - t0));
        return fired("issuer.after_mint") == 1 ? 0 : 3;
}

static void test_delay(void **state)
{
        child_t c;

        (void)state;
        run_child(child_delay, &c);
        assert_exit0(&c);
        assert_true(atoll(c.out) >= 150);
        assert_true(atoll(c.out) < 2000);
        assert_has(c.log,
                   "failpoint issuer.after_mint fired: delay 150 ms (hit 1)");
}

static void test_nth(void **state)
{
        int i;

        (void)state;
        configure_ok("txn.after_produce=delay(0)@3", 0);
        for (i = 1; i <= 6; i++) {
                KB_FAILPOINT("txn.after_produce");
                assert_int_equal(fired("txn.after_produce"), i >= 3 ? 1 : 0);
        }
        assert_int_equal(hits("txn.after_produce"), 6);
        configure_ok("", 0);
}

/* Which of @p n hits of "txn.after_produce=delay(0)%30" fire with @p seed. */
static void pattern(uint64_t seed, char *out, int n)
{
        uint64_t before;
        int i;

        configure_ok("txn.after_produce=delay(0)%30", seed);
        for (i = 0; i < n; i++) {
                before = fired("txn.after_produce");
                KB_FAILPOINT("txn.after_produce");
                out[i] = fired("txn.after_produce") > before ? '1' : '0';
        }
        out[n] = '\0';
}

static void test_probability(void **state)
{
        static char a[2001], b[2001], c[2001];
        int i, ones = 0;

        (void)state;
        pattern(42, a, 2000);
        pattern(42, b, 2000);
        pattern(43, c, 2000);
        for (i = 0; i < 2000; i++)
                ones += a[i] == '1';
        /* 30% of 2000 is 600, sd ~20.5: +-100 is ~5 sd */
        assert_in_range(ones, 500, 700);
        assert_string_equal(a, b); /* the seed repeats a run */
        assert_string_not_equal(a, c);
        configure_ok("", 0);
}

/* ---- crash ---- */

static int child_crash(FILE *out)
{
        CHILD_CONFIGURE("txn.before_commit=crash@2", 0);
        KB_FAILPOINT("txn.before_commit");
        /* buffered, never flushed: a crash must not flush it */
        fputs("after hit 1", out);
        KB_FAILPOINT("txn.before_commit");
        fputs(", after hit 2", out);
        return 0; /* exit(): flushes "after hit 1, after hit 2" */
}

static int child_no_crash(FILE *out)
{
        CHILD_CONFIGURE("txn.before_commit=crash@3", 0);
        KB_FAILPOINT("txn.before_commit");
        fputs("after hit 1", out);
        KB_FAILPOINT("txn.before_commit");
        fputs(", after hit 2", out);
        return 0;
}

static void test_crash(void **state)
{
        child_t c;

        (void)state;
        /* the control: the same child, not killed, flushes its output */
        run_child(child_no_crash, &c);
        assert_exit0(&c);
        assert_string_equal(c.out, "after hit 1, after hit 2");
        assert_null(strstr(c.log, "fired"));

        run_child(child_crash, &c);
        assert_killed(&c);
        assert_string_equal(c.out, ""); /* abrupt: nothing flushed */
        assert_has(c.log, "failpoint txn.before_commit fired: crash (hit 2)");
}

static int child_probability_crash(FILE *out)
{
        int i;

        CHILD_CONFIGURE("issuer.after_mint=crash%50", 7);
        for (i = 0; i < 200; i++)
                KB_FAILPOINT("issuer.after_mint");
        return 0;
}

static void test_crash_probability(void **state)
{
        child_t c;

        (void)state;
        run_child(child_probability_crash, &c);
        assert_killed(&c);
        assert_has(c.log, "failpoint issuer.after_mint fired: crash (hit ");
}

/* ---- the during-a-call scope ---- */

static int child_during_crash(FILE *out)
{
        CHILD_CONFIGURE("txn.during_commit=crash(50)", 0);
        KB_FAILPOINT_BEGIN("txn.during_commit");
        sleep(5); /* the call, still in flight when the crash is due */
        KB_FAILPOINT_END("txn.during_commit");
        return 0;
}

static void test_during_crash(void **state)
{
        child_t c;
        const char *p;

        (void)state;
        run_child(child_during_crash, &c);
        assert_killed(&c);
        assert_true(c.ms < 4000);
        p = strstr(c.log, "failpoint txn.during_commit fired: crash ");
        if (!p || !strstr(p, " ms into the call (hit 1)"))
                fail_msg("no crash line:\n%s", c.log);
        assert_true(atoi(p + strlen("failpoint txn.during_commit fired: "
                                    "crash ")) >= 50);
}

static int child_during_returns(FILE *out)
{
        CHILD_CONFIGURE("txn.during_commit=crash(300)@2", 0);
        /* hit 1: not chosen, no timer */
        KB_FAILPOINT_BEGIN("txn.during_commit");
        KB_FAILPOINT_END("txn.during_commit");
        /* hit 2: the call returns before the crash is due */
        KB_FAILPOINT_BEGIN("txn.during_commit");
        usleep(10 * 1000);
        KB_FAILPOINT_END("txn.during_commit");
        usleep(600 * 1000); /* well past the due time: no late kill */
        /* spots are no scopes: KB_FAILPOINT() leaves it alone */
        KB_FAILPOINT("txn.during_commit");
        if (fired("txn.during_commit") != 0 || hits("txn.during_commit") != 2)
                return 3;
        return 0;
}

static void test_during_returns_first(void **state)
{
        child_t c;
        const char *p;

        (void)state;
        run_child(child_during_returns, &c);
        assert_exit0(&c);
        assert_has(c.log, "failpoint txn.during_commit: crash due 300 ms "
                          "into this call (hit 2)");
        p = strstr(c.log, "failpoint txn.during_commit not fired: the call "
                          "returned after ");
        assert_non_null(p);
        assert_has(p, "before the crash due at 300 ms (hit 2)");
        /* once only: hit 1 had no timer */
        assert_null(strstr(strstr(p, "not fired") + 1, "not fired"));
        assert_null(strstr(c.log, "fired: crash"));
}

/* ---- start-up from the environment ---- */

static int child_setup_bad(FILE *out)
{
        char err[512] = "", err2[512] = "";

        setenv("KB_FAILPOINTS", "txn.before_commit=crash@x", 1);
        if (kb_failpoints_setup(err, sizeof(err)) != -1)
                return 3;
        /* once per process: the same answer again */
        if (kb_failpoints_setup(err2, sizeof(err2)) != -1 || strcmp(err, err2))
                return 4;
        fputs(err, out);
        return 0;
}

static int child_setup_bad_seed(FILE *out)
{
        char err[512] = "";

        setenv("KB_FAILPOINTS", "txn.before_commit=crash", 1);
        setenv("KB_FAILPOINTS_SEED", "12ab", 1);
        if (kb_failpoints_setup(err, sizeof(err)) != -1)
                return 3;
        fputs(err, out);
        return 0;
}

static int child_setup_ok(FILE *out)
{
        char err[512] = "";

        setenv("KB_FAILPOINTS",
               " issuer.after_mint=delay(1-5)%50;"
               "txn.during_commit=crash(0-20)@2 ;"
               "txn.before_commit=crash@3",
               1);
        setenv("KB_FAILPOINTS_SEED", "12345", 1);
        if (kb_failpoints_setup(err, sizeof(err)) != 0)
                return 3;
        /* later calls do not read the environment again */
        setenv("KB_FAILPOINTS", "bogus", 1);
        if (kb_failpoints_setup(err, sizeof(err)) != 0)
                return 4;
        KB_FAILPOINT("txn.before_commit");
        KB_FAILPOINT("txn.before_commit");
        if (hits("txn.before_commit") != 2)
                return 5;
        KB_FAILPOINTS_REPORT();
        KB_FAILPOINT("txn.before_commit"); /* hit 3: killed */
        return 0;
}

static int child_setup_none(FILE *out)
{
        char err[512] = "";

        unsetenv("KB_FAILPOINTS");
        if (kb_failpoints_setup(err, sizeof(err)) != 0)
                return 3;
        KB_FAILPOINT("txn.before_commit");
        return 0;
}

static void test_setup_env(void **state)
{
        child_t c;

        (void)state;
        run_child(child_setup_bad, &c);
        assert_exit0(&c);
        assert_has(c.out, "KB_FAILPOINTS: \"txn.before_commit=crash@x\": @N");

        run_child(child_setup_bad_seed, &c);
        assert_exit0(&c);
        assert_has(c.out, "KB_FAILPOINTS_SEED: \"12ab\": not a decimal");

        run_child(child_setup_ok, &c);
        assert_killed(&c);
        assert_has(c.log,
                   "failpoints armed (test build), KB_FAILPOINTS_SEED=12345: "
                   "issuer.after_mint=delay(1-5)%50;"
                   "txn.before_commit=crash@3;"
                   "txn.during_commit=crash(0-20)@2");
        assert_has(c.log, "failpoints: issuer.after_mint passed 0, fired 0; "
                          "txn.before_commit passed 2, fired 0; "
                          "txn.during_commit passed 0, fired 0");
        assert_has(c.log, "failpoint txn.before_commit fired: crash (hit 3)");

        run_child(child_setup_none, &c);
        assert_exit0(&c);
        assert_string_equal(c.log, ""); /* nothing armed, nothing said */
}

/* ---- the sources name known failpoints only, and each one somewhere ---- */

static void scan_file(const char *path, int *seen)
{
        static const char *const macros[] = { "KB_FAILPOINT(\"",
                                              "KB_FAILPOINT_BEGIN(\"",
                                              "KB_FAILPOINT_END(\"" };
        char line[1024], name[128];
        size_t m, i;
        FILE *f = fopen(path, "r");
        const char *p, *q;

        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
                for (m = 0; m < KB_ARRAY_SIZE(macros); m++) {
                        for (p = strstr(line, macros[m]); p;
                             p = strstr(q, macros[m])) {
                                p += strlen(macros[m]);
                                q = strchr(p, '"');
                                assert_non_null(q);
                                assert_true((size_t)(q - p) < sizeof(name));
                                memcpy(name, p, (size_t)(q - p));
                                name[q - p] = '\0';
                                for (i = 0; i < KB_ARRAY_SIZE(all_names); i++)
                                        if (!strcmp(name, all_names[i]))
                                                break;
                                if (i == KB_ARRAY_SIZE(all_names))
                                        fail_msg("%s: unknown failpoint "
                                                 "\"%s\"",
                                                 path, name);
                                seen[i]++;
                        }
                }
        }
        fclose(f);
}

static void test_spots_in_sources(void **state)
{
        char path[1024], doc[65536];
        int seen[KB_ARRAY_SIZE(all_names)] = { 0 };
        struct dirent *de, *fe;
        DIR *d, *fd;
        size_t i, len;
        FILE *f;

        (void)state;
        d = opendir(KB_TEST_DATA_DIR "/../bridge");
        assert_non_null(d);
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !strcmp(de->d_name, "include"))
                        continue;
                kb_snprintf(path, sizeof(path), "%s/../bridge/%s",
                            KB_TEST_DATA_DIR, de->d_name);
                fd = opendir(path);
                if (!fd)
                        continue;
                while ((fe = readdir(fd))) {
                        len = strlen(fe->d_name);
                        /* failpoint.[ch] hold examples, not spots */
                        if (len < 3 || strcmp(fe->d_name + len - 2, ".c") ||
                            !strcmp(fe->d_name, "failpoint.c"))
                                continue;
                        kb_snprintf(path, sizeof(path), "%s/../bridge/%s/%s",
                                    KB_TEST_DATA_DIR, de->d_name, fe->d_name);
                        scan_file(path, seen);
                }
                closedir(fd);
        }
        closedir(d);
        for (i = 0; i < KB_ARRAY_SIZE(all_names); i++)
                if (!seen[i])
                        fail_msg("failpoint %s is at no spot in bridge/",
                                 all_names[i]);
        /* the scope's begin and end come in pairs */
        for (i = 0; i < KB_ARRAY_SIZE(all_names); i++)
                if (!strcmp(all_names[i], "txn.during_commit"))
                        assert_int_equal(seen[i] % 2, 0);
        /* and the documentation names every one */
        f = fopen(KB_TEST_DATA_DIR "/../docs/failpoints.md", "r");
        assert_non_null(f);
        len = fread(doc, 1, sizeof(doc) - 1, f);
        doc[len] = '\0';
        fclose(f);
        for (i = 0; i < KB_ARRAY_SIZE(all_names); i++) {
                kb_snprintf(path, sizeof(path), "`%s`", all_names[i]);
                if (!strstr(doc, path))
                        fail_msg("docs/failpoints.md does not name %s",
                                 all_names[i]);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spec_accepted),
                cmocka_unit_test(test_spec_refused),
                cmocka_unit_test(test_counts),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_delay),
                cmocka_unit_test(test_nth),
                cmocka_unit_test(test_probability),
                cmocka_unit_test(test_crash),
                cmocka_unit_test(test_crash_probability),
                cmocka_unit_test(test_during_crash),
                cmocka_unit_test(test_during_returns_first),
                cmocka_unit_test(test_setup_env),
                cmocka_unit_test(test_spots_in_sources),
        };

        /* the firing lines would go to stderr otherwise */
        kb_log_setup(KB_LOG_ERROR, 0, 2, "test_failpoint");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
