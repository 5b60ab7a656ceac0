/* visibility.c: the list and count indexes (DESIGN section 6, "visibility"):
 * vis_status (ns, status, start_ms, run key) and vis_type (ns, type, start_ms, run key), each
 * mapping to the run's summary. vis_status also holds every run under the pseudo-status "*",
 * so an unfiltered listing is ordered by start time. Updated at start, close and retention. */
#include "ops.h"

#define SH_VIS_ANY "*"

void sh_vis_info(const sh_run *r, weft_execution_info *out) {
    *out = (weft_execution_info){
        .namespace_ = r->namespace_,
        .workflow_id = r->workflow_id,
        .run_id = r->run_id,
        .workflow_type = r->workflow_type,
        .task_queue = r->task_queue,
        .status = r->status,
        .start_time_ms = r->start_time_ms,
        .close_time_ms = r->close_time_ms,
        .history_length = r->next_event_id - 1,
        .history_bytes = r->history_bytes,
        .first_run_id = r->first_run_id,
        .continued_from_run_id = r->continued_from_run_id,
        .continued_to_run_id = r->continued_to_run_id,
        .cancel_requested = r->cancel_requested,
        .workflow_run_timeout_ms = r->run_timeout_ms,
        .workflow_execution_timeout_ms = r->execution_timeout_ms,
        .workflow_task_timeout_ms = r->task_timeout_ms,
    };
}

static int vis_put(sh_ctx *c, weft_table tbl, const sh_run *r, weft_str name,
                   const weft_execution_info *info) {
    weft_key k;
    weft_key_vis(&k, r->namespace_, name, r->start_time_ms, r->run_key);
    return sh_put_rec(c, tbl, &k, &weft_execution_info_schema, info);
}

static int vis_del(sh_ctx *c, weft_table tbl, const sh_run *r, weft_str name) {
    weft_key k;
    weft_key_vis(&k, r->namespace_, name, r->start_time_ms, r->run_key);
    return sh_del(c, tbl, &k);
}

static weft_str vis_status_name(uint32_t status) {
    WEFT_ASSERT(status < WEFT_STATUS__COUNT);
    return weft_str_c(weft_status_names[status]);
}

/* Writes the three rows of a run with its current summary. */
static int vis_put_all(sh_ctx *c, const sh_run *r) {
    weft_execution_info info;
    sh_vis_info(r, &info);
    int rc = vis_put(c, WEFT_TBL_VIS_STATUS, r, vis_status_name(r->status), &info);
    if (rc == 0) rc = vis_put(c, WEFT_TBL_VIS_STATUS, r, WEFT_STR_LIT(SH_VIS_ANY), &info);
    if (rc == 0) rc = vis_put(c, WEFT_TBL_VIS_TYPE, r, r->workflow_type, &info);
    return rc;
}

int sh_vis_insert(sh_ctx *c, const sh_run *r) {
    WEFT_ASSERT(sh_run_is_open(r));
    return vis_put_all(c, r);
}

int sh_vis_close(sh_ctx *c, const sh_run *r) {
    WEFT_ASSERT(!sh_run_is_open(r));
    int rc = vis_del(c, WEFT_TBL_VIS_STATUS, r, vis_status_name(WEFT_STATUS_RUNNING));
    return rc != 0 ? rc : vis_put_all(c, r);
}

int sh_vis_delete(sh_ctx *c, const sh_run *r) {
    int rc = vis_del(c, WEFT_TBL_VIS_STATUS, r, vis_status_name(r->status));
    if (rc == 0) rc = vis_del(c, WEFT_TBL_VIS_STATUS, r, WEFT_STR_LIT(SH_VIS_ANY));
    if (rc == 0) rc = vis_del(c, WEFT_TBL_VIS_TYPE, r, r->workflow_type);
    return rc;
}
