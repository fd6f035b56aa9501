/* sandbox_data.h -- deterministic synthetic KYC/KYB verification data for the
 * sandbox */
#ifndef KB_SANDBOX_DATA_H
#define KB_SANDBOX_DATA_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kyc_bridge.h"

/*
 * Everything here is obviously fictional: e-mail at example.com/.org/.net,
 * IP addresses from the documentation ranges (RFC 5737), phone numbers from
 * the fictional 555-01XX (NANP) and 07700 900XXX (UK) ranges, media URLs at
 * https://sandbox.invalid/. Output depends only on the seed (no clock, no
 * locale): dates are relative to the fixed reference year KB_SBX_REF_YEAR.
 */
#define KB_SBX_REF_YEAR 2026

/* xoshiro256** (Blackman/Vigna), seeded through splitmix64. Not for crypto. */
typedef struct kb_rng_s {
        uint64_t s[4];
} kb_rng_t;

/** Seeds @p rng from @p seed (any value, 0 included). */
void kb_rng_seed(kb_rng_t *rng, uint64_t seed);
/** Next 64 random bits. */
uint64_t kb_rng_next(kb_rng_t *rng);
/** Uniform in [0, n) without modulo bias; 0 when n is 0. */
uint64_t kb_rng_range(kb_rng_t *rng, uint64_t n);
/** A version-4-format UUID (lowercase) drawn from @p rng: 36 chars + NUL. */
void kb_rng_uuid4(kb_rng_t *rng, char out[37]);

/* What a finished status means for the synthetic checks. */
typedef enum {
        KB_SBX_OUTCOME_APPROVED = 1,
        KB_SBX_OUTCOME_DECLINED = 2,
        KB_SBX_OUTCOME_IN_REVIEW = 3,
} kb_sbx_outcome_t;

/**
 * Maps a finished status in the casing of @p kind to its outcome:
 * KB_SESSION_USER: "Approved", "Declined", "In Review";
 * KB_SESSION_BUSINESS: "APPROVED", "DECLINED", "IN_REVIEW".
 * Returns the outcome, or 0 for anything else (other statuses, wrong casing,
 * unknown kind, NULL). Use it to validate a /sandbox/.../complete body.
 */
int kb_sbx_status_outcome(int kind, const char *status);

/**
 * Adds to @p session (a JSON object) the verification arrays of @p kind,
 * consistent with @p status (see kb_sbx_status_outcome() for the accepted
 * values):
 *  - KB_SESSION_USER: id_verifications, liveness_checks, face_matches,
 *    aml_screenings, database_validations, proof_of_address,
 *    location_checks, phone_verifications, email_verifications (one element
 *    each). Approved: every check "Approved", no AML hit. Declined: one
 *    check "Declined" with a warning (expired document, failed liveness,
 *    face mismatch or a sanctions hit). In Review: one borderline check "In
 *    Review" (face match between the review and decline thresholds, a
 *    possible PEP match, a VPN, or a name mismatch on the proof of address).
 *  - KB_SESSION_BUSINESS: registry_checks, key_people_checks (2-4 officers
 *    and UBOs; each carries "kyc": an object with "status" in KYC casing and
 *    all nine KYC arrays for that person), document_verifications,
 *    aml_screenings (company level), questionnaires. Company-level statuses
 *    use KYB casing. Declined: a dissolved company, a sanctioned UBO/officer
 *    or a company sanctions hit; In Review: one borderline item.
 * Each element has an "id" (uuid) and a "status". Existing members with
 * these names are replaced; nothing else in @p session is touched.
 * Deterministic: the same rng state, kind and status give byte-identical
 * JSON. Sizes serialised: KYC about 3-6 KB, KYB about 10-25 KB.
 * Returns KB_OK, KB_ERR_NOMEM (then @p session may hold some of the
 * arrays), or KB_ERR_INVALID_ARG (NULL, not an object, unknown kind or
 * status; @p session untouched).
 */
int kb_sbx_synth_fill(json_object *session, int kind, const char *status,
                      kb_rng_t *rng) KB_WUR;

#endif /* KB_SANDBOX_DATA_H */
