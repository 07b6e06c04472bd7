/* SPDX-License-Identifier: Apache-2.0 */
/* table_loader — kiln's ACPI tables as firmware built for QEMU loads them: the fw_cfg files
 * etc/acpi/rsdp and etc/acpi/tables, and etc/table-loader, the commands that tell the firmware
 * where to put them, which fields point from one to the other and which checksums to redo
 * (QEMU 7.2 hw/acpi/bios-linker-loader.c; executed by SeaBIOS src/fw/romfile_loader.c and
 * OVMF's QemuFwCfgAcpiPlatformDxe).
 *
 * Owns: the command format (128-byte little-endian entries: ALLOCATE, ADD_POINTER,
 * ADD_CHECKSUM) and where each file is allocated (the RSDP in the F segment, where an OS scans
 * for it, ACPI 6.5 §5.2.5.1; the tables in high memory, 64-byte aligned for the FACS). What the
 * tables say is acpi's (include/kiln/acpi.h); adding the files to fw_cfg is the VM's.
 */
#ifndef KILN_TABLE_LOADER_H
#define KILN_TABLE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/acpi.h"

#define TABLE_LOADER_FILE        "etc/table-loader"
#define TABLE_LOADER_FILE_RSDP   "etc/acpi/rsdp"
#define TABLE_LOADER_FILE_TABLES "etc/acpi/tables"

#define TABLE_LOADER_ENTRY_SIZE 128 /* bytes: le32 command, then the command's fields */
#define TABLE_LOADER_FILE_NAME  56  /* bytes of a file name field, NUL-padded */

#define TABLE_LOADER_ALLOCATE     1 /* file[56], le32 align, u8 zone */
#define TABLE_LOADER_ADD_POINTER  2 /* dest_file[56], src_file[56], le32 offset, u8 size */
#define TABLE_LOADER_ADD_CHECKSUM 3 /* file[56], le32 offset, le32 start, le32 length */

#define TABLE_LOADER_ZONE_HIGH 1
#define TABLE_LOADER_ZONE_FSEG 2

#define TABLE_LOADER_ALIGN_TABLES 64
#define TABLE_LOADER_ALIGN_RSDP   16

/* The etc/table-loader commands for @t, which acpi_build_tables() built for tables_addr 0 (its
 * pointers hold offsets into the tables): ALLOCATE the tables, then the RSDP, one ADD_POINTER
 * (source: the tables) per pointer and one ADD_CHECKSUM per checksum, in @t's order. The
 * checksum bytes of @t are set to 0, as QEMU leaves them (a loader adds to the byte in place).
 * On success *cmds is malloc'd (the caller frees it) and *len is its size in bytes. Returns 0,
 * -EINVAL when @t was built for another address, -ENOMEM. */
int table_loader_build(struct acpi_tables *t, uint8_t **cmds, size_t *len)
	__attribute__((warn_unused_result));

#endif
