/* fuzz_workflow.h: the workflow code the seed generator runs to build real histories, and that
 * fuzz_client replays against fuzzed ones. It touches every kind of history the SDK matches:
 * a version marker, a side effect, activities (one awaited, one raced against a timer), a
 * signal wait with a timeout, a durable sleep, cancellation, and a close. */
#ifndef WEFT_FUZZ_WORKFLOW_H
#define WEFT_FUZZ_WORKFLOW_H

#include "weft/worker.h"

/* The type name it is registered under, and the task queue the seeds use. */
#define FUZZ_WORKFLOW_TYPE "fuzz-order"
#define FUZZ_TASK_QUEUE "fuzz-queue"
/* The signal it waits for. */
#define FUZZ_SIGNAL_NAME "approve"

int fuzz_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg);

#endif
