/* SPDX-License-Identifier: Apache-2.0 */
/* rate_limiter — token buckets for device I/O, see include/kiln/rate_limiter.h. */
#include "kiln/rate_limiter.h"

#define NS_PER_MS 1000000u

typedef unsigned __int128 u128;

static bool bucket_on(const struct token_bucket *b)
{
	return b->cfg.size && b->cfg.refill_ms;
}

static u128 refill_ns(const struct token_bucket *b)
{
	return (u128)b->cfg.refill_ms * NS_PER_MS;
}

static void bucket_reset(struct token_bucket *b, const struct token_bucket_config *cfg,
			 uint64_t now_ns)
{
	*b = (struct token_bucket){ .cfg = *cfg, .budget = (int64_t)(cfg->size > INT64_MAX ?
								     INT64_MAX : cfg->size),
				    .burst = cfg->one_time_burst, .last_ns = now_ns };
	b->cfg.size = (uint64_t)b->budget;
}

/* Bring the budget up to @now_ns: size tokens per refill_ms, linearly, never above size. The
 * time of a fraction of a token not yet earned is kept (last_ns advances only by the time the
 * whole tokens took), so frequent calls lose nothing to rounding. */
static void bucket_refill(struct token_bucket *b, uint64_t now_ns)
{
	uint64_t elapsed = now_ns > b->last_ns ? now_ns - b->last_ns : 0;
	u128 room = (u128)((int64_t)b->cfg.size - b->budget); /* budget <= size always */
	u128 earned = (u128)elapsed * b->cfg.size / refill_ns(b);

	if (earned >= room) {
		b->budget = (int64_t)b->cfg.size;
		b->last_ns = now_ns;
		return;
	}
	b->budget += (int64_t)earned;
	b->last_ns += (uint64_t)((earned * refill_ns(b) + b->cfg.size - 1) / b->cfg.size);
}

/* Whether @b can pay @tokens now; if not, *@wait_ns is how long until it can. */
static bool bucket_can(struct token_bucket *b, uint64_t tokens, uint64_t now_ns, uint64_t *wait_ns)
{
	uint64_t need;
	u128 deficit, ns;

	*wait_ns = 0;
	if (!bucket_on(b) || b->burst >= tokens)
		return true;
	tokens -= b->burst;
	bucket_refill(b, now_ns);
	/* A request bigger than the bucket goes through when the bucket is full. */
	need = tokens < b->cfg.size ? tokens : b->cfg.size;
	if (b->budget >= 0 && (uint64_t)b->budget >= need)
		return true;
	deficit = (u128)((int64_t)need - b->budget);
	ns = (deficit * refill_ns(b) + b->cfg.size - 1) / b->cfg.size;
	ns -= ns > now_ns - b->last_ns ? now_ns - b->last_ns : ns; /* part of a token is earned */
	*wait_ns = ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
	if (!*wait_ns)
		*wait_ns = 1;
	return false;
}

static void bucket_pay(struct token_bucket *b, uint64_t tokens)
{
	if (!bucket_on(b))
		return;
	if (b->burst >= tokens) {
		b->burst -= tokens;
		return;
	}
	tokens -= b->burst;
	b->burst = 0;
	/* At most size + INT64_MAX below zero: a request is at most a few MiB in practice. */
	b->budget -= tokens > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)tokens;
}

void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg,
		       uint64_t now_ns)
{
	bucket_reset(b, cfg, now_ns);
}

bool token_bucket_try(struct token_bucket *b, uint64_t tokens, uint64_t now_ns)
{
	uint64_t wait_ns;

	if (!bucket_on(b))
		return true;
	if (tokens > b->burst && tokens - b->burst > b->cfg.size)
		return false;
	if (!bucket_can(b, tokens, now_ns, &wait_ns))
		return false;
	bucket_pay(b, tokens);
	return true;
}

bool rate_limit_enabled(const struct rate_limit *l)
{
	return (l->bandwidth.size && l->bandwidth.refill_ms) || (l->ops.size && l->ops.refill_ms);
}

/* The timer: the buckets can pay for the refused request now. */
static void limiter_fire(void *opaque)
{
	struct rate_limiter *rl = opaque;

	rl->blocked = false;
	rl->unblocked(rl->opaque);
}

void rate_limiter_init(struct rate_limiter *rl, const struct rate_limit *l, struct loop *loop,
		       const void *owner, void (*unblocked)(void *opaque), void *opaque)
{
	uint64_t now = loop_now_ns();

	*rl = (struct rate_limiter){ .unblocked = unblocked, .opaque = opaque };
	bucket_reset(&rl->bytes, &l->bandwidth, now);
	bucket_reset(&rl->ops, &l->ops, now);
	loop_timer_init(loop, &rl->timer, owner, limiter_fire, rl);
}

bool rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
		       uint64_t *wait_ns)
{
	uint64_t wait_bytes, wait_ops;
	bool ok_bytes, ok_ops;

	*wait_ns = 0;
	if (rl->blocked)
		return false;
	ok_bytes = bucket_can(&rl->bytes, bytes, now_ns, &wait_bytes);
	ok_ops = bucket_can(&rl->ops, ops, now_ns, &wait_ops);
	if (ok_bytes && ok_ops) {
		bucket_pay(&rl->bytes, bytes);
		bucket_pay(&rl->ops, ops);
		return true;
	}
	rl->blocked = true;
	rl->throttled++;
	*wait_ns = wait_bytes > wait_ops ? wait_bytes : wait_ops;
	return false;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
	uint64_t wait_ns;

	if (rl->blocked)
		return false;
	if (!bucket_on(&rl->bytes) && !bucket_on(&rl->ops))
		return true;
	if (rate_limiter_take(rl, bytes, ops, loop_now_ns(), &wait_ns))
		return true;
	loop_timer_arm(&rl->timer, wait_ns, 0);
	return false;
}

static void bucket_refund(struct token_bucket *b, uint64_t tokens)
{
	uint64_t room = (uint64_t)((int64_t)b->cfg.size - b->budget);

	if (bucket_on(b))
		b->budget += (int64_t)(tokens < room ? tokens : room);
}

void rate_limiter_refund(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
	bucket_refund(&rl->bytes, bytes);
	bucket_refund(&rl->ops, ops);
}

void rate_limiter_update(struct rate_limiter *rl, const struct rate_limit *l, unsigned buckets)
{
	uint64_t now = loop_now_ns();

	if (buckets & RATE_LIMIT_BANDWIDTH)
		bucket_reset(&rl->bytes, &l->bandwidth, now);
	if (buckets & RATE_LIMIT_OPS)
		bucket_reset(&rl->ops, &l->ops, now);
	if (rl->blocked)
		loop_timer_arm(&rl->timer, 0, 0);
}

void rate_limiter_cancel(struct rate_limiter *rl)
{
	loop_timer_cancel(&rl->timer);
	rl->blocked = false;
}
