/* Unit tests for the snapshot container (include/kiln/snapshot.h): sections written and read
 * back by name and instance; a missing section or one of the wrong size; every damaged file
 * refused with a message: truncated, one bit flipped, another format or kiln version, not a
 * snapshot at all; and the little-endian encoder and decoder, with their bad/done rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "kiln/snapshot.h"

static char path[64], err[512];

static int setup(void **state)
{
	struct snap_writer w = { 0 };
	uint32_t big[1000];

	snprintf(path, sizeof(path), "/tmp/kiln-test-snap-%d", (int)getpid());
	for (unsigned i = 0; i < 1000; i++)
		big[i] = i * 7;
	snap_put(&w, "uart_8250", 0, "abc", 3);
	snap_put(&w, "regs", 0, big, sizeof(big));
	snap_put(&w, "regs", 1, big, 8);
	snap_put(&w, "empty", 0, NULL, 0);
	assert_int_equal(snap_writer_save(&w, path, err, sizeof(err)), 0);
	snap_writer_free(&w);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static void test_round_trip(void **state)
{
	struct snap_reader r;
	const uint32_t *big;
	size_t len;

	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), 0);
	assert_memory_equal(snap_get(&r, "uart_8250", 0, &len), "abc", 3);
	assert_int_equal(len, 3);
	big = snap_get_exact(&r, "regs", 0, 4000, err, sizeof(err));
	assert_non_null(big);
	assert_int_equal(big[999], 999 * 7);
	assert_non_null(snap_get_exact(&r, "regs", 1, 8, err, sizeof(err)));
	assert_non_null(snap_get(&r, "empty", 0, &len));
	assert_int_equal(len, 0);
	assert_null(snap_get(&r, "regs", 2, &len));
	assert_null(snap_get_exact(&r, "lapic", 0, 8, err, sizeof(err)));
	assert_non_null(strstr(err, "no section lapic.0"));
	assert_null(snap_get_exact(&r, "regs", 1, 16, err, sizeof(err)));
	assert_non_null(strstr(err, "is 8 bytes, expected 16"));
	snap_reader_close(&r);
}

/* Rewrite the file through @edit; with @fix_crc the checksum is made valid again. */
static void damage(void (*edit)(uint8_t *buf, size_t *len), bool fix_crc, const char *why)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 16);
	size_t len = fread(buf, 1, 1 << 16, f);
	char other[80];
	struct snap_reader r;

	fclose(f);
	edit(buf, &len);
	if (fix_crc) {
		uint32_t crc = (uint32_t)crc32(0, buf, (uInt)(len - 4));

		memcpy(buf + len - 4, &crc, 4);
	}
	snprintf(other, sizeof(other), "%s.bad", path);
	f = fopen(other, "wb");
	fwrite(buf, 1, len, f);
	fclose(f);
	free(buf);
	assert_int_equal(snap_reader_open(&r, other, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, why));
	assert_null(r.buf);
	unlink(other);
}

static void truncate_half(uint8_t *buf, size_t *len) { *len /= 2; }
static void flip_bit(uint8_t *buf, size_t *len) { buf[200] ^= 0x10; }
static void other_format(uint8_t *buf, size_t *len) { buf[8] = 2; }
static void other_version(uint8_t *buf, size_t *len) { memcpy(buf + 16, "9.9.9", 6); }
static void not_snapshot(uint8_t *buf, size_t *len) { memcpy(buf, "NOTSNAPS", 8); }
static void bad_section_length(uint8_t *buf, size_t *len)
{
	uint64_t huge = 1ull << 40;

	memcpy(buf + 56 + 16, &huge, 8); /* the first section's length */
}

static void test_damaged_files_refused(void **state)
{
	damage(truncate_half, false, "truncated");
	damage(flip_bit, false, "checksum mismatch");
	damage(other_format, true, "snapshot format 2");
	damage(other_version, true, "made by kiln 9.9.9");
	damage(not_snapshot, false, "not a kiln snapshot");
	damage(bad_section_length, true, "malformed sections");
}

static void test_missing_file(void **state)
{
	struct snap_reader r;

	assert_int_equal(snap_reader_open(&r, "/nonexistent/snap", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/snap"));
}

/* Every width lands little-endian, byte by byte, and decodes back to the same values. */
static void test_enc_dec_round_trip(void **state)
{
	static const uint8_t want[] = {
		0xa5,
		0x02, 0x01,
		0x44, 0x33, 0x22, 0x11,
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
		'r', 'a', 'w',
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	struct snap_enc e = { 0 };
	struct snap_dec d;
	char raw[3];

	snap_enc_u8(&e, 0xa5);
	snap_enc_u16(&e, 0x0102);
	snap_enc_u32(&e, 0x11223344);
	snap_enc_u64(&e, 0x1122334455667788ull);
	snap_enc_bytes(&e, "raw", 3);
	snap_enc_bytes(&e, NULL, 0);
	snap_enc_u64(&e, UINT64_MAX);
	assert_false(e.oom);
	assert_int_equal(e.len, sizeof(want));
	assert_memory_equal(e.buf, want, sizeof(want));

	snap_dec_init(&d, e.buf, e.len);
	assert_int_equal(snap_dec_u8(&d), 0xa5);
	assert_int_equal(snap_dec_u16(&d), 0x0102);
	assert_int_equal(snap_dec_u32(&d), 0x11223344);
	assert_true(snap_dec_u64(&d) == 0x1122334455667788ull);
	assert_false(snap_dec_done(&d)); /* bytes left */
	snap_dec_bytes(&d, raw, 3);
	assert_memory_equal(raw, "raw", 3);
	snap_dec_bytes(&d, NULL, 0);
	assert_true(snap_dec_u64(&d) == UINT64_MAX);
	assert_true(snap_dec_done(&d));
	snap_enc_free(&e);
	assert_null(e.buf);
	assert_int_equal(e.len, 0);

	/* Growth well past the first allocation keeps every byte. */
	for (uint32_t i = 0; i < 10000; i++)
		snap_enc_u32(&e, i * 2654435761u);
	assert_false(e.oom);
	snap_dec_init(&d, e.buf, e.len);
	for (uint32_t i = 0; i < 10000; i++)
		assert_int_equal(snap_dec_u32(&d), i * 2654435761u);
	assert_true(snap_dec_done(&d));
	snap_enc_free(&e);
}

/* A read past the end yields 0, consumes nothing, and spoils the cursor for good; leftover
 * bytes make it not done; an empty section is done at once. */
static void test_dec_rules(void **state)
{
	static const uint8_t five[] = { 1, 2, 3, 4, 5 };
	struct snap_dec d;
	uint8_t out[4] = { 9, 9, 9, 9 };

	snap_dec_init(&d, NULL, 0);
	assert_true(snap_dec_done(&d));
	assert_int_equal(snap_dec_u8(&d), 0);
	assert_true(d.bad);
	assert_false(snap_dec_done(&d));

	snap_dec_init(&d, five, sizeof(five));
	assert_int_equal(snap_dec_u32(&d), 0x04030201);
	assert_false(snap_dec_done(&d)); /* one byte left over */
	assert_int_equal(snap_dec_u16(&d), 0); /* two wanted, one there */
	assert_true(d.bad);
	assert_int_equal(d.off, 4);
	assert_int_equal(snap_dec_u8(&d), 0); /* the byte is there, but the cursor is spoilt */
	assert_false(snap_dec_done(&d));

	snap_dec_init(&d, five, sizeof(five));
	assert_int_equal(snap_dec_u8(&d), 1);
	snap_dec_bytes(&d, out, 4);
	assert_memory_equal(out, five + 1, 4);
	assert_true(snap_dec_done(&d));
	memset(out, 9, sizeof(out));
	snap_dec_bytes(&d, out, 1);
	assert_int_equal(out[0], 0); /* zeroed, not left as it was */
	assert_false(snap_dec_done(&d));

	snap_dec_init(&d, five, sizeof(five));
	assert_true(snap_dec_u64(&d) == 0);
	assert_true(d.bad);
	assert_int_equal(d.off, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_files_refused),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_enc_dec_round_trip),
		cmocka_unit_test(test_dec_rules),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
