/* token.c: task tokens, the opaque identity of one dispatched attempt: shard, run key,
 * scheduled event id, attempt and kind (DESIGN section 7: "The token encodes run key,
 * scheduled event id and attempt"). */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Tokens are tiny; anything longer is not ours. */
#define SH_TOKEN_BYTES_MAX 128u

int weft_task_token_encode(const weft_task_token *t, uint8_t **out, size_t *out_len) {
    WEFT_ASSERT(t != NULL && out != NULL && out_len != NULL);
    WEFT_ASSERT(t->run_key > 0 && t->scheduled_event_id > 0 && t->attempt >= 1);
    WEFT_ASSERT(t->kind == WEFT_TASK_KIND_WORKFLOW || t->kind == WEFT_TASK_KIND_ACTIVITY);
    int rc = weft_schema_encode_buf(&weft_task_token_schema, t, out, out_len);
    return rc != 0 ? -WEFT_E_RESOURCE_EXHAUSTED : 0;
}

static int token_bad(weft_err *err, const char *why) {
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "task_token",
                        "task_token %s: pass the token from the poll response unchanged", why);
}

int weft_task_token_decode(weft_bytes token, weft_task_token *out, weft_err *err) {
    WEFT_ASSERT(out != NULL);
    memset(out, 0, sizeof *out);
    if (token.len == 0) return token_bad(err, "is required");
    if (token.len > SH_TOKEN_BYTES_MAX) return token_bad(err, "is too long to be a weft token");
    weft_limits lim;
    weft_limits_default(&lim);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_err inner;
    weft_err_clear(&inner);
    int rc = weft_schema_decode_buf(&weft_task_token_schema, token.ptr, token.len, out, &up, &lim,
                                    &inner);
    msgpack_unpacked_destroy(&up);
    if (rc != 0) return token_bad(err, "is not a weft task token");
    if (out->kind != WEFT_TASK_KIND_WORKFLOW && out->kind != WEFT_TASK_KIND_ACTIVITY) {
        return token_bad(err, "has an unknown task kind");
    }
    if (out->run_key == 0 || out->scheduled_event_id == 0 || out->attempt == 0) {
        return token_bad(err, "is incomplete");
    }
    return 0;
}

int sh_token_parse(sh_ctx *c, weft_bytes token, uint32_t kind, weft_task_token *out) {
    int rc = weft_task_token_decode(token, out, &c->err);
    if (rc != 0) return rc;
    if (kind != 0 && out->kind != kind) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "task_token",
                         "task_token belongs to %s task, not %s task: complete each task with "
                         "the request of its kind",
                         out->kind == WEFT_TASK_KIND_WORKFLOW ? "a workflow" : "an activity",
                         kind == WEFT_TASK_KIND_WORKFLOW ? "a workflow" : "an activity");
    }
    if (out->shard_id != c->s->shard_id) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "task_token",
                         "task_token belongs to shard %u, not shard %u: send it to its shard's "
                         "leader (the client routes by token)",
                         out->shard_id, c->s->shard_id);
    }
    return 0;
}

weft_bytes sh_token_make(sh_ctx *c, uint64_t run_key, uint64_t scheduled_event_id,
                         uint32_t attempt, uint32_t kind) {
    weft_task_token t = {.shard_id = c->s->shard_id,
                         .run_key = run_key,
                         .scheduled_event_id = scheduled_event_id,
                         .attempt = attempt,
                         .kind = kind};
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = weft_task_token_encode(&t, &buf, &len);
    WEFT_ASSERT(rc == 0 && len <= SH_TOKEN_BYTES_MAX);
    uint8_t *copy = sh_alloc(c, len);
    memcpy(copy, buf, len);
    free(buf);
    return (weft_bytes){.ptr = copy, .len = (uint32_t)len};
}
