/* SPDX-License-Identifier: Apache-2.0 */
/* vm_config — what a VM is made of, as every front end describes it: boot files, vCPUs,
 * memory, and an ordered list of devices, each a device class with that class's own
 * configuration.
 *
 * Owns: struct vm_config and the checks across a whole configuration that every front end
 * shares (slot counts, instances per class, duplicate names, each class's own check). The
 * command line (src/cli/args.c) and Firecracker's configuration (src/fc/config.c) both fill
 * it; neither knows the other.
 */
#ifndef KILN_VM_CONFIG_H
#define KILN_VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kiln/error.h"
#include "kiln/layout.h"
#include "kiln/rate_limiter.h"
#include "kiln/x86.h"

#define VM_DEFAULT_CMDLINE "console=ttyS0"
#define VM_DEFAULT_CPUS 1
#define VM_DEFAULT_MEM_MIB 512
#define VM_MAX_DEVICES 16        /* configured devices */
#define VM_MAX_PLATFORM 16       /* the PC's own devices (COM1, i8042, RTC, ...) */
#define VM_MAX_VIRTIO KILN_VIRTIO_SLOTS /* virtio devices: one transport slot each */

enum vm_transport { VM_TRANSPORT_PCI, VM_TRANSPORT_MMIO };

/* Which input of a configuration an error is about (struct error.input): a VM setting, or
 * VM_INPUT_DEVICE + i for device[i]. */
enum vm_input {
	VM_INPUT_NONE,
	VM_INPUT_CPUS,
	VM_INPUT_MEMORY,
	VM_INPUT_KERNEL,
	VM_INPUT_INITRD,
	VM_INPUT_CMDLINE,
	VM_INPUT_FIRMWARE,
	VM_INPUT_DEVICE = 100,
};

struct device_class;

/* One configured device: its class and the class's configuration (struct disk_config for
 * virtio_blk_class, ...), which the caller owns and which must outlive the VM. */
struct vm_device_config {
	const struct device_class *cls;
	const void *config;
};

struct vm_config {
	const char *kernel_path;     /* NULL with firmware_path */
	const char *firmware_path;   /* a BIOS image (boot_firmware_check()) the VM starts in
					instead of a kernel, on QEMU's PC (i440FX host bridge,
					fw_cfg); with firmware_vars_path the code of a UEFI
					firmware (OVMF) instead; NULL: direct kernel boot */
	const char *firmware_vars_path; /* UEFI: the variable store flash file (OVMF's VARS)
					that goes directly below firmware_path's code; NULL: a BIOS */
	bool firmware_vars_private;  /* the guest's variable writes stay in a private copy of
					firmware_vars_path for this VM's life; false: they are
					written to the file (kiln run hands a memfd copy made
					once, so that they outlive guest resets) */
	const char *initrd_path;     /* NULL: none */
	const char *cmdline;
	unsigned nr_cpus;
	bool huge_pages;             /* guest RAM on 2 MiB hugetlbfs pages (Firecracker's huge_pages
					"2M"), reserved when the VM is made: mem_bytes a multiple of
					2 MiB, no balloon; false: 4 KiB pages, transparent huge pages
					advised. A restore maps its memory file as it is */
	bool smt;                    /* two threads per core (Firecracker's smt): nr_cpus must be
					1 or even */
	enum x86_cpu_template cpu_template; /* Firecracker's static CPU template; a boot refuses
					       one that does not fit this host's CPU */
	const struct x86_template *custom_template; /* a custom CPU template (Firecracker's
					       /cpu-config; borrowed, outlives the VM), applied
					       instead of cpu_template on any CPU; NULL: none */
	uint64_t mem_bytes;
	enum vm_transport transport; /* how virtio devices attach */
	unsigned nr_devices;
	struct vm_device_config device[VM_MAX_DEVICES];
	bool track_dirty_pages;      /* log dirtied pages for diff snapshots (Firecracker's
					track_dirty_pages) */
	bool clock_realtime;         /* vm_restore(): the guest's kvmclock also counts the host's
					real time since the snapshot (KVM_CLOCK_REALTIME, where the
					snapshot's host had it), not only the time the VM ran */
	const char *serial_out_path; /* the serial console's output: this file (created) or named
					pipe (opened read-write, so it needs no reader yet),
					non-blocking; NULL: standard output */
	struct token_bucket_config serial_out_limit; /* bytes the serial console may write per
					refill time; the rest is dropped (Firecracker's /serial
					rate_limiter); zero: no limit */
	/* When kiln started (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID), for the boot timer; zero:
	 * when vm_create() runs. */
	struct timespec start, start_cpu;
};

/* Append a device of class @cls with configuration @config (borrowed) to @cfg. Returns 0, or
 * -EINVAL with @e set (ERROR_USAGE, input VM_INPUT_DEVICE + its index) when the list is full. */
int vm_config_add(struct vm_config *cfg, const struct device_class *cls, const void *config,
		  struct error *e) __attribute__((warn_unused_result));

/* The checks across a whole configuration, shared by every front end: at most VM_MAX_VIRTIO
 * virtio devices, each class's instance limit, unique names within a class, and each class's
 * own check (a NIC's MAC, a balloon larger than RAM). Returns 0 or -EINVAL with @e set
 * (ERROR_USAGE; input VM_INPUT_DEVICE + the index of the entry at fault). */
int vm_config_check(const struct vm_config *cfg, struct error *e)
	__attribute__((warn_unused_result));

/* The index of device[@entry] among the devices of its class in @cfg (0 for the first). */
unsigned vm_config_class_index(const struct vm_config *cfg, unsigned entry);

#endif
