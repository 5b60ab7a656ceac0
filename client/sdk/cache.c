/* cache.c: the sticky cache: a chained hash table over the run ids under one mutex. An entry is
 * either idle (holds a run, threaded on the recency list, head = most recently used) or held (a
 * task processes the run; not on the list, never evicted). Tasks that want a held key wait on
 * one condition variable, broadcast whenever a hold ends. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/errors.h"

/* Buckets per cached item: the table is sized once, for the full capacity, so chains stay short
 * without ever rehashing. Held entries come on top, one per worker thread at most. */
#define CACHE_BUCKETS_PER_ITEM 2u

/* One key: cached (idle) or being processed (held). */
typedef struct cache_entry {
    char *key;                 /* the run id (malloc'd copy) */
    uint32_t key_len;          /* its length */
    uint64_t hash;             /* hash of key */
    void *item;                /* idle: the cached run; held: NULL (the holder has it) */
    uint64_t ticket;           /* held: the holder's ticket; idle: 0 */
    struct cache_entry *chain; /* next entry in the same bucket */
    struct cache_entry *newer; /* idle: towards the head of the recency list */
    struct cache_entry *older; /* idle: towards the tail */
} cache_entry;

struct wkr_cache {
    pthread_mutex_t mu;        /* guards everything below */
    pthread_cond_t released;   /* broadcast when a hold ends */
    wkr_cache_free_cb free_cb; /* frees an item */
    uint32_t capacity;         /* idle items kept at most */
    uint32_t count;            /* idle items now */
    uint32_t held;             /* held entries now */
    uint64_t evictions;        /* idle items evicted for capacity so far */
    uint64_t next_ticket;      /* last ticket handed out */
    cache_entry **buckets;     /* [buckets_mask + 1] chains */
    uint64_t buckets_mask;     /* bucket count - 1 (a power of two) */
    cache_entry *head;         /* most recently used idle entry */
    cache_entry *tail;         /* least recently used idle entry: evicted first */
};

/* FNV-1a: run ids are random, so any decent spread will do. */
static uint64_t cache_hash(const char *p, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int wkr_cache_new(uint32_t capacity, wkr_cache_free_cb free_cb, wkr_cache **out) {
    WEFT_ASSERT(capacity >= 1 && free_cb != NULL && out != NULL);
    *out = NULL;
    wkr_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return -WEFT_E_RESOURCE_EXHAUSTED;
    uint64_t buckets = 1;
    while (buckets < (uint64_t)capacity * CACHE_BUCKETS_PER_ITEM)
        buckets <<= 1;
    c->buckets = calloc(buckets, sizeof *c->buckets);
    if (c->buckets == NULL) {
        free(c);
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->released, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->mu, NULL);
    c->buckets_mask = buckets - 1;
    c->capacity = capacity;
    c->free_cb = free_cb;
    *out = c;
    return 0;
}

static void cache_entry_free(cache_entry *e) {
    free(e->key);
    free(e);
}

void wkr_cache_free(wkr_cache *c) {
    if (c == NULL) return;
    WEFT_ASSERT(c->held == 0); /* a holder would put a run into freed memory */
    cache_entry *e = c->head;
    uint32_t freed = 0;
    while (e != NULL) {
        cache_entry *next = e->older;
        c->free_cb(e->item);
        cache_entry_free(e);
        e = next;
        freed++;
    }
    WEFT_ASSERT(freed == c->count);
    pthread_cond_destroy(&c->released);
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

/* The bucket slot that points at the entry for `key`, or at the chain's NULL end. */
static cache_entry **cache_slot(wkr_cache *c, weft_str key, uint64_t hash) {
    cache_entry **slot = &c->buckets[hash & c->buckets_mask];
    while (*slot != NULL) {
        cache_entry *e = *slot;
        if (e->hash == hash && e->key_len == key.len && memcmp(e->key, key.ptr, key.len) == 0) {
            break;
        }
        slot = &e->chain;
    }
    return slot;
}

/* Takes an idle entry off the recency list. */
static void cache_lru_unlink(wkr_cache *c, cache_entry *e) {
    WEFT_ASSERT(e->ticket == 0 && c->count > 0);
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->head = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->tail = e->newer;
    e->newer = e->older = NULL;
    c->count--;
}

/* Puts an entry on the recency list as the most recently used. */
static void cache_lru_push(wkr_cache *c, cache_entry *e) {
    WEFT_ASSERT(e->ticket == 0 && e->item != NULL);
    e->newer = NULL;
    e->older = c->head;
    if (c->head != NULL) c->head->newer = e;
    c->head = e;
    if (c->tail == NULL) c->tail = e;
    c->count++;
}

/* A new held entry for `key` at `slot` (the chain's end), or NULL when out of memory. */
static cache_entry *cache_hold_new(wkr_cache *c, cache_entry **slot, weft_str key, uint64_t hash) {
    cache_entry *e = calloc(1, sizeof *e);
    char *copy = malloc((size_t)key.len + 1);
    if (e == NULL || copy == NULL) {
        free(e);
        free(copy);
        return NULL;
    }
    memcpy(copy, key.ptr, key.len);
    copy[key.len] = '\0';
    *e = (cache_entry){.key = copy, .key_len = key.len, .hash = hash, .ticket = ++c->next_ticket};
    *slot = e;
    c->held++;
    return e;
}

/* Absolute CLOCK_MONOTONIC time `ms` from now. */
static struct timespec cache_deadline(uint32_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000u;
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

uint64_t wkr_cache_take(wkr_cache *c, weft_str key, uint32_t wait_ms, void **item) {
    WEFT_ASSERT(c != NULL && item != NULL && key.len > 0);
    *item = NULL;
    uint64_t hash = cache_hash(key.ptr, key.len);
    struct timespec deadline = cache_deadline(wait_ms);
    uint64_t ticket = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        cache_entry **slot = cache_slot(c, key, hash);
        cache_entry *e = *slot;
        if (e == NULL) {
            e = cache_hold_new(c, slot, key, hash);
            ticket = e != NULL ? e->ticket : 0;
            break;
        }
        if (e->ticket == 0) {
            cache_lru_unlink(c, e);
            *item = e->item;
            e->item = NULL;
            e->ticket = ticket = ++c->next_ticket;
            c->held++;
            break;
        }
        if (pthread_cond_timedwait(&c->released, &c->mu, &deadline) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&c->mu);
    WEFT_ASSERT(ticket > 0 || *item == NULL);
    return ticket;
}

/* The entry held under `ticket` for `key`, or NULL. */
static cache_entry **cache_held_slot(wkr_cache *c, weft_str key, uint64_t ticket) {
    cache_entry **slot = cache_slot(c, key, cache_hash(key.ptr, key.len));
    if (*slot == NULL || (*slot)->ticket != ticket) return NULL;
    return slot;
}

uint32_t wkr_cache_put(wkr_cache *c, weft_str key, uint64_t ticket, void *item) {
    WEFT_ASSERT(c != NULL && item != NULL);
    if (ticket == 0) {
        c->free_cb(item); /* someone else holds the run: their copy is the one kept */
        return 0;
    }
    cache_entry *evicted = NULL;
    pthread_mutex_lock(&c->mu);
    cache_entry **slot = cache_held_slot(c, key, ticket);
    WEFT_ASSERT(slot != NULL); /* a ticket is given back exactly once */
    cache_entry *e = *slot;
    e->ticket = 0;
    e->item = item;
    c->held--;
    cache_lru_push(c, e);
    if (c->count > c->capacity) {
        evicted = c->tail;
        WEFT_ASSERT(evicted != NULL && evicted != e);
        cache_lru_unlink(c, evicted);
        cache_entry **victim =
            cache_slot(c, (weft_str){evicted->key, evicted->key_len}, evicted->hash);
        WEFT_ASSERT(*victim == evicted);
        *victim = evicted->chain;
        c->evictions++;
    }
    WEFT_ASSERT(c->count <= c->capacity);
    pthread_cond_broadcast(&c->released);
    pthread_mutex_unlock(&c->mu);
    if (evicted == NULL) return 0;
    c->free_cb(evicted->item);
    cache_entry_free(evicted);
    return 1;
}

void wkr_cache_release(wkr_cache *c, weft_str key, uint64_t ticket) {
    WEFT_ASSERT(c != NULL);
    if (ticket == 0) return;
    pthread_mutex_lock(&c->mu);
    cache_entry **slot = cache_held_slot(c, key, ticket);
    WEFT_ASSERT(slot != NULL); /* a ticket is given back exactly once */
    cache_entry *e = *slot;
    *slot = e->chain;
    WEFT_ASSERT(c->held > 0 && e->item == NULL);
    c->held--;
    pthread_cond_broadcast(&c->released);
    pthread_mutex_unlock(&c->mu);
    cache_entry_free(e);
}

void wkr_cache_stats(wkr_cache *c, uint32_t *count, uint64_t *evictions) {
    WEFT_ASSERT(c != NULL);
    pthread_mutex_lock(&c->mu);
    if (count != NULL) *count = c->count;
    if (evictions != NULL) *evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
}
