/* test_shard_review_hostile.c: commands that no honest leader builds, fed straight into
 * weft_shard_apply (DESIGN section 5: "a command that is no longer valid when applied applies as
 * a recorded rejection"). Garbage bytes, truncations, bit flips of real commands, the wrong body
 * for a command type and forged tokens must each end as a reply (usually an error), with apply
 * returning 0 and the replica still serving: never a crash, an assertion or a negative return.
 * Run it under ASan+UBSan (WEFT_SANITIZE=ON) for the memory half of that promise. */
#include "test_shard_harness.h"

#include "shards/ops.h" /* sh_limits_schema: the stamp a leader puts on its commands */

/* A small deterministic generator, so a failure replays from its seed. */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Applies one hostile command as its own entry; apply must answer, not fail. */
static void apply_hostile(th *h, const uint8_t *p, size_t len) {
    weft_reply reply = {0};
    weft_bytes b = {.ptr = p, .len = (uint32_t)len};
    h->index++;
    int rc = weft_shard_apply(h->s, h->index, h->now_ms, &b, 1, &reply);
    assert_int_equal(rc, 0);
    assert_int_equal(weft_shard_applied_index(h->s), h->index);
    /* Every command is answered: a body, or an error that says why. */
    assert_true(reply.err.code > 0 || reply.body != NULL);
    assert_true(reply.err.code == 0 || reply.err.message[0] != '\0');
    weft_reply_reset(&reply);
}

/* A workload that leaves commands of every type in the harness log. */
static void workload(th *h) {
    th_start(h, "w-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command cmds[3] = {th_cmd_activity("a", "work"), th_cmd_timer("t", 2000),
                            th_cmd_activity("b", "work")};
    cmds[0].heartbeat_timeout_ms = 1000;
    cmds[2].schedule_to_start_timeout_ms = 500;
    assert_int_equal(th_complete_wft(h, wt.task_token, cmds, 3, "sticky-1"), 0);
    weft_poll_activity_resp act;
    assert_int_equal(th_poll_act(h, "q", &act), 0);
    weft_activity_req hb = {.task_token = act.task_token, .identity = WEFT_STR_LIT("x")};
    assert_int_equal(th_request(h, WEFT_MSG_HEARTBEAT_ACTIVITY, &hb), 0);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, act.task_token, NULL, "Oops"), 0);
    assert_int_equal(th_signal(h, "w-1", "sig", "req-1"), 0);
    th_advance(h, 2500);
    weft_close_req cancel = {.workflow_id = WEFT_STR_LIT("w-1"), .request_id = WEFT_STR_LIT("c-1")};
    assert_int_equal(th_request(h, WEFT_MSG_CANCEL_WORKFLOW, &cancel), 0);
    weft_start_req sws = th_start_req("w-2");
    sws.signal_name = WEFT_STR_LIT("go");
    sws.request_id = WEFT_STR_LIT("sws-1");
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WITH_START, &sws), 0);
    weft_close_req term = {.workflow_id = WEFT_STR_LIT("w-2"), .reason = WEFT_STR_LIT("r")};
    assert_int_equal(th_request(h, WEFT_MSG_TERMINATE_WORKFLOW, &term), 0);
}

/* Every prefix and many bit flips of every command of a real workload, each applied against the
 * state the workload had reached at that point. */
static void test_mutated_commands(void **state) {
    (void)state;
    th *rec = th_new();
    rec->record = true;
    th_open(rec);
    workload(rec);

    th *h = th_new();
    th_open(h);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < rec->log_count; i++) {
        const struct th_entry *e = &rec->log[i];
        h->now_ms = e->time_ms;
        uint8_t *m = malloc(e->len);
        for (size_t cut = 0; cut < e->len; cut++)
            apply_hostile(h, e->cmd, cut);
        for (int k = 0; k < 64; k++) {
            memcpy(m, e->cmd, e->len);
            size_t at = (size_t)(rng_next(&seed) % e->len);
            m[at] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
            if (k % 4 == 0) m[(size_t)(rng_next(&seed) % e->len)] = (uint8_t)rng_next(&seed);
            apply_hostile(h, m, e->len);
        }
        free(m);
        /* The honest command still applies (accepted or rejected) afterwards. */
        apply_hostile(h, e->cmd, e->len);
    }
    th_free(h);
    th_free(rec);
}

/* Random bytes, and msgpack of the wrong shape. */
static void test_garbage(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "g-1");
    uint64_t seed = 42;
    uint8_t buf[256];
    for (int k = 0; k < 2000; k++) {
        size_t len = (size_t)(rng_next(&seed) % sizeof buf);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rng_next(&seed);
        /* Half of them start as a map so that the decoder goes deeper. */
        if (len > 0 && k % 2 == 0) buf[0] = (uint8_t)(0x80 | (rng_next(&seed) % 16));
        apply_hostile(h, buf, len);
    }
    static const uint8_t shapes[][8] = {
        {0xc0},                                       /* nil */
        {0x01},                                       /* an integer */
        {0x90},                                       /* an empty array */
        {0xa1, 'x'},                                  /* a string */
        {0x80},                                       /* an empty map: NOOP */
        {0x81, 0xa4, 't', 'y', 'p', 'e', 0xcc, 0xff}, /* unknown type */
        {0x81, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'x'},  /* type of the wrong kind */
        {0x81, 0xa4, 'b', 'o', 'd', 'y', 0x01},       /* body of the wrong kind */
    };
    for (size_t i = 0; i < WEFT_ARRAY_LEN(shapes); i++)
        apply_hostile(h, shapes[i], sizeof shapes[i]);
    /* Deep nesting. */
    uint8_t deep[64];
    for (size_t i = 0; i < sizeof deep; i++)
        deep[i] = 0x91;
    apply_hostile(h, deep, sizeof deep);
    /* The replica still works. */
    assert_int_equal(th_signal(h, "g-1", "s", NULL), 0);
    th_free(h);
}

/* Encodes a shard command of `type` with `body` and optional fields. */
static void encode_cmd(const weft_shard_cmd *sc, uint8_t **out, size_t *len) {
    assert_int_equal(weft_schema_encode_buf(&weft_shard_cmd_schema, sc, out, len), 0);
}

/* Every command type with the body of every other request type, and with forged tokens. */
static void test_wrong_bodies_and_tokens(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "b-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);

    /* Bodies: a start, a signal, a close, a completion, an activity request, garbage. */
    weft_start_req start = th_start_req("b-2");
    weft_signal_req sig = {.workflow_id = WEFT_STR_LIT("b-1"), .signal_name = WEFT_STR_LIT("s")};
    weft_close_req close = {.workflow_id = WEFT_STR_LIT("b-1")};
    weft_complete_wft_req comp = {.task_token = wt.task_token};
    weft_activity_req actr = {.task_token = wt.task_token};
    struct {
        const weft_schema *schema;
        const void *v;
    } bodies[] = {{&weft_start_req_schema, &start},
                  {&weft_signal_req_schema, &sig},
                  {&weft_close_req_schema, &close},
                  {&weft_complete_wft_req_schema, &comp},
                  {&weft_activity_req_schema, &actr}};
    uint8_t *enc[WEFT_ARRAY_LEN(bodies) + 1];
    size_t enc_len[WEFT_ARRAY_LEN(bodies) + 1];
    for (size_t i = 0; i < WEFT_ARRAY_LEN(bodies); i++) {
        assert_int_equal(
            weft_schema_encode_buf(bodies[i].schema, bodies[i].v, &enc[i], &enc_len[i]), 0);
    }
    enc[WEFT_ARRAY_LEN(bodies)] = (uint8_t *)strdup("\xc1garbage");
    enc_len[WEFT_ARRAY_LEN(bodies)] = 8;

    /* Tokens: the real one, one of the wrong kind, one of another shard, one of a run that
     * does not exist, an absurd attempt, garbage. */
    weft_task_token forged[] = {
        {.shard_id = 7, .run_key = 1, .scheduled_event_id = 2, .attempt = 1, .kind = 2},
        {.shard_id = 8, .run_key = 1, .scheduled_event_id = 2, .attempt = 1, .kind = 1},
        {.shard_id = 7, .run_key = 999, .scheduled_event_id = 2, .attempt = 1, .kind = 1},
        {.shard_id = 7,
         .run_key = 1,
         .scheduled_event_id = UINT64_MAX,
         .attempt = UINT32_MAX,
         .kind = 2},
    };
    weft_bytes tokens[WEFT_ARRAY_LEN(forged) + 2];
    uint8_t *tok_bufs[WEFT_ARRAY_LEN(forged)];
    for (size_t i = 0; i < WEFT_ARRAY_LEN(forged); i++) {
        size_t l = 0;
        assert_int_equal(weft_task_token_encode(&forged[i], &tok_bufs[i], &l), 0);
        tokens[i] = (weft_bytes){.ptr = tok_bufs[i], .len = (uint32_t)l};
    }
    tokens[WEFT_ARRAY_LEN(forged)] = wt.task_token;
    tokens[WEFT_ARRAY_LEN(forged) + 1] =
        (weft_bytes){.ptr = (const uint8_t *)"\x93\x01\x02", .len = 3};

    weft_timer_ref refs[3] = {{.fire_at_ms = 0, .seq = 1},
                              {.fire_at_ms = UINT64_MAX, .seq = UINT64_MAX},
                              {.fire_at_ms = TH_T0_MS, .seq = 3}};
    for (uint32_t type = 0; type <= 20; type++) {
        for (size_t b = 0; b <= WEFT_ARRAY_LEN(bodies); b++) {
            for (size_t t = 0; t < WEFT_ARRAY_LEN(tokens); t++) {
                weft_shard_cmd sc = {.type = type,
                                     .body = {.ptr = enc[b], .len = (uint32_t)enc_len[b]},
                                     .run_id = WEFT_STR_LIT("forged-run"),
                                     .task_token = tokens[t],
                                     .identity = WEFT_STR_LIT("evil"),
                                     .task_queue = WEFT_STR_LIT("q"),
                                     .request_id = WEFT_STR_LIT("poll-1"),
                                     .timers = refs,
                                     .timers_count = 3};
                uint8_t *cmd = NULL;
                size_t len = 0;
                encode_cmd(&sc, &cmd, &len);
                apply_hostile(h, cmd, len);
                free(cmd);
            }
        }
    }
    for (size_t i = 0; i <= WEFT_ARRAY_LEN(bodies); i++)
        free(enc[i]);
    for (size_t i = 0; i < WEFT_ARRAY_LEN(forged); i++)
        free(tok_bufs[i]);
    /* Histories are still dense and readable. */
    th_types(h, "b-1", "");
    th_free(h);
}

/* Re-packs an encoded command map with a "limits" stamp added (as a leader does, limits.c). */
static void add_stamp(const uint8_t *raw, size_t len, const weft_limits *stamp,
                      msgpack_sbuffer *out) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, (const char *)raw, len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
    const msgpack_object_map *m = &up.data.via.map;
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    assert_int_equal(msgpack_pack_map(&pk, m->size + 1), 0);
    for (uint32_t i = 0; i < m->size; i++) {
        assert_int_equal(msgpack_pack_object(&pk, m->ptr[i].key), 0);
        assert_int_equal(msgpack_pack_object(&pk, m->ptr[i].val), 0);
    }
    assert_int_equal(weft_pack_cstr(&pk, "limits"), 0);
    assert_int_equal(weft_schema_encode(&sh_limits_schema, stamp, &pk), 0);
    msgpack_unpacked_destroy(&up);
}

/* A leader (or a forger) may stamp any limits on its commands: apply under the most extreme
 * ones still answers every command and never wraps a deadline or trips an assertion. */
static void test_extreme_limit_stamps(void **state) {
    (void)state;
    th *rec = th_new();
    rec->record = true;
    th_open(rec);
    workload(rec);
    weft_limits stamps[3];
    memset(stamps, 0, sizeof stamps);
    stamps[0].frame_bytes_max = 1;              /* present; every other limit 0 */
    memset(&stamps[1], 0xff, sizeof stamps[1]); /* every limit at its type's maximum */
    stamps[2].frame_bytes_max = 1;
    stamps[2].payload_bytes_max = 1;
    stamps[2].id_bytes_max = 1000;
    stamps[2].history_events_max = 3;
    stamps[2].history_bytes_max = 1;
    stamps[2].pending_activities_max = 1;
    stamps[2].pending_timers_max = 1;
    stamps[2].commands_per_task_max = 1;
    stamps[2].signal_dedup_per_run_max = 1;
    stamps[2].sticky_timeout_ms = UINT32_MAX;
    stamps[2].workflow_task_timeout_ms = UINT32_MAX;
    stamps[2].retention_ms = UINT64_MAX - 1;
    stamps[2].dedup_ttl_ms = UINT64_MAX - 1;
    for (size_t k = 0; k < WEFT_ARRAY_LEN(stamps); k++) {
        th *h = th_new();
        th_open(h);
        for (unsigned i = 0; i < rec->log_count; i++) {
            h->now_ms = rec->log[i].time_ms;
            msgpack_sbuffer sb;
            add_stamp(rec->log[i].cmd, rec->log[i].len, &stamps[k], &sb);
            apply_hostile(h, (const uint8_t *)sb.data, sb.size);
            msgpack_sbuffer_destroy(&sb);
        }
        /* Time passes far beyond every deadline. */
        for (int j = 0; j < 4; j++) {
            h->now_ms += 400ull * 24 * 3600 * 1000;
            th_fire(h);
        }
        th_free(h);
    }
    th_free(rec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutated_commands),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_wrong_bodies_and_tokens),
        cmocka_unit_test(test_extreme_limit_stamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
