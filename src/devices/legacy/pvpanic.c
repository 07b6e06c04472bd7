/* SPDX-License-Identifier: Apache-2.0 */
/* pvpanic — QEMU's paravirtual panic device (docs/specs/pvpanic.rst in QEMU) at I/O port
 * KILN_PORT_PVPANIC, described in the DSDT as QEMU0001 so Linux's pvpanic-mmio driver binds.
 * Reads list the supported events; a write with PVPANIC_PANICKED stops the VM with
 * VM_STOP_PANIC (logged); PVPANIC_CRASH_LOADED is logged once (a guest can write it in a loop). */
#include <stdlib.h>

#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"

#define PVPANIC_PANICKED 0x01
#define PVPANIC_CRASH_LOADED 0x02

struct pvpanic {
	struct dev_host *host;
	struct log_once crash, panicked;
};

static void pvpanic_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	data[0] = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED; /* the range is one byte */
}

static void pvpanic_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pvpanic *p = opaque;

	if (data[0] & PVPANIC_PANICKED) {
		if (log_once_first(&p->panicked)) /* the VM stops: at most once anyway */
			log_warn("guest kernel panicked (pvpanic); stopping the VM");
		p->host->request_stop(p->host, VM_STOP_PANIC);
	}
	else if ((data[0] & PVPANIC_CRASH_LOADED) && log_once_first(&p->crash))
		log_warn("guest kernel crashed and is running its crash kernel");
}

static const struct bus_ops pvpanic_ops = { .read = pvpanic_read, .write = pvpanic_write };

static int pvpanic_create(struct dev_host *host, const void *config, unsigned index,
		          void **state, struct error *e)
{
	struct pvpanic *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return error_set(e, ERROR_RUNTIME, "pvpanic: out of memory");
	p->host = host;
	ret = device_claim(host->pio, KILN_PORT_PVPANIC, 1, &pvpanic_ops, p, "pvpanic", e);
	if (ret) {
		free(p);
		return ret;
	}
	*state = p;
	return 0;
}

static void pvpanic_describe(void *state, struct acpi_config *acpi)
{
	static const struct acpi_device_desc pevt = {
		.name = "PEVT", .hid = "QEMU0001", .uid = 0, .nr_res = 1,
		.res = { { ACPI_RES_IO, KILN_PORT_PVPANIC, 1 } },
	};

	device_describe(acpi, &pevt);
}

const struct device_class pvpanic_class = {
	.kind = DEVICE_PLATFORM,
	.name = "pvpanic", .create = pvpanic_create, .destroy = free, .describe = pvpanic_describe,
};
