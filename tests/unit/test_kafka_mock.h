/* test_kafka_mock.h -- shared harness of the engine tests: a librdkafka mock
 * cluster with "in" and "out" topics, a processor with per-record attempt
 * counters, a runner thread, output and offset checks */
#ifndef KB_TEST_KAFKA_MOCK_H
#define KB_TEST_KAFKA_MOCK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

/* Kafka protocol ApiKeys (rdkafka_protocol.h is not installed) */
#define T_API_PRODUCE         0
#define T_API_METADATA        3
#define T_API_ADD_OFFSETS_TXN 25
#define T_API_END_TXN         26
#define T_API_TXN_OFFSET_CMT  28

#define T_NREC    300 /* input records */
#define T_NPARTS  3   /* partitions of "in" and "out" */
#define T_MAXPEND 40  /* processor capacity */
/* Bound of every wait: generous, for ASan on a loaded 2-core machine.
 * Nothing asserts that anything is fast. */
#define T_WAIT_MS 90000

typedef struct t_world_s {
        rd_kafka_t *host;
        rd_kafka_mock_cluster_t *mc;
        char bootstrap[256];
} t_world_t;

/* What every attempt at an input record did, shared by the processors of
 * all pipelines in a test (they run on different threads). */
typedef struct t_shared_s {
        atomic_int attempts[T_NREC];  /* starts of record i */
        atomic_int committed[T_NREC]; /* commits of record i */
        atomic_int committed_attempt[T_NREC];
} t_shared_t;

typedef struct t_pend_s {
        kb_rec_t *rec;
        int64_t due_us;
} t_pend_t;

typedef struct t_proc_s {
        t_shared_t *sh;
        t_pend_t pend[T_NREC];
        int npend;
        int max_pending; /* capacity, T_MAXPEND unless set */
        int delay_us;    /* a record takes 0..delay_us */
        unsigned seed;
        atomic_int gate; /* 0: hold records that are not orphaned */
        int started, finished_committed, finished_dropped, orphans_done;
        atomic_int done_total; /* read by the test's main thread */
        atomic_int commits;    /* on_commit calls */
        /* highest offset committed per input partition (on_commit) */
        atomic_llong committed_off[T_NPARTS];
        atomic_int offsets_backwards; /* on_commit saw an offset go back */
} t_proc_t;

static inline void t_proc_init(t_proc_t *p, t_shared_t *sh, unsigned seed)
{
        int i;

        memset(p, 0, sizeof(*p));
        p->sh = sh;
        p->seed = seed;
        p->delay_us = 20000;
        p->max_pending = T_MAXPEND;
        atomic_init(&p->gate, 1);
        for (i = 0; i < T_NPARTS; i++)
                atomic_init(&p->committed_off[i], -1);
}

static inline int t_rec_index(kb_rec_t *rec)
{
        size_t vlen;
        const char *v = kb_rec_value(rec, &vlen);
        char buf[32];
        int part, idx;

        assert_true(vlen < sizeof(buf));
        memcpy(buf, v, vlen);
        buf[vlen] = '\0';
        assert_int_equal(sscanf(buf, "%d:%d", &part, &idx), 2);
        assert_true(idx >= 0 && idx < T_NREC);
        return idx;
}

static inline void p_start(void *opaque, kb_rec_t *rec)
{
        t_proc_t *p = opaque;
        int idx = t_rec_index(rec);
        int attempt = atomic_fetch_add(&p->sh->attempts[idx], 1) + 1;

        assert_true(p->npend < p->max_pending);
        kb_rec_set_user(rec, (void *)(intptr_t)attempt);
        p->pend[p->npend].rec = rec;
        /* finish in 0..delay: records complete out of order */
        p->pend[p->npend].due_us =
            kb_mono_us() + (p->delay_us ? rand_r(&p->seed) % p->delay_us : 0);
        p->npend++;
        p->started++;
}

static inline int p_poll(void *opaque, int timeout_ms)
{
        t_proc_t *p = opaque;
        int64_t now = kb_mono_us();
        int i, n = 0;

        for (i = 0; i < p->npend;) {
                t_pend_t *e = &p->pend[i];
                if (kb_rec_orphaned(e->rec)) {
                        /* abandoned by a revoke or rewind: finish it
                         * without outputs (it is freed in here) */
                        p->orphans_done++;
                        kb_rec_done(e->rec);
                        *e = p->pend[--p->npend];
                        n++;
                } else if (atomic_load(&p->gate) && e->due_us <= now) {
                        char val[48];
                        int idx = t_rec_index(e->rec);
                        int attempt = (int)(intptr_t)kb_rec_user(e->rec);
                        /* same partition number out as in: the output
                         * order per partition shows the release order */
                        snprintf(val, sizeof(val), "%d:%d:%d",
                                 (int)kb_rec_partition(e->rec), idx, attempt);
                        assert_int_equal(
                            kb_rec_produce(e->rec, "out",
                                           kb_rec_partition(e->rec), NULL, 0,
                                           val, strlen(val), NULL),
                            KB_OK);
                        kb_rec_done(e->rec);
                        atomic_fetch_add(&p->done_total, 1);
                        *e = p->pend[--p->npend];
                        n++;
                } else {
                        i++;
                }
        }
        /* honour the timeout when there is nothing to do, as a real
         * processor blocks in poll(): no busy loop on a 2-core machine */
        if (n == 0 && timeout_ms > 0)
                usleep((useconds_t)(timeout_ms > 5 ? 5 : timeout_ms) * 1000);
        return n;
}

static inline int p_has_capacity(void *opaque)
{
        t_proc_t *p = opaque;

        return p->npend < p->max_pending;
}

static inline void p_on_finish(void *opaque, kb_rec_t *rec, int committed)
{
        t_proc_t *p = opaque;

        if (committed) {
                int idx = t_rec_index(rec);
                p->finished_committed++;
                atomic_fetch_add(&p->sh->committed[idx], 1);
                atomic_store(&p->sh->committed_attempt[idx],
                             (int)(intptr_t)kb_rec_user(rec));
        } else {
                p->finished_dropped++;
        }
}

static inline void p_on_commit(void *opaque,
                               const rd_kafka_topic_partition_list_t *offsets)
{
        t_proc_t *p = opaque;
        int i;

        for (i = 0; i < offsets->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
                long long prev;
                assert_string_equal(tp->topic, "in");
                assert_true(tp->partition >= 0 && tp->partition < T_NPARTS);
                prev = atomic_load(&p->committed_off[tp->partition]);
                if (tp->offset < prev)
                        atomic_fetch_add(&p->offsets_backwards, 1);
                else
                        atomic_store(&p->committed_off[tp->partition],
                                     tp->offset);
        }
        atomic_fetch_add(&p->commits, 1);
}

/* Finishes whatever the processor still holds (orphaned after a stop or a
 * failure): must happen before kb_pipeline_destroy(). */
static inline void t_proc_finish_all(t_proc_t *p)
{
        while (p->npend > 0) {
                kb_rec_done(p->pend[--p->npend].rec);
                p->orphans_done++;
        }
}

static const kb_pipeline_ops_t t_ops = { p_start, p_poll,      p_has_capacity,
                                         NULL,    p_on_finish, NULL };

/* When set, the processor ops of the pipelines t_pipeline_new() makes
 * instead of t_ops; their opaque is still the t_proc_t (a test's own
 * processor embeds one as its first member). */
static const kb_pipeline_ops_t *t_pipeline_ops;

static inline void t_world_new(t_world_t *w)
{
        rd_kafka_conf_t *hostconf = rd_kafka_conf_new();
        char err[256];

        memset(w, 0, sizeof(*w));
        rd_kafka_conf_set(hostconf, "log_level", "3", err, sizeof(err));
        w->host = rd_kafka_new(RD_KAFKA_PRODUCER, hostconf, err, sizeof(err));
        assert_non_null(w->host);
        w->mc = rd_kafka_mock_cluster_new(w->host, 1);
        assert_non_null(w->mc);
        kb_strlcpy(w->bootstrap, rd_kafka_mock_cluster_bootstraps(w->mc),
                   sizeof(w->bootstrap));
        assert_int_equal(rd_kafka_mock_topic_create(w->mc, "in", T_NPARTS, 1),
                         0);
        assert_int_equal(rd_kafka_mock_topic_create(w->mc, "out", T_NPARTS, 1),
                         0);
}

static inline void t_world_destroy(t_world_t *w)
{
        /* the mock cluster before the handle that hosts it */
        rd_kafka_mock_cluster_destroy(w->mc);
        rd_kafka_destroy(w->host);
}

/* Produces input records from..to-1: "partition:index", partition =
 * index % T_NPARTS. */
static inline void t_produce_inputs(const t_world_t *w, int from, int to)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        char err[256], val[32];
        rd_kafka_t *rk;
        int i;

        assert_int_equal(rd_kafka_conf_set(rkc, "bootstrap.servers",
                                           w->bootstrap, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
        assert_non_null(rk);
        for (i = from; i < to; i++) {
                snprintf(val, sizeof(val), "%d:%d", i % T_NPARTS, i);
                assert_int_equal(
                    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("in"),
                                      RD_KAFKA_V_PARTITION(i % T_NPARTS),
                                      RD_KAFKA_V_VALUE(val, strlen(val)),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    0);
        }
        assert_int_equal(rd_kafka_flush(rk, T_WAIT_MS), 0);
        rd_kafka_destroy(rk);
}

/* When set, called with each pipeline's producer configuration right
 * before the pipeline is created (a test's own log callback, ...). */
static void (*t_producer_conf_hook)(rd_kafka_conf_t *conf);

/* A pipeline on @p w's "in" -> "out", in group @p group. @p pextra: more
 * producer settings (NULL-terminated pairs, may be NULL). */
static inline kb_pipeline_t *t_pipeline_new(const t_world_t *w,
                                            const char *group, const char *txid,
                                            const char *const *pextra,
                                            int at_least_once, t_proc_t *p,
                                            kb_pipeline_conf_t *tweak)
{
        static const char *const topics[] = { "in", NULL };
        static const char *const outs[] = { "out", NULL };
        const char *cextra[] = { "group.id",
                                 group,
                                 "session.timeout.ms",
                                 "6000",
                                 "heartbeat.interval.ms",
                                 "2000",
                                 "fetch.wait.max.ms",
                                 "10",
                                 NULL };
        kb_pipeline_conf_t pc;
        kb_pipeline_t *pl;
        char err[512];
        int i;

        if (tweak)
                pc = *tweak;
        else
                memset(&pc, 0, sizeof(pc));
        pc.consumer_conf = kb_kafka_conf_new(NULL, RD_KAFKA_CONSUMER, cextra,
                                             err, sizeof(err));
        assert_non_null(pc.consumer_conf);
        pc.producer_conf =
            kb_kafka_conf_new(NULL, RD_KAFKA_PRODUCER, NULL, err, sizeof(err));
        assert_non_null(pc.producer_conf);
        assert_int_equal(rd_kafka_conf_set(pc.producer_conf, "transactional.id",
                                           txid, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        for (i = 0; pextra && pextra[i]; i += 2)
                assert_int_equal(rd_kafka_conf_set(pc.producer_conf, pextra[i],
                                                   pextra[i + 1], err,
                                                   sizeof(err)),
                                 RD_KAFKA_CONF_OK);
        /* KB_TEST_RDKAFKA_DEBUG=<contexts>: librdkafka's own debug log of
         * the producer (e.g. "eos" shows every transactional state) */
        if (getenv("KB_TEST_RDKAFKA_DEBUG") && *getenv("KB_TEST_RDKAFKA_DEBUG"))
                assert_int_equal(
                    rd_kafka_conf_set(pc.producer_conf, "debug",
                                      getenv("KB_TEST_RDKAFKA_DEBUG"), err,
                                      sizeof(err)),
                    RD_KAFKA_CONF_OK);
        rd_kafka_conf_set(pc.consumer_conf, "bootstrap.servers", w->bootstrap,
                          err, sizeof(err));
        rd_kafka_conf_set(pc.producer_conf, "bootstrap.servers", w->bootstrap,
                          err, sizeof(err));
        if (t_producer_conf_hook)
                t_producer_conf_hook(pc.producer_conf);
        pc.topics = topics;
        pc.out_topics = outs;
        if (!pc.commit_interval_ms)
                pc.commit_interval_ms = 50;
        if (!pc.commit_max_records)
                pc.commit_max_records = 64;
        if (!pc.max_buffered)
                pc.max_buffered = 1000;
        if (!pc.drain_timeout_ms)
                pc.drain_timeout_ms = T_WAIT_MS;
        pc.at_least_once = at_least_once;
        pc.on_commit = p_on_commit;
        pl = kb_pipeline_new(&pc, t_pipeline_ops ? t_pipeline_ops : &t_ops, p,
                             err, sizeof(err));
        if (!pl)
                fail_msg("kb_pipeline_new: %s", err);
        return pl;
}

typedef struct t_runner_s {
        kb_pipeline_t *pl;
        atomic_int *stop;
        pthread_t th;
        int rc;
} t_runner_t;

static inline void *t_run_main(void *arg)
{
        t_runner_t *r = arg;

        r->rc = kb_pipeline_run(r->pl, r->stop);
        return NULL;
}

static inline void t_run_start(t_runner_t *r, kb_pipeline_t *pl,
                               atomic_int *stop)
{
        r->pl = pl;
        r->stop = stop;
        r->rc = -1;
        assert_int_equal(pthread_create(&r->th, NULL, t_run_main, r), 0);
}

static inline int t_run_join(t_runner_t *r)
{
        assert_int_equal(pthread_join(r->th, NULL), 0);
        return r->rc;
}

/* Waits (bounded) until every input record is committed once. */
static inline int t_wait_all_committed(const t_shared_t *sh)
{
        int64_t deadline = kb_mono_ms() + T_WAIT_MS;

        while (kb_mono_ms() < deadline) {
                int i, all = 1;
                for (i = 0; i < T_NREC && all; i++)
                        all = atomic_load(&sh->committed[i]) > 0;
                if (all)
                        return 1;
                usleep(20000);
        }
        return 0;
}

/* Every input committed exactly once (by any pipeline); the outputs of each
 * committed attempt appear exactly once in "out", in input order per
 * partition. (The mock broker shows aborted transactions' outputs to
 * read_committed consumers too: those are the other attempts, and are
 * told apart by the attempt number each output carries.) */
static inline void t_check_outputs(const t_world_t *w, const t_shared_t *sh)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        char err[256];
        rd_kafka_t *rk;
        int seen[T_NREC] = { 0 }, last[T_NPARTS], eofs = 0, i;
        int64_t deadline = kb_mono_ms() + T_WAIT_MS;

        for (i = 0; i < T_NREC; i++)
                assert_int_equal(atomic_load(&sh->committed[i]), 1);
        for (i = 0; i < T_NPARTS; i++)
                last[i] = -1;
        rd_kafka_conf_set(rkc, "bootstrap.servers", w->bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "group.id", "checker", err, sizeof(err));
        rd_kafka_conf_set(rkc, "enable.partition.eof", "true", err,
                          sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, err, sizeof(err));
        assert_non_null(rk);
        parts = rd_kafka_topic_partition_list_new(T_NPARTS);
        for (i = 0; i < T_NPARTS; i++)
                rd_kafka_topic_partition_list_add(parts, "out", i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        /* the pipelines are done: "out" does not grow any more */
        while (eofs < T_NPARTS && kb_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                char buf[48];
                int part, idx, attempt;
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else if (!m->err) {
                        assert_true(m->len < sizeof(buf));
                        memcpy(buf, m->payload, m->len);
                        buf[m->len] = '\0';
                        assert_int_equal(
                            sscanf(buf, "%d:%d:%d", &part, &idx, &attempt), 3);
                        assert_int_equal(part, m->partition);
                        assert_true(idx >= 0 && idx < T_NREC);
                        if (attempt ==
                            atomic_load(&sh->committed_attempt[idx])) {
                                assert_true(idx > last[part]);
                                last[part] = idx;
                                seen[idx]++;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        assert_int_equal(eofs, T_NPARTS);
        for (i = 0; i < T_NREC; i++)
                if (seen[i] != 1)
                        fail_msg("input %d: its committed output appears %d "
                                 "times",
                                 i, seen[i]);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

/* The committed offsets of @p group on "in" (RD_KAFKA_OFFSET_INVALID when
 * none), read by a fresh consumer. */
static inline void t_committed(const t_world_t *w, const char *group,
                               int64_t out[T_NPARTS])
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        char err[256];
        rd_kafka_t *rk;
        int i;

        rd_kafka_conf_set(rkc, "bootstrap.servers", w->bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "group.id", group, err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, err, sizeof(err));
        assert_non_null(rk);
        parts = rd_kafka_topic_partition_list_new(T_NPARTS);
        for (i = 0; i < T_NPARTS; i++)
                rd_kafka_topic_partition_list_add(parts, "in", i);
        assert_int_equal(rd_kafka_committed(rk, parts, T_WAIT_MS), 0);
        for (i = 0; i < T_NPARTS; i++)
                out[i] = parts->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
}

/* Log setup; KB_TEST_FILTER=<cmocka pattern> runs only matching tests,
 * KB_TEST_LOG=<level 3..7> logs more, KB_TEST_RDKAFKA_DEBUG=<contexts> turns
 * on librdkafka's debug log of the pipelines' producers. */
static inline void t_main_setup(const char *name, int level)
{
        const char *f = getenv("KB_TEST_FILTER"), *l = getenv("KB_TEST_LOG");

        if (f && *f)
                cmocka_set_test_filter(f);
        if (l && *l)
                level = (int)strtol(l, NULL, 10);
        kb_log_setup(level, 0, 2, name);
}

#endif /* KB_TEST_KAFKA_MOCK_H */
