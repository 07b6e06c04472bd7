/* SPDX-License-Identifier: Apache-2.0 */
/* acpi_pm — the fixed-hardware PM1a event and control registers the FADT points at (ACPI 6.5
 * §4.8.3): PM1_STS (write 1 to clear) and PM1_EN at KILN_PORT_PM1A_EVT, PM1_CNT at
 * KILN_PORT_PM1A_CNT. Writing SLP_EN with SLP_TYP = KILN_ACPI_S5_SLP_TYP (the DSDT's \_S5)
 * powers the machine off. SCI_EN always reads as set: there is no legacy mode (no SMI_CMD).
 *
 * On QEMU's PC (the i440FX host bridge, for firmware) these registers are the PIIX4's power
 * management I/O space (82371AB datasheet §7.2), 64 ports with the ACPI PM timer at +8 (§4.8.3.3:
 * 24 bits at 3.579545 MHz), and the device is also the PIIX4's function 00:01.3 (8086:7113):
 * its PMBA (0x40) and PMREGMISC.PMIOSE (0x80 bit 0) place the block where the guest says, as
 * QEMU's piix4_pm does. kiln presets them as SeaBIOS leaves them (base KILN_PORT_PM1A_EVT,
 * enabled), so OVMF, which keeps an enabled block where it is, and the FADT agree. Clearing
 * PMIOSE leaves the block where it is (kiln does not take ports away). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "byte_regs.h"
#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/pci.h"
#include "kiln/snapshot.h"

#define PM_REGS 6              /* PM1_STS(2) PM1_EN(2) PM1_CNT(2) */
#define PIIX4_PM_PORTS 64      /* the PIIX4's PM I/O space */
#define OFF_STS 0
#define OFF_CNT 4
#define OFF_TMR 8              /* PM_TMR, 4 bytes, 24 bits counting */
#define CNT_SCI_EN 0x0001
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP_MASK 0x1c00
#define CNT_SLP_EN 0x2000
#define PM_TIMER_HZ 3579545ULL
#define PIIX4_PM_DEVICE 0x7113
#define PIIX4_PM_REVISION 0x03
#define PIIX4_PMBA 0x40        /* PM base address: bits 15:6, bit 0 reads 1 (I/O space) */
#define PIIX4_PMBA_MASK 0xffc0u
#define PIIX4_PMREGMISC 0x80   /* bit 0: PMIOSE, the PM I/O space enabled */
/* DEVACTB (0x58) bit 25, APMC_EN: SMIs on APM control writes enabled. kiln has no SMM, so it
 * reads as set, as QEMU's PIIX4 without SMM sets it ("SMM already initialised"): SeaBIOS then
 * skips its SMM relocation, which would wait forever for an SMI handler to clear port 0xB3. */
#define PIIX4_DEVACTB_APMC 0x5b
#define PIIX4_APMC_EN_BIT 0x02

struct acpi_pm {
	struct byte_dev dev; /* first: the bus hands us &dev */
	struct dev_host *host;
	uint8_t reg[PM_REGS];
	bool piix4;            /* the PIIX4 function exists: timer, movable block */
	uint16_t base;         /* where the block is on the port bus */
	uint32_t tmr_latch;    /* PM_TMR as read at its first byte */
	struct pci_dev fn;     /* 00:01.3 when piix4 */
	struct log_once bad_base;
	struct log_once other_sleep;
};

/* PM_TMR now: 3.579545 MHz ticks of CLOCK_MONOTONIC, the low 24 bits. */
static uint32_t pm_timer_now(void)
{
	struct timespec ts;
	unsigned __int128 ns;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns = (unsigned __int128)ts.tv_sec * 1000000000u + (unsigned long)ts.tv_nsec;
	return (uint32_t)(ns * PM_TIMER_HZ / 1000000000u) & 0xffffff;
}

static uint8_t acpi_pm_read_byte(struct byte_dev *dev, uint64_t off)
{
	struct acpi_pm *pm = (struct acpi_pm *)dev;

	if (off < PM_REGS)
		return pm->reg[off];
	if (off < OFF_TMR || off >= OFF_TMR + 4)
		return 0;
	/* A read that starts at PM_TMR latches it, so the bytes of one access agree. */
	if (off == OFF_TMR)
		pm->tmr_latch = pm_timer_now();
	return (uint8_t)(pm->tmr_latch >> (8 * (off - OFF_TMR)));
}

static void acpi_pm_write_byte(struct byte_dev *dev, uint64_t off, uint8_t v)
{
	struct acpi_pm *pm = (struct acpi_pm *)dev;
	uint16_t cnt;
	unsigned slp_typ;

	if (off >= PM_REGS)
		return; /* PM_TMR and the rest of the PIIX4 block: read-only or absent */
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

/* The guest wrote the PIIX4 function's configuration: follow PMBA while PMIOSE is set.
 * Called with pm->dev.lock held (the function's lock). */
static void piix4_cfg_written(struct pci_dev *fn, uint32_t off, uint32_t len)
{
	struct acpi_pm *pm = fn->opaque;
	uint16_t base = (uint16_t)(pci_cfg_get(fn, PIIX4_PMBA, 4) & PIIX4_PMBA_MASK);

	if (!(off < PIIX4_PMBA + 4 && off + len > PIIX4_PMBA) &&
	    !(off <= PIIX4_PMREGMISC && off + len > PIIX4_PMREGMISC))
		return;
	if (!(fn->cfg[PIIX4_PMREGMISC] & 1) || base == pm->base)
		return;
	if (base == 0 || bus_move(pm->host->pio, pm->base, pm, base)) {
		if (log_once_first(&pm->bad_base))
			log_warn("PIIX4 PM: base 0x%x overlaps other ports; kiln keeps it at 0x%x",
				 base, pm->base);
		return;
	}
	pm->base = base;
}

static const struct pci_dev_ops piix4_ops = { .cfg_written = piix4_cfg_written };

static int acpi_pm_create(struct dev_host *host, const void *config, unsigned index,
		          void **state, struct error *e)
{
	bool piix4 = host->pci && pci_bus_host_bridge(host->pci) == PCI_HOST_I440FX;
	struct acpi_pm *pm = byte_dev_new(sizeof(*pm), acpi_pm_read_byte, acpi_pm_write_byte,
					  host->pio, KILN_PORT_PM1A_EVT,
					  piix4 ? PIIX4_PM_PORTS : PM_REGS, "acpi pm1a", e);

	if (!pm)
		return error_code(e);
	pm->host = host;
	pm->reg[OFF_CNT] = CNT_SCI_EN;
	pm->base = KILN_PORT_PM1A_EVT;
	pm->piix4 = piix4;
	*state = pm;
	if (!piix4)
		return 0;
	pci_dev_init(&pm->fn, &piix4_ops, pm, &pm->dev.lock, 0x8086, PIIX4_PM_DEVICE,
		     PCI_CLASS_CODE_BRIDGE_OTHER, 0x1af4, 0x1100, PIIX4_PM_REVISION, 0);
	pci_cfg_set(&pm->fn, PIIX4_PMBA, 4, KILN_PORT_PM1A_EVT | 1);
	pm->fn.cfg[PIIX4_PMREGMISC] = 1;
	pm->fn.cfg[PIIX4_DEVACTB_APMC] = PIIX4_APMC_EN_BIT;
	pm->fn.wmask[PIIX4_PMBA] = PIIX4_PMBA_MASK & 0xff;
	pm->fn.wmask[PIIX4_PMBA + 1] = PIIX4_PMBA_MASK >> 8;
	pm->fn.wmask[PIIX4_PMREGMISC] = 1;
	if (pci_bus_add_function(host->pci, &pm->fn, PCI_PIIX_SLOT, PCI_PIIX4_PM_FN))
		return error_set(e, ERROR_RUNTIME, "acpi pm: PCI function 00:%02x.%x is taken",
				 PCI_PIIX_SLOT, PCI_PIIX4_PM_FN);
	return 0;
}

/* With the PIIX4 block the FADT names its PM timer. */
static void acpi_pm_describe(void *state, struct acpi_config *acpi)
{
	struct acpi_pm *pm = state;

	if (pm->piix4)
		acpi->pm_timer = KILN_PORT_PM1A_EVT + OFF_TMR;
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
	.describe = acpi_pm_describe,
	.state_version = 1, .save = acpi_pm_save, .load = acpi_pm_load,
};
