/* SPDX-License-Identifier: Apache-2.0 */
/* boot — loading a Linux kernel into guest memory.
 *
 * Owns: recognising the kernel image (bzImage per the Linux x86 boot protocol, or an ELF
 * vmlinux with a PVH entry note), placing kernel, initrd and command line in guest memory,
 * and filling the zero page (struct boot_params) or the PVH start info (struct hvm_start_info)
 * with the e820 map. Register state is arch/x86's business: boot only reports the entry.
 */
#ifndef KILN_BOOT_H
#define KILN_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/guest_mem.h"

enum boot_protocol {
	BOOT_LINUX_64,  /* bzImage: 64-bit entry, RSI = zero page (boot protocol "64-bit BOOT PROTOCOL") */
	BOOT_PVH,       /* ELF vmlinux: 32-bit PVH entry, EBX = hvm_start_info */
};

struct boot_info {
	enum boot_protocol protocol;
	uint64_t entry;       /* guest-physical entry point */
	uint64_t params_gpa;  /* zero page or hvm_start_info */
	uint64_t kernel_end;  /* first byte above the loaded kernel image (incl. init_size) */
	uint64_t initrd_gpa;  /* 0 when no initrd */
};

struct boot_input {
	const uint8_t *kernel; size_t kernel_len;
	const uint8_t *initrd; size_t initrd_len; /* initrd NULL/0 for none */
	const char *cmdline;
	uint64_t rsdp_gpa;    /* passed to the kernel (boot_params.acpi_rsdp_addr / rsdp_paddr) */
};

/* Load the kernel in @in into @mem and fill *out. On failure returns -EINVAL (not a bzImage or
 * ELF vmlinux, truncated or hostile header, no PVH note, protocol too old), -E2BIG (command line
 * too long for the kernel), -ENOSPC (kernel or initrd does not fit in RAM or below the kernel's
 * initrd_addr_max), and writes a one-line reason naming the value into @err (@errlen bytes).
 * Never reads outside in->kernel/in->initrd, never writes outside @mem. */
int boot_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_info *out,
	      char *err, size_t errlen) __attribute__((warn_unused_result));

/* Fill @table (room for @max entries) with the guest's e820 map: conventional memory below the
 * EBDA, RAM from 1 MiB to the MMIO hole, RAM above 4 GiB. Returns the number of entries. */
struct boot_e820_entry;
unsigned boot_e820_build(const struct guest_mem *mem, struct boot_e820_entry *table, unsigned max);

#endif
