/* payload.c: JSON payloads in the memory of a workflow run or an activity (json.h). Kept apart
 * from client/json.c so that programs that never run workflow code (the CLI, plain clients)
 * link the JSON codec without the worker SDK. */
#include <stdlib.h>
#include <string.h>

#include "proto/base.h"
#include "weft/json.h"

/* Dumps `v` like weft_json_dump into memory from `alloc_fn(owner, bytes)`. */
static weft_bytes payload_json(void *owner, void *(*alloc_fn)(void *owner, size_t bytes),
                               const json_t *v) {
    weft_bytes out = {0};
    char *text = weft_json_dump(v);
    if (text == NULL) return out;
    size_t n = strlen(text);
    /* A payload longer than 4 GiB cannot be sent; the empty payload says "could not". */
    uint8_t *dst = n > 0 && n <= UINT32_MAX ? alloc_fn(owner, n) : NULL;
    if (dst != NULL) {
        memcpy(dst, text, n);
        out.ptr = dst;
        out.len = (uint32_t)n;
    }
    free(text);
    WEFT_ASSERT(out.len == 0 || out.ptr != NULL);
    return out;
}

static void *payload_wf_alloc(void *owner, size_t bytes) {
    return weft_wf_alloc(owner, bytes);
}

static void *payload_act_alloc(void *owner, size_t bytes) {
    return weft_act_alloc(owner, bytes);
}

weft_bytes weft_wf_json(weft_wf *wf, const json_t *v) {
    WEFT_ASSERT(wf != NULL);
    return payload_json(wf, payload_wf_alloc, v);
}

weft_bytes weft_act_json(weft_act *act, const json_t *v) {
    WEFT_ASSERT(act != NULL);
    return payload_json(act, payload_act_alloc, v);
}
