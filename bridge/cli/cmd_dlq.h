/* cmd_dlq.h -- "kyc-bridge dlq": what list/show (cmd_dlq.c) and redrive
 * (cmd_dlq_redrive.c) share */
#ifndef KB_CMD_DLQ_H
#define KB_CMD_DLQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "conf.h"
#include "dlq_read.h"
#include "dlq_redrive.h"

#define KB_DLQ_MAX_SEL 64

/* One dead letter read (markers are not entries). */
typedef struct kb_dlq_ent_s {
        int32_t partition;
        int64_t offset, ts_ms;
        char *key, *hdr_reason, *raw; /* raw: value when not a JSON object */
        json_object *doc;             /* own reference */
        int redriven;                 /* a committed marker names it */
} kb_dlq_ent_t;

/* The selection (filters: AND across kinds, OR within one) and what it
 * collected from the dead-letter topic. */
typedef struct kb_dlq_coll_s {
        const char *topic;
        const char *reasons[KB_DLQ_MAX_SEL];
        size_t n_reasons;
        const char *share_ids[KB_DLQ_MAX_SEL];
        size_t n_share_ids;
        int32_t partition; /* >= 0: only this partition ... */
        int64_t from, to;  /* ... offsets from..to (inclusive) */
        /* collected */
        kb_dlq_ent_t *v;
        size_t n, cap;
        size_t total;         /* dead letters read (markers not counted) */
        kb_dlq_marks_t marks; /* dead letters of this topic redriven */
        int oom;
} kb_dlq_coll_t;

/* kb_dlq_read() callback: collects the selected dead letters of c->topic
 * and the markers. */
int kb_dlq_coll_cb(void *opaque, const kb_dlq_rec_t *rec);
/* After the read: sorts the entries by position and sets their redriven
 * flags from the markers. */
void kb_dlq_coll_done(kb_dlq_coll_t *c);
void kb_dlq_coll_free(kb_dlq_coll_t *c);

/* A member of the dead letter (NULL when absent), its reason (the
 * kb-reason header when the document has none; "(unknown)" at worst). */
const char *kb_dlq_ent_str(const kb_dlq_ent_t *e, const char *member);
const char *kb_dlq_ent_reason(const kb_dlq_ent_t *e);

/* Prints @p s with anything JWT-shaped replaced (kb_log_scrub). */
void kb_dlq_put_scrubbed(FILE *fp, const char *s);

/* ---- redrive (cmd_dlq_redrive.c) ---- */

/* The test hook (see cmd_dlq_redrive.c): transaction numbers, 0: none. */
typedef struct kb_dlq_hook_s {
        int kill_before_commit;
        int kill_after_commit;
        int stop_before_txn;
} kb_dlq_hook_t;

typedef struct kb_dlq_redrive_opts_s {
        const char *role, *topic;
        int dry_run, timeout_ms;
        int64_t batch;
        kb_dlq_hook_t hook;
} kb_dlq_redrive_opts_t;

/* Environment variable of the test hook. */
#define KB_DLQ_HOOK_ENV "KB_TEST_REDRIVE_KILL"

/* Reads the test hook from the environment into @p hook: 0, or -1 (said
 * on stderr) when its value is not one the hook takes. In a build without
 * test hooks (KB_TEST_HOOKS undefined) a set variable is ignored, with a
 * warning. */
int kb_cmd_dlq_redrive_hook(kb_dlq_hook_t *hook);

/* `dlq redrive`: reads c->topic (selection in @p c), redrives what it
 * selects. Returns the exit status. */
int kb_cmd_dlq_redrive(kb_conf_t *conf, kb_dlq_coll_t *c,
                       const kb_dlq_redrive_opts_t *o);

/* redrive: some selected dead letters were refused (the rest redriven) */
#define KB_EXIT_REFUSED 3

#endif /* KB_CMD_DLQ_H */
