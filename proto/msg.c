/* msg.c: the enum name tables, the schema of every message struct in msg.h, and the operation
 * table built from WEFT_OPS (DESIGN sections 7 and 10). */
#include "msg.h"

#include <string.h>

#include "partition.h"

/* Free text that people write (failure messages, cancel and terminate reasons, workflow task
 * failure causes, error messages, tokens): longer than an identifier, but a message is not a
 * payload and must not cost a payload's 2 MiB. */
#define WEFT_TEXT_BYTES_MAX (32u * 1024u)
/* Non-retryable error types in one retry policy: a list a person writes by hand. */
#define WEFT_RETRY_ERROR_TYPES_MAX 256u

_Static_assert(WEFT_TEXT_BYTES_MAX < WEFT_PAYLOAD_BYTES_MAX_DEFAULT,
               "text is capped below a payload");

/* ---- Enum name tables: indexed by value, NULL-terminated (weft_field.names) ---- */

#define NAME_ROW(n, s) s,
const char *const weft_status_names[] = {WEFT_STATUSES(NAME_ROW) NULL};
const char *const weft_reuse_policy_names[] = {WEFT_REUSE_POLICIES(NAME_ROW) NULL};
const char *const weft_conflict_policy_names[] = {WEFT_CONFLICT_POLICIES(NAME_ROW) NULL};
const char *const weft_consistency_names[] = {WEFT_CONSISTENCIES(NAME_ROW) NULL};
const char *const weft_timeout_type_names[] = {WEFT_TIMEOUT_TYPES(NAME_ROW) NULL};
const char *const weft_event_type_names[] = {WEFT_EVENT_TYPES(NAME_ROW) NULL};
const char *const weft_command_type_names[] = {WEFT_COMMAND_TYPES(NAME_ROW) NULL};
#undef NAME_ROW

_Static_assert(WEFT_ARRAY_LEN(weft_status_names) == WEFT_STATUS__COUNT + 1, "status names");
_Static_assert(WEFT_ARRAY_LEN(weft_reuse_policy_names) == WEFT_REUSE__COUNT + 1, "reuse names");
_Static_assert(WEFT_ARRAY_LEN(weft_conflict_policy_names) == WEFT_CONFLICT__COUNT + 1,
               "conflict names");
_Static_assert(WEFT_ARRAY_LEN(weft_consistency_names) == WEFT_CONSISTENCY__COUNT + 1,
               "consistency names");
_Static_assert(WEFT_ARRAY_LEN(weft_timeout_type_names) == WEFT_TIMEOUT__COUNT + 1,
               "timeout names");
_Static_assert(WEFT_ARRAY_LEN(weft_event_type_names) == WEFT_EV__COUNT + 1, "event names");
_Static_assert(WEFT_ARRAY_LEN(weft_command_type_names) == WEFT_CMD__COUNT + 1, "command names");

/* ---- Row shorthands, so that each table reads one line per field ---- */

#define ID(T, m) WEFT_FIELD(T, m, WEFT_F_STR, WEFT_FF_ID)
#define ID_REQ(T, m) WEFT_FIELD(T, m, WEFT_F_STR, WEFT_FF_ID | WEFT_FF_REQUIRED)
#define TEXT(T, m) \
    {.name = #m, .type = WEFT_F_STR, .offset = offsetof(T, m), .max_bytes = WEFT_TEXT_BYTES_MAX}
#define PAYLOAD(T, m) WEFT_FIELD(T, m, WEFT_F_BYTES, WEFT_FF_PAYLOAD)
/* Task tokens are opaque bytes, bounded and non-empty like an identifier. */
#define TOKEN(T, m) WEFT_FIELD(T, m, WEFT_F_BYTES, WEFT_FF_ID)
#define TOKEN_REQ(T, m) WEFT_FIELD(T, m, WEFT_F_BYTES, WEFT_FF_ID | WEFT_FF_REQUIRED)
#define U64(T, m) WEFT_FIELD(T, m, WEFT_F_U64, 0)
#define U32(T, m) WEFT_FIELD(T, m, WEFT_F_U32, 0)
#define BOOL(T, m) WEFT_FIELD(T, m, WEFT_F_BOOL, 0)
#define ENUM(T, m, names) WEFT_FIELD_ENUM(T, m, names, 0)
#define OBJ(T, m, schema) WEFT_FIELD_OBJ(T, m, schema, 0)
#define ARR(T, m, schema, max) WEFT_FIELD_ARR(T, m, m##_count, schema, 0, max)

/* ---- Shared parts ---- */

static const weft_field retry_policy_rows[] = {
    U64(weft_retry_policy, initial_interval_ms),
    WEFT_FIELD(weft_retry_policy, backoff_coefficient, WEFT_F_F64, 0),
    U64(weft_retry_policy, maximum_interval_ms),
    U32(weft_retry_policy, maximum_attempts),
    WEFT_FIELD_STRS(weft_retry_policy, non_retryable_error_types,
                    non_retryable_error_types_count, WEFT_FF_ID, WEFT_RETRY_ERROR_TYPES_MAX),
};
const weft_schema weft_retry_policy_schema = WEFT_SCHEMA(weft_retry_policy, retry_policy_rows);

static const weft_field failure_rows[] = {
    ID(weft_failure, type),
    TEXT(weft_failure, message),
    BOOL(weft_failure, non_retryable),
    PAYLOAD(weft_failure, details),
};
const weft_schema weft_failure_schema = WEFT_SCHEMA(weft_failure, failure_rows);

/* Every attribute any command type uses; shards/ checks which ones a type needs. `type` is
 * required so that a command can never silently decode as Unspecified. */
static const weft_field command_rows[] = {
    WEFT_FIELD_ENUM(weft_command, type, weft_command_type_names, WEFT_FF_REQUIRED),
    ID(weft_command, activity_id),
    ID(weft_command, activity_type),
    ID(weft_command, task_queue),
    PAYLOAD(weft_command, input),
    U64(weft_command, schedule_to_close_timeout_ms),
    U64(weft_command, schedule_to_start_timeout_ms),
    U64(weft_command, start_to_close_timeout_ms),
    U64(weft_command, heartbeat_timeout_ms),
    OBJ(weft_command, retry_policy, weft_retry_policy_schema),
    U64(weft_command, scheduled_event_id),
    ID(weft_command, timer_id),
    U64(weft_command, start_to_fire_timeout_ms),
    ID(weft_command, marker_name),
    PAYLOAD(weft_command, details),
    PAYLOAD(weft_command, result),
    OBJ(weft_command, failure, weft_failure_schema),
    ID(weft_command, workflow_type),
    U64(weft_command, workflow_run_timeout_ms),
    U64(weft_command, workflow_task_timeout_ms),
};
const weft_schema weft_command_schema = WEFT_SCHEMA(weft_command, command_rows);

static const weft_field event_rows[] = {
    U64(weft_event, event_id),
    U64(weft_event, event_time_ms),
    ENUM(weft_event, event_type, weft_event_type_names),
    ID(weft_event, workflow_type),
    ID(weft_event, task_queue),
    PAYLOAD(weft_event, input),
    U64(weft_event, workflow_run_timeout_ms),
    U64(weft_event, workflow_execution_timeout_ms),
    U64(weft_event, workflow_task_timeout_ms),
    ID(weft_event, continued_run_id),
    ID(weft_event, first_run_id),
    U32(weft_event, attempt),
    ID(weft_event, identity),
    ID(weft_event, request_id),
    ID(weft_event, signal_name),
    TEXT(weft_event, reason),
    U64(weft_event, scheduled_event_id),
    U64(weft_event, started_event_id),
    ENUM(weft_event, timeout_type, weft_timeout_type_names),
    TEXT(weft_event, cause),
    ID(weft_event, activity_id),
    ID(weft_event, activity_type),
    U64(weft_event, schedule_to_close_timeout_ms),
    U64(weft_event, schedule_to_start_timeout_ms),
    U64(weft_event, start_to_close_timeout_ms),
    U64(weft_event, heartbeat_timeout_ms),
    OBJ(weft_event, retry_policy, weft_retry_policy_schema),
    PAYLOAD(weft_event, details),
    ID(weft_event, timer_id),
    U64(weft_event, start_to_fire_timeout_ms),
    ID(weft_event, marker_name),
    PAYLOAD(weft_event, result),
    OBJ(weft_event, failure, weft_failure_schema),
    ID(weft_event, sticky_queue),
};
const weft_schema weft_event_schema = WEFT_SCHEMA(weft_event, event_rows);

/* ---- Session and cluster ---- */

static const weft_field hello_req_rows[] = {
    WEFT_FIELD(weft_hello_req, protocol_version, WEFT_F_U32, WEFT_FF_REQUIRED),
    ID(weft_hello_req, client_name),
    TEXT(weft_hello_req, token),
    U64(weft_hello_req, forwarding_node),
};
const weft_schema weft_hello_req_schema = WEFT_SCHEMA(weft_hello_req, hello_req_rows);

static const weft_field replica_info_rows[] = {
    U64(weft_replica_info, node_id),
    U64(weft_replica_info, match_index),
    U64(weft_replica_info, lag_entries),
    BOOL(weft_replica_info, lag_known),
};
const weft_schema weft_replica_info_schema = WEFT_SCHEMA(weft_replica_info, replica_info_rows);

static const weft_field shard_info_rows[] = {
    U32(weft_shard_info, shard_id),     U64(weft_shard_info, range_start),
    U64(weft_shard_info, range_end),    U64(weft_shard_info, leader_node),
    U64(weft_shard_info, term),         U64(weft_shard_info, commit_index),
    U64(weft_shard_info, applied_index), BOOL(weft_shard_info, ready),
    ARR(weft_shard_info, replicas, weft_replica_info_schema, WEFT_SHARD_REPLICAS_MAX),
};
const weft_schema weft_shard_info_schema = WEFT_SCHEMA(weft_shard_info, shard_info_rows);

static const weft_field node_info_rows[] = {
    U64(weft_node_info, node_id),
    ID(weft_node_info, address),
    BOOL(weft_node_info, up),
    TEXT(weft_node_info, health),
};
const weft_schema weft_node_info_schema = WEFT_SCHEMA(weft_node_info, node_info_rows);

/* nodes: no cluster-size limit exists yet, so the codec's array cap applies. */
static const weft_field hello_resp_rows[] = {
    U32(weft_hello_resp, protocol_version),
    U64(weft_hello_resp, node_id),
    ID(weft_hello_resp, cluster_id),
    U32(weft_hello_resp, shard_count),
    ARR(weft_hello_resp, shards, weft_shard_info_schema, WEFT_SHARDS_MAX),
    ARR(weft_hello_resp, nodes, weft_node_info_schema, 0),
    BOOL(weft_hello_resp, cut_off),
};
const weft_schema weft_hello_resp_schema = WEFT_SCHEMA(weft_hello_resp, hello_resp_rows);

static const weft_field cluster_status_req_rows[] = {U32(weft_cluster_status_req, reserved)};
const weft_schema weft_cluster_status_req_schema =
    WEFT_SCHEMA(weft_cluster_status_req, cluster_status_req_rows);

/* ---- Workflow requests ---- */

static const weft_field start_req_rows[] = {
    ID(weft_start_req, namespace_),
    ID_REQ(weft_start_req, workflow_id),
    ID_REQ(weft_start_req, workflow_type),
    ID_REQ(weft_start_req, task_queue),
    PAYLOAD(weft_start_req, input),
    ID(weft_start_req, request_id),
    U64(weft_start_req, workflow_run_timeout_ms),
    U64(weft_start_req, workflow_execution_timeout_ms),
    U64(weft_start_req, workflow_task_timeout_ms),
    ENUM(weft_start_req, id_reuse_policy, weft_reuse_policy_names),
    ENUM(weft_start_req, id_conflict_policy, weft_conflict_policy_names),
    ID(weft_start_req, identity),
    ID(weft_start_req, signal_name),
    PAYLOAD(weft_start_req, signal_input),
};
const weft_schema weft_start_req_schema = WEFT_SCHEMA(weft_start_req, start_req_rows);

static const weft_field start_resp_rows[] = {
    ID(weft_start_resp, run_id),
    BOOL(weft_start_resp, started),
};
const weft_schema weft_start_resp_schema = WEFT_SCHEMA(weft_start_resp, start_resp_rows);

static const weft_field signal_req_rows[] = {
    ID(weft_signal_req, namespace_),
    ID_REQ(weft_signal_req, workflow_id),
    ID(weft_signal_req, run_id),
    ID_REQ(weft_signal_req, signal_name),
    PAYLOAD(weft_signal_req, input),
    ID(weft_signal_req, request_id),
    ID(weft_signal_req, identity),
};
const weft_schema weft_signal_req_schema = WEFT_SCHEMA(weft_signal_req, signal_req_rows);

static const weft_field close_req_rows[] = {
    ID(weft_close_req, namespace_),
    ID_REQ(weft_close_req, workflow_id),
    ID(weft_close_req, run_id),
    TEXT(weft_close_req, reason),
    PAYLOAD(weft_close_req, details),
    ID(weft_close_req, request_id),
    ID(weft_close_req, identity),
};
const weft_schema weft_close_req_schema = WEFT_SCHEMA(weft_close_req, close_req_rows);

static const weft_field empty_resp_rows[] = {U32(weft_empty_resp, reserved)};
const weft_schema weft_empty_resp_schema = WEFT_SCHEMA(weft_empty_resp, empty_resp_rows);

static const weft_field describe_req_rows[] = {
    ID(weft_describe_req, namespace_),
    ID_REQ(weft_describe_req, workflow_id),
    ID(weft_describe_req, run_id),
    ENUM(weft_describe_req, consistency, weft_consistency_names),
};
const weft_schema weft_describe_req_schema = WEFT_SCHEMA(weft_describe_req, describe_req_rows);

static const weft_field pending_activity_rows[] = {
    U64(weft_pending_activity, scheduled_event_id),
    ID(weft_pending_activity, activity_id),
    ID(weft_pending_activity, activity_type),
    ID(weft_pending_activity, state),
    U32(weft_pending_activity, attempt),
    U64(weft_pending_activity, scheduled_time_ms),
    U64(weft_pending_activity, last_started_time_ms),
    U64(weft_pending_activity, last_heartbeat_time_ms),
    PAYLOAD(weft_pending_activity, heartbeat_details),
    OBJ(weft_pending_activity, last_failure, weft_failure_schema),
    ID(weft_pending_activity, last_worker_identity),
    U64(weft_pending_activity, next_attempt_time_ms),
    ID(weft_pending_activity, task_queue),
};
const weft_schema weft_pending_activity_schema =
    WEFT_SCHEMA(weft_pending_activity, pending_activity_rows);

static const weft_field pending_timer_rows[] = {
    ID(weft_pending_timer, timer_id),
    U64(weft_pending_timer, started_event_id),
    U64(weft_pending_timer, fire_time_ms),
};
const weft_schema weft_pending_timer_schema = WEFT_SCHEMA(weft_pending_timer, pending_timer_rows);

static const weft_field execution_info_rows[] = {
    ID(weft_execution_info, namespace_),
    ID(weft_execution_info, workflow_id),
    ID(weft_execution_info, run_id),
    ID(weft_execution_info, workflow_type),
    ID(weft_execution_info, task_queue),
    ENUM(weft_execution_info, status, weft_status_names),
    U64(weft_execution_info, start_time_ms),
    U64(weft_execution_info, close_time_ms),
    U64(weft_execution_info, history_length),
    U64(weft_execution_info, history_bytes),
    ID(weft_execution_info, first_run_id),
    ID(weft_execution_info, continued_from_run_id),
    ID(weft_execution_info, continued_to_run_id),
    BOOL(weft_execution_info, cancel_requested),
    U64(weft_execution_info, workflow_run_timeout_ms),
    U64(weft_execution_info, workflow_execution_timeout_ms),
    U64(weft_execution_info, workflow_task_timeout_ms),
};
const weft_schema weft_execution_info_schema =
    WEFT_SCHEMA(weft_execution_info, execution_info_rows);

/* Pending lists use the codec's array cap, not the default pending limits: a server may be
 * configured with higher limits than the client's defaults. */
static const weft_field describe_resp_rows[] = {
    OBJ(weft_describe_resp, info, weft_execution_info_schema),
    ARR(weft_describe_resp, pending_activities, weft_pending_activity_schema, 0),
    ARR(weft_describe_resp, pending_timers, weft_pending_timer_schema, 0),
    BOOL(weft_describe_resp, workflow_task_pending),
    ID(weft_describe_resp, workflow_task_state),
    U32(weft_describe_resp, workflow_task_attempt),
    ID(weft_describe_resp, sticky_queue),
    U32(weft_describe_resp, workflow_task_failures),
    OBJ(weft_describe_resp, last_workflow_task_failure, weft_failure_schema),
};
const weft_schema weft_describe_resp_schema = WEFT_SCHEMA(weft_describe_resp, describe_resp_rows);

static const weft_field history_req_rows[] = {
    ID(weft_history_req, namespace_),
    ID_REQ(weft_history_req, workflow_id),
    ID(weft_history_req, run_id),
    U64(weft_history_req, first_event_id),
    U32(weft_history_req, max_events),
    BOOL(weft_history_req, wait_new_events),
    U64(weft_history_req, wait_timeout_ms),
    ENUM(weft_history_req, consistency, weft_consistency_names),
};
const weft_schema weft_history_req_schema = WEFT_SCHEMA(weft_history_req, history_req_rows);

static const weft_field history_resp_rows[] = {
    ID(weft_history_resp, run_id),
    ARR(weft_history_resp, events, weft_event_schema, 0),
    U64(weft_history_resp, next_event_id),
    BOOL(weft_history_resp, closed),
};
const weft_schema weft_history_resp_schema = WEFT_SCHEMA(weft_history_resp, history_resp_rows);

static const weft_field result_req_rows[] = {
    ID(weft_result_req, namespace_),
    ID_REQ(weft_result_req, workflow_id),
    ID(weft_result_req, run_id),
    BOOL(weft_result_req, wait),
    U64(weft_result_req, wait_timeout_ms),
    BOOL(weft_result_req, follow_runs),
    ENUM(weft_result_req, consistency, weft_consistency_names),
};
const weft_schema weft_result_req_schema = WEFT_SCHEMA(weft_result_req, result_req_rows);

static const weft_field result_resp_rows[] = {
    ID(weft_result_resp, run_id),
    ENUM(weft_result_resp, status, weft_status_names),
    PAYLOAD(weft_result_resp, result),
    OBJ(weft_result_resp, failure, weft_failure_schema),
    ID(weft_result_resp, continued_run_id),
};
const weft_schema weft_result_resp_schema = WEFT_SCHEMA(weft_result_resp, result_resp_rows);

/* next_page_token is opaque and its size depends on the shard count, so it gets the payload
 * cap rather than the identifier cap. */
static const weft_field list_req_rows[] = {
    ID(weft_list_req, namespace_),
    ENUM(weft_list_req, status, weft_status_names),
    ID(weft_list_req, workflow_type),
    U64(weft_list_req, start_time_min_ms),
    U64(weft_list_req, start_time_max_ms),
    U32(weft_list_req, page_size),
    WEFT_FIELD(weft_list_req, next_page_token, WEFT_F_BYTES, 0),
    ENUM(weft_list_req, consistency, weft_consistency_names),
};
const weft_schema weft_list_req_schema = WEFT_SCHEMA(weft_list_req, list_req_rows);

static const weft_field list_resp_rows[] = {
    ARR(weft_list_resp, executions, weft_execution_info_schema, WEFT_LIST_PAGE_SIZE_MAX),
    WEFT_FIELD(weft_list_resp, next_page_token, WEFT_F_BYTES, 0),
};
const weft_schema weft_list_resp_schema = WEFT_SCHEMA(weft_list_resp, list_resp_rows);

/* ---- Namespaces ---- */

/* Registered namespaces in one ListNamespaces answer: the registry holds at most this many
 * (shards/namespace.c, SH_NAMESPACES_MAX). */
#define WEFT_NAMESPACES_MAX 1000u

static const weft_field register_ns_req_rows[] = {
    ID_REQ(weft_register_ns_req, namespace_),
    TEXT(weft_register_ns_req, description),
    U64(weft_register_ns_req, retention_ms),
    ID(weft_register_ns_req, request_id),
};
const weft_schema weft_register_ns_req_schema =
    WEFT_SCHEMA(weft_register_ns_req, register_ns_req_rows);

static const weft_field describe_ns_req_rows[] = {ID(weft_describe_ns_req, namespace_)};
const weft_schema weft_describe_ns_req_schema =
    WEFT_SCHEMA(weft_describe_ns_req, describe_ns_req_rows);

static const weft_field namespace_info_rows[] = {
    ID(weft_namespace_info, namespace_),
    TEXT(weft_namespace_info, description),
    U64(weft_namespace_info, retention_ms),
    U64(weft_namespace_info, created_time_ms),
};
const weft_schema weft_namespace_info_schema = WEFT_SCHEMA(weft_namespace_info, namespace_info_rows);

static const weft_field list_ns_req_rows[] = {U32(weft_list_ns_req, reserved)};
const weft_schema weft_list_ns_req_schema = WEFT_SCHEMA(weft_list_ns_req, list_ns_req_rows);

static const weft_field list_ns_resp_rows[] = {
    ARR(weft_list_ns_resp, namespaces, weft_namespace_info_schema, WEFT_NAMESPACES_MAX + 1u),
};
const weft_schema weft_list_ns_resp_schema = WEFT_SCHEMA(weft_list_ns_resp, list_ns_resp_rows);

static const weft_field count_resp_rows[] = {U64(weft_count_resp, count)};
const weft_schema weft_count_resp_schema = WEFT_SCHEMA(weft_count_resp, count_resp_rows);

/* ---- Worker requests ---- */

static const weft_field poll_req_rows[] = {
    ID(weft_poll_req, namespace_),
    ID_REQ(weft_poll_req, task_queue),
    ID(weft_poll_req, identity),
    U64(weft_poll_req, poll_timeout_ms),
};
const weft_schema weft_poll_req_schema = WEFT_SCHEMA(weft_poll_req, poll_req_rows);

static const weft_field poll_wft_resp_rows[] = {
    TOKEN(weft_poll_wft_resp, task_token),
    ID(weft_poll_wft_resp, workflow_id),
    ID(weft_poll_wft_resp, run_id),
    ID(weft_poll_wft_resp, workflow_type),
    ID(weft_poll_wft_resp, task_queue),
    U32(weft_poll_wft_resp, attempt),
    U64(weft_poll_wft_resp, scheduled_event_id),
    U64(weft_poll_wft_resp, started_event_id),
    U64(weft_poll_wft_resp, previous_started_event_id),
    BOOL(weft_poll_wft_resp, sticky),
    ARR(weft_poll_wft_resp, events, weft_event_schema, 0),
    U64(weft_poll_wft_resp, next_event_id),
};
const weft_schema weft_poll_wft_resp_schema = WEFT_SCHEMA(weft_poll_wft_resp, poll_wft_resp_rows);

static const weft_field complete_wft_req_rows[] = {
    ID(weft_complete_wft_req, namespace_),
    TOKEN_REQ(weft_complete_wft_req, task_token),
    ID(weft_complete_wft_req, identity),
    ARR(weft_complete_wft_req, commands, weft_command_schema, WEFT_COMMANDS_PER_TASK_MAX_DEFAULT),
    ID(weft_complete_wft_req, sticky_queue),
};
const weft_schema weft_complete_wft_req_schema =
    WEFT_SCHEMA(weft_complete_wft_req, complete_wft_req_rows);

static const weft_field fail_wft_req_rows[] = {
    ID(weft_fail_wft_req, namespace_),
    TOKEN_REQ(weft_fail_wft_req, task_token),
    ID(weft_fail_wft_req, identity),
    TEXT(weft_fail_wft_req, cause),
    OBJ(weft_fail_wft_req, failure, weft_failure_schema),
};
const weft_schema weft_fail_wft_req_schema = WEFT_SCHEMA(weft_fail_wft_req, fail_wft_req_rows);

static const weft_field poll_activity_resp_rows[] = {
    TOKEN(weft_poll_activity_resp, task_token),
    ID(weft_poll_activity_resp, workflow_id),
    ID(weft_poll_activity_resp, run_id),
    ID(weft_poll_activity_resp, workflow_type),
    ID(weft_poll_activity_resp, activity_id),
    ID(weft_poll_activity_resp, activity_type),
    PAYLOAD(weft_poll_activity_resp, input),
    U32(weft_poll_activity_resp, attempt),
    U64(weft_poll_activity_resp, scheduled_event_id),
    U64(weft_poll_activity_resp, scheduled_time_ms),
    U64(weft_poll_activity_resp, started_time_ms),
    U64(weft_poll_activity_resp, schedule_to_close_timeout_ms),
    U64(weft_poll_activity_resp, start_to_close_timeout_ms),
    U64(weft_poll_activity_resp, heartbeat_timeout_ms),
    PAYLOAD(weft_poll_activity_resp, heartbeat_details),
};
const weft_schema weft_poll_activity_resp_schema =
    WEFT_SCHEMA(weft_poll_activity_resp, poll_activity_resp_rows);

static const weft_field activity_req_rows[] = {
    ID(weft_activity_req, namespace_),
    TOKEN_REQ(weft_activity_req, task_token),
    ID(weft_activity_req, identity),
    PAYLOAD(weft_activity_req, result),
    OBJ(weft_activity_req, failure, weft_failure_schema),
    PAYLOAD(weft_activity_req, details),
};
const weft_schema weft_activity_req_schema = WEFT_SCHEMA(weft_activity_req, activity_req_rows);

static const weft_field heartbeat_resp_rows[] = {BOOL(weft_heartbeat_resp, cancel_requested)};
const weft_schema weft_heartbeat_resp_schema =
    WEFT_SCHEMA(weft_heartbeat_resp, heartbeat_resp_rows);

static const weft_field task_queue_req_rows[] = {
    ID(weft_task_queue_req, namespace_),
    ID_REQ(weft_task_queue_req, task_queue),
};
const weft_schema weft_task_queue_req_schema =
    WEFT_SCHEMA(weft_task_queue_req, task_queue_req_rows);

static const weft_field poller_info_rows[] = {
    ID(weft_poller_info, identity),
    ID(weft_poller_info, kind),
    U64(weft_poller_info, last_poll_ms),
    U64(weft_poller_info, node_id),
};
const weft_schema weft_poller_info_schema = WEFT_SCHEMA(weft_poller_info, poller_info_rows);

/* The pollers list uses the codec's array cap: a merged answer lists every node's. */
static const weft_field task_queue_resp_rows[] = {
    ARR(weft_task_queue_resp, pollers, weft_poller_info_schema, 0),
};
const weft_schema weft_task_queue_resp_schema =
    WEFT_SCHEMA(weft_task_queue_resp, task_queue_resp_rows);

/* ---- Errors and tokens ---- */

static const weft_field error_resp_rows[] = {
    U32(weft_error_resp, code),
    ID(weft_error_resp, name),
    TEXT(weft_error_resp, message),
    ID(weft_error_resp, field),
    U64(weft_error_resp, leader_hint),
    ID(weft_error_resp, leader_address),
};
const weft_schema weft_error_resp_schema = WEFT_SCHEMA(weft_error_resp, error_resp_rows);

static const weft_field task_token_rows[] = {
    U32(weft_task_token, shard_id),
    U64(weft_task_token, run_key),
    U64(weft_task_token, scheduled_event_id),
    U32(weft_task_token, attempt),
    U32(weft_task_token, kind),
};
const weft_schema weft_task_token_schema = WEFT_SCHEMA(weft_task_token, task_token_rows);

/* ---- The operation table ---- */

/* A wire type must leave the response bit free, and 0 is never a request. */
#define OP_CHECK(name, wire, rt, rq, rs, w, i, doc) \
    _Static_assert((wire) > 0 && (wire) < WEFT_MSG_RESPONSE_BIT, #name " wire type");
WEFT_OPS(OP_CHECK)
#undef OP_CHECK

const weft_op weft_ops[] = {
#define OP_ROW(op, wire, rt, rq, rs, w, i, doc_line)                                        \
    {.name = #op, .msg_type = (wire), .req_schema = &(rq), .resp_schema = &(rs), .writes = (w), \
     .idempotent = (i), .doc = (doc_line)},
    WEFT_OPS(OP_ROW)
#undef OP_ROW
};
const unsigned weft_ops_count = WEFT_ARRAY_LEN(weft_ops);

const weft_op *weft_op_find(uint32_t msg_type) {
    WEFT_ASSERT(weft_ops_count > 0);
    for (unsigned i = 0; i < weft_ops_count; i++) {
        if (weft_ops[i].msg_type == msg_type) return &weft_ops[i];
    }
    return NULL;
}

int weft_enum_lookup(const char *const *names, weft_str name) {
    WEFT_ASSERT(names != NULL);
    WEFT_ASSERT(name.ptr != NULL || name.len == 0);
    for (int i = 0; names[i] != NULL; i++) {
        if (weft_str_eq_c(name, names[i])) return i;
    }
    return -1;
}
