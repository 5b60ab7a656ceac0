/* config.c: one table of options feeds the flag parser, the INI parser, the range checks and
 * the --help text. A bad value is reported on one line that names the option and says what
 * is allowed; weftd then exits with code 2. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "../proto/partition.h"
#include "../raft/host.h"

typedef enum cfg_kind {
    CFG_PATH,  /* char[PATH_MAX] */
    CFG_ADDR,  /* char[WEFTD_ADDRESS_BYTES_MAX], "host:port", stored resolved (address.h) */
    CFG_U32,   /* uint32_t within [min, max] */
    CFG_U64,   /* uint64_t within [min, max] */
    CFG_BOOL,  /* bool: true/false/1/0/yes/no/on/off */
    CFG_LEVEL, /* uint32_t holding a weft_log_level, parsed from its name */
    CFG_PEERS, /* char[WEFTD_PEERS_TEXT_BYTES_MAX]; checked whole in cfg_cluster_peers */
} cfg_kind;

typedef struct cfg_row {
    const char *name;        /* flag without "--", and the config-file key */
    cfg_kind kind;           /* how the value is parsed */
    size_t offset;           /* offsetof the field in weft_config */
    uint64_t min;            /* numbers: smallest allowed value */
    uint64_t max;            /* numbers: largest allowed value */
    const char *doc;         /* one line for --help and docs/operations.md */
    const char *default_doc; /* --help's default when the stored one means "derived", or NULL */
} cfg_row;

#define ROW(n, k, member, lo, hi, d)                                                               \
    {                                                                                              \
        .name = (n), .kind = (k), .offset = offsetof(weft_config, member), .min = (lo),            \
        .max = (hi), .doc = (d)                                                                    \
    }
/* A row whose default is computed at start (0 or "" in weft_config_default). */
#define ROW_DERIVED(n, k, member, lo, hi, d, dd)                                                   \
    {                                                                                              \
        .name = (n), .kind = (k), .offset = offsetof(weft_config, member), .min = (lo),            \
        .max = (hi), .doc = (d), .default_doc = (dd)                                               \
    }
#define U32_ALL UINT32_MAX
#define U64_ALL UINT64_MAX

static const cfg_row cfg_rows[] = {
    ROW("data", CFG_PATH, data_dir, 0, 0, "data directory (created on first start)"),
    ROW("boot-id-file", CFG_PATH, boot_id_file, 0, 0,
        "file holding this boot's id; unreadable: LMDB fsyncs every commit (a test seam)"),
    ROW_DERIVED("listen", CFG_ADDR, listen, 0, 0,
                "client address HOST:PORT: IPv4, [IPv6] or a host name, resolved at start",
                "127.0.0.1:7400, or this node's client address in --peers"),
    ROW_DERIVED("raft-listen", CFG_ADDR, raft_listen, 0, 0,
                "raft address HOST:PORT: IPv4 or a host name that has an IPv4 address",
                "the client port + 1 on the same host, or this node's raft address in --peers"),
    ROW("shards", CFG_U32, shards, 1, WEFT_SHARDS_MAX,
        "shard count, fixed when the data dir is created"),
    ROW("node-id", CFG_U64, node_id, 1, U64_ALL,
        "this node's id, fixed when the data dir is created; required with --peers"),
    ROW_DERIVED("peers", CFG_PEERS, peers, 0, 0,
                "every node of the cluster, this one included: "
                "ID=CLIENT_HOST:PORT/RAFT_HOST:PORT,...; fixed when the data dir is created",
                "none: a single-node cluster"),
    ROW_DERIVED("replication-factor", CFG_U32, replication_factor, 1, WEFT_CLUSTER_NODES_MAX,
                "replicas of each shard, 1 to the number of nodes; fixed when the data dir is "
                "created",
                "min(3, nodes in --peers)"),
    ROW("log-level", CFG_LEVEL, log_level, 0, 0, "trace, debug, info, warn or error"),
    ROW("election-timeout-ms", CFG_U32, election_timeout_ms, 10, 600000,
        "longest a follower waits for its leader before it stands for election (raft draws "
        "each wait between half this and this); a dead leader is replaced within about this"),
    ROW("heartbeat-timeout-ms", CFG_U32, heartbeat_timeout_ms, 1, 300000,
        "raft heartbeat interval (at most a fifth of the election timeout)"),
    ROW("install-snapshot-timeout-ms", CFG_U32, install_snapshot_timeout_ms, 100, 3600000,
        "raft install-snapshot timeout"),
    ROW("snapshot-threshold", CFG_U32, snapshot_threshold, 1, U32_ALL,
        "entries between raft snapshots"),
    ROW("snapshot-trailing", CFG_U32, snapshot_trailing, 0, U32_ALL,
        "entries kept in the log after a snapshot"),
    ROW("segment-bytes", CFG_U64, segment_bytes, 64 * 1024, 1024ull * 1024 * 1024,
        "raft log segment size"),
    ROW("pre-vote", CFG_BOOL, pre_vote, 0, 0, "raft pre-vote extension"),
    ROW("frame-bytes-max", CFG_U32, limits.frame_bytes_max, 1024, 1024u * 1024 * 1024,
        "largest accepted frame"),
    ROW("payload-bytes-max", CFG_U32, limits.payload_bytes_max, 1, 1024u * 1024 * 1024,
        "largest payload (input, result, details)"),
    ROW("id-bytes-max", CFG_U32, limits.id_bytes_max, 1, WEFT_ID_BYTES_MAX_DEFAULT,
        "largest identifier (ids, names, task queues)"),
    ROW("history-events-max", CFG_U32, limits.history_events_max, 10, U32_ALL, "events per run"),
    ROW("history-bytes-max", CFG_U64, limits.history_bytes_max, 1024, U64_ALL,
        "history bytes per run"),
    ROW("pending-activities-max", CFG_U32, limits.pending_activities_max, 1, 1000000,
        "pending activities per run"),
    ROW("pending-timers-max", CFG_U32, limits.pending_timers_max, 1, 1000000,
        "pending timers per run"),
    ROW("commands-per-task-max", CFG_U32, limits.commands_per_task_max, 1,
        WEFT_DECODE_ARRAY_ITEMS_MAX, "commands in one workflow task completion"),
    ROW("signal-dedup-per-run-max", CFG_U32, limits.signal_dedup_per_run_max, 0, 10000000,
        "signal request ids remembered per run"),
    ROW("poll-timeout-ms", CFG_U32, limits.poll_timeout_ms, 1, WEFT_LONG_POLL_MS_MAX,
        "idle long-poll answer time, and the default GetResult/GetHistory wait"),
    ROW("sticky-timeout-ms", CFG_U32, limits.sticky_timeout_ms, 1, 3600000,
        "sticky queue fallback time"),
    ROW("workflow-task-timeout-ms", CFG_U32, limits.workflow_task_timeout_ms, 1, 86400000,
        "default workflow task start-to-close timeout"),
    ROW("retention-ms", CFG_U64, limits.retention_ms, 0, U64_ALL, "how long a closed run is kept"),
    ROW("dedup-ttl-ms", CFG_U64, limits.dedup_ttl_ms, 1, U64_ALL,
        "how long request ids are remembered"),
    ROW("conn-inflight-max", CFG_U32, conn_inflight_max, 1, 1000000,
        "open requests per connection"),
    ROW("connections-max", CFG_U32, connections_max, 1, 1000000, "open client connections"),
    ROW("conn-write-queue-bytes-max", CFG_U64, conn_write_queue_bytes_max, 1024, U64_ALL,
        "queued response bytes per connection before reading pauses"),
    ROW("shutdown-drain-ms", CFG_U32, shutdown_drain_ms, 0, 600000,
        "how long shutdown waits for proposals in flight"),
    ROW("fire-batch-max", CFG_U32, fire_batch_max, 1, 1000000,
        "due timers fired by one raft entry"),
    ROW("long-poll-ms-max", CFG_U32, long_poll_ms_max, 1, 3600000,
        "cap on GetResult/GetHistory waits"),
    ROW("forward-timeout-ms", CFG_U32, forward_timeout_ms, 1, 3600000,
        "how long a request forwarded to its shard's leader waits for the answer"),
    ROW("forward-inflight-max", CFG_U32, forward_inflight_max, 1, 1000000,
        "requests forwarded to one peer and not yet answered"),
    ROW("forward-connect-timeout-ms", CFG_U32, forward_connect_timeout_ms, 1, 600000,
        "how long dialling a peer for forwarding may take, and the pause after a failure"),
    ROW("disk-free-bytes-min", CFG_U64, disk_free_bytes_min, 0, U64_ALL,
        "free bytes the data dir's file system must keep; under it the node refuses new work "
        "(RESOURCE_EXHAUSTED) and hands its leaderships to peers until space is back (0: off)"),
    ROW("rebalance-interval-ms", CFG_U32, rebalance_interval_ms, 0, 3600000,
        "how often a leader moves the shards it leads to their preferred nodes when they are "
        "up and caught up (0: never; leaderships stay where elections put them)"),
    ROW("max-clock-offset-ms", CFG_U32, max_clock_offset_ms, 0, WEFTD_MAX_CLOCK_OFFSET_MS_MAX,
        "how far this node's wall clock may be from its peers'; past it the node refuses "
        "leadership and hands its shards to peers until its clock is fixed (0: off)"),
};

void weft_config_default(weft_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->data_dir, sizeof c->data_dir, "%s", WEFTD_DATA_DIR_DEFAULT);
    snprintf(c->boot_id_file, sizeof c->boot_id_file, "%s", WEFTD_BOOT_ID_FILE_DEFAULT);
    snprintf(c->listen, sizeof c->listen, "%s", WEFTD_LISTEN_DEFAULT);
    c->shards = WEFTD_SHARDS_DEFAULT;
    c->node_id = 1;
    c->log_level = WEFT_LOG_INFO;
    c->election_timeout_ms = WEFT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT;
    c->heartbeat_timeout_ms = WEFT_RAFT_HEARTBEAT_TIMEOUT_MS_DEFAULT;
    c->install_snapshot_timeout_ms = WEFT_RAFT_INSTALL_SNAPSHOT_TIMEOUT_MS_DEFAULT;
    c->snapshot_threshold = WEFT_RAFT_SNAPSHOT_THRESHOLD_DEFAULT;
    c->snapshot_trailing = WEFT_RAFT_SNAPSHOT_TRAILING_DEFAULT;
    c->segment_bytes = WEFT_RAFT_SEGMENT_BYTES_DEFAULT;
    c->pre_vote = true;
    weft_limits_default(&c->limits);
    c->conn_inflight_max = WEFTD_CONN_INFLIGHT_MAX_DEFAULT;
    c->connections_max = WEFTD_CONNECTIONS_MAX_DEFAULT;
    c->conn_write_queue_bytes_max = WEFTD_CONN_WRITE_QUEUE_BYTES_MAX_DEFAULT;
    c->shutdown_drain_ms = WEFTD_SHUTDOWN_DRAIN_MS_DEFAULT;
    c->fire_batch_max = WEFTD_FIRE_BATCH_MAX_DEFAULT;
    c->long_poll_ms_max = WEFT_LONG_POLL_MS_MAX;
    c->forward_timeout_ms = WEFTD_FORWARD_TIMEOUT_MS_DEFAULT;
    c->forward_inflight_max = WEFTD_FORWARD_INFLIGHT_MAX_DEFAULT;
    c->forward_connect_timeout_ms = WEFTD_FORWARD_CONNECT_TIMEOUT_MS_DEFAULT;
    c->disk_free_bytes_min = WEFTD_DISK_FREE_BYTES_MIN_DEFAULT;
    c->max_clock_offset_ms = WEFTD_MAX_CLOCK_OFFSET_MS_DEFAULT;
    c->rebalance_interval_ms = WEFTD_REBALANCE_INTERVAL_MS_DEFAULT;
}

/* Where a value came from, for error messages: "--shards" or "config weft.ini: key shards". */
static void cfg_origin(char *out, size_t cap, const cfg_row *row, const char *file) {
    if (file == NULL) {
        snprintf(out, cap, "--%s", row->name);
    } else {
        snprintf(out, cap, "config file %s: key %s", file, row->name);
    }
}

static int cfg_parse_u64(const char *text, uint64_t *out) {
    if (text[0] == '\0' || text[0] == '-' || text[0] == '+') return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *out = v;
    return 0;
}

static int cfg_parse_bool(const char *text, bool *out) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(yes); i++) {
        if (strcmp(text, yes[i]) == 0) return *out = true, 0;
        if (strcmp(text, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

static int cfg_set_number(weft_config *c, const cfg_row *row, const char *value,
                          const char *origin) {
    uint64_t v = 0;
    if (cfg_parse_u64(value, &v) != 0 || v < row->min || v > row->max) {
        fprintf(stderr,
                "weftd: %s must be an integer from %" PRIu64 " to %" PRIu64 " (got \"%s\")\n",
                origin, row->min, row->max, value);
        return 2;
    }
    char *field = (char *)c + row->offset;
    if (row->kind == CFG_U32) {
        uint32_t v32 = (uint32_t)v;
        memcpy(field, &v32, sizeof v32);
    } else {
        memcpy(field, &v, sizeof v);
    }
    return 0;
}

/* --peers: a flag replaces the list; in the config file a repeated key (or an indented
 * continuation line) adds entries, so a long list fits inih's 200-byte lines, one node a line.
 * The list is checked whole once every value is in (cfg_cluster_peers). */
static int cfg_set_peers(weft_config *c, const char *value, const char *file, const char *origin) {
    bool append = file != NULL && c->peers_from_file && c->peers[0] != '\0';
    size_t used = append ? strlen(c->peers) : 0;
    int n = snprintf(c->peers + used, sizeof c->peers - used, "%s%s", append ? "," : "", value);
    if (n < 0 || (size_t)n >= sizeof c->peers - used) {
        fprintf(stderr, "weftd: %s is longer than %u bytes; a cluster has at most %u nodes\n",
                origin, WEFTD_PEERS_TEXT_BYTES_MAX - 1, WEFT_CLUSTER_NODES_MAX);
        return 2;
    }
    c->peers_from_file = file != NULL;
    return 0;
}

/* An address flag: resolved now to the numeric address the node will use (address.h). */
static int cfg_set_address(char *field, const cfg_row *row, const char *value,
                           const char *origin) {
    bool raft = row->offset == offsetof(weft_config, raft_listen);
    char resolved[WEFTD_ADDRESS_BYTES_MAX];
    char why[160];
    if (strlen(value) >= WEFTD_ADDRESS_BYTES_MAX) {
        snprintf(why, sizeof why, "is longer than %u bytes", WEFTD_ADDRESS_BYTES_MAX - 1);
    } else if (weft_address_resolve(value, raft, resolved, sizeof resolved, why, sizeof why) ==
               0) {
        snprintf(field, WEFTD_ADDRESS_BYTES_MAX, "%s", resolved);
        return 0;
    }
    if (raft) {
        fprintf(stderr,
                "weftd: %s must be an IPv4 address or a host name that has one, and a port, "
                "like 127.0.0.1:7401 or localhost:7401 (got \"%s\", which %s); raft traffic "
                "is IPv4 only (libraft 0.15)\n",
                origin, value, why);
    } else {
        fprintf(stderr,
                "weftd: %s must be HOST:PORT with an IPv4 address, a host name or an IPv6 "
                "address in brackets, like 127.0.0.1:7400, localhost:7400 or [::1]:7400 "
                "(got \"%s\", which %s)\n",
                origin, value, why);
    }
    return 2;
}

/* Remembers which settings were given: with --peers, an address that was not given is taken
 * from this node's entry, and one that was given must match it. */
static void cfg_mark_given(weft_config *c, const cfg_row *row) {
    if (row->offset == offsetof(weft_config, listen)) c->listen_given = true;
    if (row->offset == offsetof(weft_config, raft_listen)) c->raft_listen_given = true;
    if (row->offset == offsetof(weft_config, node_id)) c->node_id_given = true;
    if (row->offset == offsetof(weft_config, peers)) c->peers_given = true;
}

static int cfg_set_value(weft_config *c, const cfg_row *row, const char *value, const char *file);

/* Applies one option value. Returns 0 or 2 (after printing the one-line reason). */
static int cfg_set(weft_config *c, const cfg_row *row, const char *value, const char *file) {
    int rc = cfg_set_value(c, row, value, file);
    if (rc == 0) cfg_mark_given(c, row);
    return rc;
}

static int cfg_set_value(weft_config *c, const cfg_row *row, const char *value, const char *file) {
    char origin[PATH_MAX + 64];
    cfg_origin(origin, sizeof origin, row, file);
    char *field = (char *)c + row->offset;
    switch (row->kind) {
    case CFG_PEERS:
        return cfg_set_peers(c, value, file, origin);
    case CFG_PATH:
        if (value[0] == '\0' || strlen(value) >= PATH_MAX) {
            fprintf(stderr, "weftd: %s must be a path of 1 to %d bytes\n", origin, PATH_MAX - 1);
            return 2;
        }
        snprintf(field, PATH_MAX, "%s", value);
        return 0;
    case CFG_ADDR:
        return cfg_set_address(field, row, value, origin);
    case CFG_U32:
    case CFG_U64:
        return cfg_set_number(c, row, value, origin);
    case CFG_BOOL: {
        bool b = false;
        if (cfg_parse_bool(value, &b) != 0) {
            fprintf(stderr, "weftd: %s must be true or false (got \"%s\")\n", origin, value);
            return 2;
        }
        memcpy(field, &b, sizeof b);
        return 0;
    }
    case CFG_LEVEL: {
        int level = weft_log_level_parse(value);
        if (level < 0) {
            fprintf(stderr,
                    "weftd: %s must be one of trace, debug, info, warn, error (got \"%s\")\n",
                    origin, value);
            return 2;
        }
        uint32_t l = (uint32_t)level;
        memcpy(field, &l, sizeof l);
        return 0;
    }
    }
    WEFT_ASSERT(!"unknown option kind");
    return 2;
}

/* Finds a row by name; the config file may spell dashes as underscores. */
static const cfg_row *cfg_find(const char *name) {
    char norm[64];
    size_t n = strlen(name);
    if (n >= sizeof norm) return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '_' ? '-' : name[i];
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(cfg_rows); i++) {
        if (strcmp(cfg_rows[i].name, norm) == 0) return &cfg_rows[i];
    }
    return NULL;
}

typedef struct cfg_file_ctx {
    weft_config *config; /* being filled */
    const char *path;    /* the file, for messages */
    int rc;              /* first failure (2), or 0 */
} cfg_file_ctx;

/* inih handler: sections are accepted and ignored, so a file may use [weftd] or none. */
static int cfg_ini_cb(void *user, const char *section, const char *name, const char *value) {
    (void)section;
    cfg_file_ctx *ctx = user;
    if (ctx->rc != 0) return 0;
    const cfg_row *row = cfg_find(name);
    if (row == NULL || strcmp(name, "config") == 0) {
        fprintf(stderr,
                "weftd: config file %s: unknown key \"%s\"; run weftd --help for the keys\n",
                ctx->path, name);
        ctx->rc = 2;
        return 0;
    }
    ctx->rc = cfg_set(ctx->config, row, value, ctx->path);
    return ctx->rc == 0;
}

static int cfg_load_file(weft_config *c, const char *path) {
    cfg_file_ctx ctx = {.config = c, .path = path, .rc = 0};
    int rc = ini_parse(path, cfg_ini_cb, &ctx);
    if (ctx.rc != 0) return ctx.rc;
    if (rc == -1) {
        fprintf(stderr, "weftd: --config %s: cannot open the file (%s); check the path\n", path,
                strerror(errno));
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "weftd: config file %s: syntax error on line %d; use key = value lines\n",
                path, rc);
        return 2;
    }
    return 0;
}

/* Flags that take no value and are not settings: they print something and exit 0. */
static bool cfg_is_switch(const char *name) {
    return strcmp(name, "help") == 0 || strcmp(name, "version") == 0;
}

/* Splits "--name=value" or "--name value". The name is checked before a value is looked for,
 * so a mistyped flag is reported as unknown, not as missing its value. Returns 0, or 2 after
 * printing why. */
static int cfg_flag(int argc, char **argv, int *i, const char **name_out, const char **value_out,
                    char *name_buf, size_t name_cap) {
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        fprintf(stderr,
                "weftd: unexpected argument \"%s\"; flags look like --shards 8 (see --help)\n",
                arg);
        return 2;
    }
    const char *eq = strchr(arg, '=');
    size_t n = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (n >= name_cap) n = name_cap - 1;
    memcpy(name_buf, arg + 2, n);
    name_buf[n] = '\0';
    *name_out = name_buf;
    bool known = cfg_is_switch(name_buf) || strcmp(name_buf, "config") == 0 ||
                 (strchr(name_buf, '_') == NULL && cfg_find(name_buf) != NULL);
    if (!known) {
        fprintf(stderr, "weftd: unknown flag --%.*s; run weftd --help for the list\n",
                (int)(eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2)), arg + 2);
        return 2;
    }
    if (cfg_is_switch(name_buf)) {
        if (eq != NULL) {
            fprintf(stderr, "weftd: --%s takes no value (got \"%s\")\n", name_buf, arg);
            return 2;
        }
        *value_out = "";
        return 0;
    }
    if (eq != NULL) {
        *value_out = eq + 1;
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "weftd: --%s needs a value (see --help)\n", name_buf);
        return 2;
    }
    *i += 1;
    *value_out = argv[*i];
    return 0;
}

/* How the error messages name --peers: the flag, or the config file's key. */
static void cfg_peers_origin(const weft_config *c, char *out, size_t cap) {
    if (c->peers_from_file) {
        snprintf(out, cap, "the peers key of config file %s", c->config_path);
    } else {
        snprintf(out, cap, "--peers");
    }
}

/* This node's own entry in --peers must name the addresses it listens on: the others dial
 * them. An address not given is taken from the entry. */
static int cfg_own_address(char *value, size_t cap, bool given, const char *entry_address,
                           const char *flag, const char *what, uint64_t node_id,
                           const char *origin) {
    if (!given) {
        snprintf(value, cap, "%s", entry_address);
        return 0;
    }
    if (strcmp(value, entry_address) == 0) return 0;
    fprintf(stderr,
            "weftd: %s %s differs from node %" PRIu64 "'s %s address %s in %s; make them equal, "
            "or leave %s out to take it from %s\n",
            flag, value, node_id, what, entry_address, origin, flag, origin);
    return 2;
}

/* Resolves every address of the peer list to the numeric one the node uses (address.h). The
 * cluster id is derived from the resolved list, so a host name counts by its address. */
static int cfg_resolve_peers(weft_cluster *cl, const char *origin) {
    for (uint32_t i = 0; i < cl->nodes_count; i++) {
        weft_cluster_node *nd = &cl->nodes[i];
        char out[WEFTD_ADDRESS_BYTES_MAX], why[160];
        if (weft_address_resolve(nd->client_address, false, out, sizeof out, why, sizeof why) !=
            0) {
            fprintf(stderr, "weftd: %s: node %" PRIu64 "'s client address %s %s\n", origin,
                    nd->id, nd->client_address, why);
            return 2;
        }
        snprintf(nd->client_address, sizeof nd->client_address, "%s", out);
        if (weft_address_resolve(nd->raft_address, true, out, sizeof out, why, sizeof why) != 0) {
            fprintf(stderr,
                    "weftd: %s: node %" PRIu64 "'s raft address %s %s; raft traffic is IPv4 "
                    "only (libraft 0.15): give an IPv4 address or a host name that has one\n",
                    origin, nd->id, nd->raft_address, why);
            return 2;
        }
        snprintf(nd->raft_address, sizeof nd->raft_address, "%s", out);
    }
    return 0;
}

/* With --peers: parses the list, finds this node in it and settles its addresses and R. */
static int cfg_cluster_peers(weft_config *c) {
    weft_cluster *cl = &c->cluster;
    char origin[PATH_MAX + 64];
    cfg_peers_origin(c, origin, sizeof origin);
    weft_err err = {0};
    if (weft_cluster_parse(cl, c->peers, &err) != 0) {
        fprintf(stderr, "weftd: %s %s\n", origin, err.message);
        return 2;
    }
    cl->from_peers = true;
    if (cfg_resolve_peers(cl, origin) != 0) return 2;
    if (!c->node_id_given) {
        fprintf(stderr, "weftd: %s needs --node-id: say which node of the list this one is\n",
                origin);
        return 2;
    }
    cl->self = weft_cluster_index_of(cl, c->node_id);
    if (cl->self == UINT32_MAX) {
        fprintf(stderr,
                "weftd: --node-id %" PRIu64 " is not in %s; set --node-id to this node's id in "
                "the list, or add this node to the list on every node\n",
                c->node_id, origin);
        return 2;
    }
    uint32_t n = cl->nodes_count;
    if (c->replication_factor > n) {
        fprintf(stderr,
                "weftd: --replication-factor %u exceeds the number of nodes in %s (%u); choose "
                "1 to %u\n",
                c->replication_factor, origin, n, n);
        return 2;
    }
    cl->replication_factor =
        c->replication_factor ? c->replication_factor : weft_replication_factor_default(n);
    const weft_cluster_node *self = &cl->nodes[cl->self];
    int rc = cfg_own_address(c->listen, sizeof c->listen, c->listen_given, self->client_address,
                             "--listen", "client", self->id, origin);
    if (rc == 0) {
        rc = cfg_own_address(c->raft_listen, sizeof c->raft_listen, c->raft_listen_given,
                             self->raft_address, "--raft-listen", "raft", self->id, origin);
    }
    return rc;
}

/* Without --peers: today's single node, alone in its cluster (replication factor 1). */
static int cfg_cluster_single(weft_config *c) {
    if (c->replication_factor > 1) {
        fprintf(stderr,
                "weftd: --replication-factor %u needs --peers listing at least %u nodes; without "
                "--peers weftd runs a single node, replication factor 1\n",
                c->replication_factor, c->replication_factor);
        return 2;
    }
    weft_cluster *cl = &c->cluster;
    memset(cl, 0, sizeof *cl);
    cl->nodes_count = 1;
    cl->replication_factor = 1;
    cl->self = 0;
    cl->nodes[0].id = c->node_id;
    snprintf(cl->nodes[0].client_address, sizeof cl->nodes[0].client_address, "%s", c->listen);
    snprintf(cl->nodes[0].raft_address, sizeof cl->nodes[0].raft_address, "%s", c->raft_listen);
    return 0;
}

/* Without --raft-listen: the client port + 1 on the same host. Raft is IPv4 only (libraft
 * 0.15), so an IPv6 loopback or wildcard --listen maps to its IPv4 twin; any other IPv6
 * address needs --raft-listen. */
static int cfg_derive_raft_listen(weft_config *c) {
    char host[INET6_ADDRSTRLEN]; /* --listen is numeric by now */
    uint16_t port = 0;
    int rc = weft_address_split(c->listen, host, sizeof host, &port);
    WEFT_ASSERT(rc == 0);
    if (port == 65535) {
        fprintf(stderr,
                "weftd: --listen port 65535 leaves no room for the raft port (client port + 1); "
                "set --raft-listen\n");
        return 2;
    }
    if (weft_address_is_ipv6(c->listen)) {
        const char *twin = strcmp(host, "::1") == 0 ? "127.0.0.1"
                           : strcmp(host, "::") == 0 ? "0.0.0.0"
                                                     : NULL;
        if (twin == NULL) {
            fprintf(stderr,
                    "weftd: --listen %s is IPv6 and raft traffic is IPv4 only (libraft 0.15): "
                    "set --raft-listen to an IPv4 address of this host, like 10.0.0.1:%u\n",
                    c->listen, (unsigned)port + 1u);
            return 2;
        }
        snprintf(host, sizeof host, "%s", twin);
    }
    snprintf(c->raft_listen, sizeof c->raft_listen, "%s:%u", host, (unsigned)port + 1u);
    return 0;
}

/* Cross-option rules that a single row cannot express. */
static int cfg_check_relations(weft_config *c) {
    if ((uint64_t)c->heartbeat_timeout_ms * 5 > c->election_timeout_ms) {
        fprintf(stderr,
                "weftd: --heartbeat-timeout-ms (%u) must be at most a fifth of "
                "--election-timeout-ms (%u); "
                "raft 0.15 does not check this and leaders would flap\n",
                c->heartbeat_timeout_ms, c->election_timeout_ms);
        return 2;
    }
    if (c->limits.payload_bytes_max >= c->limits.frame_bytes_max) {
        fprintf(stderr,
                "weftd: --payload-bytes-max (%u) must be below --frame-bytes-max (%u) so a "
                "maximal payload fits in one frame\n",
                c->limits.payload_bytes_max, c->limits.frame_bytes_max);
        return 2;
    }
    if (c->conn_write_queue_bytes_max <= c->limits.frame_bytes_max) {
        fprintf(stderr, "weftd: --conn-write-queue-bytes-max must exceed --frame-bytes-max (%u)\n",
                c->limits.frame_bytes_max);
        return 2;
    }
    if (c->peers_given) {
        int rc = cfg_cluster_peers(c);
        if (rc != 0) return rc;
    }
    if (c->raft_listen[0] == '\0') {
        int rc = cfg_derive_raft_listen(c);
        if (rc != 0) return rc;
    }
    if (strcmp(c->raft_listen, c->listen) == 0) {
        fprintf(stderr, "weftd: --raft-listen must differ from --listen (both are %s)\n",
                c->listen);
        return 2;
    }
    if (!c->peers_given) return cfg_cluster_single(c);
    WEFT_ASSERT(c->cluster.from_peers && c->cluster.self < c->cluster.nodes_count);
    return 0;
}

static int cfg_find_config_flag(weft_config *c, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *name = NULL, *value = NULL;
        char buf[64];
        int rc = cfg_flag(argc, argv, &i, &name, &value, buf, sizeof buf);
        if (rc != 0) return rc;
        if (strcmp(name, "help") == 0) return 1;
        if (strcmp(name, "version") == 0) return 3;
        if (strcmp(name, "config") != 0) continue;
        if (value[0] == '\0' || strlen(value) >= sizeof c->config_path) {
            fprintf(stderr, "weftd: --config must name an INI file\n");
            return 2;
        }
        snprintf(c->config_path, sizeof c->config_path, "%s", value);
    }
    return 0;
}

int weft_config_parse(weft_config *c, int argc, char **argv) {
    WEFT_ASSERT(c != NULL && argv != NULL);
    int rc = cfg_find_config_flag(c, argc, argv);
    if (rc == 1) {
        weft_config_usage();
        return 1;
    }
    if (rc == 3) {
        weft_config_version();
        return 1;
    }
    if (rc != 0) return rc;
    if (c->config_path[0] != '\0' && (rc = cfg_load_file(c, c->config_path)) != 0) return rc;
    for (int i = 1; i < argc; i++) {
        const char *name = NULL, *value = NULL;
        char buf[64];
        rc = cfg_flag(argc, argv, &i, &name, &value, buf, sizeof buf);
        WEFT_ASSERT(rc == 0); /* the first pass accepted the same argv */
        if (strcmp(name, "config") == 0) continue;
        const cfg_row *row = cfg_find(name);
        WEFT_ASSERT(row != NULL); /* cfg_flag refused unknown names */
        if ((rc = cfg_set(c, row, value, NULL)) != 0) return rc;
    }
    return cfg_check_relations(c);
}

static void cfg_format_default(const weft_config *d, const cfg_row *row, char *out, size_t cap) {
    const char *field = (const char *)d + row->offset;
    uint32_t v32;
    uint64_t v64;
    bool b;
    switch (row->kind) {
    case CFG_PATH:
    case CFG_ADDR:
        snprintf(out, cap, "%s", field[0] ? field : "the client port + 1 on the same host");
        return;
    case CFG_U32:
        memcpy(&v32, field, sizeof v32);
        snprintf(out, cap, "%u", v32);
        return;
    case CFG_U64:
        memcpy(&v64, field, sizeof v64);
        snprintf(out, cap, "%" PRIu64, v64);
        return;
    case CFG_BOOL:
        memcpy(&b, field, sizeof b);
        snprintf(out, cap, "%s", b ? "true" : "false");
        return;
    case CFG_LEVEL:
        snprintf(out, cap, "info");
        return;
    case CFG_PEERS:
        snprintf(out, cap, "%s", field);
        return;
    }
}

void weft_config_version(void) {
    printf("weftd %s (commit %s)\n", WEFT_VERSION_TEXT, WEFT_GIT_COMMIT);
}

void weft_config_usage(void) {
    weft_config d;
    weft_config_default(&d);
    printf("usage: weftd [--config FILE] [--flag value]...\n\n"
           "Runs one weft node. Every flag can also be set in the INI file given by --config,\n"
           "as \"name = value\" (flags override the file).\n\n");
    printf("  %-30s %s\n", "--config FILE", "INI file with any of the settings below");
    printf("  %-30s %s\n", "--help", "print this text and exit");
    printf("  %-30s %s\n", "--version", "print the version and the git commit, and exit");
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(cfg_rows); i++) {
        char flag[64], def[PATH_MAX];
        snprintf(flag, sizeof flag, "--%s", cfg_rows[i].name);
        if (cfg_rows[i].default_doc != NULL) {
            snprintf(def, sizeof def, "%s", cfg_rows[i].default_doc);
        } else {
            cfg_format_default(&d, &cfg_rows[i], def, sizeof def);
        }
        printf("  %-30s %s (default %s)\n", flag, cfg_rows[i].doc, def);
    }
}
