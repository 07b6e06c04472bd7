/* SPDX-License-Identifier: Apache-2.0 */
/* acpi_pm — the fixed-hardware PM1a event and control registers the FADT points at (ACPI 6.5
 * §4.8.3): PM1_STS (write 1 to clear) and PM1_EN at KILN_PORT_PM1A_EVT, PM1_CNT at
 * KILN_PORT_PM1A_CNT. Writing SLP_EN with SLP_TYP = KILN_ACPI_S5_SLP_TYP (the DSDT's \_S5)
 * powers the machine off. SCI_EN always reads as set: there is no legacy mode (no SMI_CMD). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byte_regs.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"

#define PM_REGS 6              /* PM1_STS(2) PM1_EN(2) PM1_CNT(2) */
#define OFF_STS 0
#define OFF_CNT 4
#define CNT_SCI_EN 0x0001
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP_MASK 0x1c00
#define CNT_SLP_EN 0x2000

struct acpi_pm {
	struct byte_dev dev; /* first: the bus hands us &dev */
	struct dev_host *host;
	uint8_t reg[PM_REGS];
	struct log_once other_sleep;
};

static uint8_t acpi_pm_read_byte(struct byte_dev *dev, uint64_t off)
{
	return ((struct acpi_pm *)dev)->reg[off];
}

static void acpi_pm_write_byte(struct byte_dev *dev, uint64_t off, uint8_t v)
{
	struct acpi_pm *pm = (struct acpi_pm *)dev;
	uint16_t cnt;
	unsigned slp_typ;

	if (off < OFF_STS + 2) {
		pm->reg[off] &= (uint8_t)~v; /* status bits: write 1 to clear */
		return;
	}
	pm->reg[off] = off == OFF_CNT ? v | CNT_SCI_EN : v;
	if (off != OFF_CNT + 1)
		return;
	/* SLP_TYP and SLP_EN live in the high byte of PM1_CNT; SLP_EN is write-only. */
	cnt = (uint16_t)(pm->reg[OFF_CNT] | pm->reg[OFF_CNT + 1] << 8);
	pm->reg[OFF_CNT + 1] &= (uint8_t)~(CNT_SLP_EN >> 8);
	if (!(cnt & CNT_SLP_EN))
		return;
	slp_typ = (cnt & CNT_SLP_TYP_MASK) >> CNT_SLP_TYP_SHIFT;
	if (slp_typ == KILN_ACPI_S5_SLP_TYP)
		pm->host->request_stop(pm->host, VM_STOP_POWEROFF);
	else if (log_once_first(&pm->other_sleep))
		log_warn("guest asked for ACPI sleep type %u; only S5 (poweroff) exists", slp_typ);
}

static int acpi_pm_create(struct dev_host *host, const void *config, unsigned index,
		          void **state, struct error *e)
{
	struct acpi_pm *pm = byte_dev_new(sizeof(*pm), acpi_pm_read_byte, acpi_pm_write_byte,
					  host->pio, KILN_PORT_PM1A_EVT, PM_REGS, "acpi pm1a", e);

	if (!pm)
		return error_code(e);
	pm->host = host;
	pm->reg[OFF_CNT] = CNT_SCI_EN;
	*state = pm;
	return 0;
}

/* Snapshot, section version 1: the six register bytes as the guest sees them. */
static void acpi_pm_save(void *state, struct snap_enc *e)
{
	struct acpi_pm *pm = state;

	pthread_mutex_lock(&pm->dev.lock);
	snap_enc_bytes(e, pm->reg, PM_REGS);
	pthread_mutex_unlock(&pm->dev.lock);
}

static int acpi_pm_load(void *state, struct snap_dec *d, uint32_t version, char *err,
			size_t errlen)
{
	struct acpi_pm *pm = state;
	uint8_t reg[PM_REGS];

	snap_dec_bytes(d, reg, sizeof(reg));
	pthread_mutex_lock(&pm->dev.lock);
	memcpy(pm->reg, reg, PM_REGS);
	pm->reg[OFF_CNT] |= CNT_SCI_EN; /* always set: there is no legacy mode */
	pthread_mutex_unlock(&pm->dev.lock);
	return 0;
}

const struct device_class acpi_pm_class = {
	.kind = DEVICE_PLATFORM,
	.name = "acpi_pm", .create = acpi_pm_create, .destroy = byte_dev_free,
	.state_version = 1, .save = acpi_pm_save, .load = acpi_pm_load,
};
