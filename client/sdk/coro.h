/* coro.h: stackful coroutines on ucontext, so workflow code can block without blocking a thread
 * (DESIGN section 11). Each coroutine owns an mmap'd stack with a guard page below it; it may be
 * resumed from any thread, one at a time. AddressSanitizer is told about every stack switch. */
#ifndef WEFT_SDK_CORO_H
#define WEFT_SDK_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <ucontext.h>

typedef struct sdk_coro {
    ucontext_t ctx;            /* the coroutine's saved registers */
    ucontext_t caller;         /* where coro_resume was called from */
    void *map;                 /* mmap'd region: guard page, then the stack */
    size_t map_bytes;          /* size of `map` */
    void (*fn)(void *arg);     /* entry point */
    void *arg;                 /* its argument */
    bool running;              /* inside coro_resume */
    bool done;                 /* fn returned */
    /* AddressSanitizer bookkeeping (unused without it) */
    void *asan_fake_stack;     /* the caller's fake stack while the coroutine runs */
    const void *caller_bottom; /* the caller's stack, restored when switching back */
    size_t caller_bytes;
} sdk_coro;

/* Prepares `co` to run fn(arg) on a fresh stack of `stack_bytes` (rounded up to pages). Nothing
 * runs until coro_resume. Returns 0, or -WEFT_E_RESOURCE_EXHAUSTED (mmap or getcontext failed). */
int sdk_coro_init(sdk_coro *co, size_t stack_bytes, void (*fn)(void *arg), void *arg);

/* Runs the coroutine until it yields or its function returns. Must not be called from inside a
 * coroutine's own stack, nor on a finished coroutine. */
void sdk_coro_resume(sdk_coro *co);

/* From inside the coroutine: suspends it and returns to the caller of coro_resume. */
void sdk_coro_yield(sdk_coro *co);

/* Releases the stack, wherever the coroutine is suspended (its frames are discarded). The
 * coroutine must not be running. Safe on a zeroed sdk_coro. */
void sdk_coro_free(sdk_coro *co);

#endif
