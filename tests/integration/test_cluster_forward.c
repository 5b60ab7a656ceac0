/* test_cluster_forward.c: any node accepts any request (issue 4, routing). Every request here
 * is sent to exactly one node with hc_call_seed: no routing and no following of NOT_LEADER, so
 * what succeeds succeeded because that node forwarded it to the shard's leader. The one retry
 * allowed is of UNAVAILABLE, to the same node and with the same request id, as every client
 * does: on a busy machine a shard may hold an election at any moment (fw_call).
 *
 * Three nodes, eight shards, R = 3:
 *   - starts, signals, describes and results for runs on shards led by another node;
 *   - a workflow task polled from its leader and completed through another node, while a
 *     GetResult long-poll forwarded through a third node waits for it;
 *   - list (small pages, so page tokens cross shards led by different nodes) and count through
 *     every node see every run exactly once, linearizable and stale;
 *   - ClusterStatus through any one node shows every shard's leader and replica lags, and which
 *     node is down;
 *   - kill -9 of a leader: through a survivor, the shard's runs are reachable again once
 *     re-elected, and list and count still cover the cluster.
 * Four nodes, four shards, R = 2: every node lacks some shards and still answers for them.
 * Four nodes, four shards, R = 3: libweft sends shard 0's calls to its leader, whichever node
 * it met first and whichever node's Hello it read last.
 * A forwarding connection reset under a call (an iptables REJECT on loopback; needs root): the
 * call goes again on a new connection and succeeds, once.
 * A hung leader (SIGSTOP): a request forwarded to it is answered UNAVAILABLE once
 * forward-timeout-ms has passed, and ClusterStatus answers without it, showing it down; a start
 * whose answer was lost that way, re-sent with the same request id once it runs again
 * (SIGCONT), gives exactly one run (G4). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_cluster.h"
#include "helper_worker.h"
#include "proto/partition.h"

#define FW_QUEUE "q-forward"
/* Runs started per test. */
#define FW_RUNS 24u
/* List page size: smaller than a shard's share, so pages end inside and between shards. */
#define FW_PAGE_SIZE 5u
/* How long a shard may take to be served again after its leader was killed. */
#define FW_REELECT_TIMEOUT_MS 20000u
/* Pause between attempts while a shard re-elects. */
#define FW_RETRY_PAUSE_MS 100u

/* Forward deadline of the hung-leader test: far shorter than its election timeout, so that its
 * forwarded calls end long before the followers replace the hung leader (libraft's shortest
 * election wait is half the flag: FW_HUNG_ELECTION_TIMEOUT_MS / 2). */
#define FW_FORWARD_TIMEOUT_MS 1000
#define FW_HUNG_ELECTION_TIMEOUT_MS 16000
#define FW_STR_(x) #x
#define FW_STR(x) FW_STR_(x)
/* Slack on top of it: the deadline sweep's period and a loaded machine. */
#define FW_FORWARD_SLACK_MS 3000u

/* The other tests keep the default forward-timeout-ms: a forwarded write on a loaded machine
 * (ASan, a parallel suite) may well take longer than the hung-leader test's short deadline. */
static const char *const fw_flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                       "100", NULL};
static const char *const fw_hung_flags[] = {"--election-timeout-ms",
                                            FW_STR(FW_HUNG_ELECTION_TIMEOUT_MS),
                                            "--heartbeat-timeout-ms",
                                            "100",
                                            "--forward-timeout-ms",
                                            FW_STR(FW_FORWARD_TIMEOUT_MS),
                                            NULL};

typedef struct fw {
    hc_cluster c;
    bool passed;
    weft_client *seed[HC_NODES_MAX]; /* one client per node, used only through hc_call_seed */
    char ids[FW_RUNS][32];           /* workflow ids */
    char run_ids[FW_RUNS][64];       /* their runs */
} fw;

static fw fx;

static int fw_start_cluster(fw *t, unsigned nodes, uint32_t shards, unsigned rf,
                            const char *const *flags) {
    memset(t, 0, sizeof *t);
    if (hc_start(&t->c, nodes, shards, rf, flags) != 0) return -1;
    for (unsigned id = 1; id <= nodes; id++) {
        if (hc_node_client(&t->c, id, "fw-seed", &t->seed[id - 1]) != 0) return -1;
    }
    return 0;
}

static int fw_teardown(void **state) {
    (void)state;
    fw *t = &fx;
    if (!t->passed) hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    for (unsigned k = 0; k < HC_NODES_MAX; k++)
        weft_client_close(t->seed[k]);
    hc_destroy(&t->c);
    return 0;
}

/* One request to node `via` alone. UNAVAILABLE (an election under way, or an outcome lost with
 * it) is retried there with the same request, as clients do, for up to FW_REELECT_TIMEOUT_MS;
 * any other error, NOT_LEADER above all, is returned at once. */
static int fw_call(fw *t, unsigned via, uint32_t msg_type, const void *req, void *resp,
                   weft_response *holder, weft_err *err) {
    uint64_t deadline = weft_mono_ms() + FW_REELECT_TIMEOUT_MS;
    for (;;) {
        int rc = hc_call_seed(t->seed[via - 1], msg_type, req, resp, holder, err);
        if (rc != -WEFT_E_UNAVAILABLE || weft_mono_ms() > deadline) return rc;
        fprintf(stderr, "retrying through node %u: %s\n", via, err->message);
        weft_response_free(holder);
        *holder = (weft_response){0};
        weftd_sleep_ms(FW_RETRY_PAUSE_MS);
    }
}

static uint32_t fw_shard_of(const fw *t, const char *id) {
    return weft_shard_for_hash(weft_partition_hash(WEFT_STR_LIT("default"), weft_str_c(id)),
                               t->c.shards);
}

/* A node other than `leader` (and other than `also_not`, when it can be avoided), rotating
 * with `i` so that every node gets a share. */
static unsigned fw_other_node(const fw *t, uint64_t leader, uint64_t also_not, unsigned i) {
    for (unsigned k = 0; k < t->c.nodes; k++) {
        unsigned id = (i + k) % t->c.nodes + 1;
        if (id != leader && id != also_not && hc_alive((hc_cluster *)&t->c, id)) return id;
    }
    for (unsigned k = 0; k < t->c.nodes; k++) {
        unsigned id = (i + k) % t->c.nodes + 1;
        if (id != leader && hc_alive((hc_cluster *)&t->c, id)) return id;
    }
    return 0;
}

/* Starts run i through a node that does not lead its shard. */
static void fw_start_run(fw *t, unsigned i) {
    snprintf(t->ids[i], sizeof t->ids[i], "fw-%u", i);
    uint32_t shard = fw_shard_of(t, t->ids[i]);
    uint64_t leader = hc_leader(&t->c, shard);
    assert_true(leader != 0);
    unsigned via = fw_other_node(t, leader, 0, i);
    assert_true(via != 0);
    weft_start_req s = {.workflow_id = weft_str_c(t->ids[i]),
                        .workflow_type = WEFT_STR_LIT("forwarded"),
                        .task_queue = WEFT_STR_LIT(FW_QUEUE),
                        .request_id = weft_str_c(t->ids[i])};
    weft_start_resp r;
    weft_response h = {0};
    weft_err err;
    int rc = fw_call(t, via, WEFT_MSG_START_WORKFLOW, &s, &r, &h, &err);
    if (rc != 0) {
        fail_msg("start %s (shard %u, leader %llu) through node %u: %s %s", t->ids[i], shard,
                 (unsigned long long)leader, via, weft_error_name(rc), err.message);
    }
    weft_str_copy(t->run_ids[i], sizeof t->run_ids[i], r.run_id);
    /* The reply came from the node it was sent to, which forwarded it (weft_response_node). */
    assert_int_equal(weft_response_node(&h), via);
    weft_response_free(&h);
    assert_int_equal(weft_response_node(&h), 0);
}

/* Describes run i through node `via`; returns the status. */
static uint32_t fw_describe(fw *t, unsigned i, unsigned via, uint32_t consistency) {
    weft_describe_req q = {.workflow_id = weft_str_c(t->ids[i]), .consistency = consistency};
    weft_describe_resp d;
    weft_response h = {0};
    weft_err err;
    int rc = fw_call(t, via, WEFT_MSG_DESCRIBE_WORKFLOW, &q, &d, &h, &err);
    if (rc != 0) {
        fail_msg("describe %s through node %u: %s %s", t->ids[i], via, weft_error_name(rc),
                 err.message);
    }
    assert_true(weft_str_eq_c(d.info.run_id, t->run_ids[i]));
    uint32_t status = d.info.status;
    weft_response_free(&h);
    return status;
}

/* Lists every run of type "forwarded" through node `via`, page by page, and checks each of
 * the `expected` first runs appears exactly once, newest first. */
static void fw_check_list(fw *t, unsigned via, unsigned expected, uint32_t consistency) {
    unsigned seen[FW_RUNS] = {0};
    unsigned pages = 0, total = 0;
    uint64_t newest = UINT64_MAX; /* start time of the last run listed */
    uint8_t token[1024];
    uint32_t token_len = 0;
    for (;;) {
        weft_list_req q = {.workflow_type = WEFT_STR_LIT("forwarded"),
                           .page_size = FW_PAGE_SIZE,
                           .next_page_token = {.ptr = token, .len = token_len},
                           .consistency = consistency};
        weft_list_resp r;
        weft_response h = {0};
        weft_err err;
        int rc = fw_call(t, via, WEFT_MSG_LIST_WORKFLOWS, &q, &r, &h, &err);
        if (rc != 0) {
            fail_msg("list page %u through node %u: %s %s", pages, via, weft_error_name(rc),
                     err.message);
        }
        pages++;
        assert_true(r.executions_count <= FW_PAGE_SIZE);
        for (uint32_t k = 0; k < r.executions_count; k++) {
            /* Newest first across the shards, those read here and those read by their leader. */
            if (r.executions[k].start_time_ms > newest) {
                fail_msg("node %u listed a run started at %llu after one started at %llu", via,
                         (unsigned long long)r.executions[k].start_time_ms,
                         (unsigned long long)newest);
            }
            newest = r.executions[k].start_time_ms;
            unsigned i = 0;
            assert_int_equal(sscanf(r.executions[k].workflow_id.ptr, "fw-%u", &i), 1);
            assert_true(i < expected);
            seen[i]++;
            total++;
        }
        token_len = r.next_page_token.len;
        assert_true(token_len <= sizeof token);
        if (token_len > 0) memcpy(token, r.next_page_token.ptr, token_len);
        weft_response_free(&h);
        if (token_len == 0) break;
        assert_true(pages < 100);
    }
    for (unsigned i = 0; i < expected; i++) {
        if (seen[i] != 1) fail_msg("node %u listed %s %u times", via, t->ids[i], seen[i]);
    }
    assert_int_equal(total, expected);

    weft_list_req cq = {.workflow_type = WEFT_STR_LIT("forwarded"), .consistency = consistency};
    weft_count_resp cr = {0};
    weft_response h = {0};
    weft_err err;
    int rc = fw_call(t, via, WEFT_MSG_COUNT_WORKFLOWS, &cq, &cr, &h, &err);
    if (rc != 0) fail_msg("count through node %u: %s %s", via, weft_error_name(rc), err.message);
    weft_response_free(&h);
    assert_int_equal(cr.count, expected);
    fprintf(stderr, "node %u lists %u runs in %u pages and counts %llu (%s)\n", via, total, pages,
            (unsigned long long)cr.count,
            consistency == WEFT_CONSISTENCY_STALE ? "stale" : "linearizable");
}

/* ClusterStatus through node `via` alone covers the cluster: every node's state (`down` is the
 * killed one, 0 for none), and every shard's row from its ready leader, with every replica's
 * lag known. NULL when it does, else what differs (in `why`). */
static const char *fw_status_differs(fw *t, unsigned via, unsigned down, char *why, size_t cap) {
    weft_cluster_status_req q = {0};
    weft_cluster_status_resp s;
    weft_response h = {0};
    weft_err err;
    int rc = fw_call(t, via, WEFT_MSG_CLUSTER_STATUS, &q, &s, &h, &err);
    if (rc != 0) fail_msg("status through node %u: %s %s", via, weft_error_name(rc), err.message);
    assert_int_equal(s.nodes_count, t->c.nodes);
    assert_int_equal(s.shards_count, t->c.shards);
    why[0] = '\0';
    for (uint32_t k = 0; k < s.nodes_count && why[0] == '\0'; k++) {
        bool want_up = s.nodes[k].node_id != down;
        if (s.nodes[k].up != want_up)
            snprintf(why, cap, "node %u shows node %llu %s", via,
                     (unsigned long long)s.nodes[k].node_id, s.nodes[k].up ? "up" : "down");
    }
    for (uint32_t k = 0; k < s.shards_count && why[0] == '\0'; k++) {
        const weft_shard_info *si = &s.shards[k];
        if (!si->ready || si->leader_node != hc_leader(&t->c, si->shard_id)) {
            snprintf(why, cap, "node %u shows shard %u led by node %llu, ready %d", via,
                     si->shard_id, (unsigned long long)si->leader_node, si->ready);
            continue;
        }
        assert_int_equal(si->replicas_count, t->c.replication_factor);
        for (uint32_t j = 0; j < si->replicas_count && why[0] == '\0'; j++) {
            if (!si->replicas[j].lag_known)
                snprintf(why, cap, "node %u shows shard %u's replica on node %llu with no lag", via,
                         si->shard_id, (unsigned long long)si->replicas[j].node_id);
        }
    }
    weft_response_free(&h);
    return why[0] == '\0' ? NULL : why;
}

/* Waits until fw_status_differs finds nothing: on a busy machine a shard may be between
 * leaders, or a new leader may not yet know its replicas' lags, for a moment. */
static void fw_check_status(fw *t, unsigned via, unsigned down) {
    char why[256];
    uint64_t deadline = weft_mono_ms() + FW_REELECT_TIMEOUT_MS;
    while (fw_status_differs(t, via, down, why, sizeof why) != NULL) {
        if (weft_mono_ms() > deadline) fail_msg("%s", why);
        weftd_sleep_ms(FW_RETRY_PAUSE_MS);
    }
}

/* A GetResult long-poll sent through one node, on its own thread. */
typedef struct fw_waiter {
    weft_client *c;
    const char *workflow_id;
    int rc;
    uint32_t status;
    weft_err err;
} fw_waiter;

static void *fw_wait_main(void *arg) {
    fw_waiter *w = arg;
    weft_result_req q = {
        .workflow_id = weft_str_c(w->workflow_id), .wait = true, .wait_timeout_ms = 20000};
    weft_result_resp r;
    weft_response h = {0};
    w->rc = hc_call_seed(w->c, WEFT_MSG_GET_RESULT, &q, &r, &h, &w->err);
    if (w->rc == 0) w->status = r.status;
    weft_response_free(&h);
    return NULL;
}

static void test_forward_three_nodes(void **state) {
    (void)state;
    fw *t = &fx;
    assert_int_equal(fw_start_cluster(t, 3, 8, 3, fw_flags), 0);
    for (unsigned i = 0; i < FW_RUNS; i++)
        fw_start_run(t, i);
    for (unsigned id = 1; id <= 3; id++)
        fw_check_status(t, id, 0);
    /* Describe and signal each run through a node that does not lead it. */
    for (unsigned i = 0; i < FW_RUNS; i++) {
        uint64_t leader = hc_leader(&t->c, fw_shard_of(t, t->ids[i]));
        unsigned via = fw_other_node(t, leader, 0, i + 1);
        assert_int_equal(fw_describe(t, i, via, 0), WEFT_STATUS_RUNNING);
        char request_id[48];
        snprintf(request_id, sizeof request_id, "sig-%s", t->ids[i]);
        weft_signal_req sq = {.workflow_id = weft_str_c(t->ids[i]),
                              .signal_name = WEFT_STR_LIT("sig"),
                              .request_id = weft_str_c(request_id)};
        weft_empty_resp er;
        weft_response h = {0};
        weft_err err;
        int rc = fw_call(t, via, WEFT_MSG_SIGNAL_WORKFLOW, &sq, &er, &h, &err);
        if (rc != 0) fail_msg("signal %s: %s %s", t->ids[i], weft_error_name(rc), err.message);
        weft_response_free(&h);
    }
    for (unsigned id = 1; id <= 3; id++) {
        fw_check_list(t, id, FW_RUNS, WEFT_CONSISTENCY_LINEARIZABLE);
        fw_check_list(t, id, FW_RUNS, WEFT_CONSISTENCY_STALE);
    }

    /* Run 0: a result long-poll through one non-leader waits while its task is polled from the
     * leader and completed through the other non-leader. */
    uint64_t leader = hc_leader(&t->c, fw_shard_of(t, t->ids[0]));
    unsigned waiter_via = fw_other_node(t, leader, 0, 0);
    unsigned completer_via = fw_other_node(t, leader, waiter_via, 0);
    assert_true(waiter_via != completer_via);
    fw_waiter w = {.c = t->seed[waiter_via - 1], .workflow_id = t->ids[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fw_wait_main, &w), 0);
    weft_poll_req pq = {.task_queue = WEFT_STR_LIT(FW_QUEUE), .poll_timeout_ms = 2000};
    bool completed = false;
    for (unsigned attempt = 0; attempt < 200 && !completed; attempt++) {
        weft_poll_wft_resp task;
        weft_response h = {0};
        weft_err err;
        int rc =
            weft_client_poll_workflow_task_on(t->seed[leader - 1], leader, &pq, &task, &h, &err);
        if (rc != 0)
            fail_msg("poll on node %llu: %s %s", (unsigned long long)leader, weft_error_name(rc),
                     err.message);
        bool mine = task.task_token.len > 0 && weft_str_eq_c(task.workflow_id, t->ids[0]);
        if (mine) {
            weft_command done = wk_cmd_complete("ok");
            weft_complete_wft_req cq = {
                .task_token = task.task_token, .commands = &done, .commands_count = 1};
            weft_empty_resp er;
            weft_response h2 = {0};
            rc = fw_call(t, completer_via, WEFT_MSG_COMPLETE_WORKFLOW_TASK, &cq, &er, &h2, &err);
            if (rc != 0)
                fail_msg("complete through node %u: %s %s", completer_via, weft_error_name(rc),
                         err.message);
            weft_response_free(&h2);
            completed = true;
        }
        weft_response_free(&h);
    }
    assert_true(completed);
    pthread_join(th, NULL);
    if (w.rc != 0) fail_msg("result through node %u: %s", waiter_via, w.err.message);
    assert_int_equal(w.status, WEFT_STATUS_COMPLETED);
    fprintf(stderr,
            "run 0 on node %llu: result long-poll through node %u, completion through node %u\n",
            (unsigned long long)leader, waiter_via, completer_via);

    /* Kill the leader of run 1's shard; through the survivors its runs come back. */
    uint32_t shard = fw_shard_of(t, t->ids[1]);
    uint64_t victim = hc_leader(&t->c, shard);
    hc_kill9(&t->c, (unsigned)victim);
    uint64_t t0 = weft_mono_ms();
    unsigned via = fw_other_node(t, victim, 0, 0);
    for (;;) {
        weft_describe_req q = {.workflow_id = weft_str_c(t->ids[1])};
        weft_describe_resp d;
        weft_response h = {0};
        weft_err err;
        int rc = hc_call_seed(t->seed[via - 1], WEFT_MSG_DESCRIBE_WORKFLOW, &q, &d, &h, &err);
        weft_response_free(&h);
        if (rc == 0) break;
        if (rc != -WEFT_E_UNAVAILABLE && rc != -WEFT_E_NOT_LEADER)
            fail_msg("describe after the kill: %s %s", weft_error_name(rc), err.message);
        if (weft_mono_ms() - t0 > FW_REELECT_TIMEOUT_MS)
            fail_msg("shard %u not served through node %u %u ms after its leader died: %s", shard,
                     via, FW_REELECT_TIMEOUT_MS, err.message);
        weftd_sleep_ms(FW_RETRY_PAUSE_MS);
    }
    fprintf(stderr, "shard %u served through node %u again %llu ms after node %llu was killed\n",
            shard, via, (unsigned long long)(weft_mono_ms() - t0), (unsigned long long)victim);
    assert_int_equal(hc_wait_ready(&t->c, HC_READY_TIMEOUT_MS), 0);
    for (unsigned id = 1; id <= 3; id++) {
        if (id == victim) continue;
        fw_check_list(t, id, FW_RUNS, WEFT_CONSISTENCY_LINEARIZABLE);
        fw_check_status(t, id, (unsigned)victim);
    }
    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

static void test_forward_partial_replicas(void **state) {
    (void)state;
    fw *t = &fx;
    assert_int_equal(fw_start_cluster(t, 4, 4, 2, fw_flags), 0);
    for (unsigned i = 0; i < FW_RUNS; i++)
        fw_start_run(t, i);
    /* Every node describes every run: half of them live on shards it has no replica of. */
    for (unsigned id = 1; id <= 4; id++) {
        for (unsigned i = 0; i < FW_RUNS; i++)
            assert_int_equal(fw_describe(t, i, id, 0), WEFT_STATUS_RUNNING);
        fw_check_list(t, id, FW_RUNS, WEFT_CONSISTENCY_LINEARIZABLE);
        fw_check_list(t, id, FW_RUNS, WEFT_CONSISTENCY_STALE);
    }
    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

static void test_forward_hung_leader(void **state) {
    (void)state;
    fw *t = &fx;
    assert_int_equal(fw_start_cluster(t, 3, 8, 3, fw_hung_flags), 0);
    fw_start_run(t, 0);
    uint32_t shard = fw_shard_of(t, t->ids[0]);
    uint64_t leader = hc_leader(&t->c, shard);
    unsigned via = fw_other_node(t, leader, 0, 0);
    /* One forwarded read first, so that the connection to the leader is open when it hangs. */
    assert_int_equal(fw_describe(t, 0, via, 0), WEFT_STATUS_RUNNING);
    pid_t pid = t->c.node[leader - 1].proc.pid;
    assert_int_equal(kill(pid, SIGSTOP), 0);

    uint64_t t0 = weft_mono_ms();
    weft_describe_req q = {.workflow_id = weft_str_c(t->ids[0])};
    weft_describe_resp d;
    weft_response h = {0};
    weft_err err;
    int rc = hc_call_seed(t->seed[via - 1], WEFT_MSG_DESCRIBE_WORKFLOW, &q, &d, &h, &err);
    uint64_t took = weft_mono_ms() - t0;
    weft_response_free(&h);
    fprintf(stderr, "describe through node %u of a run led by hung node %llu: %s after %llu ms\n",
            via, (unsigned long long)leader, weft_error_name(rc), (unsigned long long)took);
    if (rc != -WEFT_E_UNAVAILABLE || strstr(err.message, "forward-timeout-ms") == NULL)
        fail_msg("describe: %s %s", weft_error_name(rc), err.message);
    assert_true(took >= FW_FORWARD_TIMEOUT_MS - 50u);
    assert_true(took <= FW_FORWARD_TIMEOUT_MS + FW_FORWARD_SLACK_MS);

    t0 = weft_mono_ms();
    weft_cluster_status_req sq = {0};
    weft_cluster_status_resp s;
    rc = hc_call_seed(t->seed[via - 1], WEFT_MSG_CLUSTER_STATUS, &sq, &s, &h, &err);
    took = weft_mono_ms() - t0;
    if (rc != 0) fail_msg("status: %s %s", weft_error_name(rc), err.message);
    for (uint32_t k = 0; k < s.nodes_count; k++) {
        assert_int_equal(s.nodes[k].up, s.nodes[k].node_id != leader);
    }
    weft_response_free(&h);
    fprintf(stderr, "status through node %u with node %llu hung: %llu ms, shows it down\n", via,
            (unsigned long long)leader, (unsigned long long)took);
    assert_true(took <= FW_FORWARD_TIMEOUT_MS + FW_FORWARD_SLACK_MS);

    /* G4 across a lost answer: a start forwarded to the hung leader is answered UNAVAILABLE
     * (outcome unknown) while its frame waits in the leader's socket, to be read once the
     * leader runs again. Re-sent with the same request id it must give one run, whichever
     * attempt applied. */
    char lost_id[32];
    for (unsigned i = 0;; i++) {
        assert_true(i < 10000);
        snprintf(lost_id, sizeof lost_id, "fw-lost-%u", i);
        if (fw_shard_of(t, lost_id) == shard) break;
    }
    weft_start_req ls = {.workflow_id = weft_str_c(lost_id),
                         .workflow_type = WEFT_STR_LIT("lost-answer"),
                         .task_queue = WEFT_STR_LIT(FW_QUEUE),
                         .request_id = WEFT_STR_LIT("fw-lost-request")};
    weft_start_resp lr;
    rc = hc_call_seed(t->seed[via - 1], WEFT_MSG_START_WORKFLOW, &ls, &lr, &h, &err);
    weft_response_free(&h);
    if (rc != -WEFT_E_UNAVAILABLE)
        fail_msg("start to the hung leader: %s %s", weft_error_name(rc), err.message);

    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(hc_wait_ready(&t->c, HC_READY_TIMEOUT_MS), 0);
    uint64_t deadline = weft_mono_ms() + FW_REELECT_TIMEOUT_MS;
    for (;;) {
        rc = hc_call_seed(t->seed[via - 1], WEFT_MSG_DESCRIBE_WORKFLOW, &q, &d, &h, &err);
        weft_response_free(&h);
        if (rc == 0) break;
        if (weft_mono_ms() > deadline) fail_msg("describe after SIGCONT: %s", err.message);
        weftd_sleep_ms(FW_RETRY_PAUSE_MS);
    }
    char lost_run[64] = "";
    bool started = false;
    for (;;) {
        rc = hc_call_seed(t->seed[via - 1], WEFT_MSG_START_WORKFLOW, &ls, &lr, &h, &err);
        if (rc == 0) {
            weft_str_copy(lost_run, sizeof lost_run, lr.run_id);
            started = lr.started;
        }
        weft_response_free(&h);
        if (rc == 0) break;
        if (weft_mono_ms() > deadline) fail_msg("start re-sent: %s", err.message);
        weftd_sleep_ms(FW_RETRY_PAUSE_MS);
    }
    /* Whichever attempt applied first created the run, and G4 makes the other answer as it
     * did: started. */
    fprintf(stderr, "the re-sent start answered started=%d\n", started);
    assert_true(started);
    weft_describe_req lq = {.workflow_id = weft_str_c(lost_id)};
    assert_int_equal(hc_call_seed(t->seed[via - 1], WEFT_MSG_DESCRIBE_WORKFLOW, &lq, &d, &h, &err),
                     0);
    assert_true(weft_str_eq_c(d.info.run_id, lost_run));
    weft_response_free(&h);
    weft_list_req cq = {.workflow_type = WEFT_STR_LIT("lost-answer")};
    weft_count_resp cr = {0};
    assert_int_equal(hc_call_seed(t->seed[via - 1], WEFT_MSG_COUNT_WORKFLOWS, &cq, &cr, &h, &err),
                     0);
    weft_response_free(&h);
    assert_int_equal(cr.count, 1);
    fw_check_status(t, via, 0);
    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

/* The node that holds no replica of shard 0 in a 4-node, R = 3 cluster (each node lacks one
 * of the four shards). */
static unsigned fw_outsider_of_shard0(fw *t) {
    unsigned ids[HC_NODES_MAX], count = 0;
    assert_int_equal(hc_shard_replicas(&t->c, 1, 0, ids, HC_NODES_MAX, &count), 0);
    bool holds[HC_NODES_MAX + 1] = {false};
    for (unsigned j = 0; j < count; j++) holds[ids[j]] = true;
    for (unsigned id = 1; id <= t->c.nodes; id++)
        if (!holds[id]) return id;
    fail_msg("every node holds shard 0");
    return 0;
}

/* "A,B,C,D" with node `first` first, then the others in id order. */
static void fw_addresses_from(fw *t, unsigned first, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s", hc_address(&t->c, first));
    for (unsigned id = 1; id <= t->c.nodes; id++)
        if (id != first) n += snprintf(out + n, cap - (size_t)n, ",%s", hc_address(&t->c, id));
    assert_true(n > 0 && (size_t)n < cap);
}

/* Starts a run of shard 0 through `c` (libweft routing) and returns the node the client sent
 * it to (weft_response_node). */
static uint64_t fw_start_shard0_via(fw *t, weft_client *c, const char *id) {
    assert_int_equal(fw_shard_of(t, id), 0);
    weft_start_req q = {.workflow_id = weft_str_c(id),
                        .workflow_type = WEFT_STR_LIT("route"),
                        .task_queue = WEFT_STR_LIT(FW_QUEUE),
                        .request_id = weft_str_c(id)};
    weft_start_resp r;
    weft_response h = {0};
    weft_err err;
    int rc = weft_client_call(c, WEFT_MSG_START_WORKFLOW, &q, &r, &h, &err);
    if (rc != 0) fail_msg("start %s: %s %s", id, weft_error_name(rc), err.message);
    uint64_t node = weft_response_node(&h);
    weft_response_free(&h);
    return node;
}

/* A fresh id of shard 0. */
static void fw_shard0_id(fw *t, const char *prefix, char *out, size_t cap) {
    for (unsigned i = 0;; i++) {
        assert_true(i < 10000);
        snprintf(out, cap, "%s-%u", prefix, i);
        if (fw_shard_of(t, out) == 0) return;
    }
}

/* libweft sends a call to its shard's leader itself, not through whichever node it met first,
 * also for a shard that node holds no replica of (that node's Hello names no leader for it).
 * A call that goes through another node is forwarded: one hop longer, and failed whenever that
 * node is slow or paused although the shard is healthy (the 5-node chaos run's
 * untouched-shard-failed). Two ways the client lost the leader before:
 *   - opened through the outsider, its Hello left shard 0 unknown;
 *   - a later connection's Hello from the outsider erased the leader it had learnt. */
static void test_client_routes_to_leaders_it_met_late(void **state) {
    (void)state;
    fw *t = &fx;
    assert_int_equal(fw_start_cluster(t, 4, 4, 3, fw_flags), 0);
    unsigned outsider = fw_outsider_of_shard0(t);
    char addresses[HC_ADDRESSES_BYTES];
    char id[32];
    for (unsigned attempt = 0;; attempt++) {
        assert_true(attempt < 3); /* an election moved shard 0 during each try: a broken box */
        uint64_t leader = hc_leader(&t->c, 0);
        assert_true(leader != 0 && leader != outsider);
        unsigned other = fw_other_node(t, leader, outsider, 0);
        assert_true(other != outsider && other != leader);

        fw_addresses_from(t, outsider, addresses, sizeof addresses);
        weft_client *via_outsider = NULL;
        assert_int_equal(weft_client_open(addresses, NULL, &via_outsider, NULL), 0);
        fw_shard0_id(t, "route-a", id, sizeof id);
        uint64_t sent_a = fw_start_shard0_via(t, via_outsider, id);
        weft_client_close(via_outsider);

        fw_addresses_from(t, other, addresses, sizeof addresses);
        weft_client *via_other = NULL;
        assert_int_equal(weft_client_open(addresses, NULL, &via_other, NULL), 0);
        /* A poll pinned to the outsider opens a connection there: its Hello. */
        weft_poll_req poll = {.task_queue = WEFT_STR_LIT("fw-route-none"),
                              .poll_timeout_ms = 50};
        weft_poll_wft_resp pr;
        weft_response h = {0};
        weft_err err;
        assert_int_equal(weft_client_poll_workflow_task_on(via_other, outsider, &poll, &pr, &h, &err),
                         0);
        weft_response_free(&h);
        fw_shard0_id(t, "route-b", id, sizeof id);
        uint64_t sent_b = fw_start_shard0_via(t, via_other, id);
        weft_client_close(via_other);

        fprintf(stderr, "shard 0 led by node %llu; outsider node %u; first seed outsider: sent to "
                        "%llu; after the outsider's Hello: sent to %llu\n",
                (unsigned long long)leader, outsider, (unsigned long long)sent_a,
                (unsigned long long)sent_b);
        if (hc_leader(&t->c, 0) != leader) continue;
        assert_int_equal(sent_a, leader);
        assert_int_equal(sent_b, leader);
        break;
    }
    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

/* ---- a forwarding connection found broken by the next call ---- */

/* The reset rule: on loopback, a packet from the forwarding connection that `via` had open to
 * the leader (its source port, found with ss) that carries FW_RESET_ID is refused with a TCP
 * reset delivered to the sender. So only that connection breaks, as one a peer dropped while
 * idle does when the next call is written on it; a new connection has another port and
 * passes. */
#define FW_RESET_ID "fw-reset-target"

static char fw_reset_sport[16];
static bool fw_reset_installed;

/* iptables -w OP OUTPUT <the reset rule>. Returns the exit status, or -1. */
static int fw_reset_rule(const char *op) {
    char *argv[] = {"iptables", "-w", (char *)op, "OUTPUT", "-o", "lo", "-p", "tcp", "--sport",
                    fw_reset_sport, "-m", "string", "--algo", "bm", "--string", FW_RESET_ID,
                    "-j", "REJECT", "--reject-with", "tcp-reset", NULL};
    return proc_run_quiet(argv);
}

/* The local port of process `pid`'s established TCP connection to loopback port `dport`, from
 * `ss -Htnp`. Fails the test when there is not exactly one. */
static void fw_connection_sport(pid_t pid, const char *dport, char *out, size_t cap) {
    char cmd[128], needle[32], peer[32];
    snprintf(cmd, sizeof cmd, "ss -Htnp state established");
    snprintf(needle, sizeof needle, "pid=%d,", (int)pid);
    snprintf(peer, sizeof peer, ":%s ", dport);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[1024];
    unsigned found = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        /* "0 0 127.0.0.1:LOCAL 127.0.0.1:PEER users:((...,pid=N,fd=M))" */
        if (strstr(line, needle) == NULL || strstr(line, peer) == NULL) continue;
        char local[64] = "", remote[64] = "";
        if (sscanf(line, "%*s %*s %63s %63s", local, remote) != 2) continue;
        const char *rport = strrchr(remote, ':');
        if (rport == NULL || strcmp(rport + 1, dport) != 0) continue;
        snprintf(out, cap, "%s", strrchr(local, ':') + 1);
        found++;
    }
    pclose(f);
    if (found != 1) fail_msg("%u connections of pid %d to port %s (ss -Htnp)", found, (int)pid, dport);
}

static int fw_reset_teardown(void **state) {
    if (fw_reset_installed) {
        while (fw_reset_rule("-D") == 0) {
        }
        fw_reset_installed = false;
    }
    return fw_teardown(state);
}

/* A node forwards over one connection per peer, which may have broken while idle (the peer
 * dropped it, or a restart behind a partition left it half-open). The next call finds it
 * broken (a reset); that call never reached the peer's weftd, and failing it would fail a
 * client's request on a healthy shard (the 5-node chaos run's untouched-shard-failed). The
 * forwarder writes an idempotent call once more on a new connection: the start succeeds, one
 * run exists, and the node says so. */
static void test_forward_resends_on_a_reset_connection(void **state) {
    (void)state;
    fw *t = &fx;
    assert_int_equal(fw_start_cluster(t, 3, 8, 3, fw_flags), 0);
    uint32_t shard = fw_shard_of(t, FW_RESET_ID);
    uint64_t leader = hc_wait_leader(&t->c, shard, HC_READY_TIMEOUT_MS);
    assert_true(leader != 0);
    unsigned via = fw_other_node(t, leader, 0, 0);
    /* A describe through via opens its forwarding connection to the leader. */
    weft_describe_req d = {.workflow_id = WEFT_STR_LIT("fw-reset-none")};
    weft_describe_resp dr;
    weft_response dh = {0};
    weft_err derr;
    assert_int_equal(fw_call(t, via, WEFT_MSG_DESCRIBE_WORKFLOW, &d, &dr, &dh, &derr),
                     -WEFT_E_NOT_FOUND);
    weft_response_free(&dh);
    fw_connection_sport(t->c.node[via - 1].proc.pid,
                        strrchr(hc_address(&t->c, (unsigned)leader), ':') + 1, fw_reset_sport,
                        sizeof fw_reset_sport);

    fw_reset_installed = true;
    int rc = fw_reset_rule("-I");
    if (rc != 0) fail_msg("iptables -I OUTPUT ... -j REJECT failed (%d): this test needs root, "
                          "iptables and its connbytes and string matches", rc);
    weft_start_req q = {.workflow_id = WEFT_STR_LIT(FW_RESET_ID),
                        .workflow_type = WEFT_STR_LIT("reset"),
                        .task_queue = WEFT_STR_LIT(FW_QUEUE),
                        .request_id = WEFT_STR_LIT("fw-reset-request")};
    weft_start_resp r;
    weft_response h = {0};
    weft_err err;
    rc = hc_call_seed(t->seed[via - 1], WEFT_MSG_START_WORKFLOW, &q, &r, &h, &err);
    weft_response_free(&h);
    while (fw_reset_rule("-D") == 0) {
    }
    fw_reset_installed = false;
    fprintf(stderr, "start through node %u, forwarded to node %llu over a connection reset "
                    "under it: %s %s\n",
            via, (unsigned long long)leader, weft_error_name(rc), rc != 0 ? err.message : "");
    assert_int_equal(rc, 0);
    assert_true(weftd_stderr_contains(&t->c.node[via - 1], "calls go again on a new connection"));
    weft_list_req cq = {.workflow_type = WEFT_STR_LIT("reset")};
    weft_count_resp cr = {0};
    assert_int_equal(fw_call(t, via, WEFT_MSG_COUNT_WORKFLOWS, &cq, &cr, &h, &err), 0);
    weft_response_free(&h);
    assert_int_equal(cr.count, 1);
    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_forward_hung_leader, fw_teardown),
        cmocka_unit_test_teardown(test_forward_three_nodes, fw_teardown),
        cmocka_unit_test_teardown(test_forward_partial_replicas, fw_teardown),
        cmocka_unit_test_teardown(test_client_routes_to_leaders_it_met_late, fw_teardown),
        cmocka_unit_test_teardown(test_forward_resends_on_a_reset_connection, fw_reset_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
