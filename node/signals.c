/* signals.c: the stop signals. The first SIGTERM or SIGINT drains and stops the node cleanly;
 * a second one while stopping exits at once, which is as safe as kill -9 (G9) but skips the
 * clean close of every raft group. */
#include "signals.h"

#include <signal.h>
#include <unistd.h>

#include "../proto/base.h"
#include "../proto/log.h"

static void signals_cb(uv_signal_t *h, int signum) {
    weft_node *n = h->data;
    const char *name = signum == SIGTERM ? "SIGTERM" : signum == SIGINT ? "SIGINT" : "a signal";
    if (n->state == WEFT_NODE_RUNNING) {
        weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "received %s; stopping", name);
        weft_node_shutdown(n);
        return;
    }
    weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "received %s again while %s; exiting at once", name,
             weft_node_state_name(n->state));
    _exit(1);
}

void weft_signals_start(weft_node *n) {
    WEFT_ASSERT(n->loop != NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = uv_signal_init(n->loop, &n->sigterm);
    WEFT_ASSERT(rc == 0);
    rc = uv_signal_init(n->loop, &n->sigint);
    WEFT_ASSERT(rc == 0);
    n->sigterm.data = n;
    n->sigint.data = n;
    rc = uv_signal_start(&n->sigterm, signals_cb, SIGTERM);
    WEFT_ASSERT(rc == 0);
    rc = uv_signal_start(&n->sigint, signals_cb, SIGINT);
    WEFT_ASSERT(rc == 0);
}

static void signals_closed_cb(uv_handle_t *h) {
    (void)h;
}

void weft_signals_close(weft_node *n) {
    if (!uv_is_closing((uv_handle_t *)&n->sigterm))
        uv_close((uv_handle_t *)&n->sigterm, signals_closed_cb);
    if (!uv_is_closing((uv_handle_t *)&n->sigint))
        uv_close((uv_handle_t *)&n->sigint, signals_closed_cb);
}
