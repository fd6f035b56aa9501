/* pipeline_meta.c -- output topics: checked at start, counts refreshed */

/* The output topics' partition counts: learnt (and each topic checked to
 * exist) by kb_pipeline_new(), then refreshed by a thread of their own so
 * that a slow broker delays the refresh, never the engine thread. */
#include "pipeline_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

/* Timeout of one metadata request on the refresh thread. */
#define KB_MD_TIMEOUT_MS 5000

/* Fetches @p ot's metadata (into the producer, so the first transaction
 * does not wait for it) and stores its partition count. Blocks up to
 * @p timeout_ms. Returns the error; a failed fetch keeps the count. */
static rd_kafka_resp_err_t md_fetch(kb_pipeline_t *pl, out_topic_t *ot,
                                    int timeout_ms)
{
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(pl->producer, 0, ot->rkt, &md, timeout_ms);
        if (!err && md->topic_cnt != 1)
                err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (!err)
                err = md->topics[0].err;
        if (!err && md->topics[0].partition_cnt > 0)
                atomic_store(&ot->partition_cnt, md->topics[0].partition_cnt);
        if (md)
                rd_kafka_metadata_destroy(md);
        return err;
}

/*
 * The refresh thread: every md_refresh_ms, one metadata request per output
 * topic. Its blocking is its own: the engine thread only reads the atomic
 * counts. A topic that cannot be described keeps its last count (a broker
 * hiccup must not make a processor fall back to other partitioning).
 */
static void *md_main(void *arg)
{
        kb_pipeline_t *pl = arg;
        struct timespec until;
        int i, stop;

        pthread_mutex_lock(&pl->md_lock);
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += pl->md_refresh_ms / 1000;
                until.tv_nsec += (long)(pl->md_refresh_ms % 1000) * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                }
                while (!pl->md_stop &&
                       pthread_cond_timedwait(&pl->md_cond, &pl->md_lock,
                                              &until) != ETIMEDOUT)
                        ;
                if (pl->md_stop)
                        break;
                pthread_mutex_unlock(&pl->md_lock);
                for (i = 0; i < pl->out_cnt; i++) {
                        rd_kafka_resp_err_t err =
                            md_fetch(pl, &pl->outs[i], KB_MD_TIMEOUT_MS);
                        if (err)
                                kb_log_warn(
                                    "pipeline",
                                    "metadata of %s: %s (keeping %d "
                                    "partition(s))",
                                    pl->outs[i].name, rd_kafka_err2str(err),
                                    atomic_load(&pl->outs[i].partition_cnt));
                }
                atomic_fetch_add(&pl->md_refreshes, 1);
                pthread_mutex_lock(&pl->md_lock);
                stop = pl->md_stop;
                if (stop)
                        break;
        }
        pthread_mutex_unlock(&pl->md_lock);
        return NULL;
}

/* Takes the output topics, checks each exists (the daemons never create
 * topics) and learns its partition count, then starts the refresh
 * thread. */
int kb_pl_outs_init(kb_pipeline_t *pl, const char *const *topics, char *errstr,
                    size_t errstr_size)
{
        pthread_condattr_t ca;
        const char *const *t;
        int n = 0, i, e;

        for (t = topics; t && *t; t++)
                n++;
        pl->outs = calloc(n ? (size_t)n : 1, sizeof(*pl->outs));
        if (!pl->outs) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        for (i = 0; i < n; i++) {
                out_topic_t *ot = &pl->outs[i];
                rd_kafka_resp_err_t err;

                atomic_init(&ot->partition_cnt, -1);
                ot->name = strdup(topics[i]);
                if (!ot->name) {
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
                pl->out_cnt = i + 1;
                ot->rkt = rd_kafka_topic_new(pl->producer, ot->name, NULL);
                if (!ot->rkt) {
                        kb_snprintf(errstr, errstr_size, "output topic %s: %s",
                                    ot->name,
                                    rd_kafka_err2str(rd_kafka_last_error()));
                        return -1;
                }
                err = md_fetch(pl, ot, 30000);
                if (kb_kafka_err_denied(err)) {
                        /* who was refused, and what (an ACL to grant) */
                        char what[300];

                        kb_snprintf(what, sizeof(what), "output topic %s",
                                    ot->name);
                        kb_pl_set_denied(pl, what, err, ot->name, 1,
                                         rd_kafka_err2str(err));
                        kb_strlcpy(errstr, pl->errstr, errstr_size);
                        return -1;
                }
                if (err) {
                        int missing =
                            err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;

                        kb_snprintf(errstr, errstr_size,
                                    "output topic %s: %s%s", ot->name,
                                    rd_kafka_err2str(err),
                                    missing ? " (the daemons never create "
                                              "topics)"
                                            : "");
                        return -1;
                }
        }
        /* the pthread functions return their error, errno is not set */
        if ((e = pthread_condattr_init(&ca))) {
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        if (!(e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)))
                e = pthread_cond_init(&pl->md_cond, &ca);
        pthread_condattr_destroy(&ca);
        if (e) {
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        if ((e = pthread_mutex_init(&pl->md_lock, NULL))) {
                pthread_cond_destroy(&pl->md_cond);
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        if ((e = pthread_create(&pl->md_thread, NULL, md_main, pl))) {
                pthread_mutex_destroy(&pl->md_lock);
                pthread_cond_destroy(&pl->md_cond);
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        pl->md_started = 1;
        return 0;
}

void kb_pl_outs_destroy(kb_pipeline_t *pl)
{
        int i;

        if (pl->md_started) {
                pthread_mutex_lock(&pl->md_lock);
                pl->md_stop = 1;
                pthread_cond_signal(&pl->md_cond);
                pthread_mutex_unlock(&pl->md_lock);
                pthread_join(pl->md_thread, NULL);
                pthread_mutex_destroy(&pl->md_lock);
                pthread_cond_destroy(&pl->md_cond);
                pl->md_started = 0;
        }
        for (i = 0; i < pl->out_cnt; i++) {
                if (pl->outs[i].rkt)
                        rd_kafka_topic_destroy(pl->outs[i].rkt);
                free(pl->outs[i].name);
        }
        free(pl->outs);
        pl->outs = NULL;
        pl->out_cnt = 0;
}

int kb_pipeline_partition_count(const kb_pipeline_t *pl, const char *topic)
{
        int i;

        for (i = 0; i < pl->out_cnt; i++)
                if (!strcmp(pl->outs[i].name, topic))
                        return atomic_load(
                            (atomic_int *)&pl->outs[i].partition_cnt);
        return -1;
}
