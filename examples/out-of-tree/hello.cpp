// hello.cpp: hello.c in C++ (the same workflow, activity and check), to show that libweft's
// headers and libraries serve C++ programs as they are: extern "C" declarations, plain structs,
// and function pointers that captureless lambdas convert to.
//
// Usage: hello-cxx [ADDRESS [NAME]]   (defaults: 127.0.0.1:7400 and "world").
// Exits 0 when the workflow completed with the expected greeting, 1 otherwise.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include <weft/json.h>
#include <weft/worker.h>

namespace {

// How long the program waits for the workflow to close before it gives up.
constexpr uint64_t kResultTimeoutMs = 60 * 1000;
// One activity attempt's limit; the greeting is instantaneous.
constexpr uint64_t kActivityTimeoutMs = 10 * 1000;

// Owns a weft_response holder: the response structs borrow from it until it is destroyed.
class Response {
  public:
    Response() = default;
    Response(const Response &) = delete;
    Response &operator=(const Response &) = delete;
    ~Response() { weft_response_free(&holder_); }
    weft_response *get() { return &holder_; }

  private:
    weft_response holder_{};
};

std::string str(weft_bytes b) { return std::string(reinterpret_cast<const char *>(b.ptr), b.len); }

int greet_activity(weft_act *act, weft_bytes input, weft_bytes *out, void *) {
    weft_err err;
    json_t *name = weft_json_parse(input, "input", &err);
    if (name == nullptr || !json_is_string(name)) {
        json_decref(name);
        return weft_act_fail(act, "BadInput", "the input must be a JSON string", true);
    }
    std::string text = std::string("Hello, ") + json_string_value(name) + "!";
    json_decref(name);
    json_t *result = json_pack("{s:s}", "greeting", text.c_str());
    *out = weft_act_json(act, result);
    json_decref(result);
    return 0;
}

int greet_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *) {
    weft_activity_opts opts{};
    opts.start_to_close_timeout_ms = kActivityTimeoutMs;
    weft_bytes result{};
    if (weft_wf_activity(wf, "greet", input, &opts, &result) != 0) {
        return weft_wf_fail(wf, "GreetFailed", weft_wf_last_failure(wf)->message);
    }
    *out = result;
    return WEFT_WF_RESULT_COMPLETE;
}

int run_greeting(weft_client *client, const std::string &queue, const std::string &name,
                 weft_err *err) {
    const std::string workflow_id = "hello-cxx-" + std::to_string(getpid());
    const std::string input = "\"" + name + "\"";
    const std::string want = "{\"greeting\":\"Hello, " + name + "!\"}";

    weft_start_req start{};
    start.workflow_id = weft_str_c(workflow_id.c_str());
    start.workflow_type = weft_str_c("greet");
    start.task_queue = weft_str_c(queue.c_str());
    start.input = weft_bytes_c(input.c_str());
    weft_start_resp started{};
    Response holder;
    int rc = weft_client_start(client, &start, &started, holder.get(), err);
    if (rc != 0) return rc;

    weft_result_req req{};
    req.workflow_id = weft_str_c(workflow_id.c_str());
    req.wait = true;
    req.wait_timeout_ms = kResultTimeoutMs;
    req.follow_runs = true;
    weft_result_resp res{};
    rc = weft_client_result(client, &req, &res, holder.get(), err);
    if (rc != 0) return rc;
    if (res.status != WEFT_STATUS_COMPLETED) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "status",
                            "workflow %s ended %s, not completed", workflow_id.c_str(),
                            weft_status_names[res.status]);
    }
    if (str(res.result) != want) {
        return weft_err_set(err, WEFT_E_INTERNAL, "result", "workflow %s returned %s, want %s",
                            workflow_id.c_str(), str(res.result).c_str(), want.c_str());
    }
    std::printf("%s: %s\n", workflow_id.c_str(), str(res.result).c_str());
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    const std::string address = argc > 1 ? argv[1] : "127.0.0.1:7400";
    const std::string name = argc > 2 ? argv[2] : "world";
    const std::string queue = "hello-cxx-" + std::to_string(getpid());

    weft_err err{};
    weft_client *client = nullptr;
    weft_worker *worker = nullptr;
    std::thread thread;
    int rc = weft_client_open(address.c_str(), nullptr, &client, &err);
    if (rc == 0) {
        weft_worker_opts opts{};
        opts.task_queue = queue.c_str();
        opts.poll_timeout_ms = 1000;  // so that the stop below drains within a second
        rc = weft_worker_new(client, &opts, &worker, &err);
    }
    if (rc == 0) rc = weft_worker_register_workflow(worker, "greet", greet_workflow, nullptr, &err);
    if (rc == 0) rc = weft_worker_register_activity(worker, "greet", greet_activity, nullptr, &err);
    if (rc == 0) {
        thread = std::thread([worker] {
            weft_err werr{};
            if (weft_worker_run(worker, &werr) != 0) {
                std::fprintf(stderr, "hello: worker: %s\n", werr.message);
            }
        });
        rc = run_greeting(client, queue, name, &err);
        weft_worker_stop(worker);
        thread.join();
    }
    if (rc != 0) std::fprintf(stderr, "hello: %s: %s\n", weft_error_name(rc), err.message);
    weft_worker_free(worker);
    weft_client_close(client);
    return rc == 0 ? 0 : 1;
}
