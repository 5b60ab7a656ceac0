/* helper_weftd.c: spawning, readiness, stopping and cleanup of weftd processes for tests. */
#include "helper_weftd.h"

#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper_proc.h"
#include "proto/base.h"

void weftd_sleep_ms(uint32_t ms) {
    proc_sleep_ms(ms);
}

static void weftd_cleanup(void *w) {
    weftd_destroy(w);
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

int weftd_free_addr(char *out, size_t cap) {
    uint16_t port = 0;
    if (weftd_free_port(&port) != 0) return -1;
    snprintf(out, cap, "127.0.0.1:%u", port);
    return 0;
}

bool weftd_port_busy(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return true;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool busy = bind(fd, (struct sockaddr *)&a, sizeof a) != 0;
    close(fd);
    return busy;
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

void weftd_set_env(weftd *w, const char *const *env) {
    for (unsigned i = 0; i < w->env_count; i++)
        free(w->env[i]);
    w->env_count = 0;
    for (unsigned i = 0; env != NULL && env[i] != NULL; i++) {
        WEFT_ASSERT(w->env_count + 1 < WEFTD_ENV_MAX && strchr(env[i], '=') != NULL);
        w->env[w->env_count] = strdup(env[i]);
        WEFT_ASSERT(w->env[w->env_count] != NULL);
        w->env_count++;
    }
    w->env[w->env_count] = NULL;
}

int weftd_spawn(weftd *w) {
    char *argv[9 + WEFTD_ENV_MAX + WEFTD_EXTRA_ARGS_MAX]; /* NULL-terminated */
    unsigned n = 0;
    /* env execs weftd in the same process, so the pid, kill -9 and the death signal hold. */
    if (w->env_count > 0) argv[n++] = (char *)"/usr/bin/env";
    for (unsigned i = 0; i < w->env_count; i++)
        argv[n++] = w->env[i];
    argv[n++] = (char *)WEFTD_PATH;
    argv[n++] = (char *)"--data";
    argv[n++] = w->data_dir;
    argv[n++] = (char *)"--listen";
    argv[n++] = w->listen;
    argv[n++] = (char *)"--raft-listen";
    argv[n++] = w->raft_listen;
    for (unsigned i = 0; i < w->extra_count; i++)
        argv[n++] = w->extra[i];
    argv[n] = NULL;
    return proc_child_spawn(&w->proc, argv, w->stderr_path, "weftd");
}

int weftd_wait_exit(weftd *w, uint32_t timeout_ms) {
    return proc_child_wait(&w->proc, timeout_ms);
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
                    proc_exit_code(w->proc.last_status));
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

int weftd_prepare(weftd *w, const char *listen, const char *raft_listen, const char *const *extra) {
    memset(w, 0, sizeof *w);
    w->proc.last_status = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(w->dir, sizeof w->dir, "%s/weft-it-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(w->dir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", w->dir, strerror(errno));
        return -1;
    }
    proc_cleanup_register(w, weftd_cleanup);
    snprintf(w->data_dir, sizeof w->data_dir, "%s/data", w->dir);
    snprintf(w->stderr_path, sizeof w->stderr_path, "%s/weftd.stderr", w->dir);
    uint16_t port = 0, raft_port = 0;
    if ((listen == NULL || raft_listen == NULL) &&
        (weftd_free_port(&port) != 0 || weftd_free_port(&raft_port) != 0 || port == raft_port)) {
        fprintf(stderr, "cannot find two free loopback ports\n");
        return -1;
    }
    if (listen != NULL) {
        snprintf(w->listen, sizeof w->listen, "%s", listen);
    } else {
        snprintf(w->listen, sizeof w->listen, "127.0.0.1:%u", port);
    }
    if (raft_listen != NULL) {
        snprintf(w->raft_listen, sizeof w->raft_listen, "%s", raft_listen);
    } else {
        snprintf(w->raft_listen, sizeof w->raft_listen, "127.0.0.1:%u", raft_port);
    }
    weftd_set_extra(w, extra);
    return 0;
}

int weftd_start(weftd *w, const char *const *extra) {
    if (weftd_prepare(w, NULL, NULL, extra) != 0) return -1;
    if (weftd_spawn(w) != 0) return -1;
    return weftd_wait_ready(w, WEFTD_READY_TIMEOUT_MS);
}

int weftd_restart(weftd *w) {
    if (w->proc.pid != 0) {
        fprintf(stderr, "weftd_restart: process %d still running\n", (int)w->proc.pid);
        return -1;
    }
    if (weftd_spawn(w) != 0) return -1;
    return weftd_wait_ready(w, WEFTD_READY_TIMEOUT_MS);
}

int weftd_stop(weftd *w) {
    int code = proc_child_stop(&w->proc, "weftd", WEFTD_STOP_TIMEOUT_MS);
    if (code > 0) fprintf(stderr, "weftd exited with %d after SIGTERM\n", code);
    return code; /* the caller's teardown prints the stderr tail when the test fails */
}

void weftd_kill9(weftd *w) {
    proc_child_kill9(&w->proc);
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
    weftd_set_env(w, NULL);
    proc_cleanup_unregister(w);
}

void weftd_print_stderr(const weftd *w, unsigned lines) {
    proc_print_tail(w->stderr_path, lines);
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
    return weftd_client_at(w->listen, name, out);
}

int weftd_client_at(const char *addresses, const char *name, weft_client **out) {
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
    int rc = weft_client_open(addresses, &o, out, &err);
    if (rc != 0) {
        fprintf(stderr, "weft_client_open %s: %s %s\n", addresses, weft_error_name(rc),
                err.message);
    }
    return rc;
}
