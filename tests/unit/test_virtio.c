/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the virtio core (split queues, status and features) and the blk and rng
 * devices, driven as a guest driver would through a fake guest memory of FAKE_RAM bytes.
 * Hostile-driver cases: loops, buffers outside RAM, bad ordering, bad indirect tables, ring
 * indices out of range, queues that are not powers of two. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "kiln/devices.h"
#include "kiln/virtio.h"
#include "kiln/console_host.h"
#include "kiln/virtio_blk.h"
#include "kiln/virtio_rng.h"
#include "common/device_class.h"
#include "common/virtio_driver.h"

#define FAKE_RAM (1u << 20)
#define QSIZE 8u
#define DESC_GPA 0x1000u
#define AVAIL_GPA 0x2000u
#define USED_GPA 0x3000u
#define BUF_GPA 0x10000u
#define FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC))

static struct guest_mem mem;
static uint8_t *ram;
static unsigned notifies, config_notifies;
static enum block_engine engine;
static struct loop *loop;
static struct dev_host host = { .mem = &mem };

static void *gpa(uint64_t a) { return ram + a; }
static struct vring_desc *desc(unsigned i) { return (struct vring_desc *)gpa(DESC_GPA) + i; }
static struct vring_avail *avail(void) { return gpa(AVAIL_GPA); }
static struct vring_used *used(void) { return gpa(USED_GPA); }

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	*desc(i) = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void offer(uint16_t head)
{
	avail()->ring[avail()->idx % QSIZE] = head;
	avail()->idx++;
}

static unsigned requeues;
static bool repost; /* fake_notify plays a driver that hands every buffer straight back */

static void fake_notify(struct virtio_dev *dev, unsigned q)
{
	if (q == VIRTIO_CONFIG_IRQ) {
		config_notifies++;
		return;
	}
	notifies++;
	for (unsigned i = 0; repost && i < QSIZE; i++)
		offer((uint16_t)i);
}

static void fake_requeue(struct virtio_dev *dev, unsigned q) { requeues++; }

static int setup(void **state)
{
	ram = calloc(1, FAKE_RAM);
	mem = (struct guest_mem){ .nr_regions = 1, .size = FAKE_RAM,
				  .region = { { .gpa = 0, .size = FAKE_RAM, .hva = ram } } };
	notifies = config_notifies = requeues = 0;
	repost = false;
	engine = BLOCK_ENGINE_SYNC;
	if (loop_new(&loop))
		return -1;
	host.loop = loop;
	return ram ? 0 : -1;
}

static int setup_uring(void **state)
{
	int ret = setup(state);

	engine = BLOCK_ENGINE_IO_URING;
	return ret;
}

static int teardown(void **state)
{
	loop_free(loop);
	free(ram);
	return 0;
}

/* The driver side of §3.1.1 for queue 0 with @features; returns the status read back. */
static uint8_t driver_init(struct virtio_dev *dev, uint64_t features, uint16_t qsize)
{
	dev->transport.notify = fake_notify;
	return test_driver_init(dev, features, qsize, DESC_GPA, AVAIL_GPA, USED_GPA);
}

/* A bare queue over the fake RAM, enabled with @features. */
static struct virtq bare_queue(uint64_t features)
{
	struct virtq q = { .max_size = QSIZE, .size = QSIZE, .desc_gpa = DESC_GPA,
			   .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA };

	assert_int_equal(virtq_enable(&mem, &q, features), 0);
	q.ready = true;
	return q;
}

static void test_chain_out_then_in(void **state)
{
	struct virtq q = bare_queue(FEATURES);
	struct virtq_chain c;

	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA + 16, 100, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(2, BUF_GPA + 200, 1, VRING_DESC_F_WRITE, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), 1);
	assert_int_equal(c.head, 0);
	assert_int_equal(c.nr_out, 1);
	assert_int_equal(c.nr_in, 2);
	assert_int_equal(c.out_len, 16);
	assert_int_equal(c.in_len, 101);
	assert_ptr_equal(c.iov[1].iov_base, gpa(BUF_GPA + 16));
	assert_int_equal(virtq_pop(&mem, &q, &c), 0);
	virtq_push(&q, c.head, 101);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].id, 0);
	assert_int_equal(used()->ring[0].len, 101);
}

static void test_chain_loop_is_refused(void **state)
{
	struct virtq q = bare_queue(FEATURES);
	struct virtq_chain c;

	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA, 16, VRING_DESC_F_NEXT, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
}

static void test_buffer_outside_ram_is_refused(void **state)
{
	struct virtq q = bare_queue(FEATURES);
	struct virtq_chain c;

	set_desc(0, FAKE_RAM - 8, 16, 0, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
	set_desc(1, UINT64_MAX - 4, 16, 0, 0);
	offer(1);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
}

static void test_readable_after_writable_is_refused(void **state)
{
	struct virtq q = bare_queue(FEATURES);
	struct virtq_chain c;

	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(1, BUF_GPA + 16, 16, 0, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
}

static void test_ring_indices_are_checked(void **state)
{
	struct virtq q = bare_queue(FEATURES);
	struct virtq_chain c;

	offer(QSIZE); /* head outside the table */
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
	avail()->idx = (uint16_t)(q.last_avail + QSIZE + 1); /* more buffers than the ring holds */
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
	set_desc(0, BUF_GPA, 16, VRING_DESC_F_NEXT, QSIZE); /* next outside the table */
	avail()->idx = q.last_avail;
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
}

static void test_indirect_table(void **state)
{
	struct virtq q = bare_queue(FEATURES);
	struct vring_desc *table = gpa(BUF_GPA);
	struct virtq_chain c;

	table[0] = (struct vring_desc){ .addr = BUF_GPA + 0x1000, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1 };
	table[1] = (struct vring_desc){ .addr = BUF_GPA + 0x2000, .len = 512, .flags = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, .next = 2 };
	table[2] = (struct vring_desc){ .addr = BUF_GPA + 0x3000, .len = 1, .flags = VRING_DESC_F_WRITE };
	set_desc(0, BUF_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), 1);
	assert_int_equal(c.nr_out, 1);
	assert_int_equal(c.nr_in, 2);
	assert_int_equal(c.in_len, 513);

	/* Indirect inside indirect, indirect with NEXT, a partial descriptor, a loop. */
	table[2] = (struct vring_desc){ .addr = BUF_GPA, .len = 16, .flags = VRING_DESC_F_INDIRECT };
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
	set_desc(0, BUF_GPA, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
	set_desc(0, BUF_GPA, 3 * 16 - 1, VRING_DESC_F_INDIRECT, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
	table[2] = (struct vring_desc){ .addr = BUF_GPA, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 0 };
	set_desc(0, BUF_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
}

static void test_indirect_needs_the_feature(void **state)
{
	struct virtq q = bare_queue(1ull << VIRTIO_F_VERSION_1);
	struct virtq_chain c;

	set_desc(0, BUF_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	offer(0);
	assert_int_equal(virtq_pop(&mem, &q, &c), -EINVAL);
}

static void test_event_idx(void **state)
{
	struct virtq q = bare_queue(FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX));
	uint16_t *used_event = &avail()->ring[QSIZE];
	uint16_t *avail_event = (uint16_t *)&used()->ring[QSIZE];

	*used_event = 1; /* interrupt me once used idx passes 1 */
	virtq_push(&q, 0, 0);
	assert_true(virtq_should_notify(&q)); /* first notification always goes */
	virtq_push(&q, 0, 0);
	assert_true(virtq_should_notify(&q)); /* idx 2 passed used_event 1 */
	virtq_push(&q, 0, 0);
	assert_false(virtq_should_notify(&q));
	assert_false(virtq_arm_notify(&q));
	assert_int_equal(*avail_event, q.last_avail);
	offer(0);
	assert_true(virtq_arm_notify(&q));
}

static void test_no_interrupt_flag(void **state)
{
	struct virtq q = bare_queue(FEATURES);

	avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
	virtq_push(&q, 0, 0);
	assert_false(virtq_should_notify(&q));
	avail()->flags = 0;
	virtq_push(&q, 0, 0);
	assert_true(virtq_should_notify(&q));
}

static void test_queue_rules(void **state)
{
	struct virtio_dev *rng = test_device_new(&virtio_rng_class, &host, NULL);
	struct virtq q = { .max_size = QSIZE, .size = 6, .desc_gpa = DESC_GPA,
			   .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA };

	assert_int_equal(virtq_enable(&mem, &q, FEATURES), -EINVAL); /* not a power of two */
	q.size = QSIZE;
	q.used_gpa = USED_GPA + 2;
	assert_int_equal(virtq_enable(&mem, &q, FEATURES), -EFAULT); /* misaligned */
	q.used_gpa = FAKE_RAM - 16;
	assert_int_equal(virtq_enable(&mem, &q, FEATURES), -EFAULT); /* past the end of RAM */

	/* Without VERSION_1 the device refuses FEATURES_OK (§2.2.2). */
	assert_false(driver_init(rng, 0, QSIZE) & VIRTIO_CONFIG_S_FEATURES_OK);
	virtio_dev_set_status(rng, 0);
	/* Features the device did not offer are refused too. */
	assert_false(driver_init(rng, FEATURES | (1ull << 40), QSIZE) & VIRTIO_CONFIG_S_FEATURES_OK);
	virtio_dev_set_status(rng, 0);
	/* A queue size that is not a power of two: the device needs a reset. */
	assert_true(driver_init(rng, FEATURES, 6) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_false(virtio_dev_live(rng));
	virtio_dev_set_status(rng, 0);
	assert_int_equal(rng->status, 0);
	assert_int_equal(driver_init(rng, FEATURES, QSIZE) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	assert_true(virtio_dev_live(rng));
	/* Notifications for a queue that does not exist are ignored. */
	virtio_dev_queue_notify(rng, 5);
	virtio_dev_free(rng);
}

static void test_rng_fills_buffers(void **state)
{
	struct virtio_dev *rng = test_device_new(&virtio_rng_class, &host, NULL);
	static const uint8_t zero[256];

	assert_non_null(rng);
	assert_true(virtio_dev_live(rng) == false);
	driver_init(rng, FEATURES, QSIZE);
	set_desc(0, BUF_GPA, 256, VRING_DESC_F_WRITE, 0);
	offer(0);
	virtio_dev_queue_notify(rng, 0);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].len, 256);
	assert_memory_not_equal(gpa(BUF_GPA), zero, sizeof(zero));
	assert_int_equal(notifies, 1);

	/* A malformed chain: the device needs a reset and says so with a config interrupt. */
	set_desc(1, BUF_GPA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	offer(1);
	virtio_dev_queue_notify(rng, 0);
	assert_true(rng->status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(config_notifies, 1);
	virtio_dev_free(rng);
}

/* A driver that reposts every buffer the moment it is used gets VIRTIO_BUDGET chains served
 * per turn of the event loop, and the rest on the next turn (transport.requeue), never an
 * endless loop on the event loop's thread. */
static void test_queue_work_is_bounded(void **state)
{
	struct virtio_dev *rng = test_device_new(&virtio_rng_class, &host, NULL);

	assert_non_null(rng);
	driver_init(rng, FEATURES, QSIZE);
	rng->transport.requeue = fake_requeue;
	for (unsigned i = 0; i < QSIZE; i++) {
		set_desc(i, BUF_GPA + 64 * i, 64, VRING_DESC_F_WRITE, 0);
		offer((uint16_t)i);
	}
	repost = true;
	virtio_dev_queue_notify(rng, 0);
	assert_int_equal(used()->idx, VIRTIO_BUDGET);
	assert_int_equal(requeues, 1);
	/* The requeued turn: the driver stopped reposting, so what is left is served and done. */
	repost = false;
	virtio_dev_queue_notify(rng, 0);
	assert_int_equal((uint16_t)(avail()->idx - used()->idx), 0);
	assert_int_equal(requeues, 1);
	assert_true(virtio_dev_live(rng));
	virtio_dev_free(rng);
}

/* --- virtio-blk ----------------------------------------------------------------------- */

#define IMG_SECTORS 64u
static char img_path[] = "/tmp/kiln-test-blk-XXXXXX";

static struct virtio_dev *blk_open(bool readonly, const char *id)
{
	struct disk_config cfg = { .path = img_path, .readonly = readonly, .id = id, .engine = engine };
	uint8_t sector[512];
	int fd = mkstemp(img_path);

	assert_true(fd >= 0);
	for (unsigned i = 0; i < IMG_SECTORS; i++) {
		memset(sector, (int)i, sizeof(sector));
		assert_int_equal(write(fd, sector, sizeof(sector)), sizeof(sector));
	}
	close(fd);
	struct virtio_dev *dev = test_device_new(&virtio_blk_class, &host, &cfg);
	assert_non_null(dev);
	assert_int_equal(driver_init(dev, FEATURES | (1ull << VIRTIO_BLK_F_FLUSH), QSIZE) &
			 VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	return dev;
}

static void blk_close(struct virtio_dev *dev)
{
	virtio_dev_free(dev);
	unlink(img_path);
	strcpy(img_path, "/tmp/kiln-test-blk-XXXXXX");
}

/* Offer header + one data buffer (@data_len bytes, device-writable when @in) + status, and
 * notify. */
static void blk_post(struct virtio_dev *dev, uint32_t type, uint64_t sector, uint32_t data_len,
		     bool in)
{
	struct virtio_blk_outhdr *h = gpa(BUF_GPA);
	uint8_t *status = gpa(BUF_GPA + 0x100);
	uint16_t d = 0, head = 0; /* one request at a time: descriptors 0-2 are free */

	*h = (struct virtio_blk_outhdr){ .type = type, .sector = sector };
	*status = 0xee;
	set_desc(d, BUF_GPA, sizeof(*h), VRING_DESC_F_NEXT, 1);
	d++;
	if (data_len) {
		set_desc(d, BUF_GPA + 0x1000, data_len, VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0), 2);
		d++;
	}
	set_desc(d, BUF_GPA + 0x100, 1, VRING_DESC_F_WRITE, 0);
	if (d == 1)
		desc(0)->next = 1;
	offer(head);
	virtio_dev_queue_notify(dev, 0);
}

/* blk_post(), then wait for it: return the status byte and the used length in *used_len. */
static uint8_t blk_request(struct virtio_dev *dev, uint32_t type, uint64_t sector,
			   uint32_t data_len, bool in, uint32_t *used_len)
{
	uint8_t *status = gpa(BUF_GPA + 0x100);
	uint16_t before = used()->idx;

	blk_post(dev, type, sector, data_len, in);
	/* Requests complete later, on the event loop (io_uring in the kernel, the sync engine on
	 * its worker): run the loop until the request is back. */
	for (unsigned i = 0; used()->idx == before && i < 200; i++)
		loop_wait(loop, 10);
	assert_int_equal(used()->idx, (uint16_t)(before + 1));
	*used_len = used()->ring[(used()->idx - 1) % QSIZE].len;
	return *status;
}

static void test_blk_read_write(void **state)
{
	struct virtio_dev *dev = blk_open(false, "serial-1");
	uint8_t *data = gpa(BUF_GPA + 0x1000), expect[1024];
	uint32_t len;

	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, 3, 1024, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1025);
	memset(expect, 3, 512);
	memset(expect + 512, 4, 512);
	assert_memory_equal(data, expect, 1024);

	memset(data, 0xab, 512);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, 512, false, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_FLUSH, 0, 0, false, &len), VIRTIO_BLK_S_OK);
	memset(data, 0, 512);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 512, true, &len), VIRTIO_BLK_S_OK);
	memset(expect, 0xab, 512);
	assert_memory_equal(data, expect, 512);

	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_GET_ID, 0, 20, true, &len), VIRTIO_BLK_S_OK);
	assert_memory_equal(data, "serial-1\0", 9);
	blk_close(dev);
}

static void test_blk_bad_requests(void **state)
{
	struct virtio_dev *dev = blk_open(false, NULL);
	uint32_t len;

	/* Past the end, straddling the end, sector numbers that overflow. */
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, IMG_SECTORS, 512, true, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, 1024, false, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, UINT64_MAX / 256, 512, true, &len), VIRTIO_BLK_S_IOERR);
	/* Not a whole sector; an unknown request type. */
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, 0, 100, true, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(dev, 0x77, 0, 0, false, &len), VIRTIO_BLK_S_UNSUPP);
	/* A chain with no device-writable byte for the status: completed with nothing written. */
	set_desc(0, BUF_GPA, 16, 0, 0);
	offer(0);
	virtio_dev_queue_notify(dev, 0);
	assert_int_equal(used()->ring[(used()->idx - 1) % QSIZE].len, 0);
	assert_true(virtio_dev_live(dev));
	blk_close(dev);
}

/* A disk of @sectors sectors, all zero (sparse), driven with @features. */
static struct virtio_dev *blk_open_sparse(uint64_t sectors, uint64_t features)
{
	struct disk_config cfg = { .path = img_path, .engine = engine };
	int fd = mkstemp(img_path);
	struct virtio_dev *dev;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(sectors * 512)), 0);
	close(fd);
	dev = test_device_new(&virtio_blk_class, &host, &cfg);
	assert_non_null(dev);
	assert_int_equal(driver_init(dev, features, QSIZE) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	return dev;
}

/* One request names at most seg_max segments of size_max bytes, both advertised; a driver
 * that did not negotiate size_max (a guest from an older kiln's snapshot) is held to their
 * product, however it aliases its buffers. */
static void test_blk_request_size_is_bounded(void **state)
{
	struct virtio_dev *dev = blk_open_sparse(1u << 17, FEATURES | (1ull << VIRTIO_BLK_F_SIZE_MAX));
	const uint64_t table = 0x80000;
	struct vring_desc *t = gpa(table);
	uint8_t *status = gpa(BUF_GPA + 0x100);
	struct virtio_blk_config cfg;
	uint16_t before;
	uint32_t len;

	assert_true(virtio_dev_device_features(dev, 0) & (1u << VIRTIO_BLK_F_SIZE_MAX));
	virtio_dev_config_read(dev, 0, (uint8_t *)&cfg, offsetof(struct virtio_blk_config, geometry));
	assert_int_equal(cfg.size_max, 64u << 10);
	assert_int_equal(cfg.seg_max, 254);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, 0, 64u << 10, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, 0, 128u << 10, true, &len),
			 VIRTIO_BLK_S_IOERR);
	blk_close(dev);

	/* 254 segments of 128 KiB, every one the same buffer: 31.75 MiB asked of the host. */
	dev = blk_open_sparse(1u << 17, FEATURES);
	*(struct virtio_blk_outhdr *)gpa(BUF_GPA) = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN };
	t[0] = (struct vring_desc){ .addr = BUF_GPA, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1 };
	for (unsigned i = 1; i <= 254; i++)
		t[i] = (struct vring_desc){ .addr = BUF_GPA + 0x1000, .len = 128u << 10,
					    .flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
					    .next = (uint16_t)(i + 1) };
	t[255] = (struct vring_desc){ .addr = BUF_GPA + 0x100, .len = 1, .flags = VRING_DESC_F_WRITE };
	set_desc(0, table, 256 * sizeof(*t), VRING_DESC_F_INDIRECT, 0);
	*status = 0xee;
	offer(0);
	before = used()->idx;
	virtio_dev_queue_notify(dev, 0);
	for (unsigned i = 0; used()->idx == before && i < 200; i++)
		loop_wait(loop, 10);
	assert_int_equal(used()->idx, (uint16_t)(before + 1));
	assert_int_equal(*status, VIRTIO_BLK_S_IOERR);
	blk_close(dev);
}

/* A driver reset does not wait for the disk: a request in flight finishes in the background
 * and completes nothing (no status byte, no used element), and the driver's next requests,
 * reusing the same descriptors, complete as usual. */
static void test_blk_reset_forgets_requests_in_flight(void **state)
{
	struct virtio_dev *dev = blk_open(false, NULL);
	uint8_t *status = gpa(BUF_GPA + 0x100);
	uint32_t len;

	blk_post(dev, VIRTIO_BLK_T_IN, 0, 4096, true);
	virtio_dev_set_status(dev, 0);
	for (unsigned i = 0; i < 20; i++)
		loop_wait(loop, 10);
	assert_int_equal(*status, 0xee);
	assert_int_equal(used()->idx, 0);
	memset(gpa(AVAIL_GPA), 0, 0x1000);
	memset(gpa(USED_GPA), 0, 0x1000);
	assert_int_equal(driver_init(dev, FEATURES | (1ull << VIRTIO_BLK_F_FLUSH), QSIZE) &
			 VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, 1, 512, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(used()->idx, 1);
	blk_close(dev);
}

static void test_blk_readonly(void **state)
{
	struct virtio_dev *dev = blk_open(true, NULL);
	uint8_t *data = gpa(BUF_GPA + 0x1000), expect[512];
	struct virtio_blk_discard_write_zeroes *seg = (void *)data;
	uint32_t len;

	assert_true(virtio_dev_device_features(dev, 0) & (1u << VIRTIO_BLK_F_RO));
	memset(data, 0x55, 512);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_OUT, 0, 512, false, &len), VIRTIO_BLK_S_IOERR);
	*seg = (struct virtio_blk_discard_write_zeroes){ .sector = 0, .num_sectors = 1 };
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(*seg), false, &len),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, 0, 512, true, &len), VIRTIO_BLK_S_OK);
	memset(expect, 0, sizeof(expect));
	assert_memory_equal(data, expect, 512);
	blk_close(dev);
}

static void test_blk_write_zeroes(void **state)
{
	struct virtio_dev *dev = blk_open(false, NULL);
	uint8_t *data = gpa(BUF_GPA + 0x1000), expect[512];
	struct virtio_blk_discard_write_zeroes *seg = (void *)data;
	uint32_t len;

	*seg = (struct virtio_blk_discard_write_zeroes){ .sector = 5, .num_sectors = 1 };
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(*seg), false, &len), VIRTIO_BLK_S_OK);
	*seg = (struct virtio_blk_discard_write_zeroes){ .sector = IMG_SECTORS, .num_sectors = 1 };
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_DISCARD, 0, sizeof(*seg), false, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(dev, VIRTIO_BLK_T_IN, 5, 512, true, &len), VIRTIO_BLK_S_OK);
	memset(expect, 0, sizeof(expect));
	assert_memory_equal(data, expect, 512);
	blk_close(dev);
}

/* Bad images are the user's error, named by disk and path. */
static void test_blk_bad_images(void **state)
{
	struct disk_config cfg = { .path = "/nonexistent/disk.img", .id = "rootfs" };
	char path[] = "/tmp/kiln-test-odd-XXXXXX";
	struct error e;
	void *dev;
	int fd;

	assert_int_not_equal(virtio_blk_class.create(&host, &cfg, 0, &dev, &e), 0);
	assert_int_equal(e.kind, ERROR_USAGE);
	assert_string_equal(e.msg, "disk \"rootfs\": open /nonexistent/disk.img: No such file or directory");
	cfg.path = "/tmp";
	cfg.id = NULL;
	assert_int_not_equal(virtio_blk_class.create(&host, &cfg, 0, &dev, &e), 0);
	assert_int_equal(e.kind, ERROR_USAGE);
	assert_non_null(strstr(e.msg, "disk0: "));
	fd = mkstemp(path);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	cfg.path = path;
	assert_int_not_equal(virtio_blk_class.create(&host, &cfg, 0, &dev, &e), 0);
	assert_int_equal(e.kind, ERROR_USAGE);
	assert_non_null(strstr(e.msg, "multiple of 512"));
	unlink(path);
}

/* The console's output file stops growing at its limit: a guest cannot fill the host's disk. */
static void test_console_file_is_bounded(void **state)
{
	char path[] = "/tmp/kiln-test-console-XXXXXX", chunk[1000];
	struct console_config cfg = { .kind = CONSOLE_FILE, .path = path, .file_limit = 4096 };
	struct console_host *h;
	struct error e;
	struct stat st;
	size_t total = 0;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	memset(chunk, 'x', sizeof(chunk));
	assert_int_equal(console_host_open(&host, &cfg,
					   &(struct console_host_cb){ .input = NULL }, &h, &e), 0);
	for (int i = 0; i < 100; i++)
		total += console_host_write(h, &(struct iovec){ chunk, sizeof(chunk) }, 1);
	assert_int_equal(total, 4096);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 4096);
	console_host_free(h);
	unlink(path);
}

static unsigned console_inputs;
static void console_input(void *opaque) { console_inputs++; }

/* A console client that sends its input and shuts its sending side before the guest takes
 * input (printf 'root\n' | socat - UNIX-CONNECT:...) stays: it still gets the guest's output,
 * and its input reaches the guest once the guest wants it; then it is done, and the next
 * client may connect. */
static void test_console_client_half_close(void **state)
{
	char path[64], buf[16];
	struct console_config cfg = { .kind = CONSOLE_SOCKET, .path = path };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct console_host *h;
	struct error e;
	int fd;

	snprintf(path, sizeof(path), "/tmp/kiln-test-console-%d", getpid());
	unlink(path);
	console_inputs = 0;
	assert_int_equal(console_host_open(&host, &cfg,
					   &(struct console_host_cb){ .input = console_input }, &h,
					   &e), 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	loop_wait(loop, 100); /* accepted */
	assert_int_equal(write(fd, "root\n", 5), 5);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	for (int i = 0; i < 5; i++)
		loop_wait(loop, 10);
	assert_int_equal(console_host_write(h, &(struct iovec){ "login: ", 7 }, 1), 7);
	assert_int_equal(read(fd, buf, sizeof(buf)), 7);
	console_host_want_input(h, true);
	loop_wait(loop, 100);
	assert_true(console_inputs > 0);
	assert_int_equal(console_host_read(h, &(struct iovec){ buf, sizeof(buf) }, 1), 5);
	assert_memory_equal(buf, "root\n", 5);
	assert_int_equal(console_host_read(h, &(struct iovec){ buf, sizeof(buf) }, 1), -1);
	close(fd);
	console_host_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_out_then_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_loop_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_outside_ram_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readable_after_writable_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_indices_are_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_needs_the_feature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rng_fills_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_work_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_request_size_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_reset_forgets_requests_in_flight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_blk_write_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_bad_images, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_file_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_client_half_close, setup, teardown),
		/* The same requests through io_uring. */
		cmocka_unit_test_setup_teardown(test_blk_read_write, setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_blk_bad_requests, setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_blk_readonly, setup_uring, teardown),
		cmocka_unit_test_setup_teardown(test_blk_reset_forgets_requests_in_flight, setup_uring,
						teardown),
		cmocka_unit_test_setup_teardown(test_blk_write_zeroes, setup_uring, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
