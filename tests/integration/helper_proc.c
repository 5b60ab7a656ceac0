/* helper_proc.c: spawning, waiting, stopping and cleanup of test child processes. */
#include "helper_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/base.h"

typedef struct proc_cleanup {
    void *obj;
    void (*fn)(void *obj);
} proc_cleanup;

static proc_cleanup registry[PROC_CLEANUP_MAX];
static bool hook_installed;

void proc_sleep_ms(uint32_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Runs at exit, also after a failed cmocka assertion: no child or temp dir outlives the test.
 * Last registered first: workers go before the weftd they talk to. */
static void proc_exit_hook(void) {
    for (unsigned i = PROC_CLEANUP_MAX; i-- > 0;) {
        proc_cleanup c = registry[i];
        registry[i] = (proc_cleanup){0};
        if (c.obj != NULL) c.fn(c.obj);
    }
}

void proc_cleanup_register(void *obj, void (*cleanup)(void *obj)) {
    if (!hook_installed) {
        atexit(proc_exit_hook);
        hook_installed = true;
    }
    for (unsigned i = 0; i < PROC_CLEANUP_MAX; i++) {
        if (registry[i].obj == obj) return;
    }
    for (unsigned i = 0; i < PROC_CLEANUP_MAX; i++) {
        if (registry[i].obj == NULL) {
            registry[i] = (proc_cleanup){.obj = obj, .fn = cleanup};
            return;
        }
    }
    WEFT_ASSERT(!"too many test processes registered; raise PROC_CLEANUP_MAX");
}

void proc_cleanup_unregister(void *obj) {
    for (unsigned i = 0; i < PROC_CLEANUP_MAX; i++) {
        if (registry[i].obj == obj) registry[i] = (proc_cleanup){0};
    }
}

_Noreturn void proc_exec_child(char *const *argv, int out_fd) {
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    if (out_fd >= 0) {
        /* dup2 clears O_CLOEXEC on the copies, so the program keeps its stdout and stderr. */
        dup2(out_fd, STDOUT_FILENO);
        dup2(out_fd, STDERR_FILENO);
    }
    /* If the test process dies without running its exit hook (a crash, a ctest timeout), the
     * kernel kills the child too. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(argv[0], argv);
    static const char msg[] = "exec failed: ";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)!write(STDERR_FILENO, argv[0], strlen(argv[0]));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
}

int proc_run_quiet(char *const *argv) {
    pid_t pid = fork();
    if (pid == 0) {
        int null_fd = open("/dev/null", O_WRONLY);
        if (null_fd >= 0) dup2(null_fd, STDERR_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0) return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int proc_child_spawn(proc_child *c, char *const *argv, const char *log_path, const char *name) {
    WEFT_ASSERT(c->pid == 0);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", log_path, strerror(errno));
        return -1;
    }
    c->starts++;
    char banner[128];
    int n = snprintf(banner, sizeof banner, "==== %s start %d ====\n", name, c->starts);
    if (n > 0) (void)!write(fd, banner, strlen(banner));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) proc_exec_child(argv, fd);
    close(fd);
    if (pid < 0) {
        fprintf(stderr, "fork for %s: %s\n", name, strerror(errno));
        return -1;
    }
    c->pid = pid;
    return 0;
}

int proc_child_wait(proc_child *c, uint32_t timeout_ms) {
    uint64_t deadline_ms = weft_mono_ms() + timeout_ms;
    while (c->pid != 0) {
        int status = 0;
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid || (r < 0 && errno != EINTR)) {
            c->last_status = r == c->pid ? status : -1;
            c->pid = 0;
        } else if (weft_mono_ms() >= deadline_ms) {
            return -1;
        } else {
            proc_sleep_ms(10);
        }
    }
    return proc_exit_code(c->last_status);
}

bool proc_child_alive(proc_child *c) {
    if (c->pid == 0) return false;
    (void)proc_child_wait(c, 0);
    return c->pid != 0;
}

int proc_child_stop(proc_child *c, const char *name, uint32_t timeout_ms) {
    if (c->pid == 0) return -1;
    kill(c->pid, SIGTERM);
    int code = proc_child_wait(c, timeout_ms);
    if (c->pid != 0) {
        fprintf(stderr, "%s did not stop within %u ms of SIGTERM; killing it\n", name, timeout_ms);
        proc_child_kill9(c);
        return -1;
    }
    return code;
}

void proc_child_kill9(proc_child *c) {
    if (c->pid == 0) return;
    kill(c->pid, SIGKILL);
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
    }
    c->last_status = status;
    c->pid = 0;
}

int proc_exit_code(int status) {
    if (status < 0) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

void proc_print_tail(const char *path, unsigned lines) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    /* Two passes: count lines, then print the tail. Files are small in tests. */
    unsigned total = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        total += ch == '\n';
    rewind(f);
    unsigned skip = total > lines ? total - lines : 0, seen = 0;
    fprintf(stderr, "---- last %u lines of %s ----\n", total - skip, path);
    while ((ch = fgetc(f)) != EOF) {
        if (seen >= skip) fputc(ch, stderr);
        seen += ch == '\n';
    }
    fprintf(stderr, "---- end of %s ----\n", path);
    fclose(f);
}
