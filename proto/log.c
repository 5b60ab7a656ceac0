/* log.c: the stderr line logger. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile weft_log_level log_level = WEFT_LOG_INFO;

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};

void weft_log_set_level(weft_log_level level) { log_level = level; }

weft_log_level weft_log_get_level(void) { return log_level; }

int weft_log_level_parse(const char *name) {
    static const char *const lower[] = {"trace", "debug", "info", "warn", "error"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(name, lower[i]) == 0) return i;
    }
    return -1;
}

void weft_log(weft_log_level level, uint32_t shard, const char *fmt, ...) {
    if (level < log_level) return;
    char line[WEFT_LOG_LINE_BYTES_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char shard_text[16];
    if (shard == WEFT_LOG_NO_SHARD) {
        snprintf(shard_text, sizeof shard_text, "-");
    } else {
        snprintf(shard_text, sizeof shard_text, "%u", shard);
    }
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s shard=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level], shard_text);
    if (n < 0) return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    va_end(ap);
    if (m > 0) used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    /* Newlines inside a message would break "one line per event". */
    for (size_t i = 0; i < used; i++) {
        if (line[i] == '\n') line[i] = ' ';
    }
    if (used >= sizeof line - 1) used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
