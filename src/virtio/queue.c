/* SPDX-License-Identifier: Apache-2.0 */
/* queue — split virtqueues, device side (virtio 1.2 §2.7), see include/kiln/virtio.h.
 *
 * The driver may change ring memory at any moment, so every descriptor is copied out once
 * before it is checked and used, and every index the guest wrote is range-checked before it
 * indexes anything. Ordering follows §2.7.13: the available index is read with acquire
 * semantics before the ring entries it covers, the used index is written with release
 * semantics after the used element, and a full fence separates publishing from reading the
 * driver's event index.
 */
#include <errno.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "kiln/virtio.h"

#define DESC_SIZE 16u

static uint16_t load16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t avail_idx(const struct virtq *q)
{
	return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
}

static uint16_t *used_event(const struct virtq *q) { return &q->avail->ring[q->size]; }
static uint16_t *avail_event(const struct virtq *q) { return (uint16_t *)&q->used->ring[q->size]; }

int virtq_enable(const struct guest_mem *mem, struct virtq *q, uint64_t features)
{
	uint64_t n = q->size;

	if (n == 0 || n > q->max_size || (n & (n - 1)))
		return -EINVAL;
	/* §2.7: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned. */
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -EFAULT;
	q->desc = guest_mem_ptr(mem, q->desc_gpa, DESC_SIZE * n);
	q->avail = guest_mem_ptr(mem, q->avail_gpa, 6 + 2 * n);
	q->used = guest_mem_ptr(mem, q->used_gpa, 6 + 8 * n);
	if (!q->desc || !q->avail || !q->used) {
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		return -EFAULT;
	}
	q->mem = mem;
	q->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	q->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_valid = false;
	return 0;
}

/* Add one buffer of the chain; -EINVAL when it is not guest RAM, when a driver-written buffer
 * follows a device-writable one, or when the chain is too long. Zero-length buffers are
 * skipped: they carry nothing. */
static int add_buffer(const struct guest_mem *mem, struct virtq_chain *c, const struct vring_desc *d)
{
	void *p;

	if (d->len == 0)
		return 0;
	if (c->nr_out + c->nr_in == VIRTQ_CHAIN_MAX)
		return -EINVAL;
	p = guest_mem_ptr(mem, d->addr, d->len);
	if (!p)
		return -EINVAL;
	c->iov[c->nr_out + c->nr_in] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (d->flags & VRING_DESC_F_WRITE) {
		c->nr_in++;
		c->in_len += d->len;
	} else {
		if (c->nr_in)
			return -EINVAL; /* §2.7.4.2: device-readable descriptors come first */
		c->nr_out++;
		c->out_len += d->len;
	}
	return 0;
}

/* Follow the chain at @head of @q (through an indirect table, §2.7.5.3), checking every step,
 * and hand each buffer descriptor to @visit. Returns 0, -EINVAL for a malformed chain, or what
 * @visit returned when it was not 0. */
static int walk_chain(const struct guest_mem *mem, const struct virtq *q, uint16_t i,
		      int (*visit)(const struct guest_mem *mem, void *ctx, const struct vring_desc *d),
		      void *ctx)
{
	const uint8_t *table = (const uint8_t *)q->desc;
	uint32_t table_len = q->size, steps = 0;
	bool indirect = false;
	int ret;

	for (;;) {
		struct vring_desc d;

		if (++steps > table_len)
			return -EINVAL; /* a loop: no chain is longer than its table */
		memcpy(&d, table + (size_t)i * DESC_SIZE, sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* §2.7.5.3.1: only in the main table, not with NEXT, a whole number of
			 * descriptors. */
			if (!q->indirect || indirect || (d.flags & VRING_DESC_F_NEXT) ||
			    d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_CHAIN_MAX)
				return -EINVAL;
			table = guest_mem_ptr(mem, d.addr, d.len);
			if (!table)
				return -EINVAL;
			table_len = d.len / DESC_SIZE;
			indirect = true;
			steps = 0;
			i = 0;
			continue;
		}
		if ((ret = visit(mem, ctx, &d)))
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= table_len)
			return -EINVAL;
	}
}

static int visit_add(const struct guest_mem *mem, void *ctx, const struct vring_desc *d)
{
	return add_buffer(mem, ctx, d);
}

int virtq_pop(const struct guest_mem *mem, struct virtq *q, struct virtq_chain *c)
{
	uint16_t idx, i;

	if (!q->ready || !q->desc)
		return 0;
	idx = avail_idx(q);
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->size)
		return -EINVAL; /* the driver claims more buffers than the ring holds */
	i = load16(&q->avail->ring[q->last_avail & (q->size - 1)]);
	if (i >= q->size)
		return -EINVAL;
	q->last_avail++;
	*c = (struct virtq_chain){ .head = i };
	return walk_chain(mem, q, i, visit_add, c) ? -EINVAL : 1;
}

static int visit_mark(const struct guest_mem *mem, void *ctx, const struct vring_desc *d)
{
	void *p = (d->flags & VRING_DESC_F_WRITE) && d->len ? guest_mem_ptr(mem, d->addr, d->len) : NULL;

	if (p)
		guest_mem_mark_dirty(mem, p, d->len);
	return 0;
}

void virtq_push_many(struct virtq *q, const struct vring_used_elem *e, unsigned n)
{
	if (!q->used)
		return;
	for (unsigned i = 0; i < n; i++) {
		memcpy(&q->used->ring[(uint16_t)(q->used_idx + i) & (q->size - 1)], &e[i], sizeof(e[i]));
		/* Diff snapshots and migration: what the device wrote into the chain is dirty now
		 * (the chain was checked when it was popped; a driver that changed it since only
		 * loses its own pages). */
		if (q->mem && q->mem->dirty && e[i].id < q->size)
			walk_chain(q->mem, q, (uint16_t)e[i].id, visit_mark, NULL);
	}
	q->used_idx = (uint16_t)(q->used_idx + n);
	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
	guest_mem_mark_dirty(q->mem, q->used, 6 + 8 * (uint64_t)q->size);
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	virtq_push_many(q, &(struct vring_used_elem){ .id = head, .len = len }, 1);
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old = q->signalled_used, now = q->used_idx;
	bool valid = q->signalled_valid;

	if (!q->used)
		return false;
	/* The used index must be visible before the driver's event index is read. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->signalled_used = now;
	q->signalled_valid = true;
	if (!q->event_idx)
		return !(load16(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	return !valid || vring_need_event(load16(used_event(q)), now, old);
}

bool virtq_arm_notify(struct virtq *q)
{
	if (!q->avail)
		return false;
	if (q->event_idx) {
		__atomic_store_n(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
		guest_mem_mark_dirty(q->mem, avail_event(q), 2);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return avail_idx(q) != q->last_avail;
}

static uint64_t chain_copy(const struct iovec *iov, unsigned n, uint64_t off, uint8_t *buf,
			   uint64_t len, bool to_chain)
{
	uint64_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t step;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		step = iov[i].iov_len - off;
		if (step > len - done)
			step = len - done;
		if (to_chain)
			memcpy((uint8_t *)iov[i].iov_base + off, buf + done, step);
		else
			memcpy(buf + done, (uint8_t *)iov[i].iov_base + off, step);
		done += step;
		off = 0;
	}
	return done;
}

uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	return chain_copy(c->iov, c->nr_out, off, dst, len, false);
}

uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	return chain_copy(c->iov + c->nr_out, c->nr_in, off, (uint8_t *)src, len, true);
}

int virtq_chain_iov(const struct virtq_chain *c, bool in, uint64_t off, uint64_t len,
		    struct iovec *out)
{
	const struct iovec *iov = in ? c->iov + c->nr_out : c->iov;
	unsigned n = in ? c->nr_in : c->nr_out, k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t step;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		step = iov[i].iov_len - off;
		if (step > len)
			step = len;
		out[k++] = (struct iovec){ .iov_base = (uint8_t *)iov[i].iov_base + off, .iov_len = step };
		len -= step;
		off = 0;
	}
	return len ? -1 : (int)k;
}
