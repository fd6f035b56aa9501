/* kafka.c -- librdkafka configuration, logging and small helpers */
#include "kafka.h"

#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* One metadata request of kb_kafka_probe(): the probe serves its error
 * callback (a refused login) and the stop flag between two. */
#define KB_PROBE_SLICE_MS 250

/* The first librdkafka whose SCRAM Kafka 4 accepts (2.6.1: the client
 * nonce is no longer sent twice in the client-final-message,
 * confluentinc/librdkafka#4895), as rd_kafka_version() counts. */
#define KB_RDKAFKA_SCRAM_KAFKA4 0x02060100

/* The first librdkafka that destroys a group consumer whose first
 * rebalance never finished without aborting in its cooperative-sticky
 * assignor ("Assertion `assignor_state' failed",
 * confluentinc/librdkafka#4312, fixed by #4381 in 2.3.0). */
#define KB_RDKAFKA_ASSIGNOR_STATE_FIX 0x020300ff

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        /* librdkafka logs at syslog levels too; cap at our scale. */
        if (level < KB_LOG_ERROR)
                level = KB_LOG_ERROR;
        KB_LOG(level, "rdkafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        (void)opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char fatal[512];
                rd_kafka_resp_err_t orig;
                orig = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                kb_log_error("kafka", "%s: fatal error: %s: %s",
                             rd_kafka_name(rk), rd_kafka_err2name(orig), fatal);
                return;
        }
        /* Transient (broker down, all brokers down, ...): librdkafka
         * recovers by itself; say so once per event. */
        kb_log_warn("kafka", "%s: %s: %s", rd_kafka_name(rk),
                    rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int set_one(rd_kafka_conf_t *rkc, const char *k, const char *v,
                   const char *origin, char *errstr, size_t errstr_size)
{
        char rerr[256];

        if (rd_kafka_conf_set(rkc, k, v, rerr, sizeof(rerr)) !=
            RD_KAFKA_CONF_OK) {
                kb_snprintf(errstr, errstr_size, "%s: kafka.%s: %s", origin, k,
                            rerr);
                return -1;
        }
        return 0;
}

typedef struct {
        rd_kafka_conf_t *rkc;
        rd_kafka_type_t kind;
        char *errstr;
        size_t errstr_size;
} set_ctx_t;

static int set_cb(void *opaque, const char *key, const char *value,
                  const char *origin)
{
        set_ctx_t *c = opaque;

        if (!strncmp(key, "consumer.", 9)) {
                if (c->kind != RD_KAFKA_CONSUMER)
                        return 0;
                key += 9;
        } else if (!strncmp(key, "producer.", 9)) {
                if (c->kind != RD_KAFKA_PRODUCER)
                        return 0;
                key += 9;
        }
        return set_one(c->rkc, key, value, origin, c->errstr, c->errstr_size);
}

/* A property's value in malloc()ed memory ("" when unset), NULL on
 * ENOMEM: a broker list has no useful upper bound. */
static char *conf_dup(rd_kafka_conf_t *rkc, const char *name)
{
        size_t sz = 0;
        char *v;

        if (rd_kafka_conf_get(rkc, name, NULL, &sz) != RD_KAFKA_CONF_OK)
                return strdup("");
        v = malloc(sz + 1);
        if (v && rd_kafka_conf_get(rkc, name, v, &sz) != RD_KAFKA_CONF_OK)
                v[0] = '\0';
        return v;
}

int kb_kafka_conf_plaintext(rd_kafka_conf_t *rkc, char *bad, size_t bad_size,
                            char *proto, size_t proto_size)
{
        char *bs = conf_dup(rkc, "bootstrap.servers");
        char *sp = conf_dup(rkc, "security.protocol");
        int r;

        if (!bs || !sp) {
                kb_snprintf(bad, bad_size, "out of memory");
                r = KB_ERR_NOMEM;
        } else {
                r = kb_conf_kafka_plaintext(bs, sp, bad, bad_size);
        }
        kb_strlcpy(proto, sp && *sp ? sp : "plaintext", proto_size);
        free(bs);
        free(sp);
        return r;
}

rd_kafka_conf_t *kb_kafka_conf_new(const kb_conf_t *conf, rd_kafka_type_t kind,
                                   const char *const *extra, char *errstr,
                                   size_t errstr_size)
{
        static const char *const common[] = {
                "client.id", "kyc-bridge", "socket.nagle.disable", "true",
                /* fail fast when the cluster is unreachable at start-up */
                "allow.auto.create.topics", "false", NULL
        };
        static const char *const producer[] = {
                /* same partitioning as the Java client, so partners'
                 * Java producers and ours agree on a key's partition */
                "partitioner", "murmur2_random", "linger.ms", "5",
                "enable.idempotence", "true",
                /* a commit right after a commit meets
                 * CONCURRENT_TRANSACTIONS while the coordinator still
                 * writes the last one's markers (a few ms): retry it soon,
                 * not after 100 ms. 20 ms put the hand-off's p99 at 53 ms
                 * at 100 requests/s, 5 ms at 44 (bench/bench.py) */
                "retry.backoff.ms", "5", NULL
        };
        static const char *const consumer[] = { "enable.auto.commit",
                                                "false",
                                                "auto.offset.reset",
                                                "earliest",
                                                "isolation.level",
                                                "read_committed",
                                                "enable.partition.eof",
                                                "false",
                                                "partition.assignment.strategy",
                                                "cooperative-sticky",
                                                NULL };
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        const char *const *p;
        set_ctx_t ctx;
        char bad[256], proto[32];
        int r;

        if (!rkc) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        for (p = common; *p; p += 2)
                if (kind == RD_KAFKA_CONSUMER ||
                    strcmp(p[0], "allow.auto.create.topics"))
                        if (set_one(rkc, p[0], p[1], "default", errstr,
                                    errstr_size))
                                goto fail;
        for (p = kind == RD_KAFKA_PRODUCER ? producer : consumer; *p; p += 2)
                if (set_one(rkc, p[0], p[1], "default", errstr, errstr_size))
                        goto fail;
        ctx.rkc = rkc;
        ctx.kind = kind;
        ctx.errstr = errstr;
        ctx.errstr_size = errstr_size;
        if (conf &&
            kb_conf_foreach_kafka(conf, set_cb, &ctx, errstr, errstr_size))
                goto fail;
        for (p = extra; p && *p; p += 2)
                if (set_one(rkc, p[0], p[1], "internal", errstr, errstr_size))
                        goto fail;
        /* kb_conf_check() refuses this first, with the option's origin;
         * here it holds for every client, whatever set the brokers */
        r = kb_kafka_conf_plaintext(rkc, bad, sizeof(bad), proto,
                                    sizeof(proto));
        if (r == KB_ERR_NOMEM) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (r && !(conf && kb_conf_get_bool(conf, "kafka_allow_plaintext"))) {
                kb_snprintf(errstr, errstr_size,
                            "kafka.bootstrap.servers: broker %s is not a "
                            "loopback address and the connection to it "
                            "would not be encrypted (security.protocol = "
                            "%s); " KB_CONF_KAFKA_PLAINTEXT_HINT,
                            bad, proto);
                goto fail;
        }
        rd_kafka_conf_set_log_cb(rkc, log_cb);
        rd_kafka_conf_set_error_cb(rkc, error_cb);
        return rkc;
fail:
        rd_kafka_conf_destroy(rkc);
        return NULL;
}

int kb_kafka_err_denied(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        case RD_KAFKA_RESP_ERR__AUTHENTICATION:
                return 1;
        default:
                return 0;
        }
}

const char *kb_kafka_principal(rd_kafka_conf_t *rkc, char *buf, size_t bufsz)
{
        char proto[32], mech[32], user[256];

        buf[0] = '\0';
        kb_kafka_conf_get(rkc, "security.protocol", proto, sizeof(proto));
        kb_kafka_conf_get(rkc, "sasl.mechanisms", mech, sizeof(mech));
        kb_kafka_conf_get(rkc, "sasl.username", user, sizeof(user));
        if (strncasecmp(proto, "sasl_", 5) || !user[0])
                return buf;
        if (!strcasecmp(mech, "PLAIN") || !strncasecmp(mech, "SCRAM-", 6))
                kb_snprintf(buf, bufsz, "User:%s", user);
        return buf;
}

const char *kb_kafka_denied_str(rd_kafka_resp_err_t err, const char *principal,
                                const char *action, const char *text, char *buf,
                                size_t bufsz)
{
        int login = err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
                    err == RD_KAFKA_RESP_ERR__AUTHENTICATION;

        kb_snprintf(buf, bufsz, "%s: %s may not %s: %s", rd_kafka_err2name(err),
                    principal && *principal ? principal : "this client",
                    login ? "log in" : action, text);
        return buf;
}

/* What the probe's error callback heard. */
typedef struct probe_s {
        rd_kafka_resp_err_t refused; /* a refused login or TLS handshake */
        char why[384];
        char last[256]; /* the last other error: said on a timeout */
} probe_t;

static void probe_error_cb(rd_kafka_t *rk, int err, const char *reason,
                           void *opaque)
{
        probe_t *pr = opaque;

        (void)rk;
        if (kb_kafka_err_denied((rd_kafka_resp_err_t)err) ||
            err == RD_KAFKA_RESP_ERR__SSL) {
                if (!pr->refused) {
                        pr->refused = (rd_kafka_resp_err_t)err;
                        kb_strlcpy(pr->why, reason, sizeof(pr->why));
                }
        } else {
                kb_snprintf(pr->last, sizeof(pr->last), "%s: %s",
                            rd_kafka_err2name((rd_kafka_resp_err_t)err),
                            reason);
        }
}

int kb_kafka_probe(const kb_conf_t *conf, int timeout_ms, atomic_int *stop,
                   char *errstr, size_t errstr_size)
{
        /* a consumer handle that subscribes to nothing: whatever
         * transactional.id or group.id the kafka.* settings hold, it
         * starts no transaction and joins no group */
        static const char *const extra[] = { "client.id", "kyc-bridge-probe",
                                             NULL };
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        int64_t deadline = kb_mono_ms() + timeout_ms;
        char who[300], proto[32], mech[32], boot[256], rerr[256], d[512];
        rd_kafka_conf_t *rkc;
        rd_kafka_t *rk;
        probe_t pr;

        memset(&pr, 0, sizeof(pr));
        rkc = kb_kafka_conf_new(conf, RD_KAFKA_CONSUMER, extra, errstr,
                                errstr_size);
        if (!rkc)
                return KB_ERR_CONFIG;
        kb_kafka_principal(rkc, who, sizeof(who));
        kb_kafka_conf_get(rkc, "security.protocol", proto, sizeof(proto));
        kb_kafka_conf_get(rkc, "sasl.mechanisms", mech, sizeof(mech));
        kb_kafka_conf_get(rkc, "bootstrap.servers", boot, sizeof(boot));
        rd_kafka_conf_set_error_cb(rkc, probe_error_cb);
        rd_kafka_conf_set_opaque(rkc, &pr);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, rerr, sizeof(rerr));
        if (!rk) {
                rd_kafka_conf_destroy(rkc);
                kb_snprintf(errstr, errstr_size, "kafka: %s", rerr);
                return KB_ERR_KAFKA;
        }
        while (!(stop && atomic_load(stop))) {
                err = rd_kafka_metadata(rk, 0, NULL, &md, KB_PROBE_SLICE_MS);
                rd_kafka_poll(rk, 0); /* probe_error_cb */
                if (!err || pr.refused || kb_mono_ms() >= deadline)
                        break;
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        if (pr.refused == RD_KAFKA_RESP_ERR__SSL) {
                kb_snprintf(errstr, errstr_size,
                            "kafka: TLS with %s failed: %s: %s", boot,
                            rd_kafka_err2name(pr.refused), pr.why);
                return KB_ERR_KAFKA;
        }
        if (pr.refused) {
                int old_scram = !strncasecmp(mech, "SCRAM-", 6) &&
                                rd_kafka_version() < KB_RDKAFKA_SCRAM_KAFKA4;
                kb_snprintf(
                    errstr, errstr_size,
                    "kafka: the broker refused the login (%s, %s): %s%s%s%s",
                    proto, mech,
                    kb_kafka_denied_str(pr.refused, who, "log in", pr.why, d,
                                        sizeof(d)),
                    old_scram ? "; if the password is right: librdkafka " : "",
                    old_scram ? rd_kafka_version_str() : "",
                    old_scram ? " is older than 2.6.1, whose SCRAM Kafka 4 "
                                "brokers refuse (docs/kafka-security.md)"
                              : "");
                return KB_ERR_KAFKA;
        }
        if (err && !(stop && atomic_load(stop))) {
                kb_snprintf(errstr, errstr_size,
                            "kafka: no broker of %s answered within %d ms%s%s",
                            boot, timeout_ms, pr.last[0] ? ": " : "", pr.last);
                return KB_ERR_KAFKA;
        }
        return KB_OK;
}

const char *kb_kafka_conf_get(rd_kafka_conf_t *rkc, const char *name, char *buf,
                              size_t bufsz)
{
        size_t sz = bufsz;

        if (rd_kafka_conf_get(rkc, name, buf, &sz) != RD_KAFKA_CONF_OK)
                buf[0] = '\0';
        return buf;
}

int kb_kafka_header_get(rd_kafka_headers_t *hdrs, const char *name, char *buf,
                        size_t bufsz)
{
        const void *v;
        size_t len;

        if (!hdrs ||
            rd_kafka_header_get_last(hdrs, name, &v, &len) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            !v)
                return -1;
        if (len >= bufsz)
                len = bufsz - 1;
        memcpy(buf, v, len);
        buf[len] = '\0';
        return 0;
}

void kb_kafka_trace_get(rd_kafka_headers_t *hdrs, kb_trace_t *t)
{
        const void *tp = NULL, *ts = NULL;
        size_t tp_len = 0, ts_len = 0;

        if (hdrs) {
                if (rd_kafka_header_get_last(hdrs, KB_HDR_TRACEPARENT, &tp,
                                             &tp_len))
                        tp = NULL;
                if (rd_kafka_header_get_last(hdrs, KB_HDR_TRACESTATE, &ts,
                                             &ts_len))
                        ts = NULL;
        }
        kb_trace_child(t, tp, tp_len, ts, ts_len);
}

int kb_kafka_trace_add(rd_kafka_headers_t *hdrs, const kb_trace_t *t,
                       int64_t requested_at_ms)
{
        char ms[24];

        if (!hdrs || !t || !t->traceparent[0])
                return KB_ERR_INVALID_ARG;
        if (rd_kafka_header_add(hdrs, KB_HDR_TRACEPARENT, -1, t->traceparent,
                                -1))
                return KB_ERR_NOMEM;
        if (t->tracestate[0] &&
            rd_kafka_header_add(hdrs, KB_HDR_TRACESTATE, -1, t->tracestate, -1))
                return KB_ERR_NOMEM;
        if (requested_at_ms > 0) {
                kb_snprintf(ms, sizeof(ms), "%lld", (long long)requested_at_ms);
                if (rd_kafka_header_add(hdrs, KB_HDR_REQUESTED_AT, -1, ms, -1))
                        return KB_ERR_NOMEM;
        }
        return KB_OK;
}

int kb_kafka_trace_stamp(rd_kafka_headers_t *hdrs, const kb_trace_t *t,
                         int64_t requested_at_ms)
{
        if (!hdrs || !t)
                return KB_ERR_INVALID_ARG;
        /* absent headers are no error (__NOENT) */
        (void)rd_kafka_header_remove(hdrs, KB_HDR_TRACEPARENT);
        (void)rd_kafka_header_remove(hdrs, KB_HDR_TRACESTATE);
        if (requested_at_ms > 0)
                (void)rd_kafka_header_remove(hdrs, KB_HDR_REQUESTED_AT);
        return kb_kafka_trace_add(hdrs, t, requested_at_ms);
}

int64_t kb_kafka_requested_at(rd_kafka_headers_t *hdrs)
{
        char buf[24];
        int64_t v;

        if (kb_kafka_header_get(hdrs, KB_HDR_REQUESTED_AT, buf, sizeof(buf)) ||
            kb_parse_i64(buf, 1, INT64_MAX, &v) == -1)
                return -1;
        return v;
}

void kb_kafka_hostname(char *out, size_t outsz)
{
        if (gethostname(out, outsz) != 0 || !out[0])
                kb_strlcpy(out, "localhost", outsz);
        out[outsz - 1] = '\0';
}

/* Consumers kb_kafka_consumer_destroy() could not destroy: reachable
 * from here until the process ends (a leak checker sees them as such). */
typedef struct parked_s {
        rd_kafka_t *rk;
        struct parked_s *next;
} parked_t;

static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static parked_t *parked;
static int n_parked;

int kb_kafka_consumer_destroy(rd_kafka_t *rk, int mid_join)
{
        parked_t *p;

        if (!mid_join || rd_kafka_version() >= KB_RDKAFKA_ASSIGNOR_STATE_FIX) {
                rd_kafka_destroy(rk);
                return 0;
        }
        kb_log_notice("kafka",
                      "%s: stopped before its first assignment: kept until "
                      "the process ends, not destroyed (librdkafka %s "
                      "aborts destroying a consumer whose first rebalance "
                      "did not finish; fixed in 2.3.0)",
                      rd_kafka_name(rk), rd_kafka_version_str());
        p = malloc(sizeof(*p)); /* NULL: still parked, just not listed */
        pthread_mutex_lock(&parked_lock);
        if (p) {
                p->rk = rk;
                p->next = parked;
                parked = p;
        }
        n_parked++;
        pthread_mutex_unlock(&parked_lock);
        return 1;
}

int kb_kafka_parked(void)
{
        int n;

        pthread_mutex_lock(&parked_lock);
        n = n_parked;
        pthread_mutex_unlock(&parked_lock);
        return n;
}
