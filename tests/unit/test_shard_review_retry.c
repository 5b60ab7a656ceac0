/* test_shard_review_retry.c: the activity retry delay is stored in the timer index, so every
 * replica must compute the same integer from the same policy (G2). C does not require pow() to
 * be correctly rounded and libms differ (glibc versions, musl, other architectures), so the
 * delay must not depend on how the platform's pow rounds.
 *
 * This file stands in for such a libm: it defines pow() itself, answering one unit in the last
 * place below the exact value, as another correctly-behaving-but-not-correctly-rounded libm
 * may. The test binary's own definition wins over libm's at link time, so a retry formula that
 * calls pow() sees it; one built from IEEE-754 multiplications (correctly rounded everywhere)
 * does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four above first. */
#include <cmocka.h>
#include <math.h>

#include "shards/retry.h"

/* Exact for the small integer exponents and dyadic bases these tests use, then one ulp low. */
double pow(double x, double y) {
    if (y > 64.0) return exp(y * log(x));
    double v = 1.0;
    for (double i = 0; i < y; i += 1.0)
        v *= x;
    return v > 1.0 ? nextafter(v, 0.0) : v;
}

static uint64_t delay(uint64_t initial, double coefficient, uint32_t attempt) {
    weft_retry_policy p = {.initial_interval_ms = initial,
                           .backoff_coefficient = coefficient,
                           .maximum_interval_ms = UINT64_MAX / 2};
    weft_retry_policy_defaults(&p);
    return weft_retry_interval_ms(&p, attempt);
}

/* 1000 x 1.5^2 is exactly 2250 and 1000 x 2^3 exactly 8000, whatever libm says. */
static void test_delay_independent_of_libm(void **state) {
    (void)state;
    assert_int_equal(delay(1000, 1.5, 3), 2250);
    assert_int_equal(delay(1000, 2.0, 4), 8000);
    assert_int_equal(delay(500, 3.0, 3), 4500);
    assert_int_equal(delay(1000, 1.25, 3), 1562); /* 1562.5 */
}

/* Against integer arithmetic: 1.5^k = 3^k / 2^k is exact in binary64 for k <= 33, and so is
 * every product on the way, so the delay is floor(initial x 3^k / 2^k) exactly. */
static void test_delay_matches_integer_math(void **state) {
    (void)state;
    for (uint32_t k = 0; k <= 20; k++) {
        uint64_t three = 1, two = 1;
        for (uint32_t i = 0; i < k; i++) {
            three *= 3;
            two *= 2;
        }
        static const uint64_t initials[] = {1, 7, 8, 1000, 1024, 49152, 65536, 100000};
        for (size_t j = 0; j < sizeof initials / sizeof initials[0]; j++) {
            uint64_t initial = initials[j];
            uint64_t want = initial * three / two;
            if (want == 0) want = 1;
            uint64_t got = delay(initial, 1.5, k + 1);
            if (got != want) {
                fail_msg("initial %llu, attempt %u: got %llu, want %llu",
                         (unsigned long long)initial, k + 1, (unsigned long long)got,
                         (unsigned long long)want);
            }
        }
    }
}

/* Huge attempts and coefficients still cap cleanly, and the delay never decreases. */
static void test_delay_caps(void **state) {
    (void)state;
    weft_retry_policy p = {
        .initial_interval_ms = 3, .backoff_coefficient = 1.0000001, .maximum_interval_ms = 1000};
    weft_retry_policy_defaults(&p);
    uint64_t prev = 0;
    for (uint32_t a = 1; a < 4000000000u; a = a * 3 + 1) {
        uint64_t d = weft_retry_interval_ms(&p, a);
        assert_true(d >= prev && d <= 1000);
        prev = d;
    }
    assert_int_equal(weft_retry_interval_ms(&p, UINT32_MAX), 1000);
    weft_retry_policy q = {.initial_interval_ms = 1, .backoff_coefficient = 1e300};
    weft_retry_policy_defaults(&q);
    assert_int_equal(weft_retry_interval_ms(&q, 1), 1);
    assert_int_equal(weft_retry_interval_ms(&q, 3), 100);
    assert_int_equal(weft_retry_interval_ms(&q, UINT32_MAX), 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_independent_of_libm),
        cmocka_unit_test(test_delay_matches_integer_math),
        cmocka_unit_test(test_delay_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
