/* test_watchdog.c -- the deadline on transactional calls (kafka/watchdog.h):
 * fires once at the deadline and not before, never after a disarm, a
 * re-arm replaces the deadline, and by default ends the process with exit
 * status 1 and a line naming the call */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "log.h"
#include "util.h"
#include "watchdog.h"

typedef struct {
        pthread_mutex_t lock;
        int fired;
        char what[64];
        int64_t limit_ms;
        int64_t at_ms; /* kb_mono_ms() when it fired */
} seen_t;

static void on_expired(void *opaque, const char *what, int64_t limit_ms)
{
        seen_t *s = opaque;

        pthread_mutex_lock(&s->lock);
        s->fired++;
        kb_strlcpy(s->what, what, sizeof(s->what));
        s->limit_ms = limit_ms;
        s->at_ms = kb_mono_ms();
        pthread_mutex_unlock(&s->lock);
}

static int fired(seen_t *s)
{
        int n;

        pthread_mutex_lock(&s->lock);
        n = s->fired;
        pthread_mutex_unlock(&s->lock);
        return n;
}

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts))
                ;
}

/* Waits up to @p ms for the callback to have fired @p n times. */
static int wait_fired(seen_t *s, int n, int ms)
{
        int64_t end = kb_mono_ms() + ms;

        while (fired(s) < n && kb_mono_ms() < end)
                sleep_ms(5);
        return fired(s);
}

static void test_fires_at_deadline(void **state)
{
        seen_t s = { .lock = PTHREAD_MUTEX_INITIALIZER };
        kb_watchdog_t *wd = kb_watchdog_new("t", on_expired, &s);
        int64_t t0;

        (void)state;
        assert_non_null(wd);
        t0 = kb_mono_ms();
        kb_watchdog_arm(wd, "commit_transaction", 150);
        sleep_ms(100);
        assert_int_equal(fired(&s), 0);
        assert_int_equal(wait_fired(&s, 1, 5000), 1);
        assert_true(s.at_ms - t0 >= 150);
        assert_string_equal(s.what, "commit_transaction");
        assert_int_equal(s.limit_ms, 150);
        assert_int_equal(kb_watchdog_expired(wd), 1);
        /* fired once: disarmed after */
        sleep_ms(200);
        assert_int_equal(fired(&s), 1);
        /* and armed again, fires again */
        kb_watchdog_arm(wd, "abort_transaction", 20);
        assert_int_equal(wait_fired(&s, 2, 5000), 2);
        assert_string_equal(s.what, "abort_transaction");
        assert_int_equal(kb_watchdog_expired(wd), 2);
        kb_watchdog_destroy(wd);
}

static void test_disarm_in_time(void **state)
{
        seen_t s = { .lock = PTHREAD_MUTEX_INITIALIZER };
        kb_watchdog_t *wd = kb_watchdog_new("t", on_expired, &s);
        int i;

        (void)state;
        assert_non_null(wd);
        for (i = 0; i < 50; i++) {
                kb_watchdog_arm(wd, "begin_transaction", 100);
                sleep_ms(2);
                kb_watchdog_disarm(wd);
        }
        sleep_ms(250);
        assert_int_equal(fired(&s), 0);
        assert_int_equal(kb_watchdog_expired(wd), 0);
        kb_watchdog_destroy(wd);
}

static void test_rearm_replaces(void **state)
{
        seen_t s = { .lock = PTHREAD_MUTEX_INITIALIZER };
        kb_watchdog_t *wd = kb_watchdog_new("t", on_expired, &s);
        int64_t t0;

        (void)state;
        assert_non_null(wd);
        kb_watchdog_arm(wd, "first", 50);
        t0 = kb_mono_ms();
        kb_watchdog_arm(wd, "second", 400);
        sleep_ms(200);
        assert_int_equal(fired(&s), 0);
        assert_int_equal(wait_fired(&s, 1, 5000), 1);
        assert_string_equal(s.what, "second");
        assert_true(s.at_ms - t0 >= 400);
        kb_watchdog_destroy(wd);
}

static void test_destroy_armed(void **state)
{
        seen_t s = { .lock = PTHREAD_MUTEX_INITIALIZER };
        kb_watchdog_t *wd = kb_watchdog_new("t", on_expired, &s);
        int64_t t0;

        (void)state;
        assert_non_null(wd);
        kb_watchdog_arm(wd, "init_transactions", 60000);
        t0 = kb_mono_ms();
        kb_watchdog_destroy(wd);
        assert_true(kb_mono_ms() - t0 < 1000);
        assert_int_equal(fired(&s), 0);
        kb_watchdog_destroy(NULL);
}

/* The default expiry: a line naming the call and the limit, then
 * _exit(1) -- in a child, whose stderr the parent reads. */
static void test_default_exits(void **state)
{
        char buf[4096];
        size_t len = 0;
        ssize_t n;
        int fds[2], st;
        pid_t pid;

        (void)state;
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                kb_watchdog_t *wd;

                close(fds[0]);
                kb_log_setup(KB_LOG_INFO, 0, fds[1], "test");
                wd = kb_watchdog_new("pipeline", NULL, NULL);
                if (!wd)
                        _exit(3);
                kb_watchdog_arm(wd, "send_offsets_to_transaction", 100);
                sleep_ms(10000);
                _exit(4); /* the watchdog did not end the process */
        }
        close(fds[1]);
        while (len < sizeof(buf) - 1 &&
               (n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)n;
        buf[len] = '\0';
        close(fds[0]);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 1);
        assert_non_null(strstr(buf, "pipeline: send_offsets_to_transaction "
                                    "has not returned within 100 ms"));
        assert_non_null(strstr(buf, "exit status 1"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fires_at_deadline),
                cmocka_unit_test(test_disarm_in_time),
                cmocka_unit_test(test_rearm_replaces),
                cmocka_unit_test(test_destroy_armed),
                cmocka_unit_test(test_default_exits),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
