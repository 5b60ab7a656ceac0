/* test_clock_skew.c: a node whose clock is off does not lead, and says why (issue 9, violation
 * 4). Three nodes, four shards, replication factor 3. Node 3 is restarted under libfaketime,
 * its wall clock 30 s fast (its monotonic clock, which raft's timers use, untouched):
 *   - a 20 s timer started on a shard whose preferred leader is node 3, while node 3 was down,
 *     does not fire early in real time, as the test's own clock measures it. Before the fix
 *     node 3 took its preferred shard back (the preferred-leader rebalance) and, its clock
 *     30 s ahead, fired the timer at once;
 *   - node 3 leads no shard once its clock was checked, and ClusterStatus from node 3 says why
 *     on its row, naming the offset measured (about -30 s to each peer) and the flag;
 *   - restarted without libfaketime, node 3 leads its preferred shard again, without waiting
 *     out the rebalance backoff its refusals caused (WEFTD_REBALANCE_RETRY_MS, 60 s).
 * And a clock that jumps: node 3 leads its preferred shard with an honest clock, a 20 s timer
 * starts there, then node 3's clock steps 30 s forward (libfaketime reading its offset from a
 * file). The timer still does not fire early, node 3 hands the shard off and says why. Without
 * the jump check the probes noticed the step only about a second later, and the timer gate,
 * which looks at the clock every second, could fire first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper_cluster.h"
#include "helper_worker.h"
#include "proto/partition.h"

#define CS_NODES 3u
#define CS_SHARDS 4u
#define CS_QUEUE "q-clock"
/* Debian's libfaketime (packages faketime, libfaketime). */
#define CS_FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
/* Node 3's skew: far past weftd's default --max-clock-offset-ms (500). */
#define CS_SKEW "+30s"
#define CS_SKEW_MS 30000
/* What the test accepts as "about the skew" in the offsets node 3 reports. */
#define CS_SKEW_TOLERANCE_MS 2000
/* The timer: shorter than the skew, so a node 30 s fast finds it overdue the moment it leads. */
#define CS_TIMER_MS 20000u
/* The timer's due time is taken at apply, a little before the completion's answer reaches the
 * test: it may be seen fire this much before CS_TIMER_MS after that answer. */
#define CS_TIMER_SLACK_MS 1000u
/* Bound on seeing the timer fire: its duration plus a generous margin for a busy machine. */
#define CS_TIMER_WAIT_MS (CS_TIMER_MS + 30000u)
/* Bound on node 3 being judged and handing off (probes every second, judged every 500 ms). */
#define CS_CHECK_TIMEOUT_MS 30000u
/* Bound on node 3 leading its preferred shard again after a clean restart: the leader's
 * rebalance runs every 5 s (WEFTD_REBALANCE_INTERVAL_MS_DEFAULT); far below the 60 s
 * backoff. */
#define CS_LEADS_AGAIN_TIMEOUT_MS 40000u
#define CS_POLL_MS 100u

/* A shard whose preferred leader (the first replica in placement order) is node `id`. */
static uint32_t cs_preferred_shard(hc_cluster *c, uint64_t id) {
    weft_cluster_status_resp st;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(hc_status(c, 1, &st, &h, &err), 0);
    uint32_t found = UINT32_MAX;
    for (uint32_t i = 0; i < st.shards_count && found == UINT32_MAX; i++) {
        if (st.shards[i].replicas_count > 0 && st.shards[i].replicas[0].node_id == id)
            found = st.shards[i].shard_id;
    }
    weft_response_free(&h);
    if (found == UINT32_MAX) fail_msg("no shard prefers node %llu", (unsigned long long)id);
    return found;
}

/* A workflow id of the default namespace that lives on `shard`. */
static void cs_workflow_on(uint32_t shard, char *out, size_t cap) {
    for (unsigned k = 0; k < 100000u; k++) {
        snprintf(out, cap, "clock-%u", k);
        uint64_t hash = weft_partition_hash(weft_str_c(WEFT_DEFAULT_NAMESPACE), weft_str_c(out));
        if (weft_shard_for_hash(hash, CS_SHARDS) == shard) return;
    }
    fail_msg("no workflow id maps to shard %u", shard);
}

/* Starts `wid` and completes its first workflow task with one timer of CS_TIMER_MS, through
 * the shard's leader, which must be node `leader_want` (0: any but node 3). Returns the test's
 * monotonic ms when the completion was acknowledged. */
static uint64_t cs_start_timer(hc_cluster *c, uint32_t shard, const char *wid,
                               uint64_t leader_want) {
    weft_client *cl = NULL;
    assert_int_equal(hc_client(c, "clock-starter", &cl), 0);
    weft_start_req s = {
        .workflow_id = weft_str_c(wid),
        .workflow_type = weft_str_c("clock"),
        .task_queue = weft_str_c(CS_QUEUE),
    };
    char run_id[64];
    wk_start_acked(cl, &s, run_id, sizeof run_id, NULL);
    weft_client_close(cl);
    uint64_t leader = hc_wait_leader(c, shard, HC_READY_TIMEOUT_MS);
    assert_true(leader != 0);
    assert_true(leader_want != 0 ? leader == leader_want : leader != 3);
    weft_client *worker = NULL;
    assert_int_equal(hc_node_client(c, (unsigned)leader, "clock-worker", &worker), 0);
    weft_poll_wft_resp t;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(wk_poll_wft(worker, CS_QUEUE, 10000, &t, &h, &err), 1);
    weft_command timer = wk_cmd_timer("t1", CS_TIMER_MS);
    assert_int_equal(wk_complete_wft(worker, &t, &timer, 1, &err), 0);
    uint64_t acked_ms = weft_mono_ms();
    weft_response_free(&h);
    weft_client_close(worker);
    return acked_ms;
}

/* Waits until the run's history holds TimerFired; returns the test's monotonic ms then. */
static uint64_t cs_wait_fired(hc_cluster *c, const char *wid, uint64_t since_ms) {
    weft_client *cl = NULL;
    assert_int_equal(hc_client(c, "clock-reader", &cl), 0);
    uint64_t deadline_ms = since_ms + CS_TIMER_WAIT_MS;
    for (;;) {
        wk_history hist = {0};
        weft_err err;
        bool fired = wk_history_get(cl, wid, NULL, &hist, &err) == 0 &&
                     wk_find(hist.events, hist.count, WEFT_EV_TIMER_FIRED, "t1") != NULL;
        uint64_t now_ms = weft_mono_ms();
        wk_history_free(&hist);
        if (fired) {
            weft_client_close(cl);
            return now_ms;
        }
        if (now_ms > deadline_ms) {
            hc_print_stderr(c, 40);
            fail_msg("timer t1 of %s never fired", wid);
        }
        proc_sleep_ms(CS_POLL_MS);
    }
}

/* Node `id`'s health as node `id` itself reports it, into out ("" when none). */
static bool cs_health(hc_cluster *c, unsigned id, char *out, size_t cap) {
    weft_cluster_status_resp st;
    weft_response h = {0};
    weft_err err;
    out[0] = '\0';
    if (hc_status(c, id, &st, &h, &err) != 0) return false;
    for (uint32_t i = 0; i < st.nodes_count; i++) {
        if (st.nodes[i].node_id != id) continue;
        snprintf(out, cap, "%.*s", (int)st.nodes[i].health.len, st.nodes[i].health.ptr);
    }
    weft_response_free(&h);
    return true;
}

/* True when no shard has node `id` as its ready leader. */
static bool cs_leads_none(hc_cluster *c, uint64_t id) {
    for (uint32_t s = 0; s < CS_SHARDS; s++) {
        if (hc_leader(c, s) == id) return false;
    }
    return true;
}

/* The offset to peer `peer` in a health text ("... node 1 -30001 ms ..."), in ms. */
static long long cs_offset_in(const char *health, unsigned peer) {
    char key[32];
    snprintf(key, sizeof key, "node %u ", peer);
    const char *p = strstr(health, key);
    if (p == NULL) fail_msg("health names no offset to node %u: %s", peer, health);
    return strtoll(p + strlen(key), NULL, 10);
}

/* Waits until node 3 is judged off, says so, and leads nothing. */
static void cs_wait_refusing(hc_cluster *c) {
    char health[2048] = "";
    uint64_t deadline_ms = weft_mono_ms() + CS_CHECK_TIMEOUT_MS;
    for (;;) {
        bool said = cs_health(c, 3, health, sizeof health) && strstr(health, "clock off") != NULL;
        if (said && cs_leads_none(c, 3)) break;
        if (weft_mono_ms() > deadline_ms) {
            hc_print_stderr(c, 40);
            fail_msg("node 3, its clock %s, still leads or does not say why; health: '%s'",
                     CS_SKEW, health);
        }
        proc_sleep_ms(CS_POLL_MS);
    }
    assert_non_null(strstr(health, "max-clock-offset-ms"));
    for (unsigned peer = 1; peer <= 2; peer++) {
        long long off = cs_offset_in(health, peer);
        if (off > -CS_SKEW_MS + CS_SKEW_TOLERANCE_MS || off < -CS_SKEW_MS - CS_SKEW_TOLERANCE_MS)
            fail_msg("offset to node %u is %lld ms, not about -%d ms: %s", peer, off, CS_SKEW_MS,
                     health);
    }
    assert_true(weftd_stderr_contains(&c->node[2], "clock off"));
}

/* ASAN_OPTIONS for a node under libfaketime: ASan wants to be the first library loaded, so
 * its link order check is relaxed (the test's own options kept). */
static const char *cs_asan_options(void) {
    static char asan[1024];
    const char *had = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             had != NULL ? had : "", had != NULL && had[0] != '\0' ? ":" : "");
    return asan;
}

/* libfaketime in node 3, its wall clock CS_SKEW (the monotonic clock, raft's, untouched). */
static void cs_fake_clock(weftd *w) {
    const char *const env[] = {"LD_PRELOAD=" CS_FAKETIME_LIB, "FAKETIME=" CS_SKEW,
                               "FAKETIME_DONT_FAKE_MONOTONIC=1", cs_asan_options(), NULL};
    weftd_set_env(w, env);
}

/* Writes `text` to `path` whole (a rename), so libfaketime never reads half of it. */
static void cs_write_file(const char *path, const char *text) {
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* libfaketime in node 3 with its offset read from the file `rc_path`, again every
 * CS_FAKETIME_CACHE_S seconds, so that the test can step node 3's clock while it runs. */
#define CS_FAKETIME_CACHE_S "1"
static void cs_steppable_clock(weftd *w, const char *rc_path) {
    static char file_var[PATH_MAX + 32];
    snprintf(file_var, sizeof file_var, "FAKETIME_TIMESTAMP_FILE=%s", rc_path);
    const char *const env[] = {"LD_PRELOAD=" CS_FAKETIME_LIB, file_var,
                               "FAKETIME_CACHE_DURATION=" CS_FAKETIME_CACHE_S,
                               "FAKETIME_DONT_FAKE_MONOTONIC=1", cs_asan_options(), NULL};
    weftd_set_env(w, env);
}

static void test_fast_clock_does_not_lead(void **state) {
    (void)state;
    if (access(CS_FAKETIME_LIB, R_OK) != 0)
        fail_msg("%s is missing: apt-get install faketime libfaketime (deploy/install-deps.sh)",
                 CS_FAKETIME_LIB);
    static hc_cluster c;
    assert_int_equal(hc_start(&c, CS_NODES, CS_SHARDS, CS_NODES, NULL), 0);
    uint32_t shard = cs_preferred_shard(&c, 3);
    char wid[64];
    cs_workflow_on(shard, wid, sizeof wid);

    /* Node 3 down: the timer starts under another leader, by honest clocks. */
    assert_int_equal(hc_stop(&c, 3), 0);
    uint64_t acked_ms = cs_start_timer(&c, shard, wid, 0);
    cs_fake_clock(&c.node[2]);
    assert_int_equal(hc_restart(&c, 3), 0);
    uint64_t fired_ms = cs_wait_fired(&c, wid, acked_ms);
    uint64_t took_ms = fired_ms - acked_ms;
    fprintf(stderr, "clock skew: the %u ms timer on shard %u was seen fired after %llu ms\n",
            CS_TIMER_MS, shard, (unsigned long long)took_ms);
    if (took_ms + CS_TIMER_SLACK_MS < CS_TIMER_MS) {
        hc_print_stderr(&c, 40);
        fail_msg("a %u ms timer fired after %llu ms of real time: node 3's fast clock fired it",
                 CS_TIMER_MS, (unsigned long long)took_ms);
    }
    cs_wait_refusing(&c);

    /* The clock fixed (a restart without libfaketime): node 3 leads its shard again. */
    assert_int_equal(hc_stop(&c, 3), 0);
    weftd_set_env(&c.node[2], NULL);
    assert_int_equal(hc_restart(&c, 3), 0);
    uint64_t deadline_ms = weft_mono_ms() + CS_LEADS_AGAIN_TIMEOUT_MS;
    char health[2048] = "";
    while (hc_leader(&c, shard) != 3 || !cs_health(&c, 3, health, sizeof health) ||
           health[0] != '\0') {
        if (weft_mono_ms() > deadline_ms) {
            hc_print_stderr(&c, 40);
            fail_msg("node 3, its clock fixed, does not lead its preferred shard %u again; "
                     "health '%s'",
                     shard, health);
        }
        proc_sleep_ms(CS_POLL_MS);
    }
    assert_int_equal(hc_stop_all(&c), 0);
    hc_destroy(&c);
}

static void test_clock_step_stops_leading(void **state) {
    (void)state;
    static hc_cluster c;
    assert_int_equal(hc_start(&c, CS_NODES, CS_SHARDS, CS_NODES, NULL), 0);
    uint32_t shard = cs_preferred_shard(&c, 3);
    char wid[64];
    cs_workflow_on(shard, wid, sizeof wid);
    char rc_path[PATH_MAX];
    snprintf(rc_path, sizeof rc_path, "%s/faketime.rc", c.node[2].dir);
    cs_write_file(rc_path, "+0\n");
    assert_int_equal(hc_stop(&c, 3), 0);
    cs_steppable_clock(&c.node[2], rc_path);
    assert_int_equal(hc_restart(&c, 3), 0);
    /* Node 3, its clock honest so far, leads its preferred shard again. */
    uint64_t deadline_ms = weft_mono_ms() + CS_LEADS_AGAIN_TIMEOUT_MS;
    while (hc_leader(&c, shard) != 3) {
        if (weft_mono_ms() > deadline_ms) {
            hc_print_stderr(&c, 40);
            fail_msg("node 3 does not lead its preferred shard %u", shard);
        }
        proc_sleep_ms(CS_POLL_MS);
    }
    uint64_t acked_ms = cs_start_timer(&c, shard, wid, 3);
    cs_write_file(rc_path, CS_SKEW "\n"); /* the step, seen within CS_FAKETIME_CACHE_S */
    uint64_t took_ms = cs_wait_fired(&c, wid, acked_ms) - acked_ms;
    fprintf(stderr, "clock step: the %u ms timer on shard %u was seen fired after %llu ms\n",
            CS_TIMER_MS, shard, (unsigned long long)took_ms);
    if (took_ms + CS_TIMER_SLACK_MS < CS_TIMER_MS) {
        hc_print_stderr(&c, 40);
        fail_msg("a %u ms timer fired after %llu ms of real time: node 3's clock step fired it",
                 CS_TIMER_MS, (unsigned long long)took_ms);
    }
    cs_wait_refusing(&c);
    assert_true(weftd_stderr_contains(&c.node[2], "clock jumped"));
    assert_int_equal(hc_stop_all(&c), 0);
    hc_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_clock_does_not_lead),
        cmocka_unit_test(test_clock_step_stops_leading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
