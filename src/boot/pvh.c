/* SPDX-License-Identifier: Apache-2.0 */
/* pvh — loading an ELF64 vmlinux through the PVH (x86/HVM direct boot) ABI.
 *
 * Owns: validating an untrusted ELF file, finding its XEN_ELFNOTE_PHYS32_ENTRY note, copying
 * the PT_LOAD segments to their physical addresses, placing the initrd, and writing the
 * hvm_start_info (with its module list and memory map) at KILN_PVH_START_INFO.
 * Spec: Xen docs/misc/pvh.pandoc; xen/include/public/arch-x86/hvm/start_info.h (start info
 * version 1); xen/include/public/elfnote.h (XEN_ELFNOTE_PHYS32_ENTRY); ELF-64 Object File
 * Format 1.5 (headers, program headers, note sections).
 */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "boot/boot_internal.h"
#include "kiln/layout.h"

/* xen/include/public/elfnote.h: the note's descriptor is the 32-bit physical entry point. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_NOTE_NAME "Xen" /* with its NUL: n_namesz 4 */

/* xen/include/public/arch-x86/hvm/start_info.h, layout version 1. All fields little-endian;
 * the header documents the byte offsets checked below. */
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578
#define HVM_START_INFO_VERSION 1

struct hvm_start_info {
	uint32_t magic;          /* XEN_HVM_START_MAGIC_VALUE */
	uint32_t version;        /* 1: memmap_paddr/memmap_entries present */
	uint32_t flags;          /* SIF_xxx flags, none used */
	uint32_t nr_modules;
	uint64_t modlist_paddr;  /* array of struct hvm_modlist_entry */
	uint64_t cmdline_paddr;  /* NUL-terminated ASCII */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* array of struct hvm_memmap_table_entry */
	uint32_t memmap_entries;
	uint32_t reserved;       /* must be zero */
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;           /* bytes */
	uint64_t cmdline_paddr;  /* 0: none */
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;           /* bytes */
	uint32_t type;           /* XEN_HVM_MEMMAP_TYPE_*, equal to the e820 types */
	uint32_t reserved;       /* must be zero */
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout (start_info.h)");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 48, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");

/* Start info, then one module entry, then the memory map, all in the page below the zero page. */
#define START_INFO_ROOM  (KILN_ZERO_PAGE - KILN_PVH_START_INFO)
#define MODLIST_OFFSET   sizeof(struct hvm_start_info)
#define MEMMAP_OFFSET    (MODLIST_OFFSET + sizeof(struct hvm_modlist_entry))
#define MEMMAP_MAX       E820_MAX_ENTRIES_ZEROPAGE
_Static_assert(MEMMAP_OFFSET + MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry) <= START_INFO_ROOM,
	       "PVH start info, module list and memory map fit below the zero page");

struct pvh_image {
	const uint8_t *file;
	size_t len;
	Elf64_Ehdr eh;
	bool have_entry;
	uint32_t entry;
	uint64_t kernel_end; /* highest PT_LOAD p_paddr + p_memsz */
};

/* True when [off, off + size) lies inside the file; overflow-safe. */
static bool in_file(const struct pvh_image *img, uint64_t off, uint64_t size)
{
	return off <= img->len && size <= img->len - off;
}

static void read_phdr(const struct pvh_image *img, unsigned i, Elf64_Phdr *ph)
{
	memcpy(ph, img->file + img->eh.e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

static int check_ehdr(struct pvh_image *img, char *err, size_t errlen)
{
	Elf64_Ehdr *eh = &img->eh;

	if (img->len < sizeof(*eh))
		return boot_error(err, errlen, -EINVAL, "ELF file truncated: %zu bytes", img->len);
	memcpy(eh, img->file, sizeof(*eh));
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return boot_error(err, errlen, -EINVAL,
				  "ELF kernel is not 64-bit little-endian (class %u, data %u)",
				  eh->e_ident[EI_CLASS], eh->e_ident[EI_DATA]);
	if (eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
		return boot_error(err, errlen, -EINVAL,
				  "ELF file is not an x86-64 executable (machine %u, type %u)",
				  eh->e_machine, eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
		return boot_error(err, errlen, -EINVAL,
				  "ELF kernel has unusable program headers (e_phentsize %u, e_phnum %u)",
				  eh->e_phentsize, eh->e_phnum);
	if (!in_file(img, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return boot_error(err, errlen, -EINVAL,
				  "ELF program headers (%u at 0x%" PRIx64 ") run past the end of the %zu-byte file",
				  eh->e_phnum, (uint64_t)eh->e_phoff, img->len);
	return 0;
}

/* Scan one PT_NOTE segment for the PVH entry note. The descriptor and the next note start at
 * offsets within the segment aligned to 4 bytes (as Linux emits notes), or to 8 when the
 * segment's p_align asks for it (gABI; GNU property notes). */
static int scan_notes(struct pvh_image *img, const Elf64_Phdr *ph, char *err, size_t errlen)
{
	const uint8_t *seg = img->file + ph->p_offset;
	uint64_t size = ph->p_filesz, align = ph->p_align == 8 ? 8 : 4, off = 0;

	while (!img->have_entry && size - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, next;

		memcpy(&nh, seg + off, sizeof(nh));
		name_off = off + sizeof(nh);
		desc_off = (name_off + nh.n_namesz + align - 1) & ~(align - 1);
		if (desc_off > size || nh.n_descsz > size - desc_off)
			return boot_error(err, errlen, -EINVAL,
					  "ELF note at offset 0x%" PRIx64 " (name %u bytes, descriptor %u bytes) runs past its PT_NOTE segment",
					  (uint64_t)ph->p_offset + off, nh.n_namesz, nh.n_descsz);
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == sizeof(XEN_NOTE_NAME) &&
		    memcmp(seg + name_off, XEN_NOTE_NAME, sizeof(XEN_NOTE_NAME)) == 0) {
			uint64_t entry = 0;

			if (nh.n_descsz != 4 && nh.n_descsz != 8)
				return boot_error(err, errlen, -EINVAL,
						  "PVH entry note has a %u-byte descriptor, not 4 or 8",
						  nh.n_descsz);
			memcpy(&entry, seg + desc_off, nh.n_descsz);
			if (entry > UINT32_MAX)
				return boot_error(err, errlen, -EINVAL,
						  "PVH entry 0x%" PRIx64 " is not a 32-bit address", entry);
			img->entry = (uint32_t)entry;
			img->have_entry = true;
		}
		next = (desc_off + nh.n_descsz + align - 1) & ~(align - 1);
		if (next >= size)
			break;
		off = next;
	}
	return 0;
}

static int check_load(const struct guest_mem *mem, struct pvh_image *img, const Elf64_Phdr *ph,
		      char *err, size_t errlen)
{
	if (ph->p_filesz > ph->p_memsz)
		return boot_error(err, errlen, -EINVAL,
				  "ELF PT_LOAD at 0x%" PRIx64 " has p_filesz 0x%" PRIx64 " > p_memsz 0x%" PRIx64,
				  (uint64_t)ph->p_paddr, (uint64_t)ph->p_filesz, (uint64_t)ph->p_memsz);
	if (ph->p_memsz == 0)
		return 0;
	/* Below 1 MiB live the boot tables, command line and ACPI tables kiln has written. */
	if (ph->p_paddr < KILN_HIGH_MEMORY)
		return boot_error(err, errlen, -EINVAL,
				  "ELF PT_LOAD at 0x%" PRIx64 " is below 1 MiB", (uint64_t)ph->p_paddr);
	if (!guest_mem_ptr(mem, ph->p_paddr, ph->p_memsz))
		return boot_error(err, errlen, -ENOSPC,
				  "ELF PT_LOAD [0x%" PRIx64 ", +0x%" PRIx64 ") is not inside guest RAM (%" PRIu64 " MiB)",
				  (uint64_t)ph->p_paddr, (uint64_t)ph->p_memsz, boot_ram_mib(mem));
	if (ph->p_paddr + ph->p_memsz > img->kernel_end)
		img->kernel_end = ph->p_paddr + ph->p_memsz;
	return 0;
}

/* Validate every program header: segments within the file, PT_LOADs in RAM, the entry note. */
static int check_segments(const struct guest_mem *mem, struct pvh_image *img, char *err,
			  size_t errlen)
{
	bool entry_loaded = false;
	int ret;

	for (unsigned i = 0; i < img->eh.e_phnum; i++) {
		Elf64_Phdr ph;

		read_phdr(img, i, &ph);
		if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE)
			continue;
		if (!in_file(img, ph.p_offset, ph.p_filesz))
			return boot_error(err, errlen, -EINVAL,
					  "ELF segment %u (0x%" PRIx64 " bytes at 0x%" PRIx64 ") runs past the end of the %zu-byte file",
					  i, (uint64_t)ph.p_filesz, (uint64_t)ph.p_offset, img->len);
		ret = ph.p_type == PT_NOTE ? scan_notes(img, &ph, err, errlen)
					   : check_load(mem, img, &ph, err, errlen);
		if (ret)
			return ret;
	}
	if (!img->kernel_end)
		return boot_error(err, errlen, -EINVAL, "ELF kernel has no PT_LOAD segment");
	if (!img->have_entry)
		return boot_error(err, errlen, -EINVAL, "ELF kernel has no PVH entry note");
	for (unsigned i = 0; i < img->eh.e_phnum && !entry_loaded; i++) {
		Elf64_Phdr ph;

		read_phdr(img, i, &ph);
		entry_loaded = ph.p_type == PT_LOAD && img->entry >= ph.p_paddr &&
			       img->entry - ph.p_paddr < ph.p_memsz;
	}
	if (!entry_loaded)
		return boot_error(err, errlen, -EINVAL,
				  "PVH entry 0x%x is outside every PT_LOAD segment", img->entry);
	return 0;
}

static void copy_segments(const struct guest_mem *mem, const struct pvh_image *img)
{
	for (unsigned i = 0; i < img->eh.e_phnum; i++) {
		Elf64_Phdr ph;
		uint8_t *dst;

		read_phdr(img, i, &ph);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		dst = guest_mem_ptr(mem, ph.p_paddr, ph.p_memsz); /* checked by check_load() */
		memcpy(dst, img->file + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
}

/* Build the start info page: struct, module list, memory map (converted from the e820 map). */
static int write_start_info(const struct guest_mem *mem, const struct boot_input *in,
			    uint64_t initrd_gpa)
{
	uint8_t page[START_INFO_ROOM] = { 0 };
	struct boot_e820_entry e820[MEMMAP_MAX];
	unsigned n = boot_e820_build(mem, e820, MEMMAP_MAX);
	struct hvm_start_info si = {
		.magic = XEN_HVM_START_MAGIC_VALUE,
		.version = HVM_START_INFO_VERSION,
		.nr_modules = in->initrd_len ? 1 : 0,
		.modlist_paddr = in->initrd_len ? KILN_PVH_START_INFO + MODLIST_OFFSET : 0,
		.cmdline_paddr = KILN_CMDLINE,
		.rsdp_paddr = in->rsdp_gpa,
		.memmap_paddr = KILN_PVH_START_INFO + MEMMAP_OFFSET,
		.memmap_entries = n,
	};
	struct hvm_modlist_entry mod = { .paddr = initrd_gpa, .size = in->initrd_len };

	memcpy(page, &si, sizeof(si));
	if (in->initrd_len)
		memcpy(page + MODLIST_OFFSET, &mod, sizeof(mod));
	for (unsigned i = 0; i < n; i++) {
		struct hvm_memmap_table_entry m = {
			.addr = e820[i].addr, .size = e820[i].size, .type = e820[i].type };

		memcpy(page + MEMMAP_OFFSET + i * sizeof(m), &m, sizeof(m));
	}
	return guest_mem_write(mem, KILN_PVH_START_INFO, page, sizeof(page)) ? -ENOSPC : 0;
}

int boot_load_pvh(const struct guest_mem *mem, const struct boot_input *in, struct boot_info *out,
		  char *err, size_t errlen)
{
	struct pvh_image img = { .file = in->kernel, .len = in->kernel_len };
	size_t cmdline_len = strlen(in->cmdline);
	uint64_t initrd_gpa = 0;
	int ret;

	ret = check_ehdr(&img, err, errlen);
	if (!ret)
		ret = check_segments(mem, &img, err, errlen);
	if (ret)
		return ret;
	if (cmdline_len >= KILN_CMDLINE_MAX)
		return boot_error(err, errlen, -E2BIG, "command line is %zu bytes, kiln allows %llu",
				  cmdline_len, KILN_CMDLINE_MAX - 1);
	if (in->initrd_len &&
	    boot_initrd_place(in->initrd_len, img.kernel_end, guest_mem_low_end(mem), &initrd_gpa))
		return boot_error(err, errlen, -ENOSPC,
				  "initrd (%zu bytes) does not fit between the kernel's end 0x%" PRIx64 " and the end of low RAM 0x%" PRIx64 " with %" PRIu64 " MiB of RAM",
				  in->initrd_len, img.kernel_end, guest_mem_low_end(mem),
				  boot_ram_mib(mem));

	copy_segments(mem, &img);
	if ((in->initrd_len && guest_mem_write(mem, initrd_gpa, in->initrd, in->initrd_len)) ||
	    boot_cmdline_write(mem, in->cmdline, cmdline_len) ||
	    write_start_info(mem, in, initrd_gpa))
		return boot_error(err, errlen, -ENOSPC,
				  "initrd, command line or PVH start info falls outside guest RAM");

	*out = (struct boot_info){
		.protocol = BOOT_PVH,
		.entry = img.entry,
		.params_gpa = KILN_PVH_START_INFO,
		.kernel_end = img.kernel_end,
		.initrd_gpa = initrd_gpa,
	};
	return 0;
}
