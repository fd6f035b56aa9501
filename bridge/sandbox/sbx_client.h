/* sbx_client.h -- a small synchronous JSON client for the sandbox's
 * /sandbox/ extras and the /v3 calls a demo or a tool needs to set up a
 * world (applications, workflows, finished sessions) */
#ifndef KB_SBX_CLIENT_H
#define KB_SBX_CLIENT_H

#include <json-c/json.h>

typedef struct kb_sbxc_s kb_sbxc_t;

/** Client for @p base_url ("http://127.0.0.1:8480"). NULL on ENOMEM. */
kb_sbxc_t *kb_sbxc_new(const char *base_url);
void kb_sbxc_destroy(kb_sbxc_t *c);

/**
 * One request. @p body may be NULL; @p api_key may be NULL. Returns the HTTP
 * status (0 on transport failure, reason in @p errstr) and the parsed body
 * in *out (new reference, NULL when empty/not JSON; may be NULL to ignore).
 */
int kb_sbxc_call(kb_sbxc_t *c, const char *method, const char *path,
                 json_object *body, const char *api_key, json_object **out,
                 char *errstr, size_t errstr_size);

/** POST /sandbox/applications. Fills app_id (37) and api_key (buf). 0/-1. */
int kb_sbxc_app(kb_sbxc_t *c, const char *name, char *app_id, char *api_key,
                size_t api_key_size, char *errstr, size_t errstr_size);
/** POST /v3/workflows/ of type "kyc"/"kyb". Fills uuid (37). 0/-1. */
int kb_sbxc_workflow(kb_sbxc_t *c, const char *api_key, const char *type,
                     char *uuid, char *errstr, size_t errstr_size);
/** POST /v3/session/ and, when @p status is non-NULL, complete it. */
int kb_sbxc_session(kb_sbxc_t *c, const char *api_key, const char *workflow,
                    const char *vendor_data, const char *status,
                    char *session_id, char *errstr, size_t errstr_size);
/**
 * PATCH /v3/session/{id}/update-status/ with @p new_status ("Approved",
 * "Declined", "Resubmitted"; KYB in its casing) and @p comment (may be
 * NULL), as the application of @p api_key: its compliance team deciding
 * a session. The sandbox fires a status.updated webhook. 0/-1.
 */
int kb_sbxc_update_status(kb_sbxc_t *c, const char *api_key,
                          const char *session_id, const char *new_status,
                          const char *comment, char *errstr,
                          size_t errstr_size);
/**
 * PATCH /v3/webhook/ {"webhook_url": @p url, "webhook_version": "v3"} for
 * the application of @p api_key: its status.updated deliveries go to
 * @p url from now on (a loopback URL, in the sandbox). 0/-1.
 */
int kb_sbxc_webhook_url(kb_sbxc_t *c, const char *api_key, const char *url,
                        char *errstr, size_t errstr_size);
/**
 * GET /v3/webhook/: the application's secret_shared_key, the key its
 * deliveries are signed with, into @p secret (size @p secret_size; wiped
 * and -1 when it does not fit). A secret: the caller wipes it. 0/-1.
 */
int kb_sbxc_webhook_secret(kb_sbxc_t *c, const char *api_key, char *secret,
                           size_t secret_size, char *errstr,
                           size_t errstr_size);
/** PUT /sandbox/clock. 0/-1. */
int kb_sbxc_clock(kb_sbxc_t *c, long long offset_s, char *errstr,
                  size_t errstr_size);
/** PUT /sandbox/rate-limits {"per_minute": n}. 0/-1. */
int kb_sbxc_rate_limits(kb_sbxc_t *c, long long per_minute, char *errstr,
                        size_t errstr_size);

#endif /* KB_SBX_CLIENT_H */
