/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the I/O bus: registration, overlap, dispatch and unclaimed accesses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/bus.h"

struct rec { uint64_t off; uint32_t len; uint8_t last; int reads, writes; };

static void rec_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct rec *r = opaque;

	r->reads++;
	r->off = off;
	r->len = len;
	memset(data, 0x5a, len);
}

static void rec_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct rec *r = opaque;

	r->writes++;
	r->off = off;
	r->len = len;
	r->last = data[0];
}

static const struct bus_ops rec_ops = { .read = rec_read, .write = rec_write };

static void test_dispatch(void **state)
{
	struct bus bus;
	struct rec a = { 0 }, b = { 0 };
	uint8_t data[8];

	bus_init(&bus, "port");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &rec_ops, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x70, 2, &rec_ops, &b, "b"), 0);
	assert_int_equal(bus_register(&bus, 0x3fc, 8, &rec_ops, &b, "overlap"), -EBUSY);
	assert_int_equal(bus_register(&bus, 0x3f0, 9, &rec_ops, &b, "overlap"), -EBUSY);
	assert_int_equal(bus_register(&bus, 0, 0, &rec_ops, &b, "empty"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, &rec_ops, &b, "wrap"), -EINVAL);

	data[0] = 0x41;
	assert_true(bus_dispatch(&bus, 0x3f8, data, 1, true));
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.off, 0);
	assert_int_equal(a.last, 0x41);
	assert_true(bus_dispatch(&bus, 0x71, data, 1, false));
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.off, 1);
	assert_int_equal(data[0], 0x5a);
	bus_destroy(&bus);
}

static void test_unclaimed_and_straddling(void **state)
{
	struct bus bus;
	struct rec a = { 0 };
	uint8_t data[8] = { 0 };

	bus_init(&bus, "port");
	assert_int_equal(bus_register(&bus, 0x60, 1, &rec_ops, &a, "a"), 0);
	assert_false(bus_dispatch(&bus, 0x1234, data, 4, false));
	assert_memory_equal(data, "\xff\xff\xff\xff", 4);
	/* A 2-byte read at the last byte of a 1-byte range is nobody's. */
	memset(data, 0, sizeof(data));
	assert_false(bus_dispatch(&bus, 0x60, data, 2, false));
	assert_int_equal(a.reads, 0);
	assert_memory_equal(data, "\xff\xff", 2);
	/* Many distinct unclaimed addresses: reported set stays bounded. */
	for (uint64_t p = 0x1000; p < 0x1000 + 4 * BUS_MAX_REPORTED; p++)
		assert_false(bus_dispatch(&bus, p, data, 1, true));
	assert_int_equal(bus.nr_reported, BUS_MAX_REPORTED);
	bus_destroy(&bus);
}

static void test_full_table(void **state)
{
	struct bus bus;
	struct rec a = { 0 };

	bus_init(&bus, "mmio");
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&bus, i * 16, 16, &rec_ops, &a, "x"), 0);
	assert_int_equal(bus_register(&bus, 0x10000, 16, &rec_ops, &a, "x"), -ENOSPC);
	bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_unclaimed_and_straddling),
		cmocka_unit_test(test_full_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
