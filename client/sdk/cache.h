/* cache.h: the worker's sticky cache (DESIGN section 11, "Sticky cache"): an LRU map from run id
 * to a suspended run, thread-safe. A task takes its run's key for as long as it is processed,
 * whether a run was cached or not, so that the next task of the run (dispatched the moment the
 * completion applies, possibly before the first thread put the run back) waits for the run
 * instead of replaying it. Items are opaque here (the worker stores wfe_run); the cache frees
 * them with the callback given at creation. */
#ifndef WEFT_SDK_CACHE_H
#define WEFT_SDK_CACHE_H

#include <stdint.h>

#include "proto/base.h"

typedef struct wkr_cache wkr_cache;

/* Frees one item (the worker passes a wrapper of wfe_run_free). */
typedef void (*wkr_cache_free_cb)(void *item);

/* Creates a cache of at most `capacity` idle items (>= 1) that frees items with `free_cb`.
 * On success *out belongs to the caller (wkr_cache_free). Returns 0, or
 * -WEFT_E_RESOURCE_EXHAUSTED when out of memory. */
int wkr_cache_new(uint32_t capacity, wkr_cache_free_cb free_cb, wkr_cache **out);

/* Frees every cached item, then the cache. No key may be held. NULL is a no-op. */
void wkr_cache_free(wkr_cache *c);

/* Takes `key` (borrowed) for the calling task. Returns a ticket > 0 that wkr_cache_put or
 * wkr_cache_release must be given exactly once, with *item the cached item (the caller owns it
 * until then) or NULL when none was cached. While another task holds the key the call waits up
 * to wait_ms; after that (or when out of memory) it returns 0 with *item NULL: the caller works
 * without the cache, and whatever it puts back with ticket 0 is freed, not cached. */
uint64_t wkr_cache_take(wkr_cache *c, weft_str key, uint32_t wait_ms, void **item);

/* Caches `item` (ownership passes to the cache) under `key` as the most recently used and ends
 * the hold `ticket`. When the cache is then over capacity the least recently used idle item is
 * evicted and freed. With ticket 0 the item is freed. Frees happen outside the cache's lock.
 * Returns the number of evictions (0 or 1). */
uint32_t wkr_cache_put(wkr_cache *c, weft_str key, uint64_t ticket, void *item);

/* Ends the hold `ticket` on `key` without an item (the caller frees its own). No-op for 0. */
void wkr_cache_release(wkr_cache *c, weft_str key, uint64_t ticket);

/* Snapshot of the counters: idle items cached now, and evictions so far. */
void wkr_cache_stats(wkr_cache *c, uint32_t *count, uint64_t *evictions);

#endif
