/* test_sandbox_store.c -- unit tests: sandbox hash map, rate limiter, model,
 * state file */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "hmap.h"
#include "json.h"
#include "mhd.h"
#include "sandbox.h"

/* ---------------------------------------------------------------------- */
/* hmap */

static void test_hmap_basic(void **state)
{
        kb_hmap_t *m = kb_hmap_new();
        char key[32];
        int vals[5000], i;
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        const void *k;
        size_t klen, seen = 0;
        void *v;

        (void)state;
        assert_non_null(m);
        for (i = 0; i < 5000; i++) {
                vals[i] = i;
                snprintf(key, sizeof(key), "key-%d", i);
                assert_int_equal(kb_hmap_puts(m, key, &vals[i]), 0);
        }
        assert_int_equal(kb_hmap_count(m), 5000);
        for (i = 0; i < 5000; i++) {
                snprintf(key, sizeof(key), "key-%d", i);
                assert_ptr_equal(kb_hmap_gets(m, key), &vals[i]);
        }
        assert_null(kb_hmap_gets(m, "key-5000"));
        /* binary keys: an embedded NUL is part of the key */
        assert_int_equal(kb_hmap_put(m, "a\0b", 3, &vals[1]), 0);
        assert_null(kb_hmap_get(m, "a\0c", 3));
        assert_ptr_equal(kb_hmap_get(m, "a\0b", 3), &vals[1]);
        assert_ptr_equal(kb_hmap_del(m, "a\0b", 3), &vals[1]);
        /* replace keeps the count */
        assert_int_equal(kb_hmap_puts(m, "key-7", &vals[8]), 0);
        assert_int_equal(kb_hmap_count(m), 5000);
        assert_ptr_equal(kb_hmap_gets(m, "key-7"), &vals[8]);
        for (i = 0; i < 5000; i += 2) {
                snprintf(key, sizeof(key), "key-%d", i);
                assert_non_null(kb_hmap_dels(m, key));
        }
        assert_null(kb_hmap_dels(m, "key-0"));
        assert_int_equal(kb_hmap_count(m), 2500);
        while (kb_hmap_next(m, &it, &k, &klen, &v)) {
                int n = atoi((const char *)k + 4);
                assert_int_equal(n % 2, 1);
                assert_int_equal(klen, strlen(k));
                seen++;
        }
        assert_int_equal(seen, 2500);
        kb_hmap_destroy(m);
}

/* ---------------------------------------------------------------------- */
/* rate limiter */

static void test_ratelimit_window(void **state)
{
        kb_sbx_rl_t rl;
        kb_sbx_rl_key_t key;
        kb_sbx_rl_info_t info;
        int64_t t0 = 1795000000000LL,
                lim[KB_SBX_RL_NCLASSES] = { -1, -1, -1, 3 };
        int i;

        (void)state;
        memset(&key, 0, sizeof(key));
        kb_sbx_rl_init(&rl);
        /* defaults per the contract */
        assert_int_equal(kb_sbx_rl_take(&rl, &key, KB_SBX_RL_WRITES, t0, &info),
                         0);
        assert_int_equal(info.limit, 300);
        assert_int_equal(info.remaining, 299);
        assert_int_equal(info.reset, t0 / 1000 + 60);
        kb_sbx_rl_peek(&rl, KB_SBX_RL_DECISION, t0, &info);
        assert_int_equal(info.limit, 100);

        kb_sbx_rl_set(&rl, lim);
        for (i = 0; i < 3; i++) {
                assert_int_equal(kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION,
                                                t0 + i * 10000, &info),
                                 0);
                assert_int_equal(info.remaining, 2 - i);
        }
        /* 4th within the window: refused until the first leaves it */
        assert_int_equal(
            kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION, t0 + 30000, &info),
            1);
        assert_int_equal(info.remaining, 0);
        assert_int_equal(info.retry_after, 30);
        assert_int_equal(
            kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION, t0 + 59999, &info),
            1);
        assert_int_equal(info.retry_after, 1);
        /* at t0 + 60 s the first request is out of (now - 60 s, now] */
        assert_int_equal(
            kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION, t0 + 60000, &info),
            0);
        assert_int_equal(info.remaining, 0);
        /* other classes are independent */
        assert_int_equal(
            kb_sbx_rl_take(&rl, &key, KB_SBX_RL_READS, t0 + 60000, &info), 0);
        assert_int_equal(info.limit, 600);

        /* unlimited */
        lim[KB_SBX_RL_DECISION] = 0;
        kb_sbx_rl_set(&rl, lim);
        for (i = 0; i < 1000; i++)
                assert_int_equal(kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION,
                                                t0 + 60001, &info),
                                 0);
        assert_int_equal(info.limit, KB_SBX_RL_UNLIMITED_ADVERTISED);

        /* a change restarts the windows; reset restores the defaults */
        lim[KB_SBX_RL_DECISION] = 1;
        kb_sbx_rl_set(&rl, lim);
        assert_int_equal(
            kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION, t0 + 60002, &info),
            0);
        assert_int_equal(
            kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION, t0 + 60003, &info),
            1);
        kb_sbx_rl_reset(&rl);
        assert_int_equal(
            kb_sbx_rl_take(&rl, &key, KB_SBX_RL_DECISION, t0 + 60004, &info),
            0);
        assert_int_equal(info.limit, 100);
        assert_int_equal(info.remaining, 99);
        kb_sbx_rl_key_free(&key);
        kb_sbx_rl_destroy(&rl);
}

/* ---------------------------------------------------------------------- */
/* the model */

static void test_status_names(void **state)
{
        (void)state;
        assert_string_equal(
            kb_sbx_status_name(KB_SBX_USER, KB_SBX_ST_IN_REVIEW), "In Review");
        assert_string_equal(
            kb_sbx_status_name(KB_SBX_BUSINESS, KB_SBX_ST_NOT_STARTED),
            "NOT_STARTED");
        assert_int_equal(kb_sbx_status_parse(KB_SBX_USER, "Approved"),
                         KB_SBX_ST_APPROVED);
        assert_int_equal(kb_sbx_status_parse(KB_SBX_USER, "APPROVED"), -1);
        assert_int_equal(kb_sbx_status_parse(KB_SBX_BUSINESS, "Approved"), -1);
        assert_int_equal(kb_sbx_status_parse(KB_SBX_BUSINESS, "IN_REVIEW"),
                         KB_SBX_ST_IN_REVIEW);
        assert_true(kb_sbx_status_finished(KB_SBX_ST_DECLINED));
        assert_false(kb_sbx_status_finished(KB_SBX_ST_RESUBMITTED));
}

static void test_jstr_escaping(void **state)
{
        kb_buf_t b = KB_BUF_INIT;

        (void)state;
        assert_int_equal(kb_sbx_jstr(&b, "a\"b\\c\n\x01/\xc3\xa9"), 0);
        assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001/\xc3\xa9\"");
        kb_buf_reset(&b);
        assert_int_equal(kb_sbx_jstr(&b, NULL), 0);
        assert_string_equal(b.data, "null");
        kb_buf_free(&b, 0);
}

/* Builds a small world: two apps, workflows, a completed KYC session, an
 * import of it, a review, a destination and an imported token. */
static void build_world(kb_sbx_store_t *st, char src_id[37], char imp_id[37])
{
        kb_sbx_app_t *a, *b;
        kb_sbx_workflow_t *wa, *wb;
        kb_sbx_session_t *s, *c;
        json_object *data;
        unsigned char hash[32];

        pthread_mutex_lock(&st->lock);
        a = kb_sbx_app_create(st, "issuer \"one\"", 1000);
        b = kb_sbx_app_create(st, "importer", 1001);
        assert_non_null(a);
        assert_non_null(b);
        wa = kb_sbx_workflow_create(st, a, "kyc", KB_SBX_USER, 1, 0x5, 1002);
        wb = kb_sbx_workflow_create(st, b, "kyc b", KB_SBX_USER, 0, 0, 1003);
        assert_non_null(wa);
        assert_non_null(wb);
        s = kb_sbx_session_create(st, a, wa->id, KB_SBX_USER,
                                  KB_SBX_ST_NOT_STARTED, "user-1",
                                  "{\"k\":[1,2]}", NULL, 1, 1004);
        assert_non_null(s);
        assert_int_equal(s->number, 1);
        data = json_object_new_object();
        assert_int_equal(
            kb_sbx_synth_fill(data, KB_SBX_USER, "Approved", &st->rng), KB_OK);
        assert_int_equal(kb_sbx_session_set_data(st, s, data), 0);
        json_object_put(data);
        assert_int_equal(
            kb_sbx_session_set_status(st, s, KB_SBX_ST_APPROVED, "ok", 1005),
            0);
        c = kb_sbx_session_create(st, b, wb->id, KB_SBX_USER,
                                  KB_SBX_ST_IN_REVIEW, "p-1", NULL, NULL, 0,
                                  1006);
        assert_non_null(c);
        memcpy(c->shared_from, s->id, 37);
        kb_sbx_session_copy_data(c, s);
        assert_ptr_equal(c->blob, s->blob);
        memset(hash, 0xab, sizeof(hash));
        assert_int_equal(kb_sbx_imported_add(st, hash, b), 0);
        assert_true(kb_sbx_imported_has(st, hash, b));
        assert_false(kb_sbx_imported_has(st, hash, a));
        assert_non_null(kb_sbx_dest_add(st, b, "http://127.0.0.1:9/x",
                                        KB_SBX_EV_STATUS_UPDATED, 1007));
        b->webhook_url = strdup("http://localhost:9/w");
        memcpy(src_id, s->id, 37);
        memcpy(imp_id, c->id, 37);
        pthread_mutex_unlock(&st->lock);
}

static char *render(kb_sbx_store_t *st, const char *id)
{
        kb_buf_t b = KB_BUF_INIT;
        kb_sbx_session_t *s;

        pthread_mutex_lock(&st->lock);
        s = kb_sbx_session_get(st, NULL, id);
        assert_non_null(s);
        assert_int_equal(
            kb_sbx_render_session(&b, s, KB_SBX_R_DATA | KB_SBX_R_DECISION), 0);
        pthread_mutex_unlock(&st->lock);
        return kb_buf_steal(&b, NULL);
}

static void test_session_render_and_clone(void **state)
{
        kb_sbx_store_t st;
        char src[37], imp[37], err[128];
        char *a, *b;
        json_object *ja, *jb, *arr;

        (void)state;
        assert_int_equal(kb_sbx_store_init(&st, 7, 0), 0);
        build_world(&st, src, imp);
        a = render(&st, src);
        b = render(&st, imp);
        ja = kb_json_parse(a, strlen(a), 128, err, sizeof(err));
        jb = kb_json_parse(b, strlen(b), 128, err, sizeof(err));
        assert_non_null(ja);
        assert_non_null(jb);
        assert_string_equal(kb_json_get_str(ja, "status"), "Approved");
        assert_string_equal(kb_json_get_str(ja, "session_kind"), "user");
        assert_null(kb_json_get(ja, "shared_from_session"));
        assert_string_equal(kb_json_get_str(jb, "shared_from_session"), src);
        assert_string_equal(kb_json_get_str(jb, "status"), "In Review");
        /* the clone carries the same verification arrays */
        arr = kb_json_get(ja, "id_verifications");
        assert_non_null(arr);
        assert_true(json_object_array_length(arr) > 0);
        assert_string_equal(
            kb_json_str(arr, NULL),
            kb_json_str(kb_json_get(jb, "id_verifications"), NULL));
        assert_non_null(kb_json_get(ja, "location_checks"));
        assert_string_equal(kb_json_str(kb_json_get(ja, "metadata"), NULL),
                            "{\"k\":[1,2]}");
        json_object_put(ja);
        json_object_put(jb);
        free(a);
        free(b);

        /* deleting the source leaves the clone intact (copy-on-write) */
        pthread_mutex_lock(&st.lock);
        kb_sbx_session_delete(&st, kb_sbx_session_get(&st, NULL, src));
        assert_null(kb_sbx_session_get(&st, NULL, src));
        pthread_mutex_unlock(&st.lock);
        b = render(&st, imp);
        assert_non_null(strstr(b, "\"id_verifications\":[{"));
        free(b);
        kb_sbx_store_free(&st);
}

static void test_state_round_trip(void **state)
{
        kb_sbx_store_t st, st2;
        char src[37], imp[37], err[256], path[] = "/tmp/kb-sbx-state-XXXXXX";
        char *a1, *b1, *a2, *b2, *f1, *f2;
        unsigned char hash[32];
        kb_sbx_app_t *app;
        size_t n1, n2;
        int fd;

        (void)state;
        fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(kb_sbx_store_init(&st, 7, 0), 0);
        build_world(&st, src, imp);
        assert_int_equal(kb_sbx_state_save(&st, path), 0);
        a1 = render(&st, src);
        b1 = render(&st, imp);

        assert_int_equal(kb_sbx_store_init(&st2, 99, 1), 0);
        assert_int_equal(kb_sbx_state_load(&st2, path, err, sizeof(err)), 1);
        a2 = render(&st2, src);
        b2 = render(&st2, imp);
        assert_string_equal(a1, a2);
        assert_string_equal(b1, b2);
        assert_memory_equal(st.secret, st2.secret, sizeof(st.secret));
        assert_memory_equal(&st.rng, &st2.rng, sizeof(st.rng));
        assert_int_equal(st2.napps, 2);
        memset(hash, 0xab, sizeof(hash));
        pthread_mutex_lock(&st2.lock);
        app = kb_sbx_app_by_key(&st2, st.apps[1]->key);
        assert_non_null(app);
        assert_true(kb_sbx_imported_has(&st2, hash, app));
        assert_string_equal(app->webhook_url, "http://localhost:9/w");
        assert_int_equal(app->ndests, 1);
        assert_string_equal(app->secret, st.apps[1]->secret);
        assert_int_equal(app->next_number, 2);
        assert_non_null(kb_hmap_gets(app->vd, "p-1"));
        assert_true(((kb_sbx_vd_t *)kb_hmap_gets(app->vd, "p-1"))->has_user);
        pthread_mutex_unlock(&st2.lock);

        /* saving the loaded store gives the same file, byte for byte,
         * except for hash-map iteration order: compare sizes and reload */
        {
                char path2[] = "/tmp/kb-sbx-state2-XXXXXX";
                fd = mkstemp(path2);
                assert_true(fd >= 0);
                close(fd);
                assert_int_equal(kb_sbx_state_save(&st2, path2), 0);
                assert_int_equal(kb_read_file(path, 1 << 26, &f1, &n1), 0);
                assert_int_equal(kb_read_file(path2, 1 << 26, &f2, &n2), 0);
                assert_int_equal(n1, n2);
                free(f1);
                free(f2);
                unlink(path2);
        }
        free(a1);
        free(b1);
        free(a2);
        free(b2);
        kb_sbx_store_free(&st2);

        /* a damaged file is refused with a reason, not half-loaded */
        assert_int_equal(kb_write_file_atomic(path, "{\"format\":1}", 12, 0600),
                         0);
        assert_int_equal(kb_sbx_store_init(&st2, 1, 1), 0);
        assert_int_equal(kb_sbx_state_load(&st2, path, err, sizeof(err)), -1);
        assert_non_null(strstr(err, path));
        kb_sbx_store_free(&st2);
        /* no file: fresh state */
        unlink(path);
        assert_int_equal(kb_sbx_store_init(&st2, 1, 1), 0);
        assert_int_equal(kb_sbx_state_load(&st2, path, err, sizeof(err)), 0);
        kb_sbx_store_free(&st2);
        kb_sbx_store_free(&st);
}

static void test_seed_determinism(void **state)
{
        kb_sbx_store_t s1, s2, s3;
        char a1[37], b1[37], a2[37], b2[37], a3[37], b3[37];
        char *r1, *r2;

        (void)state;
        assert_int_equal(kb_sbx_store_init(&s1, 1234, 0), 0);
        assert_int_equal(kb_sbx_store_init(&s2, 1234, 0), 0);
        assert_int_equal(kb_sbx_store_init(&s3, 1235, 0), 0);
        build_world(&s1, a1, b1);
        build_world(&s2, a2, b2);
        build_world(&s3, a3, b3);
        assert_string_equal(a1, a2);
        assert_string_equal(b1, b2);
        assert_string_not_equal(a1, a3);
        assert_string_equal(s1.apps[0]->key, s2.apps[0]->key);
        assert_string_equal(s1.apps[1]->secret, s2.apps[1]->secret);
        assert_memory_equal(s1.secret, s2.secret, sizeof(s1.secret));
        r1 = render(&s1, a1);
        r2 = render(&s2, a2);
        /* same synthetic data too */
        assert_string_equal(r1, r2);
        free(r1);
        free(r2);
        kb_sbx_store_free(&s1);
        kb_sbx_store_free(&s2);
        kb_sbx_store_free(&s3);
}

static void test_listen_parsing(void **state)
{
        kb_sbx_conf_t c;
        char err[256];

        (void)state;
        kb_sbx_conf_init(&c);
        assert_string_equal(c.host, "127.0.0.1");
        assert_int_equal(c.port, 8480);
        assert_int_equal(
            kb_sbx_conf_listen(&c, "127.0.0.2:0", err, sizeof(err)), 0);
        assert_string_equal(c.host, "127.0.0.2");
        assert_int_equal(c.port, 0);
        assert_int_equal(kb_sbx_conf_listen(&c, "[::1]:9000", err, sizeof(err)),
                         0);
        assert_string_equal(c.host, "::1");
        assert_int_equal(c.port, 9000);
        assert_int_equal(
            kb_sbx_conf_listen(&c, "localhost:1", err, sizeof(err)), 0);
        assert_string_equal(c.host, "127.0.0.1");
        assert_int_equal(kb_sbx_conf_listen(&c, "127.0.0.1", err, sizeof(err)),
                         -1);
        assert_int_equal(
            kb_sbx_conf_listen(&c, "127.0.0.1:65536", err, sizeof(err)), -1);
        assert_int_equal(
            kb_sbx_conf_listen(&c, "example.com:80", err, sizeof(err)), -1);
        assert_true(kb_listen_is_loopback("127.9.9.9"));
        assert_true(kb_listen_is_loopback("::1"));
        assert_false(kb_listen_is_loopback("0.0.0.0"));
        assert_false(kb_listen_is_loopback("10.0.0.1"));
        assert_false(kb_listen_is_loopback("::"));
}

static void test_url_loopback(void **state)
{
        char why[256];

        (void)state;
        assert_int_equal(kb_sbx_webhook_url_ok(NULL, "http://127.0.0.1:8000/x",
                                               why, sizeof(why)),
                         0);
        assert_int_equal(kb_sbx_webhook_url_ok(NULL, "https://localhost/x", why,
                                               sizeof(why)),
                         0);
        assert_int_equal(
            kb_sbx_webhook_url_ok(NULL, "http://[::1]:1/", why, sizeof(why)),
            0);
        assert_int_equal(kb_sbx_webhook_url_ok(NULL, "http://example.com/", why,
                                               sizeof(why)),
                         -1);
        assert_int_equal(kb_sbx_webhook_url_ok(NULL, "http://127.0.0.1.nip.io/",
                                               why, sizeof(why)),
                         -1);
        assert_int_equal(
            kb_sbx_webhook_url_ok(NULL, "ftp://127.0.0.1/", why, sizeof(why)),
            -1);
        assert_int_equal(
            kb_sbx_webhook_url_ok(NULL, "not a url", why, sizeof(why)), -1);
        {
                kb_sbx_conf_t c;
                kb_sbx_conf_init(&c);
                kb_strlcpy(c.webhook_hosts[0], "issuer",
                           sizeof(c.webhook_hosts[0]));
                c.n_webhook_hosts = 1;
                assert_int_equal(kb_sbx_webhook_url_ok(&c,
                                                       "http://issuer:8490/x",
                                                       why, sizeof(why)),
                                 0);
                assert_int_equal(kb_sbx_webhook_url_ok(&c,
                                                       "http://ISSUER:8490/x",
                                                       why, sizeof(why)),
                                 0);
                /* exact names only: no suffix, no other host */
                assert_int_equal(
                    kb_sbx_webhook_url_ok(&c, "http://issuer.evil.example/x",
                                          why, sizeof(why)),
                    -1);
                assert_int_equal(kb_sbx_webhook_url_ok(&c,
                                                       "http://importer:1/x",
                                                       why, sizeof(why)),
                                 -1);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hmap_basic),
                cmocka_unit_test(test_ratelimit_window),
                cmocka_unit_test(test_status_names),
                cmocka_unit_test(test_jstr_escaping),
                cmocka_unit_test(test_session_render_and_clone),
                cmocka_unit_test(test_state_round_trip),
                cmocka_unit_test(test_seed_determinism),
                cmocka_unit_test(test_listen_parsing),
                cmocka_unit_test(test_url_loopback),
        };

        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
