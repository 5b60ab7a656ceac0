/* activity.c: the activity side of a worker (DESIGN sections 7 "Activities" and 11): pool
 * threads that each poll the task queue and execute what they receive, the weft_act context an
 * activity function sees (info, arena, heartbeats, failure, async), and completion by token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One block of an execution's arena; data is 16-aligned like malloc's. */
typedef struct act_block {
    struct act_block *next;            /* older block */
    _Alignas(16) unsigned char data[]; /* the caller's bytes */
} act_block;

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
    act_block *arena;                    /* newest block first; freed after reporting */
    size_t arena_bytes;                  /* bytes handed out so far */
    bool cancel_requested;               /* a heartbeat learnt of a cancel request */
    act_failure failure;                 /* set by weft_act_fail / weft_act_canceled */
};

/* ---- The arena ---- */

void *weft_act_alloc(weft_act *act, size_t bytes) {
    WEFT_ASSERT(act != NULL && act->arena_bytes <= ACT_ARENA_BYTES_MAX);
    if (bytes > ACT_ARENA_BYTES_MAX - act->arena_bytes) return NULL;
    act_block *b = malloc(sizeof *b + (bytes > 0 ? bytes : 1));
    if (b == NULL) return NULL;
    b->next = act->arena;
    act->arena = b;
    act->arena_bytes += bytes;
    return b->data;
}

static void act_arena_free(weft_act *act) {
    act_block *b = act->arena;
    while (b != NULL) {
        act_block *next = b->next;
        free(b);
        b = next;
    }
    act->arena = NULL;
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

void *wkr_act_thread_main(void *arg) {
    wkr_thread *th = arg;
    weft_worker *w = th->w;
    WEFT_ASSERT(th->role == WKR_ROLE_ACTIVITY);
    weft_poll_req req = {
        .namespace_ = weft_str_c(w->namespace_),
        .task_queue = weft_str_c(w->task_queue),
        .identity = weft_str_c(w->identity),
        .poll_timeout_ms = w->poll_timeout_ms,
    };
    uint32_t backoff_ms = 0;
    while (!wkr_stopping(w)) {
        weft_response h = {0};
        weft_poll_activity_resp task;
        weft_err err;
        int rc = weft_client_poll_activity_task(w->client, &req, &task, &h, &err);
        if (rc != 0) {
            weft_response_free(&h);
            wkr_poll_failed(w, "activity", w->task_queue, rc, &err, &backoff_ms);
            continue;
        }
        wkr_poll_ok(w, &backoff_ms);
        /* A task received is executed and reported even when a stop came meanwhile (drain). */
        if (task.task_token.len > 0) act_execute(w, &task);
        weft_response_free(&h);
    }
    return NULL;
}
