/* helper_cli.c: one run of a weft program with its output kept (helper_cli.h). */
#include "helper_cli.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/base.h"

/* How often a running program's exit and stderr are looked at. */
#define HCLI_POLL_MS 5u

/* The whole file as a malloc'd string ("" when it cannot be read). */
static char *hcli_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    if (f != NULL) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(n > 0 ? (size_t)n + 1 : 1);
        if (buf != NULL && n > 0) len = fread(buf, 1, (size_t)n, f);
        fclose(f);
    }
    if (buf == NULL) buf = malloc(1);
    assert_non_null(buf);
    buf[len] = '\0';
    return buf;
}

static off_t hcli_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* In the child: the streams, the environment, then exec. */
static _Noreturn void hcli_child(const char *const *argv, const hcli_opts *o, int fo, int fe) {
    int fi = open(o->stdin_path != NULL ? o->stdin_path : "/dev/null", O_RDONLY);
    if (fi < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
    if (o->weft_address != NULL) {
        setenv("WEFT_ADDRESS", o->weft_address, 1);
    } else {
        unsetenv("WEFT_ADDRESS");
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

void hcli_run(const char *const *argv, const hcli_opts *opts, hcli_result *r) {
    static unsigned runs;
    hcli_opts none = {0};
    const hcli_opts *o = opts != NULL ? opts : &none;
    memset(r, 0, sizeof *r);
    const char *tmp = getenv("TMPDIR");
    const char *dir = o->dir != NULL ? o->dir : (tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    char out_path[PATH_MAX], err_path[PATH_MAX];
    unsigned run = ++runs;
    snprintf(out_path, sizeof out_path, "%s/hcli-%d-%u.out", dir, (int)getpid(), run);
    snprintf(err_path, sizeof err_path, "%s/hcli-%d-%u.err", dir, (int)getpid(), run);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fo >= 0 && fe >= 0);
    uint64_t t0 = weft_mono_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) hcli_child(argv, o, fo, fe);
    close(fo);
    close(fe);
    int status = 0;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && weft_mono_ms() - t0 < HCLI_RUN_TIMEOUT_MS) {
        if (r->first_err_ms == 0 && hcli_size(err_path) > 0) r->first_err_ms = weft_mono_ms() - t0;
        usleep(HCLI_POLL_MS * 1000u);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    r->elapsed_ms = weft_mono_ms() - t0;
    if (r->first_err_ms == 0 && hcli_size(err_path) > 0) r->first_err_ms = r->elapsed_ms;
    r->code = w == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->out = hcli_slurp(out_path);
    r->err = hcli_slurp(err_path);
    unlink(out_path);
    unlink(err_path);
}

void hcli_result_free(hcli_result *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

void hcli_expect_code(const hcli_result *r, int code) {
    if (r->code != code) {
        fail_msg("exit code %d, expected %d\n--- stdout:\n%s--- stderr:\n%s", r->code, code, r->out,
                 r->err);
    }
}

void hcli_expect_in(const char *haystack, const char *needle) {
    if (strstr(haystack, needle) == NULL) fail_msg("'%s' not in:\n%s", needle, haystack);
}

void hcli_expect_not_in(const char *haystack, const char *needle) {
    if (strstr(haystack, needle) != NULL) fail_msg("'%s' unexpectedly in:\n%s", needle, haystack);
}
