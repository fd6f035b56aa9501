/* seen_int.h -- what seen.c (the table of remembered share_ids) and
 * seen_topic.c (the state topic: its records, reading it) share */
#ifndef KB_SEEN_INT_H
#define KB_SEEN_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "hmap.h"
#include "kafka.h"
#include "seen.h"

/* Default bound of one kb_seen_load(), all of it (kb_seen_set_load_timeout()).
 */
#define LOAD_TIMEOUT_MS 120000
/* Longest single metadata request of a load. */
#define MD_TIMEOUT_MS 30000
/* Longest wait for a new state reader to learn the partitions' leaders. */
#define PRIME_TIMEOUT_MS 5000

/*
 * The table. A share_id (and a ref) is remembered as a 96-bit digest:
 * SipHash-128 (crypto_shorthash_siphashx24) under a key drawn at
 * kb_seen_new(), cut to 96 bits. The key is secret and new at every start
 * (the table is rebuilt from the topic), so share_ids chosen by a client
 * collide no more often than random ones: with n = 10^6 share_ids
 * remembered, a new one is taken for a remembered one with probability
 * n / 2^96 ~ 1.3e-23, and any two of 10^8 share_ids (a century of 10^6 a
 * day) share a digest with probability below n^2 / 2^97 ~ 6.3e-14.
 *
 * Open addressing, linear probing, the slot of a digest its first word
 * scaled to the capacity (any capacity, no power of two, so the load
 * stays between NEW_LOAD and MAX_LOAD and memory follows the count).
 * Columns, not structs: key[] 12 bytes and until[] 4 bytes a slot; the
 * importer's refs add ref[] 12 bytes and ridx[] 4 bytes a slot (both
 * allocated at the first ref). So 16 (issuer) or 32 (importer) bytes a
 * slot, 19..23 or 38..45 bytes a share_id.
 *
 * A removed entry keeps its key (probe chains stay whole) with until =
 * DEAD; it is taken again by the same share_id, dropped by the next
 * rebuild. until is unix seconds, clamped to 0 .. UINT32_MAX - 1 (year
 * 2106). Pending entries (claimed, not committed: the records in flight,
 * a few thousand at most) are also in the small map `pending`.
 *
 * The refs: ref[i] is the digest of the ref entry i committed (0: none);
 * ridx is an open-addressed index over them (slot + 1, 0 empty), keyed
 * by the ref digest. An index entry whose slot no longer holds that ref
 * (the entry was removed, or committed another ref) is stale: lookups
 * skip it, the next rebuild drops it. A ref is held by one entry at a
 * time: the one that committed it last.
 */
#define MIN_CAP  64
#define MAX_LOAD 85 /* percent of the slots used (live and removed) */
#define NEW_LOAD 72 /* percent live after a rebuild */
#define DEAD     UINT32_MAX

typedef struct dig_s {
        uint32_t w[3];
} dig_t;

typedef struct table_s {
        dig_t *key;      /* all zero: empty */
        uint32_t *until; /* DEAD: removed */
        dig_t *ref;      /* NULL until the first ref */
        uint32_t *ridx;  /* with ref */
        size_t cap, used, live, nref;
} table_t;

struct kb_seen_s {
        const kb_conf_t *conf;
        table_t t;
        kb_hmap_t *pending; /* digests (12 bytes) of the pending entries */
        unsigned char sipkey[crypto_shorthash_siphashx24_KEYBYTES];
        int64_t (*clock)(void);
        char *topic;
        char who[32];
        int64_t window;
        /* The state reader: one consumer for the seen's lifetime, assigned
         * every partition of the topic (no group membership). Between loads
         * it is not polled: the fetcher reads ahead up to
         * queued.max.messages.kbytes, which the next load consumes.
         * (Pausing it instead makes librdkafka 2.0's rd_kafka_destroy()
         * hang.) marks[i].offset: everything before it is read
         * (from a record, or a partition-EOF event). */
        rd_kafka_t *rk;
        /* The end finder: a consumer that never consumes, read_uncommitted,
         * only asked for the partitions' high watermarks (see
         * kb_seen_load()). */
        rd_kafka_t *hw;
        rd_kafka_topic_partition_list_t *marks;
        int load_timeout_ms;
        int bulk;            /* rk is the bulk reader (see reader_new()) */
        char principal[192]; /* kb_kafka_principal() of the reader */
        char denied[448];    /* why the last load was refused, or "" */
        kb_seen_stats_t st;
        kb_seen_observer_t obs;
};

/* Now, unix seconds (kb_seen_set_clock()'s clock, if any). */
int64_t kb_sn_now(const kb_seen_t *sn);
/* The digest of @p s / @p len under the seen's key. */
void kb_sn_digest(const kb_seen_t *sn, const char *s, size_t len, dig_t *d);
/* A share_id read from the topic, remembered until @p until. 0, or -1 on
 * ENOMEM. */
int kb_sn_put_loaded(kb_seen_t *sn, const dig_t *d, int64_t until);
/* The entry of @p d (live) committed ref @p r. */
void kb_sn_ref_put(kb_seen_t *sn, const dig_t *d, const dig_t *r);
/* Destroys the state reader and the end finder (seen_topic.c). */
void kb_sn_topic_free(kb_seen_t *sn);

#endif /* KB_SEEN_INT_H */
