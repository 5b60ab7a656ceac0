/* cluster.c: `weft cluster status`: the nodes of the cluster and, per shard, its leader, term,
 * commit and applied index, and readiness. */
#include <string.h>

#include "cli.h"

/* Width of the address column: as wide as the widest address or the header. */
static int cluster_address_width(const weft_cluster_status_resp *r) {
    int w = (int)strlen("ADDRESS");
    for (uint32_t i = 0; i < r->nodes_count; i++)
        w = WEFT_MAX(w, (int)r->nodes[i].address.len);
    return w;
}

static void cluster_print_table(const weft_cluster_status_resp *r) {
    printf("cluster_id: %.*s\nanswered_by: node %llu\nshards: %u\n\n", CLI_STR(r->cluster_id),
           (unsigned long long)r->node_id, r->shard_count);
    int aw = cluster_address_width(r);
    printf("%-6s  %-*s  %s\n", "NODE", aw, "ADDRESS", "STATE");
    for (uint32_t i = 0; i < r->nodes_count; i++) {
        const weft_node_info *n = &r->nodes[i];
        printf("%-6llu  %-*.*s  %s\n", (unsigned long long)n->node_id, aw, CLI_STR(n->address),
               n->up ? "up" : "down");
    }
    printf("\n%-6s  %-8s  %-8s  %-10s  %-10s  %s\n", "SHARD", "LEADER", "TERM", "COMMIT", "APPLIED",
           "READY");
    for (uint32_t i = 0; i < r->shards_count; i++) {
        const weft_shard_info *s = &r->shards[i];
        char leader[24];
        if (s->leader_node > 0) {
            snprintf(leader, sizeof leader, "%llu", (unsigned long long)s->leader_node);
        } else {
            snprintf(leader, sizeof leader, "none");
        }
        printf("%-6u  %-8s  %-8llu  %-10llu  %-10llu  %s\n", s->shard_id, leader,
               (unsigned long long)s->term, (unsigned long long)s->commit_index,
               (unsigned long long)s->applied_index, s->ready ? "yes" : "no");
    }
}

int cli_cluster_status(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_cluster_status_resp resp;
    weft_response holder = {0};
    int rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_cluster_status(ctx->client, &resp, &holder, &err);
    if (rc == 0 && ctx->output == CLI_OUTPUT_JSON) {
        rc = cli_print_struct_json(&weft_hello_resp_schema, &resp, &err);
    } else if (rc == 0) {
        cluster_print_table(&resp);
    }
    weft_response_free(&holder);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}
