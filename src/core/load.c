/* SPDX-License-Identifier: Apache-2.0 */
/* load — the guest image of a fresh VM: ACPI tables, boot page tables, kernel, initrd and
 * command line laid out in guest memory before any vCPU exists. See vm_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kiln/acpi.h"
#include "kiln/fw_cfg.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/x86.h"
#include "vm_internal.h"

#define FILE_MAX_BYTES (1ULL << 32)
#define ROM_SLOT GUEST_MEM_MAX_REGIONS /* the KVM memory slot after guest RAM's */
#define VARS_SLOT (ROM_SLOT + 1)       /* a UEFI variable store, below the code */

/* Map the whole regular file @path, the VM's @what (configuration input @input), read-only
 * (MAP_POPULATE: one pass through the page cache, no heap copy); unmap with munmap(*data, *len)
 * when *len is not 0. */
static int map_file(int input, const char *what, const char *path, const uint8_t **data,
		    size_t *len, struct error *e)
{
	struct stat st;
	void *map;
	int err, fd = open(path, O_RDONLY | O_CLOEXEC);

	*data = NULL;
	*len = 0;
	if (fd < 0)
		return vm_fail(e, input, errno == ENOENT || errno == ENOTDIR || errno == EACCES
						 ? ERROR_USAGE : ERROR_RUNTIME,
			       "%s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX_BYTES) {
		close(fd);
		return vm_fail(e, input, ERROR_USAGE, "%s %s: not a regular file of at most 4 GiB",
			       what, path);
	}
	if (st.st_size == 0) {
		close(fd);
		*data = (const uint8_t *)"";
		return 0;
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	err = errno;
	close(fd);
	if (map == MAP_FAILED)
		return vm_fail(e, input, ERROR_RUNTIME, "%s %s: mmap: %s", what, path, strerror(err));
	*data = map;
	*len = st.st_size;
	return 0;
}

bool vm_kernel_is_multiboot(const char *path)
{
	uint8_t head[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, head, sizeof(head), 0);

	if (fd >= 0)
		close(fd);
	return n > 0 && boot_is_multiboot(head, (size_t)n);
}

/* A multiboot kernel's modules: cfg->initrd_path split as QEMU splits it (boot_modules_split),
 * each file mapped; its string is the whole entry ("path args"). @list holds the split text;
 * unmap with unmap_modules() whatever the result. */
struct modules {
	char list[4096];
	char *entry[BOOT_MAX_MODULES];
	struct boot_module mod[BOOT_MAX_MODULES];
	unsigned nr;
};

static int map_modules(const char *initrd, struct modules *m, struct error *e)
{
	int n;

	if (snprintf(m->list, sizeof(m->list), "%s", initrd) >= (int)sizeof(m->list))
		return vm_fail(e, VM_INPUT_INITRD, ERROR_USAGE, "modules: longer than %zu bytes",
			       sizeof(m->list) - 1);
	n = boot_modules_split(m->list, m->entry, BOOT_MAX_MODULES);
	if (n < 0)
		return vm_fail(e, VM_INPUT_INITRD, ERROR_USAGE, "\"%s\": %s", initrd,
			       n == -E2BIG ? "more modules than kiln takes (64)"
					   : "a module entry is empty or starts with a space");
	for (; m->nr < (unsigned)n; m->nr++) {
		char path[sizeof(m->list)], *space;
		int ret;

		snprintf(path, sizeof(path), "%s", m->entry[m->nr]);
		space = strchr(path, ' ');
		if (space)
			*space = 0;
		m->mod[m->nr].cmdline = m->entry[m->nr];
		ret = map_file(VM_INPUT_INITRD, "module", path, &m->mod[m->nr].data,
			       &m->mod[m->nr].len, e);
		if (ret)
			return ret;
	}
	return 0;
}

static void unmap_modules(struct modules *m)
{
	for (unsigned i = 0; i < m->nr; i++)
		if (m->mod[i].len)
			munmap((void *)m->mod[i].data, m->mod[i].len);
}

int vm_load_guest(struct vm *vm, const struct vm_config *cfg, const struct acpi_config *acpi,
		  const char *cmdline, struct error *e)
{
	struct boot_input in = { .cmdline = cmdline, .kernel_name = cfg->kernel_path };
	const uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_len = 0, initrd_len = 0;
	struct modules *mods;
	bool multiboot;
	char why[256];
	int ret;

	ret = acpi_build(&vm->mem, KILN_ACPI_START, KILN_ACPI_END - KILN_ACPI_START, acpi,
			 &in.rsdp_gpa);
	if (ret)
		return error_set(e, ERROR_RUNTIME, "ACPI tables: %s", strerror(-ret));
	if (x86_boot_write_tables(&vm->mem))
		return error_set(e, ERROR_RUNTIME, "boot page tables do not fit in guest memory");
	if (!(mods = calloc(1, sizeof(*mods))))
		return error_set(e, ERROR_RUNTIME, "out of memory");
	ret = map_file(VM_INPUT_KERNEL, "kernel", cfg->kernel_path, &kernel, &kernel_len, e);
	multiboot = !ret && boot_is_multiboot(kernel, kernel_len);
	if (!ret && cfg->initrd_path && multiboot)
		ret = map_modules(cfg->initrd_path, mods, e);
	else if (!ret && cfg->initrd_path)
		ret = map_file(VM_INPUT_INITRD, "initrd", cfg->initrd_path, &initrd, &initrd_len, e);
	if (!ret) {
		in.kernel = kernel;
		in.kernel_len = kernel_len;
		in.initrd = initrd;
		in.initrd_len = initrd_len;
		in.modules = mods->mod;
		in.nr_modules = mods->nr;
		ret = boot_load(&vm->mem, &in, &vm->boot, why, sizeof(why));
		if (ret == -E2BIG)
			vm_fail(e, VM_INPUT_CMDLINE, ERROR_USAGE, "kernel command line: %s", why);
		else if (ret && multiboot && strstr(why, "module"))
			vm_fail(e, VM_INPUT_INITRD, ERROR_USAGE, "%s", why);
		else if (ret == -ENOSPC && cfg->initrd_path && strstr(why, "initrd"))
			vm_fail(e, VM_INPUT_INITRD, ERROR_USAGE, "initrd %s: %s", cfg->initrd_path, why);
		else if (ret)
			vm_fail(e, VM_INPUT_KERNEL, ERROR_USAGE, "kernel %s: %s", cfg->kernel_path, why);
	}
	if (kernel_len)
		munmap((void *)kernel, kernel_len);
	if (initrd_len)
		munmap((void *)initrd, initrd_len);
	unmap_modules(mods);
	free(mods);
	return ret;
}

/* The firmware's code, the whole image @fw (@len bytes, checked), copied into vm->rom and
 * mapped read-only (KVM_MEM_READONLY) so that it ends at 4 GiB. */
static int map_rom(struct vm *vm, const uint8_t *fw, size_t len, struct error *e)
{
	struct kvm_userspace_memory_region slot = { .slot = ROM_SLOT, .flags = KVM_MEM_READONLY };

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
		return error_set(e, ERROR_RUNTIME, "firmware: this host's KVM has no read-only memory "
				 "slots (KVM_CAP_READONLY_MEM)");
	vm->rom = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->rom == MAP_FAILED) {
		vm->rom = NULL;
		return error_set(e, ERROR_RUNTIME, "firmware: out of memory for %zu bytes", len);
	}
	vm->rom_len = len;
	memcpy(vm->rom, fw, len);
	slot.guest_phys_addr = BOOT_FIRMWARE_TOP - len;
	slot.memory_size = len;
	slot.userspace_addr = (uintptr_t)vm->rom;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return error_set(e, ERROR_RUNTIME, "firmware: KVM_SET_USER_MEMORY_REGION at 0x%llx: %s",
				 slot.guest_phys_addr, strerror(errno));
	return 0;
}

/* UEFI firmware's two flash devices and the variable store's memory slot. */
struct vm_flash {
	struct vm *vm;
	struct pflash code, vars;
	uint8_t *vars_mem;      /* the VARS file mapped (MAP_SHARED, or MAP_PRIVATE when private) */
	size_t vars_len;        /* bytes */
	uint64_t vars_gpa;
	struct log_once slot_failed;
};

/* pflash set_array for the variable store: its read-only slot in read-array mode, none in the
 * command modes, so that reads exit to pflash_read(). A vCPU thread (the vcpu seccomp filter
 * allows KVM_SET_USER_MEMORY_REGION). */
static void vars_set_array(void *ctx, bool array)
{
	struct vm_flash *f = ctx;
	struct kvm_userspace_memory_region slot = {
		.slot = VARS_SLOT, .flags = KVM_MEM_READONLY, .guest_phys_addr = f->vars_gpa,
		.memory_size = array ? f->vars_len : 0, .userspace_addr = (uintptr_t)f->vars_mem };

	if (ioctl(f->vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0 &&
	    log_once_first(&f->slot_failed))
		log_err("UEFI variable flash: KVM_SET_USER_MEMORY_REGION (%s): %s",
			array ? "map" : "unmap", strerror(errno));
}

void vm_flash_free(struct vm *vm)
{
	struct vm_flash *f = vm->flash;

	if (!f)
		return;
	pflash_destroy(&f->code);
	pflash_destroy(&f->vars);
	if (f->vars_mem)
		munmap(f->vars_mem, f->vars_len);
	free(f);
	vm->flash = NULL;
}

/* Map cfg->firmware_vars_path for the VM: shared and writable, or a private copy. */
static int map_vars(struct vm_flash *f, const struct vm_config *cfg, size_t code_len,
		    struct error *e)
{
	const char *path = cfg->firmware_vars_path;
	int fd = open(path, (cfg->firmware_vars_private ? O_RDONLY : O_RDWR) | O_CLOEXEC), err;
	struct stat st;
	char why[200];

	if (fd < 0)
		return vm_fail(e, VM_INPUT_FIRMWARE, errno == ENOENT || errno == ENOTDIR ||
			       errno == EACCES || errno == EROFS ? ERROR_USAGE : ERROR_RUNTIME,
			       "vars %s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return vm_fail(e, VM_INPUT_FIRMWARE, ERROR_USAGE, "vars %s: not a regular file", path);
	}
	if (boot_uefi_vars_check(code_len, (size_t)st.st_size, why, sizeof(why))) {
		close(fd);
		return vm_fail(e, VM_INPUT_FIRMWARE, ERROR_USAGE, "vars %s: %s", path, why);
	}
	f->vars_mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			   cfg->firmware_vars_private ? MAP_PRIVATE : MAP_SHARED, fd, 0);
	err = errno;
	close(fd);
	if (f->vars_mem == MAP_FAILED) {
		f->vars_mem = NULL;
		return vm_fail(e, VM_INPUT_FIRMWARE, ERROR_RUNTIME, "vars %s: mmap: %s", path,
			       strerror(err));
	}
	f->vars_len = (size_t)st.st_size;
	return 0;
}

/* vm_load_firmware() for UEFI: the code read-only at 4 GiB - its size, the variable store
 * below it, both on the MMIO bus as flash (QEMU 7.2 hw/i386/pc_sysfw.c). */
static int load_uefi(struct vm *vm, const struct vm_config *cfg, bool boot, const uint8_t *code,
		     size_t code_len, struct error *e)
{
	struct vm_flash *f;
	char why[160];
	int ret = boot_uefi_code_check(code_len, why, sizeof(why));

	if (ret)
		return vm_fail(e, VM_INPUT_FIRMWARE, ERROR_USAGE, "uefi code %s: %s",
			       cfg->firmware_path, why);
	if (!(f = vm->flash = calloc(1, sizeof(*f))))
		return error_set(e, ERROR_RUNTIME, "firmware: out of memory");
	f->vm = vm;
	ret = map_vars(f, cfg, code_len, e);
	if (!ret)
		ret = map_rom(vm, code, code_len, e);
	if (ret)
		return ret;
	f->vars_gpa = BOOT_FIRMWARE_TOP - code_len - f->vars_len;
	pflash_init(&f->code, "UEFI code", vm->rom, code_len, true, NULL, NULL);
	pflash_init(&f->vars, "UEFI variables", f->vars_mem, f->vars_len, false, vars_set_array, f);
	vars_set_array(f, true);
	ret = bus_register(&vm->mmio, BOOT_FIRMWARE_TOP - code_len, code_len, &pflash_bus_ops,
			   &f->code, "uefi-code");
	if (!ret)
		ret = bus_register(&vm->mmio, f->vars_gpa, f->vars_len, &pflash_bus_ops, &f->vars,
				   "uefi-vars");
	if (ret)
		return error_set(e, ERROR_RUNTIME, "firmware: flash at 0x%llx: %s",
				 (unsigned long long)f->vars_gpa, strerror(-ret));
	if (boot) /* the bootstrap processor starts at the reset vector, 16 bytes below 4 GiB */
		vm->boot = (struct boot_info){ .protocol = BOOT_FIRMWARE,
					       .entry = BOOT_FIRMWARE_TOP - 16 };
	return 0;
}

int vm_fw_cfg_kernel(struct fw_cfg *fw, const struct vm_config *cfg, const char *cmdline,
		     struct error *e)
{
	const uint8_t *kernel, *initrd = NULL;
	size_t kernel_len, initrd_len = 0, setup;
	char why[200];
	int ret = map_file(VM_INPUT_KERNEL, "kernel", cfg->kernel_path, &kernel, &kernel_len, e);

	if (ret)
		return ret;
	if (boot_bzimage_setup_len(kernel, kernel_len, &setup, why, sizeof(why))) {
		ret = vm_fail(e, VM_INPUT_KERNEL, ERROR_USAGE, "kernel %s: %s (firmware boots a "
			      "bzImage only)", cfg->kernel_path, why);
	} else if (kernel_len > FW_CFG_MAX_ITEM_SIZE) {
		ret = vm_fail(e, VM_INPUT_KERNEL, ERROR_USAGE, "kernel %s: over %u MiB, more than "
			      "fw_cfg carries", cfg->kernel_path, FW_CFG_MAX_ITEM_SIZE >> 20);
	} else if (cfg->initrd_path) {
		ret = map_file(VM_INPUT_INITRD, "initrd", cfg->initrd_path, &initrd, &initrd_len, e);
		if (!ret && initrd_len > FW_CFG_MAX_ITEM_SIZE)
			ret = vm_fail(e, VM_INPUT_INITRD, ERROR_USAGE, "initrd %s: over %u MiB, more "
				      "than fw_cfg carries", cfg->initrd_path,
				      FW_CFG_MAX_ITEM_SIZE >> 20);
	}
	if (!ret) {
		ret = fw_cfg_add_le(fw, FW_CFG_SETUP_SIZE, setup, 4) ?:
		      fw_cfg_add(fw, FW_CFG_SETUP_DATA, kernel, (uint32_t)setup) ?:
		      fw_cfg_add_le(fw, FW_CFG_KERNEL_SIZE, kernel_len - setup, 4) ?:
		      fw_cfg_add(fw, FW_CFG_KERNEL_DATA, kernel + setup, (uint32_t)(kernel_len - setup)) ?:
		      fw_cfg_add_le(fw, FW_CFG_INITRD_SIZE, initrd_len, 4) ?:
		      fw_cfg_add(fw, FW_CFG_INITRD_DATA, initrd, (uint32_t)initrd_len) ?:
		      fw_cfg_add_le(fw, FW_CFG_CMDLINE_SIZE, strlen(cmdline) + 1, 4) ?:
		      fw_cfg_add(fw, FW_CFG_CMDLINE_DATA, cmdline, (uint32_t)strlen(cmdline) + 1);
		if (ret)
			error_set(e, ERROR_RUNTIME, "fw_cfg kernel items: %s", strerror(-ret));
	}
	if (initrd_len)
		munmap((void *)initrd, initrd_len);
	if (kernel_len)
		munmap((void *)kernel, kernel_len);
	return ret;
}

int vm_load_firmware(struct vm *vm, const struct vm_config *cfg, bool boot, struct error *e)
{
	const uint8_t *fw;
	size_t len;
	char why[160];
	int ret = map_file(VM_INPUT_FIRMWARE, "firmware", cfg->firmware_path, &fw, &len, e);

	if (ret)
		return ret;
	if (cfg->firmware_vars_path) {
		ret = load_uefi(vm, cfg, boot, fw, len, e);
		goto out_unmap;
	}
	ret = boot_firmware_check(len, why, sizeof(why));
	if (ret) {
		vm_fail(e, VM_INPUT_FIRMWARE, ERROR_USAGE, "firmware %s: %s", cfg->firmware_path, why);
		goto out_unmap;
	}
	ret = map_rom(vm, fw, len, e);
	if (!ret && boot && boot_load_firmware(&vm->mem, fw, len, &vm->boot))
		ret = error_set(e, ERROR_RUNTIME, "firmware: the BIOS area below 1 MiB is not RAM");
out_unmap:
	if (len)
		munmap((void *)fw, len);
	return ret;
}
