/* SPDX-License-Identifier: Apache-2.0 */
/* snapshot — vm_snapshot() and the restore half of vm_restore(), see include/kiln/vm.h.
 *
 * The state file holds, besides the caller's "config": "vm" (the machine's shape), "irqchip"
 * 0-2 (PIC master, PIC slave, IOAPIC), "pit2", "clock" (kvmclock), "msi" (the MSI routes the
 * guest programmed), one section per legacy device (its type's name), "pcibus" (the
 * configuration latch and the host bridge), the virtio transports
 * and devices (instance = attach order) and every vCPU's sections (src/arch/x86/state.c).
 * Guest memory goes to its own file, laid out as kiln maps it (RAM below the MMIO hole, then
 * the rest), so that a restore maps the file as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/log.h"
#include "kiln/snapshot.h"
#include "kiln/x86.h"
#include "vm_internal.h"

#define PAGE 4096ull

/* The machine's shape, section "vm" version 1: u32 vCPUs, u32 virtio devices, u32 platform
 * devices, u32 MSI routes, u64 bytes of guest memory. */
struct vm_shape {
	uint32_t nr_cpus, nr_virtio, nr_devices, nr_msi;
	uint64_t mem_bytes;
};

static const uint32_t irqchips[] = { KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
				     KVM_IRQCHIP_IOAPIC };

static void save_devices(struct vm *vm, struct snap_writer *w)
{
	struct pci_bus_state bus;
	struct snap_enc e = { 0 };

	devmgr_save(&vm->devices, w);
	pci_bus_save(vm->pci, &bus);
	pci_bus_state_encode(&e, &bus);
	snap_put_enc(w, "pcibus", 0, 1, &e);
}

/* The VM-wide KVM state: interrupt controllers, PIT, kvmclock, MSI routes. */
static int save_kvm(struct vm *vm, struct snap_writer *w, char *err, size_t errlen)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };
	const char *step = "KVM_GET_IRQCHIP";

	for (unsigned i = 0; i < 3; i++) {
		struct kvm_irqchip chip = { .chip_id = irqchips[i] };

		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			goto out_errno;
		snap_put(w, "irqchip", i, 1, &chip, sizeof(chip));
	}
	step = "KVM_GET_PIT2";
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		goto out_errno;
	snap_put(w, "pit2", 0, 1, &pit, sizeof(pit));
	step = "KVM_GET_CLOCK";
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		goto out_errno;
	snap_put(w, "clock", 0, 1, &clock, sizeof(clock));
	pthread_mutex_lock(&vm->msi_lock);
	snap_put(w, "msi", 0, 1, vm->msi, vm->nr_msi * sizeof(vm->msi[0]));
	pthread_mutex_unlock(&vm->msi_lock);
	return 0;
out_errno:
	snprintf(err, errlen, "%s: %s", step, strerror(errno));
	return -errno;
}

/* Fold KVM's dirty log of every slot into vm->dirty (KVM clears its own as it reads it). */
int vm_collect_dirty(struct vm *vm)
{
	uint64_t first = 0;

	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		uint64_t pages = vm->mem.region[i].size / PAGE, words = (pages + 63) / 64;
		uint64_t *bits = calloc(words, sizeof(*bits));
		struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = bits };

		if (!bits)
			return -ENOMEM;
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			free(bits);
			return -errno;
		}
		for (uint64_t wd = 0; wd < words; wd++) /* regions start on 64-page boundaries */
			__atomic_fetch_or(&vm->dirty[first / 64 + wd], bits[wd], __ATOMIC_RELAXED);
		first += pages;
		free(bits);
	}
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return !memcmp(p, zero, PAGE);
}

int64_t vm_page_runs(struct vm *vm, bool dirty, uint64_t max_run,
		     int (*emit)(void *ctx, const uint8_t *p, uint64_t off, uint64_t len), void *ctx)
{
	const uint8_t *base = vm->mem.mapping;
	uint64_t pages = vm->mem.size / PAGE, run = 0, sent = 0, bits = 0;
	int ret = 0;

	for (uint64_t p = 0; p <= pages && !ret; p++) {
		bool want = false;

		if (p < pages && dirty) {
			if (p % 64 == 0)
				bits = __atomic_exchange_n(&vm->dirty[p / 64], 0, __ATOMIC_SEQ_CST);
			want = (bits >> (p % 64)) & 1;
		} else if (p < pages) {
			want = !page_is_zero(base + p * PAGE);
		}
		if (want && run * PAGE < max_run) {
			run++;
			continue;
		}
		if (run)
			ret = emit(ctx, base + (p - run) * PAGE, (p - run) * PAGE, run * PAGE);
		sent += run;
		run = want; /* a run that hit the cap starts again at this page */
	}
	return ret ? ret : (int64_t)sent;
}

static int pwrite_all(void *ctx, const uint8_t *p, uint64_t off, uint64_t len)
{
	int fd = *(int *)ctx;

	while (len) {
		ssize_t n = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Guest memory into @path: every non-zero page (full) or every dirty page (diff), at its
 * offset in the mapping; the file is exactly the guest's size, holes elsewhere. Written beside
 * @path and renamed over it: the file may be the one this VM's memory is mapped from. */
static int write_memory(struct vm *vm, const char *path, bool diff, uint64_t *written)
{
	char tmp[4096];
	int64_t pages;
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)vm->mem.size) < 0)
		ret = -errno;
	pages = ret ? 0 : vm_page_runs(vm, diff, UINT64_MAX, pwrite_all, &fd);
	if (pages < 0)
		ret = (int)pages;
	*written = (uint64_t)(pages > 0 ? pages : 0) * PAGE;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int vm_save_state(struct vm *vm, const void *config, size_t config_len, struct snap_writer *w,
		  char *err, size_t errlen)
{
	struct snap_enc e = { 0 };
	int ret;

	snap_put(w, "config", 0, 1, config, config_len);
	snap_enc_u32(&e, vm->nr_cpus);
	snap_enc_u32(&e, vm->devices.nr_virtio);
	snap_enc_u32(&e, vm->devices.nr_platform);
	snap_enc_u32(&e, vm->nr_msi);
	snap_enc_u64(&e, vm->mem.size);
	snap_put_enc(w, "vm", 0, 1, &e);
	save_devices(vm, w); /* first: finishing requests in flight may raise interrupts */
	ret = save_kvm(vm, w, err, errlen);
	for (unsigned i = 0; i < vm->nr_cpus && !ret; i++)
		ret = x86_vcpu_save(vm->kvm_fd, vm->vcpu[i].fd, i, w, err, errlen);
	return ret;
}

int vm_snapshot(struct vm *vm, const struct vm_snapshot_params *p, char *err, size_t errlen)
{
	struct snap_writer w = { 0 };
	struct timespec t0, t1;
	uint64_t mem_written = 0;
	int ret = 0;

	if (!vm_all_parked(vm)) {
		snprintf(err, errlen, "the microVM must be paused before a snapshot is taken");
		return -EBUSY;
	}
	if (vm->migration && vm_migrating(vm)) {
		snprintf(err, errlen, "a migration is in progress");
		return -EBUSY;
	}
	if (p->diff && !vm->diff_ready) {
		snprintf(err, errlen, vm->track_dirty ? "a Diff snapshot needs a Full snapshot after "
			 "the last migration attempt" : "a Diff snapshot needs dirty page tracking "
			 "(machine-config track_dirty_pages)");
		return -EINVAL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = vm_save_state(vm, p->config, p->config_len, &w, err, errlen);
	if (!ret && vm->track_dirty && (ret = vm_collect_dirty(vm)))
		snprintf(err, errlen, "KVM_GET_DIRTY_LOG: %s", strerror(-ret));
	if (!ret && (ret = write_memory(vm, p->mem_path, p->diff, &mem_written)))
		snprintf(err, errlen, "mem_file_path %s: %s", p->mem_path, strerror(-ret));
	if (!ret)
		ret = snap_writer_save(&w, p->state_path, err, errlen);
	if (vm->track_dirty) {
		/* A failed snapshot may have taken dirty bits: only a good Full one is a base. */
		vm->diff_ready = !ret && (p->diff ? vm->diff_ready : vm->user_track_dirty);
		if (!ret) /* the next diff starts from here */
			memset(vm->dirty, 0, (vm->mem.size / PAGE + 63) / 64 * sizeof(uint64_t));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ret)
		log_info("snapshot (%s) in %" PRId64 " us: state %zu bytes, memory %" PRIu64 " of %"
			 PRIu64 " MiB written", p->diff ? "diff" : "full",
			 ((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + t1.tv_nsec - t0.tv_nsec) / 1000,
			 w.len, mem_written >> 20, vm->mem.size >> 20);
	snap_writer_free(&w);
	return ret;
}

/* --- restore ------------------------------------------------------------------------------ */

int vm_restore_memory(struct vm *vm, const struct vm_config *cfg, const struct vm_mem_backend *mb,
		      struct error *e)
{
	struct stat st;
	int fd, ret;

	if (mb->type == VM_MEM_UFFD)
		return vm_restore_uffd(vm, cfg, mb, e);
	if (mb->type == VM_MEM_SHARED_FD) { /* a migration's memory, received into a memfd */
		ret = fstat(mb->fd, &st) || (uint64_t)st.st_size != cfg->mem_bytes ? -EINVAL :
		      guest_mem_map_file(&vm->mem, cfg->mem_bytes, mb->fd, true);
		return ret ? error_set(e, ERROR_RUNTIME, "migrated memory: %s", strerror(-ret)) : 0;
	}
	fd = open(mb->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(e, ERROR_USAGE, "mem_backend %s: %s", mb->path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != cfg->mem_bytes) {
		close(fd);
		return error_set(e, ERROR_USAGE, "mem_backend %s: not a regular file of %" PRIu64
			       " bytes, the snapshot's guest memory size", mb->path, cfg->mem_bytes);
	}
	ret = guest_mem_map_file(&vm->mem, cfg->mem_bytes, fd, false);
	close(fd); /* the mapping keeps the file */
	if (ret)
		return error_set(e, ERROR_RUNTIME, "mem_backend %s: mmap: %s", mb->path, strerror(-ret));
	return 0;
}

static int load_kvm(struct vm *vm, const struct snap_reader *r, struct error *e)
{
	uint32_t version;
	const struct kvm_pit_state2 *pit;
	const struct kvm_clock_data *clock;
	const struct kvm_irq_routing_entry *msi;
	size_t len;
	int ret;

	for (unsigned i = 0; i < 3; i++) {
		const struct kvm_irqchip *chip = snap_get_exact(r, "irqchip", i, 1, sizeof(*chip),
								 e->msg, sizeof(e->msg));

		if (!chip || chip->chip_id != irqchips[i])
			return error_set(e, ERROR_USAGE, "snapshot: interrupt controller %u is missing "
				       "or malformed", i);
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, chip) < 0)
			return error_set(e, ERROR_RUNTIME, "KVM_SET_IRQCHIP %u: %s", i, strerror(errno));
	}
	pit = snap_get_exact(r, "pit2", 0, 1, sizeof(*pit), e->msg, sizeof(e->msg));
	if (!pit)
		return error_set(e, ERROR_USAGE, "snapshot: no PIT state");
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, pit) < 0)
		return error_set(e, ERROR_RUNTIME, "KVM_SET_PIT2: %s", strerror(errno));
	msi = snap_get_section(r, "msi", 0, 1, &version, &len, e->msg, sizeof(e->msg));
	if (!msi) {
		e->kind = ERROR_USAGE; /* snap_get_section() wrote the message */
		return -EINVAL;
	}
	if (len % sizeof(*msi) || len / sizeof(*msi) != vm->nr_msi)
		return error_set(e, ERROR_USAGE, "snapshot: the MSI routes do not fit this machine");
	for (unsigned i = 0; i < vm->nr_msi; i++)
		if ((msi[i].type != 0 && msi[i].type != KVM_IRQ_ROUTING_MSI) ||
		    (msi[i].type && msi[i].gsi != KILN_MSI_GSI_BASE + i))
			return error_set(e, ERROR_USAGE, "snapshot: MSI route %u is malformed", i);
	pthread_mutex_lock(&vm->msi_lock);
	memcpy(vm->msi, msi, len);
	ret = vm_set_gsi_routing(vm);
	pthread_mutex_unlock(&vm->msi_lock);
	if (ret)
		return error_set(e, ERROR_RUNTIME, "KVM_SET_GSI_ROUTING: %s", strerror(-ret));
	clock = snap_get_exact(r, "clock", 0, 1, sizeof(*clock), e->msg, sizeof(e->msg));
	if (!clock)
		return error_set(e, ERROR_USAGE, "snapshot: no kvmclock");
	/* The guest's clock continues from the moment of the snapshot: it never runs backwards.
	 * With clock_realtime KVM adds the host's real time elapsed since then (KVM API:
	 * KVM_SET_CLOCK, KVM_CLOCK_REALTIME), when the snapshot's KVM_GET_CLOCK recorded it. */
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &(struct kvm_clock_data){
			  .clock = clock->clock,
			  .flags = vm->clock_realtime ? clock->flags & KVM_CLOCK_REALTIME : 0,
			  .realtime = clock->realtime }) < 0)
		return error_set(e, ERROR_RUNTIME, "KVM_SET_CLOCK: %s", strerror(errno));
	if (vm->clock_realtime && !(clock->flags & KVM_CLOCK_REALTIME))
		log_warn("snapshot: its host's KVM recorded no real time; the guest's clock "
			 "continues from the snapshot");
	return 0;
}

static int load_devices(struct vm *vm, const struct snap_reader *r, struct error *e)
{
	struct pci_bus_state bus;
	struct snap_dec d;
	uint32_t version;
	const void *p;
	size_t len;

	e->kind = ERROR_USAGE; /* whatever is refused below, the snapshot is at fault */
	if (devmgr_load(&vm->devices, r, e->msg, sizeof(e->msg)))
		return -EINVAL;
	p = snap_get_section(r, "pcibus", 0, 1, &version, &len, e->msg, sizeof(e->msg));
	if (!p)
		return -EINVAL;
	snap_dec_init(&d, p, len);
	pci_bus_state_decode(&d, &bus);
	if (!snap_dec_done(&d))
		return error_set(e, ERROR_USAGE, "snapshot: section \"pcibus\" is malformed");
	return pci_bus_load(vm->pci, &bus, e->msg, sizeof(e->msg)) ? -EINVAL : 0;
}

/* Section "vm" into @shape: 0, or -EINVAL with @e set. */
static int load_shape(const struct snap_reader *r, struct vm_shape *shape, struct error *e)
{
	struct snap_dec d;
	uint32_t version;
	size_t len;
	const void *p = snap_get_section(r, "vm", 0, 1, &version, &len, e->msg, sizeof(e->msg));

	if (!p)
		return -EINVAL;
	snap_dec_init(&d, p, len);
	shape->nr_cpus = snap_dec_u32(&d);
	shape->nr_virtio = snap_dec_u32(&d);
	shape->nr_devices = snap_dec_u32(&d);
	shape->nr_msi = snap_dec_u32(&d);
	shape->mem_bytes = snap_dec_u64(&d);
	return snap_dec_done(&d) ? 0
				 : error_set(e, ERROR_USAGE, "snapshot: section \"vm\" is malformed");
}

int vm_restore_state(struct vm *vm, const struct snap_reader *r, struct error *e)
{
	struct vm_shape shape = { 0 };
	int ret = load_shape(r, &shape, e);

	if (ret)
		return ret;
	if (shape.nr_cpus != vm->nr_cpus || shape.nr_virtio != vm->devices.nr_virtio ||
	    shape.nr_devices != vm->devices.nr_platform || shape.nr_msi != vm->nr_msi ||
	    shape.mem_bytes != vm->mem.size)
		return error_set(e, ERROR_USAGE, "snapshot: the machine it describes (vCPUs, memory, "
			       "devices) is not the one its configuration makes");
	ret = load_kvm(vm, r, e);
	for (unsigned i = 0; i < vm->nr_cpus && !ret; i++)
		if ((ret = x86_vcpu_load(vm->kvm_fd, vm->vcpu[i].fd, i, r, e->msg, sizeof(e->msg))))
			e->kind = ERROR_USAGE;
	if (!ret)
		ret = load_devices(vm, r, e);
	if (ret)
		return ret;
	devmgr_restored(&vm->devices);
	vm->paused = true; /* vm_run() starts the vCPUs parked */
	return 0;
}
