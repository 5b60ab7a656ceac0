/* test_local_cluster.c: deploy/local-cluster.sh as the README's "A local cluster" uses it, for
 * real, against this build (WEFT_BUILD_DIR): start 3 prints the three fixed addresses
 * 127.0.0.1:7400, :7410 and :7420 and the --address list, a second start refuses, status shows
 * every node running, leader 0 names a node, kill 2 leaves node 2 stopped, restart 2 brings it
 * back, and stop stops every node cleanly.
 *
 * The ports are fixed, so the test cannot run while something else holds them (up.sh's node,
 * or test_defaults, which runs weftd on 7400 for a few seconds and may run in parallel under
 * ctest -j). It waits for them to be free and retries a start that lost a race for them; if
 * they stay busy it skips, saying so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper_proc.h"
#include "helper_weftd.h"

#define LC_NODES 3u
#define LC_SHARDS "4"
/* Output of one script run kept for checks. */
#define LC_OUT_BYTES 65536u
/* How long the fixed ports may stay busy before the test gives up and skips. */
#define LC_PORTS_WAIT_MS 90000u
/* Starts that lost the ports to another process, retried before skipping. */
#define LC_START_ATTEMPTS 3u

typedef struct lc {
    char dir[256];          /* the cluster's --dir (a fresh temp dir) */
    char build[PATH_MAX];   /* WEFT_BUILD_DIR: the build tree of WEFTD_PATH */
    char out[LC_OUT_BYTES]; /* stdout and stderr of the last script run */
} lc;

static lc fx;

/* Ports of node i (1-based): client 7400 + 10 (i - 1), raft the next one. */
static uint16_t lc_port(unsigned i, bool raft) {
    return (uint16_t)(7400u + 10u * (i - 1u) + (raft ? 1u : 0u));
}

/* The first busy port of the cluster's six, or 0 when all are free. */
static uint16_t lc_busy_port(void) {
    for (unsigned i = 1; i <= LC_NODES; i++) {
        if (weftd_port_busy(lc_port(i, false))) return lc_port(i, false);
        if (weftd_port_busy(lc_port(i, true))) return lc_port(i, true);
    }
    return 0;
}

/* Waits until every port is free. Returns the port still busy at the deadline, or 0. */
static uint16_t lc_wait_ports_free(uint32_t timeout_ms) {
    uint64_t deadline = weft_mono_ms() + timeout_ms;
    uint16_t busy;
    while ((busy = lc_busy_port()) != 0 && weft_mono_ms() < deadline)
        weftd_sleep_ms(500);
    return busy;
}

/* Runs deploy/local-cluster.sh with `args` (NULL-terminated) and --dir fx.dir; its stdout and
 * stderr land in fx.out (and are echoed to stderr for the ctest log). Returns its exit code. */
static int lc_run(const char *const *args) {
    char script[PATH_MAX], log[PATH_MAX];
    snprintf(script, sizeof script, "%s/deploy/local-cluster.sh", WEFT_SOURCE_DIR);
    snprintf(log, sizeof log, "%s.out", fx.dir);
    char *argv[16];
    unsigned n = 0;
    argv[n++] = (char *)"/bin/bash";
    argv[n++] = script;
    for (unsigned i = 0; args[i] != NULL; i++) {
        assert_true(n + 3 < WEFT_ARRAY_LEN(argv));
        argv[n++] = (char *)args[i];
    }
    argv[n++] = (char *)"--dir";
    argv[n++] = fx.dir;
    argv[n] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    fprintf(stderr, "$ local-cluster.sh");
    for (unsigned i = 2; i < n; i++)
        fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("WEFT_BUILD_DIR", fx.build, 1);
        setenv("WEFT_CLUSTER_READY_TIMEOUT", "120", 1);
        unsetenv("WEFT_CLUSTER_DIR");
        unsetenv("WEFT_CLUSTER_SHARDS");
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    size_t len = fread(fx.out, 1, sizeof fx.out - 1, f);
    fclose(f);
    fx.out[len] = '\0';
    fputs(fx.out, stderr);
    return proc_exit_code(status);
}

/* True when a line of fx.out starts with `prefix` and contains `needle`. */
static bool lc_line(const char *prefix, const char *needle) {
    for (const char *p = fx.out; *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)WEFT_MIN(len, sizeof line - 1), p);
        if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, needle) != NULL) return true;
        p = end ? end + 1 : p + len;
    }
    return false;
}

/* The status table's row of node i says `state` ("running" or "stopped"). */
static void lc_assert_node_state(unsigned i, const char *state) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%u ", i);
    if (!lc_line(prefix, state)) fail_msg("status does not show node %u %s", i, state);
}

/* Kills, by pid, whatever node a failed test left running (the script's nodes are not this
 * process's children, and nothing else would stop them). */
static void lc_kill_leftovers(void) {
    for (unsigned i = 1; i <= LC_NODES; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/node%u.pid", fx.dir, i);
        FILE *f = fopen(path, "r");
        if (f == NULL) continue;
        int pid = 0;
        if (fscanf(f, "%d", &pid) == 1 && pid > 0 && kill(pid, 0) == 0) {
            char cmdline[PATH_MAX] = "";
            snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
            FILE *c = fopen(path, "r");
            size_t n = c ? fread(cmdline, 1, sizeof cmdline - 1, c) : 0;
            if (c) fclose(c);
            cmdline[n] = '\0';
            if (strstr(cmdline, "weftd") != NULL) {
                fprintf(stderr, "killing node %u (pid %d) left running\n", i, pid);
                kill(pid, SIGKILL);
            }
        }
        fclose(f);
    }
}

static void test_local_cluster(void **state) {
    (void)state;
    uint16_t busy = lc_wait_ports_free(LC_PORTS_WAIT_MS);
    if (busy != 0) {
        fprintf(stderr,
                "port %u stays in use on this machine; local-cluster.sh's fixed ports "
                "(7400-7421) cannot be tested\n",
                busy);
        skip();
    }

    /* start 3: three nodes on the fixed addresses, and the CLI's --address list. The ports
     * may be taken between the check and the start (test_defaults runs in parallel): then
     * the script refuses or a node fails to bind, and the start is tried again. */
    const char *const start[] = {"start", "3", "--shards", LC_SHARDS, NULL};
    int rc = -1;
    for (unsigned attempt = 1; attempt <= LC_START_ATTEMPTS && rc != 0; attempt++) {
        rc = lc_run(start);
        if (rc == 0) break;
        bool port_race =
            strstr(fx.out, "in use") != NULL || strstr(fx.out, "address already in use") != NULL;
        if (!port_race) fail_msg("start 3 failed (exit %d)", rc);
        lc_kill_leftovers();
        if ((busy = lc_wait_ports_free(LC_PORTS_WAIT_MS)) != 0) {
            fprintf(stderr, "port %u stays in use; skipping\n", busy);
            skip();
        }
    }
    if (rc != 0) {
        fprintf(stderr, "the fixed ports were taken at every start; skipping\n");
        skip();
    }
    assert_true(lc_line("node 1", "127.0.0.1:7400"));
    assert_true(lc_line("node 2", "127.0.0.1:7410"));
    assert_true(lc_line("node 3", "127.0.0.1:7420"));
    assert_non_null(strstr(fx.out, "--address 127.0.0.1:7400,127.0.0.1:7410,127.0.0.1:7420"));

    /* The cluster runs: a second start refuses. */
    assert_int_not_equal(lc_run(start), 0);
    assert_non_null(strstr(fx.out, "already running"));

    const char *const status[] = {"status", NULL};
    assert_int_equal(lc_run(status), 0);
    for (unsigned i = 1; i <= LC_NODES; i++)
        lc_assert_node_state(i, "running");
    assert_non_null(strstr(fx.out, "answered_by: node"));
    assert_non_null(strstr(fx.out, "3 nodes, " LC_SHARDS " shards"));

    const char *const leader0[] = {"leader", "0", NULL};
    assert_int_equal(lc_run(leader0), 0);
    unsigned leader = 0;
    char tail;
    if (sscanf(fx.out, "%u%c", &leader, &tail) != 2 || tail != '\n')
        fail_msg("leader 0 printed \"%s\", not a node id", fx.out);
    assert_in_range(leader, 1, LC_NODES);

    const char *const kill2[] = {"kill", "2", NULL};
    assert_int_equal(lc_run(kill2), 0);
    assert_int_equal(lc_run(status), 0);
    lc_assert_node_state(1, "running");
    lc_assert_node_state(2, "stopped");
    lc_assert_node_state(3, "running");
    assert_true(lc_line("2 ", "exit status 137"));

    /* With node 2 down, the others still have a majority: shard 0 has a leader. */
    assert_int_equal(lc_run(leader0), 0);
    assert_true(sscanf(fx.out, "%u", &leader) == 1 && leader != 2 && leader <= LC_NODES);

    const char *const restart2[] = {"restart", "2", NULL};
    assert_int_equal(lc_run(restart2), 0);
    assert_int_equal(lc_run(status), 0);
    for (unsigned i = 1; i <= LC_NODES; i++)
        lc_assert_node_state(i, "running");

    const char *const stop[] = {"stop", NULL};
    assert_int_equal(lc_run(stop), 0);
    for (unsigned i = 1; i <= LC_NODES; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "node %u:", i);
        if (!lc_line(prefix, "stopped cleanly (exit status 0)"))
            fail_msg("stop does not report a clean stop of node %u", i);
    }
    assert_int_equal(lc_run(status), 0);
    for (unsigned i = 1; i <= LC_NODES; i++)
        lc_assert_node_state(i, "stopped");
}

static int lc_setup(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx.dir, sizeof fx.dir, "%s/weft-lc-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(fx.dir) == NULL) return -1;
    /* WEFTD_PATH is <build>/node/weftd. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", WEFTD_PATH);
    snprintf(fx.build, sizeof fx.build, "%s", dirname(dirname(path)));
    return 0;
}

static int lc_teardown(void **state) {
    (void)state;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cluster.env", fx.dir);
    if (access(path, F_OK) == 0) {
        const char *const stop[] = {"stop", NULL};
        (void)lc_run(stop);
    }
    lc_kill_leftovers();
    char cmd[PATH_MAX];
    if (getenv("WEFT_KEEP_TMP") != NULL) {
        fprintf(stderr, "keeping %s (WEFT_KEEP_TMP)\n", fx.dir);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.out'", fx.dir, fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_cluster, lc_setup, lc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
