/* test_cluster_clients.c: issue 4's client-hygiene acceptance: "The same CLI and examples work
 * against the cluster, given every node's address."
 *
 * Three real weftd nodes, eight shards, replication factor 3, driven only as a user would: the
 * `weft` CLI binary and the example workers (examples/order, examples/approval), each given every
 * node's address as one comma-separated --address (or $WEFT_ADDRESS). The test reads the nodes
 * itself only to know which node leads which shard, so that it can place runs on purpose:
 *   - orders whose shards are led by every leading node complete, each step once in the ledger,
 *     and a failing ship step is compensated (exit 2, the failure, release then refund);
 *   - describe, show (table and JSON lines), signal with the approval worker, cancel, and
 *     cluster status (3 nodes up, 8 shards each with a leader), also through $WEFT_ADDRESS and
 *     with a dead first seed;
 *   - the CLI given only one node, which does not lead the run's shard: start, describe, signal
 *     and result still work (the client learns the leaders from that node's topology, follows
 *     NOT_LEADER, or the node forwards);
 *   - list and count see every run started, whichever node leads its shard;
 *   - kill -9 of the node that leads the most shards while an order sleeps on its timer: a
 *     `result --wait` that was long-polling that node, and one started after the kill, both
 *     report the order completed, no step ran twice, the worker takes new orders, and once the
 *     node restarts and leads shards again the worker takes orders there too.
 * The figures printed: which node leads each run's shard, how long failover and restart took,
 * and how long the CLI calls around the kill took. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_cluster.h"
#include "helper_example.h"
#include "proto/partition.h"

#define CC_NODES 3u
#define CC_SHARDS 8u
#define CC_RF 3u
#define ORDER_WORKER_PATH WEFT_EXAMPLES_DIR "/order/order-worker"
#define APPROVAL_WORKER_PATH WEFT_EXAMPLES_DIR "/approval/approval-worker"
#define ORDER_QUEUE "orders"
#define APPROVAL_QUEUE "approvals"
/* Plain orders of part 1, spread over the nodes that lead shards. */
#define CC_ORDERS 6u
/* Runs the test may start in all (it starts about 20). */
#define CC_RUNS_MAX 64u
/* Workflow ids are "<prefix>-<k>"; the candidates tried when looking for one on a given shard. */
#define CC_ID_CANDIDATES 10000u
/* Longest workflow id the test makes, with its NUL. */
#define CC_ID_BYTES 64u
/* Waits for a ledger line or a pending timer. */
#define CC_WAIT_MS 30000u
/* Pause between two CLI describes while waiting for a timer. */
#define CC_POLL_MS 100u
/* How long the background `result --wait` may take once the leader is killed. */
#define CC_BACKGROUND_RESULT_MS 60000u
/* Lets the background `result --wait` reach its long-poll before the kill. */
#define CC_BACKGROUND_SETTLE_MS 700u
/* How long the shards of the killed node may take to get new ready leaders. */
#define CC_REELECT_TIMEOUT_MS 20000u
/* How long the survivors may keep calling the killed node up (a few election timeouts), and
 * how long a status may take to show the whole cluster again. */
#define CC_STATUS_SETTLE_MS 15000u

/* Election flags as in the other cluster tests: the default 2000 ms, so that a loaded 2-core CI
 * machine does not see spurious elections, and failover takes what it takes in production. */
static const char *const cc_flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                       "100", NULL};

typedef struct cc {
    hc_cluster c;                           /* the three nodes */
    ex_proc order_worker;                   /* order-worker with every address */
    ex_proc approval_worker;                /* approval-worker with every address */
    char ledger[PATH_MAX];                  /* the order worker's --ledger */
    char dir[WEFTD_DIR_BYTES];              /* where the workers' logs go (node 1's temp dir) */
    uint64_t leader[CC_SHARDS];             /* leader of each shard when last looked at */
    char started[CC_RUNS_MAX][CC_ID_BYTES]; /* every workflow id started, one run each */
    unsigned started_count;                 /* entries used in started */
    unsigned orders_started;                /* of those, type order */
    unsigned approvals_started;             /* of those, type approval */
    char order_done[CC_ID_BYTES];           /* a completed order, for describe and show */
    bool passed;                            /* the current test reached its end */
} cc;

/* ---- set-up ---- */

static int cc_group_setup(void **state) {
    static cc t;
    memset(&t, 0, sizeof t);
    *state = &t;
    uint64_t t0 = weft_mono_ms();
    if (hc_start(&t.c, CC_NODES, CC_SHARDS, CC_RF, cc_flags) != 0) return -1;
    fprintf(stderr, "cluster of %u nodes, %u shards, R = %u ready in %llu ms; addresses %s\n",
            CC_NODES, CC_SHARDS, CC_RF, (unsigned long long)(weft_mono_ms() - t0), t.c.addresses);
    snprintf(t.dir, sizeof t.dir, "%s", t.c.node[0].dir);
    snprintf(t.ledger, sizeof t.ledger, "%s/order-ledger.txt", t.dir);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/order-worker.log", t.dir);
    const char *const order_argv[] = {
        ORDER_WORKER_PATH, "--address",  t.c.addresses,          "--ledger",
        t.ledger,          "--identity", "order-worker-cluster", NULL};
    if (ex_proc_start(&t.order_worker, order_argv, log) != 0) return -1;
    snprintf(log, sizeof log, "%s/approval-worker.log", t.dir);
    const char *const approval_argv[] = {APPROVAL_WORKER_PATH, "--address", t.c.addresses, NULL};
    if (ex_proc_start(&t.approval_worker, approval_argv, log) != 0) return -1;
    return 0;
}

static int cc_group_teardown(void **state) {
    cc *t = *state;
    ex_proc_destroy(&t->order_worker);
    ex_proc_destroy(&t->approval_worker);
    hc_destroy(&t->c);
    return 0;
}

static int cc_test_setup(void **state) {
    cc *t = *state;
    t->passed = false;
    return 0;
}

static int cc_test_teardown(void **state) {
    cc *t = *state;
    if (!t->passed) {
        ex_proc_print_log(&t->order_worker, EX_LOG_TAIL_LINES);
        ex_proc_print_log(&t->approval_worker, EX_LOG_TAIL_LINES);
        hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    }
    return 0;
}

/* ---- placing runs on shards ---- */

static uint32_t cc_shard_of(const char *workflow_id) {
    return weft_shard_for_hash(
        weft_partition_hash(weft_str_c(WEFT_DEFAULT_NAMESPACE), weft_str_c(workflow_id)),
        CC_SHARDS);
}

/* Reads the leader of every shard (waiting for one where a shard is electing) and prints them. */
static void cc_read_leaders(cc *t) {
    fprintf(stderr, "shard leaders:");
    for (uint32_t s = 0; s < CC_SHARDS; s++) {
        t->leader[s] = hc_wait_leader(&t->c, s, HC_READY_TIMEOUT_MS);
        assert_int_not_equal(t->leader[s], 0);
        fprintf(stderr, " %u->%llu", s, (unsigned long long)t->leader[s]);
    }
    fputc('\n', stderr);
}

static bool cc_was_started(const cc *t, const char *id) {
    for (unsigned i = 0; i < t->started_count; i++)
        if (strcmp(t->started[i], id) == 0) return true;
    return false;
}

/* A fresh workflow id "<prefix>-<k>" whose shard node `led_by` leads (any node when 0) and node
 * `not_led_by` does not (no condition when 0), by the leaders last read. */
static void cc_pick_id(const cc *t, const char *prefix, uint64_t led_by, uint64_t not_led_by,
                       char out[CC_ID_BYTES]) {
    for (unsigned k = 0; k < CC_ID_CANDIDATES; k++) {
        snprintf(out, CC_ID_BYTES, "%s-%u", prefix, k);
        uint64_t l = t->leader[cc_shard_of(out)];
        if (cc_was_started(t, out)) continue;
        if ((led_by == 0 || l == led_by) && (not_led_by == 0 || l != not_led_by)) return;
    }
    fail_msg("no workflow id '%s-*' on a shard led by node %llu and not by %llu", prefix,
             (unsigned long long)led_by, (unsigned long long)not_led_by);
}

/* ---- the CLI ---- */

/* `weft --address <address> workflow start ...`: asserts exit 0 and that the id is printed;
 * counts the run. */
static void cc_start(cc *t, const char *address, const char *type, const char *id,
                     const char *input) {
    char out[EX_CLI_OUTPUT_BYTES];
    const char *queue = strcmp(type, "order") == 0 ? ORDER_QUEUE : APPROVAL_QUEUE;
    const char *const args[] = {"workflow",     "start", "--type", type,
                                "--task-queue", queue,   "--id",   id,
                                "--input",      input,   NULL};
    assert_true(t->started_count < CC_RUNS_MAX);
    assert_int_equal(ex_cli(address, args, out, sizeof out), 0);
    assert_non_null(strstr(out, id));
    snprintf(t->started[t->started_count++], CC_ID_BYTES, "%s", id);
    if (strcmp(type, "order") == 0) t->orders_started++;
    if (strcmp(type, "approval") == 0) t->approvals_started++;
    uint32_t shard = cc_shard_of(id);
    fprintf(stderr, "started %s %s on shard %u, led by node %llu\n", type, id, shard,
            (unsigned long long)t->leader[shard]);
}

/* `weft --address <address> workflow result --id ID --wait --timeout 60s`: the exit code; out
 * receives what it printed. */
static int cc_result(const char *address, const char *id, char *out, size_t cap) {
    const char *const args[] = {"workflow", "result",    "--id", id,
                                "--wait",   "--timeout", "60s",  NULL};
    return ex_cli(address, args, out, cap);
}

/* `weft --address <address> workflow describe --id ID` into out; asserts exit 0. */
static void cc_describe(const char *address, const char *id, char *out, size_t cap) {
    const char *const args[] = {"workflow", "describe", "--id", id, NULL};
    assert_int_equal(ex_cli(address, args, out, cap), 0);
    assert_non_null(strstr(out, id));
}

/* The value after "<label>" at the start of a line of `text` ("" when absent), trimmed. */
static const char *cc_field(const char *text, const char *label, char *buf, size_t cap) {
    buf[0] = '\0';
    size_t len = strlen(label);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, label, len) == 0) {
            const char *v = line + len;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\n");
            snprintf(buf, cap, "%.*s", (int)n, v);
            break;
        }
        line = strchr(line, '\n');
        if (line != NULL) line++;
    }
    return buf;
}

/* Asserts that the order's ledger lines are exactly `expected` ("charge 1, reserve 1, ..."). */
static void cc_expect_ledger(const cc *t, const char *id, const char *expected) {
    static ex_ledger_line lines[EX_LEDGER_LINES_MAX];
    size_t n = 0;
    assert_int_equal(ex_ledger_read(t->ledger, id, lines, EX_LEDGER_LINES_MAX, &n), 0);
    char text[4096];
    assert_string_equal(ex_ledger_format(lines, n, text, sizeof text), expected);
}

/* Waits, with the CLI's describe, until the run has a pending timer: the order sleeps. */
static void cc_wait_timer(const char *address, const char *id) {
    uint64_t deadline_ms = weft_mono_ms() + CC_WAIT_MS;
    char out[EX_CLI_OUTPUT_BYTES], timers[64];
    for (;;) {
        cc_describe(address, id, out, sizeof out);
        if (atoi(cc_field(out, "pending_timers:", timers, sizeof timers)) > 0) return;
        assert_true(weft_mono_ms() < deadline_ms);
        proc_sleep_ms(CC_POLL_MS);
    }
}

/* ---- cluster status, as the CLI prints it ---- */

typedef struct cc_status {
    unsigned answered_by;       /* "answered_by: node N" */
    unsigned shards_line;       /* "shards: S" */
    unsigned nodes_count;       /* rows of the node table */
    bool node_up[CC_NODES + 1]; /* by node id */
    unsigned shards_count;      /* rows of the shard table */
    uint64_t leader[CC_SHARDS]; /* by shard; 0 for "none" */
    bool ready[CC_SHARDS];      /* by shard */
} cc_status;

/* Parses the table form of `weft cluster status` (docs/cli.md); asserts it is well formed. */
static void cc_status_parse(const hc_cluster *c, const char *out, cc_status *s) {
    memset(s, 0, sizeof *s);
    char buf[128];
    assert_int_equal(
        sscanf(cc_field(out, "answered_by:", buf, sizeof buf), "node %u", &s->answered_by), 1);
    s->shards_line = (unsigned)atoi(cc_field(out, "shards:", buf, sizeof buf));
    enum { NONE, NODES, SHARDS } section = NONE;
    for (const char *line = out; line != NULL && *line != '\0';) {
        char row[256];
        snprintf(row, sizeof row, "%.*s", (int)strcspn(line, "\n"), line);
        unsigned id = 0, shard = 0;
        char addr[64], state[16], leader[16], ready[8];
        unsigned long long term = 0, commit = 0, applied = 0;
        if (strncmp(row, "NODE", 4) == 0) {
            section = NODES;
        } else if (strncmp(row, "SHARD ", 6) == 0) {
            section = SHARDS;
        } else if (section == NODES && sscanf(row, "%u %63s %15s", &id, addr, state) == 3) {
            assert_true(id >= 1 && id <= CC_NODES);
            assert_string_equal(addr, hc_address(c, id));
            s->node_up[id] = strcmp(state, "up") == 0;
            s->nodes_count++;
        } else if (section == SHARDS && sscanf(row, "%u %15s %llu %llu %llu %7s", &shard, leader,
                                               &term, &commit, &applied, ready) == 6) {
            assert_true(shard < CC_SHARDS);
            s->leader[shard] = strcmp(leader, "none") == 0 ? 0 : strtoull(leader, NULL, 10);
            s->ready[shard] = strcmp(ready, "yes") == 0;
            s->shards_count++;
        }
        line = strchr(line, '\n');
        if (line != NULL) line++;
    }
}

/* Whether a status shows the whole cluster: every node up, every shard with a leader among
 * them, and ready on the node that answered (a node knows only its own replicas' readiness). */
static bool cc_status_whole(const cc_status *s) {
    bool whole =
        s->nodes_count == CC_NODES && s->shards_line == CC_SHARDS && s->shards_count == CC_SHARDS;
    for (unsigned id = 1; id <= CC_NODES; id++)
        whole = whole && s->node_up[id];
    for (uint32_t sh = 0; sh < CC_SHARDS; sh++) {
        whole = whole && s->leader[sh] >= 1 && s->leader[sh] <= CC_NODES;
        if (s->leader[sh] == s->answered_by) whole = whole && s->ready[sh];
    }
    return whole;
}

/* Runs `weft cluster status` given `address` (NULL: through $WEFT_ADDRESS only) and parses it;
 * asserts exit 0. */
static void cc_status_get(const cc *t, const char *address, cc_status *s) {
    char out[EX_CLI_OUTPUT_BYTES];
    const char *const args[] = {"cluster", "status", NULL};
    int rc = -1;
    if (address != NULL) {
        rc = ex_cli(address, args, out, sizeof out);
    } else {
        assert_int_equal(setenv("WEFT_ADDRESS", t->c.addresses, 1), 0);
        const char *const argv[] = {WEFT_CLI_PATH, "cluster", "status", NULL};
        rc = ex_run(argv, out, sizeof out);
        assert_int_equal(unsetenv("WEFT_ADDRESS"), 0);
    }
    assert_int_equal(rc, 0);
    cc_status_parse(&t->c, out, s);
}

/* Runs `weft cluster status` until it shows the whole cluster (leaderships move to their
 * preferred nodes now and then, and a shard shows no leader for a moment), at most
 * CC_STATUS_SETTLE_MS. */
static void cc_status_until_whole(const cc *t, const char *address) {
    uint64_t deadline_ms = weft_mono_ms() + CC_STATUS_SETTLE_MS;
    cc_status s;
    for (;;) {
        cc_status_get(t, address, &s);
        if (cc_status_whole(&s)) break;
        assert_true(weft_mono_ms() < deadline_ms);
        proc_sleep_ms(CC_POLL_MS);
    }
    unsigned not_ready = 0;
    for (uint32_t sh = 0; sh < CC_SHARDS; sh++)
        not_ready += s.ready[sh] ? 0u : 1u;
    fprintf(stderr,
            "cluster status answered by node %u: %u nodes up, %u shards led; READY shows 'no' for "
            "the %u shards other nodes lead\n",
            s.answered_by, CC_NODES, CC_SHARDS, not_ready);
}

/* ---- the tests ---- */

/* `weft cluster status` given every address, through $WEFT_ADDRESS, with a dead first seed,
 * and as JSON. */
static void test_cluster_status(void **state) {
    cc *t = *state;
    uint64_t t0 = weft_mono_ms();
    char out[EX_CLI_OUTPUT_BYTES];
    cc_read_leaders(t);
    cc_status_until_whole(t, t->c.addresses);
    /* $WEFT_ADDRESS instead of --address (the README's `export WEFT_ADDRESS=...`). */
    cc_status_until_whole(t, NULL);
    /* A first seed where nobody listens: the CLI goes on to the next. */
    char dead[WEFTD_ADDR_BYTES], seeds[HC_ADDRESSES_BYTES + WEFTD_ADDR_BYTES + 1];
    assert_int_equal(weftd_free_addr(dead, sizeof dead), 0);
    snprintf(seeds, sizeof seeds, "%s,%s", dead, t->c.addresses);
    cc_status_until_whole(t, seeds);

    const char *const json[] = {"--output", "json", "cluster", "status", NULL};
    assert_int_equal(ex_cli(t->c.addresses, json, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"nodes\""));
    assert_non_null(strstr(out, "\"shards\""));
    fprintf(stderr, "cluster status: %llu ms\n", (unsigned long long)(weft_mono_ms() - t0));
    t->passed = true;
}

/* Orders on shards led by every leading node, started and awaited with the CLI given every
 * address, complete with one ledger line per step; a failing ship step is compensated. */
static void test_orders_across_leaders(void **state) {
    cc *t = *state;
    uint64_t t0 = weft_mono_ms();
    char out[EX_CLI_OUTPUT_BYTES], want[512];
    cc_read_leaders(t);
    uint64_t leading[CC_NODES];
    unsigned leading_count = 0;
    for (unsigned id = 1; id <= CC_NODES; id++) {
        bool leads = false;
        for (uint32_t s = 0; s < CC_SHARDS; s++)
            leads = leads || t->leader[s] == id;
        if (leads) leading[leading_count++] = id;
    }
    /* The preferred leaders spread the shards over the nodes. */
    assert_true(leading_count >= 2);
    char ids[CC_ORDERS][CC_ID_BYTES], fail_id[CC_ID_BYTES];
    for (unsigned i = 0; i < CC_ORDERS; i++) {
        cc_pick_id(t, "order-c", leading[i % leading_count], 0, ids[i]);
        cc_start(t, t->c.addresses, "order", ids[i], "{\"sleep\":\"1s\"}");
    }
    cc_pick_id(t, "order-fail-ship", leading[leading_count - 1], 0, fail_id);
    cc_start(t, t->c.addresses, "order", fail_id, "{\"fail_ship\":true,\"sleep\":\"1s\"}");

    for (unsigned i = 0; i < CC_ORDERS; i++) {
        assert_int_equal(cc_result(t->c.addresses, ids[i], out, sizeof out), 0);
        snprintf(want, sizeof want, "\"receipt\":\"receipt-%s-charge\"", ids[i]);
        assert_non_null(strstr(out, want));
        snprintf(want, sizeof want, "\"tracking\":\"tracking-%s-ship\"", ids[i]);
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, "\"survey\":\"sent\""));
        cc_expect_ledger(t, ids[i], "charge 1, reserve 1, ship 1, send_survey 1");
    }
    assert_int_equal(cc_result(t->c.addresses, fail_id, out, sizeof out), 2);
    assert_non_null(strstr(out, "status: failed"));
    assert_non_null(strstr(out, "failure_type: ShippingUnavailable"));
    assert_non_null(strstr(out, "ship failed after 1 attempt(s)"));
    assert_non_null(strstr(out, "compensated: release, refund"));
    cc_expect_ledger(t, fail_id, "charge 1, reserve 1, ship 1, release 1, refund 1");
    snprintf(t->order_done, sizeof t->order_done, "%s", ids[0]);
    fprintf(stderr, "%u orders and one compensated, on %u leading nodes: %llu ms\n", CC_ORDERS,
            leading_count, (unsigned long long)(weft_mono_ms() - t0));
    t->passed = true;
}

/* Counts the lines of `text`. */
static unsigned cc_lines(const char *text) {
    unsigned n = 0;
    for (const char *p = strchr(text, '\n'); p != NULL; p = strchr(p + 1, '\n'))
        n++;
    return n;
}

/* describe and show (table and JSON lines) of a completed order, given every address. */
static void test_describe_show(void **state) {
    cc *t = *state;
    assert_true(t->order_done[0] != '\0');
    const char *id = t->order_done;
    char out[EX_CLI_OUTPUT_BYTES], field[256];
    cc_describe(t->c.addresses, id, out, sizeof out);
    assert_string_equal(cc_field(out, "status:", field, sizeof field), "completed");
    assert_string_equal(cc_field(out, "type:", field, sizeof field), "order");
    assert_string_equal(cc_field(out, "task_queue:", field, sizeof field), ORDER_QUEUE);
    unsigned events = (unsigned)atoi(cc_field(out, "history:", field, sizeof field));
    assert_true(events > 10);

    const char *const show[] = {"workflow", "show", "--id", id, NULL};
    assert_int_equal(ex_cli(t->c.addresses, show, out, sizeof out), 0);
    assert_int_equal(cc_lines(out), events);
    assert_non_null(strstr(out, "WorkflowExecutionStarted"));
    assert_non_null(strstr(out, "TimerFired"));
    assert_non_null(strstr(out, "WorkflowExecutionCompleted"));

    const char *const show_json[] = {"workflow", "show", "--id", id, "--output", "json", NULL};
    assert_int_equal(ex_cli(t->c.addresses, show_json, out, sizeof out), 0);
    assert_int_equal(cc_lines(out), events);
    assert_true(strncmp(out, "{\"event_id\":1,", 14) == 0);
    assert_non_null(strstr(out, "\"event_type\":\"TimerFired\""));
    assert_non_null(strstr(out, "\"event_type\":\"WorkflowExecutionCompleted\""));

    const char *const describe_json[] = {"--output", "json", "workflow", "describe",
                                         "--id",     id,     NULL};
    assert_int_equal(ex_cli(t->c.addresses, describe_json, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"status\":\"completed\""));
    fprintf(stderr, "%s: %u events, shown as table and JSON lines\n", id, events);
    t->passed = true;
}

/* The approval worker, given every address, decides on signals sent with the CLI to runs on
 * shards of two different leaders. */
static void test_approval_signal(void **state) {
    cc *t = *state;
    uint64_t t0 = weft_mono_ms();
    char out[EX_CLI_OUTPUT_BYTES], approve[CC_ID_BYTES], reject[CC_ID_BYTES];
    cc_read_leaders(t);
    cc_pick_id(t, "po-approve", 0, 0, approve);
    cc_pick_id(t, "po-reject", 0, t->leader[cc_shard_of(approve)], reject);
    cc_start(t, t->c.addresses, "approval", approve,
             "{\"request\":\"new laptop\",\"timeout\":\"1m\"}");
    cc_start(t, t->c.addresses, "approval", reject, "{\"timeout\":\"1m\"}");
    const char *const sig_approve[] = {"workflow", "signal",  "--id",    approve,
                                       "--name",   "approve", "--input", "{\"by\":\"alice\"}",
                                       NULL};
    assert_int_equal(ex_cli(t->c.addresses, sig_approve, out, sizeof out), 0);
    assert_non_null(strstr(out, "signal approve sent"));
    const char *const sig_reject[] = {"workflow", "signal",          "--id",
                                      reject,     "--name",          "reject",
                                      "--input",  "\"over budget\"", NULL};
    assert_int_equal(ex_cli(t->c.addresses, sig_reject, out, sizeof out), 0);

    assert_int_equal(cc_result(t->c.addresses, approve, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"decision\":\"approved\""));
    assert_non_null(strstr(out, "\"by\":\"alice\""));
    assert_non_null(strstr(out, "\"request\":\"new laptop\""));
    assert_int_equal(cc_result(t->c.addresses, reject, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"decision\":\"rejected\""));
    assert_non_null(strstr(out, "over budget"));
    fprintf(stderr, "approvals: %llu ms\n", (unsigned long long)(weft_mono_ms() - t0));
    t->passed = true;
}

/* A cancel sent with the CLI while the order sleeps undoes it, last step first. */
static void test_cancel(void **state) {
    cc *t = *state;
    uint64_t t0 = weft_mono_ms();
    char out[EX_CLI_OUTPUT_BYTES], id[CC_ID_BYTES], field[128];
    cc_read_leaders(t);
    cc_pick_id(t, "order-cancel", 0, 0, id);
    cc_start(t, t->c.addresses, "order", id, "{\"sleep\":\"1h\"}");
    assert_int_equal(ex_ledger_wait(t->ledger, id, "ship", 1, CC_WAIT_MS), 0);
    cc_wait_timer(t->c.addresses, id);
    const char *const cancel[] = {"workflow", "cancel",          "--id", id,
                                  "--reason", "changed my mind", NULL};
    assert_int_equal(ex_cli(t->c.addresses, cancel, out, sizeof out), 0);
    assert_non_null(strstr(out, "cancel requested"));
    assert_int_equal(cc_result(t->c.addresses, id, out, sizeof out), 2);
    assert_non_null(strstr(out, "status: canceled"));
    cc_expect_ledger(t, id, "charge 1, reserve 1, ship 1, cancel_shipment 1, release 1, refund 1");
    cc_describe(t->c.addresses, id, out, sizeof out);
    /* "canceled (cancel requested)": the flag stays on the closed run. */
    assert_true(strncmp(cc_field(out, "status:", field, sizeof field), "canceled", 8) == 0);
    fprintf(stderr, "cancel: %llu ms\n", (unsigned long long)(weft_mono_ms() - t0));
    t->passed = true;
}

/* The CLI given only one node's address, for runs on shards that node does not lead: start,
 * describe, signal and result work (the client follows NOT_LEADER to the leader). */
static void test_one_address(void **state) {
    cc *t = *state;
    uint64_t t0 = weft_mono_ms();
    char out[EX_CLI_OUTPUT_BYTES], id[CC_ID_BYTES], field[128];
    cc_read_leaders(t);
    for (unsigned b = 1; b <= CC_NODES; b++) {
        const char *only = hc_address(&t->c, b);
        cc_status s;
        cc_status_get(t, only, &s);
        assert_int_equal(s.answered_by, b);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "order-via%u", b);
        cc_pick_id(t, prefix, 0, b, id);
        cc_start(t, only, "order", id, "{\"sleep\":\"100ms\"}");
        cc_describe(only, id, out, sizeof out);
        assert_string_equal(cc_field(out, "type:", field, sizeof field), "order");
        assert_int_equal(cc_result(only, id, out, sizeof out), 0);
        assert_non_null(strstr(out, "\"survey\":\"sent\""));
        cc_expect_ledger(t, id, "charge 1, reserve 1, ship 1, send_survey 1");
        fprintf(stderr, "node %u alone: %s on shard %u (led by node %llu) completed\n", b, id,
                cc_shard_of(id), (unsigned long long)t->leader[cc_shard_of(id)]);
    }
    /* A signal through a node that does not lead the run's shard. */
    const char *only = hc_address(&t->c, 1);
    cc_pick_id(t, "po-via1", 0, 1, id);
    cc_start(t, only, "approval", id, "{\"timeout\":\"1m\"}");
    const char *const sig[] = {"workflow", "signal", "--id", id, "--name", "approve", NULL};
    assert_int_equal(ex_cli(only, sig, out, sizeof out), 0);
    assert_int_equal(cc_result(only, id, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"decision\":\"approved\""));
    fprintf(stderr, "one address: %llu ms\n", (unsigned long long)(weft_mono_ms() - t0));
    t->passed = true;
}

/* Runs `weft <args>` given `address` into out; on a non-zero exit appends "<what>: exit N:
 * <output>" to `failures` (capacity cap). Returns whether it exited 0. */
static bool cc_try(const char *address, const char *const *args, const char *what, char *out,
                   size_t out_cap, char *failures, size_t cap) {
    int rc = ex_cli(address, args, out, out_cap);
    if (rc == 0) return true;
    size_t len = strlen(failures);
    snprintf(failures + len, cap - len, "\n  %s: exit %d: %.*s", what, rc, (int)strcspn(out, "\n"),
             out);
    return false;
}

/* list and count, given every address, see every run started, whichever node leads its shard
 * (this needs the nodes to forward to each other). Every command runs, then the test fails
 * with all that went wrong. */
static void test_list_count(void **state) {
    cc *t = *state;
    static char out[EX_CLI_OUTPUT_BYTES];
    char failures[8192] = "";
    const char *all = t->c.addresses;
    assert_true(t->started_count > 0);
    const char *const count[] = {"workflow", "count", NULL};
    const char *const count_orders[] = {"workflow", "count", "--type", "order", NULL};
    const char *const count_approvals[] = {"workflow", "count", "--type", "approval", NULL};
    const char *const list[] = {"workflow", "list", "--limit", "1000", NULL};
    const char *const list_json[] = {"--output", "json", "workflow", "list", NULL};
    unsigned n = 0;
    if (cc_try(all, count, "count", out, sizeof out, failures, sizeof failures)) {
        n = (unsigned)strtoul(out, NULL, 10);
        assert_int_equal(n, t->started_count);
    }
    if (cc_try(all, count_orders, "count --type order", out, sizeof out, failures,
               sizeof failures)) {
        assert_int_equal(strtoul(out, NULL, 10), t->orders_started);
    }
    if (cc_try(all, count_approvals, "count --type approval", out, sizeof out, failures,
               sizeof failures)) {
        assert_int_equal(strtoul(out, NULL, 10), t->approvals_started);
    }
    if (cc_try(all, list, "list", out, sizeof out, failures, sizeof failures)) {
        assert_int_equal(cc_lines(out), 1 + t->started_count); /* a header, one row per run */
        for (unsigned i = 0; i < t->started_count; i++) {
            char needle[CC_ID_BYTES + 2];
            snprintf(needle, sizeof needle, "%s ", t->started[i]);
            if (strstr(out, needle) == NULL) fail_msg("workflow list misses %s", t->started[i]);
        }
    }
    if (cc_try(all, list_json, "list --output json", out, sizeof out, failures, sizeof failures)) {
        assert_int_equal(cc_lines(out), t->started_count);
    }
    if (failures[0] != '\0') fail_msg("given every address, these failed:%s", failures);
    fprintf(stderr, "list and count: %u runs (%u orders, %u approvals)\n", t->started_count,
            t->orders_started, t->approvals_started);
    t->passed = true;
}

/* The node leading the most shards by the leaders last read (ties to the lower id). */
static unsigned cc_busiest(const cc *t) {
    unsigned led[CC_NODES + 1] = {0}, best = 1;
    for (uint32_t s = 0; s < CC_SHARDS; s++)
        led[t->leader[s]]++;
    for (unsigned id = 2; id <= CC_NODES; id++)
        if (led[id] > led[best]) best = id;
    fprintf(stderr, "node %u leads %u of %u shards\n", best, led[best], CC_SHARDS);
    return best;
}

/* Waits until a status given every address shows node `down` down and leading nothing. */
static void cc_wait_seen_down(const cc *t, unsigned down) {
    uint64_t deadline_ms = weft_mono_ms() + CC_STATUS_SETTLE_MS;
    for (;;) {
        cc_status s;
        cc_status_get(t, t->c.addresses, &s);
        bool unsettled = false; /* a shard still names the dead node, or no leader */
        for (uint32_t sh = 0; sh < CC_SHARDS; sh++)
            unsettled = unsettled || s.leader[sh] == down || s.leader[sh] == 0;
        if (!s.node_up[down] && !unsettled && s.nodes_count == CC_NODES) return;
        assert_true(weft_mono_ms() < deadline_ms);
        proc_sleep_ms(500);
    }
}

/* Starts `weft workflow result --wait` in the background, given every address. */
static void cc_result_background(cc *t, ex_proc *bg, const char *id) {
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/result-%s.log", t->dir, id);
    const char *const argv[] = {WEFT_CLI_PATH, "--address", t->c.addresses, "workflow",  "result",
                                "--id",        id,          "--wait",       "--timeout", "60s",
                                NULL};
    assert_int_equal(ex_proc_start(bg, argv, log), 0);
}

/* Whether the file at `path` contains `needle`. */
static bool cc_file_contains(const char *path, const char *needle) {
    static char buf[EX_CLI_OUTPUT_BYTES];
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* What the CLI said about the sleeping order across the kill. */
typedef struct cc_failover {
    uint64_t kill_ms;                 /* when the node was killed */
    int fg_code;                      /* exit of `result --wait` started right after the kill */
    char fg_out[EX_CLI_OUTPUT_BYTES]; /* what it printed */
    int bg_code;                      /* exit of `result --wait` long-polling through the kill */
    bool bg_ok;                       /* that one exited 0 and printed the result */
} cc_failover;

/* Starts an order on a shard `victim` leads, waits until it sleeps on its timer, starts a
 * background `result --wait`, kill -9's the node and starts another `result --wait`; records
 * both outcomes in f, without asserting them. */
static void cc_kill_during_sleep(cc *t, unsigned victim, const char *id, cc_failover *f) {
    char want[512];
    cc_start(t, t->c.addresses, "order", id, "{\"sleep\":\"3s\"}");
    assert_int_equal(ex_ledger_wait(t->ledger, id, "ship", 1, CC_WAIT_MS), 0);
    cc_wait_timer(t->c.addresses, id);
    static ex_proc bg;
    cc_result_background(t, &bg, id);
    proc_sleep_ms(CC_BACKGROUND_SETTLE_MS);
    assert_true(ex_proc_alive(&bg)); /* still waiting for the order */

    f->kill_ms = weft_mono_ms();
    hc_kill9(&t->c, victim);
    fprintf(stderr, "killed node %u (kill -9) while %s sleeps\n", victim, id);
    f->fg_code = cc_result(t->c.addresses, id, f->fg_out, sizeof f->fg_out);
    uint64_t fg_ms = weft_mono_ms() - f->kill_ms;
    f->bg_code = proc_child_wait(&bg.proc, CC_BACKGROUND_RESULT_MS);
    uint64_t bg_ms = weft_mono_ms() - f->kill_ms;
    fprintf(stderr,
            "after the kill: a result --wait started then exited %d at +%llu ms; the one "
            "waiting through the kill exited %d at +%llu ms\n",
            f->fg_code, (unsigned long long)fg_ms, f->bg_code, (unsigned long long)bg_ms);
    snprintf(want, sizeof want, "\"receipt\":\"receipt-%s-charge\"", id);
    f->bg_ok = f->bg_code == 0 && cc_file_contains(bg.log_path, want);
    if (!f->bg_ok) ex_proc_print_log(&bg, EX_LOG_TAIL_LINES);
    ex_proc_destroy(&bg);
}

/* Waits until every shard `victim` led (led_before) has another ready leader; prints when. */
static void cc_wait_reelected(cc *t, unsigned victim, const uint64_t *led_before,
                              uint64_t kill_ms) {
    uint64_t reelect_ms = 0;
    for (uint32_t s = 0; s < CC_SHARDS; s++) {
        if (led_before[s] != victim) continue;
        uint64_t l = hc_wait_leader(&t->c, s, CC_REELECT_TIMEOUT_MS);
        assert_true(l != 0 && l != victim);
        reelect_ms = weft_mono_ms() - kill_ms;
    }
    fprintf(stderr, "every shard of node %u had a new ready leader when checked at +%llu ms\n",
            victim, (unsigned long long)reelect_ms);
}

/* Starts an order with a short sleep and asserts, with the CLI, that it completes with each
 * step once. `what` names the situation in the printed line. */
static void cc_order_completes(cc *t, const char *id, const char *what) {
    char out[EX_CLI_OUTPUT_BYTES];
    uint64_t t0 = weft_mono_ms();
    cc_start(t, t->c.addresses, "order", id, "{\"sleep\":\"100ms\"}");
    assert_int_equal(cc_result(t->c.addresses, id, out, sizeof out), 0);
    cc_expect_ledger(t, id, "charge 1, reserve 1, ship 1, send_survey 1");
    fprintf(stderr, "%s completed %s in %llu ms\n", id, what,
            (unsigned long long)(weft_mono_ms() - t0));
}

/* Waits until node `id` leads a shard again (the rebalancer hands the preferred leader its
 * shards back every few seconds). Returns the shard. */
static uint32_t cc_wait_leads_again(cc *t, unsigned id) {
    uint64_t deadline_ms = weft_mono_ms() + CC_REELECT_TIMEOUT_MS;
    for (;;) {
        cc_read_leaders(t);
        for (uint32_t s = 0; s < CC_SHARDS; s++)
            if (t->leader[s] == id) return s;
        assert_true(weft_mono_ms() < deadline_ms);
        proc_sleep_ms(500);
    }
}

/* kill -9 of the node leading the most shards while an order on one of its shards sleeps: a
 * `result --wait` long-polling through it and one started after the kill both see the order
 * complete, no step runs twice, the worker takes a new order on a shard the node led, and once
 * the node restarts and leads shards again, the worker takes orders there too. */
static void test_leader_killed_during_sleep(void **state) {
    cc *t = *state;
    char out[EX_CLI_OUTPUT_BYTES], id[CC_ID_BYTES], next[CC_ID_BYTES], want[512];
    cc_read_leaders(t);
    unsigned victim = cc_busiest(t);
    uint64_t led_before[CC_SHARDS];
    memcpy(led_before, t->leader, sizeof led_before);
    cc_pick_id(t, "order-failover", victim, 0, id);
    static cc_failover f;
    cc_kill_during_sleep(t, victim, id, &f);
    cc_wait_reelected(t, victim, led_before, f.kill_ms);
    /* Whatever those two said, once the shards have new leaders the order completes with no
     * step repeated. The two are asserted at the end, so that a failure there still shows how
     * the rest went. */
    snprintf(want, sizeof want, "\"receipt\":\"receipt-%s-charge\"", id);
    assert_int_equal(cc_result(t->c.addresses, id, out, sizeof out), 0);
    assert_non_null(strstr(out, want));
    cc_expect_ledger(t, id, "charge 1, reserve 1, ship 1, send_survey 1");
    cc_wait_seen_down(t, victim);

    /* The worker goes on: an order on a shard the killed node led. */
    assert_true(ex_proc_alive(&t->order_worker));
    memcpy(t->leader, led_before, sizeof led_before);
    cc_pick_id(t, "order-node-down", victim, 0, next);
    cc_read_leaders(t);
    cc_order_completes(t, next, "on a shard the killed node led");

    uint64_t t0 = weft_mono_ms();
    assert_int_equal(hc_restart(&t->c, victim), 0);
    fprintf(stderr, "node %u restarted, cluster ready in %llu ms\n", victim,
            (unsigned long long)(weft_mono_ms() - t0));
    cc_status_until_whole(t, t->c.addresses);
    /* The worker polls the restarted node again: an order on a shard it leads once more. */
    uint32_t shard = cc_wait_leads_again(t, victim);
    fprintf(stderr, "node %u leads shard %u again %llu ms after its restart\n", victim, shard,
            (unsigned long long)(weft_mono_ms() - t0));
    cc_pick_id(t, "order-node-back", victim, 0, next);
    cc_order_completes(t, next, "on a shard the restarted node leads");
    assert_true(ex_proc_alive(&t->order_worker));
    assert_true(ex_proc_alive(&t->approval_worker));

    /* The CLI rode out the failover (docs/cli.md: it follows leaders through the addresses). */
    if (f.fg_code != 0) {
        fail_msg("result --wait started after the kill exited %d: %s", f.fg_code, f.fg_out);
    }
    assert_non_null(strstr(f.fg_out, want));
    if (!f.bg_ok) fail_msg("result --wait waiting through the kill exited %d", f.bg_code);
    t->passed = true;
}

/* Both workers drain on SIGTERM and exit 0, after polling a node that was killed and came back
 * (under ASan, also with no leak). */
static void test_workers_drain(void **state) {
    cc *t = *state;
    assert_int_equal(ex_proc_stop(&t->order_worker), 0);
    assert_int_equal(ex_proc_stop(&t->approval_worker), 0);
    t->passed = true;
}

#define CC_TEST(f) cmocka_unit_test_setup_teardown(f, cc_test_setup, cc_test_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        CC_TEST(test_cluster_status), CC_TEST(test_orders_across_leaders),
        CC_TEST(test_describe_show),  CC_TEST(test_approval_signal),
        CC_TEST(test_cancel),         CC_TEST(test_one_address),
        CC_TEST(test_list_count),     CC_TEST(test_leader_killed_during_sleep),
        CC_TEST(test_workers_drain),
    };
    return cmocka_run_group_tests(tests, cc_group_setup, cc_group_teardown);
}
