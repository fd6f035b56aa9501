/* status.h -- status updates of imported sessions: the index of the
 * sessions the importer imported, and the webhook action that turns the
 * partner application's deliveries into session-status records */
#ifndef KB_STATUS_H
#define KB_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "seen.h"
#include "wh_delivery.h"

/*
 * The index: session_id -> (share_id, issuer application, source session,
 * kind, vendor_data, record policy, last status, its vendor time and
 * sequence). One entry per session the importer imported, fed on the
 * engine thread (the importer's commits, and every state record
 * kb_seen_load() reads: kb_status_observer()) and read by the action on an
 * HTTP thread; one mutex guards it. An entry is kept status_window_s after
 * the last record about its session (docs/pipeline.md "Status updates").
 *
 * Order of a session's statuses (kb_status_cmp()): the vendor's review log
 * first (decision.reviews is append-only: more reviews is newer), then the
 * vendor's time of the change (the newest review's created_at, or the
 * delivery's timestamp when the decision has no review for it), then a
 * fixed rank for two different statuses at the same place (Declined over
 * Approved over In Review over anything else).
 */
typedef struct kb_status_s kb_status_t;

typedef struct kb_status_conf_s {
        const char *topic;       /* importer.status_topic */
        const char *state_topic; /* importer.state_topic: the index's own
                                    "status:<session_id>" records */
        const char *partner_application_id; /* ours */
        int64_t window_s;                   /* importer.status_window_s */
        int64_t (*clock)(void); /* unix seconds; NULL: kb_time_now (tests) */
        const char *name;       /* log facility; NULL: "importer" */
} kb_status_conf_t;

/** New empty index (not ready until kb_status_set_ready() or a load).
 * Strings are copied. NULL on ENOMEM, a missing topic or a negative
 * window. */
kb_status_t *kb_status_new(const kb_status_conf_t *conf);
/** NULL is a no-op. No other thread may use @p st any more. */
void kb_status_destroy(kb_status_t *st);

/** The hooks that feed the index from @p sn (kb_seen_set_observer()). */
void kb_status_observer(kb_status_t *st, kb_seen_observer_t *obs);

/* Where a session stands in the vendor's review log (its "reviews"
 * array): how many reviews, and the newest one's new_status and
 * created_at (NULL when absent or no string). Borrowed. */
typedef struct kb_status_log_s {
        int64_t reviews;
        const char *last_status, *last_at;
} kb_status_log_t;

/* What an import tells the index (everything borrowed). */
typedef struct kb_status_import_s {
        const char *share_id;
        const char *session_id; /* the session the import made */
        const char *shared_from_session;
        const char *issuer_application_id;
        const char *session_kind; /* "user" / "business" */
        const char *vendor_data;  /* the key of its records */
        int full_record;          /* the partner's record policy */
        /* the import response or the reconciled decision: its status
         * and its review log */
        const char *status;
        kb_status_log_t log;
} kb_status_import_t;

/**
 * An import is about to be committed: its state record (built next, in
 * the same transaction) carries what the index needs, and the session is
 * known but "pending" (deliveries for it are answered 503) until the
 * transaction commits (kb_seen_commit(), through the observer) or is
 * dropped (kb_seen_forget()). A session staged for several share_ids is
 * forgotten only when none of them is left and none was committed; a
 * share_id staged again for another session leaves the first one's.
 * Engine thread. KB_OK, KB_ERR_INVALID_ARG (a
 * member missing or too long: the session is not tracked; logged) or
 * KB_ERR_NOMEM.
 */
int kb_status_stage(kb_status_t *st, const kb_status_import_t *imp);

/** Marks the index ready: every committed state record is read (the
 * observer does it after a load). Thread-safe. */
void kb_status_set_ready(kb_status_t *st);

/**
 * The webhook action (kb_wh_action_fn, @p opaque = the index): a
 * status.updated delivery for a session in the index whose status is newer
 * than the index's gives a session-status record (importer.status_topic,
 * key vendor_data) and the index's own state record (state topic, key
 * "status:<session_id>"); an older one nothing; a session not in the index
 * nothing (counted). 503 (KB_ERR_RETRY) before the index is ready or while
 * the session's import is not committed; 400 (KB_ERR_MALFORMED) for a
 * delivery authenticated by X-Signature-Simple only or whose decision
 * names another session. Any thread.
 *
 * A change (a new status, or the same status further on in the vendor's
 * log) takes effect when Kafka acks its records: the action sets their
 * completion (kb_wh_records_on_settled()). Until then the session's other
 * deliveries that are not older than its settled status are answered 503
 * (retry later); when the records are not acked the change is undone and
 * the vendor's retry makes it again (same event_id).
 */
int kb_status_action(void *opaque, const kb_wh_delivery_t *dlv,
                     kb_wh_records_t *out, char *errstr, size_t errstr_size);

/* One session as the index holds it (a copy). */
typedef struct kb_status_entry_s {
        char share_id[129];
        char issuer_application_id[129];
        char shared_from_session[129];
        char session_kind[16];
        char vendor_data[129];
        int full_record;
        char status[32];      /* the newest status (decided on) */
        char prev_status[32]; /* before it ("" unknown) */
        int64_t status_at;    /* vendor time of the newest status, 0 unknown */
        int64_t status_seq;   /* reviews in the vendor's log then */
        int published;        /* the newest status went out as an update */
        /* 1 while the records of a change (to the newest status) wait for
         * Kafka's ack; the settled status is the one before it */
        int in_flight;
        char settled_status[32]; /* needs nothing more from Kafka */
        int64_t settled_at, settled_seq;
        int committed; /* 0 while its import is not committed */
        int64_t until; /* forgotten after (unix s) */
} kb_status_entry_t;

/** Copies @p session_id's entry into @p out: 0, or -1 when not in the
 * index (or past its retention). Any thread. */
int kb_status_lookup(kb_status_t *st, const char *session_id,
                     kb_status_entry_t *out);

typedef struct kb_status_stats_s {
        uint64_t published;    /* status-update records made */
        uint64_t repeats;      /* the newest status again: made again */
        uint64_t stale;        /* older than the index's: dropped */
        uint64_t unchanged;    /* newer, same status: no update */
        uint64_t not_imported; /* session not in the index: ignored */
        uint64_t retried;      /* answered 503 (not ready, import open,
                                  another change in flight) */
        uint64_t refused;      /* answered 400 */
        uint64_t sessions;     /* entries now */
} kb_status_stats_t;

/** Copies the counters. Any thread. */
void kb_status_stats(kb_status_t *st, kb_status_stats_t *out);

/** Drops entries past their retention (the observer calls it, at most
 * every 10 min). Returns how many. Engine thread. */
size_t kb_status_expire(kb_status_t *st, int64_t now);

/**
 * Orders two statuses of one session: <0 when (@p seq_a, @p at_a, @p a) is
 * older than (@p seq_b, @p at_b, @p b), >0 when newer, 0 only when both
 * are the same status at the same place.
 */
int kb_status_cmp(int64_t seq_a, int64_t at_a, const char *a, int64_t seq_b,
                  int64_t at_b, const char *b);

/**
 * The event id of a status change: "ev-" + hex(BLAKE2b-128(
 * "kyc-bridge/session-status/v1" 0x00 session_id 0x00 status 0x00
 * decimal status_at 0x00 decimal status_seq)), 35 characters + NUL.
 */
void kb_status_event_id(const char *session_id, const char *status,
                        int64_t status_at, int64_t status_seq, char out[36]);

#endif /* KB_STATUS_H */
