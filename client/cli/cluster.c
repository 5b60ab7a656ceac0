/* cluster.c: `weft cluster status`: the nodes of the cluster and, per shard, its leader, term,
 * commit and applied index, readiness, and each replica's lag. */
#include <string.h>

#include "cli.h"

/* Width of the address column: as wide as the widest address or the header. */
static int cluster_address_width(const weft_cluster_status_resp *r) {
    int w = (int)strlen("ADDRESS");
    for (uint32_t i = 0; i < r->nodes_count; i++)
        w = WEFT_MAX(w, (int)r->nodes[i].address.len);
    return w;
}

/* Longest REPLICA:LAG cell: per replica "<node id>:<lag>" with two 20-digit numbers and a
 * separating space. */
#define CLUSTER_REPLICAS_TEXT_BYTES (WEFT_SHARD_REPLICAS_MAX * (20u + 1u + 20u + 1u) + 1u)

/* Writes "node:lag" per replica, space-separated, "?" for a lag only the shard's leader knows:
 * "1:0 2:0 3:12". Empty when the row has no replicas (a node from before they were reported). */
static void cluster_replicas_text(const weft_shard_info *s, char *out, size_t cap) {
    WEFT_ASSERT(cap >= CLUSTER_REPLICAS_TEXT_BYTES && s->replicas_count <= WEFT_SHARD_REPLICAS_MAX);
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t j = 0; j < s->replicas_count; j++) {
        const weft_replica_info *ri = &s->replicas[j];
        char lag[24] = "?";
        if (ri->lag_known) snprintf(lag, sizeof lag, "%llu", (unsigned long long)ri->lag_entries);
        int n = snprintf(out + used, cap - used, "%s%llu:%s", j > 0 ? " " : "",
                         (unsigned long long)ri->node_id, lag);
        WEFT_ASSERT(n > 0 && (size_t)n < cap - used); /* sized for the longest row */
        used += (size_t)n;
    }
}

static void cluster_print_table(const weft_cluster_status_resp *r) {
    printf("cluster_id: %.*s\nanswered_by: node %llu\nshards: %u\n", CLI_STR(r->cluster_id),
           (unsigned long long)r->node_id, r->shard_count);
    if (r->cut_off) {
        printf("cut_off: yes: node %llu hears from no majority of its peers; its leaders below "
               "are stale, ask another node\n",
               (unsigned long long)r->node_id);
    }
    printf("\n");
    int aw = cluster_address_width(r);
    printf("%-6s  %-*s  %s\n", "NODE", aw, "ADDRESS", "STATE");
    for (uint32_t i = 0; i < r->nodes_count; i++) {
        const weft_node_info *n = &r->nodes[i];
        printf("%-6llu  %-*.*s  %s", (unsigned long long)n->node_id, aw, CLI_STR(n->address),
               n->up ? "up" : "down");
        /* A node that is up but unwell says what is wrong, in its own words. */
        if (n->up && n->health.len > 0) printf(" (%.*s)", CLI_STR(n->health));
        printf("\n");
    }
    /* READY stays the sixth column and REPLICA:LAG comes last, so scripts that read the
     * columns by position (deploy/local-cluster.sh) keep working. */
    printf("\n%-6s  %-8s  %-8s  %-10s  %-10s  %-5s  %s\n", "SHARD", "LEADER", "TERM", "COMMIT",
           "APPLIED", "READY", "REPLICA:LAG");
    for (uint32_t i = 0; i < r->shards_count; i++) {
        const weft_shard_info *s = &r->shards[i];
        char leader[24];
        if (s->leader_node > 0) {
            snprintf(leader, sizeof leader, "%llu", (unsigned long long)s->leader_node);
        } else {
            snprintf(leader, sizeof leader, "none");
        }
        char replicas[CLUSTER_REPLICAS_TEXT_BYTES];
        cluster_replicas_text(s, replicas, sizeof replicas);
        /* READY is padded to its 5 columns plus the 2-space gap only when REPLICA:LAG follows,
         * so that no line ends in spaces. */
        printf("%-6u  %-8s  %-8llu  %-10llu  %-10llu  %-*s%s\n", s->shard_id, leader,
               (unsigned long long)s->term, (unsigned long long)s->commit_index,
               (unsigned long long)s->applied_index, replicas[0] != '\0' ? 7 : 0,
               s->ready ? "yes" : "no", replicas);
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
