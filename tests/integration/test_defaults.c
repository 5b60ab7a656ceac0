/* test_defaults.c: the embedded default of the Quick start. `weftd` with no flags keeps its data
 * in ./weft-data (relative to where it runs), serves clients on 127.0.0.1:7400 with 8 shards,
 * survives a restart with no flags, and stops cleanly on SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper_weftd.h"
#include "weft/client.h"

#define DEFAULTS_ADDRESS "127.0.0.1:7400"
#define DEFAULTS_PORT 7400
#define DEFAULTS_SHARDS 8u
/* How long the default node may take to answer; a fresh data dir bootstraps 8 groups. */
#define DEFAULTS_READY_TIMEOUT_MS 30000u
#define DEFAULTS_STOP_TIMEOUT_MS 30000u

typedef struct defaults {
    char dir[256]; /* the working directory weftd runs in */
    pid_t pid;     /* the running weftd, 0 if none */
} defaults;

static defaults fx;

/* Starts weftd with no arguments at all, in fx.dir, stderr to fx.dir/weftd.stderr. */
static void defaults_spawn(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(fx.dir) != 0) _exit(127);
        int fd = open("weftd.stderr", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) dup2(fd, STDERR_FILENO);
        execl(WEFTD_PATH, "weftd", (char *)NULL);
        _exit(127);
    }
    fx.pid = pid;
}

/* Opens a client on the default address, retrying while the node starts. */
static weft_client *defaults_connect(void) {
    uint64_t deadline = weft_mono_ms() + DEFAULTS_READY_TIMEOUT_MS;
    weft_client_opts o = {.client_name = "test-defaults", .retries_max = 1};
    for (;;) {
        weft_client *c = NULL;
        weft_err err;
        if (weft_client_open(DEFAULTS_ADDRESS, &o, &c, &err) == 0) return c;
        if (weft_mono_ms() >= deadline)
            fail_msg("no answer on %s: %s", DEFAULTS_ADDRESS, err.message);
        weftd_sleep_ms(100);
    }
}

static int defaults_stop(void) {
    if (fx.pid <= 0) return -1;
    kill(fx.pid, SIGTERM);
    uint64_t deadline = weft_mono_ms() + DEFAULTS_STOP_TIMEOUT_MS;
    int status = 0;
    while (waitpid(fx.pid, &status, WNOHANG) == 0) {
        if (weft_mono_ms() >= deadline) {
            kill(fx.pid, SIGKILL);
            waitpid(fx.pid, &status, 0);
            fx.pid = 0;
            return -1;
        }
        weftd_sleep_ms(20);
    }
    fx.pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void defaults_start_workflow(weft_client *c, const char *id) {
    weft_start_req s = {
        .workflow_id = weft_str_c(id),
        .workflow_type = WEFT_STR_LIT("defaults"),
        .task_queue = WEFT_STR_LIT("q-defaults"),
    };
    weft_start_resp r;
    weft_response h = {0};
    weft_err err;
    int rc = weft_client_start(c, &s, &r, &h, &err);
    if (rc != 0) fail_msg("start %s: %s", id, err.message);
    weft_response_free(&h);
}

static void test_no_flags(void **state) {
    (void)state;
    /* Something already listens on the default port: the test cannot own it. */
    if (weftd_port_busy(DEFAULTS_PORT)) {
        fprintf(stderr, "port %d is taken on this machine; the default cannot be tested\n",
                DEFAULTS_PORT);
        skip();
    }
    defaults_spawn();
    weft_client *c = defaults_connect();
    weft_cluster_status_resp st;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(weft_client_cluster_status(c, &st, &h, &err), 0);
    assert_int_equal(st.shard_count, DEFAULTS_SHARDS);
    weft_response_free(&h);
    defaults_start_workflow(c, "defaults-1");
    weft_client_close(c);
    assert_int_equal(defaults_stop(), 0);

    /* The data landed in ./weft-data of the working directory. */
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/weft-data/weft.meta", fx.dir);
    assert_int_equal(stat(path, &sb), 0);
    snprintf(path, sizeof path, "%s/weft-data/shards/%u", fx.dir, DEFAULTS_SHARDS - 1);
    assert_int_equal(stat(path, &sb), 0);

    /* A second start with no flags finds the same data: the workflow is still there. */
    defaults_spawn();
    c = defaults_connect();
    weft_describe_req d = {.workflow_id = WEFT_STR_LIT("defaults-1")};
    weft_describe_resp dr;
    assert_int_equal(weft_client_describe(c, &d, &dr, &h, &err), 0);
    assert_int_equal(dr.info.status, WEFT_STATUS_RUNNING);
    weft_response_free(&h);
    weft_client_close(c);
    assert_int_equal(defaults_stop(), 0);
}

static int defaults_setup(void **state) {
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/weft-defaults-XXXXXX");
    return mkdtemp(fx.dir) == NULL ? -1 : 0;
}

static int defaults_teardown(void **state) {
    (void)state;
    if (fx.pid > 0) {
        kill(fx.pid, SIGKILL);
        waitpid(fx.pid, NULL, 0);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_flags, defaults_setup, defaults_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
