/* devices — the machine's device registry and the narrow interface devices get from the VM.
 *
 * Owns: struct dev_host (what a device may use: the two buses, interrupt lines, stop requests,
 * the console file descriptor, kiln's start time) and the ordered table of device types that
 * make up the PC. A device never reaches into struct vm or another device; ACPI descriptions
 * come from each device's describe() so the DSDT always matches the devices that exist.
 */
#ifndef KILN_DEVICES_H
#define KILN_DEVICES_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kiln/bus.h"
#include "kiln/loop.h"

struct acpi_config;
struct guest_mem;

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
};

struct dev_host {
	struct bus *pio;
	struct bus *mmio;
	/* Drive ISA IRQ / GSI @gsi to @level (edge-triggered lines raise on 0->1). */
	void (*set_irq)(struct dev_host *host, unsigned gsi, bool level);
	/* Ask the VM to stop; the first reason wins. Callable from any thread. */
	void (*request_stop)(struct dev_host *host, enum vm_stop_reason reason);
	/* Call @cb(@opaque) on kiln's event loop thread each time @fd becomes readable; @fd stays
	 * the caller's. Returns 0 or -errno. */
	int (*watch_fd)(struct dev_host *host, int fd, void (*cb)(void *opaque), void *opaque);
	/* Stop (@paused) or restart calling the callback of a watched @fd, e.g. while the guest
	 * has no room for what it would read. Event loop thread. Returns 0 or -errno. */
	int (*pause_fd)(struct dev_host *host, int fd, bool paused);
	/* Serve @p on the event loop from now on (it is copied). Returns 0 or -errno. */
	int (*add_poller)(struct dev_host *host, const struct loop_poller *p);
	/* KVM_IOEVENTFD: a guest write of @len bytes (1, 2, 4 or 8) equal to @value at MMIO
	 * (@mmio) or port address @addr signals eventfd @fd without leaving the guest.
	 * Returns 0 or -errno. */
	int (*ioeventfd)(struct dev_host *host, bool mmio, uint64_t addr, uint32_t len,
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
	struct timespec start;  /* CLOCK_MONOTONIC when kiln started */
	struct timespec start_cpu; /* CLOCK_PROCESS_CPUTIME_ID when kiln started */
	struct timespec vm_start, vm_start_cpu; /* the same when the VM was made */
};

struct device_type {
	const char *name;
	/* Create the device, claim its addresses on host's buses, return its state in @state.
	 * Returns 0 or -errno. */
	int (*create)(struct dev_host *host, void **state);
	void (*destroy)(void *state);
	/* Add this device's ACPI description to @acpi (may be NULL when it has none). */
	void (*describe)(void *state, struct acpi_config *acpi);
	/* Snapshot (may be NULL with state_size 0: nothing the guest can observe): copy the
	 * guest-visible state into @buf (state_size bytes, a fixed little-endian layout), and
	 * give it back to a device create() just made, refusing out-of-range values with -EINVAL
	 * and a message in @err. The VM is paused. */
	size_t state_size;
	void (*save)(void *state, void *buf);
	int (*load)(void *state, const void *buf, char *err, size_t errlen);
};

/* The PC's legacy devices, in creation order, NULL-terminated. */
extern const struct device_type *const pc_device_types[];

/* Device types, one per file under src/devices/legacy/. */
extern const struct device_type uart_8250_type;   /* COM1 at 0x3f8, IRQ 4 */
extern const struct device_type i8042_type;       /* keyboard controller: reset line, CAD */
extern const struct device_type cmos_rtc_type;    /* MC146818 RTC + CMOS at 0x70 */
extern const struct device_type acpi_pm_type;     /* PM1a event/control: S5 poweroff */
extern const struct device_type boot_timer_type;  /* MMIO 0xC0000000: Firecracker boot timer */
extern const struct device_type pvpanic_type;     /* port 0x505: guest panic notification */
extern const struct device_type post_port_type;   /* port 0x80: io_delay sink */

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
int i8042_send_ctrl_alt_del(void *i8042_state);

#endif
