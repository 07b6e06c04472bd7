/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the ACPI tables and the AML builder; each table is also disassembled with
 * iasl (acpica-tools, installed by scripts/deps.sh), which must accept it without errors. */
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

#include "arch/x86/aml.h"
#include "kiln/acpi.h"
#include "kiln/layout.h"

#define MEM_SIZE (2u << 20)
#define BASE KILN_ACPI_START

static uint8_t *ram;
static struct guest_mem mem;

static int setup(void **state)
{
	ram = calloc(1, MEM_SIZE);
	mem = (struct guest_mem){ .nr_regions = 1, .size = MEM_SIZE,
				  .region = { { .gpa = 0, .size = MEM_SIZE, .hva = ram } } };
	return ram ? 0 : -1;
}

static int teardown(void **state)
{
	free(ram);
	return 0;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void pc_config(struct acpi_config *cfg, unsigned cpus)
{
	static const struct acpi_device_desc com1 = {
		.name = "COM1", .hid = "PNP0501", .uid = 1, .nr_res = 2,
		.res = { { ACPI_RES_IO, 0x3f8, 8 }, { ACPI_RES_IRQ, 4, 0 } } };
	static const struct acpi_device_desc pevt = {
		.name = "PEVT", .hid = "QEMU0001", .nr_res = 1, .res = { { ACPI_RES_IO, 0x505, 1 } } };
	static const struct acpi_device_desc mem32 = {
		.name = "MEM0", .hid = "PNP0C02", .nr_res = 1,
		.res = { { ACPI_RES_MEM32, 0xc0000000u, 0x1000 } } };

	memset(cfg, 0, sizeof(*cfg));
	cfg->nr_cpus = cpus;
	assert_int_equal(acpi_add_device(cfg, &com1), 0);
	assert_int_equal(acpi_add_device(cfg, &pevt), 0);
	assert_int_equal(acpi_add_device(cfg, &mem32), 0);
}

/* Find table @sig through RSDP -> XSDT (or FADT for DSDT and FACS). */
static const uint8_t *table(const char *sig)
{
	const uint8_t *rsdp = ram + BASE, *xsdt = ram + rd64(rsdp + 24), *fadt = NULL;
	uint32_t n = (rd32(xsdt + 4) - 36) / 8;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = ram + rd64(xsdt + 36 + 8 * i);

		if (!memcmp(t, sig, 4))
			return t;
		if (!memcmp(t, "FACP", 4))
			fadt = t;
	}
	assert_non_null(fadt);
	if (!strcmp(sig, "DSDT"))
		return ram + rd64(fadt + 140);
	if (!strcmp(sig, "FACS"))
		return ram + rd64(fadt + 132);
	fail_msg("table %s not found", sig);
	return NULL;
}

static void test_rsdp_and_checksums(void **state)
{
	struct acpi_config cfg;
	uint64_t rsdp = 0;
	const char *sigs[] = { "FACP", "APIC", "DSDT" };

	pc_config(&cfg, 4);
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), 0);
	assert_int_equal(rsdp, BASE);
	assert_memory_equal(ram + BASE, "RSD PTR ", 8);
	assert_int_equal(ram[BASE + 15], 2);
	assert_int_equal(acpi_checksum(ram + BASE, 20), 0);
	assert_int_equal(acpi_checksum(ram + BASE, 36), 0);
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *t = table(sigs[i]);

		assert_int_equal(acpi_checksum(t, rd32(t + 4)), 0);
	}
	assert_memory_equal(table("FACS"), "FACS", 4);
	assert_int_equal((table("FACS") - ram) % 64, 0);
}

static void test_fadt_fields(void **state)
{
	struct acpi_config cfg;
	uint64_t rsdp;
	const uint8_t *f;

	pc_config(&cfg, 1);
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), 0);
	f = table("FACP");
	assert_int_equal(rd32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(rd32(f + 36), 0);                 /* FIRMWARE_CTRL: X_ form only */
	assert_int_equal(rd32(f + 40), rd64(f + 140));     /* DSDT == X_DSDT */
	assert_int_equal(rd16(f + 46), KILN_IRQ_SCI);
	assert_int_equal(rd32(f + 48), 0);                 /* no SMI_CMD */
	assert_int_equal(rd32(f + 56), KILN_PORT_PM1A_EVT);
	assert_int_equal(rd32(f + 64), KILN_PORT_PM1A_CNT);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[108], 0x32);
	assert_int_equal(rd16(f + 109) & 2, 0);            /* no 8042 announced */
	assert_int_equal(rd32(f + 112) & (1u << 10), 0);   /* no RESET_REG */
	assert_int_equal(rd32(f + 112) & (1u << 20), 0);   /* not hardware-reduced */
	assert_int_equal(f[148], 1);                       /* X_PM1a_EVT_BLK: system I/O */
	assert_int_equal(f[149], 32);
	assert_int_equal(rd64(f + 152), KILN_PORT_PM1A_EVT);
	assert_int_equal(f[173], 16);
	assert_int_equal(rd64(f + 176), KILN_PORT_PM1A_CNT);
}

static void test_madt_entries(void **state)
{
	struct acpi_config cfg;
	uint64_t rsdp;
	const uint8_t *m, *e, *end;
	unsigned lapics = 0, isos = 0, ioapics = 0, nmis = 0;

	pc_config(&cfg, 4);
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), 0);
	m = table("APIC");
	assert_int_equal(rd32(m + 36), KILN_LAPIC_GPA);
	assert_int_equal(rd32(m + 40), 1);
	end = m + rd32(m + 4);
	for (e = m + 44; e < end; e += e[1]) {
		assert_true(e[1] >= 2);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[2], lapics);
			assert_int_equal(e[3], lapics);
			assert_int_equal(rd32(e + 4), 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(rd32(e + 4), KILN_IOAPIC_GPA);
			assert_int_equal(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			if (e[3] == 0) {
				assert_int_equal(rd32(e + 4), 2);
			} else {
				assert_int_equal(e[3], KILN_IRQ_SCI);
				assert_int_equal(rd32(e + 4), KILN_IRQ_SCI);
				assert_int_equal(rd16(e + 8), 0x000d);
			}
			isos++;
			break;
		case 4:
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_ptr_equal(e, end);
	assert_int_equal(lapics, 4);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 2);
	assert_int_equal(nmis, 1);
}

static void test_pkglength(void **state)
{
	uint8_t b[4];

	assert_int_equal(aml_pkglength(0, b), 1);
	assert_int_equal(b[0], 1);
	assert_int_equal(aml_pkglength(62, b), 1);
	assert_int_equal(b[0], 63);
	/* 63 content bytes + 2 length bytes = 65 = 0x41: lead 0x40 | 0x1, then 0x04. */
	assert_int_equal(aml_pkglength(63, b), 2);
	assert_int_equal(b[0], 0x41);
	assert_int_equal(b[1], 0x04);
	assert_int_equal(aml_pkglength(4093, b), 2); /* 4095 total */
	assert_int_equal(b[0], 0x4f);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(aml_pkglength(4094, b), 3); /* 4097 = 0x1001 */
	assert_int_equal(b[0], 0x81);
	assert_int_equal(b[1], 0x00);
	assert_int_equal(b[2], 0x01);
	assert_int_equal(aml_pkglength(1u << 20, b), 4);
	assert_int_equal(aml_pkglength(1u << 28, b), 0);
}

static void test_aml_encodings(void **state)
{
	struct aml a;
	static const uint8_t want[] = { 0x00, 0x01, 0x0a, 0x05, 0x0b, 0x34, 0x12, 0x0c, 0x78, 0x56,
					0x34, 0x12, 0x0e, 1, 0, 0, 0, 1, 0, 0, 0, 0x0d, 'h', 'i', 0 };

	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 5);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0x12345678);
	aml_integer(&a, 0x100000001ULL);
	aml_string(&a, "hi");
	assert_false(a.failed);
	assert_int_equal(a.len, sizeof(want));
	assert_memory_equal(a.buf, want, sizeof(want));
	aml_free(&a);
	assert_int_equal(aml_eisaid("PNP0501"), 0x0105d041);
	assert_int_equal(aml_eisaid("PNP0B00"), 0x000bd041);
}

static void test_bad_config(void **state)
{
	struct acpi_config cfg;
	uint64_t rsdp;

	pc_config(&cfg, 0);
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), -EINVAL);
	pc_config(&cfg, 256);
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), -EINVAL);
	pc_config(&cfg, 1);
	strcpy(cfg.device[0].name, "1BAD");
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), -EINVAL);
	pc_config(&cfg, 1);
	strcpy(cfg.device[0].hid, "PNP05");
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), -EINVAL);
	pc_config(&cfg, 1);
	cfg.device[0].res[1].base = 16; /* not an ISA IRQ */
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), -EINVAL);
	pc_config(&cfg, 1);
	assert_int_equal(acpi_build(&mem, BASE, 64, &cfg, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build(&mem, MEM_SIZE - 256, 0x10000, &cfg, &rsdp), -EFAULT);
	while (cfg.nr_devices < ACPI_MAX_DEVICES)
		assert_int_equal(acpi_add_device(&cfg, &cfg.device[0]), 0);
	assert_int_equal(acpi_add_device(&cfg, &cfg.device[0]), -ENOSPC);
}

/* The whole text file @dir/@name (NUL-terminated, at most 1 MiB); the caller frees it. */
static char *read_text(const char *dir, const char *name)
{
	char path[256], *text = calloc(1, 1 << 20);
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(n > 0);
	return text;
}

/* Many devices push the \_SB scope past 63 and 4095 bytes: multi-byte PkgLengths. */
static void test_iasl_disassembles_every_table(void **state)
{
	struct acpi_config cfg;
	uint64_t rsdp;
	char dir[] = "/tmp/kiln-acpi-XXXXXX", cmd[512], path[256];
	const char *sigs[] = { "FACP", "APIC", "DSDT", "FACS", "MCFG" };
	static const struct acpi_device_desc vmmio = {
		.name = "VR00", .hid = "LNRO0005", .nr_res = 2,
		.res = { { ACPI_RES_MEM32, 0xd0000000u, 0x1000 }, { ACPI_RES_GSI, 16, 0 } } };
	FILE *f;
	char *dsl;

	if (access("/usr/bin/iasl", X_OK))
		fail_msg("iasl not found: scripts/deps.sh installs acpica-tools");
	pc_config(&cfg, 8);
	assert_int_equal(acpi_add_device(&cfg, &vmmio), 0);
	cfg.pci = (struct acpi_pci){ .present = true, .ecam_base = 0xe0000000u, .mem_base = 0xc1000000u,
				     .mem_limit = 0xcfffffffu, .nr_prt = 2,
				     .prt = { { 1, 16 }, { 2, 17 } } };
	while (cfg.nr_devices < ACPI_MAX_DEVICES) {
		struct acpi_device_desc d = cfg.device[0];

		snprintf(d.name, sizeof(d.name), "CM%02u", cfg.nr_devices);
		d.uid = cfg.nr_devices;
		assert_int_equal(acpi_add_device(&cfg, &d), 0);
	}
	assert_int_equal(acpi_build(&mem, BASE, KILN_ACPI_END - BASE, &cfg, &rsdp), 0);
	assert_non_null(mkdtemp(dir));
	for (unsigned i = 0; i < 5; i++) {
		const uint8_t *t = table(sigs[i]);

		snprintf(path, sizeof(path), "%s/%s.dat", dir, sigs[i]);
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(t, 1, rd32(t + 4), f), rd32(t + 4));
		fclose(f);
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat > %s.log 2>&1", dir, sigs[i], sigs[i]);
		assert_int_equal(system(cmd), 0);
	}
	dsl = read_text(dir, "DSDT.dsl");
	assert_non_null(strstr(dsl, "_S5_"));
	assert_non_null(strstr(dsl, "PNP0501"));
	assert_non_null(strstr(dsl, "QEMU0001"));
	assert_non_null(strstr(dsl, "Device (CM15)"));
	assert_non_null(strstr(dsl, "IO (Decode16,"));
	assert_non_null(strstr(dsl, "Memory32Fixed (ReadWrite,"));
	assert_non_null(strstr(dsl, "LNRO0005"));
	assert_non_null(strstr(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )"));
	assert_non_null(strstr(dsl, "PNP0A03"));
	assert_non_null(strstr(dsl, "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,"));
	assert_non_null(strstr(dsl, "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,"));
	assert_non_null(strstr(dsl, "Name (_PRT, Package (0x02)"));
	assert_non_null(strstr(dsl, "0x0002FFFF"));
	assert_non_null(strstr(dsl, "Device (SL02)"));
	assert_non_null(strstr(dsl, "Name (_ADR, 0x00020000)"));
	free(dsl);
	dsl = read_text(dir, "MCFG.dsl");
	assert_non_null(strstr(dsl, "Base Address : 00000000E0000000"));
	free(dsl);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp_and_checksums),
		cmocka_unit_test(test_fadt_fields),
		cmocka_unit_test(test_madt_entries),
		cmocka_unit_test(test_pkglength),
		cmocka_unit_test(test_aml_encodings),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_iasl_disassembles_every_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
