/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for guest_mem: layout around the MMIO hole and the checked accessor. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/mman.h>

#include "kiln/guest_mem.h"
#include "kiln/layout.h"

static void test_small_is_one_region(void **state)
{
	struct guest_mem mem;

	assert_int_equal(guest_mem_alloc(&mem, 64 << 20, false), 0);
	assert_int_equal(mem.nr_regions, 1);
	assert_int_equal(mem.region[0].gpa, 0);
	assert_int_equal(mem.region[0].size, 64 << 20);
	assert_int_equal(guest_mem_low_end(&mem), 64 << 20);
	assert_non_null(guest_mem_ptr(&mem, 0, 64 << 20));
	assert_null(guest_mem_ptr(&mem, 0, (64 << 20) + 1));
	assert_null(guest_mem_ptr(&mem, 64 << 20, 1));
	assert_ptr_equal(guest_mem_ptr(&mem, (64 << 20) - 1, 1), mem.region[0].hva + (64 << 20) - 1);
	guest_mem_free(&mem);
	assert_int_equal(mem.nr_regions, 0);
}

static void test_large_splits_around_hole(void **state)
{
	struct guest_mem mem;
	uint64_t size = 5ULL << 30;

	assert_int_equal(guest_mem_alloc(&mem, size, false), 0);
	assert_int_equal(mem.nr_regions, 2);
	assert_int_equal(mem.region[0].size, KILN_MMIO_HOLE_START);
	assert_int_equal(mem.region[1].gpa, KILN_MMIO_HOLE_END);
	assert_int_equal(mem.region[1].size, size - KILN_MMIO_HOLE_START);
	assert_null(guest_mem_ptr(&mem, KILN_MMIO_HOLE_START, 1));
	assert_null(guest_mem_ptr(&mem, KILN_MMIO_HOLE_START - 1, 2)); /* straddles into the hole */
	assert_non_null(guest_mem_ptr(&mem, KILN_MMIO_HOLE_END, 4096));
	assert_ptr_equal(guest_mem_ptr(&mem, KILN_MMIO_HOLE_END, 1), mem.region[0].hva + KILN_MMIO_HOLE_START);
	assert_null(guest_mem_ptr(&mem, KILN_MMIO_HOLE_END + mem.region[1].size, 1));
	guest_mem_free(&mem);
}

static void test_hostile_ranges(void **state)
{
	struct guest_mem mem;

	assert_int_equal(guest_mem_alloc(&mem, 16 << 20, false), 0);
	assert_null(guest_mem_ptr(&mem, 0, 0));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 1));
	assert_null(guest_mem_ptr(&mem, 4096, UINT64_MAX));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX - 10, 20)); /* wraps */
	assert_int_equal(guest_mem_write(&mem, (16 << 20) - 2, "abcd", 4), -EFAULT);
	assert_int_equal(guest_mem_write(&mem, 100, "abcd", 4), 0);
	assert_memory_equal(mem.region[0].hva + 100, "abcd", 4);
	guest_mem_free(&mem);
}

/* KVM maps guest memory with 2 MiB pages only where host and guest addresses agree modulo
 * 2 MiB; the over-mapping that aligns the host address is trimmed back to the size asked. */
static void test_regions_2m_aligned(void **state)
{
	const uint64_t sizes[] = { 16 << 20, (64 << 20) + 4096, 5ULL << 30 };
	unsigned char vec;

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest_mem mem;

		assert_int_equal(guest_mem_alloc(&mem, sizes[i], false), 0);
		for (unsigned r = 0; r < mem.nr_regions; r++)
			assert_int_equal(((uintptr_t)mem.region[r].hva - mem.region[r].gpa) % (2u << 20), 0);
		assert_int_equal(mem.mapping_len, sizes[i]);
		/* The page after the mapping is not kiln's: mincore() reports it unmapped. */
		assert_int_equal(mincore((uint8_t *)mem.mapping + ((sizes[i] + 4095) & ~4095ULL), 4096, &vec), -1);
		assert_int_equal(errno, ENOMEM);
		guest_mem_free(&mem);
	}
}

static void test_bad_sizes(void **state)
{
	struct guest_mem mem;

	assert_int_equal(guest_mem_alloc(&mem, 0, false), -EINVAL);
	assert_int_equal(guest_mem_alloc(&mem, 4095, false), -EINVAL);
	assert_int_equal(guest_mem_alloc(&mem, 3 << 20, true), -EINVAL); /* not whole 2 MiB pages */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_is_one_region),
		cmocka_unit_test(test_large_splits_around_hole),
		cmocka_unit_test(test_hostile_ranges),
		cmocka_unit_test(test_regions_2m_aligned),
		cmocka_unit_test(test_bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
