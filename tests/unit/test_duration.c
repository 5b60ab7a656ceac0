/* test_duration.c: weft_duration_parse and weft_duration_format: every unit, the refusals with
 * the message a user sees (naming the flag and quoting the text), overflow, and round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "weft/client.h"

static uint64_t parse_ok(const char *text) {
    uint64_t ms = 0;
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_duration_parse(text, "--timeout", &ms, &err);
    if (rc != 0) fail_msg("'%s' refused: %s", text, err.message);
    return ms;
}

/* Asserts a refusal whose message names the flag and quotes the text. */
static void parse_refused(const char *text) {
    uint64_t ms = 12345;
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_duration_parse(text, "--run-timeout", &ms, &err);
    if (rc != -WEFT_E_INVALID_ARGUMENT)
        fail_msg("'%s' accepted as %llu ms", text, (unsigned long long)ms);
    assert_int_equal(err.code, WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "--run-timeout");
    assert_non_null(strstr(err.message, "--run-timeout"));
    assert_non_null(strstr(err.message, "30s"));
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%.20s", text);
    assert_non_null(strstr(err.message, quoted));
    assert_int_equal(ms, 12345); /* untouched on failure */
}

static void test_every_unit(void **state) {
    (void)state;
    assert_int_equal(parse_ok("250ms"), 250);
    assert_int_equal(parse_ok("1ms"), 1);
    assert_int_equal(parse_ok("30s"), 30000);
    assert_int_equal(parse_ok("5m"), 300000);
    assert_int_equal(parse_ok("48h"), 48ull * 3600 * 1000);
    assert_int_equal(parse_ok("7d"), 7ull * 86400 * 1000);
    assert_int_equal(parse_ok("007s"), 7000);
    assert_int_equal(parse_ok("18446744073709551615ms"), UINT64_MAX);
}

static void test_refusals(void **state) {
    (void)state;
    const char *bad[] = {"",
                         "30",
                         "0s",
                         "0ms",
                         "s",
                         "-5s",
                         "+5s",
                         "5x",
                         "5 s",
                         " 5s",
                         "5s ",
                         "5S",
                         "5MS",
                         "1.5h",
                         "5sec",
                         "5mss",
                         "ms",
                         "5m5s",
                         "1e3s",
                         "5\n",
                         "d7",
                         "0x10s",
                         "99999999999999999999ms"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_refused(bad[i]);
}

static void test_overflow(void **state) {
    (void)state;
    /* Fits as a number, overflows once multiplied by the unit. */
    parse_refused("18446744073709551615s");
    parse_refused("213503982334601d");
    assert_int_equal(parse_ok("213503982334d"), 213503982334ull * 86400000ull);
}

static void test_null_field_and_args(void **state) {
    (void)state;
    uint64_t ms = 0;
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_duration_parse("30", NULL, &ms, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "");
    assert_non_null(strstr(err.message, "'30' is not a valid duration"));
    assert_int_equal(weft_duration_parse(NULL, "x", &ms, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_duration_parse("5s", "x", NULL, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_duration_parse("5s", NULL, &ms, NULL), 0); /* err may be NULL */
    assert_int_equal(ms, 5000);
}

static void test_long_text_is_quoted_short(void **state) {
    (void)state;
    char text[600];
    memset(text, '9', sizeof text - 2);
    text[sizeof text - 2] = 'q';
    text[sizeof text - 1] = '\0';
    uint64_t ms = 0;
    weft_err err;
    assert_int_equal(weft_duration_parse(text, "--timeout", &ms, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_true(strlen(err.message) < 300);
}

static void test_format(void **state) {
    (void)state;
    char buf[32];
    assert_string_equal(weft_duration_format(0, buf, sizeof buf), "0ms");
    assert_string_equal(weft_duration_format(250, buf, sizeof buf), "250ms");
    assert_string_equal(weft_duration_format(1001, buf, sizeof buf), "1001ms");
    assert_string_equal(weft_duration_format(2000, buf, sizeof buf), "2s");
    assert_string_equal(weft_duration_format(90000, buf, sizeof buf), "90s");
    assert_string_equal(weft_duration_format(5400000, buf, sizeof buf), "90m");
    assert_string_equal(weft_duration_format(3600000, buf, sizeof buf), "1h");
    assert_string_equal(weft_duration_format(86400000, buf, sizeof buf), "1d");
    assert_string_equal(weft_duration_format(7 * 86400000ull, buf, sizeof buf), "7d");
    assert_string_equal(weft_duration_format(36 * 3600000ull, buf, sizeof buf), "36h");
    assert_string_equal(weft_duration_format(UINT64_MAX, buf, sizeof buf),
                        "18446744073709551615ms");
    /* Truncated, still terminated. */
    char small[3];
    assert_ptr_equal(weft_duration_format(250, small, sizeof small), small);
    assert_string_equal(small, "25");
}

static void test_round_trip(void **state) {
    (void)state;
    const uint64_t values[] = {1,       999,      1000,     59000,     60000,     61000,
                               3600000, 86400000, 90061001, 172800000, 604800000, 123456789012ull};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char buf[32];
        weft_duration_format(values[i], buf, sizeof buf);
        assert_int_equal(parse_ok(buf), values[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_unit),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_null_field_and_args),
        cmocka_unit_test(test_long_text_is_quoted_short),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
