/* schema.h: table-driven msgpack encoding and strict decoding of C structs.
 *
 * Every message on the wire, every raft command, every history event and every stored record
 * is a C struct described by a weft_schema: one row per field (name, type, offset, rules).
 * One decoder and one encoder serve them all, so validation of hostile input lives in one place
 * and every error names the field. Encoding is deterministic (schema order), which G2 relies
 * on: replicas that encode the same struct produce byte-identical events. */
#ifndef WEFT_PROTO_SCHEMA_H
#define WEFT_PROTO_SCHEMA_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "errors.h"
#include "limits.h"

typedef enum weft_ftype {
    WEFT_F_STR,      /* weft_str; msgpack str; must be valid UTF-8; max_bytes or id_bytes_max */
    WEFT_F_BYTES,    /* weft_bytes; msgpack bin (str accepted too); max payload_bytes_max */
    WEFT_F_U64,      /* uint64_t; msgpack positive int */
    WEFT_F_U32,      /* uint32_t; msgpack positive int <= UINT32_MAX */
    WEFT_F_I64,      /* int64_t; msgpack int */
    WEFT_F_BOOL,     /* bool */
    WEFT_F_F64,      /* double; msgpack float or int */
    WEFT_F_OBJ,      /* embedded struct described by `sub` (a nested map) */
    WEFT_F_ARR_OBJ,  /* array of `sub` structs: `offset` holds a pointer, `count_offset` a uint32_t */
    WEFT_F_ARR_STR,  /* array of weft_str: same layout as WEFT_F_ARR_OBJ */
    WEFT_F_ENUM,     /* uint32_t on the struct, msgpack str on the wire, looked up in `names` */
} weft_ftype;

/* Field flags. */
#define WEFT_FF_REQUIRED 0x1u /* absent (or nil) is INVALID_ARGUMENT "field X is required" */
#define WEFT_FF_ID 0x2u       /* an identifier: limited by limits->id_bytes_max, must be non-empty
                                 when present */
#define WEFT_FF_PAYLOAD 0x4u  /* limited by limits->payload_bytes_max */

struct weft_schema;

typedef struct weft_field {
    const char *name;              /* map key on the wire */
    weft_ftype type;               /* how the value is encoded */
    uint32_t flags;                /* WEFT_FF_* */
    size_t offset;                 /* offsetof the value (or of the array pointer) */
    size_t count_offset;           /* arrays only: offsetof the uint32_t element count */
    const struct weft_schema *sub; /* OBJ and ARR_OBJ: element schema */
    const char *const *names;      /* ENUM: names indexed by value, NULL-terminated */
    uint32_t max_bytes;            /* STR/BYTES: explicit cap (0: use the flag's limit) */
    uint32_t max_items;            /* arrays: element cap (0: WEFT_DECODE_ARRAY_ITEMS_MAX) */
} weft_field;

typedef struct weft_schema {
    const char *name;         /* struct name, used in error messages */
    size_t size;              /* sizeof the struct */
    const weft_field *fields; /* rows */
    unsigned fields_count;    /* number of rows */
} weft_schema;

/* Row builders, so tables read as one line per field. */
#define WEFT_FIELD(T, member, ftype, fl) \
    {.name = #member, .type = (ftype), .flags = (fl), .offset = offsetof(T, member)}
#define WEFT_FIELD_OBJ(T, member, schema, fl) \
    {.name = #member, .type = WEFT_F_OBJ, .flags = (fl), .offset = offsetof(T, member), .sub = &(schema)}
#define WEFT_FIELD_ARR(T, member, count_member, schema, fl, max)                            \
    {.name = #member, .type = WEFT_F_ARR_OBJ, .flags = (fl), .offset = offsetof(T, member), \
     .count_offset = offsetof(T, count_member), .sub = &(schema), .max_items = (max)}
#define WEFT_FIELD_STRS(T, member, count_member, fl, max)                                   \
    {.name = #member, .type = WEFT_F_ARR_STR, .flags = (fl), .offset = offsetof(T, member), \
     .count_offset = offsetof(T, count_member), .max_items = (max)}
#define WEFT_FIELD_ENUM(T, member, name_table, fl) \
    {.name = #member, .type = WEFT_F_ENUM, .flags = (fl), .offset = offsetof(T, member), .names = (name_table)}
#define WEFT_SCHEMA(T, rows) \
    {.name = #T, .size = sizeof(T), .fields = (rows), .fields_count = WEFT_ARRAY_LEN(rows)}

/* Decodes `obj` (must be a map) into `out` (zeroed first, `schema->size` bytes).
 *
 * - Strings and bytes in `out` borrow from `obj`'s zone: valid while the msgpack_unpacked (or
 *   zone) that produced `obj` is alive.
 * - Arrays are allocated from `zone` (borrowed; freed with the zone).
 * - Unknown keys are ignored (forward compatibility). A nil value counts as absent.
 * - Every error is INVALID_ARGUMENT and names the field by its path ("commands[3].timer_id"),
 *   saying what was expected and what arrived.
 * Returns 0 or -WEFT_E_INVALID_ARGUMENT (or -WEFT_E_RESOURCE_EXHAUSTED when zone allocation
 * fails). */
int weft_schema_decode(const weft_schema *schema, const msgpack_object *obj, void *out,
                       msgpack_zone *zone, const weft_limits *limits, weft_err *err);

/* Encodes `in` as a msgpack map. Fields with a zero value (0, false, empty string or bytes,
 * empty array, all-zero embedded struct) are omitted, so records only carry what they use.
 * The order of keys is the schema order, which makes the encoding deterministic.
 * Returns 0, or -WEFT_E_RESOURCE_EXHAUSTED when the packer's writer fails (out of memory). */
int weft_schema_encode(const weft_schema *schema, const void *in, msgpack_packer *pk);

/* Convenience: encode into a fresh malloc'd buffer. On success *out and *out_len belong to the
 * caller (free()). Returns 0 or -WEFT_E_RESOURCE_EXHAUSTED. */
int weft_schema_encode_buf(const weft_schema *schema, const void *in, uint8_t **out,
                           size_t *out_len);

/* Convenience: unpack `len` bytes holding exactly one msgpack object and decode it.
 * `up` must be initialised by the caller with msgpack_unpacked_init and destroyed with
 * msgpack_unpacked_destroy; decoded strings borrow from it. Trailing bytes, truncation and
 * nesting deeper than WEFT_DECODE_DEPTH_MAX are INVALID_ARGUMENT. */
int weft_schema_decode_buf(const weft_schema *schema, const uint8_t *buf, size_t len, void *out,
                           msgpack_unpacked *up, const weft_limits *limits, weft_err *err);

/* True when every field of `in` is zero per the rules of weft_schema_encode. */
bool weft_schema_is_zero(const weft_schema *schema, const void *in);

/* Packs a weft_str / weft_bytes; small helpers the encoder and hand-written packers share. */
int weft_pack_str(msgpack_packer *pk, weft_str s);
int weft_pack_cstr(msgpack_packer *pk, const char *s);
int weft_pack_bytes(msgpack_packer *pk, weft_bytes b);

/* Depth of the deepest nesting inside `obj`, computed without recursion. Used to refuse input
 * nested deeper than WEFT_DECODE_DEPTH_MAX before any schema walks it. */
unsigned weft_msgpack_depth(const msgpack_object *obj);

#endif
