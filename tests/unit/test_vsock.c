/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for virtio-vsock (src/virtio/vsock.c) driven as a guest driver would, through a
 * fake guest memory, against host programs on real Unix sockets: the guest connects to a host
 * port, sends data, and the host program reads it (or does not: what kiln then holds for it is
 * bounded per VM). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/virtio.h"
#include "kiln/virtio_vsock.h"
#include "common/device_class.h"
#include "common/virtio_driver.h"

#define FAKE_RAM (4u << 20)
#define QSIZE 256u
#define RXQ 0u
#define TXQ 1u
#define EVQ 2u
#define RING(q) (0x10000u + (q) * 0x4000u) /* desc; avail at +0x1000, used at +0x2000 */
#define HDR_GPA 0x100000u
#define DATA_GPA 0x200000u
#define PAYLOAD (64u << 10)         /* the largest packet the device takes */
#define CREDIT (256u << 10)         /* kiln's buf_alloc per connection */
#define PORT 1025u
#define GUEST_CID 3u

static uint8_t *ram;
static struct guest_mem mem;
static struct loop *loop;
static struct dev_host host = { .mem = &mem };
static char uds[64], listen_path[80];
static int listener = -1;

static void *gpa(uint64_t a) { return ram + a; }
static void no_interrupt(struct virtio_dev *dev, unsigned q) { (void)dev; (void)q; }

static int setup(void **state)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	ram = calloc(1, FAKE_RAM);
	mem = (struct guest_mem){ .nr_regions = 1, .size = FAKE_RAM,
				  .region = { { .gpa = 0, .size = FAKE_RAM, .hva = ram } } };
	if (!ram || loop_new(&loop))
		return -1;
	host.loop = loop;
	snprintf(uds, sizeof(uds), "/tmp/kiln-test-vsock-%d", getpid());
	snprintf(listen_path, sizeof(listen_path), "%s_%u", uds, PORT);
	unlink(uds);
	unlink(listen_path);
	/* A host program at port PORT that accepts nothing and reads nothing: connections wait
	 * in its backlog and what the guest sends stays with kiln once the socket is full. */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", listen_path);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof(a)) || listen(listener, 512))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	close(listener);
	unlink(listen_path);
	unlink(uds);
	loop_free(loop);
	free(ram);
	return 0;
}

static struct virtio_dev *vsock_open(void)
{
	struct vsock_config cfg = { .guest_cid = GUEST_CID, .uds_path = uds };
	struct virtio_dev *dev = test_device_new(&virtio_vsock_class, &host, &cfg);

	assert_non_null(dev);
	dev->transport.notify = no_interrupt;
	assert_true(test_driver_features(dev, 1ull << VIRTIO_F_VERSION_1));
	for (unsigned q = RXQ; q <= EVQ; q++)
		test_driver_queue(dev, q, QSIZE, RING(q), RING(q) + 0x1000, RING(q) + 0x2000);
	virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(virtio_dev_live(dev));
	return dev;
}

/* One packet from the guest: @op from guest port @src to host port PORT, with @len bytes of
 * payload; the device serves it at once (its kick). */
static void guest_send(struct virtio_dev *dev, uint16_t op, uint32_t src, uint32_t len)
{
	struct vring_desc *d = gpa(RING(TXQ));
	struct vring_avail *avail = gpa(RING(TXQ) + 0x1000);
	struct virtio_vsock_hdr *h = gpa(HDR_GPA);

	*h = (struct virtio_vsock_hdr){ .src_cid = GUEST_CID, .dst_cid = 2, .src_port = src,
					.dst_port = PORT, .len = len,
					.type = VIRTIO_VSOCK_TYPE_STREAM, .op = op,
					.buf_alloc = CREDIT };
	d[0] = (struct vring_desc){ .addr = HDR_GPA, .len = sizeof(*h),
				    .flags = len ? VRING_DESC_F_NEXT : 0, .next = 1 };
	d[1] = (struct vring_desc){ .addr = DATA_GPA, .len = len };
	avail->ring[avail->idx % QSIZE] = 0;
	avail->idx++;
	virtio_dev_queue_notify(dev, TXQ);
}

static uint64_t counter(struct virtio_dev *dev, const char *name)
{
	struct device_counter c[DEVICE_MAX_COUNTERS];
	unsigned n = virtio_vsock_class.counters(dev, c, DEVICE_MAX_COUNTERS);

	for (unsigned i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return c[i].value;
	fail_msg("no counter %s", name);
	return 0;
}

/* A guest that opens many connections to a host program that never reads, and fills each
 * one's credit: kiln holds at most 16 MiB of unread data for the whole VM (not 512
 * connections x 256 KiB = 128 MiB); connections that need more are reset and counted. */
static void test_unread_data_is_bounded_per_vm(void **state)
{
	struct virtio_dev *dev = vsock_open();
	const unsigned conns = 100;

	for (unsigned i = 0; i < conns; i++) {
		guest_send(dev, VIRTIO_VSOCK_OP_REQUEST, 2000 + i, 0);
		for (unsigned k = 0; k < CREDIT / PAYLOAD; k++)
			guest_send(dev, VIRTIO_VSOCK_OP_RW, 2000 + i, PAYLOAD);
	}
	assert_int_equal(counter(dev, "conns_added"), conns);
	assert_int_equal(counter(dev, "tx_packets_count"), conns * (1 + CREDIT / PAYLOAD));
	/* Every connection's socket took less than its credit (the host reads nothing), so each
	 * needs a pending buffer; 64 of 256 KiB fit in 16 MiB, the rest are refused. */
	assert_int_equal(counter(dev, "tx_buffer_full_count"), conns - 64);
	assert_int_equal(counter(dev, "tx_bytes_count"), (uint64_t)conns * CREDIT);
	virtio_dev_free(dev);
}

/* What a host program reads after falling behind gives its buffer back to the VM's budget: a
 * connection that drains can fill up again without ever being refused. */
static void test_drained_buffers_return_to_the_budget(void **state)
{
	struct virtio_dev *dev = vsock_open();
	static uint8_t sink[CREDIT];
	int peer;

	guest_send(dev, VIRTIO_VSOCK_OP_REQUEST, 3000, 0);
	peer = accept(listener, NULL, NULL);
	assert_true(peer >= 0);
	for (unsigned round = 0; round < 80; round++) { /* 80 x 256 KiB: 20 MiB in all */
		size_t got = 0;

		for (unsigned k = 0; k < CREDIT / PAYLOAD; k++)
			guest_send(dev, VIRTIO_VSOCK_OP_RW, 3000, PAYLOAD);
		/* The host program catches up; kiln flushes the rest as its socket has room. */
		for (unsigned turn = 0; got < CREDIT; turn++) {
			ssize_t n = recv(peer, sink, sizeof(sink), MSG_DONTWAIT);

			assert_true(n > 0 || errno == EAGAIN);
			got += n > 0 ? (size_t)n : 0;
			assert_true(turn < 10000);
			loop_wait(loop, 10);
		}
	}
	assert_int_equal(counter(dev, "tx_buffer_full_count"), 0);
	assert_int_equal(counter(dev, "conns_killed"), 0);
	close(peer);
	virtio_dev_free(dev);
}

/* Callbacks the loop runs in @turns turns that do not wait. */
static int spin(unsigned turns)
{
	int n = 0;

	for (unsigned i = 0; i < turns; i++) {
		int ret = loop_wait(loop, 0);

		assert_true(ret >= 0);
		n += ret;
	}
	return n;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* A connection that ended while the guest has no receive buffer for its reset waits quietly:
 * its socket's hang-up or error is not reported to the loop turn after turn. Both ways: a
 * host program that asks for a guest port and gives up before the guest's driver is up, and
 * one that stops reading and goes away while the guest's data waits for it. */
static void test_ended_connections_do_not_spin(void **state)
{
	struct vsock_config cfg = { .guest_cid = GUEST_CID, .uds_path = uds };
	struct virtio_dev *dev = test_device_new(&virtio_vsock_class, &host, &cfg);
	int fd, peer;

	assert_non_null(dev);
	fd = unix_connect(uds);
	assert_int_equal(write(fd, "CONNECT 52\n", 11), 11);
	spin(5); /* accepted, the line read: a REQUEST waits for the driver */
	assert_int_equal(counter(dev, "conns_added"), 1);
	close(fd);
	assert_true(spin(100) <= 2);
	virtio_dev_free(dev);

	dev = vsock_open(); /* no receive buffers posted */
	guest_send(dev, VIRTIO_VSOCK_OP_REQUEST, 4000, 0);
	peer = accept(listener, NULL, NULL);
	assert_true(peer >= 0);
	for (unsigned k = 0; k < CREDIT / PAYLOAD; k++)
		guest_send(dev, VIRTIO_VSOCK_OP_RW, 4000, PAYLOAD);
	close(peer);
	assert_true(spin(100) <= 2);
	virtio_dev_free(dev);
}

/* Host programs that connect and never write their CONNECT line cannot lock the others out:
 * with every waiting place taken, a new connection replaces the one that waited longest. */
static void test_silent_host_programs_do_not_lock_out(void **state)
{
	struct vsock_config cfg = { .guest_cid = GUEST_CID, .uds_path = uds };
	struct virtio_dev *dev = test_device_new(&virtio_vsock_class, &host, &cfg);
	int silent[100], fd;

	assert_non_null(dev);
	for (unsigned i = 0; i < 100; i++) {
		silent[i] = unix_connect(uds);
		spin(2);
	}
	fd = unix_connect(uds);
	assert_int_equal(write(fd, "CONNECT 52\n", 11), 11);
	spin(5);
	assert_int_equal(counter(dev, "conns_added"), 1);
	close(fd);
	for (unsigned i = 0; i < 100; i++)
		close(silent[i]);
	virtio_dev_free(dev);
}

/* Out of file descriptors, accepting pauses rather than spinning the loop on a listening
 * socket it cannot serve, and resumes by itself once descriptors are free. */
static void test_accept_without_descriptors(void **state)
{
	struct vsock_config cfg = { .guest_cid = GUEST_CID, .uds_path = uds };
	struct virtio_dev *dev = test_device_new(&virtio_vsock_class, &host, &cfg);
	struct rlimit old, low;
	int fd, spare;

	assert_non_null(dev);
	fd = unix_connect(uds);
	spare = dup(0); /* the lowest free descriptor, then freed: the limit stops just above */
	assert_true(spare >= 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = (struct rlimit){ .rlim_cur = (rlim_t)spare, .rlim_max = old.rlim_max };
	close(spare);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_true(spin(100) <= 2); /* one failed accept, then quiet */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(write(fd, "CONNECT 52\n", 11), 11);
	for (unsigned i = 0; i < 30 && !counter(dev, "conns_added"); i++)
		loop_wait(loop, 20);
	assert_int_equal(counter(dev, "conns_added"), 1);
	close(fd);
	virtio_dev_free(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unread_data_is_bounded_per_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drained_buffers_return_to_the_budget, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ended_connections_do_not_spin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_host_programs_do_not_lock_out, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_accept_without_descriptors, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN); /* as kiln's main(): a peer gone is EPIPE */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
