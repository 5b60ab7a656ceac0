/* test_json.c: the JSON codec of json.h: payload helpers, the JSON form of structs (text or
 * base64 byte strings, enum names, uint64 above INT64_MAX, zero fields omitted), lossless
 * round trips through text, every decode error naming its field, and history files in all
 * three forms with errors that name the line and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/msg.h"
#include "weft/json.h"

#define BYTES_LIT(s) ((weft_bytes){.ptr = (const uint8_t *)(s), .len = (uint32_t)(sizeof(s) - 1)})

/* ---- Helpers ---- */

/* Encodes a struct to msgpack, for byte-for-byte comparison. */
static void encode(const weft_schema *s, const void *in, uint8_t **buf, size_t *len) {
    assert_int_equal(weft_schema_encode_buf(s, in, buf, len), 0);
}

/* struct -> JSON -> text -> JSON -> struct, and asserts the struct encodes as before. */
static void assert_round_trip(const weft_schema *s, const void *in) {
    json_t *j = weft_json_from_struct(s, in);
    assert_non_null(j);
    char *text = weft_json_dump(j);
    assert_non_null(text);
    json_decref(j);
    weft_err err;
    weft_err_clear(&err);
    json_t *back = weft_json_parse(weft_bytes_c(text), "text", &err);
    if (back == NULL) fail_msg("%s: %s", text, err.message);
    void *out = calloc(1, s->size);
    assert_non_null(out);
    weft_json_holder h = {0};
    if (weft_json_to_struct(s, back, out, &h, &err) != 0) fail_msg("%s: %s", text, err.message);
    uint8_t *a, *b;
    size_t alen, blen;
    encode(s, in, &a, &alen);
    encode(s, out, &b, &blen);
    if (alen != blen || memcmp(a, b, alen) != 0) fail_msg("round trip changed %s", text);
    free(a);
    free(b);
    free(out);
    weft_json_holder_free(&h);
    json_decref(back);
    free(text);
}

/* Parses `text` into a `s` struct and expects an error on `field` whose message holds `needle`. */
static void assert_decode_error(const weft_schema *s, const char *text, int code, const char *field,
                                const char *needle) {
    weft_err err;
    weft_err_clear(&err);
    json_t *j = weft_json_parse(weft_bytes_c(text), "test", &err);
    if (j == NULL) fail_msg("%s: %s", text, err.message);
    void *out = calloc(1, s->size);
    weft_json_holder h = {0};
    int rc = weft_json_to_struct(s, j, out, &h, &err);
    if (rc != -code)
        fail_msg("%s: expected %s, got %d (%s)", text, weft_error_name(code), rc, err.message);
    if (strcmp(err.field, field) != 0)
        fail_msg("%s: field '%s', expected '%s'", text, err.field, field);
    if (strstr(err.message, needle) == NULL)
        fail_msg("%s: message '%s' lacks '%s'", text, err.message, needle);
    /* A failed decode leaves the struct zeroed. */
    uint8_t *zero = calloc(1, s->size);
    assert_memory_equal(out, zero, s->size);
    free(zero);
    free(out);
    weft_json_holder_free(&h);
    json_decref(j);
}

static char *dump_struct(const weft_schema *s, const void *in) {
    json_t *j = weft_json_from_struct(s, in);
    assert_non_null(j);
    char *text = weft_json_dump(j);
    json_decref(j);
    assert_non_null(text);
    return text;
}

static weft_str rp_types[] = {WEFT_STR_LIT("Fatal"), WEFT_STR_LIT("Bad \"input\"")};
static const uint8_t binary[] = {0xff, 0x00, 0x01, 0xfe, 0x80};

/* An event that sets a field of every kind (the schema does not check which type uses what). */
static weft_event rich_event(void) {
    return (weft_event){
        .event_id = 7,
        .event_time_ms = 1714557600123ull,
        .event_type = WEFT_EV_ACTIVITY_TASK_SCHEDULED,
        .workflow_type = WEFT_STR_LIT("order"),
        .input = BYTES_LIT("{\"sku\":7}"),
        .attempt = 3,
        .timeout_type = WEFT_TIMEOUT_HEARTBEAT,
        .activity_id = WEFT_STR_LIT("a1"),
        .start_to_close_timeout_ms = 30000,
        .retry_policy = {.initial_interval_ms = 1000,
                         .backoff_coefficient = 2.5,
                         .maximum_interval_ms = 100000,
                         .maximum_attempts = 4,
                         .non_retryable_error_types = rp_types,
                         .non_retryable_error_types_count = 2},
        .details = {.ptr = binary, .len = sizeof binary},
        .result = BYTES_LIT("h\xc3\xa9llo \xe2\x82\xac"),
        .failure = {.type = WEFT_STR_LIT("Boom"),
                    .message = {.ptr = "line1\nline2\0tail", .len = 16},
                    .non_retryable = true,
                    .details = BYTES_LIT("with\0nul")},
    };
}

/* ---- Payload helpers ---- */

static void test_parse_any_value(void **state) {
    (void)state;
    const char *ok[] = {"5", "-2.5", "\"text\"", "true", "null", "[1,2]", "{\"a\":{}}", " {} "};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        weft_err err;
        json_t *j = weft_json_parse(weft_bytes_c(ok[i]), "input", &err);
        if (j == NULL) fail_msg("%s: %s", ok[i], err.message);
        json_decref(j);
    }
}

static void test_parse_errors_name_what_line_column(void **state) {
    (void)state;
    weft_err err;
    weft_err_clear(&err);
    assert_null(weft_json_parse(weft_bytes_c("{\"a\": 1,\n  \"b\" 2}"), "--input", &err));
    assert_int_equal(err.code, WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "--input");
    assert_non_null(strstr(err.message, "--input is not valid JSON"));
    assert_non_null(strstr(err.message, "line 2"));
    assert_non_null(strstr(err.message, "column"));
    assert_null(weft_json_parse((weft_bytes){0}, "result", &err));
    assert_non_null(strstr(err.message, "result is not valid JSON: it is empty"));
    assert_null(weft_json_parse(weft_bytes_c("{} {}"), "input", &err));
    assert_null(weft_json_parse(weft_bytes_c("{bad"), NULL, &err));
    assert_string_equal(err.field, "payload");
}

static void test_dump_is_compact_and_sorted(void **state) {
    (void)state;
    json_t *j = json_pack("{s:i, s:[i,i], s:{s:s, s:b}}", "b", 1, "a", 1, 2, "c", "z", "y", "x", 1);
    char *s = weft_json_dump(j);
    assert_string_equal(s, "{\"a\":[1,2],\"b\":1,\"c\":{\"x\":true,\"z\":\"y\"}}");
    free(s);
    json_decref(j);
    json_t *str = json_string("only");
    s = weft_json_dump(str);
    assert_string_equal(s, "\"only\"");
    free(s);
    json_decref(str);
    assert_null(weft_json_dump(NULL));
}

static void test_bytes_c(void **state) {
    (void)state;
    weft_bytes b = weft_bytes_c("abc");
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.ptr, "abc", 3);
    assert_int_equal(weft_bytes_c(NULL).len, 0);
    assert_null(weft_bytes_c("").ptr);
}

/* ---- Structs as JSON ---- */

static void test_event_json_form(void **state) {
    (void)state;
    weft_event ev = rich_event();
    json_t *j = weft_json_from_struct(&weft_event_schema, &ev);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "event_id")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "event_type")),
                        "ActivityTaskScheduled");
    assert_string_equal(json_string_value(json_object_get(j, "timeout_type")), "heartbeat");
    /* UTF-8 payloads are strings; binary ones, and ones with a NUL, are base64. */
    assert_string_equal(json_string_value(json_object_get(j, "input")), "{\"sku\":7}");
    assert_string_equal(json_string_value(json_object_get(j, "result")),
                        "h\xc3\xa9llo \xe2\x82\xac");
    json_t *details = json_object_get(j, "details");
    assert_true(json_is_object(details));
    assert_int_equal(json_object_size(details), 1);
    assert_string_equal(json_string_value(json_object_get(details, "base64")), "/wAB/oA=");
    json_t *failure = json_object_get(j, "failure");
    assert_true(json_is_true(json_object_get(failure, "non_retryable")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(failure, "details"), "base64")),
        "d2l0aABudWw=");
    /* A string field may hold a NUL: it stays a string. */
    assert_int_equal(json_string_length(json_object_get(failure, "message")), 16);
    json_t *rp = json_object_get(j, "retry_policy");
    assert_true(json_real_value(json_object_get(rp, "backoff_coefficient")) == 2.5);
    assert_int_equal(json_array_size(json_object_get(rp, "non_retryable_error_types")), 2);
    /* Zero fields are omitted. */
    assert_null(json_object_get(j, "task_queue"));
    assert_null(json_object_get(j, "scheduled_event_id"));
    json_decref(j);
    assert_round_trip(&weft_event_schema, &ev);
}

static void test_namespace_key_and_enums(void **state) {
    (void)state;
    weft_start_req req = {.namespace_ = WEFT_STR_LIT("billing"),
                          .workflow_id = WEFT_STR_LIT("w"),
                          .workflow_type = WEFT_STR_LIT("t"),
                          .task_queue = WEFT_STR_LIT("q"),
                          .id_reuse_policy = WEFT_REUSE_REJECT,
                          .id_conflict_policy = WEFT_CONFLICT_USE_EXISTING};
    char *s = dump_struct(&weft_start_req_schema, &req);
    assert_string_equal(s,
                        "{\"id_conflict_policy\":\"use-existing\",\"id_reuse_policy\":\"reject\","
                        "\"namespace\":\"billing\",\"task_queue\":\"q\",\"workflow_id\":\"w\","
                        "\"workflow_type\":\"t\"}");
    free(s);
    assert_round_trip(&weft_start_req_schema, &req);
    weft_empty_resp empty = {0};
    s = dump_struct(&weft_empty_resp_schema, &empty);
    assert_string_equal(s, "{}");
    free(s);
}

static void test_uint64_above_int64_max(void **state) {
    (void)state;
    weft_shard_info shards[2] = {
        {.shard_id = 0,
         .range_start = 0,
         .range_end = (uint64_t)INT64_MAX,
         .leader_node = 1,
         .ready = true},
        {.shard_id = 1, .range_start = (uint64_t)INT64_MAX + 1, .range_end = UINT64_MAX, .term = 9},
    };
    weft_node_info nodes[1] = {
        {.node_id = 1, .address = WEFT_STR_LIT("127.0.0.1:7400"), .up = true}};
    weft_hello_resp r = {.protocol_version = 1,
                         .node_id = 1,
                         .cluster_id = WEFT_STR_LIT("c1"),
                         .shard_count = 2,
                         .shards = shards,
                         .shards_count = 2,
                         .nodes = nodes,
                         .nodes_count = 1};
    json_t *j = weft_json_from_struct(&weft_hello_resp_schema, &r);
    json_t *s0 = json_array_get(json_object_get(j, "shards"), 0);
    json_t *s1 = json_array_get(json_object_get(j, "shards"), 1);
    assert_int_equal(json_integer_value(json_object_get(s0, "range_end")), INT64_MAX);
    assert_string_equal(json_string_value(json_object_get(s1, "range_start")),
                        "9223372036854775808");
    assert_string_equal(json_string_value(json_object_get(s1, "range_end")),
                        "18446744073709551615");
    json_decref(j);
    assert_round_trip(&weft_hello_resp_schema, &r);
    /* A string of digits is accepted in any integer field; beyond uint64 it is refused. */
    weft_event ev;
    weft_json_holder h = {0};
    weft_err err;
    json_t *in = json_pack("{s:s, s:s}", "event_id", "12", "event_type", "TimerFired");
    assert_int_equal(weft_json_to_struct(&weft_event_schema, in, &ev, &h, &err), 0);
    assert_int_equal(ev.event_id, 12);
    json_decref(in);
    weft_json_holder_free(&h);
    assert_decode_error(&weft_event_schema, "{\"event_id\":\"18446744073709551616\"}",
                        WEFT_E_INVALID_ARGUMENT, "event_id", "largest allowed value");
    assert_decode_error(&weft_event_schema, "{\"attempt\":\"4294967296\"}", WEFT_E_INVALID_ARGUMENT,
                        "attempt", "largest allowed value");
}

static void test_describe_and_list_round_trip(void **state) {
    (void)state;
    weft_pending_activity acts[2] = {
        {.scheduled_event_id = 5,
         .activity_id = WEFT_STR_LIT("a1"),
         .activity_type = WEFT_STR_LIT("charge"),
         .state = WEFT_STR_LIT("started"),
         .attempt = 2,
         .scheduled_time_ms = 100,
         .heartbeat_details = {.ptr = binary, .len = sizeof binary},
         .last_failure = {.type = WEFT_STR_LIT("T"), .message = WEFT_STR_LIT("m")}},
        {.scheduled_event_id = 6,
         .activity_id = WEFT_STR_LIT("a2"),
         .state = WEFT_STR_LIT("backoff"),
         .next_attempt_time_ms = 5000},
    };
    weft_pending_timer timers[1] = {
        {.timer_id = WEFT_STR_LIT("t1"), .started_event_id = 9, .fire_time_ms = 77}};
    weft_describe_resp d = {
        .info = {.workflow_id = WEFT_STR_LIT("w"),
                 .run_id = WEFT_STR_LIT("r"),
                 .status = WEFT_STATUS_RUNNING,
                 .cancel_requested = true,
                 .history_length = 12},
        .pending_activities = acts,
        .pending_activities_count = 2,
        .pending_timers = timers,
        .pending_timers_count = 1,
        .workflow_task_pending = true,
        .workflow_task_state = WEFT_STR_LIT("scheduled"),
        .workflow_task_failures = 2,
        .last_workflow_task_failure = {.type = WEFT_STR_LIT("panic")},
    };
    assert_round_trip(&weft_describe_resp_schema, &d);
    weft_execution_info ex[2] = {
        d.info, {.workflow_id = WEFT_STR_LIT("x"), .status = WEFT_STATUS_TIMED_OUT}};
    weft_list_resp l = {
        .executions = ex, .executions_count = 2, .next_page_token = {.ptr = binary, .len = 3}};
    assert_round_trip(&weft_list_resp_schema, &l);
    weft_result_resp res = {.run_id = WEFT_STR_LIT("r"),
                            .status = WEFT_STATUS_FAILED,
                            .failure = {.type = WEFT_STR_LIT("E"), .details = BYTES_LIT("{}")}};
    assert_round_trip(&weft_result_resp_schema, &res);
}

static void test_base64_lengths(void **state) {
    (void)state;
    uint8_t raw[8] = {0x00, 0xff, 0x10, 0x80, 0x7f, 0x01, 0xc3, 0x28};
    for (uint32_t n = 1; n <= sizeof raw; n++) {
        weft_event ev = {.event_id = 1, .details = {.ptr = raw, .len = n}};
        assert_round_trip(&weft_event_schema, &ev);
    }
    /* Explicit base64 of text decodes too. */
    weft_event ev;
    weft_json_holder h = {0};
    weft_err err;
    json_t *in = json_pack("{s:{s:s}}", "input", "base64", "aGk=");
    assert_int_equal(weft_json_to_struct(&weft_event_schema, in, &ev, &h, &err), 0);
    assert_int_equal(ev.input.len, 2);
    assert_memory_equal(ev.input.ptr, "hi", 2);
    json_decref(in);
    in = json_pack("{s:{s:s}}", "input", "base64", "");
    assert_int_equal(weft_json_to_struct(&weft_event_schema, in, &ev, &h, &err), 0);
    assert_int_equal(ev.input.len, 0);
    json_decref(in);
    weft_json_holder_free(&h);
}

static void test_decode_errors_name_the_field(void **state) {
    (void)state;
    const weft_schema *ev = &weft_event_schema;
    int inv = WEFT_E_INVALID_ARGUMENT;
    assert_decode_error(ev, "{\"event_type\":\"NoSuchEvent\"}", inv, "event_type",
                        "unknown value 'NoSuchEvent'");
    assert_decode_error(ev, "{\"event_id\":-1}", inv, "event_id", "non-negative integer");
    assert_decode_error(ev, "{\"event_id\":1.5}", inv, "event_id", "non-negative integer");
    assert_decode_error(ev, "{\"event_id\":\"seven\"}", inv, "event_id", "got string");
    assert_decode_error(ev, "{\"event_id\":true}", inv, "event_id", "non-negative integer");
    assert_decode_error(ev, "{\"attempt\":4294967296}", inv, "attempt", "largest allowed value");
    assert_decode_error(ev, "{\"workflow_type\":5}", inv, "workflow_type", "must be a string");
    assert_decode_error(ev, "{\"workflow_type\":{\"a\":[1,[2,[3]]]}}", inv, "workflow_type",
                        "must be a string");
    assert_decode_error(ev, "{\"workflow_type\":\"\"}", inv, "workflow_type", "must not be empty");
    assert_decode_error(ev, "{\"failure\":[1]}", inv, "failure", "must be a map");
    assert_decode_error(ev, "{\"failure\":{\"non_retryable\":1}}", inv, "failure.non_retryable",
                        "boolean");
    assert_decode_error(ev, "{\"failure\":{\"details\":{\"base64\":\"a\"}}}", inv,
                        "failure.details", "invalid base64");
    assert_decode_error(ev, "{\"input\":{\"base64\":\"ab=c\"}}", inv, "input",
                        "invalid base64 at character 2");
    assert_decode_error(ev, "{\"input\":{\"base64\":\"a*==\"}}", inv, "input",
                        "invalid base64 at character 1");
    assert_decode_error(ev, "{\"input\":{\"base64\":\"aGk=\",\"x\":1}}", inv, "input",
                        "exactly one key");
    assert_decode_error(ev, "{\"input\":{\"b64\":\"aGk=\"}}", inv, "input", "exactly one key");
    assert_decode_error(ev, "{\"input\":{\"base64\":5}}", inv, "input", "exactly one key");
    assert_decode_error(ev, "{\"input\":7}", inv, "input", "binary or a string");
    assert_decode_error(ev, "{\"retry_policy\":{\"non_retryable_error_types\":[\"ok\",3]}}", inv,
                        "retry_policy.non_retryable_error_types[1]", "must be a string");
    assert_decode_error(ev, "{\"retry_policy\":{\"non_retryable_error_types\":\"one\"}}", inv,
                        "retry_policy.non_retryable_error_types", "must be an array");
    assert_decode_error(ev, "{\"retry_policy\":{\"backoff_coefficient\":\"2\"}}", inv,
                        "retry_policy.backoff_coefficient", "number");
    assert_decode_error(&weft_start_req_schema, "{\"workflow_id\":\"w\"}", inv, "workflow_type",
                        "is required");
    assert_decode_error(&weft_describe_resp_schema,
                        "{\"pending_timers\":[{\"timer_id\":\"t\"},{\"fire_time_ms\":-4}]}", inv,
                        "pending_timers[1].fire_time_ms", "non-negative integer");
    /* Not an object at all. */
    assert_decode_error(ev, "[1]", inv, "", "must be an object, got an array");
    assert_decode_error(ev, "\"x\"", inv, "", "must be an object, got a string");
}

static void test_nulls_and_unknown_keys(void **state) {
    (void)state;
    weft_event ev;
    weft_json_holder h = {0};
    weft_err err;
    json_t *in = json_pack("{s:i, s:n, s:s, s:{s:[i]}}", "event_id", 3, "input", "future_field",
                           "x", "other", "deep", 1);
    assert_int_equal(weft_json_to_struct(&weft_event_schema, in, &ev, &h, &err), 0);
    assert_int_equal(ev.event_id, 3);
    assert_int_equal(ev.input.len, 0);
    /* The holder may be reused; the old decode is released first. */
    assert_int_equal(weft_json_to_struct(&weft_event_schema, in, &ev, &h, &err), 0);
    json_decref(in);
    weft_json_holder_free(&h);
    weft_json_holder_free(&h); /* idempotent on a zeroed holder */
    assert_int_equal(weft_json_to_struct(NULL, NULL, NULL, NULL, &err), -WEFT_E_INVALID_ARGUMENT);
}

/* ---- History files ---- */

static char tmp_dir[64];

static int hist_setup(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/weft-test-json-XXXXXX");
    return mkdtemp(tmp_dir) != NULL ? 0 : -1;
}

static int hist_teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void path_in_tmp(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmp_dir, name);
}

/* A short but varied history. */
static void sample_history(weft_event ev[5]) {
    ev[0] = rich_event();
    ev[0].event_id = 1;
    ev[0].event_type = WEFT_EV_WORKFLOW_EXECUTION_STARTED;
    ev[1] = (weft_event){.event_id = 2,
                         .event_time_ms = 5,
                         .event_type = WEFT_EV_WORKFLOW_TASK_SCHEDULED,
                         .task_queue = WEFT_STR_LIT("q"),
                         .attempt = 1};
    ev[2] = (weft_event){.event_id = 3,
                         .event_type = WEFT_EV_WORKFLOW_TASK_STARTED,
                         .scheduled_event_id = 2,
                         .identity = WEFT_STR_LIT("host:1")};
    ev[3] = (weft_event){.event_id = 4,
                         .event_type = WEFT_EV_WORKFLOW_EXECUTION_SIGNALED,
                         .signal_name = WEFT_STR_LIT("go"),
                         .input = {.ptr = binary, .len = sizeof binary}};
    ev[4] = (weft_event){.event_id = 5,
                         .event_type = WEFT_EV_WORKFLOW_EXECUTION_TERMINATED,
                         .reason = WEFT_STR_LIT("because \"ops\" said so")};
}

static void assert_same_events(const weft_event *a, const weft_event *b, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *x, *y;
        size_t xl, yl;
        encode(&weft_event_schema, &a[i], &x, &xl);
        encode(&weft_event_schema, &b[i], &y, &yl);
        if (xl != yl || memcmp(x, y, xl) != 0) fail_msg("event %u differs", i + 1);
        free(x);
        free(y);
    }
}

static void test_history_lines_round_trip(void **state) {
    (void)state;
    weft_event ev[5];
    sample_history(ev);
    char path[128];
    path_in_tmp(path, sizeof path, "h.jsonl");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    weft_err err;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(weft_history_write_event_json(f, &ev[i], &err), 0);
        if (i == 2) fputs("\n   \r\n", f); /* blank lines are skipped */
    }
    assert_int_equal(fclose(f), 0);
    weft_history_file *h = NULL;
    if (weft_history_load_json(path, &h, &err) != 0) fail_msg("%s", err.message);
    assert_int_equal(h->events_count, 5);
    assert_same_events(ev, h->events, 5);
    weft_history_file_free(h);
    /* Each line starts with the id, time and type (schema order). */
    char buf[256];
    f = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof buf, f));
    assert_int_equal(strncmp(buf,
                             "{\"event_id\":1,\"event_time_ms\":1714557600123,\"event_type\":"
                             "\"WorkflowExecutionStarted\"",
                             80),
                     0);
    fclose(f);
    /* Also from stdin. */
    assert_non_null(freopen(path, "r", stdin));
    assert_int_equal(weft_history_load_json("-", &h, &err), 0);
    assert_int_equal(h->events_count, 5);
    weft_history_file_free(h);
}

static void test_history_array_and_object_forms(void **state) {
    (void)state;
    weft_event ev[5];
    sample_history(ev);
    json_t *arr = json_array();
    for (int i = 0; i < 5; i++)
        json_array_append_new(arr, weft_json_from_struct(&weft_event_schema, &ev[i]));
    char path[128];
    path_in_tmp(path, sizeof path, "h.json");
    /* A pretty-printed array. */
    assert_int_equal(json_dump_file(arr, path, JSON_INDENT(2)), 0);
    weft_history_file *h = NULL;
    weft_err err;
    if (weft_history_load_json(path, &h, &err) != 0) fail_msg("%s", err.message);
    assert_int_equal(h->events_count, 5);
    assert_same_events(ev, h->events, 5);
    weft_history_file_free(h);
    /* A pretty-printed object with "events", and one on a single line. */
    json_t *obj = json_pack("{s:O, s:s}", "events", arr, "workflow_id", "w");
    assert_int_equal(json_dump_file(obj, path, JSON_INDENT(4)), 0);
    assert_int_equal(weft_history_load_json(path, &h, &err), 0);
    assert_same_events(ev, h->events, 5);
    weft_history_file_free(h);
    assert_int_equal(json_dump_file(obj, path, JSON_COMPACT), 0);
    assert_int_equal(weft_history_load_json(path, &h, &err), 0);
    assert_int_equal(h->events_count, 5);
    weft_history_file_free(h);
    /* A byte-order mark is skipped. */
    write_file(path, "\xEF\xBB\xBF{\"event_id\":1,\"event_type\":\"WorkflowTaskScheduled\"}\n");
    assert_int_equal(weft_history_load_json(path, &h, &err), 0);
    assert_int_equal(h->events_count, 1);
    assert_int_equal(h->events[0].event_type, WEFT_EV_WORKFLOW_TASK_SCHEDULED);
    weft_history_file_free(h);
    json_decref(obj);
    json_decref(arr);
}

/* Writes `text` to a file and expects the load to fail with `code`, naming `needle`. */
static void assert_load_error(const char *text, int code, const char *field, const char *needle) {
    char path[128];
    path_in_tmp(path, sizeof path, "bad.jsonl");
    write_file(path, text);
    weft_history_file *h = (weft_history_file *)(uintptr_t)1;
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_history_load_json(path, &h, &err);
    if (rc != -code) fail_msg("expected %s, got %d: %s", weft_error_name(code), rc, err.message);
    assert_null(h);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, needle);
    if (strstr(err.message, path) == NULL) fail_msg("message '%s' lacks the path", err.message);
    if (field != NULL && strcmp(err.field, field) != 0)
        fail_msg("field '%s', expected '%s'", err.field, field);
}

static void test_history_errors(void **state) {
    (void)state;
    const char *e1 = "{\"event_id\":1,\"event_type\":\"WorkflowTaskScheduled\"}\n";
    int inv = WEFT_E_INVALID_ARGUMENT;
    char text[512];
    snprintf(text, sizeof text, "%s{\"event_id\":3,\"event_type\":\"TimerFired\"}\n", e1);
    assert_load_error(text, inv, "event_id", "history line 2: field 'event_id' is 3; expected 2");
    snprintf(text, sizeof text, "%s\n{\"event_id\":2,\"event_type\":\"Nope\"}\n", e1);
    assert_load_error(text, inv, "event_type",
                      "history line 3: field 'event_type' has unknown value 'Nope'");
    snprintf(text, sizeof text, "%s{\"event_id\":2,\n", e1);
    assert_load_error(text, inv, NULL, "history line 2: not valid JSON");
    snprintf(text, sizeof text, "%s{\"event_id\":2,\"event_id\":2}\n", e1);
    assert_load_error(text, inv, NULL, "history line 2: not valid JSON: duplicate object key");
    snprintf(text, sizeof text, "%s[2]\n", e1);
    assert_load_error(text, inv, NULL,
                      "history line 2: the JSON form of weft_event must be an object");
    snprintf(text, sizeof text, "%s{\"event_id\":2,\"input\":{\"base64\":\"!!!!\"}}\n", e1);
    assert_load_error(text, inv, "input", "history line 2: field 'input' has invalid base64");
    assert_load_error("[{\"event_id\":1},{\"event_id\":1}]", inv, "event_id",
                      "history event [1]: field 'event_id' is 1; expected 2");
    assert_load_error("{\"events\":[{\"event_id\":\"x\"}]}", inv, "event_id",
                      "history event [0]: field 'event_id'");
    assert_load_error("{\"events\": {}}", inv, "events",
                      "an object whose \"events\" key is an array");
    assert_load_error("{\n\"events\": [\n{\"event_id\":1},\n", inv, NULL, "not valid JSON");
    assert_load_error("  \n\n", inv, NULL, "holds no events");
    assert_load_error("", inv, NULL, "holds no events");
    assert_load_error("[]", inv, NULL, "holds no events");
    assert_load_error("{\"events\":[]}", inv, NULL, "holds no events");
    assert_load_error("{\"event_id\":0}", inv, "event_id",
                      "history line 1: field 'event_id' is 0; expected 1");
    /* Missing file. */
    weft_history_file *h = NULL;
    weft_err err;
    char path[128];
    path_in_tmp(path, sizeof path, "missing.jsonl");
    assert_int_equal(weft_history_load_json(path, &h, &err), -WEFT_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "missing.jsonl"));
    assert_int_equal(weft_history_load_json(tmp_dir, &h, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_history_load_json(NULL, &h, &err), -WEFT_E_INVALID_ARGUMENT);
    weft_history_file_free(NULL);
}

static void test_write_event_errors(void **state) {
    (void)state;
    weft_err err;
    weft_event ev = {.event_id = 1};
    assert_int_equal(weft_history_write_event_json(NULL, &ev, &err), -WEFT_E_INVALID_ARGUMENT);
    FILE *f = fopen("/dev/full", "w");
    if (f == NULL) return; /* no /dev/full here */
    setvbuf(f, NULL, _IONBF, 0);
    assert_int_equal(weft_history_write_event_json(f, &ev, &err), -WEFT_E_INTERNAL);
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_any_value),
        cmocka_unit_test(test_parse_errors_name_what_line_column),
        cmocka_unit_test(test_dump_is_compact_and_sorted),
        cmocka_unit_test(test_bytes_c),
        cmocka_unit_test(test_event_json_form),
        cmocka_unit_test(test_namespace_key_and_enums),
        cmocka_unit_test(test_uint64_above_int64_max),
        cmocka_unit_test(test_describe_and_list_round_trip),
        cmocka_unit_test(test_base64_lengths),
        cmocka_unit_test(test_decode_errors_name_the_field),
        cmocka_unit_test(test_nulls_and_unknown_keys),
        cmocka_unit_test(test_history_lines_round_trip),
        cmocka_unit_test(test_history_array_and_object_forms),
        cmocka_unit_test(test_history_errors),
        cmocka_unit_test(test_write_event_errors),
    };
    return cmocka_run_group_tests(tests, hist_setup, hist_teardown);
}
