/* activities.c: the order example's activities. Each stands for a call to an external service
 * (payment, inventory, shipping, mail): it appends one line to the ledger, takes the time the
 * input asks for while heartbeating, and passes an idempotency key to its fake service, as a
 * real payment call would, so that a retried attempt cannot charge twice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "order.h"

/* Heartbeat period of a slow activity: how soon it learns that the workflow canceled it. */
#define ORDER_HEARTBEAT_EVERY_MS 250u
/* An idempotency key: "<workflow-id>-<activity-type>". */
#define ORDER_KEY_BYTES (2u * WEFT_WORKER_NAME_BYTES_MAX + 2u)
/* A ledger line: "<workflow-id> <activity-type> <attempt>\n". */
#define ORDER_LEDGER_LINE_BYTES (2u * WEFT_WORKER_NAME_BYTES_MAX + 16u)

/* One activity type. Every type runs the same function; the row says what differs. */
typedef struct order_activity_def {
    const char *type;         /* activity type, as the workflow schedules it */
    const char *service;      /* the fake external service it calls, for the log */
    const char *verb;         /* what the service is asked to do, for the log */
    const char *result_key;   /* key of the service's id in the JSON result */
    const char *failure_type; /* the failure that "fail": true in the input produces */
    bool uses_amount;         /* the call carries the amount (payments) rather than the sku */
} order_activity_def;

static const order_activity_def order_activity_defs[] = {
    {"charge", "payment", "charge", "receipt", "PaymentDeclined", true},
    {"reserve", "inventory", "reserve", "reservation", "OutOfStock", false},
    {"ship", "shipping", "ship", "tracking", "ShippingUnavailable", false},
    {"send_survey", "mail", "send a survey about", "message", "MailRejected", false},
    {"refund", "payment", "refund", "refund", "RefundFailed", true},
    {"release", "inventory", "release", "release", "ReleaseFailed", false},
    {"cancel_shipment", "shipping", "cancel the shipment of", "cancellation", "CancelFailed",
     false},
};

/* What the workflow passes to every activity (workflow.c builds it). */
typedef struct order_act_input {
    bool fail;                     /* fail this attempt, non-retryably */
    uint64_t work_ms;              /* how long the call takes */
    long long amount_cents;        /* the order's amount */
    char sku[ORDER_SKU_BYTES_MAX]; /* the order's item */
} order_act_input;

int order_ledger_open(order_ledger *l, const char *path) {
    l->path = path;
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        fprintf(stderr, "order-worker: cannot open the ledger %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

void order_ledger_close(order_ledger *l) {
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
}

/* Appends "<workflow-id> <activity-type> <attempt>" with one write() (O_APPEND makes each line
 * land whole, also with several pool threads) and makes it durable before the effect happens:
 * a line in the ledger means the attempt ran, even if the worker died right after. */
static int order_ledger_append(const order_ledger *l, const weft_act_info *info) {
    char line[ORDER_LEDGER_LINE_BYTES];
    int n = snprintf(line, sizeof line, "%s %s %u\n", info->workflow_id, info->activity_type,
                     info->attempt);
    if (n < 0 || (size_t)n >= sizeof line) return -EOVERFLOW;
    ssize_t written = write(l->fd, line, (size_t)n);
    if (written < 0) return -errno;
    if (written != n) return -EIO;
    if (fsync(l->fd) != 0) return -errno;
    return 0;
}

static const order_activity_def *order_activity_find(const char *type) {
    for (size_t i = 0; i < sizeof order_activity_defs / sizeof order_activity_defs[0]; i++) {
        if (strcmp(order_activity_defs[i].type, type) == 0) return &order_activity_defs[i];
    }
    return NULL;
}

/* Reads the activity input. Returns 0, or -1 with a message in msg. */
static int order_act_input_parse(weft_bytes input, order_act_input *in, char *msg, size_t cap) {
    *in = (order_act_input){.amount_cents = ORDER_AMOUNT_CENTS_DEFAULT};
    snprintf(in->sku, sizeof in->sku, "%s", ORDER_SKU_DEFAULT);
    if (input.len == 0) return 0;
    weft_err err;
    json_t *v = weft_json_parse(input, "activity input", &err);
    if (v == NULL) {
        snprintf(msg, cap, "%s", err.message);
        return -1;
    }
    int fail = 0;
    json_int_t work_ms = 0, amount = in->amount_cents;
    const char *sku = NULL;
    json_error_t jerr;
    int rc = json_unpack_ex(v, &jerr, 0, "{s?b, s?I, s?I, s?s}", "fail", &fail, "activity_ms",
                            &work_ms, "amount_cents", &amount, "sku", &sku);
    if (rc == 0 && (work_ms < 0 || work_ms > (json_int_t)ORDER_ACTIVITY_MS_MAX)) {
        snprintf(jerr.text, sizeof jerr.text, "activity_ms must be 0..%u", ORDER_ACTIVITY_MS_MAX);
        rc = -1;
    }
    if (rc == 0) {
        in->fail = fail != 0;
        in->work_ms = (uint64_t)work_ms;
        in->amount_cents = (long long)amount;
        if (sku != NULL) snprintf(in->sku, sizeof in->sku, "%s", sku);
    } else {
        snprintf(msg, cap, "bad activity input: %s", jerr.text);
    }
    json_decref(v);
    return rc == 0 ? 0 : -1;
}

static void order_sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Takes `work_ms` like a slow external call, heartbeating so that the workflow's cancel reaches
 * it. Returns 0, WEFT_WF_CANCELED, or -WEFT_E_NOT_FOUND when this attempt is no longer current
 * (it timed out and was retried elsewhere): then its work would be wasted. */
static int order_work(weft_act *act, uint64_t work_ms) {
    uint64_t done_ms = 0;
    while (done_ms < work_ms) {
        uint64_t slice_ms = work_ms - done_ms;
        if (slice_ms > ORDER_HEARTBEAT_EVERY_MS) slice_ms = ORDER_HEARTBEAT_EVERY_MS;
        order_sleep_ms(slice_ms);
        done_ms += slice_ms;
        char progress[64];
        snprintf(progress, sizeof progress, "{\"done_ms\":%llu}", (unsigned long long)done_ms);
        int rc = weft_act_heartbeat(act, weft_bytes_c(progress));
        /* Other errors mean the server could not be told (it is restarting): keep working;
         * the final report is retried by the SDK or refused if the attempt moved on. */
        if (rc == WEFT_WF_CANCELED || rc == -WEFT_E_NOT_FOUND) return rc;
    }
    return 0;
}

/* The fake external service. A real provider stores the idempotency key and answers a repeated
 * request with the first outcome; this one prints the key and derives its answer from it, so
 * every attempt of one activity gets the same id back, as it would from the real thing. */
static void order_service_call(const order_activity_def *def, const order_act_input *in,
                               const char *key, char *id, size_t id_cap) {
    snprintf(id, id_cap, "%s-%s", def->result_key, key);
    if (def->uses_amount) {
        printf("[%s] %s %lld cents (idempotency key %s) -> %s\n", def->service, def->verb,
               in->amount_cents, key, id);
    } else {
        printf("[%s] %s %s (idempotency key %s) -> %s\n", def->service, def->verb, in->sku, key,
               id);
    }
}

/* Every activity type of the example. `arg` is the ledger. */
static int order_activity(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    const order_ledger *ledger = arg;
    const weft_act_info *info = weft_act_info_get(act);
    const order_activity_def *def = order_activity_find(info->activity_type);
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    if (def == NULL) return weft_act_fail(act, "UnknownActivity", info->activity_type, true);
    int rc = order_ledger_append(ledger, info);
    if (rc != 0) {
        snprintf(msg, sizeof msg, "cannot append to the ledger %s: %s", ledger->path,
                 strerror(-rc));
        return weft_act_fail(act, "LedgerUnavailable", msg, false);
    }
    order_act_input in;
    if (order_act_input_parse(input, &in, msg, sizeof msg) != 0) {
        return weft_act_fail(act, "InvalidInput", msg, true);
    }
    rc = order_work(act, in.work_ms);
    if (rc == WEFT_WF_CANCELED) {
        printf("[%s] %s for %s canceled by the workflow\n", def->service, def->type,
               info->workflow_id);
        return weft_act_canceled(act);
    }
    if (rc != 0) return weft_act_fail(act, "AttemptAbandoned", "the attempt timed out", false);
    char key[ORDER_KEY_BYTES];
    snprintf(key, sizeof key, "%s-%s", info->workflow_id, info->activity_type);
    if (in.fail) {
        snprintf(msg, sizeof msg,
                 "the %s service refused to %s order %s (the input asked for "
                 "fail_%s)",
                 def->service, def->verb, info->workflow_id, def->type);
        return weft_act_fail(act, def->failure_type, msg, true);
    }
    char id[ORDER_KEY_BYTES + 32];
    order_service_call(def, &in, key, id, sizeof id);
    json_t *result = json_pack("{s:s}", def->result_key, id);
    *out = result != NULL ? weft_act_json(act, result) : (weft_bytes){0};
    json_decref(result);
    if (out->len == 0) return weft_act_fail(act, "OutOfMemory", "cannot build the result", false);
    return 0;
}

int order_activities_register(weft_worker *w, order_ledger *ledger, weft_err *err) {
    for (size_t i = 0; i < sizeof order_activity_defs / sizeof order_activity_defs[0]; i++) {
        int rc = weft_worker_register_activity(w, order_activity_defs[i].type, order_activity,
                                               ledger, err);
        if (rc != 0) return rc;
    }
    return 0;
}
