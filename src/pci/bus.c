/* SPDX-License-Identifier: Apache-2.0 */
/* bus — PCI bus 0: configuration mechanism #1, ECAM, the host bridge, BAR placement and INTx,
 * see include/kiln/pci.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pci_regs.h>

#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/pci.h"
#include "kiln/snapshot.h"
#include "pci_internal.h"

#define CONFIG_ENABLE 0x80000000u
#define HOST_BRIDGE_VENDOR 0x1b36 /* Red Hat, Inc.: its generic PCIe host bridge ID */
#define HOST_BRIDGE_DEVICE 0x0008
#define I440FX_VENDOR 0x8086        /* Intel 82441FX PMC, as QEMU's i440FX-pcihost */
#define I440FX_DEVICE 0x1237
#define I440FX_REVISION 0x02
#define I440FX_PAM0 0x59            /* PAM0..PAM6: 0x59-0x5f (82441FX data sheet §3.2.18) */
#define I440FX_NR_PAM 7
#define RCR_RESET_CPU 0x04           /* port 0xCF9 (PIIX3 RCR): reset the CPU */
#define PIIX3_DEVICE 0x7000         /* 82371SB PIIX3 function 0, the PCI-to-ISA bridge */
#define PIIX3_PIRQRC 0x60           /* PIRQ route control A-D: 0x60-0x63 (82371SB §2.2.10) */
#define QEMU_SUBSYS_VENDOR 0x1af4   /* QEMU's subsystem IDs for its PC devices */
#define QEMU_SUBSYS_ID 0x1100

struct pci_bus {
	struct dev_host *host;
	pthread_mutex_t lock;          /* CONFIG_ADDRESS latch */
	uint32_t config_address;
	struct pci_dev bridge;
	pthread_mutex_t bridge_lock;   /* also the PIIX3's */
	struct pci_dev piix3;          /* 00:01.0 with the i440FX */
	struct pci_dev *dev[PCI_SLOTS][PCI_FUNCS]; /* [0][0]: the bridge */
	uint64_t next_bar;
	enum pci_host_bridge kind;
};

void pci_dev_init(struct pci_dev *dev, const struct pci_dev_ops *ops, void *opaque,
		  pthread_mutex_t *lock, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision, uint32_t bar_size)
{
	memset(dev, 0, sizeof(*dev));
	dev->ops = ops;
	dev->opaque = opaque;
	dev->lock = lock;
	dev->bar_size = bar_size;
	pci_cfg_set(dev, PCI_VENDOR_ID, 2, vendor);
	pci_cfg_set(dev, PCI_DEVICE_ID, 2, device);
	pci_cfg_set(dev, PCI_REVISION_ID, 1, revision);
	pci_cfg_set(dev, PCI_CLASS_PROG, 3, class_code);
	pci_cfg_set(dev, PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_NORMAL);
	pci_cfg_set(dev, PCI_SUBSYSTEM_VENDOR_ID, 2, subsys_vendor);
	pci_cfg_set(dev, PCI_SUBSYSTEM_ID, 2, subsys_id);
	le_put(dev->wmask + PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
		    PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
		    PCI_COMMAND_INTX_DISABLE);
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	if (bar_size) {
		le_put(dev->wmask + PCI_BASE_ADDRESS_0, 4, ~(bar_size - 1));
		dev->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */
	}
	dev->next_cap = 0x40;
}

uint8_t pci_add_cap(struct pci_dev *dev, const uint8_t *data, uint8_t len, const uint8_t *wmask)
{
	uint8_t at = dev->next_cap, prev;

	if (len < 2 || at == 0 || (unsigned)at + len > PCI_CFG_SIZE)
		return 0;
	memcpy(dev->cfg + at, data, len);
	if (wmask)
		memcpy(dev->wmask + at, wmask, len);
	dev->cfg[at + 1] = 0;
	dev->wmask[at] = dev->wmask[at + 1] = 0;
	if (!(pci_cfg_get(dev, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST)) {
		dev->cfg[PCI_CAPABILITY_LIST] = at;
		pci_cfg_set(dev, PCI_STATUS, 2, PCI_STATUS_CAP_LIST);
	} else {
		for (prev = dev->cfg[PCI_CAPABILITY_LIST]; dev->cfg[prev + 1]; prev = dev->cfg[prev + 1])
			;
		dev->cfg[prev + 1] = at;
	}
	dev->next_cap = (uint8_t)(((unsigned)at + len + 3) & ~3u);
	if ((unsigned)at + len + 3 >= PCI_CFG_SIZE)
		dev->next_cap = 0;
	return at;
}

void pci_set_intx(struct pci_dev *dev, bool level)
{
	bool disabled = pci_cfg_get(dev, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE;
	uint16_t status = (uint16_t)pci_cfg_get(dev, PCI_STATUS, 2);

	pci_cfg_set(dev, PCI_STATUS, 2, level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
	level = level && !disabled;
	if (level != dev->intx_level) {
		dev->intx_level = level;
		dev->host->set_irq(dev->host, dev->intx_gsi, level);
	}
}

/* The function at @slot.@fn, or NULL. Functions other than 0 are seen only when function 0
 * says it has them (PCI 3.0 §6.2.1, header type bit 7). */
static struct pci_dev *lookup(struct pci_bus *bus, unsigned slot, unsigned fn)
{
	struct pci_dev *d0;

	if (slot >= PCI_SLOTS || fn >= PCI_FUNCS || !(d0 = bus->dev[slot][0]))
		return NULL;
	if (fn && !(d0->cfg[PCI_HEADER_TYPE] & PCI_HEADER_MULTI_FUNCTION))
		return NULL;
	return bus->dev[slot][fn];
}

static void cfg_read(struct pci_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	if (!d || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off) {
		memset(data, d ? 0 : 0xff, len); /* no function: all ones; extended space: zeros */
		return;
	}
	pthread_mutex_lock(d->lock);
	if (d->ops && d->ops->cfg_reading)
		d->ops->cfg_reading(d, off, len);
	memcpy(data, d->cfg + off, len);
	pthread_mutex_unlock(d->lock);
}

void pci_bar_written(struct pci_dev *d)
{
	uint32_t v = pci_cfg_get(d, PCI_BASE_ADDRESS_0, 4), old = d->bar_addr;

	if (v == (uint32_t)~(d->bar_size - 1) || v == old)
		return;
	if (v < KILN_MMIO_HOLE_START || (uint64_t)v + d->bar_size > KILN_IOAPIC_GPA ||
	    bus_move(d->host->mmio, old, d, v)) {
		if (log_once_first(&d->bad_bar))
			log_warn("PCI %02x.0: BAR 0 moved to 0x%x, outside the PCI hole or over another "
				 "device; kiln keeps it at 0x%x", d->slot, v, old);
		return;
	}
	d->bar_addr = v;
	if (d->ops && d->ops->bar_moved)
		d->ops->bar_moved(d, old);
}

static void cfg_write(struct pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	if (!d || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
		return;
	pthread_mutex_lock(d->lock);
	for (uint32_t i = 0; i < len; i++)
		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~d->wmask[off + i]) | (data[i] & d->wmask[off + i]));
	if (off < PCI_BASE_ADDRESS_0 + 4 && off + len > PCI_BASE_ADDRESS_0 && d->bar_size)
		pci_bar_written(d);
	if (d->has_msix)
		pci_msix_cfg_written(d, off, len);
	if (d->ops && d->ops->cfg_written)
		d->ops->cfg_written(d, off, len);
	pthread_mutex_unlock(d->lock);
}

/* Ports 0xCF8-0xCFF: CONFIG_ADDRESS (32-bit accesses at 0xCF8) and CONFIG_DATA. */
static void port_access(struct pci_bus *bus, uint64_t off, uint8_t *data, uint32_t len, bool write)
{
	uint32_t addr;

	pthread_mutex_lock(&bus->lock);
	if (off == 0 && len == 4) {
		if (write)
			memcpy(&bus->config_address, data, 4);
		else
			memcpy(data, &bus->config_address, 4);
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	addr = bus->config_address;
	pthread_mutex_unlock(&bus->lock);
	if (off == 1 && len == 1 && bus->kind == PCI_HOST_I440FX) {
		/* 0xCF9, the PIIX3's reset control register (82371SB data sheet §4.1.25, QEMU's
		 * piix3 "rcr"): RCPU (bit 2) resets the machine; SRST (hard or soft) makes no
		 * difference to kiln, which has one kind of reset, so it reads as 0. */
		if (!write)
			*data = 0;
		else if (*data & RCR_RESET_CPU)
			bus->host->request_stop(bus->host, VM_STOP_RESET);
		return;
	}
	if (off < 4 || !(addr & CONFIG_ENABLE) || ((addr >> 16) & 0xff) != 0 || off + len > 8) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	{
		struct pci_dev *d = lookup(bus, (addr >> 11) & 0x1f, (addr >> 8) & 7);
		uint32_t reg = (addr & 0xfc) + (uint32_t)(off - 4);

		if (write)
			cfg_write(d, reg, data, len);
		else
			cfg_read(d, reg, data, len);
	}
}

static void port_read(void *o, uint64_t off, uint8_t *data, uint32_t len) { port_access(o, off, data, len, false); }
static void port_write(void *o, uint64_t off, const uint8_t *data, uint32_t len) { port_access(o, off, (uint8_t *)data, len, true); }
static const struct bus_ops port_ops = { .read = port_read, .write = port_write };

/* ECAM: offset = bus << 20 | device << 15 | function << 12 | register (bus 0 only here). */
static void ecam_read(void *o, uint64_t off, uint8_t *data, uint32_t len)
{
	cfg_read(lookup(o, (off >> 15) & 0x1f, (off >> 12) & 7), off & 0xfff, data, len);
}

static void ecam_write(void *o, uint64_t off, const uint8_t *data, uint32_t len)
{
	cfg_write(lookup(o, (off >> 15) & 0x1f, (off >> 12) & 7), off & 0xfff, data, len);
}

static const struct bus_ops ecam_ops = { .read = ecam_read, .write = ecam_write };

/* BAR 0 of a function: the MSI-X table and PBA, then the device's own registers. */
static void bar_read(void *o, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_dev *d = o;

	pthread_mutex_lock(d->lock);
	if (!(d->has_msix && pci_msix_bar_access(d, off, data, len, false)))
		d->ops->bar_read(d, off, data, len);
	pthread_mutex_unlock(d->lock);
}

static void bar_write(void *o, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_dev *d = o;

	pthread_mutex_lock(d->lock);
	if (!(d->has_msix && pci_msix_bar_access(d, off, (uint8_t *)data, len, true)))
		d->ops->bar_write(d, off, data, len);
	pthread_mutex_unlock(d->lock);
}

static const struct bus_ops bar_ops = { .read = bar_read, .write = bar_write };

int pci_bus_create(struct dev_host *host, enum pci_host_bridge bridge, struct pci_bus **out)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	int ret;

	if (!bus)
		return -ENOMEM;
	bus->host = host;
	bus->next_bar = KILN_PCI_MEM_START;
	bus->kind = bridge;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->bridge_lock, NULL);
	if (bridge == PCI_HOST_I440FX) {
		pci_dev_init(&bus->bridge, NULL, NULL, &bus->bridge_lock, I440FX_VENDOR, I440FX_DEVICE,
			     PCI_CLASS_CODE_HOST_BRIDGE, QEMU_SUBSYS_VENDOR, QEMU_SUBSYS_ID,
			     I440FX_REVISION, 0);
		memset(bus->bridge.wmask + I440FX_PAM0, 0xff, I440FX_NR_PAM);
		/* The PIIX3's ISA bridge, which firmware looks for before it drives the ISA
		 * devices (OVMF's serial console); its PIRQ routes read back what is written and
		 * route nothing (the DSDT's _PRT gives the I/O APIC pins). */
		pci_dev_init(&bus->piix3, NULL, NULL, &bus->bridge_lock, I440FX_VENDOR, PIIX3_DEVICE,
			     PCI_CLASS_CODE_ISA_BRIDGE, QEMU_SUBSYS_VENDOR, QEMU_SUBSYS_ID, 0, 0);
		bus->piix3.cfg[PCI_HEADER_TYPE] |= PCI_HEADER_MULTI_FUNCTION;
		memset(bus->piix3.wmask + PIIX3_PIRQRC, 0xff, 4);
		bus->piix3.host = host;
		bus->piix3.slot = PCI_PIIX_SLOT;
		bus->dev[PCI_PIIX_SLOT][0] = &bus->piix3;
	} else {
		pci_dev_init(&bus->bridge, NULL, NULL, &bus->bridge_lock, HOST_BRIDGE_VENDOR,
			     HOST_BRIDGE_DEVICE, PCI_CLASS_CODE_HOST_BRIDGE, HOST_BRIDGE_VENDOR, 0x1100,
			     0, 0);
	}
	bus->bridge.host = host;
	bus->dev[0][0] = &bus->bridge;
	ret = bus_register(host->pio, KILN_PORT_PCI_CONFIG, 8, &port_ops, bus, "pci-config");
	if (!ret)
		ret = bus_register(host->mmio, KILN_PCI_ECAM_GPA, KILN_PCI_ECAM_SIZE, &ecam_ops, bus, "pci-ecam");
	if (ret) {
		pci_bus_destroy(bus);
		return ret;
	}
	*out = bus;
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	if (!bus)
		return;
	pthread_mutex_destroy(&bus->lock);
	pthread_mutex_destroy(&bus->bridge_lock);
	free(bus);
}

int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev)
{
	unsigned slot = 1;
	uint64_t addr;
	int ret;

	while (slot <= KILN_PCI_INTX_LINES && bus->dev[slot][0])
		slot++;
	if (slot > KILN_PCI_INTX_LINES)
		return -ENOSPC;
	/* A BAR is aligned to its size (PCI 3.0 §6.2.5.1). */
	addr = (bus->next_bar + dev->bar_size - 1) & ~((uint64_t)dev->bar_size - 1);
	if (addr + dev->bar_size > KILN_PCI_MEM_END)
		return -ENOSPC;
	dev->host = bus->host;
	dev->slot = slot;
	dev->intx_gsi = KILN_PCI_INTX_GSI + slot - 1;
	dev->bar_addr = (uint32_t)addr;
	pci_cfg_set(dev, PCI_BASE_ADDRESS_0, 4, dev->bar_addr);
	dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)dev->intx_gsi;
	ret = bus_register(bus->host->mmio, addr, dev->bar_size, &bar_ops, dev, "pci-bar");
	if (!ret && dev->has_msix)
		ret = pci_msix_connect(dev);
	if (ret)
		return ret;
	bus->next_bar = addr + dev->bar_size;
	bus->dev[slot][0] = dev;
	return 0;
}

enum pci_host_bridge pci_bus_host_bridge(const struct pci_bus *bus)
{
	return bus->kind;
}

int pci_bus_add_function(struct pci_bus *bus, struct pci_dev *dev, unsigned slot, unsigned fn)
{
	if (slot == 0 || slot >= PCI_SLOTS || fn == 0 || fn >= PCI_FUNCS || dev->bar_size ||
	    !bus->dev[slot][0] || bus->dev[slot][fn])
		return -EINVAL;
	dev->host = bus->host;
	dev->slot = slot;
	bus->dev[slot][fn] = dev;
	return 0;
}

void pci_bus_describe(const struct pci_bus *bus, struct acpi_config *acpi)
{
	struct acpi_device_desc ecam = {
		.name = "ECAM", .hid = "PNP0C02", .uid = 1, .nr_res = 1,
		.res = { { ACPI_RES_MEM32, (uint32_t)KILN_PCI_ECAM_GPA, (uint32_t)KILN_PCI_ECAM_SIZE } },
	};

	acpi->pci = (struct acpi_pci){
		.present = true,
		.ecam_base = KILN_PCI_ECAM_GPA,
		.mem_base = (uint32_t)KILN_PCI_MEM_START,
		.mem_limit = (uint32_t)(KILN_PCI_MEM_END - 1),
	};
	/* Firmware places the BARs itself, from the I/O APIC down (SeaBIOS pciinit.c): the window
	 * is then everything pci_bar_written() accepts, as QEMU's PC describes its PCI hole. */
	if (bus->kind == PCI_HOST_I440FX)
		acpi->pci.mem_limit = (uint32_t)(KILN_IOAPIC_GPA - 1);
	for (unsigned s = 1; s < PCI_SLOTS; s++)
		if (bus->dev[s][0] && bus->dev[s][0]->cfg[PCI_INTERRUPT_PIN])
			acpi->pci.prt[acpi->pci.nr_prt++] = (struct acpi_pci_prt){ .slot = (uint8_t)s,
										  .gsi = bus->dev[s][0]->intx_gsi };
	device_describe(acpi, &ecam);
}

void pci_bus_state_encode(struct snap_enc *e, const struct pci_bus_state *s)
{
	snap_enc_u32(e, s->config_address);
	snap_enc_u32(e, 0);
	pci_dev_state_encode(e, &s->bridge);
}

void pci_bus_state_decode(struct snap_dec *d, struct pci_bus_state *s)
{
	s->config_address = snap_dec_u32(d);
	snap_dec_u32(d); /* zero */
	pci_dev_state_decode(d, &s->bridge);
}

void pci_bus_save(struct pci_bus *bus, struct pci_bus_state *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&bus->lock);
	out->config_address = bus->config_address;
	pthread_mutex_unlock(&bus->lock);
	pthread_mutex_lock(&bus->bridge_lock);
	pci_dev_save(&bus->bridge, &out->bridge);
	pthread_mutex_unlock(&bus->bridge_lock);
}

int pci_bus_load(struct pci_bus *bus, const struct pci_bus_state *in, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&bus->bridge_lock);
	ret = pci_dev_load(&bus->bridge, &in->bridge, err, errlen);
	pthread_mutex_unlock(&bus->bridge_lock);
	if (!ret) {
		pthread_mutex_lock(&bus->lock);
		bus->config_address = in->config_address; /* decoded and checked at every use */
		pthread_mutex_unlock(&bus->lock);
	}
	return ret;
}
