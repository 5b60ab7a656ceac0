/* helper_weftd.c: spawning, readiness, stopping and cleanup of weftd processes for tests. */
#include "helper_weftd.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/base.h"

/* Processes the exit hook cleans up. */
#define WEFTD_REGISTRY_MAX 16u

static weftd *registry[WEFTD_REGISTRY_MAX];
static bool hook_installed;

void weftd_sleep_ms(uint32_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Runs at exit, also after a failed cmocka assertion: no weftd or temp dir outlives the test. */
static void weftd_exit_hook(void) {
    for (unsigned i = 0; i < WEFTD_REGISTRY_MAX; i++) {
        if (registry[i] != NULL) weftd_destroy(registry[i]);
    }
}

static void weftd_register(weftd *w) {
    if (!hook_installed) {
        atexit(weftd_exit_hook);
        hook_installed = true;
    }
    for (unsigned i = 0; i < WEFTD_REGISTRY_MAX; i++) {
        if (registry[i] == w) return;
    }
    for (unsigned i = 0; i < WEFTD_REGISTRY_MAX; i++) {
        if (registry[i] == NULL) {
            registry[i] = w;
            return;
        }
    }
    WEFT_ASSERT(!"too many weftd processes registered; raise WEFTD_REGISTRY_MAX");
}

static void weftd_unregister(weftd *w) {
    for (unsigned i = 0; i < WEFTD_REGISTRY_MAX; i++) {
        if (registry[i] == w) registry[i] = NULL;
    }
}

/* A loopback port nobody listens on right now: bind port 0 and read what the kernel chose. */
static int weftd_free_port(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    if (rc == 0) rc = getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    if (rc != 0) return -1;
    *port = ntohs(a.sin_port);
    return 0;
}

void weftd_set_extra(weftd *w, const char *const *extra) {
    for (unsigned i = 0; i < w->extra_count; i++)
        free(w->extra[i]);
    w->extra_count = 0;
    for (unsigned i = 0; extra != NULL && extra[i] != NULL; i++) {
        WEFT_ASSERT(w->extra_count + 1 < WEFTD_EXTRA_ARGS_MAX);
        w->extra[w->extra_count] = strdup(extra[i]);
        WEFT_ASSERT(w->extra[w->extra_count] != NULL);
        w->extra_count++;
    }
    w->extra[w->extra_count] = NULL;
}

/* What the child needs, prepared before fork: after fork in a threaded test (worker threads
 * keep running during a restart) the child may only make async-signal-safe calls. */
typedef struct weftd_exec {
    char *argv[8 + WEFTD_EXTRA_ARGS_MAX]; /* NULL-terminated */
    char banner[128];                     /* separator line written to the capture file */
    size_t banner_len;                    /* bytes in banner */
} weftd_exec;

static void weftd_exec_prepare(const weftd *w, weftd_exec *x) {
    unsigned n = 0;
    x->argv[n++] = (char *)WEFTD_PATH;
    x->argv[n++] = (char *)"--data";
    x->argv[n++] = (char *)w->data_dir;
    x->argv[n++] = (char *)"--listen";
    x->argv[n++] = (char *)w->listen;
    x->argv[n++] = (char *)"--raft-listen";
    x->argv[n++] = (char *)w->raft_listen;
    for (unsigned i = 0; i < w->extra_count; i++)
        x->argv[n++] = w->extra[i];
    x->argv[n] = NULL;
    int len = snprintf(x->banner, sizeof x->banner, "==== weftd start %d ====\n", w->starts);
    x->banner_len = len > 0 ? (size_t)len : 0;
}

/* In the child: stdout and stderr to the capture file, die with the parent, exec weftd. */
static _Noreturn void weftd_exec_child(const weftd *w, const weftd_exec *x) {
    int fd = open(w->stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, x->banner, x->banner_len);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
    }
    /* If the test process dies without running its exit hook (a crash, a ctest timeout), the
     * kernel kills weftd too. Only the main thread spawns, so the "parent thread" is it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(WEFTD_PATH, x->argv);
    static const char msg[] = "exec of weftd (WEFTD_PATH) failed\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(127);
}

int weftd_spawn(weftd *w) {
    WEFT_ASSERT(w->pid == 0);
    w->starts++;
    weftd_exec x;
    weftd_exec_prepare(w, &x);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "weftd: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) weftd_exec_child(w, &x);
    w->pid = pid;
    return 0;
}

/* Decodes a waitpid status into the helper's exit code convention. */
static int weftd_status_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

int weftd_wait_exit(weftd *w, uint32_t timeout_ms) {
    if (w->pid == 0) return w->last_exit_status < 0 ? -1 : weftd_status_code(w->last_exit_status);
    uint64_t deadline_ms = weft_mono_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(w->pid, &status, WNOHANG);
        if (r == w->pid) {
            w->pid = 0;
            w->last_exit_status = status;
            return weftd_status_code(status);
        }
        if (r < 0 && errno != EINTR) {
            w->pid = 0;
            return -1;
        }
        if (weft_mono_ms() >= deadline_ms) return -1;
        weftd_sleep_ms(10);
    }
}

/* True when every shard in the status has a leader whose barrier applied. */
static bool weftd_all_ready(const weft_cluster_status_resp *s) {
    if (s->shards_count == 0 || s->shards_count != s->shard_count) return false;
    for (uint32_t i = 0; i < s->shards_count; i++) {
        if (!s->shards[i].ready || s->shards[i].leader_node == 0) return false;
    }
    return true;
}

int weftd_wait_ready(weftd *w, uint32_t timeout_ms) {
    uint64_t deadline_ms = weft_mono_ms() + timeout_ms;
    weft_client_opts o = {.connect_timeout_ms = 500, .call_timeout_ms = 2000, .no_retries = true};
    weft_err err;
    weft_err_clear(&err);
    while (weft_mono_ms() < deadline_ms) {
        if (weftd_wait_exit(w, 0) >= 0) {
            fprintf(stderr, "weftd exited while starting (status %d)\n",
                    weftd_status_code(w->last_exit_status));
            weftd_print_stderr(w, WEFTD_STDERR_TAIL_LINES);
            return -1;
        }
        weft_client *c = NULL;
        if (weft_client_open(w->listen, &o, &c, &err) == 0) {
            weft_response h = {0};
            weft_cluster_status_resp s;
            int rc = weft_client_cluster_status(c, &s, &h, &err);
            bool ready = rc == 0 && weftd_all_ready(&s);
            weft_response_free(&h);
            weft_client_close(c);
            if (ready) return 0;
        }
        weftd_sleep_ms(50);
    }
    fprintf(stderr, "weftd at %s not ready after %u ms (last: %s %s)\n", w->listen, timeout_ms,
            weft_error_name(err.code), err.message);
    weftd_print_stderr(w, WEFTD_STDERR_TAIL_LINES);
    return -1;
}

int weftd_start(weftd *w, const char *const *extra) {
    memset(w, 0, sizeof *w);
    w->last_exit_status = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(w->dir, sizeof w->dir, "%s/weft-it-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(w->dir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", w->dir, strerror(errno));
        return -1;
    }
    weftd_register(w);
    snprintf(w->data_dir, sizeof w->data_dir, "%s/data", w->dir);
    snprintf(w->stderr_path, sizeof w->stderr_path, "%s/weftd.stderr", w->dir);
    uint16_t port = 0, raft_port = 0;
    if (weftd_free_port(&port) != 0 || weftd_free_port(&raft_port) != 0 || port == raft_port) {
        fprintf(stderr, "cannot find two free loopback ports\n");
        return -1;
    }
    snprintf(w->listen, sizeof w->listen, "127.0.0.1:%u", port);
    snprintf(w->raft_listen, sizeof w->raft_listen, "127.0.0.1:%u", raft_port);
    weftd_set_extra(w, extra);
    if (weftd_spawn(w) != 0) return -1;
    return weftd_wait_ready(w, WEFTD_READY_TIMEOUT_MS);
}

int weftd_restart(weftd *w) {
    if (w->pid != 0) {
        fprintf(stderr, "weftd_restart: process %d still running\n", (int)w->pid);
        return -1;
    }
    if (weftd_spawn(w) != 0) return -1;
    return weftd_wait_ready(w, WEFTD_READY_TIMEOUT_MS);
}

int weftd_stop(weftd *w) {
    if (w->pid == 0) return -1;
    kill(w->pid, SIGTERM);
    int code = weftd_wait_exit(w, WEFTD_STOP_TIMEOUT_MS);
    if (code < 0) {
        fprintf(stderr, "weftd did not exit within %u ms of SIGTERM; killing it\n",
                WEFTD_STOP_TIMEOUT_MS);
        weftd_kill9(w);
        return -1;
    }
    if (code != 0) fprintf(stderr, "weftd exited with %d after SIGTERM\n", code);
    return code; /* the caller's teardown prints the stderr tail when the test fails */
}

void weftd_kill9(weftd *w) {
    if (w->pid == 0) return;
    kill(w->pid, SIGKILL);
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
    }
    w->last_exit_status = status;
    w->pid = 0;
}

static int weftd_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void weftd_destroy(weftd *w) {
    weftd_kill9(w);
    if (getenv("WEFT_KEEP_TMP") == NULL && w->dir[0] != '\0') {
        nftw(w->dir, weftd_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    } else if (w->dir[0] != '\0') {
        fprintf(stderr, "keeping %s (WEFT_KEEP_TMP)\n", w->dir);
    }
    w->dir[0] = '\0';
    weftd_set_extra(w, NULL);
    weftd_unregister(w);
}

void weftd_print_stderr(const weftd *w, unsigned lines) {
    FILE *f = fopen(w->stderr_path, "r");
    if (f == NULL) return;
    /* Two passes: count lines, then print the tail. Files are small in tests. */
    unsigned total = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        total += ch == '\n';
    rewind(f);
    unsigned skip = total > lines ? total - lines : 0, seen = 0;
    fprintf(stderr, "---- last %u lines of %s ----\n", total - skip, w->stderr_path);
    while ((ch = fgetc(f)) != EOF) {
        if (seen >= skip) fputc(ch, stderr);
        seen += ch == '\n';
    }
    fprintf(stderr, "---- end of weftd stderr ----\n");
    fclose(f);
}

bool weftd_stderr_contains(const weftd *w, const char *needle) {
    FILE *f = fopen(w->stderr_path, "r");
    if (f == NULL) return false;
    bool found = false;
    char line[4096];
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int weftd_client(const weftd *w, const char *name, weft_client **out) {
    weft_client_opts o = {
        .client_name = name,
        .connect_timeout_ms = 1000,
        .call_timeout_ms = 10000,
        .retries_max = 60,
        .backoff_initial_ms = 20,
        .backoff_max_ms = 400,
    };
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_client_open(w->listen, &o, out, &err);
    if (rc != 0) {
        fprintf(stderr, "weft_client_open %s: %s %s\n", w->listen, weft_error_name(rc),
                err.message);
    }
    return rc;
}
