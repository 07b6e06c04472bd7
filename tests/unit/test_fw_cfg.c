/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for fw_cfg (QEMU docs/specs/fw_cfg.rst) and isa-debug-exit, driven through the I/O
 * bus as a guest would, over a malloc'd guest memory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/acpi.h"
#include "kiln/fw_cfg.h"
#include "kiln/guest_mem.h"
#include "kiln/layout.h"
#include "kiln/snapshot.h"

#define RAM (1u << 20)

struct fake {
	struct dev_host host;
	struct bus pio, mmio;
	struct guest_mem mem;
	struct fw_cfg *fw;
	unsigned exits, status;
};

static struct fake F;

static void fake_exit(struct dev_host *h, unsigned status)
{
	F.exits++;
	F.status = status;
}

static int setup(void **state)
{
	struct error e;

	memset(&F, 0, sizeof(F));
	bus_init(&F.pio, "port");
	bus_init(&F.mmio, "mmio");
	F.mem.region[0] = (struct guest_mem_region){ .gpa = 0, .size = RAM, .hva = calloc(1, RAM) };
	F.mem.nr_regions = 1;
	F.mem.size = RAM;
	F.host = (struct dev_host){ .pio = &F.pio, .mmio = &F.mmio, .mem = &F.mem,
				    .request_exit = fake_exit };
	if (!F.mem.region[0].hva || fw_cfg_class.create(&F.host, NULL, 0, (void **)&F.fw, &e))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	fw_cfg_class.destroy(F.fw);
	free(F.mem.region[0].hva);
	bus_destroy(&F.pio);
	bus_destroy(&F.mmio);
	return 0;
}

static void out(uint16_t port, uint32_t v, uint32_t len)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	assert_true(bus_dispatch(&F.pio, port, b, len, true));
}

static uint8_t inb(uint16_t port)
{
	uint8_t b = 0;

	assert_true(bus_dispatch(&F.pio, port, &b, 1, false));
	return b;
}

static void select_key(uint16_t key) { out(KILN_PORT_FW_CFG, key, 2); }

static void read_bytes(uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = inb(KILN_PORT_FW_CFG + 1);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Write a FWCfgDmaAccess at @at and start it through the two 32-bit halves (bswapped, as a
 * little-endian guest writes them: the port takes big-endian). Returns the control word after. */
static uint32_t dma(uint64_t at, uint32_t control, uint32_t length, uint64_t addr)
{
	uint8_t *a = F.mem.region[0].hva + at;

	put_be(a, control, 4);
	put_be(a + 4, length, 4);
	put_be(a + 8, addr, 8);
	out(KILN_PORT_FW_CFG_DMA, __builtin_bswap32((uint32_t)(at >> 32)), 4);
	out(KILN_PORT_FW_CFG_DMA + 4, __builtin_bswap32((uint32_t)at), 4);
	return be32(a);
}

static void test_signature_and_id(void **state)
{
	uint8_t b[8];

	select_key(FW_CFG_SIGNATURE);
	read_bytes(b, 5);
	assert_memory_equal(b, "QEMU\0", 5); /* past the end: zeros */
	select_key(FW_CFG_ID);
	read_bytes(b, 4);
	assert_int_equal(b[0], FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	for (int i = 0; i < 8; i++) /* the DMA register reads "QEMU CFG" */
		assert_true(bus_dispatch(&F.pio, KILN_PORT_FW_CFG_DMA + i, &b[i], 1, false));
	assert_memory_equal(b, "QEMU CFG", 8);
	select_key(0x1234); /* unknown: zeros */
	read_bytes(b, 2);
	assert_int_equal(b[0] | b[1], 0);
	assert_int_equal(inb(KILN_PORT_FW_CFG), 0); /* a byte read at 0x510 is data too */
}

static void test_items_and_file_dir(void **state)
{
	uint8_t b[4 + 2 * 64], v[8];

	assert_int_equal(fw_cfg_add_le(F.fw, FW_CFG_NB_CPUS, 2, 2), 0);
	assert_int_equal(fw_cfg_add_le(F.fw, FW_CFG_NB_CPUS, 2, 2), -EEXIST);
	assert_int_equal(fw_cfg_add_le(F.fw, FW_CFG_RAM_SIZE, 0x123456789ull, 8), 0);
	assert_int_equal(fw_cfg_add(F.fw, FW_CFG_FILE_DIR, "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add(F.fw, FW_CFG_FILE_FIRST, "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_file(F.fw, "etc/zzz", "abc", 3), 0);
	assert_int_equal(fw_cfg_add_file(F.fw, "etc/e820", "0123456789", 10), 0);
	assert_int_equal(fw_cfg_add_file(F.fw, "etc/e820", "x", 1), -EEXIST);
	assert_int_equal(fw_cfg_add_file(F.fw, "", "x", 1), -EINVAL);
	select_key(FW_CFG_NB_CPUS);
	read_bytes(v, 2);
	assert_int_equal(v[0] | v[1] << 8, 2);
	select_key(FW_CFG_RAM_SIZE);
	read_bytes(v, 8);
	assert_int_equal(v[0], 0x89);
	assert_int_equal(v[4], 0x01);
	select_key(FW_CFG_FILE_DIR);
	read_bytes(b, sizeof(b));
	assert_int_equal(be32(b), 2);
	/* sorted by name: etc/e820 first, key FW_CFG_FILE_FIRST + 1 */
	assert_int_equal(be32(b + 4), 10);
	assert_int_equal(b[8] << 8 | b[9], FW_CFG_FILE_FIRST + 1);
	assert_string_equal((char *)b + 12, "etc/e820");
	assert_int_equal(be32(b + 68), 3);
	assert_string_equal((char *)b + 76, "etc/zzz");
	select_key(FW_CFG_FILE_FIRST + 1);
	read_bytes(v, 4);
	assert_memory_equal(v, "0123", 4);
}

static void test_dma_read_select_skip(void **state)
{
	uint8_t *ram = F.mem.region[0].hva;

	assert_int_equal(fw_cfg_add_file(F.fw, "etc/e820", "0123456789", 10), 0);
	memset(ram + 0x2000, 0xaa, 16);
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ |
			     FW_CFG_FILE_FIRST << 16, 4, 0x2000), 0);
	assert_memory_equal(ram + 0x2000, "0123", 4);
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_SKIP, 2, 0), 0);
	/* the offset carries on; past the item's end the guest's buffer is zero-filled */
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_READ, 8, 0x2000), 0);
	assert_memory_equal(ram + 0x2000, "6789\0\0\0\0", 8);
	assert_int_equal(ram[0x2008], 0xaa);
	/* the port's offset is the same one */
	select_key(FW_CFG_SIGNATURE);
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_SKIP, 1, 0), 0);
	assert_int_equal(inb(KILN_PORT_FW_CFG + 1), 'E');
}

static void test_dma_bounds(void **state)
{
	uint8_t *ram = F.mem.region[0].hva;

	/* buffer outside RAM, wrapping, or straddling its end: error bit, nothing written */
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ, 4, RAM),
			 FW_CFG_DMA_CTL_ERROR);
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_READ, 4, RAM - 2), FW_CFG_DMA_CTL_ERROR);
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_READ, 0xffffffff, 0xffffffffffffff00ull),
			 FW_CFG_DMA_CTL_ERROR);
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_READ, 0xffffffff, 0), FW_CFG_DMA_CTL_ERROR);
	/* writes: no item is writable */
	assert_int_equal(dma(0x1000, FW_CFG_DMA_CTL_WRITE, 4, 0x2000), FW_CFG_DMA_CTL_ERROR);
	/* the access structure itself outside RAM (or straddling its end): ignored */
	out(KILN_PORT_FW_CFG_DMA, 0, 4);
	out(KILN_PORT_FW_CFG_DMA + 4, __builtin_bswap32(RAM - 8), 4);
	out(KILN_PORT_FW_CFG_DMA, 0xffffffff, 4);
	out(KILN_PORT_FW_CFG_DMA + 4, 0xffffffff, 4);
	/* odd widths and offsets are ignored */
	out(KILN_PORT_FW_CFG_DMA + 2, 0x1000, 2);
	out(KILN_PORT_FW_CFG + 1, 5, 1);
	out(KILN_PORT_FW_CFG, 0x10, 1); /* a byte write to the selector: ignored */
	assert_int_equal(ram[RAM - 1], 0);
}

static void test_snapshot_roundtrip(void **state)
{
	struct fw_cfg *copy;
	struct snap_enc e = { 0 };
	struct snap_dec d;
	struct error err;
	struct bus pio2;
	struct dev_host h2 = F.host;
	char msg[128];

	select_key(FW_CFG_SIGNATURE);
	inb(KILN_PORT_FW_CFG + 1);
	fw_cfg_class.save(F.fw, &e);
	bus_init(&pio2, "port");
	h2.pio = &pio2;
	assert_int_equal(fw_cfg_class.create(&h2, NULL, 0, (void **)&copy, &err), 0);
	snap_dec_init(&d, e.buf, e.len);
	assert_int_equal(fw_cfg_class.load(copy, &d, 1, msg, sizeof(msg)), 0);
	assert_true(snap_dec_done(&d));
	{
		uint8_t b = 0;

		assert_true(bus_dispatch(&pio2, KILN_PORT_FW_CFG + 1, &b, 1, false));
		assert_int_equal(b, 'E'); /* selector and offset carried over */
	}
	fw_cfg_class.destroy(copy);
	bus_destroy(&pio2);
	snap_enc_free(&e);
}

static void test_describe(void **state)
{
	struct acpi_config acpi = { .nr_cpus = 1 };

	fw_cfg_class.describe(F.fw, &acpi);
	assert_int_equal(acpi.nr_devices, 1);
	assert_string_equal(acpi.device[0].hid, "QEMU0002");
	assert_int_equal(acpi.device[0].res[0].base, KILN_PORT_FW_CFG);
}

static void test_debug_exit(void **state)
{
	struct debug_exit_config c = { .iobase = KILN_PORT_DEBUG_EXIT, .iosize = 1 };
	struct debug_exit_config wide = { .iobase = 0x501, .iosize = 4 };
	struct debug_exit_config bad = { .iobase = 0x600, .iosize = 3 };
	void *d, *d2, *d3;
	struct error e;

	assert_int_equal(debug_exit_class.create(&F.host, &c, 0, &d, &e), 0);
	assert_int_equal(debug_exit_class.create(&F.host, &wide, 0, &d2, &e), 0);
	assert_int_equal(debug_exit_class.create(&F.host, &bad, 0, &d3, &e), -EINVAL);
	assert_int_equal(e.kind, ERROR_USAGE);
	assert_int_equal(inb(KILN_PORT_DEBUG_EXIT), 0);
	out(KILN_PORT_DEBUG_EXIT, 0, 1);
	assert_int_equal(F.status, 1);
	out(KILN_PORT_DEBUG_EXIT, 0x21, 1);
	assert_int_equal(F.status, 0x43);
	out(0x501, 0x1234, 2);
	assert_int_equal(F.status, 0x2469);
	assert_int_equal(F.exits, 3);
	/* the port is taken: a second one there is the operator's mistake */
	assert_int_equal(debug_exit_class.create(&F.host, &c, 0, &d3, &e), -EIO);
	assert_int_equal(e.kind, ERROR_USAGE);
	debug_exit_class.destroy(d);
	debug_exit_class.destroy(d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_items_and_file_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_read_select_skip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_exit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
