/* cmd_sandbox.c -- `kyc-bridge sandbox`: serve the local vendor API stand-in */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "mhd.h"
#include "sandbox.h"
#include "util.h"

/* A DNS name as a compose service is called: letters, digits, '-', '.',
 * not starting or ending with '-' or '.'. */
static int is_hostname(const char *s)
{
        size_t i, n = strlen(s);

        if (n == 0 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' ||
            s[n - 1] == '.')
                return 0;
        for (i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
                        return 0;
        return 1;
}

static void usage(FILE *fp)
{
        fprintf(
            fp,
            "Usage: kyc-bridge sandbox [options]\n"
            "\n"
            "Serves a local, API-compatible stand-in for the verification "
            "vendor: the\n"
            "/v3/ endpoints of API-CONTRACT.md (sessions, share, import, "
            "workflows,\n"
            "webhooks, with the vendor's rate limits and errors) plus "
            "/sandbox/ extras\n"
            "that tests and demos use to set things up. Loopback only by "
            "default.\n"
            "\n"
            "Options:\n"
            "  --listen ADDR:PORT        address to bind (default "
            "127.0.0.1:8480; port 0\n"
            "                            picks a free port; [::1]:PORT for "
            "IPv6)\n"
            "  --allow-remote            permit a non-loopback ADDR (the "
            "/sandbox/\n"
            "                            endpoints have no authentication: "
            "refused\n"
            "                            without this flag)\n"
            "  --state FILE              load FILE at start if it exists; save "
            "the state\n"
            "                            (applications, keys, workflows, "
            "sessions,\n"
            "                            imported tokens, entities, webhook "
            "configs, the\n"
            "                            token secret, the rng) atomically "
            "within ~100 ms\n"
            "                            of every change and at shutdown. A "
            "SIGKILL\n"
            "                            loses at most the last ~100 ms plus "
            "one save.\n"
            "  --seed N                  deterministic ids, keys and synthetic "
            "data for a\n"
            "                            given sequence of requests (default: "
            "random,\n"
            "                            logged at start)\n"
            "  --port-file FILE          after binding, write the port "
            "(decimal and a\n"
            "                            newline) to FILE atomically\n"
            "  --threads N               HTTP polling threads (default 2; "
            "1..64)\n"
            "  --webhook-backoff-ms MS   first webhook retry delay; the second "
            "is 4x\n"
            "                            (default 60000: retries after 1 and 4 "
            "min)\n"
            "  --webhook-allow-host NAME also deliver webhooks to this host "
            "name (e.g. a\n"
            "                            compose service); repeatable, at most "
            "8.\n"
            "                            Without it only loopback URLs are "
            "accepted\n"
            "  --log-level LEVEL         error|warn|notice|info|debug (default "
            "notice)\n"
            "  --log-json                log JSON lines instead of text "
            "(stderr)\n"
            "  -h, --help                this text\n"
            "\n"
            "On start it prints one line to stdout:\n"
            "  sandbox: listening on http://127.0.0.1:PORT\n"
            "SIGTERM or SIGINT stop it gracefully (in-flight requests finish, "
            "state is\n"
            "saved, exit status 0).\n"
            "\n"
            "Sandbox extras (no x-api-key unless noted; JSON bodies; every "
            "error is\n"
            "{\"detail\": \"...\"}):\n"
            "  POST   /sandbox/applications         {\"name\": \"...\"} -> "
            "201\n"
            "         {\"application_id\", \"api_key\", \"name\"}\n"
            "  GET    /sandbox/applications         list of the above\n"
            "  DELETE /sandbox/applications/{id}    delete an application: its "
            "key stops\n"
            "         working, its sessions and workflows are gone -> 204\n"
            "  POST   /sandbox/sessions/{id}/complete   (owner's x-api-key)\n"
            "         {\"status\": \"Approved\"} (a finished status in the "
            "casing of the\n"
            "         session's kind; default Approved/APPROVED) -> 200 full "
            "session with\n"
            "         synthetic verification data; fires status.updated\n"
            "  GET    /sandbox/entities[?vendor_data=]  (x-api-key) the "
            "User/Business\n"
            "         entities of the application\n"
            "  PUT    /sandbox/faults   {\"path\": "
            "\"/v3/session/import-shared/\" | \"*\",\n"
            "         \"latency_ms\": 0..60000, \"error_rate\": 0..1, "
            "\"error_status\":\n"
            "         400..599 (default 503), \"retry_after\": s (for 429, "
            "default 1)}\n"
            "         -> 200; a request that draws an error is not processed\n"
            "  GET    /sandbox/faults   the faults set;  DELETE "
            "/sandbox/faults  clears\n"
            "  PUT    /sandbox/rate-limits  {\"per_minute\": N} or any of "
            "{\"writes\",\n"
            "         \"reads\", \"session_create\", \"decision\"}: per key "
            "and minute,\n"
            "         0 = unlimited; windows restart -> 200 the limits\n"
            "  GET    /sandbox/rate-limits;  DELETE /sandbox/rate-limits  "
            "defaults\n"
            "         (writes 300, reads 600, session_create 600, decision "
            "100)\n"
            "  PUT    /sandbox/clock  {\"offset_s\": N} shifts the sandbox's "
            "now (token\n"
            "         expiry, timestamps) -> 200 {\"offset_s\": N};  GET "
            "/sandbox/clock\n"
            "  GET    /sandbox/health  {\"status\": \"ok\"}\n"
            "  GET    /verify/{session_token}  what a session's url points at\n"
            "\n"
            "Vendor API served: POST /v3/session/, POST "
            "/v3/session/import-shared/,\n"
            "POST /v3/session/{id}/share/, GET /v3/session/{id}/decision/,\n"
            "DELETE /v3/session/{id}/delete/, PATCH "
            "/v3/session/{id}/update-status/,\n"
            "GET /v3/sessions/, POST|GET /v3/workflows/, GET|DELETE "
            "/v3/workflows/{id}/,\n"
            "GET|PATCH /v3/webhook/, POST|GET /v3/webhook/destinations/,\n"
            "DELETE /v3/webhook/destinations/{id}/. See docs/sandbox.md.\n");
}

/* Strict unsigned 64-bit decimal. */
static int parse_u64(const char *s, uint64_t *out)
{
        unsigned long long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -1;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end)
                return -1;
        *out = (uint64_t)v;
        return 0;
}

int kb_cmd_sandbox(int argc, char **argv)
{
        enum {
                OPT_LISTEN = 256,
                OPT_ALLOW_REMOTE,
                OPT_STATE,
                OPT_SEED,
                OPT_PORT_FILE,
                OPT_THREADS,
                OPT_BACKOFF,
                OPT_WH_HOST,
                OPT_LOG_LEVEL,
                OPT_LOG_JSON,
        };
        static const struct option opts[] = {
                { "listen", required_argument, NULL, OPT_LISTEN },
                { "allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE },
                { "state", required_argument, NULL, OPT_STATE },
                { "seed", required_argument, NULL, OPT_SEED },
                { "port-file", required_argument, NULL, OPT_PORT_FILE },
                { "threads", required_argument, NULL, OPT_THREADS },
                { "webhook-backoff-ms", required_argument, NULL, OPT_BACKOFF },
                { "webhook-allow-host", required_argument, NULL, OPT_WH_HOST },
                { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
                { "log-json", no_argument, NULL, OPT_LOG_JSON },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        kb_sbx_conf_t conf;
        const char *port_file = NULL;
        int log_level = KB_LOG_NOTICE, log_json = 0, c, sig = 0, rc;
        char err[512];
        sigset_t set;
        kb_sbx_t *sbx;
        int64_t v;

        kb_sbx_conf_init(&conf);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_LISTEN:
                        if (kb_sbx_conf_listen(&conf, optarg, err,
                                               sizeof(err)) == -1) {
                                fprintf(stderr, "kyc-bridge sandbox: %s\n",
                                        err);
                                return KB_EXIT_USAGE;
                        }
                        break;
                case OPT_ALLOW_REMOTE:
                        conf.allow_remote = 1;
                        break;
                case OPT_STATE:
                        conf.state_path = optarg;
                        break;
                case OPT_SEED:
                        if (parse_u64(optarg, &conf.seed) == -1) {
                                fprintf(stderr,
                                        "kyc-bridge sandbox: --seed wants an "
                                        "unsigned integer\n");
                                return KB_EXIT_USAGE;
                        }
                        conf.have_seed = 1;
                        break;
                case OPT_PORT_FILE:
                        port_file = optarg;
                        break;
                case OPT_THREADS:
                        if (kb_parse_i64(optarg, 1, 64, &v) == -1) {
                                fprintf(stderr, "kyc-bridge sandbox: "
                                                "--threads wants 1..64\n");
                                return KB_EXIT_USAGE;
                        }
                        conf.threads = (int)v;
                        break;
                case OPT_BACKOFF:
                        if (kb_parse_i64(optarg, 1, 3600000, &v) == -1) {
                                fprintf(stderr, "kyc-bridge sandbox: "
                                                "--webhook-backoff-ms wants "
                                                "1..3600000\n");
                                return KB_EXIT_USAGE;
                        }
                        conf.webhook_backoff_ms = v;
                        break;
                case OPT_WH_HOST:
                        if (conf.n_webhook_hosts >= KB_SBX_MAX_WEBHOOK_HOSTS ||
                            !is_hostname(optarg) ||
                            strlen(optarg) >= sizeof(conf.webhook_hosts[0])) {
                                fprintf(stderr,
                                        "kyc-bridge sandbox: "
                                        "--webhook-allow-host wants a host "
                                        "name (letters, digits, '-', '.'; at "
                                        "most %d of them)\n",
                                        KB_SBX_MAX_WEBHOOK_HOSTS);
                                return KB_EXIT_USAGE;
                        }
                        kb_strlcpy(conf.webhook_hosts[conf.n_webhook_hosts++],
                                   optarg, sizeof(conf.webhook_hosts[0]));
                        break;
                case OPT_LOG_LEVEL:
                        log_level = kb_log_level_parse(optarg);
                        if (log_level < 0) {
                                fprintf(stderr,
                                        "kyc-bridge sandbox: --log-level "
                                        "wants error|warn|notice|info|"
                                        "debug\n");
                                return KB_EXIT_USAGE;
                        }
                        break;
                case OPT_LOG_JSON:
                        log_json = 1;
                        break;
                case 'h':
                        usage(stdout);
                        return KB_EXIT_OK;
                default:
                        fprintf(stderr,
                                "kyc-bridge sandbox: unknown or incomplete "
                                "option '%s' (see --help)\n",
                                argv[optind - 1]);
                        return KB_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr,
                        "kyc-bridge sandbox: unexpected argument '%s' (see "
                        "--help)\n",
                        argv[optind]);
                return KB_EXIT_USAGE;
        }
        if (!conf.allow_remote && !kb_listen_is_loopback(conf.host)) {
                fprintf(stderr,
                        "kyc-bridge sandbox: refusing to listen on %s: it is "
                        "not a loopback address, and the /sandbox/ admin "
                        "endpoints have no authentication (anyone who can "
                        "reach them can create applications and read their "
                        "keys). Pass --allow-remote if you really want this.\n",
                        conf.host);
                return KB_EXIT_USAGE;
        }
        kb_log_setup(log_level, log_json, 2, "kyc-bridge");
        kb_cmd_raise_nofile();
        signal(SIGPIPE, SIG_IGN);
        /* every thread started from here on inherits the mask; the main
         * thread takes the signals with sigwait() */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);

        sbx = kb_sbx_new(&conf, err, sizeof(err));
        if (!sbx) {
                fprintf(stderr, "kyc-bridge sandbox: %s\n", err);
                return KB_EXIT_FAIL;
        }
        if (port_file) {
                char line[16];
                int n = snprintf(line, sizeof(line), "%d\n", kb_sbx_port(sbx));
                if (kb_write_file_atomic(port_file, line, (size_t)n, 0644) ==
                    -1) {
                        fprintf(stderr,
                                "kyc-bridge sandbox: cannot write port file "
                                "%s: %s\n",
                                port_file, strerror(errno));
                        kb_sbx_destroy(sbx);
                        return KB_EXIT_FAIL;
                }
        }
        printf("sandbox: listening on %s\n", kb_sbx_base_url(sbx));
        fflush(stdout);

        while (sigwait(&set, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
                ;
        kb_log_notice("sandbox", "signal %d: stopping", sig);
        rc = kb_sbx_shutdown(sbx, 10000);
        kb_sbx_destroy(sbx);
        return rc == 0 ? KB_EXIT_OK : KB_EXIT_FAIL;
}
