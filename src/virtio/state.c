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

struct virtq_wire {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size, msix_vector, last_avail, used_idx, signalled_used;
	uint8_t ready, signalled_valid;
	uint8_t pad[4];
};

struct virtio_wire {
	uint32_t device_id, nr_queues;
	uint64_t device_features, driver_features;
	uint32_t isr;
	uint8_t status, config_generation;
	uint8_t pad[2];
	struct virtq_wire q[VIRTIO_MAX_QUEUES];
	/* then ops->state_size bytes of the device type's state */
};

void virtio_dev_save(struct virtio_dev *dev, struct snap_writer *w, uint32_t instance)
{
	size_t len = sizeof(struct virtio_wire) + dev->ops->state_size;
	struct virtio_wire *v = calloc(1, len);

	if (!v) {
		w->oom = true;
		return;
	}
	pthread_mutex_lock(&dev->lock);
	if (dev->ops->quiesce)
		dev->ops->quiesce(dev);
	*v = (struct virtio_wire){ .device_id = dev->ops->device_id, .nr_queues = dev->ops->nr_queues,
				   .device_features = dev->device_features,
				   .driver_features = dev->driver_features, .isr = dev->isr,
				   .status = dev->status,
				   .config_generation = dev->config_generation };
	for (unsigned i = 0; i < dev->ops->nr_queues; i++) {
		const struct virtq *q = &dev->q[i];

		v->q[i] = (struct virtq_wire){ .desc_gpa = q->desc_gpa, .avail_gpa = q->avail_gpa,
					       .used_gpa = q->used_gpa, .size = q->size,
					       .msix_vector = q->msix_vector,
					       .last_avail = q->last_avail, .used_idx = q->used_idx,
					       .signalled_used = q->signalled_used, .ready = q->ready,
					       .signalled_valid = q->signalled_valid };
	}
	if (dev->ops->save)
		dev->ops->save(dev, v + 1);
	pthread_mutex_unlock(&dev->lock);
	snap_put(w, "virtio", instance, v, len);
	free(v);
}

int virtio_dev_load(struct virtio_dev *dev, const struct snap_reader *r, uint32_t instance,
		    char *err, size_t errlen)
{
	size_t len = sizeof(struct virtio_wire) + dev->ops->state_size;
	const struct virtio_wire *v = snap_get_exact(r, "virtio", instance, len, err, errlen);
	int ret = 0;

	if (!v)
		return -EINVAL;
	if (v->device_id != dev->ops->device_id || v->nr_queues != dev->ops->nr_queues ||
	    v->device_features != dev->device_features) {
		snprintf(err, errlen, "snapshot: virtio device %u is a type %u device with features "
			 "0x%llx; the restored configuration made type %u with 0x%llx", instance,
			 v->device_id, (unsigned long long)v->device_features, dev->ops->device_id,
			 (unsigned long long)dev->device_features);
		return -EINVAL;
	}
	if ((v->driver_features & ~v->device_features) || v->isr > 3) {
		snprintf(err, errlen, "snapshot: virtio device %u: driver state out of range", instance);
		return -EINVAL;
	}
	pthread_mutex_lock(&dev->lock);
	dev->driver_features = v->driver_features;
	dev->status = v->status;
	dev->isr = v->isr;
	dev->config_generation = v->config_generation;
	for (unsigned i = 0; i < dev->ops->nr_queues && !ret; i++) {
		const struct virtq_wire *qw = &v->q[i];
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
		ret = dev->ops->load(dev, v + 1, err, errlen);
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
