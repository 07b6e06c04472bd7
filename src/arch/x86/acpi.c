/* SPDX-License-Identifier: Apache-2.0 */
/* acpi — RSDP, XSDT, FADT, FACS, MADT and DSDT for kiln's PC, see include/kiln/acpi.h.
 *
 * Layouts are ACPI 6.5 §5.2 (RSDP §5.2.5, header §5.2.6, XSDT §5.2.8, FADT §5.2.9, FACS
 * §5.2.10, MADT §5.2.12) written field by field in little-endian order at the offsets the
 * specification gives; the DSDT is AML from aml.c (§19-20) with resource descriptors from §6.4.
 */
#include "kiln/acpi.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "kiln/layout.h"

#define OEM_ID "KILN  "
#define OEM_TABLE_ID "KILNVM  "
#define CREATOR_ID "KILN"
#define HDR_LEN 36
#define FADT_LEN 276
#define FADT_DSDT 40             /* 32-bit DSDT address */
#define FADT_X_FIRMWARE_CTRL 132
#define FADT_X_DSDT 140
#define FACS_LEN 64
#define FADT_REVISION 6
#define FADT_MINOR 5
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_PWR_BUTTON (1u << 4)   /* no fixed power button */
#define FADT_SLP_BUTTON (1u << 5)   /* no fixed sleep button */
#define BOOT_ARCH_LEGACY_DEVICES (1u << 0)
#define BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MPS_LEVEL_HIGH 0x000d       /* polarity active high (1), trigger level (3 << 2) */
#define GAS_SYSTEM_IO 1
#define CMOS_CENTURY 0x32

static void put8(uint8_t *p, size_t off, uint8_t v) { p[off] = v; }
static void put16(uint8_t *p, size_t off, uint16_t v) { p[off] = (uint8_t)v; p[off + 1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, size_t off, uint32_t v) { put16(p, off, (uint16_t)v); put16(p, off + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, size_t off, uint64_t v) { put32(p, off, (uint32_t)v); put32(p, off + 4, (uint32_t)(v >> 32)); }

uint8_t acpi_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return sum;
}

/* System description table header (§5.2.6); the checksum is set by finish(). */
static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t, 4, len);
	put8(t, 8, rev);
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put32(t, 24, 1);
	memcpy(t + 28, CREATOR_ID, 4);
	put32(t, 32, 1);
}

static void finish(uint8_t *t, size_t len) { t[9] = (uint8_t)(t[9] - acpi_checksum(t, len)); }

/* Generic Address Structure (§5.2.3.2) for an I/O port block. */
static void gas_io(uint8_t *p, size_t off, uint16_t port, uint8_t bytes)
{
	put8(p, off, GAS_SYSTEM_IO);
	put8(p, off + 1, (uint8_t)(bytes * 8));
	put8(p, off + 2, 0);
	put8(p, off + 3, bytes == 4 ? 3 : bytes == 2 ? 2 : 1); /* access size: dword/word/byte */
	put64(p, off + 4, port);
}

static void build_fadt(uint8_t *t, uint64_t facs, uint64_t dsdt, uint16_t pm_timer)
{
	header(t, "FACP", FADT_LEN, FADT_REVISION);
	/* FIRMWARE_CTRL stays 0: X_FIRMWARE_CTRL is set, and §5.2.9 allows only one of them. */
	put32(t, FADT_DSDT, (uint32_t)dsdt);
	put16(t, 46, KILN_IRQ_SCI);
	put32(t, 48, 0);                       /* SMI_CMD 0: ACPI mode is always on */
	put32(t, 56, KILN_PORT_PM1A_EVT);
	put32(t, 64, KILN_PORT_PM1A_CNT);
	put8(t, 88, 4);                        /* PM1_EVT_LEN */
	put8(t, 89, 2);                        /* PM1_CNT_LEN */
	put8(t, 108, CMOS_CENTURY);
	/* Legacy ISA devices exist (UART, RTC); no 8042 is announced, so Linux's i8042 driver does
	 * not probe (the reset line works regardless); no VGA; the CMOS RTC is present. */
	put16(t, 109, BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_VGA_NOT_PRESENT);
	put32(t, 112, FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON);
	put8(t, 131, FADT_MINOR);
	put64(t, FADT_X_FIRMWARE_CTRL, facs);
	put64(t, FADT_X_DSDT, dsdt);
	gas_io(t, 148, KILN_PORT_PM1A_EVT, 4);
	gas_io(t, 172, KILN_PORT_PM1A_CNT, 2);
	if (pm_timer) { /* §5.2.9: PM_TMR_BLK, PM_TMR_LEN, X_PM_TMR_BLK; TMR_VAL_EXT clear */
		put32(t, 76, pm_timer);
		put8(t, 91, 4);
		gas_io(t, 208, pm_timer, 4);
	}
	finish(t, FADT_LEN);
}

static void build_facs(uint8_t *t)
{
	memcpy(t, "FACS", 4);
	put32(t, 4, FACS_LEN);
	put8(t, 32, 2); /* version */
}

static size_t madt_len(unsigned nr_cpus) { return HDR_LEN + 8 + 8 * nr_cpus + 12 + 2 * 10 + 6; }

static void build_madt(uint8_t *t, unsigned nr_cpus)
{
	size_t len = madt_len(nr_cpus), o = HDR_LEN + 8;

	header(t, "APIC", (uint32_t)len, 5);
	put32(t, 36, (uint32_t)KILN_LAPIC_GPA);
	put32(t, 40, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < nr_cpus; i++, o += 8) {
		put8(t, o, MADT_LAPIC);
		put8(t, o + 1, 8);
		put8(t, o + 2, (uint8_t)i); /* ACPI processor UID */
		put8(t, o + 3, (uint8_t)i); /* APIC ID */
		put32(t, o + 4, 1);         /* enabled */
	}
	put8(t, o, MADT_IOAPIC);
	put8(t, o + 1, 12);
	put8(t, o + 2, 0);                         /* I/O APIC ID */
	put32(t, o + 4, (uint32_t)KILN_IOAPIC_GPA);
	put32(t, o + 8, 0);                        /* GSI base */
	o += 12;
	put8(t, o, MADT_ISO);                      /* the PIT's IRQ 0 is GSI 2 */
	put8(t, o + 1, 10);
	put8(t, o + 3, 0);
	put32(t, o + 4, 2);
	put16(t, o + 8, 0);
	o += 10;
	put8(t, o, MADT_ISO);                      /* SCI: level-triggered, active high */
	put8(t, o + 1, 10);
	put8(t, o + 3, KILN_IRQ_SCI);
	put32(t, o + 4, KILN_IRQ_SCI);
	put16(t, o + 8, MPS_LEVEL_HIGH);
	o += 10;
	put8(t, o, MADT_LAPIC_NMI);                /* NMI on LINT1 of every processor */
	put8(t, o + 1, 6);
	put8(t, o + 2, 0xff);
	put16(t, o + 3, 0);
	put8(t, o + 5, 1);
	finish(t, len);
}

static bool valid_nameseg(const char *n)
{
	if (strlen(n) != 4 || isdigit((unsigned char)n[0]))
		return false;
	for (int i = 0; i < 4; i++)
		if (!isupper((unsigned char)n[i]) && !isdigit((unsigned char)n[i]) && n[i] != '_')
			return false;
	return true;
}

static bool is_eisa_id(const char *h)
{
	if (strlen(h) != 7)
		return false;
	for (int i = 0; i < 3; i++)
		if (!isupper((unsigned char)h[i]))
			return false;
	for (int i = 3; i < 7; i++)
		if (!isxdigit((unsigned char)h[i]))
			return false;
	return true;
}

static bool valid_device(const struct acpi_device_desc *d)
{
	if (!valid_nameseg(d->name) || d->nr_res > ACPI_MAX_RESOURCES)
		return false;
	if (!is_eisa_id(d->hid) && strlen(d->hid) != 8)
		return false;
	for (unsigned i = 0; i < d->nr_res; i++) {
		const struct acpi_resource *r = &d->res[i];

		if (r->type == ACPI_RES_IO && (r->base > 0xffff || r->len == 0 || r->len > 0xff))
			return false;
		if (r->type == ACPI_RES_IRQ && r->base > 15)
			return false;
	}
	return true;
}

int acpi_add_device(struct acpi_config *acpi, const struct acpi_device_desc *dev)
{
	if (acpi->nr_devices == ACPI_MAX_DEVICES)
		return -ENOSPC;
	acpi->device[acpi->nr_devices++] = *dev;
	return 0;
}

/* _CRS buffer: ResourceTemplate() of IO / Memory32Fixed / IRQNoFlags / Interrupt descriptors
 * (§6.4). */
static void aml_crs(struct aml *a, const struct acpi_device_desc *d)
{
	static const uint8_t buffer_op = 0x11, name_op = 0x08;
	size_t pkg, body;
	uint8_t desc[12];

	aml_byte(a, name_op);
	aml_nameseg(a, "_CRS");
	pkg = aml_open(a, &buffer_op, 1);
	body = 0;
	for (unsigned i = 0; i < d->nr_res; i++)
		body += d->res[i].type == ACPI_RES_IO ? 8 : d->res[i].type == ACPI_RES_IRQ ? 3 :
			d->res[i].type == ACPI_RES_GSI ? 9 : 12;
	aml_integer(a, body + 2);
	for (unsigned i = 0; i < d->nr_res; i++) {
		const struct acpi_resource *r = &d->res[i];

		switch (r->type) {
		case ACPI_RES_IO: /* §6.4.2.5: decodes 16 bits, min = max = base, alignment 1 */
			desc[0] = 0x47;
			desc[1] = 1;
			put16(desc, 2, (uint16_t)r->base);
			put16(desc, 4, (uint16_t)r->base);
			desc[6] = 1;
			desc[7] = (uint8_t)r->len;
			aml_bytes(a, desc, 8);
			break;
		case ACPI_RES_IRQ: /* §6.4.2.1 IRQNoFlags: edge, active high, exclusive */
			desc[0] = 0x22;
			put16(desc, 1, (uint16_t)(1u << r->base));
			aml_bytes(a, desc, 3);
			break;
		case ACPI_RES_GSI: /* §6.4.3.6: consumer, edge, active high, exclusive, one GSI */
			desc[0] = 0x89;
			put16(desc, 1, 6);
			desc[3] = 0x03;
			desc[4] = 1;
			put32(desc, 5, r->base);
			aml_bytes(a, desc, 9);
			break;
		case ACPI_RES_MEM32: /* §6.4.3.4 Memory32Fixed, read/write */
			desc[0] = 0x86;
			put16(desc, 1, 9);
			desc[3] = 1;
			put32(desc, 4, r->base);
			put32(desc, 8, r->len);
			aml_bytes(a, desc, 12);
			break;
		}
	}
	aml_byte(a, 0x79); /* End tag; checksum 0 means "not checked" */
	aml_byte(a, 0x00);
	aml_close(a, pkg);
}

static void aml_device(struct aml *a, const struct acpi_device_desc *d)
{
	static const uint8_t device_op[] = { 0x5b, 0x82 }, name_op = 0x08;
	size_t pkg = aml_open(a, device_op, 2);

	aml_nameseg(a, d->name);
	aml_byte(a, name_op);
	aml_nameseg(a, "_HID");
	if (is_eisa_id(d->hid))
		aml_integer(a, aml_eisaid(d->hid));
	else
		aml_string(a, d->hid);
	aml_byte(a, name_op);
	aml_nameseg(a, "_UID");
	aml_integer(a, d->uid);
	aml_crs(a, d);
	aml_close(a, pkg);
}

/* Word (§6.4.3.5.3) or DWord (§6.4.3.5.2) address space descriptor of a window the root bridge
 * produces: @type 0 memory, 1 I/O, 2 bus numbers; fixed minimum and maximum. */
static void addr_space(struct aml *a, bool dword, uint8_t type, uint8_t type_flags, uint32_t min,
		       uint32_t max)
{
	uint8_t d[26] = { dword ? 0x87 : 0x88, dword ? 23 : 13, 0, type, 0x0c, type_flags };

	if (dword) {
		put32(d, 10, min);
		put32(d, 14, max);
		put32(d, 22, max - min + 1);
	} else {
		put16(d, 8, (uint16_t)min);
		put16(d, 10, (uint16_t)max);
		put16(d, 14, (uint16_t)(max - min + 1));
	}
	aml_bytes(a, d, dword ? 26 : 16);
}

/* \_SB.PCI0: bus 0, the configuration ports, I/O around them, the BAR window, _PRT, and a
 * Device with _ADR for each populated slot. */
static void aml_pci_root(struct aml *a, const struct acpi_pci *pci)
{
	static const uint8_t device_op[] = { 0x5b, 0x82 }, name_op = 0x08, buffer_op = 0x11,
		package_op = 0x12;
	static const uint8_t cf8[8] = { 0x47, 1, 0xf8, 0x0c, 0xf8, 0x0c, 1, 8 };
	size_t dev = aml_open(a, device_op, 2), buf, pkg;

	aml_nameseg(a, "PCI0");
	aml_byte(a, name_op);
	aml_nameseg(a, "_HID");
	aml_integer(a, aml_eisaid("PNP0A03"));
	aml_byte(a, name_op);
	aml_nameseg(a, "_UID");
	aml_integer(a, 0);
	aml_byte(a, name_op);
	aml_nameseg(a, "_SEG");
	aml_integer(a, 0);
	aml_byte(a, name_op);
	aml_nameseg(a, "_BBN");
	aml_integer(a, 0);

	aml_byte(a, name_op);
	aml_nameseg(a, "_CRS");
	buf = aml_open(a, &buffer_op, 1);
	aml_integer(a, 16 + 8 + 16 + 16 + 26 + 2);
	addr_space(a, false, 2, 0, 0, 0);                     /* bus 0 */
	aml_bytes(a, cf8, sizeof(cf8));                       /* 0xCF8-0xCFF */
	addr_space(a, false, 1, 3, 0x0000, 0x0cf7);
	addr_space(a, false, 1, 3, 0x0d00, 0xffff);
	addr_space(a, true, 0, 1, pci->mem_base, pci->mem_limit); /* read/write, non-cacheable */
	aml_byte(a, 0x79);
	aml_byte(a, 0x00);
	aml_close(a, buf);

	aml_byte(a, name_op);
	aml_nameseg(a, "_PRT");
	pkg = aml_open(a, &package_op, 1);
	aml_byte(a, (uint8_t)pci->nr_prt);
	for (unsigned i = 0; i < pci->nr_prt; i++) {
		size_t entry = aml_open(a, &package_op, 1);

		aml_byte(a, 4);
		aml_integer(a, ((uint32_t)pci->prt[i].slot << 16) | 0xffff); /* any function */
		aml_integer(a, 0);                                          /* INTA# */
		aml_integer(a, 0);                                          /* no link device: a GSI */
		aml_integer(a, pci->prt[i].gsi);
		aml_close(a, entry);
	}
	aml_close(a, pkg);
	/* One Device per populated slot, named SLnn, with _ADR = slot << 16 (function 0). */
	for (unsigned i = 0; i < pci->nr_prt; i++) {
		size_t slot = aml_open(a, device_op, 2);
		char seg[5];

		snprintf(seg, sizeof(seg), "SL%02u", pci->prt[i].slot % 100u);
		aml_nameseg(a, seg);
		aml_byte(a, name_op);
		aml_nameseg(a, "_ADR");
		aml_integer(a, (uint32_t)pci->prt[i].slot << 16);
		aml_close(a, slot);
	}
	aml_close(a, dev);
}

/* DSDT body: \_S5 sleep package and one Device per description under \_SB. */
static void build_dsdt_body(struct aml *a, const struct acpi_config *acpi)
{
	static const uint8_t package_op = 0x12, scope_op = 0x10, name_op = 0x08;
	size_t pkg;

	aml_byte(a, name_op);
	aml_nameseg(a, "_S5_");
	pkg = aml_open(a, &package_op, 1);
	aml_byte(a, 4); /* NumElements */
	aml_integer(a, KILN_ACPI_S5_SLP_TYP);
	aml_integer(a, KILN_ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_close(a, pkg);

	pkg = aml_open(a, &scope_op, 1);
	aml_byte(a, '\\');
	aml_nameseg(a, "_SB_");
	if (acpi->pci.present)
		aml_pci_root(a, &acpi->pci);
	for (unsigned i = 0; i < acpi->nr_devices; i++)
		aml_device(a, &acpi->device[i]);
	aml_close(a, pkg);
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

#define MCFG_LEN (HDR_LEN + 8 + 16)

/* MCFG (PCI Firmware 3.2 §4.1.2): one ECAM window, segment 0, bus 0 only. */
static void build_mcfg(uint8_t *t, uint64_t ecam)
{
	header(t, "MCFG", MCFG_LEN, 1);
	put64(t, HDR_LEN + 8, ecam);
	put16(t, HDR_LEN + 16, 0);
	put8(t, HDR_LEN + 18, 0);
	put8(t, HDR_LEN + 19, 0);
	finish(t, MCFG_LEN);
}

/* Record that @size bytes at @offset of @file hold the address of a table, as an offset into
 * the tables plus out->tables_addr. */
static void add_pointer(struct acpi_tables *out, enum acpi_file file, size_t offset, uint8_t size)
{
	out->pointer[out->nr_pointers++] = (struct acpi_pointer){
		.file = file, .offset = (uint32_t)offset, .size = size };
}

/* Record the checksum byte at @offset of @file, over [start, start + len). */
static void add_checksum(struct acpi_tables *out, enum acpi_file file, size_t offset,
			 size_t start, size_t len)
{
	out->checksum[out->nr_checksums++] = (struct acpi_checksum_range){
		.file = file, .offset = (uint32_t)offset, .start = (uint32_t)start,
		.len = (uint32_t)len };
}

/* A system description table's own checksum (header byte 9) over its @len bytes at @t. */
static void table_checksum(struct acpi_tables *out, size_t t, size_t len)
{
	add_checksum(out, ACPI_FILE_TABLES, t + 9, t, len);
}

int acpi_build_tables(const struct acpi_config *acpi, uint64_t tables_addr,
		      struct acpi_tables *out)
{
	size_t xsdt, fadt, facs, madt, mcfg, dsdt, end, dsdt_len, nr_tables, xsdt_len;
	struct aml body;
	uint8_t *t, *r = out->rsdp;

	*out = (struct acpi_tables){ .tables_addr = tables_addr };
	if (acpi->nr_cpus == 0 || acpi->nr_cpus > 255 || acpi->nr_devices > ACPI_MAX_DEVICES ||
	    acpi->pci.nr_prt > 32)
		return -EINVAL;
	for (unsigned i = 0; i < acpi->nr_devices; i++)
		if (!valid_device(&acpi->device[i]))
			return -EINVAL;
	aml_init(&body);
	build_dsdt_body(&body, acpi);
	if (body.failed) {
		aml_free(&body);
		return -ENOMEM;
	}
	/* Offsets into the tables, which start 64-byte aligned (the FACS's alignment, §5.2.10). */
	dsdt_len = HDR_LEN + body.len;
	nr_tables = acpi->pci.present ? 3 : 2;
	xsdt = 0;
	xsdt_len = HDR_LEN + nr_tables * 8;
	fadt = align_up(xsdt + xsdt_len, 16);
	facs = align_up(fadt + FADT_LEN, 64);
	madt = align_up(facs + FACS_LEN, 16);
	mcfg = align_up(madt + madt_len(acpi->nr_cpus), 16);
	dsdt = align_up(mcfg + (acpi->pci.present ? MCFG_LEN : 0), 16);
	end = dsdt + dsdt_len;
	t = calloc(1, end);
	if (!t) {
		aml_free(&body);
		return -ENOMEM;
	}
	/* RSDP (§5.2.5.3): revision 2, no RSDT, the XSDT. */
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	put8(r, 15, 2);
	put32(r, 20, ACPI_RSDP_LEN);
	put64(r, 24, tables_addr + xsdt);
	add_pointer(out, ACPI_FILE_RSDP, 24, 8);
	r[8] = (uint8_t)(0 - acpi_checksum(r, 20));
	r[32] = (uint8_t)(0 - acpi_checksum(r, ACPI_RSDP_LEN));
	add_checksum(out, ACPI_FILE_RSDP, 8, 0, 20);
	add_checksum(out, ACPI_FILE_RSDP, 32, 0, ACPI_RSDP_LEN);

	header(t + xsdt, "XSDT", (uint32_t)xsdt_len, 1);
	put64(t + xsdt, HDR_LEN, tables_addr + fadt);
	put64(t + xsdt, HDR_LEN + 8, tables_addr + madt);
	if (acpi->pci.present) {
		put64(t + xsdt, HDR_LEN + 16, tables_addr + mcfg);
		build_mcfg(t + mcfg, acpi->pci.ecam_base);
	}
	for (size_t i = 0; i < nr_tables; i++)
		add_pointer(out, ACPI_FILE_TABLES, xsdt + HDR_LEN + 8 * i, 8);
	finish(t + xsdt, xsdt_len);
	table_checksum(out, xsdt, xsdt_len);
	build_fadt(t + fadt, tables_addr + facs, tables_addr + dsdt, acpi->pm_timer);
	add_pointer(out, ACPI_FILE_TABLES, fadt + FADT_DSDT, 4);
	add_pointer(out, ACPI_FILE_TABLES, fadt + FADT_X_FIRMWARE_CTRL, 8);
	add_pointer(out, ACPI_FILE_TABLES, fadt + FADT_X_DSDT, 8);
	table_checksum(out, fadt, FADT_LEN);
	build_facs(t + facs);
	build_madt(t + madt, acpi->nr_cpus);
	table_checksum(out, madt, madt_len(acpi->nr_cpus));
	if (acpi->pci.present)
		table_checksum(out, mcfg, MCFG_LEN);
	header(t + dsdt, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(t + dsdt + HDR_LEN, body.buf, body.len);
	finish(t + dsdt, dsdt_len);
	table_checksum(out, dsdt, dsdt_len);
	aml_free(&body);
	out->tables = t;
	out->len = end;
	return 0;
}

void acpi_tables_free(struct acpi_tables *t)
{
	free(t->tables);
	t->tables = NULL;
	t->len = 0;
}

int acpi_build(const struct guest_mem *mem, uint64_t base, uint64_t max_len,
	       const struct acpi_config *acpi, uint64_t *rsdp_gpa)
{
	struct acpi_tables t;
	int ret = acpi_build_tables(acpi, base + ACPI_TABLES_AFTER_RSDP, &t);

	if (ret)
		return ret;
	if (ACPI_TABLES_AFTER_RSDP + t.len > max_len)
		ret = -ENOSPC;
	else if (guest_mem_write(mem, base, t.rsdp, ACPI_RSDP_LEN) ||
		 guest_mem_write(mem, base + ACPI_TABLES_AFTER_RSDP, t.tables, t.len))
		ret = -EFAULT;
	else
		*rsdp_gpa = base;
	acpi_tables_free(&t);
	return ret;
}
