/* SPDX-License-Identifier: Apache-2.0 */
/* mmio — the virtio-mmio transport, version 2 (virtio 1.2 §4.2), see
 * include/kiln/virtio_transport.h.
 *
 * Slot i sits at KILN_VIRTIO_MMIO_BASE + i * KILN_VIRTIO_MMIO_SIZE and interrupts on GSI
 * KILN_VIRTIO_MMIO_GSI + i. QueueNotify writes reach kiln's event loop through one ioeventfd per
 * queue (no vCPU exit); the interrupt is an irqfd. Registers are 32 bits wide (§4.2.2.2);
 * other widths outside the configuration space are ignored and logged once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_mmio.h>

#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/snapshot.h"
#include "kiln/virtio.h"
#include "kiln/virtio_transport.h"

#define MMIO_MAGIC 0x74726976u /* "virt" */
#define MMIO_VERSION 2u
#define MMIO_VENDOR 0x4e4c494bu /* "KILN" */

struct virtio_mmio {
	struct virtio_dev *dev;
	struct dev_host *host;
	unsigned slot;
	uint64_t base;
	unsigned gsi;
	int irq_fd;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	struct virtio_kick kick[VIRTIO_MAX_QUEUES];
	struct log_once bad_access;
};

static void mmio_notify(struct virtio_dev *dev, unsigned q)
{
	struct virtio_mmio *m = dev->transport.opaque;
	uint64_t one = 1;

	if (write(m->irq_fd, &one, sizeof(one)) < 0 && log_once_first(&m->bad_access))
		log_warn("virtio-mmio slot %u: irqfd write failed", m->slot);
}

static void mmio_requeue(struct virtio_dev *dev, unsigned q)
{
	struct virtio_mmio *m = dev->transport.opaque;

	virtio_kick(m->kick, q);
}

static struct virtq *selected(struct virtio_mmio *m)
{
	return m->queue_sel < m->dev->ops->nr_queues ? &m->dev->q[m->queue_sel] : NULL;
}

static uint32_t reg_read(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_dev *dev = m->dev;
	struct virtq *q = selected(m);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return MMIO_VERSION;
	case VIRTIO_MMIO_DEVICE_ID: return dev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES: return virtio_dev_device_features(dev, m->device_features_sel);
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? q->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return dev->isr;
	case VIRTIO_MMIO_STATUS: return dev->status;
	case VIRTIO_MMIO_CONFIG_GENERATION: return dev->config_generation;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH: return 0xffffffffu; /* no shared memory regions */
	}
	return 0;
}

/* Set a 32-bit half of a 64-bit queue address; only while the queue is disabled (§4.2.2.3). */
static void set_addr(struct virtq *q, uint64_t *addr, bool high, uint32_t v)
{
	if (!q || q->ready)
		return;
	*addr = high ? ((*addr & 0xffffffffull) | (uint64_t)v << 32) : ((*addr & ~0xffffffffull) | v);
}

static void reg_write(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_dev *dev = m->dev;
	struct virtq *q = selected(m);
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: m->device_features_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES: virtio_dev_set_driver_features(dev, m->driver_features_sel, v); break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: m->driver_features_sel = v; break;
	case VIRTIO_MMIO_QUEUE_SEL: m->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (q && !q->ready)
			q->size = (uint16_t)(v > 0xffff ? 0 : v);
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (q)
			virtio_dev_set_queue_ready(dev, m->queue_sel, v == 1);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Only reached when the ioeventfd did not match (a queue that does not exist) or
		 * could not be installed: hand it to the event loop the same way. */
		if (!virtio_kick(m->kick, v) && log_once_first(&m->bad_access))
			log_warn("virtio-mmio slot %u: notification for queue %u, which does not exist",
				 m->slot, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK: dev->isr &= ~v; break;
	case VIRTIO_MMIO_STATUS: virtio_dev_set_status(dev, (uint8_t)v); break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: set_addr(q, q ? &q->desc_gpa : NULL, false, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_addr(q, q ? &q->desc_gpa : NULL, true, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: set_addr(q, q ? &q->avail_gpa : NULL, false, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: set_addr(q, q ? &q->avail_gpa : NULL, true, v); break;
	case VIRTIO_MMIO_QUEUE_USED_LOW: set_addr(q, q ? &q->used_gpa : NULL, false, v); break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: set_addr(q, q ? &q->used_gpa : NULL, true, v); break;
	}
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;
	uint32_t v;

	pthread_mutex_lock(&m->dev->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		virtio_dev_config_read(m->dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		v = reg_read(m, off);
		memcpy(data, &v, 4);
	} else {
		memset(data, 0, len);
		if (log_once_first(&m->bad_access))
			log_warn("virtio-mmio slot %u: %u-byte read at register 0x%llx ignored", m->slot,
				 len, (unsigned long long)off);
	}
	pthread_mutex_unlock(&m->dev->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;
	uint32_t v;

	pthread_mutex_lock(&m->dev->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		virtio_dev_config_write(m->dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		memcpy(&v, data, 4);
		reg_write(m, off, v);
	} else if (log_once_first(&m->bad_access)) {
		log_warn("virtio-mmio slot %u: %u-byte write at register 0x%llx ignored", m->slot, len,
			 (unsigned long long)off);
	}
	pthread_mutex_unlock(&m->dev->lock);
}

static const struct bus_ops mmio_ops = { .read = mmio_read, .write = mmio_write };

static void mmio_destroy(void *t)
{
	struct virtio_mmio *m = t;

	virtio_kicks_destroy(m->kick);
	if (m->irq_fd >= 0)
		close(m->irq_fd);
	free(m);
}

static int mmio_create(struct dev_host *host, struct virtio_dev *dev, unsigned slot, void **out)
{
	struct virtio_mmio *m;
	int ret;

	if (slot >= KILN_VIRTIO_MMIO_SLOTS)
		return -ENOSPC;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dev = dev;
	m->host = host;
	m->slot = slot;
	m->base = KILN_VIRTIO_MMIO_BASE + slot * KILN_VIRTIO_MMIO_SIZE;
	m->gsi = KILN_VIRTIO_MMIO_GSI + slot;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		m->kick[i].fd = -1;
	m->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = m->irq_fd < 0 ? -errno : host->irqfd(host, m->gsi, m->irq_fd);
	if (!ret)
		ret = virtio_kicks_create(m->kick, dev, host, m->base + VIRTIO_MMIO_QUEUE_NOTIFY, 0, 4);
	if (!ret)
		ret = bus_register(host->mmio, m->base, KILN_VIRTIO_MMIO_SIZE, &mmio_ops, m, "virtio-mmio");
	if (ret) {
		mmio_destroy(m);
		return ret;
	}
	dev->transport = (struct virtio_notifier){ .notify = mmio_notify, .requeue = mmio_requeue,
						   .opaque = m };
	*out = m;
	return 0;
}

static void mmio_describe(void *t, struct acpi_config *acpi)
{
	const struct virtio_mmio *m = t;
	struct acpi_device_desc d = {
		.hid = "LNRO0005", .uid = m->slot, .nr_res = 2,
		.res = { { ACPI_RES_MEM32, (uint32_t)m->base, (uint32_t)KILN_VIRTIO_MMIO_SIZE },
			 { ACPI_RES_GSI, m->gsi, 0 } },
	};

	snprintf(d.name, sizeof(d.name), "VR%02u", m->slot);
	device_describe(acpi, &d);
}

/* " virtio_mmio.device=4K@0x...:GSI", which kernels with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES
 * read; Debian's find the slot through the DSDT as well. */
static int mmio_cmdline(void *t, char *buf, size_t len)
{
	const struct virtio_mmio *m = t;

	return snprintf(buf, len, " virtio_mmio.device=%lluK@0x%llx:%u",
			(unsigned long long)KILN_VIRTIO_MMIO_SIZE >> 10, (unsigned long long)m->base,
			m->gsi);
}

/* Section "vmmio" / instance, version 1: the selectors, u32 each (device features, driver
 * features, queue); then the device's "virtio" section. */
static void mmio_save(void *t, struct snap_writer *w, uint32_t instance)
{
	struct virtio_mmio *m = t;
	struct snap_enc e = { 0 };

	pthread_mutex_lock(&m->dev->lock);
	snap_enc_u32(&e, m->device_features_sel);
	snap_enc_u32(&e, m->driver_features_sel);
	snap_enc_u32(&e, m->queue_sel);
	pthread_mutex_unlock(&m->dev->lock);
	snap_put_enc(w, "vmmio", instance, 1, &e);
	virtio_dev_save(m->dev, w, instance);
}

static int mmio_load(void *t, const struct snap_reader *r, uint32_t instance, char *err,
		     size_t errlen)
{
	struct virtio_mmio *m = t;
	uint32_t version;
	size_t len;
	const void *p = snap_get_section(r, "vmmio", instance, 1, &version, &len, err, errlen);
	uint32_t sel[3];
	struct snap_dec d;

	if (!p)
		return -EINVAL;
	snap_dec_init(&d, p, len);
	for (unsigned i = 0; i < 3; i++)
		sel[i] = snap_dec_u32(&d);
	if (!snap_dec_done(&d)) {
		snprintf(err, errlen, "snapshot: section \"vmmio\" instance %u is malformed", instance);
		return -EINVAL;
	}
	pthread_mutex_lock(&m->dev->lock);
	m->device_features_sel = sel[0];
	m->driver_features_sel = sel[1];
	m->queue_sel = sel[2]; /* selected() checks it at every use */
	pthread_mutex_unlock(&m->dev->lock);
	return virtio_dev_load(m->dev, r, instance, err, errlen);
}

const struct virtio_transport_ops virtio_mmio_ops = {
	.name = "virtio-mmio",
	.create = mmio_create,
	.destroy = mmio_destroy,
	.describe = mmio_describe,
	.cmdline = mmio_cmdline,
	.save = mmio_save,
	.load = mmio_load,
};
