/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile driver against the virtio core and virtio-blk.
 *
 * The input is copied into a 64 KiB fake guest RAM at the descriptor table, so it holds the
 * table, the available ring and whatever indirect tables and request headers it points to; its first 8 bytes pick the negotiated
 * features and queue size. The blk device serves whatever chains it finds over a 64 KiB
 * in-memory image. AddressSanitizer turns any access outside guest RAM or the device's own
 * memory into a crash; the target itself checks that the used index only moves by what the
 * device completed. Build and run: scripts/fuzz [SECONDS].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "kiln/log.h"
#include "kiln/devices.h"
#include "kiln/virtio.h"
#include "kiln/virtio_blk.h"
#include "common/device_class.h"
#include "common/virtio_driver.h"

#define RAM (64u << 10)
#define DESC_GPA 0x1000u
#define AVAIL_GPA 0x1100u /* right after a 16-entry table, so short inputs reach the ring */
#define USED_GPA 0x3000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram;
static struct guest_mem mem;
static struct loop *loop;
static char image[64];

static void no_interrupt(struct virtio_dev *dev, unsigned q) { (void)dev; (void)q; }

static void init_once(void)
{
	int fd;

	if (ram)
		return;
	log_set_level(LOG_ERROR);
	if (loop_new(&loop))
		abort();
	ram = malloc(RAM);
	mem = (struct guest_mem){ .nr_regions = 1, .size = RAM,
				  .region = { { .gpa = 0, .size = RAM, .hva = ram } } };
	fd = memfd_create("fuzz-disk", 0);
	if (fd < 0 || ftruncate(fd, 64 << 10))
		abort();
	snprintf(image, sizeof(image), "/proc/self/fd/%d", fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk_config cfg = { .path = image, .engine = BLOCK_ENGINE_SYNC };
	struct dev_host host = { .mem = &mem };
	struct virtio_dev *dev;
	uint64_t features = (1ull << VIRTIO_F_VERSION_1);
	uint16_t qsize = 16, before;

	init_once();
	host.loop = loop;
	memset(ram, 0, RAM);
	if (size >= 8) {
		features |= (uint64_t)data[0] << 28; /* bits 28 (INDIRECT_DESC) and 29 (EVENT_IDX) */
		features &= (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			    (1ull << VIRTIO_RING_F_EVENT_IDX);
		qsize = (uint16_t)(1u << (data[1] % 5)); /* 1..16 */
		cfg.readonly = data[2] & 1;
	}
	memcpy(ram + DESC_GPA, data, size < RAM - DESC_GPA ? size : RAM - DESC_GPA);
	dev = test_device_new(&virtio_blk_class, &host, &cfg);
	if (!dev)
		abort();
	dev->transport.notify = no_interrupt;
	test_driver_init(dev, features, qsize, DESC_GPA, AVAIL_GPA, USED_GPA);
	before = ((struct vring_used *)(ram + USED_GPA))->idx;
	virtio_dev_queue_notify(dev, 0);
	virtio_dev_queue_notify(dev, 3); /* a queue that does not exist */
	/* Requests complete on the worker: finish them all into the used ring, as a snapshot does. */
	pthread_mutex_lock(&dev->lock);
	dev->ops->quiesce(dev);
	pthread_mutex_unlock(&dev->lock);
	/* The device completes at most what the driver offered. */
	if ((uint16_t)(((struct vring_used *)(ram + USED_GPA))->idx - before) > qsize &&
	    virtio_dev_live(dev))
		abort();
	virtio_dev_free(dev);
	return 0;
}
