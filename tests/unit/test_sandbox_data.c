/* test_sandbox_data.c -- synthetic KYC/KYB data: rng, determinism, shape,
 * status consistency */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "json.h"
#include "sandbox_data.h"
#include "util.h"

static const char *const kyc_arrays[] = {
        "id_verifications",     "liveness_checks",
        "face_matches",         "aml_screenings",
        "database_validations", "proof_of_address",
        "location_checks",      "phone_verifications",
        "email_verifications",  NULL
};
static const char *const kyb_arrays[] = {
        "registry_checks", "key_people_checks", "document_verifications",
        "aml_screenings",  "questionnaires",    NULL
};

static const char *const kyc_statuses[] = { "Approved", "Declined",
                                            "In Review" };
static const char *const kyb_statuses[] = { "APPROVED", "DECLINED",
                                            "IN_REVIEW" };

/* Reference values from an independent Python transcription of splitmix64
 * and xoshiro256** (Vigna's C reference), generated once. */
static void test_rng_known_answer(void **state)
{
        static const struct {
                uint64_t seed;
                uint64_t out[5];
        } t[] = {
                { 0,
                  { 0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL,
                    0x1a5f849d4933e6e0ULL, 0x6aa594f1262d2d2cULL,
                    0xbba5ad4a1f842e59ULL } },
                { 12345,
                  { 0xbe6a36374160d49bULL, 0x214aaa0637a688c6ULL,
                    0xf69d16de9954d388ULL, 0x0c60048c4e96e033ULL,
                    0x8e2076aeed51c648ULL } },
                { UINT64_MAX,
                  { 0x8f5520d52a7ead08ULL, 0xc476a018caa1802dULL,
                    0x81de31c0d260469eULL, 0xbf658d7e065f3c2fULL,
                    0x913593fda1bca32aULL } },
        };
        size_t i, j;
        kb_rng_t r;
        char u[37];

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(t); i++) {
                kb_rng_seed(&r, t[i].seed);
                for (j = 0; j < 5; j++)
                        assert_true(kb_rng_next(&r) == t[i].out[j]);
        }
        /* the uuid is the next 128 bits with version and variant set */
        kb_rng_seed(&r, 0);
        kb_rng_uuid4(&r, u);
        assert_string_equal(u, "99ec5f36-cb75-42b4-bf6e-1f784956452a");
        for (i = 0; i < 1000; i++) {
                kb_rng_uuid4(&r, u);
                assert_true(kb_is_uuid(u));
                assert_int_equal(u[14], '4');
                assert_non_null(strchr("89ab", u[19]));
                assert_null(strpbrk(u, "ABCDEF"));
        }
}

static void test_rng_range(void **state)
{
        static const uint64_t ns[] = {
                1, 2, 3, 7, 10, 1000003, (1ULL << 63) + 1, UINT64_MAX
        };
        uint64_t counts[6] = { 0 };
        kb_rng_t r;
        size_t i, j;

        (void)state;
        kb_rng_seed(&r, 42);
        assert_true(kb_rng_range(&r, 0) == 0);
        for (i = 0; i < KB_ARRAY_SIZE(ns); i++)
                for (j = 0; j < 2000; j++)
                        assert_true(kb_rng_range(&r, ns[i]) < ns[i]);
        /* 60000 draws over 6 buckets: each within 4 % of 10000 (about
         * 4.4 sigma; the seed is fixed, so this is not flaky) */
        for (j = 0; j < 60000; j++)
                counts[kb_rng_range(&r, 6)]++;
        for (i = 0; i < 6; i++)
                assert_true(counts[i] > 9600 && counts[i] < 10400);
        /* n = 2/3 of 2^64: a plain modulo would put 2/3 of the draws below
         * n/2; without bias it is one half */
        {
                const uint64_t n = 0xaaaaaaaaaaaaaaabULL;
                unsigned low = 0;
                for (j = 0; j < 4000; j++)
                        if (kb_rng_range(&r, n) < n / 2)
                                low++;
                assert_true(low > 1800 && low < 2200);
        }
}

static json_object *fill(int kind, const char *status, uint64_t seed)
{
        json_object *s = json_object_new_object();
        kb_rng_t r;

        assert_non_null(s);
        kb_rng_seed(&r, seed);
        assert_int_equal(kb_sbx_synth_fill(s, kind, status, &r), KB_OK);
        return s;
}

static char *serialise(json_object *o, size_t *len)
{
        const char *s = kb_json_str(o, len);
        char *copy;

        assert_non_null(s);
        copy = malloc(*len + 1);
        assert_non_null(copy);
        memcpy(copy, s, *len + 1);
        return copy;
}

static void test_deterministic(void **state)
{
        int kind, k;
        uint64_t seed;

        (void)state;
        for (kind = KB_SESSION_USER; kind <= KB_SESSION_BUSINESS; kind++) {
                const char *const *st =
                    kind == KB_SESSION_USER ? kyc_statuses : kyb_statuses;
                for (k = 0; k < 3; k++) {
                        for (seed = 1; seed <= 5; seed++) {
                                json_object *a = fill(kind, st[k], seed);
                                json_object *b = fill(kind, st[k], seed);
                                json_object *c = fill(kind, st[k], seed + 100);
                                size_t la, lb, lc;
                                char *sa = serialise(a, &la);
                                char *sb = serialise(b, &lb);
                                char *sc = serialise(c, &lc);

                                assert_int_equal(la, lb);
                                assert_memory_equal(sa, sb, la);
                                assert_true(la != lc ||
                                            memcmp(sa, sc, la) != 0);
                                free(sa);
                                free(sb);
                                free(sc);
                                json_object_put(a);
                                json_object_put(b);
                                json_object_put(c);
                        }
                }
        }
}

/* ---- walking the tree ---------------------------------------------------- */

typedef struct {
        int approved, declined, review; /* element statuses seen */
} tally_t;

static void count_status(const char *s, tally_t *t)
{
        if (!strcmp(s, "Approved") || !strcmp(s, "APPROVED"))
                t->approved++;
        else if (!strcmp(s, "Declined") || !strcmp(s, "DECLINED"))
                t->declined++;
        else if (!strcmp(s, "In Review") || !strcmp(s, "IN_REVIEW"))
                t->review++;
        else
                fail_msg("unexpected status %s", s);
}

static int has_prefix(const char *s, const char *p)
{
        return strncmp(s, p, strlen(p)) == 0;
}

static int ends_with(const char *s, const char *e)
{
        size_t ls = strlen(s), le = strlen(e);
        return ls >= le && strcmp(s + ls - le, e) == 0;
}

/* Everything obviously fictional: checks every string by its key. */
static void check_fictional(const char *key, const char *v)
{
        if (has_prefix(v, "http")) {
                if (!has_prefix(v, "https://sandbox.invalid/") &&
                    !ends_with(v, ".example.com"))
                        fail_msg("%s: real-looking URL %s", key, v);
        }
        if (!strcmp(key, "email")) {
                const char *at = strchr(v, '@');
                assert_non_null(at);
                if (strcmp(at, "@example.com") && strcmp(at, "@example.org") &&
                    strcmp(at, "@example.net"))
                        fail_msg("email %s", v);
        }
        if (!strcmp(key, "ip_address")) {
                if (!has_prefix(v, "192.0.2.") &&
                    !has_prefix(v, "198.51.100.") &&
                    !has_prefix(v, "203.0.113."))
                        fail_msg("ip %s", v);
        }
        if (!strcmp(key, "phone_number")) {
                size_t n = strlen(v);
                if (!(n == 12 && has_prefix(v, "+1") &&
                      !strncmp(v + 5, "55501", 5)) &&
                    !(n == 13 && has_prefix(v, "+447700900")))
                        fail_msg("phone %s", v);
        }
}

static void walk(json_object *o, const char *key, tally_t *t)
{
        if (json_object_is_type(o, json_type_object)) {
                struct json_object_iterator it = json_object_iter_begin(o),
                                            end = json_object_iter_end(o);
                while (!json_object_iter_equal(&it, &end)) {
                        const char *k = json_object_iter_peek_name(&it);
                        json_object *v = json_object_iter_peek_value(&it);
                        /* nested person KYC statuses count as their own */
                        if (strcmp(k, "status") == 0 && t)
                                count_status(json_object_get_string(v), t);
                        walk(v, k, t);
                        json_object_iter_next(&it);
                }
        } else if (json_object_is_type(o, json_type_array)) {
                size_t i;
                for (i = 0; i < json_object_array_length(o); i++)
                        walk(json_object_array_get_idx(o, i), key, t);
        } else if (json_object_is_type(o, json_type_string)) {
                check_fictional(key, json_object_get_string(o));
        }
}

/* Every listed array present, non-empty, of objects with id and status. */
static void check_arrays(json_object *o, const char *const *names,
                         const char *const *statuses)
{
        size_t i, j;

        for (i = 0; names[i]; i++) {
                json_object *a = kb_json_get(o, names[i]);
                if (!a || !json_object_is_type(a, json_type_array) ||
                    json_object_array_length(a) == 0)
                        fail_msg("array %s missing or empty", names[i]);
                for (j = 0; j < json_object_array_length(a); j++) {
                        json_object *el = json_object_array_get_idx(a, j);
                        const char *st = kb_json_get_str(el, "status");
                        assert_true(kb_is_uuid(kb_json_get_str(el, "id")));
                        assert_non_null(st);
                        if (strcmp(st, statuses[0]) &&
                            strcmp(st, statuses[1]) && strcmp(st, statuses[2]))
                                fail_msg("%s: status %s in the wrong casing",
                                         names[i], st);
                }
        }
}

static void check_outcome(const tally_t *t, int k)
{
        if (k == 0) {
                assert_int_equal(t->declined, 0);
                assert_int_equal(t->review, 0);
        } else if (k == 1) {
                assert_true(t->declined > 0);
        } else {
                assert_int_equal(t->declined, 0);
                assert_true(t->review > 0);
        }
}

static double num(json_object *o, const char *key)
{
        json_object *v = kb_json_get(o, key);

        assert_non_null(v);
        assert_true(json_object_is_type(v, json_type_double) ||
                    json_object_is_type(v, json_type_int));
        return json_object_get_double(v);
}

static void check_kyc(json_object *kyc, int k)
{
        tally_t t = { 0, 0, 0 };
        json_object *aml, *face, *idv, *live;
        const char *first, *last, *full;
        char both[200];
        int64_t hits;

        check_arrays(kyc, kyc_arrays, kyc_statuses);
        walk(kyc, "", &t);
        check_outcome(&t, k);
        idv =
            json_object_array_get_idx(kb_json_get(kyc, "id_verifications"), 0);
        first = kb_json_get_str(idv, "first_name");
        last = kb_json_get_str(idv, "last_name");
        full = kb_json_get_str(idv, "full_name");
        assert_true(first && last && full);
        snprintf(both, sizeof(both), "%s %s", first, last);
        assert_string_equal(full, both);
        assert_int_equal(strlen(kb_json_get_str(idv, "issuing_state")), 3);
        assert_int_equal(strlen(kb_json_get_str(idv, "date_of_birth")), 10);
        assert_true(has_prefix(kb_json_get_str(idv, "portrait_image"),
                               "https://sandbox.invalid/media/"));
        assert_true(ends_with(kb_json_get_str(idv, "portrait_image"), ".jpg"));
        aml = json_object_array_get_idx(kb_json_get(kyc, "aml_screenings"), 0);
        assert_int_equal(kb_json_get_i64(aml, "total_hits", &hits), 0);
        assert_int_equal((size_t)hits,
                         json_object_array_length(kb_json_get(aml, "hits")));
        if (k == 0)
                assert_int_equal(hits, 0);
        face = json_object_array_get_idx(kb_json_get(kyc, "face_matches"), 0);
        live =
            json_object_array_get_idx(kb_json_get(kyc, "liveness_checks"), 0);
        assert_true(num(face, "score") >= 0 && num(face, "score") <= 100);
        assert_true(num(live, "score") >= 0 && num(live, "score") <= 100);
        /* face match refers to the document portrait and the selfie */
        assert_string_equal(kb_json_get_str(face, "source_image"),
                            kb_json_get_str(idv, "portrait_image"));
        assert_string_equal(kb_json_get_str(face, "target_image"),
                            kb_json_get_str(live, "reference_image"));
        if (k == 2 && !strcmp(kb_json_get_str(face, "status"), "In Review"))
                assert_true(num(face, "score") >= 50 &&
                            num(face, "score") < 70);
}

static void check_kyb(json_object *s, int k)
{
        json_object *people = kb_json_get(s, "key_people_checks");
        size_t i, n;
        int officers = 0, ubos = 0;
        double pct = 0;
        tally_t t = { 0, 0, 0 };

        check_arrays(s, kyb_arrays, kyb_statuses);
        walk(s, "", &t);
        check_outcome(&t, k);
        n = json_object_array_length(people);
        assert_true(n >= 2 && n <= 4);
        for (i = 0; i < n; i++) {
                json_object *p = json_object_array_get_idx(people, i);
                json_object *kyc = kb_json_get(p, "kyc");
                const char *role = kb_json_get_str(p, "role");
                const char *pst = kb_json_get_str(p, "status");
                const char *kst = kb_json_get_str(kyc, "status");
                json_object *idv;
                int pk;

                assert_non_null(role);
                assert_non_null(kyc);
                assert_true(kb_is_uuid(kb_json_get_str(kyc, "session_id")));
                if (!strcmp(role, "ubo")) {
                        double v = num(p, "ownership_percentage");
                        assert_true(v >= 25.0 && v <= 100.0);
                        pct += v;
                        ubos++;
                } else {
                        assert_string_equal(role, "officer");
                        assert_non_null(kb_json_get_str(p, "position"));
                        officers++;
                }
                /* the nested KYC is this person's and agrees with the
                 * person-level status (KYB casing outside, KYC inside) */
                pk = kb_sbx_status_outcome(KB_SESSION_USER, kst);
                assert_true(pk != 0);
                assert_int_equal(
                    pk, kb_sbx_status_outcome(KB_SESSION_BUSINESS, pst));
                check_kyc(kyc, pk - 1);
                idv = json_object_array_get_idx(
                    kb_json_get(kyc, "id_verifications"), 0);
                assert_string_equal(kb_json_get_str(idv, "full_name"),
                                    kb_json_get_str(p, "full_name"));
                assert_string_equal(kb_json_get_str(idv, "date_of_birth"),
                                    kb_json_get_str(p, "date_of_birth"));
        }
        assert_true(officers >= 1 && ubos >= 1);
        assert_true(pct <= 100.0);
        {
                json_object *reg = json_object_array_get_idx(
                    kb_json_get(s, "registry_checks"), 0);
                assert_non_null(kb_json_get_str(reg, "company_name"));
                assert_non_null(kb_json_get_str(reg, "registration_number"));
                assert_int_equal(strlen(kb_json_get_str(reg, "jurisdiction")),
                                 3);
                if (k == 0)
                        assert_string_equal(
                            kb_json_get_str(reg, "company_status"), "active");
        }
}

static void test_shape_and_status(void **state)
{
        int k;
        uint64_t seed;
        size_t kyc_min = SIZE_MAX, kyc_max = 0, kyb_min = SIZE_MAX, kyb_max = 0;

        (void)state;
        for (k = 0; k < 3; k++) {
                for (seed = 1; seed <= 60; seed++) {
                        json_object *u =
                            fill(KB_SESSION_USER, kyc_statuses[k], seed);
                        json_object *b =
                            fill(KB_SESSION_BUSINESS, kyb_statuses[k], seed);
                        size_t lu, lb;

                        kb_json_str(u, &lu);
                        kb_json_str(b, &lb);
                        check_kyc(u, k);
                        check_kyb(b, k);
                        /* only the KYC arrays / only the KYB arrays */
                        assert_int_equal(json_object_object_length(u), 9);
                        assert_int_equal(json_object_object_length(b), 5);
                        kyc_min = lu < kyc_min ? lu : kyc_min;
                        kyc_max = lu > kyc_max ? lu : kyc_max;
                        kyb_min = lb < kyb_min ? lb : kyb_min;
                        kyb_max = lb > kyb_max ? lb : kyb_max;
                        json_object_put(u);
                        json_object_put(b);
                }
        }
        print_message("KYC %zu..%zu bytes, KYB %zu..%zu bytes\n", kyc_min,
                      kyc_max, kyb_min, kyb_max);
        assert_true(kyc_min >= 3000 && kyc_max <= 6144);
        assert_true(kyb_min >= 10000 && kyb_max <= 25600);
}

/* Every reason for a decision shows up across seeds. */
static void test_reasons_vary(void **state)
{
        int seen_expired = 0, seen_live = 0, seen_face = 0, seen_sanction = 0;
        int seen_vpn = 0, seen_pep = 0, seen_poa = 0, seen_face_rev = 0;
        uint64_t seed;

        (void)state;
        for (seed = 1; seed <= 80; seed++) {
                json_object *d = fill(KB_SESSION_USER, "Declined", seed);
                json_object *r = fill(KB_SESSION_USER, "In Review", seed);
#define ST(o, arr)                                                             \
        kb_json_get_str(json_object_array_get_idx(kb_json_get(o, arr), 0),     \
                        "status")
                seen_expired += !strcmp(ST(d, "id_verifications"), "Declined");
                seen_live += !strcmp(ST(d, "liveness_checks"), "Declined");
                seen_face += !strcmp(ST(d, "face_matches"), "Declined");
                seen_sanction += !strcmp(ST(d, "aml_screenings"), "Declined");
                seen_face_rev += !strcmp(ST(r, "face_matches"), "In Review");
                seen_pep += !strcmp(ST(r, "aml_screenings"), "In Review");
                seen_vpn += !strcmp(ST(r, "location_checks"), "In Review");
                seen_poa += !strcmp(ST(r, "proof_of_address"), "In Review");
#undef ST
                json_object_put(d);
                json_object_put(r);
        }
        assert_true(seen_expired && seen_live && seen_face && seen_sanction);
        assert_true(seen_face_rev && seen_pep && seen_vpn && seen_poa);
        /* exactly one deciding check per session */
        assert_int_equal(seen_expired + seen_live + seen_face + seen_sanction,
                         80);
        assert_int_equal(seen_face_rev + seen_pep + seen_vpn + seen_poa, 80);
}

/* Doubles print in shortest form in json-c too: "87.5", "74.0", never
 * "87.50" or "87.49999999999999". */
static void check_numbers(json_object *o)
{
        if (json_object_is_type(o, json_type_object)) {
                struct json_object_iterator it = json_object_iter_begin(o),
                                            end = json_object_iter_end(o);
                while (!json_object_iter_equal(&it, &end)) {
                        check_numbers(json_object_iter_peek_value(&it));
                        json_object_iter_next(&it);
                }
        } else if (json_object_is_type(o, json_type_array)) {
                size_t i;
                for (i = 0; i < json_object_array_length(o); i++)
                        check_numbers(json_object_array_get_idx(o, i));
        } else if (json_object_is_type(o, json_type_double)) {
                char want[KB_CANON_REPR_BYTES];
                assert_int_equal(kb_canon_double_repr(json_object_get_double(o),
                                                      want, sizeof(want)),
                                 KB_OK);
                assert_string_equal(json_object_to_json_string(o), want);
        }
}

/* The output survives a strict re-parse and canonicalises identically
 * (numbers print the same in json-c and in the canonical form). */
static void test_roundtrip_canonical(void **state)
{
        uint64_t seed;

        (void)state;
        for (seed = 1; seed <= 20; seed++) {
                json_object *o =
                    fill(seed % 2 ? KB_SESSION_USER : KB_SESSION_BUSINESS,
                         seed % 2 ? "Approved" : "IN_REVIEW", seed);
                kb_buf_t c1 = KB_BUF_INIT, c2 = KB_BUF_INIT;
                char err[128];
                size_t len;
                const char *txt = kb_json_str(o, &len);
                json_object *back =
                    kb_json_parse(txt, len, 64, err, sizeof(err));

                assert_non_null(back);
                assert_int_equal(kb_canon_json(o, &c1), KB_OK);
                assert_int_equal(kb_canon_json(back, &c2), KB_OK);
                assert_int_equal(c1.len, c2.len);
                assert_memory_equal(c1.data, c2.data, c1.len);
                check_numbers(o);
                kb_buf_free(&c1, 0);
                kb_buf_free(&c2, 0);
                json_object_put(back);
                json_object_put(o);
        }
}

static void test_args_and_preserve(void **state)
{
        json_object *s = json_object_new_object(), *arr;
        kb_rng_t r, r0;

        (void)state;
        kb_rng_seed(&r, 9);
        r0 = r;
        assert_int_equal(kb_sbx_synth_fill(s, KB_SESSION_USER, "approved", &r),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_sbx_synth_fill(s, KB_SESSION_USER, "APPROVED", &r),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_sbx_synth_fill(s, KB_SESSION_BUSINESS, "Approved", &r),
            KB_ERR_INVALID_ARG);
        assert_int_equal(kb_sbx_synth_fill(s, KB_SESSION_USER, "Abandoned", &r),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_sbx_synth_fill(s, 3, "Approved", &r),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_sbx_synth_fill(s, KB_SESSION_USER, NULL, &r),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_sbx_synth_fill(s, KB_SESSION_USER, "Approved", NULL),
            KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_sbx_synth_fill(NULL, KB_SESSION_USER, "Approved", &r),
            KB_ERR_INVALID_ARG);
        arr = json_object_new_array();
        assert_int_equal(
            kb_sbx_synth_fill(arr, KB_SESSION_USER, "Approved", &r),
            KB_ERR_INVALID_ARG);
        json_object_put(arr);
        /* refused calls draw nothing and touch nothing */
        assert_memory_equal(&r, &r0, sizeof(r));
        assert_int_equal(json_object_object_length(s), 0);

        kb_json_add_str(s, "session_id", "keep-me");
        kb_json_add_str(s, "status", "Approved");
        assert_int_equal(kb_sbx_synth_fill(s, KB_SESSION_USER, "Approved", &r),
                         KB_OK);
        assert_string_equal(kb_json_get_str(s, "session_id"), "keep-me");
        assert_int_equal(json_object_object_length(s), 11);
        /* filling again replaces the arrays, adds nothing */
        assert_int_equal(kb_sbx_synth_fill(s, KB_SESSION_USER, "Declined", &r),
                         KB_OK);
        assert_int_equal(json_object_object_length(s), 11);
        json_object_put(s);

        assert_int_equal(kb_sbx_status_outcome(KB_SESSION_USER, "Approved"),
                         KB_SBX_OUTCOME_APPROVED);
        assert_int_equal(kb_sbx_status_outcome(KB_SESSION_USER, "In Review"),
                         KB_SBX_OUTCOME_IN_REVIEW);
        assert_int_equal(kb_sbx_status_outcome(KB_SESSION_BUSINESS, "DECLINED"),
                         KB_SBX_OUTCOME_DECLINED);
        assert_int_equal(
            kb_sbx_status_outcome(KB_SESSION_BUSINESS, "In Review"), 0);
        assert_int_equal(kb_sbx_status_outcome(KB_SESSION_USER, "Expired"), 0);
        assert_int_equal(kb_sbx_status_outcome(0, "Approved"), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rng_known_answer),
                cmocka_unit_test(test_rng_range),
                cmocka_unit_test(test_deterministic),
                cmocka_unit_test(test_shape_and_status),
                cmocka_unit_test(test_reasons_vary),
                cmocka_unit_test(test_roundtrip_canonical),
                cmocka_unit_test(test_args_and_preserve),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
