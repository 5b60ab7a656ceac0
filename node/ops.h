/* ops.h: the node's handler table: one row per WEFT_OPS operation (STYLE rule 16), and the
 * dispatch of a parsed frame to its handler. */
#ifndef WEFT_NODE_OPS_H
#define WEFT_NODE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

/* A handler owns the request from here on and finishes it exactly once (req.h). */
typedef void (*weft_op_handler)(weft_req *r);

/* Dispatches one request frame read on `c`. `body` (a msgpack map, malloc'd) is transferred.
 * Unknown types, a missing Hello, too many requests in flight and a stopping node are answered
 * here with an error frame. */
void weft_ops_dispatch(weft_conn *c, uint32_t msg_type, uint64_t request_id, uint8_t *body,
                       size_t body_len);

/* Asserts at startup that every row of WEFT_OPS has a handler. */
void weft_ops_check(void);

/* The handlers, one per concept file. */
void weft_topology_hello(weft_req *r);          /* topology.c */
void weft_topology_cluster_status(weft_req *r); /* topology.c */
void weft_taskqueue_describe(weft_req *r);      /* taskqueue.c */
void weft_writes_workflow(weft_req *r);         /* writes.c: start, signal, cancel, terminate */
void weft_writes_task(weft_req *r);             /* writes.c: task completions by token */
void weft_reads_run(weft_req *r);               /* reads.c: describe, history, result */
void weft_reads_fanout(weft_req *r);            /* reads.c: list, count */
void weft_poll_start(weft_req *r);              /* poll.c: workflow and activity polls */
void weft_writes_namespace(weft_req *r);        /* writes.c: RegisterNamespace */
void weft_reads_registry(weft_req *r);          /* reads.c: describe and list namespaces */

#endif
