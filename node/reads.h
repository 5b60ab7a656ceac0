/* reads.h: DescribeWorkflow, GetHistory, GetResult (one shard, optionally waiting) and
 * ListWorkflows, CountWorkflows (every local shard). Linearizable reads run on the leader after
 * a raft barrier; consistency=stale reads run on this replica at once (DESIGN section 5). */
#ifndef WEFT_NODE_READS_H
#define WEFT_NODE_READS_H

#include <stdbool.h>

#include "node.h"

/* ListWorkflows page size when the request leaves it 0. */
#define WEFTD_LIST_PAGE_SIZE_DEFAULT 100u

/* Runs (or re-runs, after a wake-up or timeout) a single-run read. With `final` the shard
 * answers with what there is instead of asking to wait. The request must not be parked. */
void weft_reads_rerun(weft_req *r, bool final);

#endif
