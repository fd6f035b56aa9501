/* daemon.c -- what the issuer and importer daemons share: Kafka set-up */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

static int64_t rk_int(rd_kafka_conf_t *rkc, const char *name)
{
        char buf[64];
        int64_t v = 0;

        kb_kafka_conf_get(rkc, name, buf, sizeof(buf));
        if (kb_parse_i64(buf, INT64_MIN, INT64_MAX, &v) == -1)
                return 0;
        return v;
}

int kb_daemon_kafka_confs(const kb_conf_t *conf, const char *group,
                          const char *tid_opt, kb_pipeline_conf_t *pc,
                          char *errstr, size_t errstr_size)
{
        const char *cextra[] = { "group.id", group, NULL };
        const char *pextra[3] = { "transactional.id", NULL, NULL };
        const char *tid = kb_conf_get(conf, tid_opt);
        char host[128], tidbuf[512], bad[256], proto[32];
        int64_t txn_ms, poll_ms, msg_ms;

        if (!tid || !*tid) {
                kb_kafka_hostname(host, sizeof(host));
                kb_snprintf(tidbuf, sizeof(tidbuf), "%s-%s", group, host);
                tid = tidbuf;
        }
        pextra[1] = tid;
        pc->commit_interval_ms =
            (int)kb_conf_get_int(conf, "pipeline.commit_interval_ms");
        pc->commit_max_records =
            (int)kb_conf_get_int(conf, "pipeline.commit_max_records");
        pc->no_idle_commit =
            !kb_conf_get_bool(conf, "pipeline.commit_when_idle");
        pc->max_buffered = (int)kb_conf_get_int(conf, "pipeline.max_buffered");
        pc->drain_timeout_ms =
            (int)kb_conf_get_int(conf, "pipeline.drain_timeout_ms");
        pc->at_least_once = kb_conf_get_bool(conf, "pipeline.at_least_once");
        pc->consumer_conf = kb_kafka_conf_new(conf, RD_KAFKA_CONSUMER, cextra,
                                              errstr, errstr_size);
        if (!pc->consumer_conf)
                return KB_ERR_CONFIG;
        pc->producer_conf = kb_kafka_conf_new(conf, RD_KAFKA_PRODUCER, pextra,
                                              errstr, errstr_size);
        if (!pc->producer_conf)
                goto fail;
        /* kb_kafka_conf_new() refused it unless allowed: say it once */
        if (kb_kafka_conf_plaintext(pc->producer_conf, bad, sizeof(bad), proto,
                                    sizeof(proto)) == -1)
                kb_log_warn("kafka",
                            "broker %s is not loopback and security.protocol "
                            "is %s, allowed by kafka_allow_plaintext: the "
                            "Kafka traffic is not encrypted",
                            bad, proto);
        txn_ms = rk_int(pc->producer_conf, "transaction.timeout.ms");
        msg_ms = rk_int(pc->producer_conf, "message.timeout.ms");
        poll_ms = rk_int(pc->consumer_conf, "max.poll.interval.ms");
        if (txn_ms > 0 && pc->commit_interval_ms * 2 >= txn_ms) {
                kb_snprintf(errstr, errstr_size,
                            "%s: pipeline.commit_interval_ms: %d ms leaves no "
                            "room within kafka.transaction.timeout.ms (%lld "
                            "ms); keep it under half of it",
                            kb_conf_origin(conf, "pipeline.commit_interval_ms"),
                            pc->commit_interval_ms, (long long)txn_ms);
                goto fail;
        }
        if (kb_conf_is_set(conf, "kafka.message.timeout.ms") &&
            msg_ms > txn_ms && txn_ms > 0) {
                kb_snprintf(errstr, errstr_size,
                            "%s: kafka.message.timeout.ms (%lld) must not "
                            "exceed kafka.transaction.timeout.ms (%lld)",
                            kb_conf_origin(conf, "kafka.message.timeout.ms"),
                            (long long)msg_ms, (long long)txn_ms);
                goto fail;
        }
        if (poll_ms > 0 && pc->drain_timeout_ms >= poll_ms) {
                kb_snprintf(errstr, errstr_size,
                            "%s: pipeline.drain_timeout_ms (%d) must be below "
                            "kafka.max.poll.interval.ms (%lld): a revoke "
                            "drains inside the poll",
                            kb_conf_origin(conf, "pipeline.drain_timeout_ms"),
                            pc->drain_timeout_ms, (long long)poll_ms);
                goto fail;
        }
        if (poll_ms > 0 &&
            kb_conf_get_int(conf, "vendor.timeout_ms") >= poll_ms) {
                kb_snprintf(errstr, errstr_size,
                            "%s: vendor.timeout_ms must be below "
                            "kafka.max.poll.interval.ms (%lld)",
                            kb_conf_origin(conf, "vendor.timeout_ms"),
                            (long long)poll_ms);
                goto fail;
        }
        /* the engine waits for a transaction's delivery and its commit as
         * long as the broker lets it stay open */
        pc->txn_timeout_ms =
            txn_ms > 0 && txn_ms <= INT32_MAX ? (int)txn_ms : 0;
        kb_log_info("kafka", "group %s, transactional.id %s", group, tid);
        return KB_OK;
fail:
        if (pc->consumer_conf)
                rd_kafka_conf_destroy(pc->consumer_conf);
        if (pc->producer_conf)
                rd_kafka_conf_destroy(pc->producer_conf);
        pc->consumer_conf = pc->producer_conf = NULL;
        return KB_ERR_CONFIG;
}
