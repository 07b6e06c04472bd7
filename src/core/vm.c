/* vm — VM creation, the main event loop and teardown, see include/kiln/vm.h.
 *
 * Creation order keeps "nothing half-started": every user input (files, sizes, counts) is read
 * and checked, and the guest image is fully laid out in memory, before KVM_CREATE_VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "kiln/acpi.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"
#include "kiln/x86.h"
#include "vm_internal.h"

#define KVM_API_VERSION_EXPECTED 12
#define KVM_TSS_GPA 0xfffbd000ULL         /* 3 pages KVM needs on Intel, inside the MMIO hole */
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ULL
#define KILN_MAX_CPUS 255                 /* xAPIC IDs in the MADT */
#define CPUID_MAX_ENTRIES 256
#define FILE_MAX_BYTES (1ULL << 32)
#define VM_PAUSE_TIMEOUT_S 2               /* for every vCPU to leave KVM_RUN */

__attribute__((format(printf, 3, 4)))
int vm_fail(struct vm_error *e, enum vm_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	*e->kind = kind;
	va_start(ap, fmt);
	vsnprintf(e->msg, e->len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}
/* Map a whole regular file named by option @opt read-only (MAP_POPULATE: one pass through the
 * page cache, no heap copy); unmap with munmap(*data, *len) when *len is not 0. */
static int map_file(const char *opt, const char *path, const uint8_t **data, size_t *len,
		    struct vm_error *e)
{
	struct stat st;
	void *map;
	int err, fd = open(path, O_RDONLY | O_CLOEXEC);

	*data = NULL;
	*len = 0;
	if (fd < 0)
		return vm_fail(e, errno == ENOENT || errno == ENOTDIR ? VM_ERR_USAGE : VM_ERR_RUNTIME,
			    "%s %s: %s", opt, path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX_BYTES) {
		close(fd);
		return vm_fail(e, VM_ERR_USAGE, "%s %s: not a regular file of at most 4 GiB", opt, path);
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
		return vm_fail(e, VM_ERR_RUNTIME, "%s %s: mmap: %s", opt, path, strerror(err));
	*data = map;
	*len = st.st_size;
	return 0;
}

static struct vm *host_vm(struct dev_host *host) { return (struct vm *)((char *)host - offsetof(struct vm, host)); }

static void host_set_irq(struct dev_host *host, unsigned gsi, bool level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(host_vm(host)->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE gsi %u level %d: %s", gsi, level, strerror(errno));
}

static int host_ioeventfd(struct dev_host *host, bool mmio, uint64_t addr, uint32_t len,
			  uint64_t value, int fd)
{
	struct kvm_ioeventfd io = { .datamatch = value, .addr = addr, .len = len, .fd = fd,
				    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
					     (mmio ? 0 : KVM_IOEVENTFD_FLAG_PIO) };

	return ioctl(host_vm(host)->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int host_irqfd(struct dev_host *host, unsigned gsi, int fd)
{
	struct kvm_irqfd irq = { .fd = (uint32_t)fd, .gsi = gsi };

	return ioctl(host_vm(host)->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason)
{
	int none = VM_STOP_NONE;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->stop_reason, &none, (int)reason))
		return;
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		log_err("cannot wake the main loop: %s", strerror(errno));
	/* Parked vCPUs wake up to end. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

static void host_request_stop(struct dev_host *host, enum vm_stop_reason reason)
{
	vm_request_stop(host_vm(host), reason);
}

/* The devices' descriptors and pollers go on the front end's loop, tagged with the VM. */
static int host_watch_fd(struct dev_host *host, int fd, void (*cb)(void *opaque), void *opaque)
{
	struct vm *vm = host_vm(host);

	return loop_watch(vm->loop, vm, fd, cb, opaque);
}

static int host_pause_fd(struct dev_host *host, int fd, bool paused)
{
	return loop_pause(host_vm(host)->loop, fd, paused);
}

static int host_add_poller(struct dev_host *host, const struct loop_poller *p)
{
	struct vm *vm = host_vm(host);

	return loop_add_poller(vm->loop, vm, p);
}

/* A stop request only has to wake the loop; vm_run() reads the reason. */
static void stop_requested(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t n;

	if (read(vm->stop_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("stop eventfd: %s", strerror(errno));
}

/* Open /dev/kvm and check what @cfg asks of it. */
static int check_kvm(struct vm *vm, const struct vm_config *cfg, struct vm_error *e)
{
	int max;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vm_fail(e, VM_ERR_RUNTIME,
			    "/dev/kvm: %s: this host has no usable KVM; run kiln inside "
			    "scripts/kvm-box (see README.md)", strerror(errno));
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION_EXPECTED)
		return vm_fail(e, VM_ERR_RUNTIME, "/dev/kvm: unsupported KVM API version");
	max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > KILN_MAX_CPUS)
		max = KILN_MAX_CPUS;
	if (cfg->nr_cpus == 0 || cfg->nr_cpus > (unsigned)max)
		return vm_fail(e, VM_ERR_USAGE, "--cpus: %u is outside 1..%d (KVM_CAP_MAX_VCPUS)",
			    cfg->nr_cpus, max);
	return 0;
}

/* Limits that need no KVM: CPU count (xAPIC MADT) and memory against the host's RAM. */
static int check_limits(const struct vm_config *cfg, struct vm_error *e)
{
	uint64_t host = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);

	if (cfg->nr_cpus == 0 || cfg->nr_cpus > KILN_MAX_CPUS)
		return vm_fail(e, VM_ERR_USAGE, "--cpus: %u is outside 1..%d", cfg->nr_cpus, KILN_MAX_CPUS);

	if (cfg->mem_bytes < (16ULL << 20))
		return vm_fail(e, VM_ERR_USAGE, "--memory: %" PRIu64 " MiB is less than the 16 MiB minimum",
			    cfg->mem_bytes >> 20);
	if (cfg->mem_bytes > host)
		return vm_fail(e, VM_ERR_USAGE,
			    "--memory: %" PRIu64 " MiB is more than the host's %" PRIu64 " MiB of RAM",
			    cfg->mem_bytes >> 20, host >> 20);
	return 0;
}

static int create_devices(struct vm *vm, struct acpi_config *acpi, struct vm_error *e)
{
	for (const struct device_type *const *t = pc_device_types; *t; t++) {
		struct vm_device *d = &vm->device[vm->nr_devices];
		int ret;

		if (vm->nr_devices == VM_MAX_DEVICES)
			return vm_fail(e, VM_ERR_RUNTIME, "too many devices");
		ret = (*t)->create(&vm->host, &d->state);
		if (ret)
			return vm_fail(e, VM_ERR_RUNTIME, "device %s: %s", (*t)->name, strerror(-ret));
		d->type = *t;
		vm->nr_devices++;
		if ((*t)->describe)
			(*t)->describe(d->state, acpi);
	}
	return 0;
}

/* Attach @dev (taken over, freed on failure) with the configured transport: a PCI slot, or the
 * next virtio-mmio slot, described in the DSDT and added to @cmdline (KILN_CMDLINE_MAX bytes). */
static int attach_virtio(struct vm *vm, const struct vm_config *cfg, struct virtio_dev *dev,
			 enum vm_device_kind kind, const char *id, const char *what,
			 struct acpi_config *acpi, char *cmdline, struct vm_error *e)
{
	struct vm_virtio *v = &vm->virtio[vm->nr_virtio];
	size_t used = strlen(cmdline);
	int ret;

	if (vm->nr_virtio == VM_MAX_VIRTIO) {
		virtio_dev_free(dev);
		return vm_fail(e, VM_ERR_USAGE, "%s: more than %d virtio devices", what, VM_MAX_VIRTIO);
	}
	if (cfg->transport == VM_TRANSPORT_PCI)
		ret = virtio_pci_create(&vm->host, vm->pci, dev, &v->pci);
	else
		ret = virtio_mmio_create(&vm->host, dev, vm->nr_virtio, &v->mmio);
	if (ret) {
		virtio_dev_free(dev);
		return vm_fail(e, VM_ERR_RUNTIME, "%s: %s: %s", what,
			    cfg->transport == VM_TRANSPORT_PCI ? "virtio-pci" : "virtio-mmio", strerror(-ret));
	}
	v->dev = dev;
	v->kind = kind;
	v->id = id;
	vm->nr_virtio++;
	if (v->mmio) {
		virtio_mmio_describe(v->mmio, acpi);
		virtio_mmio_cmdline(v->mmio, cmdline + used, KILN_CMDLINE_MAX - used);
	}
	return 0;
}

/* The virtio devices the configuration asks for: disks first (vda, vdb, ...), NICs, rng. */
static int create_virtio(struct vm *vm, const struct vm_config *cfg, struct acpi_config *acpi,
			 char *cmdline, struct vm_error *e)
{
	char err[512];
	bool usage;
	int ret = 0;

	for (unsigned i = 0; !ret && i < cfg->nr_disks; i++) {
		struct virtio_dev *dev = virtio_blk_new(&vm->host, &cfg->disk[i], i, &usage, err, sizeof(err));

		if (!dev)
			return vm_fail(e, usage ? VM_ERR_USAGE : VM_ERR_RUNTIME, "%s", err);
		ret = attach_virtio(vm, cfg, dev, VM_DEVICE_BLOCK, cfg->disk[i].id, "--disk", acpi,
				    cmdline, e);
	}
	for (unsigned i = 0; !ret && i < cfg->nr_nets; i++) {
		const struct net_config *n = &cfg->net[i];
		struct net_backend *be = net_backend_open(&vm->host, n, &usage, err, sizeof(err));
		struct virtio_dev *dev;

		if (be && n->filter.wrap) {
			usage = false; /* a filter fails for the host's reasons */
			be = n->filter.wrap(n->filter.opaque, &vm->host, be, err, sizeof(err));
		}
		if (!be)
			return vm_fail(e, usage ? VM_ERR_USAGE : VM_ERR_RUNTIME, "%s", err);
		dev = virtio_net_new(&vm->mem, be, n->mac_set ? n->mac : NULL, i);
		if (!dev)
			return vm_fail(e, VM_ERR_RUNTIME, "--net: out of memory");
		ret = attach_virtio(vm, cfg, dev, VM_DEVICE_NET, n->id, "--net", acpi, cmdline, e);
	}
	if (!ret && cfg->vsock.uds_path) {
		struct virtio_dev *dev = virtio_vsock_new(&vm->host, cfg->vsock.cid, cfg->vsock.uds_path,
							  &usage, err, sizeof(err));

		if (!dev)
			return vm_fail(e, usage ? VM_ERR_USAGE : VM_ERR_RUNTIME, "%s", err);
		ret = attach_virtio(vm, cfg, dev, VM_DEVICE_VSOCK, NULL, "--vsock", acpi, cmdline, e);
	}
	if (!ret && cfg->balloon.enabled) {
		struct virtio_dev *dev = virtio_balloon_new(&vm->host, &cfg->balloon, err, sizeof(err));

		if (!dev)
			return vm_fail(e, VM_ERR_RUNTIME, "%s", err);
		ret = attach_virtio(vm, cfg, dev, VM_DEVICE_BALLOON, NULL, "--balloon", acpi, cmdline,
				    e);
	}
	if (!ret && cfg->console.kind != CONSOLE_NONE) {
		struct virtio_dev *dev = virtio_console_new(&vm->host, &cfg->console, &usage, err,
							    sizeof(err));

		if (!dev)
			return vm_fail(e, usage ? VM_ERR_USAGE : VM_ERR_RUNTIME, "%s", err);
		ret = attach_virtio(vm, cfg, dev, VM_DEVICE_CONSOLE, NULL, "--console", acpi, cmdline,
				    e);
	}
	if (!ret && cfg->rng) {
		struct virtio_dev *dev = virtio_rng_new(&vm->mem);

		if (!dev)
			return vm_fail(e, VM_ERR_RUNTIME, "--rng: out of memory");
		ret = attach_virtio(vm, cfg, dev, VM_DEVICE_RNG, NULL, "--rng", acpi, cmdline, e);
	}
	if (!ret)
		pci_bus_describe(vm->pci, acpi); /* after the devices: _PRT lists them */
	return ret;
}

/* Lay out ACPI tables, boot tables, kernel and initrd in guest memory. */
static int load_guest(struct vm *vm, const struct vm_config *cfg, const struct acpi_config *acpi,
		      const char *cmdline, struct vm_error *e)
{
	struct boot_input in = { .cmdline = cmdline };
	const uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_len = 0, initrd_len = 0;
	char why[256];
	int ret;

	ret = acpi_build(&vm->mem, KILN_ACPI_START, KILN_ACPI_END - KILN_ACPI_START, acpi,
			 &in.rsdp_gpa);
	if (ret)
		return vm_fail(e, VM_ERR_RUNTIME, "ACPI tables: %s", strerror(-ret));
	if (x86_boot_write_tables(&vm->mem))
		return vm_fail(e, VM_ERR_RUNTIME, "boot page tables do not fit in guest memory");
	ret = map_file("--kernel", cfg->kernel_path, &kernel, &kernel_len, e);
	if (!ret && cfg->initrd_path)
		ret = map_file("--initrd", cfg->initrd_path, &initrd, &initrd_len, e);
	if (!ret) {
		in.kernel = kernel;
		in.kernel_len = kernel_len;
		in.initrd = initrd;
		in.initrd_len = initrd_len;
		ret = boot_load(&vm->mem, &in, &vm->boot, why, sizeof(why));
		if (ret == -E2BIG)
			vm_fail(e, VM_ERR_USAGE, "--cmdline: %s", why);
		else if (ret == -ENOSPC && cfg->initrd_path && strstr(why, "initrd"))
			vm_fail(e, VM_ERR_USAGE, "--initrd %s: %s", cfg->initrd_path, why);
		else if (ret)
			vm_fail(e, VM_ERR_USAGE, "--kernel %s: %s", cfg->kernel_path, why);
	}
	if (kernel_len)
		munmap((void *)kernel, kernel_len);
	if (initrd_len)
		munmap((void *)initrd, initrd_len);
	return ret;
}

/* GSI routing as on a PC: ISA IRQ n to PIC pin n and IOAPIC pin n, except the PIT's IRQ 0,
 * which reaches IOAPIC pin 2 (the MADT's IRQ0->GSI2 override); GSI 16..23 IOAPIC only; then the
 * MSI routes PCI functions programmed. KVM_SET_GSI_ROUTING replaces the whole table, so every
 * change rewrites it. Called with msi_lock held (or before any vCPU runs). */
int vm_set_gsi_routing(struct vm *vm)
{
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + (16 + KILN_IOAPIC_PINS + vm->nr_msi) *
					   sizeof(r->entries[0]));
	unsigned n = 0;
	int ret;

	if (!r)
		return -ENOMEM;
	for (unsigned irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue; /* the slave PIC's cascade */
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = irq, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = irq < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				       .pin = irq % 8 } };
	}
	for (unsigned gsi = 0; gsi < KILN_IOAPIC_PINS; gsi++) {
		if (gsi == 2)
			continue;
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi == 0 ? 2 : gsi } };
	}
	for (unsigned i = 0; i < vm->nr_msi; i++)
		if (vm->msi[i].type == KVM_IRQ_ROUTING_MSI)
			r->entries[n++] = vm->msi[i];
	r->nr = n;
	ret = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
	free(r);
	return ret;
}

static int host_alloc_msi_gsi(struct dev_host *host)
{
	struct vm *vm = host_vm(host);
	int gsi = -ENOSPC;

	pthread_mutex_lock(&vm->msi_lock);
	if (vm->nr_msi < KILN_MSI_GSI_MAX)
		gsi = KILN_MSI_GSI_BASE + (int)vm->nr_msi++;
	pthread_mutex_unlock(&vm->msi_lock);
	return gsi;
}

static int host_set_msi_route(struct dev_host *host, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct vm *vm = host_vm(host);
	int ret = -EINVAL;

	pthread_mutex_lock(&vm->msi_lock);
	if (gsi >= KILN_MSI_GSI_BASE && gsi - KILN_MSI_GSI_BASE < vm->nr_msi) {
		vm->msi[gsi - KILN_MSI_GSI_BASE] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
				   .data = data } };
		ret = vm_set_gsi_routing(vm);
	}
	pthread_mutex_unlock(&vm->msi_lock);
	return ret;
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
static int create_kvm_vm(struct vm *vm, const struct vm_config *cfg, struct vm_error *e)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	const char *step;
	int ret;

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vm_fail(e, VM_ERR_RUNTIME, "KVM_CREATE_VM: %s", strerror(errno));
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
		return vm_fail(e, VM_ERR_RUNTIME, "KVM_SET_GSI_ROUTING: %s", strerror(-ret));
	ret = vm_set_memory_slots(vm, cfg->track_dirty_pages);
	if (ret)
		return vm_fail(e, VM_ERR_RUNTIME, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-ret));
	return 0;
out_errno:
	return vm_fail(e, VM_ERR_RUNTIME, "%s: %s", step, strerror(errno));
}

/* vCPU @index's CPUID from snapshot @snap, once checked against what this host would give
 * it (@host patched as vcpu_init() patches it). */
static const struct kvm_cpuid2 *snapshot_cpuid(const struct snap_reader *snap, unsigned index,
					       unsigned nr_cpus, const struct kvm_cpuid2 *host,
					       struct vm_error *e)
{
	size_t size = sizeof(*host) + host->nent * sizeof(host->entries[0]);
	struct kvm_cpuid2 *mine = malloc(size);
	const struct kvm_cpuid2 *saved = NULL;

	if (!mine) {
		vm_fail(e, VM_ERR_RUNTIME, "out of memory");
		return NULL;
	}
	memcpy(mine, host, size);
	x86_cpuid_patch(mine, index, nr_cpus);
	saved = x86_snapshot_cpuid(snap, index, mine, e->msg, e->len);
	free(mine);
	if (!saved)
		*e->kind = VM_ERR_USAGE;
	return saved;
}

/* The vCPUs, once the guest is laid out (the boot vCPU starts at the kernel's entry). */
static int create_vcpus(struct vm *vm, const struct snap_reader *snap, struct vm_error *e)
{
	struct kvm_cpuid2 *cpuid = NULL;
	const char *step;
	int ret;

	step = "KVM_GET_VCPU_MMAP_SIZE";
	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0)
		goto out_errno;
	vm->run_size = ret;
	vm->vcpu = calloc(vm->nr_cpus, sizeof(*vm->vcpu));
	cpuid = calloc(1, sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]));
	if (!vm->vcpu || !cpuid) {
		free(cpuid);
		return vm_fail(e, VM_ERR_RUNTIME, "out of memory for %u vCPUs", vm->nr_cpus);
	}
	cpuid->nent = CPUID_MAX_ENTRIES;
	step = "KVM_GET_SUPPORTED_CPUID";
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
		goto out_errno;
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vm->vcpu[i].fd = -1;
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		const struct kvm_cpuid2 *mine = cpuid;

		if (snap && !(mine = snapshot_cpuid(snap, i, vm->nr_cpus, cpuid, e))) {
			free(cpuid);
			return -EINVAL;
		}
		ret = vcpu_init(vm, &vm->vcpu[i], i, mine, !snap);
		if (ret) {
			free(cpuid);
			return vm_fail(e, VM_ERR_RUNTIME, "vCPU %u: %s", i, strerror(-ret));
		}
	}
	free(cpuid);
	return 0;
out_errno:
	ret = errno;
	free(cpuid);
	return vm_fail(e, VM_ERR_RUNTIME, "%s: %s", step, strerror(ret));
}

/* vm_create(), or with @snap and @mem vm_restore(): the same machine, whose memory and
 * state then come from the snapshot instead of the boot files. */
static int build(const struct vm_config *cfg, const struct snap_reader *snap,
		 const struct vm_mem_backend *mem, struct loop *loop, struct vm **out,
		 enum vm_error_kind *kind, char *err, size_t errlen)
{
	struct vm_error e = { .kind = kind, .msg = err, .len = errlen };
	struct acpi_config acpi = { .nr_cpus = cfg->nr_cpus };
	struct vm *vm = calloc(1, sizeof(*vm));
	struct timespec made, made_cpu;
	char *cmdline = NULL;
	int ret;

	if (!vm)
		return vm_fail(&e, VM_ERR_RUNTIME, "out of memory");
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->uffd = vm->uffd_sock = -1;
	vm->loop = loop;
	pthread_mutex_init(&vm->msi_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->msi = calloc(KILN_MSI_GSI_MAX, sizeof(*vm->msi));
	if (!vm->msi) {
		free(vm);
		return vm_fail(&e, VM_ERR_RUNTIME, "out of memory");
	}
	vm->nr_cpus = cfg->nr_cpus;
	clock_gettime(CLOCK_MONOTONIC, &made);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &made_cpu);
	bus_init(&vm->pio, "port");
	bus_init(&vm->mmio, "mmio");
	vm->host = (struct dev_host){ .pio = &vm->pio, .mmio = &vm->mmio, .set_irq = host_set_irq,
				      .request_stop = host_request_stop, .watch_fd = host_watch_fd,
				      .pause_fd = host_pause_fd, .add_poller = host_add_poller,
				      .ioeventfd = host_ioeventfd, .irqfd = host_irqfd,
				      .alloc_msi_gsi = host_alloc_msi_gsi,
				      .set_msi_route = host_set_msi_route,
				      .mem = &vm->mem, .console_out_fd = STDOUT_FILENO,
				      .start = cfg->start.tv_sec ? cfg->start : made,
				      .start_cpu = cfg->start.tv_sec ? cfg->start_cpu : made_cpu,
				      .vm_start = made, .vm_start_cpu = made_cpu };
	ret = check_limits(cfg, &e);
	if (!ret && snap)
		ret = vm_restore_memory(vm, cfg, mem, &e);
	else if (!ret && guest_mem_alloc(&vm->mem, cfg->mem_bytes))
		ret = vm_fail(&e, VM_ERR_RUNTIME, "--memory: cannot reserve %" PRIu64 " MiB",
			   cfg->mem_bytes >> 20);
	if (!ret && cfg->track_dirty_pages) {
		vm->track_dirty = vm->user_track_dirty = true;
		vm->diff_ready = snap != NULL; /* a restored guest's diffs are against the snapshot */
		vm->dirty = calloc((cfg->mem_bytes / 4096 + 63) / 64, sizeof(uint64_t));
		vm->mem.dirty = vm->dirty;
		if (!vm->dirty)
			ret = vm_fail(&e, VM_ERR_RUNTIME, "out of memory for the dirty page bitmap");
	}
	if (!ret) {
		vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vm->stop_efd < 0)
			ret = vm_fail(&e, VM_ERR_RUNTIME, "eventfd: %s", strerror(errno));
		else if ((ret = loop_watch(loop, vm, vm->stop_efd, stop_requested, vm)))
			ret = vm_fail(&e, VM_ERR_RUNTIME, "event loop: %s", strerror(-ret));
	}
	if (!ret)
		ret = check_kvm(vm, cfg, &e);
	if (!ret)
		ret = create_kvm_vm(vm, cfg, &e);
	if (!ret)
		ret = create_devices(vm, &acpi, &e);
	if (!ret && (ret = pci_bus_create(&vm->host, &vm->pci)))
		ret = vm_fail(&e, VM_ERR_RUNTIME, "PCI bus: %s", strerror(-ret));
	if (!ret) {
		cmdline = calloc(1, KILN_CMDLINE_MAX);
		if (!cmdline)
			ret = vm_fail(&e, VM_ERR_RUNTIME, "out of memory");
		else
			snprintf(cmdline, KILN_CMDLINE_MAX, "%s", cfg->cmdline);
	}
	if (!ret)
		ret = create_virtio(vm, cfg, &acpi, cmdline, &e);
	if (!ret && !snap)
		ret = load_guest(vm, cfg, &acpi, cmdline, &e);
	free(cmdline);
	if (!ret)
		ret = create_vcpus(vm, snap, &e);
	if (!ret && snap)
		ret = vm_restore_state(vm, snap, &e);
	if (ret) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

int vm_create(const struct vm_config *cfg, struct loop *loop, struct vm **out,
	      enum vm_error_kind *kind, char *err, size_t errlen)
{
	return build(cfg, NULL, NULL, loop, out, kind, err, errlen);
}

int vm_restore(const struct vm_config *cfg, const struct snap_reader *snap,
	       const struct vm_mem_backend *mem, struct loop *loop, struct vm **out,
	       enum vm_error_kind *kind, char *err, size_t errlen)
{
	return build(cfg, snap, mem, loop, out, kind, err, errlen);
}

static unsigned console_to_uart(void *uart, const uint8_t *data, unsigned len)
{
	return uart_8250_receive(uart, data, len);
}

static void *find_device(struct vm *vm, const struct device_type *type)
{
	for (unsigned i = 0; i < vm->nr_devices; i++)
		if (vm->device[i].type == type)
			return vm->device[i].state;
	return NULL;
}

/* The console's quit escape (Ctrl-A x) ends the VM as SIGINT would. */
static void quit_from_console(struct vm *vm)
{
	vm->stop_signal = SIGINT;
	vm_request_stop(vm, VM_STOP_SIGNAL);
}

/* What the main loop serves besides the devices: the console's input and the signals. */
struct main_loop {
	struct vm *vm;
	struct console con;
	int sig_fd;
	bool input_watched, input_paused;
};

static void console_readable(void *opaque)
{
	struct main_loop *m = opaque;

	if (console_read(&m->con))
		quit_from_console(m->vm);
}

static void signal_readable(void *opaque)
{
	struct main_loop *m = opaque;
	struct signalfd_siginfo si;

	if (read(m->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if ((si.ssi_signo == SIGTSTP || si.ssi_signo == SIGCONT) && vm_migrating(m->vm)) {
		log_warn("signal %d: a migration is in progress; it decides where the guest runs",
			 (int)si.ssi_signo);
	} else if (si.ssi_signo == SIGTSTP) {
		if (vm_pause(m->vm))
			log_warn("SIGTSTP: a vCPU did not pause within %d s", VM_PAUSE_TIMEOUT_S);
		else
			log_info("paused (SIGTSTP); SIGCONT resumes");
	} else if (si.ssi_signo == SIGCONT) {
		if (vm_is_paused(m->vm))
			log_info("resumed (SIGCONT)");
		vm_resume(m->vm);
	} else {
		m->vm->stop_signal = (int)si.ssi_signo;
		vm_request_stop(m->vm, VM_STOP_SIGNAL);
	}
}

/* Watch the console's input only while the UART has room for it. */
static void follow_input(struct main_loop *m, bool want)
{
	struct loop *loop = m->vm->loop;

	if (m->con.in_fd < 0 || !m->con.pollable) {
		if (m->input_watched) /* end of input */
			loop_forget(loop, &m->con);
		m->input_watched = false;
		return;
	}
	if (!m->input_watched) {
		if (want && loop_watch(loop, &m->con, m->con.in_fd, console_readable, m))
			m->con.in_fd = -1; /* e.g. /dev/null: no input */
		m->input_watched = want && m->con.in_fd >= 0;
		m->input_paused = false;
	} else if (want == m->input_paused && loop_pause(loop, m->con.in_fd, !want) == 0) {
		m->input_paused = !want;
	}
}

/* Serve the console, signals and the loop (devices, and whatever else the front end put on
 * it) until the guest stops. */
static void main_loop(struct vm *vm, int sig_fd)
{
	struct main_loop m = { .vm = vm, .sig_fd = sig_fd };

	console_open(&m.con, STDIN_FILENO, console_to_uart, find_device(vm, &uart_8250_type));
	if (loop_watch(vm->loop, &m, sig_fd, signal_readable, &m))
		log_err("cannot watch for signals");
	while (atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
		bool pending = console_flush(&m.con);
		bool want_input = m.con.in_fd >= 0 && !pending;

		/* Regular files cannot be polled: they are always readable until end of file. */
		if (want_input && !m.con.pollable && console_read(&m.con))
			quit_from_console(vm);
		follow_input(&m, want_input);
		/* While typed bytes wait for room in the UART FIFO, poll for it every 10 ms. */
		pending = m.con.head < m.con.tail || (m.con.in_fd >= 0 && !m.con.pollable);
		loop_wait(vm->loop, pending ? 10 : -1);
	}
	loop_forget(vm->loop, &m.con);
	loop_forget(vm->loop, &m);
	console_restore();
}

enum vm_stop_reason vm_run(struct vm *vm)
{
	sigset_t sigs, old;
	int sig_fd;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTSTP); /* pause the guest, not kiln */
	sigaddset(&sigs, SIGCONT); /* resume it */
	/* Blocked before the vCPU threads exist, so they inherit the mask and only the signalfd
	 * sees these signals. */
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return VM_STOP_INTERNAL_ERROR;
	}
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		int ret = vcpu_start(&vm->vcpu[i]);

		if (ret) {
			log_err("vCPU %u: cannot start its thread: %s", i, strerror(-ret));
			vm_request_stop(vm, VM_STOP_INTERNAL_ERROR);
			break;
		}
	}
	main_loop(vm, sig_fd);
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vcpu_stop(&vm->vcpu[i]);
	close(sig_fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return (enum vm_stop_reason)atomic_load(&vm->stop_reason);
}

int vm_stop_signal(const struct vm *vm) { return vm->stop_signal; }

unsigned vm_counters(struct vm *vm, struct vm_counters *out, unsigned max)
{
	unsigned n = 0, index[VM_DEVICE_NET + 1] = { 0 };

	for (unsigned i = 0; i < vm->nr_virtio && n < max; i++) {
		struct vm_virtio *v = &vm->virtio[i];
		struct vm_counters *c = &out[n];

		if (v->kind != VM_DEVICE_BLOCK && v->kind != VM_DEVICE_NET)
			continue;
		*c = (struct vm_counters){ .kind = v->kind, .id = v->id, .index = index[v->kind]++ };
		if (v->kind == VM_DEVICE_BLOCK)
			virtio_blk_counters(v->dev, &c->blk);
		else
			virtio_net_counters(v->dev, &c->net);
		n++;
	}
	return n;
}

int vm_replace_disk(struct vm *vm, const char *id, const char *path, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (vm->virtio[i].kind == VM_DEVICE_BLOCK && vm->virtio[i].id &&
		    !strcmp(vm->virtio[i].id, id))
			return virtio_blk_replace(vm->virtio[i].dev, path, err, errlen);
	snprintf(err, errlen, "no disk \"%s\"", id);
	return -ENOENT;
}

struct virtio_dev *vm_balloon(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (vm->virtio[i].kind == VM_DEVICE_BALLOON)
			return vm->virtio[i].dev;
	return NULL;
}

int vm_send_ctrl_alt_del(struct vm *vm)
{
	void *kbd = find_device(vm, &i8042_type);

	return kbd ? i8042_send_ctrl_alt_del(kbd) : -ENODEV;
}

int vm_pause(struct vm *vm)
{
	struct timespec deadline;
	unsigned started = 0;
	int ret = 0;

	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = true;
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		started += vm->vcpu[i].started;
		vcpu_kick(&vm->vcpu[i]);
	}
	/* A kicked vCPU leaves KVM_RUN at once and finishes at most one exit's device work. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += VM_PAUSE_TIMEOUT_S;
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->nr_parked < started && atomic_load(&vm->stop_reason) == VM_STOP_NONE && !ret)
		ret = -pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline);
	pthread_mutex_unlock(&vm->pause_lock);
	return ret;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = false;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_all_parked(struct vm *vm)
{
	unsigned started = 0;
	bool all;

	for (unsigned i = 0; i < vm->nr_cpus; i++)
		started += vm->vcpu[i].started;
	pthread_mutex_lock(&vm->pause_lock);
	all = vm->paused && vm->nr_parked == started;
	pthread_mutex_unlock(&vm->pause_lock);
	return all;
}

bool vm_is_paused(struct vm *vm)
{
	bool paused;

	pthread_mutex_lock(&vm->pause_lock);
	paused = vm->paused;
	pthread_mutex_unlock(&vm->pause_lock);
	return paused;
}

void vm_destroy(struct vm *vm)
{
	vm_migration_free(vm); /* its thread uses everything below */
	loop_forget(vm->loop, vm); /* while the devices' descriptors are still open */
	if (vm->vcpu) {
		for (unsigned i = 0; i < vm->nr_cpus; i++)
			if (vm->vcpu[i].vm)
				vcpu_exit(&vm->vcpu[i]);
		free(vm->vcpu);
	}
	for (unsigned i = vm->nr_virtio; i-- > 0;) {
		virtio_mmio_destroy(vm->virtio[i].mmio);
		virtio_pci_destroy(vm->virtio[i].pci);
		virtio_dev_free(vm->virtio[i].dev);
	}
	pci_bus_destroy(vm->pci);
	for (unsigned i = vm->nr_devices; i-- > 0;)
		if (vm->device[i].type->destroy)
			vm->device[i].type->destroy(vm->device[i].state);
	guest_mem_free(&vm->mem);
	if (vm->uffd >= 0)
		close(vm->uffd);
	if (vm->uffd_sock >= 0)
		close(vm->uffd_sock);
	free(vm->dirty);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->msi_lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
	free(vm->msi);
	free(vm);
}
