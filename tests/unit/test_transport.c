/* test_transport.c -- unit tests: Kafka and vendor clients refuse plaintext
 * to another machine unless the configuration allows it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "kafka.h"
#include "kyc_bridge.h"
#include "vendor.h"

static kb_conf_t *conf_of(const char *const *kv)
{
        kb_conf_t *conf = kb_conf_new();
        char err[512];

        assert_non_null(conf);
        for (; kv && *kv; kv += 2)
                if (kb_conf_set(conf, kv[0], kv[1], "test", err, sizeof(err)))
                        fail_msg("%s: %s", kv[0], err);
        return conf;
}

/* kb_kafka_conf_new() for @p kind; 1 when it built a configuration, 0
 * when it refused (the reason in @p err). */
static int kafka_ok(const kb_conf_t *conf, rd_kafka_type_t kind,
                    const char *const *extra, char *err, size_t errsz)
{
        rd_kafka_conf_t *rkc;

        err[0] = '\0';
        rkc = kb_kafka_conf_new(conf, kind, extra, err, errsz);
        if (!rkc)
                return 0;
        rd_kafka_conf_destroy(rkc);
        return 1;
}

static void test_kafka_conf_refuses_plaintext(void **state)
{
        static const char *const remote[] = { "kafka.bootstrap.servers",
                                              "127.0.0.1:9092,kafka:9092",
                                              NULL };
        static const char *const allowed[] = { "kafka.bootstrap.servers",
                                               "kafka:9092",
                                               "kafka_allow_plaintext", "true",
                                               NULL };
        static const char *const tls[] = { "kafka.bootstrap.servers",
                                           "kafka:9093",
                                           "kafka.security.protocol",
                                           "SASL_SSL", NULL };
        static const char *const sasl_plain[] = { "kafka.bootstrap.servers",
                                                  "kafka:9093",
                                                  "kafka.security.protocol",
                                                  "sasl_plaintext", NULL };
        static const char *const local[] = { "kafka.bootstrap.servers",
                                             "127.0.0.1:9092,[::1]:9093,"
                                             "localhost:9094",
                                             NULL };
        static const char *const consumer_only[] = {
                "kafka.bootstrap.servers", "127.0.0.1:9092",
                "kafka.consumer.bootstrap.servers", "10.0.0.1:9092", NULL
        };
        rd_kafka_type_t kinds[] = { RD_KAFKA_CONSUMER, RD_KAFKA_PRODUCER };
        char err[1024];
        kb_conf_t *conf;
        size_t k;

        (void)state;
        for (k = 0; k < 2; k++) {
                conf = conf_of(remote);
                assert_false(kafka_ok(conf, kinds[k], NULL, err, sizeof(err)));
                assert_string_equal(
                    err, "kafka.bootstrap.servers: broker kafka:9092 is not a "
                         "loopback address and the connection to it would "
                         "not be encrypted (security.protocol = plaintext); "
                         "use kafka.security.protocol = SASL_SSL (or SSL), or "
                         "set kafka_allow_plaintext = true if the network to "
                         "the broker is private");
                kb_conf_destroy(conf);

                conf = conf_of(sasl_plain);
                assert_false(kafka_ok(conf, kinds[k], NULL, err, sizeof(err)));
                assert_non_null(strstr(err, "sasl_plaintext"));
                kb_conf_destroy(conf);

                conf = conf_of(allowed);
                assert_true(kafka_ok(conf, kinds[k], NULL, err, sizeof(err)));
                kb_conf_destroy(conf);
                conf = conf_of(tls);
                assert_true(kafka_ok(conf, kinds[k], NULL, err, sizeof(err)));
                kb_conf_destroy(conf);
                conf = conf_of(local);
                assert_true(kafka_ok(conf, kinds[k], NULL, err, sizeof(err)));
                kb_conf_destroy(conf);
        }

        /* the effective value of each kind of client */
        conf = conf_of(consumer_only);
        assert_false(kafka_ok(conf, RD_KAFKA_CONSUMER, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "10.0.0.1:9092"));
        assert_true(kafka_ok(conf, RD_KAFKA_PRODUCER, NULL, err, sizeof(err)));
        kb_conf_destroy(conf);
}

/* Whatever sets the brokers -- here the caller's own properties, or no
 * configuration at all -- the check holds for every client. */
static void test_kafka_conf_backstop(void **state)
{
        static const char *const extra_remote[] = { "bootstrap.servers",
                                                    "b.example:9092", NULL };
        static const char *const extra_local[] = { "bootstrap.servers",
                                                   "127.0.0.1:9092", NULL };
        static const char *const allow[] = { "kafka_allow_plaintext", "true",
                                             NULL };
        char err[1024];
        kb_conf_t *conf;
        rd_kafka_conf_t *rkc;
        char bad[64], proto[32];

        (void)state;
        assert_false(
            kafka_ok(NULL, RD_KAFKA_PRODUCER, extra_remote, err, sizeof(err)));
        assert_non_null(strstr(err, "b.example:9092"));
        assert_true(
            kafka_ok(NULL, RD_KAFKA_PRODUCER, extra_local, err, sizeof(err)));
        assert_true(kafka_ok(NULL, RD_KAFKA_CONSUMER, NULL, err, sizeof(err)));
        conf = conf_of(allow);
        assert_true(
            kafka_ok(conf, RD_KAFKA_PRODUCER, extra_remote, err, sizeof(err)));
        kb_conf_destroy(conf);

        /* kb_kafka_conf_plaintext() reads a configuration as built */
        rkc = rd_kafka_conf_new();
        assert_non_null(rkc);
        assert_int_equal(kb_kafka_conf_plaintext(rkc, bad, sizeof(bad), proto,
                                                 sizeof(proto)),
                         0);
        assert_string_equal(proto, "plaintext");
        assert_int_equal(rd_kafka_conf_set(rkc, "metadata.broker.list",
                                           "127.0.0.1:1,k2.example:9092", err,
                                           sizeof(err)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(kb_kafka_conf_plaintext(rkc, bad, sizeof(bad), proto,
                                                 sizeof(proto)),
                         -1);
        assert_string_equal(bad, "k2.example:9092");
        assert_int_equal(rd_kafka_conf_set(rkc, "security.protocol", "SSL", err,
                                           sizeof(err)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(kb_kafka_conf_plaintext(rkc, bad, sizeof(bad), proto,
                                                 sizeof(proto)),
                         0);
        assert_string_equal(proto, "ssl");
        rd_kafka_conf_destroy(rkc);
}

static void test_vendor_refuses_plain_http(void **state)
{
        static const char *const base[] = { "vendor.api_key",
                                            "env:KBT_TRANSPORT_KEY", NULL };
        kb_conf_t *conf;
        kb_vendor_t *v;
        char err[1024];
        int code;

        (void)state;
        setenv("KBT_TRANSPORT_KEY", "k", 1);
        conf = conf_of(base);
        /* the default (the sandbox on loopback) */
        v = kb_vendor_new(conf, &code, err, sizeof(err));
        assert_non_null(v);
        kb_vendor_destroy(v);

        assert_int_equal(kb_conf_set(conf, "vendor.url", "http://sandbox:8480",
                                     "vendor.conf:3", err, sizeof(err)),
                         KB_OK);
        code = 0;
        assert_null(kb_vendor_new(conf, &code, err, sizeof(err)));
        assert_int_equal(code, KB_ERR_CONFIG);
        assert_string_equal(
            err, "vendor.conf:3: vendor.url: plain http:// to sandbox, which "
                 "is not a loopback address: the API key and share tokens "
                 "would cross the network unencrypted; use https://, or set "
                 "vendor.allow_insecure_http = true if the network to it is "
                 "private");

        /* userinfo does not make a host loopback */
        assert_int_equal(kb_conf_set(conf, "vendor.url",
                                     "http://127.0.0.1@vendor.example/", "-X",
                                     err, sizeof(err)),
                         KB_OK);
        assert_null(kb_vendor_new(conf, &code, err, sizeof(err)));
        assert_non_null(strstr(err, "-X: vendor.url: plain http:// to "
                                    "vendor.example,"));

        /* explicitly allowed; TLS needs no permission */
        assert_int_equal(kb_conf_set(conf, "vendor.allow_insecure_http", "true",
                                     "vendor.conf:4", err, sizeof(err)),
                         KB_OK);
        v = kb_vendor_new(conf, &code, err, sizeof(err));
        assert_non_null(v);
        assert_int_equal(code, KB_OK);
        kb_vendor_destroy(v);
        assert_int_equal(kb_conf_set(conf, "vendor.allow_insecure_http",
                                     "false", "vendor.conf:4", err,
                                     sizeof(err)),
                         KB_OK);
        assert_int_equal(kb_conf_set(conf, "vendor.url",
                                     "https://vendor.example", "vendor.conf:3",
                                     err, sizeof(err)),
                         KB_OK);
        v = kb_vendor_new(conf, &code, err, sizeof(err));
        assert_non_null(v);
        kb_vendor_destroy(v);
        kb_conf_destroy(conf);
        unsetenv("KBT_TRANSPORT_KEY");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kafka_conf_refuses_plaintext),
                cmocka_unit_test(test_kafka_conf_backstop),
                cmocka_unit_test(test_vendor_refuses_plain_http),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
