/* spawn.c: --spawn: runs weftd as a child on a temp data dir and free loopback ports, waits
 * until every shard has a ready leader, and stops it with SIGTERM at the end. */
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
#include <unistd.h>

#include "bench.h"

/* Fixed flags before the --weftd-arg ones: --data D --listen A --raft-listen R --shards N. */
#define SPAWN_FIXED_ARGS 10u
/* Pause between readiness probes. */
#define SPAWN_PROBE_MS 50u
/* Open file descriptors of the temp dir walk while removing it. */
#define SPAWN_RM_FDS 16
/* One line of weftd's log, as read back to count warnings. */
#define SPAWN_LOG_LINE_BYTES 4096u

/* Binds two distinct ephemeral loopback ports at once and reads back what the kernel chose.
 * Both are released before weftd binds them: another process could take one in between, and
 * then weftd refuses to start and says so. */
static int spawn_free_ports(uint16_t ports[2]) {
    int fds[2] = {-1, -1};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        rc = fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
                     getsockname(fds[i], (struct sockaddr *)&a, &len) != 0
                 ? -1
                 : 0;
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) close(fds[i]);
    }
    return rc;
}

/* Builds weftd's argv into argv (room for SPAWN_FIXED_ARGS + BENCH_WEFTD_ARGS_MAX + 2). */
static void spawn_argv(const bench_weftd *w, const bench_config *cfg, char *data_dir, char *shards,
                       char **argv) {
    uint32_t n = 0;
    argv[n++] = (char *)cfg->spawn_path;
    argv[n++] = (char *)"--data";
    argv[n++] = data_dir;
    argv[n++] = (char *)"--listen";
    argv[n++] = (char *)w->listen;
    argv[n++] = (char *)"--raft-listen";
    argv[n++] = (char *)w->raft_listen;
    argv[n++] = (char *)"--shards";
    argv[n++] = shards;
    WEFT_ASSERT(n < SPAWN_FIXED_ARGS);
    for (uint32_t i = 0; i < cfg->weftd_args_count; i++)
        argv[n++] = (char *)cfg->weftd_args[i];
    argv[n] = NULL;
}

/* Forks and execs; the child writes stdout and stderr to the log and dies with the bench. */
static int spawn_exec(bench_weftd *w, char **argv) {
    int log_fd = open(w->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        fprintf(stderr, "weft-bench: cannot create %s: %s\n", w->log_path, strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a crashed bench leaves no weftd behind */
        /* Its own process group: a Ctrl-C meant for the bench must not stop weftd under the
         * load still running; the bench stops it with SIGTERM once the load is over. */
        setpgid(0, 0);
        execv(argv[0], argv);
        static const char msg[] = "weft-bench: exec of the --spawn binary failed\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
        _exit(127);
    }
    close(log_fd);
    if (pid < 0) {
        fprintf(stderr, "weft-bench: fork: %s\n", strerror(errno));
        return -1;
    }
    w->pid = pid;
    return 0;
}

/* True when ClusterStatus names a ready leader for every shard. */
static bool spawn_probe_ready(const char *address) {
    weft_client_opts o = {.connect_timeout_ms = 500, .call_timeout_ms = 2000, .no_retries = true};
    weft_client *c = NULL;
    weft_err err;
    if (weft_client_open(address, &o, &c, &err) != 0) return false;
    weft_response h = {0};
    weft_cluster_status_resp s;
    bool ready = weft_client_cluster_status(c, &s, &h, &err) == 0 && s.shards_count > 0 &&
                 s.shards_count == s.shard_count;
    for (uint32_t i = 0; ready && i < s.shards_count; i++)
        ready = s.shards[i].ready && s.shards[i].leader_node != 0;
    weft_response_free(&h);
    weft_client_close(c);
    return ready;
}

static int spawn_wait_ready(bench_weftd *w) {
    uint64_t deadline_us = bench_now_us() + (uint64_t)BENCH_WEFTD_READY_MS * 1000u;
    while (bench_now_us() < deadline_us && !atomic_load(&bench_stop)) {
        int status = 0;
        if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
            w->pid = 0;
            fprintf(stderr, "weft-bench: weftd exited while starting (status 0x%x); see %s\n",
                    (unsigned)status, w->log_path);
            return -1;
        }
        if (spawn_probe_ready(w->listen)) return 0;
        bench_sleep_ms(SPAWN_PROBE_MS);
    }
    fprintf(stderr, "weft-bench: weftd at %s not ready within %u ms; see %s\n", w->listen,
            BENCH_WEFTD_READY_MS, w->log_path);
    return -1;
}

int bench_weftd_start(bench_weftd *w, bench_config *cfg) {
    WEFT_ASSERT(w != NULL && cfg != NULL && cfg->spawn_path != NULL);
    WEFT_ASSERT(cfg->weftd_args_count <= BENCH_WEFTD_ARGS_MAX);
    memset(w, 0, sizeof *w);
    const char *tmp = getenv("TMPDIR");
    snprintf(w->dir, sizeof w->dir, "%s/weft-bench-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(w->dir) == NULL) {
        fprintf(stderr, "weft-bench: mkdtemp %s: %s\n", w->dir, strerror(errno));
        return -1;
    }
    char data_dir[PATH_MAX], shards[16];
    snprintf(data_dir, sizeof data_dir, "%s/data", w->dir);
    snprintf(w->log_path, sizeof w->log_path, "%s/weftd.log", w->dir);
    snprintf(shards, sizeof shards, "%u", cfg->shards);
    uint16_t ports[2];
    if (spawn_free_ports(ports) != 0) {
        fprintf(stderr, "weft-bench: cannot find two free loopback ports\n");
        return -1;
    }
    snprintf(w->listen, sizeof w->listen, "127.0.0.1:%u", ports[0]);
    snprintf(w->raft_listen, sizeof w->raft_listen, "127.0.0.1:%u", ports[1]);
    char *argv[SPAWN_FIXED_ARGS + BENCH_WEFTD_ARGS_MAX + 2];
    spawn_argv(w, cfg, data_dir, shards, argv);
    if (spawn_exec(w, argv) != 0) return -1;
    if (spawn_wait_ready(w) != 0) {
        bench_weftd_stop(w, true, NULL, 0);
        return -1;
    }
    snprintf(cfg->address, sizeof cfg->address, "%s", w->listen);
    return 0;
}

/* Waits for the child at most timeout_ms. Returns true and fills *status when it exited. */
static bool spawn_wait_exit(bench_weftd *w, uint32_t timeout_ms, int *status) {
    uint64_t deadline_us = bench_now_us() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        pid_t r = waitpid(w->pid, status, WNOHANG);
        if (r == w->pid || (r < 0 && errno != EINTR)) {
            w->pid = 0;
            return r > 0;
        }
        if (bench_now_us() >= deadline_us) return false;
        bench_sleep_ms(10);
    }
}

/* Counts the WARN and ERROR lines of the log and keeps the first of each. */
static void spawn_log_summary(const bench_weftd *w, char *note, size_t cap, size_t used) {
    FILE *f = fopen(w->log_path, "r");
    if (f == NULL || used >= cap) {
        if (f != NULL) fclose(f);
        return;
    }
    unsigned warns = 0, errors = 0;
    char line[SPAWN_LOG_LINE_BYTES], first[SPAWN_LOG_LINE_BYTES] = "";
    while (fgets(line, sizeof line, f) != NULL) {
        bool warn = strstr(line, "Z WARN ") != NULL, error = strstr(line, "Z ERROR ") != NULL;
        warns += warn;
        errors += error;
        if ((warn || error) && first[0] == '\0') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(first, sizeof first, "%s", line);
        }
    }
    fclose(f);
    snprintf(note + used, cap - used, "; log: %u WARN, %u ERROR lines%s%.160s", warns, errors,
             first[0] ? "; first: " : "", first);
}

/* Bytes per MiB, for the usage figures. */
#define SPAWN_MIB 1048576.0

double bench_proc_cpu_s(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1.0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold spaces: state is
     * field 3, utime field 14, stime field 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                            &stime) != 2) {
        return -1.0;
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* VmHWM (peak resident set) of the process in MiB; -1 when unreadable. */
static double spawn_peak_rss_mib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1.0;
    unsigned long long kib = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = sscanf(line, "VmHWM: %llu kB", &kib) == 1;
    fclose(f);
    return found ? (double)kib / 1024.0 : -1.0;
}

/* nftw has no user argument: the running total of spawn_du lives here (one walk at a time,
 * on the main thread). */
static uint64_t spawn_du_bytes;

static int spawn_du_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)path;
    (void)ftw;
    if (flag == FTW_F) spawn_du_bytes += (uint64_t)st->st_blocks * 512u;
    return 0;
}

void bench_weftd_report_usage(const bench_weftd *w, bench_report *r) {
    WEFT_ASSERT(w != NULL && r != NULL);
    if (w->pid == 0) return;
    char data_dir[PATH_MAX];
    snprintf(data_dir, sizeof data_dir, "%s/data", w->dir);
    spawn_du_bytes = 0;
    nftw(data_dir, spawn_du_entry, SPAWN_RM_FDS, FTW_PHYS);
    bench_report_figure(r, "weftd_peak_rss_mib", spawn_peak_rss_mib(w->pid), "MiB");
    bench_report_figure(r, "weftd_data_mib", (double)spawn_du_bytes / SPAWN_MIB, "MiB on disk");
}

static int spawn_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path); /* keep walking: remove what can be removed */
    return 0;
}

void bench_weftd_stop(bench_weftd *w, bool keep, char *note, size_t cap) {
    WEFT_ASSERT(w != NULL);
    WEFT_ASSERT(note != NULL || cap == 0);
    int status = 0;
    bool exited = false, killed = false;
    uint64_t t0_us = bench_now_us();
    if (w->pid != 0) {
        kill(w->pid, SIGTERM);
        exited = spawn_wait_exit(w, BENCH_WEFTD_STOP_MS, &status);
        if (!exited && w->pid != 0) {
            kill(w->pid, SIGKILL);
            killed = spawn_wait_exit(w, BENCH_WEFTD_STOP_MS, &status);
        }
    }
    bool clean = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (note != NULL && cap > 0) {
        int n = snprintf(note, cap, "%s in %llu ms after SIGTERM",
                         clean    ? "exited 0"
                         : killed ? "did not stop; killed with SIGKILL"
                                  : "exited abnormally",
                         (unsigned long long)((bench_now_us() - t0_us) / 1000u));
        if (exited && !clean) n += snprintf(note + n, cap - (size_t)n, " (status 0x%x)", status);
        spawn_log_summary(w, note, cap, (size_t)n);
    }
    if (keep || !clean) {
        fprintf(stderr, "weft-bench: kept weftd's dir %s (log %s)\n", w->dir, w->log_path);
    } else if (w->dir[0] != '\0') {
        nftw(w->dir, spawn_rm_entry, SPAWN_RM_FDS, FTW_DEPTH | FTW_PHYS);
    }
    w->dir[0] = '\0';
}
