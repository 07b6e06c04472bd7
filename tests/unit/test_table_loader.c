/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for etc/table-loader (QEMU hw/acpi/bios-linker-loader.c): the command layout, and
 * the tables a firmware gets by running the commands as SeaBIOS's romfile_loader.c does, which
 * must be acpi_build()'s own bytes when placed where acpi_build() puts them, and valid anywhere
 * else. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/acpi.h"
#include "kiln/layout.h"
#include "kiln/table_loader.h"

#define MEM_SIZE (2u << 20)
#define E TABLE_LOADER_ENTRY_SIZE

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void pc_config(struct acpi_config *cfg, bool pci)
{
	static const struct acpi_device_desc com1 = {
		.name = "COM1", .hid = "PNP0501", .uid = 1, .nr_res = 2,
		.res = { { ACPI_RES_IO, 0x3f8, 8 }, { ACPI_RES_IRQ, 4, 0 } } };

	memset(cfg, 0, sizeof(*cfg));
	cfg->nr_cpus = 2;
	assert_int_equal(acpi_add_device(cfg, &com1), 0);
	if (pci)
		cfg->pci = (struct acpi_pci){ .present = true, .ecam_base = KILN_PCI_ECAM_GPA,
					      .mem_base = 0xc1000000u, .mem_limit = 0xfebfffffu,
					      .nr_prt = 1, .prt = { { 1, 16 } } };
}

/* The tables of pc_config(@pci) for a loader, and their commands. */
static void build(bool pci, struct acpi_config *cfg, struct acpi_tables *t, uint8_t **cmds,
		  size_t *len)
{
	pc_config(cfg, pci);
	assert_int_equal(acpi_build_tables(cfg, 0, t), 0);
	assert_int_equal(table_loader_build(t, cmds, len), 0);
}

/* What a firmware does with the three files: a minimal romfile_loader over @ram. */
struct placed {
	const char *name;
	const uint8_t *data;
	size_t len;
	uint64_t addr;  /* where this test puts it */
	bool allocated;
};

static struct placed *find(struct placed *f, const uint8_t *name)
{
	for (int i = 0; i < 2; i++)
		if (!strncmp((const char *)name, f[i].name, TABLE_LOADER_FILE_NAME))
			return &f[i];
	fail_msg("no file %.56s", (const char *)name);
	return NULL;
}

static void run_loader(uint8_t *ram, struct placed *f, const uint8_t *cmds, size_t len)
{
	assert_int_equal(len % E, 0);
	for (const uint8_t *e = cmds; e < cmds + len; e += E) {
		struct placed *dst = find(f, e + 4);

		assert_int_equal(e[4 + TABLE_LOADER_FILE_NAME - 1], 0); /* NUL-terminated name */
		switch (rd32(e)) {
		case TABLE_LOADER_ALLOCATE:
			assert_false(dst->allocated);
			assert_int_equal(dst->addr % rd32(e + 60), 0);
			memcpy(ram + dst->addr, dst->data, dst->len);
			dst->allocated = true;
			break;
		case TABLE_LOADER_ADD_POINTER: {
			struct placed *src = find(f, e + 60);
			uint32_t off = rd32(e + 116);
			uint8_t size = e[120];
			uint64_t v = 0;

			assert_true(dst->allocated && src->allocated);
			assert_true(size == 4 || size == 8);
			assert_true(off + size <= dst->len);
			memcpy(&v, ram + dst->addr + off, size);
			v += src->addr;
			memcpy(ram + dst->addr + off, &v, size);
			break;
		}
		case TABLE_LOADER_ADD_CHECKSUM: {
			uint32_t off = rd32(e + 60), start = rd32(e + 64), n = rd32(e + 68);

			assert_true(dst->allocated);
			assert_true(off < dst->len && start + n <= dst->len && off >= start &&
				    off < start + n);
			assert_int_equal(dst->data[off], 0); /* left 0 for the loader */
			ram[dst->addr + off] -= acpi_checksum(ram + dst->addr + start, n);
			break;
		}
		default:
			fail_msg("unknown command %u", rd32(e));
		}
	}
}

static void test_command_layout(void **state)
{
	struct acpi_config cfg;
	struct acpi_tables t;
	uint8_t *cmds;
	size_t len;

	build(true, &cfg, &t, &cmds, &len);
	/* 2 ALLOCATE, 7 ADD_POINTER (RSDP->XSDT, XSDT->FADT/MADT/MCFG, FADT->DSDT x2, ->FACS),
	 * 7 ADD_CHECKSUM (RSDP x2, XSDT, FADT, MADT, MCFG, DSDT). */
	assert_int_equal(len, 16 * E);
	assert_int_equal(rd32(cmds), TABLE_LOADER_ALLOCATE);
	assert_string_equal((char *)cmds + 4, "etc/acpi/tables");
	assert_int_equal(rd32(cmds + 60), 64);
	assert_int_equal(cmds[64], TABLE_LOADER_ZONE_HIGH);
	assert_int_equal(rd32(cmds + E), TABLE_LOADER_ALLOCATE);
	assert_string_equal((char *)cmds + E + 4, "etc/acpi/rsdp");
	assert_int_equal(rd32(cmds + E + 60), 16);
	assert_int_equal(cmds[E + 64], TABLE_LOADER_ZONE_FSEG);
	/* RSDP -> XSDT: the RSDP's XsdtAddress (offset 24, 8 bytes) holds 0, the XSDT's offset. */
	assert_int_equal(rd32(cmds + 2 * E), TABLE_LOADER_ADD_POINTER);
	assert_string_equal((char *)cmds + 2 * E + 4, "etc/acpi/rsdp");
	assert_string_equal((char *)cmds + 2 * E + 60, "etc/acpi/tables");
	assert_int_equal(rd32(cmds + 2 * E + 116), 24);
	assert_int_equal(cmds[2 * E + 120], 8);
	assert_int_equal(rd64(t.rsdp + 24), 0);
	assert_memory_equal(t.tables, "XSDT", 4);
	for (unsigned i = 0; i < 7; i++) {
		const uint8_t *e = cmds + (9 + i) * E;

		assert_int_equal(rd32(e), TABLE_LOADER_ADD_CHECKSUM);
		for (size_t b = 72; b < E; b++)
			assert_int_equal(e[b], 0); /* the padding stays zero */
	}
	/* The first checksum is the RSDP's 20-byte one (byte 8), the second its extended one. */
	assert_int_equal(rd32(cmds + 9 * E + 60), 8);
	assert_int_equal(rd32(cmds + 9 * E + 68), 20);
	assert_int_equal(rd32(cmds + 10 * E + 60), 32);
	assert_int_equal(rd32(cmds + 10 * E + 68), 36);
	free(cmds);
	acpi_tables_free(&t);
}

/* Placed where acpi_build() puts them, the loaded tables are acpi_build()'s bytes. */
static void test_loaded_equals_direct_build(void **state)
{
	uint8_t *ram = calloc(1, MEM_SIZE), *direct = calloc(1, MEM_SIZE);
	struct guest_mem mem = { .nr_regions = 1, .size = MEM_SIZE,
				 .region = { { .gpa = 0, .size = MEM_SIZE, .hva = direct } } };
	struct acpi_config cfg;
	struct acpi_tables t;
	uint64_t rsdp;
	uint8_t *cmds;
	size_t len;

	for (int pci = 0; pci < 2; pci++) {
		build(pci, &cfg, &t, &cmds, &len);
		struct placed f[2] = {
			{ "etc/acpi/tables", t.tables, t.len, KILN_ACPI_START + ACPI_TABLES_AFTER_RSDP, false },
			{ "etc/acpi/rsdp", t.rsdp, ACPI_RSDP_LEN, KILN_ACPI_START, false },
		};
		memset(ram, 0, MEM_SIZE);
		memset(direct, 0, MEM_SIZE);
		run_loader(ram, f, cmds, len);
		assert_int_equal(acpi_build(&mem, KILN_ACPI_START, KILN_ACPI_END - KILN_ACPI_START,
					    &cfg, &rsdp), 0);
		assert_memory_equal(ram, direct, MEM_SIZE);
		free(cmds);
		acpi_tables_free(&t);
	}
	free(ram);
	free(direct);
}

/* Anywhere else (RSDP in the F segment, tables high): every pointer and checksum is right. */
static void test_loaded_elsewhere(void **state)
{
	uint8_t *ram = calloc(1, MEM_SIZE);
	struct acpi_config cfg;
	struct acpi_tables t;
	uint8_t *cmds;
	size_t len;

	build(true, &cfg, &t, &cmds, &len);
	struct placed f[2] = { { "etc/acpi/tables", t.tables, t.len, 0x1c0040, false },
			       { "etc/acpi/rsdp", t.rsdp, ACPI_RSDP_LEN, 0xf5a10, false } };
	run_loader(ram, f, cmds, len);
	const uint8_t *rsdp = ram + 0xf5a10, *xsdt = ram + rd64(rsdp + 24), *fadt;
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(rsdp, 20), 0);
	assert_int_equal(acpi_checksum(rsdp, 36), 0);
	assert_int_equal(rd64(rsdp + 24), 0x1c0040);
	assert_int_equal(acpi_checksum(xsdt, rd32(xsdt + 4)), 0);
	assert_int_equal((rd32(xsdt + 4) - 36) / 8, 3);
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *tb = ram + rd64(xsdt + 36 + 8 * i);

		assert_true(rd64(xsdt + 36 + 8 * i) >= 0x1c0040);
		assert_int_equal(acpi_checksum(tb, rd32(tb + 4)), 0);
	}
	fadt = ram + rd64(xsdt + 36);
	assert_memory_equal(fadt, "FACP", 4);
	assert_int_equal(rd32(fadt + 40), rd64(fadt + 140));
	assert_memory_equal(ram + rd64(fadt + 140), "DSDT", 4);
	assert_int_equal(acpi_checksum(ram + rd64(fadt + 140), rd32(ram + rd64(fadt + 140) + 4)), 0);
	assert_memory_equal(ram + rd64(fadt + 132), "FACS", 4);
	assert_int_equal(rd64(fadt + 132) % 64, 0);
	free(cmds);
	acpi_tables_free(&t);
	free(ram);
}

static void test_tables_for_an_address(void **state)
{
	struct acpi_config cfg;
	struct acpi_tables t;
	uint8_t *cmds = NULL;
	size_t len = 0;

	pc_config(&cfg, false);
	assert_int_equal(acpi_build_tables(&cfg, 0xe0040, &t), 0);
	assert_int_equal(table_loader_build(&t, &cmds, &len), -EINVAL);
	assert_null(cmds);
	acpi_tables_free(&t);
	acpi_tables_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_layout),
		cmocka_unit_test(test_loaded_equals_direct_build),
		cmocka_unit_test(test_loaded_elsewhere),
		cmocka_unit_test(test_tables_for_an_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
