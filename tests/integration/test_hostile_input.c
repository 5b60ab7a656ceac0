/* test_hostile_input.c: malformed and hostile frames against a real weftd (DESIGN section 10,
 * STYLE rule 12). Each gets an INVALID_ARGUMENT that names the field (FAILED_PRECONDITION for a
 * request before Hello), or a closed connection; none crashes or wedges the server, which
 * still serves a normal start afterwards. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper_weftd.h"
#include "proto/frame.h"

/* How long the server may take to answer or close after hostile input. */
#define HOSTILE_REPLY_TIMEOUT_MS 5000u
/* Nesting of the deep-nesting attack: far past WEFT_DECODE_DEPTH_MAX. */
#define HOSTILE_NESTING_DEPTH 200u
/* The page-token bomb: this many nested array32 headers (5 bytes each, 155 bytes in all; under
 * msgpack-c's own stack of 32), each declaring HOSTILE_TOKEN_ITEMS items. Unchecked, msgpack-c
 * reserves 24 bytes per declared item at every level: 31 x 384 MiB of address space. */
#define HOSTILE_TOKEN_LEVELS 31u
#define HOSTILE_TOKEN_ITEMS 0x01000000u
/* How much weftd's peak address space may grow while it refuses the hostile page tokens: far
 * below the ~12 GiB an unchecked token reserves, far above what answering a list needs. */
#define HOSTILE_TOKEN_VM_GROWTH_BYTES_MAX (1024ull * 1024 * 1024)

typedef struct hostile {
    weftd w;     /* the server */
    bool passed; /* teardown prints stderr otherwise */
} hostile;

/* What came back on a raw connection. */
typedef struct reply {
    int kind;                                 /* 1 frame, 0 closed, -1 timeout or socket error */
    uint32_t type;                            /* frame: msg_type */
    uint64_t id;                              /* frame: correlation id */
    int code;                                 /* error frame: code */
    char field[WEFT_ERR_FIELD_BYTES_MAX];     /* error frame: field */
    char message[WEFT_ERR_MESSAGE_BYTES_MAX]; /* error frame: message */
} reply;

static const char *const hostile_flags[] = {
    "--shards", "1", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int hostile_setup(void **state) {
    static hostile t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, hostile_flags) != 0) return -1;
    *state = &t;
    return 0;
}

static int hostile_teardown(void **state) {
    hostile *t = *state;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weftd_destroy(&t->w);
    return 0;
}

static int raw_connect(const hostile *t) {
    const char *colon = strrchr(t->w.listen, ':');
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends bytes; a server that already closed may make this fail, which is fine. */
static void raw_send(int fd, const void *buf, size_t len) {
    (void)send(fd, buf, len, MSG_NOSIGNAL);
}

/* Sends `body` (an encoded msgpack value, the whole frame array) with a correct prefix. */
static void raw_send_frame(int fd, const msgpack_sbuffer *frame_array) {
    uint8_t prefix[4] = {(uint8_t)(frame_array->size >> 24), (uint8_t)(frame_array->size >> 16),
                         (uint8_t)(frame_array->size >> 8), (uint8_t)frame_array->size};
    raw_send(fd, prefix, 4);
    raw_send(fd, frame_array->data, frame_array->size);
}

static int raw_read_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline) {
    size_t done = 0;
    while (done < len) {
        uint64_t now = weft_mono_ms();
        if (now >= deadline) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n <= 0) continue;
        ssize_t r = recv(fd, buf + done, len - done, 0);
        if (r == 0) return 0;
        if (r < 0) return errno == ECONNRESET ? 0 : -1; /* a reset is a close */
        done += (size_t)r;
    }
    return 1;
}

/* Reads one reply frame, or notices the close. */
static reply raw_read_reply(int fd) {
    reply r = {.kind = -1};
    uint64_t deadline = weft_mono_ms() + HOSTILE_REPLY_TIMEOUT_MS;
    uint8_t prefix[4];
    r.kind = raw_read_exact(fd, prefix, 4, deadline);
    if (r.kind != 1) return r;
    uint32_t len = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 |
                   (uint32_t)prefix[2] << 8 | prefix[3];
    assert_true(len > 0 && len <= WEFT_FRAME_BYTES_MAX_DEFAULT);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    r.kind = raw_read_exact(fd, buf, len, deadline);
    if (r.kind == 1) {
        weft_limits l;
        weft_limits_default(&l);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        const msgpack_object *body = NULL;
        weft_err err;
        assert_int_equal(weft_frame_parse(buf, len, &up, &r.type, &r.id, &body, &l, &err), 0);
        if (r.type == WEFT_MSG_ERROR) {
            weft_error_resp e;
            msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
            assert_int_equal(weft_schema_decode(&weft_error_resp_schema, body, &e, z, &l, &err), 0);
            r.code = (int)e.code;
            weft_str_copy(r.field, sizeof r.field, e.field);
            weft_str_copy(r.message, sizeof r.message, e.message);
            msgpack_zone_free(z);
        }
        msgpack_unpacked_destroy(&up);
    }
    free(buf);
    return r;
}

static void raw_print(const char *what, const reply *r) {
    fprintf(stderr, "[%s] kind=%d type=%u code=%s field='%s' message='%s'\n", what, r->kind,
            r->type, weft_error_name(r->code), r->field, r->message);
}

/* Waits for the server to close the connection (reading and dropping anything it sends). */
static void raw_expect_close(int fd) {
    uint64_t deadline = weft_mono_ms() + HOSTILE_REPLY_TIMEOUT_MS;
    uint8_t sink[4096];
    for (;;) {
        int rc = raw_read_exact(fd, sink, 1, deadline);
        if (rc == 0) return;
        assert_int_equal(rc, 1); /* a timeout means the server kept a poisoned stream open */
    }
}

static void raw_hello(int fd) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    weft_hello_req h = {.protocol_version = WEFT_PROTOCOL_VERSION,
                        .client_name = WEFT_STR_LIT("hostile")};
    assert_int_equal(weft_frame_encode(&sb, WEFT_MSG_HELLO, 1, &weft_hello_req_schema, &h), 0);
    raw_send(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    reply r = raw_read_reply(fd);
    if (r.kind != 1 || r.type != (WEFT_MSG_HELLO | WEFT_MSG_RESPONSE_BIT)) raw_print("hello", &r);
    assert_int_equal(r.kind, 1);
    assert_int_equal(r.type, WEFT_MSG_HELLO | WEFT_MSG_RESPONSE_BIT);
}

/* A well-formed start, encoded with the real schema. */
static void encode_start(msgpack_sbuffer *sb, uint64_t id, const char *wf_id) {
    weft_start_req s = {.workflow_id = weft_str_c(wf_id),
                        .workflow_type = WEFT_STR_LIT("t"),
                        .task_queue = WEFT_STR_LIT("q")};
    assert_int_equal(weft_frame_encode(sb, WEFT_MSG_START_WORKFLOW, id, &weft_start_req_schema, &s),
                     0);
}

/* Frame array [type, id, {key: value...}] where the caller packs the map entries. */
static void pack_frame_head(msgpack_packer *pk, uint32_t type, uint64_t id, uint32_t map_items) {
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint32(pk, type);
    msgpack_pack_uint64(pk, id);
    msgpack_pack_map(pk, map_items);
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v, size_t vlen) {
    weft_pack_cstr(pk, k);
    msgpack_pack_str(pk, vlen);
    msgpack_pack_str_body(pk, v, vlen);
}

/* Expects an INVALID_ARGUMENT error frame for request `id` whose field names `field`. */
static void expect_invalid_field(int fd, uint64_t id, const char *field, const char *what) {
    reply r = raw_read_reply(fd);
    raw_print(what, &r);
    assert_int_equal(r.kind, 1);
    assert_int_equal(r.type, WEFT_MSG_ERROR);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(r.field, field));
    assert_true(r.message[0] != '\0');
}

/* Expects an INVALID_ARGUMENT (or RESOURCE_EXHAUSTED for size limits) error frame and then a
 * close, or a close straight away: the stream may not be resynchronisable. */
static void expect_error_or_close(int fd, const char *what, bool size_limit) {
    reply r = raw_read_reply(fd);
    raw_print(what, &r);
    assert_true(r.kind == 0 || r.kind == 1);
    if (r.kind == 1) {
        assert_int_equal(r.type, WEFT_MSG_ERROR);
        assert_true(r.code == WEFT_E_INVALID_ARGUMENT ||
                    (size_limit && r.code == WEFT_E_RESOURCE_EXHAUSTED));
        assert_true(r.field[0] != '\0' || size_limit);
    }
}

static void case_request_before_hello(hostile *t) {
    int fd = raw_connect(t);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_start(&sb, 7, "no-hello");
    raw_send(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    reply r = raw_read_reply(fd);
    raw_print("before hello", &r);
    assert_true(r.kind == 0 || r.kind == 1);
    if (r.kind == 1) {
        assert_int_equal(r.type, WEFT_MSG_ERROR);
        assert_int_equal(r.id, 7);
        assert_int_equal(r.code, WEFT_E_FAILED_PRECONDITION);
    }
    close(fd);
}

static void case_truncated_then_close(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    const uint8_t partial[] = {0, 0, 0, 100, 0x93, 0x0a, 0x02, 0x83};
    raw_send(fd, partial, sizeof partial);
    close(fd);
    fd = raw_connect(t); /* the server lives on */
    raw_hello(fd);
    close(fd);
}

static void case_oversized_prefix(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xf0, 0x93, 0x0a, 0x02};
    raw_send(fd, huge, sizeof huge);
    expect_error_or_close(fd, "oversized prefix", true);
    raw_expect_close(fd);
    close(fd);
}

static void case_zero_prefix(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    const uint8_t zero[] = {0, 0, 0, 0};
    raw_send(fd, zero, sizeof zero);
    expect_error_or_close(fd, "zero-length frame", true);
    raw_expect_close(fd);
    close(fd);
}

static void case_wrong_types(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_frame_head(&pk, WEFT_MSG_START_WORKFLOW, 21, 3);
    weft_pack_cstr(&pk, "workflow_id");
    msgpack_pack_int64(&pk, 12345); /* a number where a string belongs */
    pack_kv_str(&pk, "workflow_type", "t", 1);
    pack_kv_str(&pk, "task_queue", "q", 1);
    raw_send_frame(fd, &sb);
    expect_invalid_field(fd, 21, "workflow_id", "workflow_id as integer");

    msgpack_sbuffer_clear(&sb);
    pack_frame_head(&pk, WEFT_MSG_START_WORKFLOW, 22, 3);
    pack_kv_str(&pk, "workflow_id", "w", 1);
    pack_kv_str(&pk, "workflow_type", "t", 1);
    weft_pack_cstr(&pk, "task_queue");
    msgpack_pack_map(&pk, 0); /* a map where a string belongs */
    raw_send_frame(fd, &sb);
    expect_invalid_field(fd, 22, "task_queue", "task_queue as map");

    msgpack_sbuffer_clear(&sb);
    pack_frame_head(&pk, WEFT_MSG_START_WORKFLOW, 23, 2);
    pack_kv_str(&pk, "workflow_id", "w", 1);
    pack_kv_str(&pk, "task_queue", "q", 1); /* workflow_type missing */
    raw_send_frame(fd, &sb);
    expect_invalid_field(fd, 23, "workflow_type", "missing workflow_type");
    msgpack_sbuffer_destroy(&sb);
    close(fd);
}

static void case_invalid_utf8(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_frame_head(&pk, WEFT_MSG_START_WORKFLOW, 31, 3);
    pack_kv_str(&pk, "workflow_id", "bad\xff\xfe-id", 8);
    pack_kv_str(&pk, "workflow_type", "t", 1);
    pack_kv_str(&pk, "task_queue", "q", 1);
    raw_send_frame(fd, &sb);
    expect_invalid_field(fd, 31, "workflow_id", "invalid UTF-8 workflow_id");
    /* An overlong encoding of '/' and a lone surrogate are refused too. */
    msgpack_sbuffer_clear(&sb);
    pack_frame_head(&pk, WEFT_MSG_SIGNAL_WORKFLOW, 32, 2);
    pack_kv_str(&pk, "workflow_id", "\xc0\xaf", 2);
    pack_kv_str(&pk, "signal_name", "\xed\xa0\x80", 3);
    raw_send_frame(fd, &sb);
    reply r = raw_read_reply(fd);
    raw_print("overlong / surrogate", &r);
    assert_int_equal(r.kind, 1);
    assert_int_equal(r.code, WEFT_E_INVALID_ARGUMENT);
    assert_true(strstr(r.field, "workflow_id") != NULL || strstr(r.field, "signal_name") != NULL);
    msgpack_sbuffer_destroy(&sb);
    close(fd);
}

static void case_unknown_type(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_frame_head(&pk, 99, 41, 0);
    raw_send_frame(fd, &sb);
    expect_error_or_close(fd, "unknown message type", false);
    msgpack_sbuffer_destroy(&sb);
    close(fd);
}

static void case_deep_nesting(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_frame_head(&pk, WEFT_MSG_START_WORKFLOW, 51, 4);
    pack_kv_str(&pk, "workflow_id", "w", 1);
    pack_kv_str(&pk, "workflow_type", "t", 1);
    pack_kv_str(&pk, "task_queue", "q", 1);
    weft_pack_cstr(&pk, "extra");
    for (unsigned i = 0; i < HOSTILE_NESTING_DEPTH; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    raw_send_frame(fd, &sb);
    expect_error_or_close(fd, "deep nesting", false);
    msgpack_sbuffer_destroy(&sb);
    close(fd);
}

static void case_bad_shapes(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 0); /* a map where the frame array belongs */
    raw_send_frame(fd, &sb);
    expect_error_or_close(fd, "frame is a map", false);
    close(fd);

    fd = raw_connect(t);
    raw_hello(fd);
    const uint8_t claim[] = {0, 0, 0, 5, 0xdd, 0x7f, 0xff, 0xff, 0xff}; /* array32 of 2^31-1 */
    raw_send(fd, claim, sizeof claim);
    expect_error_or_close(fd, "array claims 2^31 items", true);
    close(fd);

    fd = raw_connect(t);
    raw_hello(fd);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 2); /* [type, id] without a body */
    msgpack_pack_uint32(&pk, WEFT_MSG_START_WORKFLOW);
    msgpack_pack_uint64(&pk, 61);
    raw_send_frame(fd, &sb);
    expect_error_or_close(fd, "frame of two elements", false);
    msgpack_sbuffer_destroy(&sb);
    close(fd);
}

/* The peak virtual memory of process `pid` (VmPeak in /proc/<pid>/status), in bytes. */
static uint64_t proc_vm_peak_bytes(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = sscanf(line, "VmPeak: %llu kB", &kib) == 1;
    fclose(f);
    assert_true(found);
    return (uint64_t)kib * 1024u;
}

/* Sends a LIST whose next_page_token is `tok` and expects INVALID_ARGUMENT naming the token,
 * with the hint to list again without it. */
static void send_list_token(int fd, uint64_t id, const uint8_t *tok, size_t len, const char *what) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    weft_list_req q = {.next_page_token = {.ptr = tok, .len = (uint32_t)len}};
    assert_int_equal(weft_frame_encode(&sb, WEFT_MSG_LIST_WORKFLOWS, id, &weft_list_req_schema, &q),
                     0);
    raw_send(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    reply r = raw_read_reply(fd);
    raw_print(what, &r);
    assert_int_equal(r.kind, 1);
    assert_int_equal(r.type, WEFT_MSG_ERROR);
    assert_int_equal(r.id, id);
    assert_int_equal(r.code, WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(r.field, "next_page_token");
    assert_non_null(strstr(r.message, "list again without it"));
}

/* Client page tokens are hostile input like any other: every malformed one is refused before
 * msgpack-c unpacks it, so none makes the server reserve memory its bytes cannot back. */
static void case_hostile_page_tokens(hostile *t) {
    int fd = raw_connect(t);
    raw_hello(fd);
    uint64_t peak_before = proc_vm_peak_bytes(t->w.proc.pid);
    uint8_t bomb[HOSTILE_TOKEN_LEVELS * 5];
    for (unsigned i = 0; i < HOSTILE_TOKEN_LEVELS; i++) {
        uint8_t *p = bomb + 5 * i;
        p[0] = 0xdd; /* array32 */
        p[1] = (uint8_t)(HOSTILE_TOKEN_ITEMS >> 24);
        p[2] = (uint8_t)(HOSTILE_TOKEN_ITEMS >> 16);
        p[3] = (uint8_t)(HOSTILE_TOKEN_ITEMS >> 8);
        p[4] = (uint8_t)HOSTILE_TOKEN_ITEMS;
    }
    send_list_token(fd, 71, bomb, sizeof bomb, "page token: nested array32 headers");
    const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    send_list_token(fd, 72, huge, sizeof huge, "page token: array of 2^32-1 items");
    const uint8_t truncated[] = {0x92, 0x00};
    send_list_token(fd, 73, truncated, sizeof truncated, "page token: truncated");
    const uint8_t reserved[] = {0x92, 0x00, 0xc1};
    send_list_token(fd, 74, reserved, sizeof reserved, "page token: reserved byte");
    const uint8_t trailing[] = {0x92, 0x00, 0xc4, 0x00, 0x00};
    send_list_token(fd, 75, trailing, sizeof trailing, "page token: trailing byte");
    const uint8_t nested[] = {0x92, 0x00, 0x91, 0x91, 0x91, 0xc0};
    send_list_token(fd, 76, nested, sizeof nested, "page token: nested arrays");
    const uint8_t no_shard[] = {0x92, 0x63, 0xc4, 0x00}; /* [99, bin0]: no shard 99 */
    send_list_token(fd, 77, no_shard, sizeof no_shard, "page token: unknown shard");
    const uint8_t map[] = {0x80};
    send_list_token(fd, 78, map, sizeof map, "page token: a map");
    uint64_t peak_after = proc_vm_peak_bytes(t->w.proc.pid);
    fprintf(stderr, "weftd VmPeak %llu -> %llu MiB over the hostile page tokens\n",
            (unsigned long long)(peak_before >> 20), (unsigned long long)(peak_after >> 20));
    assert_true(peak_after - peak_before < HOSTILE_TOKEN_VM_GROWTH_BYTES_MAX);
    /* A well-formed first page still works on the same connection. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    weft_list_req q = {.page_size = 1};
    assert_int_equal(weft_frame_encode(&sb, WEFT_MSG_LIST_WORKFLOWS, 79, &weft_list_req_schema, &q),
                     0);
    raw_send(fd, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    reply r = raw_read_reply(fd);
    raw_print("list without a token", &r);
    assert_int_equal(r.kind, 1);
    assert_int_equal(r.type, WEFT_MSG_LIST_WORKFLOWS | WEFT_MSG_RESPONSE_BIT);
    close(fd);
}

/* After all of it, the server still serves a normal client. */
static void case_still_serves(hostile *t) {
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&t->w, "after-hostile", &c), 0);
    weft_start_req s = {.workflow_id = WEFT_STR_LIT("after-hostile"),
                        .workflow_type = WEFT_STR_LIT("t"),
                        .task_queue = WEFT_STR_LIT("q")};
    weft_response h = {0};
    weft_start_resp r;
    weft_err err;
    int rc = weft_client_start(c, &s, &r, &h, &err);
    if (rc != 0) fprintf(stderr, "start: %s %s\n", weft_error_name(rc), err.message);
    assert_int_equal(rc, 0);
    assert_true(r.started);
    weft_describe_req dq = {.workflow_id = WEFT_STR_LIT("after-hostile")};
    weft_describe_resp d;
    assert_int_equal(weft_client_describe(c, &dq, &d, &h, &err), 0);
    assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
    weft_response_free(&h);
    weft_client_close(c);
}

static void test_hostile_input(void **state) {
    hostile *t = *state;
    case_request_before_hello(t);
    case_truncated_then_close(t);
    case_oversized_prefix(t);
    case_zero_prefix(t);
    case_wrong_types(t);
    case_invalid_utf8(t);
    case_unknown_type(t);
    case_deep_nesting(t);
    case_bad_shapes(t);
    case_hostile_page_tokens(t);
    case_still_serves(t);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_input, hostile_setup, hostile_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
