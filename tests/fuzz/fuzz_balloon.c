/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile driver against virtio-balloon (src/virtio/balloon.c).
 *
 * The input is copied into a 64 KiB fake guest RAM from 0x1000, where the four queues'
 * descriptor tables and available rings lie (0x1000 + 0x200 * q), so it holds the rings and
 * the page frame numbers, statistics and reports they point to; its first bytes pick the
 * features (statistics, reporting, indirect descriptors, event index) and the queue size.
 * Every queue is served, the statistics timer's work is done, a new target is set.
 * AddressSanitizer turns any access outside guest RAM or the device's memory into a crash;
 * page frames outside RAM must be refused (counted), never given to madvise. Build and run:
 * scripts/fuzz [SECONDS].
 */
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/virtio.h"
#include "kiln/virtio_balloon.h"
#include "common/device_class.h"
#include "common/virtio_driver.h"

#define RAM (64u << 10)
#define RING(q, part) (0x1000u + (q) * 0x200u + (part) * 0x100u) /* desc, avail */
#define USED(q) (0x3000u + (q) * 0x1000u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram;
static struct guest_mem mem;

static void no_interrupt(struct virtio_dev *dev, unsigned q) { (void)dev; (void)q; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dev_host host;
	struct balloon_config cfg = { .target_bytes = 1 << 20,
				      .deflate_on_oom = true, .free_page_reporting = true,
				      .stats_interval_s = 1 };
	uint64_t features = 1ull << VIRTIO_F_VERSION_1;
	uint16_t qsize = 16;
	struct balloon_stats stats;
	struct virtio_dev *dev;

	if (!ram) {
		log_set_level(LOG_OFF);
		ram = aligned_alloc(4096, RAM);
		mem = (struct guest_mem){ .nr_regions = 1, .size = RAM,
					  .region = { { .gpa = 0, .size = RAM, .hva = ram } } };
		host.mem = &mem;
		if (loop_new(&host.loop))
			abort();
	}
	memset(ram, 0, RAM);
	if (size >= 2) {
		features |= (uint64_t)(data[0] & 0x30) << 24; /* INDIRECT_DESC, EVENT_IDX */
		features |= (uint64_t)(data[0] & 0x03) << 1 | (data[0] & 0x40 ? 1ull << 5 : 0);
		qsize = (uint16_t)(1u << (data[1] % 5));
	}
	memcpy(ram + RING(0, 0), data, size < RAM - RING(0, 0) ? size : RAM - RING(0, 0));
	dev = test_device_new(&virtio_balloon_class, &host, &cfg);
	if (!dev)
		abort();
	dev->transport.notify = no_interrupt;
	if (test_driver_features(dev, features)) {
		for (unsigned q = 0; q < 4; q++)
			test_driver_queue(dev, q, qsize, RING(q, 0), RING(q, 1), USED(q));
		virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	}
	for (unsigned q = 0; q < 5; q++)
		virtio_dev_queue_notify(dev, q);
	if (virtio_balloon_set_target(dev, 2 << 20))
		abort();
	virtio_balloon_stats(dev, &stats);
	if (stats.target_pages != 512)
		abort();
	virtio_dev_free(dev);
	return 0;
}
