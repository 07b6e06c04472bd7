/* SPDX-License-Identifier: Apache-2.0 */
/* pci_internal — what bus.c and msix.c share inside src/pci. */
#ifndef KILN_PCI_INTERNAL_H
#define KILN_PCI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/pci.h"

static inline void le_put(uint8_t *p, unsigned len, uint32_t v)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Serve a BAR access that falls in the MSI-X table or PBA; false when it does not. Lock held. */
bool pci_msix_bar_access(struct pci_dev *dev, uint64_t off, uint8_t *data, uint32_t len, bool write);

/* After a configuration write: MSI-X enable / function mask changes. Lock held. */
void pci_msix_cfg_written(struct pci_dev *dev, uint32_t off, uint32_t len);

/* BAR 0's register changed (a guest write, a restore; lock held): sizing (all ones) and the
 * current address change nothing; a new address in the MMIO hole, below the I/O APIC and clear
 * of other ranges moves the BAR and, through ops->bar_moved, the device's ioeventfds; anything
 * else is logged once and the BAR decodes where it did. */
void pci_bar_written(struct pci_dev *dev);

/* Allocate a GSI and an irqfd per vector once the function is on the bus. Returns 0 or -errno. */
int pci_msix_connect(struct pci_dev *dev);

#endif
