/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile driver against virtio-net.
 *
 * The input is copied into a 64 KiB fake guest RAM from 0x1000, where the receive queue's
 * descriptor table (0x1000) and available ring (0x1100) and the transmit queue's (0x1200,
 * 0x1300) lie, so it holds both rings and whatever the descriptors point to; its first 8 bytes
 * pick the features (mergeable buffers, indirect tables, event index), the queue size and the
 * size of a frame the backend then delivers. The device transmits whatever chains it finds to
 * a fake backend and receives the frame into whatever buffers it finds. AddressSanitizer turns
 * any access outside guest RAM or the device's own memory into a crash; the target checks
 * that no used index moves by more than the queue holds. Build and run: scripts/fuzz [SECONDS].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "kiln/log.h"
#include "kiln/net_backend.h"
#include "kiln/virtio.h"
#include "common/virtio_driver.h"

#define RAM (64u << 10)
#define RING(q, part) (0x1000u + (q) * 0x200u + (part) * 0x100u) /* desc, avail */
#define USED(q) (0x3000u + (q) * 0x1000u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram, frame[NET_HDR_LEN + NET_MAX_FRAME];
static struct guest_mem mem;

static int sink_send(struct net_backend *be, const struct iovec *iov, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (len > NET_HDR_LEN + NET_MAX_FRAME)
		abort(); /* the device checks the length before it sends */
	return 0;
}

static void no_resume(struct net_backend *be) { (void)be; }
static int no_offloads(struct net_backend *be, uint64_t f) { (void)be; (void)f; return 0; }
static void no_free(struct net_backend *be) { (void)be; }
static void no_interrupt(struct virtio_dev *dev, unsigned q) { (void)dev; (void)q; }

static const struct net_backend_ops sink_ops = {
	.send = sink_send, .rx_resume = no_resume, .set_offloads = no_offloads, .free = no_free,
};

static uint16_t used_idx(unsigned q) { return ((struct vring_used *)(ram + USED(q)))->idx; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_backend be = { .ops = &sink_ops, .vnet_hdr = true };
	uint64_t features = (1ull << VIRTIO_F_VERSION_1);
	uint16_t qsize = 16, before[2];
	size_t frame_len = 60 + NET_HDR_LEN;
	struct virtio_dev *dev;

	if (!ram) {
		log_set_level(LOG_ERROR);
		ram = malloc(RAM);
		mem = (struct guest_mem){ .nr_regions = 1, .size = RAM,
					  .region = { { .gpa = 0, .size = RAM, .hva = ram } } };
	}
	memset(ram, 0, RAM);
	if (size >= 8) {
		features |= (uint64_t)(data[0] & 0x30) << 24; /* INDIRECT_DESC, EVENT_IDX */
		features |= (data[0] & 1) ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0;
		be.vnet_hdr = data[0] & 2;
		qsize = (uint16_t)(1u << (data[1] % 5)); /* 1..16 */
		frame_len = (size_t)(data[2] | data[3] << 8 | (data[4] & 1) << 16) % sizeof(frame);
	}
	memcpy(ram + RING(0, 0), data, size < RAM - RING(0, 0) ? size : RAM - RING(0, 0));
	dev = virtio_net_new(&mem, &be, NULL, 0);
	if (!dev)
		abort();
	dev->transport.notify = no_interrupt;
	if (test_driver_features(dev, features)) {
		for (unsigned q = 0; q < 2; q++)
			test_driver_queue(dev, q, qsize, RING(q, 0), RING(q, 1), USED(q));
		virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	}
	before[0] = used_idx(0);
	before[1] = used_idx(1);
	virtio_dev_queue_notify(dev, 1);
	virtio_dev_queue_notify(dev, 0);
	be.rx.deliver(be.rx.opaque, &(struct iovec){ frame, frame_len }, 1);
	virtio_dev_queue_notify(dev, 5); /* a queue that does not exist */
	for (unsigned q = 0; q < 2; q++)
		if ((uint16_t)(used_idx(q) - before[q]) > qsize && virtio_dev_live(dev))
			abort();
	virtio_dev_free(dev);
	return 0;
}
