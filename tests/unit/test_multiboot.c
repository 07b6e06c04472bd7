/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the Multiboot v1 loader (Multiboot 0.6.96 §3.1-§3.3) through boot_load(), on
 * images built here: ELF32 and a.out-kludge kernels, the info structure's layout, modules, and
 * hostile headers. */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/boot.h"
#include "kiln/guest_mem.h"
#include "kiln/layout.h"

#define MiB (1ULL << 20)
#define RAM (64 * MiB)
#define MB_MAGIC 0x1BADB002u
#define HDR 0x40 /* where the images below put the multiboot header */

static struct guest_mem *mem_new(void)
{
	struct guest_mem *mem = calloc(1, sizeof(*mem));

	assert_non_null(mem);
	mem->region[0] = (struct guest_mem_region){ .gpa = 0, .size = RAM, .hva = calloc(1, RAM) };
	assert_non_null(mem->region[0].hva);
	mem->nr_regions = 1;
	mem->size = RAM;
	return mem;
}

static int setup(void **state) { *state = mem_new(); return 0; }

static int teardown(void **state)
{
	struct guest_mem *mem = *state;

	free(mem->region[0].hva);
	free(mem);
	return 0;
}

static uint8_t *gpa(const struct guest_mem *mem, uint64_t a) { return mem->region[0].hva + a; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void header(uint8_t *img, uint32_t flags)
{
	put32(img + HDR, MB_MAGIC);
	put32(img + HDR + 4, flags);
	put32(img + HDR + 8, -(MB_MAGIC + flags));
}

/* An a.out-kludge image of @len bytes: text from file offset 0 loaded at 2 MiB, so header_addr
 * is 2 MiB + HDR; bss to 2 MiB + 0x3000; entry 2 MiB + 0x100. */
static uint8_t *aout_image(size_t len)
{
	uint8_t *img = calloc(1, len);

	assert_non_null(img);
	for (size_t i = HDR + 32; i < len; i++)
		img[i] = (uint8_t)(i * 7);
	header(img, 0x00010003);
	put32(img + HDR + 12, 2 * MiB + HDR);
	put32(img + HDR + 16, 2 * MiB);
	put32(img + HDR + 20, 0);
	put32(img + HDR + 24, 2 * MiB + 0x3000);
	put32(img + HDR + 28, 2 * MiB + 0x100);
	return img;
}

/* An ELF32 image: one PT_LOAD of 0x200 file bytes at file offset 0x1000, linked at virtual
 * 0xC0100000, loaded at physical 1 MiB, 0x800 bytes in memory; entry virtual 0xC0100010. */
static uint8_t *elf32_image(size_t *len)
{
	uint8_t *img = calloc(1, 0x1200);
	Elf32_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
			  .e_entry = 0xC0100010, .e_phoff = 0x100, .e_ehsize = sizeof(Elf32_Ehdr),
			  .e_phentsize = sizeof(Elf32_Phdr), .e_phnum = 1 };
	Elf32_Phdr ph = { .p_type = PT_LOAD, .p_offset = 0x1000, .p_vaddr = 0xC0100000,
			  .p_paddr = 0x100000, .p_filesz = 0x200, .p_memsz = 0x800 };

	assert_non_null(img);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + 0x100, &ph, sizeof(ph));
	memset(img + 0x1000, 0xcc, 0x200);
	header(img, 0x3);
	*len = 0x1200;
	return img;
}

static int load(const struct guest_mem *mem, const uint8_t *k, size_t len,
		const struct boot_module *mods, unsigned n, struct boot_info *info, char *err)
{
	struct boot_input in = { .kernel = k, .kernel_len = len, .cmdline = "a=b",
				 .kernel_name = "/k/mb.elf", .modules = mods, .nr_modules = n };

	return boot_load(mem, &in, info, err, 256);
}

static void test_elf32_info_and_modules(void **state)
{
	struct guest_mem *mem = *state;
	struct boot_e820_entry e820[16];
	unsigned n = boot_e820_build(mem, e820, 16);
	const uint8_t mod0[] = "first module", mod1[5000] = { 1, 2, 3 };
	struct boot_module mods[] = { { mod0, sizeof(mod0), "/m/one x,y" },
				      { mod1, sizeof(mod1), "/m/two" } };
	struct boot_info info;
	char err[256];
	size_t len;
	uint8_t *img = elf32_image(&len), *mbi;

	assert_true(boot_is_multiboot(img, len));
	assert_int_equal(load(mem, img, len, mods, 2, &info, err), 0);
	assert_int_equal(info.protocol, BOOT_MULTIBOOT);
	assert_int_equal(info.entry, 0x100010); /* virtual entry translated to physical */
	assert_int_equal(info.params_gpa, KILN_MULTIBOOT_INFO);
	assert_int_equal(gpa(mem, 0x100000)[0x1ff], 0xcc);
	assert_int_equal(gpa(mem, 0x100000)[0x200], 0); /* bss */
	mbi = gpa(mem, KILN_MULTIBOOT_INFO);
	assert_int_equal(get32(mbi), 0x24d);           /* memory, cmdline, mods, mmap, loader */
	assert_int_equal(get32(mbi + 4), 639);         /* KiB below the EBDA */
	assert_int_equal(get32(mbi + 8), (RAM - MiB) >> 10);
	assert_string_equal((char *)gpa(mem, get32(mbi + 16)), "/k/mb.elf a=b");
	assert_string_equal((char *)gpa(mem, get32(mbi + 64)), "kiln");
	/* modules: page-aligned after the kernel, back to back */
	assert_int_equal(get32(mbi + 20), 2);
	{
		const uint8_t *m = gpa(mem, get32(mbi + 24));

		assert_int_equal(get32(m), 0x101000);
		assert_int_equal(get32(m + 4), 0x101000 + sizeof(mod0));
		assert_string_equal((char *)gpa(mem, get32(m + 8)), "/m/one x,y");
		assert_memory_equal(gpa(mem, 0x101000), mod0, sizeof(mod0));
		assert_int_equal(get32(m + 16), 0x102000);
		assert_int_equal(get32(m + 20), 0x102000 + sizeof(mod1));
		assert_string_equal((char *)gpa(mem, get32(m + 24)), "/m/two");
	}
	/* the memory map is kiln's e820 map, 24-byte entries with size 20 */
	assert_int_equal(get32(mbi + 44), n * 24);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = gpa(mem, get32(mbi + 48) + i * 24);

		assert_int_equal(get32(e), 20);
		assert_int_equal(get64(e + 4), e820[i].addr);
		assert_int_equal(get64(e + 12), e820[i].size);
		assert_int_equal(get32(e + 20), e820[i].type);
	}
	free(img);
}

static void test_aout_kludge(void **state)
{
	struct guest_mem *mem = *state;
	struct boot_info info;
	char err[256];
	uint8_t *img = aout_image(0x2000);

	memset(gpa(mem, 2 * MiB + 0x2000), 0xee, 0x1000); /* the bss must come out zeroed */
	assert_int_equal(load(mem, img, 0x2000, NULL, 0, &info, err), 0);
	assert_int_equal(info.entry, 2 * MiB + 0x100);
	assert_int_equal(info.kernel_end, 2 * MiB + 0x3000);
	assert_memory_equal(gpa(mem, 2 * MiB), img, 0x2000);
	assert_int_equal(gpa(mem, 2 * MiB + 0x2fff)[0], 0);
	assert_int_equal(get32(gpa(mem, KILN_MULTIBOOT_INFO) + 20), 0); /* no modules */
	free(img);
}

static void expect(const struct guest_mem *mem, const uint8_t *img, size_t len, int want,
		   const char *needle)
{
	struct boot_info info;
	char err[256];
	int got = load(mem, img, len, NULL, 0, &info, err);

	if (got != want || !strstr(err, needle))
		fail_msg("want %d \"%s\", got %d \"%s\"", want, needle, got, err);
}

static void test_hostile_headers(void **state)
{
	struct guest_mem *mem = *state;
	uint8_t *img = aout_image(0x2000);
	size_t len;

	put32(img + HDR + 16, 2 * MiB + HDR + 4); /* load_addr above header_addr */
	expect(mem, img, 0x2000, -EINVAL, "header_addr");
	put32(img + HDR + 16, 2 * MiB - 0x1000); /* header would sit before the file's start */
	expect(mem, img, 0x2000, -EINVAL, "header_addr");
	free(img);

	img = aout_image(0x2000);
	put32(img + HDR + 20, 2 * MiB - 1); /* load_end below load_addr */
	expect(mem, img, 0x2000, -EINVAL, "load_end_addr");
	put32(img + HDR + 20, 2 * MiB + 0x4000); /* past the file's end */
	put32(img + HDR + 24, 0);
	expect(mem, img, 0x2000, -EINVAL, "runs past the end");
	put32(img + HDR + 20, 2 * MiB + 0x1000);
	put32(img + HDR + 24, 2 * MiB + 0x800); /* bss_end below the text */
	expect(mem, img, 0x2000, -EINVAL, "bss_end_addr");
	put32(img + HDR + 24, 0xffffff00); /* bss past 4 GiB / RAM */
	expect(mem, img, 0x2000, -ENOSPC, "not inside guest RAM");
	put32(img + HDR + 24, 0);
	put32(img + HDR + 28, 0x10); /* entry outside the image */
	expect(mem, img, 0x2000, -EINVAL, "entry");
	free(img);

	img = aout_image(0x2000);
	put32(img + HDR + 12, 0x1000 + HDR); /* loads below 1 MiB */
	put32(img + HDR + 16, 0x1000);
	put32(img + HDR + 28, 0x1100);
	expect(mem, img, 0x2000, -EINVAL, "below 1 MiB");
	header(img, 0x00010008); /* a required feature kiln does not know */
	expect(mem, img, 0x2000, -EINVAL, "flags 0x10008");
	header(img, 0x00010003); /* the file ends inside the a.out fields: none of them is read */
	expect(mem, img, HDR + 16, -EINVAL, "cut off by the end of the file");
	free(img);

	img = elf32_image(&len);
	header(img, 0x3);
	expect(mem, img, 0x1100, -EINVAL, "runs past the end"); /* truncated segment */
	((Elf32_Phdr *)(img + 0x100))->p_paddr = 0xfffffc00; /* segment crossing 4 GiB */
	expect(mem, img, len, -EINVAL, "not below 4 GiB");
	((Elf32_Phdr *)(img + 0x100))->p_paddr = 0x100000;
	((Elf32_Ehdr *)img)->e_entry = 0x5000; /* entry in no segment */
	expect(mem, img, len, -EINVAL, "outside every PT_LOAD");
	((Elf32_Ehdr *)img)->e_phoff = 0x11f0; /* program headers past the end */
	expect(mem, img, len, -EINVAL, "program headers");
	free(img);

	/* a first segment at physical 0, then one at 1 MiB: the lowest counts, 0 included */
	img = elf32_image(&len);
	((Elf32_Ehdr *)img)->e_phnum = 2;
	memcpy(img + 0x100 + sizeof(Elf32_Phdr), img + 0x100, sizeof(Elf32_Phdr));
	((Elf32_Phdr *)(img + 0x100))->p_paddr = 0;
	((Elf32_Phdr *)(img + 0x100))->p_vaddr = 0xC0000000;
	expect(mem, img, len, -EINVAL, "below 1 MiB");
	free(img);

	/* a checksum that does not add up: no header; an ELF32 is then refused by name */
	img = elf32_image(&len);
	put32(img + HDR + 8, 0);
	assert_false(boot_is_multiboot(img, len));
	expect(mem, img, len, -EINVAL, "32-bit ELF file without a multiboot header");
	free(img);
}

static void test_module_limits(void **state)
{
	struct guest_mem *mem = *state;
	struct boot_module big = { (const uint8_t *)"", RAM, "/huge" };
	struct boot_info info;
	char err[256];
	size_t len;
	uint8_t *img = elf32_image(&len);

	assert_int_equal(load(mem, img, len, &big, 1, &info, err), -ENOSPC);
	assert_non_null(strstr(err, "module 0 \"/huge\""));
	free(img);
	img = aout_image(0x2000);
	memcpy(img + 0x202, "HdrS", 4); /* a bzImage is never taken as multiboot */
	assert_false(boot_is_multiboot(img, 0x2000));
	free(img);
}

static void test_modules_split(void **state)
{
	char a[] = "/a x y,/b,,c,/d", b[] = "/a,", c[] = ",/a", d[] = "/a, x", e[] = "/a,/b,/c";
	char *m[4];

	assert_int_equal(boot_modules_split(a, m, 4), 3);
	assert_string_equal(m[0], "/a x y");
	assert_string_equal(m[1], "/b,c");
	assert_string_equal(m[2], "/d");
	assert_int_equal(boot_modules_split(b, m, 4), -EINVAL);
	assert_int_equal(boot_modules_split(c, m, 4), -EINVAL);
	assert_int_equal(boot_modules_split(d, m, 4), -EINVAL);
	assert_int_equal(boot_modules_split(e, m, 2), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_elf32_info_and_modules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aout_kludge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_module_limits, setup, teardown),
		cmocka_unit_test(test_modules_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
