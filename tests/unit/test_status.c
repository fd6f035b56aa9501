/* test_status.c -- status updates of imported sessions: the index, its
 * order of statuses, the webhook action with made-up deliveries, retention,
 * and a restart that reloads the index from the state topic (librdkafka's
 * mock cluster) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "conf.h"
#include "json.h"
#include "log.h"
#include "seen.h"
#include "status.h"
#include "util.h"
#include "wh_delivery.h"

#define SID    "5b0f0f8e-1f4e-4c1e-9d7a-3a2b1c0d9e8f"
#define OTHER  "6c1a2b3c-4d5e-4f60-8a9b-0c1d2e3f4a5b"
#define SRC    "7d2b3c4d-5e6f-4a71-9b0c-1d2e3f4a5b6c"
#define ISSUER "8e3c4d5e-6f70-4b82-8c1d-2e3f4a5b6c7d"
#define US     "9f4d5e6f-7081-4c93-9d2e-3f4a5b6c7d8e"
#define SHARE  "share-0001"
#define VD     "y-customer-0001"
#define WINDOW 86400
#define T0     1800000000 /* 2027-01-15T08:00:00Z */

static int64_t fake_now = T0;

static int64_t fake_clock(void)
{
        return fake_now;
}

static kb_status_t *index_new(kb_seen_observer_t *obs)
{
        kb_status_conf_t sc = { "status-topic", "state-topic", US,
                                WINDOW,         fake_clock,    "test" };
        kb_status_t *st = kb_status_new(&sc);

        assert_non_null(st);
        kb_status_observer(st, obs);
        return st;
}

static json_object *parse(const char *text)
{
        char err[128];
        json_object *o =
            kb_json_parse(text, strlen(text), 64, err, sizeof(err));

        if (!o)
                fail_msg("bad test JSON: %s", err);
        return o;
}

/* A decision of session @p sid, status @p status, with @p nrev reviews,
 * the last setting @p status at @p at (unix s). Nested data too, for the
 * summary. */
static json_object *decision(const char *sid, const char *status, int nrev,
                             int64_t at)
{
        char buf[4096], rv[2048] = "", iso[32];
        size_t n = 0;
        int i;

        for (i = 0; i < nrev; i++) {
                int64_t t = at - (nrev - 1 - i) * 60;
                time_t tt = (time_t)t;
                struct tm tm;
                gmtime_r(&tt, &tm);
                strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
                n += (size_t)snprintf(
                    rv + n, sizeof(rv) - n,
                    "%s{\"id\":%d,\"action\":\"status_change\","
                    "\"old_status\":\"In Review\",\"new_status\":\"%s\","
                    "\"note\":null,\"created_at\":\"%s\"}",
                    i ? "," : "", i + 1, i == nrev - 1 ? status : "Declined",
                    iso);
        }
        snprintf(buf, sizeof(buf),
                 "{\"session_id\":\"%s\",\"session_number\":7,"
                 "\"session_kind\":\"user\",\"status\":\"%s\","
                 "\"vendor_data\":\"" VD "\",\"shared_from_session\":\"" SRC
                 "\",\"reviews\":[%s],\"id_verifications\":[{\"status\":"
                 "\"Approved\",\"document_number\":\"X123\",\"front_image\":"
                 "{\"url\":\"https://img\"}}],\"features\":{\"a\":1}}",
                 sid, status, rv);
        return parse(buf);
}

typedef struct dlv_s {
        kb_wh_delivery_t d;
        json_object *body;
} dlv_t;

static void dlv_make(dlv_t *x, const char *sid, const char *status, int nrev,
                     int64_t review_at, int64_t ts)
{
        memset(x, 0, sizeof(*x));
        x->body = json_object_new_object();
        json_object_object_add(x->body, "decision",
                               decision(sid, status, nrev, review_at));
        x->d.body = x->body;
        x->d.session_id = sid;
        x->d.status = status;
        x->d.webhook_type = "status.updated";
        x->d.vendor_data = VD;
        x->d.timestamp = ts;
        x->d.decision = kb_json_get(x->body, "decision");
        x->d.auth = KB_WH_AUTH_V2;
}

static void dlv_free(dlv_t *x)
{
        json_object_put(x->body);
}

/* Runs the action; returns its result, the records in @p recs, which
 * are not settled yet (kb_wh_records_settle(): Kafka's outcome). */
static int act_held(kb_status_t *st, dlv_t *x, kb_wh_records_t *recs)
{
        char err[256] = "";

        kb_wh_records_clear(recs);
        return kb_status_action(st, &x->d, recs, err, sizeof(err));
}

/* Runs the action and has Kafka ack its records, as the intake does
 * before it answers 200. */
static int act(kb_status_t *st, dlv_t *x, kb_wh_records_t *recs)
{
        int r = act_held(st, x, recs);

        kb_wh_records_settle(recs, 1);
        return r;
}

/* One delivery for @p sid, acted on and acked: @p want records out. */
static void expect_records(kb_status_t *st, kb_wh_records_t *recs,
                           const char *sid, const char *status, int nrev,
                           int64_t review_at, int64_t ts, size_t want)
{
        dlv_t x;

        dlv_make(&x, sid, status, nrev, review_at, ts);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), want);
        dlv_free(&x);
}

/* Record @p i parsed; its topic and key into @p topic / @p key. */
static json_object *rec_doc(kb_wh_records_t *recs, size_t i, char *topic,
                            size_t tsz, char *key, size_t ksz)
{
        const void *k, *v;
        size_t kl, vl;
        const char *t = kb_wh_records_get(recs, i, &k, &kl, &v, &vl);
        char err[128];
        json_object *o;

        assert_non_null(t);
        kb_strlcpy(topic, t, tsz);
        assert_true(kl < ksz);
        memcpy(key, k, kl);
        key[kl] = '\0';
        o = kb_json_parse(v, vl, 64, err, sizeof(err));
        assert_non_null(o);
        return o;
}

/* Stages and commits the import of SID (In Review, no reviews). */
static void import_session(kb_status_t *st, kb_seen_observer_t *obs, int full)
{
        kb_status_import_t imp = { SHARE,  SID,         SRC,
                                   ISSUER, "user",      VD,
                                   full,   "In Review", { 0, NULL, NULL } };

        assert_int_equal(kb_status_stage(st, &imp), KB_OK);
        obs->commit(obs->opaque, SHARE, SID);
}

static void test_order_and_event_id(void **state)
{
        char a[36], b[36], c[36];

        (void)state;
        /* the vendor's review log first */
        assert_true(kb_status_cmp(2, 100, "In Review", 1, 900, "Approved") > 0);
        assert_true(kb_status_cmp(1, 900, "Approved", 2, 100, "Declined") < 0);
        /* then its time */
        assert_true(kb_status_cmp(1, 101, "Approved", 1, 100, "Declined") > 0);
        /* same place, same status: the same change */
        assert_int_equal(kb_status_cmp(1, 100, "Approved", 1, 100, "Approved"),
                         0);
        /* same place, two statuses: Declined > Approved > In Review > rest,
         * either casing family */
        assert_true(kb_status_cmp(0, 100, "Declined", 0, 100, "Approved") > 0);
        assert_true(kb_status_cmp(0, 100, "APPROVED", 0, 100, "IN_REVIEW") > 0);
        assert_true(kb_status_cmp(0, 100, "In Review", 0, 100, "Resubmitted") >
                    0);
        assert_true(kb_status_cmp(0, 100, "Abandoned", 0, 100, "Resubmitted") <
                    0);

        kb_status_event_id(SID, "Approved", 100, 1, a);
        kb_status_event_id(SID, "Approved", 100, 1, b);
        kb_status_event_id(SID, "Approved", 101, 1, c);
        assert_int_equal(strlen(a), 35);
        assert_memory_equal(a, "ev-", 3);
        assert_string_equal(a, b);
        assert_string_not_equal(a, c);
        kb_status_event_id(SID, "Declined", 100, 1, c);
        assert_string_not_equal(a, c);
        kb_status_event_id(OTHER, "Approved", 100, 1, c);
        assert_string_not_equal(a, c);
        kb_status_event_id(SID, "Approved", 100, 2, c);
        assert_string_not_equal(a, c);
}

/* In Review import -> approved -> redelivered -> an older status late ->
 * declined; the records each gives. */
static void test_action_orders_statuses(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_status_stats_t ss;
        kb_status_entry_t e;
        json_object *doc, *dec;
        char topic[64], key[160], ev1[36], ev2[36];
        dlv_t x;

        (void)state;
        fake_now = T0;
        assert_non_null(recs);

        /* before the state is read: retry later */
        dlv_make(&x, SID, "Approved", 1, T0 + 100, T0 + 101);
        assert_int_equal(act(st, &x, recs), KB_ERR_RETRY);
        obs.loaded(obs.opaque);

        /* staged, not committed: retry later */
        {
                kb_status_import_t imp = {
                        SHARE, SID, SRC,         ISSUER,           "user",
                        VD,    0,   "In Review", { 0, NULL, NULL }
                };
                json_object *sr = json_object_new_object();
                assert_int_equal(kb_status_stage(st, &imp), KB_OK);
                /* its state record carries what a restart needs */
                assert_int_equal(obs.decorate(obs.opaque, SHARE, sr), 0);
                assert_string_equal(kb_json_get_str(sr, "vendor_data"), VD);
                assert_string_equal(kb_json_get_str(sr, "status"), "In Review");
                assert_string_equal(kb_json_get_str(sr, "record"), "summary");
                assert_string_equal(
                    kb_json_get_str(sr, "issuer_application_id"), ISSUER);
                json_object_put(sr);
        }
        assert_int_equal(act(st, &x, recs), KB_ERR_RETRY);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.committed, 0);
        obs.commit(obs.opaque, SHARE, SID);

        /* approved: one status record and one state record */
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        doc = rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(topic, "status-topic");
        assert_string_equal(key, VD);
        assert_string_equal(kb_json_get_str(doc, "format"),
                            "kyc-bridge-session-status/1");
        assert_string_equal(kb_json_get_str(doc, "share_id"), SHARE);
        assert_string_equal(kb_json_get_str(doc, "session_id"), SID);
        assert_string_equal(kb_json_get_str(doc, "shared_from_session"), SRC);
        assert_string_equal(kb_json_get_str(doc, "issuer_application_id"),
                            ISSUER);
        assert_string_equal(kb_json_get_str(doc, "partner_application_id"), US);
        assert_string_equal(kb_json_get_str(doc, "session_kind"), "user");
        assert_string_equal(kb_json_get_str(doc, "old_status"), "In Review");
        assert_string_equal(kb_json_get_str(doc, "new_status"), "Approved");
        {
                int64_t v;
                assert_int_equal(kb_json_get_i64(doc, "status_at", &v), 0);
                assert_int_equal(v, T0 + 100); /* the review, not the
                                                  delivery */
                assert_int_equal(kb_json_get_i64(doc, "status_seq", &v), 0);
                assert_int_equal(v, 1);
        }
        assert_string_equal(kb_json_get_str(doc, "record"), "summary");
        kb_status_event_id(SID, "Approved", T0 + 100, 1, ev1);
        assert_string_equal(kb_json_get_str(doc, "event_id"), ev1);
        assert_string_equal(kb_wh_records_header(recs, 0, "kb-event-id"), ev1);
        assert_string_equal(kb_wh_records_header(recs, 0, "kb-share-id"),
                            SHARE);
        /* summary: no documents, images, nested objects */
        dec = kb_json_get(doc, "decision");
        assert_non_null(dec);
        assert_null(kb_json_get(dec, "features"));
        assert_null(kb_json_get(
            json_object_array_get_idx(kb_json_get(dec, "id_verifications"), 0),
            "document_number"));
        assert_string_equal(
            kb_json_get_str(json_object_array_get_idx(
                                kb_json_get(dec, "id_verifications"), 0),
                            "status"),
            "Approved");
        json_object_put(doc);
        doc = rec_doc(recs, 1, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(topic, "state-topic");
        assert_string_equal(key, "status:" SID);
        assert_string_equal(kb_json_get_str(doc, "outcome"), "status");
        assert_string_equal(kb_json_get_str(doc, "ref"), SID);
        assert_string_equal(kb_json_get_str(doc, "status"), "Approved");
        assert_string_equal(kb_json_get_str(doc, "old_status"), "In Review");
        json_object_put(doc);
        dlv_free(&x);

        /* the vendor retries it (re-signed: a later timestamp): the same
         * change, made again with the same event id */
        dlv_make(&x, SID, "Approved", 1, T0 + 100, T0 + 400);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        doc = rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(kb_json_get_str(doc, "event_id"), ev1);
        assert_string_equal(kb_json_get_str(doc, "old_status"), "In Review");
        json_object_put(doc);
        dlv_free(&x);

        /* the import's own In Review delivery, late (no review, a
         * timestamp after the approval): older, nothing */
        expect_records(st, recs, SID, "In Review", 0, 0, T0 + 500, 0);

        /* declined by a second review: published, from Approved */
        dlv_make(&x, SID, "Declined", 2, T0 + 600, T0 + 601);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        doc = rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(kb_json_get_str(doc, "old_status"), "Approved");
        assert_string_equal(kb_json_get_str(doc, "new_status"), "Declined");
        kb_status_event_id(SID, "Declined", T0 + 600, 2, ev2);
        assert_string_equal(kb_json_get_str(doc, "event_id"), ev2);
        json_object_put(doc);
        dlv_free(&x);

        /* the approval's last retry arrives after that: older, nothing */
        expect_records(st, recs, SID, "Approved", 1, T0 + 100, T0 + 900, 0);

        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_string_equal(e.status, "Declined");
        assert_string_equal(e.prev_status, "Approved");
        kb_status_stats(st, &ss);
        assert_int_equal((int)ss.published, 2);
        assert_int_equal((int)ss.repeats, 1);
        assert_int_equal((int)ss.stale, 2);
        assert_int_equal((int)ss.retried, 2);
        assert_int_equal((int)ss.sessions, 1);
        kb_wh_records_destroy(recs);
        kb_status_destroy(st);
}

/* A session the bridge did not import; deliveries it cannot trust; a
 * full-record partner gets the decision as sent. */
static void test_action_ignores_and_refuses(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_status_stats_t ss;
        json_object *doc, *dec;
        char topic[64], key[160];
        dlv_t x;

        (void)state;
        fake_now = T0;
        obs.loaded(obs.opaque);
        import_session(st, &obs, 1);

        expect_records(st, recs, OTHER, "Approved", 1, T0 + 10, T0 + 11, 0);

        /* X-Signature-Simple does not cover the decision */
        dlv_make(&x, SID, "Approved", 1, T0 + 10, T0 + 11);
        x.d.auth = KB_WH_AUTH_SIMPLE;
        assert_int_equal(act(st, &x, recs), KB_ERR_MALFORMED);
        dlv_free(&x);
        /* a decision of another session */
        dlv_make(&x, SID, "Approved", 1, T0 + 10, T0 + 11);
        x.d.session_id = SID;
        json_object_object_add(x.d.decision, "session_id",
                               json_object_new_string(OTHER));
        assert_int_equal(act(st, &x, recs), KB_ERR_MALFORMED);
        dlv_free(&x);

        /* the same status, newer: no update */
        expect_records(st, recs, SID, "In Review", 0, 0, T0 + 5, 0);

        dlv_make(&x, SID, "Approved", 1, T0 + 10, T0 + 11);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        doc = rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(kb_json_get_str(doc, "record"), "full");
        dec = kb_json_get(doc, "decision");
        assert_string_equal(
            kb_json_get_str(json_object_array_get_idx(
                                kb_json_get(dec, "id_verifications"), 0),
                            "document_number"),
            "X123");
        assert_non_null(kb_json_get(dec, "features"));
        json_object_put(doc);
        dlv_free(&x);

        kb_status_stats(st, &ss);
        assert_int_equal((int)ss.not_imported, 1);
        assert_int_equal((int)ss.refused, 2);
        assert_int_equal((int)ss.unchanged, 1);
        assert_int_equal((int)ss.published, 1);
        kb_wh_records_destroy(recs);
        kb_status_destroy(st);
}

/* Newer with the same status moves the session's place (durably when the
 * review log grew), so that a change between them, redelivered late,
 * stays older. Two statuses at the same place: the fixed rank. */
static void test_unchanged_advances(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_wh_records_t *recs = kb_wh_records_new();
        json_object *doc;
        char topic[64], key[160];
        dlv_t x;

        (void)state;
        fake_now = T0;
        obs.loaded(obs.opaque);
        import_session(st, &obs, 0);
        expect_records(st, recs, SID, "Approved", 1, T0 + 10, T0 + 11, 2);
        /* review 2 (Declined) is lost for now; review 3 approves again */
        dlv_make(&x, SID, "Approved", 3, T0 + 30, T0 + 31);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 1); /* state only */
        doc = rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(topic, "state-topic");
        assert_null(kb_json_get(doc, "old_status"));
        json_object_put(doc);
        dlv_free(&x);
        /* review 2 comes now: older */
        expect_records(st, recs, SID, "Declined", 2, T0 + 20, T0 + 40, 0);
        /* review 3 again: it did not go out as an update, nothing */
        expect_records(st, recs, SID, "Approved", 3, T0 + 30, T0 + 50, 0);

        kb_status_destroy(st);

        /* no review log (a vendor that sends none): the delivery's time;
         * two statuses in one second: Declined wins either way round */

        st = index_new(&obs);
        obs.loaded(obs.opaque);
        import_session(st, &obs, 0);
        expect_records(st, recs, SID, "Declined", 0, 0, T0 + 70, 2);
        expect_records(st, recs, SID, "Approved", 0, 0, T0 + 70, 0);
        kb_status_destroy(st);

        st = index_new(&obs);
        obs.loaded(obs.opaque);
        import_session(st, &obs, 0);
        expect_records(st, recs, SID, "Approved", 0, 0, T0 + 70, 2);
        expect_records(st, recs, SID, "Declined", 0, 0, T0 + 70, 2);
        kb_wh_records_destroy(recs);
        kb_status_destroy(st);
}

/* Retention: a session is known status_window_s after its last record;
 * an import whose transaction is dropped is forgotten at once. */
static void test_retention(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_status_stats_t ss;
        kb_status_entry_t e;

        (void)state;
        fake_now = T0;
        obs.loaded(obs.opaque);
        import_session(st, &obs, 0);

        /* activity extends it */
        fake_now = T0 + WINDOW - 10;
        expect_records(st, recs, SID, "Approved", 1, fake_now, fake_now, 2);
        fake_now = T0 + 2 * WINDOW - 20;
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(kb_status_expire(st, fake_now), 0);

        /* past it: ignored like a session never imported, then swept */
        fake_now = T0 + 2 * WINDOW;
        assert_int_equal(kb_status_lookup(st, SID, &e), -1);
        expect_records(st, recs, SID, "Declined", 2, fake_now, fake_now, 0);
        kb_status_stats(st, &ss);
        assert_int_equal((int)ss.not_imported, 1);
        assert_int_equal((int)ss.sessions, 1);
        obs.expire(obs.opaque, fake_now);
        kb_status_stats(st, &ss);
        assert_int_equal((int)ss.sessions, 0);

        /* staged and dropped: gone; staged imports never expire */
        {
                kb_status_import_t imp = {
                        "share-2", OTHER, SRC,         ISSUER,           "user",
                        VD,        0,     "In Review", { 0, NULL, NULL }
                };
                assert_int_equal(kb_status_stage(st, &imp), KB_OK);
        }
        assert_int_equal(kb_status_expire(st, fake_now + 10 * WINDOW), 0);
        assert_int_equal(kb_status_lookup(st, OTHER, &e), 0);
        obs.forget(obs.opaque, "share-2");
        assert_int_equal(kb_status_lookup(st, OTHER, &e), -1);
        /* an import without what the index needs is not tracked */
        {
                kb_status_import_t imp = {
                        "share-3", OTHER, SRC,         ISSUER,           "user",
                        NULL,      0,     "In Review", { 0, NULL, NULL }
                };
                assert_int_equal(kb_status_stage(st, &imp), KB_ERR_INVALID_ARG);
        }
        kb_wh_records_destroy(recs);
        kb_status_destroy(st);
}

/* A change whose records Kafka did not ack is undone: the vendor's retry
 * makes it again. Newer, same status (the review log grew): the state
 * record comes again on the retry, so that the place is durable and an
 * older change redelivered later (or after a restart) stays older. */
static void test_change_not_acked_is_undone(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_status_entry_t e;
        json_object *doc;
        char topic[64], key[160];
        int64_t v;
        dlv_t x;

        (void)state;
        fake_now = T0;
        obs.loaded(obs.opaque);
        import_session(st, &obs, 0);
        expect_records(st, recs, SID, "Approved", 1, T0 + 10, T0 + 11, 2);

        /* review 3 approves again: the state record, not acked */
        dlv_make(&x, SID, "Approved", 3, T0 + 30, T0 + 31);
        assert_int_equal(act_held(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 1);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.in_flight, 1);
        assert_int_equal(e.status_seq, 3);
        assert_int_equal(e.settled_seq, 1);
        kb_wh_records_settle(recs, 0);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.in_flight, 0);
        assert_int_equal(e.status_seq, 1);
        dlv_free(&x);
        /* the vendor's retry (re-signed): the state record again */
        dlv_make(&x, SID, "Approved", 3, T0 + 30, T0 + 90);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 1);
        doc = rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(topic, "state-topic");
        assert_int_equal(kb_json_get_i64(doc, "status_seq", &v), 0);
        assert_int_equal(v, 3);
        json_object_put(doc);
        dlv_free(&x);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.settled_seq, 3);
        /* review 2 redelivered late: older */
        expect_records(st, recs, SID, "Declined", 2, T0 + 20, T0 + 100, 0);
        kb_status_destroy(st);

        /* a new status not acked: undone, so that the same status further
         * on is published as the change it is, not taken as known */
        st = index_new(&obs);
        obs.loaded(obs.opaque);
        import_session(st, &obs, 0);
        dlv_make(&x, SID, "Approved", 1, T0 + 10, T0 + 11);
        assert_int_equal(act_held(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        kb_wh_records_settle(recs, 0);
        dlv_free(&x);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_string_equal(e.status, "In Review");
        dlv_make(&x, SID, "Approved", 2, T0 + 20, T0 + 21);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        doc = rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(topic, "status-topic");
        assert_string_equal(kb_json_get_str(doc, "old_status"), "In Review");
        assert_string_equal(kb_json_get_str(doc, "new_status"), "Approved");
        json_object_put(doc);
        dlv_free(&x);
        /* a failure to build the records (the list cleared) undoes too */
        dlv_make(&x, SID, "Declined", 3, T0 + 30, T0 + 31);
        assert_int_equal(act_held(st, &x, recs), KB_OK);
        kb_wh_records_clear(recs);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_string_equal(e.status, "Approved");
        assert_int_equal(e.in_flight, 0);
        dlv_free(&x);
        kb_wh_records_destroy(recs);
        kb_status_destroy(st);
}

/* One change of a session in flight at a time: the session's other
 * deliveries wait (503) for its outcome, so that its records stay in
 * order and it can be undone. */
static void test_one_change_in_flight(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_wh_records_t *other = kb_wh_records_new();
        kb_status_stats_t ss;
        kb_status_entry_t e;
        json_object *doc;
        char topic[64], key[160];
        dlv_t x;

        (void)state;
        fake_now = T0;
        obs.loaded(obs.opaque);
        import_session(st, &obs, 0);
        dlv_make(&x, SID, "Approved", 1, T0 + 10, T0 + 11);
        assert_int_equal(act_held(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        dlv_free(&x);

        /* a newer change, and the same one re-signed: later */
        dlv_make(&x, SID, "Declined", 2, T0 + 20, T0 + 21);
        assert_int_equal(act_held(st, &x, other), KB_ERR_RETRY);
        assert_int_equal(kb_wh_records_count(other), 0);
        dlv_free(&x);
        dlv_make(&x, SID, "Approved", 1, T0 + 10, T0 + 41);
        assert_int_equal(act_held(st, &x, other), KB_ERR_RETRY);
        dlv_free(&x);
        kb_status_stats(st, &ss);
        assert_int_equal((int)ss.retried, 2);

        /* acked: the next change goes, from the acked status */
        kb_wh_records_settle(recs, 1);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_string_equal(e.settled_status, "Approved");
        assert_int_equal(e.in_flight, 0);
        dlv_make(&x, SID, "Declined", 2, T0 + 20, T0 + 61);
        assert_int_equal(act(st, &x, other), KB_OK);
        assert_int_equal(kb_wh_records_count(other), 2);
        doc = rec_doc(other, 0, topic, sizeof(topic), key, sizeof(key));
        assert_string_equal(kb_json_get_str(doc, "old_status"), "Approved");
        assert_string_equal(kb_json_get_str(doc, "new_status"), "Declined");
        json_object_put(doc);
        dlv_free(&x);

        /* while a change is in flight, older than the settled status is
         * still stale (200, nothing) */
        dlv_make(&x, SID, "Approved", 4, T0 + 40, T0 + 71);
        assert_int_equal(act_held(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        dlv_free(&x);
        dlv_make(&x, SID, "Approved", 1, T0 + 10, T0 + 72);
        assert_int_equal(act_held(st, &x, other), KB_OK);
        assert_int_equal(kb_wh_records_count(other), 0);
        dlv_free(&x);
        kb_wh_records_destroy(recs); /* not produced: undone */
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_string_equal(e.status, "Declined");
        kb_wh_records_destroy(other);
        kb_status_destroy(st);
}

/* The import's place in the vendor's review log: the count of reviews,
 * and the newest review's created_at when it set the imported status. */
static void test_stage_review_log(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_status_entry_t e;
        kb_status_import_t a = { "share-a",
                                 SID,
                                 SRC,
                                 ISSUER,
                                 "user",
                                 VD,
                                 0,
                                 "In Review",
                                 { 3, "In Review", "2026-12-05T16:19:34Z" } };
        int64_t t;

        (void)state;
        fake_now = T0;
        obs.loaded(obs.opaque);
        assert_int_equal(kb_status_stage(st, &a), KB_OK);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.status_seq, 3);
        assert_int_equal(kb_time_parse_iso8601("2026-12-05T16:19:34Z", &t), 0);
        assert_int_equal(e.status_at, t);
        obs.forget(obs.opaque, "share-a");
        /* the newest review set another status: no time known */
        a.log.last_status = "Approved";
        assert_int_equal(kb_status_stage(st, &a), KB_OK);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.status_seq, 3);
        assert_int_equal(e.status_at, 0);
        obs.forget(obs.opaque, "share-a");
        kb_status_destroy(st);
}

/* Two share_ids staged for one session: forgetting one keeps the entry
 * the other needs; a share_id staged again for another session leaves
 * the first. */
static void test_staged_twice(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_status_entry_t e;
        kb_status_import_t a = { "share-a", SID,         SRC,
                                 ISSUER,    "user",      VD,
                                 0,         "In Review", { 0, NULL, NULL } };
        kb_status_import_t b = a;

        (void)state;
        fake_now = T0;
        obs.loaded(obs.opaque);
        b.share_id = "share-b";
        assert_int_equal(kb_status_stage(st, &a), KB_OK);
        assert_int_equal(kb_status_stage(st, &b), KB_OK);
        obs.forget(obs.opaque, "share-a");
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.committed, 0);
        obs.commit(obs.opaque, "share-b", SID);
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.committed, 1);

        /* both dropped: gone */
        a.session_id = b.session_id = OTHER;
        assert_int_equal(kb_status_stage(st, &a), KB_OK);
        assert_int_equal(kb_status_stage(st, &b), KB_OK);
        obs.forget(obs.opaque, "share-b");
        assert_int_equal(kb_status_lookup(st, OTHER, &e), 0);
        obs.forget(obs.opaque, "share-a");
        assert_int_equal(kb_status_lookup(st, OTHER, &e), -1);

        /* share-c staged for OTHER, then (its import retried) for
         * another session: OTHER is no import's any more */
        a.share_id = "share-c";
        assert_int_equal(kb_status_stage(st, &a), KB_OK);
        a.session_id = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b";
        assert_int_equal(kb_status_stage(st, &a), KB_OK);
        assert_int_equal(kb_status_lookup(st, OTHER, &e), -1);
        /* the same share staged twice for one session: one forget */
        assert_int_equal(kb_status_stage(st, &a), KB_OK);
        obs.forget(obs.opaque, "share-c");
        assert_int_equal(kb_status_lookup(st, a.session_id, &e), -1);
        kb_status_destroy(st);
}

/* A state record's "at" (anyone who may write the topic wrote it) out of
 * range: ignored, no overflow (UBSan would abort). */
static void test_record_at_out_of_range(void **state)
{
        kb_seen_observer_t obs;
        kb_status_t *st = index_new(&obs);
        kb_status_entry_t e;
        const char *key = "status:" SID;
        char txt[1024];
        kb_jview_t rec;
        int i;
        const long long ats[] = { INT64_MAX, INT64_MAX - WINDOW + 1, -1, T0 };

        (void)state;
        fake_now = T0;
        for (i = 0; i < 4; i++) {
                snprintf(txt, sizeof(txt),
                         "{\"share_id\":\"" SHARE "\",\"outcome\":\"status\","
                         "\"at\":%lld,\"ref\":\"" SID "\","
                         "\"issuer_application_id\":\"" ISSUER "\","
                         "\"shared_from_session\":\"" SRC "\","
                         "\"session_kind\":\"user\",\"vendor_data\":\"" VD
                         "\",\"record\":\"full\",\"status\":\"Approved\","
                         "\"status_at\":1,\"status_seq\":1}",
                         ats[i]);
                assert_int_equal(
                    kb_jview_init(&rec, txt, strlen(txt), 4, NULL, 0), 0);
                obs.record(obs.opaque, key, strlen(key), &rec);
                kb_jview_clear(&rec);
                assert_int_equal(kb_status_lookup(st, SID, &e), i < 3 ? -1 : 0);
        }
        assert_int_equal(e.until, T0 + WINDOW);
        kb_status_destroy(st);
}

/* ---- restart: the index read back from the state topic ---- */

static void produce(const char *bootstrap, const char *topic, const char *key,
                    size_t klen, const void *val, size_t vlen)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        char err[256];
        rd_kafka_t *rk;

        assert_int_equal(rd_kafka_conf_set(rkc, "bootstrap.servers", bootstrap,
                                           err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
        assert_non_null(rk);
        assert_int_equal(
            rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                RD_KAFKA_V_VALUE((void *)val, vlen),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        assert_int_equal(rd_kafka_flush(rk, 60000), 0);
        rd_kafka_destroy(rk);
}

/* Produces every state record of @p recs (the action's) to "state". */
static void produce_state_records(const char *bootstrap, kb_wh_records_t *recs)
{
        size_t i;

        for (i = 0; i < kb_wh_records_count(recs); i++) {
                const void *k, *v;
                size_t kl, vl;
                const char *t = kb_wh_records_get(recs, i, &k, &kl, &v, &vl);
                if (!strcmp(t, "state"))
                        produce(bootstrap, "state", k, kl, v, vl);
        }
}

static void test_restart_reloads_index(void **state)
{
        rd_kafka_conf_t *hostconf = rd_kafka_conf_new();
        rd_kafka_mock_cluster_t *mc;
        kb_status_conf_t sc = { "status", "state",    US,
                                WINDOW,   fake_clock, "test" };
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_seen_observer_t obs;
        kb_status_entry_t e;
        kb_status_t *st;
        kb_seen_t *sn;
        kb_conf_t *conf;
        rd_kafka_t *host;
        const char *bs;
        char err[256], *txt, old[512];
        size_t len;
        dlv_t x;

        (void)state;
        fake_now = kb_time_now(); /* the seen's own window is wall time */
        rd_kafka_conf_set(hostconf, "log_level", "3", err, sizeof(err));
        host = rd_kafka_new(RD_KAFKA_PRODUCER, hostconf, err, sizeof(err));
        assert_non_null(host);
        mc = rd_kafka_mock_cluster_new(host, 1);
        assert_non_null(mc);
        assert_int_equal(rd_kafka_mock_topic_create(mc, "state", 3, 1), 0);
        bs = rd_kafka_mock_cluster_bootstraps(mc);
        conf = kb_conf_new();
        assert_non_null(conf);
        assert_int_equal(kb_conf_set(conf, "kafka.bootstrap.servers", bs,
                                     "test", err, sizeof(err)),
                         0);

        /* first life: import (its state record as the importer writes it),
         * approve (the action's state record) */
        sn = kb_seen_new(conf, "state", 3600, "test");
        st = kb_status_new(&sc);
        assert_non_null(sn);
        assert_non_null(st);
        kb_status_observer(st, &obs);
        kb_seen_set_observer(sn, &obs);
        assert_int_equal(kb_seen_load(sn), 0);
        {
                kb_status_import_t imp = {
                        SHARE, SID, SRC,         ISSUER,           "user",
                        VD,    1,   "In Review", { 0, NULL, NULL }
                };
                assert_int_equal(kb_status_stage(st, &imp), KB_OK);
        }
        assert_int_equal(kb_seen_claim(sn, SHARE), 0);
        txt = kb_seen_record(sn, SHARE, "imported", SID, &len);
        assert_non_null(txt);
        kb_seen_commit(sn, SHARE, SID);
        produce(bs, "state", SHARE, strlen(SHARE), txt, len);
        free(txt);
        dlv_make(&x, SID, "Approved", 1, fake_now - 100, fake_now);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        produce_state_records(bs, recs);
        dlv_free(&x);
        /* a record from before status updates (no members), and one past
         * the window: neither is tracked */
        snprintf(old, sizeof(old),
                 "{\"share_id\":\"share-old\",\"outcome\":\"imported\","
                 "\"at\":%lld,\"until\":%lld,\"ref\":\"" OTHER "\"}",
                 (long long)fake_now, (long long)fake_now + 3600);
        produce(bs, "state", "share-old", 9, old, strlen(old));
        snprintf(old, sizeof(old),
                 "{\"share_id\":\"share-gone\",\"outcome\":\"imported\","
                 "\"at\":%lld,\"until\":%lld,\"ref\":\"gone-session\","
                 "\"issuer_application_id\":\"" ISSUER "\","
                 "\"shared_from_session\":\"" SRC "\","
                 "\"session_kind\":\"user\",\"vendor_data\":\"v\","
                 "\"record\":\"full\",\"status\":\"In Review\","
                 "\"status_at\":0,\"status_seq\":0}",
                 (long long)(fake_now - WINDOW - 10),
                 (long long)(fake_now - WINDOW - 10 + 3600));
        produce(bs, "state", "share-gone", 10, old, strlen(old));
        /* an index record whose import record is not (or no longer) in
         * the topic: its share_id is not remembered through it */
        snprintf(old, sizeof(old),
                 "{\"share_id\":\"share-aux\",\"outcome\":\"status\","
                 "\"at\":%lld,\"until\":%lld,\"ref\":\"aux-session\"}",
                 (long long)fake_now, (long long)fake_now + WINDOW);
        produce(bs, "state", "status:aux-session", 18, old, strlen(old));
        kb_status_destroy(st);
        kb_seen_destroy(sn);

        /* second life: nothing in memory until the load */
        sn = kb_seen_new(conf, "state", 3600, "test");
        st = kb_status_new(&sc);
        kb_status_observer(st, &obs);
        kb_seen_set_observer(sn, &obs);
        dlv_make(&x, SID, "In Review", 0, 0, fake_now + 5);
        assert_int_equal(act(st, &x, recs), KB_ERR_RETRY);
        assert_int_equal(kb_seen_load(sn), 0);
        /* the status record is no share_id of its own */
        assert_int_equal(kb_seen_count(sn), 2);
        assert_true(kb_seen_has(sn, SHARE));
        assert_false(kb_seen_has(sn, "share-aux"));
        assert_int_equal(kb_status_lookup(st, SID, &e), 0);
        assert_int_equal(e.committed, 1);
        assert_string_equal(e.status, "Approved");
        assert_string_equal(e.prev_status, "In Review");
        assert_string_equal(e.vendor_data, VD);
        assert_int_equal(e.full_record, 1);
        assert_int_equal(e.status_seq, 1);
        assert_int_equal(kb_status_lookup(st, OTHER, &e), -1);
        assert_int_equal(kb_status_lookup(st, "gone-session", &e), -1);
        /* the late In Review stays older after the restart */
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 0);
        dlv_free(&x);
        dlv_make(&x, SID, "Declined", 2, fake_now + 10, fake_now + 11);
        assert_int_equal(act(st, &x, recs), KB_OK);
        assert_int_equal(kb_wh_records_count(recs), 2);
        {
                char topic[64], key[160];
                json_object *doc =
                    rec_doc(recs, 0, topic, sizeof(topic), key, sizeof(key));
                assert_string_equal(kb_json_get_str(doc, "old_status"),
                                    "Approved");
                assert_string_equal(kb_json_get_str(doc, "record"), "full");
                json_object_put(doc);
        }
        dlv_free(&x);

        kb_wh_records_destroy(recs);
        kb_status_destroy(st);
        kb_seen_destroy(sn);
        kb_conf_destroy(conf);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(host);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order_and_event_id),
                cmocka_unit_test(test_action_orders_statuses),
                cmocka_unit_test(test_action_ignores_and_refuses),
                cmocka_unit_test(test_unchanged_advances),
                cmocka_unit_test(test_retention),
                cmocka_unit_test(test_change_not_acked_is_undone),
                cmocka_unit_test(test_one_change_in_flight),
                cmocka_unit_test(test_staged_twice),
                cmocka_unit_test(test_stage_review_log),
                cmocka_unit_test(test_record_at_out_of_range),
                cmocka_unit_test(test_restart_reloads_index),
        };

        kb_log_setup(getenv("KB_TEST_LOG")
                         ? (int)strtol(getenv("KB_TEST_LOG"), NULL, 10)
                         : KB_LOG_WARN,
                     0, 2, "test_status");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
