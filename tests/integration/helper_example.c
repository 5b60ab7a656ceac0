/* helper_example.c: worker subprocesses, CLI runs and the ledger reader of the example tests. */
#include "helper_example.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper_proc.h"
#include "proto/base.h"

static void ex_proc_cleanup(void *p) {
    ex_proc_destroy(p);
}

/* Starts the copied command; the log's start banner names the binary. */
static int ex_proc_spawn(ex_proc *p) {
    WEFT_ASSERT(p->argv[0] != NULL);
    const char *slash = strrchr(p->argv[0], '/');
    return proc_child_spawn(&p->proc, p->argv, p->log_path, slash != NULL ? slash + 1 : p->argv[0]);
}

int ex_proc_start(ex_proc *p, const char *const *argv, const char *log_path) {
    memset(p, 0, sizeof *p);
    p->proc.last_status = -1;
    proc_cleanup_register(p, ex_proc_cleanup);
    unsigned n = 0;
    for (; argv[n] != NULL; n++) {
        WEFT_ASSERT(n < EX_PROC_ARGS_MAX);
        p->argv[n] = strdup(argv[n]);
        WEFT_ASSERT(p->argv[n] != NULL);
    }
    p->argv[n] = NULL;
    snprintf(p->log_path, sizeof p->log_path, "%s", log_path);
    return ex_proc_spawn(p);
}

int ex_proc_restart(ex_proc *p) {
    if (p->proc.pid != 0) {
        fprintf(stderr, "ex_proc_restart: %s still runs as %d\n", p->argv[0], (int)p->proc.pid);
        return -1;
    }
    return ex_proc_spawn(p);
}

bool ex_proc_alive(ex_proc *p) {
    return proc_child_alive(&p->proc);
}

void ex_proc_kill9(ex_proc *p) {
    proc_child_kill9(&p->proc);
}

int ex_proc_stop(ex_proc *p) {
    return proc_child_stop(&p->proc, p->argv[0], EX_PROC_STOP_TIMEOUT_MS);
}

void ex_proc_destroy(ex_proc *p) {
    ex_proc_kill9(p);
    for (unsigned i = 0; i < EX_PROC_ARGS_MAX && p->argv[i] != NULL; i++) {
        free(p->argv[i]);
        p->argv[i] = NULL;
    }
    proc_cleanup_unregister(p);
}

void ex_proc_print_log(const ex_proc *p, unsigned lines) {
    proc_print_tail(p->log_path, lines);
}

/* Reads the pipe until EOF or the deadline. Returns 0 at EOF, -1 at the deadline. */
static int ex_cli_drain(int fd, char *out, size_t cap, uint64_t deadline_ms) {
    size_t len = 0;
    char scratch[4096];
    for (;;) {
        uint64_t now_ms = weft_mono_ms();
        if (now_ms >= deadline_ms) return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(deadline_ms - now_ms));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return -1;
        char *dst = len + 1 < cap ? out + len : scratch;
        size_t room = len + 1 < cap ? cap - 1 - len : sizeof scratch;
        ssize_t n = read(fd, dst, room);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        if (dst != scratch) {
            len += (size_t)n;
            out[len] = '\0';
        }
    }
}

int ex_run(const char *const *argv, char *out, size_t cap) {
    WEFT_ASSERT(argv[0] != NULL && out != NULL && cap > 0);
    out[0] = '\0';
    fprintf(stderr, "$");
    for (unsigned i = 0; argv[i] != NULL; i++)
        fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n");
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_fds[0]);
        proc_exec_child((char *const *)argv, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    if (pid < 0) {
        close(pipe_fds[0]);
        return -1;
    }
    int drained = ex_cli_drain(pipe_fds[0], out, cap, weft_mono_ms() + EX_CLI_TIMEOUT_MS);
    close(pipe_fds[0]);
    if (drained != 0) {
        fprintf(stderr, "%s ran longer than %u ms; killing it\n", argv[0], EX_CLI_TIMEOUT_MS);
        kill(pid, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    fprintf(stderr, "%s", out);
    if (drained != 0 || !WIFEXITED(status)) return -1;
    fprintf(stderr, "(exit %d)\n", WEXITSTATUS(status));
    return WEXITSTATUS(status);
}

int ex_cli(const char *address, const char *const *args, char *out, size_t cap) {
    const char *argv[EX_PROC_ARGS_MAX + 4];
    unsigned n = 0;
    argv[n++] = WEFT_CLI_PATH;
    argv[n++] = "--address";
    argv[n++] = address;
    for (unsigned i = 0; args[i] != NULL; i++) {
        WEFT_ASSERT(n < EX_PROC_ARGS_MAX + 3);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return ex_run(argv, out, cap);
}

int ex_ledger_read(const char *path, const char *workflow_id, ex_ledger_line *lines, size_t cap,
                   size_t *count) {
    *count = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) return errno == ENOENT ? 0 : -1;
    char buf[1024];
    int rc = 0;
    while (rc == 0 && fgets(buf, sizeof buf, f) != NULL) {
        ex_ledger_line l = {0};
        if (sscanf(buf, "%127s %63s %u", l.workflow_id, l.activity, &l.attempt) != 3) {
            fprintf(stderr, "ledger %s: bad line '%s'\n", path, buf);
            rc = -1;
        } else if (workflow_id == NULL || strcmp(workflow_id, l.workflow_id) == 0) {
            if (*count == cap)
                rc = -1;
            else
                lines[(*count)++] = l;
        }
    }
    fclose(f);
    return rc;
}

int ex_ledger_wait(const char *path, const char *workflow_id, const char *activity,
                   unsigned attempt, uint32_t timeout_ms) {
    uint64_t deadline_ms = weft_mono_ms() + timeout_ms;
    static ex_ledger_line lines[EX_LEDGER_LINES_MAX];
    do {
        size_t n = 0;
        if (ex_ledger_read(path, workflow_id, lines, EX_LEDGER_LINES_MAX, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(lines[i].activity, activity) == 0 && lines[i].attempt == attempt) {
                    return 0;
                }
            }
        }
        proc_sleep_ms(20);
    } while (weft_mono_ms() < deadline_ms);
    fprintf(stderr, "ledger %s: no line '%s %s %u' after %u ms\n", path, workflow_id, activity,
            attempt, timeout_ms);
    return -1;
}

bool ex_ledger_unique(const ex_ledger_line *lines, size_t count) {
    for (size_t i = 0; i < count; i++) {
        for (size_t j = i + 1; j < count; j++) {
            if (strcmp(lines[i].workflow_id, lines[j].workflow_id) == 0 &&
                strcmp(lines[i].activity, lines[j].activity) == 0 &&
                lines[i].attempt == lines[j].attempt) {
                return false;
            }
        }
    }
    return true;
}

const char *ex_ledger_format(const ex_ledger_line *lines, size_t count, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && len + 1 < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s %u", i > 0 ? ", " : "", lines[i].activity,
                         lines[i].attempt);
        if (n < 0) break;
        len += (size_t)n;
    }
    return buf;
}
