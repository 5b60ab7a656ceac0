/* main.c: `weft`, the command-line interface of a weft cluster: the global flags, the one table
 * of commands, help at every level, and dispatch (docs/cli.md is the manual). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Help layout: the flag column's width, and where the usage line wraps. */
#define CLI_HELP_LEFT_WIDTH 28
#define CLI_HELP_LINE_WIDTH 96

const cli_flag cli_global_flags[] = {
    {"address", "HOST:PORT[,HOST:PORT...]", false,
     "nodes to contact (default: $" CLI_ADDRESS_ENV ", else " CLI_ADDRESS_DEFAULT ")"},
    {"namespace", "NS", false, "namespace of the workflows (default: " WEFT_DEFAULT_NAMESPACE ")"},
    {"output", "table|json", false, "table for people (default), json for programs"},
    {"version", NULL, false, "print the version and the git commit, and exit"},
    {NULL, NULL, false, NULL},
};
enum {
    CLI_GLOBAL_ADDRESS,
    CLI_GLOBAL_NAMESPACE,
    CLI_GLOBAL_OUTPUT,
    CLI_GLOBAL_VERSION,
    CLI_GLOBAL__COUNT
};
_Static_assert(CLI_GLOBAL__COUNT < CLI_FLAGS_MAX, "global flags fit one values array");

static const char cli_exit_codes_help[] =
    "Exit codes:\n"
    "  0  success (workflow result: the run completed)\n"
    "  1  usage, connection or server error (printed as 'weft: ERROR_NAME: message')\n"
    "  2  workflow result: the run failed, was canceled, was terminated or timed out\n"
    "  3  workflow result: the run is still running\n";

#define CLI_STATUS_LIST "running|completed|failed|canceled|terminated|timed-out|continued"

/* Flag rows that several commands share, so their help reads the same everywhere. */
#define CLI_FLAG_REQUEST_ID                                                                        \
    {                                                                                              \
        "request-id", "RID", false,                                                                \
            "idempotency key: the same RID again applies the request at most once (default: "      \
            "fresh)"                                                                               \
    }
#define CLI_FLAG_TASK_TIMEOUT                                                                      \
    {                                                                                              \
        "task-timeout", "DUR", false,                                                              \
            "limit on one workflow task (default: the server's workflow-task-timeout-ms, 10s)"     \
    }
#define CLI_FLAG_REUSE_POLICY                                                                      \
    {                                                                                              \
        "id-reuse-policy", "allow|allow-failed|reject", false,                                     \
            "whether the id may start again after a closed run (default: allow)"                   \
    }
#define CLI_FLAG_STARTED_AFTER                                                                     \
    { "started-after", "TIME", false, "only runs started at or after TIME (see below)" }
#define CLI_FLAG_STARTED_BEFORE                                                                    \
    { "started-before", "TIME", false, "only runs started at or before TIME (see below)" }
#define CLI_TIME_HELP                                                                              \
    "TIME is a UTC time (2024-05-01T10:00:00Z, 2024-05-01T10:00:00.123Z), a day (2024-05-01,\n"    \
    "its midnight UTC), or a duration for that long ago (90m, 2d).\n"
#define CLI_PAYLOAD_HELP "; must be valid JSON: the JSON itself, @FILE, or - for stdin"

const cli_command cli_commands[] = {
    {.group = "workflow",
     .name = "start",
     .msg_type = WEFT_MSG_START_WORKFLOW,
     .run = cli_workflow_start,
     .details = "Prints the workflow id and the run id (json: {\"workflow_id\", \"run_id\", "
                "\"started\"}).\n",
     .flags = {{"type", "T", true, "workflow type, as the worker registered it"},
               {"task-queue", "Q", true, "task queue the workers poll"},
               {"id", "ID", false, "workflow id (default: <type>-<random hex>)"},
               {"input", "JSON", false, "input payload" CLI_PAYLOAD_HELP},
               {"run-timeout", "DUR", false, "limit on this run (e.g. 30s, 5m, 48h, 7d)"},
               {"execution-timeout", "DUR", false,
                "limit on the run and its continue-as-new successors"},
               CLI_FLAG_TASK_TIMEOUT,
               CLI_FLAG_REUSE_POLICY,
               {"id-conflict-policy", "fail|use-existing|terminate-existing", false,
                "what to do while a run of the id is open (default: fail)"},
               CLI_FLAG_REQUEST_ID}},
    {.group = "workflow",
     .name = "signal-with-start",
     .msg_type = WEFT_MSG_SIGNAL_WITH_START,
     .run = cli_workflow_signal_with_start,
     .details = "Signals the open run of the workflow id; when none is open, starts one (as\n"
                "--id-reuse-policy allows) and signals it, atomically. Prints whether a run was\n"
                "started, the workflow id and the run id (json: {\"workflow_id\", \"run_id\",\n"
                "\"started\"}).\n",
     .flags = {{"id", "ID", true, "workflow id"},
               {"signal-name", "NAME", true, "signal name"},
               {"signal-input", "JSON", false, "signal payload" CLI_PAYLOAD_HELP},
               {"type", "T", true, "workflow type of a run it starts"},
               {"task-queue", "Q", true, "task queue of a run it starts"},
               {"input", "JSON", false, "input payload of a run it starts" CLI_PAYLOAD_HELP},
               {"run-timeout", "DUR", false, "limit on a run it starts"},
               {"execution-timeout", "DUR", false,
                "limit on a run it starts and its continue-as-new successors"},
               CLI_FLAG_TASK_TIMEOUT,
               CLI_FLAG_REUSE_POLICY,
               CLI_FLAG_REQUEST_ID}},
    {.group = "workflow",
     .name = "signal",
     .msg_type = WEFT_MSG_SIGNAL_WORKFLOW,
     .run = cli_workflow_signal,
     .details = NULL,
     .flags = {{"id", "ID", true, "workflow id"},
               {"name", "NAME", true, "signal name"},
               {"input", "JSON", false, "signal payload" CLI_PAYLOAD_HELP},
               {"run-id", "R", false, "a specific run (default: the current run)"},
               CLI_FLAG_REQUEST_ID}},
    {.group = "workflow",
     .name = "cancel",
     .msg_type = WEFT_MSG_CANCEL_WORKFLOW,
     .run = cli_workflow_cancel,
     .details = "The workflow's code sees the request and decides how to wind down.\n",
     .flags = {{"id", "ID", true, "workflow id"},
               {"reason", "TEXT", false, "why, recorded in history"},
               {"details", "JSON", false, "details recorded with it" CLI_PAYLOAD_HELP},
               {"run-id", "R", false, "a specific run (default: the current run)"},
               CLI_FLAG_REQUEST_ID}},
    {.group = "workflow",
     .name = "terminate",
     .msg_type = WEFT_MSG_TERMINATE_WORKFLOW,
     .run = cli_workflow_terminate,
     .details = "The run closes at once; no workflow code runs.\n",
     .flags = {{"id", "ID", true, "workflow id"},
               {"reason", "TEXT", false, "why, recorded in history"},
               {"details", "JSON", false, "details recorded with it" CLI_PAYLOAD_HELP},
               {"run-id", "R", false, "a specific run (default: the current run)"},
               CLI_FLAG_REQUEST_ID}},
    {.group = "workflow",
     .name = "describe",
     .msg_type = WEFT_MSG_DESCRIBE_WORKFLOW,
     .run = cli_workflow_describe,
     .details =
         "Prints status, type, queue, times, the workflow task, pending activities and timers\n"
         "(json: the DescribeWorkflow response).\n",
     .flags = {{"id", "ID", true, "workflow id"},
               {"run-id", "R", false, "a specific run (default: the current or latest run)"}}},
    {.group = "workflow",
     .name = "show",
     .msg_type = WEFT_MSG_GET_HISTORY,
     .run = cli_workflow_show,
     .details =
         "Prints the history, one event per line (json: the history-file form that\n"
         "weft_history_load_json reads, so `--output json ... > h.jsonl` feeds the replayer).\n",
     .flags = {{"id", "ID", true, "workflow id"},
               {"run-id", "R", false, "a specific run (default: the current or latest run)"},
               {"follow", NULL, false, "keep printing new events until the run closes"}}},
    {.group = "workflow",
     .name = "result",
     .msg_type = WEFT_MSG_GET_RESULT,
     .run = cli_workflow_result,
     .details =
         "Follows continue-as-new to the last run. Prints the result payload of a completed run,\n"
         "else its status and failure (json: the GetResult response). Exit code 0 completed,\n"
         "2 failed/canceled/terminated/timed out, 3 still running.\n",
     .flags = {{"id", "ID", true, "workflow id"},
               {"run-id", "R", false, "start from a specific run (default: the current run)"},
               {"wait", NULL, false, "wait for the run to close (forever unless --timeout)"},
               {"timeout", "DUR", false, "with --wait: give up after this long (exit code 3)"}}},
    {.group = "workflow",
     .name = "list",
     .msg_type = WEFT_MSG_LIST_WORKFLOWS,
     .run = cli_workflow_list,
     .details = "Prints one run per row (json: one execution object per line), newest first\n"
                "across the cluster.\n" CLI_TIME_HELP,
     .flags = {{"status", CLI_STATUS_LIST, false, "only runs with this status"},
               {"type", "T", false, "only runs of this workflow type"},
               CLI_FLAG_STARTED_AFTER,
               CLI_FLAG_STARTED_BEFORE,
               {"limit", "N", false, "at most N rows (default: 100)"}}},
    {.group = "workflow",
     .name = "count",
     .msg_type = WEFT_MSG_COUNT_WORKFLOWS,
     .run = cli_workflow_count,
     .details = "Prints the number (json: {\"count\": N}).\n" CLI_TIME_HELP,
     .flags = {{"status", CLI_STATUS_LIST, false, "only runs with this status"},
               {"type", "T", false, "only runs of this workflow type"},
               CLI_FLAG_STARTED_AFTER,
               CLI_FLAG_STARTED_BEFORE}},
    {.group = "cluster",
     .name = "status",
     .msg_type = WEFT_MSG_CLUSTER_STATUS,
     .run = cli_cluster_status,
     .details = "Prints each node (id, address, up/down) and each shard (leader, term, commit and "
                "applied\n"
                "index, ready) (json: the ClusterStatus response).\n",
     .flags = {{NULL, NULL, false, NULL}}},
    {.group = "namespace",
     .name = "register",
     .msg_type = WEFT_MSG_REGISTER_NAMESPACE,
     .run = cli_namespace_register,
     .details = "Registers the namespace given with --namespace; requests naming a namespace\n"
                "that is not registered are refused. Prints it (json: {\"namespace\"}).\n",
     .flags = {{"description", "TEXT", false, "what the namespace is for"},
               {"retention", "DUR", false,
                "how long closed runs are kept (default: the server's retention)"},
               CLI_FLAG_REQUEST_ID}},
    {.group = "namespace",
     .name = "describe",
     .msg_type = WEFT_MSG_DESCRIBE_NAMESPACE,
     .run = cli_namespace_describe,
     .details = "Describes the namespace given with --namespace (json: the DescribeNamespace\n"
                "response).\n",
     .flags = {{NULL, NULL, false, NULL}}},
    {.group = "namespace",
     .name = "list",
     .msg_type = WEFT_MSG_LIST_NAMESPACES,
     .run = cli_namespace_list,
     .details = "Prints one namespace per row, by name (json: one namespace object per line).\n",
     .flags = {{NULL, NULL, false, NULL}}},
    {.group = "task-queue",
     .name = "describe",
     .msg_type = WEFT_MSG_DESCRIBE_TASK_QUEUE,
     .run = cli_task_queue_describe,
     .details = "Prints one poller per row, newest poll first: identity, kind (workflow or\n"
                "activity), the node it polled, and how long ago (json: the DescribeTaskQueue\n"
                "response). Workers poll every node; any node answers for the whole cluster.\n",
     .flags = {{"task-queue", "Q", true, "task queue to describe"}}},
    {.group = "completion",
     .name = "bash",
     .msg_type = 0,
     .summary = "Print bash completion for weft, made from this command table",
     .run = cli_completion_bash,
     .details = "Load it in the current shell with: source <(weft completion bash)\n"
                "or install it: weft completion bash > /etc/bash_completion.d/weft\n",
     .flags = {{NULL, NULL, false, NULL}}},
};
const unsigned cli_commands_count = WEFT_ARRAY_LEN(cli_commands);

/* ---- Help ---- */

static const char *cli_summary(const cli_command *c) {
    if (c->msg_type == 0) {
        WEFT_ASSERT(c->summary != NULL);
        return c->summary;
    }
    const weft_op *op = weft_op_find(c->msg_type);
    WEFT_ASSERT(op != NULL && op->doc != NULL);
    return op->doc;
}

static void cli_help_flag(FILE *f, const cli_flag *fl) {
    char left[96];
    snprintf(left, sizeof left, "--%s%s%s", fl->name, fl->metavar ? " " : "",
             fl->metavar ? fl->metavar : "");
    if (strlen(left) > CLI_HELP_LEFT_WIDTH) {
        fprintf(f, "  %s\n  %-*s", left, CLI_HELP_LEFT_WIDTH, "");
    } else {
        fprintf(f, "  %-*s", CLI_HELP_LEFT_WIDTH, left);
    }
    fprintf(f, " %s%s\n", fl->required ? "(required) " : "", fl->help);
}

/* Lists the commands of `group` (NULL: all). */
static void cli_help_commands(FILE *f, const char *group) {
    for (unsigned i = 0; i < cli_commands_count; i++) {
        const cli_command *c = &cli_commands[i];
        if (group != NULL && strcmp(group, c->group) != 0) continue;
        char left[64];
        snprintf(left, sizeof left, "%s %s", c->group, c->name);
        fprintf(f, "  %-26s %s\n", left, cli_summary(c));
    }
}

static void cli_help_top(FILE *f) {
    fprintf(f, "weft: the command-line interface of a weft cluster\n\n"
               "Usage: weft [global flags] <command> [flags]\n\nGlobal flags (before the "
               "command, or among its flags):\n");
    for (unsigned i = 0; cli_global_flags[i].name != NULL; i++) {
        cli_help_flag(f, &cli_global_flags[i]);
    }
    fprintf(f, "  %-*s %s\n\nCommands:\n", CLI_HELP_LEFT_WIDTH, "-h, --help",
            "show help (also after any command)");
    cli_help_commands(f, NULL);
    fprintf(f,
            "\nDurations (DUR) are a positive whole number and a unit: 250ms, 30s, 5m, 48h, "
            "7d.\n\n%s\nRun 'weft <command> --help' for a command's flags; docs/cli.md is "
            "the manual.\n",
            cli_exit_codes_help);
}

static void cli_help_group(FILE *f, const char *group) {
    fprintf(f, "Usage: weft [global flags] %s <command> [flags]\n\nCommands:\n", group);
    cli_help_commands(f, group);
    fprintf(f,
            "\n%s\nRun 'weft %s <command> --help' for a command's flags, 'weft --help' for "
            "the global flags.\n",
            cli_exit_codes_help, group);
}

static void cli_help_command(FILE *f, const cli_command *c) {
    int col = fprintf(f, "Usage: weft [global flags] %s %s", c->group, c->name);
    int indent = (int)strlen("Usage: weft ");
    for (unsigned i = 0; i < CLI_FLAGS_MAX && c->flags[i].name != NULL; i++) {
        const cli_flag *fl = &c->flags[i];
        char word[96];
        int n = snprintf(word, sizeof word, "%s--%s%s%s%s", fl->required ? "" : "[", fl->name,
                         fl->metavar ? " " : "", fl->metavar ? fl->metavar : "",
                         fl->required ? "" : "]");
        if (col + 1 + n > CLI_HELP_LINE_WIDTH) col = fprintf(f, "\n%*s", indent, "") - 1;
        col += fprintf(f, " %s", word);
    }
    fprintf(f, "\n\n%s.\n\nFlags:\n", cli_summary(c));
    for (unsigned i = 0; i < CLI_FLAGS_MAX && c->flags[i].name != NULL; i++) {
        cli_help_flag(f, &c->flags[i]);
    }
    fprintf(f, "  %-*s %s\n", CLI_HELP_LEFT_WIDTH, "-h, --help", "show this help");
    if (c->details != NULL) fprintf(f, "\n%s", c->details);
    fprintf(
        f,
        "\n%s\nGlobal flags (--address, --namespace, --output, --version) are accepted too; see "
        "'weft --help'.\n",
        cli_exit_codes_help);
}

/* ---- Dispatch ---- */

static bool cli_group_exists(const char *group) {
    for (unsigned i = 0; i < cli_commands_count; i++) {
        if (strcmp(cli_commands[i].group, group) == 0) return true;
    }
    return false;
}

static const cli_command *cli_command_find(const char *group, const char *name) {
    for (unsigned i = 0; i < cli_commands_count; i++) {
        const cli_command *c = &cli_commands[i];
        if (strcmp(c->group, group) == 0 && strcmp(c->name, name) == 0) return c;
    }
    return NULL;
}

/* Fills address, namespace and output from the global flags' values. */
static int cli_globals_apply(cli_ctx *ctx, const char *const *g, weft_err *err) {
    const char *env = getenv(CLI_ADDRESS_ENV);
    ctx->address = g[CLI_GLOBAL_ADDRESS] != NULL     ? g[CLI_GLOBAL_ADDRESS]
                   : (env != NULL && env[0] != '\0') ? env
                                                     : CLI_ADDRESS_DEFAULT;
    ctx->namespace_ = g[CLI_GLOBAL_NAMESPACE] ? g[CLI_GLOBAL_NAMESPACE] : WEFT_DEFAULT_NAMESPACE;
    const char *out = g[CLI_GLOBAL_OUTPUT] ? g[CLI_GLOBAL_OUTPUT] : "table";
    if (strcmp(out, "table") == 0) {
        ctx->output = CLI_OUTPUT_TABLE;
    } else if (strcmp(out, "json") == 0) {
        ctx->output = CLI_OUTPUT_JSON;
    } else {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "--output",
                            "--output '%s' is not a format: use table or json; see 'weft --help'",
                            out);
    }
    if (ctx->address[0] == '\0' || ctx->namespace_[0] == '\0') {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "--address",
                            "--address and --namespace must not be empty; see 'weft --help'");
    }
    return 0;
}

/* Parses the command's flags (global flags may follow the command too) and runs it. */
static int cli_run(cli_ctx *ctx, const char **globals, int argc, char **argv) {
    weft_err err;
    weft_err_clear(&err);
    bool help = false;
    char where[64];
    snprintf(where, sizeof where, "%s %s", ctx->cmd->group, ctx->cmd->name);
    cli_flagset own = {.flags = ctx->cmd->flags, .values = ctx->values};
    cli_flagset also = {.flags = cli_global_flags, .values = globals};
    int rc = cli_flags_parse(&own, &also, where, argc, argv, false, NULL, &help, &err);
    if (rc == 0 && help) {
        cli_help_command(stdout, ctx->cmd);
        return CLI_EXIT_OK;
    }
    if (rc == 0 && globals[CLI_GLOBAL_VERSION] != NULL) {
        cli_version_print();
        return CLI_EXIT_OK;
    }
    if (rc == 0) rc = cli_globals_apply(ctx, globals, &err);
    if (rc != 0) return cli_fail(&err);
    return ctx->cmd->run(ctx);
}

void cli_version_print(void) {
    printf("weft %s (commit %s)\n", WEFT_VERSION_TEXT, WEFT_GIT_COMMIT);
}

/* Frees what the handler read from files or stdin. */
static void cli_ctx_free(cli_ctx *ctx) {
    for (unsigned i = 0; i < CLI_PAYLOADS_MAX; i++) {
        free(ctx->payloads[i]);
        ctx->payloads[i] = NULL;
    }
    weft_client_close(ctx->client);
    ctx->client = NULL;
}

int main(int argc, char **argv) {
    cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    weft_err err;
    weft_err_clear(&err);
    const char *globals[CLI_FLAGS_MAX] = {0};
    bool help = false;
    int used = 0;
    cli_flagset global_set = {.flags = cli_global_flags, .values = globals};
    int rc = cli_flags_parse(&global_set, NULL, "", argc - 1, argv + 1, true, &used, &help, &err);
    if (rc != 0) return cli_fail(&err);
    int at = 1 + used;
    if (!help && globals[CLI_GLOBAL_VERSION] != NULL) {
        cli_version_print();
        return CLI_EXIT_OK;
    }
    if (help || at >= argc) {
        cli_help_top(help ? stdout : stderr);
        return help ? CLI_EXIT_OK : CLI_EXIT_ERROR;
    }
    const char *group = argv[at];
    if (!cli_group_exists(group)) {
        weft_err_set(&err, WEFT_E_INVALID_ARGUMENT, "command",
                     "unknown command '%s'; see 'weft --help'", group);
        return cli_fail(&err);
    }
    bool group_help =
        at + 1 < argc && (strcmp(argv[at + 1], "--help") == 0 || strcmp(argv[at + 1], "-h") == 0);
    if (at + 1 >= argc || group_help) {
        cli_help_group(group_help ? stdout : stderr, group);
        return group_help ? CLI_EXIT_OK : CLI_EXIT_ERROR;
    }
    ctx.cmd = cli_command_find(group, argv[at + 1]);
    if (ctx.cmd == NULL) {
        weft_err_set(&err, WEFT_E_INVALID_ARGUMENT, "command",
                     "unknown command '%s %s'; see 'weft %s --help'", group, argv[at + 1], group);
        return cli_fail(&err);
    }
    int code = cli_run(&ctx, globals, argc - at - 2, argv + at + 2);
    cli_ctx_free(&ctx);
    return code;
}
