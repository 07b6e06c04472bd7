/* SPDX-License-Identifier: Apache-2.0 */
/* virtq — split virtqueues (virtio 1.2 §2.7), the device side.
 *
 * Owns: every read of a descriptor table or available ring and every write of a used ring. A
 * device never touches a ring itself: it pops a checked descriptor chain (virtq_pop), works on
 * the host iovecs it was given, and returns the chain (virtq_push). The guest is hostile: every
 * address and length is checked against guest memory; a malformed ring is reported to the
 * caller, which marks the device DEVICE_NEEDS_RESET (§2.1.2).
 */
#ifndef KILN_VIRTQ_H
#define KILN_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/guest_mem.h"

#define VIRTQ_MAX_SIZE 1024u    /* largest queue size kiln offers (§2.7: at most 32768) */
#define VIRTQ_CHAIN_MAX 256u    /* most descriptors kiln accepts in one chain, indirect included */

/* One split virtqueue (virtio 1.2 §2.7). Addresses are guest-physical; the ring pointers are
 * resolved (and bounds-checked) once when the driver enables the queue. */
struct virtq {
	uint16_t max_size;       /* offered to the driver */
	uint16_t size;           /* chosen by the driver, a power of two <= max_size */
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;    /* PCI transport only */
	/* Device-side state, valid while ready. */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;     /* next available-ring index to consume */
	uint16_t used_idx;       /* next used-ring index to publish */
	uint16_t signalled_used; /* used_idx when the driver was last notified */
	bool signalled_valid;
	const struct guest_mem *mem; /* where the rings are (set by virtq_enable) */
	bool event_idx;          /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;           /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
};

/* A descriptor chain popped from a queue: the driver-written buffers (out) come first in
 * iov[], then the device-writable ones (in), as §2.7.4.2 requires. */
struct virtq_chain {
	uint16_t head;
	unsigned nr_out, nr_in;
	uint64_t out_len, in_len;   /* bytes */
	struct iovec iov[VIRTQ_CHAIN_MAX];
};

struct vring_used_elem;

/* Resolve and check the ring addresses of @q for the negotiated @features; returns 0 or
 * -EFAULT when a ring is not entirely in guest RAM or misaligned. */
int virtq_enable(const struct guest_mem *mem, struct virtq *q, uint64_t features)
	__attribute__((warn_unused_result));

/* Pop the next available descriptor chain of @q into @chain, following indirect tables
 * (§2.7.5.3) and checking every address and length against guest memory.
 * Returns 1 with a chain, 0 when the ring is empty, -EINVAL when the ring or the chain is
 * malformed (loop, too long, out of RAM, write-only before read-only, bad indirect table);
 * the caller then calls virtio_dev_needs_reset(). */
int virtq_pop(const struct guest_mem *mem, struct virtq *q, struct virtq_chain *chain)
	__attribute__((warn_unused_result));

/* Return chain @head to the driver with @len bytes written into its device-writable buffers
 * (§2.7.8). */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Return @n chains at once (e[i].id heads, e[i].len bytes written): the driver sees all of
 * them or none, as a frame spread over several buffers needs (§5.1.6.4). */
void virtq_push_many(struct virtq *q, const struct vring_used_elem *e, unsigned n);

/* After pushes: whether the driver asked to be notified (§2.7.10: used_event with EVENT_IDX,
 * else VIRTQ_AVAIL_F_NO_INTERRUPT). Updates the bookkeeping when it returns true. */
bool virtq_should_notify(struct virtq *q);

/* Before sleeping on the queue: publish avail_event (EVENT_IDX) so the driver kicks for the
 * next buffer; returns true when more buffers arrived meanwhile (pop again). */
bool virtq_arm_notify(struct virtq *q);

/* Copy up to @len bytes from the chain's driver-written buffers starting @off bytes in, into
 * @dst; returns bytes copied. */
uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len);

/* Copy up to @len bytes into the chain's device-writable buffers starting @off bytes into them;
 * returns bytes copied. */
uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len);

/* Build in @out (room for VIRTQ_CHAIN_MAX entries) the iovecs of @len bytes starting @off bytes
 * into the chain's driver-written (@in false) or device-writable (@in true) buffers; returns the
 * number of entries, or -1 when the chain holds fewer than off + len bytes there. */
int virtq_chain_iov(const struct virtq_chain *c, bool in, uint64_t off, uint64_t len,
		    struct iovec *out);

#endif
