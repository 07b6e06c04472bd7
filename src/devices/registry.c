/* registry — the devices of kiln's PC, in creation order, and what they share. */
#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/log.h"

void device_describe(struct acpi_config *acpi, const struct acpi_device_desc *desc)
{
	if (acpi_add_device(acpi, desc))
		log_warn("ACPI: no room in the DSDT to describe %s", desc->name);
}

const struct device_type *const pc_device_types[] = {
	&uart_8250_type, &i8042_type, &cmos_rtc_type,
	&acpi_pm_type, &boot_timer_type, &pvpanic_type, &post_port_type,
	NULL,
};
