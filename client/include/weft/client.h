/* client.h: libweft, the blocking C client of weftd (DESIGN section 10); the header is the manual.
 *
 * A weft_client holds a pool of TCP connections to the nodes of one cluster. Every call blocks
 * the calling thread until the reply arrives, the call's timeout passes or its retries run out.
 * Any number of threads may share one client: each call checks out its own connection (one
 * request at a time per connection), so a worker's 60 s long-poll never delays another
 * thread's start or signal.
 *
 * Errors. Every function returns 0 or -WEFT_E_<code> (weft/errors.h) and never aborts. When
 * `err` is not NULL it receives the code, the offending field (INVALID_ARGUMENT) and a message
 * that says what was wrong and what to do. Codes that come from the client itself:
 *   - INVALID_ARGUMENT: a NULL or malformed argument (the message names it);
 *   - UNAVAILABLE: no node could be reached within the retries (connection refused or lost);
 *   - DEADLINE_EXCEEDED: no reply within the call timeout; the outcome is unknown;
 *   - INTERNAL: a node sent a reply the client could not decode;
 *   - RESOURCE_EXHAUSTED: out of memory, or a limit of this header was hit.
 * Every other code is the server's, passed through (with its field and message).
 *
 * Retries. UNAVAILABLE, DEADLINE_EXCEEDED and lost connections are retried with exponential
 * backoff for every operation the WEFT_OPS table marks idempotent, each retry on another node
 * than the one that just failed (a node that is down, hung or cut off from its peers must not
 * take every attempt), until the call's deadline (call_deadline_ms, 30 s by default) or
 * retries_max retries, whichever comes first: a call returns within its deadline, plus the
 * wait a long-poll asks for, however the nodes fail. StartWorkflow,
 * SignalWorkflow, SignalWithStart, CancelWorkflow and TerminateWorkflow carry a request id: if
 * the caller leaves it empty the client generates one (128 random bits, hex) before the first
 * attempt, and every retry sends the SAME id, so the server applies the request at most once
 * (G4). Polls are not idempotent: they are retried only when the request never left the client.
 * NOT_LEADER is followed to the leader it names (when the topology knows its address) without
 * backoff, and refreshes the topology.
 *
 * Routing. A request about a workflow (namespace + workflow id) goes to the leader of its
 * shard, and so does a task completion, failure or heartbeat: its task_token names the shard
 * (a token the client cannot read goes to the node that answered last, like any other request,
 * and the server's NOT_LEADER or INVALID_ARGUMENT tells the rest). Polls, lists, counts and
 * ClusterStatus go to the node that answered last. A node answers a poll only with tasks of
 * the shards it leads, so a worker of a cluster polls every node: weft_client_nodes() lists
 * them and weft_client_poll_*_on() polls one.
 *
 * Responses. Operations that return data decode it into a caller-provided response struct
 * whose strings, byte strings and arrays BORROW from a weft_response holder. The holder owns
 * the received frame; free it with weft_response_free() once the response is no longer used.
 * A holder may be passed to many calls: each call frees what the holder held before, so only
 * the response of the latest call stays valid. */
#ifndef WEFT_CLIENT_H
#define WEFT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/errors.h"
#include "weft/protocol.h"
#include "weft/types.h"

WEFT_BEGIN_DECLS

/* ---- Limits and defaults (units at the end of every name) ---- */

/* Addresses in the seed list of weft_client_open, plus nodes learned from the topology. */
#define WEFT_CLIENT_NODES_MAX 64u
/* One "host:port" string, including its terminating NUL. */
#define WEFT_CLIENT_ADDRESS_BYTES_MAX 256u
/* Idle connections kept per node; more are closed when their call ends. */
#define WEFT_CLIENT_IDLE_CONNS_PER_NODE_MAX 16u
/* Time to establish TCP and receive the Hello reply on a new connection. */
#define WEFT_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT 2000u
/* Time to wait for the reply of one attempt; long-polls add the wait they ask for. */
#define WEFT_CLIENT_CALL_TIMEOUT_MS_DEFAULT 10000u
/* Attempts after the first one, for retryable failures. */
#define WEFT_CLIENT_RETRIES_DEFAULT 10u
/* The longest a call takes, its retries included (a long-poll adds the wait it asks for): no
 * attempt waits past it and no retry starts after it. Longer than a leader failover (an
 * election timeout, 2 s by default, and the election) and than a node takes to see it is cut
 * off, with room; short enough that a caller hears back while it still cares. */
#define WEFT_CLIENT_CALL_DEADLINE_MS_DEFAULT 30000u
/* Backoff before retry n is initial * 2^(n-1), capped at the maximum, with jitter of up to half. */
#define WEFT_CLIENT_BACKOFF_INITIAL_MS_DEFAULT 50u
#define WEFT_CLIENT_BACKOFF_MAX_MS_DEFAULT 2000u
/* Generated request ids: 16 random bytes as 32 lowercase hex digits, plus NUL. */
#define WEFT_CLIENT_REQUEST_ID_BYTES 33u
/* Client name and identity strings are copied into the client, truncated to this. */
#define WEFT_CLIENT_NAME_BYTES_MAX 256u

typedef struct weft_client weft_client;

/* Options of weft_client_open. A zero field takes its default; a NULL opts takes all defaults.
 * The strings are borrowed during weft_client_open only (the client copies them). */
typedef struct weft_client_opts {
    uint32_t connect_timeout_ms; /* TCP connect + Hello; 0 = CONNECT_TIMEOUT_MS_DEFAULT */
    uint32_t call_timeout_ms;    /* one attempt's reply wait; 0 = CALL_TIMEOUT_MS_DEFAULT */
    uint32_t retries_max;        /* 0 = RETRIES_DEFAULT (see no_retries) */
    uint32_t call_deadline_ms;   /* a call's whole time, retries included;
                                  * 0 = CALL_DEADLINE_MS_DEFAULT */
    bool no_retries;             /* true: never retry, whatever retries_max says */
    uint32_t backoff_initial_ms; /* 0 = BACKOFF_INITIAL_MS_DEFAULT */
    uint32_t backoff_max_ms;     /* 0 = BACKOFF_MAX_MS_DEFAULT */
    uint32_t frame_bytes_max;    /* largest reply accepted; 0 = the protocol default, 4 MiB */
    const char *client_name;     /* sent in Hello, for server logs; NULL = "libweft" */
    const char *identity;        /* put in requests that leave identity empty; NULL = host:pid */
    const char *token;           /* sent in Hello; reserved for authentication; NULL = none */
} weft_client_opts;

/* Holds the received frame that a decoded response borrows from. Zero-initialise it
 * (`weft_response h = {0};`) before its first use. Its content is private to libweft. */
typedef struct weft_response {
    struct weft_response_priv *priv; /* private: the frame and its decoder state, or NULL */
} weft_response;

/* Frees what `h` holds and zeroes it; responses that borrowed from it become invalid.
 * Safe on a zeroed holder and on NULL. */
void weft_response_free(weft_response *h);

/* The id of the node whose reply `h` holds: the node this client sent the request to last
 * (which may have forwarded it to the shard's leader), whether it answered with a result or an
 * error. 0 when `h` holds no reply (none came, or `h` is NULL or zeroed). */
uint64_t weft_response_node(const weft_response *h);

/* Opens a client for the cluster reachable at `addresses` ("host:port[,host:port...]",
 * borrowed). Connects to the first seed that answers, sends Hello and keeps the topology from
 * the reply (shard ranges, leaders, node addresses), so later requests go straight to shard
 * leaders. `opts` is borrowed (may be NULL). On success *out is a client the caller owns and
 * must close with weft_client_close(). Errors: INVALID_ARGUMENT (empty or malformed address,
 * too many addresses), UNAVAILABLE (no seed answered within the retries), FAILED_PRECONDITION
 * (protocol version refused), RESOURCE_EXHAUSTED (out of memory), or the Hello's server error. */
int weft_client_open(const char *addresses, const weft_client_opts *opts, weft_client **out,
                     weft_err *err);

/* Closes every connection and frees the client. No call may be running on it. NULL is a no-op. */
void weft_client_close(weft_client *c);

/* Copies the cluster id learnt from Hello into `buf` (capacity `cap`, NUL-terminated,
 * truncated). Returns 0, or -WEFT_E_INVALID_ARGUMENT for a NULL argument. */
int weft_client_cluster_id(weft_client *c, char *buf, size_t cap, weft_err *err);

/* One node of the cluster, as the client knows it (weft_client_nodes). */
typedef struct weft_node_ref {
    uint64_t node_id;                            /* the node's id; never 0 in a listing */
    char address[WEFT_CLIENT_ADDRESS_BYTES_MAX]; /* "host:port" the client dials for it */
    bool up; /* the latest topology said so (or the node just answered a Hello); a hint */
} weft_node_ref;

/* Lists the nodes whose id the client knows, in ascending node id: every node of the latest
 * topology that has a client address, and every seed that answered a Hello (a seed that is
 * also in the topology, under the same or another address, is listed once, under the address
 * that answered). A seed that never answered and that the topology does not name has no id
 * yet and is not listed. Node ids are stable: the same node keeps its id across topology
 * refreshes, so an id may be kept and passed to weft_client_poll_*_on() later.
 * With `refresh`, the client first asks the cluster for its current topology (ClusterStatus,
 * routed and retried like weft_client_cluster_status); without, it lists what it learnt from
 * the Hellos and replies so far, and never blocks on the network.
 * The first min(cap, *count) entries are copied into `out` (caller-owned; may be NULL when
 * cap is 0); *count receives how many nodes are known, which is at most
 * WEFT_CLIENT_NODES_MAX, so an array of that size always suffices. Errors: INVALID_ARGUMENT
 * (NULL c or count, NULL out with cap > 0); with refresh, those of weft_client_cluster_status,
 * and then *count is 0 and `out` is untouched (call again without refresh to get the known
 * nodes). */
int weft_client_nodes(weft_client *c, bool refresh, weft_node_ref *out, uint32_t cap,
                      uint32_t *count, weft_err *err);

/* The generic call: sends `req` (a struct of the request type of `msg_type` in WEFT_OPS,
 * borrowed during the call) and decodes the reply into `resp` (a struct of the op's response
 * type, overwritten; it borrows from `holder`, which is reset first and must be freed by the
 * caller with weft_response_free). `resp` and `holder` may both be NULL when the caller does
 * not want the reply body. Retries as the file comment says. Returns 0 or a negative error
 * (INVALID_ARGUMENT also for an unknown msg_type or HELLO, which the client sends itself). */
int weft_client_call(weft_client *c, uint32_t msg_type, const void *req, void *resp,
                     weft_response *holder, weft_err *err);

/* ---- One typed function per operation (WEFT_OPS). ----
 * Common rules: `c` and `req` are borrowed during the call; `resp` is overwritten and borrows
 * from `holder` until weft_response_free(holder) or the holder's next call; errors are those of
 * weft_client_call plus the server's codes listed per function. */

/* StartWorkflow. resp->run_id is the new run (or, for a deduplicated retry or use-existing, the
 * existing one; resp->started tells which). Server errors: INVALID_ARGUMENT, ALREADY_EXISTS
 * (a run is open and the conflict policy is fail, or the reuse policy refuses). */
int weft_client_start(weft_client *c, const weft_start_req *req, weft_start_resp *resp,
                      weft_response *holder, weft_err *err);
/* SignalWorkflow. Deduplicated by req->request_id. Server errors: NOT_FOUND (no such run),
 * FAILED_PRECONDITION (the run is closed). */
int weft_client_signal(weft_client *c, const weft_signal_req *req, weft_err *err);
/* SignalWithStart: signals the open run of req->workflow_id, or starts one and signals it. */
int weft_client_signal_with_start(weft_client *c, const weft_start_req *req, weft_start_resp *resp,
                                  weft_response *holder, weft_err *err);
/* CancelWorkflow: records CancelRequested; the workflow code decides. NOT_FOUND,
 * FAILED_PRECONDITION (closed). */
int weft_client_cancel(weft_client *c, const weft_close_req *req, weft_err *err);
/* TerminateWorkflow: closes the run at once. NOT_FOUND, FAILED_PRECONDITION (closed). */
int weft_client_terminate(weft_client *c, const weft_close_req *req, weft_err *err);
/* DescribeWorkflow. NOT_FOUND. */
int weft_client_describe(weft_client *c, const weft_describe_req *req, weft_describe_resp *resp,
                         weft_response *holder, weft_err *err);
/* GetHistory: one page of events; page further from resp->next_event_id. With
 * req->wait_new_events the call waits up to req->wait_timeout_ms for a new event. NOT_FOUND. */
int weft_client_history(weft_client *c, const weft_history_req *req, weft_history_resp *resp,
                        weft_response *holder, weft_err *err);
/* GetResult: the run's outcome; with req->wait it waits up to req->wait_timeout_ms for the run
 * to close (resp->status stays RUNNING if it does not). NOT_FOUND. */
int weft_client_result(weft_client *c, const weft_result_req *req, weft_result_resp *resp,
                       weft_response *holder, weft_err *err);
/* ListWorkflows: one page; pass resp->next_page_token back in req for the next one. */
int weft_client_list(weft_client *c, const weft_list_req *req, weft_list_resp *resp,
                     weft_response *holder, weft_err *err);
/* CountWorkflows: *count_out receives the number of matching runs. */
int weft_client_count(weft_client *c, const weft_list_req *req, uint64_t *count_out, weft_err *err);
/* PollWorkflowTask: waits up to req->poll_timeout_ms (server default when 0) for a task. An
 * empty resp->task_token means none arrived. Not retried once the request was sent. */
int weft_client_poll_workflow_task(weft_client *c, const weft_poll_req *req,
                                   weft_poll_wft_resp *resp, weft_response *holder, weft_err *err);
/* CompleteWorkflowTask with the commands the workflow code produced. Like every call that
 * carries a task token (the two below and the three activity reports), it goes to the leader
 * of the shard the token names, following NOT_LEADER. NOT_FOUND or
 * FAILED_PRECONDITION when the task is no longer current; INVALID_ARGUMENT names the command. */
int weft_client_complete_workflow_task(weft_client *c, const weft_complete_wft_req *req,
                                       weft_err *err);
/* FailWorkflowTask: the task is retried with backoff. Errors as complete. */
int weft_client_fail_workflow_task(weft_client *c, const weft_fail_wft_req *req, weft_err *err);
/* PollActivityTask: as PollWorkflowTask, for activities. */
int weft_client_poll_activity_task(weft_client *c, const weft_poll_req *req,
                                   weft_poll_activity_resp *resp, weft_response *holder,
                                   weft_err *err);
/* PollWorkflowTask / PollActivityTask sent to node `node_id` only (an id from
 * weft_client_nodes), for workers that keep a poll open on every node: a node answers only
 * with tasks of the shards it leads. The request is not routed, NOT_LEADER is not followed,
 * and the client's retry budget is not spent: the caller is a poller pinned to that node, with
 * its own backoff, and must not sit in retries (holding, say, an execution slot) while the node
 * is down. The one retry: a pooled connection found dead before the request left the client
 * (the node restarted) is replaced at once by a fresh one to the same node, unless no_retries.
 * Everything else returns to the caller, who backs off before polling that node again:
 * UNAVAILABLE when the node cannot be reached (connection refused or lost, or its own
 * UNAVAILABLE reply), DEADLINE_EXCEEDED when no reply came in time. Client errors besides
 * weft_client_call's: INVALID_ARGUMENT with field "node_id" when the client knows no node with
 * that id (0 included). */
int weft_client_poll_workflow_task_on(weft_client *c, uint64_t node_id, const weft_poll_req *req,
                                      weft_poll_wft_resp *resp, weft_response *holder,
                                      weft_err *err);
int weft_client_poll_activity_task_on(weft_client *c, uint64_t node_id, const weft_poll_req *req,
                                      weft_poll_activity_resp *resp, weft_response *holder,
                                      weft_err *err);
/* CompleteActivity with req->result. A completion for an attempt that is no longer current is
 * refused (NOT_FOUND or FAILED_PRECONDITION, G5). */
int weft_client_complete_activity(weft_client *c, const weft_activity_req *req, weft_err *err);
/* FailActivity with req->failure; the server retries per the activity's retry policy. */
int weft_client_fail_activity(weft_client *c, const weft_activity_req *req, weft_err *err);
/* HeartbeatActivity with req->details; *cancel_requested (may be NULL) receives whether the
 * workflow asked to cancel the activity. */
int weft_client_heartbeat_activity(weft_client *c, const weft_activity_req *req,
                                   bool *cancel_requested, weft_err *err);
/* ClusterStatus: nodes and, per shard, leader, term, indexes and each replica's lag. Also
 * refreshes the client's topology. */
int weft_client_cluster_status(weft_client *c, weft_cluster_status_resp *resp,
                               weft_response *holder, weft_err *err);

/* RegisterNamespace: registers req->namespace_ (ALREADY_EXISTS when it is registered; a retry
 * with the same request id succeeds again, G4). Requests naming an unregistered namespace are
 * refused with NOT_FOUND; WEFT_DEFAULT_NAMESPACE always exists. */
int weft_client_register_namespace(weft_client *c, const weft_register_ns_req *req,
                                   weft_err *err);
/* DescribeNamespace: its description, retention and creation time (NOT_FOUND if unknown). */
int weft_client_describe_namespace(weft_client *c, const weft_describe_ns_req *req,
                                   weft_namespace_info *resp, weft_response *holder,
                                   weft_err *err);
/* ListNamespaces: every registered namespace by name, the default one included. */
int weft_client_list_namespaces(weft_client *c, weft_list_ns_resp *resp, weft_response *holder,
                                weft_err *err);
/* DescribeTaskQueue: the pollers of (namespace, task_queue) that polled any node of the cluster
 * within the server's window (60 s), each with its identity, kind ("workflow" or "activity"),
 * last poll time and node. The node asked merges its peers' answers; a peer that does not
 * answer within an election timeout is left out. `resp` borrows from `holder`. */
int weft_client_describe_task_queue(weft_client *c, const weft_task_queue_req *req,
                                    weft_task_queue_resp *resp, weft_response *holder,
                                    weft_err *err);

/* Fills `buf` (WEFT_CLIENT_REQUEST_ID_BYTES) with a fresh random request id, for callers that
 * want to know the id before sending (to retry it themselves later). Returns 0, or
 * -WEFT_E_INTERNAL if getrandom(2) fails. */
int weft_request_id_new(char buf[WEFT_CLIENT_REQUEST_ID_BYTES], weft_err *err);

/* Parses a duration written like "250ms", "30s", "5m", "48h" or "7d" (a positive integer and one
 * unit; a bare number is refused so that "30" is never read as the wrong unit) into *ms_out.
 * Returns 0, or -WEFT_E_INVALID_ARGUMENT with a message quoting `text` and the accepted forms;
 * `field` names the flag or key in that message (may be NULL). */
int weft_duration_parse(const char *text, const char *field, uint64_t *ms_out, weft_err *err);

/* Writes `ms` in the largest unit that divides it exactly ("2s", "90m", "250ms", "0ms") into
 * `buf` (capacity `cap`, NUL-terminated, truncated). Returns buf. */
char *weft_duration_format(uint64_t ms, char *buf, size_t cap);

WEFT_END_DECLS

#endif
