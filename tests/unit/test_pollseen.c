/* test_pollseen.c: the bounded table of recent pollers behind DescribeTaskQueue (node/pollseen.h):
 * a poller is listed per (queue, kind, identity) with its last poll time; it drops out after
 * the window; a repeat poll updates its entry without growing the table; and a full table
 * evicts the oldest poller, so no number of invented identities grows it past its bound; and a
 * long identity is kept cut at a character boundary.
 * weftd is an executable, not a library, so node/pollseen.c is compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/pollseen.c"

#define T0_MS 1700000000000ull /* an arbitrary wall clock */
#define KIND_WF 1u
#define KIND_ACT 2u

/* What weft_pollseen_each reported: the first 8 entries, and how many there were. */
typedef struct seen_list {
    unsigned count;       /* entries reported */
    char identity[8][64]; /* their identities */
    uint8_t kind[8];      /* their kinds */
    uint64_t last[8];     /* their last poll times */
} seen_list;

static void collect(void *data, const weft_poller_seen *p) {
    seen_list *l = data;
    if (l->count < 8) {
        snprintf(l->identity[l->count], sizeof l->identity[0], "%s", p->identity);
        l->kind[l->count] = p->kind;
        l->last[l->count] = p->last_poll_ms;
    }
    l->count++;
}

static seen_list list_of(weft_pollseen *t, const char *queue, uint64_t now) {
    seen_list l;
    memset(&l, 0, sizeof l);
    weft_pollseen_each(t, queue, now, collect, &l);
    return l;
}

static void test_note_and_window(void **state) {
    (void)state;
    static weft_pollseen t;
    memset(&t, 0, sizeof t);
    weft_pollseen_note(&t, "q", KIND_WF, "w1", T0_MS);
    weft_pollseen_note(&t, "q", KIND_ACT, "w1", T0_MS + 10);
    weft_pollseen_note(&t, "other", KIND_WF, "w2", T0_MS);
    weft_pollseen_note(&t, "q", KIND_WF, "w1", T0_MS + 500); /* repeat: updates */
    assert_int_equal(t.used, 3);
    seen_list l = list_of(&t, "q", T0_MS + 1000);
    assert_int_equal(l.count, 2);
    for (unsigned i = 0; i < 2; i++) {
        assert_string_equal(l.identity[i], "w1");
        assert_int_equal(l.last[i], l.kind[i] == KIND_WF ? T0_MS + 500 : T0_MS + 10);
    }
    /* A clock stepping back does not move a last poll back. */
    weft_pollseen_note(&t, "q", KIND_WF, "w1", T0_MS);
    l = list_of(&t, "q", T0_MS + 1000);
    assert_int_equal(l.count, 2);
    /* Exactly the window old: still listed; a millisecond more: gone, and freed. */
    l = list_of(&t, "q", T0_MS + 500 + WEFTD_POLLERS_WINDOW_MS);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.kind[0], KIND_WF);
    assert_int_equal(t.used, 1); /* the activity poller and "other" were dropped */
    l = list_of(&t, "q", T0_MS + 501 + WEFTD_POLLERS_WINDOW_MS);
    assert_int_equal(l.count, 0);
    assert_int_equal(t.used, 0);
    weft_pollseen_free(&t);
}

static void test_bounded_evicts_oldest(void **state) {
    (void)state;
    static weft_pollseen t;
    memset(&t, 0, sizeof t);
    char id[32];
    /* Twice the bound of invented identities, each newer than the last. */
    for (unsigned i = 0; i < 2 * WEFTD_POLLERS_MAX; i++) {
        snprintf(id, sizeof id, "h%u", i);
        weft_pollseen_note(&t, "q", KIND_WF, id, T0_MS + i);
        assert_true(t.used <= WEFTD_POLLERS_MAX);
    }
    assert_int_equal(t.used, WEFTD_POLLERS_MAX);
    seen_list l = list_of(&t, "q", T0_MS + 2 * WEFTD_POLLERS_MAX);
    assert_int_equal(l.count, WEFTD_POLLERS_MAX);
    /* The newest half stayed; the oldest went first. */
    uint64_t oldest = UINT64_MAX;
    for (uint32_t i = 0; i < WEFTD_POLLERS_MAX; i++) {
        if (t.slots[i].queue != NULL) oldest = WEFT_MIN(oldest, t.slots[i].last_poll_ms);
    }
    assert_int_equal(oldest, T0_MS + WEFTD_POLLERS_MAX);
    /* A real worker polling again keeps its entry while newcomers evict the idle ones. */
    weft_pollseen_note(&t, "q", KIND_WF, "h1500", T0_MS + 5000);
    snprintf(id, sizeof id, "new");
    weft_pollseen_note(&t, "q", KIND_WF, id, T0_MS + 5001);
    bool kept = false, evicted = true;
    for (uint32_t i = 0; i < WEFTD_POLLERS_MAX; i++) {
        if (t.slots[i].queue == NULL) continue;
        kept = kept || strcmp(t.slots[i].identity, "h1500") == 0;
        evicted = evicted && strcmp(t.slots[i].identity, "h1024") != 0;
    }
    assert_true(kept);
    assert_true(evicted);
    assert_int_equal(t.used, WEFTD_POLLERS_MAX);
    weft_pollseen_free(&t);
    assert_int_equal(t.used, 0);
}

static void test_long_identity_is_cut_on_a_character(void **state) {
    (void)state;
    static weft_pollseen t;
    memset(&t, 0, sizeof t);
    /* 1 + 2*300 bytes: "x" then 300 two-byte characters, so byte 255 is mid-character. */
    char a[1 + 600 + 1], b[1 + 600 + 2];
    a[0] = 'x';
    for (unsigned i = 0; i < 300; i++) {
        a[1 + 2 * i] = (char)0xC3;
        a[2 + 2 * i] = (char)0xA9; /* é */
    }
    a[601] = '\0';
    memcpy(b, a, 601);
    b[601] = 'z'; /* differs only past the kept prefix */
    b[602] = '\0';
    weft_pollseen_note(&t, "q", KIND_WF, a, T0_MS);
    weft_pollseen_note(&t, "q", KIND_WF, b, T0_MS + 1);
    assert_int_equal(t.used, 1); /* one poller, as far as the table can tell */
    const char *kept = NULL;
    for (uint32_t i = 0; i < WEFTD_POLLERS_MAX; i++) {
        if (t.slots[i].queue != NULL) kept = t.slots[i].identity;
    }
    assert_non_null(kept);
    size_t len = strlen(kept);
    assert_true(len < WEFTD_POLLER_IDENTITY_BYTES_MAX);
    assert_int_equal(len % 2, 1); /* "x" and whole two-byte characters */
    assert_int_equal(len, 255u);  /* the longest such prefix */
    assert_memory_equal(kept, a, len);
    weft_pollseen_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_note_and_window),
        cmocka_unit_test(test_bounded_evicts_oldest),
        cmocka_unit_test(test_long_identity_is_cut_on_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
