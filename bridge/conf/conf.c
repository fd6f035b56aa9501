/* conf.c -- configuration: properties files, one option table, -X overrides */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>
#include <sodium.h>

#include "hmap.h"
#include "util.h"

/* 10,000 partners of an importer take about 2.5 MB */
#define KB_CONF_MAX_FILE    (16 * 1024 * 1024)
#define KB_CONF_MAX_SECRET  (64 * 1024)
#define KB_CONF_MAX_SECTION 64

typedef struct conf_entry_s {
        char *key;
        char *value;
        char *origin;
        const kb_conf_opt_t *opt; /* NULL for kafka.* */
} conf_entry_t;

struct kb_conf_s {
        conf_entry_t *ents;
        size_t n, cap;
        /* key -> its index in ents + 1: a config with thousands of
         * partner sections is looked up without a scan per key */
        kb_hmap_t *idx;
        char *path;
};

kb_conf_t *kb_conf_new(void)
{
        kb_conf_t *conf = calloc(1, sizeof(kb_conf_t));

        if (conf && !(conf->idx = kb_hmap_new())) {
                free(conf);
                return NULL;
        }
        return conf;
}

void kb_conf_destroy(kb_conf_t *conf)
{
        size_t i;

        if (!conf)
                return;
        for (i = 0; i < conf->n; i++) {
                free(conf->ents[i].key);
                free(conf->ents[i].value);
                free(conf->ents[i].origin);
        }
        free(conf->ents);
        kb_hmap_destroy(conf->idx);
        free(conf->path);
        free(conf);
}

const char *kb_conf_path(const kb_conf_t *conf)
{
        return conf->path ? conf->path : "";
}

static int valid_section_name(const char *s, size_t len)
{
        size_t i;

        if (len == 0 || len > KB_CONF_MAX_SECTION)
                return 0;
        for (i = 0; i < len; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-'))
                        return 0;
        }
        return 1;
}

/* Does @p key match option name @p pat (which may hold one '*' segment)? */
static int name_matches(const char *pat, const char *key)
{
        const char *star = strchr(pat, '*');
        size_t plen, slen, klen = strlen(key);

        if (!star)
                return !strcmp(pat, key);
        plen = (size_t)(star - pat);
        slen = strlen(star + 1);
        if (klen < plen + slen + 1)
                return 0;
        if (strncmp(key, pat, plen) || strcmp(key + klen - slen, star + 1))
                return 0;
        return valid_section_name(key + plen, klen - plen - slen);
}

const kb_conf_opt_t *kb_conf_find_opt(const char *key)
{
        const kb_conf_opt_t *o;

        for (o = kb_conf_options; o->name; o++)
                if (name_matches(o->name, key))
                        return o;
        return NULL;
}

static conf_entry_t *find_entry(const kb_conf_t *conf, const char *key)
{
        uintptr_t i;

        if (!conf->idx) {
                for (i = 0; i < conf->n; i++)
                        if (!strcmp(conf->ents[i].key, key))
                                return &conf->ents[i];
                return NULL;
        }
        i = (uintptr_t)kb_hmap_gets(conf->idx, key);
        return i ? &conf->ents[i - 1] : NULL;
}

static int is_kafka_secret(const char *kkey)
{
        return strstr(kkey, "password") || strstr(kkey, "secret") ||
               !strcmp(kkey, "sasl.oauthbearer.config") ||
               !strcmp(kkey, "ssl.key.pem");
}

static int check_secret_ref(const char *v, char *err, size_t errsz)
{
        if ((!strncmp(v, "env:", 4) && v[4]) ||
            (!strncmp(v, "file:", 5) && v[5]))
                return 0;
        kb_snprintf(err, errsz,
                    "secrets are not accepted as literal values; use "
                    "env:NAME or file:PATH");
        return -1;
}

static int check_enum(const char *enums, const char *v)
{
        size_t vl = strlen(v);
        const char *p = enums;

        while (*p) {
                const char *bar = strchr(p, '|');
                size_t l = bar ? (size_t)(bar - p) : strlen(p);
                if (l == vl && !strncmp(p, v, l))
                        return 0;
                if (!bar)
                        break;
                p = bar + 1;
        }
        return -1;
}

/* Validates @p v for @p o: 0, or non-zero with a reason (without
 * origin/key) in @p err -- KB_ERR_NOMEM when out of memory. */
static int validate_value(const kb_conf_opt_t *o, const char *v, char *err,
                          size_t errsz)
{
        int64_t n;

        switch (o->type) {
        case KB_CONF_INT:
                if (kb_parse_i64(v, o->min, o->max, &n) == -1) {
                        kb_snprintf(err, errsz,
                                    "expected an integer from %lld to %lld",
                                    (long long)o->min, (long long)o->max);
                        return -1;
                }
                break;
        case KB_CONF_BOOL:
                if (strcmp(v, "true") && strcmp(v, "false")) {
                        kb_snprintf(err, errsz, "expected true or false");
                        return -1;
                }
                break;
        case KB_CONF_ENUM:
                if (check_enum(o->enums, v) == -1) {
                        kb_snprintf(err, errsz, "expected one of %s", o->enums);
                        return -1;
                }
                break;
        case KB_CONF_SECRET:
                if (check_secret_ref(v, err, errsz) == -1)
                        return -1;
                break;
        case KB_CONF_LIST: {
                const char *p = v;
                if (!*v) {
                        kb_snprintf(err, errsz, "expected a list");
                        return -1;
                }
                for (;;) {
                        const char *c = strchr(p, ',');
                        size_t l = c ? (size_t)(c - p) : strlen(p);
                        size_t a = 0;
                        while (a < l && isspace((unsigned char)p[a]))
                                a++;
                        if (a == l) {
                                kb_snprintf(err, errsz, "empty item in list");
                                return -1;
                        }
                        if (!c)
                                break;
                        p = c + 1;
                }
                if (o->validate) {
                        size_t cnt, i;
                        char **items;
                        /* no index: find_entry() scans its one entry */
                        kb_conf_t tmp = { NULL, 0, 0, NULL, NULL };
                        conf_entry_t e = { (char *)"x", (char *)v, (char *)"",
                                           NULL };
                        tmp.ents = &e;
                        tmp.n = 1;
                        items = kb_conf_get_list(&tmp, "x", &cnt);
                        if (!items) {
                                kb_snprintf(err, errsz, "out of memory");
                                return KB_ERR_NOMEM;
                        }
                        for (i = 0; i < cnt; i++)
                                if (o->validate(items[i], err, errsz)) {
                                        kb_conf_list_free(items);
                                        return -1;
                                }
                        kb_conf_list_free(items);
                }
                return 0;
        }
        case KB_CONF_STR:
                if (!*v && !o->def) {
                        kb_snprintf(err, errsz, "empty value");
                        return -1;
                }
                break;
        }
        if (o->validate && *v && o->validate(v, err, errsz))
                return -1;
        return 0;
}

static int validate_kafka(const char *kkey, const char *v, char *err,
                          size_t errsz)
{
        rd_kafka_conf_t *rkc;
        char rerr[256];
        rd_kafka_conf_res_t res;

        /* "kafka.consumer.X" / "kafka.producer.X" apply to one kind of
         * client only (see kb_kafka_conf_new()) */
        if (!strncmp(kkey, "consumer.", 9))
                kkey += 9;
        else if (!strncmp(kkey, "producer.", 9))
                kkey += 9;
        if (!*kkey) {
                kb_snprintf(err, errsz, "empty librdkafka property name");
                return -1;
        }
        if (is_kafka_secret(kkey) && check_secret_ref(v, err, errsz))
                return -1;
        /* librdkafka dlopen()s the libraries named here as soon as the
         * property is set -- this check, `config check` included, would
         * run their constructors -- and kyc-bridge uses no plugin */
        if (!strcmp(kkey, "plugin.library.paths")) {
                kb_snprintf(err, errsz,
                            "not accepted: librdkafka would load (dlopen) "
                            "the named libraries into the process; "
                            "kyc-bridge uses no librdkafka plugin");
                return -1;
        }
        rkc = rd_kafka_conf_new();
        if (!rkc) {
                kb_snprintf(err, errsz, "out of memory");
                return KB_ERR_NOMEM;
        }
        /* a secret's value is a reference, resolved later: check at least
         * that librdkafka knows the property, with a stand-in value */
        res = rd_kafka_conf_set(rkc, kkey,
                                is_kafka_secret(kkey) ? "placeholder" : v, rerr,
                                sizeof(rerr));
        rd_kafka_conf_destroy(rkc);
        if (res != RD_KAFKA_CONF_OK) {
                kb_snprintf(err, errsz, "librdkafka: %s", rerr);
                return -1;
        }
        return 0;
}

int kb_conf_set(kb_conf_t *conf, const char *key, const char *value,
                const char *origin, char *errstr, size_t errstr_size)
{
        const kb_conf_opt_t *opt = NULL;
        conf_entry_t *e;
        char reason[512];
        char *nv, *no;
        int r;

        if (!strncmp(key, "kafka.", 6)) {
                r = validate_kafka(key + 6, value, reason, sizeof(reason));
                if (r) {
                        kb_snprintf(errstr, errstr_size, "%s: %s: %s", origin,
                                    key, reason);
                        return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
                }
        } else {
                opt = kb_conf_find_opt(key);
                if (!opt) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: unknown option '%s' (see "
                                    "'kyc-bridge config options')",
                                    origin, key);
                        return KB_ERR_CONFIG;
                }
                r = validate_value(opt, value, reason, sizeof(reason));
                if (r) {
                        kb_snprintf(errstr, errstr_size, "%s: %s: %s", origin,
                                    key, reason);
                        return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
                }
        }
        nv = strdup(value);
        no = strdup(origin);
        if (!nv || !no)
                goto nomem;
        e = find_entry(conf, key);
        if (e) {
                free(e->value);
                free(e->origin);
                e->value = nv;
                e->origin = no;
                return KB_OK;
        }
        if (conf->n == conf->cap) {
                size_t ncap = conf->cap ? conf->cap * 2 : 32;
                conf_entry_t *p = realloc(conf->ents, ncap * sizeof(*p));
                if (!p)
                        goto nomem;
                conf->ents = p;
                conf->cap = ncap;
        }
        e = &conf->ents[conf->n];
        e->key = strdup(key);
        if (!e->key)
                goto nomem;
        if (kb_hmap_puts(conf->idx, key, (void *)(uintptr_t)(conf->n + 1))) {
                free(e->key);
                goto nomem;
        }
        e->value = nv;
        e->origin = no;
        e->opt = opt;
        conf->n++;
        return KB_OK;
nomem:
        free(nv);
        free(no);
        kb_snprintf(errstr, errstr_size, "%s: out of memory", origin);
        return KB_ERR_NOMEM;
}

int kb_conf_set_kv(kb_conf_t *conf, const char *kv, char *errstr,
                   size_t errstr_size)
{
        const char *eq = strchr(kv, '=');
        char key[256];
        size_t kl;

        if (!eq || eq == kv) {
                kb_snprintf(errstr, errstr_size, "-X %s: expected key=value",
                            kv);
                return KB_ERR_CONFIG;
        }
        kl = (size_t)(eq - kv);
        if (kl >= sizeof(key)) {
                kb_snprintf(errstr, errstr_size, "-X: key too long");
                return KB_ERR_CONFIG;
        }
        memcpy(key, kv, kl);
        key[kl] = '\0';
        return kb_conf_set(conf, key, eq + 1, "-X", errstr, errstr_size);
}

static char *trim(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

int kb_conf_load_file(kb_conf_t *conf, const char *path, char *errstr,
                      size_t errstr_size)
{
        char *buf = NULL, *line, *next, origin[512];
        kb_hmap_t *seen = NULL;
        size_t len;
        int lineno = 0, r = KB_OK;

        if (kb_read_file(path, KB_CONF_MAX_FILE, &buf, &len) == -1) {
                kb_snprintf(errstr, errstr_size, "%s: %s", path,
                            errno == EFBIG ? "file too large"
                                           : strerror(errno));
                return KB_ERR_CONFIG;
        }
        free(conf->path);
        conf->path = strdup(path);
        if (memchr(buf, '\0', len)) {
                kb_snprintf(errstr, errstr_size, "%s: NUL byte in file", path);
                free(buf);
                return KB_ERR_CONFIG;
        }
        seen = kb_hmap_new();
        if (!seen || !conf->path) {
                free(buf);
                kb_hmap_destroy(seen);
                kb_snprintf(errstr, errstr_size, "%s: out of memory", path);
                return KB_ERR_NOMEM;
        }
        for (line = buf; line; line = next) {
                char *eq, *key, *val;
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
                key = trim(line);
                if (!*key || *key == '#' || *key == '!')
                        continue;
                eq = strchr(key, '=');
                if (!eq) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: expected 'key = value'", origin);
                        r = KB_ERR_CONFIG;
                        break;
                }
                *eq = '\0';
                val = trim(eq + 1);
                key = trim(key);
                if (!*key) {
                        kb_snprintf(errstr, errstr_size, "%s: empty key",
                                    origin);
                        r = KB_ERR_CONFIG;
                        break;
                }
                if (kb_hmap_gets(seen, key)) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: set twice in this file", origin,
                                    key);
                        r = KB_ERR_CONFIG;
                        break;
                }
                if (kb_hmap_puts(seen, key, key)) {
                        kb_snprintf(errstr, errstr_size, "%s: out of memory",
                                    origin);
                        r = KB_ERR_NOMEM;
                        break;
                }
                r = kb_conf_set(conf, key, val, origin, errstr, errstr_size);
                if (r)
                        break;
        }
        kb_hmap_destroy(seen);
        sodium_memzero(buf, len);
        free(buf);
        return r;
}

const char *kb_conf_get(const kb_conf_t *conf, const char *key)
{
        conf_entry_t *e = find_entry(conf, key);
        const kb_conf_opt_t *o;

        if (e)
                return e->value;
        o = kb_conf_find_opt(key);
        return o ? o->def : NULL;
}

int64_t kb_conf_get_int(const kb_conf_t *conf, const char *key)
{
        const char *v = kb_conf_get(conf, key);
        int64_t n = 0;

        if (!v)
                return 0;
        if (!strcmp(v, "true"))
                return 1;
        if (!strcmp(v, "false"))
                return 0;
        if (kb_parse_i64(v, INT64_MIN, INT64_MAX, &n) == -1)
                return 0;
        return n;
}

int kb_conf_get_bool(const kb_conf_t *conf, const char *key)
{
        const char *v = kb_conf_get(conf, key);

        return v && !strcmp(v, "true");
}

const char *kb_conf_origin(const kb_conf_t *conf, const char *key)
{
        conf_entry_t *e = find_entry(conf, key);

        return e ? e->origin : "default";
}

int kb_conf_is_set(const kb_conf_t *conf, const char *key)
{
        return find_entry(conf, key) != NULL;
}

void kb_conf_list_free(char **list)
{
        size_t i;

        if (!list)
                return;
        for (i = 0; list[i]; i++)
                free(list[i]);
        free(list);
}

char **kb_conf_get_list(const kb_conf_t *conf, const char *key, size_t *n)
{
        const char *v = kb_conf_get(conf, key), *p;
        char **out;
        size_t cnt = 1, k = 0;

        if (n)
                *n = 0;
        if (!v || !*v)
                return calloc(1, sizeof(char *));
        for (p = v; *p; p++)
                if (*p == ',')
                        cnt++;
        out = calloc(cnt + 1, sizeof(char *));
        if (!out)
                return NULL;
        p = v;
        for (;;) {
                const char *c = strchr(p, ',');
                size_t l = c ? (size_t)(c - p) : strlen(p);
                char *item = strndup(p, l), *t;
                if (!item) {
                        kb_conf_list_free(out);
                        return NULL;
                }
                t = trim(item);
                memmove(item, t, strlen(t) + 1);
                out[k++] = item;
                if (!c)
                        break;
                p = c + 1;
        }
        if (n)
                *n = k;
        return out;
}

void kb_conf_secret_free(char *secret, size_t len)
{
        (void)len;
        sodium_free(secret);
}

static int resolve_secret(const char *ref, const char *origin, const char *key,
                          char **out, size_t *len, char *errstr,
                          size_t errstr_size)
{
        const char *src = NULL;
        char *fbuf = NULL;
        size_t slen;

        if (!strncmp(ref, "env:", 4)) {
                src = getenv(ref + 4);
                if (!src || !*src) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: environment variable %s is not "
                                    "set",
                                    origin, key, ref + 4);
                        return KB_ERR_CONFIG;
                }
                slen = strlen(src);
        } else if (!strncmp(ref, "file:", 5)) {
                if (kb_read_file(ref + 5, KB_CONF_MAX_SECRET, &fbuf, &slen) ==
                    -1) {
                        kb_snprintf(errstr, errstr_size, "%s: %s: %s: %s",
                                    origin, key, ref + 5,
                                    errno == EFBIG ? "file too large"
                                                   : strerror(errno));
                        return KB_ERR_CONFIG;
                }
                while (slen > 0 &&
                       (fbuf[slen - 1] == '\n' || fbuf[slen - 1] == '\r'))
                        slen--;
                src = fbuf;
        } else {
                kb_snprintf(errstr, errstr_size,
                            "%s: %s: expected env:NAME or file:PATH", origin,
                            key);
                return KB_ERR_CONFIG;
        }
        if (slen == 0 || memchr(src, '\0', slen)) {
                kb_snprintf(errstr, errstr_size,
                            "%s: %s: secret is empty or "
                            "contains a NUL byte",
                            origin, key);
                if (fbuf) {
                        sodium_memzero(fbuf, slen);
                        free(fbuf);
                }
                return KB_ERR_CONFIG;
        }
        *out = sodium_malloc(slen + 1);
        if (*out) {
                memcpy(*out, src, slen);
                (*out)[slen] = '\0';
                *len = slen;
        }
        if (fbuf) {
                sodium_memzero(fbuf, slen);
                free(fbuf);
        }
        if (!*out) {
                kb_snprintf(errstr, errstr_size, "%s: out of memory", key);
                return KB_ERR_NOMEM;
        }
        return KB_OK;
}

int kb_conf_get_secret(const kb_conf_t *conf, const char *key, char **out,
                       size_t *len, char *errstr, size_t errstr_size)
{
        conf_entry_t *e = find_entry(conf, key);

        *out = NULL;
        *len = 0;
        if (!e) {
                kb_snprintf(errstr, errstr_size, "%s: not set", key);
                return KB_ERR_NOT_FOUND;
        }
        return resolve_secret(e->value, e->origin, key, out, len, errstr,
                              errstr_size);
}

char **kb_conf_sections(const kb_conf_t *conf, const char *prefix, size_t *n)
{
        size_t plen = strlen(prefix), i, k = 0;
        char **out = calloc(conf->n + 1, sizeof(char *));
        kb_hmap_t *have = kb_hmap_new();

        if (n)
                *n = 0;
        if (!out || !have) {
                free(out);
                kb_hmap_destroy(have);
                return NULL;
        }
        for (i = 0; i < conf->n; i++) {
                const char *key = conf->ents[i].key, *s, *dot;
                if (strncmp(key, prefix, plen) || key[plen] != '.')
                        continue;
                s = key + plen + 1;
                dot = strchr(s, '.');
                if (!dot)
                        continue;
                if (kb_hmap_get(have, s, (size_t)(dot - s)))
                        continue;
                out[k] = strndup(s, (size_t)(dot - s));
                if (!out[k] ||
                    kb_hmap_put(have, s, (size_t)(dot - s), out[k])) {
                        kb_conf_list_free(out);
                        kb_hmap_destroy(have);
                        return NULL;
                }
                k++;
        }
        kb_hmap_destroy(have);
        if (n)
                *n = k;
        return out;
}

int kb_conf_foreach_kafka(const kb_conf_t *conf,
                          int (*cb)(void *opaque, const char *key,
                                    const char *value, const char *origin),
                          void *opaque, char *errstr, size_t errstr_size)
{
        size_t i;
        int r = 0;

        for (i = 0; i < conf->n && !r; i++) {
                const conf_entry_t *e = &conf->ents[i];
                if (strncmp(e->key, "kafka.", 6))
                        continue;
                if (is_kafka_secret(e->key + 6)) {
                        char *s;
                        size_t sl;
                        if (resolve_secret(e->value, e->origin, e->key, &s, &sl,
                                           errstr, errstr_size))
                                return KB_ERR_CONFIG;
                        r = cb(opaque, e->key + 6, s, e->origin);
                        kb_conf_secret_free(s, sl);
                } else {
                        r = cb(opaque, e->key + 6, e->value, e->origin);
                }
        }
        return r;
}

/* Fills @p out with the key of sectioned option @p o for @p section. */
static void section_key(const kb_conf_opt_t *o, const char *section, char *out,
                        size_t outsz)
{
        const char *star = strchr(o->name, '*');

        kb_snprintf(out, outsz, "%.*s%s%s", (int)(star - o->name), o->name,
                    section, star + 1);
}

/* "partner" for "partner.*.keys". */
static void section_prefix(const kb_conf_opt_t *o, char *out, size_t outsz)
{
        const char *star = strchr(o->name, '*');
        size_t l = (size_t)(star - o->name);

        if (l > 0)
                l--; /* drop the '.' */
        kb_snprintf(out, outsz, "%.*s", (int)l, o->name);
}

static int check_one(const kb_conf_t *conf, const kb_conf_opt_t *o,
                     const char *key, unsigned scope, char *errstr,
                     size_t errstr_size)
{
        conf_entry_t *e = find_entry(conf, key);
        const char *where = conf->path ? conf->path : "config";

        if ((o->flags & KB_OPT_REQUIRED) && (o->scope & scope) && !e &&
            !o->def) {
                kb_snprintf(errstr, errstr_size,
                            "%s: %s: required option is not set (%s)", where,
                            key, o->help);
                return KB_ERR_CONFIG;
        }
        /* scope 0 (no role): every secret that is set must resolve */
        if (e && o->type == KB_CONF_SECRET &&
            (scope == 0 || o->scope == KB_SCOPE_ALL || (o->scope & scope))) {
                char *s;
                size_t sl;
                int r = resolve_secret(e->value, e->origin, key, &s, &sl,
                                       errstr, errstr_size);
                if (r)
                        return r;
                kb_conf_secret_free(s, sl);
        }
        return KB_OK;
}

int kb_conf_host_is_loopback(const char *host)
{
        struct in_addr a4;
        struct in6_addr a6;
        char buf[INET6_ADDRSTRLEN + 1];
        size_t l = strlen(host);

        if (!strcasecmp(host, "localhost"))
                return 1;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        /* IPv6, bracketed as in a URL or a broker list, or bare */
        if (l >= 2 && host[0] == '[' && host[l - 1] == ']') {
                if (l - 2 >= sizeof(buf))
                        return 0;
                memcpy(buf, host + 1, l - 2);
                buf[l - 2] = '\0';
                host = buf;
        }
        if (inet_pton(AF_INET6, host, &a6) != 1)
                return 0;
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
}

/* librdkafka's security protocols that do not encrypt (any case, as
 * librdkafka takes them). */
static int kafka_proto_plain(const char *p, size_t len)
{
        return (len == 9 && !strncasecmp(p, "plaintext", 9)) ||
               (len == 14 && !strncasecmp(p, "sasl_plaintext", 14));
}

int kb_conf_kafka_plaintext(const char *servers, const char *protocol,
                            char *bad, size_t bad_size)
{
        int plain = !protocol || !*protocol ||
                    kafka_proto_plain(protocol, strlen(protocol));
        const char *p = servers ? servers : "";

        /* librdkafka's broker list: entries separated by commas or spaces,
         * each "[proto://]host[:port]" where host may be "[v6addr]" or,
         * without a port, a bare IPv6 address; an empty host is
         * localhost. */
        while (*p) {
                char ent[512], *h, *end;
                size_t len = strcspn(p, ", \t"), plen = 0, i;
                int eplain = plain;

                if (len == 0) {
                        p++;
                        continue;
                }
                for (i = 0; i + 3 <= len; i++)
                        if (!strncmp(p + i, "://", 3)) {
                                plen = i + 3;
                                eplain = plain || kafka_proto_plain(p, i);
                                break;
                        }
                if (!eplain)
                        goto next;
                if (len - plen >= sizeof(ent)) {
                        /* no loopback address is that long */
                        kb_snprintf(bad, bad_size, "%.*s...", 64, p);
                        return -1;
                }
                memcpy(ent, p + plen, len - plen);
                ent[len - plen] = '\0';
                h = ent;
                if (*h == '[') {
                        end = strchr(h, ']');
                        if (end)
                                end[1] = '\0';
                } else if ((end = strchr(h, ':')) != NULL &&
                           end == strrchr(h, ':')) {
                        *end = '\0'; /* host:port */
                }
                if (*h && !kb_conf_host_is_loopback(h)) {
                        kb_snprintf(bad, bad_size, "%.*s", (int)len, p);
                        return -1;
                }
        next:
                p += len;
        }
        return 0;
}

/* The Kafka clients kb_kafka_conf_new() builds get every "kafka.*" option
 * and then, for their kind, every "kafka.consumer.*" or
 * "kafka.producer.*" one, in the order the options were first set. Finds
 * what bootstrap.servers (or its alias metadata.broker.list) and
 * security.protocol end up as for each kind and refuses a plaintext
 * broker that is not loopback. */
static int check_kafka_plaintext(const kb_conf_t *conf, char *errstr,
                                 size_t errstr_size)
{
        static const char *const kinds[] = { "consumer.", "producer." };
        size_t k, i;

        if (kb_conf_get_bool(conf, "kafka_allow_plaintext"))
                return KB_OK;
        for (k = 0; k < KB_ARRAY_SIZE(kinds); k++) {
                const conf_entry_t *bs = NULL, *sp = NULL;
                char bad[256];
                for (i = 0; i < conf->n; i++) {
                        const conf_entry_t *e = &conf->ents[i];
                        const char *kk = e->key + 6;
                        if (strncmp(e->key, "kafka.", 6))
                                continue;
                        if (!strncmp(kk, kinds[k], 9))
                                kk += 9;
                        else if (!strncmp(kk, "consumer.", 9) ||
                                 !strncmp(kk, "producer.", 9))
                                continue;
                        if (!strcmp(kk, "bootstrap.servers") ||
                            !strcmp(kk, "metadata.broker.list"))
                                bs = e;
                        else if (!strcmp(kk, "security.protocol"))
                                sp = e;
                }
                if (!bs ||
                    !kb_conf_kafka_plaintext(bs->value, sp ? sp->value : NULL,
                                             bad, sizeof(bad)))
                        continue;
                kb_snprintf(errstr, errstr_size,
                            "%s: %s: broker %s is not a loopback address and "
                            "the connection to it would not be encrypted "
                            "(%s = %s%s); " KB_CONF_KAFKA_PLAINTEXT_HINT,
                            bs->origin, bs->key, bad,
                            sp ? sp->key : "kafka.security.protocol",
                            sp ? sp->value : "plaintext",
                            sp ? "" : ", the default");
                return KB_ERR_CONFIG;
        }
        return KB_OK;
}

int kb_conf_check(const kb_conf_t *conf, unsigned scope, char *errstr,
                  size_t errstr_size)
{
        const kb_conf_opt_t *o;
        char key[512], prefix[128];
        size_t i;
        int r;

        for (o = kb_conf_options; o->name; o++) {
                if (!strchr(o->name, '*')) {
                        r = check_one(conf, o, o->name, scope, errstr,
                                      errstr_size);
                        if (r)
                                return r;
                        continue;
                }
                section_prefix(o, prefix, sizeof(prefix));
                {
                        char **secs = kb_conf_sections(conf, prefix, NULL);
                        if (!secs)
                                return KB_ERR_NOMEM;
                        for (i = 0; secs[i]; i++) {
                                section_key(o, secs[i], key, sizeof(key));
                                r = check_one(conf, o, key, scope, errstr,
                                              errstr_size);
                                if (r) {
                                        kb_conf_list_free(secs);
                                        return r;
                                }
                        }
                        kb_conf_list_free(secs);
                }
        }
        for (i = 0; i < conf->n; i++) {
                const conf_entry_t *e = &conf->ents[i];
                char *s;
                size_t sl;
                if (strncmp(e->key, "kafka.", 6) ||
                    !is_kafka_secret(e->key + 6))
                        continue;
                r = resolve_secret(e->value, e->origin, e->key, &s, &sl, errstr,
                                   errstr_size);
                if (r)
                        return r;
                kb_conf_secret_free(s, sl);
        }
        return check_kafka_plaintext(conf, errstr, errstr_size);
}

static void dump_one(const kb_conf_t *conf, const char *key, FILE *fp)
{
        const char *v = kb_conf_get(conf, key);

        if (!v) {
                fprintf(fp, "# %s is not set\n", key);
                return;
        }
        fprintf(fp, "%s=%s  # %s\n", key, v, kb_conf_origin(conf, key));
}

void kb_conf_dump(const kb_conf_t *conf, unsigned scope, FILE *fp)
{
        const kb_conf_opt_t *o;
        char key[512], prefix[128];
        size_t i;

        for (o = kb_conf_options; o->name; o++) {
                if (scope && o->scope && !(o->scope & scope))
                        continue;
                if (!strchr(o->name, '*')) {
                        dump_one(conf, o->name, fp);
                        continue;
                }
                section_prefix(o, prefix, sizeof(prefix));
                {
                        char **secs = kb_conf_sections(conf, prefix, NULL);
                        for (i = 0; secs && secs[i]; i++) {
                                section_key(o, secs[i], key, sizeof(key));
                                dump_one(conf, key, fp);
                        }
                        kb_conf_list_free(secs);
                }
        }
        for (i = 0; i < conf->n; i++) {
                const conf_entry_t *e = &conf->ents[i];
                if (strncmp(e->key, "kafka.", 6))
                        continue;
                /* kafka secrets are references too (enforced on set) */
                fprintf(fp, "%s=%s  # %s\n", e->key, e->value, e->origin);
        }
}

static const char *type_name(const kb_conf_opt_t *o, char *buf, size_t sz)
{
        switch (o->type) {
        case KB_CONF_INT:
                kb_snprintf(buf, sz, "integer %lld..%lld", (long long)o->min,
                            (long long)o->max);
                return buf;
        case KB_CONF_BOOL:
                return "true|false";
        case KB_CONF_ENUM:
                return o->enums;
        case KB_CONF_SECRET:
                return "secret (env:NAME or file:PATH)";
        case KB_CONF_LIST:
                return "comma-separated list";
        case KB_CONF_STR:
        default:
                return "string";
        }
}

static const char *scope_name(unsigned scope)
{
        switch (scope) {
        case KB_SCOPE_ISSUER:
                return "issuer";
        case KB_SCOPE_IMPORTER:
                return "importer";
        case KB_SCOPE_ISSUER | KB_SCOPE_IMPORTER:
                return "issuer, importer";
        default:
                return "all";
        }
}

/* A Markdown table cell: '|' (enum values) would end the cell early, and
 * "<group_id>" would read as an HTML tag. */
static void md_cell(FILE *fp, const char *s)
{
        for (; *s; s++) {
                if (*s == '<')
                        fputs("&lt;", fp);
                else if (*s == '>')
                        fputs("&gt;", fp);
                else {
                        if (*s == '|')
                                fputc('\\', fp);
                        fputc(*s, fp);
                }
        }
}

void kb_conf_describe(FILE *fp, int markdown)
{
        const kb_conf_opt_t *o;
        char tb[64];

        if (markdown)
                fprintf(fp, "| option | type | default | used by | "
                            "description |\n|---|---|---|---|---|\n");
        for (o = kb_conf_options; o->name; o++) {
                int req = (o->flags & KB_OPT_REQUIRED) != 0;
                char dflt[192];
                if (o->def && *o->def)
                        kb_snprintf(dflt, sizeof(dflt),
                                    markdown ? "`%s`" : "%s", o->def);
                else
                        kb_snprintf(dflt, sizeof(dflt), "%s",
                                    req ? "required"
                                        : (markdown ? "—" : "none"));
                if (markdown) {
                        fprintf(fp, "| `%s` | ", o->name);
                        md_cell(fp, type_name(o, tb, sizeof(tb)));
                        fputs(" | ", fp);
                        md_cell(fp, dflt);
                        fprintf(fp, " | %s | ", scope_name(o->scope));
                        md_cell(fp, o->help);
                        fputs(" |\n", fp);
                } else {
                        fprintf(fp,
                                "%s\n    %s; default: %s; used by: %s\n"
                                "    %s\n",
                                o->name, type_name(o, tb, sizeof(tb)), dflt,
                                scope_name(o->scope), o->help);
                }
        }
        if (markdown)
                fprintf(fp, "| `kafka.*` | librdkafka property | — | all | "
                            "passed to librdkafka without the `kafka.` "
                            "prefix (`kafka.consumer.*` / "
                            "`kafka.producer.*`: to that kind of client "
                            "only); names containing `password` or "
                            "`secret` take env:NAME or file:PATH |\n");
        else
                fprintf(fp, "kafka.<property>\n    any librdkafka "
                            "property, passed on without the prefix "
                            "(kafka.consumer.<property> and\n    "
                            "kafka.producer.<property>: to that kind of "
                            "client only); secret ones take\n    env:NAME "
                            "or file:PATH\n");
}

int kb_conf_valid_uuid(const char *v, char *errstr, size_t errstr_size)
{
        if (kb_is_uuid(v))
                return 0;
        kb_snprintf(errstr, errstr_size, "expected a UUID");
        return -1;
}

int kb_conf_valid_url(const char *v, char *errstr, size_t errstr_size)
{
        const char *h;

        if (!strncmp(v, "http://", 7))
                h = v + 7;
        else if (!strncmp(v, "https://", 8))
                h = v + 8;
        else
                h = NULL;
        if (!h || !*h || *h == '/') {
                kb_snprintf(errstr, errstr_size,
                            "expected an http:// or https:// URL");
                return -1;
        }
        for (; *v; v++)
                if ((unsigned char)*v <= 0x20 || *v == 0x7f) {
                        kb_snprintf(errstr, errstr_size,
                                    "URL contains a space or control "
                                    "character");
                        return -1;
                }
        return 0;
}

static int topic_chars_ok(const char *v, size_t len)
{
        size_t i;

        for (i = 0; i < len; i++) {
                char c = v[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return 0;
        }
        return 1;
}

int kb_conf_valid_topic(const char *v, char *errstr, size_t errstr_size)
{
        size_t l = strlen(v);

        if (l == 0 || l > 249 || !strcmp(v, ".") || !strcmp(v, "..") ||
            !topic_chars_ok(v, l)) {
                kb_snprintf(errstr, errstr_size,
                            "expected a Kafka topic name (1-249 of "
                            "[a-zA-Z0-9._-])");
                return -1;
        }
        return 0;
}

int kb_conf_valid_topic_template(const char *v, char *errstr,
                                 size_t errstr_size)
{
        static const char var[] = "{for_application_id}";
        const char *p = v;
        size_t l = strlen(v);

        if (l == 0 || l > 249) {
                kb_snprintf(errstr, errstr_size,
                            "expected a topic name template");
                return -1;
        }
        while (*p) {
                if (*p == '{') {
                        if (strncmp(p, var, sizeof(var) - 1)) {
                                kb_snprintf(errstr, errstr_size,
                                            "unknown template variable (only "
                                            "{for_application_id})");
                                return -1;
                        }
                        p += sizeof(var) - 1;
                        continue;
                }
                if (!topic_chars_ok(p, 1)) {
                        kb_snprintf(errstr, errstr_size,
                                    "expected [a-zA-Z0-9._-] or "
                                    "{for_application_id}");
                        return -1;
                }
                p++;
        }
        return 0;
}

int kb_conf_expand(const char *tmpl,
                   const char *(*lookup)(void *opaque, const char *name),
                   void *opaque, char *out, size_t outsz)
{
        size_t o = 0;
        const char *p = tmpl;

        while (*p) {
                if (*p == '{') {
                        const char *end = strchr(p, '}'), *v;
                        char name[64];
                        size_t nl, vl;
                        if (!end || (size_t)(end - p - 1) >= sizeof(name))
                                return -1;
                        nl = (size_t)(end - p - 1);
                        memcpy(name, p + 1, nl);
                        name[nl] = '\0';
                        v = lookup(opaque, name);
                        if (!v)
                                return -1;
                        vl = strlen(v);
                        if (o + vl >= outsz)
                                return -1;
                        memcpy(out + o, v, vl);
                        o += vl;
                        p = end + 1;
                        continue;
                }
                if (*p == '}' || o + 1 >= outsz)
                        return -1;
                out[o++] = *p++;
        }
        out[o] = '\0';
        return 0;
}

static const char *vd_probe(void *opaque, const char *name)
{
        static const char *const names[] = {
                "vendor_data_hint",      "share_id",     "source_session_id",
                "issuer_application_id", "session_kind", NULL
        };
        size_t i;

        (void)opaque;
        for (i = 0; names[i]; i++)
                if (!strcmp(name, names[i]))
                        return "x";
        return NULL;
}

int kb_conf_valid_vendor_data(const char *v, char *errstr, size_t errstr_size)
{
        char out[512];

        if (!strcmp(v, "hint"))
                return 0;
        if (!strchr(v, '{') ||
            kb_conf_expand(v, vd_probe, NULL, out, sizeof(out)) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "expected 'hint' or a template using "
                            "{vendor_data_hint} {share_id} "
                            "{source_session_id} {issuer_application_id} "
                            "{session_kind}");
                return -1;
        }
        return 0;
}
