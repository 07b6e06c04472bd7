/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_transport — how a virtio device reaches the guest: virtio-pci (virtio 1.2 §4.1) or
 * virtio-mmio (§4.2), behind one ops table, and the queue notifications both share.
 *
 * Owns: the transports' registers, their interrupts (MSI-X / INTx, or an irqfd per mmio slot)
 * and the ioeventfd per queue through which the driver's notifications reach kiln's event
 * loop without a vCPU exit. The VM's device manager attaches every virtio device with the
 * transport the configuration chose and only talks to it through struct virtio_transport_ops.
 */
#ifndef KILN_VIRTIO_TRANSPORT_H
#define KILN_VIRTIO_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/virtio.h"

struct acpi_config;
struct dev_host;
struct snap_reader;
struct snap_writer;

/* What the device manager does with a transport. */
struct virtio_transport_ops {
	const char *name;            /* "virtio-pci", "virtio-mmio" */
	/* Attach @dev as the VM's @index-th virtio device (< KILN_VIRTIO_SLOTS): register on
	 * @host's buses, wire notifications and interrupts, and return the transport in *out.
	 * Returns 0 or -errno (-ENOSPC: no slot left). */
	int (*create)(struct dev_host *host, struct virtio_dev *dev, unsigned index, void **out);
	void (*destroy)(void *t);
	/* What ACPI and the kernel command line must say for the guest to find the device (may
	 * be NULL: virtio-pci devices are found by enumerating the bus). cmdline appends to @buf
	 * and returns what snprintf returns. */
	void (*describe)(void *t, struct acpi_config *acpi);
	int (*cmdline)(void *t, char *buf, size_t len);
	/* Snapshot of the transport's registers and its device (sections named after the
	 * transport / @instance, and virtio_dev_save()); load gives them back to a transport made
	 * with the same configuration. Returns 0 or -EINVAL with a message in @err. */
	void (*save)(void *t, struct snap_writer *w, uint32_t instance);
	int (*load)(void *t, const struct snap_reader *r, uint32_t instance, char *err,
		    size_t errlen);
};

/* The modern virtio-pci transport (§4.1) on host->pci: vendor capabilities for the common,
 * notify, ISR, device and PCI-config windows in BAR 0, MSI-X (a vector per queue plus
 * configuration changes) and INTx when MSI-X is off. */
extern const struct virtio_transport_ops virtio_pci_ops;

/* The virtio-mmio transport (§4.2, version 2): slot @index at KILN_VIRTIO_MMIO_BASE + index *
 * KILN_VIRTIO_MMIO_SIZE on GSI KILN_VIRTIO_MMIO_GSI + index, described in the DSDT as
 * "LNRO0005" and on the command line as virtio_mmio.device=... */
extern const struct virtio_transport_ops virtio_mmio_ops;

/* Queue notifications of one device (§2.9), shared by the transports. */
struct virtio_kick {
	struct virtio_dev *dev;
	unsigned q;
	int fd;  /* eventfd, -1 for queues the device does not have */
	struct loop *loop; /* where fd is watched */
};

/* An eventfd per queue of @dev (kicks[VIRTIO_MAX_QUEUES]), served on host's event loop, and a
 * KVM_IOEVENTFD for a @len-byte MMIO write of the queue index at @addr + q * @stride.
 * Returns 0 or -errno; virtio_kicks_destroy() releases what was made either way. */
int virtio_kicks_create(struct virtio_kick *kicks, struct virtio_dev *dev, struct dev_host *host,
			uint64_t addr, uint64_t stride, uint32_t len) __attribute__((warn_unused_result));
void virtio_kicks_destroy(struct virtio_kick *kicks);

/* The notify addresses moved (a PCI BAR the guest placed elsewhere): each queue's
 * KVM_IOEVENTFD at @addr + q * @stride leaves for @new_addr + q * @stride. A queue whose move
 * fails still reaches the device through the MMIO exit at its new address. Returns 0 or the
 * first -errno. */
int virtio_kicks_move(struct virtio_kick *kicks, struct dev_host *host, uint64_t addr,
		      uint64_t new_addr, uint64_t stride, uint32_t len)
	__attribute__((warn_unused_result));

/* A notification that reached kiln as an MMIO exit: hand it to the event loop the same way.
 * Returns false for a queue that does not exist. */
bool virtio_kick(struct virtio_kick *kicks, unsigned q);

#endif
