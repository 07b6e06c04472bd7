/* acpi_pm — the fixed-hardware PM1a event and control registers the FADT points at (ACPI 6.5
 * §4.8.3): PM1_STS (write 1 to clear) and PM1_EN at KILN_PORT_PM1A_EVT, PM1_CNT at
 * KILN_PORT_PM1A_CNT. Writing SLP_EN with SLP_TYP = KILN_ACPI_S5_SLP_TYP (the DSDT's \_S5)
 * powers the machine off. SCI_EN always reads as set: there is no legacy mode (no SMI_CMD). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"

#define PM_REGS 6              /* PM1_STS(2) PM1_EN(2) PM1_CNT(2) */
#define OFF_STS 0
#define OFF_CNT 4
#define CNT_SCI_EN 0x0001
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP_MASK 0x1c00
#define CNT_SLP_EN 0x2000

struct acpi_pm {
	pthread_mutex_t lock;
	struct dev_host *host;
	uint8_t reg[PM_REGS];
	struct log_once other_sleep;
};

static void acpi_pm_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	memcpy(data, pm->reg + off, len); /* the bus keeps off + len within PM_REGS */
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;
	uint16_t cnt;
	unsigned slp_typ;

	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t o = off + i;

		if (o < OFF_STS + 2)
			pm->reg[o] &= (uint8_t)~data[i]; /* status bits: write 1 to clear */
		else
			pm->reg[o] = data[i];
	}
	pm->reg[OFF_CNT] |= CNT_SCI_EN;
	memcpy(&cnt, pm->reg + OFF_CNT, 2);
	pm->reg[OFF_CNT + 1] &= (uint8_t)~(CNT_SLP_EN >> 8); /* SLP_EN is write-only: reads as 0 */
	pthread_mutex_unlock(&pm->lock);
	if (!(cnt & CNT_SLP_EN) || off + len <= OFF_CNT)
		return;
	slp_typ = (cnt & CNT_SLP_TYP_MASK) >> CNT_SLP_TYP_SHIFT;
	if (slp_typ == KILN_ACPI_S5_SLP_TYP)
		pm->host->request_stop(pm->host, VM_STOP_POWEROFF);
	else if (log_once_first(&pm->other_sleep))
		log_warn("guest asked for ACPI sleep type %u; only S5 (poweroff) exists", slp_typ);
}

static const struct bus_ops acpi_pm_ops = { .read = acpi_pm_read, .write = acpi_pm_write };

static int acpi_pm_create(struct dev_host *host, void **state)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	int ret;

	if (!pm)
		return -ENOMEM;
	pthread_mutex_init(&pm->lock, NULL);
	pm->host = host;
	pm->reg[OFF_CNT] = CNT_SCI_EN;
	ret = bus_register(host->pio, KILN_PORT_PM1A_EVT, PM_REGS, &acpi_pm_ops, pm, "acpi pm1a");
	if (ret) {
		free(pm);
		return ret;
	}
	*state = pm;
	return 0;
}

static void acpi_pm_destroy(void *state)
{
	struct acpi_pm *pm = state;

	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

const struct device_type acpi_pm_type = {
	.name = "acpi_pm", .create = acpi_pm_create, .destroy = acpi_pm_destroy,
};
