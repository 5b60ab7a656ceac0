/* order.h: the order example: a saga workflow (workflow.c), its activities and the ledger they
 * record their effects in (activities.c), and the worker binary (main.c). */
#ifndef WEFT_EXAMPLE_ORDER_H
#define WEFT_EXAMPLE_ORDER_H

#include <stdint.h>

#include "example.h" /* examples/common: the flags, the worker run, input helpers */
#include "weft/json.h"
#include "weft/worker.h"

#define ORDER_WORKFLOW_TYPE "order"

/* Input keys the workflow reads, with their defaults (README.md lists them all). */
#define ORDER_SLEEP_DEFAULT "2s"             /* "sleep": pause between shipping and the survey */
#define ORDER_ACTIVITY_TIMEOUT_DEFAULT "10s" /* "activity_timeout": start-to-close per attempt */
#define ORDER_RETRY_INITIAL_DEFAULT "200ms"  /* "retry_initial": delay before the second attempt */
#define ORDER_ATTEMPTS_DEFAULT 3u            /* "attempts": attempts of a forward step */
#define ORDER_AMOUNT_CENTS_DEFAULT 4200      /* "amount_cents": what the customer pays */
#define ORDER_SKU_DEFAULT "book-42"          /* "sku": what is reserved and shipped */
/* "activity_ms" above this is refused: a demo activity should not hold a pool thread for long. */
#define ORDER_ACTIVITY_MS_MAX 600000u
/* Longest sku accepted from the input. */
#define ORDER_SKU_BYTES_MAX 128u

/* What every activity of one worker shares. Must outlive the worker. */
typedef struct order_ledger {
    int fd;           /* the ledger file, opened O_APPEND; one write() per line */
    const char *path; /* its path, for messages (borrowed from argv) */
} order_ledger;

/* The workflow function registered as ORDER_WORKFLOW_TYPE. `arg` is unused. */
int order_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg);

/* Opens (creating) the ledger at `path` (borrowed; must outlive the ledger) for appending.
 * Returns 0, or -1 after printing why. */
int order_ledger_open(order_ledger *l, const char *path);
void order_ledger_close(order_ledger *l);

/* Registers the forward activities (charge, reserve, ship, send_survey) and the compensations
 * (refund, release, cancel_shipment) on `w`. `ledger` is borrowed and must outlive the worker.
 * Returns 0 or the error of weft_worker_register_activity. */
int order_activities_register(weft_worker *w, order_ledger *ledger, weft_err *err);

#endif
