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

/* Allocate a GSI and an irqfd per vector once the function is on the bus. Returns 0 or -errno. */
int pci_msix_connect(struct pci_dev *dev);

#endif
