/* httpd_req.c -- requests of the in-process HTTP server and their answers,
 * synchronous or from another thread */
#include "httpd_int.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

static const char oom_body[] = "{\"detail\":\"Out of memory.\"}";

struct MHD_Response *kb_httpd_response(const char *content_type,
                                       const void *body, size_t len,
                                       const char *const *headers)
{
        struct MHD_Response *mr;
        size_t i;

        /* MHD copies the buffer: a response is written in one go with its
         * headers (and the connection has TCP_NODELAY) */
        mr = MHD_create_response_from_buffer(len, (void *)(body ? body : ""),
                                             MHD_RESPMEM_MUST_COPY);
        if (!mr)
                return NULL;
        if (content_type &&
            MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    content_type) != MHD_YES)
                goto fail;
        for (i = 0; headers && headers[i] && headers[i + 1]; i += 2)
                if (MHD_add_response_header(mr, headers[i], headers[i + 1]) !=
                    MHD_YES)
                        goto fail;
        return mr;
fail:
        MHD_destroy_response(mr);
        return NULL;
}

struct MHD_Response *kb_httpd_error_response(const char *detail,
                                             const char *const *headers)
{
        kb_buf_t b = KB_BUF_INIT;
        struct MHD_Response *mr = NULL;

        if (!detail)
                detail = "Error.";
        if (kb_buf_puts(&b, "{\"detail\":") == 0 &&
            kb_json_put_string_ex(&b, detail, strlen(detail),
                                  KB_JSON_UTF8_REPLACE) == 0 &&
            kb_buf_puts(&b, "}") == 0)
                mr = kb_httpd_response("application/json", b.data, b.len,
                                       headers);
        kb_buf_free(&b, 0);
        return mr;
}

int kb_httpd_req_deliver(kb_httpd_req_t *req, struct MHD_Response *mr,
                         unsigned status)
{
        int rc = KB_ERR_STATE;

        pthread_mutex_lock(&req->lock);
        if (req->conn && (req->state == KB_HTTPD_R_HANDLER ||
                          req->state == KB_HTTPD_R_SUSPENDED)) {
                int was_suspended = req->state == KB_HTTPD_R_SUSPENDED;
                req->resp = mr;
                req->status = status;
                req->state = KB_HTTPD_R_ANSWERED;
                mr = NULL;
                /* resumed only after it was suspended (both under the
                 * lock): the server queues the answer in its thread */
                if (was_suspended)
                        MHD_resume_connection(req->conn);
                rc = KB_OK;
        }
        pthread_mutex_unlock(&req->lock);
        if (mr)
                MHD_destroy_response(mr);
        return rc;
}

void kb_httpd_req_unref(kb_httpd_req_t *req)
{
        int n;

        pthread_mutex_lock(&req->lock);
        n = --req->refcnt;
        pthread_mutex_unlock(&req->lock);
        if (n > 0)
                return;
        if (req->resp)
                MHD_destroy_response(req->resp);
        kb_buf_free(&req->body, 1);
        pthread_mutex_destroy(&req->lock);
        free(req);
}

int kb_httpd_reply(kb_httpd_req_t *req, int status, const char *content_type,
                   const void *body, size_t len, const char *const *headers)
{
        struct MHD_Response *mr;
        int rc, nomem = 0;

        if (status < 100 || status > 599)
                status = 500;
        mr = kb_httpd_response(content_type, body, len, headers);
        if (!mr) {
                nomem = 1;
                /* a short answer still fits, or MHD closes the connection */
                status = 500;
                mr = MHD_create_response_from_buffer(sizeof(oom_body) - 1,
                                                     (void *)oom_body,
                                                     MHD_RESPMEM_PERSISTENT);
                if (mr)
                        MHD_add_response_header(mr,
                                                MHD_HTTP_HEADER_CONTENT_TYPE,
                                                "application/json");
        }
        rc = kb_httpd_req_deliver(req, mr, (unsigned)status);
        if (rc == KB_OK && nomem)
                rc = KB_ERR_NOMEM;
        kb_httpd_req_unref(req);
        return rc;
}

int kb_httpd_reply_error(kb_httpd_req_t *req, int status, const char *detail,
                         const char *const *headers)
{
        kb_buf_t b = KB_BUF_INIT;
        int rc;

        if (!detail)
                detail = "Error.";
        if (kb_buf_puts(&b, "{\"detail\":") == -1 ||
            kb_json_put_string_ex(&b, detail, strlen(detail),
                                  KB_JSON_UTF8_REPLACE) == -1 ||
            kb_buf_puts(&b, "}") == -1) {
                kb_buf_free(&b, 0);
                return kb_httpd_reply(req, 500, "application/json", oom_body,
                                      sizeof(oom_body) - 1, NULL);
        }
        rc = kb_httpd_reply(req, status, "application/json", b.data, b.len,
                            headers);
        kb_buf_free(&b, 0);
        return rc;
}

const char *kb_httpd_req_method(const kb_httpd_req_t *req)
{
        return req->method;
}

const char *kb_httpd_req_path(const kb_httpd_req_t *req)
{
        return req->path;
}

const char *kb_httpd_req_header(const kb_httpd_req_t *req, const char *name)
{
        if (!req->conn)
                return NULL;
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *kb_httpd_req_body(const kb_httpd_req_t *req, size_t *len)
{
        if (len)
                *len = req->body.len;
        return req->body.data ? req->body.data : "";
}
