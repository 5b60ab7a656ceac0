/* test_weftd_start.c: weftd's flags and start-up as a user meets them, checked by what weftd
 * prints: an unknown flag is called unknown; --version names the commit; `localhost` and IPv6
 * literals work as addresses (and IPv6 is refused, by flag, where raft needs IPv4); a start
 * refused for a taken port names the flag and leaves no data dir behind, so the next try may
 * change its settings; HTTP on the client port is logged as HTTP, not as a huge frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper_cli.h"
#include "helper_weftd.h"

/* How long weftd may take to refuse a start. */
#define WS_EXIT_TIMEOUT_MS 30000u
/* How long a log line may take to reach weftd's stderr. */
#define WS_LOG_TIMEOUT_MS 10000u

/* Runs weftd with `args` (NULL-terminated) and no data dir of its own. */
static void ws_weftd(hcli_result *r, const char *const *args) {
    const char *argv[HCLI_ARGS_MAX];
    unsigned n = 0;
    argv[n++] = WEFTD_PATH;
    for (unsigned i = 0; args[i] != NULL; i++) {
        assert_true(n + 1 < HCLI_ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    hcli_run(argv, NULL, r);
}
#define WEFTD(r, ...) ws_weftd((r), (const char *const[]){__VA_ARGS__, NULL})

/* A free loopback port. */
static uint16_t ws_free_port(void) {
    char addr[WEFTD_ADDR_BYTES];
    assert_int_equal(weftd_free_addr(addr, sizeof addr), 0);
    return (uint16_t)atoi(strchr(addr, ':') + 1);
}

/* A socket listening on 127.0.0.1:port, as another program holding the port would. */
static int ws_hold_port(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

static bool ws_exists(const char *path) {
    return access(path, F_OK) == 0;
}

static void test_flag_errors_name_the_flag(void **state) {
    (void)state;
    hcli_result r;
    WEFTD(&r, "--bogus");
    hcli_expect_code(&r, 2);
    hcli_expect_in(r.err, "unknown flag --bogus");
    hcli_expect_not_in(r.err, "needs a value");
    hcli_result_free(&r);

    WEFTD(&r, "--shards", "2", "--bogus=1");
    hcli_expect_code(&r, 2);
    hcli_expect_in(r.err, "unknown flag --bogus");
    hcli_result_free(&r);

    WEFTD(&r, "--shards");
    hcli_expect_code(&r, 2);
    hcli_expect_in(r.err, "--shards needs a value");
    hcli_result_free(&r);

    WEFTD(&r, "--listen", "127.0.0.1");
    hcli_expect_code(&r, 2);
    hcli_expect_in(r.err, "--listen must be HOST:PORT");
    hcli_result_free(&r);

    WEFTD(&r, "--listen", "no-such-host.invalid:7400");
    hcli_expect_code(&r, 2);
    hcli_expect_in(r.err, "--listen");
    hcli_expect_in(r.err, "does not resolve");
    hcli_result_free(&r);

    WEFTD(&r, "--raft-listen", "[::1]:7401");
    hcli_expect_code(&r, 2);
    hcli_expect_in(r.err, "--raft-listen must be an IPv4 address");
    hcli_expect_in(r.err, "IPv6");
    hcli_result_free(&r);

    WEFTD(&r, "--version");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "weftd ");
    hcli_expect_in(r.out, "(commit ");
    hcli_result_free(&r);
}

/* Starts weftd on `listen` (raft on `raft`, NULL: a free loopback port) and asks the CLI for
 * the cluster's status through `address`. */
static void ws_serve_and_ask(const char *listen, const char *raft, const char *address,
                             const char *expect) {
    weftd w;
    static const char *const shards[] = {"--shards", "1", NULL};
    assert_int_equal(weftd_prepare(&w, listen, raft, shards), 0);
    assert_int_equal(weftd_spawn(&w), 0);
    if (weftd_wait_ready(&w, WEFTD_READY_TIMEOUT_MS) != 0) {
        weftd_print_stderr(&w, WEFTD_STDERR_TAIL_LINES);
        fail_msg("weftd --listen %s did not become ready", listen);
    }
    hcli_result r;
    const char *argv[] = {WEFT_CLI_PATH, "--address", address, "cluster", "status", NULL};
    hcli_run(argv, NULL, &r);
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, expect);
    hcli_result_free(&r);
    assert_int_equal(weftd_stop(&w), 0);
    weftd_destroy(&w);
}

static void test_localhost_is_an_address(void **state) {
    (void)state;
    char listen[WEFTD_ADDR_BYTES], raft[WEFTD_ADDR_BYTES];
    uint16_t port = ws_free_port(), raft_port = ws_free_port();
    while (raft_port == port)
        raft_port = ws_free_port();
    snprintf(listen, sizeof listen, "localhost:%u", port);
    snprintf(raft, sizeof raft, "localhost:%u", raft_port);
    char shown[WEFTD_ADDR_BYTES];
    /* Resolved once at start: the topology names the address clients dial. */
    snprintf(shown, sizeof shown, "127.0.0.1:%u", port);
    ws_serve_and_ask(listen, raft, listen, shown);
}

static bool ws_ipv6_loopback_works(void) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void test_ipv6_literal_is_an_address(void **state) {
    (void)state;
    if (!ws_ipv6_loopback_works()) {
        fprintf(stderr, "skipped: this machine has no IPv6 loopback\n");
        skip();
    }
    char listen[WEFTD_ADDR_BYTES];
    snprintf(listen, sizeof listen, "[::1]:%u", ws_free_port());
    /* No --raft-listen: raft takes 127.0.0.1 and the client port + 1 (raft is IPv4 only). */
    ws_serve_and_ask(listen, NULL, listen, listen);
}

/* A start refused for a taken port: the flag is named, and nothing is written. */
static void ws_refused_start(bool raft_taken) {
    weftd w;
    static const char *const shards[] = {"--shards", "1", NULL};
    assert_int_equal(weftd_prepare(&w, NULL, NULL, shards), 0);
    const char *taken = raft_taken ? w.raft_listen : w.listen;
    int fd = ws_hold_port((uint16_t)atoi(strchr(taken, ':') + 1));
    assert_int_equal(weftd_spawn(&w), 0);
    assert_int_equal(weftd_wait_exit(&w, WS_EXIT_TIMEOUT_MS), 1);
    if (!weftd_stderr_contains(&w, raft_taken ? "(--raft-listen)" : "(--listen)")) {
        weftd_print_stderr(&w, WEFTD_STDERR_TAIL_LINES);
        fail_msg("the refusal does not name the flag");
    }
    assert_false(weftd_stderr_contains(&w, "raft_address"));
    if (ws_exists(w.data_dir)) fail_msg("a refused start left %s behind", w.data_dir);
    /* The port is free again: the same data dir starts. */
    close(fd);
    assert_int_equal(weftd_spawn(&w), 0);
    assert_int_equal(weftd_wait_ready(&w, WEFTD_READY_TIMEOUT_MS), 0);
    assert_int_equal(weftd_stop(&w), 0);
    weftd_destroy(&w);
}

static void test_taken_raft_port_leaves_no_data_dir(void **state) {
    (void)state;
    ws_refused_start(true);
}

static void test_taken_client_port_leaves_no_data_dir(void **state) {
    (void)state;
    ws_refused_start(false);
}

/* Sends an HTTP request to the client port and reads until weftd closes the connection. */
static void ws_send_http(const char *listen) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_port = htons((uint16_t)atoi(strchr(listen, ':') + 1));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char req[] = "GET /status HTTP/1.1\r\nHost: weft\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    char buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
    close(fd);
}

static void test_http_on_the_client_port_is_named(void **state) {
    (void)state;
    weftd w;
    static const char *const shards[] = {"--shards", "1", NULL};
    assert_int_equal(weftd_start(&w, shards), 0);
    ws_send_http(w.listen);
    uint64_t deadline = weft_mono_ms() + WS_LOG_TIMEOUT_MS;
    while (!weftd_stderr_contains(&w, "not HTTP") && weft_mono_ms() < deadline) {
        weftd_sleep_ms(20);
    }
    if (!weftd_stderr_contains(&w, "this port speaks weft's binary protocol, not HTTP")) {
        weftd_print_stderr(&w, WEFTD_STDERR_TAIL_LINES);
        fail_msg("no log line names the HTTP request");
    }
    assert_false(weftd_stderr_contains(&w, "raise frame_bytes_max"));
    assert_int_equal(weftd_stop(&w), 0);
    weftd_destroy(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_errors_name_the_flag),
        cmocka_unit_test(test_localhost_is_an_address),
        cmocka_unit_test(test_ipv6_literal_is_an_address),
        cmocka_unit_test(test_taken_raft_port_leaves_no_data_dir),
        cmocka_unit_test(test_taken_client_port_leaves_no_data_dir),
        cmocka_unit_test(test_http_on_the_client_port_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
