/* main.c: weftd, one weft node. Parses the settings, runs the node on one libuv loop until it
 * has stopped, and exits 0 after a clean stop, 1 after a runtime failure, 2 for bad settings. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "config.h"
#include "node.h"

/* Lists handles still open when the loop should be empty: a leak check for free (libuv way). */
static void main_walk_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "handle still open at exit: %s%s",
             uv_handle_type_name(h->type), uv_is_closing(h) ? " (closing)" : "");
}

int main(int argc, char **argv) {
    static weft_node node; /* large (poll buckets); static keeps it off the stack */
    memset(&node, 0, sizeof node);
    weft_config_default(&node.cfg);
    int rc = weft_config_parse(&node.cfg, argc, argv);
    if (rc == 1) return 0; /* --help */
    if (rc != 0) return rc;
    weft_log_set_level((weft_log_level)node.cfg.log_level);
    uv_loop_t loop;
    rc = uv_loop_init(&loop);
    WEFT_ASSERT(rc == 0);
    weft_node_start(&node, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    weft_node_free(&node);
    if (uv_loop_close(&loop) == UV_EBUSY) {
        uv_walk(&loop, main_walk_cb, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    if (node.exit_code == 0) {
        weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "stopped");
    } else if (node.served) {
        weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "stopped; exit code %d", node.exit_code);
    } else {
        weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "not started; exit code %d", node.exit_code);
    }
    return node.exit_code;
}
