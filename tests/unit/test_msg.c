/* test_msg.c: the message schemas, enum tables and operation table of msg.h: every schema
 * round-trips, follows the field policies (identifiers, payloads, required fields, enums), and
 * docs/protocol.md names every op, field and enum value so the docs cannot drift. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/msg.h"

#ifndef WEFT_SOURCE_DIR
#error "WEFT_SOURCE_DIR must point at the repository root"
#endif

/* Every schema msg.h exports. */
static const struct {
    const char *name;
    const weft_schema *schema;
} all_schemas[] = {
#define S(x) {#x, &x}
    S(weft_retry_policy_schema),     S(weft_failure_schema),
    S(weft_command_schema),          S(weft_event_schema),
    S(weft_hello_req_schema),        S(weft_hello_resp_schema),
    S(weft_shard_info_schema),       S(weft_replica_info_schema),
    S(weft_node_info_schema),
    S(weft_cluster_status_req_schema), S(weft_start_req_schema),
    S(weft_register_ns_req_schema),  S(weft_describe_ns_req_schema),
    S(weft_namespace_info_schema),   S(weft_list_ns_req_schema),
    S(weft_list_ns_resp_schema),
    S(weft_start_resp_schema),       S(weft_signal_req_schema),
    S(weft_close_req_schema),        S(weft_empty_resp_schema),
    S(weft_describe_req_schema),     S(weft_describe_resp_schema),
    S(weft_pending_activity_schema), S(weft_pending_timer_schema),
    S(weft_execution_info_schema),   S(weft_history_req_schema),
    S(weft_history_resp_schema),     S(weft_result_req_schema),
    S(weft_result_resp_schema),      S(weft_list_req_schema),
    S(weft_list_resp_schema),        S(weft_count_resp_schema),
    S(weft_poll_req_schema),         S(weft_poll_wft_resp_schema),
    S(weft_complete_wft_req_schema), S(weft_fail_wft_req_schema),
    S(weft_poll_activity_resp_schema), S(weft_activity_req_schema),
    S(weft_heartbeat_resp_schema),   S(weft_error_resp_schema),
    S(weft_task_token_schema),       S(weft_task_queue_req_schema),
    S(weft_poller_info_schema),      S(weft_task_queue_resp_schema),
#undef S
};

static weft_str wire_key(const weft_field *f) {
    weft_str k = weft_str_c(f->name);
    if (k.len > 1 && k.ptr[k.len - 1] == '_') k.len--;
    return k;
}

static bool key_is(const weft_field *f, const char *key) { return weft_str_eq_c(wire_key(f), key); }

static const weft_field *field_of(const weft_schema *s, const char *key) {
    for (unsigned i = 0; i < s->fields_count; i++) {
        if (key_is(&s->fields[i], key)) return &s->fields[i];
    }
    return NULL;
}

static unsigned names_count(const char *const *names) {
    unsigned n = 0;
    while (names[n] != NULL) n++;
    return n;
}

/* ---- A generic filler: every field set to a representative non-zero value ---- */

/* Allocations made while filling, freed at the end of each test. */
typedef struct arena {
    void *blocks[1024];
    unsigned count;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    assert_true(a->count < WEFT_ARRAY_LEN(a->blocks));
    void *p = calloc(1, n);
    assert_non_null(p);
    a->blocks[a->count++] = p;
    return p;
}

static void arena_free(arena *a) {
    for (unsigned i = 0; i < a->count; i++) free(a->blocks[i]);
    a->count = 0;
}

static unsigned g_serial;

static weft_str fill_str(arena *a, const weft_field *f) {
    char *s = arena_alloc(a, 96);
    /* Multi-byte UTF-8 on purpose. */
    int n = snprintf(s, 96, "%s-%u-\xc3\xa9\xe2\x82\xac", f->name, ++g_serial);
    return (weft_str){.ptr = s, .len = (uint32_t)n};
}

static void fill(const weft_schema *s, void *out, arena *a);

static void fill_field(const weft_field *f, uint8_t *base, arena *a) {
    uint8_t *p = base + f->offset;
    unsigned k = ++g_serial;
    uint32_t n = 0;
    switch (f->type) {
    case WEFT_F_STR: *(weft_str *)(void *)p = fill_str(a, f); break;
    case WEFT_F_BYTES: {
        uint8_t *b = arena_alloc(a, 5);
        b[0] = 0x00, b[1] = 0xff, b[2] = (uint8_t)k, b[3] = 0xc1, b[4] = 0x80;
        *(weft_bytes *)(void *)p = (weft_bytes){b, 5};
        break;
    }
    case WEFT_F_U64: *(uint64_t *)(void *)p = (1ull << 40) + k; break;
    case WEFT_F_U32: *(uint32_t *)(void *)p = 0x80000000u + k; break;
    case WEFT_F_I64: *(int64_t *)(void *)p = -(int64_t)k * 1000000007; break;
    case WEFT_F_BOOL: *(bool *)(void *)p = true; break;
    case WEFT_F_F64: *(double *)(void *)p = 1.5 + k; break;
    case WEFT_F_ENUM:
        n = names_count(f->names);
        *(uint32_t *)(void *)p = 1 + k % (n - 1); /* never 0: that would be omitted */
        break;
    case WEFT_F_OBJ: fill(f->sub, p, a); break;
    case WEFT_F_ARR_OBJ:
    case WEFT_F_ARR_STR: {
        n = f->type == WEFT_F_ARR_OBJ ? 2 : 3;
        size_t elem = f->type == WEFT_F_ARR_OBJ ? f->sub->size : sizeof(weft_str);
        uint8_t *items = arena_alloc(a, elem * n);
        for (uint32_t i = 0; i < n; i++) {
            if (f->type == WEFT_F_ARR_OBJ) fill(f->sub, items + elem * i, a);
            else ((weft_str *)(void *)items)[i] = fill_str(a, f);
        }
        memcpy(p, &items, sizeof items);
        memcpy(base + f->count_offset, &n, sizeof n);
        break;
    }
    }
}

static void fill(const weft_schema *s, void *out, arena *a) {
    memset(out, 0, s->size);
    for (unsigned i = 0; i < s->fields_count; i++) fill_field(&s->fields[i], out, a);
}

/* Field-by-field equality, following the schema. */
static void assert_same(const weft_schema *s, const void *x, const void *y) {
    for (unsigned i = 0; i < s->fields_count; i++) {
        const weft_field *f = &s->fields[i];
        const uint8_t *a = (const uint8_t *)x + f->offset, *b = (const uint8_t *)y + f->offset;
        switch (f->type) {
        case WEFT_F_STR: assert_true(weft_str_eq(*(const weft_str *)(const void *)a,
                                                 *(const weft_str *)(const void *)b)); break;
        case WEFT_F_BYTES: {
            weft_bytes p = *(const weft_bytes *)(const void *)a;
            weft_bytes q = *(const weft_bytes *)(const void *)b;
            assert_int_equal(p.len, q.len);
            assert_memory_equal(p.ptr, q.ptr, p.len);
            break;
        }
        case WEFT_F_U64:
        case WEFT_F_I64:
        case WEFT_F_F64: assert_memory_equal(a, b, 8); break;
        case WEFT_F_U32:
        case WEFT_F_ENUM: assert_memory_equal(a, b, 4); break;
        case WEFT_F_BOOL: assert_int_equal(*(const bool *)a, *(const bool *)b); break;
        case WEFT_F_OBJ: assert_same(f->sub, a, b); break;
        case WEFT_F_ARR_OBJ:
        case WEFT_F_ARR_STR: {
            uint32_t n, m;
            const uint8_t *pa, *pb;
            memcpy(&n, (const uint8_t *)x + f->count_offset, 4);
            memcpy(&m, (const uint8_t *)y + f->count_offset, 4);
            assert_int_equal(n, m);
            memcpy(&pa, a, sizeof pa);
            memcpy(&pb, b, sizeof pb);
            size_t elem = f->type == WEFT_F_ARR_OBJ ? f->sub->size : sizeof(weft_str);
            for (uint32_t j = 0; j < n; j++) {
                if (f->type == WEFT_F_ARR_OBJ) assert_same(f->sub, pa + elem * j, pb + elem * j);
                else assert_true(weft_str_eq(((const weft_str *)(const void *)pa)[j],
                                             ((const weft_str *)(const void *)pb)[j]));
            }
            break;
        }
        }
    }
}

/* ---- Round trips ---- */

static void test_every_schema_round_trips(void **state) {
    (void)state;
    weft_limits l;
    weft_limits_default(&l);
    for (size_t i = 0; i < WEFT_ARRAY_LEN(all_schemas); i++) {
        const weft_schema *s = all_schemas[i].schema;
        arena a = {.count = 0};
        void *in = arena_alloc(&a, s->size);
        void *out = arena_alloc(&a, s->size);
        fill(s, in, &a);
        assert_false(weft_schema_is_zero(s, in));
        uint8_t *buf = NULL, *again = NULL;
        size_t len = 0, again_len = 0;
        assert_int_equal(weft_schema_encode_buf(s, in, &buf, &len), 0);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        weft_err err;
        weft_err_clear(&err);
        int rc = weft_schema_decode_buf(s, buf, len, out, &up, &l, &err);
        if (rc != 0) print_error("%s: %s\n", all_schemas[i].name, err.message);
        assert_int_equal(rc, 0);
        /* Every field was set, so every key travels. */
        assert_int_equal(up.data.via.map.size, s->fields_count);
        assert_same(s, in, out);
        assert_int_equal(weft_schema_encode_buf(s, out, &again, &again_len), 0);
        assert_int_equal(again_len, len);
        assert_memory_equal(again, buf, len);
        /* The zero struct is the empty map. */
        memset(in, 0, s->size);
        free(again);
        assert_int_equal(weft_schema_encode_buf(s, in, &again, &again_len), 0);
        assert_int_equal(again_len, 1);
        assert_int_equal(again[0], 0x80);
        free(again);
        free(buf);
        msgpack_unpacked_destroy(&up);
        arena_free(&a);
    }
}

static void test_start_request_representative(void **state) {
    (void)state;
    static const uint8_t input[] = {0x93, 0x01, 0x02, 0x03}; /* the user's own msgpack */
    weft_start_req in = {
        .namespace_ = WEFT_STR_LIT("payments"),
        .workflow_id = WEFT_STR_LIT("order-1234"),
        .workflow_type = WEFT_STR_LIT("ProcessOrder"),
        .task_queue = WEFT_STR_LIT("orders"),
        .input = {input, sizeof input},
        .request_id = WEFT_STR_LIT("5f0c6d2e-req"),
        .workflow_run_timeout_ms = 3600000,
        .id_reuse_policy = WEFT_REUSE_REJECT,
        .id_conflict_policy = WEFT_CONFLICT_USE_EXISTING,
        .identity = WEFT_STR_LIT("cli@host"),
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_start_req_schema, &in, &buf, &len), 0);
    /* The enum travels as its name. */
    assert_non_null(memmem(buf, len, "\xafid_reuse_policy\xa6reject", 23));
    assert_non_null(memmem(buf, len, "\xa9namespace\xa8payments", 19));
    weft_start_req out;
    weft_limits l;
    weft_limits_default(&l);
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(weft_schema_decode_buf(&weft_start_req_schema, buf, len, &out, &up, &l, &err),
                     0);
    assert_same(&weft_start_req_schema, &in, &out);
    assert_int_equal(out.id_reuse_policy, WEFT_REUSE_REJECT);
    assert_int_equal(out.id_conflict_policy, WEFT_CONFLICT_USE_EXISTING);
    assert_true(out.workflow_execution_timeout_ms == 0);
    msgpack_unpacked_destroy(&up);
    free(buf);
}

/* A ClusterStatus row as a shard's leader answers it: itself with no lag (lag_known with a zero
 * lag must survive the encoder's omission of zeros), a follower 12 entries behind, and one whose
 * lag this node does not know. Then a row with more replicas than WEFT_SHARD_REPLICAS_MAX. */
static void test_shard_info_replicas(void **state) {
    (void)state;
    weft_replica_info reps[WEFT_SHARD_REPLICAS_MAX + 1] = {
        {.node_id = 1, .match_index = 40, .lag_entries = 0, .lag_known = true},
        {.node_id = 2, .match_index = 28, .lag_entries = 12, .lag_known = true},
        {.node_id = 3},
    };
    weft_shard_info in = {.shard_id = 4, .leader_node = 1, .term = 3, .commit_index = 39,
                          .applied_index = 39, .ready = true, .replicas = reps,
                          .replicas_count = 3};
    weft_hello_resp resp = {.node_id = 1, .shard_count = 1, .shards = &in, .shards_count = 1};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_hello_resp_schema, &resp, &buf, &len), 0);
    weft_hello_resp out;
    weft_limits l;
    weft_limits_default(&l);
    weft_err err;
    weft_err_clear(&err);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(
        weft_schema_decode_buf(&weft_hello_resp_schema, buf, len, &out, &up, &l, &err), 0);
    assert_int_equal(out.shards_count, 1);
    const weft_shard_info *si = &out.shards[0];
    assert_same(&weft_shard_info_schema, &in, si);
    assert_int_equal(si->replicas_count, 3);
    assert_true(si->replicas[0].lag_known);
    assert_true(si->replicas[0].lag_entries == 0 && si->replicas[0].match_index == 40);
    assert_true(si->replicas[1].lag_known && si->replicas[1].lag_entries == 12);
    assert_true(si->replicas[2].node_id == 3 && !si->replicas[2].lag_known);
    assert_true(si->replicas[2].match_index == 0 && si->replicas[2].lag_entries == 0);
    msgpack_unpacked_destroy(&up);
    free(buf);

    /* One replica past the cap is refused, naming the field. */
    for (uint32_t j = 3; j < WEFT_ARRAY_LEN(reps); j++) {
        reps[j] = (weft_replica_info){.node_id = j + 1};
    }
    in.replicas_count = WEFT_SHARD_REPLICAS_MAX + 1;
    assert_int_equal(weft_schema_encode_buf(&weft_hello_resp_schema, &resp, &buf, &len), 0);
    msgpack_unpacked_init(&up);
    weft_err_clear(&err);
    assert_int_equal(
        weft_schema_decode_buf(&weft_hello_resp_schema, buf, len, &out, &up, &l, &err),
        -WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "replicas"));
    msgpack_unpacked_destroy(&up);
    free(buf);
}

static void test_complete_task_with_commands(void **state) {
    (void)state;
    static const char *const types[] = {"Unspecified", "ScheduleActivity", "StartTimer",
                                        "CompleteWorkflow"};
    weft_str nr[] = {WEFT_STR_LIT("PaymentDeclined")};
    weft_command cmds[3] = {
        {.type = WEFT_CMD_SCHEDULE_ACTIVITY,
         .activity_id = WEFT_STR_LIT("1"),
         .activity_type = WEFT_STR_LIT("Charge"),
         .start_to_close_timeout_ms = 30000,
         .retry_policy = {.initial_interval_ms = 1000, .backoff_coefficient = 2.0,
                          .maximum_attempts = 5, .non_retryable_error_types = nr,
                          .non_retryable_error_types_count = 1}},
        {.type = WEFT_CMD_START_TIMER, .timer_id = WEFT_STR_LIT("t1"), .start_to_fire_timeout_ms = 5000},
        {.type = WEFT_CMD_COMPLETE_WORKFLOW, .result = {(const uint8_t *)"\xc3", 1}},
    };
    weft_complete_wft_req in = {.task_token = {(const uint8_t *)"\x01\x02", 2},
                                .commands = cmds, .commands_count = 3,
                                .sticky_queue = WEFT_STR_LIT("host:123")};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_complete_wft_req_schema, &in, &buf, &len), 0);
    weft_complete_wft_req out;
    weft_limits l;
    weft_limits_default(&l);
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(weft_schema_decode_buf(&weft_complete_wft_req_schema, buf, len, &out, &up,
                                            &l, &err), 0);
    assert_int_equal(out.commands_count, 3);
    assert_int_equal(out.commands[0].type, WEFT_CMD_SCHEDULE_ACTIVITY);
    assert_true(out.commands[0].retry_policy.backoff_coefficient == 2.0);
    assert_true(weft_str_eq_c(out.commands[0].retry_policy.non_retryable_error_types[0],
                              "PaymentDeclined"));
    assert_int_equal(out.commands[1].type, WEFT_CMD_START_TIMER);
    assert_string_equal(weft_command_type_names[out.commands[2].type], types[3]);
    assert_same(&weft_complete_wft_req_schema, &in, &out);
    msgpack_unpacked_destroy(&up);
    free(buf);
}

/* Packs {"task_token": b"t", "commands": [n x {"type": "StartTimer", "timer_id": "t"}]} with
 * command `bad` (if < n) carrying an integer timer_id. */
static int decode_commands(uint32_t n, uint32_t bad, weft_err *err) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    weft_pack_cstr(&pk, "task_token");
    weft_pack_bytes(&pk, (weft_bytes){(const uint8_t *)"t", 1});
    weft_pack_cstr(&pk, "commands");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 2);
        weft_pack_cstr(&pk, "type");
        weft_pack_cstr(&pk, "StartTimer");
        weft_pack_cstr(&pk, "timer_id");
        if (i == bad) msgpack_pack_uint64(&pk, 7);
        else weft_pack_cstr(&pk, "t");
    }
    weft_complete_wft_req out;
    weft_limits l;
    weft_limits_default(&l);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_err_clear(err);
    int rc = weft_schema_decode_buf(&weft_complete_wft_req_schema, (const uint8_t *)sb.data,
                                    sb.size, &out, &up, &l, err);
    if (rc == 0) assert_int_equal(out.commands_count, n);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void test_command_errors_name_the_path(void **state) {
    (void)state;
    weft_err err;
    assert_int_equal(decode_commands(5, 3, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "commands[3].timer_id");
    assert_string_equal(err.message, "field 'commands[3].timer_id' must be a string, got integer");
    assert_int_equal(decode_commands(WEFT_COMMANDS_PER_TASK_MAX_DEFAULT, UINT32_MAX, &err), 0);
    assert_int_equal(decode_commands(WEFT_COMMANDS_PER_TASK_MAX_DEFAULT + 1, UINT32_MAX, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'commands' has 4097 items; the limit is 4096 items: "
                                     "send fewer, or split them across requests");
}

/* ---- Schema shape and field policies ---- */

static void test_schema_rows_are_well_formed(void **state) {
    (void)state;
    for (size_t i = 0; i < WEFT_ARRAY_LEN(all_schemas); i++) {
        const weft_schema *s = all_schemas[i].schema;
        assert_non_null(s->name);
        assert_true(s->fields_count > 0);
        for (unsigned j = 0; j < s->fields_count; j++) {
            const weft_field *f = &s->fields[j];
            assert_true(f->offset < s->size);
            if (f->type == WEFT_F_OBJ || f->type == WEFT_F_ARR_OBJ) assert_non_null(f->sub);
            if (f->type == WEFT_F_ENUM) assert_true(names_count(f->names) >= 2);
            if (f->type == WEFT_F_ARR_OBJ || f->type == WEFT_F_ARR_STR) {
                assert_true(f->count_offset + sizeof(uint32_t) <= s->size);
            }
            /* Wire keys are unique within a schema. */
            for (unsigned k = j + 1; k < s->fields_count; k++) {
                assert_false(weft_str_eq(wire_key(f), wire_key(&s->fields[k])));
            }
        }
    }
}

static bool in_list(const weft_field *f, const char *const *list) {
    for (size_t i = 0; list[i] != NULL; i++) {
        if (key_is(f, list[i])) return true;
    }
    return false;
}

static void test_identifier_payload_and_enum_policies(void **state) {
    (void)state;
    static const char *const ids[] = {
        "namespace", "workflow_id", "run_id", "workflow_type", "activity_type", "task_queue",
        "signal_name", "request_id", "identity", "activity_id", "timer_id", "marker_name",
        "sticky_queue", "first_run_id", "continued_run_id", "continued_from_run_id",
        "continued_to_run_id", "client_name", "cluster_id", "task_token", NULL};
    static const char *const payloads[] = {"input", "result", "details", "signal_input",
                                           "heartbeat_details", NULL};
    static const struct {
        const char *key;
        const char *const *names;
    } enums[] = {{"status", weft_status_names},
                 {"id_reuse_policy", weft_reuse_policy_names},
                 {"id_conflict_policy", weft_conflict_policy_names},
                 {"consistency", weft_consistency_names},
                 {"timeout_type", weft_timeout_type_names},
                 {"event_type", weft_event_type_names}};
    for (size_t i = 0; i < WEFT_ARRAY_LEN(all_schemas); i++) {
        const weft_schema *s = all_schemas[i].schema;
        for (unsigned j = 0; j < s->fields_count; j++) {
            const weft_field *f = &s->fields[j];
            if (in_list(f, ids)) assert_true(f->flags & WEFT_FF_ID);
            if (in_list(f, payloads)) {
                assert_int_equal(f->type, WEFT_F_BYTES);
                assert_true(f->flags & WEFT_FF_PAYLOAD);
            }
            for (size_t e = 0; e < WEFT_ARRAY_LEN(enums); e++) {
                if (!key_is(f, enums[e].key)) continue;
                assert_int_equal(f->type, WEFT_F_ENUM);
                assert_ptr_equal(f->names, enums[e].names);
            }
        }
    }
    const weft_field *t = field_of(&weft_command_schema, "type");
    assert_int_equal(t->type, WEFT_F_ENUM);
    assert_ptr_equal(t->names, weft_command_type_names);
    /* Free text is capped at 32 KiB, well under a payload. */
    assert_int_equal(field_of(&weft_failure_schema, "message")->max_bytes, 32 * 1024);
    assert_int_equal(field_of(&weft_close_req_schema, "reason")->max_bytes, 32 * 1024);
    assert_int_equal(field_of(&weft_event_schema, "reason")->max_bytes, 32 * 1024);
    assert_true(field_of(&weft_failure_schema, "details")->flags & WEFT_FF_PAYLOAD);
}

static void test_required_fields_exactly(void **state) {
    (void)state;
    static const struct {
        const weft_schema *schema;
        const char *key;
    } required[] = {
        {&weft_start_req_schema, "workflow_id"},    {&weft_start_req_schema, "workflow_type"},
        {&weft_start_req_schema, "task_queue"},     {&weft_signal_req_schema, "workflow_id"},
        {&weft_signal_req_schema, "signal_name"},   {&weft_close_req_schema, "workflow_id"},
        {&weft_describe_req_schema, "workflow_id"}, {&weft_history_req_schema, "workflow_id"},
        {&weft_result_req_schema, "workflow_id"},   {&weft_poll_req_schema, "task_queue"},
        {&weft_complete_wft_req_schema, "task_token"},
        {&weft_fail_wft_req_schema, "task_token"},  {&weft_activity_req_schema, "task_token"},
        {&weft_hello_req_schema, "protocol_version"}, {&weft_command_schema, "type"},
        {&weft_register_ns_req_schema, "namespace"},
        {&weft_task_queue_req_schema, "task_queue"},
    };
    for (size_t i = 0; i < WEFT_ARRAY_LEN(all_schemas); i++) {
        const weft_schema *s = all_schemas[i].schema;
        for (unsigned j = 0; j < s->fields_count; j++) {
            const weft_field *f = &s->fields[j];
            bool want = false;
            for (size_t r = 0; r < WEFT_ARRAY_LEN(required); r++) {
                if (required[r].schema == s && key_is(f, required[r].key)) want = true;
            }
            if (want != ((f->flags & WEFT_FF_REQUIRED) != 0)) {
                print_error("%s.%s: required should be %d\n", s->name, f->name, want);
            }
            assert_int_equal(want, (f->flags & WEFT_FF_REQUIRED) != 0);
        }
    }
}

/* ---- Enum tables and the op table ---- */

static void test_enum_tables(void **state) {
    (void)state;
    assert_int_equal(names_count(weft_status_names), WEFT_STATUS__COUNT);
    assert_int_equal(names_count(weft_reuse_policy_names), WEFT_REUSE__COUNT);
    assert_int_equal(names_count(weft_conflict_policy_names), WEFT_CONFLICT__COUNT);
    assert_int_equal(names_count(weft_consistency_names), WEFT_CONSISTENCY__COUNT);
    assert_int_equal(names_count(weft_timeout_type_names), WEFT_TIMEOUT__COUNT);
    assert_int_equal(names_count(weft_event_type_names), WEFT_EV__COUNT);
    assert_int_equal(names_count(weft_command_type_names), WEFT_CMD__COUNT);
    assert_string_equal(weft_status_names[WEFT_STATUS_TIMED_OUT], "timed-out");
    assert_string_equal(weft_reuse_policy_names[WEFT_REUSE_ALLOW_FAILED], "allow-failed");
    assert_string_equal(weft_event_type_names[WEFT_EV_TIMER_FIRED], "TimerFired");
    assert_string_equal(weft_command_type_names[WEFT_CMD_CONTINUE_AS_NEW], "ContinueAsNew");
    assert_int_equal(weft_enum_lookup(weft_conflict_policy_names, WEFT_STR_LIT("terminate-existing")),
                     WEFT_CONFLICT_TERMINATE_EXISTING);
    assert_int_equal(weft_enum_lookup(weft_status_names, WEFT_STR_LIT("running")),
                     WEFT_STATUS_RUNNING);
    assert_int_equal(weft_enum_lookup(weft_status_names, WEFT_STR_LIT("Running")), -1);
    assert_int_equal(weft_enum_lookup(weft_status_names, WEFT_STR_LIT("runnin")), -1);
    assert_int_equal(weft_enum_lookup(weft_status_names, (weft_str){NULL, 0}), -1);
}

static void test_op_table(void **state) {
    (void)state;
#define COUNT_ROW(...) +1
    enum { OPS_ROWS = 0 WEFT_OPS(COUNT_ROW) };
#undef COUNT_ROW
    assert_int_equal(weft_ops_count, OPS_ROWS);
    for (unsigned i = 0; i < weft_ops_count; i++) {
        const weft_op *op = &weft_ops[i];
        assert_ptr_equal(weft_op_find(op->msg_type), op);
        assert_non_null(op->req_schema);
        assert_non_null(op->resp_schema);
        assert_true(strlen(op->doc) > 10);
        assert_true(op->msg_type > 0 && op->msg_type < WEFT_MSG_RESPONSE_BIT);
        for (unsigned j = i + 1; j < weft_ops_count; j++) {
            assert_int_not_equal(op->msg_type, weft_ops[j].msg_type);
            assert_string_not_equal(op->name, weft_ops[j].name);
        }
        /* A response type never names a request. */
        assert_null(weft_op_find(op->msg_type | WEFT_MSG_RESPONSE_BIT));
    }
    const weft_op *start = weft_op_find(WEFT_MSG_START_WORKFLOW);
    assert_string_equal(start->name, "START_WORKFLOW");
    assert_ptr_equal(start->req_schema, &weft_start_req_schema);
    assert_ptr_equal(start->resp_schema, &weft_start_resp_schema);
    assert_true(start->writes && start->idempotent);
    assert_false(weft_op_find(WEFT_MSG_DESCRIBE_WORKFLOW)->writes);
    assert_false(weft_op_find(WEFT_MSG_POLL_ACTIVITY_TASK)->idempotent);
    assert_ptr_equal(weft_op_find(WEFT_MSG_COUNT_WORKFLOWS)->resp_schema, &weft_count_resp_schema);
    assert_null(weft_op_find(0));
    assert_null(weft_op_find(2));
    assert_null(weft_op_find(0xFF));
    assert_null(weft_op_find(UINT32_MAX));
}

/* ---- Docs cannot drift ---- */

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    return buf;
}

static void expect_in_doc(const char *doc, const char *what, weft_str word) {
    char needle[128];
    snprintf(needle, sizeof needle, "`%.*s`", (int)word.len, word.ptr);
    if (strstr(doc, needle) == NULL) print_error("docs/protocol.md lacks %s %s\n", what, needle);
    assert_non_null(strstr(doc, needle));
}

static void test_docs_name_every_op_field_and_value(void **state) {
    (void)state;
    char *doc = read_file(WEFT_SOURCE_DIR "/docs/protocol.md");
    assert_non_null(doc);
    for (unsigned i = 0; i < weft_ops_count; i++) {
        expect_in_doc(doc, "op", weft_str_c(weft_ops[i].name));
    }
    for (size_t i = 0; i < WEFT_ARRAY_LEN(all_schemas); i++) {
        const weft_schema *s = all_schemas[i].schema;
        for (unsigned j = 0; j < s->fields_count; j++) {
            expect_in_doc(doc, "field", wire_key(&s->fields[j]));
        }
    }
    const char *const *tables[] = {weft_status_names, weft_reuse_policy_names,
                                   weft_conflict_policy_names, weft_consistency_names,
                                   weft_timeout_type_names, weft_event_type_names,
                                   weft_command_type_names};
    for (size_t t = 0; t < WEFT_ARRAY_LEN(tables); t++) {
        for (unsigned i = 0; tables[t][i] != NULL; i++) {
            expect_in_doc(doc, "enum value", weft_str_c(tables[t][i]));
        }
    }
    for (int code = 0; code < WEFT_E__COUNT; code++) {
        expect_in_doc(doc, "error code", weft_str_c(weft_error_name(code)));
    }
    free(doc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_schema_round_trips),
        cmocka_unit_test(test_start_request_representative),
        cmocka_unit_test(test_shard_info_replicas),
        cmocka_unit_test(test_complete_task_with_commands),
        cmocka_unit_test(test_command_errors_name_the_path),
        cmocka_unit_test(test_schema_rows_are_well_formed),
        cmocka_unit_test(test_identifier_payload_and_enum_policies),
        cmocka_unit_test(test_required_fields_exactly),
        cmocka_unit_test(test_enum_tables),
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_docs_name_every_op_field_and_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
