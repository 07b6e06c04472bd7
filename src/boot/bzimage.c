/* SPDX-License-Identifier: Apache-2.0 */
/* bzimage — loading a bzImage through the Linux x86 boot protocol's 64-bit entry.
 *
 * Owns: validating the setup header of an untrusted kernel file, choosing the protected-mode
 * kernel's load address, placing the initrd, and filling the zero page (struct boot_params from
 * <asm/bootparam.h>) at KILN_ZERO_PAGE. Spec: Documentation/arch/x86/boot.rst ("The Real-Mode
 * Kernel Header", "Details of Header Fields", "Loading The Rest of The Kernel", "64-bit Boot
 * Protocol") and Documentation/arch/x86/zero-page.rst. Protocol 2.12 or newer is required: it
 * is the first with xloadflags, whose XLF_KERNEL_64 promises the 64-bit entry at load + 0x200.
 *
 * Load address. A relocatable kernel whose pref_address is aligned to kernel_alignment, at or
 * above 1 MiB, and leaves room for init_size below the MMIO hole is loaded at pref_address;
 * otherwise the kernel goes to KILN_HIGH_MEMORY (1 MiB). Loading at pref_address costs nothing:
 * a 64-bit kernel never runs below its LOAD_PHYSICAL_ADDR (which the kernel publishes as
 * pref_address), so when loaded at 1 MiB it decompresses at pref_address anyway. Loaded there,
 * the run-time start equals the load address, the kernel decompresses in place, and its whole
 * early footprint is the [load, load + init_size) the protocol describes. Whichever address is
 * chosen, the run-time start is computed as boot.rst's init_size section gives it (align_up(load,
 * kernel_alignment) for a relocatable kernel, pref_address otherwise), never below
 * pref_address, and run-time start + init_size must lie in low RAM or loading fails with -ENOSPC.
 */
#include <asm/bootparam.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "boot/boot_internal.h"
#include "kiln/layout.h"

#define HDR_OFFSET        offsetof(struct boot_params, hdr)          /* 0x1f1 */
#define HDR_ROOM_END      offsetof(struct boot_params, edd_mbr_sig_buffer) /* 0x290 */
#define HDR_JUMP_OFFSET   0x201  /* byte giving the header's end: 0x202 + this byte */
#define HDR_NEEDED_END    (HDR_OFFSET + offsetof(struct setup_header, handover_offset))
#define SECTOR            512
#define BOOT_FLAG_MAGIC   0xAA55
#define HDRS_MAGIC        0x53726448 /* "HdrS" */
#define PROTOCOL_MIN      0x020c     /* 2.12: xloadflags */
#define PROTOCOL_RSDP     0x020e     /* 2.14: boot_params.acpi_rsdp_addr read by the kernel */
#define LOADER_UNDEFINED  0xff       /* type_of_loader: no assigned boot loader ID */
#define ENTRY_64_OFFSET   0x200      /* "64-bit Boot Protocol": entry = load address + 0x200 */
/* heap_end_ptr: the real-mode code is never run on the 64-bit path; the value declares the whole
 * 64 KiB real-mode segment as heap (end 0x10000, minus 0x200 as the field is defined). */
#define HEAP_END_PTR      0xfe00

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* The checks every hostile header must pass before anything is read from beyond it. Fills @bp
 * with a zeroed zero page carrying the file's setup header, and the protected-mode part's file
 * offset and length. */
static int parse_header(const struct boot_input *in, struct boot_params *bp, size_t *pm_offset,
			uint64_t *pm_len, char *err, size_t errlen)
{
	const uint8_t *k = in->kernel;
	size_t len = in->kernel_len;
	struct setup_header raw;
	unsigned setup_sects;
	size_t hdr_end, setup_len;

	if (len < HDR_OFFSET + sizeof(raw))
		return boot_error(err, errlen, -EINVAL,
				  "bzImage truncated: %zu bytes, the setup header ends at 0x%zx", len,
				  HDR_OFFSET + sizeof(raw));
	memcpy(&raw, k + HDR_OFFSET, sizeof(raw));
	if (raw.boot_flag != BOOT_FLAG_MAGIC)
		return boot_error(err, errlen, -EINVAL, "bzImage boot_flag is 0x%04x, not 0xaa55",
				  raw.boot_flag);
	if (raw.header != HDRS_MAGIC)
		return boot_error(err, errlen, -EINVAL, "bzImage has no \"HdrS\" setup header");
	if (raw.version < PROTOCOL_MIN)
		return boot_error(err, errlen, -EINVAL,
				  "kernel boot protocol %u.%02u is older than 2.12 (no 64-bit entry)",
				  raw.version >> 8, raw.version & 0xff);

	hdr_end = 0x202 + (size_t)k[HDR_JUMP_OFFSET];
	if (hdr_end > HDR_ROOM_END || hdr_end < HDR_NEEDED_END)
		return boot_error(err, errlen, -EINVAL,
				  "bzImage setup header ends at 0x%zx, outside 0x%zx..0x%zx", hdr_end,
				  (size_t)HDR_NEEDED_END, (size_t)HDR_ROOM_END);

	setup_sects = raw.setup_sects ? raw.setup_sects : 4;
	setup_len = (size_t)(setup_sects + 1) * SECTOR;
	if (setup_len >= len)
		return boot_error(err, errlen, -EINVAL,
				  "bzImage setup_sects %u puts the protected-mode kernel at 0x%zx, past the end of the %zu-byte file",
				  raw.setup_sects, setup_len, len);
	/* syssize counts 16-byte paragraphs of protected-mode code (2.04+), rounded up: the last
	 * one may be partial (memtest86+ ends its file 8 bytes into it; GRUB and QEMU load the
	 * whole rest of the file). Signed kernels carry their signature after syssize * 16 bytes,
	 * so the file may be longer than syssize * 16, or shorter by less than one paragraph. */
	if (raw.syssize == 0 || ((uint64_t)raw.syssize - 1) * 16 >= len - setup_len)
		return boot_error(err, errlen, -EINVAL,
				  "bzImage truncated: syssize says %" PRIu64 " bytes of protected-mode kernel, the file holds %zu",
				  (uint64_t)raw.syssize * 16, len - setup_len);

	memset(bp, 0, sizeof(*bp));
	memcpy((uint8_t *)bp + HDR_OFFSET, k + HDR_OFFSET, hdr_end - HDR_OFFSET);
	if (!(bp->hdr.loadflags & LOADED_HIGH))
		return boot_error(err, errlen, -EINVAL,
				  "not a bzImage: loadflags 0x%02x lack LOADED_HIGH", bp->hdr.loadflags);
	if (!(bp->hdr.xloadflags & XLF_KERNEL_64))
		return boot_error(err, errlen, -EINVAL,
				  "kernel has no 64-bit entry point (xloadflags 0x%04x lack XLF_KERNEL_64)",
				  bp->hdr.xloadflags);
	*pm_offset = setup_len;
	*pm_len = (uint64_t)raw.syssize * 16;
	if (*pm_len > len - setup_len)
		*pm_len = len - setup_len; /* the partial last paragraph; RAM past it is zero */
	return 0;
}

/* Choose the load address and check the kernel's early footprint fits in low RAM. */
static int place_kernel(const struct guest_mem *mem, const struct setup_header *h, uint64_t pm_len,
			uint64_t *load, uint64_t *end, char *err, size_t errlen)
{
	uint64_t low_end = guest_mem_low_end(mem);
	uint64_t align = h->kernel_alignment, pref = h->pref_address;
	uint64_t footprint = max_u64(h->init_size, pm_len);
	bool reloc = h->relocatable_kernel;
	uint64_t start;

	if (reloc && (align == 0 || (align & (align - 1))))
		return boot_error(err, errlen, -EINVAL,
				  "bzImage kernel_alignment 0x%" PRIx64 " is not a power of two", align);
	*load = KILN_HIGH_MEMORY;
	if (reloc && pref >= KILN_HIGH_MEMORY && !(pref & (align - 1)) && pref <= low_end &&
	    footprint <= low_end - pref)
		*load = pref;
	start = reloc ? (*load + align - 1) & ~(align - 1) : *load;
	start = max_u64(start, pref);
	if (start > low_end || footprint > low_end - start)
		return boot_error(err, errlen, -ENOSPC,
				  "kernel does not fit: it runs at 0x%" PRIx64 " and needs 0x%" PRIx64 " bytes (init_size) there, RAM below the MMIO hole ends at 0x%" PRIx64 " (%" PRIu64 " MiB of RAM)",
				  start, footprint, low_end, boot_ram_mib(mem));
	*end = start + footprint;
	return 0;
}

int boot_bzimage_setup_len(const uint8_t *kernel, size_t len, size_t *setup_len, char *err,
			   size_t errlen)
{
	const struct boot_input in = { .kernel = kernel, .kernel_len = len };
	struct boot_params bp;
	uint64_t pm_len;

	return parse_header(&in, &bp, setup_len, &pm_len, err, errlen);
}

int boot_load_bzimage(const struct guest_mem *mem, const struct boot_input *in,
		      struct boot_info *out, char *err, size_t errlen)
{
	struct boot_params bp;
	struct setup_header *h = &bp.hdr;
	size_t pm_offset = 0, cmdline_len = strlen(in->cmdline);
	uint64_t pm_len = 0, load = 0, kernel_end = 0, initrd_gpa = 0;
	int ret;

	ret = parse_header(in, &bp, &pm_offset, &pm_len, err, errlen);
	if (ret)
		return ret;
	ret = place_kernel(mem, h, pm_len, &load, &kernel_end, err, errlen);
	if (ret)
		return ret;

	/* cmdline_size (2.06+) is the longest command line without its NUL. */
	if (cmdline_len > h->cmdline_size)
		return boot_error(err, errlen, -E2BIG,
				  "command line is %zu bytes, the kernel's cmdline_size allows %u",
				  cmdline_len, h->cmdline_size);
	if (cmdline_len >= KILN_CMDLINE_MAX)
		return boot_error(err, errlen, -E2BIG,
				  "command line is %zu bytes, kiln allows %llu", cmdline_len,
				  KILN_CMDLINE_MAX - 1);

	if (in->initrd_len) {
		/* initrd_addr_max is the highest byte the initrd may occupy. */
		uint64_t ceiling = (uint64_t)h->initrd_addr_max + 1;

		if (ceiling > guest_mem_low_end(mem))
			ceiling = guest_mem_low_end(mem);
		if (boot_initrd_place(in->initrd_len, kernel_end, ceiling, &initrd_gpa))
			return boot_error(err, errlen, -ENOSPC,
					  "initrd (%zu bytes) does not fit below the kernel's initrd_addr_max 0x%x with %" PRIu64 " MiB of RAM",
					  in->initrd_len, h->initrd_addr_max, boot_ram_mib(mem));
	}

	if (guest_mem_write(mem, load, in->kernel + pm_offset, pm_len) ||
	    (in->initrd_len && guest_mem_write(mem, initrd_gpa, in->initrd, in->initrd_len)) ||
	    boot_cmdline_write(mem, in->cmdline, cmdline_len))
		return boot_error(err, errlen, -ENOSPC,
				  "kernel, initrd or command line falls outside guest RAM");

	h->type_of_loader = LOADER_UNDEFINED;
	h->ext_loader_ver = 0;
	h->ext_loader_type = 0;
	h->loadflags |= LOADED_HIGH | CAN_USE_HEAP; /* the kernel's own bits (KASLR_FLAG...) stay */
	h->heap_end_ptr = HEAP_END_PTR;
	h->cmd_line_ptr = (uint32_t)KILN_CMDLINE;
	bp.ext_cmd_line_ptr = (uint32_t)(KILN_CMDLINE >> 32);
	h->ramdisk_image = (uint32_t)initrd_gpa;
	bp.ext_ramdisk_image = (uint32_t)(initrd_gpa >> 32);
	h->ramdisk_size = (uint32_t)in->initrd_len;
	bp.ext_ramdisk_size = (uint32_t)((uint64_t)in->initrd_len >> 32);
	h->code32_start = (uint32_t)load;
	h->hardware_subarch = X86_SUBARCH_PC;
	h->hardware_subarch_data = 0;
	h->setup_data = 0; /* kiln passes no setup_data list; never forward the file's value */
	/* Older kernels find the RSDP by scanning 0xE0000..0xFFFFF, where kiln puts it. */
	if (h->version >= PROTOCOL_RSDP)
		bp.acpi_rsdp_addr = in->rsdp_gpa;
	bp.e820_entries = (uint8_t)boot_e820_build(mem, bp.e820_table, E820_MAX_ENTRIES_ZEROPAGE);
	if (guest_mem_write(mem, KILN_ZERO_PAGE, &bp, sizeof(bp)))
		return boot_error(err, errlen, -ENOSPC, "zero page at 0x%llx is not RAM",
				  KILN_ZERO_PAGE);

	*out = (struct boot_info){
		.protocol = BOOT_LINUX_64,
		.entry = load + ENTRY_64_OFFSET,
		.params_gpa = KILN_ZERO_PAGE,
		.kernel_end = kernel_end,
		.initrd_gpa = initrd_gpa,
	};
	return 0;
}
