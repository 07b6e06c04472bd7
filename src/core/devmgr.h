/* SPDX-License-Identifier: Apache-2.0 */
/* devmgr — the VM's device manager: the instances of every device class the VM has, created
 * from the registry (include/kiln/devices.h) and the configuration's device list, with their
 * transports; shared by the files of src/core only.
 *
 * Owns: the instances and their order (platform devices, then configured devices grouped by
 * class in registry order, within a class in configuration order), attaching virtio devices
 * to the configured transport, what ACPI and the kernel command line say of them, their
 * snapshot sections, lookups by class and id, and their teardown.
 */
#ifndef KILN_DEVMGR_H
#define KILN_DEVMGR_H

#include <stddef.h>

#include "kiln/devices.h"
#include "kiln/virtio_transport.h"
#include "kiln/vm_config.h"

#define DEVMGR_MAX (VM_MAX_DEVICES + VM_MAX_PLATFORM)

struct acpi_config;
struct snap_reader;
struct snap_writer;

/* One device of the VM. */
struct vm_device {
	const struct device_class *cls;
	const void *config;        /* the class's configuration; NULL for platform devices */
	unsigned index;            /* among the instances of its class */
	void *state;               /* what create() returned (a struct virtio_dev * for virtio) */
	void *transport;           /* virtio devices: the transport's state */
};

struct devmgr {
	struct dev_host *host;
	const struct virtio_transport_ops *transport; /* for every virtio device of the VM */
	unsigned nr, nr_platform, nr_virtio;
	struct vm_device dev[DEVMGR_MAX];
};

/* Create the platform devices and the devices @cfg lists, attaching each virtio device with
 * @cfg->transport. On failure everything made so far stays for devmgr_destroy(), and @e names
 * the device (input VM_INPUT_DEVICE + its index in @cfg->device). Returns 0 or -errno. */
int devmgr_create(struct devmgr *m, struct dev_host *host, const struct vm_config *cfg,
		  struct error *e) __attribute__((warn_unused_result));

/* What the guest must be told to find the devices: their ACPI descriptions (the PCI root
 * bridge last, so its _PRT lists every function) and the command-line text the transports
 * need, appended to @cmdline (@len bytes in all). */
void devmgr_describe(struct devmgr *m, struct pci_bus *pci, struct acpi_config *acpi,
		     char *cmdline, size_t len);

/* Release every device, transports first, in reverse order of creation. */
void devmgr_destroy(struct devmgr *m);

/* The device of class @cls whose configuration's id is @id (or, with @id NULL, the first of
 * @cls), or NULL. */
struct vm_device *devmgr_find(struct devmgr *m, const struct device_class *cls, const char *id);

/* Snapshot of every device: platform devices (a section each, named after the class) and
 * virtio devices with their transports (instance = order among the virtio devices). */
void devmgr_save(struct devmgr *m, struct snap_writer *w);

/* Give the devices just made from the same configuration their state back. Returns 0 or
 * -EINVAL with a message in @err. */
int devmgr_load(struct devmgr *m, const struct snap_reader *r, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* After a restore, before the vCPUs run: every virtio device carries on (virtio_dev_restored). */
void devmgr_restored(struct devmgr *m);

#endif
