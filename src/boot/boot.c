/* SPDX-License-Identifier: Apache-2.0 */
/* boot — format detection and the helpers both loaders share, see include/kiln/boot.h.
 *
 * Owns: deciding whether the kernel file is an ELF vmlinux (PVH) or a bzImage, the rules for
 * where the initrd and the command line go, and the error text handed back to the caller.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "boot/boot_internal.h"
#include "kiln/layout.h"

/* Offset of the "HdrS" magic in a bzImage (Linux boot protocol, "The Real-Mode Kernel Header"). */
#define BZIMAGE_MAGIC_OFFSET 0x202

int boot_error(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

int boot_initrd_place(uint64_t len, uint64_t floor, uint64_t ceiling, uint64_t *gpa)
{
	uint64_t addr;

	if (len == 0 || len > ceiling)
		return -ENOSPC;
	addr = (ceiling - len) & ~(BOOT_PAGE_SIZE - 1);
	if (addr < floor)
		return -ENOSPC;
	*gpa = addr;
	return 0;
}

int boot_cmdline_write(const struct guest_mem *mem, const char *cmdline, size_t len)
{
	uint8_t *dst = guest_mem_ptr(mem, KILN_CMDLINE, (uint64_t)len + 1);

	if (!dst)
		return -ENOSPC;
	memcpy(dst, cmdline, len);
	dst[len] = 0;
	return 0;
}

uint64_t boot_ram_mib(const struct guest_mem *mem)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < mem->nr_regions && i < GUEST_MEM_MAX_REGIONS; i++)
		bytes += mem->region[i].size;
	return bytes >> 20;
}

static bool is_elf(const struct boot_input *in)
{
	return in->kernel_len >= SELFMAG && memcmp(in->kernel, ELFMAG, SELFMAG) == 0;
}

static bool is_bzimage(const uint8_t *kernel, size_t len)
{
	return len >= BZIMAGE_MAGIC_OFFSET + 4 && memcmp(kernel + BZIMAGE_MAGIC_OFFSET, "HdrS", 4) == 0;
}

bool boot_is_multiboot(const uint8_t *kernel, size_t len)
{
	return !is_bzimage(kernel, len) && boot_multiboot_header(kernel, len) >= 0;
}

int boot_load(const struct guest_mem *mem, const struct boot_input *in, struct boot_info *out,
	      char *err, size_t errlen)
{
	struct boot_input input = *in;
	struct boot_info info = { 0 };
	int ret;

	if (err && errlen)
		err[0] = 0;
	if (!input.cmdline)
		input.cmdline = "";
	if (!input.kernel)
		input.kernel_len = 0;
	if (input.initrd_len && !input.initrd)
		return boot_error(err, errlen, -EINVAL, "initrd of %zu bytes has no data",
				  input.initrd_len);
	if (!input.initrd_len)
		input.initrd = NULL;

	/* QEMU's order (hw/i386/x86.c x86_load_linux): a bzImage, else a multiboot kernel (which
	 * may be an ELF file too), else an ELF vmlinux with a PVH note. */
	if (input.nr_modules && !boot_is_multiboot(input.kernel, input.kernel_len))
		ret = boot_error(err, errlen, -EINVAL, "modules are for a multiboot kernel only");
	else if (is_bzimage(input.kernel, input.kernel_len))
		ret = boot_load_bzimage(mem, &input, &info, err, errlen);
	else if (boot_is_multiboot(input.kernel, input.kernel_len))
		ret = boot_load_multiboot(mem, &input, &info, err, errlen);
	else if (is_elf(&input) && input.kernel_len > EI_CLASS && input.kernel[EI_CLASS] == ELFCLASS32)
		ret = boot_error(err, errlen, -EINVAL,
				 "32-bit ELF file without a multiboot header in its first 8192 bytes "
				 "(an ELF vmlinux must be 64-bit)");
	else if (is_elf(&input))
		ret = boot_load_pvh(mem, &input, &info, err, errlen);
	else
		ret = boot_error(err, errlen, -EINVAL,
				 "not a bzImage or ELF vmlinux, nor a multiboot kernel (%zu bytes, no \"HdrS\" at 0x%x, no ELF magic, no multiboot header in the first 8192 bytes)",
				 input.kernel_len, BZIMAGE_MAGIC_OFFSET);
	if (!ret)
		*out = info;
	return ret;
}
