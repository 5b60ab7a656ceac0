/* fuzz_replay.c: a main() for builds without libFuzzer (gcc, the plain and ASan suites). It
 * runs each target over files and directories named on the command line, once each, so the
 * seed corpus keeps passing in every build, and a crash found by libFuzzer can be replayed
 * under gdb: `tests/fuzz/fuzz_node_replay crash-<sha1>`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

/* Inputs larger than this are refused: libFuzzer's own -max_len stays far below it. */
#define FUZZ_REPLAY_INPUT_BYTES_MAX (64u * 1024u * 1024u)

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    uint8_t *buf = malloc(FUZZ_REPLAY_INPUT_BYTES_MAX);
    size_t n = buf != NULL ? fread(buf, 1, FUZZ_REPLAY_INPUT_BYTES_MAX, f) : 0;
    fclose(f);
    if (buf == NULL) return 1;
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int replay_path(const char *path, unsigned *count) {
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return 1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rc = replay_path(sub, count);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    unsigned count = 0;
    for (int i = 1; i < argc; i++) {
        if (replay_path(argv[i], &count) != 0) return 1;
    }
    if (count == 0) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...: no input found\n", argv[0]);
        return 1;
    }
    printf("%s: %u inputs ran\n", argv[0], count);
    return 0;
}
