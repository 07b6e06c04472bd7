/* SPDX-License-Identifier: Apache-2.0 */
/* vm — VM creation and teardown, see include/kiln/vm.h.
 *
 * Creation order keeps "nothing half-started": every user input (files, sizes, counts) is read
 * and checked, and the guest image is fully laid out in memory, before any vCPU exists; a
 * failure releases everything made so far. The other parts of a VM have their own files:
 * interrupt routing (irq.c), the device manager (devmgr.c), the guest image (load.c), the
 * vCPUs (vcpu.c), running, pausing and stopping (run.c), snapshots (snapshot.c) and live
 * migration (migrate.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <asm/bootparam.h>

#include "kiln/acpi.h"
#include "kiln/boot.h"
#include "kiln/fw_cfg.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/table_loader.h"
#include "vm_internal.h"

#define KVM_API_VERSION_EXPECTED 12
/* 3 pages KVM needs on Intel and its identity page table, inside the MMIO hole where QEMU puts
 * them (target/i386/kvm/kvm.c): below the largest firmware image (BOOT_FIRMWARE_MAX) at 4 GiB. */
#define KVM_TSS_GPA 0xfeffd000ULL
#define KVM_IDENTITY_MAP_GPA 0xfeffc000ULL
#define KILN_MAX_CPUS 255                 /* xAPIC IDs in the MADT */
#define KILN_MIN_MEM (16ULL << 20)

int vm_fail(struct error *e, int input, enum error_kind kind, const char *fmt, ...)
{
	va_list ap;

	e->kind = kind;
	e->input = input;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return error_code(e);
}

/* KVM_CHECK_EXTENSION for x86_template_check_caps(); @ctx is the VM. */
static bool kvm_has(void *ctx, uint32_t cap)
{
	return ioctl(((struct vm *)ctx)->kvm_fd, KVM_CHECK_EXTENSION, (unsigned long)cap) > 0;
}

/* Open /dev/kvm and check what @cfg asks of it: the KVM capabilities a custom CPU template
 * adds (Firecracker's kvm_capabilities, at boot and restore alike), and the vCPUs. */
static int check_kvm(struct vm *vm, const struct vm_config *cfg, struct error *e)
{
	uint32_t cap;
	int max, ret;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return error_set(e, ERROR_RUNTIME,
				 "/dev/kvm: %s: this host has no usable KVM; run kiln inside "
				 "scripts/kvm-box (see README.md)", strerror(errno));
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION_EXPECTED)
		return error_set(e, ERROR_RUNTIME, "/dev/kvm: unsupported KVM API version");
	ret = x86_template_check_caps(vm->cpu_template, kvm_has, vm, &cap);
	if (ret == -ENOMEM)
		return error_set(e, ERROR_RUNTIME, "out of memory");
	if (ret)
		return error_set(e, ERROR_USAGE, "Missing KVM capabilities: 0x%" PRIx32 " (this host's "
				 "KVM_CHECK_EXTENSION %" PRIu32 " is 0%s)", cap, cap,
				 vm->cpu_template->nr_caps ? "; see the CPU template's "
				 "kvm_capabilities" : "");
	max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > KILN_MAX_CPUS)
		max = KILN_MAX_CPUS;
	if (cfg->nr_cpus == 0 || cfg->nr_cpus > (unsigned)max)
		return vm_fail(e, VM_INPUT_CPUS, ERROR_USAGE,
			       "%u vCPUs is outside 1..%d (KVM_CAP_MAX_VCPUS)", cfg->nr_cpus, max);
	return 0;
}

/* Limits that need no KVM: CPU count (xAPIC MADT; whole cores with SMT) and memory against
 * the host's RAM. */
static int check_limits(const struct vm_config *cfg, struct error *e)
{
	uint64_t host = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);

	if (cfg->nr_cpus == 0 || cfg->nr_cpus > KILN_MAX_CPUS)
		return vm_fail(e, VM_INPUT_CPUS, ERROR_USAGE, "%u vCPUs is outside 1..%d",
			       cfg->nr_cpus, KILN_MAX_CPUS);
	if (cfg->smt && cfg->nr_cpus > 1 && cfg->nr_cpus % 2)
		return vm_fail(e, VM_INPUT_CPUS, ERROR_USAGE, "%u vCPUs with SMT (two threads per "
			       "core): the count must be 1 or even", cfg->nr_cpus);
	if (cfg->mem_bytes < KILN_MIN_MEM)
		return vm_fail(e, VM_INPUT_MEMORY, ERROR_USAGE,
			       "%" PRIu64 " MiB of memory is less than the %llu MiB minimum",
			       cfg->mem_bytes >> 20, KILN_MIN_MEM >> 20);
	if (cfg->mem_bytes > host)
		return vm_fail(e, VM_INPUT_MEMORY, ERROR_USAGE,
			       "%" PRIu64 " MiB of memory is more than the host's %" PRIu64 " MiB of RAM",
			       cfg->mem_bytes >> 20, host >> 20);
	return 0;
}

/* The static CPU template of a VM that boots must fit this host's CPU (vendor and model), as
 * Firecracker checks before it builds the VM; a custom one fits any CPU; a restore keeps the
 * CPUID its snapshot has. */
static int check_cpu_template(const struct vm_config *cfg, struct error *e)
{
	struct x86_cpu_id host;
	enum x86_template_fit fit;

	if (cfg->custom_template)
		return 0;
	x86_host_cpu_id(&host);
	fit = x86_cpu_template_fit(cfg->cpu_template, &host);
	if (fit == X86_TEMPLATE_FITS)
		return 0;
	return vm_fail(e, VM_INPUT_NONE, ERROR_USAGE, "CPU template %s is for %s CPUs; this host's "
		       "is %s, signature 0x%08" PRIx32 " (%s)",
		       x86_cpu_template_name(cfg->cpu_template),
		       x86_cpu_template_cpus(cfg->cpu_template), host.vendor, host.signature,
		       fit == X86_TEMPLATE_WRONG_VENDOR ? "another vendor" : "another model");
}

int vm_set_memory_slots(struct vm *vm, bool log_dirty)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = i, .guest_phys_addr = vm->mem.region[i].gpa,
			.memory_size = vm->mem.region[i].size,
			.userspace_addr = (uintptr_t)vm->mem.region[i].hva,
			.flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0 };

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return -errno;
	}
	return 0;
}

/* The VM with its interrupt controllers, PIT, GSI routing and memory slots. */
static int create_kvm_vm(struct vm *vm, const struct vm_config *cfg, struct error *e)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	const char *step;
	int ret;

	/* EINTR: seen on the first KVM_CREATE_VM after a guest reset destroyed a VM with io_uring
	 * disks, while their rings' work still drains. */
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		return error_set(e, ERROR_RUNTIME, "KVM_CREATE_VM: %s", strerror(errno));
	step = "KVM_SET_TSS_ADDR";
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
		goto out_errno;
	step = "KVM_SET_IDENTITY_MAP_ADDR";
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ KVM_IDENTITY_MAP_GPA }) < 0)
		goto out_errno;
	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		goto out_errno;
	step = "KVM_CREATE_PIT2";
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		goto out_errno;
	ret = vm_set_gsi_routing(vm);
	if (ret)
		return error_set(e, ERROR_RUNTIME, "KVM_SET_GSI_ROUTING: %s", strerror(-ret));
	ret = vm_set_memory_slots(vm, cfg->track_dirty_pages);
	if (ret)
		return error_set(e, ERROR_RUNTIME, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-ret));
	return 0;
out_errno:
	return error_set(e, ERROR_RUNTIME, "%s: %s", step, strerror(errno));
}

/* Guest RAM: fresh, or (@restore) a snapshot's from @mem; with dirty tracking, its bitmap. */
static int create_memory(struct vm *vm, const struct vm_config *cfg, bool restore,
			 const struct vm_mem_backend *mem, struct error *e)
{
	int ret = restore ? vm_restore_memory(vm, cfg, mem, e) : 0;

	if (!restore && guest_mem_alloc(&vm->mem, cfg->mem_bytes, cfg->huge_pages))
		return vm_fail(e, VM_INPUT_MEMORY, ERROR_RUNTIME, "cannot reserve %" PRIu64
			       " MiB of guest memory%s", cfg->mem_bytes >> 20, cfg->huge_pages ?
			       " in 2 MiB huge pages (the host's pool: /proc/sys/vm/nr_hugepages)" : "");
	if (ret || !cfg->track_dirty_pages)
		return ret;
	vm->track_dirty = vm->user_track_dirty = true;
	vm->diff_ready = restore; /* a restored guest's diffs are against the snapshot */
	vm->dirty = calloc((cfg->mem_bytes / 4096 + 63) / 64, sizeof(uint64_t));
	vm->mem.dirty = vm->dirty;
	return vm->dirty ? 0 : error_set(e, ERROR_RUNTIME, "out of memory for the dirty page bitmap");
}

/* What fw_cfg, when the VM has one, tells the guest (QEMU's items for x86): vCPUs at boot and
 * at most (no hot-plug), RAM in bytes, no display (NOGRAPHIC 1: SeaBIOS then writes its
 * screen to COM1), no boot menu (BOOT_MENU 0, QEMU's default), and the e820 map as the file
 * etc/e820 (QEMU's struct e820_entry: le64 address, le64 length, le32 type, packed); with
 * firmware also kiln's ACPI tables (@acpi) and the etc/table-loader commands that place them
 * (include/kiln/table_loader.h), so the firmware installs kiln's tables instead of its own.
 * Made again on a restore: items are not in snapshots. */
_Static_assert(sizeof(struct boot_e820_entry) == 20, "etc/e820 entries are QEMU's packed layout");

static int add_acpi_files(struct fw_cfg *fw, const struct acpi_config *acpi)
{
	struct acpi_tables t;
	uint8_t *cmds = NULL;
	size_t len;
	int ret = acpi_build_tables(acpi, 0, &t);

	if (!ret)
		ret = table_loader_build(&t, &cmds, &len);
	if (!ret)
		ret = fw_cfg_add_file(fw, TABLE_LOADER_FILE_TABLES, t.tables, (uint32_t)t.len);
	if (!ret)
		ret = fw_cfg_add_file(fw, TABLE_LOADER_FILE_RSDP, t.rsdp, ACPI_RSDP_LEN);
	if (!ret)
		ret = fw_cfg_add_file(fw, TABLE_LOADER_FILE, cmds, (uint32_t)len);
	free(cmds);
	acpi_tables_free(&t);
	return ret;
}

static int fill_fw_cfg(struct vm *vm, const struct vm_config *cfg, const struct acpi_config *acpi,
		       const char *cmdline, struct error *e)
{
	struct fw_cfg *fw = vm_device_find(vm, &fw_cfg_class, NULL);
	struct boot_e820_entry e820[E820_MAX_ENTRIES_ZEROPAGE];
	unsigned n;
	int ret;

	if (!fw)
		return 0;
	n = boot_e820_build(&vm->mem, e820, E820_MAX_ENTRIES_ZEROPAGE);
	ret = fw_cfg_add_le(fw, FW_CFG_NB_CPUS, cfg->nr_cpus, 2);
	if (!ret)
		ret = fw_cfg_add_le(fw, FW_CFG_MAX_CPUS, cfg->nr_cpus, 2);
	if (!ret)
		ret = fw_cfg_add_le(fw, FW_CFG_RAM_SIZE, vm->mem.size, 8);
	if (!ret)
		ret = fw_cfg_add_le(fw, FW_CFG_NOGRAPHIC, 1, 2);
	if (!ret)
		ret = fw_cfg_add_le(fw, FW_CFG_BOOT_MENU, 0, 2);
	if (!ret)
		ret = fw_cfg_add_file(fw, "etc/e820", e820, n * sizeof(e820[0]));
	if (!ret && cfg->firmware_path)
		ret = add_acpi_files(fw, acpi);
	if (ret)
		return error_set(e, ERROR_RUNTIME, "fw_cfg items: %s", strerror(-ret));
	return cfg->firmware_path && cfg->kernel_path ? vm_fw_cfg_kernel(fw, cfg, cmdline, e) : 0;
}

/* The devices and the PCI bus, and what the guest is told of them: ACPI (@acpi) and the
 * kernel command line (@cmdline, KILN_CMDLINE_MAX bytes, the configuration's first). */
static int create_devices(struct vm *vm, const struct vm_config *cfg, struct acpi_config *acpi,
			  char *cmdline, struct error *e)
{
	int ret = pci_bus_create(&vm->host, cfg->firmware_path ? PCI_HOST_I440FX : PCI_HOST_GENERIC,
				 &vm->pci);

	if (ret)
		return error_set(e, ERROR_RUNTIME, "PCI bus: %s", strerror(-ret));
	vm->host.pci = vm->pci;
	ret = devmgr_create(&vm->devices, &vm->host, cfg, e);
	if (ret)
		return ret;
	snprintf(cmdline, KILN_CMDLINE_MAX, "%s", cfg->cmdline);
	devmgr_describe(&vm->devices, vm->pci, acpi, cmdline, KILN_CMDLINE_MAX);
	return fill_fw_cfg(vm, cfg, acpi, cmdline, e);
}

/* QEMU's PC, for which a multiboot kernel or a firmware image was built, always has fw_cfg: a
 * fresh boot of one gets it when the configuration did not ask for it; UEFI firmware also gets
 * the debug console it writes its log to. Returns @cfg, or @copy with them added. */
static const struct vm_config *with_implied_devices(const struct vm_config *cfg,
						    struct vm_config *copy)
{
	static const struct fw_cfg_config implied;
	bool fw_cfg = !!cfg->firmware_path, debugcon = !!cfg->firmware_vars_path;

	if (!fw_cfg && cfg->kernel_path)
		fw_cfg = vm_kernel_is_multiboot(cfg->kernel_path);
	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		if (cfg->device[i].cls == &fw_cfg_class)
			fw_cfg = false;
		if (cfg->device[i].cls == &debugcon_class)
			debugcon = false;
	}
	/* fw_cfg first: firmware cannot start without it; the debug console only with room left. */
	if (cfg->nr_devices + fw_cfg > VM_MAX_DEVICES) {
		log_warn("%u devices: no room for the fw_cfg device the %s needs", cfg->nr_devices,
			 cfg->firmware_path ? "firmware" : "multiboot kernel");
		fw_cfg = false;
	}
	if (cfg->nr_devices + fw_cfg + debugcon > VM_MAX_DEVICES)
		debugcon = false;
	if (!fw_cfg && !debugcon)
		return cfg;
	*copy = *cfg;
	if (fw_cfg)
		copy->device[copy->nr_devices++] = (struct vm_device_config){ &fw_cfg_class, &implied };
	if (debugcon)
		copy->device[copy->nr_devices++] = (struct vm_device_config){ &debugcon_class, NULL };
	return copy;
}

/* vm_create(), or with @restore and @mem vm_restore_prepare(): the same machine, whose memory
 * (and later vCPUs and state) then come from a snapshot instead of the boot files. */
static int build(const struct vm_config *cfg, bool restore, const struct vm_mem_backend *mem,
		 struct loop *loop, struct vm **out, struct error *e)
{
	struct acpi_config acpi = { .nr_cpus = cfg->nr_cpus };
	struct vm *vm = calloc(1, sizeof(*vm));
	char *cmdline = calloc(1, KILN_CMDLINE_MAX);
	struct timespec made, made_cpu;
	struct vm_config boot_cfg;
	int ret;

	e->input = VM_INPUT_NONE;
	if (!vm || !cmdline) {
		free(vm);
		free(cmdline);
		return error_set(e, ERROR_RUNTIME, "out of memory");
	}
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->uffd = vm->uffd_sock = vm->serial_fd = -1;
	vm->loop = loop;
	vm->nr_cpus = cfg->nr_cpus;
	vm->clock_realtime = cfg->clock_realtime;
	vm->smt = cfg->smt;
	vm->cpu_template = cfg->custom_template ?: x86_cpu_template_rows(cfg->cpu_template);
	clock_gettime(CLOCK_MONOTONIC, &made);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &made_cpu);
	bus_init(&vm->pio, "port");
	bus_init(&vm->mmio, "mmio");
	vm->host = (struct dev_host){ .pio = &vm->pio, .mmio = &vm->mmio, .loop = loop,
				      .mem = &vm->mem, .console_out_fd = STDOUT_FILENO,
				      .console_out_limit = cfg->serial_out_limit,
				      .start = cfg->start.tv_sec ? cfg->start : made,
				      .start_cpu = cfg->start.tv_sec ? cfg->start_cpu : made_cpu,
				      .vm_start = made, .vm_start_cpu = made_cpu };
	ret = vm_irq_init(vm);
	ret = vm_stop_init(vm) ?: ret; /* both run: vm_destroy() undoes both */
	if (ret)
		ret = error_set(e, ERROR_RUNTIME, "interrupt routes or stop eventfd: %s",
				strerror(-ret));
	if (!ret)
		ret = check_limits(cfg, e);
	if (!ret && cfg->serial_out_path) {
		vm->serial_fd = open(cfg->serial_out_path, O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK |
				     O_CLOEXEC, 0666);
		if (vm->serial_fd < 0)
			ret = error_set(e, ERROR_USAGE, "serial output %s: %s", cfg->serial_out_path,
					strerror(errno));
		vm->host.console_out_fd = vm->serial_fd;
	}
	if (!ret && !restore)
		ret = check_cpu_template(cfg, e);
	if (!ret)
		ret = create_memory(vm, cfg, restore, mem, e);
	if (!ret)
		ret = check_kvm(vm, cfg, e);
	if (!ret)
		ret = create_kvm_vm(vm, cfg, e);
	if (!ret)
		ret = create_devices(vm, restore ? cfg : with_implied_devices(cfg, &boot_cfg), &acpi,
				     cmdline, e);
	if (!ret && cfg->firmware_path)
		ret = vm_load_firmware(vm, cfg, !restore, e);
	else if (!ret && !restore)
		ret = vm_load_guest(vm, cfg, &acpi, cmdline, e);
	if (!ret)
		ret = vm_open_vcpus(vm, e);
	if (!ret && !restore)
		ret = vm_configure_vcpus(vm, NULL, e);
	free(cmdline);
	if (ret) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

int vm_create(const struct vm_config *cfg, struct loop *loop, struct vm **out, struct error *e)
{
	return build(cfg, false, NULL, loop, out, e);
}

int vm_restore_prepare(const struct vm_config *cfg, const struct vm_mem_backend *mem,
		       struct loop *loop, struct vm **out, struct error *e)
{
	return build(cfg, true, mem, loop, out, e);
}

int vm_restore_finish(struct vm *vm, const struct snap_reader *snap, struct error *e)
{
	e->input = VM_INPUT_NONE;
	return vm_configure_vcpus(vm, snap, e) ?: vm_restore_state(vm, snap, e);
}

int vm_restore(const struct vm_config *cfg, const struct snap_reader *snap,
	       const struct vm_mem_backend *mem, struct loop *loop, struct vm **out,
	       struct error *e)
{
	struct vm *vm;
	int ret = vm_restore_prepare(cfg, mem, loop, &vm, e);

	if (!ret && (ret = vm_restore_finish(vm, snap, e)))
		vm_destroy(vm);
	if (!ret)
		*out = vm;
	return ret;
}

void *vm_device_find(struct vm *vm, const struct device_class *cls, const char *id)
{
	struct vm_device *d = vm ? devmgr_find(&vm->devices, cls, id) : NULL;

	return d ? d->state : NULL;
}

unsigned vm_devices(struct vm *vm, struct vm_device_info *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->devices.nr; i++, n++) {
		const struct vm_device *d = &vm->devices.dev[i];

		if (n < max)
			out[n] = (struct vm_device_info){
				.cls = d->cls, .index = d->index, .state = d->state,
				.id = d->cls->id ? d->cls->id(d->config) : NULL };
	}
	return n;
}

void vm_destroy(struct vm *vm)
{
	vm_migration_free(vm); /* its thread uses everything below */
	/* While the descriptors are still open: the VM's own, and whatever a device left. */
	loop_forget(vm->loop, vm);
	loop_forget(vm->loop, &vm->host);
	if (vm->vcpu) {
		for (unsigned i = 0; i < vm->nr_cpus; i++)
			if (vm->vcpu[i].vm)
				vcpu_exit(&vm->vcpu[i]);
		free(vm->vcpu);
	}
	devmgr_destroy(&vm->devices);
	if (vm->serial_fd >= 0)
		close(vm->serial_fd); /* after the UART, which wrote to it */
	pci_bus_destroy(vm->pci);
	guest_mem_free(&vm->mem);
	vm_flash_free(vm);
	if (vm->rom)
		munmap(vm->rom, vm->rom_len);
	if (vm->uffd >= 0)
		close(vm->uffd);
	if (vm->uffd_sock >= 0)
		close(vm->uffd_sock);
	free(vm->dirty);
	vm_stop_destroy(vm);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	vm_irq_destroy(vm);
	free(vm);
}
