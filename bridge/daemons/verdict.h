/* verdict.h -- the one table from a vendor answer to what a daemon does,
 * and the dead-letter reason (never from the vendor's free-text detail) */
#ifndef KB_VERDICT_H
#define KB_VERDICT_H

/* The vendor call a result belongs to. */
typedef enum kb_step_e {
        KB_STEP_MINT = 1, /* issuer: POST /v3/session/{id}/share/ */
        KB_STEP_IMPORT,   /* importer: POST /v3/session/import-shared/ */
        KB_STEP_RECONCILE /* importer: list sessions, then a decision */
} kb_step_t;

/*
 * What an authoritative follow-up question told us, where a status alone
 * is ambiguous. KB_ANS_NONE: none was asked (yet).
 *  - mint 400/404: GET the source session's decision: GONE (404),
 *    FINISHED or UNFINISHED (2xx, by its status), UNKNOWN (any other
 *    failure of the question);
 *  - import 404: GET our workflow: GONE (404, or a workflow id no vendor
 *    workflow can have), EXISTS (2xx), UNKNOWN (any other failure);
 *  - import 403 or an unreadable 2xx: the reconcile search found no
 *    session of ours made from the token: GONE.
 */
typedef enum kb_answer_e {
        KB_ANS_NONE = 0,
        KB_ANS_GONE,
        KB_ANS_FINISHED,
        KB_ANS_UNFINISHED,
        KB_ANS_EXISTS,
        KB_ANS_UNKNOWN
} kb_answer_t;

typedef enum kb_act_e {
        KB_ACT_PUBLISH = 1, /* use the answer */
        KB_ACT_DEAD_LETTER, /* verdict on the input: stage + reason */
        KB_ACT_HOLD,        /* not about the input: stop, commit nothing */
        KB_ACT_ASK,         /* ask the follow-up question, then again */
        KB_ACT_RECONCILE    /* the token may be spent: find the session */
} kb_act_t;

typedef struct kb_verdict_s {
        kb_act_t act;
        const char *stage;  /* dead letters: the record's stage */
        const char *reason; /* dead letters: the stable reason code */
} kb_verdict_t;

/**
 * The verdict for the final result of a vendor call of @p step: HTTP
 * @p status (0: never answered), @p err (the result's kb_err_t) and the
 * follow-up @p ans. A pure function of its arguments.
 */
kb_verdict_t kb_verdict(kb_step_t step, int status, int err, kb_answer_t ans);

/** The session status @p status is finished (either casing family). */
int kb_status_finished(const char *status);

#endif /* KB_VERDICT_H */
