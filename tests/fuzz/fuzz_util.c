/* fuzz_util.c: scratch directories and loop driving for the fuzz targets (fuzz_util.h). */
#include "fuzz_util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/base.h"

void fuzz_tmpdir(char *out, size_t cap, const char *tag) {
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    int n = snprintf(out, cap, "%s/weft-fuzz-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= cap || mkdtemp(out) == NULL) {
        fprintf(stderr, "fuzz: cannot create a scratch directory under %s\n", base);
        abort();
    }
}

static int rmtree_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void fuzz_rmtree(const char *path) {
    nftw(path, rmtree_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void fuzz_loop_until(uv_loop_t *loop, const bool *done, uint64_t deadline_ms, const char *what) {
    uint64_t until = weft_mono_ms() + deadline_ms;
    while (!*done) {
        uv_run(loop, UV_RUN_ONCE);
        if (!*done && weft_mono_ms() > until) {
            fprintf(stderr, "fuzz: %s did not finish within %llu ms\n", what,
                    (unsigned long long)deadline_ms);
            abort();
        }
    }
}

bool fuzz_take_u32(const uint8_t **p, size_t *left, uint32_t *out) {
    if (*left < 4) return false;
    const uint8_t *b = *p;
    *out = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    *p += 4;
    *left -= 4;
    return true;
}
