/* verdict.c -- the one table from a vendor answer to what a daemon does */
#include "verdict.h"

#include <stddef.h>
#include <string.h>

#include "kyc_bridge.h"

#define ANY_ERR 1 /* no kb_err_t is positive */
#define ANY_ANS -1

typedef struct row_s {
        kb_step_t step;
        int lo, hi; /* status range */
        int err;    /* a kb_err_t, or ANY_ERR */
        int ans;    /* a kb_answer_t, or ANY_ANS */
        kb_act_t act;
        const char *stage, *reason;
} row_t;

/* First match wins. */
static const row_t rows[] = {
        /* issuer: mint */
        { KB_STEP_MINT, 200, 299, KB_OK, ANY_ANS, KB_ACT_PUBLISH, NULL, NULL },
        { KB_STEP_MINT, 200, 299, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER, "mint",
          "vendor_bad_response" },
        /* our own credentials, or a transport that cannot work */
        { KB_STEP_MINT, 0, 0, ANY_ERR, ANY_ANS, KB_ACT_HOLD, NULL, NULL },
        { KB_STEP_MINT, 401, 401, ANY_ERR, ANY_ANS, KB_ACT_HOLD, NULL, NULL },
        { KB_STEP_MINT, 403, 403, ANY_ERR, ANY_ANS, KB_ACT_HOLD, NULL, NULL },
        /* 400: an unfinished session, or another bad request */
        { KB_STEP_MINT, 400, 400, ANY_ERR, KB_ANS_NONE, KB_ACT_ASK, NULL,
          NULL },
        { KB_STEP_MINT, 400, 400, ANY_ERR, KB_ANS_UNFINISHED,
          KB_ACT_DEAD_LETTER, "mint", "session_not_finished" },
        { KB_STEP_MINT, 400, 400, ANY_ERR, KB_ANS_GONE, KB_ACT_DEAD_LETTER,
          "mint", "session_not_found" },
        { KB_STEP_MINT, 400, 400, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER, "mint",
          "bad_request" },
        /* 404: the session is not ours (or gone), or the partner's
         * application is unknown to the vendor */
        { KB_STEP_MINT, 404, 404, ANY_ERR, KB_ANS_NONE, KB_ACT_ASK, NULL,
          NULL },
        { KB_STEP_MINT, 404, 404, ANY_ERR, KB_ANS_GONE, KB_ACT_DEAD_LETTER,
          "mint", "session_not_found" },
        { KB_STEP_MINT, 404, 404, ANY_ERR, KB_ANS_FINISHED, KB_ACT_DEAD_LETTER,
          "mint", "partner_application_unknown" },
        { KB_STEP_MINT, 404, 404, ANY_ERR, KB_ANS_UNFINISHED,
          KB_ACT_DEAD_LETTER, "mint", "partner_application_unknown" },
        { KB_STEP_MINT, 0, 999, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER, "mint",
          "vendor_rejected" },

        /* importer: import */
        { KB_STEP_IMPORT, 200, 299, KB_OK, KB_ANS_NONE, KB_ACT_PUBLISH, NULL,
          NULL },
        /* a 2xx we cannot read still spent the token */
        { KB_STEP_IMPORT, 200, 299, ANY_ERR, KB_ANS_NONE, KB_ACT_RECONCILE,
          NULL, NULL },
        { KB_STEP_IMPORT, 200, 299, ANY_ERR, KB_ANS_GONE, KB_ACT_DEAD_LETTER,
          "reconcile", "reconcile_failed" },
        { KB_STEP_IMPORT, 0, 0, ANY_ERR, ANY_ANS, KB_ACT_HOLD, NULL, NULL },
        /* 403: not for us, or already imported by us */
        { KB_STEP_IMPORT, 403, 403, ANY_ERR, KB_ANS_NONE, KB_ACT_RECONCILE,
          NULL, NULL },
        { KB_STEP_IMPORT, 403, 403, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER,
          "import", "forbidden" },
        { KB_STEP_IMPORT, 401, 401, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER,
          "import", "token_rejected" },
        /* 404: the source session is gone, or our workflow is unknown:
         * asking for the workflow tells which */
        { KB_STEP_IMPORT, 404, 404, ANY_ERR, KB_ANS_NONE, KB_ACT_ASK, NULL,
          NULL },
        { KB_STEP_IMPORT, 404, 404, ANY_ERR, KB_ANS_GONE, KB_ACT_DEAD_LETTER,
          "import", "workflow_not_found" },
        { KB_STEP_IMPORT, 404, 404, ANY_ERR, KB_ANS_EXISTS, KB_ACT_DEAD_LETTER,
          "import", "source_session_gone" },
        { KB_STEP_IMPORT, 400, 400, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER,
          "import", "bad_request" },
        { KB_STEP_IMPORT, 0, 999, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER,
          "import", "vendor_rejected" },

        /* importer: reconcile (list, decision) */
        { KB_STEP_RECONCILE, 200, 299, KB_OK, ANY_ANS, KB_ACT_PUBLISH, NULL,
          NULL },
        { KB_STEP_RECONCILE, 0, 0, ANY_ERR, ANY_ANS, KB_ACT_HOLD, NULL, NULL },
        { KB_STEP_RECONCILE, 0, 999, ANY_ERR, ANY_ANS, KB_ACT_DEAD_LETTER,
          "reconcile", "reconcile_failed" },
};

kb_verdict_t kb_verdict(kb_step_t step, int status, int err, kb_answer_t ans)
{
        kb_verdict_t v = { KB_ACT_HOLD, NULL, NULL };
        size_t i;

        /* Shutdown is never a verdict on the input. */
        if (err == KB_ERR_STATE)
                return v;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                const row_t *r = &rows[i];
                if (r->step != step || status < r->lo || status > r->hi ||
                    (r->err != ANY_ERR && r->err != err) ||
                    (r->ans != ANY_ANS && r->ans != (int)ans))
                        continue;
                v.act = r->act;
                v.stage = r->stage;
                v.reason = r->reason;
                break;
        }
        return v;
}

int kb_status_finished(const char *status)
{
        static const char *const fin[] = { "Approved", "Declined", "In Review",
                                           "APPROVED", "DECLINED", "IN_REVIEW",
                                           NULL };
        size_t i;

        for (i = 0; status && fin[i]; i++)
                if (!strcmp(status, fin[i]))
                        return 1;
        return 0;
}
