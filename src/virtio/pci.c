/* SPDX-License-Identifier: Apache-2.0 */
/* pci — the virtio-pci transport, modern interface only (virtio 1.2 §4.1), see
 * include/kiln/virtio_transport.h.
 *
 * BAR 0 holds every window the capabilities point at:
 *   0x0000 common configuration (§4.1.4.3)     0x3000 notifications, 4 bytes per queue (§4.1.4.4)
 *   0x1000 ISR status (§4.1.4.5)               0x4000 MSI-X table, 0x5000 pending bits
 *   0x2000 device configuration (§4.1.4.6)
 * Notifications arrive through ioeventfds (a 16-bit write of the queue index); interrupts leave
 * through MSI-X irqfds, or INTx while the driver has not enabled MSI-X.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pci_regs.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>

#include "kiln/devices.h"
#include "kiln/pci.h"
#include "kiln/snapshot.h"
#include "kiln/virtio.h"
#include "kiln/virtio_transport.h"

#define BAR_SIZE 0x8000u
#define COMMON_OFF 0x0000u
#define ISR_OFF 0x1000u
#define DEVICE_OFF 0x2000u
#define NOTIFY_OFF 0x3000u
#define NOTIFY_MULT 4u
#define MSIX_TABLE_OFF 0x4000u
#define MSIX_PBA_OFF 0x5000u
#define WINDOW 0x1000u
#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040 /* + device type: modern devices (§4.1.2.1) */
#define VIRTIO_PCI_SUBSYS_ID 0x40     /* >= 0x40 for modern-only devices */

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *dev;
	struct virtio_kick kick[VIRTIO_MAX_QUEUES];
	uint32_t device_feature_select, guest_feature_select;
	uint16_t queue_select;
	uint16_t msix_config;
	uint8_t cfg_cap;   /* offset of the VIRTIO_PCI_CAP_PCI_CFG capability */
	struct log_once bad_access;
};

static struct virtio_pci *to_vp(struct pci_dev *pci) { return pci->opaque; }

static void vp_notify(struct virtio_dev *dev, unsigned q)
{
	struct virtio_pci *vp = dev->transport.opaque;
	uint16_t vector = q == VIRTIO_CONFIG_IRQ ? vp->msix_config : dev->q[q].msix_vector;

	if (!pci_msix_notify(&vp->pci, vector))
		pci_set_intx(&vp->pci, true);
}

static void vp_requeue(struct virtio_dev *dev, unsigned q)
{
	struct virtio_pci *vp = dev->transport.opaque;

	virtio_kick(vp->kick, q);
}

static struct virtq *selected(struct virtio_pci *vp)
{
	return vp->queue_select < vp->dev->ops->nr_queues ? &vp->dev->q[vp->queue_select] : NULL;
}

/* The common configuration structure as the driver sees it now. */
static struct virtio_pci_common_cfg common_snapshot(struct virtio_pci *vp)
{
	struct virtio_dev *dev = vp->dev;
	struct virtq *q = selected(vp);
	struct virtio_pci_common_cfg c = {
		.device_feature_select = vp->device_feature_select,
		.device_feature = virtio_dev_device_features(dev, vp->device_feature_select),
		.guest_feature_select = vp->guest_feature_select,
		.guest_feature = vp->guest_feature_select > 1 ? 0 :
			(uint32_t)(dev->driver_features >> (32 * vp->guest_feature_select)),
		.msix_config = vp->msix_config,
		.num_queues = (uint16_t)dev->ops->nr_queues,
		.device_status = dev->status,
		.config_generation = dev->config_generation,
		.queue_select = vp->queue_select,
	};

	if (q) {
		c.queue_size = q->size;
		c.queue_msix_vector = q->msix_vector;
		c.queue_enable = q->ready;
		c.queue_notify_off = vp->queue_select;
		c.queue_desc_lo = (uint32_t)q->desc_gpa;
		c.queue_desc_hi = (uint32_t)(q->desc_gpa >> 32);
		c.queue_avail_lo = (uint32_t)q->avail_gpa;
		c.queue_avail_hi = (uint32_t)(q->avail_gpa >> 32);
		c.queue_used_lo = (uint32_t)q->used_gpa;
		c.queue_used_hi = (uint32_t)(q->used_gpa >> 32);
	}
	return c;
}

/* Replace bytes [off, off + len) of the 64-bit queue address @addr (not while enabled). */
static void set_addr(struct virtq *q, uint64_t *addr, uint32_t off, const uint8_t *data, uint32_t len)
{
	if (q->ready || off + len > 8)
		return;
	for (uint32_t i = 0; i < len; i++)
		*addr = (*addr & ~(0xffull << (8 * (off + i)))) | ((uint64_t)data[i] << (8 * (off + i)));
}

static uint32_t le(const uint8_t *data, uint32_t len)
{
	uint32_t v = 0;

	for (uint32_t i = 0; i < len && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	return v;
}

static void common_write(struct virtio_pci *vp, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_dev *dev = vp->dev;
	struct virtq *q = selected(vp);
	uint32_t v = le(data, len);

#define FIELD(f) offsetof(struct virtio_pci_common_cfg, f)
	switch (off) {
	case FIELD(device_feature_select): vp->device_feature_select = v; return;
	case FIELD(guest_feature_select): vp->guest_feature_select = v; return;
	case FIELD(guest_feature): virtio_dev_set_driver_features(dev, vp->guest_feature_select, v); return;
	case FIELD(msix_config):
		vp->msix_config = v < vp->pci.msix.nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		return;
	case FIELD(device_status):
		virtio_dev_set_status(dev, (uint8_t)v);
		if (v == 0) {
			vp->msix_config = VIRTIO_MSI_NO_VECTOR;
			pci_set_intx(&vp->pci, false);
		}
		return;
	case FIELD(queue_select): vp->queue_select = (uint16_t)v; return;
	}
	if (!q)
		return;
	switch (off) {
	case FIELD(queue_size):
		if (!q->ready)
			q->size = (uint16_t)v;
		return;
	case FIELD(queue_msix_vector):
		/* A vector the function does not have reads back as NO_VECTOR (§4.1.5.1.2). */
		q->msix_vector = v < vp->pci.msix.nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		return;
	case FIELD(queue_enable):
		if (v == 1)
			virtio_dev_set_queue_ready(dev, vp->queue_select, true);
		return;
	}
	if (off >= FIELD(queue_desc_lo) && off < FIELD(queue_avail_lo))
		set_addr(q, &q->desc_gpa, off - FIELD(queue_desc_lo), data, len);
	else if (off >= FIELD(queue_avail_lo) && off < FIELD(queue_used_lo))
		set_addr(q, &q->avail_gpa, off - FIELD(queue_avail_lo), data, len);
	else if (off >= FIELD(queue_used_lo) && off < sizeof(struct virtio_pci_common_cfg))
		set_addr(q, &q->used_gpa, off - FIELD(queue_used_lo), data, len);
#undef FIELD
}

static void vp_bar_read(struct pci_dev *pci, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = to_vp(pci);

	memset(data, 0, len);
	if (off < COMMON_OFF + sizeof(struct virtio_pci_common_cfg)) {
		struct virtio_pci_common_cfg c = common_snapshot(vp);

		if (off + len <= sizeof(c))
			memcpy(data, (uint8_t *)&c + off, len);
	} else if (off == ISR_OFF) {
		/* Reading the ISR acknowledges it and deasserts INTx (§4.1.4.5.1). */
		data[0] = (uint8_t)vp->dev->isr;
		vp->dev->isr = 0;
		pci_set_intx(&vp->pci, false);
	} else if (off >= DEVICE_OFF && off < DEVICE_OFF + WINDOW) {
		virtio_dev_config_read(vp->dev, (uint32_t)(off - DEVICE_OFF), data, len);
	}
}

static void vp_bar_write(struct pci_dev *pci, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = to_vp(pci);

	if (off < COMMON_OFF + sizeof(struct virtio_pci_common_cfg)) {
		common_write(vp, (uint32_t)off, data, len);
	} else if (off >= DEVICE_OFF && off < DEVICE_OFF + WINDOW) {
		virtio_dev_config_write(vp->dev, (uint32_t)(off - DEVICE_OFF), data, len);
	} else if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULT * VIRTIO_MAX_QUEUES) {
		/* Only reached when the ioeventfd did not match (a wrong width or value). */
		if (!virtio_kick(vp->kick, le(data, len)) && log_once_first(&vp->bad_access))
			log_warn("virtio-pci %02x.0: notification for queue %u, which does not exist",
				 vp->pci.slot, le(data, len));
	}
}

/* VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): pci_cfg_data is a window onto BAR 0 at cap.offset. */
static bool cfg_window(struct virtio_pci *vp, uint32_t off, uint32_t len, uint32_t *bar_off,
		       uint32_t *bar_len)
{
	uint32_t data = vp->cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);

	if (!(off < data + 4 && off + len > data))
		return false;
	*bar_off = pci_cfg_get(&vp->pci, vp->cfg_cap + VIRTIO_PCI_CAP_OFFSET, 4);
	*bar_len = pci_cfg_get(&vp->pci, vp->cfg_cap + VIRTIO_PCI_CAP_LENGTH, 4);
	return vp->pci.cfg[vp->cfg_cap + VIRTIO_PCI_CAP_BAR] == 0 &&
	       (*bar_len == 1 || *bar_len == 2 || *bar_len == 4) && *bar_off < BAR_SIZE &&
	       *bar_off % *bar_len == 0;
}

/* An access to pci_cfg_data becomes the BAR access the capability describes. */
static void cfg_window_access(struct pci_dev *pci, uint32_t off, uint32_t len, bool write)
{
	struct virtio_pci *vp = to_vp(pci);
	uint8_t *data = pci->cfg + vp->cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint32_t bar_off, bar_len;

	if (!cfg_window(vp, off, len, &bar_off, &bar_len))
		return;
	if (write)
		vp_bar_write(pci, bar_off, data, bar_len);
	else
		vp_bar_read(pci, bar_off, data, bar_len);
}

static void vp_cfg_reading(struct pci_dev *pci, uint32_t off, uint32_t len) { cfg_window_access(pci, off, len, false); }
static void vp_cfg_written(struct pci_dev *pci, uint32_t off, uint32_t len) { cfg_window_access(pci, off, len, true); }

/* The guest moved BAR 0 (lock held): the notify ioeventfds follow it. */
static void vp_bar_moved(struct pci_dev *pci, uint32_t old)
{
	struct virtio_pci *vp = to_vp(pci);
	int ret = virtio_kicks_move(vp->kick, pci->host, old + NOTIFY_OFF, pci->bar_addr + NOTIFY_OFF,
				    NOTIFY_MULT, 2);

	if (ret && log_once_first(&vp->bad_access))
		log_warn("virtio-pci %02x.0: notify ioeventfds at the moved BAR 0x%x: %s; "
			 "notifications take the slow path", pci->slot, pci->bar_addr, strerror(-ret));
}

static const struct pci_dev_ops vp_ops = {
	.bar_read = vp_bar_read,
	.bar_write = vp_bar_write,
	.cfg_reading = vp_cfg_reading,
	.bar_moved = vp_bar_moved,
	.cfg_written = vp_cfg_written,
};

/* A vendor capability pointing at [offset, offset + length) of BAR 0. */
static uint8_t add_window_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset, uint32_t length,
			      uint8_t extra_len, uint32_t extra)
{
	uint8_t cap[20] = { PCI_CAP_ID_VNDR, 0, (uint8_t)(16 + extra_len), type, 0 };

	for (unsigned i = 0; i < 4; i++) {
		cap[VIRTIO_PCI_CAP_OFFSET + i] = (uint8_t)(offset >> (8 * i));
		cap[VIRTIO_PCI_CAP_LENGTH + i] = (uint8_t)(length >> (8 * i));
		cap[16 + i] = (uint8_t)(extra >> (8 * i));
	}
	return pci_add_cap(&vp->pci, cap, (uint8_t)(16 + extra_len), NULL);
}

static void vp_destroy(void *t)
{
	struct virtio_pci *vp = t;

	virtio_kicks_destroy(vp->kick);
	pci_dev_release(&vp->pci);
	free(vp);
}

static int vp_create(struct dev_host *host, struct virtio_dev *dev, unsigned index, void **out)
{
	static const uint8_t cfg_wmask[20] = { [VIRTIO_PCI_CAP_BAR] = 0xff,
		[VIRTIO_PCI_CAP_OFFSET] = 0xff, 0xff, 0xff, 0xff, [VIRTIO_PCI_CAP_LENGTH] = 0xff, 0xff,
		0xff, 0xff, [16] = 0xff, 0xff, 0xff, 0xff };
	uint8_t cfg_cap[20] = { PCI_CAP_ID_VNDR, 0, 20, VIRTIO_PCI_CAP_PCI_CFG };
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	unsigned nr_vectors = dev->ops->nr_queues + 1;
	int ret;

	if (!vp)
		return -ENOMEM;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->kick[i].fd = -1;
	vp->dev = dev;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	pci_dev_init(&vp->pci, &vp_ops, vp, &dev->lock, VIRTIO_PCI_VENDOR,
		     (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->ops->device_id), dev->ops->pci_class,
		     VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYS_ID, 1, BAR_SIZE);
	ret = -EOVERFLOW; /* the capabilities do not fit configuration space: kiln's bug */
	if (add_window_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFF, sizeof(struct virtio_pci_common_cfg), 0, 0) &&
	    add_window_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFF, NOTIFY_MULT * dev->ops->nr_queues, 4, NOTIFY_MULT) &&
	    add_window_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, ISR_OFF, 1, 0, 0) &&
	    (dev->ops->config_len == 0 ||
	     add_window_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_OFF, dev->ops->config_len, 0, 0)) &&
	    (vp->cfg_cap = pci_add_cap(&vp->pci, cfg_cap, sizeof(cfg_cap), cfg_wmask)))
		ret = pci_msix_init(&vp->pci, (uint16_t)nr_vectors, MSIX_TABLE_OFF, MSIX_PBA_OFF);
	if (!ret)
		ret = pci_bus_add(host->pci, &vp->pci);
	if (!ret)
		ret = virtio_kicks_create(vp->kick, dev, host, vp->pci.bar_addr + NOTIFY_OFF, NOTIFY_MULT, 2);
	if (ret) {
		vp_destroy(vp);
		return ret;
	}
	dev->transport = (struct virtio_notifier){ .notify = vp_notify, .requeue = vp_requeue,
						   .opaque = vp };
	*out = vp;
	return 0;
}

/* Section "vpci" / instance, version 1: the function's state (pci_dev_state_encode()), u32
 * device_feature_select, u32 guest_feature_select, u16 queue_select, u16 msix_config, 4 zero
 * bytes; then the device's "virtio" section. */
static void vp_save(void *t, struct snap_writer *w, uint32_t instance)
{
	struct virtio_pci *vp = t;
	struct pci_dev_state pci;
	struct snap_enc e = { 0 };

	pthread_mutex_lock(&vp->dev->lock);
	pci_dev_save(&vp->pci, &pci);
	pci_dev_state_encode(&e, &pci);
	snap_enc_u32(&e, vp->device_feature_select);
	snap_enc_u32(&e, vp->guest_feature_select);
	snap_enc_u16(&e, vp->queue_select);
	snap_enc_u16(&e, vp->msix_config);
	snap_enc_u32(&e, 0);
	pthread_mutex_unlock(&vp->dev->lock);
	snap_put_enc(w, "vpci", instance, 1, &e);
	virtio_dev_save(vp->dev, w, instance);
}

static int vp_load(void *t, const struct snap_reader *r, uint32_t instance, char *err,
		   size_t errlen)
{
	struct virtio_pci *vp = t;
	uint32_t version, dfs, gfs;
	uint16_t qs, msix_config;
	struct pci_dev_state pci;
	struct snap_dec d;
	size_t len;
	const void *p = snap_get_section(r, "vpci", instance, 1, &version, &len, err, errlen);
	int ret;

	if (!p)
		return -EINVAL;
	snap_dec_init(&d, p, len);
	pci_dev_state_decode(&d, &pci);
	dfs = snap_dec_u32(&d);
	gfs = snap_dec_u32(&d);
	qs = snap_dec_u16(&d);
	msix_config = snap_dec_u16(&d);
	snap_dec_u32(&d); /* zero */
	if (!snap_dec_done(&d)) {
		snprintf(err, errlen, "snapshot: section \"vpci\" instance %u is malformed", instance);
		return -EINVAL;
	}
	pthread_mutex_lock(&vp->dev->lock);
	ret = pci_dev_load(&vp->pci, &pci, err, errlen);
	if (!ret) {
		vp->device_feature_select = dfs;
		vp->guest_feature_select = gfs;
		vp->queue_select = qs; /* selected() checks it at every use */
		vp->msix_config = msix_config;
	}
	pthread_mutex_unlock(&vp->dev->lock);
	return ret ? ret : virtio_dev_load(vp->dev, r, instance, err, errlen);
}

const struct virtio_transport_ops virtio_pci_ops = {
	.name = "virtio-pci",
	.create = vp_create,
	.destroy = vp_destroy,
	.save = vp_save,
	.load = vp_load,
};
