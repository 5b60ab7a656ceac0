/* fuzz_util.h: what the libFuzzer targets of tests/fuzz share: scratch directories, running a
 * libuv loop until a condition holds (with a deadline that turns a hang into a finding), and
 * the entry points every target defines. */
#ifndef WEFT_FUZZ_UTIL_H
#define WEFT_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* libFuzzer's entry points (also called by fuzz_replay.c in builds without libFuzzer). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh directory under $TMPDIR (or /tmp) named after `tag`, written into `out`. Aborts on
 * failure: a target that cannot set up cannot fuzz. */
void fuzz_tmpdir(char *out, size_t cap, const char *tag);
/* Removes `path` and everything under it. */
void fuzz_rmtree(const char *path);

/* Runs `loop` one turn at a time until *done is true. A target whose input is not finished
 * within `deadline_ms` aborts naming `what`: a request the node never answers is a finding. */
void fuzz_loop_until(uv_loop_t *loop, const bool *done, uint64_t deadline_ms, const char *what);

/* Reads a little-endian u32 from the input cursor, or returns false at its end. */
bool fuzz_take_u32(const uint8_t **p, size_t *left, uint32_t *out);

/* ---- Structure-aware mutation (libFuzzer builds only) ---- */

/* An input that is a sequence of records, each behind a u32 length prefix (big-endian for
 * client frames, as on the wire; little-endian for fuzz_apply's entries), and maybe a tail
 * that is not a whole record. Mutating such an input byte-wise mostly breaks a prefix, and
 * then the target only meets its framing checks; this mutator mostly keeps the framing and
 * mutates inside one record (with `inner`, or libFuzzer's own mutator when NULL), and
 * sometimes drops, repeats or swaps whole records. One mutation in eight is a plain byte-wise
 * one, so broken framing stays covered. `inner` gets the record in a buffer of `cap` bytes and
 * returns its new length (<= cap). Returns the input's new size (<= max_size). */
typedef size_t (*fuzz_inner_mutator)(uint8_t *rec, size_t len, size_t cap, uint64_t *rng);
size_t fuzz_mutate_records(uint8_t *data, size_t size, size_t max_size, unsigned seed,
                           bool big_endian, fuzz_inner_mutator inner);

/* A random number from a mutator's state (xorshift64). */
uint64_t fuzz_rand(uint64_t *rng);

/* libFuzzer's own mutator, which fuzz_mutate_records calls. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#endif
