/* SPDX-License-Identifier: Apache-2.0 */
/* multiboot — loading a Multiboot (version 1) kernel as QEMU 7.2's -kernel does
 * (hw/i386/multiboot.c). Spec: The Multiboot Specification version 0.6.96, §3.1 (the header,
 * searched for in the first 8192 bytes, 4-byte aligned), §3.1.3 (the address fields: the
 * "a.out kludge", used whenever flag bit 16 is set), §3.2 (machine state: 32-bit protected
 * mode, flat segments, paging off, EAX = 0x2BADB002, EBX = the info structure), §3.3 (the
 * info structure, memory map and modules).
 *
 * Owns: validating the untrusted header and ELF program headers (ELF32, or ELF64 whose
 * segments and entry lie below 4 GiB: any machine's image a 32-bit entry can start), copying
 * the image to its physical addresses (nothing below 1 MiB, where kiln's boot tables live),
 * placing the modules page-aligned after the kernel, and writing the info structure, its
 * memory map (kiln's e820 map), module list and strings at KILN_MULTIBOOT_INFO. The kernel's
 * command line is "<kernel path> <cmdline>" and a module's string is the module's whole
 * --initrd entry ("path args"), as QEMU passes them.
 */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "boot/boot_internal.h"
#include "kiln/layout.h"

#define MB_HEADER_MAGIC     0x1BADB002
#define MB_BOOTLOADER_MAGIC 0x2BADB002
#define MB_SEARCH           8192   /* §3.1: the header lies within the first 8192 bytes */
#define MB_PAGE_ALIGN       0x00000001 /* §3.1.2 flags: modules page-aligned (always done) */
#define MB_MEMORY_INFO      0x00000002 /* mem_* fields wanted (always given) */
#define MB_VIDEO_MODE       0x00000004 /* a video mode wanted: there is no video */
#define MB_AOUT_KLUDGE      0x00010000 /* the address fields are valid */
#define MB_KNOWN_REQUIRED   (MB_PAGE_ALIGN | MB_MEMORY_INFO | MB_VIDEO_MODE)

/* §3.3 info flags. */
#define MBI_MEMORY          0x001
#define MBI_CMDLINE         0x004
#define MBI_MODS            0x008
#define MBI_MEM_MAP         0x040
#define MBI_BOOT_LOADER     0x200

/* The info area: §3.3's structure, the loader's name, the memory map, the module list, then
 * the module strings. */
#define MBI_SIZE            116   /* through color_info: the whole §3.3 structure */
#define NAME_OFFSET         128
#define MMAP_OFFSET         256
#define MMAP_ENTRY          24    /* size (u32, = 20, not counting itself), base, length, type */
#define MMAP_MAX            E820_MAX_ENTRIES_ZEROPAGE
#define MODS_OFFSET         (MMAP_OFFSET + MMAP_MAX * MMAP_ENTRY)
#define MOD_ENTRY           16    /* mod_start, mod_end, string, reserved */
#define STRINGS_OFFSET      (MODS_OFFSET + BOOT_MAX_MODULES * MOD_ENTRY)
_Static_assert(STRINGS_OFFSET < KILN_MULTIBOOT_INFO_MAX, "multiboot info area");
_Static_assert(KILN_MULTIBOOT_INFO + KILN_MULTIBOOT_INFO_MAX <= KILN_EBDA_START,
	       "multiboot info below the EBDA");

/* One segment to copy: @filesz bytes of the file at @offset to @paddr, zeros up to @memsz. */
struct mb_segment {
	uint64_t offset, filesz, paddr, memsz;
};

struct mb_image {
	const uint8_t *file;
	size_t len;
	uint32_t header;           /* offset of the header in the file */
	uint32_t flags;
	unsigned nr_segments;
	struct mb_segment seg[16];
	uint64_t entry;
	uint64_t start, end;       /* lowest and highest + 1 byte loaded */
};

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

long boot_multiboot_header(const uint8_t *file, size_t len)
{
	size_t limit = len < MB_SEARCH ? len : MB_SEARCH;

	for (size_t i = 0; i + 12 <= limit; i += 4) {
		uint32_t magic = le32(file + i), flags = le32(file + i + 4);

		if (magic == MB_HEADER_MAGIC && magic + flags + le32(file + i + 8) == 0)
			return (long)i;
	}
	return -1;
}

static bool in_file(const struct mb_image *img, uint64_t off, uint64_t size)
{
	return off <= img->len && size <= img->len - off;
}

static int add_segment(struct mb_image *img, uint64_t offset, uint64_t filesz, uint64_t paddr,
		       uint64_t memsz, char *err, size_t errlen)
{
	if (img->nr_segments == sizeof(img->seg) / sizeof(img->seg[0]))
		return boot_error(err, errlen, -EINVAL, "more than %zu loadable segments",
				  sizeof(img->seg) / sizeof(img->seg[0]));
	if (filesz > memsz || !in_file(img, offset, filesz))
		return boot_error(err, errlen, -EINVAL,
				  "multiboot kernel segment of 0x%" PRIx64 " bytes at file offset 0x%" PRIx64 " (0x%" PRIx64 " in memory) runs past the end of the %zu-byte file",
				  filesz, offset, memsz, img->len);
	if (paddr > UINT32_MAX || memsz > (uint64_t)UINT32_MAX + 1 - paddr)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot kernel segment [0x%" PRIx64 ", +0x%" PRIx64 ") is not below 4 GiB", paddr, memsz);
	if (memsz == 0)
		return 0;
	if (!img->nr_segments || paddr < img->start) /* the lowest, 0 included */
		img->start = paddr;
	img->seg[img->nr_segments++] = (struct mb_segment){ offset, filesz, paddr, memsz };
	if (paddr + memsz > img->end)
		img->end = paddr + memsz;
	return 0;
}

/* §3.1.3: header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr. The checks are
 * QEMU's (hw/i386/multiboot.c), each a message instead of an exit. */
static int parse_aout(struct mb_image *img, char *err, size_t errlen)
{
	const uint8_t *h = img->file + img->header;
	uint32_t header_addr, load_addr, load_end, bss_end, text_offset;
	uint64_t load_size, mem_size;

	if (!in_file(img, img->header, 32)) /* before any of its fields is read */
		return boot_error(err, errlen, -EINVAL, "multiboot header at 0x%x is cut off by the end of the file",
				  img->header);
	header_addr = le32(h + 12);
	load_addr = le32(h + 16);
	load_end = le32(h + 20);
	bss_end = le32(h + 24);
	if (header_addr < load_addr || header_addr - load_addr > img->header)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot header_addr 0x%x does not fit load_addr 0x%x and the header's offset 0x%x",
				  header_addr, load_addr, img->header);
	text_offset = img->header - (header_addr - load_addr);
	if (load_end && load_end < load_addr)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot load_end_addr 0x%x is below load_addr 0x%x", load_end, load_addr);
	load_size = load_end ? (uint64_t)load_end - load_addr : img->len - text_offset;
	if (bss_end && bss_end < load_addr + load_size)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot bss_end_addr 0x%x is below the end of the loaded text 0x%" PRIx64,
				  bss_end, load_addr + load_size);
	mem_size = bss_end ? (uint64_t)bss_end - load_addr : load_size;
	img->entry = le32(h + 28);
	return add_segment(img, text_offset, load_size, load_addr, mem_size, err, errlen);
}

/* An ELF32 or ELF64 program header as 64-bit fields. */
static void read_phdr(const struct mb_image *img, bool elf64, uint64_t phoff, unsigned i,
		      Elf64_Phdr *ph)
{
	if (elf64) {
		memcpy(ph, img->file + phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
		return;
	}
	Elf32_Phdr p;

	memcpy(&p, img->file + phoff + (uint64_t)i * sizeof(p), sizeof(p));
	*ph = (Elf64_Phdr){ .p_type = p.p_type, .p_offset = p.p_offset, .p_vaddr = p.p_vaddr,
			    .p_paddr = p.p_paddr, .p_filesz = p.p_filesz, .p_memsz = p.p_memsz };
}

/* Without flag bit 16 the image must be ELF (§3.1.2): its PT_LOAD segments go to p_paddr and
 * the entry, e_entry, is translated from the segment that holds it as a virtual address to
 * its physical one (as GRUB does; the same address for identity-linked kernels). */
static int parse_elf(struct mb_image *img, char *err, size_t errlen)
{
	const uint8_t *f = img->file;
	bool elf64;
	uint64_t phoff, entry;
	unsigned phnum, phentsize;
	int ret;

	if (img->len < sizeof(Elf32_Ehdr) || memcmp(f, ELFMAG, SELFMAG))
		return boot_error(err, errlen, -EINVAL,
				  "multiboot header without address fields (flag bit 16) in a file that is not ELF");
	elf64 = f[EI_CLASS] == ELFCLASS64;
	if ((!elf64 && f[EI_CLASS] != ELFCLASS32) || f[EI_DATA] != ELFDATA2LSB ||
	    (elf64 && img->len < sizeof(Elf64_Ehdr)))
		return boot_error(err, errlen, -EINVAL,
				  "multiboot ELF is not 32- or 64-bit little-endian (class %u, data %u)",
				  f[EI_CLASS], f[EI_DATA]);
	if (elf64) {
		Elf64_Ehdr eh;

		memcpy(&eh, f, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize, entry = eh.e_entry;
		ret = eh.e_phentsize == sizeof(Elf64_Phdr) ? 0 : -EINVAL;
	} else {
		Elf32_Ehdr eh;

		memcpy(&eh, f, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize, entry = eh.e_entry;
		ret = eh.e_phentsize == sizeof(Elf32_Phdr) ? 0 : -EINVAL;
	}
	if (ret || phnum == 0 || phnum == PN_XNUM || !in_file(img, phoff, (uint64_t)phnum * phentsize))
		return boot_error(err, errlen, -EINVAL,
				  "multiboot ELF has unusable program headers (%u of %u bytes at 0x%" PRIx64 ")",
				  phnum, phentsize, phoff);
	img->entry = UINT64_MAX;
	for (unsigned i = 0; i < phnum; i++) {
		Elf64_Phdr ph;

		read_phdr(img, elf64, phoff, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		ret = add_segment(img, ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz, err, errlen);
		if (ret)
			return ret;
		if (entry >= ph.p_vaddr && entry - ph.p_vaddr < ph.p_memsz)
			img->entry = ph.p_paddr + (entry - ph.p_vaddr);
	}
	if (!img->nr_segments)
		return boot_error(err, errlen, -EINVAL, "multiboot ELF has no PT_LOAD segment");
	if (img->entry == UINT64_MAX)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot ELF entry 0x%" PRIx64 " is outside every PT_LOAD segment", entry);
	return 0;
}

/* The whole image in RAM, above kiln's tables, the entry inside it. */
static int check_placement(const struct guest_mem *mem, const struct mb_image *img, char *err,
			   size_t errlen)
{
	if (img->start < KILN_HIGH_MEMORY)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot kernel loads at 0x%" PRIx64 ", below 1 MiB", img->start);
	for (unsigned i = 0; i < img->nr_segments; i++)
		if (!guest_mem_ptr(mem, img->seg[i].paddr, img->seg[i].memsz))
			return boot_error(err, errlen, -ENOSPC,
					  "multiboot kernel [0x%" PRIx64 ", +0x%" PRIx64 ") is not inside guest RAM (%" PRIu64 " MiB)",
					  img->seg[i].paddr, img->seg[i].memsz, boot_ram_mib(mem));
	if (img->entry < img->start || img->entry >= img->end)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot entry 0x%" PRIx64 " is outside the loaded image [0x%" PRIx64 ", 0x%" PRIx64 ")",
				  img->entry, img->start, img->end);
	return 0;
}

static void copy_segments(const struct guest_mem *mem, const struct mb_image *img)
{
	for (unsigned i = 0; i < img->nr_segments; i++) {
		const struct mb_segment *s = &img->seg[i];
		uint8_t *dst = guest_mem_ptr(mem, s->paddr, s->memsz); /* checked */

		memcpy(dst, img->file + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
}

static uint64_t page_up(uint64_t v) { return (v + BOOT_PAGE_SIZE - 1) & ~(BOOT_PAGE_SIZE - 1); }

/* Modules page-aligned from the kernel's end (§3.1.2 bit 0), in low RAM (32-bit addresses).
 * Fills @gpa. */
static int place_modules(const struct guest_mem *mem, const struct boot_input *in,
			 uint64_t kernel_end, uint64_t *gpa, char *err, size_t errlen)
{
	uint64_t at = page_up(kernel_end), low_end = guest_mem_low_end(mem);

	for (unsigned i = 0; i < in->nr_modules; i++) {
		const struct boot_module *m = &in->modules[i];

		if (at > low_end || m->len > low_end - at)
			return boot_error(err, errlen, -ENOSPC,
					  "module %u \"%s\" (%zu bytes) does not fit at 0x%" PRIx64 " below the end of low RAM 0x%" PRIx64 " (%" PRIu64 " MiB of RAM)",
					  i, m->cmdline, m->len, at, low_end, boot_ram_mib(mem));
		gpa[i] = at;
		at = page_up(at + m->len);
	}
	return 0;
}

/* Build the info area (§3.3) in @area (KILN_MULTIBOOT_INFO_MAX bytes, zeroed). */
static int build_info(const struct guest_mem *mem, const struct boot_input *in,
		      const uint64_t *mod_gpa, uint8_t *area, char *err, size_t errlen)
{
	struct boot_e820_entry e820[MMAP_MAX];
	unsigned n = boot_e820_build(mem, e820, MMAP_MAX);
	uint64_t low_end = guest_mem_low_end(mem);
	size_t strings = STRINGS_OFFSET;

	put32(area + 0, MBI_MEMORY | MBI_CMDLINE | MBI_MODS | MBI_MEM_MAP | MBI_BOOT_LOADER);
	put32(area + 4, (uint32_t)((low_end < KILN_EBDA_START ? low_end : KILN_EBDA_START) >> 10));
	put32(area + 8, (uint32_t)((low_end - KILN_HIGH_MEMORY) >> 10));
	put32(area + 16, KILN_CMDLINE);
	put32(area + 20, in->nr_modules);
	put32(area + 24, KILN_MULTIBOOT_INFO + MODS_OFFSET);
	put32(area + 44, n * MMAP_ENTRY);
	put32(area + 48, KILN_MULTIBOOT_INFO + MMAP_OFFSET);
	put32(area + 64, KILN_MULTIBOOT_INFO + NAME_OFFSET);
	memcpy(area + NAME_OFFSET, "kiln", 5);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = area + MMAP_OFFSET + i * MMAP_ENTRY;

		put32(e, MMAP_ENTRY - 4);
		put64(e + 4, e820[i].addr);
		put64(e + 12, e820[i].size);
		put32(e + 20, e820[i].type);
	}
	for (unsigned i = 0; i < in->nr_modules; i++) {
		const struct boot_module *m = &in->modules[i];
		uint8_t *e = area + MODS_OFFSET + i * MOD_ENTRY;
		size_t len = strlen(m->cmdline) + 1;

		if (len > KILN_MULTIBOOT_INFO_MAX - strings)
			return boot_error(err, errlen, -EINVAL,
					  "module strings are longer than the %llu bytes kiln has for them",
					  KILN_MULTIBOOT_INFO_MAX - STRINGS_OFFSET);
		memcpy(area + strings, m->cmdline, len);
		put32(e, (uint32_t)mod_gpa[i]);
		put32(e + 4, (uint32_t)(mod_gpa[i] + m->len));
		put32(e + 8, (uint32_t)(KILN_MULTIBOOT_INFO + strings));
		strings += len;
	}
	return 0;
}

int boot_load_multiboot(const struct guest_mem *mem, const struct boot_input *in,
			struct boot_info *out, char *err, size_t errlen)
{
	uint8_t *area = guest_mem_ptr(mem, KILN_MULTIBOOT_INFO, KILN_MULTIBOOT_INFO_MAX);
	char *cmdline = guest_mem_ptr(mem, KILN_CMDLINE, KILN_CMDLINE_MAX);
	struct mb_image img = { .file = in->kernel, .len = in->kernel_len };
	uint64_t mod_gpa[BOOT_MAX_MODULES];
	long header = boot_multiboot_header(in->kernel, in->kernel_len);
	int ret, len;

	if (header < 0)
		return boot_error(err, errlen, -EINVAL, "no multiboot header");
	img.header = (uint32_t)header;
	img.flags = le32(in->kernel + header + 4);
	if (img.flags & 0xffff & ~MB_KNOWN_REQUIRED)
		return boot_error(err, errlen, -EINVAL,
				  "multiboot header requires features kiln does not know (flags 0x%x)",
				  img.flags);
	if (in->nr_modules > BOOT_MAX_MODULES)
		return boot_error(err, errlen, -EINVAL, "%u modules, kiln takes %d", in->nr_modules,
				  BOOT_MAX_MODULES);
	if (!area || !cmdline)
		return boot_error(err, errlen, -ENOSPC, "the multiboot info area is not guest RAM");
	ret = img.flags & MB_AOUT_KLUDGE ? parse_aout(&img, err, errlen)
					 : parse_elf(&img, err, errlen);
	if (!ret)
		ret = check_placement(mem, &img, err, errlen);
	if (!ret)
		ret = place_modules(mem, in, img.end, mod_gpa, err, errlen);
	if (ret)
		return ret;
	len = snprintf(cmdline, KILN_CMDLINE_MAX, "%s %s",
		       in->kernel_name ? in->kernel_name : "", in->cmdline);
	if (len < 0 || (uint64_t)len >= KILN_CMDLINE_MAX)
		return boot_error(err, errlen, -E2BIG,
				  "command line with the kernel's path is longer than %llu bytes",
				  KILN_CMDLINE_MAX - 1);
	memset(area, 0, KILN_MULTIBOOT_INFO_MAX);
	ret = build_info(mem, in, mod_gpa, area, err, errlen);
	if (ret)
		return ret;
	copy_segments(mem, &img);
	for (unsigned i = 0; i < in->nr_modules; i++)
		if (in->modules[i].len) /* placed in RAM by place_modules() */
			memcpy(guest_mem_ptr(mem, mod_gpa[i], in->modules[i].len),
			       in->modules[i].data, in->modules[i].len);
	*out = (struct boot_info){
		.protocol = BOOT_MULTIBOOT,
		.entry = img.entry,
		.params_gpa = KILN_MULTIBOOT_INFO,
		.kernel_end = img.end,
		.initrd_gpa = in->nr_modules ? mod_gpa[0] : 0,
	};
	return 0;
}

int boot_modules_split(char *list, char **modules, unsigned max)
{
	unsigned n = 0;
	char *src = list, *dst = list;

	if (!*list)
		return -EINVAL;
	modules[n++] = dst;
	for (; *src; src++) {
		if (*src != ',') {
			*dst++ = *src;
		} else if (src[1] == ',') {
			*dst++ = *src++; /* ",," is a comma */
		} else {
			*dst++ = 0;
			if (n == max)
				return -E2BIG;
			modules[n++] = dst;
		}
	}
	*dst = 0;
	for (unsigned i = 0; i < n; i++)
		if (!*modules[i] || *modules[i] == ' ')
			return -EINVAL;
	return (int)n;
}
