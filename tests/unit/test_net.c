/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for virtio-net (virtio 1.2 §5.1) driven as a guest driver would through a fake
 * guest memory, over a fake backend that records what the device sends, and over the real
 * user-mode backend (libslirp) answering an ARP request. Hostile-driver cases: frames too
 * short or too long, receive buffers smaller than the header, buffers too small for a frame
 * without mergeable buffers. */
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/if_ether.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/net_backend.h"
#include "kiln/virtio.h"
#include "common/virtio_driver.h"

#define FAKE_RAM (1u << 20)
#define QSIZE 8u
#define RXQ 0
#define TXQ 1
#define RING_GPA(q, part) (0x1000u + (q) * 0x4000u + (part) * 0x1000u) /* desc, avail, used */
#define BUF_GPA 0x10000u
#define BIT(f) (1ull << (f))
#define BASE_FEATURES (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MAC))

static struct guest_mem mem;
static uint8_t *ram;
static unsigned notifies[2], config_notifies;

/* The fake backend: what the device sent, and how it was told about the guest. */
struct fake {
	struct net_backend be;
	unsigned sent, resumed;
	size_t last_len;
	uint8_t last[NET_HDR_LEN + NET_MAX_FRAME];
	int send_result;
	uint64_t offloads;
	int offloads_result;
};

static int fake_send(struct net_backend *be, const struct iovec *iov, int n)
{
	struct fake *f = (struct fake *)be;

	f->last_len = 0;
	for (int i = 0; i < n; i++) {
		memcpy(f->last + f->last_len, iov[i].iov_base, iov[i].iov_len);
		f->last_len += iov[i].iov_len;
	}
	f->sent++;
	return f->send_result;
}

static void fake_rx_resume(struct net_backend *be) { ((struct fake *)be)->resumed++; }

static int fake_set_offloads(struct net_backend *be, uint64_t features)
{
	((struct fake *)be)->offloads = features;
	return ((struct fake *)be)->offloads_result;
}

static void fake_free(struct net_backend *be) {}

static const struct net_backend_ops fake_ops = {
	.send = fake_send, .rx_resume = fake_rx_resume, .set_offloads = fake_set_offloads,
	.free = fake_free,
};

static struct fake fake;

static void *gpa(uint64_t a) { return ram + a; }
static struct vring_desc *desc(unsigned q, unsigned i) { return (struct vring_desc *)gpa(RING_GPA(q, 0)) + i; }
static struct vring_avail *avail(unsigned q) { return gpa(RING_GPA(q, 1)); }
static struct vring_used *used(unsigned q) { return gpa(RING_GPA(q, 2)); }

static void set_desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	*desc(q, i) = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void offer(unsigned q, uint16_t head)
{
	avail(q)->ring[avail(q)->idx % QSIZE] = head;
	avail(q)->idx++;
}

static void fake_notify(struct virtio_dev *dev, unsigned q)
{
	if (q == VIRTIO_CONFIG_IRQ)
		config_notifies++;
	else
		notifies[q]++;
}

static int setup(void **state)
{
	ram = calloc(1, FAKE_RAM);
	mem = (struct guest_mem){ .nr_regions = 1, .size = FAKE_RAM,
				  .region = { { .gpa = 0, .size = FAKE_RAM, .hva = ram } } };
	memset(notifies, 0, sizeof(notifies));
	config_notifies = 0;
	memset(&fake, 0, sizeof(fake));
	fake.be = (struct net_backend){ .ops = &fake_ops, .vnet_hdr = true };
	return ram ? 0 : -1;
}

static int teardown(void **state)
{
	free(ram);
	return 0;
}

/* §3.1.1 for both queues with @features; returns the device. */
static struct virtio_dev *net_up(struct net_backend *be, uint64_t features)
{
	struct virtio_dev *dev = virtio_net_new(&mem, be, NULL, 0);

	assert_non_null(dev);
	dev->transport.notify = fake_notify;
	assert_true(test_driver_features(dev, features));
	for (unsigned q = 0; q < 2; q++)
		test_driver_queue(dev, q, QSIZE, RING_GPA(q, 0), RING_GPA(q, 1), RING_GPA(q, 2));
	virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	return dev;
}

/* Offer a frame of @len bytes to the device as the backend would. */
static bool deliver(const void *frame, size_t len)
{
	return fake.be.rx.deliver(fake.be.rx.opaque, &(struct iovec){ (void *)frame, len }, 1);
}

/* A host that refuses the guest's offloads is reported once, however often the driver resets
 * and sets DRIVER_OK again (with a log file the lines could fill the host's disk). */
static void test_refused_offloads_logged_once(void **state)
{
	struct virtio_dev *dev;
	char buf[65536];
	unsigned lines = 0;
	ssize_t n;
	int p[2];

	fake.offloads_result = -EINVAL;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	log_set_fd(p[1]);
	dev = net_up(&fake.be, BASE_FEATURES | BIT(VIRTIO_NET_F_GUEST_CSUM));
	for (unsigned i = 0; i < 1000; i++) {
		virtio_dev_set_status(dev, 0);
		assert_true(test_driver_features(dev, BASE_FEATURES | BIT(VIRTIO_NET_F_GUEST_CSUM)));
		virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	}
	log_set_fd(STDERR_FILENO);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	assert_int_equal(lines, 1);
	close(p[0]);
	close(p[1]);
	virtio_dev_free(dev);
}

static void test_config_and_features(void **state)
{
	struct virtio_dev *dev = virtio_net_new(&mem, &fake.be, NULL, 3);
	uint8_t mac[6], status[2];

	assert_non_null(dev);
	virtio_dev_config_read(dev, 0, mac, 6);
	assert_memory_equal(mac, ((uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x59 }), 6);
	virtio_dev_config_read(dev, 6, status, 2);
	assert_int_equal(status[0], VIRTIO_NET_S_LINK_UP);
	assert_true(dev->device_features & BIT(VIRTIO_NET_F_MRG_RXBUF));
	assert_true(dev->device_features & BIT(VIRTIO_NET_F_HOST_TSO4));
	assert_true(dev->device_features & BIT(VIRTIO_NET_F_GUEST_CSUM));
	virtio_dev_free(dev);

	/* Without a virtio-net header on the host side there are no offloads to pass on. */
	fake.be.vnet_hdr = false;
	dev = virtio_net_new(&mem, &fake.be, (uint8_t[]){ 2, 0, 0, 0, 0, 1 }, 0);
	virtio_dev_config_read(dev, 0, mac, 6);
	assert_memory_equal(mac, ((uint8_t[]){ 2, 0, 0, 0, 0, 1 }), 6);
	assert_false(dev->device_features & (BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM) |
					     BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO4)));
	assert_true(dev->device_features & BIT(VIRTIO_NET_F_MRG_RXBUF));
	virtio_dev_free(dev);
}

static void test_offloads_follow_the_driver(void **state)
{
	uint64_t f = BASE_FEATURES | BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4);
	struct virtio_dev *dev = net_up(&fake.be, f);

	assert_int_equal(fake.offloads & f, f);
	virtio_dev_set_status(dev, 0); /* reset: no offloaded frames for a driver that is gone */
	assert_int_equal(fake.offloads, 0);
	virtio_dev_free(dev);
}

static void test_transmit(void **state)
{
	struct virtio_dev *dev = net_up(&fake.be, BASE_FEATURES);
	const struct net_counters *c = &fake.be.stats;
	uint8_t *buf = gpa(BUF_GPA);

	/* A 60-byte frame after the header, split over two descriptors. */
	for (unsigned i = 0; i < NET_HDR_LEN + 60; i++)
		buf[i] = (uint8_t)i;
	set_desc(TXQ, 0, BUF_GPA, NET_HDR_LEN, VRING_DESC_F_NEXT, 1);
	set_desc(TXQ, 1, BUF_GPA + NET_HDR_LEN, 60, 0, 0);
	offer(TXQ, 0);
	virtio_dev_queue_notify(dev, TXQ);
	assert_int_equal(fake.sent, 1);
	assert_int_equal(fake.last_len, NET_HDR_LEN + 60); /* the tap takes the header too */
	assert_memory_equal(fake.last, buf, NET_HDR_LEN + 60);
	assert_int_equal(used(TXQ)->idx, 1);
	assert_int_equal(c->tx_packets, 1);
	assert_int_equal(c->tx_bytes, 60);
	assert_int_equal(notifies[TXQ], 1);

	/* Hostile: shorter than header + Ethernet header; longer than any frame; refused by the
	 * host. Each is dropped and counted, the buffers come back, the device goes on. */
	set_desc(TXQ, 2, BUF_GPA, NET_HDR_LEN + ETH_HLEN - 1, 0, 0);
	offer(TXQ, 2);
	set_desc(TXQ, 3, BUF_GPA, NET_HDR_LEN + NET_MAX_FRAME + 1, 0, 0);
	offer(TXQ, 3);
	virtio_dev_queue_notify(dev, TXQ);
	assert_int_equal(fake.sent, 1);
	fake.send_result = -EINVAL;
	set_desc(TXQ, 4, BUF_GPA, NET_HDR_LEN + 60, 0, 0);
	offer(TXQ, 4);
	virtio_dev_queue_notify(dev, TXQ);
	assert_int_equal(fake.sent, 2);
	assert_int_equal(used(TXQ)->idx, 4);
	assert_int_equal(c->tx_dropped, 3);
	assert_int_equal(c->tx_packets, 1);
	assert_int_equal(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	virtio_dev_free(dev);
}

static void test_transmit_without_vnet_header(void **state)
{
	struct virtio_dev *dev;

	fake.be.vnet_hdr = false;
	dev = net_up(&fake.be, BASE_FEATURES);
	memset(gpa(BUF_GPA), 0xab, NET_HDR_LEN);
	memset(gpa(BUF_GPA + NET_HDR_LEN), 0xcd, 60);
	set_desc(TXQ, 0, BUF_GPA, NET_HDR_LEN + 60, 0, 0);
	offer(TXQ, 0);
	virtio_dev_queue_notify(dev, TXQ);
	assert_int_equal(fake.last_len, 60);
	assert_int_equal(fake.last[0], 0xcd);
	virtio_dev_free(dev);
}

static void test_receive_mergeable(void **state)
{
	struct virtio_dev *dev = net_up(&fake.be, BASE_FEATURES | BIT(VIRTIO_NET_F_MRG_RXBUF));
	uint8_t frame[NET_HDR_LEN + 2500];
	struct virtio_net_hdr_mrg_rxbuf *h;

	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	memset(frame, 0, NET_HDR_LEN);
	/* No buffers yet: the backend keeps the frame until the driver posts some. */
	assert_false(deliver(frame, sizeof(frame)));
	for (unsigned i = 0; i < 3; i++) {
		set_desc(RXQ, i, BUF_GPA + i * 0x1000, 1000, VRING_DESC_F_WRITE, 0);
		offer(RXQ, (uint16_t)i);
	}
	virtio_dev_queue_notify(dev, RXQ);
	assert_int_equal(fake.resumed, 1);
	assert_true(deliver(frame, sizeof(frame)));
	/* One frame, three buffers, returned together; num_buffers in the first header. */
	assert_int_equal(used(RXQ)->idx, 3);
	assert_int_equal(used(RXQ)->ring[0].len, 1000);
	assert_int_equal(used(RXQ)->ring[1].len, 1000);
	assert_int_equal(used(RXQ)->ring[2].len, sizeof(frame) - 2000);
	h = gpa(BUF_GPA);
	assert_int_equal(h->num_buffers, 3);
	assert_memory_equal(gpa(BUF_GPA + NET_HDR_LEN), frame + NET_HDR_LEN, 1000 - NET_HDR_LEN);
	assert_memory_equal(gpa(BUF_GPA + 0x1000), frame + 1000, 1000);
	assert_memory_equal(gpa(BUF_GPA + 0x2000), frame + 2000, sizeof(frame) - 2000);
	assert_int_equal(fake.be.stats.rx_packets, 1);
	assert_int_equal(fake.be.stats.rx_bytes, 2500);
	assert_int_equal(notifies[RXQ], 1);

	/* Two buffers for a frame that needs three: both go back to the ring, nothing is used. */
	for (unsigned i = 3; i < 5; i++) {
		set_desc(RXQ, i, BUF_GPA + i * 0x1000, 1000, VRING_DESC_F_WRITE, 0);
		offer(RXQ, (uint16_t)i);
	}
	assert_false(deliver(frame, sizeof(frame)));
	assert_int_equal(used(RXQ)->idx, 3);
	set_desc(RXQ, 5, BUF_GPA + 5 * 0x1000, 1000, VRING_DESC_F_WRITE, 0);
	offer(RXQ, 5);
	assert_true(deliver(frame, sizeof(frame)));
	assert_int_equal(used(RXQ)->idx, 6);
	assert_int_equal(used(RXQ)->ring[3].id, 3);
	virtio_dev_free(dev);
}

static void test_receive_hostile_buffers(void **state)
{
	struct virtio_dev *dev = net_up(&fake.be, BASE_FEATURES);
	uint8_t frame[NET_HDR_LEN + 1500] = { 0 };

	/* Without mergeable buffers a frame must fit one chain: a small one is left alone and
	 * the frame dropped. */
	set_desc(RXQ, 0, BUF_GPA, 100, VRING_DESC_F_WRITE, 0);
	offer(RXQ, 0);
	assert_true(deliver(frame, sizeof(frame)));
	assert_int_equal(used(RXQ)->idx, 0);
	assert_int_equal(fake.be.stats.rx_dropped, 1);
	/* A frame that fits is delivered into that same buffer. */
	assert_true(deliver(frame, 100));
	assert_int_equal(used(RXQ)->idx, 1);
	assert_int_equal(used(RXQ)->ring[0].len, 100);
	/* A runt from the backend is dropped before it reaches the ring. */
	assert_true(deliver(frame, NET_HDR_LEN + 4));
	assert_int_equal(fake.be.stats.rx_dropped, 2);
	/* A buffer too small for the header breaks the ring (§5.1.6.3.1). */
	set_desc(RXQ, 1, BUF_GPA, 4, VRING_DESC_F_WRITE, 0);
	offer(RXQ, 1);
	assert_true(deliver(frame, 100));
	assert_true(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(config_notifies, 1);
	/* Frames for a device that needs a reset are dropped, not kept. */
	assert_true(deliver(frame, 100));
	virtio_dev_free(dev);
}

static void test_receive_before_driver_ok(void **state)
{
	struct virtio_dev *dev = virtio_net_new(&mem, &fake.be, NULL, 0);
	uint8_t frame[NET_HDR_LEN + 60] = { 0 };

	assert_true(deliver(frame, sizeof(frame)));
	assert_int_equal(fake.be.stats.rx_dropped, 1);
	virtio_dev_free(dev);
}

/* --- the user-mode backend: a real slirp answers the guest's ARP request ---------------- */

static void test_user_mode_answers_arp(void **state)
{
	struct loop *loop;
	struct dev_host host = { .mem = &mem };
	struct net_config cfg = { .kind = NET_USER };
	struct error e;
	struct net_backend *be;
	struct virtio_dev *dev;
	uint8_t *tx = gpa(BUF_GPA), *rx = gpa(BUF_GPA + 0x1000) + NET_HDR_LEN;
	static const uint8_t arp[] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06,
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,              /* Ethernet/IPv4 request */
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 2, 15,      /* from the guest */
		0, 0, 0, 0, 0, 0, 10, 0, 2, 2,                         /* who has 10.0.2.2? */
	};

	assert_int_equal(loop_new(&loop), 0);
	host.loop = loop;
	be = net_backend_open(&host, &cfg, &e);
	assert_non_null(be);
	assert_false(be->vnet_hdr);
	dev = net_up(be, BASE_FEATURES | BIT(VIRTIO_NET_F_MRG_RXBUF));
	set_desc(RXQ, 0, BUF_GPA + 0x1000, 2048, VRING_DESC_F_WRITE, 0);
	offer(RXQ, 0);
	memset(tx, 0, NET_HDR_LEN);
	memcpy(tx + NET_HDR_LEN, arp, sizeof(arp));
	set_desc(TXQ, 0, BUF_GPA, NET_HDR_LEN + sizeof(arp), 0, 0);
	offer(TXQ, 0);
	virtio_dev_queue_notify(dev, TXQ);
	/* The answer waits in the backend (the device lock was held) until the loop runs; with a
	 * frame ready its poller does not let the loop sleep (this would block forever). */
	assert_int_equal(used(RXQ)->idx, 0);
	for (unsigned i = 0; i < 10 && used(RXQ)->idx == 0; i++)
		assert_true(loop_wait(loop, -1) >= 0);
	assert_int_equal(used(RXQ)->idx, 1);
	assert_int_equal(((struct virtio_net_hdr_mrg_rxbuf *)(rx - NET_HDR_LEN))->num_buffers, 1);
	assert_memory_equal(rx, ((uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }), 6);
	assert_int_equal(rx[12] << 8 | rx[13], 0x0806);         /* ARP */
	assert_int_equal(rx[20] << 8 | rx[21], 2);              /* a reply */
	assert_memory_equal(rx + 28, ((uint8_t[]){ 10, 0, 2, 2 }), 4);
	virtio_dev_free(dev);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_and_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_offloads_logged_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offloads_follow_the_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit_without_vnet_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_mergeable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_hostile_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_mode_answers_arp, setup, teardown),
	};
	char err[600];

	/* kiln loads these before its seccomp filters; the tests, before any test. */
	if (net_user_library_load(err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
