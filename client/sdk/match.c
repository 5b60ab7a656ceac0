/* match.c: which history event each workflow command produces (DESIGN section 11,
 * "Determinism"): commands and their events are compared by kind and id. Inputs and payloads
 * are not compared, so a changed argument is not a divergence (Temporal's rule). */
#include <stdio.h>

#include "run.h"

bool match_is_command_event(uint32_t t) {
    switch (t) {
    case WEFT_EV_ACTIVITY_TASK_SCHEDULED:
    case WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED:
    case WEFT_EV_TIMER_STARTED:
    case WEFT_EV_TIMER_CANCELED:
    case WEFT_EV_MARKER_RECORDED:
    case WEFT_EV_WORKFLOW_EXECUTION_COMPLETED:
    case WEFT_EV_WORKFLOW_EXECUTION_FAILED:
    case WEFT_EV_WORKFLOW_EXECUTION_CANCELED:
    case WEFT_EV_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: return true;
    default: return false;
    }
}

bool match_command(const weft_command *c, const weft_event *ev) {
    switch (c->type) {
    case WEFT_CMD_SCHEDULE_ACTIVITY:
        return ev->event_type == WEFT_EV_ACTIVITY_TASK_SCHEDULED &&
               weft_str_eq(c->activity_id, ev->activity_id) &&
               weft_str_eq(c->activity_type, ev->activity_type);
    case WEFT_CMD_REQUEST_CANCEL_ACTIVITY:
        return ev->event_type == WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED &&
               c->scheduled_event_id == ev->scheduled_event_id;
    case WEFT_CMD_START_TIMER:
        return ev->event_type == WEFT_EV_TIMER_STARTED && weft_str_eq(c->timer_id, ev->timer_id);
    case WEFT_CMD_CANCEL_TIMER:
        return ev->event_type == WEFT_EV_TIMER_CANCELED && weft_str_eq(c->timer_id, ev->timer_id);
    case WEFT_CMD_RECORD_MARKER:
        return ev->event_type == WEFT_EV_MARKER_RECORDED &&
               weft_str_eq(c->marker_name, ev->marker_name);
    case WEFT_CMD_COMPLETE_WORKFLOW: return ev->event_type == WEFT_EV_WORKFLOW_EXECUTION_COMPLETED;
    case WEFT_CMD_FAIL_WORKFLOW: return ev->event_type == WEFT_EV_WORKFLOW_EXECUTION_FAILED;
    case WEFT_CMD_CANCEL_WORKFLOW: return ev->event_type == WEFT_EV_WORKFLOW_EXECUTION_CANCELED;
    case WEFT_CMD_CONTINUE_AS_NEW:
        return ev->event_type == WEFT_EV_WORKFLOW_EXECUTION_CONTINUED_AS_NEW;
    default: return false;
    }
}

const char *match_describe_event(const weft_event *ev, char *buf, size_t cap) {
    const char *name = ev->event_type < WEFT_EV__COUNT ? weft_event_type_names[ev->event_type]
                                                       : "UnknownEvent";
    unsigned long long id = (unsigned long long)ev->event_id;
    switch (ev->event_type) {
    case WEFT_EV_ACTIVITY_TASK_SCHEDULED:
        snprintf(buf, cap, "%llu %s (activity_id %.*s, type %.*s)", id, name,
                 (int)ev->activity_id.len, ev->activity_id.ptr, (int)ev->activity_type.len,
                 ev->activity_type.ptr);
        break;
    case WEFT_EV_TIMER_STARTED:
    case WEFT_EV_TIMER_CANCELED:
        snprintf(buf, cap, "%llu %s (timer_id %.*s)", id, name, (int)ev->timer_id.len,
                 ev->timer_id.ptr);
        break;
    case WEFT_EV_MARKER_RECORDED:
        snprintf(buf, cap, "%llu %s (marker %.*s)", id, name, (int)ev->marker_name.len,
                 ev->marker_name.ptr);
        break;
    case WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED:
        snprintf(buf, cap, "%llu %s (scheduled_event_id %llu)", id, name,
                 (unsigned long long)ev->scheduled_event_id);
        break;
    default: snprintf(buf, cap, "%llu %s", id, name); break;
    }
    return buf;
}

const char *match_describe_command(const weft_command *c, char *buf, size_t cap) {
    const char *name = c->type < WEFT_CMD__COUNT ? weft_command_type_names[c->type]
                                                 : "UnknownCommand";
    switch (c->type) {
    case WEFT_CMD_SCHEDULE_ACTIVITY:
        snprintf(buf, cap, "%s (activity_id %.*s, type %.*s)", name, (int)c->activity_id.len,
                 c->activity_id.ptr, (int)c->activity_type.len, c->activity_type.ptr);
        break;
    case WEFT_CMD_START_TIMER:
    case WEFT_CMD_CANCEL_TIMER:
        snprintf(buf, cap, "%s (timer_id %.*s)", name, (int)c->timer_id.len, c->timer_id.ptr);
        break;
    case WEFT_CMD_RECORD_MARKER:
        snprintf(buf, cap, "%s (marker %.*s)", name, (int)c->marker_name.len,
                 c->marker_name.ptr);
        break;
    case WEFT_CMD_REQUEST_CANCEL_ACTIVITY:
        snprintf(buf, cap, "%s (scheduled_event_id %llu)", name,
                 (unsigned long long)c->scheduled_event_id);
        break;
    default: snprintf(buf, cap, "%s", name); break;
    }
    return buf;
}
