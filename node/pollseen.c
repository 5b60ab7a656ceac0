/* pollseen.c: the bounded table of recent pollers (pollseen.h). A linear scan of hashes: a poll
 * costs WEFTD_POLLERS_MAX integer compares, and strings are compared only on a hash match. */
#include "pollseen.h"

#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"

static uint64_t pollseen_hash(const char *queue, uint8_t kind, const char *identity,
                              size_t identity_len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)queue; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull; /* separator: no byte of a string */
    h = (h ^ kind) * 1099511628211ull;
    for (size_t i = 0; i < identity_len; i++)
        h = (h ^ (unsigned char)identity[i]) * 1099511628211ull;
    return h;
}

/* Bytes of `identity` kept: all of it, or a prefix under WEFTD_POLLER_IDENTITY_BYTES_MAX that
 * ends before a UTF-8 continuation byte, so the kept text stays valid UTF-8. */
static size_t pollseen_identity_len(const char *identity) {
    size_t len = strlen(identity);
    if (len < WEFTD_POLLER_IDENTITY_BYTES_MAX) return len;
    len = WEFTD_POLLER_IDENTITY_BYTES_MAX - 1u;
    while (len > 0 && ((unsigned char)identity[len] & 0xC0u) == 0x80u)
        len--;
    return len;
}

static void pollseen_clear(weft_pollseen *t, weft_poller_seen *s) {
    WEFT_ASSERT(s->queue != NULL && t->used > 0);
    free(s->queue);
    free(s->identity);
    memset(s, 0, sizeof *s);
    t->used--;
}

static char *pollseen_strndup(const char *s, size_t len) {
    char *out = malloc(len + 1);
    if (out == NULL) return NULL;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

void weft_pollseen_note(weft_pollseen *t, const char *queue, uint8_t kind, const char *identity,
                        uint64_t now_ms) {
    WEFT_ASSERT(queue != NULL && identity != NULL);
    size_t id_len = pollseen_identity_len(identity);
    uint64_t h = pollseen_hash(queue, kind, identity, id_len);
    weft_poller_seen *free_slot = NULL, *oldest = NULL;
    for (uint32_t i = 0; i < WEFTD_POLLERS_MAX; i++) {
        weft_poller_seen *s = &t->slots[i];
        if (s->queue == NULL) {
            if (free_slot == NULL) free_slot = s;
            continue;
        }
        if (s->hash == h && s->kind == kind && strcmp(s->queue, queue) == 0 &&
            strncmp(s->identity, identity, id_len) == 0 && s->identity[id_len] == '\0') {
            if (now_ms > s->last_poll_ms) s->last_poll_ms = now_ms;
            return;
        }
        if (oldest == NULL || s->last_poll_ms < oldest->last_poll_ms) oldest = s;
    }
    if (free_slot == NULL) {
        WEFT_ASSERT(oldest != NULL && t->used == WEFTD_POLLERS_MAX);
        pollseen_clear(t, oldest); /* full: the oldest poller makes room */
        free_slot = oldest;
    }
    char *q = pollseen_strndup(queue, strlen(queue)), *id = pollseen_strndup(identity, id_len);
    if (q == NULL || id == NULL) { /* out of memory: this poll goes unrecorded */
        free(q);
        free(id);
        return;
    }
    *free_slot = (weft_poller_seen){
        .hash = h, .last_poll_ms = now_ms, .kind = kind, .queue = q, .identity = id};
    t->used++;
}

void weft_pollseen_each(weft_pollseen *t, const char *queue, uint64_t now_ms,
                        void (*fn)(void *data, const weft_poller_seen *p), void *data) {
    for (uint32_t i = 0; i < WEFTD_POLLERS_MAX && t->used > 0; i++) {
        weft_poller_seen *s = &t->slots[i];
        if (s->queue == NULL) continue;
        if (s->last_poll_ms + WEFTD_POLLERS_WINDOW_MS < now_ms) {
            pollseen_clear(t, s);
            continue;
        }
        if (strcmp(s->queue, queue) == 0) fn(data, s);
    }
}

void weft_pollseen_free(weft_pollseen *t) {
    for (uint32_t i = 0; i < WEFTD_POLLERS_MAX; i++) {
        if (t->slots[i].queue != NULL) pollseen_clear(t, &t->slots[i]);
    }
    WEFT_ASSERT(t->used == 0);
}
