/* args.c: flag parsing for the `weft` CLI, driven by the flag rows of the command table, and
 * typed accessors (durations, enums, numbers, JSON) whose errors name the flag. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Room for a message that is then wrapped with a pointer to --help. */
#define ARGS_MESSAGE_BYTES_MAX (WEFT_ERR_MESSAGE_BYTES_MAX - 64)
/* "--" + the longest flag name + NUL. */
#define ARGS_FLAG_BYTES_MAX 40u

static unsigned args_rows(const cli_flag *flags) {
    unsigned n = 0;
    while (n < CLI_FLAGS_MAX && flags[n].name != NULL)
        n++;
    return n;
}

/* The row named name[0, len), or -1. */
static int args_find(const cli_flag *flags, const char *name, size_t len) {
    unsigned n = args_rows(flags);
    for (unsigned i = 0; i < n; i++) {
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0) return (int)i;
    }
    return -1;
}

/* Where to look for help: "weft --help" or "weft workflow start --help". */
static void args_help_ref(const char *where, char *buf, size_t cap) {
    snprintf(buf, cap, "weft %s%s--help", where, where[0] != '\0' ? " " : "");
}

static int args_refuse(const char *where, const char *field, weft_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int args_refuse(const char *where, const char *field, weft_err *err, const char *fmt, ...) {
    char msg[ARGS_MESSAGE_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char ref[96];
    args_help_ref(where, ref, sizeof ref);
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field, "%s; see '%s'", msg, ref);
}

/* Finds flag name[0, len) in `own`, else in `also` (may be NULL): *set gets the set. */
static int args_lookup(const cli_flagset *own, const cli_flagset *also, const char *name,
                       size_t len, const cli_flagset **set) {
    *set = own;
    int row = args_find(own->flags, name, len);
    if (row < 0 && also != NULL) {
        *set = also;
        row = args_find(also->flags, name, len);
    }
    return row;
}

/* Stores one flag (argv[*i], maybe with the next argument as its value). */
static int args_one(const cli_flagset *own, const cli_flagset *also, const char *where, int argc,
                    char **argv, int *i, weft_err *err) {
    const char *a = argv[*i];
    WEFT_ASSERT(strncmp(a, "--", 2) == 0);
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    const cli_flagset *set = NULL;
    int row = args_lookup(own, also, name, len, &set);
    if (row < 0) {
        return args_refuse(where, "", err, "unknown flag '%.*s'%s%s%s", (int)len + 2, a,
                           where[0] != '\0' ? " for 'weft " : " before the command", where,
                           where[0] != '\0' ? "'" : "");
    }
    const cli_flag *fl = &set->flags[row];
    const char **value = &set->values[row];
    char field[ARGS_FLAG_BYTES_MAX];
    snprintf(field, sizeof field, "--%s", fl->name);
    if (*value != NULL) return args_refuse(where, field, err, "%s is given twice", field);
    if (fl->metavar == NULL) {
        if (eq != NULL) return args_refuse(where, field, err, "%s takes no value", field);
        *value = "";
        return 0;
    }
    if (eq != NULL) {
        *value = eq + 1;
        return 0;
    }
    /* The next argument is the value even when it starts with '-': "--input -5" is JSON. */
    if (*i + 1 >= argc) {
        return args_refuse(where, field, err, "%s needs a value (%s)", field, fl->metavar);
    }
    *i += 1;
    *value = argv[*i];
    return 0;
}

/* The first required flag of `set` that is missing, as a usage error. */
static int args_required(const cli_flagset *set, const char *where, weft_err *err) {
    unsigned n = args_rows(set->flags);
    for (unsigned r = 0; r < n; r++) {
        const cli_flag *fl = &set->flags[r];
        if (!fl->required || set->values[r] != NULL) continue;
        char field[ARGS_FLAG_BYTES_MAX];
        snprintf(field, sizeof field, "--%s", fl->name);
        return args_refuse(where, field, err, "%s %s is required for 'weft %s'", field,
                           fl->metavar ? fl->metavar : "", where);
    }
    return 0;
}

int cli_flags_parse(const cli_flagset *own, const cli_flagset *also, const char *where, int argc,
                    char **argv, bool stop_at_word, int *used, bool *help, weft_err *err) {
    WEFT_ASSERT(own != NULL && own->flags != NULL && own->values != NULL && where != NULL);
    WEFT_ASSERT(argc >= 0 && (argv != NULL || argc == 0) && help != NULL);
    for (unsigned r = 0; r < CLI_FLAGS_MAX; r++)
        own->values[r] = NULL;
    *help = false;
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            continue;
        }
        bool is_flag = strncmp(a, "--", 2) == 0 && a[2] != '\0';
        if (!is_flag && stop_at_word && a[0] != '-') break;
        if (!is_flag) {
            return args_refuse(where, "", err,
                               "unexpected argument '%s': give values with flags, as in --id ID",
                               a);
        }
        int rc = args_one(own, also, where, argc, argv, &i, err);
        if (rc != 0) return rc;
    }
    if (used != NULL) *used = i;
    return *help ? 0 : args_required(own, where, err);
}

int cli_usage_error(const cli_ctx *ctx, weft_err *err, const char *field, const char *fmt, ...) {
    WEFT_ASSERT(ctx != NULL && ctx->cmd != NULL);
    /* Format first: the arguments may point into err->message. */
    char msg[ARGS_MESSAGE_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field, "%s; see 'weft %s %s --help'", msg,
                        ctx->cmd->group, ctx->cmd->name);
}

const char *cli_arg(const cli_ctx *ctx, const char *name) {
    WEFT_ASSERT(ctx != NULL && ctx->cmd != NULL && name != NULL);
    int row = args_find(ctx->cmd->flags, name, strlen(name));
    /* A handler asking for a flag its row does not declare is a bug in the table. */
    WEFT_ASSERT(row >= 0);
    return ctx->values[row];
}

bool cli_switch(const cli_ctx *ctx, const char *name) {
    return cli_arg(ctx, name) != NULL;
}

int cli_arg_duration(const cli_ctx *ctx, const char *name, uint64_t *ms, weft_err *err) {
    const char *v = cli_arg(ctx, name);
    if (v == NULL) return 0;
    char field[ARGS_FLAG_BYTES_MAX];
    snprintf(field, sizeof field, "--%s", name);
    int rc = weft_duration_parse(v, field, ms, err);
    if (rc != 0) return cli_usage_error(ctx, err, field, "%s", err->message);
    WEFT_ASSERT(*ms > 0);
    return 0;
}

int cli_arg_enum(const cli_ctx *ctx, const char *name, const char *const *names, bool skip_first,
                 uint32_t *out, weft_err *err) {
    const char *v = cli_arg(ctx, name);
    if (v == NULL) return 0;
    int idx = weft_enum_lookup(names, weft_str_c(v));
    if (idx >= (skip_first ? 1 : 0)) {
        *out = (uint32_t)idx;
        return 0;
    }
    char valid[256] = "";
    size_t used = 0;
    for (unsigned i = skip_first ? 1u : 0u; names[i] != NULL && used + 1 < sizeof valid; i++) {
        int n = snprintf(valid + used, sizeof valid - used, "%s%s", used > 0 ? "|" : "", names[i]);
        used = WEFT_MIN(used + (size_t)(n < 0 ? 0 : n), sizeof valid - 1);
    }
    return cli_usage_error(ctx, err, name, "--%s '%s' is not one of %s", name, v, valid);
}

/* "YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z]" as UTC into *ms. Returns 0 or -1. */
static int args_parse_utc(const char *v, uint64_t *ms) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int frac = 0, used = 0, frac_digits = 0;
    if (sscanf(v, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used) != 3) return -1;
    const char *p = v + used;
    if (*p == 'T' || *p == ' ') {
        int n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) != 2) return -1;
        p += 1 + n;
        if (*p == ':' && sscanf(p + 1, "%2d%n", &tm.tm_sec, &n) == 1) p += 1 + n;
        if (*p == '.' && sscanf(p + 1, "%3d%n", &frac, &n) == 1) {
            frac_digits = n;
            p += 1 + n;
        }
    }
    if (*p == 'Z') p++;
    if (*p != '\0') return -1;
    for (int i = frac_digits; i < 3; i++)
        frac *= 10;
    int year = tm.tm_year, mon = tm.tm_mon, day = tm.tm_mday, hour = tm.tm_hour;
    int min = tm.tm_min, sec = tm.tm_sec;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    /* timegm normalises 2024-02-30 into March: a date that does not come back is not one. */
    struct tm back;
    if (t < 0 || gmtime_r(&t, &back) == NULL || back.tm_year + 1900 != year ||
        back.tm_mon + 1 != mon || back.tm_mday != day || back.tm_hour != hour ||
        back.tm_min != min || back.tm_sec != sec) {
        return -1;
    }
    *ms = (uint64_t)t * 1000u + (uint64_t)frac;
    return 0;
}

int cli_arg_time(const cli_ctx *ctx, const char *name, uint64_t *ms, weft_err *err) {
    const char *v = cli_arg(ctx, name);
    if (v == NULL) return 0;
    uint64_t t = 0;
    if (args_parse_utc(v, &t) == 0 && t > 0) {
        *ms = t;
        return 0;
    }
    weft_err scratch;
    uint64_t ago_ms = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    if (weft_duration_parse(v, name, &ago_ms, &scratch) == 0 && ago_ms < now_ms) {
        *ms = now_ms - ago_ms;
        return 0;
    }
    return cli_usage_error(ctx, err, name,
                           "--%s '%s' is not a time: give a UTC time like "
                           "2024-05-01T10:00:00Z, a day like 2024-05-01, or a duration like "
                           "90m for that long ago",
                           name, v);
}

int cli_arg_u32(const cli_ctx *ctx, const char *name, uint32_t min, uint32_t max, uint32_t *out,
                weft_err *err) {
    WEFT_ASSERT(min <= max);
    const char *v = cli_arg(ctx, name);
    if (v == NULL) return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long n = v[0] >= '0' && v[0] <= '9' ? strtoull(v, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno == ERANGE || n < min || n > max) {
        return cli_usage_error(ctx, err, name, "--%s '%s' must be a whole number from %u to %u",
                               name, v, min, max);
    }
    *out = (uint32_t)n;
    return 0;
}

/* Reads at most CLI_PAYLOAD_BYTES_MAX bytes of `f` into a malloc'd buffer (*out, *len).
 * Returns 0, -1 for a read error (errno set), or 1 when there is more. */
static int args_read_all(FILE *f, char **out, size_t *len) {
    size_t cap = CLI_PAYLOAD_BYTES_MAX + 1; /* one more: to tell "exactly the max" from "more" */
    char *buf = malloc(cap);
    if (buf == NULL) return -1;
    size_t n = 0;
    while (n < cap) {
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return n > CLI_PAYLOAD_BYTES_MAX ? 1 : 0;
}

/* Reads the payload that `v` ("@PATH" or "-") names into ctx's keeping. `label` names the
 * flag and the source in messages ("--input @order.json"). */
static int args_read_payload(cli_ctx *ctx, const char *field, const char *v, const char *label,
                             weft_bytes *out, weft_err *err) {
    bool from_stdin = strcmp(v, "-") == 0;
    if (from_stdin && ctx->stdin_used) {
        return cli_usage_error(ctx, err, field,
                               "%s: stdin was already read by another flag; give this one "
                               "@FILE or the JSON itself",
                               label);
    }
    unsigned slot = 0;
    while (slot < CLI_PAYLOADS_MAX && ctx->payloads[slot] != NULL)
        slot++;
    WEFT_ASSERT(slot < CLI_PAYLOADS_MAX); /* a command has fewer payload flags */
    FILE *f = from_stdin ? stdin : fopen(v + 1, "rb");
    if (f == NULL) {
        return cli_usage_error(ctx, err, field,
                               "%s: cannot read the file (%s); give a path to a JSON file after "
                               "@, - for stdin, or the JSON itself",
                               label, strerror(errno));
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = args_read_all(f, &buf, &len);
    int read_errno = errno;
    if (!from_stdin) fclose(f);
    ctx->stdin_used = ctx->stdin_used || from_stdin;
    if (rc < 0) {
        return cli_usage_error(ctx, err, field, "%s: cannot read %s (%s)", label,
                               from_stdin ? "stdin" : "the file", strerror(read_errno));
    }
    ctx->payloads[slot] = buf;
    if (rc > 0) {
        return cli_usage_error(ctx, err, field,
                               "%s is larger than %u bytes (2 MiB), the server's payload limit "
                               "(payload_bytes_max): send a smaller payload, or keep large data "
                               "elsewhere and pass a reference to it",
                               label, CLI_PAYLOAD_BYTES_MAX);
    }
    *out = (weft_bytes){.ptr = (const uint8_t *)buf, .len = (uint32_t)len};
    return 0;
}

int cli_arg_json(cli_ctx *ctx, const char *name, weft_bytes *out, weft_err *err) {
    const char *v = cli_arg(ctx, name);
    memset(out, 0, sizeof *out);
    if (v == NULL) return 0;
    char field[ARGS_FLAG_BYTES_MAX];
    snprintf(field, sizeof field, "--%s", name);
    char label[ARGS_MESSAGE_BYTES_MAX / 2];
    bool from_source = v[0] == '@' || strcmp(v, "-") == 0;
    snprintf(label, sizeof label, "%s %s%s", field, v, strcmp(v, "-") == 0 ? " (stdin)" : "");
    weft_bytes payload = weft_bytes_c(v);
    if (from_source) {
        int rc = args_read_payload(ctx, field, v, label, &payload, err);
        if (rc != 0) return rc;
    } else if (strlen(v) > CLI_PAYLOAD_BYTES_MAX) {
        return cli_usage_error(ctx, err, field,
                               "%s is larger than %u bytes (2 MiB), the server's payload limit "
                               "(payload_bytes_max): send a smaller payload",
                               field, CLI_PAYLOAD_BYTES_MAX);
    }
    json_t *j = weft_json_parse(payload, from_source ? label : field, err);
    if (j == NULL && from_source) return cli_usage_error(ctx, err, field, "%s", err->message);
    if (j == NULL) {
        return cli_usage_error(ctx, err, field,
                               "%s (quote it for the shell, as in %s "
                               "'{\"k\": 1}' or %s '\"text\"'; or give a file as %s @FILE, or "
                               "stdin as %s -)",
                               err->message, field, field, field, field);
    }
    json_decref(j);
    *out = payload;
    return 0;
}

int cli_request_id(cli_ctx *ctx, weft_str *out, weft_err *err) {
    const char *given = cli_arg(ctx, "request-id");
    if (given != NULL && given[0] == '\0') {
        return cli_usage_error(ctx, err, "--request-id", "--request-id must not be empty");
    }
    if (given != NULL && strlen(given) >= sizeof ctx->request_id) {
        /* Longer ids are the server's to judge (id_bytes_max); they are not kept for messages. */
        ctx->request_id[0] = '\0';
        *out = weft_str_c(given);
        return 0;
    }
    if (given != NULL) {
        snprintf(ctx->request_id, sizeof ctx->request_id, "%s", given);
    } else if (weft_request_id_new(ctx->request_id, err) != 0) {
        return -WEFT_E_INTERNAL;
    }
    *out = weft_str_c(ctx->request_id);
    WEFT_ASSERT(out->len > 0);
    return 0;
}
