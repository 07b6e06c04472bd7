/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for boot: bzImage and PVH loading into a fake guest memory, the e820 map, and
 * hostile kernel files (truncated at every length, overflowing headers, bad notes).
 *
 * Set KILN_TEST_KERNEL to a real bzImage (e.g. Debian's vmlinuz) to also load it; that one test
 * is skipped when the variable is unset.
 */
#include <asm/bootparam.h>
#include <asm/e820.h>
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/boot.h"
#include "kiln/guest_mem.h"
#include "kiln/layout.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* ---- fake guest memory ------------------------------------------------------------------- */

static struct guest_mem *mem_new(uint64_t low, uint64_t high)
{
	struct guest_mem *mem = calloc(1, sizeof(*mem));

	assert_non_null(mem);
	mem->region[0] = (struct guest_mem_region){ .gpa = 0, .size = low, .hva = calloc(1, low) };
	assert_non_null(mem->region[0].hva);
	mem->nr_regions = 1;
	if (high) {
		mem->region[1] = (struct guest_mem_region){
			.gpa = KILN_MMIO_HOLE_END, .size = high, .hva = calloc(1, high) };
		assert_non_null(mem->region[1].hva);
		mem->nr_regions = 2;
	}
	mem->size = low + high;
	return mem;
}

static void mem_free(struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nr_regions; i++)
		free(mem->region[i].hva);
	free(mem);
}

static int setup_64m(void **state) { *state = mem_new(64 * MiB, 0); return 0; }
static int setup_256m(void **state) { *state = mem_new(256 * MiB, 0); return 0; }
static int setup_two_regions(void **state) { *state = mem_new(64 * MiB, 16 * MiB); return 0; }
static int teardown(void **state) { mem_free(*state); return 0; }

static uint8_t *gpa(const struct guest_mem *mem, uint64_t addr)
{
	uint8_t *p = guest_mem_ptr(mem, addr, 1);

	assert_non_null(p);
	return p;
}

static struct boot_params zero_page(const struct guest_mem *mem)
{
	struct boot_params bp;

	memcpy(&bp, gpa(mem, KILN_ZERO_PAGE), sizeof(bp));
	return bp;
}

static void put16(uint8_t *p, size_t off, uint16_t v) { memcpy(p + off, &v, 2); }
static void put32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }
static void put64(uint8_t *p, size_t off, uint64_t v) { memcpy(p + off, &v, 8); }
static uint16_t get16(const uint8_t *p, size_t off) { uint16_t v; memcpy(&v, p + off, 2); return v; }
static uint32_t get32(const uint8_t *p, size_t off) { uint32_t v; memcpy(&v, p + off, 4); return v; }
static uint64_t get64(const uint8_t *p, size_t off) { uint64_t v; memcpy(&v, p + off, 8); return v; }

static uint8_t pm_byte(size_t i) { return (uint8_t)(i * 7 + 3); }
static uint8_t load_byte(size_t i) { return (uint8_t)(i * 13 + 1); }

static void assert_e820(const struct boot_e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

/* The map every 64 MiB single-region test expects. */
static void assert_e820_64m(const struct boot_e820_entry *e)
{
	assert_e820(&e[0], 0, KILN_EBDA_START, E820_RAM);
	assert_e820(&e[1], KILN_EBDA_START, 0xA0000 - KILN_EBDA_START, E820_RESERVED);
	assert_e820(&e[2], 0xE0000, 0x20000, E820_RESERVED);
	assert_e820(&e[3], 1 * MiB, 63 * MiB, E820_RAM);
}

/* ---- synthetic bzImage ------------------------------------------------------------------- */

struct bz {
	uint8_t setup_sects;     /* raw field; 0 means 4 */
	uint8_t jump;            /* byte at 0x201: header ends at 0x202 + jump */
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t relocatable;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint32_t pm_len;         /* protected-mode bytes, multiple of 16 (syssize * 16) */
	uint32_t trailer;        /* bytes after the protected-mode code (a signature) */
};

static struct bz bz_default(void)
{
	return (struct bz){
		.setup_sects = 4, .jump = 0x6a, .version = 0x020f,
		.loadflags = LOADED_HIGH | KASLR_FLAG,
		.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
		.kernel_alignment = 0x200000, .init_size = 4 * MiB, .cmdline_size = 2047,
		.initrd_addr_max = 0x7fffffff, .pm_len = 8192,
	};
}

static size_t bz_setup_len(const struct bz *o)
{
	return ((size_t)(o->setup_sects ? o->setup_sects : 4) + 1) * 512;
}

static uint8_t *bz_build(const struct bz *o, size_t *len)
{
	size_t setup = bz_setup_len(o);
	uint8_t *k;

	*len = setup + o->pm_len + o->trailer;
	k = malloc(*len);
	assert_non_null(k);
	memset(k, 0x33, setup); /* boot sector and setup code: none of it may reach the zero page */
	memset(k + 0x1f1, 0, 0x26c - 0x1f1);
	k[0x1f1] = o->setup_sects;
	put32(k, 0x1f4, o->pm_len / 16);
	put16(k, 0x1fa, 0xffff); /* vid_mode */
	put16(k, 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = o->jump;
	memcpy(k + 0x202, "HdrS", 4);
	put16(k, 0x206, o->version);
	put16(k, 0x20e, 0x1234); /* kernel_version */
	k[0x210] = 0x42;         /* type_of_loader: overwritten */
	k[0x211] = o->loadflags;
	put32(k, 0x214, 0x100000);
	put16(k, 0x224, 0x1111); /* heap_end_ptr: overwritten */
	put32(k, 0x22c, o->initrd_addr_max);
	put32(k, 0x230, o->kernel_alignment);
	k[0x234] = o->relocatable;
	k[0x235] = 21;
	put16(k, 0x236, o->xloadflags);
	put32(k, 0x238, o->cmdline_size);
	put32(k, 0x23c, 2);      /* hardware_subarch: hostile, reset to PC */
	put64(k, 0x250, 0xdeadbeef); /* setup_data: hostile, cleared */
	put64(k, 0x258, o->pref_address);
	put32(k, 0x260, o->init_size);
	put32(k, 0x264, 0x190);  /* handover_offset */
	put32(k, 0x268, 0x4321); /* kernel_info_offset */
	for (size_t i = 0; i < o->pm_len; i++)
		k[setup + i] = pm_byte(i);
	memset(k + setup + o->pm_len, 0xee, o->trailer);
	return k;
}

static int bz_load(const struct guest_mem *mem, const struct bz *o, const uint8_t *initrd,
		   size_t initrd_len, const char *cmdline, struct boot_info *out, char *err,
		   size_t errlen)
{
	size_t len;
	uint8_t *k = bz_build(o, &len);
	struct boot_input in = { .kernel = k, .kernel_len = len, .initrd = initrd,
				 .initrd_len = initrd_len, .cmdline = cmdline, .rsdp_gpa = 0xE0000 };
	int ret = boot_load(mem, &in, out, err, errlen);

	free(k);
	return ret;
}

static void test_bzimage_loads_at_1mib(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	uint8_t initrd[10000];
	struct boot_info bi;
	struct boot_params bp;
	char err[256] = "untouched";
	uint64_t initrd_at = (64 * MiB - sizeof(initrd)) & ~0xfffULL;

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5c);
	assert_int_equal(bz_load(mem, &o, initrd, sizeof(initrd), "console=ttyS0 quiet", &bi, err,
				 sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(bi.protocol, BOOT_LINUX_64);
	assert_int_equal(bi.entry, 0x100200);
	assert_int_equal(bi.params_gpa, KILN_ZERO_PAGE);
	assert_int_equal(bi.kernel_end, 1 * MiB + 4 * MiB);
	assert_int_equal(bi.initrd_gpa, initrd_at);
	assert_int_equal(initrd_at, 0x3FFD000);

	/* Kernel, initrd and command line bytes. */
	for (size_t i = 0; i < o.pm_len; i++)
		assert_int_equal(gpa(mem, 1 * MiB + i)[0], pm_byte(i));
	assert_int_equal(gpa(mem, 1 * MiB + o.pm_len)[0], 0);
	assert_memory_equal(gpa(mem, initrd_at), initrd, sizeof(initrd));
	assert_memory_equal(gpa(mem, KILN_CMDLINE), "console=ttyS0 quiet", 20);

	bp = zero_page(mem);
	assert_int_equal(bp.hdr.header, 0x53726448);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.setup_sects, 4);
	assert_int_equal(bp.hdr.vid_mode, 0xffff);
	assert_int_equal(bp.hdr.kernel_version, 0x1234);
	assert_int_equal(bp.hdr.handover_offset, 0x190);
	assert_int_equal(bp.hdr.kernel_info_offset, 0x4321);
	assert_int_equal(bp.hdr.min_alignment, 21);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags, LOADED_HIGH | KASLR_FLAG | CAN_USE_HEAP);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xfe00);
	assert_int_equal(bp.hdr.cmd_line_ptr, KILN_CMDLINE);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_int_equal(bp.hdr.ramdisk_image, initrd_at);
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp.ext_ramdisk_image, 0);
	assert_int_equal(bp.ext_ramdisk_size, 0);
	assert_int_equal(bp.hdr.code32_start, 0x100000);
	assert_int_equal(bp.hdr.hardware_subarch, 0);
	assert_int_equal(bp.hdr.setup_data, 0);
	assert_int_equal(bp.acpi_rsdp_addr, 0xE0000);
	assert_int_equal(bp.e820_entries, 4);
	assert_e820_64m(bp.e820_table);
	assert_int_equal(bp.e820_table[4].size, 0);
	/* Nothing outside the setup header came from the file (it is full of 0x33 there). */
	for (size_t i = 0; i < 0x40; i++)
		assert_int_equal(((uint8_t *)&bp)[i], 0); /* screen_info */
	for (size_t i = 0x26c; i < 0x290; i++)
		assert_int_equal(((uint8_t *)&bp)[i], 0);
	assert_int_equal(bp.sentinel, 0);
}

static void test_bzimage_relocatable_loads_at_pref_address(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	struct boot_info bi;
	struct boot_params bp;

	o.relocatable = 1;
	o.pref_address = 16 * MiB;
	o.init_size = 8 * MiB;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, NULL, 0), 0);
	assert_int_equal(bi.entry, 16 * MiB + 0x200);
	assert_int_equal(bi.kernel_end, 24 * MiB);
	assert_int_equal(bi.initrd_gpa, 0);
	for (size_t i = 0; i < o.pm_len; i++)
		assert_int_equal(gpa(mem, 16 * MiB + i)[0], pm_byte(i));
	assert_int_equal(gpa(mem, 1 * MiB)[0], 0);
	bp = zero_page(mem);
	assert_int_equal(bp.hdr.code32_start, 16 * MiB);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_int_equal(gpa(mem, KILN_CMDLINE)[0], 0);
}

/* A pref_address the kernel cannot be loaded at: load at 1 MiB, but the kernel still runs at
 * max(align_up(1 MiB), pref_address) and its footprint ends init_size above that. */
static void test_bzimage_misaligned_pref_address(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	struct boot_info bi;

	o.relocatable = 1;
	o.pref_address = 0x1100000;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "x", &bi, NULL, 0), 0);
	assert_int_equal(bi.entry, 0x100200);
	assert_int_equal(bi.kernel_end, 0x1100000 + 4 * MiB);
	assert_int_equal(zero_page(mem).hdr.code32_start, 0x100000);

	/* Relocatable with no pref_address: runs at align_up(1 MiB, 2 MiB). */
	o.pref_address = 0;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "x", &bi, NULL, 0), 0);
	assert_int_equal(bi.entry, 0x100200);
	assert_int_equal(bi.kernel_end, 2 * MiB + 4 * MiB);

	/* Not relocatable: runs at pref_address. */
	o.relocatable = 0;
	o.pref_address = 16 * MiB;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "x", &bi, NULL, 0), 0);
	assert_int_equal(bi.entry, 0x100200);
	assert_int_equal(bi.kernel_end, 20 * MiB);
}

static void test_bzimage_kernel_too_big(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	struct boot_info bi;
	char err[256];

	o.init_size = 64 * MiB;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "0x4000000"));
	/* Debian's cloud kernel: relocatable, 16 MiB pref_address, init_size 0x3378000. */
	o.relocatable = 1;
	o.pref_address = 16 * MiB;
	o.init_size = 0x3378000;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "kernel does not fit: it runs at 0x1000000 and needs 0x3378000 bytes (init_size) there, RAM below the MMIO hole ends at 0x4000000 (64 MiB of RAM)");
	/* A hostile pref_address near 2^64 must not wrap. */
	o.relocatable = 0;
	o.pref_address = UINT64_MAX - 0xfff;
	o.init_size = 0x10000;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, err, sizeof(err)), -ENOSPC);
	/* Relocatable with a kernel_alignment that is not a power of two. */
	o = bz_default();
	o.relocatable = 1;
	o.kernel_alignment = 0x300000;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	o.kernel_alignment = 0;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
}

static void test_bzimage_initrd_below_initrd_addr_max(void **state)
{
	struct guest_mem *mem = *state; /* 256 MiB */
	struct bz o = bz_default();
	size_t len = 1 * MiB + 5;
	uint8_t *initrd = malloc(len);
	struct boot_info bi;
	struct boot_params bp;

	assert_non_null(initrd);
	memset(initrd, 0xa5, len);
	o.initrd_addr_max = 0x1ffffff;
	assert_int_equal(bz_load(mem, &o, initrd, len, "", &bi, NULL, 0), 0);
	assert_int_equal(bi.initrd_gpa, 0x1EFF000);
	assert_int_equal(bi.initrd_gpa % 4096, 0);
	assert_true(bi.initrd_gpa + len <= 0x2000000);
	assert_memory_equal(gpa(mem, 0x1EFF000), initrd, len);
	bp = zero_page(mem);
	assert_int_equal(bp.hdr.ramdisk_image, 0x1EFF000);
	assert_int_equal(bp.hdr.ramdisk_size, len);
	assert_int_equal(bp.hdr.initrd_addr_max, 0x1ffffff);

	/* Without the limit it goes to the top of the 256 MiB. */
	o.initrd_addr_max = 0xffffffff;
	assert_int_equal(bz_load(mem, &o, initrd, len, "", &bi, NULL, 0), 0);
	assert_int_equal(bi.initrd_gpa, (256 * MiB - len) & ~0xfffULL);
	free(initrd);
}

static void test_bzimage_initrd_too_large(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	size_t len = 64 * MiB;
	uint8_t *initrd = calloc(1, len);
	struct boot_info bi;
	char err[256];

	assert_non_null(initrd);
	assert_int_equal(bz_load(mem, &o, initrd, len, "", &bi, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "initrd (67108864 bytes) does not fit below the kernel's initrd_addr_max 0x7fffffff with 64 MiB of RAM");
	/* Fits in RAM but not above the kernel: [1 MiB, 41 MiB) is the kernel's. */
	o.init_size = 40 * MiB;
	assert_int_equal(bz_load(mem, &o, initrd, 24 * MiB, "", &bi, err, sizeof(err)), -ENOSPC);
	assert_int_equal(bz_load(mem, &o, initrd, 23 * MiB - 4096, "", &bi, err, sizeof(err)), 0);
	assert_int_equal(bi.initrd_gpa, 41 * MiB + 4096);
	free(initrd);
}

static void test_bzimage_cmdline_limit(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	char cmdline[257], err[256];
	struct boot_info bi;

	o.cmdline_size = 255;
	memset(cmdline, 'a', 256);
	cmdline[256] = 0;
	assert_int_equal(bz_load(mem, &o, NULL, 0, cmdline, &bi, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "command line is 256 bytes, the kernel's cmdline_size allows 255");
	cmdline[255] = 0; /* cmdline_size counts the characters without the NUL */
	assert_int_equal(bz_load(mem, &o, NULL, 0, cmdline, &bi, err, sizeof(err)), 0);
	assert_memory_equal(gpa(mem, KILN_CMDLINE), cmdline, 256);

	/* Beyond kiln's own buffer even when the kernel would accept it. */
	{
		size_t n = KILN_CMDLINE_MAX;
		char *big = malloc(n + 1);

		assert_non_null(big);
		memset(big, 'b', n);
		big[n] = 0;
		o.cmdline_size = 0xffffffff;
		assert_int_equal(bz_load(mem, &o, NULL, 0, big, &bi, err, sizeof(err)), -E2BIG);
		assert_non_null(strstr(err, "65536"));
		big[n - 1] = 0;
		assert_int_equal(bz_load(mem, &o, NULL, 0, big, &bi, err, sizeof(err)), 0);
		free(big);
	}
}

static void test_bzimage_rsdp_needs_protocol_2_14(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	struct boot_info bi;

	o.version = 0x020d;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, NULL, 0), 0);
	assert_int_equal(zero_page(mem).acpi_rsdp_addr, 0);
	o.version = 0x020e;
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, NULL, 0), 0);
	assert_int_equal(zero_page(mem).acpi_rsdp_addr, 0xE0000);
}

/* Signed kernels carry a signature after syssize * 16 bytes: it is not loaded. */
static void test_bzimage_trailer_not_loaded(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	struct boot_info bi;

	o.trailer = 1472;
	o.setup_sects = 0; /* means 4 */
	assert_int_equal(bz_load(mem, &o, NULL, 0, "", &bi, NULL, 0), 0);
	assert_int_equal(gpa(mem, 1 * MiB + o.pm_len - 1)[0], pm_byte(o.pm_len - 1));
	assert_int_equal(gpa(mem, 1 * MiB + o.pm_len)[0], 0);
	assert_int_equal(zero_page(mem).hdr.setup_sects, 0);
}

/* syssize counts paragraphs rounded up: memtest86+ 6.10's file ends 8 bytes into its last
 * one. The bytes there are loaded and the rest of the paragraph stays zero. */
static void test_bzimage_partial_last_paragraph(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	struct boot_info bi;
	struct boot_input in;
	size_t len;
	uint8_t *k = bz_build(&o, &len);

	in = (struct boot_input){ .kernel = k, .kernel_len = len - 8 };
	assert_int_equal(boot_load(mem, &in, &bi, NULL, 0), 0);
	assert_int_equal(gpa(mem, 1 * MiB + o.pm_len - 9)[0], pm_byte(o.pm_len - 9));
	assert_int_equal(gpa(mem, 1 * MiB + o.pm_len - 8)[0], 0);
	assert_int_equal(zero_page(mem).hdr.syssize, o.pm_len / 16);
	free(k);
}

static void test_bzimage_two_regions(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	uint8_t initrd[100] = { 1, 2, 3 };
	struct boot_info bi;
	struct boot_params bp;

	assert_int_equal(bz_load(mem, &o, initrd, sizeof(initrd), "", &bi, NULL, 0), 0);
	assert_int_equal(bi.initrd_gpa, 64 * MiB - 4096); /* low RAM, never above 4 GiB */
	bp = zero_page(mem);
	assert_int_equal(bp.e820_entries, 5);
	assert_e820_64m(bp.e820_table);
	assert_e820(&bp.e820_table[4], 4 * GiB, 16 * MiB, E820_RAM);
}

static void expect_bz_einval(const struct guest_mem *mem, const struct bz *o, const char *needle)
{
	struct boot_info bi;
	char err[256];

	memset(&bi, 0xab, sizeof(bi));
	assert_int_equal(bz_load(mem, o, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	assert_int_equal(bi.entry, 0xabababababababab); /* *out untouched on failure */
	assert_int_equal(gpa(mem, KILN_ZERO_PAGE)[0x202], 0); /* nothing written */
}

static void test_bzimage_bad_headers(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o;

	o = bz_default();
	o.version = 0x020b;
	expect_bz_einval(mem, &o, "2.11");
	o = bz_default();
	o.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
	expect_bz_einval(mem, &o, "XLF_KERNEL_64");
	o = bz_default();
	o.loadflags = 0;
	expect_bz_einval(mem, &o, "LOADED_HIGH");
	o = bz_default();
	o.jump = 0xff; /* header would end at 0x301, past its room in the zero page */
	expect_bz_einval(mem, &o, "0x301");
	o = bz_default();
	o.jump = 0x40; /* header ends before init_size */
	expect_bz_einval(mem, &o, "0x242");
	o = bz_default();
	o.pm_len = 0;
	expect_bz_einval(mem, &o, "setup_sects");
	{
		/* boot_flag and syssize corrupted after building. */
		size_t len;
		uint8_t *k;
		struct boot_input in;
		struct boot_info bi;
		char err[256];

		k = bz_build(&(struct bz){ .setup_sects = 4, .jump = 0x6a, .version = 0x020f,
					   .loadflags = 1, .xloadflags = 1, .init_size = 4096,
					   .cmdline_size = 10, .pm_len = 4096 }, &len);
		in = (struct boot_input){ .kernel = k, .kernel_len = len };
		put16(k, 0x1fe, 0x55aa);
		assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "boot_flag"));
		put16(k, 0x1fe, 0xaa55);
		put32(k, 0x1f4, 4096 / 16 + 1);
		assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "syssize"));
		put32(k, 0x1f4, 0);
		assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
		put32(k, 0x1f4, 0xffffffff);
		assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
		put32(k, 0x1f4, 4096 / 16);
		assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), 0);
		free(k);
	}
}

static void test_bzimage_setup_sects_past_end(void **state)
{
	struct guest_mem *mem = *state;
	size_t len;
	uint8_t *k;
	struct boot_input in;
	struct boot_info bi;
	char err[256];

	struct bz o = bz_default();
	o.pm_len = 4096;
	k = bz_build(&o, &len); /* 2560 + 4096 bytes */
	in = (struct boot_input){ .kernel = k, .kernel_len = len };
	for (unsigned s = 12; s < 256; s++) { /* (s + 1) * 512 >= 6656 = len */
		k[0x1f1] = (uint8_t)s;
		assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "setup_sects"));
	}
	k[0x1f1] = 11; /* pm part is 512 bytes, syssize says 4096 */
	assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "syssize"));
	free(k);
}

/* Every proper prefix of a valid image is refused, and no byte past the prefix is read (each
 * prefix lives in its own exact-size allocation, so ASan sees an over-read). */
static void truncate_everywhere(const struct guest_mem *mem, const uint8_t *image, size_t full)
{
	char err[256];

	for (size_t len = 0; len < full; len++) {
		uint8_t *k = malloc(len ? len : 1);
		struct boot_input in = { .kernel = k, .kernel_len = len, .cmdline = "a" };
		struct boot_info bi;
		int ret;

		assert_non_null(k);
		memcpy(k, image, len);
		ret = boot_load(mem, &in, &bi, err, sizeof(err));
		if (ret != -EINVAL)
			fail_msg("prefix of %zu of %zu bytes: got %d (%s)", len, full, ret, err);
		free(k);
	}
}

static void test_bzimage_truncated_every_length(void **state)
{
	struct guest_mem *mem = *state;
	struct bz o = bz_default();
	size_t len;
	uint8_t *k;
	struct boot_input in;
	struct boot_info bi;

	o.pm_len = 1024;
	k = bz_build(&o, &len);
	/* syssize rounds up: a file missing less than its last 16-byte paragraph still loads. */
	truncate_everywhere(mem, k, len - 15);
	assert_int_equal(gpa(mem, KILN_ZERO_PAGE)[0x202], 0);
	assert_int_equal(gpa(mem, 1 * MiB)[0], 0);
	in = (struct boot_input){ .kernel = k, .kernel_len = len };
	assert_int_equal(boot_load(mem, &in, &bi, NULL, 0), 0);
	free(k);
}

/* ---- synthetic ELF vmlinux --------------------------------------------------------------- */

struct elf {
	const char *name;      /* note name, 4 bytes with the NUL */
	uint32_t namesz;
	uint32_t type;
	uint32_t descsz;
	uint64_t entry;
	bool no_note;
	bool gnu_note_first;   /* another note before the Xen one */
	uint64_t note_align;   /* PT_NOTE p_align */
	uint64_t paddr, filesz, memsz;
};

#define ELF_PHNUM 3
#define PH_OFF(i) (sizeof(Elf64_Ehdr) + (size_t)(i) * sizeof(Elf64_Phdr))
#define PH_LOAD 0
#define PH_NOTE 1

static struct elf elf_default(void)
{
	return (struct elf){ .name = "Xen", .namesz = 4, .type = 18, .descsz = 4,
			     .entry = 16 * MiB + 0x40, .note_align = 4, .paddr = 16 * MiB,
			     .filesz = 4096, .memsz = 16384 };
}

static void add_note(uint8_t *buf, size_t *off, uint64_t align, const char *name, uint32_t namesz,
		     uint32_t type, const uint8_t *desc, uint32_t descsz)
{
	Elf64_Nhdr nh = { .n_namesz = namesz, .n_descsz = descsz, .n_type = type };

	memcpy(buf + *off, &nh, sizeof(nh));
	*off += sizeof(nh);
	memcpy(buf + *off, name, namesz);
	*off = (*off + namesz + align - 1) & ~(align - 1);
	memcpy(buf + *off, desc, descsz);
	*off = (*off + descsz + align - 1) & ~(align - 1);
}

static uint8_t *elf_build(const struct elf *o, size_t *len)
{
	uint8_t notes[256] = { 0 }, desc[32] = { 0 }, gnu[12];
	size_t nlen = 0, notes_off = PH_OFF(ELF_PHNUM), load_off;
	Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			  .e_entry = 0xffffffff81000000, .e_phoff = sizeof(Elf64_Ehdr),
			  .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
			  .e_phnum = ELF_PHNUM };
	Elf64_Phdr ph[ELF_PHNUM];
	uint8_t *k;

	memset(gnu, 0x11, sizeof(gnu));
	memcpy(desc, &o->entry, 8);
	if (o->gnu_note_first)
		add_note(notes, &nlen, o->note_align, "GNU", 4, 5, gnu, sizeof(gnu));
	if (!o->no_note)
		add_note(notes, &nlen, o->note_align, o->name, o->namesz, o->type, desc, o->descsz);
	load_off = (notes_off + nlen + 15) & ~(size_t)15;
	*len = load_off + o->filesz;
	k = calloc(1, *len);
	assert_non_null(k);

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(k, &eh, sizeof(eh));
	ph[PH_LOAD] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = load_off,
				    .p_vaddr = 0xffffffff80000000 + o->paddr, .p_paddr = o->paddr,
				    .p_filesz = o->filesz, .p_memsz = o->memsz, .p_align = 0x200000 };
	ph[PH_NOTE] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = notes_off,
				    .p_filesz = nlen, .p_memsz = nlen, .p_align = o->note_align };
	/* Segments kiln does not use may point anywhere. */
	ph[2] = (Elf64_Phdr){ .p_type = PT_GNU_STACK, .p_offset = UINT64_MAX - 8,
			      .p_filesz = 0x1000, .p_paddr = UINT64_MAX };
	memcpy(k + PH_OFF(0), ph, sizeof(ph));
	memcpy(k + notes_off, notes, nlen);
	for (size_t i = 0; i < o->filesz; i++)
		k[load_off + i] = load_byte(i);
	return k;
}

static int elf_load_bytes(const struct guest_mem *mem, const uint8_t *k, size_t len,
			  const uint8_t *initrd, size_t initrd_len, const char *cmdline,
			  struct boot_info *out, char *err, size_t errlen)
{
	struct boot_input in = { .kernel = k, .kernel_len = len, .initrd = initrd,
				 .initrd_len = initrd_len, .cmdline = cmdline, .rsdp_gpa = 0xE0000 };

	return boot_load(mem, &in, out, err, errlen);
}

static int elf_load(const struct guest_mem *mem, const struct elf *o, const uint8_t *initrd,
		    size_t initrd_len, const char *cmdline, struct boot_info *out, char *err,
		    size_t errlen)
{
	size_t len;
	uint8_t *k = elf_build(o, &len);
	int ret = elf_load_bytes(mem, k, len, initrd, initrd_len, cmdline, out, err, errlen);

	free(k);
	return ret;
}

/* hvm_start_info v1 byte offsets, from xen/include/public/arch-x86/hvm/start_info.h. */
enum { SI_MAGIC = 0, SI_VERSION = 4, SI_FLAGS = 8, SI_NR_MODULES = 12, SI_MODLIST = 16,
       SI_CMDLINE = 24, SI_RSDP = 32, SI_MEMMAP = 40, SI_MEMMAP_ENTRIES = 48, SI_RESERVED = 52 };

static void assert_memmap(const uint8_t *m, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(get64(m, 0), addr);
	assert_int_equal(get64(m, 8), size);
	assert_int_equal(get32(m, 16), type);
	assert_int_equal(get32(m, 20), 0);
}

static void test_pvh_loads(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o = elf_default();
	uint8_t initrd[5000];
	struct boot_info bi;
	const uint8_t *si, *mod, *mm;
	uint64_t initrd_at = (64 * MiB - sizeof(initrd)) & ~0xfffULL;

	memset(initrd, 0x77, sizeof(initrd));
	memset(gpa(mem, 16 * MiB), 0xaa, 32768); /* stale bytes the zero fill must clear */
	assert_int_equal(elf_load(mem, &o, initrd, sizeof(initrd), "root=/dev/vda", &bi, NULL, 0), 0);
	assert_int_equal(bi.protocol, BOOT_PVH);
	assert_int_equal(bi.entry, 16 * MiB + 0x40);
	assert_int_equal(bi.params_gpa, KILN_PVH_START_INFO);
	assert_int_equal(bi.kernel_end, 16 * MiB + 16384);
	assert_int_equal(bi.initrd_gpa, initrd_at);

	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(gpa(mem, 16 * MiB + i)[0], load_byte(i));
	for (size_t i = 4096; i < 16384; i++)
		assert_int_equal(gpa(mem, 16 * MiB + i)[0], 0);
	assert_int_equal(gpa(mem, 16 * MiB + 16384)[0], 0xaa); /* p_memsz ends here */
	assert_memory_equal(gpa(mem, initrd_at), initrd, sizeof(initrd));
	assert_memory_equal(gpa(mem, KILN_CMDLINE), "root=/dev/vda", 14);

	si = gpa(mem, KILN_PVH_START_INFO);
	assert_int_equal(get32(si, SI_MAGIC), 0x336ec578);
	assert_int_equal(get32(si, SI_VERSION), 1);
	assert_int_equal(get32(si, SI_FLAGS), 0);
	assert_int_equal(get32(si, SI_NR_MODULES), 1);
	assert_int_equal(get64(si, SI_MODLIST), KILN_PVH_START_INFO + 56);
	assert_int_equal(get64(si, SI_CMDLINE), KILN_CMDLINE);
	assert_int_equal(get64(si, SI_RSDP), 0xE0000);
	assert_int_equal(get64(si, SI_MEMMAP), KILN_PVH_START_INFO + 56 + 32);
	assert_int_equal(get32(si, SI_MEMMAP_ENTRIES), 4);
	assert_int_equal(get32(si, SI_RESERVED), 0);
	mod = gpa(mem, get64(si, SI_MODLIST));
	assert_int_equal(get64(mod, 0), initrd_at);
	assert_int_equal(get64(mod, 8), sizeof(initrd));
	assert_int_equal(get64(mod, 16), 0);
	assert_int_equal(get64(mod, 24), 0);
	mm = gpa(mem, get64(si, SI_MEMMAP));
	assert_memmap(mm, 0, KILN_EBDA_START, 1);
	assert_memmap(mm + 24, KILN_EBDA_START, 0xA0000 - KILN_EBDA_START, 2);
	assert_memmap(mm + 48, 0xE0000, 0x20000, 2);
	assert_memmap(mm + 72, 1 * MiB, 63 * MiB, 1);
	assert_int_equal(get64(mm + 96, 8), 0);
}

static void test_pvh_without_initrd_and_8_byte_note(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o = elf_default();
	struct boot_info bi;
	const uint8_t *si;

	o.descsz = 8; /* Linux emits the entry with _ASM_PTR: .quad on x86-64 */
	o.entry = 16 * MiB + 0x3ff8;
	o.gnu_note_first = true;
	assert_int_equal(elf_load(mem, &o, NULL, 0, NULL, &bi, NULL, 0), 0);
	assert_int_equal(bi.entry, 16 * MiB + 0x3ff8);
	assert_int_equal(bi.initrd_gpa, 0);
	si = gpa(mem, KILN_PVH_START_INFO);
	assert_int_equal(get32(si, SI_NR_MODULES), 0);
	assert_int_equal(get64(si, SI_MODLIST), 0);
	assert_int_equal(gpa(mem, KILN_CMDLINE)[0], 0);

	/* 8-byte aligned notes: the GNU note's 12-byte descriptor is padded to 16. */
	o.note_align = 8;
	o.entry = 16 * MiB + 0x100;
	assert_int_equal(elf_load(mem, &o, NULL, 0, "", &bi, NULL, 0), 0);
	assert_int_equal(bi.entry, 16 * MiB + 0x100);
}

static void expect_elf(const struct guest_mem *mem, const struct elf *o, int want, const char *needle)
{
	struct boot_info bi;
	char err[256];
	int ret = elf_load(mem, o, NULL, 0, "", &bi, err, sizeof(err));

	if (ret != want)
		fail_msg("got %d (%s), want %d", ret, err, want);
	if (needle && !strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void test_pvh_two_regions(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o = elf_default();
	struct boot_info bi;
	const uint8_t *si, *mm;

	assert_int_equal(elf_load(mem, &o, NULL, 0, "", &bi, NULL, 0), 0);
	si = gpa(mem, KILN_PVH_START_INFO);
	assert_int_equal(get32(si, SI_MEMMAP_ENTRIES), 5);
	mm = gpa(mem, get64(si, SI_MEMMAP));
	assert_memmap(mm + 72, 1 * MiB, 63 * MiB, 1);
	assert_memmap(mm + 96, 4 * GiB, 16 * MiB, 1);

	/* A segment in the high region is RAM, but the 32-bit entry cannot be in it. */
	o.paddr = 4 * GiB + 1 * MiB;
	o.descsz = 8;
	o.entry = o.paddr;
	expect_elf(mem, &o, -EINVAL, "not a 32-bit address");
	o.entry = 16 * MiB;
	expect_elf(mem, &o, -EINVAL, "outside every PT_LOAD");
}

static void test_pvh_notes(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o;
	char err[256];
	struct boot_info bi;

	o = elf_default();
	o.no_note = true;
	assert_int_equal(elf_load(mem, &o, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ELF kernel has no PVH entry note");
	o = elf_default();
	o.name = "Xem";
	expect_elf(mem, &o, -EINVAL, "no PVH entry note");
	o = elf_default();
	o.type = 17;
	expect_elf(mem, &o, -EINVAL, "no PVH entry note");
	o = elf_default();
	o.name = "Xe";
	o.namesz = 3;
	expect_elf(mem, &o, -EINVAL, "no PVH entry note");
	for (uint32_t sz = 0; sz <= 24; sz++) {
		if (sz == 4 || sz == 8)
			continue;
		o = elf_default();
		o.descsz = sz;
		expect_elf(mem, &o, -EINVAL, sz ? "-byte descriptor" : "descriptor");
	}
	o = elf_default();
	o.descsz = 8;
	o.entry = 1ULL << 32;
	expect_elf(mem, &o, -EINVAL, "not a 32-bit address");
	o = elf_default();
	o.entry = 16 * MiB + 16384; /* one past the segment */
	expect_elf(mem, &o, -EINVAL, "outside every PT_LOAD");
}

static void test_pvh_note_sizes_past_segment(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o = elf_default();
	size_t len, note = PH_OFF(ELF_PHNUM);
	uint8_t *k = elf_build(&o, &len);
	struct boot_info bi;
	char err[256];

	put32(k, note, 0xffffffff); /* n_namesz */
	assert_int_equal(elf_load_bytes(mem, k, len, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "runs past its PT_NOTE segment"));
	put32(k, note, 4);
	put32(k, note + 4, 0xfffffffc); /* n_descsz */
	assert_int_equal(elf_load_bytes(mem, k, len, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	put32(k, note + 4, 5); /* one byte past the segment */
	assert_int_equal(elf_load_bytes(mem, k, len, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	put32(k, note + 4, 4);
	put64(k, PH_OFF(PH_NOTE) + offsetof(Elf64_Phdr, p_filesz), 0xffffffffffffff00);
	assert_int_equal(elf_load_bytes(mem, k, len, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	put64(k, PH_OFF(PH_NOTE) + offsetof(Elf64_Phdr, p_filesz), 11); /* shorter than a header */
	assert_int_equal(elf_load_bytes(mem, k, len, NULL, 0, "", &bi, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ELF kernel has no PVH entry note");
	put64(k, PH_OFF(PH_NOTE) + offsetof(Elf64_Phdr, p_filesz), 20);
	assert_int_equal(elf_load_bytes(mem, k, len, NULL, 0, "", &bi, err, sizeof(err)), 0);
	free(k);
}

static void test_pvh_bad_elf_headers(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o = elf_default();
	size_t len;
	uint8_t *k = elf_build(&o, &len), *copy = malloc(len);
	struct boot_info bi;
	char err[256];
	const struct { size_t off; size_t size; uint64_t value; const char *needle; } bad[] = {
		{ EI_CLASS, 1, ELFCLASS32, "64-bit" },
		{ EI_DATA, 1, ELFDATA2MSB, "little-endian" },
		{ offsetof(Elf64_Ehdr, e_machine), 2, EM_386, "x86-64" },
		{ offsetof(Elf64_Ehdr, e_type), 2, ET_DYN, "x86-64" },
		{ offsetof(Elf64_Ehdr, e_phentsize), 2, 32, "e_phentsize" },
		{ offsetof(Elf64_Ehdr, e_phnum), 2, 0, "e_phnum" },
		{ offsetof(Elf64_Ehdr, e_phnum), 2, PN_XNUM, "e_phnum" },
		{ offsetof(Elf64_Ehdr, e_phnum), 2, 0xfffe, "program headers" },
		{ offsetof(Elf64_Ehdr, e_phoff), 8, UINT64_MAX - 8, "program headers" },
		{ offsetof(Elf64_Ehdr, e_phoff), 8, UINT64_MAX - 3 * 56 + 1, "program headers" },
		{ offsetof(Elf64_Ehdr, e_phoff), 8, 1ULL << 63, "program headers" },
		{ PH_OFF(PH_LOAD) + offsetof(Elf64_Phdr, p_offset), 8, UINT64_MAX - 4, "runs past the end" },
		{ PH_OFF(PH_LOAD) + offsetof(Elf64_Phdr, p_filesz), 8, UINT64_MAX, "runs past the end" },
		{ PH_OFF(PH_NOTE) + offsetof(Elf64_Phdr, p_offset), 8, UINT64_MAX - 2, "runs past the end" },
		{ PH_OFF(PH_LOAD) + offsetof(Elf64_Phdr, p_memsz), 8, 100, "p_filesz" },
		{ PH_OFF(PH_LOAD) + offsetof(Elf64_Phdr, p_paddr), 8, 0x8000, "below 1 MiB" },
		{ PH_OFF(PH_LOAD) + offsetof(Elf64_Phdr, p_paddr), 8, 0, "below 1 MiB" },
		{ PH_OFF(PH_LOAD) + offsetof(Elf64_Phdr, p_type), 4, PT_NULL, "no PT_LOAD" },
	};

	assert_non_null(copy);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(copy, k, len);
		memcpy(copy + bad[i].off, &bad[i].value, bad[i].size);
		assert_int_equal(elf_load_bytes(mem, copy, len, NULL, 0, "", &bi, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, bad[i].needle))
			fail_msg("case %zu: error \"%s\" does not mention \"%s\"", i, err, bad[i].needle);
	}
	assert_int_equal(gpa(mem, 16 * MiB)[0], 0); /* nothing was loaded */
	free(copy);
	free(k);
}

static void test_pvh_load_outside_ram(void **state)
{
	struct guest_mem *mem = *state; /* 64 MiB */
	struct elf o;
	const uint64_t bad_paddr[] = { 63 * MiB, 64 * MiB, 3 * GiB, 4 * GiB, UINT64_MAX - 0x1000,
				       UINT64_MAX };

	for (size_t i = 0; i < sizeof(bad_paddr) / sizeof(bad_paddr[0]); i++) {
		o = elf_default();
		o.paddr = bad_paddr[i];
		o.memsz = 2 * MiB;
		o.entry = 16 * MiB;
		expect_elf(mem, &o, -ENOSPC, "not inside guest RAM");
	}
	/* The last byte of RAM is fine. */
	o = elf_default();
	o.paddr = 64 * MiB - 16384;
	o.entry = o.paddr;
	expect_elf(mem, &o, 0, NULL);
}

static void test_pvh_cmdline_and_initrd_limits(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o = elf_default();
	struct boot_info bi;
	char err[256], *big = malloc(KILN_CMDLINE_MAX + 1);
	uint8_t *initrd = calloc(1, 48 * MiB);

	assert_non_null(big);
	assert_non_null(initrd);
	memset(big, 'c', KILN_CMDLINE_MAX);
	big[KILN_CMDLINE_MAX] = 0;
	assert_int_equal(elf_load(mem, &o, NULL, 0, big, &bi, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "command line is 65536 bytes, kiln allows 65535");
	big[KILN_CMDLINE_MAX - 1] = 0;
	assert_int_equal(elf_load(mem, &o, NULL, 0, big, &bi, err, sizeof(err)), 0);
	assert_int_equal(gpa(mem, KILN_CMDLINE + KILN_CMDLINE_MAX - 1)[0], 0);

	/* The kernel ends at 16 MiB + 16 KiB; 48 MiB does not fit above it in 64 MiB. */
	assert_int_equal(elf_load(mem, &o, initrd, 48 * MiB, "", &bi, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "initrd (50331648 bytes) does not fit between the kernel's end 0x1004000 and the end of low RAM 0x4000000 with 64 MiB of RAM");
	assert_int_equal(elf_load(mem, &o, initrd, 48 * MiB - 16384, "", &bi, err, sizeof(err)), 0);
	assert_int_equal(bi.initrd_gpa, 16 * MiB + 16384);
	free(initrd);
	free(big);
}

static void test_pvh_truncated_every_length(void **state)
{
	struct guest_mem *mem = *state;
	struct elf o = elf_default();
	size_t len;
	uint8_t *k;
	struct boot_info bi;

	o.filesz = 256;
	o.memsz = 512;
	o.gnu_note_first = true;
	k = elf_build(&o, &len);
	truncate_everywhere(mem, k, len);
	assert_int_equal(gpa(mem, 16 * MiB)[0], 0);
	assert_int_equal(gpa(mem, KILN_PVH_START_INFO)[0], 0);
	assert_int_equal(elf_load_bytes(mem, k, len, NULL, 0, "", &bi, NULL, 0), 0);
	free(k);
}

/* ---- format detection, e820, real kernel -------------------------------------------------- */

static void test_not_a_kernel(void **state)
{
	struct guest_mem *mem = *state;
	uint8_t junk[4096];
	struct boot_input in = { .kernel = junk, .kernel_len = sizeof(junk) };
	struct boot_info bi;
	char err[256], tiny[8];

	memset(junk, 0x41, sizeof(junk));
	assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a bzImage or ELF vmlinux"));
	assert_int_equal(boot_load(mem, &in, &bi, tiny, sizeof(tiny)), -EINVAL);
	assert_string_equal(tiny, "not a b"); /* truncated, still terminated */
	in = (struct boot_input){ 0 };
	assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a bzImage or ELF vmlinux"));
	in = (struct boot_input){ .kernel = junk, .kernel_len = sizeof(junk), .initrd_len = 5 };
	assert_int_equal(boot_load(mem, &in, &bi, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "initrd"));
}

static void test_e820_build(void **state)
{
	struct guest_mem *mem = mem_new(64 * MiB, 16 * MiB);
	struct boot_e820_entry table[8];

	memset(table, 0xff, sizeof(table));
	assert_int_equal(boot_e820_build(mem, table, 8), 5);
	assert_e820_64m(table);
	assert_e820(&table[4], 4 * GiB, 16 * MiB, E820_RAM);
	assert_int_equal(table[5].type, 0xffffffff); /* untouched */
	memset(table, 0xff, sizeof(table));
	assert_int_equal(boot_e820_build(mem, table, 2), 2);
	assert_e820(&table[1], KILN_EBDA_START, 0xA0000 - KILN_EBDA_START, E820_RESERVED);
	assert_int_equal(table[2].type, 0xffffffff);
	assert_int_equal(boot_e820_build(mem, table, 0), 0);
	mem->nr_regions = 1;
	assert_int_equal(boot_e820_build(mem, table, 8), 4);
	mem->nr_regions = 2;
	mem_free(mem);
}

static uint8_t *read_whole_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		fail_msg("KILN_TEST_KERNEL=%s: cannot open", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void test_real_bzimage(void **state)
{
	struct guest_mem *mem = *state; /* 256 MiB */
	const char *path = getenv("KILN_TEST_KERNEL");
	uint8_t initrd[8192];
	struct boot_input in = { .initrd = initrd, .initrd_len = sizeof(initrd),
				 .cmdline = "console=ttyS0 reboot=k panic=-1", .rsdp_gpa = 0xE0000 };
	struct boot_info bi;
	struct boot_params bp;
	char err[256];
	uint8_t *k;
	size_t setup, pm_len;
	uint64_t pref, align, init_size, load, start, footprint;
	int ret;

	if (!path || !*path)
		skip();
	k = read_whole_file(path, &in.kernel_len);
	in.kernel = k;
	memset(initrd, 0x99, sizeof(initrd));
	ret = boot_load(mem, &in, &bi, err, sizeof(err));
	if (ret)
		fail_msg("%s: %d %s", path, ret, err);

	assert_true(get16(k, 0x206) >= 0x020c);
	setup = ((size_t)(k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
	pm_len = (size_t)get32(k, 0x1f4) * 16;
	pref = get64(k, 0x258);
	align = get32(k, 0x230);
	init_size = get32(k, 0x260);
	footprint = init_size > pm_len ? init_size : pm_len;
	load = k[0x234] && pref >= 1 * MiB && pref % align == 0 && pref + footprint <= 256 * MiB
		       ? pref : 1 * MiB;
	start = k[0x234] ? (load + align - 1) / align * align : load;
	if (pref > start)
		start = pref;

	assert_int_equal(bi.protocol, BOOT_LINUX_64);
	assert_int_equal(bi.entry, load + 0x200);
	assert_int_equal(bi.kernel_end, start + footprint);
	assert_memory_equal(gpa(mem, load), k + setup, pm_len);
	assert_true(bi.initrd_gpa >= bi.kernel_end);
	assert_int_equal(bi.initrd_gpa % 4096, 0);
	assert_true(bi.initrd_gpa + sizeof(initrd) <= 256 * MiB);
	assert_memory_equal(gpa(mem, bi.initrd_gpa), initrd, sizeof(initrd));

	bp = zero_page(mem);
	assert_int_equal(bp.hdr.version, get16(k, 0x206));
	assert_int_equal(bp.hdr.header, 0x53726448);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_true(bp.hdr.xloadflags & XLF_KERNEL_64);
	assert_int_equal(bp.hdr.code32_start, load);
	assert_int_equal(bp.hdr.cmd_line_ptr, KILN_CMDLINE);
	assert_int_equal(bp.hdr.ramdisk_image, bi.initrd_gpa);
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp.e820_entries, 4);
	assert_int_equal(bp.e820_table[3].addr + bp.e820_table[3].size, 256 * MiB);
	assert_string_equal((const char *)gpa(mem, KILN_CMDLINE), in.cmdline);
	if (bp.hdr.version >= 0x020e)
		assert_int_equal(bp.acpi_rsdp_addr, 0xE0000);
	print_message("%s: protocol %u.%02u, loaded at 0x%llx, entry 0x%llx, kernel ends 0x%llx\n",
		      path, bp.hdr.version >> 8, bp.hdr.version & 0xff, (unsigned long long)load,
		      (unsigned long long)bi.entry, (unsigned long long)bi.kernel_end);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bzimage_loads_at_1mib, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_relocatable_loads_at_pref_address, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_misaligned_pref_address, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_kernel_too_big, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_initrd_below_initrd_addr_max, setup_256m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_initrd_too_large, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_cmdline_limit, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_rsdp_needs_protocol_2_14, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_trailer_not_loaded, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_partial_last_paragraph, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_two_regions, setup_two_regions, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_bad_headers, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_setup_sects_past_end, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_truncated_every_length, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_loads, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_without_initrd_and_8_byte_note, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_two_regions, setup_two_regions, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_notes, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_note_sizes_past_segment, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_bad_elf_headers, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_load_outside_ram, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_cmdline_and_initrd_limits, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_truncated_every_length, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_kernel, setup_64m, teardown),
		cmocka_unit_test(test_e820_build),
		cmocka_unit_test_setup_teardown(test_real_bzimage, setup_256m, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
