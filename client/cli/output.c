/* output.c: the CLI's connection and everything it prints that more than one command shares:
 * errors, times, JSON lines, payloads and `key=value` attributes. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Keys ending so are times since the epoch; other keys ending in "_ms" are durations. */
#define OUTPUT_TIME_SUFFIX "_time_ms"
#define OUTPUT_MS_SUFFIX "_ms"

/* One try to reach a node of the address list, without the library's retries. */
static int output_try_open(const cli_ctx *ctx, weft_client **out, weft_err *err) {
    weft_client_opts opts = {.client_name = "weft-cli", .no_retries = true};
    return weft_client_open(ctx->address, &opts, out, err);
}

/* Tries to reach --address until a node answers or CLI_CONNECT_WAIT_MS pass, saying on stderr
 * what it is waiting for: a silent wait looks like a hang. Returns 0 once a node answered. */
static int output_wait_reachable(const cli_ctx *ctx, weft_err *err) {
    uint64_t start_ms = weft_mono_ms();
    uint64_t deadline_ms = start_ms + CLI_CONNECT_WAIT_MS;
    uint64_t backoff_ms = CLI_CONNECT_BACKOFF_INITIAL_MS;
    uint64_t said_ms = 0;
    for (unsigned attempt = 1;; attempt++) {
        weft_client *probe = NULL;
        int rc = output_try_open(ctx, &probe, err);
        weft_client_close(probe);
        if (rc != -WEFT_E_UNAVAILABLE && rc != -WEFT_E_DEADLINE_EXCEEDED) return rc;
        uint64_t now_ms = weft_mono_ms();
        if (now_ms >= deadline_ms) {
            weft_err_prefix(err, "cannot reach %s (--address) after %u tries in %.1f s",
                            ctx->address, attempt, (double)(now_ms - start_ms) / 1000.0);
            return rc;
        }
        if (attempt == 1) {
            fprintf(stderr, "weft: %s; retrying for up to %u s\n", err->message,
                    CLI_CONNECT_WAIT_MS / 1000u);
            said_ms = now_ms;
        } else if (now_ms - said_ms >= CLI_CONNECT_PROGRESS_MS) {
            fprintf(stderr, "weft: still cannot reach %s (try %u, %.1f s left)\n", ctx->address,
                    attempt, (double)(deadline_ms - now_ms) / 1000.0);
            said_ms = now_ms;
        }
        uint64_t pause_ms = WEFT_MIN(backoff_ms, deadline_ms - now_ms);
        usleep((useconds_t)(pause_ms * 1000u));
        backoff_ms = WEFT_MIN(backoff_ms * 2u, (uint64_t)CLI_CONNECT_BACKOFF_MAX_MS);
    }
}

int cli_connect(cli_ctx *ctx, weft_err *err) {
    WEFT_ASSERT(ctx != NULL && ctx->address != NULL);
    WEFT_ASSERT(ctx->client == NULL);
    /* First make sure some node answers, reporting refusals as they happen; then open the
     * client that the command uses, whose calls retry through a leader's failover. The extra
     * Hello costs a round trip; a silent wait of several seconds cost more. */
    int rc = output_wait_reachable(ctx, err);
    if (rc != 0) return rc;
    weft_client_opts opts = {
        .client_name = "weft-cli",
        .retries_max = CLI_CALL_RETRIES,
        .backoff_max_ms = CLI_CALL_BACKOFF_MAX_MS,
    };
    rc = weft_client_open(ctx->address, &opts, &ctx->client, err);
    if (rc != 0) weft_err_prefix(err, "cannot reach %s (--address)", ctx->address);
    return rc;
}

int cli_fail_write(const cli_ctx *ctx, weft_err *err) {
    WEFT_ASSERT(ctx != NULL && err != NULL);
    bool unknown = err->code == WEFT_E_UNAVAILABLE || err->code == WEFT_E_DEADLINE_EXCEEDED;
    if (unknown && ctx->client != NULL && ctx->request_id[0] != '\0') {
        char message[WEFT_ERR_MESSAGE_BYTES_MAX], field[WEFT_ERR_FIELD_BYTES_MAX];
        snprintf(message, sizeof message, "%s", err->message);
        snprintf(field, sizeof field, "%s", err->field);
        weft_err_set(err, err->code, field,
                     "%s; the request may or may not have been applied: run the same command "
                     "with --request-id %s to apply it at most once",
                     message, ctx->request_id);
    }
    return cli_fail(err);
}

int cli_fail(const weft_err *err) {
    WEFT_ASSERT(err != NULL);
    int code = err->code != 0 ? err->code : WEFT_E_INTERNAL;
    const char *message = err->message[0] != '\0' ? err->message : weft_error_advice(code);
    fprintf(stderr, "weft: %s: %s", weft_error_name(code), message);
    /* The field often already opens the message ("--input is not valid JSON"). */
    if (err->field[0] != '\0' && strstr(message, err->field) == NULL) {
        fprintf(stderr, " (field: %s)", err->field);
    }
    fputc('\n', stderr);
    return CLI_EXIT_ERROR;
}

char *cli_time(uint64_t ms, char buf[CLI_TIME_BYTES]) {
    WEFT_ASSERT(buf != NULL);
    if (ms == 0) {
        snprintf(buf, CLI_TIME_BYTES, "-");
        return buf;
    }
    time_t secs = (time_t)(ms / 1000u);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(buf, CLI_TIME_BYTES, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, CLI_TIME_BYTES, "%llums", (unsigned long long)ms);
        return buf;
    }
    size_t n = strlen(buf);
    WEFT_ASSERT(n + 6 <= CLI_TIME_BYTES);
    snprintf(buf + n, CLI_TIME_BYTES - n, ".%03uZ", (unsigned)(ms % 1000u));
    return buf;
}

int cli_print_json(const json_t *v, weft_err *err) {
    WEFT_ASSERT(v != NULL);
    /* Keys keep their order (schema order for struct forms): as deterministic as sorting, and
     * ids and types come first where people look. */
    if (json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY) != 0 || fputc('\n', stdout) == EOF) {
        return weft_err_set(err, WEFT_E_INTERNAL, "", "cannot write JSON to stdout");
    }
    return 0;
}

int cli_print_struct_json(const weft_schema *schema, const void *in, weft_err *err) {
    json_t *j = weft_json_from_struct(schema, in);
    if (j == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "out of memory converting %s to JSON", schema->name);
    }
    int rc = cli_print_json(j, err);
    json_decref(j);
    return rc;
}

/* A word prints bare: non-empty, no spaces or control characters. */
static bool output_is_word(const char *p, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch <= 0x20 || ch == 0x7f) return false;
    }
    return true;
}

void cli_print_word(FILE *f, weft_str s) {
    if (output_is_word(s.ptr, s.len)) {
        fwrite(s.ptr, 1, s.len, f);
        return;
    }
    json_t *j = json_stringn(s.len > 0 ? s.ptr : "", s.len);
    if (j == NULL || json_dumpf(j, f, JSON_ENCODE_ANY) != 0) fputs("?", f);
    json_decref(j);
}

void cli_print_payload(FILE *f, weft_bytes b) {
    /* The JSON form of a struct that holds the payload gives the same text-or-base64 choice as
     * every other JSON output, without a second base64 encoder. */
    weft_failure holder = {.details = b};
    json_t *j = weft_json_from_struct(&weft_failure_schema, &holder);
    const json_t *v = j != NULL ? json_object_get(j, "details") : NULL;
    if (v == NULL) {
        if (b.len > 0) fputs("?", f);
    } else if (json_is_string(v)) {
        fwrite(json_string_value(v), 1, json_string_length(v), f);
    } else {
        json_dumpf(v, f, JSON_COMPACT);
    }
    json_decref(j);
}

static bool output_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool output_skipped(const char *key, const char *const *skip) {
    for (unsigned i = 0; skip != NULL && skip[i] != NULL; i++) {
        if (strcmp(skip[i], key) == 0) return true;
    }
    return false;
}

/* One `key=value`: times and durations made readable, the rest as words or compact JSON. */
static void output_attr(FILE *f, const char *key, const json_t *v) {
    char buf[CLI_TIME_BYTES];
    size_t klen = strlen(key);
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        output_ends_with(key, OUTPUT_MS_SUFFIX)) {
        uint64_t ms = (uint64_t)json_integer_value(v);
        bool is_time = output_ends_with(key, OUTPUT_TIME_SUFFIX);
        fprintf(f, "%.*s=%s", (int)(klen - strlen(OUTPUT_MS_SUFFIX)), key,
                is_time ? cli_time(ms, buf) : weft_duration_format(ms, buf, sizeof buf));
        return;
    }
    fprintf(f, "%s=", key);
    if (json_is_string(v)) {
        weft_str s = {.ptr = json_string_value(v), .len = (uint32_t)json_string_length(v)};
        cli_print_word(f, s);
    } else {
        json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY);
    }
}

void cli_print_attrs(FILE *f, const json_t *obj, const char *const *skip) {
    WEFT_ASSERT(f != NULL && json_is_object(obj));
    const char *key;
    const json_t *v;
    bool first = true;
    /* json_object_foreach wants a non-const object; it only reads it. */
    json_t *o = (json_t *)(uintptr_t)obj;
    json_object_foreach(o, key, v) {
        if (output_skipped(key, skip)) continue;
        if (!first) fputc(' ', f);
        output_attr(f, key, v);
        first = false;
    }
}

const char *cli_status_name(uint32_t status) {
    return status < WEFT_STATUS__COUNT ? weft_status_names[status] : "?";
}
