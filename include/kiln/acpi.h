/* SPDX-License-Identifier: Apache-2.0 */
/* acpi — the ACPI tables kiln gives the guest: RSDP, XSDT, FADT (+FACS), MADT and a DSDT
 * written by a small AML builder.
 *
 * Owns: table layouts (ACPI 6.5 §5.2), their checksums, which fields point from one table to
 * another (so that firmware can place the tables itself, include/kiln/table_loader.h), and the
 * AML encoding of the device descriptions collected from the device registry. Layouts are defined here once, packed,
 * with the spec section cited; nothing is copied from another project.
 */
#ifndef KILN_ACPI_H
#define KILN_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/guest_mem.h"

#define ACPI_MAX_DEVICES 16
#define ACPI_MAX_RESOURCES 4

enum acpi_resource_type {
	ACPI_RES_IO,    /* I/O port range: base, len (ACPI 6.5 §6.4.2.5) */
	ACPI_RES_MEM32, /* fixed 32-bit memory range: base, len (§6.4.3.4) */
	ACPI_RES_IRQ,   /* ISA IRQ number in base, edge, active-high (§6.4.2.1) */
	ACPI_RES_GSI,   /* any GSI in base, edge, active-high: Extended Interrupt (§6.4.3.6) */
};

struct acpi_resource {
	enum acpi_resource_type type;
	uint32_t base;
	uint32_t len;
};

/* One device in the DSDT's \_SB scope. */
struct acpi_device_desc {
	char name[5];   /* AML NameSeg, 4 characters of [A-Z0-9_], first not a digit */
	char hid[9];    /* "PNP0501" (encoded as EISA id) or an 8-character id ("QEMU0001") */
	uint32_t uid;
	unsigned nr_res;
	struct acpi_resource res[ACPI_MAX_RESOURCES];
};

/* A PCI interrupt routing entry: INTA# of @slot on GSI @gsi (level, active low, §6.2.13). */
struct acpi_pci_prt {
	uint8_t slot;
	uint32_t gsi;
};

/* The PCI root bridge (PNP0A03) of bus 0 and its MCFG entry (PCI Firmware 3.2 §4.1.2). */
struct acpi_pci {
	bool present;
	uint64_t ecam_base;           /* ECAM of bus 0 */
	uint32_t mem_base, mem_limit; /* the 32-bit memory window for BARs, inclusive */
	unsigned nr_prt;
	struct acpi_pci_prt prt[32];
};

struct acpi_config {
	unsigned nr_cpus;  /* local APICs 0..nr_cpus-1, processor UIDs equal APIC IDs */
	unsigned nr_devices;
	struct acpi_device_desc device[ACPI_MAX_DEVICES];
	struct acpi_pci pci;
	uint16_t pm_timer;  /* the ACPI PM timer's port (24 bits, FADT PM_TMR_BLK); 0: none */
};

/* Append a device description; returns 0 or -ENOSPC. */
int acpi_add_device(struct acpi_config *acpi, const struct acpi_device_desc *dev)
	__attribute__((warn_unused_result));

#define ACPI_RSDP_LEN 36          /* bytes, revision 2 (§5.2.5.3) */
#define ACPI_TABLES_AFTER_RSDP 64 /* bytes from the RSDP to the tables in acpi_build()'s layout */
#define ACPI_MAX_POINTERS 8
#define ACPI_MAX_CHECKSUMS 8

/* The two pieces kiln's tables come in: the RSDP alone, and every other table in one block. */
enum acpi_file {
	ACPI_FILE_RSDP,
	ACPI_FILE_TABLES,
};

/* A field of @size bytes (4 or 8) at @offset in @file holding the address of a table: an
 * offset into the tables plus acpi_tables.tables_addr. */
struct acpi_pointer {
	enum acpi_file file;
	uint32_t offset;
	uint8_t size;
};

/* The checksum byte at @offset in @file, which makes the bytes [start, start + len) of @file
 * sum to 0 (§5.2.5.3, §5.2.6). */
struct acpi_checksum_range {
	enum acpi_file file;
	uint32_t offset, start, len;
};

/* kiln's tables before they are placed, and what placing them must patch: every pointer
 * between tables and every checksum over one (what QEMU's etc/table-loader commands carry). */
struct acpi_tables {
	uint8_t rsdp[ACPI_RSDP_LEN];
	uint8_t *tables;             /* malloc'd: XSDT first (offset 0), 64-byte aligned blocks */
	size_t len;                  /* bytes */
	uint64_t tables_addr;        /* the address the tables' pointers were written for */
	unsigned nr_pointers, nr_checksums;
	struct acpi_pointer pointer[ACPI_MAX_POINTERS];
	struct acpi_checksum_range checksum[ACPI_MAX_CHECKSUMS];
};

/* Build the tables acpi_build() describes for tables that will start at guest address
 * @tables_addr (0: the pointers hold offsets into the tables, for a loader to relocate), with
 * their checksums set. *out owns out->tables until acpi_tables_free(). Returns 0, -EINVAL for
 * a bad config (0 CPUs, malformed name or hid), -ENOMEM. */
int acpi_build_tables(const struct acpi_config *acpi, uint64_t tables_addr,
		      struct acpi_tables *out) __attribute__((warn_unused_result));

/* Free what acpi_build_tables() allocated; safe on a zeroed or freed struct. */
void acpi_tables_free(struct acpi_tables *t);

/* Write RSDP (at @base) and the tables after it into guest memory [base, base + max_len).
 * FADT: PM1a event/control blocks at KILN_PORT_PM1A_EVT/CNT, SCI on KILN_IRQ_SCI, RTC century
 * index 0x32, no SMI command port (ACPI always enabled). MADT: one enabled local APIC per CPU,
 * the IOAPIC at KILN_IOAPIC_GPA, overrides IRQ0->GSI2 and SCI level/active-high. With
 * acpi->pci.present: an MCFG table and the root bridge \_SB.PCI0 with _CRS and _PRT. The
 * tables start ACPI_TABLES_AFTER_RSDP bytes after the RSDP.
 * Returns 0 with *rsdp_gpa set, -ENOSPC when the tables do not fit, -EFAULT when the range
 * is not guest RAM, -EINVAL for a bad config (0 CPUs, malformed name or hid). */
int acpi_build(const struct guest_mem *mem, uint64_t base, uint64_t max_len,
	       const struct acpi_config *acpi, uint64_t *rsdp_gpa) __attribute__((warn_unused_result));

/* Sum of @len bytes modulo 256: 0 for a table with a valid checksum. */
uint8_t acpi_checksum(const void *data, size_t len);

#endif
