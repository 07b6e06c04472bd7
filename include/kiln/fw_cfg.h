/* SPDX-License-Identifier: Apache-2.0 */
/* fw_cfg — QEMU's firmware configuration device (QEMU docs/specs/fw_cfg.rst, as QEMU 7.2
 * builds it on x86): the channel through which firmware and guests built for QEMU read what the
 * VMM tells them (CPU count, RAM size, the e820 map, the ACPI tables, and later boot order, kernel,
 * initrd and command line).
 *
 * Owns: the port I/O registers (selector KILN_PORT_FW_CFG, 16-bit write; data at +1, 8-bit;
 * DMA address at KILN_PORT_FW_CFG_DMA, big-endian 64-bit, written whole or as two 32-bit
 * halves, high first: the low half starts the transfer), the item table (keys, their bytes,
 * the file directory FW_CFG_FILE_DIR rebuilt as files are added), DMA transfers into guest
 * memory (every guest-given address and length checked; a bad one sets the error bit in the
 * guest's control word and is logged once), its snapshot section (selector, offset, DMA
 * address) and its DSDT entry (QEMU0002). It does not know what the items mean: the VM adds
 * them (src/core/vm.c) after create() and before any vCPU runs; items never change while the
 * guest runs, so reads need no other lock than the device's own.
 */
#ifndef KILN_FW_CFG_H
#define KILN_FW_CFG_H

#include <stdint.h>

#include "kiln/devices.h"

/* Selector keys (fw_cfg.rst "Selector Register", QEMU include/standard-headers/linux/
 * qemu_fw_cfg.h). Multi-byte legacy items are little-endian, the file directory big-endian. */
#define FW_CFG_SIGNATURE  0x00   /* "QEMU" */
#define FW_CFG_ID         0x01   /* le32: bit 0 traditional interface, bit 1 DMA */
#define FW_CFG_RAM_SIZE   0x03   /* le64, bytes */
#define FW_CFG_NOGRAPHIC  0x04   /* le16: 1 when the machine has no display */
#define FW_CFG_NB_CPUS    0x05   /* le16, vCPUs at boot */
#define FW_CFG_KERNEL_SIZE 0x08  /* le32: bytes of FW_CFG_KERNEL_DATA */
#define FW_CFG_INITRD_SIZE 0x0b  /* le32: bytes of FW_CFG_INITRD_DATA */
#define FW_CFG_BOOT_MENU  0x0e   /* le16: 1 asks firmware to offer its boot menu */
#define FW_CFG_MAX_CPUS   0x0f   /* le16 */
#define FW_CFG_KERNEL_DATA 0x11  /* a bzImage after its setup sectors */
#define FW_CFG_INITRD_DATA 0x12
#define FW_CFG_CMDLINE_SIZE 0x14 /* le32: bytes of FW_CFG_CMDLINE_DATA, its NUL included */
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_SETUP_SIZE 0x17   /* le32: bytes of FW_CFG_SETUP_DATA */
#define FW_CFG_SETUP_DATA 0x18   /* a bzImage's boot sector and setup sectors */
#define FW_CFG_FILE_DIR   0x19   /* be32 count, then struct FWCfgFile entries */
#define FW_CFG_FILE_FIRST 0x20   /* the first key given to a named file */
#define FW_CFG_ARCH_LOCAL 0x8000 /* architecture-specific keys: 0x8000 | n */

#define FW_CFG_ID_TRADITIONAL 0x01
#define FW_CFG_ID_DMA         0x02

#define FW_CFG_MAX_FILE_NAME 56  /* bytes, with the NUL (FWCfgFile.name) */
#define FW_CFG_MAX_ITEMS     64  /* legacy keys and files together */
#define FW_CFG_MAX_ITEM_SIZE (64u << 20) /* bytes; a bigger item is a caller's mistake */

/* DMA control word bits (fw_cfg.rst "Guest-side DMA interface"). */
#define FW_CFG_DMA_CTL_ERROR  0x01
#define FW_CFG_DMA_CTL_READ   0x02
#define FW_CFG_DMA_CTL_SKIP   0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE  0x10

struct fw_cfg;

/* The device's configuration: none yet (its items come from the VM); the class takes a
 * pointer to one for the shape of a configured device. */
struct fw_cfg_config {
	char unused;
};

extern const struct device_class fw_cfg_class; /* ports 0x510-0x511 and 0x514-0x51b */

/* Add item @key (< FW_CFG_FILE_FIRST, or FW_CFG_ARCH_LOCAL | n) holding a copy of @len bytes
 * of @data. Before the vCPUs run. Returns 0, -EEXIST for a key already there, -EINVAL for a
 * key in the file range or @len over FW_CFG_MAX_ITEM_SIZE, -ENOSPC when the table is full,
 * -ENOMEM. */
int fw_cfg_add(struct fw_cfg *fw, uint16_t key, const void *data, uint32_t len)
	__attribute__((warn_unused_result));

/* Add item @key as a @size-byte (2, 4 or 8) little-endian integer, as QEMU's fw_cfg_add_i16,
 * _i32, _i64 do. Same errors as fw_cfg_add(). */
int fw_cfg_add_le(struct fw_cfg *fw, uint16_t key, uint64_t value, unsigned size)
	__attribute__((warn_unused_result));

/* Add the named file @name ("etc/e820"; 1..55 bytes) holding a copy of @len bytes of @data, at
 * the next free key from FW_CFG_FILE_FIRST, and list it in FW_CFG_FILE_DIR (kept sorted by
 * name, as QEMU's). Before the vCPUs run. Returns 0, -EEXIST for a name already there,
 * -EINVAL for a bad name or size, -ENOSPC, -ENOMEM. */
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, uint32_t len)
	__attribute__((warn_unused_result));

#endif
