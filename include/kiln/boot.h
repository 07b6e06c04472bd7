/* SPDX-License-Identifier: Apache-2.0 */
/* boot — loading a kernel into guest memory.
 *
 * Owns: recognising the kernel image (bzImage per the Linux x86 boot protocol, a Multiboot
 * kernel, or an ELF vmlinux with a PVH entry note, tried in that order as QEMU's -kernel does),
 * placing kernel, initrd or modules and command line in guest memory, and filling the zero page
 * (struct boot_params), the multiboot info or the PVH start info (struct hvm_start_info) with
 * the e820 map. Register state is arch/x86's business: boot only reports the entry.
 */
#ifndef KILN_BOOT_H
#define KILN_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/guest_mem.h"

enum boot_protocol {
	BOOT_LINUX_64,  /* bzImage: 64-bit entry, RSI = zero page (boot protocol "64-bit BOOT PROTOCOL") */
	BOOT_PVH,       /* ELF vmlinux: 32-bit PVH entry, EBX = hvm_start_info */
	BOOT_MULTIBOOT, /* Multiboot 0.6.96 §3.2: 32-bit entry, EAX = 0x2BADB002, EBX = info */
	BOOT_FIRMWARE,  /* a BIOS image: the bootstrap processor starts at the reset vector in real
			   mode (CS base 0xffff0000, IP 0xfff0), KVM's state of a new vCPU */
};

#define BOOT_MULTIBOOT_MAGIC 0x2BADB002 /* EAX at a multiboot entry */
#define BOOT_MAX_MODULES 64

/* A multiboot module: its bytes and its string (the --initrd entry, "path args"). */
struct boot_module {
	const uint8_t *data; size_t len;
	const char *cmdline;
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
	const char *kernel_name; /* multiboot: its command line is "<kernel_name> <cmdline>" */
	const struct boot_module *modules; unsigned nr_modules; /* multiboot only: its modules */
	uint64_t rsdp_gpa;    /* passed to the kernel (boot_params.acpi_rsdp_addr / rsdp_paddr) */
};

/* Load the kernel in @in into @mem and fill *out. On failure returns -EINVAL (not a bzImage,
 * multiboot kernel or ELF vmlinux, truncated or hostile header, no PVH note, protocol too old,
 * bad module list), -E2BIG (command line too long for the kernel), -ENOSPC (kernel, initrd or
 * a module does not fit in RAM or below the kernel's initrd_addr_max), and writes a one-line
 * reason naming the value into @err (@errlen bytes); a reason about a module says "module".
 * Never reads outside in->kernel/in->initrd/the modules, never writes outside @mem. */
int boot_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_info *out,
	      char *err, size_t errlen) __attribute__((warn_unused_result));

/* The bytes of bzImage @kernel (@len bytes) before its protected-mode part, into *@setup_len:
 * the boot sector and setup sectors (setup_sects, 4 when 0, plus one, of 512 bytes; Linux boot
 * protocol "The Real-Mode Kernel Header"), what QEMU hands firmware as its setup item. Checks
 * the header as boot_load() does. Returns 0, or -EINVAL with the reason in @err. */
int boot_bzimage_setup_len(const uint8_t *kernel, size_t len, size_t *setup_len, char *err,
			   size_t errlen) __attribute__((warn_unused_result));

/* True when boot_load() takes @kernel (@len bytes) as a multiboot kernel: not a bzImage, and
 * a valid Multiboot header (magic, checksum) in its first 8192 bytes (Multiboot 0.6.96
 * §3.1.1). */
bool boot_is_multiboot(const uint8_t *kernel, size_t len);

/* Firmware images (a BIOS such as SeaBIOS's bios-256k.bin), mapped read-only at the top of
 * 4 GiB as QEMU 7.2's x86 machines map them (hw/i386/x86.c x86_bios_rom_init). */
#define BOOT_FIRMWARE_MIN (64u << 10)        /* bytes; the size is a multiple of this */
#define BOOT_FIRMWARE_MAX (16u << 20)
#define BOOT_FIRMWARE_LOW_MAX (128u << 10)   /* its last bytes also end at 1 MiB */
#define BOOT_FIRMWARE_TOP 0x100000000ULL     /* the image ends at 4 GiB */

/* Check a firmware image of @len bytes: a multiple of 64 KiB from 64 KiB to 16 MiB. Returns 0,
 * or -EINVAL with a one-line reason naming the size in @err (@errlen bytes). */
int boot_firmware_check(size_t len, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Lay firmware @fw (@len bytes, boot_firmware_check() passed) out in @mem as QEMU's PC does
 * with its ISA BIOS alias: its last min(@len, 128 KiB) bytes end at 1 MiB (0xe0000-0xfffff for
 * a 256 KiB SeaBIOS), in RAM, so the firmware's shadowing (PAM) needs nothing of kiln; the
 * whole image at 4 GiB - @len is the caller's read-only memory slot. Fills *out
 * (BOOT_FIRMWARE, entry 0xfffffff0). Returns 0, or -ENOSPC when that range is not RAM. */
int boot_load_firmware(const struct guest_mem *mem, const uint8_t *fw, size_t len,
		       struct boot_info *out) __attribute__((warn_unused_result));

/* UEFI firmware as OVMF is built for QEMU's PC: one flash device (a firmware device, "FD", of
 * 1, 2, 4, 8 or 16 MiB) split into the code and, directly below it, the variable store, both
 * ending at 4 GiB (QEMU 7.2 hw/i386/pc_sysfw.c). */
#define BOOT_UEFI_BLOCK 4096u                /* both sizes are multiples of this */

/* Check a UEFI code image of @code_len bytes: a non-zero multiple of 4 KiB below 16 MiB.
 * Returns 0, or -EINVAL with a one-line reason naming the size in @err (@errlen bytes). */
int boot_uefi_code_check(size_t code_len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Check a variable store of @vars_len bytes against the code it goes with (@code_len bytes,
 * boot_uefi_code_check() passed): a non-zero multiple of 4 KiB that makes, with the code, an FD
 * of 1, 2, 4, 8 or 16 MiB (OVMF_CODE_4M.fd's VARS is OVMF_VARS_4M.fd, 540672 bytes). Returns 0,
 * or -EINVAL with a one-line reason naming both sizes in @err. */
int boot_uefi_vars_check(size_t code_len, size_t vars_len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Split QEMU's multiboot module list @list ("path args,path args", ",," standing for a comma
 * inside an entry) in place into at most @max strings in @modules. Returns how many, -EINVAL
 * for an empty entry or one starting with a space, -E2BIG for more than @max. */
int boot_modules_split(char *list, char **modules, unsigned max)
	__attribute__((warn_unused_result));

/* Fill @table (room for @max entries) with the guest's e820 map: conventional memory below the
 * EBDA, RAM from 1 MiB to the MMIO hole, RAM above 4 GiB. Returns the number of entries. */
struct boot_e820_entry;
unsigned boot_e820_build(const struct guest_mem *mem, struct boot_e820_entry *table, unsigned max);

#endif
