/* registry — the devices of kiln's PC, in creation order. */
#include "kiln/devices.h"

const struct device_type *const pc_device_types[] = {
	&uart_8250_type, &i8042_type, &cmos_rtc_type, &pci_config_type,
	&acpi_pm_type, &boot_timer_type, &pvpanic_type, &post_port_type,
	NULL,
};
