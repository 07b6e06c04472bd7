/* SPDX-License-Identifier: Apache-2.0 */
/* pflash — the CFI flash command state machine, see include/kiln/pflash.h. */
#include <string.h>

#include "kiln/pflash.h"

#define CMD_READ_ARRAY 0xff
#define CMD_PROGRAM 0x10
#define CMD_PROGRAM_ALT 0x40
#define CMD_ERASE 0x20
#define CMD_ERASE_CONFIRM 0xd0
#define CMD_CLEAR_STATUS 0x50
#define CMD_READ_STATUS 0x70
#define CMD_READ_ID 0x90
#define CMD_CFI_QUERY 0x98

/* The CFI query structure (JEDEC JESD68.01, Intel's CFI publication 100), byte addressed as
 * an x8 device answers it: "QRY", the Intel/Sharp command set (0x0001) with its extended table
 * at 0x31 (none here), the device size as a power of two and one erase region of 4 KiB
 * blocks; 0x27 and 0x2d..0x30 depend on the size and are filled in by cfi_byte(). */
static uint8_t cfi_byte(const struct pflash *f, uint64_t off)
{
	size_t blocks = f->size / PFLASH_BLOCK;
	unsigned log2 = 0;

	while (log2 < 63 && (1ULL << (log2 + 1)) <= f->size)
		log2++;
	switch (off) {
	case 0x10: return 'Q';
	case 0x11: return 'R';
	case 0x12: return 'Y';
	case 0x13: return 0x01;                    /* primary command set: Intel/Sharp */
	case 0x15: return 0x31;                    /* its extended query table */
	case 0x27: return (uint8_t)log2;           /* device size: 2^n bytes */
	case 0x2c: return 1;                       /* erase block regions */
	case 0x2d: return (uint8_t)(blocks - 1);   /* blocks - 1, little-endian */
	case 0x2e: return (uint8_t)((blocks - 1) >> 8);
	case 0x2f: return (uint8_t)(PFLASH_BLOCK >> 8);  /* block size / 256, little-endian */
	case 0x30: return (uint8_t)(PFLASH_BLOCK >> 16);
	default: return 0;
	}
}

void pflash_init(struct pflash *f, const char *name, uint8_t *mem, size_t size, bool readonly,
		 void (*set_array)(void *ctx, bool array), void *ctx)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->name = name;
	f->mem = mem;
	f->size = size;
	f->readonly = readonly;
	f->status = PFLASH_STATUS_READY;
	f->set_array = set_array;
	f->ctx = ctx;
}

void pflash_destroy(struct pflash *f)
{
	pthread_mutex_destroy(&f->lock);
}

/* Enter command @cmd's mode (0: read array), telling the owner when reads change source. */
static void enter(struct pflash *f, uint8_t cmd)
{
	bool was_array = f->cmd == 0;

	f->cmd = cmd;
	f->wait_data = false;
	if (was_array != (cmd == 0) && f->set_array)
		f->set_array(f->ctx, cmd == 0);
}

void pflash_read(struct pflash *f, uint64_t off, uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&f->lock);
	if (off >= f->size || len > f->size - off) {
		memset(data, 0xff, len);
	} else if (f->cmd == 0) {
		memcpy(data, f->mem + off, len);
	} else {
		uint8_t v;

		switch (f->cmd) {
		case CMD_READ_ID: v = 0; break; /* manufacturer and device 0, as QEMU's PC flash */
		case CMD_CFI_QUERY: v = cfi_byte(f, off); break;
		default: v = f->status; break; /* program, erase, read status */
		}
		memset(data, v, len);
	}
	pthread_mutex_unlock(&f->lock);
}

/* The second cycle of a program or erase: @data of @len bytes at @off. */
static void complete(struct pflash *f, uint64_t off, const uint8_t *data, uint32_t len)
{
	f->wait_data = false;
	if (f->cmd == CMD_PROGRAM || f->cmd == CMD_PROGRAM_ALT) {
		memcpy(f->mem + off, data, len);
		f->status |= PFLASH_STATUS_READY;
	} else if (data[0] == CMD_ERASE_CONFIRM) {
		memset(f->mem + (off & ~(uint64_t)(PFLASH_BLOCK - 1)), 0xff, PFLASH_BLOCK);
		f->status |= PFLASH_STATUS_READY;
	} else {
		f->status |= PFLASH_STATUS_SEQ_ERROR;
		f->cmd = CMD_READ_STATUS;
	}
}

void pflash_write(struct pflash *f, uint64_t off, const uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&f->lock);
	if (f->readonly) {
		if (log_once_first(&f->ro_write))
			log_warn("%s flash: the guest wrote 0x%02x at offset 0x%llx of a read-only "
				 "flash; ignored", f->name, data[0], (unsigned long long)off);
	} else if (off >= f->size || len > f->size - off) {
		if (log_once_first(&f->bad_offset))
			log_warn("%s flash: a write at offset 0x%llx is beyond its %zu bytes; ignored",
				 f->name, (unsigned long long)off, f->size);
	} else if (f->wait_data) {
		complete(f, off, data, len);
	} else {
		switch (data[0]) {
		case CMD_READ_ARRAY: enter(f, 0); break;
		case CMD_CLEAR_STATUS:
			f->status = 0;
			enter(f, 0);
			break;
		case CMD_PROGRAM: case CMD_PROGRAM_ALT: case CMD_ERASE:
			enter(f, data[0]);
			f->wait_data = true;
			break;
		case CMD_READ_STATUS: case CMD_READ_ID: case CMD_CFI_QUERY:
			enter(f, data[0]);
			break;
		default:
			if (log_once_first(&f->bad_cmd))
				log_warn("%s flash: command 0x%02x at offset 0x%llx is not supported; back "
					 "to read-array mode", f->name, data[0], (unsigned long long)off);
			enter(f, 0);
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
}

static void bus_read(void *o, uint64_t off, uint8_t *data, uint32_t len)
{
	pflash_read(o, off, data, len);
}

static void bus_write(void *o, uint64_t off, const uint8_t *data, uint32_t len)
{
	pflash_write(o, off, data, len);
}

const struct bus_ops pflash_bus_ops = { .read = bus_read, .write = bus_write };
