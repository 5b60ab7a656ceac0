/* dispatch.h: the leader's in-memory task FIFOs, one per (task queue, kind), mirroring the
 * ready table (DESIGN section 8). Private to shards/. */
#ifndef WEFT_SHARDS_DISPATCH_H
#define WEFT_SHARDS_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "../proto/base.h"

/* Tasks one FIFO keeps in memory. Beyond it the ready table alone holds them and the FIFO is
 * refilled from it when it drains, so memory stays bounded however long a queue grows
 * (STYLE rule 12: queues have bounds). */
#define SH_FIFO_ITEMS_MAX 65536u

typedef struct sh_fifo_item {
    uint64_t seq;                /* ready-table sequence */
    uint64_t run_key;
    uint64_t scheduled_event_id;
    uint32_t attempt;
} sh_fifo_item;

typedef struct sh_fifo {
    char *queue;                 /* task queue name, malloc'd, NUL-terminated */
    uint32_t queue_len;          /* bytes in queue */
    uint8_t kind;                /* WEFT_TASK_KIND_* */
    sh_fifo_item *items;         /* ring buffer of `cap` slots */
    uint32_t head;               /* index of the oldest item */
    uint32_t count;              /* items held */
    uint32_t cap;                /* slots allocated */
    uint64_t high_seq;           /* largest seq ever held: refills resume after it */
    bool overflow;               /* the ready table holds rows past the window */
} sh_fifo;

/* FIFOs are kept for every (queue, kind) seen while leading and freed when leadership ends:
 * freeing one earlier would forget which tasks were popped but not yet started. */
typedef struct sh_dispatch {
    sh_fifo *fifos;              /* one per (queue, kind) seen while leading */
    uint32_t count;              /* FIFOs in use */
    uint32_t cap;                /* FIFOs allocated */
} sh_dispatch;

#endif
