/* SPDX-License-Identifier: Apache-2.0 */
/* state — a virtio device's state in and out of a snapshot, see include/kiln/virtio.h.
 *
 * What the driver negotiated and where its rings are, with the device's positions in them
 * (last_avail, used_idx and the notification bookkeeping of §2.7.10); the rings themselves are
 * guest memory, which has its own file. Requests in flight are finished first (quiesce), so
 * every buffer is either still available or already used: nothing lives only in kiln.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>

#include "kiln/snapshot.h"
#include "kiln/virtio.h"

/* Section "virtio" / instance, version 1, little-endian:
 *   u32 device_id, u32 nr_queues, u64 device_features, u64 driver_features, u32 isr,
 *   u8 status, u8 config_generation, 2 zero bytes,
 *   VIRTIO_MAX_QUEUES x { u64 desc_gpa, u64 avail_gpa, u64 used_gpa, u16 size, u16 msix_vector,
 *                         u16 last_avail, u16 used_idx, u16 signalled_used, u8 ready,
 *                         u8 signalled_valid, 4 zero bytes },
 *   then the device type's own state (virtio_dev_ops.save).
 */
#define VIRTIO_STATE_VERSION 1

static void encode(struct virtio_dev *dev, struct snap_enc *e)
{
	snap_enc_u32(e, dev->ops->device_id);
	snap_enc_u32(e, dev->ops->nr_queues);
	snap_enc_u64(e, dev->device_features);
	snap_enc_u64(e, dev->driver_features);
	snap_enc_u32(e, dev->isr);
	snap_enc_u8(e, dev->status);
	snap_enc_u8(e, dev->config_generation);
	snap_enc_u16(e, 0);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		const struct virtq *q = &dev->q[i];
		bool mine = i < dev->ops->nr_queues;

		snap_enc_u64(e, mine ? q->desc_gpa : 0);
		snap_enc_u64(e, mine ? q->avail_gpa : 0);
		snap_enc_u64(e, mine ? q->used_gpa : 0);
		snap_enc_u16(e, mine ? q->size : 0);
		snap_enc_u16(e, mine ? q->msix_vector : 0);
		snap_enc_u16(e, mine ? q->last_avail : 0);
		snap_enc_u16(e, mine ? q->used_idx : 0);
		snap_enc_u16(e, mine ? q->signalled_used : 0);
		snap_enc_u8(e, mine && q->ready);
		snap_enc_u8(e, mine && q->signalled_valid);
		snap_enc_u32(e, 0);
	}
	if (dev->ops->save)
		dev->ops->save(dev, e);
}

void virtio_dev_save(struct virtio_dev *dev, struct snap_writer *w, uint32_t instance)
{
	struct snap_enc e = { 0 };

	pthread_mutex_lock(&dev->lock);
	if (dev->ops->quiesce)
		dev->ops->quiesce(dev);
	encode(dev, &e);
	pthread_mutex_unlock(&dev->lock);
	snap_put_enc(w, "virtio", instance, VIRTIO_STATE_VERSION, &e);
}

/* One queue's state as the section holds it. */
struct virtq_state {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size, msix_vector, last_avail, used_idx, signalled_used;
	bool ready, signalled_valid;
};

static void decode_queue(struct snap_dec *d, struct virtq_state *q)
{
	q->desc_gpa = snap_dec_u64(d);
	q->avail_gpa = snap_dec_u64(d);
	q->used_gpa = snap_dec_u64(d);
	q->size = snap_dec_u16(d);
	q->msix_vector = snap_dec_u16(d);
	q->last_avail = snap_dec_u16(d);
	q->used_idx = snap_dec_u16(d);
	q->signalled_used = snap_dec_u16(d);
	q->ready = snap_dec_u8(d);
	q->signalled_valid = snap_dec_u8(d);
	snap_dec_u32(d); /* zero */
}

int virtio_dev_load(struct virtio_dev *dev, const struct snap_reader *r, uint32_t instance,
		    char *err, size_t errlen)
{
	uint32_t version, device_id, nr_queues, isr;
	uint64_t device_features, driver_features;
	struct virtq_state qs[VIRTIO_MAX_QUEUES];
	uint8_t status, generation;
	struct snap_dec d;
	size_t len;
	const void *p = snap_get_section(r, "virtio", instance, VIRTIO_STATE_VERSION, &version, &len,
					 err, errlen);
	int ret = 0;

	if (!p)
		return -EINVAL;
	snap_dec_init(&d, p, len);
	device_id = snap_dec_u32(&d);
	nr_queues = snap_dec_u32(&d);
	device_features = snap_dec_u64(&d);
	driver_features = snap_dec_u64(&d);
	isr = snap_dec_u32(&d);
	status = snap_dec_u8(&d);
	generation = snap_dec_u8(&d);
	snap_dec_u16(&d); /* zero */
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		decode_queue(&d, &qs[i]);
	if (d.bad) {
		snprintf(err, errlen, "snapshot: virtio device %u: section too short", instance);
		return -EINVAL;
	}
	/* The device goes on offering what the guest saw: its features may be fewer than this
	 * kiln's device has (one made by an older kiln), never more. */
	if (device_id != dev->ops->device_id || nr_queues != dev->ops->nr_queues ||
	    (device_features & ~dev->device_features)) {
		snprintf(err, errlen, "snapshot: virtio device %u is a type %u device with features "
			 "0x%llx; the restored configuration made type %u with 0x%llx", instance,
			 device_id, (unsigned long long)device_features, dev->ops->device_id,
			 (unsigned long long)dev->device_features);
		return -EINVAL;
	}
	if ((driver_features & ~device_features) || isr > 3) {
		snprintf(err, errlen, "snapshot: virtio device %u: driver state out of range", instance);
		return -EINVAL;
	}
	pthread_mutex_lock(&dev->lock);
	dev->device_features = device_features;
	dev->driver_features = driver_features;
	dev->status = status;
	dev->isr = isr;
	dev->config_generation = generation;
	for (unsigned i = 0; i < dev->ops->nr_queues && !ret; i++) {
		const struct virtq_state *qw = &qs[i];
		struct virtq *q = &dev->q[i];

		q->size = qw->size;
		q->desc_gpa = qw->desc_gpa;
		q->avail_gpa = qw->avail_gpa;
		q->used_gpa = qw->used_gpa;
		q->msix_vector = qw->msix_vector;
		if (!qw->ready)
			continue;
		if (virtq_enable(dev->mem, q, dev->driver_features)) {
			snprintf(err, errlen, "snapshot: virtio device %u queue %u: size %u or rings "
				 "outside guest memory", instance, i, qw->size);
			ret = -EINVAL;
			break;
		}
		q->ready = true;
		q->last_avail = qw->last_avail;
		q->used_idx = qw->used_idx;
		q->signalled_used = qw->signalled_used;
		q->signalled_valid = qw->signalled_valid;
	}
	if (!ret && dev->ops->load)
		ret = dev->ops->load(dev, &d, version, err, errlen);
	if (!ret && !snap_dec_done(&d)) {
		snprintf(err, errlen, "snapshot: virtio device %u: the section's device state does not "
			 "fit its type", instance);
		ret = -EINVAL;
	}
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

void virtio_dev_restored(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	if (virtio_dev_live(dev)) {
		if (dev->ops->activate)
			dev->ops->activate(dev);
		if (dev->ops->restored)
			dev->ops->restored(dev);
		for (unsigned q = 0; q < dev->ops->nr_queues; q++)
			if (dev->q[q].ready && virtio_dev_live(dev))
				dev->ops->queue_notify(dev, q);
	}
	pthread_mutex_unlock(&dev->lock);
}
