/* frame.h: the client wire frame (DESIGN section 10): length-prefixed msgpack, its encoders,
 * an incremental reader for a byte stream, and the raw pre-check every untrusted msgpack buffer
 * passes before msgpack-c unpacks it.
 *
 * A frame on the wire is
 *
 *     u32 big-endian length | msgpack array [msg_type, request_id, body]
 *
 * - `length` counts the bytes of the msgpack array only (not the 4 prefix bytes); it is at
 *   least 1 and at most limits->frame_bytes_max. A bigger one is refused with
 *   RESOURCE_EXHAUSTED and the caller closes the connection: the stream cannot be resynchronised.
 * - `msg_type` is an unsigned integer: a request's wire type from WEFT_OPS, the same type with
 *   WEFT_MSG_RESPONSE_BIT set for its success response, or WEFT_MSG_ERROR for an error.
 * - `request_id` is the client's correlation id (uint64), echoed unchanged in the reply so that
 *   pipelined requests can be matched. It is not the idempotency key `request_id` that some
 *   bodies carry.
 * - `body` is a msgpack map: the op's request or response schema, or weft_error_resp. */
#ifndef WEFT_PROTO_FRAME_H
#define WEFT_PROTO_FRAME_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "limits.h"
#include "schema.h"

/* Bytes of the big-endian length prefix in front of every frame. */
#define WEFT_FRAME_HEADER_BYTES 4u
/* msg_type of an error reply; its body is a weft_error_resp. Has WEFT_MSG_RESPONSE_BIT set, so
 * it can never collide with a request type. */
#define WEFT_MSG_ERROR 0xFFu
/* Elements of the frame array: msg_type, request_id, body. */
#define WEFT_FRAME_ARRAY_ITEMS 3u
/* The frame array wraps the body, so a frame may nest one level deeper than a body. */
#define WEFT_FRAME_DEPTH_MAX (WEFT_DECODE_DEPTH_MAX + 1u)
/* A reader whose buffer is empty gives back memory above this size, so that one large frame
 * does not pin megabytes on an idle connection. */
#define WEFT_FRAME_READER_IDLE_BYTES_MAX (64u * 1024u)

/* ---- Raw pre-check ---- */

/* Checks, without recursion and without allocating, that buf[0, len) holds exactly one
 * well-formed msgpack object:
 * - no container nested deeper than `depth_max` levels (a scalar is depth 0, a map or array
 *   one more than its deepest element; `depth_max` <= 16);
 * - no array or map with more than WEFT_DECODE_ARRAY_ITEMS_MAX elements, and none declaring
 *   more elements than bytes remain (so msgpack-c never allocates for a count the input cannot
 *   back: a 5-byte array32 header cannot make it reserve gigabytes);
 * - every declared string, binary and extension length lies inside the buffer;
 * - no reserved byte 0xc1 and no trailing bytes.
 * `what` names the input in messages and in err->field ("body", "frame"); borrowed.
 * Returns 0 or -WEFT_E_INVALID_ARGUMENT. */
int weft_msgpack_check(const uint8_t *buf, size_t len, unsigned depth_max, const char *what,
                       weft_err *err);

/* The msgpack type of `o` as error messages name it ("string", "integer", "map", ...): a static
 * string. */
const char *weft_msgpack_type_name(const msgpack_object *o);

/* ---- Encoding ---- */

/* Appends one frame [type, req_id, body encoded with `s`] to `out`.
 * `out` is borrowed (initialised by the caller with msgpack_sbuffer_init; may already hold
 * earlier frames, which are kept). `s` and `body` are borrowed for the call.
 * On failure `out` is left exactly as it was.
 * Returns 0 or -WEFT_E_RESOURCE_EXHAUSTED (allocation failed, or the frame exceeds UINT32_MAX
 * bytes). The sender, not this function, decides whether a frame is too big for its peer. */
int weft_frame_encode(msgpack_sbuffer *out, uint32_t type, uint64_t req_id, const weft_schema *s,
                      const void *body);

/* Like weft_frame_encode, for a body that is already an encoded msgpack map (for example a
 * weft_reply body produced at apply): the `len` bytes at `body_map` are copied verbatim.
 * `body_map` is borrowed and must start with a map header (asserted).
 * Returns 0 or -WEFT_E_RESOURCE_EXHAUSTED; on failure `out` is unchanged. */
int weft_frame_encode_raw(msgpack_sbuffer *out, uint32_t type, uint64_t req_id,
                          const uint8_t *body_map, size_t len);

/* Appends an error frame: msg_type WEFT_MSG_ERROR, body weft_error_resp built from `err`
 * (code, its wire name, message, field), `leader_hint` (NOT_LEADER: node id of the leader, 0 if
 * unknown) and `leader_address` (NULL or "" when unknown). `err` must hold an error
 * (err->code > 0, asserted); both pointers are borrowed.
 * Returns 0 or -WEFT_E_RESOURCE_EXHAUSTED; on failure `out` is unchanged. */
int weft_frame_encode_error(msgpack_sbuffer *out, uint64_t req_id, const weft_err *err,
                            uint64_t leader_hint, const char *leader_address);

/* ---- Incremental reader ---- */

/* Splits a byte stream into frames. Lifecycle: weft_frame_reader_init, then feed and next any
 * number of times, then weft_frame_reader_free. Not thread-safe; one per connection. */
typedef struct weft_frame_reader {
    uint8_t *buf;             /* bytes fed and not yet dropped; malloc'd, owned by the reader */
    size_t len;               /* bytes held in buf */
    size_t cap;               /* bytes allocated for buf */
    size_t start;             /* offset of the first byte no frame returned by next covers */
    uint32_t frame_bytes_max; /* largest accepted length prefix */
    uint32_t bad_len;         /* the refused length prefix once the reader is poisoned */
    uint8_t bad_head[WEFT_FRAME_HEADER_BYTES]; /* its bytes as they came, to tell HTTP or TLS from a
                                                  frame */
    int failed; /* 0, or the negative error that poisoned the reader */
} weft_frame_reader;

/* Prepares an empty reader that accepts frames of up to `frame_bytes_max` bytes (> 0). Never
 * fails and allocates nothing. */
void weft_frame_reader_init(weft_frame_reader *r, uint32_t frame_bytes_max);

/* Copies `len` bytes received from the peer into the reader (`data` is borrowed for the call).
 * Invalidates every frame pointer an earlier weft_frame_reader_next returned.
 * The caller drains the reader with weft_frame_reader_next after every feed, so the buffer
 * holds at most one partial frame plus one feed; a poisoned reader refuses to buffer more.
 * Returns 0, -WEFT_E_RESOURCE_EXHAUSTED (allocation failed) or the poisoning error. */
int weft_frame_reader_feed(weft_frame_reader *r, const uint8_t *data, size_t len, weft_err *err);

/* Takes the next complete frame. Returns 1 and sets *frame / *frame_len to the frame's msgpack
 * array (the bytes after the length prefix, ready for weft_frame_parse); 0 when more bytes are
 * needed; or a negative error, after which the reader is poisoned and every later call returns
 * the same error (close the connection):
 * - -WEFT_E_RESOURCE_EXHAUSTED: the length prefix exceeds frame_bytes_max;
 * - -WEFT_E_INVALID_ARGUMENT: the length prefix is 0.
 * *frame points into the reader's buffer: valid until the next weft_frame_reader_feed or
 * weft_frame_reader_free (later calls to next do not move it). */
int weft_frame_reader_next(weft_frame_reader *r, const uint8_t **frame, size_t *frame_len,
                           weft_err *err);

/* Releases the buffer. The reader may be initialised again afterwards. */
void weft_frame_reader_free(weft_frame_reader *r);

/* ---- Parsing ---- */

/* Parses one frame's msgpack array (`frame`, `len` bytes, as weft_frame_reader_next returns
 * it, without the length prefix). Checks: len <= l->frame_bytes_max, the raw pre-check with
 * depth WEFT_FRAME_DEPTH_MAX (so the body nests at most WEFT_DECODE_DEPTH_MAX), an array of
 * exactly 3 elements, msg_type an unsigned integer <= UINT32_MAX, request_id an unsigned
 * integer, body a map. It does not check that msg_type is known: see weft_op_find.
 *
 * `up` must be initialised by the caller (msgpack_unpacked_init) and is destroyed by the
 * caller (msgpack_unpacked_destroy). On success *body points into `up`, and the strings and
 * binaries inside it point into `frame`: both must stay alive while *body or anything decoded
 * from it (weft_schema_decode with up->zone) is in use.
 * *type and *req_id are set as soon as they could be read, even when the call fails later, so
 * that an error reply can carry the right correlation id; otherwise they are 0.
 * Returns 0, -WEFT_E_INVALID_ARGUMENT (names "frame", "frame.msg_type", "frame.request_id" or
 * "frame.body") or -WEFT_E_RESOURCE_EXHAUSTED (frame over frame_bytes_max). */
int weft_frame_parse(const uint8_t *frame, size_t len, msgpack_unpacked *up, uint32_t *type,
                     uint64_t *req_id, const msgpack_object **body, const weft_limits *l,
                     weft_err *err);

#endif
