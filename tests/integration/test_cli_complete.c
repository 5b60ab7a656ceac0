/* test_cli_complete.c: the `weft` CLI reaches every client operation of the protocol, as a new
 * user meets it against a real weftd: every such operation is a command (help and docs/cli.md
 * come from the same table); signal-with-start, the id reuse and conflict policies and
 * --request-id work, and the hints the server gives name commands and flags that exist;
 * payloads come from the flag, a file (@FILE) or stdin (-), up to 2 MiB, with errors that name
 * the flag; --version names the commit; bash completion comes from the table; an unreachable
 * address is reported at once, with progress while the CLI (or an example worker) retries;
 * list and count take a start-time range; and a run id has one format, also after
 * continue-as-new. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper_cli.h"
#include "helper_weftd.h"
#include "helper_worker.h"
#include "weft/json.h"

/* Long enough to cover a workflow task's first dispatch. */
#define CC_POLL_MS 5000u
/* The CLI tries to reach an address for about 5 s (docs/cli.md), and says so at once. */
#define CC_UNREACHABLE_TOTAL_MS_MAX 8000u
#define CC_FIRST_WORD_MS_MAX 2000u
/* An example worker tries for about 10 s, and says so at once too. */
#define CC_WORKER_TOTAL_MS_MAX 14000u
/* A payload as large as the issue's "Argument list too long" one, and the server's limit. */
#define CC_INPUT_200K_BYTES (200u * 1024u)
#define CC_PAYLOAD_BYTES_MAX (2u * 1024u * 1024u)

typedef struct cc_test {
    weftd w;        /* the server */
    weft_client *c; /* a direct client, to drive workflows and read histories */
    bool passed;    /* teardown prints weftd's stderr otherwise */
} cc_test;

static cc_test *cc_state;

static int cc_setup(void **state) {
    static cc_test t;
    memset(&t, 0, sizeof t);
    static const char *const flags[] = {"--shards", "2", NULL};
    if (weftd_start(&t.w, flags) != 0) return -1;
    if (weftd_client(&t.w, "test-cli-complete", &t.c) != 0) return -1;
    cc_state = &t;
    *state = &t;
    return 0;
}

static int cc_teardown(void **state) {
    cc_test *t = *state;
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

/* Runs `weft --address <server> ARGS...` with stdin from `in` (NULL: /dev/null). */
static void cc_run(hcli_result *r, const char *in, const char *const *args) {
    const char *argv[HCLI_ARGS_MAX];
    unsigned n = 0;
    argv[n++] = WEFT_CLI_PATH;
    argv[n++] = "--address";
    argv[n++] = cc_state->w.listen;
    for (unsigned i = 0; args[i] != NULL; i++) {
        assert_true(n + 1 < HCLI_ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    hcli_opts o = {.stdin_path = in, .dir = cc_state->w.dir};
    hcli_run(argv, &o, r);
}
#define CLI(r, ...) cc_run((r), NULL, (const char *const[]){__VA_ARGS__, NULL})
#define CLI_IN(r, in, ...) cc_run((r), (in), (const char *const[]){__VA_ARGS__, NULL})

/* Writes `len` bytes of `text` (repeated to fill) to a file in the test's dir. */
static void cc_write_file(char *path, size_t cap, const char *name, const char *data, size_t len) {
    snprintf(path, cap, "%s/%s", cc_state->w.dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A JSON string payload of exactly `len` bytes: "aaa...a". */
static char *cc_json_string(size_t len) {
    assert_true(len >= 2);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, 'a', len);
    s[0] = s[len - 1] = '"';
    s[len] = '\0';
    return s;
}

/* The first event of `type` in the current run of `id` (NULL if none); h keeps it alive. */
static const weft_event *cc_event(wk_history *h, const char *id, uint32_t type, const char *name) {
    weft_err err;
    memset(h, 0, sizeof *h);
    assert_int_equal(wk_history_get(cc_state->c, id, NULL, h, &err), 0);
    return wk_find(h->events, h->count, type, name);
}

/* ---- Every client operation is a command, and help and docs agree ---- */

/* The operations a worker sends (polls and task reports) belong to the worker SDK; HELLO to
 * the session. Every other operation is a client's, and the CLI must offer it. */
static bool cc_is_client_op(uint32_t t) {
    return t != WEFT_MSG_HELLO &&
           !(t >= WEFT_MSG_POLL_WORKFLOW_TASK && t <= WEFT_MSG_HEARTBEAT_ACTIVITY);
}

/* The docs/cli.md section of `heading` ("### workflow start"), up to the next heading. */
static char *cc_doc_section(const char *doc, const char *heading) {
    char line[128];
    snprintf(line, sizeof line, "\n%s\n", heading);
    const char *at = strstr(doc, line);
    if (at == NULL) fail_msg("docs/cli.md has no section '%s'", heading);
    at += strlen(line);
    const char *end = strstr(at, "\n### ");
    const char *end2 = strstr(at, "\n## ");
    if (end == NULL || (end2 != NULL && end2 < end)) end = end2;
    size_t n = end != NULL ? (size_t)(end - at) : strlen(at);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, at, n);
    s[n] = '\0';
    return s;
}

/* Checks that every flag `weft GROUP NAME --help` lists is in the command's docs section. */
static void cc_flags_documented(const char *doc, const char *group, const char *name) {
    hcli_result r;
    CLI(&r, group, name, "--help");
    hcli_expect_code(&r, 0);
    char heading[96];
    snprintf(heading, sizeof heading, "### %s %s", group, name);
    char *section = cc_doc_section(doc, heading);
    const char *flags = strstr(r.out, "\nFlags:\n");
    assert_non_null(flags);
    for (const char *p = strstr(flags, "\n  --"); p != NULL; p = strstr(p + 1, "\n  --")) {
        char flag[64];
        size_t n = strcspn(p + 3, " \n");
        snprintf(flag, sizeof flag, "`%.*s", (int)n, p + 3);
        if (strstr(section, flag) == NULL) fail_msg("%s: %s is not documented", heading, flag);
    }
    free(section);
    hcli_result_free(&r);
}

static void test_every_client_op_is_a_command(void **state) {
    cc_test *t = *state;
    hcli_result r;
    CLI(&r, "--help");
    hcli_expect_code(&r, 0);
    for (unsigned i = 0; i < weft_ops_count; i++) {
        if (!cc_is_client_op(weft_ops[i].msg_type)) continue;
        if (strstr(r.out, weft_ops[i].doc) == NULL) {
            fail_msg("%s has no command: '%s' is not in weft --help:\n%s", weft_ops[i].name,
                     weft_ops[i].doc, r.out);
        }
    }
    /* Each command of the help has its section in docs/cli.md, with each of its flags. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/docs/cli.md", WEFT_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    const char *cmds = strstr(r.out, "\nCommands:\n");
    assert_non_null(cmds);
    unsigned seen = 0;
    for (const char *p = cmds + strlen("\nCommands:\n"); strncmp(p, "  ", 2) == 0;
         p = strchr(p, '\n') + 1) {
        char group[32], name[32];
        assert_int_equal(sscanf(p, " %31s %31s", group, name), 2);
        cc_flags_documented(doc, group, name);
        seen++;
    }
    assert_true(seen >= 12);
    hcli_result_free(&r);
    t->passed = true;
}

/* ---- Policies, signal-with-start, request ids, and the hints that point at them ---- */

static void test_hints_name_commands_that_exist(void **state) {
    (void)state;
    hcli_result r;
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-hints", "--id", "h1",
        "--task-timeout", "30s");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    CLI(&r, "--output", "json", "workflow", "describe", "--id", "h1");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "\"workflow_task_timeout_ms\":30000");
    hcli_result_free(&r);
    /* A second start: the hint names --id-conflict-policy, and the flag does what it says. */
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-hints", "--id", "h1");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "ALREADY_EXISTS");
    hcli_expect_in(r.err, "--id-conflict-policy use-existing");
    hcli_result_free(&r);
    CLI(&r, "--output", "json", "workflow", "start", "--type", "T", "--task-queue", "q-hints",
        "--id", "h1", "--id-conflict-policy", "use-existing");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "\"started\":false");
    hcli_result_free(&r);
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-hints", "--id", "h1",
        "--id-conflict-policy", "reuse");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--id-conflict-policy 'reuse' is not one of "
                          "fail|use-existing|terminate-existing");
    hcli_result_free(&r);
    /* Signalling a closed run: the hint names signal-with-start, which starts and signals. */
    CLI(&r, "workflow", "terminate", "--id", "h1", "--reason", "test", "--details", "{\"k\":1}");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    CLI(&r, "workflow", "signal", "--id", "h1", "--name", "go");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "weft workflow signal-with-start");
    hcli_result_free(&r);
    CLI(&r, "workflow", "signal-with-start", "--id", "h1", "--signal-name", "go", "--signal-input",
        "{\"n\": 1}", "--type", "T", "--task-queue", "q-hints");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "signal go sent to workflow h1 (run started)");
    hcli_result_free(&r);
    wk_history h;
    const weft_event *sig = cc_event(&h, "h1", WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, "go");
    assert_non_null(sig);
    assert_memory_equal(sig->input.ptr, "{\"n\": 1}", 8);
    wk_history_free(&h);
    /* After it closes, the reuse policy's hint names --id-reuse-policy. */
    CLI(&r, "workflow", "terminate", "--id", "h1");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-hints", "--id", "h1",
        "--id-reuse-policy", "reject");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--id-reuse-policy allow");
    hcli_result_free(&r);
}

static void test_request_id_applies_once(void **state) {
    (void)state;
    hcli_result r;
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-rid", "--id", "r1");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    for (int i = 0; i < 2; i++) {
        CLI(&r, "workflow", "signal", "--id", "r1", "--name", "once", "--request-id", "rid-1");
        hcli_expect_code(&r, 0);
        hcli_result_free(&r);
    }
    wk_history h;
    cc_event(&h, "r1", WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, "once");
    assert_int_equal(wk_count(h.events, h.count, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, "once"), 1);
    wk_history_free(&h);
    /* A start re-sent with its request id answers with the first run, whatever the policy. */
    char first[128] = "";
    for (int i = 0; i < 2; i++) {
        CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-rid", "--id", "r2",
            "--request-id", "rid-2");
        hcli_expect_code(&r, 0);
        const char *run = strstr(r.out, "run_id: ");
        assert_non_null(run);
        if (i == 0) snprintf(first, sizeof first, "%s", run);
        if (i == 1) assert_string_equal(run, first);
        hcli_result_free(&r);
    }
    CLI(&r, "workflow", "cancel", "--id", "r2", "--request-id", "");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--request-id must not be empty");
    hcli_result_free(&r);
}

/* ---- Payloads from the flag, a file or stdin ---- */

static void test_input_from_file_and_stdin(void **state) {
    (void)state;
    char path[PATH_MAX];
    char *big = cc_json_string(CC_INPUT_200K_BYTES);
    cc_write_file(path, sizeof path, "in-200k.json", big, CC_INPUT_200K_BYTES);
    char at[PATH_MAX + 1];
    snprintf(at, sizeof at, "@%s", path);
    hcli_result r;
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-in", "--id", "in1", "--input",
        at);
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    wk_history h;
    const weft_event *ev = cc_event(&h, "in1", WEFT_EV_WORKFLOW_EXECUTION_STARTED, NULL);
    assert_non_null(ev);
    assert_int_equal(ev->input.len, CC_INPUT_200K_BYTES);
    assert_memory_equal(ev->input.ptr, big, CC_INPUT_200K_BYTES);
    wk_history_free(&h);
    /* The same file on stdin, as a signal's input. */
    CLI_IN(&r, path, "workflow", "signal", "--id", "in1", "--name", "s", "--input", "-");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    ev = cc_event(&h, "in1", WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, "s");
    assert_non_null(ev);
    assert_int_equal(ev->input.len, CC_INPUT_200K_BYTES);
    wk_history_free(&h);
    free(big);
    /* Exactly the server's limit passes. */
    char *max = cc_json_string(CC_PAYLOAD_BYTES_MAX);
    cc_write_file(path, sizeof path, "in-max.json", max, CC_PAYLOAD_BYTES_MAX);
    free(max);
    snprintf(at, sizeof at, "@%s", path);
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-in", "--id", "in2", "--input",
        at);
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
}

static void test_input_errors_name_the_flag(void **state) {
    (void)state;
    char path[PATH_MAX], at[PATH_MAX + 1];
    hcli_result r;
    snprintf(at, sizeof at, "@%s/no-such.json", cc_state->w.dir);
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q", "--input", at);
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--input @");
    hcli_expect_in(r.err, "no-such.json: cannot read the file (No such file or directory)");
    hcli_result_free(&r);
    char *over = cc_json_string(CC_PAYLOAD_BYTES_MAX + 1);
    cc_write_file(path, sizeof path, "in-over.json", over, CC_PAYLOAD_BYTES_MAX + 1);
    free(over);
    snprintf(at, sizeof at, "@%s", path);
    CLI(&r, "workflow", "signal", "--id", "x", "--name", "s", "--input", at);
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--input @");
    hcli_expect_in(r.err, "is larger than 2097152 bytes (2 MiB), the server's payload limit");
    hcli_result_free(&r);
    cc_write_file(path, sizeof path, "in-bad.json", "{sku: 7}", 8);
    snprintf(at, sizeof at, "@%s", path);
    CLI_IN(&r, path, "workflow", "start", "--type", "T", "--task-queue", "q", "--input", "-");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--input - (stdin) is not valid JSON");
    hcli_result_free(&r);
    CLI_IN(&r, path, "workflow", "signal-with-start", "--id", "x", "--signal-name", "s", "--type",
           "T", "--task-queue", "q", "--input", "1", "--signal-input", at);
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--signal-input @");
    hcli_expect_in(r.err, "in-bad.json is not valid JSON");
    hcli_result_free(&r);
}

/* ---- --version and completion ---- */

static void test_version_names_the_commit(void **state) {
    (void)state;
    hcli_result r;
    CLI(&r, "--version");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "weft ");
    hcli_expect_in(r.out, " (commit ");
    hcli_result_free(&r);
    CLI(&r, "workflow", "list", "--version");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, " (commit ");
    hcli_result_free(&r);
}

/* Completes `line` (its last word is the one completed) with the script loaded in bash. */
static void cc_complete(const char *line, const char *expect) {
    char script[1024];
    snprintf(script, sizeof script,
             "source <('%s' completion bash) || exit 9\n"
             "read -ra COMP_WORDS <<< '%s'\n"
             "[[ '%s' == *' ' ]] && COMP_WORDS+=('')\n"
             "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
             "_weft\n"
             "echo \"${COMPREPLY[*]}\"\n",
             WEFT_CLI_PATH, line, line);
    const char *argv[] = {"/bin/bash", "-c", script, NULL};
    hcli_result r;
    hcli_run(argv, NULL, &r);
    hcli_expect_code(&r, 0);
    if (strcmp(r.out, expect) != 0) {
        fail_msg("completing '%s': got '%s', want '%s'\n%s", line, r.out, expect, r.err);
    }
    hcli_result_free(&r);
}

static void test_bash_completion(void **state) {
    (void)state;
    cc_complete("weft ", "workflow cluster namespace task-queue completion\n");
    cc_complete("weft workflow sig", "signal-with-start signal\n");
    cc_complete("weft --output json workflow start --id-con", "--id-conflict-policy\n");
    cc_complete("weft workflow start --id-conflict-policy ",
                "fail use-existing terminate-existing\n");
    cc_complete("weft --output ", "table json\n");
    cc_complete("weft workflow signal-with-start --signal-", "--signal-name --signal-input\n");
    cc_complete("weft workflow list --status t", "terminated timed-out\n");
    cc_complete("weft cluster ", "status\n");
}

/* ---- Nobody listening: said at once, with progress, within the documented time ---- */

static unsigned cc_count(const char *s, const char *needle) {
    unsigned n = 0;
    for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_unreachable_is_reported_at_once(void **state) {
    (void)state;
    char addr[WEFTD_ADDR_BYTES];
    assert_int_equal(weftd_free_addr(addr, sizeof addr), 0);
    const char *argv[] = {WEFT_CLI_PATH, "--address", addr, "workflow", "count", NULL};
    hcli_result r;
    hcli_run(argv, NULL, &r);
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "Connection refused");
    hcli_expect_in(r.err, addr);
    hcli_expect_in(r.err, "still cannot reach");
    assert_true(cc_count(r.err, "\n") >= 3);
    if (r.first_err_ms > CC_FIRST_WORD_MS_MAX || r.elapsed_ms > CC_UNREACHABLE_TOTAL_MS_MAX) {
        fail_msg("first word after %llu ms, gave up after %llu ms:\n%s",
                 (unsigned long long)r.first_err_ms, (unsigned long long)r.elapsed_ms, r.err);
    }
    hcli_result_free(&r);
    /* An example worker says so at once too. */
    const char *worker[] = {WEFT_EXAMPLES_DIR "/order/order-worker", "--address", addr, NULL};
    hcli_run(worker, NULL, &r);
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "Connection refused");
    hcli_expect_in(r.err, addr);
    hcli_expect_in(r.err, "still cannot reach");
    if (r.first_err_ms > CC_FIRST_WORD_MS_MAX || r.elapsed_ms > CC_WORKER_TOTAL_MS_MAX) {
        fail_msg("worker: first word after %llu ms, gave up after %llu ms:\n%s",
                 (unsigned long long)r.first_err_ms, (unsigned long long)r.elapsed_ms, r.err);
    }
    hcli_result_free(&r);
}

/* ---- workflow list and count take the start-time range their help names ---- */

static void test_list_by_start_time(void **state) {
    (void)state;
    hcli_result r;
    CLI(&r, "workflow", "start", "--type", "RangeT", "--task-queue", "q-range", "--id", "rg1");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    /* Started within the last hour: listed and counted. */
    CLI(&r, "workflow", "list", "--type", "RangeT", "--started-after", "1h");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "rg1");
    hcli_result_free(&r);
    CLI(&r, "workflow", "count", "--type", "RangeT", "--started-after", "2000-01-01",
        "--started-before", "2999-12-31T23:59:59.999Z");
    hcli_expect_code(&r, 0);
    assert_string_equal(r.out, "1\n");
    hcli_result_free(&r);
    /* Before the year 2000, or an hour or more ago: nothing. */
    CLI(&r, "workflow", "count", "--type", "RangeT", "--started-before", "2000-01-01T00:00:00Z");
    hcli_expect_code(&r, 0);
    assert_string_equal(r.out, "0\n");
    hcli_result_free(&r);
    CLI(&r, "workflow", "list", "--type", "RangeT", "--started-before", "1h");
    hcli_expect_code(&r, 0);
    hcli_expect_not_in(r.out, "rg1");
    hcli_result_free(&r);
    CLI(&r, "workflow", "list", "--started-after", "2024-02-30");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--started-after '2024-02-30' is not a time");
    hcli_result_free(&r);
}

/* ---- Run ids: one format ---- */

static bool cc_is_run_id(const char *s, size_t n) {
    return n == 32 && strspn(s, "0123456789abcdef") >= 32;
}

static void cc_expect_run_id(const json_t *info, const char *key) {
    const json_t *v = json_object_get(info, key);
    if (!json_is_string(v) || !cc_is_run_id(json_string_value(v), json_string_length(v))) {
        fail_msg("%s is not 32 hex digits: %s", key,
                 json_is_string(v) ? json_string_value(v) : "?");
    }
}

static void test_run_ids_have_one_format(void **state) {
    cc_test *t = *state;
    hcli_result r;
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q-can", "--id", "can1");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    weft_poll_wft_resp task;
    weft_response hold = {0};
    weft_err err;
    assert_int_equal(wk_poll_wft(t->c, "q-can", CC_POLL_MS, &task, &hold, &err), 1);
    weft_command can = {.type = WEFT_CMD_CONTINUE_AS_NEW, .input = weft_bytes_c("{}")};
    assert_int_equal(wk_complete_wft(t->c, &task, &can, 1, &err), 0);
    weft_response_free(&hold);
    CLI(&r, "--output", "json", "workflow", "describe", "--id", "can1");
    hcli_expect_code(&r, 0);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    if (j == NULL) fail_msg("not JSON: %s", r.out);
    const json_t *info = json_object_get(j, "info");
    assert_non_null(info);
    cc_expect_run_id(info, "run_id");
    cc_expect_run_id(info, "continued_from_run_id");
    cc_expect_run_id(info, "first_run_id");
    json_decref(j);
    hcli_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_client_op_is_a_command),
        cmocka_unit_test(test_hints_name_commands_that_exist),
        cmocka_unit_test(test_request_id_applies_once),
        cmocka_unit_test(test_input_from_file_and_stdin),
        cmocka_unit_test(test_input_errors_name_the_flag),
        cmocka_unit_test(test_version_names_the_commit),
        cmocka_unit_test(test_bash_completion),
        cmocka_unit_test(test_unreachable_is_reported_at_once),
        cmocka_unit_test(test_list_by_start_time),
        cmocka_unit_test(test_run_ids_have_one_format),
    };
    return cmocka_run_group_tests(tests, cc_setup, cc_teardown);
}
