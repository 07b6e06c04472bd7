/* SPDX-License-Identifier: Apache-2.0 */
/* registry — the device classes of kiln's PC, in creation order, and what they share. */
#include <stdio.h>
#include <string.h>

#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/fw_cfg.h"
#include "kiln/log.h"
#include "kiln/virtio_balloon.h"
#include "kiln/virtio_blk.h"
#include "kiln/virtio_console.h"
#include "kiln/virtio_net.h"
#include "kiln/virtio_rng.h"
#include "kiln/virtio_vsock.h"

void device_describe(struct acpi_config *acpi, const struct acpi_device_desc *desc)
{
	if (acpi_add_device(acpi, desc))
		log_warn("ACPI: no room in the DSDT to describe %s", desc->name);
}

int device_claim(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name, struct error *e)
{
	int ret = bus_register(bus, base, len, ops, opaque, name);

	return ret ? error_set(e, ERROR_RUNTIME, "%s: %s bus: %s", name, bus->space, strerror(-ret))
		   : 0;
}

const char *device_label(const struct device_class *cls, const void *config, unsigned index,
			 char *buf, size_t len)
{
	const char *id = cls->id && config ? cls->id(config) : NULL;

	if (id)
		snprintf(buf, len, "%s \"%s\"", cls->name, id);
	else
		snprintf(buf, len, "%s%u", cls->name, index);
	return buf;
}

const struct device_class *const pc_platform_classes[] = {
	&uart_8250_class, &i8042_class, &cmos_rtc_class,
	&acpi_pm_class, &boot_timer_class, &pvpanic_class, &post_port_class,
	NULL,
};

/* Platform devices first: vm_devices() lists what follows them. */
const struct device_class *const device_classes[] = {
	&debug_exit_class, &fw_cfg_class, &debugcon_class,
	&virtio_blk_class, &virtio_net_class, &virtio_vsock_class, &virtio_balloon_class,
	&virtio_console_class, &virtio_rng_class,
	NULL,
};

const struct device_class *device_class_find(const char *name)
{
	for (const struct device_class *const *c = device_classes; *c; c++)
		if (!strcmp((*c)->name, name))
			return *c;
	return NULL;
}
