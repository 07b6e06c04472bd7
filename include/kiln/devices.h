/* SPDX-License-Identifier: Apache-2.0 */
/* devices — what a device is to the VM: the device class every device implements, and the
 * narrow interface (struct dev_host) a device gets from the VM.
 *
 * Owns: struct device_class, the same shape for every device, platform or virtio: create from
 * the class's own configuration, destroy, describe (what ACPI says of it), its id for lookups,
 * checks against the rest of the configuration, counters, and snapshot state. The ordered
 * table of classes is src/devices/registry.c; the VM's device manager (src/core/devmgr.c)
 * creates instances from it. A device never reaches into struct vm, another device or a front
 * end: its errors name the object and the value, never a command-line option.
 */
#ifndef KILN_DEVICES_H
#define KILN_DEVICES_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kiln/bus.h"
#include "kiln/error.h"
#include "kiln/loop.h"
#include "kiln/rate_limiter.h"

struct acpi_config;
struct guest_mem;
struct snap_dec;
struct snap_enc;
struct pci_bus;
struct vm_config;

/* Why the VM stops; the command line maps each to an exit code. */
enum vm_stop_reason {
	VM_STOP_NONE = 0,
	VM_STOP_POWEROFF,       /* ACPI S5 */
	VM_STOP_RESET,          /* keyboard-controller reset or reboot request */
	VM_STOP_PANIC,          /* guest reported a panic (pvpanic) */
	VM_STOP_TRIPLE_FAULT,   /* KVM_EXIT_SHUTDOWN */
	VM_STOP_INTERNAL_ERROR, /* KVM or kiln could not continue the guest */
	VM_STOP_SIGNAL,         /* SIGINT/SIGTERM to kiln */
	VM_STOP_MIGRATED,       /* the guest now runs in another kiln (vm_migrate_start) */
	VM_STOP_GUEST_EXIT,     /* the guest chose kiln's exit status (isa-debug-exit) */
};

struct dev_host {
	struct bus *pio;
	struct bus *mmio;
	struct pci_bus *pci;         /* bus 0, for the virtio-pci transport */
	/* Drive ISA IRQ / GSI @gsi to @level (edge-triggered lines raise on 0->1). */
	void (*set_irq)(struct dev_host *host, unsigned gsi, bool level);
	/* Ask the VM to stop; the first reason wins. Callable from any thread. */
	void (*request_stop)(struct dev_host *host, enum vm_stop_reason reason);
	/* Ask the VM to stop with VM_STOP_GUEST_EXIT and process exit status @status (its low 8
	 * bits reach the shell, as exit() gives them); the first stop request wins. Any thread. */
	void (*request_exit)(struct dev_host *host, unsigned status);
	/* kiln's event loop (include/kiln/loop.h): devices register their descriptors, timers,
	 * pollers and tasks there with this dev_host as the owner, so that the VM takes them all
	 * back when it is destroyed. Loop thread only, except loop_task_schedule(). */
	struct loop *loop;
	/* KVM_IOEVENTFD: a guest write of @len bytes (1, 2, 4 or 8) equal to @value at MMIO
	 * (@mmio) or port address @addr signals eventfd @fd without leaving the guest.
	 * Returns 0 or -errno. */
	int (*ioeventfd)(struct dev_host *host, bool mmio, uint64_t addr, uint32_t len,
			 uint64_t value, int fd);
	/* Undo ioeventfd() with the same arguments (KVM_IOEVENTFD_FLAG_DEASSIGN), when the
	 * address moves. Returns 0 or -errno. */
	int (*ioeventfd_remove)(struct dev_host *host, bool mmio, uint64_t addr, uint32_t len,
				uint64_t value, int fd);
	/* KVM_IRQFD: each write to eventfd @fd raises GSI @gsi (an edge). Returns 0 or -errno. */
	int (*irqfd)(struct dev_host *host, unsigned gsi, int fd);
	/* A free GSI for an MSI route (>= KILN_MSI_GSI_BASE), or -ENOSPC. */
	int (*alloc_msi_gsi)(struct dev_host *host);
	/* Route GSI @gsi to the MSI message @addr/@data (KVM_SET_GSI_ROUTING). Any thread.
	 * Returns 0 or -errno. */
	int (*set_msi_route)(struct dev_host *host, unsigned gsi, uint64_t addr, uint32_t data);
	const struct guest_mem *mem; /* guest RAM, for devices that do DMA (virtio) */
	int console_out_fd;     /* where the serial console writes */
	struct token_bucket_config console_out_limit; /* bytes per refill time the serial console
					may write; the rest is dropped; zero: no limit */
	struct timespec start;  /* CLOCK_MONOTONIC when kiln started */
	struct timespec start_cpu; /* CLOCK_PROCESS_CPUTIME_ID when kiln started */
	struct timespec vm_start, vm_start_cpu; /* the same when the VM was made */
};

enum device_kind {
	DEVICE_PLATFORM, /* a fixed part of the PC on the buses itself (8250, i8042, ...) */
	DEVICE_VIRTIO,   /* a virtio device: create() returns a struct virtio_dev, which the VM
			    attaches with the configured transport (virtio-pci or virtio-mmio) */
};

/* One counter of a device, for metrics: a name (lower_case, stable) and its value since the
 * device was made. */
struct device_counter {
	const char *name;
	uint64_t value;
};

#define DEVICE_MAX_COUNTERS 12

/* Copy the first (up to @max) of a class's @n counters @all into @out; returns how many. For
 * device_class.counters. */
static inline unsigned device_counters_copy(struct device_counter *out, unsigned max,
					    const struct device_counter *all, unsigned n)
{
	unsigned k = 0;

	for (; k < max && k < n; k++)
		out[k] = all[k];
	return k;
}

struct device_class {
	const char *name;        /* the object in messages and metrics ("disk", "net", "uart") */
	enum device_kind kind;
	unsigned max;            /* instances one VM may have (0: as many as there are slots) */
	/* Create instance @index (0-based among this class's instances) from @config (the class's
	 * own configuration struct, NULL for platform devices), claim its addresses on @host's
	 * buses and return its state in *state (a struct virtio_dev * for DEVICE_VIRTIO). Returns
	 * 0, or -errno with @e set: the message names the object and the value, the kind says
	 * whether the user's input is at fault. */
	int (*create)(struct dev_host *host, const void *config, unsigned index, void **state,
		      struct error *e);
	/* Release a platform device's state (virtio devices: virtio_dev_free()). */
	void (*destroy)(void *state);
	/* Add a platform device's ACPI description to @acpi (may be NULL: it has none; virtio
	 * devices are described by their transport). */
	void (*describe)(void *state, struct acpi_config *acpi);
	/* The configuration's name for an instance (a drive_id, an iface_id), or NULL; may be
	 * NULL when the class has no ids. vm_device_find() looks instances up by it. */
	const char *(*id)(const void *config);
	/* Check entry @entry of @vm's device list (one of this class) against the VM and the
	 * entries before it (duplicate names, a balloon larger than RAM). May be NULL. Returns 0
	 * or -EINVAL with @e set (ERROR_USAGE). */
	int (*check)(const struct vm_config *vm, unsigned entry, struct error *e);
	/* Copy up to @max counters into @out; returns how many. Event loop thread. May be NULL. */
	unsigned (*counters)(void *state, struct device_counter *out, unsigned max);
	/* Snapshot of a platform device, a section named after the class (state_version 0 and
	 * NULL hooks: nothing the guest can observe). save encodes the guest-visible state
	 * little-endian field by field as section version state_version; load gives it back to a
	 * device create() just made, from a section of any version 1..state_version, refusing
	 * out-of-range values with -EINVAL and a message in @err (a short or long section is
	 * refused by the caller). The VM is paused. */
	uint32_t state_version;
	void (*save)(void *state, struct snap_enc *e);
	int (*load)(void *state, struct snap_dec *d, uint32_t version, char *err, size_t errlen);
};

/* The PC's platform devices, in creation order, NULL-terminated: every VM has them. */
extern const struct device_class *const pc_platform_classes[];

/* The classes a configuration may name, in the order their instances are created (disks
 * first, so the first disk is /dev/vda whatever the order of the options), NULL-terminated. */
extern const struct device_class *const device_classes[];

/* The class called @name in device_classes[], or NULL. */
const struct device_class *device_class_find(const char *name);

/* How messages name instance @index of @cls made from @config: "net \"eth0\"" when the
 * configuration gives it an id, else "net0". Writes it into @buf (@len bytes) and returns
 * @buf. */
const char *device_label(const struct device_class *cls, const void *config, unsigned index,
			 char *buf, size_t len);

/* Platform devices, one per file under src/devices/legacy/. */
extern const struct device_class uart_8250_class;   /* COM1 at 0x3f8, IRQ 4 */
extern const struct device_class i8042_class;       /* keyboard controller: reset line, CAD */
extern const struct device_class cmos_rtc_class;    /* MC146818 RTC + CMOS at 0x70 */
extern const struct device_class acpi_pm_class;     /* PM1a event/control: S5 poweroff */
extern const struct device_class boot_timer_class;  /* MMIO 0xC0000000: Firecracker boot timer */
extern const struct device_class pvpanic_class;     /* port 0x505: guest panic notification */
extern const struct device_class post_port_class;   /* port 0x80: io_delay sink */

/* Devices a configuration asks for (device_classes[]), not part of every PC. fw_cfg_class is
 * in kiln/fw_cfg.h. */
extern const struct device_class debug_exit_class;  /* QEMU's isa-debug-exit */
extern const struct device_class debugcon_class;    /* QEMU's isa-debugcon at 0x402 (UEFI) */

/* isa-debug-exit's ports: QEMU's iobase and iosize properties (defaults KILN_PORT_DEBUG_EXIT
 * and 1; iosize 1, 2 or 4). */
struct debug_exit_config {
	uint16_t iobase;
	unsigned iosize;
};

/* Register [base, base + len) of @bus for a platform device called @name. Returns 0, or -EIO
 * with @e set when the range is taken or the bus is full. */
int device_claim(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name, struct error *e) __attribute__((warn_unused_result));

/* Add @desc to @acpi for a device's describe(); a full table is logged, not fatal (the device
 * still works, the guest just cannot enumerate it). */
struct acpi_device_desc;
void device_describe(struct acpi_config *acpi, const struct acpi_device_desc *desc);

/* Serial console input: queue @len bytes from the host terminal into the 8250's receiver.
 * Bytes beyond the receive FIFO are dropped (the caller retries later). Returns bytes taken. */
unsigned uart_8250_receive(void *uart_state, const uint8_t *buf, unsigned len);

/* Type Ctrl+Alt+Del on the i8042's keyboard (scan code set 2, IRQ 1 while the guest enabled
 * it), as Firecracker's SendCtrlAltDel does. Any thread. Returns 0, or -ENOSPC when earlier
 * keys are still unread. */
int i8042_send_ctrl_alt_del(void *i8042_state) __attribute__((warn_unused_result));

#endif
