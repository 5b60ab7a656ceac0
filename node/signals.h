/* signals.h: SIGTERM and SIGINT start a graceful stop; a second one exits at once. */
#ifndef WEFT_NODE_SIGNALS_H
#define WEFT_NODE_SIGNALS_H

#include "node.h"

/* Installs the handlers on the node's loop and ignores SIGPIPE (a peer that vanished shows up
 * as a write error, not a signal). */
void weft_signals_start(weft_node *n);
/* Closes the signal handles so the loop can end. */
void weft_signals_close(weft_node *n);

#endif
