/* SPDX-License-Identifier: Apache-2.0 */
/* pflash — a CFI parallel flash with the Intel/Sharp command set, 8 bits wide, as QEMU 7.2's
 * pflash_cfi01 presents OVMF's firmware volumes on the PC (hw/i386/pc_sysfw.c: 4 KiB blocks,
 * one device for the code, one for the variable store, ending at 4 GiB).
 *
 * Owns: the command state machine over a memory image the caller maps (it does not own the
 * bytes). In read-array mode the guest reads the image through a read-only KVM memory slot;
 * every write exits to kiln as MMIO and lands here. A command that changes what reads return
 * (read status, read identifier, CFI query, program, erase) calls set_array(ctx, false), and
 * the owner takes the slot out so that reads exit too; READ_ARRAY (0xff) or CLEAR_STATUS
 * (0x50) call set_array(ctx, true) to put it back. Commands (Intel 28F128J3 datasheet §4,
 * as pflash_cfi01 takes them): 0x10/0x40 byte program, 0x20 + 0xd0 block erase, 0x50 clear
 * status, 0x70 read status, 0x90 read identifier, 0x98 CFI query, 0xff read array. Anything
 * else (locking, buffered writes) is logged once and returns the device to read-array mode.
 * A read-only device (the code) ignores every write, logged once, and never leaves read-array
 * mode. Offsets are checked against the image size before any byte is touched.
 */
#ifndef KILN_PFLASH_H
#define KILN_PFLASH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/bus.h"
#include "kiln/log.h"

#define PFLASH_BLOCK 4096u          /* erase block, bytes (QEMU's FLASH_SECTOR_SIZE on the PC) */
#define PFLASH_STATUS_READY 0x80    /* status register: write state machine ready */
#define PFLASH_STATUS_SEQ_ERROR 0x30 /* erase and program error: a bad command sequence */

struct pflash {
	pthread_mutex_t lock;
	const char *name;           /* for messages: "UEFI code", "UEFI variables" */
	uint8_t *mem;               /* the image, @size bytes, borrowed */
	size_t size;                /* bytes, a multiple of PFLASH_BLOCK */
	bool readonly;
	uint8_t cmd;                /* what reads return: 0 the array, else the command's data */
	bool wait_data;             /* the next write completes cmd (program data, erase confirm) */
	uint8_t status;
	/* Read-array mode entered (true) or left (false); called with the lock held. */
	void (*set_array)(void *ctx, bool array);
	void *ctx;
	struct log_once bad_cmd, ro_write, bad_offset;
};

/* Make @f a flash over @mem (@size bytes, a non-zero multiple of PFLASH_BLOCK, borrowed for
 * the device's life) in read-array mode with status ready. @set_array (may be NULL) is told
 * of mode changes, see above. Destroy with pflash_destroy(). */
void pflash_init(struct pflash *f, const char *name, uint8_t *mem, size_t size, bool readonly,
		 void (*set_array)(void *ctx, bool array), void *ctx);
void pflash_destroy(struct pflash *f);

/* A guest read of @len bytes (1..8) at byte offset @off into the device: the image in
 * read-array mode, else the current command's data (the status byte, identifier or CFI byte
 * in every byte of the access). Beyond the device: 0xff bytes. Any thread. */
void pflash_read(struct pflash *f, uint64_t off, uint8_t *data, uint32_t len);

/* A guest write of @len bytes (1..8) at byte offset @off: a command byte (the access's first
 * byte), or program data (all @len bytes stored) or an erase confirmation. Any thread. */
void pflash_write(struct pflash *f, uint64_t off, const uint8_t *data, uint32_t len);

/* bus_ops over pflash_read() / pflash_write(), opaque a struct pflash. */
extern const struct bus_ops pflash_bus_ops;

#endif
