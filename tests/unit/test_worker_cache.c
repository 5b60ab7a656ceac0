/* test_worker_cache.c: the worker's sticky cache (client/sdk/cache.h): taking a key hands out the
 * cached run and holds the key, putting back makes it the most recent, capacity evicts the least
 * recently used idle run (never a held one) and counts it, a task waits for a held key, and
 * threads may share the cache. Also the arithmetic of the worker's activity pollers per node
 * (worker_internal.h): one node keeps the single-server pool, more nodes share the slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/sdk/cache.h"
#include "client/sdk/worker_internal.h"

/* Keys in the threaded test, and check-outs each thread does. */
#define CT_THREAD_KEYS 64u
#define CT_THREADS 4u
#define CT_ROUNDS 20000u

/* A cached item: it owns its key, like a run owns its run id. */
typedef struct ct_item {
    char key[32]; /* the item's key */
    int value;    /* payload for checks */
} ct_item;

static atomic_int ct_freed; /* items freed by the cache */

static void ct_free(void *item) {
    atomic_fetch_add(&ct_freed, 1);
    free(item);
}

static ct_item *ct_new(const char *key, int value) {
    ct_item *it = calloc(1, sizeof *it);
    assert_non_null(it);
    snprintf(it->key, sizeof it->key, "%s", key);
    it->value = value;
    return it;
}

/* Caches a new item under `key` the way the worker does: take the key, put the item. */
static uint32_t ct_put(wkr_cache *c, const char *key, int value) {
    void *old = NULL;
    uint64_t ticket = wkr_cache_take(c, weft_str_c(key), 0, &old);
    assert_true(ticket > 0);
    if (old != NULL) ct_free(old);
    return wkr_cache_put(c, weft_str_c(key), ticket, ct_new(key, value));
}

/* Takes `key`; returns the cached item (NULL if none) and the ticket. */
static ct_item *ct_take(wkr_cache *c, const char *key, uint64_t *ticket) {
    void *item = NULL;
    *ticket = wkr_cache_take(c, weft_str_c(key), 0, &item);
    return item;
}

static void ct_stats(wkr_cache *c, uint32_t *count, uint64_t *evictions) {
    wkr_cache_stats(c, count, evictions);
}

static void test_take_and_put(void **state) {
    (void)state;
    atomic_store(&ct_freed, 0);
    wkr_cache *c = NULL;
    assert_int_equal(wkr_cache_new(4, ct_free, &c), 0);
    uint64_t ticket;
    assert_null(ct_take(c, "absent", &ticket));
    assert_true(ticket > 0);
    wkr_cache_release(c, weft_str_c("absent"), ticket);
    assert_int_equal(ct_put(c, "run-a", 1), 0);
    ct_item *it = ct_take(c, "run-a", &ticket);
    assert_non_null(it);
    assert_int_equal(it->value, 1);
    /* Held: another task gets nothing after its wait (0 ms here). */
    uint64_t other;
    assert_null(ct_take(c, "run-a", &other));
    assert_int_equal(other, 0);
    uint32_t count;
    uint64_t evictions;
    ct_stats(c, &count, &evictions);
    assert_int_equal(count, 0);
    /* A put without a hold (ticket 0) frees the item instead of caching it. */
    assert_int_equal(wkr_cache_put(c, weft_str_c("run-a"), 0, ct_new("run-a", 9)), 0);
    assert_int_equal(atomic_load(&ct_freed), 1);
    assert_int_equal(wkr_cache_put(c, weft_str_c("run-a"), ticket, it), 0);
    ct_stats(c, &count, &evictions);
    assert_int_equal(count, 1);
    it = ct_take(c, "run-a", &ticket);
    assert_int_equal(it->value, 1);
    ct_free(it);
    wkr_cache_release(c, weft_str_c("run-a"), ticket);
    ct_stats(c, &count, &evictions);
    assert_int_equal(count, 0);
    wkr_cache_free(c);
    assert_int_equal(atomic_load(&ct_freed), 2);
}

static void test_lru_eviction(void **state) {
    (void)state;
    atomic_store(&ct_freed, 0);
    wkr_cache *c = NULL;
    assert_int_equal(wkr_cache_new(3, ct_free, &c), 0);
    assert_int_equal(ct_put(c, "a", 1), 0);
    assert_int_equal(ct_put(c, "b", 2), 0);
    assert_int_equal(ct_put(c, "c", 3), 0);
    /* Touch "a" (take and put back): "b" becomes the least recently used. */
    uint64_t ticket;
    ct_item *a = ct_take(c, "a", &ticket);
    assert_non_null(a);
    assert_int_equal(wkr_cache_put(c, weft_str_c("a"), ticket, a), 0);
    assert_int_equal(ct_put(c, "d", 4), 1);
    assert_null(ct_take(c, "b", &ticket));
    wkr_cache_release(c, weft_str_c("b"), ticket);
    uint32_t count;
    uint64_t evictions;
    ct_stats(c, &count, &evictions);
    assert_int_equal(count, 3);
    assert_int_equal(evictions, 1);
    assert_int_equal(atomic_load(&ct_freed), 1);
    /* A held entry is never evicted: hold "c" (the LRU), add two more; "a" and "d" go. */
    ct_item *held = ct_take(c, "c", &ticket);
    assert_non_null(held);
    assert_int_equal(ct_put(c, "e", 5), 0);                               /* 3 idle: a, d, e */
    assert_int_equal(ct_put(c, "f", 6), 1);                               /* evicts a */
    assert_int_equal(wkr_cache_put(c, weft_str_c("c"), ticket, held), 1); /* evicts d */
    uint64_t t2;
    assert_null(ct_take(c, "a", &t2));
    wkr_cache_release(c, weft_str_c("a"), t2);
    assert_null(ct_take(c, "d", &t2));
    wkr_cache_release(c, weft_str_c("d"), t2);
    ct_stats(c, &count, &evictions);
    assert_int_equal(count, 3);
    assert_int_equal(evictions, 3);
    wkr_cache_free(c);
    assert_int_equal(atomic_load(&ct_freed), 6);
}

static void test_capacity_one_many_keys(void **state) {
    (void)state;
    atomic_store(&ct_freed, 0);
    wkr_cache *c = NULL;
    assert_int_equal(wkr_cache_new(1, ct_free, &c), 0);
    uint32_t evicted = 0;
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof key, "run-%d", i);
        evicted += ct_put(c, key, i);
    }
    assert_int_equal(evicted, 999);
    uint64_t ticket;
    ct_item *last = ct_take(c, "run-999", &ticket);
    assert_non_null(last);
    ct_free(last);
    wkr_cache_release(c, weft_str_c("run-999"), ticket);
    wkr_cache_free(c);
    assert_int_equal(atomic_load(&ct_freed), 1000);
}

/* A task that wants a held key waits until the holder puts the run back, and gets it. */
typedef struct ct_waiter {
    wkr_cache *c;    /* the cache */
    ct_item *got;    /* what the waiter's take returned */
    uint64_t ticket; /* its ticket */
} ct_waiter;

static void *ct_waiter_main(void *arg) {
    ct_waiter *wt = arg;
    void *item = NULL;
    wt->ticket = wkr_cache_take(wt->c, weft_str_c("run-w"), 10000, &item);
    wt->got = item;
    return NULL;
}

static void test_take_waits_for_holder(void **state) {
    (void)state;
    atomic_store(&ct_freed, 0);
    wkr_cache *c = NULL;
    assert_int_equal(wkr_cache_new(2, ct_free, &c), 0);
    uint64_t ticket;
    assert_null(ct_take(c, "run-w", &ticket)); /* a first task holds the key, nothing cached */
    ct_waiter wt = {.c = c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ct_waiter_main, &wt), 0);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(wkr_cache_put(c, weft_str_c("run-w"), ticket, ct_new("run-w", 7)), 0);
    pthread_join(th, NULL);
    assert_non_null(wt.got);
    assert_int_equal(wt.got->value, 7);
    assert_true(wt.ticket > 0 && wt.ticket != ticket);
    ct_free(wt.got);
    wkr_cache_release(c, weft_str_c("run-w"), wt.ticket);
    wkr_cache_free(c);
}

/* Threads take keys and put them back at random; each item must be held by one thread at a
 * time, which the `value` field (a holder count) proves. */
static void *ct_thread(void *arg) {
    wkr_cache *c = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (unsigned i = 0; i < CT_ROUNDS; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%u", (unsigned)rand_r(&seed) % CT_THREAD_KEYS);
        void *item = NULL;
        uint64_t ticket = wkr_cache_take(c, weft_str_c(key), 1000, &item);
        ct_item *it = item;
        if (ticket == 0 || it == NULL) abort(); /* every key is cached, holds are short */
        if (it->value != 0) abort();            /* a second holder */
        it->value = 1;
        it->value = 0;
        (void)wkr_cache_put(c, weft_str_c(key), ticket, it);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    atomic_store(&ct_freed, 0);
    wkr_cache *c = NULL;
    assert_int_equal(wkr_cache_new(CT_THREAD_KEYS, ct_free, &c), 0);
    for (unsigned i = 0; i < CT_THREAD_KEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%u", i);
        assert_int_equal(ct_put(c, key, 0), 0);
    }
    pthread_t th[CT_THREADS];
    for (unsigned i = 0; i < CT_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ct_thread, c), 0);
    for (unsigned i = 0; i < CT_THREADS; i++)
        pthread_join(th[i], NULL);
    uint32_t count;
    uint64_t evictions;
    ct_stats(c, &count, &evictions);
    assert_int_equal(count, CT_THREAD_KEYS);
    assert_int_equal(evictions, 0);
    wkr_cache_free(c);
    assert_int_equal(atomic_load(&ct_freed), (int)CT_THREAD_KEYS);
}

static void test_activity_pollers_per_node(void **state) {
    (void)state;
    /* One node: activity_concurrency pollers, all long-polling, as a single server had. */
    for (uint32_t c = 1; c <= 16; c++) {
        assert_int_equal(wkr_act_pollers_per_node(c, 1), c);
        assert_int_equal(wkr_act_cold_pollers(c, 1), c);
    }
    /* Three nodes, 8 slots: each idle node keeps one standing poll, a busy one gets the rest. */
    assert_int_equal(wkr_act_pollers_per_node(8, 3), 6);
    assert_int_equal(wkr_act_cold_pollers(8, 3), 1);
    /* As many slots as nodes: one poller each, nothing to share. */
    assert_int_equal(wkr_act_pollers_per_node(3, 3), 1);
    assert_int_equal(wkr_act_cold_pollers(3, 3), 1);
    /* Fewer slots than nodes: one poller each, taking turns. */
    assert_int_equal(wkr_act_pollers_per_node(1, 3), 1);
    assert_int_equal(wkr_act_pollers_per_node(2, 64), 1);
    assert_int_equal(wkr_act_cold_pollers(1, 3), 1);
    /* Whatever the numbers: a node with a backlog plus the other nodes' standing polls never
     * need more slots than there are, once there are at least as many as nodes. */
    for (uint32_t n = 1; n <= 9; n++) {
        for (uint32_t c = n; c <= 32; c++) {
            uint32_t per = wkr_act_pollers_per_node(c, n);
            assert_true(per >= 1);
            assert_true(per + (n - 1) * wkr_act_cold_pollers(c, n) <= c);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_and_put),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_capacity_one_many_keys),
        cmocka_unit_test(test_take_waits_for_holder),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_activity_pollers_per_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
