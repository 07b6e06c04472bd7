/* SPDX-License-Identifier: Apache-2.0 */
/* table_loader — the etc/table-loader commands for kiln's ACPI tables, see
 * include/kiln/table_loader.h. Entries are written field by field, little-endian, at the offsets
 * of QEMU's BiosLinkerLoaderEntry (packed: le32 command at 0, the fields from 4). */
#include "kiln/table_loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_FILE   4
#define FIELD_SECOND (FIELD_FILE + TABLE_LOADER_FILE_NAME)  /* after one name */
#define FIELD_THIRD  (FIELD_SECOND + TABLE_LOADER_FILE_NAME) /* after two names */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static const char *file_name(enum acpi_file f)
{
	return f == ACPI_FILE_RSDP ? TABLE_LOADER_FILE_RSDP : TABLE_LOADER_FILE_TABLES;
}

/* A zeroed entry of @command naming @file first. */
static uint8_t *entry(uint8_t *e, uint32_t command, const char *file)
{
	put32(e, command);
	memcpy(e + FIELD_FILE, file, strlen(file));
	return e;
}

static uint8_t *file_data(struct acpi_tables *t, enum acpi_file f)
{
	return f == ACPI_FILE_RSDP ? t->rsdp : t->tables;
}

int table_loader_build(struct acpi_tables *t, uint8_t **cmds, size_t *len)
{
	size_t n = 2 + t->nr_pointers + t->nr_checksums;
	uint8_t *buf, *e;

	if (t->tables_addr != 0)
		return -EINVAL;
	buf = calloc(n, TABLE_LOADER_ENTRY_SIZE);
	if (!buf)
		return -ENOMEM;
	e = entry(buf, TABLE_LOADER_ALLOCATE, TABLE_LOADER_FILE_TABLES);
	put32(e + FIELD_SECOND, TABLE_LOADER_ALIGN_TABLES);
	e[FIELD_SECOND + 4] = TABLE_LOADER_ZONE_HIGH;
	e = entry(e + TABLE_LOADER_ENTRY_SIZE, TABLE_LOADER_ALLOCATE, TABLE_LOADER_FILE_RSDP);
	put32(e + FIELD_SECOND, TABLE_LOADER_ALIGN_RSDP);
	e[FIELD_SECOND + 4] = TABLE_LOADER_ZONE_FSEG;
	for (unsigned i = 0; i < t->nr_pointers; i++) {
		const struct acpi_pointer *p = &t->pointer[i];

		e = entry(e + TABLE_LOADER_ENTRY_SIZE, TABLE_LOADER_ADD_POINTER, file_name(p->file));
		memcpy(e + FIELD_SECOND, TABLE_LOADER_FILE_TABLES, strlen(TABLE_LOADER_FILE_TABLES));
		put32(e + FIELD_THIRD, p->offset);
		e[FIELD_THIRD + 4] = p->size;
	}
	for (unsigned i = 0; i < t->nr_checksums; i++) {
		const struct acpi_checksum_range *c = &t->checksum[i];

		e = entry(e + TABLE_LOADER_ENTRY_SIZE, TABLE_LOADER_ADD_CHECKSUM, file_name(c->file));
		put32(e + FIELD_SECOND, c->offset);
		put32(e + FIELD_SECOND + 4, c->start);
		put32(e + FIELD_SECOND + 8, c->len);
		file_data(t, c->file)[c->offset] = 0;
	}
	*cmds = buf;
	*len = n * TABLE_LOADER_ENTRY_SIZE;
	return 0;
}
