/* host.c: CPU accounting for a run: the bench's own time, the spawned weftd's, and everyone
 * else's, so that a figure measured on a shared machine says how noisy it was. */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

/* Non-idle jiffies of every core since boot: user, nice, system, irq, softirq and steal from
 * the first line of /proc/stat (idle and iowait are not busy). Returns seconds, 0 on error. */
static double host_busy_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) return 0.0;
    unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                       steal = 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
                   &iowait, &irq, &softirq, &steal);
    fclose(f);
    if (n < 4) return 0.0;
    return (double)(user + nice + sys + irq + softirq + steal) / (double)sysconf(_SC_CLK_TCK);
}

static double host_self_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

bench_cpu_sample bench_cpu_take(pid_t weftd_pid) {
    bench_cpu_sample s = {
        .host_busy_s = host_busy_s(),
        .self_s = host_self_s(),
        .weftd_s = weftd_pid > 0 ? bench_proc_cpu_s(weftd_pid) : 0.0,
    };
    if (s.weftd_s < 0.0) s.weftd_s = 0.0;
    WEFT_ASSERT(s.self_s >= 0.0 && s.host_busy_s >= 0.0);
    return s;
}

void bench_cpu_report(const bench_cpu_sample *before, const bench_cpu_sample *after, bool spawned,
                      bench_report *r) {
    WEFT_ASSERT(before != NULL && after != NULL && r != NULL);
    double self_s = after->self_s - before->self_s;
    double weftd_s = after->weftd_s - before->weftd_s;
    double busy_s = after->host_busy_s - before->host_busy_s;
    /* Jiffies and rusage round differently: a slightly negative "other" is noise, not load. */
    double other_s = WEFT_MAX(0.0, busy_s - self_s - weftd_s);
    WEFT_ASSERT(self_s >= 0.0);
    bench_report_figure(r, "bench_cpu_s", self_s, "s (this process, user + system)");
    if (spawned) bench_report_figure(r, "weftd_cpu_s", weftd_s, "s (spawned weftd)");
    bench_report_figure(r, "other_cpu_s", other_s,
                        spawned ? "s (every other process: noise on a shared host)"
                                : "s (every other process, weftd included)");
}
