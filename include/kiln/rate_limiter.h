/* SPDX-License-Identifier: Apache-2.0 */
/* rate_limiter — token buckets that limit what a guest's device may ask of the host per unit of
 * time: bytes and operations, with Firecracker's semantics (its RateLimiter: a bucket of `size`
 * tokens, full at the start, refilled linearly from empty to full in `refill_time` ms, plus a
 * `one_time_burst` of tokens spent first and never refilled).
 *
 * Owns: struct rate_limiter, its two buckets and the one loop timer that wakes its user when
 * the buckets can pay again. Differences from Firecracker, on purpose: an operation that one
 * bucket refuses takes nothing from the other (Firecracker takes the bytes back by hand); the
 * timer is armed for the moment enough tokens are back (Firecracker polls every 100 ms); a
 * request larger than a whole bucket goes through when the bucket is full, leaving the bucket in
 * debt that the refill pays back first (Firecracker's "over-consumption", same rate).
 *
 * Threads: a limiter belongs to its device and is used on kiln's event loop thread only (the
 * device's queues, the backend's receive path, the API's PATCH), as its timer is.
 */
#ifndef KILN_RATE_LIMITER_H
#define KILN_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/loop.h"

/* One bucket's configuration (Firecracker's TokenBucket object). size or refill_ms 0: no limit. */
struct token_bucket_config {
	uint64_t size;           /* tokens (bytes or operations) the bucket holds */
	uint64_t one_time_burst; /* extra tokens at the start, spent first, never refilled */
	uint64_t refill_ms;      /* milliseconds to refill from empty to full */
};

/* A limiter's configuration (Firecracker's RateLimiter object); all zero: no limit. */
struct rate_limit {
	struct token_bucket_config bandwidth; /* bytes */
	struct token_bucket_config ops;       /* operations (requests, frames) */
};

struct token_bucket {
	struct token_bucket_config cfg;
	int64_t budget;          /* tokens now (negative: in debt after an oversized request) */
	uint64_t burst;          /* one-time burst left */
	uint64_t last_ns;        /* when budget was last brought up to date */
};

struct rate_limiter {
	struct token_bucket bytes, ops;
	struct loop_timer timer; /* armed while blocked */
	bool blocked;            /* a request was refused; @unblocked is called when it may retry */
	uint64_t throttled;      /* requests refused so far (Firecracker's *_throttled metrics) */
	void (*unblocked)(void *opaque);
	void *opaque;
};

/* A lone bucket for output that is dropped rather than delayed (the serial console, as
 * Firecracker's SerialOut): set @b up full with @cfg at CLOCK_MONOTONIC time @now_ns. */
void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg,
		       uint64_t now_ns);

/* Take @tokens from @b at time @now_ns if it holds them all (one-time burst first); false
 * takes nothing, and a request larger than the whole bucket never fits (Firecracker drops on
 * its Failure and OverConsumption alike). A bucket without a limit always pays. No timer, no
 * lock: the caller serialises. */
bool token_bucket_try(struct token_bucket *b, uint64_t tokens, uint64_t now_ns);

/* Whether @l limits anything. */
bool rate_limit_enabled(const struct rate_limit *l);

/* Set up @rl with configuration @l, both buckets full, on @loop (its timer tagged @owner for
 * loop_forget): when a refused request may be retried, the loop calls @unblocked(@opaque) on its
 * thread. Cannot fail. */
void rate_limiter_init(struct rate_limiter *rl, const struct rate_limit *l, struct loop *loop,
		       const void *owner, void (*unblocked)(void *opaque), void *opaque);

/* Take @bytes and @ops tokens (both or neither) at CLOCK_MONOTONIC time @now_ns. Returns true
 * when they were taken, false when the request must wait: the limiter is then blocked, and
 * *@wait_ns says how long until it can pay (0 when the limiter was already blocked). Pure
 * bookkeeping, no timer: rate_limiter_consume() is what devices call. */
bool rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
		       uint64_t *wait_ns);

/* Take @bytes and @ops tokens now. Returns true when the request may go ahead; false when it
 * must wait: the device keeps the request (puts its chain back, leaves the frame with the
 * backend) and serves it again when @unblocked is called. Every refusal while blocked is
 * cheap (no clock read). */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops);

/* Give back @bytes and @ops tokens taken for a request that did not happen after all (a frame
 * the guest had no buffers for, offered again later), up to each bucket's size. */
void rate_limiter_refund(struct rate_limiter *rl, uint64_t bytes, uint64_t ops);

/* Which buckets rate_limiter_update() replaces. */
#define RATE_LIMIT_BANDWIDTH 0x1u
#define RATE_LIMIT_OPS 0x2u

/* Replace the buckets in @buckets (RATE_LIMIT_* bits) by @l's (Firecracker's PATCH: a new
 * bucket starts full, the others keep their tokens). A blocked limiter is unblocked on the
 * loop's next round of timers. Loop thread. */
void rate_limiter_update(struct rate_limiter *rl, const struct rate_limit *l, unsigned buckets);

/* Stop the timer (before the limiter's memory goes away, unless the owner is forgotten). */
void rate_limiter_cancel(struct rate_limiter *rl);

#endif
