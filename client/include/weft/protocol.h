/* protocol.h: every client request and response, every workflow command and history event, as C
 * structs with their schemas (DESIGN sections 7 and 10). One table, WEFT_OPS, lists the
 * operations: name, wire type, request and response schema, whether it writes, whether it is
 * idempotent, and its documentation line. Dispatch, docs and CLI help all come from it.
 *
 * Public (installed as <weft/protocol.h>): the typed calls of weft/client.h take these structs.
 * The server includes it through proto/msg.h, which adds the schema codec. To an application a
 * weft_schema is opaque: it only passes one to weft_json_from_struct / weft_json_to_struct. */
#ifndef WEFT_PROTOCOL_H
#define WEFT_PROTOCOL_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/errors.h"
#include "weft/types.h"

WEFT_BEGIN_DECLS

/* How a struct travels on the wire (proto/schema.h); opaque outside libweft. */
typedef struct weft_schema weft_schema;

#define WEFT_PROTOCOL_VERSION 1u

/* ---- Enumerations (stored and sent as their names) ---- */

/* Run status. The names are what list filters and the CLI use. */
#define WEFT_STATUSES(X)                                                                 \
    X(UNSPECIFIED, "unspecified") X(RUNNING, "running") X(COMPLETED, "completed")        \
    X(FAILED, "failed") X(CANCELED, "canceled") X(TERMINATED, "terminated")              \
    X(TIMED_OUT, "timed-out") X(CONTINUED, "continued")
enum weft_status {
#define WEFT_STATUS_ENUM(n, s) WEFT_STATUS_##n,
    WEFT_STATUSES(WEFT_STATUS_ENUM)
#undef WEFT_STATUS_ENUM
        WEFT_STATUS__COUNT
};
extern const char *const weft_status_names[];

/* Start policies (DESIGN section 7). */
#define WEFT_REUSE_POLICIES(X) X(ALLOW, "allow") X(ALLOW_FAILED, "allow-failed") X(REJECT, "reject")
enum weft_reuse_policy {
#define WEFT_REUSE_ENUM(n, s) WEFT_REUSE_##n,
    WEFT_REUSE_POLICIES(WEFT_REUSE_ENUM)
#undef WEFT_REUSE_ENUM
        WEFT_REUSE__COUNT
};
extern const char *const weft_reuse_policy_names[];

#define WEFT_CONFLICT_POLICIES(X) \
    X(FAIL, "fail") X(USE_EXISTING, "use-existing") X(TERMINATE_EXISTING, "terminate-existing")
enum weft_conflict_policy {
#define WEFT_CONFLICT_ENUM(n, s) WEFT_CONFLICT_##n,
    WEFT_CONFLICT_POLICIES(WEFT_CONFLICT_ENUM)
#undef WEFT_CONFLICT_ENUM
        WEFT_CONFLICT__COUNT
};
extern const char *const weft_conflict_policy_names[];

/* Read consistency (DESIGN section 5, "Reads"). */
#define WEFT_CONSISTENCIES(X) X(LINEARIZABLE, "linearizable") X(STALE, "stale")
enum weft_consistency {
#define WEFT_CONSISTENCY_ENUM(n, s) WEFT_CONSISTENCY_##n,
    WEFT_CONSISTENCIES(WEFT_CONSISTENCY_ENUM)
#undef WEFT_CONSISTENCY_ENUM
        WEFT_CONSISTENCY__COUNT
};
extern const char *const weft_consistency_names[];

/* Timeout kinds, for ActivityTaskTimedOut and WorkflowTaskTimedOut. */
#define WEFT_TIMEOUT_TYPES(X)                                                                     \
    X(NONE, "none") X(SCHEDULE_TO_START, "schedule-to-start") X(START_TO_CLOSE, "start-to-close") \
    X(SCHEDULE_TO_CLOSE, "schedule-to-close") X(HEARTBEAT, "heartbeat")
enum weft_timeout_type {
#define WEFT_TIMEOUT_ENUM(n, s) WEFT_TIMEOUT_##n,
    WEFT_TIMEOUT_TYPES(WEFT_TIMEOUT_ENUM)
#undef WEFT_TIMEOUT_ENUM
        WEFT_TIMEOUT__COUNT
};
extern const char *const weft_timeout_type_names[];

/* History event types (DESIGN section 7, "Events"). */
#define WEFT_EVENT_TYPES(X)                                                                       \
    X(UNSPECIFIED, "Unspecified")                                                                 \
    X(WORKFLOW_EXECUTION_STARTED, "WorkflowExecutionStarted")                                     \
    X(WORKFLOW_EXECUTION_SIGNALED, "WorkflowExecutionSignaled")                                   \
    X(WORKFLOW_EXECUTION_CANCEL_REQUESTED, "WorkflowExecutionCancelRequested")                    \
    X(MARKER_RECORDED, "MarkerRecorded")                                                          \
    X(WORKFLOW_TASK_SCHEDULED, "WorkflowTaskScheduled")                                           \
    X(WORKFLOW_TASK_STARTED, "WorkflowTaskStarted")                                               \
    X(WORKFLOW_TASK_COMPLETED, "WorkflowTaskCompleted")                                           \
    X(WORKFLOW_TASK_FAILED, "WorkflowTaskFailed")                                                 \
    X(WORKFLOW_TASK_TIMED_OUT, "WorkflowTaskTimedOut")                                            \
    X(ACTIVITY_TASK_SCHEDULED, "ActivityTaskScheduled")                                           \
    X(ACTIVITY_TASK_STARTED, "ActivityTaskStarted")                                               \
    X(ACTIVITY_TASK_COMPLETED, "ActivityTaskCompleted")                                           \
    X(ACTIVITY_TASK_FAILED, "ActivityTaskFailed")                                                 \
    X(ACTIVITY_TASK_TIMED_OUT, "ActivityTaskTimedOut")                                            \
    X(ACTIVITY_TASK_CANCEL_REQUESTED, "ActivityTaskCancelRequested")                              \
    X(ACTIVITY_TASK_CANCELED, "ActivityTaskCanceled")                                             \
    X(TIMER_STARTED, "TimerStarted")                                                              \
    X(TIMER_FIRED, "TimerFired")                                                                  \
    X(TIMER_CANCELED, "TimerCanceled")                                                            \
    X(WORKFLOW_EXECUTION_COMPLETED, "WorkflowExecutionCompleted")                                 \
    X(WORKFLOW_EXECUTION_FAILED, "WorkflowExecutionFailed")                                       \
    X(WORKFLOW_EXECUTION_TIMED_OUT, "WorkflowExecutionTimedOut")                                  \
    X(WORKFLOW_EXECUTION_CANCELED, "WorkflowExecutionCanceled")                                   \
    X(WORKFLOW_EXECUTION_TERMINATED, "WorkflowExecutionTerminated")                               \
    X(WORKFLOW_EXECUTION_CONTINUED_AS_NEW, "WorkflowExecutionContinuedAsNew")
enum weft_event_type {
#define WEFT_EVENT_ENUM(n, s) WEFT_EV_##n,
    WEFT_EVENT_TYPES(WEFT_EVENT_ENUM)
#undef WEFT_EVENT_ENUM
        WEFT_EV__COUNT
};
extern const char *const weft_event_type_names[];

/* Commands a worker returns with CompleteWorkflowTask (DESIGN section 7, "Commands"). */
#define WEFT_COMMAND_TYPES(X)                                                           \
    X(UNSPECIFIED, "Unspecified") X(SCHEDULE_ACTIVITY, "ScheduleActivity")              \
    X(REQUEST_CANCEL_ACTIVITY, "RequestCancelActivity") X(START_TIMER, "StartTimer")    \
    X(CANCEL_TIMER, "CancelTimer") X(RECORD_MARKER, "RecordMarker")                     \
    X(COMPLETE_WORKFLOW, "CompleteWorkflow") X(FAIL_WORKFLOW, "FailWorkflow")           \
    X(CANCEL_WORKFLOW, "CancelWorkflow") X(CONTINUE_AS_NEW, "ContinueAsNew")
enum weft_command_type {
#define WEFT_COMMAND_ENUM(n, s) WEFT_CMD_##n,
    WEFT_COMMAND_TYPES(WEFT_COMMAND_ENUM)
#undef WEFT_COMMAND_ENUM
        WEFT_CMD__COUNT
};
extern const char *const weft_command_type_names[];

/* ---- Shared parts ---- */

/* Temporal retry policy (DESIGN section 7). Zero fields take the defaults: initial 1 s,
 * coefficient 2, maximum 100 x initial, unlimited attempts (maximum_attempts 0). */
typedef struct weft_retry_policy {
    uint64_t initial_interval_ms; /* delay before the second attempt */
    double backoff_coefficient;   /* growth per attempt, >= 1 */
    uint64_t maximum_interval_ms; /* cap on one delay */
    uint32_t maximum_attempts;    /* 0 = unlimited; 1 = no retries */
    weft_str *non_retryable_error_types; /* failure types that stop retries at once */
    uint32_t non_retryable_error_types_count;
} weft_retry_policy;
extern const weft_schema weft_retry_policy_schema;

/* A failure as workers report it and history records it. */
typedef struct weft_failure {
    weft_str type;       /* application error type, e.g. "PaymentDeclined" */
    weft_str message;    /* human-readable */
    bool non_retryable;  /* stops activity retries regardless of the policy */
    weft_bytes details;  /* opaque payload */
} weft_failure;
extern const weft_schema weft_failure_schema;

/* One workflow command. A wide struct: each command type uses the fields its row in
 * docs/protocol.md lists; shards/ validates that the right ones are set. */
typedef struct weft_command {
    uint32_t type;                 /* enum weft_command_type */
    /* ScheduleActivity */
    weft_str activity_id;          /* unique among the run's pending activities */
    weft_str activity_type;        /* name the worker registered */
    weft_str task_queue;           /* defaults to the workflow's task queue */
    weft_bytes input;              /* activity input, or ContinueAsNew input */
    uint64_t schedule_to_close_timeout_ms;
    uint64_t schedule_to_start_timeout_ms;
    uint64_t start_to_close_timeout_ms;
    uint64_t heartbeat_timeout_ms;
    weft_retry_policy retry_policy;
    /* RequestCancelActivity */
    uint64_t scheduled_event_id;   /* the ActivityTaskScheduled event to cancel */
    /* StartTimer, CancelTimer */
    weft_str timer_id;             /* unique among the run's pending timers */
    uint64_t start_to_fire_timeout_ms;
    /* RecordMarker */
    weft_str marker_name;
    weft_bytes details;            /* marker details, or CancelWorkflow details */
    /* CompleteWorkflow */
    weft_bytes result;
    /* FailWorkflow */
    weft_failure failure;
    /* ContinueAsNew (input above) */
    weft_str workflow_type;        /* defaults to the current type */
    uint64_t workflow_run_timeout_ms;
    uint64_t workflow_task_timeout_ms;
} weft_command;
extern const weft_schema weft_command_schema;

/* One history event. A wide struct: each type fills the attributes it needs, and the encoder
 * omits the rest, so stored events stay small. */
typedef struct weft_event {
    uint64_t event_id;            /* dense from 1 within a run */
    uint64_t event_time_ms;       /* shard clock when the event was written */
    uint32_t event_type;          /* enum weft_event_type */
    /* started / continued */
    weft_str workflow_type;
    weft_str task_queue;
    weft_bytes input;
    uint64_t workflow_run_timeout_ms;
    uint64_t workflow_execution_timeout_ms;
    uint64_t workflow_task_timeout_ms;
    weft_str continued_run_id;      /* Started: the run this one continues; ContinuedAsNew: new run */
    weft_str first_run_id;          /* Started: first run of the chain (execution timeout scope) */
    uint32_t attempt;               /* workflow task or activity attempt */
    weft_str identity;              /* worker or requester identity */
    weft_str request_id;            /* idempotency key of the request that caused the event */
    /* signals, cancel, terminate */
    weft_str signal_name;
    weft_str reason;
    /* workflow and activity tasks */
    uint64_t scheduled_event_id;
    uint64_t started_event_id;
    uint32_t timeout_type;          /* enum weft_timeout_type, names on the wire */
    weft_str cause;                 /* WorkflowTaskFailed cause, e.g. "non-determinism" */
    /* activities */
    weft_str activity_id;
    weft_str activity_type;
    uint64_t schedule_to_close_timeout_ms;
    uint64_t schedule_to_start_timeout_ms;
    uint64_t start_to_close_timeout_ms;
    uint64_t heartbeat_timeout_ms;
    weft_retry_policy retry_policy;
    weft_bytes details;             /* heartbeat / marker / cancel / terminate details */
    /* timers */
    weft_str timer_id;
    uint64_t start_to_fire_timeout_ms;
    /* markers */
    weft_str marker_name;
    /* closing */
    weft_bytes result;
    weft_failure failure;
    /* WorkflowTaskCompleted */
    weft_str sticky_queue;
} weft_event;
extern const weft_schema weft_event_schema;

/* ---- Requests and responses (DESIGN section 10) ---- */

typedef struct weft_hello_req {
    uint32_t protocol_version; /* WEFT_PROTOCOL_VERSION */
    weft_str client_name;      /* for logs */
    weft_str token;            /* reserved for authentication */
    uint64_t forwarding_node;  /* set only by a weftd that forwards requests to this node
                                * (node/forward.c): its node id. Requests on such a connection
                                * are answered here and never forwarded again. 0 for clients */
} weft_hello_req;

/* Replicas of one shard in a ShardInfo row, at most: the replication factor, which never
 * exceeds the node count (node/placement.h's WEFT_CLUSTER_NODES_MAX; node/topology.c checks the
 * relation). The proto layer cannot see node/, hence its own constant. */
#define WEFT_SHARD_REPLICAS_MAX 9u

/* One replica of a shard (ClusterStatus only). Only the shard's leader tracks how much of its
 * log each replica stores (raft's matchIndex, thesis section 3.5), so only the row that the
 * leader answers carries lag_known; every other node lists the replica set with lag unknown.
 * A status merged from several nodes takes each shard's row from the node that leads it. */
typedef struct weft_replica_info {
    uint64_t node_id;     /* node that holds the replica */
    uint64_t match_index; /* highest log index the leader knows this replica stores (for the
                           * leader itself: its last index); lag_known only */
    uint64_t lag_entries; /* log entries it is behind: the leader's last index - match_index;
                           * 0 for the leader itself; lag_known only */
    bool lag_known;       /* this row comes from the shard's leader, so the two above are set */
} weft_replica_info;

typedef struct weft_shard_info {
    uint32_t shard_id;
    uint64_t range_start;   /* first key hash the shard owns */
    uint64_t range_end;     /* last key hash the shard owns (inclusive) */
    uint64_t leader_node;   /* node id of the leader, 0 if unknown */
    uint64_t term;
    uint64_t commit_index;  /* ClusterStatus only */
    uint64_t applied_index; /* ClusterStatus only */
    bool ready;             /* leader's own-term barrier has applied */
    weft_replica_info *replicas; /* ClusterStatus only: the shard's voters, in placement order
                                  * (preferred leader first), at most WEFT_SHARD_REPLICAS_MAX */
    uint32_t replicas_count;     /* entries in replicas */
} weft_shard_info;

typedef struct weft_node_info {
    uint64_t node_id;
    weft_str address; /* client address host:port */
    bool up;
    weft_str health; /* "" when fine; else what is wrong, in the node's own words (e.g. "disk
                      * low: ..."), as its own answer to a merged ClusterStatus gave it */
} weft_node_info;

typedef struct weft_hello_resp {
    uint32_t protocol_version;
    uint64_t node_id;
    weft_str cluster_id;
    uint32_t shard_count;
    weft_shard_info *shards;
    uint32_t shards_count;
    weft_node_info *nodes;
    uint32_t nodes_count;
    bool cut_off; /* the answering node has heard from no majority of its shards' replicas for
                   * an election timeout (node/cluster.h): its view of leaders is stale, and it
                   * answers requests it cannot serve with UNAVAILABLE */
} weft_hello_resp;

typedef weft_hello_resp weft_cluster_status_resp;
typedef struct weft_cluster_status_req {
    uint32_t reserved; /* no fields yet */
} weft_cluster_status_req;

typedef struct weft_start_req {
    weft_str namespace_;              /* wire name "namespace"; default "default" */
    weft_str workflow_id;             /* required */
    weft_str workflow_type;           /* required */
    weft_str task_queue;              /* required */
    weft_bytes input;
    weft_str request_id;              /* idempotency key; generated by the client if absent */
    uint64_t workflow_run_timeout_ms; /* 0 = none */
    uint64_t workflow_execution_timeout_ms; /* 0 = none */
    uint64_t workflow_task_timeout_ms;      /* 0 = default (10 s) */
    uint32_t id_reuse_policy;         /* enum weft_reuse_policy */
    uint32_t id_conflict_policy;      /* enum weft_conflict_policy */
    weft_str identity;
    /* SignalWithStart only */
    weft_str signal_name;
    weft_bytes signal_input;
} weft_start_req;

typedef struct weft_start_resp {
    weft_str run_id;
    bool started; /* this request created the run (a retry answers as its first attempt did) */
} weft_start_resp;

typedef struct weft_signal_req {
    weft_str namespace_;
    weft_str workflow_id;
    weft_str run_id;      /* empty: the current run */
    weft_str signal_name; /* required */
    weft_bytes input;
    weft_str request_id;  /* dedup key (G4, G7) */
    weft_str identity;
} weft_signal_req;

/* CancelWorkflow and TerminateWorkflow share one request shape. */
typedef struct weft_close_req {
    weft_str namespace_;
    weft_str workflow_id;
    weft_str run_id;
    weft_str reason;
    weft_bytes details;
    weft_str request_id;
    weft_str identity;
} weft_close_req;

typedef struct weft_empty_resp {
    uint32_t reserved;
} weft_empty_resp;

typedef struct weft_describe_req {
    weft_str namespace_;
    weft_str workflow_id;
    weft_str run_id;      /* empty: the current (or latest) run */
    uint32_t consistency; /* enum weft_consistency */
} weft_describe_req;

typedef struct weft_pending_activity {
    uint64_t scheduled_event_id;
    weft_str activity_id;
    weft_str activity_type;
    weft_str state;               /* "scheduled", "started", "backoff", "cancel-requested" */
    uint32_t attempt;
    uint64_t scheduled_time_ms;
    uint64_t last_started_time_ms;
    uint64_t last_heartbeat_time_ms;
    weft_bytes heartbeat_details;
    weft_failure last_failure;
    weft_str last_worker_identity;
    uint64_t next_attempt_time_ms; /* when in backoff */
    weft_str task_queue;           /* where its tasks are dispatched */
} weft_pending_activity;

typedef struct weft_pending_timer {
    weft_str timer_id;
    uint64_t started_event_id;
    uint64_t fire_time_ms;
} weft_pending_timer;

typedef struct weft_execution_info {
    weft_str namespace_;
    weft_str workflow_id;
    weft_str run_id;
    weft_str workflow_type;
    weft_str task_queue;
    uint32_t status;             /* enum weft_status */
    uint64_t start_time_ms;
    uint64_t close_time_ms;
    uint64_t history_length;     /* events so far */
    uint64_t history_bytes;
    weft_str first_run_id;
    weft_str continued_from_run_id;
    weft_str continued_to_run_id;
    bool cancel_requested;
    uint64_t workflow_run_timeout_ms;
    uint64_t workflow_execution_timeout_ms;
    uint64_t workflow_task_timeout_ms;
} weft_execution_info;

typedef struct weft_describe_resp {
    weft_execution_info info;
    weft_pending_activity *pending_activities;
    uint32_t pending_activities_count;
    weft_pending_timer *pending_timers;
    uint32_t pending_timers_count;
    /* the pending workflow task, if any */
    bool workflow_task_pending;
    weft_str workflow_task_state;   /* "scheduled" or "started" */
    uint32_t workflow_task_attempt;
    weft_str sticky_queue;
    /* workflow task failures since the last success (only the first is in history) */
    uint32_t workflow_task_failures;
    weft_failure last_workflow_task_failure;
} weft_describe_resp;

typedef struct weft_history_req {
    weft_str namespace_;
    weft_str workflow_id;
    weft_str run_id;          /* empty: current run */
    uint64_t first_event_id;  /* page start, default 1 */
    uint32_t max_events;      /* page size, capped by the server (1000) */
    bool wait_new_events;     /* long-poll until an event >= first_event_id exists or the run closes */
    uint64_t wait_timeout_ms; /* cap on the wait; 0 = poll_timeout_ms */
    uint32_t consistency;
} weft_history_req;

typedef struct weft_history_resp {
    weft_str run_id;
    weft_event *events;
    uint32_t events_count;
    uint64_t next_event_id; /* first id not returned; page further with it */
    bool closed;            /* the run is closed: no event will follow the last one */
} weft_history_resp;

typedef struct weft_result_req {
    weft_str namespace_;
    weft_str workflow_id;
    weft_str run_id;          /* empty: current run */
    bool wait;                /* long-poll until the run closes */
    uint64_t wait_timeout_ms; /* 0 = poll_timeout_ms */
    bool follow_runs;         /* follow continue-as-new to the final run (default on in clients) */
    uint32_t consistency;
} weft_result_req;

typedef struct weft_result_resp {
    weft_str run_id;              /* the run the outcome belongs to */
    uint32_t status;              /* RUNNING when not closed (and !wait or the wait timed out) */
    weft_bytes result;
    weft_failure failure;         /* failed, timed out, canceled, terminated: the reason */
    weft_str continued_run_id;    /* status CONTINUED without follow_runs */
} weft_result_resp;

typedef struct weft_list_req {
    weft_str namespace_;
    uint32_t status;              /* 0 = any */
    weft_str workflow_type;       /* empty = any */
    uint64_t start_time_min_ms;   /* inclusive, 0 = open */
    uint64_t start_time_max_ms;   /* inclusive, 0 = open */
    uint32_t page_size;           /* default 100, max 1000 (a server limit) */
    weft_bytes next_page_token;   /* from the previous page */
    uint32_t consistency;
} weft_list_req;

typedef struct weft_list_resp {
    weft_execution_info *executions;
    uint32_t executions_count;
    weft_bytes next_page_token; /* empty when the listing is complete */
} weft_list_resp;

/* Namespaces (RegisterNamespace, DescribeNamespace, ListNamespaces). A request naming a
 * namespace that is not registered is refused (NOT_FOUND, field "namespace");
 * WEFT_DEFAULT_NAMESPACE exists without registration. The registry lives in shard
 * WEFT_NAMESPACE_REGISTRY_SHARD. */
typedef struct weft_register_ns_req {
    weft_str namespace_;   /* wire name "namespace"; required: letters, digits, '.', '_', '-' */
    weft_str description;  /* free text, may be empty */
    uint64_t retention_ms; /* how long closed runs are kept; 0 = the server's default */
    weft_str request_id;   /* a retry with the same id is answered as the first (G4) */
} weft_register_ns_req;

typedef struct weft_describe_ns_req {
    weft_str namespace_; /* wire name "namespace"; empty = WEFT_DEFAULT_NAMESPACE */
} weft_describe_ns_req;

typedef struct weft_namespace_info {
    weft_str namespace_;      /* wire name "namespace" */
    weft_str description;
    uint64_t retention_ms;    /* 0 = the server's default */
    uint64_t created_time_ms; /* shard clock at registration; 0 for the built-in default */
} weft_namespace_info;

typedef struct weft_list_ns_req {
    uint32_t reserved; /* no fields yet: every namespace fits one page */
} weft_list_ns_req;

typedef struct weft_list_ns_resp {
    weft_namespace_info *namespaces; /* by name; WEFT_DEFAULT_NAMESPACE included */
    uint32_t namespaces_count;
} weft_list_ns_resp;

typedef struct weft_count_resp {
    uint64_t count;
} weft_count_resp;

typedef struct weft_poll_req {
    weft_str namespace_;
    weft_str task_queue;      /* required: a shared queue or a worker's sticky queue */
    weft_str identity;
    uint64_t poll_timeout_ms; /* 0 = the server's poll_timeout_ms; capped by it */
} weft_poll_req;

typedef struct weft_poll_wft_resp {
    weft_bytes task_token;      /* empty: no task before the poll timed out */
    weft_str workflow_id;
    weft_str run_id;
    weft_str workflow_type;
    weft_str task_queue;
    uint32_t attempt;
    uint64_t scheduled_event_id;
    uint64_t started_event_id;
    uint64_t previous_started_event_id; /* sticky: the worker already has events up to here */
    bool sticky;                /* events hold only what follows previous_started_event_id */
    weft_event *events;         /* full history, or the new events for a sticky task */
    uint32_t events_count;
    uint64_t next_event_id;     /* if the history was too long for one frame: fetch the rest */
} weft_poll_wft_resp;

typedef struct weft_complete_wft_req {
    weft_str namespace_;
    weft_bytes task_token;   /* required */
    weft_str identity;
    weft_command *commands;
    uint32_t commands_count;
    weft_str sticky_queue;   /* the worker's sticky queue; empty disables stickiness */
} weft_complete_wft_req;

typedef struct weft_fail_wft_req {
    weft_str namespace_;
    weft_bytes task_token;
    weft_str identity;
    weft_str cause;          /* e.g. "non-determinism", "panic" */
    weft_failure failure;
} weft_fail_wft_req;

typedef struct weft_poll_activity_resp {
    weft_bytes task_token;   /* empty: no task before the poll timed out */
    weft_str workflow_id;
    weft_str run_id;
    weft_str workflow_type;
    weft_str activity_id;
    weft_str activity_type;
    weft_bytes input;
    uint32_t attempt;
    uint64_t scheduled_event_id;
    uint64_t scheduled_time_ms;
    uint64_t started_time_ms;
    uint64_t schedule_to_close_timeout_ms;
    uint64_t start_to_close_timeout_ms;
    uint64_t heartbeat_timeout_ms;
    weft_bytes heartbeat_details; /* from the previous attempt's last heartbeat */
} weft_poll_activity_resp;

typedef struct weft_activity_req {
    weft_str namespace_;
    weft_bytes task_token;   /* required */
    weft_str identity;
    weft_bytes result;       /* CompleteActivity */
    weft_failure failure;    /* FailActivity */
    weft_bytes details;      /* HeartbeatActivity */
} weft_activity_req;

typedef struct weft_heartbeat_resp {
    bool cancel_requested;
} weft_heartbeat_resp;

/* DescribeTaskQueue: who polled a task queue lately, on any node of the cluster. */
typedef struct weft_task_queue_req {
    weft_str namespace_;
    weft_str task_queue; /* required */
} weft_task_queue_req;

typedef struct weft_poller_info {
    weft_str identity;     /* the poll request's identity ("" when it sent none) */
    weft_str kind;         /* "workflow" or "activity": the tasks it polled for */
    uint64_t last_poll_ms; /* wall clock of its last poll, on the node that saw it */
    uint64_t node_id;      /* the node it polled */
} weft_poller_info;

typedef struct weft_task_queue_resp {
    weft_poller_info *pollers; /* those that polled within the server's window (60 s) */
    uint32_t pollers_count;
} weft_task_queue_resp;

/* Error body: sent instead of the response schema when code != 0. */
typedef struct weft_error_resp {
    uint32_t code;         /* enum weft_error */
    weft_str name;         /* "INVALID_ARGUMENT" */
    weft_str message;      /* what was wrong and what to do */
    weft_str field;        /* the offending field, if any */
    uint64_t leader_hint;  /* NOT_LEADER: node id of the leader, 0 if unknown */
    weft_str leader_address;
} weft_error_resp;

/* Task token (opaque to clients): identifies one dispatched attempt. */
typedef struct weft_task_token {
    uint32_t shard_id;
    uint64_t run_key;             /* shard-local run key */
    uint64_t scheduled_event_id;  /* WFT or activity scheduled id */
    uint32_t attempt;
    uint32_t kind;                /* 1 = workflow task, 2 = activity task */
} weft_task_token;

extern const weft_schema weft_hello_req_schema, weft_hello_resp_schema, weft_shard_info_schema,
    weft_replica_info_schema, weft_node_info_schema, weft_cluster_status_req_schema,
    weft_start_req_schema, weft_start_resp_schema, weft_signal_req_schema, weft_close_req_schema,
    weft_empty_resp_schema, weft_describe_req_schema, weft_describe_resp_schema,
    weft_pending_activity_schema, weft_pending_timer_schema, weft_execution_info_schema,
    weft_history_req_schema, weft_history_resp_schema, weft_result_req_schema,
    weft_result_resp_schema, weft_list_req_schema, weft_list_resp_schema,
    weft_count_resp_schema, weft_poll_req_schema, weft_poll_wft_resp_schema,
    weft_complete_wft_req_schema, weft_fail_wft_req_schema, weft_poll_activity_resp_schema,
    weft_activity_req_schema, weft_heartbeat_resp_schema, weft_error_resp_schema,
    weft_task_token_schema, weft_register_ns_req_schema, weft_describe_ns_req_schema,
    weft_namespace_info_schema, weft_list_ns_req_schema, weft_list_ns_resp_schema,
    weft_task_queue_req_schema, weft_poller_info_schema, weft_task_queue_resp_schema;

/* ---- The operation table ---- */

/* X(NAME, wire type, request struct, request schema, response schema, writes, idempotent, doc)
 * Wire type of the response = request type | WEFT_MSG_RESPONSE_BIT. */
#define WEFT_OPS(X)                                                                                 \
    X(HELLO, 1, weft_hello_req, weft_hello_req_schema, weft_hello_resp_schema, 0, 1,               \
      "Open a session: protocol version in, node id, cluster id and topology out")                 \
    X(START_WORKFLOW, 10, weft_start_req, weft_start_req_schema, weft_start_resp_schema, 1, 1,     \
      "Start a workflow run, honouring the id-reuse and conflict policies")                        \
    X(SIGNAL_WORKFLOW, 11, weft_signal_req, weft_signal_req_schema, weft_empty_resp_schema, 1, 1,  \
      "Append a signal to a running workflow; deduplicated by request id")                         \
    X(SIGNAL_WITH_START, 12, weft_start_req, weft_start_req_schema, weft_start_resp_schema, 1, 1,  \
      "Signal a running workflow, or start it and signal it, atomically")                          \
    X(CANCEL_WORKFLOW, 13, weft_close_req, weft_close_req_schema, weft_empty_resp_schema, 1, 1,    \
      "Ask a workflow to cancel; its code decides how")                                            \
    X(TERMINATE_WORKFLOW, 14, weft_close_req, weft_close_req_schema, weft_empty_resp_schema, 1, 1, \
      "Close a run at once, without running any workflow code")                                    \
    X(DESCRIBE_WORKFLOW, 15, weft_describe_req, weft_describe_req_schema,                          \
      weft_describe_resp_schema, 0, 1, "Show a run's status, pending activities and timers")       \
    X(GET_HISTORY, 16, weft_history_req, weft_history_req_schema, weft_history_resp_schema, 0, 1,  \
      "Read a run's events, paged, optionally waiting for new ones")                               \
    X(GET_RESULT, 17, weft_result_req, weft_result_req_schema, weft_result_resp_schema, 0, 1,      \
      "Read a run's outcome, optionally waiting for it to close")                                  \
    X(LIST_WORKFLOWS, 18, weft_list_req, weft_list_req_schema, weft_list_resp_schema, 0, 1,        \
      "List runs by status, type and start-time range, paged")                                     \
    X(COUNT_WORKFLOWS, 19, weft_list_req, weft_list_req_schema, weft_count_resp_schema, 0, 1,      \
      "Count runs by status, type and start-time range")                                           \
    X(POLL_WORKFLOW_TASK, 30, weft_poll_req, weft_poll_req_schema, weft_poll_wft_resp_schema, 1,   \
      0, "Long-poll a task queue for a workflow task")                                             \
    X(COMPLETE_WORKFLOW_TASK, 31, weft_complete_wft_req, weft_complete_wft_req_schema,             \
      weft_empty_resp_schema, 1, 1, "Finish a workflow task with its commands")                    \
    X(FAIL_WORKFLOW_TASK, 32, weft_fail_wft_req, weft_fail_wft_req_schema,                         \
      weft_empty_resp_schema, 1, 1, "Report a failed workflow task; it is retried with backoff")   \
    X(POLL_ACTIVITY_TASK, 33, weft_poll_req, weft_poll_req_schema, weft_poll_activity_resp_schema, \
      1, 0, "Long-poll a task queue for an activity task")                                         \
    X(COMPLETE_ACTIVITY, 34, weft_activity_req, weft_activity_req_schema, weft_empty_resp_schema,  \
      1, 1, "Record an activity attempt's result")                                                 \
    X(FAIL_ACTIVITY, 35, weft_activity_req, weft_activity_req_schema, weft_empty_resp_schema, 1,   \
      1, "Record an activity attempt's failure; retried per its policy")                           \
    X(HEARTBEAT_ACTIVITY, 36, weft_activity_req, weft_activity_req_schema,                         \
      weft_heartbeat_resp_schema, 1, 1, "Record progress; answers whether cancel was requested")   \
    X(CLUSTER_STATUS, 50, weft_cluster_status_req, weft_cluster_status_req_schema,                 \
      weft_hello_resp_schema, 0, 1, "Show nodes; per shard leader, term, indexes and replica lag") \
    X(DESCRIBE_TASK_QUEUE, 51, weft_task_queue_req, weft_task_queue_req_schema,                    \
      weft_task_queue_resp_schema, 0, 1, "Show who polled a task queue in the last minute, and when") \
    X(REGISTER_NAMESPACE, 60, weft_register_ns_req, weft_register_ns_req_schema,                   \
      weft_empty_resp_schema, 1, 1, "Register a namespace, with a description and a retention")   \
    X(DESCRIBE_NAMESPACE, 61, weft_describe_ns_req, weft_describe_ns_req_schema,                   \
      weft_namespace_info_schema, 0, 1, "Show a namespace's description, retention and creation")  \
    X(LIST_NAMESPACES, 62, weft_list_ns_req, weft_list_ns_req_schema, weft_list_ns_resp_schema, 0, \
      1, "List the registered namespaces, the default one included")

enum weft_msg_type {
#define WEFT_OP_ENUM(name, wire, rt, rq, rs, w, i, doc) WEFT_MSG_##name = wire,
    WEFT_OPS(WEFT_OP_ENUM)
#undef WEFT_OP_ENUM
};
#define WEFT_MSG_RESPONSE_BIT 0x80u

typedef struct weft_op {
    const char *name;              /* "START_WORKFLOW" */
    uint32_t msg_type;             /* wire type */
    const weft_schema *req_schema; /* request body */
    const weft_schema *resp_schema;/* success body */
    bool writes;                   /* goes through raft */
    bool idempotent;               /* safe to retry with the same request id / token */
    const char *doc;               /* documentation line */
} weft_op;

/* The op for a wire type, or NULL if the type is unknown. */
const weft_op *weft_op_find(uint32_t msg_type);
/* All ops, for docs and help. */
extern const weft_op weft_ops[];
extern const unsigned weft_ops_count;

/* Looks up `name` in a NULL-terminated name table; returns the index or -1. */
int weft_enum_lookup(const char *const *names, weft_str name);

/* The namespace used when a request leaves it empty. */
#define WEFT_DEFAULT_NAMESPACE "default"
/* The shard that holds the namespace registry (until a cluster metadata group exists). */
#define WEFT_NAMESPACE_REGISTRY_SHARD 0u

WEFT_END_DECLS

#endif
