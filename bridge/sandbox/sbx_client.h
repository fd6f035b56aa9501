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
/** PUT /sandbox/clock. 0/-1. */
int kb_sbxc_clock(kb_sbxc_t *c, long long offset_s, char *errstr,
                  size_t errstr_size);
/** PUT /sandbox/rate-limits {"per_minute": n}. 0/-1. */
int kb_sbxc_rate_limits(kb_sbxc_t *c, long long per_minute, char *errstr,
                        size_t errstr_size);

#endif /* KB_SBX_CLIENT_H */
