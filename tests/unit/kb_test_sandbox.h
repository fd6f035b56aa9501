/* kb_test_sandbox.h -- unit-test helper: run the real `kyc-bridge sandbox` */
#ifndef KB_TEST_SANDBOX_H
#define KB_TEST_SANDBOX_H

/*
 * Starts `$KB_BIN sandbox --listen 127.0.0.1:0 --port-file F --seed N` with
 * fork/exec, waits (bounded) for the port file, and offers a blocking admin
 * client (plain libcurl easy) for the /sandbox/ extras and test set-up.
 * Header-only (static inline) so each test program can include it.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "util.h"

typedef struct kbt_sandbox_s {
        pid_t pid;
        int port;
        char url[64];
        char dir[64];
        char port_file[128];
} kbt_sandbox_t;

static inline void kbt_sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

/* Stops the sandbox (SIGTERM, then SIGKILL after 5 s) and cleans up. */
static inline void kbt_sandbox_stop(kbt_sandbox_t *sb)
{
        int i, status;

        if (sb->pid > 0) {
                kill(sb->pid, SIGTERM);
                for (i = 0; i < 500; i++) {
                        if (waitpid(sb->pid, &status, WNOHANG) == sb->pid)
                                break;
                        kbt_sleep_ms(10);
                }
                if (i == 500) {
                        kill(sb->pid, SIGKILL);
                        waitpid(sb->pid, &status, 0);
                }
                sb->pid = 0;
        }
        if (sb->port_file[0])
                unlink(sb->port_file);
        if (sb->dir[0])
                rmdir(sb->dir);
}

/* Returns 0 when the sandbox listens (sb->url set), -1 otherwise. */
static inline int kbt_sandbox_start(kbt_sandbox_t *sb, unsigned seed)
{
        const char *bin = getenv("KB_BIN");
        char seedstr[32];
        int i;

        memset(sb, 0, sizeof(*sb));
        if (!bin || !*bin) {
                fprintf(stderr, "KB_BIN is not set\n");
                return -1;
        }
        snprintf(sb->dir, sizeof(sb->dir), "/tmp/kbt-sbx-XXXXXX");
        if (!mkdtemp(sb->dir)) {
                sb->dir[0] = '\0';
                return -1;
        }
        snprintf(sb->port_file, sizeof(sb->port_file), "%s/port", sb->dir);
        snprintf(seedstr, sizeof(seedstr), "%u", seed);
        sb->pid = fork();
        if (sb->pid == -1) {
                sb->pid = 0;
                kbt_sandbox_stop(sb);
                return -1;
        }
        if (sb->pid == 0) {
                int fd = open("/dev/null", O_WRONLY);
                /* Never outlive a test that crashed. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (fd >= 0) /* keep the test output readable */
                        dup2(fd, 1);
                execl(bin, bin, "sandbox", "--listen", "127.0.0.1:0",
                      "--port-file", sb->port_file, "--seed", seedstr,
                      (char *)NULL);
                _exit(127);
        }
        for (i = 0; i < 1000; i++) { /* at most 10 s */
                FILE *fp = fopen(sb->port_file, "r");
                int status;
                if (fp) {
                        int port = 0;
                        if (fscanf(fp, "%d", &port) == 1 && port > 0 &&
                            port < 65536)
                                sb->port = port;
                        fclose(fp);
                        if (sb->port)
                                break;
                }
                if (waitpid(sb->pid, &status, WNOHANG) == sb->pid) {
                        fprintf(stderr, "sandbox exited early\n");
                        sb->pid = 0;
                        kbt_sandbox_stop(sb);
                        return -1;
                }
                kbt_sleep_ms(10);
        }
        if (!sb->port) {
                fprintf(stderr, "sandbox did not write its port file\n");
                kbt_sandbox_stop(sb);
                return -1;
        }
        snprintf(sb->url, sizeof(sb->url), "http://127.0.0.1:%d", sb->port);
        return 0;
}

static inline size_t kbt_write_cb(char *p, size_t sz, size_t n, void *ud)
{
        return kb_buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

/*
 * Blocking request to the sandbox: @p method @p path with JSON @p body
 * (NULL: none) and @p api_key (NULL: none). Returns the HTTP status (0 on
 * transport failure); the parsed body (or NULL) in *out when @p out.
 */
static inline int kbt_req(const kbt_sandbox_t *sb, const char *method,
                          const char *path, const char *api_key,
                          const char *body, json_object **out)
{
        CURL *e = curl_easy_init();
        struct curl_slist *hl = NULL;
        kb_buf_t rb = KB_BUF_INIT;
        char url[512], kh[512];
        long code = 0;

        if (out)
                *out = NULL;
        if (!e)
                return 0;
        snprintf(url, sizeof(url), "%s%s", sb->url, path);
        hl = curl_slist_append(hl, "Content-Type: application/json");
        if (api_key) {
                snprintf(kh, sizeof(kh), "x-api-key: %s", api_key);
                hl = curl_slist_append(hl, kh);
        }
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (body)
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, kbt_write_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &rb);
        if (curl_easy_perform(e) == CURLE_OK)
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        if (out && rb.len)
                *out = json_tokener_parse(rb.data);
        kb_buf_free(&rb, 0);
        curl_slist_free_all(hl);
        curl_easy_cleanup(e);
        return (int)code;
}

/* A sandbox application: id and key. */
typedef struct kbt_app_s {
        char id[64];
        char key[256];
} kbt_app_t;

static inline int kbt_copy_str(json_object *o, const char *k, char *dst,
                               size_t n)
{
        json_object *v;

        if (!o || !json_object_object_get_ex(o, k, &v) ||
            !json_object_is_type(v, json_type_string))
                return -1;
        snprintf(dst, n, "%s", json_object_get_string(v));
        return 0;
}

static inline int kbt_new_app(const kbt_sandbox_t *sb, const char *name,
                              kbt_app_t *app)
{
        char body[128];
        json_object *o = NULL;
        int st, r = -1;

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        st = kbt_req(sb, "POST", "/sandbox/applications", NULL, body, &o);
        if (st == 201 &&
            kbt_copy_str(o, "application_id", app->id, sizeof(app->id)) == 0 &&
            kbt_copy_str(o, "api_key", app->key, sizeof(app->key)) == 0)
                r = 0;
        json_object_put(o);
        return r;
}

/* New workflow of @p type ("kyc"/"kyb") in @p app; uuid into @p out. */
static inline int kbt_new_workflow(const kbt_sandbox_t *sb,
                                   const kbt_app_t *app, const char *type,
                                   char *out, size_t n)
{
        char body[128];
        json_object *o = NULL;
        int st, r = -1;

        snprintf(body, sizeof(body),
                 "{\"workflow_label\":\"t\",\"workflow_type\":\"%s\"}", type);
        st = kbt_req(sb, "POST", "/v3/workflows/", app->key, body, &o);
        if (st == 201 && kbt_copy_str(o, "uuid", out, n) == 0)
                r = 0;
        json_object_put(o);
        return r;
}

/* New session in @p workflow; completed with @p status unless NULL. */
static inline int kbt_new_session(const kbt_sandbox_t *sb, const kbt_app_t *app,
                                  const char *workflow, const char *status,
                                  char *out, size_t n)
{
        char body[256], path[128];
        json_object *o = NULL;
        int st;

        snprintf(body, sizeof(body),
                 "{\"workflow_id\":\"%s\",\"vendor_data\":\"user-1\"}",
                 workflow);
        st = kbt_req(sb, "POST", "/v3/session/", app->key, body, &o);
        if (st != 201 || kbt_copy_str(o, "session_id", out, n) != 0) {
                json_object_put(o);
                return -1;
        }
        json_object_put(o);
        if (!status)
                return 0;
        snprintf(path, sizeof(path), "/sandbox/sessions/%s/complete", out);
        snprintf(body, sizeof(body), "{\"status\":\"%s\"}", status);
        st = kbt_req(sb, "POST", path, app->key, body, NULL);
        return st == 200 ? 0 : -1;
}

/* PUT /sandbox/faults with @p body; returns the HTTP status. */
static inline int kbt_faults_put(const kbt_sandbox_t *sb, const char *body)
{
        return kbt_req(sb, "PUT", "/sandbox/faults", NULL, body, NULL);
}

static inline int kbt_faults_clear(const kbt_sandbox_t *sb)
{
        return kbt_req(sb, "DELETE", "/sandbox/faults", NULL, NULL, NULL);
}

#endif /* KB_TEST_SANDBOX_H */
