/* hello.c: the smallest complete libweft program, built outside the weft tree (README.md,
 * docs/sdk.md "Use libweft in your project"). It runs a worker on a thread, starts one
 * "greet" workflow, waits for its result and checks it:
 *
 *   workflow greet(name)  ->  activity greet(name)  ->  {"greeting": "Hello, <name>!"}
 *
 * Usage: hello-c [ADDRESS [NAME]]   (defaults: 127.0.0.1:7400 and "world").
 * Exits 0 when the workflow completed with the expected greeting, 1 otherwise. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <weft/json.h>
#include <weft/worker.h>

/* How long the program waits for the workflow to close before it gives up. */
#define HELLO_RESULT_TIMEOUT_MS (60u * 1000u)
/* One activity attempt's limit; the greeting is instantaneous. */
#define HELLO_ACTIVITY_TIMEOUT_MS (10u * 1000u)

/* The activity: {"greeting": "Hello, NAME!"} from the name in the input. */
static int greet_activity(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    weft_err err;
    json_t *name = weft_json_parse(input, "input", &err);
    if (name == NULL || !json_is_string(name)) {
        json_decref(name);
        return weft_act_fail(act, "BadInput", "the input must be a JSON string", true);
    }
    char text[256];
    snprintf(text, sizeof text, "Hello, %s!", json_string_value(name));
    json_decref(name);
    json_t *result = json_pack("{s:s}", "greeting", text);
    *out = weft_act_json(act, result);
    json_decref(result);
    return 0;
}

/* The workflow: calls the activity once and completes with its result. */
static int greet_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    weft_activity_opts opts = {0};
    opts.start_to_close_timeout_ms = HELLO_ACTIVITY_TIMEOUT_MS;
    weft_bytes result;
    int rc = weft_wf_activity(wf, "greet", input, &opts, &result);
    if (rc != 0) return weft_wf_fail(wf, "GreetFailed", weft_wf_last_failure(wf)->message);
    *out = result;
    return WEFT_WF_RESULT_COMPLETE;
}

static void *worker_thread(void *arg) {
    weft_err err;
    if (weft_worker_run((weft_worker *)arg, &err) != 0) {
        fprintf(stderr, "hello: worker: %s\n", err.message);
    }
    return NULL;
}

/* Starts the workflow and waits for its result; compares it with the expected greeting. */
static int run_greeting(weft_client *client, const char *queue, const char *name, weft_err *err) {
    char workflow_id[64], input[300], want[300];
    snprintf(workflow_id, sizeof workflow_id, "hello-c-%ld", (long)getpid());
    snprintf(input, sizeof input, "\"%s\"", name);
    snprintf(want, sizeof want, "{\"greeting\":\"Hello, %s!\"}", name);

    weft_start_req start = {0};
    start.workflow_id = weft_str_c(workflow_id);
    start.workflow_type = weft_str_c("greet");
    start.task_queue = weft_str_c(queue);
    start.input = weft_bytes_c(input);
    weft_start_resp started;
    weft_response holder = {0};
    int rc = weft_client_start(client, &start, &started, &holder, err);
    if (rc != 0) return rc;

    weft_result_req req = {0};
    req.workflow_id = weft_str_c(workflow_id);
    req.wait = true;
    req.wait_timeout_ms = HELLO_RESULT_TIMEOUT_MS;
    req.follow_runs = true;
    weft_result_resp res;
    rc = weft_client_result(client, &req, &res, &holder, err);
    if (rc == 0 && res.status != WEFT_STATUS_COMPLETED) {
        rc = weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "status",
                          "workflow %s ended %s, not completed", workflow_id,
                          weft_status_names[res.status]);
    }
    if (rc == 0 && (res.result.len != strlen(want) ||
                    memcmp(res.result.ptr, want, res.result.len) != 0)) {
        rc = weft_err_set(err, WEFT_E_INTERNAL, "result", "workflow %s returned %.*s, want %s",
                          workflow_id, (int)res.result.len, (const char *)res.result.ptr, want);
    }
    if (rc == 0) printf("%s: %.*s\n", workflow_id, (int)res.result.len, (const char *)res.result.ptr);
    weft_response_free(&holder);
    return rc;
}

int main(int argc, char **argv) {
    const char *address = argc > 1 ? argv[1] : "127.0.0.1:7400";
    const char *name = argc > 2 ? argv[2] : "world";
    char queue[64];
    snprintf(queue, sizeof queue, "hello-c-%ld", (long)getpid());

    weft_err err = {0};
    weft_client *client = NULL;
    weft_worker *worker = NULL;
    pthread_t thread;
    bool running = false;
    int rc = weft_client_open(address, NULL, &client, &err);
    if (rc == 0) {
        weft_worker_opts opts = {0};
        opts.task_queue = queue;
        opts.poll_timeout_ms = 1000; /* so that the stop below drains within a second */
        rc = weft_worker_new(client, &opts, &worker, &err);
    }
    if (rc == 0) rc = weft_worker_register_workflow(worker, "greet", greet_workflow, NULL, &err);
    if (rc == 0) rc = weft_worker_register_activity(worker, "greet", greet_activity, NULL, &err);
    if (rc == 0) {
        running = pthread_create(&thread, NULL, worker_thread, worker) == 0;
        if (!running) rc = weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, "", "no worker thread");
    }
    if (rc == 0) rc = run_greeting(client, queue, name, &err);
    if (running) {
        weft_worker_stop(worker);
        pthread_join(thread, NULL);
    }
    if (rc != 0) fprintf(stderr, "hello: %s: %s\n", weft_error_name(rc), err.message);
    weft_worker_free(worker);
    weft_client_close(client);
    return rc == 0 ? 0 : 1;
}
