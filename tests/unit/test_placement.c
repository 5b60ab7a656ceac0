/* test_placement.c: placement of shard replicas on nodes (DESIGN section 5): every shard has R
 * distinct replicas, each node holds about S*R/N shards, preferred leaders spread evenly and are
 * replicas of their shard, a single node holds everything as before; the --peers parser and
 * its refusals; and the derived cluster id: the same on every node, different for any change.
 * node/placement.c is pure, and linked here from libweft_node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/address.h"
#include "node/placement.h"

/* Shard counts and cluster shapes the properties are checked for. */
static const uint32_t shard_counts[] = {1, 2, 3, 7, 8, 16, 31, 64, 1024};

/* Every property of one (S, N, R). */
static void check_layout(uint32_t shards, uint32_t nodes, uint32_t rf) {
    uint32_t hosted[WEFT_CLUSTER_NODES_MAX] = {0};
    uint32_t preferred[WEFT_CLUSTER_NODES_MAX] = {0};
    for (uint32_t i = 0; i < shards; i++) {
        bool seen[WEFT_CLUSTER_NODES_MAX] = {false};
        for (uint32_t j = 0; j < rf; j++) {
            uint32_t k = weft_placement_node(i, j, nodes);
            assert_true(k < nodes);
            assert_false(seen[k]); /* R distinct replicas */
            seen[k] = true;
        }
        uint32_t count = 0;
        for (uint32_t k = 0; k < nodes; k++) {
            /* weft_placement_hosts agrees with the replica list. */
            assert_int_equal(weft_placement_hosts(i, k, nodes, rf), seen[k]);
            count += seen[k];
            hosted[k] += seen[k];
        }
        assert_int_equal(count, rf);
        uint32_t p = weft_placement_preferred(i, nodes);
        assert_int_equal(p, i % nodes);
        assert_true(seen[p]); /* the preferred leader holds a replica */
        preferred[p]++;
    }
    /* Each node is preferred for S/N shards, rounded down or up, and holds R such residue
     * classes of shards: R*floor(S/N) to R*ceil(S/N) shards, exactly S*R/N when N divides S. */
    uint32_t floor_share = shards / nodes, ceil_share = (shards + nodes - 1) / nodes;
    uint64_t hosted_total = 0;
    for (uint32_t k = 0; k < nodes; k++) {
        assert_true(preferred[k] == floor_share || preferred[k] == ceil_share);
        assert_true(hosted[k] >= rf * floor_share && hosted[k] <= rf * ceil_share);
        if (shards % nodes == 0) assert_int_equal(hosted[k], shards * rf / nodes);
        hosted_total += hosted[k];
    }
    assert_int_equal(hosted_total, (uint64_t)shards * rf);
}

static void test_layout_properties(void **state) {
    (void)state;
    for (size_t s = 0; s < WEFT_ARRAY_LEN(shard_counts); s++) {
        for (uint32_t n = 1; n <= WEFT_CLUSTER_NODES_MAX; n++) {
            for (uint32_t r = 1; r <= n; r++)
                check_layout(shard_counts[s], n, r);
        }
    }
}

/* One node, R = 1: it holds every shard and prefers itself, as weftd always did. */
static void test_single_node(void **state) {
    (void)state;
    assert_int_equal(weft_replication_factor_default(1), 1);
    for (uint32_t i = 0; i < 64; i++) {
        assert_true(weft_placement_hosts(i, 0, 1, 1));
        assert_int_equal(weft_placement_preferred(i, 1), 0);
        assert_int_equal(weft_placement_node(i, 0, 1), 0);
    }
}

static void test_replication_factor_default(void **state) {
    (void)state;
    const uint32_t want[WEFT_CLUSTER_NODES_MAX + 1] = {0, 1, 2, 3, 3, 3, 3, 3, 3, 3};
    for (uint32_t n = 1; n <= WEFT_CLUSTER_NODES_MAX; n++) {
        assert_int_equal(weft_replication_factor_default(n), want[n]);
    }
}

/* Three nodes, R = 3, eight shards: the worked example of docs/operations.md. */
static void test_three_nodes_example(void **state) {
    (void)state;
    for (uint32_t i = 0; i < 8; i++) {
        for (uint32_t k = 0; k < 3; k++)
            assert_true(weft_placement_hosts(i, k, 3, 3));
    }
    /* Five nodes, R = 3: shard 3 lives on nodes 3, 4 and 0 (indexes), led by node 3. */
    assert_int_equal(weft_placement_node(3, 0, 5), 3);
    assert_int_equal(weft_placement_node(3, 1, 5), 4);
    assert_int_equal(weft_placement_node(3, 2, 5), 0);
    assert_false(weft_placement_hosts(3, 1, 5, 3));
    assert_false(weft_placement_hosts(3, 2, 5, 3));
}

static void test_parse_sorts_and_trims(void **state) {
    (void)state;
    weft_cluster c;
    memset(&c, 0, sizeof c);
    weft_err err = {0};
    assert_int_equal(weft_cluster_parse(&c,
                                        " 3=10.0.0.3:7400/10.0.0.3:7401 ,1=10.0.0.1:7400/"
                                        "10.0.0.1:7401,\t2=10.0.0.2:7400/10.0.0.2:7401,",
                                        &err),
                     0);
    assert_int_equal(c.nodes_count, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(c.nodes[i].id, i + 1);
    assert_string_equal(c.nodes[0].client_address, "10.0.0.1:7400");
    assert_string_equal(c.nodes[2].raft_address, "10.0.0.3:7401");
    assert_int_equal(weft_cluster_index_of(&c, 2), 1);
    assert_int_equal(weft_cluster_index_of(&c, 9), UINT32_MAX);
    assert_null(weft_cluster_node_by_id(&c, 9));
    assert_string_equal(weft_cluster_node_by_id(&c, 3)->client_address, "10.0.0.3:7400");
    char canon[WEFTD_PEERS_CANONICAL_BYTES_MAX];
    assert_int_equal(weft_cluster_canonical(&c, canon, sizeof canon), 0);
    assert_string_equal(canon, "1=10.0.0.1:7401,2=10.0.0.2:7401,3=10.0.0.3:7401");
}

/* Each refusal names the problem; the message follows the option name ("--peers ..."). */
static void test_parse_refusals(void **state) {
    (void)state;
    static const struct {
        const char *text;   /* --peers value */
        const char *needle; /* expected in the message */
    } cases[] = {
        {"", "is empty"},
        {" , ", "is empty"},
        {"1=10.0.0.1:7400", "entry 1"},
        {"0=10.0.0.1:7400/10.0.0.1:7401", "entry 1"},
        {"x=10.0.0.1:7400/10.0.0.1:7401", "entry 1"},
        {"-1=10.0.0.1:7400/10.0.0.1:7401", "entry 1"},
        {"1=10.0.0.1:7400/10.0.0.1:7401,2=host_x:7400/10.0.0.2:7401", "entry 2"},
        {"1=10.0.0.1:7400/10.0.0.1:0", "entry 1"},
        {"1=10.0.0.1:7400/10.0.0.1:7401,1=10.0.0.2:7400/10.0.0.2:7401", "lists node 1 twice"},
        {"1=10.0.0.1:7400/10.0.0.1:7401,2=10.0.0.1:7400/10.0.0.2:7401", "10.0.0.1:7400"},
        {"1=10.0.0.1:7400/10.0.0.1:7401,2=10.0.0.1:7401/10.0.0.2:7401", "10.0.0.1:7401"},
        {"1=10.0.0.1:7400/10.0.0.1:7400", "same client and raft address"},
        {"1=1.1.1.1:1/1.1.1.1:2,2=1.1.1.1:3/1.1.1.1:4,3=1.1.1.1:5/1.1.1.1:6,"
         "4=1.1.1.1:7/1.1.1.1:8,5=1.1.1.1:9/1.1.1.1:10,6=1.1.1.1:11/1.1.1.1:12,"
         "7=1.1.1.1:13/1.1.1.1:14,8=1.1.1.1:15/1.1.1.1:16,9=1.1.1.1:17/1.1.1.1:18,"
         "10=1.1.1.1:19/1.1.1.1:20",
         "more than 9 nodes"},
    };
    for (size_t i = 0; i < WEFT_ARRAY_LEN(cases); i++) {
        weft_cluster c;
        weft_err err = {0};
        int rc = weft_cluster_parse(&c, cases[i].text, &err);
        if (rc == 0 || strstr(err.message, cases[i].needle) == NULL) {
            fail_msg("\"%s\": rc %d, message \"%s\", wanted \"%s\"", cases[i].text, rc, err.message,
                     cases[i].needle);
        }
        assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
        assert_string_equal(err.field, "peers");
    }
}

static void cluster_of(weft_cluster *c, const char *peers, uint32_t rf) {
    memset(c, 0, sizeof *c);
    weft_err err = {0};
    assert_int_equal(weft_cluster_parse(c, peers, &err), 0);
    c->replication_factor = rf;
}

/* Every node derives the same id from the same settings (order of the list and client
 * addresses do not matter); any change of shards, R, an id or a raft address changes it. */
static void test_cluster_id(void **state) {
    (void)state;
    const char *base = "1=10.0.0.1:7400/10.0.0.1:7401,2=10.0.0.2:7400/10.0.0.2:7401,"
                       "3=10.0.0.3:7400/10.0.0.3:7401";
    weft_cluster c;
    cluster_of(&c, base, 3);
    char id[WEFTD_CLUSTER_ID_HEX_BYTES + 1], other[WEFTD_CLUSTER_ID_HEX_BYTES + 1];
    weft_cluster_id_derive(&c, 8, id, sizeof id);
    assert_int_equal(strlen(id), WEFTD_CLUSTER_ID_HEX_BYTES);
    for (size_t i = 0; i < WEFTD_CLUSTER_ID_HEX_BYTES; i++) {
        assert_non_null(strchr("0123456789abcdef", id[i]));
    }
    /* Same settings, another order and other client addresses: the same id. */
    cluster_of(&c,
               "3=10.0.0.3:9000/10.0.0.3:7401,2=10.0.0.2:9000/10.0.0.2:7401,"
               "1=10.0.0.1:9000/10.0.0.1:7401",
               3);
    weft_cluster_id_derive(&c, 8, other, sizeof other);
    assert_string_equal(id, other);
    /* Each change gives another id. */
    cluster_of(&c, base, 3);
    weft_cluster_id_derive(&c, 16, other, sizeof other);
    assert_string_not_equal(id, other);
    cluster_of(&c, base, 2);
    weft_cluster_id_derive(&c, 8, other, sizeof other);
    assert_string_not_equal(id, other);
    cluster_of(&c,
               "1=10.0.0.1:7400/10.0.0.1:7401,2=10.0.0.2:7400/10.0.0.2:7401,"
               "4=10.0.0.3:7400/10.0.0.3:7401",
               3);
    weft_cluster_id_derive(&c, 8, other, sizeof other);
    assert_string_not_equal(id, other);
    cluster_of(&c,
               "1=10.0.0.1:7400/10.0.0.1:7401,2=10.0.0.2:7400/10.0.0.2:7401,"
               "3=10.0.0.3:7400/10.0.0.3:7402",
               3);
    weft_cluster_id_derive(&c, 8, other, sizeof other);
    assert_string_not_equal(id, other);
    /* A known value pins the derivation: changing it would orphan the data dir of every
     * cluster (their weft.meta holds the old id), so it needs a new version tag and a path for
     * existing dirs. */
    cluster_of(&c, "1=127.0.0.1:7400/127.0.0.1:7401", 1);
    weft_cluster_id_derive(&c, 8, id, sizeof id);
    assert_string_equal(id, "b4be49252e58b22c170dc5e2ddbafbfe");
}

static void test_address_resolve(void **state) {
    (void)state;
    char out[WEFTD_ADDRESS_BYTES_MAX], why[160];
    assert_int_equal(weft_address_resolve("localhost:7400", true, out, sizeof out, why, sizeof why),
                     0);
    assert_string_equal(out, "127.0.0.1:7400");
    assert_int_equal(weft_address_resolve("[::1]:7400", false, out, sizeof out, why, sizeof why),
                     0);
    assert_string_equal(out, "[::1]:7400");
    assert_true(weft_address_is_ipv6(out));
    struct sockaddr_storage sa;
    assert_int_equal(weft_address_sockaddr(out, &sa), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_int_equal(weft_address_resolve("[::1]:7400", true, out, sizeof out, why, sizeof why),
                     -1);
    assert_string_equal(why, "is IPv6");
    assert_int_equal(weft_address_sockaddr("localhost:7400", &sa), -1);
}

static void test_address_split(void **state) {
    (void)state;
    char host[WEFTD_ADDRESS_BYTES_MAX];
    uint16_t port = 0;
    assert_int_equal(weft_address_split("10.1.2.3:7400", host, sizeof host, &port), 0);
    assert_string_equal(host, "10.1.2.3");
    assert_int_equal(port, 7400);
    /* Host names and bracketed IPv6 literals pass; they are resolved in config.c. */
    assert_int_equal(weft_address_split("localhost:80", host, sizeof host, &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(weft_address_split("[::1]:7400", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7400);
    const char *bad[] = {"10.1.2.3", "10.1.2.3:",    "10.1.2.3:0",  "10.1.2.3:65536", ":80",
                         "::1:80",   "[::1:80",      "[x]:80",      "a b:80",         "a_b:80",
                         "[]:80",    "10.1.2.3:80x", "10.1.2.3:+80"};
    for (size_t i = 0; i < WEFT_ARRAY_LEN(bad); i++) {
        assert_int_equal(weft_address_split(bad[i], host, sizeof host, &port), -1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_properties),
        cmocka_unit_test(test_single_node),
        cmocka_unit_test(test_replication_factor_default),
        cmocka_unit_test(test_three_nodes_example),
        cmocka_unit_test(test_parse_sorts_and_trims),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_cluster_id),
        cmocka_unit_test(test_address_split),
        cmocka_unit_test(test_address_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
