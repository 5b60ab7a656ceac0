/* main.c: order-worker, the worker binary of the order example: its own flags (--ledger,
 * --replay, ...), the ledger and the registrations; examples/common parses the common flags and
 * runs the worker. SIGTERM or Ctrl-C drains it: tasks already received finish and are reported,
 * then it exits 0. */
#include <limits.h>
#include <stdio.h>

#include "order.h"

/* The flags of this example only; examples/common parses the rest (--address, --task-queue...).
 * Strings borrow from argv. */
typedef struct order_flags {
    const char *ledger; /* --ledger: file the activities append their executions to */
    bool no_workflows;  /* --activities-only */
    bool no_activities; /* --workflows-only */
    const char *replay; /* --replay: replay this history file instead of serving */
} order_flags;

static const char order_usage[] =
    "usage: order-worker [flags]\n"
    "Runs the workflow type 'order' (a saga: charge, reserve, ship; compensate on failure;\n"
    "sleep; send a survey) and its activities. SIGTERM or Ctrl-C drains and stops it.\n"
    "\n"
    "  --address HOST:PORT[,...]  weftd to connect to (default $WEFT_ADDRESS, else 127.0.0.1:7400)\n"
    "  --namespace NS             namespace (default: the default namespace)\n"
    "  --task-queue Q             task queue to serve (default orders)\n"
    "  --ledger FILE              file each activity execution appends\n"
    "                             '<workflow-id> <activity> <attempt>' to\n"
    "                             (default ./order-ledger.txt)\n"
    "  --identity NAME            worker identity in histories (default host:pid)\n"
    "  --no-sticky-cache          replay every workflow task from the full history\n"
    "  --workflows-only           poll workflow tasks only\n"
    "  --activities-only          poll activity tasks only\n"
    "  --replay FILE              replay a saved history against this code and exit\n"
    "                             (FILE from 'weft --output json workflow show --id ID';\n"
    "                             '-' reads stdin); exit 0 when the code matches it\n"
    "  --help                     print this and exit\n"
    "\n"
    "Start an order:  weft workflow start --type order --task-queue orders \\\n"
    "                   --input '{\"sleep\":\"2s\"}'\n";

/* What the worker runs: the workflow type and its activities. `arg` is the ledger. */
static int order_register(weft_worker *w, void *arg, weft_err *err) {
    int rc = weft_worker_register_workflow(w, ORDER_WORKFLOW_TYPE, order_workflow, NULL, err);
    if (rc == 0) rc = order_activities_register(w, arg, err);
    return rc;
}

/* --replay: runs the workflow code against a saved history, without a server. This is how to
 * check, before deploying, that changed code still matches the runs that are open. Returns 0
 * when it matches. */
static int order_replay(const char *path) {
    weft_err err;
    weft_err_clear(&err);
    weft_history_file *h = NULL;
    weft_replayer *r = NULL;
    int rc = weft_history_load_json(path, &h, &err);
    if (rc == 0) rc = weft_replayer_new(&r, &err);
    if (rc == 0) {
        rc = weft_replayer_register_workflow(r, ORDER_WORKFLOW_TYPE, order_workflow, NULL, &err);
    }
    if (rc == 0) rc = weft_replayer_replay(r, h->events, h->events_count, &err);
    if (rc == 0) {
        printf("order-worker: replay of %s: the code matches its %u events\n", path,
               h->events_count);
    } else {
        fprintf(stderr, "order-worker: replay of %s: %s: %s\n", path, weft_error_name(rc),
                err.message);
    }
    weft_replayer_free(r);
    weft_history_file_free(h);
    return rc == 0 ? 0 : EXAMPLE_EXIT_FAILURE;
}

int main(int argc, char **argv) {
    /* One line at a time, also into a file or a pipe: the log interleaves with other tools. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    order_flags o = {.ledger = "./order-ledger.txt"};
    const example_flag extra[] = {
        {.name = "ledger", .value = &o.ledger},
        {.name = "workflows-only", .set = &o.no_activities},
        {.name = "activities-only", .set = &o.no_workflows},
        {.name = "replay", .value = &o.replay},
        {.name = NULL},
    };
    example_worker worker = {
        .name = "order-worker",
        .usage = order_usage,
        .task_queue = "orders",
        .extra = extra,
        .register_types = order_register,
    };
    example_flags f;
    int prc = example_flags_parse(&worker, argc, argv, &f);
    if (prc != 0) return prc > 0 ? 0 : EXAMPLE_EXIT_USAGE;
    if (o.no_workflows && o.no_activities) {
        fprintf(stderr,
                "order-worker: --workflows-only and --activities-only exclude each other\n%s",
                order_usage);
        return EXAMPLE_EXIT_USAGE;
    }
    if (o.replay != NULL) return order_replay(o.replay);

    order_ledger ledger = {.fd = -1};
    if (order_ledger_open(&ledger, o.ledger) != 0) return EXAMPLE_EXIT_FAILURE;
    char note[PATH_MAX + 16];
    snprintf(note, sizeof note, "ledger %s", ledger.path);
    worker.arg = &ledger;
    worker.no_workflows = o.no_workflows;
    worker.no_activities = o.no_activities;
    worker.note = note;
    int rc = example_worker_run(&worker, &f);
    order_ledger_close(&ledger);
    return rc;
}
