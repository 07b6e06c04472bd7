/* SPDX-License-Identifier: Apache-2.0 */
/* vcpu — one thread per vCPU running KVM_RUN and dispatching exits to the buses.
 *
 * A vCPU thread never blocks on anything but KVM_RUN and, while the VM is paused, the pause
 * condition; device callbacks are short. To stop or pause, the main thread sets
 * kvm_run.immediate_exit and sends SIGUSR1, so KVM_RUN returns EINTR whether the signal lands
 * before or during the call (KVM API, "immediate_exit").
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kiln/log.h"
#include "kiln/seccomp.h"
#include "kiln/thread.h"
#include "kiln/x86.h"
#include "vm_internal.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define CPUID_MAX_ENTRIES 256

int vcpu_open(struct vm *vm, struct vcpu *vcpu, unsigned index)
{
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0)
		return -errno;
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return -errno;
	}
	return 0;
}

int vcpu_configure(struct vcpu *vcpu, const struct kvm_cpuid2 *cpuid, bool boot)
{
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
		return -errno;
	if (!boot)
		return 0;
	return x86_vcpu_setup(vcpu->fd, &vcpu->vm->boot, vcpu->index == 0);
}

static void kick_handler(int sig) { (void)sig; }

/* Dispatch one KVM_EXIT_IO: @count accesses of @size bytes (string I/O repeats). */
static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	for (uint32_t i = 0; i < run->io.count; i++)
		bus_dispatch(&vcpu->vm->pio, run->io.port, data + (size_t)i * run->io.size,
			     run->io.size, run->io.direction == KVM_EXIT_IO_OUT);
}

static void log_first_run(struct vcpu *vcpu)
{
	struct timespec now, cpu;
	const struct dev_host *h = &vcpu->vm->host;

	if (vcpu->index != 0 || !log_enabled(LOG_INFO))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	log_info("first KVM_RUN: %" PRId64 " us wall, %" PRId64 " us cpu after start",
		 ((int64_t)(now.tv_sec - h->start.tv_sec) * 1000000000 + now.tv_nsec - h->start.tv_nsec) / 1000,
		 ((int64_t)(cpu.tv_sec - h->start_cpu.tv_sec) * 1000000000 + cpu.tv_nsec - h->start_cpu.tv_nsec) / 1000);
}

/* Where the guest was when it died, for the triple-fault and internal-error messages. */
static void log_guest_state(struct vcpu *vcpu)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return;
	log_err("vCPU %u: rip 0x%llx rsp 0x%llx rflags 0x%llx cr0 0x%llx cr2 0x%llx cr3 0x%llx "
		"cr4 0x%llx efer 0x%llx", vcpu->index, regs.rip, regs.rsp, regs.rflags, sregs.cr0,
		sregs.cr2, sregs.cr3, sregs.cr4, sregs.efer);
}

/* Handle one exit; returns the reason to stop, or VM_STOP_NONE to run again. */
static enum vm_stop_reason handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		return VM_STOP_NONE;
	case KVM_EXIT_MMIO:
		bus_dispatch(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			     run->mmio.is_write);
		return VM_STOP_NONE;
	case KVM_EXIT_INTR:
		return VM_STOP_NONE;
	case KVM_EXIT_SHUTDOWN:
		log_warn("vCPU %u: triple fault (KVM_EXIT_SHUTDOWN)", vcpu->index);
		log_guest_state(vcpu);
		return VM_STOP_TRIPLE_FAULT;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN: return VM_STOP_POWEROFF;
		case KVM_SYSTEM_EVENT_RESET: return VM_STOP_RESET;
		case KVM_SYSTEM_EVENT_CRASH: return VM_STOP_PANIC;
		}
		break;
	case KVM_EXIT_FAIL_ENTRY:
		log_err("vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)",
			vcpu->index,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return VM_STOP_INTERNAL_ERROR;
	case KVM_EXIT_INTERNAL_ERROR:
		log_err("vCPU %u: KVM internal error, suberror %u", vcpu->index,
			run->internal.suberror);
		log_guest_state(vcpu);
		return VM_STOP_INTERNAL_ERROR;
	}
	if (log_once_first(&vcpu->vm->unhandled_exit))
		log_err("vCPU %u: unexpected KVM exit reason %u", vcpu->index, run->exit_reason);
	return VM_STOP_INTERNAL_ERROR;
}

/* While the VM is paused, wait outside KVM_RUN; counted in nr_parked so vm_pause() knows. */
static void park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->pause_lock);
	if (vm->paused) {
		vm->nr_parked++;
		pthread_cond_broadcast(&vm->pause_cond);
		while (vm->paused && atomic_load(&vm->stop_reason) == VM_STOP_NONE)
			pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
		vm->nr_parked--;
	}
	/* The kick that brought us here must not end the next KVM_RUN at once. Under the lock:
	 * a pause that comes later kicks (sets it again) only after taking the lock. */
	vcpu->run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->pause_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	bool first = true;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	log_set_thread_name(name); /* ps, top, the log lines and the log of a trapped call */
	seccomp_enter(SECCOMP_VCPU);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	park(vcpu); /* a restored VM starts paused */
	while (atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
		enum vm_stop_reason reason;

		if (first)
			log_first_run(vcpu);
		first = false;
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			/* Park only here: a kicked KVM_RUN (immediate_exit) first completes the I/O
			 * or MMIO exit handled last (RIP advanced, IN data in RAX), so the state a
			 * paused vCPU shows a snapshot is consistent (KVM API, "KVM_RUN"). */
			if (errno == EINTR || errno == EAGAIN) {
				park(vcpu);
				continue;
			}
			log_err("vCPU %u: KVM_RUN: %s", vcpu->index, strerror(errno));
			vm_request_stop(vm, VM_STOP_INTERNAL_ERROR);
			break;
		}
		reason = handle_exit(vcpu);
		if (reason != VM_STOP_NONE)
			vm_request_stop(vm, reason);
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigset_t block, old;
	int ret;

	/* No SA_RESTART: the kick must make KVM_RUN return EINTR. */
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	/* The thread starts with the kick blocked and unblocks it itself. */
	sigemptyset(&block);
	sigaddset(&block, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ret = -kiln_thread_create(&vcpu->thread, vcpu_thread, vcpu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	vcpu->started = ret == 0;
	return ret;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	vcpu->run->immediate_exit = 1;
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_stop(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	vcpu_kick(vcpu);
	pthread_join(vcpu->thread, NULL);
	vcpu->started = false;
}

void vcpu_exit(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

/* What this host gives every vCPU of @vm before the per-vCPU patch: KVM_GET_SUPPORTED_CPUID
 * with the VM's CPU template applied (first, as Firecracker applies it before it normalizes
 * the topology) and the entries the VM's topology needs. NULL with @e set on failure; the
 * caller frees. */
static struct kvm_cpuid2 *vm_cpuid(struct vm *vm, const struct x86_cpu_topology *topo,
				   struct error *e)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) +
					     CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]));

	if (!cpuid) {
		error_set(e, ERROR_RUNTIME, "out of memory");
		return NULL;
	}
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		error_set(e, ERROR_RUNTIME, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		goto out_free;
	}
	if (x86_template_apply(cpuid, vm->cpu_template, e->msg, sizeof(e->msg))) {
		e->kind = ERROR_USAGE;
		goto out_free;
	}
	if (x86_cpuid_prepare(cpuid, CPUID_MAX_ENTRIES, topo)) {
		error_set(e, ERROR_RUNTIME, "KVM_GET_SUPPORTED_CPUID: %u entries leave no room for "
			  "the topology leaves", cpuid->nent);
		goto out_free;
	}
	return cpuid;
out_free:
	free(cpuid);
	return NULL;
}

int vm_open_vcpus(struct vm *vm, struct error *e)
{
	int ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);

	if (ret <= 0)
		return error_set(e, ERROR_RUNTIME, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = ret;
	vm->vcpu = calloc(vm->nr_cpus, sizeof(*vm->vcpu));
	if (!vm->vcpu)
		return error_set(e, ERROR_RUNTIME, "out of memory for %u vCPUs", vm->nr_cpus);
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vm->vcpu[i].fd = -1;
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		if ((ret = vcpu_open(vm, &vm->vcpu[i], i)))
			return error_set(e, ERROR_RUNTIME, "vCPU %u: %s", i, strerror(-ret));
	return 0;
}

int vm_configure_vcpus(struct vm *vm, const struct snap_reader *snap, struct error *e)
{
	const struct x86_cpu_topology topo = { .nr_cpus = vm->nr_cpus, .smt = vm->smt };
	struct kvm_cpuid2 *cpuid, *mine;
	size_t size;
	int ret = 0;

	if (!(cpuid = vm_cpuid(vm, &topo, e)))
		return error_code(e);
	size = sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]);
	mine = malloc(size);
	for (unsigned i = 0; i < vm->nr_cpus && mine; i++) {
		const struct kvm_cpuid2 *set = mine;

		memcpy(mine, cpuid, size);
		x86_cpuid_patch(mine, i, &topo);
		/* A restored vCPU gets the CPUID it had, once this host can offer what it shows. */
		if (snap && !(set = x86_snapshot_cpuid(snap, i, mine, e->msg, sizeof(e->msg)))) {
			e->kind = ERROR_USAGE;
			ret = -EINVAL;
			goto out;
		}
		ret = vcpu_configure(&vm->vcpu[i], set, !snap);
		if (ret) {
			ret = error_set(e, ERROR_RUNTIME, "vCPU %u: %s", i, strerror(-ret));
			goto out;
		}
		if (!snap && x86_template_set_msrs(vm->vcpu[i].fd, vm->cpu_template, e->msg,
						   sizeof(e->msg))) {
			e->kind = ERROR_RUNTIME;
			ret = error_code(e);
			goto out;
		}
	}
	ret = mine ? 0 : error_set(e, ERROR_RUNTIME, "out of memory");
out:
	free(mine);
	free(cpuid);
	return ret;
}
