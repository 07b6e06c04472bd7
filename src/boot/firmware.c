/* SPDX-License-Identifier: Apache-2.0 */
/* firmware — a BIOS image in place of a kernel (kiln run --firmware bios), see
 * include/kiln/boot.h.
 *
 * Owns: which firmware files are acceptable (size) and the image's copy below 1 MiB. QEMU 7.2
 * (hw/i386/x86.c x86_bios_rom_init) maps the image read-only at 4 GiB - size, where the reset
 * vector (0xfffffff0) lies, and its last 128 KiB again below 1 MiB, where the firmware's real
 * mode code runs once it jumps to segment 0xf000. kiln's low copy is ordinary RAM: what a
 * guest sees there is the image until it writes, as after the firmware's own shadowing (it
 * opens the PAM registers and copies the image over itself).
 */
#include <errno.h>
#include <stdio.h>

#include "boot/boot_internal.h"

#define RESET_VECTOR 0xfffffff0ULL
#define ONE_MIB 0x100000ULL

int boot_firmware_check(size_t len, char *err, size_t errlen)
{
	if (len < BOOT_FIRMWARE_MIN || len > BOOT_FIRMWARE_MAX || len % BOOT_FIRMWARE_MIN)
		return boot_error(err, errlen, -EINVAL, "%zu bytes is not a firmware image size "
				  "(a multiple of 64 KiB from 64 KiB to 16 MiB)", len);
	return 0;
}

int boot_load_firmware(const struct guest_mem *mem, const uint8_t *fw, size_t len,
		       struct boot_info *out)
{
	size_t low = len < BOOT_FIRMWARE_LOW_MAX ? len : BOOT_FIRMWARE_LOW_MAX;

	if (guest_mem_write(mem, ONE_MIB - low, fw + len - low, low))
		return -ENOSPC;
	*out = (struct boot_info){ .protocol = BOOT_FIRMWARE, .entry = RESET_VECTOR };
	return 0;
}

int boot_uefi_code_check(size_t code_len, char *err, size_t errlen)
{
	if (code_len == 0 || code_len % BOOT_UEFI_BLOCK || code_len >= BOOT_FIRMWARE_MAX)
		return boot_error(err, errlen, -EINVAL, "%zu bytes is not a UEFI code size (a "
				  "multiple of 4 KiB below 16 MiB)", code_len);
	return 0;
}

int boot_uefi_vars_check(size_t code_len, size_t vars_len, char *err, size_t errlen)
{
	size_t fd = code_len + vars_len;

	if (vars_len == 0 || vars_len % BOOT_UEFI_BLOCK || fd < (1u << 20) ||
	    fd > BOOT_FIRMWARE_MAX || (fd & (fd - 1)))
		return boot_error(err, errlen, -EINVAL, "%zu bytes is not the variable store of a "
				  "%zu-byte code (together a flash of 1, 2, 4, 8 or 16 MiB)",
				  vars_len, code_len);
	return 0;
}
