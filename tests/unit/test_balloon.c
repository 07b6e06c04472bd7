/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for virtio-balloon (virtio 1.2 §5.5) driven as Linux's driver drives it, over a
 * fake guest memory: the first statistics buffer offered before DRIVER_OK, the buffer handed
 * back on every timer tick and refilled, inflation giving pages back to the host (they read
 * as zeros again), page frames outside RAM refused, queue numbering without the statistics
 * queue, a new target as a configuration change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "kiln/devices.h"
#include "kiln/virtio.h"
#include "kiln/virtio_balloon.h"
#include "common/device_class.h"
#include "common/virtio_driver.h"

#define FAKE_RAM (1u << 20)
#define QSIZE 8u
#define RING_GPA(q, part) (0x1000u + (q) * 0x3000u + (part) * 0x1000u) /* desc, avail, used */
#define BUF_GPA 0x10000u
#define DATA_GPA 0x40000u
#define BIT(f) (1ull << (f))

static uint8_t *ram;
static struct guest_mem mem;
static unsigned notifies[4], config_notifies;
static struct loop *loop;


static struct dev_host host = { .mem = &mem };

static void fake_notify(struct virtio_dev *dev, unsigned q)
{
	if (q == VIRTIO_CONFIG_IRQ)
		config_notifies++;
	else
		notifies[q]++;
}

static void *gpa(uint64_t a) { return ram + a; }
static struct vring_desc *desc(unsigned q, unsigned i) { return (struct vring_desc *)gpa(RING_GPA(q, 0)) + i; }
static struct vring_avail *avail(unsigned q) { return gpa(RING_GPA(q, 1)); }
static struct vring_used *used(unsigned q) { return gpa(RING_GPA(q, 2)); }

static void offer(unsigned q, uint16_t head, uint64_t addr, uint32_t len)
{
	*desc(q, head) = (struct vring_desc){ .addr = addr, .len = len };
	avail(q)->ring[avail(q)->idx % QSIZE] = head;
	avail(q)->idx++;
}

static int setup(void **state)
{
	ram = aligned_alloc(4096, FAKE_RAM);
	if (!ram)
		return -1;
	memset(ram, 0, FAKE_RAM);
	mem = (struct guest_mem){ .nr_regions = 1, .size = FAKE_RAM,
				  .region = { { .gpa = 0, .size = FAKE_RAM, .hva = ram } } };
	memset(notifies, 0, sizeof(notifies));
	config_notifies = 0;
	if (loop_new(&loop))
		return -1;
	host.loop = loop;
	return 0;
}

static int teardown(void **state)
{
	loop_free(loop);
	free(ram);
	return 0;
}

static struct virtio_dev *balloon_up(const struct balloon_config *cfg, uint64_t features,
				     unsigned nr_queues, bool stats_first)
{
	struct virtio_dev *dev = test_device_new(&virtio_balloon_class, &host, cfg);

	assert_non_null(dev);
	dev->transport.notify = fake_notify;
	assert_true(test_driver_features(dev, BIT(VIRTIO_F_VERSION_1) | features));
	for (unsigned q = 0; q < nr_queues; q++)
		test_driver_queue(dev, q, QSIZE, RING_GPA(q, 0), RING_GPA(q, 1), RING_GPA(q, 2));
	if (stats_first) { /* Linux offers and kicks its first statistics buffer now */
		struct virtio_balloon_stat *s = gpa(BUF_GPA);

		s[0] = (struct virtio_balloon_stat){ VIRTIO_BALLOON_S_MEMTOT, 512 << 20 };
		s[1] = (struct virtio_balloon_stat){ VIRTIO_BALLOON_S_MINFLT, 100 };
		offer(2, 0, BUF_GPA, 2 * sizeof(*s));
		virtio_dev_queue_notify(dev, 2); /* before DRIVER_OK: not served */
	}
	virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	return dev;
}

static void test_statistics_cycle(void **state)
{
	struct balloon_config cfg = { .stats_interval_s = 1 };
	struct virtio_dev *dev = balloon_up(&cfg, BIT(VIRTIO_BALLOON_F_STATS_VQ) |
					    BIT(VIRTIO_RING_F_EVENT_IDX), 3, true);
	struct vring_used *u = used(2);
	struct virtio_balloon_stat *s = gpa(BUF_GPA);
	struct balloon_stats st;

	virtio_balloon_stats(dev, &st);
	assert_int_equal(st.updates, 1); /* the buffer from before DRIVER_OK was taken */
	assert_int_equal(st.value[VIRTIO_BALLOON_S_MEMTOT], 512 << 20);
	assert_int_equal(used(2)->idx, 0); /* and kept */
	/* The interval elapses (the loop's timer fires after a second): the buffer goes back. */
	assert_int_equal(loop_wait(loop, 3000), 1);
	assert_int_equal(used(2)->idx, 1);
	assert_int_equal(notifies[2], 1);
	/* With EVENT_IDX the device asked to be kicked for the next buffer (avail_event). */
	assert_int_equal(*(uint16_t *)&u->ring[QSIZE], 1);
	/* The driver refills it and offers it again. */
	s[1].val = 250;
	offer(2, 0, BUF_GPA, 2 * sizeof(*s));
	virtio_dev_queue_notify(dev, 2);
	virtio_balloon_stats(dev, &st);
	assert_int_equal(st.updates, 2);
	assert_int_equal(st.value[VIRTIO_BALLOON_S_MINFLT], 250);
	assert_int_equal(st.interval_s, 1);
	/* An unknown tag is ignored. */
	assert_int_equal(loop_wait(loop, 3000), 1);
	s[0].tag = 77;
	offer(2, 0, BUF_GPA, 2 * sizeof(*s));
	virtio_dev_queue_notify(dev, 2);
	virtio_balloon_stats(dev, &st);
	assert_int_equal(st.updates, 3);
	virtio_dev_free(dev);
}

static void test_inflate_gives_pages_back(void **state)
{
	struct balloon_config cfg = { .target_bytes = 8 << 12 };
	struct virtio_dev *dev = balloon_up(&cfg, 0, 2, false);
	uint32_t *pfns = gpa(BUF_GPA);
	struct balloon_stats st;
	uint32_t target;

	virtio_dev_config_read(dev, 0, (uint8_t *)&target, 4);
	assert_int_equal(target, 8);
	memset(gpa(DATA_GPA), 0xab, 4 * 4096);
	for (unsigned i = 0; i < 4; i++)
		pfns[i] = DATA_GPA / 4096 + i;
	pfns[4] = 0xfffff; /* beyond the 1 MiB of RAM */
	offer(0, 0, BUF_GPA, 5 * 4);
	virtio_dev_queue_notify(dev, 0);
	assert_int_equal(used(0)->idx, 1);
	for (unsigned i = 0; i < 4 * 4096; i++)
		if (((uint8_t *)gpa(DATA_GPA))[i])
			fail_msg("byte %u of an inflated page is still there", i);
	virtio_balloon_stats(dev, &st);
	assert_int_equal(st.inflated_pages, 5);
	assert_int_equal(st.bad_pfns, 1);
	/* "actual" is the driver's to write; the target is the host's. */
	virtio_dev_config_write(dev, 4, (const uint8_t *)&(uint32_t){ 4 }, 4);
	virtio_dev_config_write(dev, 0, (const uint8_t *)&(uint32_t){ 99 }, 4);
	assert_int_equal(virtio_balloon_set_target(dev, 2 << 20), 0);
	assert_int_equal(config_notifies, 1);
	virtio_balloon_stats(dev, &st);
	assert_int_equal(st.actual_pages, 4);
	assert_int_equal(st.target_pages, 512);
	/* Deflate: counted, nothing else. */
	offer(1, 0, BUF_GPA, 4);
	virtio_dev_queue_notify(dev, 1);
	virtio_balloon_stats(dev, &st);
	assert_int_equal(st.deflated_pages, 1);
	virtio_dev_free(dev);
}

/* Without the statistics queue, reporting is queue 2 (§5.5.2). */
static void test_reporting_queue_number(void **state)
{
	struct balloon_config cfg = { .free_page_reporting = true };
	struct virtio_dev *dev = balloon_up(&cfg, BIT(VIRTIO_BALLOON_F_REPORTING), 3, false);
	struct balloon_stats st;

	memset(gpa(DATA_GPA), 0xcd, 2 * 4096);
	*desc(2, 0) = (struct vring_desc){ .addr = DATA_GPA, .len = 2 * 4096,
					   .flags = VRING_DESC_F_WRITE };
	avail(2)->ring[0] = 0;
	avail(2)->idx = 1;
	virtio_dev_queue_notify(dev, 2);
	assert_int_equal(used(2)->idx, 1);
	assert_int_equal(((uint8_t *)gpa(DATA_GPA))[100], 0);
	virtio_balloon_stats(dev, &st);
	assert_int_equal(st.reported_bytes, 2 * 4096);
	virtio_dev_free(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_statistics_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflate_gives_pages_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reporting_queue_number, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
