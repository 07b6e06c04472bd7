/* SPDX-License-Identifier: Apache-2.0 */
/* test_pflash — the CFI flash command state machine (include/kiln/pflash.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/pflash.h"

#define SIZE (4 * PFLASH_BLOCK)

struct fixture {
	struct pflash f;
	uint8_t mem[SIZE];
	int array_calls;
	bool array;
};

static void set_array(void *ctx, bool array)
{
	struct fixture *x = ctx;

	x->array_calls++;
	x->array = array;
}

static int setup(void **state)
{
	static struct fixture x;

	memset(&x, 0, sizeof(x));
	for (unsigned i = 0; i < SIZE; i++)
		x.mem[i] = (uint8_t)i;
	x.array = true;
	pflash_init(&x.f, "test", x.mem, SIZE, false, set_array, &x);
	*state = &x;
	return 0;
}

static int teardown(void **state)
{
	pflash_destroy(&((struct fixture *)*state)->f);
	return 0;
}

static void wr(struct fixture *x, uint64_t off, uint8_t v) { pflash_write(&x->f, off, &v, 1); }
static uint8_t rd(struct fixture *x, uint64_t off)
{
	uint8_t v;

	pflash_read(&x->f, off, &v, 1);
	return v;
}

/* OVMF's QemuFlashDetected: clear status, then read status gives CLEARED_ARRAY_STATUS. */
static void test_ovmf_detection(void **state)
{
	struct fixture *x = *state;

	wr(x, 5, 0x50);
	assert_int_equal(rd(x, 5), 5); /* back in read-array mode */
	assert_int_equal(x->array_calls, 0);
	wr(x, 5, 0x70);
	assert_false(x->array);
	assert_int_equal(rd(x, 5), 0x00);
	wr(x, 5, 0xff);
	assert_true(x->array);
	assert_int_equal(x->array_calls, 2);
	assert_int_equal(rd(x, 5), 5);
}

static void test_program_and_erase(void **state)
{
	struct fixture *x = *state;
	uint8_t data[4] = { 1, 2, 3, 4 };

	wr(x, PFLASH_BLOCK + 7, 0x10);
	assert_false(x->array);
	wr(x, PFLASH_BLOCK + 7, 0xa5);
	assert_int_equal(x->mem[PFLASH_BLOCK + 7], 0xa5);
	assert_int_equal(rd(x, 0), PFLASH_STATUS_READY); /* status until READ_ARRAY */
	wr(x, 0, 0x40);
	pflash_write(&x->f, 8, data, 4);
	assert_memory_equal(x->mem + 8, data, 4);
	wr(x, PFLASH_BLOCK + 9, 0x20);
	wr(x, PFLASH_BLOCK + 9, 0xd0);
	for (unsigned i = 0; i < PFLASH_BLOCK; i++)
		assert_int_equal(x->mem[PFLASH_BLOCK + i], 0xff);
	assert_int_equal(x->mem[PFLASH_BLOCK - 1], (uint8_t)(PFLASH_BLOCK - 1));
	assert_int_equal(x->mem[2 * PFLASH_BLOCK], 0);
	wr(x, 0, 0xff);
	assert_true(x->array);
	assert_int_equal(rd(x, PFLASH_BLOCK), 0xff);
}

static void test_erase_sequence_error(void **state)
{
	struct fixture *x = *state;

	wr(x, 0, 0x20);
	wr(x, 0, 0x00); /* not the confirmation */
	assert_int_equal(x->mem[0], 0);
	assert_int_equal(x->mem[1], 1);
	assert_int_equal(rd(x, 0) & PFLASH_STATUS_SEQ_ERROR, PFLASH_STATUS_SEQ_ERROR);
	wr(x, 0, 0x50);
	assert_true(x->array);
}

static void test_cfi_and_id(void **state)
{
	struct fixture *x = *state;

	wr(x, 0, 0x98);
	assert_int_equal(rd(x, 0x10), 'Q');
	assert_int_equal(rd(x, 0x11), 'R');
	assert_int_equal(rd(x, 0x12), 'Y');
	assert_int_equal(rd(x, 0x27), 14);         /* 16 KiB = 2^14 */
	assert_int_equal(rd(x, 0x2d), 3);          /* 4 blocks - 1 */
	assert_int_equal(rd(x, 0x2f), PFLASH_BLOCK >> 8);
	wr(x, 0, 0x90);
	assert_int_equal(rd(x, 0), 0);
	wr(x, 0, 0xff);
	assert_int_equal(rd(x, 0x10), 0x10);
}

/* Offsets beyond the device touch nothing; a program at the last byte of a wider write that
 * would cross the end is refused. */
static void test_bounds(void **state)
{
	struct fixture *x = *state;
	uint8_t data[4] = { 9, 9, 9, 9 };
	uint8_t out[4];

	wr(x, SIZE, 0x10);
	assert_true(x->array); /* ignored: no mode change */
	wr(x, SIZE - 2, 0x10);
	pflash_write(&x->f, SIZE - 2, data, 4);
	assert_int_equal(x->mem[SIZE - 2], (uint8_t)(SIZE - 2));
	wr(x, SIZE - 2, 0xff);
	pflash_read(&x->f, SIZE - 2, out, 4);
	assert_int_equal(out[0], 0xff);
	pflash_read(&x->f, UINT64_MAX, out, 4);
	assert_int_equal(out[3], 0xff);
}

static void test_unknown_command(void **state)
{
	struct fixture *x = *state;

	wr(x, 0, 0x70);
	wr(x, 0, 0xe8); /* write to buffer: not supported */
	assert_true(x->array);
	assert_int_equal(rd(x, 3), 3);
}

static void test_readonly(void **state)
{
	uint8_t mem[PFLASH_BLOCK];
	struct pflash f;
	uint8_t v = 0x10, out;

	memset(mem, 0x5a, sizeof(mem));
	pflash_init(&f, "code", mem, sizeof(mem), true, NULL, NULL);
	pflash_write(&f, 0, &v, 1);
	v = 0;
	pflash_write(&f, 0, &v, 1);
	v = 0x70;
	pflash_write(&f, 0, &v, 1);
	pflash_read(&f, 0, &out, 1);
	assert_int_equal(out, 0x5a);
	assert_int_equal(mem[0], 0x5a);
	pflash_destroy(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ovmf_detection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_and_erase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_erase_sequence_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfi_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_command, setup, teardown),
		cmocka_unit_test(test_readonly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
