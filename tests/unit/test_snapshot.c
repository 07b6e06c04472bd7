/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the snapshot container (include/kiln/snapshot.h): sections written and read
 * back by name, instance and version; a format-1 file (as kiln wrote them before sections had
 * versions, built here byte by byte) still read, as version 1; a section newer than its reader
 * refused by name; another kiln version accepted; every damaged file refused with a message:
 * truncated, one bit flipped, a newer format, malformed sections, not a snapshot at all; and
 * the little-endian encoder and decoder, with their bad/done rules. */
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

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* Recompute the trailer's CRC-32 after an edit. */
static void fix_crc(uint8_t *buf, size_t len)
{
	le32(buf + len - 4, (uint32_t)crc32(0, buf, (uInt)(len - 4)));
}

static int setup(void **state)
{
	struct snap_writer w = { 0 };
	uint32_t big[1000];

	snprintf(path, sizeof(path), "/tmp/kiln-test-snap-%d", (int)getpid());
	for (unsigned i = 0; i < 1000; i++)
		big[i] = i * 7;
	snap_put(&w, "uart_8250", 0, 3, "abc", 3);
	snap_put(&w, "regs", 0, 1, big, sizeof(big));
	snap_put(&w, "regs", 1, 1, big, 8);
	snap_put(&w, "empty", 0, 2, NULL, 0);
	snap_put(&w, "twelve_bytes", 7, 0xffffffffu, "x", 1);
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
	uint32_t version;
	size_t len;

	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), 0);
	assert_int_equal(r.format, 2);
	assert_string_equal(r.kiln_version, KILN_VERSION);
	assert_memory_equal(snap_get(&r, "uart_8250", 0, &version, &len), "abc", 3);
	assert_int_equal(len, 3);
	assert_int_equal(version, 3);
	big = snap_get_exact(&r, "regs", 0, 1, 4000, err, sizeof(err));
	assert_non_null(big);
	assert_int_equal((uintptr_t)big % 8, 0);
	assert_int_equal(big[999], 999 * 7);
	assert_non_null(snap_get_exact(&r, "regs", 1, 1, 8, err, sizeof(err)));
	assert_non_null(snap_get(&r, "empty", 0, &version, &len));
	assert_int_equal(len, 0);
	assert_int_equal(version, 2);
	assert_non_null(snap_get(&r, "twelve_bytes", 7, &version, &len));
	assert_int_equal(version, 0xffffffffu);
	assert_null(snap_get(&r, "regs", 2, &version, &len));
	assert_null(snap_get(&r, "twelve_bytesX", 7, &version, &len)); /* not cut to 12 */
	assert_null(snap_get(&r, "", 0, &version, &len));
	snap_reader_close(&r);
}

/* snap_get_section() takes versions 1..max and names what it refuses; snap_get_exact() takes
 * one version and one size. */
static void test_section_versions(void **state)
{
	struct snap_reader r;
	uint32_t version;
	size_t len;

	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), 0);
	assert_null(snap_get_section(&r, "uart_8250", 0, 2, &version, &len, err, sizeof(err)));
	assert_string_equal(err, "snapshot: section \"uart_8250\" is version 3, newer than this "
			    "kiln reads (1-2)");
	assert_null(snap_get_section(&r, "uart_8250", 0, 1, &version, &len, err, sizeof(err)));
	assert_non_null(strstr(err, "is version 3, newer than this kiln reads (1)"));
	assert_memory_equal(snap_get_section(&r, "uart_8250", 0, 3, &version, &len, err,
					     sizeof(err)), "abc", 3);
	assert_int_equal(version, 3);
	assert_int_equal(len, 3);
	assert_non_null(snap_get_section(&r, "uart_8250", 0, 9, &version, &len, NULL, 0));
	assert_int_equal(version, 3);
	assert_null(snap_get_section(&r, "lapic", 0, 1, &version, &len, err, sizeof(err)));
	assert_string_equal(err, "snapshot: no section \"lapic\"");
	assert_null(snap_get_section(&r, "regs", 2, 1, &version, &len, err, sizeof(err)));
	assert_string_equal(err, "snapshot: no section \"regs\" instance 2");
	assert_null(snap_get_section(&r, "regs", 2, 1, &version, &len, NULL, 0));

	assert_null(snap_get_exact(&r, "lapic", 0, 1, 8, err, sizeof(err)));
	assert_string_equal(err, "snapshot: no section \"lapic\"");
	assert_null(snap_get_exact(&r, "regs", 1, 1, 16, err, sizeof(err)));
	assert_string_equal(err, "snapshot: section \"regs\" instance 1 is 8 bytes, expected 16");
	assert_null(snap_get_exact(&r, "regs", 1, 2, 8, err, sizeof(err)));
	assert_string_equal(err, "snapshot: section \"regs\" instance 1 is version 1, this kiln "
			    "reads only version 2");
	assert_null(snap_get_exact(&r, "uart_8250", 0, 1, 3, err, sizeof(err)));
	assert_non_null(strstr(err, "is version 3, this kiln reads only version 1"));
	assert_null(snap_get_exact(&r, "regs", 1, 1, 16, NULL, 0));
	snap_reader_close(&r);
}

/* A section of version 0, or a name empty or over 12 bytes, is a kiln bug: the writer keeps
 * the first and refuses to save, naming it, rather than write a file no reader takes. */
static void test_writer_refuses_invalid_sections(void **state)
{
	static const struct {
		const char *name;
		uint32_t version;
		const char *named;
	} cases[] = {
		{ "uart_8250", 0, "section \"uart_8250\" has version 0" },
		{ "much_too_long_name", 1, "section \"much_too_lon\" has version 0, or a name" },
		{ "", 1, "section \"\" has version 0, or a name empty" },
	};
	char other[80];

	snprintf(other, sizeof(other), "%s.invalid", path);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct snap_writer w = { 0 };
		uint8_t *image = NULL;
		size_t len;

		snap_put(&w, "fine", 0, 1, "a", 1);
		snap_put(&w, cases[i].name, 0, cases[i].version, "b", 1);
		snap_put(&w, "", 0, 0, "c", 1); /* a second one: the first is the one named */
		assert_true(w.invalid);
		assert_int_equal(snap_writer_image(&w, &image, &len), -EINVAL);
		assert_null(image);
		assert_int_equal(snap_writer_save(&w, other, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, cases[i].named));
		assert_int_equal(access(other, F_OK), -1);
		snap_writer_free(&w);
	}
}

/* Rewrite the file through @edit; with @crc the checksum is made valid again. */
static void damage(void (*edit)(uint8_t *buf, size_t *len), bool crc, const char *why)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 16);
	size_t len = fread(buf, 1, 1 << 16, f);
	char other[80];
	struct snap_reader r;

	fclose(f);
	edit(buf, &len);
	if (crc)
		fix_crc(buf, len);
	snprintf(other, sizeof(other), "%s.bad", path);
	f = fopen(other, "wb");
	fwrite(buf, 1, len, f);
	fclose(f);
	free(buf);
	assert_int_equal(snap_reader_open(&r, other, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, why));
	assert_non_null(strstr(err, other));
	assert_null(r.buf);
	unlink(other);
}

static void truncate_half(uint8_t *buf, size_t *len) { *len /= 2; }
static void truncate_short(uint8_t *buf, size_t *len) { *len = 40; }
static void flip_bit(uint8_t *buf, size_t *len) { buf[200] ^= 0x10; }
static void newer_format(uint8_t *buf, size_t *len) { le32(buf + 8, 3); }
static void format_zero(uint8_t *buf, size_t *len) { le32(buf + 8, 0); }
static void header_bytes(uint8_t *buf, size_t *len) { le32(buf + 12, 64); }
static void not_snapshot(uint8_t *buf, size_t *len) { memcpy(buf, "NOTSNAPS", 8); }
/* The first section's header is at byte 56: name 12, instance 4, version 4, reserved 4,
 * length 8. */
static void bad_section_length(uint8_t *buf, size_t *len) { le64(buf + 56 + 24, 1ull << 40); }
static void section_version_zero(uint8_t *buf, size_t *len) { le32(buf + 56 + 16, 0); }
static void reserved_set(uint8_t *buf, size_t *len) { le32(buf + 56 + 20, 1); }

static void test_damaged_files_refused(void **state)
{
	damage(truncate_half, false, "truncated");
	damage(truncate_short, false, "40 bytes, less than a header and trailer (truncated)");
	damage(flip_bit, false, "checksum mismatch");
	damage(newer_format, false, "snapshot format 3 is newer than this kiln reads (1-2)");
	damage(format_zero, true, "snapshot format 0 is not one kiln wrote");
	damage(header_bytes, true, "a header of 64 bytes");
	damage(not_snapshot, false, "not a kiln snapshot");
	damage(bad_section_length, true, "malformed sections (at byte 56)");
	damage(section_version_zero, true, "malformed sections (at byte 56)");
	damage(reserved_set, true, "malformed sections (at byte 56)");
}

/* The kiln version in the header is informational: another one reads, and shows as text. */
static void test_other_kiln_version_accepted(void **state)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 16);
	size_t len = fread(buf, 1, 1 << 16, f);
	struct snap_reader r;
	uint32_t version;
	size_t got;

	fclose(f);
	memset(buf + 16, 0, 32);
	memcpy(buf + 16, "9.9.9\x1b[2J", 9);
	fix_crc(buf, len);
	assert_int_equal(snap_reader_take(&r, buf, len, "other", err, sizeof(err)), 0);
	assert_string_equal(r.kiln_version, "9.9.9?[2J");
	assert_non_null(snap_get(&r, "uart_8250", 0, &version, &got));
	snap_reader_close(&r);
}

/* A format-1 file, byte by byte as format.c wrote it before sections had versions: header
 * "KILNSNAP", u32 1, u32 56, char[32] kiln version, u64 file bytes; sections name[12],
 * u32 instance, u64 length, data padded to 8; trailer "KEND", u32 CRC-32. Returns its length. */
static size_t build_v1(uint8_t *buf, const char *kiln_version)
{
	static const struct {
		const char *name;
		uint32_t instance;
		const char *data;
		size_t len;
	} sections[] = {
		{ "config", 0, "{\"vcpu_count\":2}", 16 },
		{ "uart_8250", 0, "abc", 3 },
		{ "regs", 1, "12345678", 8 },
		{ "empty", 0, NULL, 0 },
	};
	size_t off = 56;

	memset(buf, 0, 1 << 12);
	memcpy(buf, "KILNSNAP", 8);
	le32(buf + 8, 1);
	le32(buf + 12, 56);
	memcpy(buf + 16, kiln_version, strlen(kiln_version));
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		memcpy(buf + off, sections[i].name, strlen(sections[i].name));
		le32(buf + off + 12, sections[i].instance);
		le64(buf + off + 16, sections[i].len);
		off += 24;
		if (sections[i].len)
			memcpy(buf + off, sections[i].data, sections[i].len);
		off += (sections[i].len + 7) & ~(size_t)7;
	}
	memcpy(buf + off, "KEND", 4);
	off += 8;
	le64(buf + 48, off);
	fix_crc(buf, off);
	return off;
}

static void test_format1_reads(void **state)
{
	uint8_t *buf = malloc(1 << 12);
	size_t len = build_v1(buf, "0.0.9"), got;
	struct snap_reader r;
	uint32_t version = 0;
	const char *p;

	assert_int_equal(snap_reader_take(&r, buf, len, "v1", err, sizeof(err)), 0);
	assert_int_equal(r.format, 1);
	assert_string_equal(r.kiln_version, "0.0.9");
	p = snap_get(&r, "config", 0, &version, &got);
	assert_non_null(p);
	assert_int_equal(got, 16);
	assert_memory_equal(p, "{\"vcpu_count\":2}", 16);
	assert_int_equal(version, 1);
	p = snap_get_section(&r, "uart_8250", 0, 2, &version, &got, err, sizeof(err));
	assert_non_null(p);
	assert_memory_equal(p, "abc", 3);
	assert_int_equal(got, 3);
	assert_int_equal(version, 1);
	assert_int_equal((uintptr_t)p % 8, 0);
	assert_non_null(snap_get_exact(&r, "regs", 1, 1, 8, err, sizeof(err)));
	assert_non_null(snap_get(&r, "empty", 0, &version, &got));
	assert_int_equal(got, 0);
	assert_int_equal(version, 1);
	assert_null(snap_get(&r, "regs", 0, &version, &got));
	snap_reader_close(&r);

	/* Format 1 is checked as strictly as format 2. */
	buf = malloc(1 << 12);
	len = build_v1(buf, "0.0.9");
	buf[60] ^= 1;
	assert_int_equal(snap_reader_take(&r, buf, len, "v1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "checksum mismatch"));
	buf = malloc(1 << 12);
	len = build_v1(buf, "0.0.9");
	le64(buf + 56 + 16, 4096); /* config's length, past the end of the file */
	fix_crc(buf, len);
	assert_int_equal(snap_reader_take(&r, buf, len, "v1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "malformed sections (at byte 56)"));
}

/* An owner's encoder as the callers will write them: fields, one section, decoded back. */
static void test_put_enc(void **state)
{
	struct snap_writer w = { 0 };
	struct snap_enc e = { 0 };
	struct snap_reader r;
	struct snap_dec d;
	uint8_t *image;
	uint32_t version;
	size_t len;
	const void *p;

	snap_enc_u32(&e, 0x3f8);
	snap_enc_u8(&e, 0xc1);
	snap_enc_u64(&e, 1ull << 40);
	snap_put_enc(&w, "uart_8250", 1, 2, &e);
	assert_null(e.buf);
	assert_int_equal(e.len, 0);
	assert_int_equal(snap_writer_image(&w, &image, &len), 0);
	snap_writer_free(&w);
	assert_int_equal(snap_reader_take(&r, image, len, "enc", err, sizeof(err)), 0);
	p = snap_get_section(&r, "uart_8250", 1, 2, &version, &len, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(version, 2);
	snap_dec_init(&d, p, len);
	assert_int_equal(snap_dec_u32(&d), 0x3f8);
	assert_int_equal(snap_dec_u8(&d), 0xc1);
	assert_true(snap_dec_u64(&d) == 1ull << 40);
	assert_true(snap_dec_done(&d));
	snap_reader_close(&r);

	/* An encoder that ran out of memory spoils the writer, not just its own section. */
	snap_enc_u32(&e, 1);
	e.oom = true;
	snap_put_enc(&w, "uart_8250", 0, 1, &e);
	assert_null(e.buf);
	assert_false(e.oom);
	assert_true(w.oom);
	assert_int_equal(w.len, 0);
	assert_int_equal(snap_writer_image(&w, &image, &len), -ENOMEM);
	assert_int_equal(snap_writer_save(&w, path, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "out of memory"));
	snap_writer_free(&w);

	/* More than a reader takes is refused up front, without reading the data. */
	snap_enc_bytes(&e, "x", (size_t)SNAP_FILE_MAX + 1);
	assert_true(e.oom);
	assert_int_equal(e.len, 0);
	snap_enc_free(&e);
	snap_put(&w, "big", 0, 1, "x", (size_t)SNAP_FILE_MAX + 1);
	assert_true(w.oom);
	assert_int_equal(w.len, 0);
	snap_writer_free(&w);
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
		cmocka_unit_test(test_section_versions),
		cmocka_unit_test(test_writer_refuses_invalid_sections),
		cmocka_unit_test(test_damaged_files_refused),
		cmocka_unit_test(test_other_kiln_version_accepted),
		cmocka_unit_test(test_format1_reads),
		cmocka_unit_test(test_put_enc),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_enc_dec_round_trip),
		cmocka_unit_test(test_dec_rules),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
