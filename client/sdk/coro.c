/* coro.c: ucontext coroutines with guarded stacks and AddressSanitizer fiber annotations. */
#include "coro.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/base.h"
#include "proto/errors.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CORO_ASAN 1
#else
#define CORO_ASAN 0
#endif

static size_t coro_page_bytes(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096u;
}

/* Switching stacks: tell ASan before (start) and after (finish) every swapcontext. */
static void coro_switch_start(void **fake_save, const void *bottom, size_t bytes) {
#if CORO_ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, bytes);
#else
    (void)fake_save, (void)bottom, (void)bytes;
#endif
}

static void coro_switch_finish(void *fake_save, const void **bottom_old, size_t *bytes_old) {
#if CORO_ASAN
    __sanitizer_finish_switch_fiber(fake_save, bottom_old, bytes_old);
#else
    (void)fake_save, (void)bottom_old, (void)bytes_old;
#endif
}

/* makecontext passes ints: the pointer travels as two halves. */
static void coro_entry(unsigned hi, unsigned lo) {
    sdk_coro *co = (sdk_coro *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
    coro_switch_finish(NULL, &co->caller_bottom, &co->caller_bytes);
    co->fn(co->arg);
    co->done = true;
    /* NULL: this stack is finished, ASan may forget its fake frames. */
    coro_switch_start(NULL, co->caller_bottom, co->caller_bytes);
    setcontext(&co->caller);
    WEFT_ASSERT(false && "setcontext returned");
}

int sdk_coro_init(sdk_coro *co, size_t stack_bytes, void (*fn)(void *arg), void *arg) {
    WEFT_ASSERT(co != NULL && fn != NULL && stack_bytes > 0);
    memset(co, 0, sizeof *co);
    size_t page = coro_page_bytes();
    size_t stack = (stack_bytes + page - 1) / page * page;
    size_t total = stack + page; /* one guard page below the stack */
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                     -1, 0);
    if (map == MAP_FAILED) return -WEFT_E_RESOURCE_EXHAUSTED;
    if (mprotect(map, page, PROT_NONE) != 0 || getcontext(&co->ctx) != 0) {
        munmap(map, total);
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    co->map = map;
    co->map_bytes = total;
    co->fn = fn;
    co->arg = arg;
    co->ctx.uc_stack.ss_sp = (char *)map + page;
    co->ctx.uc_stack.ss_size = stack;
    co->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)co;
    makecontext(&co->ctx, (void (*)(void))coro_entry, 2, (unsigned)(p >> 32),
                (unsigned)(p & 0xffffffffu));
    return 0;
}

void sdk_coro_resume(sdk_coro *co) {
    WEFT_ASSERT(co->map != NULL && !co->running && !co->done);
    co->running = true;
    coro_switch_start(&co->asan_fake_stack, co->ctx.uc_stack.ss_sp, co->ctx.uc_stack.ss_size);
    int rc = swapcontext(&co->caller, &co->ctx);
    WEFT_ASSERT(rc == 0);
    coro_switch_finish(co->asan_fake_stack, NULL, NULL);
    co->running = false;
}

void sdk_coro_yield(sdk_coro *co) {
    WEFT_ASSERT(co->running && !co->done);
    void *fake = NULL;
    coro_switch_start(&fake, co->caller_bottom, co->caller_bytes);
    int rc = swapcontext(&co->ctx, &co->caller);
    WEFT_ASSERT(rc == 0);
    /* Resumed, perhaps by another thread: remember that thread's stack for the next switch. */
    coro_switch_finish(fake, &co->caller_bottom, &co->caller_bytes);
}

void sdk_coro_free(sdk_coro *co) {
    if (co == NULL || co->map == NULL) return;
    WEFT_ASSERT(!co->running);
#if CORO_ASAN
    /* Frames left on a discarded stack keep their redzones poisoned; a later mapping at the same
     * address would inherit them. */
    ASAN_UNPOISON_MEMORY_REGION(co->map, co->map_bytes);
#endif
    munmap(co->map, co->map_bytes);
    co->map = NULL;
}
