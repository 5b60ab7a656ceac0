/* test_cluster_partition.c: a node cut off from its peers fails fast and says so, and clients
 * are served by the rest (issue 9: while one node was isolated, CLI starts through it failed
 * with "UNAVAILABLE ... gave up after 8 retries", and its `weft cluster status` showed every
 * shard without a leader and did not say that the node itself was cut off).
 *
 * Three nodes, eight shards, replication factor 3. Node PT_ISOLATED is killed and started again
 * behind iptables rules on the loopback interface that cut it off from its peers: its raft
 * port drops everything (so no peer's raft message reaches it), and the Hello that opens a
 * forwarding connection from it to a peer (the only bytes that tell its connections apart on
 * loopback) is dropped, so it cannot relay requests either. Its client port stays open, as for
 * clients on its side of a partition. (It is restarted into the partition because connections
 * it opened before could not be told apart from the others'.) Then:
 *   - its ClusterStatus says cut_off within PT_CUT_OFF_SEEN_MS_MAX of its restart;
 *   - a task poll sent to it right after its restart, with a long-poll wait of PT_POLL_WAIT_MS,
 *     is answered UNAVAILABLE "cut off" as soon as the node knows it is cut off (within
 *     PT_CUT_OFF_SEEN_MS_MAX of the restart), not at the end of its wait: parked before that
 *     moment, or refused at once after it;
 *   - a request sent to it alone, for any shard, is answered within PT_FAST_ANSWER_MS_MAX with
 *     UNAVAILABLE that says it is cut off and names the other nodes;
 *   - PT_STARTS starts through a client whose only seed is the isolated node, with the CLI's
 *     retry count (8), all succeed, each within PT_START_MS_MAX: the client moves to the
 *     nodes the isolated one named;
 *   - an SDK worker that polls every node, started before the partition, completes each of
 *     PT_SDK_RUNS runs (a workflow task, an activity, a workflow task) started during it within
 *     PT_SDK_RUN_MS_MAX: its polls on the cut-off node hold back nothing on the others, and its
 *     completions reach the shards' leaders through the other nodes;
 *   - once the rules are removed, it is no longer cut off and the cluster is ready again.
 * The rules carry a comment naming this run (its raft port) and are removed on every exit path:
 * teardown, exit, and the fatal signals. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper_cluster.h"
#include "helper_sdk.h"
#include "weft/worker.h"

#define PT_NODES 3u
#define PT_SHARDS 8u
#define PT_RF 3u
#define PT_ISOLATED 3u
/* The raft timing given to every node (the flags' text too). */
#define PT_ELECTION_TIMEOUT_MS 2000u
/* A restarted, isolated node says it is cut off within this: an election timeout of silence
 * (WEFTD_CUT_OFF_ELECTION_TIMEOUTS, node/cluster.h) plus room for a loaded machine. */
#define PT_CUT_OFF_SEEN_MS_MAX (PT_ELECTION_TIMEOUT_MS + 5000u)
/* A request sent to the cut-off node is answered within this: at once, rather than after a
 * peer it cannot reach would have answered (forward-timeout-ms, 5 s by default). */
#define PT_FAST_ANSWER_MS_MAX 1000u
/* The long-poll wait asked for by the poll sent to the cut-off node: far longer than
 * PT_CUT_OFF_SEEN_MS_MAX, so that an answer by then was not its wait running out. */
#define PT_POLL_WAIT_MS 50000u
/* The CLI's retry count (client/cli/cli.h, CLI_CALL_RETRIES). */
#define PT_CLI_RETRIES 8u
/* Starts through the isolated node, and the bound on each: the first attempt's fast UNAVAILABLE,
 * then the next node; room for a leader of that shard still being elected (the isolated node
 * led some shards before its restart). */
#define PT_STARTS 6u
#define PT_START_MS_MAX (PT_ELECTION_TIMEOUT_MS + 6000u)
/* Runs of the SDK worker started during the partition, and the bound on each from its start
 * to its completion: two workflow tasks and an activity, each a poll and a commit; room for a
 * loaded machine. Before the fix, a completion sent to the cut-off node (the client's routing
 * named it) spent the client's retries there (about 12 s) and the task timed out. */
#define PT_SDK_RUNS 6u
#define PT_SDK_RUN_MS_MAX 5000u
#define PT_SDK_QUEUE "q-partition-sdk"
/* The worker's long-poll wait: short, so its stop drains quickly. */
#define PT_SDK_POLL_MS 1000u
/* A wait for a condition polls this often. */
#define PT_POLL_MS 50u
/* iptables rules of this run, at most. */
#define PT_RULES_MAX 2u
/* Words of one iptables command line, at most. */
#define PT_ARGV_MAX 24u

static const char *const pt_flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                       "100", NULL};

/* ---- iptables rules, removable from a signal handler ---- */

typedef struct pt_rule {
    char words[PT_ARGV_MAX][96]; /* the rule after "-I OUTPUT" / "-D OUTPUT" */
    unsigned words_count;
} pt_rule;

static pt_rule pt_rules[PT_RULES_MAX];
static volatile sig_atomic_t pt_rules_count;
static volatile sig_atomic_t pt_rules_installed;

/* Runs iptables with `op` ("-I" or "-D") on OUTPUT and rule `r`: fork and exec only, so that a
 * signal handler may call it. Returns the exit status, or -1. */
static int pt_iptables(const char *op, const pt_rule *r) {
    char *argv[PT_ARGV_MAX + 4];
    unsigned n = 0;
    argv[n++] = (char *)"iptables";
    argv[n++] = (char *)"-w";
    argv[n++] = (char *)op;
    argv[n++] = (char *)"OUTPUT";
    for (unsigned i = 0; i < r->words_count; i++) argv[n++] = (char *)r->words[i];
    argv[n] = NULL;
    return proc_run_quiet(argv);
}

/* Removes every rule of this run (each as many times as it is there). Async-signal-safe. */
static void pt_rules_remove(void) {
    if (!pt_rules_installed) return;
    for (int i = 0; i < pt_rules_count; i++) {
        for (unsigned k = 0; k < 4u && pt_iptables("-D", &pt_rules[i]) == 0; k++) {
        }
    }
    pt_rules_installed = 0;
}

static void pt_signal_handler(int sig) {
    pt_rules_remove();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void pt_rule_set(pt_rule *r, const char *const *words) {
    memset(r, 0, sizeof *r);
    for (unsigned i = 0; words[i] != NULL; i++) {
        WEFT_ASSERT(i < PT_ARGV_MAX && strlen(words[i]) < sizeof r->words[0]);
        snprintf(r->words[i], sizeof r->words[0], "%s", words[i]);
        r->words_count++;
    }
}

/* The two rules that cut node `id` off: its raft port, and its forwarding Hello, whose map
 * holds the key "forwarding_node" (msgpack fixstr of 15 bytes, 0xaf) and its node id (a
 * positive fixint). */
static void pt_rules_build(hc_cluster *c, unsigned id) {
    WEFT_ASSERT(id < 128u);
    const char *raft = strrchr(c->node[id - 1].raft_listen, ':') + 1;
    char comment[64], hello[64];
    snprintf(comment, sizeof comment, "weft-test-partition-%s", raft);
    snprintf(hello, sizeof hello, "|af|forwarding_node|%02x|", id);
    const char *port_rule[] = {"-o", "lo", "-p", "tcp", "--dport", raft, "-m", "comment",
                               "--comment", comment, "-j", "DROP", NULL};
    const char *hello_rule[] = {"-o", "lo", "-p", "tcp", "-m", "string", "--algo", "bm",
                                "--hex-string", hello, "-m", "comment", "--comment", comment,
                                "-j", "DROP", NULL};
    pt_rule_set(&pt_rules[0], port_rule);
    pt_rule_set(&pt_rules[1], hello_rule);
    pt_rules_count = 2;
}

static void pt_rules_add(void) {
    pt_rules_installed = 1;
    for (int i = 0; i < pt_rules_count; i++) {
        int rc = pt_iptables("-I", &pt_rules[i]);
        if (rc != 0)
            fail_msg("iptables -I OUTPUT %s ... failed (%d): this test needs root and iptables "
                     "(deploy/install-deps.sh installs it)",
                     pt_rules[i].words[0], rc);
    }
}

/* ---- The test ---- */

typedef struct pt {
    hc_cluster c;          /* the three nodes */
    bool passed;           /* teardown prints the nodes' stderr otherwise */
    weft_client *wclient;  /* the SDK worker's, every address */
    weft_client *driver;   /* starts and awaits the SDK runs, every address */
    weft_worker *worker;   /* polls every node */
    sdk_runner runner;     /* runs the worker */
} pt;

/* The SDK worker's activity and workflow: one activity, then complete with its result. */
static int pt_echo(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)act, (void)arg;
    *out = input;
    return 0;
}

static int pt_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    weft_activity_opts o = {.start_to_close_timeout_ms = 30000};
    if (weft_wf_activity(wf, "echo", input, &o, out) != 0) {
        return weft_wf_fail(wf, "EchoFailed", "the echo activity failed");
    }
    return WEFT_WF_RESULT_COMPLETE;
}

static void pt_worker_start(pt *t) {
    weft_err err;
    assert_int_equal(hc_client(&t->c, "partition-worker", &t->wclient), 0);
    assert_int_equal(hc_client(&t->c, "partition-driver", &t->driver), 0);
    weft_worker_opts o = {.task_queue = PT_SDK_QUEUE, .poll_timeout_ms = PT_SDK_POLL_MS};
    assert_int_equal(weft_worker_new(t->wclient, &o, &t->worker, &err), 0);
    assert_int_equal(weft_worker_register_workflow(t->worker, "echo-flow", pt_workflow, NULL, &err),
                     0);
    assert_int_equal(weft_worker_register_activity(t->worker, "echo", pt_echo, NULL, &err), 0);
    sdk_runner_start(&t->runner, t->worker);
}

/* Starts run `id` and waits for it to complete; returns how long that took. */
static uint64_t pt_sdk_run(pt *t, const char *id) {
    uint64_t t0 = weft_mono_ms();
    sdk_start(t->driver, id, "echo-flow", PT_SDK_QUEUE, id, NULL, 0);
    char result[64];
    assert_int_equal(sdk_result(t->driver, id, 60000u, result, sizeof result),
                     WEFT_STATUS_COMPLETED);
    assert_string_equal(result, id);
    return weft_mono_ms() - t0;
}

static int pt_setup(void **state) {
    static pt t;
    memset(&t, 0, sizeof t);
    *state = &t;
    atexit(pt_rules_remove);
    const int sigs[] = {SIGTERM, SIGINT, SIGABRT, SIGSEGV, SIGBUS, SIGHUP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], pt_signal_handler);
    return hc_start(&t.c, PT_NODES, PT_SHARDS, PT_RF, pt_flags) != 0 ? -1 : 0;
}

static int pt_teardown(void **state) {
    pt *t = *state;
    pt_rules_remove();
    if (t->runner.running) (void)sdk_runner_stop(&t->runner);
    weft_worker_free(t->worker);
    weft_client_close(t->wclient);
    weft_client_close(t->driver);
    if (!t->passed) hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    hc_destroy(&t->c);
    return 0;
}

/* Node `id`'s ClusterStatus says cut_off == want; -1 when it did not answer. */
static int pt_cut_off(pt *t, unsigned id) {
    weft_cluster_status_resp st;
    weft_response h = {0};
    weft_err err;
    int rc = hc_status(&t->c, id, &st, &h, &err);
    int cut = rc == 0 ? st.cut_off : -1;
    weft_response_free(&h);
    return cut;
}

static uint64_t pt_wait_cut_off(pt *t, unsigned id, int want, uint64_t since_ms, uint64_t max_ms) {
    for (;;) {
        if (pt_cut_off(t, id) == want) return weft_mono_ms() - since_ms;
        if (weft_mono_ms() - since_ms > max_ms)
            fail_msg("node %u does not say cut_off=%d %llu ms on", id, want,
                     (unsigned long long)max_ms);
        weftd_sleep_ms(PT_POLL_MS);
    }
}

/* A describe of a workflow on every shard, sent to node `id` alone: each is answered at once
 * with UNAVAILABLE that says the node is cut off and names the other nodes. */
static void pt_check_fast_answers(pt *t, unsigned id) {
    weft_client *c = NULL;
    assert_int_equal(hc_node_client(&t->c, id, "partition-probe", &c), 0);
    for (unsigned k = 0; k < 16u; k++) {
        char wf[32];
        snprintf(wf, sizeof wf, "probe-%u", k);
        weft_describe_req q = {.workflow_id = weft_str_c(wf)};
        weft_describe_resp d;
        weft_response h = {0};
        weft_err err;
        weft_err_clear(&err);
        uint64_t t0 = weft_mono_ms();
        int rc = hc_call_seed(c, WEFT_MSG_DESCRIBE_WORKFLOW, &q, &d, &h, &err);
        uint64_t took_ms = weft_mono_ms() - t0;
        weft_response_free(&h);
        if (k == 0) {
            fprintf(stderr, "describe %s on the cut-off node: %s after %llu ms: %s\n", wf,
                    weft_error_name(rc), (unsigned long long)took_ms, err.message);
        }
        assert_int_equal(rc, -WEFT_E_UNAVAILABLE);
        assert_true(took_ms <= PT_FAST_ANSWER_MS_MAX);
        assert_non_null(strstr(err.message, "cut off"));
        for (unsigned other = 1; other <= PT_NODES; other++) {
            if (other != id) assert_non_null(strstr(err.message, hc_address(&t->c, other)));
        }
    }
    weft_client_close(c);
}

/* A workflow-task poll sent to node `id` alone, right after its restart into the partition:
 * answered UNAVAILABLE "cut off" within PT_CUT_OFF_SEEN_MS_MAX of `up_ms`. Before the fix the
 * cut-off node held it for its whole wait and answered it empty. */
static void pt_check_poll(pt *t, unsigned id, uint64_t up_ms) {
    weft_client *c = NULL;
    /* Not hc_node_client: its topology call would wait for the peers this node cannot reach. */
    assert_int_equal(weftd_client_at(hc_address(&t->c, id), "partition-poller", &c), 0);
    weft_poll_req q = {.task_queue = WEFT_STR_LIT("q-partition-poll"),
                       .poll_timeout_ms = PT_POLL_WAIT_MS};
    weft_poll_wft_resp task;
    weft_response h = {0};
    weft_err err;
    weft_err_clear(&err);
    uint64_t t0 = weft_mono_ms();
    int rc = hc_call_seed(c, WEFT_MSG_POLL_WORKFLOW_TASK, &q, &task, &h, &err);
    uint64_t now = weft_mono_ms();
    weft_response_free(&h);
    /* Answered after a while: it was parked until the node knew; at once: refused on entry. */
    fprintf(stderr, "a poll on the cut-off node, sent %llu ms after its restart: %s after %llu ms: %s\n",
            (unsigned long long)(t0 - up_ms), weft_error_name(rc), (unsigned long long)(now - t0),
            err.message);
    assert_int_equal(rc, -WEFT_E_UNAVAILABLE);
    assert_non_null(strstr(err.message, "cut off"));
    assert_true(now - up_ms <= PT_CUT_OFF_SEEN_MS_MAX);
    weft_client_close(c);
}

/* Starts through a client that knows only node `id` at first, with the CLI's retries. */
static void pt_check_starts(pt *t, unsigned id) {
    weft_client_opts o = {.client_name = "partition-cli", .retries_max = PT_CLI_RETRIES};
    weft_client *c = NULL;
    weft_err err;
    assert_int_equal(weft_client_open(hc_address(&t->c, id), &o, &c, &err), 0);
    for (unsigned k = 0; k < PT_STARTS; k++) {
        char wf[32];
        snprintf(wf, sizeof wf, "partition-%u", k);
        weft_start_req s = {.workflow_id = weft_str_c(wf),
                            .workflow_type = WEFT_STR_LIT("t"),
                            .task_queue = WEFT_STR_LIT("q-partition")};
        weft_start_resp r;
        weft_response h = {0};
        weft_err_clear(&err);
        uint64_t t0 = weft_mono_ms();
        int rc = weft_client_start(c, &s, &r, &h, &err);
        uint64_t took_ms = weft_mono_ms() - t0;
        weft_response_free(&h);
        fprintf(stderr, "start %s through the cut-off node: %s after %llu ms%s%s\n", wf,
                weft_error_name(rc), (unsigned long long)took_ms, rc != 0 ? ": " : "",
                rc != 0 ? err.message : "");
        assert_int_equal(rc, 0);
        assert_true(took_ms <= PT_START_MS_MAX);
    }
    weft_client_close(c);
}

static void test_cluster_partition(void **state) {
    pt *t = *state;
    pt_rules_build(&t->c, PT_ISOLATED);
    assert_int_equal(pt_cut_off(t, PT_ISOLATED), 0);
    pt_worker_start(t);
    fprintf(stderr, "an SDK run before the partition took %llu ms\n",
            (unsigned long long)pt_sdk_run(t, "sdk-before"));
    hc_kill9(&t->c, PT_ISOLATED);
    pt_rules_add();
    assert_int_equal(weftd_spawn(&t->c.node[PT_ISOLATED - 1]), 0);
    uint64_t up_ms = weft_mono_ms();
    /* First thing, before it can know it is cut off: this poll is likely to be parked. */
    pt_check_poll(t, PT_ISOLATED, up_ms);
    assert_int_equal(hc_wait_answers(&t->c, PT_ISOLATED, HC_READY_TIMEOUT_MS), 0);
    uint64_t seen_ms = pt_wait_cut_off(t, PT_ISOLATED, 1, up_ms, PT_CUT_OFF_SEEN_MS_MAX);
    fprintf(stderr, "node %u says it is cut off %llu ms after its restart\n", PT_ISOLATED,
            (unsigned long long)seen_ms);
    for (unsigned id = 1; id <= PT_NODES; id++) {
        if (id != PT_ISOLATED) assert_int_equal(pt_cut_off(t, id), 0);
    }
    pt_check_fast_answers(t, PT_ISOLATED);
    pt_check_starts(t, PT_ISOLATED);
    for (unsigned k = 0; k < PT_SDK_RUNS; k++) {
        char id[32];
        snprintf(id, sizeof id, "sdk-during-%u", k);
        uint64_t took_ms = pt_sdk_run(t, id);
        fprintf(stderr, "SDK run %s during the partition: %llu ms\n", id,
                (unsigned long long)took_ms);
        assert_true(took_ms <= PT_SDK_RUN_MS_MAX);
    }
    pt_rules_remove();
    uint64_t healed_ms = weft_mono_ms();
    pt_wait_cut_off(t, PT_ISOLATED, 0, healed_ms, HC_READY_TIMEOUT_MS);
    assert_int_equal(hc_wait_ready(&t->c, HC_READY_TIMEOUT_MS), 0);
    fprintf(stderr, "healed: node %u back with its peers after %llu ms\n", PT_ISOLATED,
            (unsigned long long)(weft_mono_ms() - healed_ms));
    assert_int_equal(sdk_runner_stop(&t->runner), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_partition, pt_setup, pt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
