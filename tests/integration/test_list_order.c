/* test_list_order.c: ListWorkflows against a real weftd of several shards lists runs newest
 * first across shards, with stable paging (issue 10, item 5). Runs with distinct start times
 * spread over the shards are listed with a small page size: every page is newest first, the
 * pages together are exactly every run in start-time order, the start-time range filters, and
 * runs started between two page requests neither appear in the later pages nor shift them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "helper_weftd.h"
#include "proto/partition.h"

#define LO_SHARDS 4u
#define LO_TYPE "lo-type"
#define LO_QUEUE "q-lo"
/* Runs listed, and runs started while a client pages (after them). */
#define LO_RUNS 13u
#define LO_LATE_RUNS 3u
#define LO_ALL_RUNS (LO_RUNS + LO_LATE_RUNS)
/* Small enough for several pages, and not a divisor of LO_RUNS (a short last page). */
#define LO_PAGE_SIZE 4u
/* Pages a listing may take before the test calls it a loop. */
#define LO_PAGES_MAX 100u
/* How long the test waits for the wall clock to pass a run's start time. */
#define LO_CLOCK_WAIT_MS 5000u

typedef struct lo {
    weftd w;     /* the server */
    bool passed; /* teardown prints stderr otherwise */
    weft_client *c;
    char ids[LO_ALL_RUNS][32];
    uint64_t start_ms[LO_ALL_RUNS]; /* as DescribeWorkflow reports it */
} lo;

static const char *const lo_flags[] = {"--shards", "4", NULL};

static int lo_setup(void **state) {
    static lo t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, lo_flags) != 0) return -1;
    if (weftd_client(&t.w, "list-order", &t.c) != 0) return -1;
    *state = &t;
    return 0;
}

static int lo_teardown(void **state) {
    lo *t = *state;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

static uint64_t lo_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Starts run i and records its start time; then waits until the wall clock (the server's: the
 * same host) has passed it, so that the next run starts strictly later. */
static void lo_start(lo *t, unsigned i) {
    snprintf(t->ids[i], sizeof t->ids[i], "lo-%02u", i);
    weft_start_req s = {.workflow_id = weft_str_c(t->ids[i]),
                        .workflow_type = WEFT_STR_LIT(LO_TYPE),
                        .task_queue = WEFT_STR_LIT(LO_QUEUE)};
    weft_start_resp sr;
    weft_response h = {0};
    weft_err err;
    if (weft_client_start(t->c, &s, &sr, &h, &err) != 0) fail_msg("start: %s", err.message);
    weft_response_free(&h);
    weft_describe_req dq = {.workflow_id = weft_str_c(t->ids[i])};
    weft_describe_resp d;
    if (weft_client_describe(t->c, &dq, &d, &h, &err) != 0) {
        fail_msg("describe: %s", err.message);
    }
    t->start_ms[i] = d.info.start_time_ms;
    weft_response_free(&h);
    assert_true(i == 0 || t->start_ms[i] > t->start_ms[i - 1]);
    uint64_t deadline = lo_wall_ms() + LO_CLOCK_WAIT_MS;
    while (lo_wall_ms() <= t->start_ms[i]) assert_true(lo_wall_ms() < deadline);
}

/* The run index of a listed execution. */
static unsigned lo_index(const lo *t, const weft_execution_info *e) {
    for (unsigned i = 0; i < LO_ALL_RUNS; i++) {
        if (t->ids[i][0] != 0 && weft_str_eq_c(e->workflow_id, t->ids[i])) return i;
    }
    fail_msg("listed an unknown run %.*s", (int)e->workflow_id.len, e->workflow_id.ptr);
    return 0;
}

/* A listing in progress: the runs of the pages read so far and the token for the next. */
typedef struct lo_pager {
    weft_list_req q;
    unsigned got[LO_ALL_RUNS * 2];
    unsigned count, pages;
    uint8_t token[256];
    uint32_t token_len;
    bool done;
} lo_pager;

/* Reads the next page: it must be newest first, at most the page size, and full unless last. */
static void lo_page(lo *t, lo_pager *p) {
    assert_false(p->done);
    weft_list_req q = p->q;
    q.page_size = LO_PAGE_SIZE;
    q.next_page_token = (weft_bytes){.ptr = p->token, .len = p->token_len};
    weft_list_resp r;
    weft_response h = {0};
    weft_err err;
    if (weft_client_list(t->c, &q, &r, &h, &err) != 0) {
        fail_msg("list page %u: %s", p->pages, err.message);
    }
    p->pages++;
    assert_true(p->pages < LO_PAGES_MAX);
    assert_true(r.executions_count <= LO_PAGE_SIZE);
    for (uint32_t k = 0; k < r.executions_count; k++) {
        if (k > 0 && r.executions[k].start_time_ms >= r.executions[k - 1].start_time_ms) {
            fail_msg("page %u is not newest first: %llu then %llu", p->pages,
                     (unsigned long long)r.executions[k - 1].start_time_ms,
                     (unsigned long long)r.executions[k].start_time_ms);
        }
        assert_true(p->count < sizeof p->got / sizeof p->got[0]);
        p->got[p->count++] = lo_index(t, &r.executions[k]);
    }
    p->token_len = r.next_page_token.len;
    assert_true(p->token_len <= sizeof p->token);
    if (p->token_len > 0) memcpy(p->token, r.next_page_token.ptr, p->token_len);
    p->done = p->token_len == 0;
    if (!p->done) assert_int_equal(r.executions_count, LO_PAGE_SIZE);
    weft_response_free(&h);
}

/* Asserts the pages read were exactly runs hi, hi-1, ..., lo (newest first). */
static void lo_expect(const lo_pager *p, unsigned hi, unsigned lo_i, const char *what) {
    unsigned want = hi - lo_i + 1;
    for (unsigned k = 0; k < p->count && k < want; k++) {
        if (p->got[k] != hi - k) {
            fail_msg("%s: item %u is lo-%02u, want lo-%02u", what, k, p->got[k], hi - k);
        }
    }
    if (p->count != want) fail_msg("%s: %u runs listed, want %u", what, p->count, want);
}

static void test_newest_first_stable_pages(void **state) {
    lo *t = *state;
    /* The runs cover at least three of the four shards, so the order is across shards. */
    bool on_shard[LO_SHARDS] = {false};
    unsigned shards_used = 0;
    for (unsigned i = 0; i < LO_RUNS; i++) {
        lo_start(t, i);
        uint32_t s = weft_shard_for_hash(
            weft_partition_hash(WEFT_STR_LIT("default"), weft_str_c(t->ids[i])), LO_SHARDS);
        if (!on_shard[s]) shards_used++;
        on_shard[s] = true;
    }
    assert_true(shards_used >= 3);

    /* By type (the type index) and unfiltered (every run): newest first across the shards. */
    lo_pager by_type = {.q = {.workflow_type = WEFT_STR_LIT(LO_TYPE)}};
    while (!by_type.done) lo_page(t, &by_type);
    lo_expect(&by_type, LO_RUNS - 1, 0, "by type");
    assert_int_equal(by_type.pages, (LO_RUNS + LO_PAGE_SIZE - 1) / LO_PAGE_SIZE);
    lo_pager all = {0};
    while (!all.done) lo_page(t, &all);
    lo_expect(&all, LO_RUNS - 1, 0, "unfiltered");
    lo_pager running = {.q = {.status = WEFT_STATUS_RUNNING}};
    while (!running.done) lo_page(t, &running);
    lo_expect(&running, LO_RUNS - 1, 0, "running");

    /* The start-time range [run 3, run 9] holds exactly runs 9..3, newest first. */
    lo_pager range = {.q = {.workflow_type = WEFT_STR_LIT(LO_TYPE),
                            .start_time_min_ms = t->start_ms[3],
                            .start_time_max_ms = t->start_ms[9]}};
    while (!range.done) lo_page(t, &range);
    lo_expect(&range, 9, 3, "range");
    lo_pager since = {.q = {.start_time_min_ms = t->start_ms[LO_RUNS - 2]}};
    while (!since.done) lo_page(t, &since);
    lo_expect(&since, LO_RUNS - 1, LO_RUNS - 2, "since");

    /* Runs started between two page requests: the later pages are those a client would have
     * read without them, and none of the new runs shows up in them (they are newer than the
     * cursor); a fresh listing shows them first. */
    lo_pager stable = {.q = {.workflow_type = WEFT_STR_LIT(LO_TYPE)}};
    lo_page(t, &stable);
    for (unsigned i = LO_RUNS; i < LO_ALL_RUNS; i++) lo_start(t, i);
    while (!stable.done) lo_page(t, &stable);
    lo_expect(&stable, LO_RUNS - 1, 0, "paging while runs start");
    lo_pager fresh = {.q = {.workflow_type = WEFT_STR_LIT(LO_TYPE)}};
    while (!fresh.done) lo_page(t, &fresh);
    lo_expect(&fresh, LO_ALL_RUNS - 1, 0, "after the late runs");

    /* Count is unchanged: every run, whatever the order. */
    weft_list_req cq = {.workflow_type = WEFT_STR_LIT(LO_TYPE)};
    uint64_t count = 0;
    weft_err err;
    assert_int_equal(weft_client_count(t->c, &cq, &count, &err), 0);
    assert_int_equal(count, LO_ALL_RUNS);

    /* A token this cluster never issued is refused, naming the field. */
    const uint8_t bad[] = {0x93, 0x01, 0x09, 0x01}; /* shard 9 of 4 */
    weft_list_req bq = {.next_page_token = {.ptr = bad, .len = sizeof bad}};
    weft_list_resp r;
    weft_response h = {0};
    assert_int_equal(weft_client_list(t->c, &bq, &r, &h, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "next_page_token");
    weft_response_free(&h);

    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_newest_first_stable_pages, lo_setup, lo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
