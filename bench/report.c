/* report.c: prints one run's figures twice from the same rows: a table for people and, with
 * --json, one JSON line for recording. Figures only: a benchmark never passes or fails. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Latencies are recorded in microseconds and printed in milliseconds. */
#define REPORT_US_PER_MS 1000.0

void bench_report_figure(bench_report *r, const char *key, double value, const char *unit) {
    WEFT_ASSERT(r != NULL && key != NULL && unit != NULL);
    WEFT_ASSERT(r->figures_count < BENCH_FIGURES_MAX);
    r->figures[r->figures_count++] = (bench_figure){.key = key, .value = value, .unit = unit};
}

void bench_report_latency(bench_report *r, const char *key, const bench_latency *lat) {
    WEFT_ASSERT(r != NULL && key != NULL && lat != NULL);
    WEFT_ASSERT(r->latencies_count < BENCH_LATENCIES_MAX);
    bench_latency_row *row = &r->latencies[r->latencies_count++];
    row->key = key;
    row->lat = *lat;
}

static double report_ms(uint64_t us) {
    return (double)us / REPORT_US_PER_MS;
}

static double report_mean_ms(const bench_latency *l) {
    return l->count == 0 ? 0.0 : report_ms(l->sum_us) / (double)l->count;
}

static void report_table_header(const bench_report *r) {
    const bench_config *c = r->cfg;
    printf("weft-bench  scenario=%s  address=%s%s", c->scenario, c->address,
           c->spawn_path != NULL ? " (spawned)" : "");
    if (c->spawn_path != NULL) printf("  shards=%u", c->shards);
    printf("\n  threads=%u duration_s=%u workflows=%u activities=%u timer_ms=%u workers=%u "
           "task_queue=%s cpus=%ld\n",
           c->threads, c->duration_s, c->workflows, c->activities, c->timer_ms, c->workers,
           c->task_queue, sysconf(_SC_NPROCESSORS_ONLN));
}

static void report_table_body(const bench_report *r) {
    printf("\n  %-28s %14s\n", "figure", "value");
    for (uint32_t i = 0; i < r->figures_count; i++) {
        const bench_figure *f = &r->figures[i];
        printf("  %-28s %14.2f %s\n", f->key, f->value, f->unit);
    }
    printf("\n  %-28s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "p50", "p90", "p99",
           "max", "mean");
    for (uint32_t i = 0; i < r->latencies_count; i++) {
        const bench_latency *l = &r->latencies[i].lat;
        printf("  %-28s %9llu %9.2f %9.2f %9.2f %9.2f %9.2f\n", r->latencies[i].key,
               (unsigned long long)l->count, report_ms(bench_latency_quantile_us(l, 0.50)),
               report_ms(bench_latency_quantile_us(l, 0.90)),
               report_ms(bench_latency_quantile_us(l, 0.99)), report_ms(l->max_us),
               report_mean_ms(l));
    }
}

static void report_table_errors(const bench_report *r) {
    if (bench_errors_total(&r->errors) == 0) {
        printf("\n  errors: none\n");
    } else {
        printf("\n  errors:\n");
        for (int code = 1; code < WEFT_E__COUNT; code++) {
            if (r->errors.by_code[code] == 0) continue;
            printf("    %-20s %9llu  first: %s\n", weft_error_name(code),
                   (unsigned long long)r->errors.by_code[code], r->errors.first_message[code]);
        }
    }
    if (r->weftd_note[0] != '\0') printf("  weftd: %s\n", r->weftd_note);
}

/* Writes s as a JSON string: quotes, backslashes and control characters escaped. */
static void report_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

static void report_json_config(const bench_report *r) {
    const bench_config *c = r->cfg;
    printf("{\"bench\":\"weft\",\"unix_ms\":%llu,\"cpus\":%ld,\"scenario\":",
           (unsigned long long)weft_wall_ms(), sysconf(_SC_NPROCESSORS_ONLN));
    report_json_string(c->scenario);
    printf(",\"address\":");
    report_json_string(c->address);
    printf(",\"spawned\":%s,\"shards\":%u,\"threads\":%u,\"duration_s\":%u,\"workflows\":%u,"
           "\"activities\":%u,\"timer_ms\":%u,\"workers\":%u,\"task_queue\":",
           c->spawn_path != NULL ? "true" : "false", c->spawn_path != NULL ? c->shards : 0,
           c->threads, c->duration_s, c->workflows, c->activities, c->timer_ms, c->workers);
    report_json_string(c->task_queue);
}

static void report_json_results(const bench_report *r) {
    printf(",\"figures\":{");
    for (uint32_t i = 0; i < r->figures_count; i++) {
        printf("%s\"%s\":%.3f", i > 0 ? "," : "", r->figures[i].key, r->figures[i].value);
    }
    printf("},\"latency_ms\":{");
    for (uint32_t i = 0; i < r->latencies_count; i++) {
        const bench_latency *l = &r->latencies[i].lat;
        printf("%s\"%s\":{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,"
               "\"mean\":%.3f}",
               i > 0 ? "," : "", r->latencies[i].key, (unsigned long long)l->count,
               report_ms(bench_latency_quantile_us(l, 0.50)),
               report_ms(bench_latency_quantile_us(l, 0.90)),
               report_ms(bench_latency_quantile_us(l, 0.99)), report_ms(l->max_us),
               report_mean_ms(l));
    }
    printf("},\"errors\":{");
    const char *sep = "";
    for (int code = 1; code < WEFT_E__COUNT; code++) {
        if (r->errors.by_code[code] == 0) continue;
        printf("%s\"%s\":%llu", sep, weft_error_name(code),
               (unsigned long long)r->errors.by_code[code]);
        sep = ",";
    }
    printf("},\"weftd\":");
    report_json_string(r->weftd_note);
    printf("}\n");
}

void bench_report_print(const bench_report *r) {
    WEFT_ASSERT(r != NULL && r->cfg != NULL);
    WEFT_ASSERT(r->figures_count <= BENCH_FIGURES_MAX);
    report_table_header(r);
    report_table_body(r);
    report_table_errors(r);
    if (r->cfg->json) {
        report_json_config(r);
        report_json_results(r);
    }
    fflush(stdout);
}
