/* helper_proc.h: child processes of integration tests, as helper_weftd (weftd) and helper_example
 * (example workers, the CLI) run them: spawn with the output appended to a log file and the
 * child dying with the test, wait with a timeout, SIGTERM with a deadline, kill -9, exit codes,
 * a log's tail, and cleanup at exit of whatever a test left running. */
#ifndef WEFT_TESTS_HELPER_PROC_H
#define WEFT_TESTS_HELPER_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Objects the exit hook cleans up, in all. */
#define PROC_CLEANUP_MAX 32u

/* One child process, started again and again (after a stop or a kill). Zero-initialise, then
 * set last_status to -1. */
typedef struct proc_child {
    pid_t pid;       /* running process, 0 when stopped */
    int starts;      /* processes started so far */
    int last_status; /* raw waitpid status of the last exit, -1 if none */
} proc_child;

/* Starts argv (NULL-terminated; argv[0] is the binary's path) with proc_exec_child, its output
 * appended to log_path after a line "==== <name> start <n> ====". Returns 0 or -1 (printed). */
int proc_child_spawn(proc_child *c, char *const *argv, const char *log_path, const char *name);

/* Waits up to timeout_ms (0: only looks) for the process to exit, and reaps it. Returns its exit
 * code (proc_exit_code of last_status; also when it had stopped before), or -1 while it runs. */
int proc_child_wait(proc_child *c, uint32_t timeout_ms);

/* True while the process runs (reaps it if it exited). */
bool proc_child_alive(proc_child *c);

/* SIGTERM, then waits up to timeout_ms. Returns the exit code, or -1 when not running or when it
 * hung: then it prints that `name` did not stop and kill -9's it. */
int proc_child_stop(proc_child *c, const char *name, uint32_t timeout_ms);

/* kill -9 and reap. No-op when not running. */
void proc_child_kill9(proc_child *c);

/* The exit code of a raw waitpid status: 0..255, 128+signal when a signal killed it, or -1
 * (status < 0: unknown). */
int proc_exit_code(int status);

/* In the child after fork: stdin from /dev/null, stdout and stderr to out_fd (when >= 0), death
 * with the parent (prctl PDEATHSIG), exec argv[0]. Only async-signal-safe calls: the test may
 * have threads (a libweft client, a worker). */
_Noreturn void proc_exec_child(char *const *argv, int out_fd);

/* Runs `argv` (argv[0] looked up in PATH) with stderr discarded, and waits for it. Returns its
 * exit status, or -1. Only fork, exec and waitpid: a signal handler may call it (the iptables
 * rules a test must not leave behind). */
int proc_run_quiet(char *const *argv);

/* Calls cleanup(obj) at exit, also after a failed cmocka assertion, unless obj was unregistered
 * first; the last registered is cleaned up first. Registering obj again changes nothing. */
void proc_cleanup_register(void *obj, void (*cleanup)(void *obj));
void proc_cleanup_unregister(void *obj);

/* Prints the last `lines` lines of the file at `path` to stderr, between two marker lines. */
void proc_print_tail(const char *path, unsigned lines);

/* Milliseconds sleep (resumed after a signal). */
void proc_sleep_ms(uint32_t ms);

#endif
