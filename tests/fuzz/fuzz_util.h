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

#endif
