/* json.h: JSON in libweft (jansson): payload helpers for workflow and activity code, and the JSON
 * form of responses and history events that the `weft` CLI prints and the replayer reads.
 *
 * The JSON form of a struct is its wire form (weft/protocol.h schemas) with msgpack turned into
 * JSON: the same keys (snake_case; `namespace_` is "namespace"), enums as their names
 * ("ActivityTaskScheduled", "completed"), zero fields omitted. A byte string (payloads:
 * input, result, details) is a JSON string when its bytes are valid UTF-8, and
 * {"base64": "..."} otherwise, so the form is lossless both ways.
 *
 * History files. `weft workflow show --id ID --output json > h.jsonl` writes one event per line
 * in that form; weft_history_load_json() reads such a file back for the replayer. */
#ifndef WEFT_JSON_H
#define WEFT_JSON_H

#include <jansson.h>
#include <stdio.h>

#include "weft/worker.h"

WEFT_BEGIN_DECLS

/* Largest history file weft_history_load_json reads (50 MiB of history plus JSON overhead). */
#define WEFT_HISTORY_FILE_BYTES_MAX (256u * 1024u * 1024u)

/* ---- Payload helpers ---- */

/* Parses a payload as JSON (any value, not only objects). Returns a new reference the caller
 * must json_decref, or NULL with err filled (INVALID_ARGUMENT naming `what`, with jansson's
 * line and column). `what` names the payload in the message, e.g. "input". */
json_t *weft_json_parse(weft_bytes payload, const char *what, weft_err *err);

/* Serialises `v` (borrowed) compactly with sorted keys, so equal values give equal bytes.
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL when out of memory. */
char *weft_json_dump(const json_t *v);

/* As weft_json_dump, into the run's arena (workflow code) or the activity's memory. Returns the
 * empty payload when out of memory. */
weft_bytes weft_wf_json(weft_wf *wf, const json_t *v);
weft_bytes weft_act_json(weft_act *act, const json_t *v);

/* A payload over a NUL-terminated string (borrowed; no copy). */
weft_bytes weft_bytes_c(const char *s);

/* ---- Structs as JSON ---- */

/* The JSON form of `in` (a struct described by `schema`, borrowed). Returns a new reference, or
 * NULL when out of memory. */
json_t *weft_json_from_struct(const weft_schema *schema, const void *in);

/* Holds what a struct decoded from JSON borrows. Zero-initialise; free with
 * weft_json_holder_free (safe on a zeroed holder). */
typedef struct weft_json_holder {
    struct weft_json_holder_priv *priv; /* private: the bytes the JSON became, or NULL */
} weft_json_holder;
void weft_json_holder_free(weft_json_holder *h);

/* Decodes the JSON form `v` (borrowed) into `out` (a struct of `schema`, zeroed first). Strings
 * and arrays in `out` borrow from `h` (reset first). Errors: INVALID_ARGUMENT naming the field
 * (the schema decoder's rules), RESOURCE_EXHAUSTED. */
int weft_json_to_struct(const weft_schema *schema, const json_t *v, void *out,
                        weft_json_holder *h, weft_err *err);

/* ---- History files ---- */

/* A history read from a file. events[i] borrows from the file's private memory. */
typedef struct weft_history_file {
    weft_event *events;
    uint32_t events_count;
    void *priv; /* private */
} weft_history_file;

/* Reads a JSON-lines history (one event object per line; blank lines skipped) from `path`
 * ("-" = stdin). Also accepts one JSON array of events, or an object with an "events" array.
 * On success *out belongs to the caller (weft_history_file_free). Errors: NOT_FOUND (no such
 * file), INVALID_ARGUMENT (bad JSON or event: the message names the line and the field; ids not
 * dense from 1), RESOURCE_EXHAUSTED (WEFT_HISTORY_FILE_BYTES_MAX or memory). */
int weft_history_load_json(const char *path, weft_history_file **out, weft_err *err);
void weft_history_file_free(weft_history_file *h);

/* Writes `ev` (borrowed) to `f` as one line of the history-file form. Returns 0, or
 * -WEFT_E_RESOURCE_EXHAUSTED (memory) / -WEFT_E_INTERNAL (write error). */
int weft_history_write_event_json(FILE *f, const weft_event *ev, weft_err *err);

WEFT_END_DECLS

#endif
