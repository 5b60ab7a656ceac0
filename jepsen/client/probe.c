/* probe.c: `weft-jepsen probe`, one cheap write that lands on a chosen shard, timed, for the
 * driver's liveness record (jepsen/FORMAT.md "liveness"); and `weft-jepsen status`, one
 * ClusterStatus as JSON, which the driver polls to know when the cluster is ready and who
 * leads what.
 *
 * The write is a SignalWorkflow with a fresh request id to a probe workflow of that shard: a
 * run in its own namespace (JEPSEN_PROBE_NAMESPACE) on a task queue no worker polls, started
 * once with the conflict policy use-existing. Its id is chosen so that the partition function
 * (proto/partition.h, the one the client routes with) puts it on the shard. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepsen.h"
#include "proto/partition.h"

/* Candidate ids tried to find one of a shard; with S shards about S are needed. */
#define PROBE_ID_TRIES_MAX 1000000u
/* Shards one probe command may name (weft's own shard limit). */
#define PROBE_SHARDS_MAX WEFT_SHARDS_MAX

static volatile sig_atomic_t probe_stop;

static void probe_on_signal(int sig) {
    (void)sig;
    probe_stop = 1;
}

/* One shard's prober. */
typedef struct prober {
    weft_client *client;
    uint32_t shard;
    char workflow_id[JEPSEN_ID_BYTES_MAX];
    bool started; /* the probe run exists */
    bool ns_registered; /* JEPSEN_PROBE_NAMESPACE is known to be registered */
    uint64_t interval_ms;
    jepsen_log *out; /* loop mode: the file lines go to; NULL: stdout */
    pthread_t thread;
    bool last_ok;
} prober;

/* The shard count, as the cluster reports it. Returns 0 or -1. */
static int cluster_shards(weft_client *c, uint32_t *shards) {
    weft_cluster_status_resp st;
    weft_response h = {0};
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_client_cluster_status(c, &st, &h, &err);
    if (rc == 0) *shards = st.shard_count;
    weft_response_free(&h);
    if (rc != 0)
        fprintf(stderr, "weft-jepsen probe: ClusterStatus: %s %s\n", weft_error_name(rc),
                err.message);
    return rc == 0 && *shards > 0 ? 0 : -1;
}

static void prober_pick_id(prober *p, const char *tag, uint32_t shards) {
    for (uint32_t n = 0; n < PROBE_ID_TRIES_MAX; n++) {
        snprintf(p->workflow_id, sizeof p->workflow_id, "probe-%s-s%u-%u", tag, p->shard, n);
        uint64_t h =
            weft_partition_hash(weft_str_c(JEPSEN_PROBE_NAMESPACE), weft_str_c(p->workflow_id));
        if (weft_shard_for_hash(h, shards) == p->shard) return;
    }
    WEFT_ASSERT(!"no probe id for the shard");
}

/* Starts the probe run if it is not known to exist yet. */
static int prober_start(prober *p, weft_err *err) {
    if (p->started) return 0;
    if (!p->ns_registered) {
        /* Namespaces are registered before use; every prober sends the same request id, so
         * whichever registers it first, the others' retries succeed too (G4). */
        weft_register_ns_req reg = {
            .namespace_ = weft_str_c(JEPSEN_PROBE_NAMESPACE),
            .description = weft_str_c("weft-jepsen probes"),
            .request_id = weft_str_c("weft-jepsen-probe-namespace"),
        };
        int rc = weft_client_register_namespace(p->client, &reg, err);
        if (rc != 0 && rc != -WEFT_E_ALREADY_EXISTS) return rc;
        p->ns_registered = true;
    }
    weft_start_req req = {
        .namespace_ = weft_str_c(JEPSEN_PROBE_NAMESPACE),
        .workflow_id = weft_str_c(p->workflow_id),
        .workflow_type = weft_str_c(JEPSEN_PROBE_TYPE),
        .task_queue = weft_str_c(JEPSEN_PROBE_TYPE),
        .id_reuse_policy = WEFT_REUSE_ALLOW,
        .id_conflict_policy = WEFT_CONFLICT_USE_EXISTING,
    };
    weft_start_resp resp;
    weft_response h = {0};
    int rc = weft_client_start(p->client, &req, &resp, &h, err);
    weft_response_free(&h);
    p->started = rc == 0;
    return rc;
}

/* One probe: the write, timed. Writes one line. */
static void prober_once(prober *p) {
    weft_err err;
    weft_err_clear(&err);
    uint64_t t0 = jepsen_now_ms(), m0 = weft_mono_ms();
    int rc = prober_start(p, &err);
    if (rc == 0) {
        char rid[WEFT_CLIENT_REQUEST_ID_BYTES];
        rc = weft_request_id_new(rid, &err);
        weft_signal_req req = {
            .namespace_ = weft_str_c(JEPSEN_PROBE_NAMESPACE),
            .workflow_id = weft_str_c(p->workflow_id),
            .signal_name = weft_str_c("probe"),
            .request_id = weft_str_c(rid),
        };
        if (rc == 0) rc = weft_client_signal(p->client, &req, &err);
        if (rc == -WEFT_E_NOT_FOUND || rc == -WEFT_E_FAILED_PRECONDITION) p->started = false;
    }
    uint64_t latency = weft_mono_ms() - m0;
    p->last_ok = rc == 0;
    json_t *line = json_object();
    json_object_set_new(line, "shard", json_integer(p->shard));
    json_object_set_new(line, "time_ms", json_integer((json_int_t)t0));
    json_object_set_new(line, "latency_ms", json_integer((json_int_t)latency));
    json_object_set_new(line, "ok", json_boolean(rc == 0));
    if (rc != 0) {
        char text[WEFT_ERR_MESSAGE_BYTES_MAX + 64];
        snprintf(text, sizeof text, "%s %s", weft_error_name(rc), err.message);
        json_object_set_new(line, "error", json_string(text));
    } else {
        json_object_set_new(line, "error", json_null());
    }
    if (p->out != NULL) {
        jepsen_log_write(p->out, line);
    } else {
        char *s = json_dumps(line, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
    }
    json_decref(line);
}

static void *prober_loop(void *arg) {
    prober *p = arg;
    while (!probe_stop) {
        uint64_t m0 = weft_mono_ms();
        prober_once(p);
        uint64_t spent = weft_mono_ms() - m0;
        if (!probe_stop && spent < p->interval_ms) jepsen_sleep_ms(p->interval_ms - spent);
    }
    return NULL;
}

/* Parses "3" or "0,5,7" or "all" into the shard list. Returns the count or -1. */
static int parse_shards(const char *text, uint32_t shards, uint32_t *out) {
    if (text != NULL && strcmp(text, "all") == 0) {
        for (uint32_t i = 0; i < shards; i++)
            out[i] = i;
        return (int)shards;
    }
    int n = 0;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", text != NULL ? text : "");
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        uint64_t v = 0;
        if (jepsen_parse_u64("shard", tok, 0, shards - 1, &v) != 0) return -1;
        out[n++] = (uint32_t)v;
    }
    if (n == 0) fprintf(stderr, "weft-jepsen probe: --shard needs K, K1,K2 or all\n");
    return n > 0 ? n : -1;
}

int jepsen_cmd_probe(int argc, char **argv) {
    const char *address = NULL, *shard = NULL, *out_path = NULL, *interval = "250",
               *timeout = "2000", *tag = "p";
    bool loop = false;
    const jepsen_flag flags[] = {
        {"address", &address, NULL, "every node's client address, comma-separated"},
        {"shard", &shard, NULL, "shard K, a list K1,K2, or all"},
        {"loop", NULL, &loop, "probe each shard again and again until SIGTERM"},
        {"interval-ms", &interval, NULL, "loop: time between two probes of a shard (250)"},
        {"timeout-ms", &timeout, NULL, "a probe's reply wait; no retries (2000)"},
        {"out", &out_path, NULL, "loop: append lines here (default stdout)"},
        {"tag", &tag, NULL, "part of the probe runs' ids (default p)"},
        {NULL, NULL, NULL, NULL},
    };
    if (jepsen_flags_parse("probe", flags, argc, argv, 2) != 0) return 2;
    uint64_t interval_ms = 0, timeout_ms = 0;
    if (address == NULL ||
        jepsen_parse_u64("interval-ms", interval, 10, 60000, &interval_ms) != 0 ||
        jepsen_parse_u64("timeout-ms", timeout, 10, 600000, &timeout_ms) != 0) {
        if (address == NULL) fprintf(stderr, "weft-jepsen probe: --address is required\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    weft_client *c = NULL;
    if (jepsen_client_open(address, "weft-jepsen-probe", (uint32_t)timeout_ms, 0, &c) != 0)
        return 1;
    uint32_t shards = 0, list[PROBE_SHARDS_MAX];
    int n = cluster_shards(c, &shards) == 0 ? parse_shards(shard, shards, list) : -1;
    jepsen_log out = {.fd = -1};
    if (n > 0 && out_path != NULL && jepsen_log_open(&out, out_path) != 0) n = -1;
    prober *ps = n > 0 ? calloc((size_t)n, sizeof *ps) : NULL;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        ps[i] = (prober){.client = c,
                         .shard = list[i],
                         .interval_ms = interval_ms,
                         .out = out_path != NULL ? &out : NULL};
        prober_pick_id(&ps[i], tag, shards);
    }
    if (loop && n > 0) {
        signal(SIGTERM, probe_on_signal);
        signal(SIGINT, probe_on_signal);
        for (int i = 0; i < n; i++)
            pthread_create(&ps[i].thread, NULL, prober_loop, &ps[i]);
        for (int i = 0; i < n; i++)
            pthread_join(ps[i].thread, NULL);
    } else {
        for (int i = 0; i < n; i++) {
            prober_once(&ps[i]);
            bad += !ps[i].last_ok;
        }
    }
    free(ps);
    jepsen_log_close(&out);
    weft_client_close(c);
    return n < 0 ? 1 : bad > 0 ? 1 : 0;
}

int jepsen_cmd_status(int argc, char **argv) {
    const char *address = NULL, *timeout = "2000";
    const jepsen_flag flags[] = {
        {"address", &address, NULL, "the node to ask (HOST:PORT)"},
        {"timeout-ms", &timeout, NULL, "reply wait; no retries (2000)"},
        {NULL, NULL, NULL, NULL},
    };
    if (jepsen_flags_parse("status", flags, argc, argv, 2) != 0) return 2;
    uint64_t timeout_ms = 0;
    if (address == NULL || jepsen_parse_u64("timeout-ms", timeout, 10, 600000, &timeout_ms) != 0) {
        if (address == NULL) fprintf(stderr, "weft-jepsen status: --address is required\n");
        return 2;
    }
    weft_client *c = NULL;
    if (jepsen_client_open(address, "weft-jepsen-status", (uint32_t)timeout_ms, 0, &c) != 0)
        return 1;
    weft_cluster_status_resp st;
    weft_response h = {0};
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_client_cluster_status(c, &st, &h, &err);
    if (rc == 0) {
        json_t *j = weft_json_from_struct(&weft_hello_resp_schema, &st);
        char *s = json_dumps(j, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fprintf(stderr, "weft-jepsen status: %s: %s %s\n", address, weft_error_name(rc),
                err.message);
    }
    weft_response_free(&h);
    weft_client_close(c);
    return rc == 0 ? 0 : 1;
}
