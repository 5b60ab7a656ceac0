/* batch.c: encoding and strict decoding of one raft entry, [version, leader_time_ms,
 * [bin cmd...]] followed by zero padding to 8 bytes (see batch.h) (DESIGN section 5: one entry is one msgpack batch of commands for one shard,
 * stamped with the leader's clock).
 *
 * Encoding uses msgpack-c's packer into one buffer from the caller's allocator (raft_malloc for
 * raft_apply). Decoding is a small hand-written reader of exactly these three msgpack forms:
 * every replica decodes every entry, so it must not allocate (msgpack_unpack would fill a zone
 * per entry), the commands must borrow from raft's buffer, and every count must be checked
 * against our limits before it is trusted (STYLE rule 12). */
#include "batch.h"

#include <msgpack.h>
#include <string.h>

#include "../proto/errors.h"
#include "../proto/limits.h"

/* ---- Encoding ---- */

/* A packer target: a fixed buffer sized in advance, so the packer never reallocates. */
typedef struct batch_writer {
    uint8_t *buf;    /* destination, cap bytes */
    size_t cap;      /* capacity in bytes */
    size_t used;     /* bytes written so far */
} batch_writer;

static int batch_writer_write(void *data, const char *src, size_t len) {
    batch_writer *w = data;
    WEFT_ASSERT(w->used <= w->cap);
    /* The capacity is an upper bound computed from the same inputs: overflow is a bug. */
    WEFT_ASSERT(len <= w->cap - w->used);
    memcpy(w->buf + w->used, src, len);
    w->used += len;
    return 0;
}

static int batch_check_cmds(const weft_bytes *cmds, uint32_t n, size_t *cmd_bytes) {
    if (n == 0 || n > WEFT_RAFT_BATCH_CMDS_MAX) return -WEFT_E_INVALID_ARGUMENT;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        WEFT_ASSERT(cmds[i].ptr != NULL || cmds[i].len == 0);
        /* A single command over the batch limit can never be framed; the proposer refuses it
         * before it gets here, so reaching this is the caller's error. */
        if (cmds[i].len > WEFT_RAFT_BATCH_BYTES_MAX) return -WEFT_E_RESOURCE_EXHAUSTED;
        total += cmds[i].len;
    }
    if (total > WEFT_RAFT_BATCH_BYTES_MAX) return -WEFT_E_RESOURCE_EXHAUSTED;
    *cmd_bytes = total;
    return 0;
}

int weft_batch_encode(uint64_t leader_time_ms, const weft_bytes *cmds, uint32_t n, void **buf,
                      size_t *len, void *(*alloc)(size_t)) {
    WEFT_ASSERT(buf != NULL && len != NULL && alloc != NULL);
    WEFT_ASSERT(cmds != NULL || n == 0);
    if (leader_time_ms > WEFT_LEADER_TIME_MS_MAX) return -WEFT_E_INVALID_ARGUMENT;
    size_t cmd_bytes = 0;
    int rc = batch_check_cmds(cmds, n, &cmd_bytes);
    if (rc != 0) return rc;

    size_t cap = WEFT_BATCH_HEADER_BYTES_MAX + (size_t)n * WEFT_BATCH_CMD_HEADER_BYTES_MAX +
                 cmd_bytes + WEFT_BATCH_ALIGN_BYTES - 1;
    WEFT_ASSERT(cap <= WEFT_BATCH_ENTRY_BYTES_MAX);
    batch_writer w = {.buf = alloc(cap), .cap = cap, .used = 0};
    if (w.buf == NULL) return -WEFT_E_RESOURCE_EXHAUSTED;

    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, batch_writer_write);
    /* The writer cannot fail (it asserts instead), so neither can the packer. */
    rc = msgpack_pack_array(&pk, 3);
    rc |= msgpack_pack_uint32(&pk, WEFT_BATCH_VERSION);
    rc |= msgpack_pack_uint64(&pk, leader_time_ms);
    rc |= msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        rc |= msgpack_pack_bin(&pk, cmds[i].len);
        if (cmds[i].len > 0) rc |= msgpack_pack_bin_body(&pk, cmds[i].ptr, cmds[i].len);
    }
    WEFT_ASSERT(rc == 0);
    size_t pad = (WEFT_BATCH_ALIGN_BYTES - w.used % WEFT_BATCH_ALIGN_BYTES) %
                 WEFT_BATCH_ALIGN_BYTES;
    WEFT_ASSERT(pad <= w.cap - w.used);
    memset(w.buf + w.used, 0, pad);
    w.used += pad;
    WEFT_ASSERT(w.used > cmd_bytes && w.used <= cap && w.used % WEFT_BATCH_ALIGN_BYTES == 0);
    *buf = w.buf;
    *len = w.used;
    return 0;
}

/* ---- Decoding ---- */

/* A cursor over the entry being decoded. */
typedef struct batch_reader {
    const uint8_t *p;   /* next byte */
    size_t left;        /* bytes remaining */
} batch_reader;

static bool reader_take(batch_reader *r, size_t n, const uint8_t **out) {
    if (r->left < n) return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static uint64_t be_read(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Reads a msgpack unsigned integer (positive fixint or uint 8/16/32/64). */
static bool reader_uint(batch_reader *r, uint64_t *v) {
    const uint8_t *tag;
    if (!reader_take(r, 1, &tag)) return false;
    size_t width;
    if (*tag <= 0x7f) {
        *v = *tag;
        return true;
    }
    switch (*tag) {
    case 0xcc: width = 1; break;
    case 0xcd: width = 2; break;
    case 0xce: width = 4; break;
    case 0xcf: width = 8; break;
    default: return false;
    }
    const uint8_t *body;
    if (!reader_take(r, width, &body)) return false;
    *v = be_read(body, width);
    return true;
}

/* Reads a msgpack array header (fixarray, array16, array32) and returns its element count. */
static bool reader_array(batch_reader *r, uint64_t *count) {
    const uint8_t *tag;
    if (!reader_take(r, 1, &tag)) return false;
    if ((*tag & 0xf0) == 0x90) {
        *count = *tag & 0x0f;
        return true;
    }
    size_t width = *tag == 0xdc ? 2 : *tag == 0xdd ? 4 : 0;
    const uint8_t *body;
    if (width == 0 || !reader_take(r, width, &body)) return false;
    *count = be_read(body, width);
    return true;
}

/* Reads a msgpack bin (bin8/16/32) and borrows its bytes. str is refused: commands are bytes. */
static bool reader_bin(batch_reader *r, weft_bytes *out) {
    const uint8_t *tag;
    if (!reader_take(r, 1, &tag)) return false;
    size_t width = *tag == 0xc4 ? 1 : *tag == 0xc5 ? 2 : *tag == 0xc6 ? 4 : 0;
    const uint8_t *body;
    if (width == 0 || !reader_take(r, width, &body)) return false;
    uint64_t len = be_read(body, width);
    /* Checked before the take so a hostile length never reaches pointer arithmetic. */
    if (len > WEFT_RAFT_BATCH_BYTES_MAX || len > r->left) return false;
    const uint8_t *bytes;
    if (!reader_take(r, (size_t)len, &bytes)) return false;
    out->ptr = len > 0 ? bytes : NULL;
    out->len = (uint32_t)len;
    return true;
}

/* What follows the array may only be the zero padding to WEFT_BATCH_ALIGN_BYTES. */
static bool reader_padding(const batch_reader *r) {
    if (r->left >= WEFT_BATCH_ALIGN_BYTES) return false;
    for (size_t i = 0; i < r->left; i++) {
        if (r->p[i] != 0) return false;
    }
    return true;
}

static int batch_malformed(weft_err *err, const char *what) {
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "entry",
                        "raft entry is not a weft batch: %s; the log holds an entry this node "
                        "cannot apply, check that every node runs the same weft version",
                        what);
}

static int batch_decode_header(batch_reader *r, uint64_t *leader_time_ms, uint64_t *n,
                               weft_err *err) {
    uint64_t outer = 0, version = 0;
    if (!reader_array(r, &outer) || outer != 3) return batch_malformed(err, "not a 3-array");
    if (!reader_uint(r, &version)) return batch_malformed(err, "version is not an integer");
    if (version != WEFT_BATCH_VERSION) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "entry",
                            "raft entry has batch version %llu, this node understands %u; "
                            "upgrade this node before it rejoins the cluster",
                            (unsigned long long)version, WEFT_BATCH_VERSION);
    }
    if (!reader_uint(r, leader_time_ms)) return batch_malformed(err, "leader time is missing");
    if (*leader_time_ms > WEFT_LEADER_TIME_MS_MAX) {
        /* Applied, it would move the shard clock where deadlines wrap (limits.h). */
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "entry",
                            "raft entry is stamped with leader time %llu ms, past the year 10000 "
                            "(WEFT_LEADER_TIME_MS_MAX): the leader's clock is wrong; fix it",
                            (unsigned long long)*leader_time_ms);
    }
    if (!reader_array(r, n)) return batch_malformed(err, "command list is not an array");
    if (*n == 0 || *n > WEFT_RAFT_BATCH_CMDS_MAX) {
        return batch_malformed(err, "command count outside 1..WEFT_RAFT_BATCH_CMDS_MAX");
    }
    return 0;
}

int weft_batch_decode(const void *buf, size_t len, uint64_t *leader_time_ms, weft_bytes *cmds,
                      uint32_t cap, uint32_t *n, weft_err *err) {
    WEFT_ASSERT(leader_time_ms != NULL && n != NULL);
    WEFT_ASSERT(cmds != NULL || cap == 0);
    *n = 0;
    if (buf == NULL || len == 0) return batch_malformed(err, "empty entry");
    if (len > WEFT_BATCH_ENTRY_BYTES_MAX) return batch_malformed(err, "entry too large");
    batch_reader r = {.p = buf, .left = len};
    uint64_t count = 0;
    int rc = batch_decode_header(&r, leader_time_ms, &count, err);
    if (rc != 0) return rc;
    if (count > cap) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "entry",
                            "raft entry holds %llu commands but the decoder has room for %u",
                            (unsigned long long)count, cap);
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (!reader_bin(&r, &cmds[i])) return batch_malformed(err, "command is not bin");
        total += cmds[i].len;
        if (total > WEFT_RAFT_BATCH_BYTES_MAX) return batch_malformed(err, "commands too large");
    }
    if (!reader_padding(&r)) return batch_malformed(err, "trailing bytes after the batch");
    *n = (uint32_t)count;
    WEFT_ASSERT(*n >= 1 && *n <= cap);
    return 0;
}
