/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the rate limiter: Firecracker's token-bucket semantics on a clock the test
 * controls (rate_limiter_take), then the loop timer that wakes a refused device
 * (rate_limiter_consume) on the real clock, with one-sided timing checks only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kiln/loop.h"
#include "kiln/rate_limiter.h"

#define MS 1000000ull /* nanoseconds */
#define T0 (1000 * MS) /* the tests' clock starts here */

static struct rate_limiter make(uint64_t bw_size, uint64_t bw_burst, uint64_t bw_ms,
				uint64_t ops_size, uint64_t ops_burst, uint64_t ops_ms)
{
	struct rate_limit l = { .bandwidth = { bw_size, bw_burst, bw_ms },
				.ops = { ops_size, ops_burst, ops_ms } };
	struct rate_limiter rl;

	rate_limiter_init(&rl, &l, NULL, NULL, NULL, NULL);
	/* The buckets were stamped with the real clock: move them to the test's. */
	rl.bytes.last_ns = rl.ops.last_ns = T0;
	return rl;
}

static bool take(struct rate_limiter *rl, uint64_t bytes, uint64_t ops, uint64_t at,
		 uint64_t *wait)
{
	bool ok = rate_limiter_take(rl, bytes, ops, at, wait);

	rl->blocked = false; /* as if the timer had fired: every call is judged on the buckets */
	return ok;
}

/* No bucket, or size or refill time 0: no limit at all. */
static void test_disabled(void **state)
{
	struct rate_limiter rl = make(0, 0, 1000, 100, 0, 0);
	uint64_t wait;

	assert_false(rate_limit_enabled(&(struct rate_limit){ .bandwidth = { 0, 5, 1000 },
							       .ops = { 100, 0, 0 } }));
	for (int i = 0; i < 1000; i++)
		assert_true(take(&rl, UINT64_MAX, 1000000, T0, &wait));
	assert_int_equal(rl.throttled, 0);
}

/* Full at the start; refilled linearly: 1000 bytes per 100 ms is one byte per 100 µs. */
static void test_refill(void **state)
{
	struct rate_limiter rl = make(1000, 0, 100, 0, 0, 0);
	uint64_t wait;

	assert_true(take(&rl, 1000, 1, T0, &wait));
	assert_false(take(&rl, 1, 1, T0, &wait));
	assert_int_equal(wait, 100000);           /* one byte's time */
	assert_int_equal(rl.throttled, 1);
	assert_false(take(&rl, 500, 1, T0 + 10 * MS, &wait)); /* 100 bytes back */
	assert_int_equal(wait, 40 * MS);
	assert_true(take(&rl, 500, 1, T0 + 50 * MS, &wait));
	assert_false(take(&rl, 1, 1, T0 + 50 * MS, &wait));
	/* Never above the size, however long the bucket waited. */
	assert_true(take(&rl, 1000, 1, T0 + 3600000 * MS, &wait));
	assert_false(take(&rl, 1, 1, T0 + 3600000 * MS, &wait));
}

/* Many small refills earn what one large one would: fractions of a token are not lost. */
static void test_no_rounding_loss(void **state)
{
	struct rate_limiter rl = make(3, 0, 1, 0, 0, 0); /* 3 tokens per ms */
	uint64_t wait, got = 0;

	assert_true(take(&rl, 3, 0, T0, &wait));
	for (uint64_t t = T0; t <= T0 + 10 * MS; t += 77777) /* odd steps */
		while (take(&rl, 1, 0, t, &wait))
			got++;
	assert_in_range(got, 29, 30); /* 10 ms: 30 tokens, the last one maybe not yet whole */
}

/* The one-time burst is spent first and never comes back. */
static void test_one_time_burst(void **state)
{
	struct rate_limiter rl = make(100, 50, 1000, 0, 0, 0);
	uint64_t wait;

	assert_true(take(&rl, 40, 0, T0, &wait));  /* burst 10 left, bucket full */
	assert_int_equal(rl.bytes.burst, 10);
	assert_int_equal(rl.bytes.budget, 100);
	assert_true(take(&rl, 110, 0, T0, &wait)); /* the burst's 10, then the bucket's 100 */
	assert_int_equal(rl.bytes.burst, 0);
	assert_int_equal(rl.bytes.budget, 0);
	assert_false(take(&rl, 1, 0, T0, &wait));
	assert_true(take(&rl, 100, 0, T0 + 1000 * MS, &wait));
	assert_int_equal(rl.bytes.burst, 0);
}

/* A request bigger than the whole bucket goes when the bucket is full, and the debt is paid
 * back at the configured rate before anything else goes. */
static void test_oversized_request(void **state)
{
	struct rate_limiter rl = make(100, 0, 100, 0, 0, 0); /* 1 byte per ms */
	uint64_t wait;

	assert_false(take(&rl, 1, 0, T0, &wait) && take(&rl, 250, 0, T0, &wait)); /* not full */
	assert_true(take(&rl, 250, 0, T0 + 100 * MS, &wait));
	assert_false(take(&rl, 1, 0, T0 + 100 * MS, &wait));
	assert_int_equal(wait, 151 * MS); /* 150 bytes of debt, then 1 */
	assert_false(take(&rl, 1, 0, T0 + 250 * MS, &wait));
	assert_true(take(&rl, 1, 0, T0 + 251 * MS, &wait));
}

/* A lone bucket that drops (the serial console): it pays only what it holds now, never goes
 * into debt, and a request larger than the bucket never fits. */
static void test_drop_bucket(void **state)
{
	struct token_bucket b, off;

	token_bucket_init(&b, &(struct token_bucket_config){ 100, 20, 100 }, T0); /* 1 byte/ms */
	token_bucket_init(&off, &(struct token_bucket_config){ 0, 0, 100 }, T0);
	assert_true(token_bucket_try(&off, UINT64_MAX, T0));
	assert_false(token_bucket_try(&b, 121, T0));  /* more than burst + bucket */
	assert_true(token_bucket_try(&b, 120, T0));   /* the burst's 20, then the bucket's 100 */
	assert_false(token_bucket_try(&b, 1, T0));
	assert_int_equal(b.budget, 0);
	assert_false(token_bucket_try(&b, 10, T0 + 9 * MS));
	assert_true(token_bucket_try(&b, 10, T0 + 10 * MS));
	assert_false(token_bucket_try(&b, 101, T0 + 3600000 * MS)); /* oversized: never */
	assert_true(token_bucket_try(&b, 100, T0 + 3600000 * MS));
}

/* Bytes and operations: both are paid or neither; the wait is the longer one. */
static void test_both_buckets(void **state)
{
	struct rate_limiter rl = make(100, 0, 100, 2, 0, 1000);
	uint64_t wait;

	assert_true(take(&rl, 10, 1, T0, &wait));
	assert_true(take(&rl, 10, 1, T0, &wait));
	assert_false(take(&rl, 10, 1, T0, &wait)); /* no operation left: no bytes taken */
	assert_int_equal(wait, 500 * MS);
	assert_int_equal(rl.bytes.budget, 80);
	assert_false(take(&rl, 90, 0, T0, &wait)); /* the bytes alone: 10 ms short */
	assert_int_equal(wait, 10 * MS);
	assert_true(take(&rl, 80, 0, T0, &wait));
}

/* While blocked every request is refused at once, without looking at the buckets. */
static void test_blocked(void **state)
{
	struct rate_limiter rl = make(0, 0, 0, 1, 0, 1000);
	uint64_t wait;

	assert_true(rate_limiter_take(&rl, 0, 1, T0, &wait));
	assert_false(rate_limiter_take(&rl, 0, 1, T0, &wait));
	assert_true(rl.blocked);
	assert_false(rate_limiter_take(&rl, 0, 0, T0 + 5000 * MS, &wait));
	assert_int_equal(wait, 0);
	assert_int_equal(rl.throttled, 1);
}

/* A refund puts tokens back, never above the size. */
static void test_refund(void **state)
{
	struct rate_limiter rl = make(100, 0, 1000, 0, 0, 0);
	uint64_t wait;

	assert_true(take(&rl, 100, 0, T0, &wait));
	rate_limiter_refund(&rl, 60, 1);
	assert_int_equal(rl.bytes.budget, 60);
	rate_limiter_refund(&rl, 600, 1);
	assert_int_equal(rl.bytes.budget, 100);
}

static void unblocked(void *opaque)
{
	(*(int *)opaque)++;
}

/* On the loop: a refused request arms the timer; the device is called when it may retry, not
 * before; an update unblocks at once with full buckets. */
static void test_timer(void **state)
{
	struct rate_limit l = { .ops = { 1, 0, 30 } }; /* one operation per 30 ms */
	struct rate_limiter rl;
	struct loop *loop;
	uint64_t start;
	int calls = 0;

	assert_int_equal(loop_new(&loop), 0);
	rate_limiter_init(&rl, &l, loop, &rl, unblocked, &calls);
	assert_true(rate_limiter_consume(&rl, 0, 1));
	start = loop_now_ns();
	assert_false(rate_limiter_consume(&rl, 0, 1));
	assert_false(rate_limiter_consume(&rl, 0, 1));
	while (!calls)
		assert_true(loop_wait(loop, 2000) >= 0);
	assert_true(loop_now_ns() - start >= 29 * MS);
	assert_false(rl.blocked);
	assert_true(rate_limiter_consume(&rl, 0, 1));

	assert_false(rate_limiter_consume(&rl, 0, 1));
	l.ops.size = 5;
	rate_limiter_update(&rl, &l, RATE_LIMIT_OPS);
	assert_true(loop_wait(loop, 2000) >= 1);
	assert_int_equal(calls, 2);
	for (int i = 0; i < 5; i++)
		assert_true(rate_limiter_consume(&rl, 0, 1));
	assert_false(rate_limiter_consume(&rl, 0, 1));
	rate_limiter_cancel(&rl);
	assert_int_equal(rl.throttled, 3);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_no_rounding_loss),
		cmocka_unit_test(test_one_time_burst),
		cmocka_unit_test(test_oversized_request),
		cmocka_unit_test(test_drop_bucket),
		cmocka_unit_test(test_both_buckets),
		cmocka_unit_test(test_blocked),
		cmocka_unit_test(test_refund),
		cmocka_unit_test(test_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
