/* activity.c: the activity side of a worker (DESIGN sections 7 "Activities", 8 and 11): poller
 * threads, per node, that take an execution slot, poll their node and execute what they
 * receive; the weft_act context an activity function sees (info, arena, heartbeats, failure,
 * async); and completion by token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "worker_internal.h"

/* Bytes one activity execution may take from its arena: a bound on a runaway activity, far
 * above any payload (results are limited to 2 MiB by the server). */
#define ACT_ARENA_BYTES_MAX (1024u * 1024u * 1024u)
/* Failure types the SDK itself reports. */
#define ACT_FAILURE_UNKNOWN_TYPE "UnknownActivityType"
#define ACT_FAILURE_CANCELED "Canceled"
#define ACT_FAILURE_DEFAULT "ActivityFailed"
#define ACT_FAILURE_BAD_RETURN "ActivityError"
#define ACT_FAILURE_BAD_RESULT "InvalidActivityResult"

/* The failure an activity asked for with weft_act_fail / weft_act_canceled. */
typedef struct act_failure {
    bool set;                                     /* weft_act_fail was called */
    char type[WEFT_FAILURE_TYPE_BYTES_MAX];       /* NUL-terminated, UTF-8 */
    char message[WEFT_FAILURE_MESSAGE_BYTES_MAX]; /* NUL-terminated, UTF-8 */
    bool non_retryable;                           /* stop retries */
} act_failure;

struct weft_act {
    weft_worker *w;                      /* the worker executing it */
    const weft_poll_activity_resp *task; /* the polled task, borrowed from the poll's holder */
    weft_act_info info;                  /* what weft_act_info_get returns; strings in the arena */
    sdk_arena arena;                     /* freed after reporting */
    size_t arena_bytes;                  /* bytes asked for so far, against ACT_ARENA_BYTES_MAX */
    bool cancel_requested;               /* a heartbeat learnt of a cancel request */
    act_failure failure;                 /* set by weft_act_fail / weft_act_canceled */
};

/* ---- The arena ---- */

void *weft_act_alloc(weft_act *act, size_t bytes) {
    WEFT_ASSERT(act != NULL && act->arena_bytes <= ACT_ARENA_BYTES_MAX);
    if (bytes > ACT_ARENA_BYTES_MAX - act->arena_bytes) return NULL;
    void *p = sdk_arena_alloc(&act->arena, bytes);
    if (p != NULL) act->arena_bytes += bytes;
    return p;
}

static void act_arena_free(weft_act *act) {
    sdk_arena_free(&act->arena);
    act->arena_bytes = 0;
}

/* A NUL-terminated copy of `s` in the arena ("" when out of memory). */
static const char *act_strdup(weft_act *act, weft_str s) {
    char *p = weft_act_alloc(act, (size_t)s.len + 1);
    if (p == NULL) return "";
    if (s.len > 0) memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

/* ---- Info ---- */

/* The earlier of the start-to-close and schedule-to-close deadlines, 0 if neither is set. */
static uint64_t act_deadline_ms(const weft_poll_activity_resp *t) {
    uint64_t d = 0;
    if (t->start_to_close_timeout_ms > 0) d = t->started_time_ms + t->start_to_close_timeout_ms;
    if (t->schedule_to_close_timeout_ms > 0) {
        uint64_t s = t->scheduled_time_ms + t->schedule_to_close_timeout_ms;
        if (d == 0 || s < d) d = s;
    }
    return d;
}

static void act_info_fill(weft_act *act) {
    const weft_poll_activity_resp *t = act->task;
    act->info = (weft_act_info){
        .namespace_ = act->w->namespace_,
        .workflow_id = act_strdup(act, t->workflow_id),
        .run_id = act_strdup(act, t->run_id),
        .activity_id = act_strdup(act, t->activity_id),
        .activity_type = act_strdup(act, t->activity_type),
        .attempt = t->attempt,
        .scheduled_time_ms = t->scheduled_time_ms,
        .started_time_ms = t->started_time_ms,
        .deadline_ms = act_deadline_ms(t),
        .heartbeat_timeout_ms = t->heartbeat_timeout_ms,
        .heartbeat_details = t->heartbeat_details,
    };
}

const weft_act_info *weft_act_info_get(weft_act *act) {
    WEFT_ASSERT(act != NULL && act->task != NULL);
    return &act->info;
}

/* ---- Calls from activity code ---- */

/* The request every report and heartbeat of this attempt starts from. */
static weft_activity_req act_req(const weft_act *act) {
    return (weft_activity_req){
        .namespace_ = weft_str_c(act->w->namespace_),
        .task_token = act->task->task_token,
        .identity = weft_str_c(act->w->identity),
    };
}

int weft_act_heartbeat(weft_act *act, weft_bytes details) {
    WEFT_ASSERT(act != NULL && act->task != NULL);
    weft_activity_req req = act_req(act);
    req.details = details;
    bool cancel = false;
    weft_err err;
    int rc = weft_client_heartbeat_activity(act->w->client, &req, &cancel, &err);
    if (rc != 0) return rc;
    if (cancel) act->cancel_requested = true;
    return act->cancel_requested ? WEFT_WF_CANCELED : 0;
}

bool weft_act_cancel_requested(weft_act *act) {
    WEFT_ASSERT(act != NULL);
    return act->cancel_requested;
}

/* Records the failure to report; copies are cut to the SDK's limits and kept valid UTF-8. */
static void act_failure_set(weft_act *act, const char *type, const char *message,
                            bool non_retryable) {
    act_failure *f = &act->failure;
    if (type == NULL || type[0] == '\0') type = ACT_FAILURE_DEFAULT;
    if (message == NULL) message = "";
    wkr_text_copy(f->type, sizeof f->type, type, strlen(type));
    wkr_text_copy(f->message, sizeof f->message, message, strlen(message));
    f->non_retryable = non_retryable;
    f->set = true;
}

int weft_act_fail(weft_act *act, const char *type, const char *message, bool non_retryable) {
    WEFT_ASSERT(act != NULL);
    act_failure_set(act, type, message, non_retryable);
    return WEFT_ACT_RESULT_FAIL;
}

int weft_act_canceled(weft_act *act) {
    WEFT_ASSERT(act != NULL);
    /* The server records ActivityTaskCanceled for a failure after a cancel request; without a
     * request, the activity chose to give up, which retrying would not change. */
    act_failure_set(act, ACT_FAILURE_CANCELED, "the activity was canceled", true);
    return WEFT_ACT_RESULT_FAIL;
}

weft_bytes weft_act_task_token(weft_act *act) {
    WEFT_ASSERT(act != NULL && act->task != NULL);
    return act->task->task_token;
}

int weft_act_async(weft_act *act) {
    WEFT_ASSERT(act != NULL);
    return WEFT_ACT_RESULT_ASYNC;
}

/* ---- Completion by token ---- */

int weft_activity_complete_by_token(weft_client *c, const char *ns, weft_bytes task_token,
                                    weft_bytes result, weft_err *err) {
    weft_activity_req req = {
        .namespace_ = weft_str_c(ns ? ns : WEFT_DEFAULT_NAMESPACE),
        .task_token = task_token,
        .result = result,
    };
    return weft_client_complete_activity(c, &req, err);
}

int weft_activity_fail_by_token(weft_client *c, const char *ns, weft_bytes task_token,
                                const char *type, const char *message, bool non_retryable,
                                weft_err *err) {
    weft_activity_req req = {
        .namespace_ = weft_str_c(ns ? ns : WEFT_DEFAULT_NAMESPACE),
        .task_token = task_token,
        .failure = {.type = weft_str_c(type && type[0] ? type : ACT_FAILURE_DEFAULT),
                    .message = weft_str_c(message),
                    .non_retryable = non_retryable},
    };
    return weft_client_fail_activity(c, &req, err);
}

/* ---- Executing one task ---- */

/* Names the activity in log lines. */
#define ACT_LOG_FMT "activity %.*s (%.*s, attempt %u) of workflow %.*s"
#define ACT_LOG_ARGS(t)                                                                            \
    (int)(t)->activity_id.len, (t)->activity_id.ptr, (int)(t)->activity_type.len,                  \
        (t)->activity_type.ptr, (t)->attempt, (int)(t)->workflow_id.len, (t)->workflow_id.ptr

/* Logs a refused report. A stale attempt (it timed out and was retried, or the workflow no
 * longer waits for it) is routine: the server keeps exactly one outcome (G5). */
static void act_log_refused(weft_act *act, const char *what, int rc, const weft_err *err) {
    const weft_poll_activity_resp *t = act->task;
    bool stale = rc == -WEFT_E_NOT_FOUND || rc == -WEFT_E_FAILED_PRECONDITION;
    wkr_log(act->w, ACT_LOG_FMT ": %s %s: %s: %s", ACT_LOG_ARGS(t), what,
            stale ? "refused (this attempt is no longer current)" : "failed", weft_error_name(rc),
            err->message);
}

static void act_report_failure(weft_act *act) {
    WEFT_ASSERT(act->failure.set);
    weft_activity_req req = act_req(act);
    req.failure = (weft_failure){.type = weft_str_c(act->failure.type),
                                 .message = weft_str_c(act->failure.message),
                                 .non_retryable = act->failure.non_retryable};
    weft_err err;
    int rc = weft_client_fail_activity(act->w->client, &req, &err);
    if (rc == 0) {
        atomic_fetch_add(&act->w->counters.activities_failed, 1);
    } else {
        act_log_refused(act, "FailActivity", rc, &err);
    }
}

static void act_report_result(weft_act *act, weft_bytes result) {
    weft_activity_req req = act_req(act);
    req.result = result;
    weft_err err;
    int rc = weft_client_complete_activity(act->w->client, &req, &err);
    if (rc == 0) {
        atomic_fetch_add(&act->w->counters.activities_completed, 1);
    } else if (rc == -WEFT_E_INVALID_ARGUMENT) {
        /* The result itself was refused (too large, say): the same code would produce it
         * again, so the workflow learns it now instead of waiting for a timeout. */
        act_failure_set(act, ACT_FAILURE_BAD_RESULT, err.message, true);
        act_report_failure(act);
    } else {
        act_log_refused(act, "CompleteActivity", rc, &err);
    }
}

/* Reports what the activity function returned. */
static void act_report(weft_act *act, int rc, weft_bytes out) {
    if (rc == 0) {
        act_report_result(act, out);
    } else if (rc == WEFT_ACT_RESULT_ASYNC) {
        /* Completed later by token. */
    } else if (rc == WEFT_ACT_RESULT_FAIL) {
        if (!act->failure.set) {
            act_failure_set(act, ACT_FAILURE_DEFAULT,
                            "the activity returned WEFT_ACT_RESULT_FAIL without calling "
                            "weft_act_fail()",
                            false);
        }
        act_report_failure(act);
    } else {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the activity function returned %d; return 0, weft_act_fail() or "
                 "weft_act_async()",
                 rc);
        act_failure_set(act, ACT_FAILURE_BAD_RETURN, msg, false);
        act_report_failure(act);
    }
}

/* Fails a task of a type this worker does not have. Retryable: another worker on the queue
 * may have it, or this one after a deploy. */
static void act_unknown_type(weft_act *act) {
    const weft_poll_activity_resp *t = act->task;
    weft_worker *w = act->w;
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    wkr_text_format(
        msg, sizeof msg,
        "activity type '%.*s' is not registered on worker %s (task queue %s); register it "
        "with weft_worker_register_activity, or schedule it on a task queue whose workers "
        "have it",
        (int)t->activity_type.len, t->activity_type.ptr, w->identity, w->task_queue);
    act_failure_set(act, ACT_FAILURE_UNKNOWN_TYPE, msg, false);
    wkr_log(w, ACT_LOG_FMT ": type not registered here; failing the attempt", ACT_LOG_ARGS(t));
    act_report_failure(act);
}

static void act_execute(weft_worker *w, const weft_poll_activity_resp *t) {
    weft_act act = {.w = w, .task = t};
    act_info_fill(&act);
    const wkr_type *reg = wkr_activity_find(w, t->activity_type);
    if (reg == NULL) {
        act_unknown_type(&act);
    } else {
        weft_bytes out = {0};
        int rc = reg->act_fn(&act, t->input, &out, reg->arg);
        act_report(&act, rc, out);
    }
    act_arena_free(&act);
}

/* ---- Polling: slots and nodes ----
 * Policy (worker.h, "Threads"): each node gets wkr_act_pollers_per_node() pollers. A poller
 * takes an execution slot before it polls, so a task it receives runs at once. While a node is
 * idle only act_cold_pollers of its pollers poll it (one, unless every poller of every node
 * can hold a slot at once, as with one node); they are its standing polls. Once a poll of the
 * node returns a task, the node is busy and all its pollers poll it, with short polls, until a
 * poll comes back empty. So an idle node holds one slot in a long-poll, a node with a backlog
 * gets every slot the others do not hold, and slots are granted first come, first served. */

uint32_t wkr_act_pollers_per_node(uint32_t concurrency, uint32_t nodes) {
    WEFT_ASSERT(concurrency >= 1 && nodes >= 1);
    /* Every other node keeps one standing poll, hence one slot; a node with a backlog may use
     * all the rest. With one node: concurrency pollers, the pool as it always was. */
    return concurrency > nodes - 1 ? concurrency - (nodes - 1) : 1;
}

uint32_t wkr_act_cold_pollers(uint32_t concurrency, uint32_t nodes) {
    uint32_t per_node = wkr_act_pollers_per_node(concurrency, nodes);
    /* When every poller can hold a slot at once, there is nothing to share: all long-poll. */
    return (uint64_t)per_node * nodes <= concurrency ? per_node : 1;
}

void wkr_slots_init(wkr_slots *s, uint32_t count) {
    pthread_mutex_init(&s->mu, NULL);
    wkr_cond_init(&s->cv);
    s->free = count;
    s->next_ticket = 0;
    s->serving = 0;
}

void wkr_slots_destroy(wkr_slots *s) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

/* Takes an execution slot, in ticket order; false (and no slot) when the worker stops first.
 * *contended tells whether another poller was queued behind this one when it got its slot.
 * A waiter that leaves at a stop abandons its ticket: every waiter leaves at a stop, none
 * draws a ticket after it, and the next run starts with fresh slots, so the gap blocks none. */
static bool act_slot_take(weft_worker *w, bool *contended) {
    wkr_slots *s = &w->act_slots;
    pthread_mutex_lock(&s->mu);
    uint64_t ticket = s->next_ticket++;
    while ((ticket != s->serving || s->free == 0) && !wkr_stopping(w)) {
        wkr_cond_wait_ms(&s->cv, &s->mu, WKR_STOP_CHECK_MS);
    }
    bool got = ticket == s->serving && s->free > 0;
    if (got) {
        s->free--;
        s->serving++;
        *contended = s->next_ticket > s->serving;
        pthread_cond_broadcast(&s->cv); /* the next ticket may take a free slot too */
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

static void act_slot_give(weft_worker *w) {
    wkr_slots *s = &w->act_slots;
    pthread_mutex_lock(&s->mu);
    s->free++;
    WEFT_ASSERT(s->free <= w->activity_concurrency);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits until this poller may poll `n`: the node is busy, or fewer than act_cold_pollers of
 * its pollers are polling it (then this one is a standing poll: *standing). Counts the poller
 * in n->act_polling. False when the worker stops first. */
static bool act_node_enter(weft_worker *w, wkr_node *n, bool *standing) {
    pthread_mutex_lock(&n->mu);
    while (!wkr_stopping(w) && !n->act_busy && n->act_polling >= w->act_cold_pollers) {
        wkr_cond_wait_ms(&n->cv, &n->mu, WKR_STOP_CHECK_MS);
    }
    bool ok = !wkr_stopping(w);
    if (ok) {
        *standing = n->act_polling < w->act_cold_pollers;
        n->act_polling++;
    }
    pthread_mutex_unlock(&n->mu);
    return ok;
}

/* What a poll of a node found, for its busy flag. */
typedef enum act_poll_outcome {
    ACT_POLL_NOT_SENT, /* the worker stopped before polling: says nothing about the node */
    ACT_POLL_TASK,     /* a task: the node has work; all its pollers poll */
    ACT_POLL_EMPTY,    /* the poll timed out empty: back to the standing polls */
    ACT_POLL_FAILED,   /* the node could not be polled: back to the standing polls */
} act_poll_outcome;

static void act_node_leave(wkr_node *n, act_poll_outcome outcome) {
    pthread_mutex_lock(&n->mu);
    WEFT_ASSERT(n->act_polling > 0);
    n->act_polling--;
    if (outcome != ACT_POLL_NOT_SENT) n->act_busy = outcome == ACT_POLL_TASK;
    pthread_cond_broadcast(&n->cv); /* a standing place is free, or the node became busy */
    pthread_mutex_unlock(&n->mu);
}

static int act_poll(weft_worker *w, const wkr_node *n, const weft_poll_req *req,
                    weft_poll_activity_resp *task, weft_response *h, weft_err *err) {
    if (n->node_id == 0) return weft_client_poll_activity_task(w->client, req, task, h, err);
    return weft_client_poll_activity_task_on(w->client, n->node_id, req, task, h, err);
}

void *wkr_act_thread_main(void *arg) {
    wkr_thread *th = arg;
    weft_worker *w = th->w;
    wkr_node *node = th->node;
    WEFT_ASSERT(th->role == WKR_ROLE_ACTIVITY && node != NULL);
    weft_poll_req req = {
        .namespace_ = weft_str_c(w->namespace_),
        .task_queue = weft_str_c(w->task_queue),
        .identity = weft_str_c(w->identity),
    };
    const uint64_t short_poll_ms = WEFT_MIN(w->poll_timeout_ms, WKR_ACT_SHORT_POLL_MS);
    uint32_t backoff_ms = 0;
    while (!wkr_stopping(w)) {
        bool standing = false, contended = false;
        if (!act_node_enter(w, node, &standing)) break;
        if (!act_slot_take(w, &contended)) {
            act_node_leave(node, ACT_POLL_NOT_SENT);
            break;
        }
        if (wkr_stopping(w)) { /* drain: no new poll */
            act_node_leave(node, ACT_POLL_NOT_SENT);
            act_slot_give(w);
            break;
        }
        req.poll_timeout_ms = standing && !contended ? w->poll_timeout_ms : short_poll_ms;
        weft_response h = {0};
        weft_poll_activity_resp task;
        weft_err err;
        int rc = act_poll(w, node, &req, &task, &h, &err);
        if (rc != 0) {
            act_node_leave(node, ACT_POLL_FAILED);
            act_slot_give(w);
            weft_response_free(&h);
            wkr_poll_failed(w, node, "activity", w->task_queue, rc, &err, &backoff_ms);
            continue;
        }
        wkr_poll_ok(w, node, &backoff_ms);
        bool got = task.task_token.len > 0;
        act_node_leave(node, got ? ACT_POLL_TASK : ACT_POLL_EMPTY);
        /* A task received runs at once on the slot taken for it, and is reported even when a
         * stop came meanwhile (drain). */
        if (got) act_execute(w, &task);
        act_slot_give(w);
        weft_response_free(&h);
    }
    return NULL;
}
