/* SPDX-License-Identifier: Apache-2.0 */
/* boot internals — what boot.c, bzimage.c, pvh.c and e820.c share and nothing else sees.
 *
 * Owns: the per-format loaders boot_load() dispatches to, the error-message helper, and the
 * placement rules common to both formats (initrd as high as possible in low RAM, command line
 * at KILN_CMDLINE). Kernel images are parsed as little-endian byte strings with memcpy, so the
 * host must be little-endian (kiln runs on x86 KVM).
 */
#ifndef KILN_BOOT_INTERNAL_H
#define KILN_BOOT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/boot.h"
#include "kiln/guest_mem.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "boot parses little-endian images");

#define BOOT_PAGE_SIZE 4096ULL

/* Format "fmt" into @err (@errlen bytes, may be NULL/0) and return @ret, so a loader can write
 * `return boot_error(err, errlen, -EINVAL, "...", value);`. */
int boot_error(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Load a bzImage (Linux boot protocol 2.12+, 64-bit entry). @in->cmdline is never NULL.
 * Same contract as boot_load(). */
int boot_load_bzimage(const struct guest_mem *mem, const struct boot_input *in,
		      struct boot_info *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Load an ELF64 vmlinux with a XEN_ELFNOTE_PHYS32_ENTRY note (PVH boot ABI). @in->cmdline is
 * never NULL. Same contract as boot_load(). */
int boot_load_pvh(const struct guest_mem *mem, const struct boot_input *in, struct boot_info *out,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

/* Offset in @file (@len bytes) of the first valid Multiboot header (magic, checksum; 4-byte
 * aligned, within the first 8192 bytes: Multiboot 0.6.96 §3.1.1), or -1. */
long boot_multiboot_header(const uint8_t *file, size_t len);

/* Load a Multiboot v1 kernel (Multiboot 0.6.96, as QEMU 7.2's -kernel) with @in->modules.
 * @in->cmdline is never NULL. Same contract as boot_load(). */
int boot_load_multiboot(const struct guest_mem *mem, const struct boot_input *in,
			struct boot_info *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Pick the initrd's guest-physical address: page-aligned, as high as possible with the whole
 * initrd (@len bytes, > 0) inside [@floor, @ceiling). Writes nothing. Returns 0 and *@gpa, or
 * -ENOSPC when it does not fit. */
int boot_initrd_place(uint64_t len, uint64_t floor, uint64_t ceiling, uint64_t *gpa)
	__attribute__((warn_unused_result));

/* Copy the command line (@len bytes, no NUL in them) and its terminating NUL to KILN_CMDLINE.
 * The caller has checked @len + 1 <= KILN_CMDLINE_MAX. Returns 0 or -ENOSPC when that page is
 * not RAM. */
int boot_cmdline_write(const struct guest_mem *mem, const char *cmdline, size_t len)
	__attribute__((warn_unused_result));

/* Total guest RAM over all regions, in MiB (rounded down), for messages. */
uint64_t boot_ram_mib(const struct guest_mem *mem);

#endif
