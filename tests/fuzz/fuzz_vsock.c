/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile driver against virtio-vsock (src/virtio/vsock.c).
 *
 * The input is copied into a 64 KiB fake guest RAM from 0x1000, where the receive, transmit
 * and event queues' descriptor tables and available rings lie (0x1000 + 0x200 * q), so it
 * holds the rings and whatever packets the descriptors point to; its first bytes pick the
 * features and queue size. A host program listens at "<uds>_1025" (so a guest REQUEST to port
 * 1025 connects) and another connects to the device's socket and asks for guest port 5, so
 * both directions' states are reachable. The device serves the transmit queue, the loop runs
 * its sockets' callbacks, the receive queue is served. AddressSanitizer turns any access outside guest RAM or
 * the device's own memory into a crash; the target checks that no used index moves by more
 * than the queue holds. Build and run: scripts/fuzz [SECONDS].
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/virtio.h"
#include "kiln/virtio_vsock.h"
#include "common/device_class.h"
#include "common/virtio_driver.h"

#define RAM (64u << 10)
#define RING(q, part) (0x1000u + (q) * 0x200u + (part) * 0x100u) /* desc, avail */
#define USED(q) (0x3000u + (q) * 0x1000u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* As kiln's main(): a peer that went away (the HTTP server's or a host socket's) is an EPIPE
 * for the writer, not a SIGPIPE that ends the fuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static uint8_t *ram;
static struct guest_mem mem;
static struct loop *loop;
static char uds[108], side[108];
static int side_fd = -1;

static void no_interrupt(struct virtio_dev *dev, unsigned q) { (void)dev; (void)q; }
static uint16_t used_idx(unsigned q) { return ((struct vring_used *)(ram + USED(q)))->idx; }

static int unix_socket(const char *path, bool listening)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (listening ? bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8)
		      : connect(fd, (struct sockaddr *)&a, sizeof(a)))
		abort();
	return fd;
}

static void run_loop(void)
{
	for (int i = 0; i < 3; i++)
		loop_wait(loop, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dev_host host;
	struct vsock_config cfg = { .guest_cid = 3, .uds_path = uds };
	uint64_t features = 1ull << VIRTIO_F_VERSION_1;
	uint16_t qsize = 16, before[2];
	struct virtio_dev *dev;
	int client;

	if (!ram) {
		log_set_level(LOG_OFF);
		ram = malloc(RAM);
		mem = (struct guest_mem){ .nr_regions = 1, .size = RAM,
					  .region = { { .gpa = 0, .size = RAM, .hva = ram } } };
		host.mem = &mem;
		if (loop_new(&loop))
			abort();
		host.loop = loop;
		snprintf(uds, sizeof(uds), "/tmp/fuzz-vsock-%d.sock", getpid());
		snprintf(side, sizeof(side), "%s_1025", uds);
		unlink(uds); /* left by an earlier process with this pid that crashed */
		unlink(side);
		side_fd = unix_socket(side, true);
	}
	memset(ram, 0, RAM);
	if (size >= 2) {
		features |= (uint64_t)(data[0] & 0x30) << 24; /* INDIRECT_DESC, EVENT_IDX */
		qsize = (uint16_t)(1u << (data[1] % 5));
	}
	memcpy(ram + RING(0, 0), data, size < RAM - RING(0, 0) ? size : RAM - RING(0, 0));
	dev = test_device_new(&virtio_vsock_class, &host, &cfg);
	if (!dev)
		abort();
	dev->transport.notify = no_interrupt;
	if (test_driver_features(dev, features)) {
		for (unsigned q = 0; q < 3; q++)
			test_driver_queue(dev, q, qsize, RING(q, 0), RING(q, 1), USED(q));
		virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	}
	client = unix_socket(uds, false);
	if (write(client, "CONNECT 5\n", 10) != 10)
		abort();
	before[0] = used_idx(0);
	before[1] = used_idx(1);
	run_loop();
	virtio_dev_queue_notify(dev, 1);
	run_loop();
	virtio_dev_queue_notify(dev, 0);
	run_loop();
	for (unsigned q = 0; q < 2; q++)
		if ((uint16_t)(used_idx(q) - before[q]) > qsize && virtio_dev_live(dev))
			abort();
	virtio_dev_free(dev);
	close(client);
	for (int fd; (fd = accept(side_fd, NULL, NULL)) >= 0;)
		close(fd);
	return 0;
}
