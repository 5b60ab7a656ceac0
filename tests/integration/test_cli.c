/* test_cli.c: the `weft` CLI as a user runs it: a subprocess against a real weftd, checked by
 * its stdout, stderr and exit code. Help at every level; usage errors that name the flag;
 * start printing both ids; result's exit codes (3 running, 0 completed, 2 failed or
 * terminated) with and without --wait; show --output json read back by weft_history_load_json
 * into the very events GetHistory returns; show --follow until the run closes; describe, list,
 * count, signal, cancel and cluster status in both output formats; $WEFT_ADDRESS; and an
 * unreachable address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper_weftd.h"
#include "helper_worker.h"
#include "weft/json.h"

/* Arguments of one CLI run, besides the program name and --address. */
#define CLI_ARGS_MAX 24u
/* Captured output kept per stream. */
#define CLI_OUT_BYTES_MAX (256u * 1024u)
/* A CLI run that takes longer than this is hung: killed, and the test fails. */
#define CLI_RUN_TIMEOUT_MS 60000u
/* Long enough to cover a workflow task's first dispatch. */
#define CLI_POLL_MS 5000u

typedef struct cli_test {
    weftd w;        /* the server */
    weft_client *c; /* a direct client, to drive workflows and read histories */
    bool passed;    /* teardown prints weftd's stderr otherwise */
    unsigned runs;  /* CLI runs so far, to name output files */
} cli_test;

/* What one CLI run printed, and how it ended. */
typedef struct cli_out {
    int code;                    /* exit code, or -1 when killed or hung */
    char out[CLI_OUT_BYTES_MAX]; /* stdout, NUL-terminated */
    char err[CLI_OUT_BYTES_MAX]; /* stderr, NUL-terminated */
    char out_path[PATH_MAX];     /* the file stdout went to */
} cli_out;

/* How a run reaches the server. */
typedef enum cli_addr { ADDR_FLAG, ADDR_ENV, ADDR_NONE } cli_addr;

static const char *const cli_flags[] = {"--shards", "2", NULL};

static int cli_setup(void **state) {
    static cli_test t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, cli_flags) != 0) return -1;
    if (weftd_client(&t.w, "test-cli", &t.c) != 0) return -1;
    *state = &t;
    return 0;
}

static int cli_teardown(void **state) {
    cli_test *t = *state;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

/* ---- Running the CLI ---- */

static void read_file(const char *path, char *buf, size_t cap) {
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (f == NULL) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Starts the CLI with `args` (NULL-terminated), stdout and stderr to files named in `o`. */
static pid_t cli_spawn(cli_test *t, cli_out *o, cli_addr addr, const char *const *args) {
    unsigned run = ++t->runs;
    char err_path[PATH_MAX];
    snprintf(o->out_path, sizeof o->out_path, "%s/cli-%u.out", t->w.dir, run);
    snprintf(err_path, sizeof err_path, "%s/cli-%u.err", t->w.dir, run);
    const char *argv[CLI_ARGS_MAX + 4];
    unsigned n = 0;
    argv[n++] = WEFT_CLI_PATH;
    if (addr == ADDR_FLAG) {
        argv[n++] = "--address";
        argv[n++] = t->w.listen;
    }
    for (unsigned i = 0; args[i] != NULL; i++) {
        assert_true(i < CLI_ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(o->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(127);
        if (addr == ADDR_ENV) {
            setenv("WEFT_ADDRESS", t->w.listen, 1);
        } else {
            unsetenv("WEFT_ADDRESS");
        }
        execv(WEFT_CLI_PATH, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits for a spawned run and collects its output. */
static void cli_collect(pid_t pid, cli_out *o) {
    int status = 0;
    uint64_t deadline = weft_mono_ms() + CLI_RUN_TIMEOUT_MS;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && weft_mono_ms() < deadline) {
        weftd_sleep_ms(10);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    o->code = r == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    read_file(o->out_path, o->out, sizeof o->out);
    char err_path[PATH_MAX];
    snprintf(err_path, sizeof err_path, "%.*s.err", (int)(strlen(o->out_path) - 4), o->out_path);
    read_file(err_path, o->err, sizeof o->err);
}

static cli_out *cli_run_args(cli_test *t, cli_addr addr, const char *const *args) {
    cli_out *o = calloc(1, sizeof *o);
    assert_non_null(o);
    cli_collect(cli_spawn(t, o, addr, args), o);
    return o;
}

/* Runs `weft --address <server> ARGS...`. The result is the caller's to free(). */
#define CLI(t, ...) cli_run_args((t), ADDR_FLAG, (const char *const[]){__VA_ARGS__, NULL})

/* Asserts the exit code, printing both streams when it differs. */
static void expect_code(const cli_out *o, int code) {
    if (o->code != code) {
        fail_msg("exit code %d, expected %d\n--- stdout:\n%s--- stderr:\n%s", o->code, code, o->out,
                 o->err);
    }
}

static void expect_in(const char *haystack, const char *needle) {
    if (strstr(haystack, needle) == NULL) fail_msg("'%s' not in:\n%s", needle, haystack);
}

static unsigned count_lines(const char *s) {
    unsigned n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Parses one JSON document (or the first line of several). */
static json_t *parse_json_line(const char *text) {
    json_error_t jerr;
    json_t *j = json_loadb(text, strcspn(text, "\n"), 0, &jerr);
    if (j == NULL) fail_msg("not JSON (%s): %s", jerr.text, text);
    return j;
}

/* ---- Driving workflows directly ---- */

/* Polls the one workflow task on `queue` and answers it with `cmd`. */
static void answer_task(cli_test *t, const char *queue, const weft_command *cmd) {
    weft_poll_wft_resp task;
    weft_response h = {0};
    weft_err err;
    int rc = wk_poll_wft(t->c, queue, CLI_POLL_MS, &task, &h, &err);
    if (rc != 1) fail_msg("no workflow task on %s: %d %s", queue, rc, err.message);
    rc = wk_complete_wft(t->c, &task, cmd, 1, &err);
    if (rc != 0) fail_msg("complete on %s: %s", queue, err.message);
    weft_response_free(&h);
}

static void start_via_cli(cli_test *t, const char *id, const char *queue) {
    cli_out *o =
        CLI(t, "workflow", "start", "--type", "cli-type", "--task-queue", queue, "--id", id);
    expect_code(o, 0);
    free(o);
}

/* ---- Tests ---- */

static void test_help_at_every_level(void **state) {
    cli_test *t = *state;
    const char *const levels[][4] = {
        {"--help"},
        {"-h"},
        {"workflow", "--help"},
        {"workflow", "-h"},
        {"cluster", "--help"},
        {"workflow", "start", "--help"},
        {"workflow", "start", "-h"},
        {"workflow", "result", "--help"},
        {"workflow", "show", "--help"},
        {"cluster", "status", "--help"},
        {"cluster", "status", "-h"},
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        cli_out *o = cli_run_args(t, ADDR_NONE, levels[i]);
        expect_code(o, 0);
        expect_in(o->out, "Usage: weft");
        expect_in(o->out, "Exit codes:");
        free(o);
    }
    /* Help lists commands and flags from the table. */
    cli_out *o = cli_run_args(t, ADDR_NONE, (const char *const[]){"--help", NULL});
    expect_in(o->out, "workflow terminate");
    expect_in(o->out, "cluster status");
    expect_in(o->out, "--address");
    free(o);
    o = cli_run_args(t, ADDR_NONE, (const char *const[]){"workflow", "start", "--help", NULL});
    expect_in(o->out, "--task-queue Q");
    expect_in(o->out, "--id-reuse-policy");
    expect_in(o->out, "Start a workflow run");
    free(o);
    o = cli_run_args(t, ADDR_NONE, (const char *const[]){"workflow", "result", "--help", NULL});
    expect_in(o->out, "3  workflow result: the run is still running");
    free(o);
    /* Every command's help works, even with its required flags missing. */
    const char *const cmds[][2] = {{"workflow", "signal"},    {"workflow", "cancel"},
                                   {"workflow", "terminate"}, {"workflow", "describe"},
                                   {"workflow", "list"},      {"workflow", "count"}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        o = cli_run_args(t, ADDR_NONE,
                         (const char *const[]){cmds[i][0], cmds[i][1], "--help", NULL});
        expect_code(o, 0);
        expect_in(o->out, cmds[i][1]);
        free(o);
    }
    /* No command at all: usage on stderr, exit 1. */
    o = cli_run_args(t, ADDR_NONE, (const char *const[]){NULL});
    expect_code(o, 1);
    expect_in(o->err, "Usage: weft");
    free(o);
}

static void test_usage_errors(void **state) {
    cli_test *t = *state;
    cli_out *o = CLI(t, "workflow", "start", "--type", "x", "--task-queue", "q", "--input", "{bad");
    expect_code(o, 1);
    expect_in(o->err, "weft: INVALID_ARGUMENT: --input is not valid JSON");
    expect_in(o->err, "--help");
    assert_string_equal(o->out, "");
    free(o);
    o = CLI(t, "workflow", "start", "--type", "x");
    expect_code(o, 1);
    expect_in(o->err, "--task-queue");
    expect_in(o->err, "is required");
    free(o);
    o = CLI(t, "workflow", "start", "--type", "x", "--task-queue", "q", "--run-timeout", "30");
    expect_code(o, 1);
    expect_in(o->err, "--run-timeout '30' is not a valid duration");
    free(o);
    o = CLI(t, "workflow", "list", "--status", "sleeping");
    expect_code(o, 1);
    expect_in(o->err, "--status 'sleeping'");
    free(o);
    o = CLI(t, "--output", "json", "workflow", "list", "--output", "json");
    expect_code(o, 1);
    expect_in(o->err, "--output is given twice");
    free(o);
    o = CLI(t, "workflow", "count", "--bogus");
    expect_code(o, 1);
    expect_in(o->err, "unknown flag '--bogus' for 'weft workflow count'");
    free(o);
    o = CLI(t, "workflow", "frobnicate");
    expect_code(o, 1);
    expect_in(o->err, "unknown command 'workflow frobnicate'");
    free(o);
    o = CLI(t, "--output", "yaml", "cluster", "status");
    expect_code(o, 1);
    expect_in(o->err, "--output 'yaml'");
    free(o);
    o = CLI(t, "workflow", "result", "--id", "x", "--timeout", "1s");
    expect_code(o, 1);
    expect_in(o->err, "--timeout applies only with --wait");
    free(o);
}

static void test_start_result_show_describe(void **state) {
    cli_test *t = *state;
    /* start prints the workflow id and the run id. */
    cli_out *o = CLI(t, "workflow", "start", "--type", "cli-type", "--task-queue", "q-cli-1",
                     "--id", "cli-1", "--input", "{\"n\": 1}", "--run-timeout", "1h");
    expect_code(o, 0);
    expect_in(o->out, "workflow_id: cli-1\nrun_id: ");
    assert_int_equal(count_lines(o->out), 2);
    free(o);
    /* A generated id, printed as JSON. */
    o = CLI(t, "--output=json", "workflow", "start", "--type=cli-type", "--task-queue",
            "q-cli-gen");
    expect_code(o, 0);
    json_t *j = parse_json_line(o->out);
    assert_int_equal(strncmp(json_string_value(json_object_get(j, "workflow_id")), "cli-type-", 9),
                     0);
    assert_true(json_string_length(json_object_get(j, "run_id")) > 0);
    assert_true(json_is_true(json_object_get(j, "started")));
    json_decref(j);
    free(o);

    /* Still running: exit 3, with or without a short wait. */
    o = CLI(t, "workflow", "result", "--id", "cli-1");
    expect_code(o, 3);
    expect_in(o->out, "status: running");
    free(o);
    uint64_t t0 = weft_mono_ms();
    o = CLI(t, "workflow", "result", "--id", "cli-1", "--wait", "--timeout", "300ms");
    expect_code(o, 3);
    assert_true(weft_mono_ms() - t0 >= 300);
    free(o);

    /* A waiting result sees the run complete: exit 0 and the result payload alone. */
    cli_out *waiter = calloc(1, sizeof *waiter);
    pid_t pid =
        cli_spawn(t, waiter, ADDR_FLAG,
                  (const char *const[]){"workflow", "result", "--id", "cli-1", "--wait", NULL});
    weftd_sleep_ms(300);
    weft_command done = wk_cmd_complete("{\"ok\":true}");
    answer_task(t, "q-cli-1", &done);
    cli_collect(pid, waiter);
    expect_code(waiter, 0);
    assert_string_equal(waiter->out, "{\"ok\":true}\n");
    free(waiter);
    o = CLI(t, "--output", "json", "workflow", "result", "--id", "cli-1");
    expect_code(o, 0);
    j = parse_json_line(o->out);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(j, "result")), "{\"ok\":true}");
    json_decref(j);
    free(o);

    /* show --output json reads back into exactly GetHistory's events. */
    o = CLI(t, "--output", "json", "workflow", "show", "--id", "cli-1");
    expect_code(o, 0);
    wk_history hist;
    weft_err err;
    assert_int_equal(wk_history_get(t->c, "cli-1", "", &hist, &err), 0);
    assert_true(hist.count >= 5);
    assert_int_equal(count_lines(o->out), hist.count);
    weft_history_file *hf = NULL;
    if (weft_history_load_json(o->out_path, &hf, &err) != 0) fail_msg("%s", err.message);
    assert_int_equal(hf->events_count, hist.count);
    for (uint32_t i = 0; i < hist.count; i++) {
        uint8_t *a, *b;
        size_t alen, blen;
        assert_int_equal(weft_schema_encode_buf(&weft_event_schema, &hist.events[i], &a, &alen), 0);
        assert_int_equal(weft_schema_encode_buf(&weft_event_schema, &hf->events[i], &b, &blen), 0);
        if (alen != blen || memcmp(a, b, alen) != 0) fail_msg("event %u differs after JSON", i + 1);
        free(a);
        free(b);
    }
    weft_history_file_free(hf);
    uint32_t events = hist.count;
    wk_history_free(&hist);
    free(o);

    /* The table form: one line per event; --follow on a closed run ends at once. */
    o = CLI(t, "workflow", "show", "--id", "cli-1");
    expect_code(o, 0);
    assert_int_equal(count_lines(o->out), events);
    expect_in(o->out, "WorkflowExecutionStarted");
    expect_in(o->out, "workflow_type=cli-type");
    expect_in(o->out, "workflow_run_timeout=1h");
    expect_in(o->out, "WorkflowExecutionCompleted ");
    expect_in(o->out, "  result={\"ok\":true}\n");
    free(o);
    o = CLI(t, "workflow", "show", "--id", "cli-1", "--follow");
    expect_code(o, 0);
    assert_int_equal(count_lines(o->out), events);
    free(o);

    /* describe, both forms. */
    o = CLI(t, "workflow", "describe", "--id", "cli-1");
    expect_code(o, 0);
    expect_in(o->out, "workflow_id:         cli-1");
    expect_in(o->out, "status:              completed");
    expect_in(o->out, "task_queue:          q-cli-1");
    expect_in(o->out, "pending_activities:  0");
    free(o);
    o = CLI(t, "--output", "json", "workflow", "describe", "--id", "cli-1");
    expect_code(o, 0);
    j = parse_json_line(o->out);
    json_t *info = json_object_get(j, "info");
    assert_string_equal(json_string_value(json_object_get(info, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(info, "workflow_id")), "cli-1");
    json_decref(j);
    free(o);
    o = CLI(t, "workflow", "describe", "--id", "no-such-workflow");
    expect_code(o, 1);
    expect_in(o->err, "weft: NOT_FOUND: ");
    free(o);
}

static void test_failed_and_terminated_exit_2(void **state) {
    cli_test *t = *state;
    start_via_cli(t, "cli-2", "q-cli-2");
    cli_out *o =
        CLI(t, "workflow", "terminate", "--id", "cli-2", "--reason", "stopped by the test");
    expect_code(o, 0);
    expect_in(o->out, "terminated workflow cli-2");
    free(o);
    o = CLI(t, "workflow", "result", "--id", "cli-2");
    expect_code(o, 2);
    expect_in(o->out, "status: terminated");
    expect_in(o->out, "stopped by the test");
    free(o);
    /* Terminating again: the server's error, exit 1. */
    o = CLI(t, "workflow", "terminate", "--id", "cli-2");
    expect_code(o, 1);
    expect_in(o->err, "weft: FAILED_PRECONDITION: ");
    free(o);

    start_via_cli(t, "cli-5", "q-cli-5");
    weft_command fail = {.type = WEFT_CMD_FAIL_WORKFLOW,
                         .failure = {.type = WEFT_STR_LIT("PaymentDeclined"),
                                     .message = WEFT_STR_LIT("card expired")}};
    answer_task(t, "q-cli-5", &fail);
    o = CLI(t, "workflow", "result", "--id", "cli-5", "--wait", "--timeout", "30s");
    expect_code(o, 2);
    expect_in(o->out, "status: failed\n");
    expect_in(o->out, "failure_type: PaymentDeclined\nfailure_message: card expired\n");
    free(o);
}

static void test_signal_cancel_and_follow(void **state) {
    cli_test *t = *state;
    start_via_cli(t, "cli-3", "q-cli-3");
    cli_out *o =
        CLI(t, "workflow", "signal", "--id", "cli-3", "--name", "go", "--input", "\"hello\"");
    expect_code(o, 0);
    free(o);
    o = CLI(t, "--output", "json", "workflow", "signal", "--id", "cli-3", "--name", "go");
    expect_code(o, 0);
    assert_string_equal(o->out, "{}\n");
    free(o);
    o = CLI(t, "workflow", "cancel", "--id", "cli-3", "--reason", "no longer needed");
    expect_code(o, 0);
    free(o);

    /* Follow the run while it is open; it ends when the run closes. */
    cli_out *follower = calloc(1, sizeof *follower);
    pid_t pid = cli_spawn(t, follower, ADDR_FLAG,
                          (const char *const[]){"--output", "json", "workflow", "show", "--id",
                                                "cli-3", "--follow", NULL});
    weftd_sleep_ms(300);
    weft_command cancel = {.type = WEFT_CMD_CANCEL_WORKFLOW};
    answer_task(t, "q-cli-3", &cancel);
    cli_collect(pid, follower);
    expect_code(follower, 0);
    expect_in(follower->out,
              "\"event_type\":\"WorkflowExecutionSignaled\",\"input\":\"\\\"hello\\\"\"");
    expect_in(follower->out, "\"signal_name\":\"go\"");
    expect_in(follower->out, "\"event_type\":\"WorkflowExecutionCancelRequested\"");
    expect_in(follower->out, "no longer needed");
    expect_in(follower->out, "\"event_type\":\"WorkflowExecutionCanceled\"");
    weft_history_file *hf = NULL;
    weft_err err;
    if (weft_history_load_json(follower->out_path, &hf, &err) != 0) fail_msg("%s", err.message);
    assert_int_equal(hf->events[hf->events_count - 1].event_type,
                     WEFT_EV_WORKFLOW_EXECUTION_CANCELED);
    weft_history_file_free(hf);
    free(follower);
    o = CLI(t, "workflow", "result", "--id", "cli-3");
    expect_code(o, 2);
    expect_in(o->out, "status: canceled");
    free(o);
}

static void test_list_count_cluster(void **state) {
    cli_test *t = *state;
    start_via_cli(t, "cli-4a", "q-cli-4");
    start_via_cli(t, "cli-4b", "q-cli-4");
    cli_out *o = CLI(t, "workflow", "count", "--type", "cli-type", "--status", "running");
    expect_code(o, 0);
    unsigned long running = strtoul(o->out, NULL, 10);
    assert_true(running >= 2);
    free(o);
    o = CLI(t, "workflow", "count", "--type", "no-such-type", "--output", "json");
    expect_code(o, 0);
    assert_string_equal(o->out, "{\"count\":0}\n");
    free(o);
    o = CLI(t, "workflow", "list", "--type", "cli-type", "--status", "running");
    expect_code(o, 0);
    expect_in(o->out, "WORKFLOW_ID");
    expect_in(o->out, "cli-4a");
    expect_in(o->out, "cli-4b");
    assert_int_equal(count_lines(o->out), running + 1);
    free(o);
    o = CLI(t, "workflow", "list", "--limit", "1");
    expect_code(o, 0);
    assert_int_equal(count_lines(o->out), 2);
    free(o);
    o = CLI(t, "--output", "json", "workflow", "list", "--type", "cli-type", "--limit", "2");
    expect_code(o, 0);
    assert_int_equal(count_lines(o->out), 2);
    json_t *j = parse_json_line(o->out);
    assert_string_equal(json_string_value(json_object_get(j, "workflow_type")), "cli-type");
    json_decref(j);
    free(o);

    o = CLI(t, "cluster", "status");
    expect_code(o, 0);
    expect_in(o->out, "NODE");
    expect_in(o->out, t->w.listen);
    expect_in(o->out, "  up\n");
    expect_in(o->out, "SHARD");
    /* A single node leads every shard, so it knows its one replica's lag: itself, 0. */
    expect_in(o->out, "REPLICA:LAG");
    expect_in(o->out, "  yes    ");
    expect_in(o->out, ":0\n");
    free(o);
    o = CLI(t, "--output", "json", "cluster", "status");
    expect_code(o, 0);
    j = parse_json_line(o->out);
    assert_int_equal(json_array_size(json_object_get(j, "shards")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "nodes")), 1);
    const json_t *shard1 = json_array_get(json_object_get(j, "shards"), 1);
    const json_t *reps = json_object_get(shard1, "replicas");
    assert_int_equal(json_array_size(reps), 1);
    assert_true(json_is_true(json_object_get(json_array_get(reps, 0), "lag_known")));
    assert_null(json_object_get(json_array_get(reps, 0), "lag_entries")); /* 0: omitted */
    json_decref(j);
    free(o);
}

static void test_addresses(void **state) {
    cli_test *t = *state;
    /* $WEFT_ADDRESS is used when --address is absent... */
    cli_out *o = cli_run_args(t, ADDR_ENV, (const char *const[]){"workflow", "count", NULL});
    expect_code(o, 0);
    free(o);
    /* ...and --address wins over it. */
    o = cli_run_args(t, ADDR_ENV,
                     (const char *const[]){"--address", "127.0.0.1:1", "workflow", "count", NULL});
    expect_code(o, 1);
    expect_in(o->err, "weft: UNAVAILABLE: cannot reach 127.0.0.1:1");
    free(o);
    /* Global flags may also follow the command. */
    o = cli_run_args(t, ADDR_NONE,
                     (const char *const[]){"workflow", "count", "--address", t->w.listen, NULL});
    expect_code(o, 0);
    free(o);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_at_every_level),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_start_result_show_describe),
        cmocka_unit_test(test_failed_and_terminated_exit_2),
        cmocka_unit_test(test_signal_cancel_and_follow),
        cmocka_unit_test(test_list_count_cluster),
        cmocka_unit_test(test_addresses),
    };
    return cmocka_run_group_tests(tests, cli_setup, cli_teardown);
}
