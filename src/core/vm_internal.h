/* SPDX-License-Identifier: Apache-2.0 */
/* vm_internal — struct vm and struct vcpu, shared by the files of src/core only. */
#ifndef KILN_VM_INTERNAL_H
#define KILN_VM_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <linux/kvm.h>

#include "kiln/boot.h"
#include "kiln/bus.h"
#include "kiln/devices.h"
#include "kiln/guest_mem.h"
#include "kiln/pci.h"
#include "kiln/pflash.h"
#include "kiln/vm.h"
#include "kiln/x86.h"
#include "devmgr.h"

struct vcpu {
	struct vm *vm;
	unsigned index;         /* also the APIC ID */
	int fd;
	struct kvm_run *run;    /* shared page(s) mapped from the vCPU fd */
	pthread_t thread;
	bool started;
};

struct vm {
	int kvm_fd, vm_fd;
	int serial_fd;                  /* vm_config.serial_out_path opened, or -1 */
	struct guest_mem mem;
	struct bus pio, mmio;
	struct dev_host host;
	struct devmgr devices;
	struct pci_bus *pci;
	pthread_mutex_t msi_lock;       /* the MSI routes below and KVM_SET_GSI_ROUTING */
	unsigned nr_msi;                /* GSIs KILN_MSI_GSI_BASE .. + nr_msi are allocated */
	struct kvm_irq_routing_entry *msi; /* [KILN_MSI_GSI_MAX]; type 0 until routed */
	struct boot_info boot;
	void *rom;                      /* the firmware image in its read-only memory slot, or NULL */
	size_t rom_len;                 /* bytes */
	struct vm_flash *flash;         /* UEFI: the code and variable store flash, or NULL */
	unsigned nr_cpus;
	bool clock_realtime;            /* vm_config.clock_realtime */
	bool smt;                       /* two threads per core */
	const struct x86_template *cpu_template; /* applied to every vCPU's CPUID and MSRs (static,
					   or the configuration's, which outlives the VM) */
	size_t run_size;
	struct vcpu *vcpu;
	struct loop *loop;              /* the front end's; the VM's registrations carry owner vm */
	pthread_mutex_t pause_lock;     /* paused, nr_parked */
	pthread_cond_t pause_cond;      /* parked vCPUs wait for resume; vm_pause() for them */
	bool paused;                    /* vCPUs are to stay out of KVM_RUN */
	unsigned nr_parked;
	int stop_efd;                   /* eventfd: a stop was requested */
	_Atomic int stop_reason;        /* enum vm_stop_reason, first request wins */
	int stop_signal;
	unsigned guest_exit_status;     /* set by the request that stopped it with VM_STOP_GUEST_EXIT */
	struct log_once unhandled_exit;
	int uffd;                       /* restored with a Uffd memory backend: its userfaultfd */
	int uffd_sock;                  /* and the connection to its page-fault handler */
	bool track_dirty;               /* slots log dirty pages (diff snapshots or a migration) */
	bool user_track_dirty;          /* the configuration asked for it (track_dirty_pages) */
	bool diff_ready;                /* the bitmap holds everything since the last snapshot */
	uint64_t *dirty;                /* pages dirtied since the last snapshot, a bit per page */
	struct vm_migration *migration; /* an outgoing migration, or NULL */
};

/* Record @e's failure as the fault of configuration input @input (enum vm_input) and return
 * -EINVAL / -EIO as error_set() does. */
int vm_fail(struct error *e, int input, enum error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The VM whose dev_host @host is. */
static inline struct vm *host_vm(struct dev_host *host)
{
	return (struct vm *)((char *)host - offsetof(struct vm, host));
}

/* Interrupt routing (irq.c): the MSI route table and the dev_host operations on interrupts
 * (set_irq, ioeventfd, irqfd, alloc_msi_gsi, set_msi_route). init returns 0 or -ENOMEM;
 * destroy undoes it (after init, whatever it returned). */
int vm_irq_init(struct vm *vm) __attribute__((warn_unused_result));
void vm_irq_destroy(struct vm *vm);

/* The stop protocol (run.c): the pause lock and condition, the stop eventfd on the loop and
 * dev_host's request_stop. init returns 0 or -errno; destroy undoes it (after init, whatever
 * it returned). */
int vm_stop_init(struct vm *vm) __attribute__((warn_unused_result));
void vm_stop_destroy(struct vm *vm);

/* True when the file at @path is a kernel boot_load() takes as multiboot (its first 8192
 * bytes say so); false too when it cannot be read (vm_load_guest() reports that). */
bool vm_kernel_is_multiboot(const char *path);

/* Lay out ACPI tables (@acpi), boot page tables, kernel, initrd or modules and @cmdline in guest memory
 * (load.c). Returns 0 or -errno with @e set (input: the kernel, initrd or command line at
 * fault). */
struct acpi_config;
int vm_load_guest(struct vm *vm, const struct vm_config *cfg, const struct acpi_config *acpi,
		  const char *cmdline, struct error *e) __attribute__((warn_unused_result));

/* The firmware cfg->firmware_path (load.c): the file checked (boot_firmware_check()), a copy
 * of it in a read-only KVM memory slot (KVM_MEM_READONLY) ending at 4 GiB, and, for a fresh
 * boot (@boot), its low copy below 1 MiB and vm->boot at the reset vector. A restore (!@boot)
 * maps the image again; the low copy is in the snapshot's RAM. With cfg->firmware_vars_path,
 * UEFI firmware instead: the code checked (boot_uefi_code_check()) in that slot as a read-only
 * flash, the variable store (boot_uefi_vars_check()) mapped from its file directly below as a
 * writable flash (include/kiln/pflash.h) in vm->flash, no low copy. Returns 0 or -errno with
 * @e set (input VM_INPUT_FIRMWARE: a file missing, unreadable or of a wrong size). */
int vm_load_firmware(struct vm *vm, const struct vm_config *cfg, bool boot, struct error *e)
	__attribute__((warn_unused_result));

/* QEMU's direct-boot items (QEMU 7.2 hw/i386/x86.c x86_load_linux; docs/specs/fw_cfg.rst) in
 * @fw for firmware that loads the kernel itself, as OVMF's QemuKernelLoaderFsDxe does with
 * `qemu -bios OVMF.fd -kernel`: cfg->kernel_path, a bzImage, split into its setup (boot
 * sector and setup sectors: setup_sects, 4 when 0, plus one, of 512 bytes; Linux boot protocol
 * "The Real-Mode Kernel Header") and the rest, cfg->initrd_path when given, and @cmdline with
 * its NUL. Returns 0 or -errno with @e set (VM_INPUT_KERNEL: not a bzImage or over
 * FW_CFG_MAX_ITEM_SIZE; VM_INPUT_INITRD: too big; either: missing or unreadable). */
struct fw_cfg;
int vm_fw_cfg_kernel(struct fw_cfg *fw, const struct vm_config *cfg, const char *cmdline,
		     struct error *e) __attribute__((warn_unused_result));

/* Release a UEFI VM's flash (vm->flash, made by vm_load_firmware() with firmware_vars_path):
 * the variable store's mapping is unmapped, so a shared one's writes stay in its file.
 * Nothing when there is none. */
void vm_flash_free(struct vm *vm);

/* Make every vCPU (vcpu.c): KVM_CREATE_VCPU and its kvm_run mapped, nothing set yet. A
 * migration's destination does this while the memory arrives. Returns 0 or -errno with @e set
 * (vm_destroy() closes what was made). */
int vm_open_vcpus(struct vm *vm, struct error *e) __attribute__((warn_unused_result));

/* Set up the vCPUs vm_open_vcpus() made, once the guest is laid out: at the boot entry with
 * this host's CPUID shaped by the VM's CPU template and topology (vm->cpu_template,
 * vm->nr_cpus, vm->smt) and the template's MSRs, or with @snap, with the snapshot's CPUID once
 * checked against that same shaping of this host's (the rest of its state, MSRs included,
 * comes from vm_restore_state()). Returns 0 or -errno with @e set. */
int vm_configure_vcpus(struct vm *vm, const struct snap_reader *snap, struct error *e)
	__attribute__((warn_unused_result));

/* (Re)register guest memory's KVM slots, logging dirty pages or not. Returns 0 or -errno. */
int vm_set_memory_slots(struct vm *vm, bool log_dirty);

/* Stop the outgoing migration's thread (its socket shut down), join it and free it; nothing
 * when there is none. Event loop thread. */
void vm_migration_free(struct vm *vm);

/* KVM_SET_GSI_ROUTING from the PC's fixed routes and vm->msi; msi_lock held or no vCPU
 * running. Returns 0 or -errno. */
int vm_set_gsi_routing(struct vm *vm);

/* Restore with a Uffd backend (src/core/uffd.c): anonymous guest memory registered with a
 * new userfaultfd, which goes to the page-fault handler listening at mb->path with the
 * layout of the memory. */
int vm_restore_uffd(struct vm *vm, const struct vm_config *cfg, const struct vm_mem_backend *mb,
		    struct error *e);

/* Every section of a snapshot but guest memory into @w, with @config as section "config";
 * the VM paused. Returns 0 or -errno with a message in @err. */
struct snap_writer;
int vm_save_state(struct vm *vm, const void *config, size_t config_len, struct snap_writer *w,
		  char *err, size_t errlen);

/* Walk guest memory in runs of pages: every non-zero page (@dirty false), or every page whose
 * vm->dirty bit is set (taking the bits). @emit(@ctx, host pointer, offset, bytes) gets each
 * run, at most @max_run bytes. Returns pages emitted or the first error @emit returned. */
int64_t vm_page_runs(struct vm *vm, bool dirty, uint64_t max_run,
		     int (*emit)(void *ctx, const uint8_t *p, uint64_t off, uint64_t len), void *ctx);

/* Whether every started vCPU is parked (vm_pause() succeeded and nothing resumed since). */
bool vm_all_parked(struct vm *vm);

/* Fold KVM's dirty log of every slot into vm->dirty (needs vm->track_dirty). 0 or -errno. */
int vm_collect_dirty(struct vm *vm);

/* Restore (src/core/snapshot.c): guest memory from @mb, sized as @cfg says, instead of fresh
 * RAM; then, once devices and vCPUs exist, every piece of state from @r. */
struct snap_reader;
int vm_restore_memory(struct vm *vm, const struct vm_config *cfg, const struct vm_mem_backend *mb,
		      struct error *e);
int vm_restore_state(struct vm *vm, const struct snap_reader *r, struct error *e);

/* Make vCPU @index: KVM_CREATE_VCPU and its kvm_run mapped. Returns 0 or -errno. */
int vcpu_open(struct vm *vm, struct vcpu *vcpu, unsigned index) __attribute__((warn_unused_result));

/* Set @cpuid on @vcpu (already patched for it, or the snapshot's) and, with @boot, the boot
 * state (a restore sets the snapshot's instead). Returns 0 or -errno. */
int vcpu_configure(struct vcpu *vcpu, const struct kvm_cpuid2 *cpuid, bool boot)
	__attribute__((warn_unused_result));

/* Start the thread that runs @vcpu until the VM stops. Returns 0 or -errno. */
int vcpu_start(struct vcpu *vcpu) __attribute__((warn_unused_result));

/* Make a running vCPU leave KVM_RUN now (it then parks or ends, as vm->paused and
 * vm->stop_reason say). Any thread. */
void vcpu_kick(struct vcpu *vcpu);

/* Make a running vCPU leave KVM_RUN and its thread end; then join it. */
void vcpu_stop(struct vcpu *vcpu);

/* Release the vCPU's fd and mapping. */
void vcpu_exit(struct vcpu *vcpu);

/* Record @reason if it is the first and wake the main loop (any thread). */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason);

#endif
