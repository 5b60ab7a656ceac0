/* timergate.h: the leader-only timer gate of one replica (DESIGN section 9): one uv_timer armed
 * for the earliest entry of the shard's timers index; when it fires, the due entries are
 * proposed as one FIRE_TIMERS command. */
#ifndef WEFT_NODE_TIMERGATE_H
#define WEFT_NODE_TIMERGATE_H

#include <stdint.h>

#include "node.h"

/* The gate sleeps at most this long before looking at the index again, so a forward jump of the
 * wall clock (timers are due by wall time, libuv sleeps by the monotonic clock) is noticed. */
#define WEFTD_TIMERGATE_RECHECK_MS 1000u
/* After a failed proposal or index read, the gate retries after this long instead of spinning. */
#define WEFTD_TIMERGATE_RETRY_MS 100u

void weft_timergate_init(weft_timergate *g, weft_replica *rep);
/* Leadership gained: arms at once, so everything overdue fires in the first batch. */
void weft_timergate_start(weft_timergate *g);
/* Leadership lost or node draining: disarms. A FIRE_TIMERS in flight still completes. */
void weft_timergate_stop(weft_timergate *g);
/* Apply added a timer due at `fire_at_ms`: re-arms if it is earlier than the armed one. */
void weft_timergate_added(weft_timergate *g, uint64_t fire_at_ms);
/* Closes the handle (shutdown). */
void weft_timergate_close(weft_timergate *g);

#endif
