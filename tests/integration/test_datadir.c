/* test_datadir.c: the data dir fixes the cluster identity (DESIGN section 5): a restart with a
 * different --shards is refused with a message that names the flag; SIGTERM exits 0 and a
 * restart with the right flags serves the earlier workflows. A single node's dir refuses to
 * join a cluster. A cluster node's dir (--peers) refuses another --replication-factor,
 * --shards, --peers, --node-id or no --peers at all, each with exit code 2 and a message naming
 * the flag, and weftd refuses a --listen that differs from its own --peers entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper_weftd.h"

/* How long a refused start may take to exit. */
#define DATADIR_REFUSE_TIMEOUT_MS 20000u
/* Workflows started before the restarts. */
#define DATADIR_WORKFLOWS 10u

typedef struct datadir {
    weftd w;     /* the server */
    bool passed; /* teardown prints stderr otherwise */
} datadir;

static const char *const flags_2[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};
static const char *const flags_3[] = {
    "--shards", "3", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int datadir_setup(void **state) {
    static datadir t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, flags_2) != 0) return -1;
    *state = &t;
    return 0;
}

static int datadir_teardown(void **state) {
    datadir *t = *state;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weftd_destroy(&t->w);
    return 0;
}

/* Starts DATADIR_WORKFLOWS runs and records their run ids. */
static void datadir_start_all(datadir *t, char run_ids[][128]) {
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&t->w, "datadir", &c), 0);
    for (unsigned i = 0; i < DATADIR_WORKFLOWS; i++) {
        char id[64];
        snprintf(id, sizeof id, "dd-%u", i);
        weft_start_req s = {.workflow_id = weft_str_c(id),
                            .workflow_type = WEFT_STR_LIT("t"),
                            .task_queue = WEFT_STR_LIT("q-dd"),
                            .input = {.ptr = (const uint8_t *)id, .len = (uint32_t)strlen(id)}};
        weft_response h = {0};
        weft_start_resp r;
        weft_err err;
        int rc = weft_client_start(c, &s, &r, &h, &err);
        if (rc != 0) fprintf(stderr, "start %s: %s %s\n", id, weft_error_name(rc), err.message);
        assert_int_equal(rc, 0);
        weft_str_copy(run_ids[i], 128, r.run_id);
        weft_response_free(&h);
    }
    weft_client_close(c);
}

/* Every earlier run is there, with its run id, type and input. */
static void datadir_check_all(datadir *t, char run_ids[][128]) {
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&t->w, "datadir-check", &c), 0);
    for (unsigned i = 0; i < DATADIR_WORKFLOWS; i++) {
        char id[64];
        snprintf(id, sizeof id, "dd-%u", i);
        weft_describe_req dq = {.workflow_id = weft_str_c(id)};
        weft_describe_resp d;
        weft_response h = {0};
        weft_err err;
        int rc = weft_client_describe(c, &dq, &d, &h, &err);
        if (rc != 0) fprintf(stderr, "describe %s: %s %s\n", id, weft_error_name(rc), err.message);
        assert_int_equal(rc, 0);
        assert_true(weft_str_eq_c(d.info.run_id, run_ids[i]));
        assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
        assert_true(weft_str_eq_c(d.info.workflow_type, "t"));
        weft_history_req hq = {.workflow_id = weft_str_c(id), .first_event_id = 1};
        weft_history_resp hr;
        assert_int_equal(weft_client_history(c, &hq, &hr, &h, &err), 0);
        assert_true(hr.events_count >= 1);
        assert_int_equal(hr.events[0].event_type, WEFT_EV_WORKFLOW_EXECUTION_STARTED);
        assert_int_equal(hr.events[0].input.len, strlen(id));
        assert_memory_equal(hr.events[0].input.ptr, id, strlen(id));
        weft_response_free(&h);
    }
    weft_client_close(c);
}

static void test_datadir_identity(void **state) {
    datadir *t = *state;
    static char run_ids[DATADIR_WORKFLOWS][128];
    datadir_start_all(t, run_ids);
    assert_int_equal(weftd_stop(&t->w), 0); /* SIGTERM is a clean stop */

    /* A different shard count must be refused, naming the flag to fix. */
    weftd_set_extra(&t->w, flags_3);
    assert_int_equal(weftd_spawn(&t->w), 0);
    int code = weftd_wait_exit(&t->w, DATADIR_REFUSE_TIMEOUT_MS);
    if (code <= 0) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    assert_true(code > 0 && code < 128); /* refused: an exit code, not a crash or a hang */
    assert_true(weftd_stderr_contains(&t->w, "--shards"));

    /* A single node's data dir cannot join a cluster, even one of itself. */
    char peers[256];
    snprintf(peers, sizeof peers, "1=%s/%s", t->w.listen, t->w.raft_listen);
    const char *const join[] = {"--shards",
                                "2",
                                "--election-timeout-ms",
                                "300",
                                "--heartbeat-timeout-ms",
                                "50",
                                "--peers",
                                peers,
                                "--node-id",
                                "1",
                                NULL};
    weftd_set_extra(&t->w, join);
    assert_int_equal(weftd_spawn(&t->w), 0);
    code = weftd_wait_exit(&t->w, DATADIR_REFUSE_TIMEOUT_MS);
    if (code != 2) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    assert_int_equal(code, 2);
    assert_true(weftd_stderr_contains(&t->w, "created for a single node (no --peers)"));

    /* The right flags serve the earlier workflows, before and after a second clean restart. */
    weftd_set_extra(&t->w, flags_2);
    assert_int_equal(weftd_restart(&t->w), 0);
    datadir_check_all(t, run_ids);
    assert_int_equal(weftd_stop(&t->w), 0);
    assert_int_equal(weftd_restart(&t->w), 0);
    datadir_check_all(t, run_ids);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

/* ---- a node of a three-node cluster whose peers never start ---- */

/* How long the lone cluster node may take to bring its groups up (it never gets a leader:
 * its peers do not run, so the helper's readiness wait does not apply). */
#define DATADIR_LISTEN_TIMEOUT_MS 30000u

/* Occurrences of `needle` in the captured stderr (every run appends to it). */
static unsigned datadir_stderr_count(const weftd *w, const char *needle) {
    FILE *f = fopen(w->stderr_path, "r");
    if (f == NULL) return 0;
    unsigned count = 0;
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL)
        count += strstr(line, needle) != NULL;
    fclose(f);
    return count;
}

/* Spawns with `extra` and waits for the listening line number `nth`, then stops (exit 0). */
static void datadir_run_and_stop(weftd *w, const char *const *extra, unsigned nth) {
    weftd_set_extra(w, extra);
    assert_int_equal(weftd_spawn(w), 0);
    uint64_t deadline = weft_mono_ms() + DATADIR_LISTEN_TIMEOUT_MS;
    while (datadir_stderr_count(w, "weftd listening on") < nth) {
        if (weft_mono_ms() > deadline || weftd_wait_exit(w, 0) >= 0) {
            weftd_print_stderr(w, WEFTD_STDERR_TAIL_LINES);
            fail_msg("weftd did not start listening");
        }
        weftd_sleep_ms(50);
    }
    assert_int_equal(weftd_stop(w), 0);
}

/* Spawns with `extra`; weftd must refuse to start (exit 2) with `needle` in its stderr. */
static void datadir_refused(weftd *w, const char *const *extra, const char *needle) {
    weftd_set_extra(w, extra);
    assert_int_equal(weftd_spawn(w), 0);
    int code = weftd_wait_exit(w, DATADIR_REFUSE_TIMEOUT_MS);
    if (code != 2 || !weftd_stderr_contains(w, needle)) {
        weftd_print_stderr(w, WEFTD_STDERR_TAIL_LINES);
        fail_msg("wanted exit 2 and \"%s\", got exit %d", needle, code);
    }
}

static void test_datadir_cluster_identity(void **state) {
    (void)state;
    static weftd w;
    assert_int_equal(weftd_prepare(&w, NULL, NULL, NULL), 0);
    char p2c[WEFTD_ADDR_BYTES], p2r[WEFTD_ADDR_BYTES], p3c[WEFTD_ADDR_BYTES], p3r[WEFTD_ADDR_BYTES],
        p3r_moved[WEFTD_ADDR_BYTES];
    assert_int_equal(weftd_free_addr(p2c, sizeof p2c), 0);
    assert_int_equal(weftd_free_addr(p2r, sizeof p2r), 0);
    assert_int_equal(weftd_free_addr(p3c, sizeof p3c), 0);
    assert_int_equal(weftd_free_addr(p3r, sizeof p3r), 0);
    assert_int_equal(weftd_free_addr(p3r_moved, sizeof p3r_moved), 0);
    char peers[512], peers_moved[512], peers_swapped[512], peers_other_listen[512];
    snprintf(peers, sizeof peers, "1=%s/%s,2=%s/%s,3=%s/%s", w.listen, w.raft_listen, p2c, p2r, p3c,
             p3r);
    /* Node 3's raft address moved: another cluster. */
    snprintf(peers_moved, sizeof peers_moved, "1=%s/%s,2=%s/%s,3=%s/%s", w.listen, w.raft_listen,
             p2c, p2r, p3c, p3r_moved);
    /* This process now claims to be node 2. */
    snprintf(peers_swapped, sizeof peers_swapped, "1=%s/%s,2=%s/%s,3=%s/%s", p2c, p2r, w.listen,
             w.raft_listen, p3c, p3r);
    /* This node's client address in the list differs from its --listen. */
    snprintf(peers_other_listen, sizeof peers_other_listen, "1=%s/%s,2=%s/%s,3=%s/%s", p3r_moved,
             w.raft_listen, p2c, p2r, p3c, p3r);
#define DATADIR_TIMING "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50"
    const char *const base[] = {DATADIR_TIMING, "--shards", "2", "--node-id", "1",
                                "--peers",      peers,      NULL};
    const char *const rf2[] = {
        DATADIR_TIMING,         "--shards", "2", "--node-id", "1", "--peers", peers,
        "--replication-factor", "2",        NULL};
    const char *const shards3[] = {DATADIR_TIMING, "--shards", "3", "--node-id", "1",
                                   "--peers",      peers,      NULL};
    const char *const moved[] = {DATADIR_TIMING, "--shards",  "2", "--node-id", "1",
                                 "--peers",      peers_moved, NULL};
    const char *const swapped[] = {DATADIR_TIMING, "--shards",    "2", "--node-id", "2",
                                   "--peers",      peers_swapped, NULL};
    const char *const other_listen[] = {DATADIR_TIMING, "--shards",         "2", "--node-id", "1",
                                        "--peers",      peers_other_listen, NULL};
    const char *const no_peers[] = {DATADIR_TIMING, "--shards", "2", NULL};
#undef DATADIR_TIMING

    /* First start creates the dir (R = min(3, 3) = 3); the node never gets a leader alone,
     * and its stop has nothing to hand off. */
    datadir_run_and_stop(&w, base, 1);
    assert_true(weftd_stderr_contains(&w, "cluster of 3 nodes, replication factor 3"));

    datadir_refused(&w, rf2, "start with --replication-factor 3");
    datadir_refused(&w, shards3, "start with --shards 2");
    datadir_refused(&w, moved, "start with the original --peers");
    datadir_refused(&w, swapped, "start with --node-id 1");
    datadir_refused(&w, no_peers, "start with the same --peers");
    /* Refused before the data dir is read: the flags contradict each other. */
    datadir_refused(&w, other_listen, "--listen");
    assert_true(weftd_stderr_contains(&w, "differs from node 1's client address"));

    /* The original settings still start, and the dir says who it belongs to. */
    datadir_run_and_stop(&w, base, 2);
    char meta_path[PATH_MAX + 16];
    snprintf(meta_path, sizeof meta_path, "%s/weft.meta", w.data_dir);
    FILE *f = fopen(meta_path, "r");
    assert_non_null(f);
    char meta[2048];
    size_t len = fread(meta, 1, sizeof meta - 1, f);
    fclose(f);
    meta[len] = '\0';
    assert_non_null(strstr(meta, "format_version = 2"));
    assert_non_null(strstr(meta, "replication_factor = 3"));
    char line[128];
    snprintf(line, sizeof line, "peer = 3=%s\n", p3r);
    assert_non_null(strstr(meta, line));
    weftd_destroy(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_datadir_identity, datadir_setup, datadir_teardown),
        cmocka_unit_test(test_datadir_cluster_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
