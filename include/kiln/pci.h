/* SPDX-License-Identifier: Apache-2.0 */
/* pci — PCI bus 0 of kiln's PC: configuration space through ports 0xCF8/0xCFC (PCI Local Bus 3.0
 * §3.2.2.3.2, mechanism #1) and through ECAM (PCI Express Base 4.0 §7.2.2, described by the ACPI
 * MCFG table), a host bridge at 00:00.0, one 32-bit memory BAR per device placed by kiln in the
 * PCI window of the MMIO hole, INTx on a GSI per slot, and MSI-X tables (PCI 3.0 §6.8.2).
 *
 * Owns: the configuration space of every function (type 0 headers, capability lists, which bits
 * the guest may write) and BAR placement. kiln assigns BARs as firmware would; a guest that
 * sizes a BAR (writes all-ones, reads the mask) gets the mask and then the address back. A
 * guest may move a BAR, as firmware that assigns BARs itself (SeaBIOS) does: a new address
 * wholly inside the MMIO hole below the I/O APIC and clear of every other range moves the BAR's
 * MMIO range (and, through the device's bar_moved, its ioeventfds); any other address is logged
 * once and the BAR keeps decoding where it was.
 */
#ifndef KILN_PCI_H
#define KILN_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln/bus.h"
#include "kiln/log.h"

#define PCI_SLOTS 32
#define PCI_FUNCS 8
#define PCI_HEADER_MULTI_FUNCTION 0x80 /* header type bit 7 (PCI 3.0 §6.2.1) */
#define PCI_PIIX_SLOT 1          /* the PIIX3/PIIX4 functions beside the i440FX host bridge */
#define PCI_PIIX4_PM_FN 3        /* 00:01.3, the PIIX4's power management function */
#define PCI_CFG_SIZE 256
#define PCI_MSIX_MAX_VECTORS 16

/* Class codes (base class, subclass, programming interface; PCI Code and ID Assignment 1.11). */
#define PCI_CLASS_CODE_HOST_BRIDGE 0x060000u
#define PCI_CLASS_CODE_ISA_BRIDGE 0x060100u
#define PCI_CLASS_CODE_BRIDGE_OTHER 0x068000u
#define PCI_CLASS_CODE_STORAGE_OTHER 0x018000u
#define PCI_CLASS_CODE_ETHERNET 0x020000u
#define PCI_CLASS_CODE_UNCLASSIFIED 0xff0000u

struct dev_host;
struct acpi_config;
struct pci_dev;

/* MSI-X state of a function (PCI 3.0 §6.8.2): the table and PBA live in its BAR. */
struct pci_msix {
	uint16_t nr_vectors;
	uint32_t table_off, pba_off;      /* byte offsets into the BAR */
	uint8_t table[PCI_MSIX_MAX_VECTORS * 16];
	uint64_t pending;                 /* PBA bits */
	unsigned gsi[PCI_MSIX_MAX_VECTORS];
	int irqfd[PCI_MSIX_MAX_VECTORS];
	uint8_t cap;                      /* config-space offset of the capability */
};

struct pci_dev_ops {
	/* Access of @len bytes (1, 2, 4 or 8) at @off into BAR 0 (MSI-X table and PBA excluded:
	 * the bus serves them). Called with the function's lock held. */
	void (*bar_read)(struct pci_dev *dev, uint64_t off, uint8_t *data, uint32_t len);
	void (*bar_write)(struct pci_dev *dev, uint64_t off, const uint8_t *data, uint32_t len);
	/* After the guest wrote configuration bytes [off, off + len) (may be NULL). Lock held. */
	void (*cfg_written)(struct pci_dev *dev, uint32_t off, uint32_t len);
	/* Before the guest reads configuration bytes [off, off + len) (may be NULL). Lock held. */
	void (*cfg_reading)(struct pci_dev *dev, uint32_t off, uint32_t len);
	/* BAR 0 moved from guest-physical @old to dev->bar_addr (may be NULL). Lock held. */
	void (*bar_moved)(struct pci_dev *dev, uint32_t old);
};

struct pci_dev {
	const struct pci_dev_ops *ops;
	void *opaque;
	pthread_mutex_t *lock;            /* the owner's lock, taken around every callback */
	struct dev_host *host;
	unsigned slot;
	unsigned intx_gsi;
	bool intx_level;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];      /* bits the guest may change */
	uint32_t bar_size;                /* BAR 0, bytes, a power of two >= 4 KiB */
	uint32_t bar_addr;
	uint8_t next_cap;                 /* where the next capability goes */
	bool has_msix;
	struct pci_msix msix;
	struct log_once bad_bar;
};

struct pci_bus;

/* A function's guest-visible state for a snapshot (fixed little-endian layout). */
struct pci_dev_state {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t msix_table[PCI_MSIX_MAX_VECTORS * 16];
	uint64_t msix_pending;
	uint8_t intx_level;
	uint8_t pad[7];
};

/* The bus's own guest-visible state for a snapshot: the CONFIG_ADDRESS latch (port 0xCF8)
 * and the host bridge's configuration space. */
struct pci_bus_state {
	uint32_t config_address;
	uint8_t pad[4];
	struct pci_dev_state bridge;
};

/* A function's state in a snapshot section, little-endian: the configuration space (256
 * bytes), the MSI-X table (256 bytes), the pending bits (u64), the INTx level (u8) and 7 zero
 * bytes (the layout of format 1). decode sets d->bad on a short section. */
struct snap_enc;
struct snap_dec;
void pci_dev_state_encode(struct snap_enc *e, const struct pci_dev_state *s);
void pci_dev_state_decode(struct snap_dec *d, struct pci_dev_state *s);

/* The bus's section "pcibus", version 1: the CONFIG_ADDRESS latch (u32), 4 zero bytes, then
 * the host bridge's state as pci_dev_state_encode() writes it. */
void pci_bus_state_encode(struct snap_enc *e, const struct pci_bus_state *s);
void pci_bus_state_decode(struct snap_dec *d, struct pci_bus_state *s);

/* Copy / give back the bus's state (pci_dev_load()'s rules for the bridge). Returns 0 or
 * -EINVAL with a message in @err. */
void pci_bus_save(struct pci_bus *bus, struct pci_bus_state *out);
int pci_bus_load(struct pci_bus *bus, const struct pci_bus_state *in, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Copy @dev's configuration space, MSI-X table and pending bits into @out. Lock held. */
void pci_dev_save(const struct pci_dev *dev, struct pci_dev_state *out);

/* Give them back to a function made the same way: read-only configuration bytes (identity,
 * capabilities, BAR) must match, or -EINVAL with a message in @err. The MSI routes the table
 * implies are restored by the VM with its GSI routing. Lock held. */
int pci_dev_load(struct pci_dev *dev, const struct pci_dev_state *in, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The host bridge at 00:00.0 as the guest sees it. */
enum pci_host_bridge {
	PCI_HOST_GENERIC, /* QEMU's generic PCIe host bridge 1b36:0008, for direct kernel boot */
	PCI_HOST_I440FX,  /* Intel 440FX (8086:1237, QEMU's pc machine), which firmware built for
			     QEMU (SeaBIOS, OVMF) recognises; its PAM registers 0x59-0x5f read
			     back what the guest writes and change nothing (the BIOS area is
			     RAM); with the PIIX3's ISA bridge at 00:01.0 (8086:7000) */
};

/* The host bridge @bus was made with. */
enum pci_host_bridge pci_bus_host_bridge(const struct pci_bus *bus);

/* Put function @dev (no BAR, no interrupt: a chipset function such as the PIIX4's power
 * management at 00:01.3) at @slot.@fn, beside a function 0 that says it has more functions.
 * Its configuration accesses take dev->lock and call its cfg_written. Returns 0, or -EINVAL
 * when @fn is 0, @dev has a BAR, @slot has no function 0 or the place is taken. */
int pci_bus_add_function(struct pci_bus *bus, struct pci_dev *dev, unsigned slot, unsigned fn)
	__attribute__((warn_unused_result));

/* Create bus 0 with host bridge @bridge: claims ports 0xCF8-0xCFF and the ECAM window on
 * @host. Returns 0 with *out set or -errno. */
int pci_bus_create(struct dev_host *host, enum pci_host_bridge bridge, struct pci_bus **out)
	__attribute__((warn_unused_result));
void pci_bus_destroy(struct pci_bus *bus);

/* Describe the root bridge (PNP0A03 with its bus, I/O and memory windows and a _PRT entry per
 * device) and the ECAM reservation in the DSDT, and ask for an MCFG table. With the i440FX
 * bridge the memory window reaches the I/O APIC, where firmware puts the BARs. */
void pci_bus_describe(const struct pci_bus *bus, struct acpi_config *acpi);

/* Initialise @dev's type 0 header: IDs, class (24 bits), subsystem IDs, interrupt pin A.
 * Capabilities are added with pci_add_cap() before pci_bus_add(). */
void pci_dev_init(struct pci_dev *dev, const struct pci_dev_ops *ops, void *opaque,
		  pthread_mutex_t *lock, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision, uint32_t bar_size);

/* Append a capability of @len bytes (ID in @data[0]; @data[1], the next pointer, is filled in)
 * and return its configuration-space offset, or 0 when it does not fit. @wmask (may be NULL)
 * gives the bits the guest may write. */
uint8_t pci_add_cap(struct pci_dev *dev, const uint8_t *data, uint8_t len, const uint8_t *wmask);

/* Add an MSI-X capability with @nr_vectors (<= PCI_MSIX_MAX_VECTORS) whose table and PBA sit
 * at @table_off and @pba_off in BAR 0. Returns 0 or -errno. Before pci_bus_add(). */
int pci_msix_init(struct pci_dev *dev, uint16_t nr_vectors, uint32_t table_off, uint32_t pba_off)
	__attribute__((warn_unused_result));

/* Put @dev in the next free slot: assign its BAR, route INTx, register the BAR on the MMIO bus
 * and the MSI-X irqfds with KVM. Returns 0 or -errno (-ENOSPC when the bus or window is full). */
int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev) __attribute__((warn_unused_result));

/* Release what pci_bus_add() and pci_msix_init() acquired for @dev (its irqfds). */
void pci_dev_release(struct pci_dev *dev);

/* Interrupt vector @vector: through MSI-X when the guest enabled it (a masked vector becomes
 * pending); returns false when MSI-X is off so the caller can use INTx. Lock held. */
bool pci_msix_notify(struct pci_dev *dev, unsigned vector);

/* Drive INTx (pin A) to @level. Lock held. */
void pci_set_intx(struct pci_dev *dev, bool level);

/* Read/write little-endian configuration fields. */
static inline uint32_t pci_cfg_get(const struct pci_dev *d, unsigned off, unsigned len)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)d->cfg[off + i] << (8 * i);
	return v;
}

static inline void pci_cfg_set(struct pci_dev *d, unsigned off, unsigned len, uint32_t v)
{
	for (unsigned i = 0; i < len; i++)
		d->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

#endif
