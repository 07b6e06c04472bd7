/* SPDX-License-Identifier: Apache-2.0 */
/* device — the transport-independent part of a virtio device: status, features, configuration
 * space and queue notification (virtio 1.2 §2.1, §2.2, §3.1), see include/kiln/virtio.h.
 */
#include <errno.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "kiln/virtio.h"

#define COMMON_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | \
			 (1ull << VIRTIO_RING_F_INDIRECT_DESC))

/* Every queue back to its reset state (§2.7: size defaults to the maximum). */
static void init_queues(struct virtio_dev *dev)
{
	for (unsigned i = 0; i < dev->ops->nr_queues; i++)
		dev->q[i] = (struct virtq){ .max_size = dev->ops->queue_size,
					    .size = dev->ops->queue_size,
					    .msix_vector = VIRTIO_MSI_NO_VECTOR };
}

int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops, void *opaque,
		    const struct guest_mem *mem)
{
	uint16_t n = ops->queue_size;

	if (ops->nr_queues == 0 || ops->nr_queues > VIRTIO_MAX_QUEUES || n == 0 ||
	    n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	dev->ops = ops;
	dev->opaque = opaque;
	dev->mem = mem;
	dev->device_features = COMMON_FEATURES | ops->features;
	init_queues(dev);
	return -pthread_mutex_init(&dev->lock, NULL);
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
	pthread_mutex_destroy(&dev->lock);
}

static void reset(struct virtio_dev *dev)
{
	if (dev->ops->reset)
		dev->ops->reset(dev);
	dev->status = 0;
	dev->isr = 0;
	dev->driver_features = 0;
	init_queues(dev);
}

/* The configuration change interrupt (§2.5.1, §2.1.2), once the driver is running. */
static void config_interrupt(struct virtio_dev *dev)
{
	if (dev->status & VIRTIO_CONFIG_S_DRIVER_OK) {
		dev->isr |= VIRTIO_ISR_CONFIG;
		dev->transport.notify(dev, VIRTIO_CONFIG_IRQ);
	}
}

void virtio_dev_config_changed(struct virtio_dev *dev)
{
	dev->config_generation++;
	config_interrupt(dev);
}

void virtio_dev_needs_reset(struct virtio_dev *dev, const char *why)
{
	if (log_once_first(&dev->bad_ring))
		log_warn("virtio device %u: %s; the device needs a reset", dev->ops->device_id, why);
	if (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	dev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	config_interrupt(dev);
}

bool virtio_dev_live(const struct virtio_dev *dev)
{
	return (dev->status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET |
			       VIRTIO_CONFIG_S_FAILED)) == VIRTIO_CONFIG_S_DRIVER_OK;
}

void virtio_dev_set_queue_ready(struct virtio_dev *dev, unsigned index, bool ready)
{
	struct virtq *q = &dev->q[index];

	if (!ready) {
		q->ready = false;
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		return;
	}
	if (q->ready)
		return;
	if (virtq_enable(dev->mem, q, dev->driver_features)) {
		virtio_dev_needs_reset(dev, "a queue's size or ring addresses are invalid");
		return;
	}
	q->ready = true;
}

void virtio_dev_set_status(struct virtio_dev *dev, uint8_t status)
{
	uint8_t old = dev->status;

	if (status == 0) {
		reset(dev);
		return;
	}
	/* NEEDS_RESET is the device's to set; the driver cannot clear bits except by reset. */
	status = (uint8_t)((status & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET));
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		/* §2.2.2: a device without legacy support refuses drivers without VERSION_1. */
		if (!(dev->driver_features & (1ull << VIRTIO_F_VERSION_1)) ||
		    (dev->driver_features & ~dev->device_features))
			status &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	}
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(status & VIRTIO_CONFIG_S_FEATURES_OK))
		status &= (uint8_t)~VIRTIO_CONFIG_S_DRIVER_OK;
	dev->status = status;
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    dev->ops->activate)
		dev->ops->activate(dev);
}

void virtio_dev_set_driver_features(struct virtio_dev *dev, unsigned sel, uint32_t value)
{
	if (sel > 1 || (dev->status & VIRTIO_CONFIG_S_FEATURES_OK))
		return;
	dev->driver_features &= ~(0xffffffffull << (32 * sel));
	dev->driver_features |= (uint64_t)value << (32 * sel);
}

uint32_t virtio_dev_device_features(const struct virtio_dev *dev, unsigned sel)
{
	return sel > 1 ? 0 : (uint32_t)(dev->device_features >> (32 * sel));
}

static bool config_range(const struct virtio_dev *dev, uint32_t off, uint32_t len)
{
	return len <= dev->ops->config_len && off <= dev->ops->config_len - len;
}

void virtio_dev_config_read(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
	if (config_range(dev, off, len))
		dev->ops->read_config(dev, off, data, len);
}

void virtio_dev_config_write(struct virtio_dev *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	if (config_range(dev, off, len) && dev->ops->write_config)
		dev->ops->write_config(dev, off, data, len);
}

void virtio_dev_queue_notify(struct virtio_dev *dev, unsigned q)
{
	pthread_mutex_lock(&dev->lock);
	if (q >= dev->ops->nr_queues || !dev->q[q].ready) {
		if (log_once_first(&dev->bad_ring))
			log_warn("virtio device %u: notification for queue %u, which is not in use",
				 dev->ops->device_id, q);
	} else if (virtio_dev_live(dev)) {
		dev->ops->queue_notify(dev, q);
	}
	pthread_mutex_unlock(&dev->lock);
}

void virtio_dev_notify_if_needed(struct virtio_dev *dev, unsigned q)
{
	if (virtq_should_notify(&dev->q[q])) {
		dev->isr |= VIRTIO_ISR_QUEUE;
		dev->transport.notify(dev, q);
	}
}

void virtio_dev_complete(struct virtio_dev *dev, unsigned q, uint16_t head, uint32_t len)
{
	virtq_push(&dev->q[q], head, len);
	virtio_dev_notify_if_needed(dev, q);
}

void virtio_dev_process(struct virtio_dev *dev, unsigned q,
			uint32_t (*serve)(struct virtio_dev *dev, const struct virtq_chain *c))
{
	struct virtq_chain c;
	unsigned served = 0;
	int ret;

	do {
		while ((ret = virtq_pop(dev->mem, &dev->q[q], &c)) > 0) {
			uint32_t len = serve(dev, &c);

			if (len == VIRTQ_THROTTLED) {
				dev->q[q].last_avail--; /* popped, not consumed: the driver still owns it */
				virtio_dev_notify_if_needed(dev, q);
				return;
			}
			if (len != VIRTQ_DEFERRED)
				virtq_push(&dev->q[q], c.head, len);
			if (!virtio_dev_live(dev))
				return; /* serve() found the ring broken */
			if (++served == VIRTIO_BUDGET && dev->transport.requeue) {
				virtio_dev_notify_if_needed(dev, q);
				dev->transport.requeue(dev, q); /* the rest on the next turn */
				return;
			}
		}
		virtio_dev_notify_if_needed(dev, q);
		if (ret < 0) {
			virtio_dev_needs_reset(dev, "malformed descriptor chain or available ring");
			return;
		}
	} while (virtq_arm_notify(&dev->q[q]));
}

void virtio_dev_free(struct virtio_dev *dev)
{
	if (dev)
		dev->ops->free(dev);
}
