/* log.h: one line per event on stderr: timestamp, level, shard, message (issue 2). */
#ifndef WEFT_PROTO_LOG_H
#define WEFT_PROTO_LOG_H

#include <stdint.h>

typedef enum weft_log_level {
    WEFT_LOG_TRACE,
    WEFT_LOG_DEBUG,
    WEFT_LOG_INFO,
    WEFT_LOG_WARN,
    WEFT_LOG_ERROR,
} weft_log_level;

/* Shard value that means "not about one shard" (printed as "-"). */
#define WEFT_LOG_NO_SHARD UINT32_MAX

/* Sets the lowest level printed (default INFO). Thread-safe to call before threads start. */
void weft_log_set_level(weft_log_level level);
weft_log_level weft_log_get_level(void);
/* Parses "trace|debug|info|warn|error"; returns -1 if unknown. */
int weft_log_level_parse(const char *name);

/* Writes "2026-11-21T20:00:00.123Z INFO shard=3 message\n" to stderr in one write(2), so lines
 * from several threads never interleave. Messages longer than WEFT_LOG_LINE_BYTES_MAX are
 * truncated. */
#define WEFT_LOG_LINE_BYTES_MAX 2048u
void weft_log(weft_log_level level, uint32_t shard, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define WEFT_LOGF(level, shard, ...)                                       \
    do {                                                                   \
        if ((level) >= weft_log_get_level()) weft_log(level, shard, __VA_ARGS__); \
    } while (0)

#endif
