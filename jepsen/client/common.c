/* common.c: JSON lines, outcomes, random numbers and flags for every subcommand. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jepsen.h"

uint64_t jepsen_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void jepsen_sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- JSON lines ---- */

int jepsen_log_open(jepsen_log *l, const char *path) {
    snprintf(l->path, sizeof l->path, "%s", path);
    l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        fprintf(stderr, "weft-jepsen: cannot open %s for appending: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

void jepsen_log_close(jepsen_log *l) {
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
}

int jepsen_log_write(jepsen_log *l, const json_t *obj) {
    WEFT_ASSERT(l->fd >= 0 && obj != NULL);
    char *text = json_dumps(obj, JSON_COMPACT);
    WEFT_ASSERT(text != NULL);
    size_t len = strlen(text);
    WEFT_ASSERT(len + 1 < JEPSEN_LINE_BYTES_MAX);
    text[len] = '\n'; /* the NUL becomes the newline: one buffer, one write */
    ssize_t n;
    do {
        n = write(l->fd, text, len + 1);
    } while (n < 0 && errno == EINTR);
    free(text);
    if (n != (ssize_t)(len + 1)) {
        fprintf(stderr, "weft-jepsen: writing %s failed (%s)\n", l->path,
                n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

/* ---- Operations ---- */

jepsen_outcome jepsen_outcome_of(int rc) {
    switch (-rc) {
    case 0:
        return JEPSEN_OK;
    case WEFT_E_INVALID_ARGUMENT:
    case WEFT_E_NOT_FOUND:
    case WEFT_E_ALREADY_EXISTS:
    case WEFT_E_FAILED_PRECONDITION:
        return JEPSEN_FAIL;
    default:
        return JEPSEN_INFO;
    }
}

const char *jepsen_outcome_name(jepsen_outcome o) {
    switch (o) {
    case JEPSEN_OK:
        return "ok";
    case JEPSEN_FAIL:
        return "fail";
    default:
        return "info";
    }
}

/* node_id 0: not known (an invoke: libweft picks the node; a completion: no reply came). */
static json_t *history_line(const jepsen_history *h, const char *type, const char *f,
                            uint64_t time_ms, uint64_t node_id) {
    json_t *o = json_object();
    json_object_set_new(o, "process", json_string(h->process));
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "f", json_string(f));
    json_object_set_new(o, "time_ms", json_integer((json_int_t)time_ms));
    char name[32];
    snprintf(name, sizeof name, "n%llu", (unsigned long long)node_id);
    json_object_set_new(o, "node", node_id != 0 ? json_string(name) : json_null());
    return o;
}

uint64_t jepsen_history_invoke(jepsen_history *h, const char *f, const json_t *value) {
    uint64_t now = jepsen_now_ms();
    json_t *o = history_line(h, "invoke", f, now, 0);
    json_object_set(o, "value", (json_t *)value);
    json_object_set_new(o, "error", json_null());
    jepsen_log_write(&h->log, o);
    json_decref(o);
    return now;
}

void jepsen_history_complete(jepsen_history *h, const char *f, int rc, const weft_err *err,
                             const json_t *value, uint64_t node_id) {
    jepsen_outcome oc = jepsen_outcome_of(rc);
    json_t *o = history_line(h, jepsen_outcome_name(oc), f, jepsen_now_ms(), node_id);
    if (oc == JEPSEN_OK) {
        json_object_set_new(o, "value", value != NULL ? json_deep_copy(value) : json_object());
        json_object_set_new(o, "error", json_null());
    } else {
        char text[WEFT_ERR_MESSAGE_BYTES_MAX + 64];
        snprintf(text, sizeof text, "%s %s", weft_error_name(rc), err != NULL ? err->message : "");
        json_object_set_new(o, "value", json_null());
        json_object_set_new(o, "error", json_string(text));
    }
    jepsen_log_write(&h->log, o);
    json_decref(o);
}

json_t *jepsen_payload_json(weft_bytes b) {
    if (b.len == 0) return json_null();
    json_error_t jerr;
    json_t *v = json_loadb((const char *)b.ptr, b.len, JSON_DECODE_ANY, &jerr);
    if (v != NULL) return v;
    v = json_stringn((const char *)b.ptr, b.len);
    if (v != NULL) return v;
    char note[64];
    snprintf(note, sizeof note, "<%u bytes, not UTF-8>", b.len);
    return json_string(note);
}

/* ---- Random numbers ---- */

void jepsen_rng_seed(jepsen_rng *r, uint64_t seed, const char *salt) {
    /* FNV-1a of the salt, so that each process of one seed draws its own sequence. */
    uint64_t h = 1469598103934665603ull;
    for (const char *p = salt; p != NULL && *p != '\0'; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ull;
    }
    r->s = seed ^ h;
}

uint64_t jepsen_rng_next(jepsen_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t jepsen_rng_range(jepsen_rng *r, uint64_t lo, uint64_t hi) {
    WEFT_ASSERT(lo <= hi);
    return lo + jepsen_rng_next(r) % (hi - lo + 1);
}

/* ---- Flags ---- */

static void flags_usage(const char *cmd, const jepsen_flag *flags) {
    fprintf(stderr, "usage: weft-jepsen %s [flags]\n", cmd);
    for (const jepsen_flag *f = flags; f->name != NULL; f++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", f->name, f->set != NULL ? "" : " VALUE");
        fprintf(stderr, "  %-26s %s\n", left, f->doc);
    }
}

int jepsen_flags_parse(const char *cmd, const jepsen_flag *flags, int argc, char **argv,
                       int first) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            flags_usage(cmd, flags);
            return -1;
        }
        const jepsen_flag *f = NULL;
        for (const jepsen_flag *g = flags; a[0] == '-' && a[1] == '-' && g->name != NULL; g++) {
            if (strcmp(a + 2, g->name) == 0) f = g;
        }
        if (f == NULL) {
            fprintf(stderr, "weft-jepsen %s: unknown argument '%s'\n", cmd, a);
            flags_usage(cmd, flags);
            return -1;
        }
        if (f->set != NULL) {
            *f->set = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "weft-jepsen %s: --%s needs a value\n", cmd, f->name);
            return -1;
        }
        *f->value = argv[++i];
    }
    return 0;
}

int jepsen_parse_u64(const char *name, const char *text, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = text != NULL ? strtoull(text, &end, 10) : 0;
    if (text == NULL || text[0] == '\0' || text[0] == '-' || errno != 0 || *end != '\0' || v < lo ||
        v > hi) {
        fprintf(stderr, "weft-jepsen: --%s must be an integer from %llu to %llu (got \"%s\")\n",
                name, (unsigned long long)lo, (unsigned long long)hi, text ? text : "");
        return -1;
    }
    *out = v;
    return 0;
}

int jepsen_client_open(const char *addresses, const char *name, uint32_t call_timeout_ms,
                       uint32_t retries, weft_client **out) {
    weft_err err;
    weft_err_clear(&err);
    weft_client_opts o = {
        .connect_timeout_ms = 2000,
        .call_timeout_ms = call_timeout_ms,
        .retries_max = retries,
        .no_retries = retries == 0,
        .backoff_initial_ms = 50,
        .backoff_max_ms = 1000,
        .client_name = name,
        .identity = name,
    };
    int rc = weft_client_open(addresses, &o, out, &err);
    if (rc != 0) {
        fprintf(stderr, "weft-jepsen %s: cannot reach %s: %s %s\n", name, addresses,
                weft_error_name(rc), err.message);
        return -1;
    }
    return 0;
}
