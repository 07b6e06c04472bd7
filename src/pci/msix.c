/* SPDX-License-Identifier: Apache-2.0 */
/* msix — MSI-X (PCI Local Bus 3.0 §6.8.2): the capability, the vector table and the pending-bit
 * array in BAR 0, each vector an irqfd on its own GSI whose MSI route follows the table entry
 * the guest writes. Masked vectors (per vector or the function mask) collect pending bits and
 * fire when unmasked. See include/kiln/pci.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/pci_regs.h>

#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"
#include "pci_internal.h"

#define ENTRY 16u
#define CTRL_MASKED 1u

int pci_msix_init(struct pci_dev *dev, uint16_t nr_vectors, uint32_t table_off, uint32_t pba_off)
{
	uint8_t cap[12] = { PCI_CAP_ID_MSIX }, wmask[12] = { 0 };
	struct pci_msix *m = &dev->msix;

	if (nr_vectors == 0 || nr_vectors > PCI_MSIX_MAX_VECTORS || (table_off & 7) || (pba_off & 7) ||
	    table_off + nr_vectors * ENTRY > dev->bar_size || pba_off + 8 > dev->bar_size)
		return -EINVAL;
	le_put(cap + PCI_MSIX_FLAGS, 2, nr_vectors - 1u);
	le_put(cap + PCI_MSIX_TABLE, 4, table_off); /* BIR 0 */
	le_put(cap + PCI_MSIX_PBA, 4, pba_off);
	le_put(wmask + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	m->cap = pci_add_cap(dev, cap, sizeof(cap), wmask);
	if (!m->cap)
		return -EOVERFLOW; /* no room in configuration space */
	m->nr_vectors = nr_vectors;
	m->table_off = table_off;
	m->pba_off = pba_off;
	for (unsigned v = 0; v < nr_vectors; v++) {
		le_put(m->table + v * ENTRY + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, CTRL_MASKED);
		m->irqfd[v] = -1;
	}
	dev->has_msix = true;
	return 0;
}

int pci_msix_connect(struct pci_dev *dev)
{
	struct pci_msix *m = &dev->msix;
	struct dev_host *h = dev->host;

	for (unsigned v = 0; v < m->nr_vectors; v++) {
		int gsi = h->alloc_msi_gsi(h), ret;

		if (gsi < 0)
			return gsi;
		m->gsi[v] = (unsigned)gsi;
		m->irqfd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->irqfd[v] < 0)
			return -errno;
		ret = h->irqfd(h, m->gsi[v], m->irqfd[v]);
		if (ret)
			return ret;
	}
	return 0;
}

static uint16_t flags(const struct pci_dev *dev) { return (uint16_t)pci_cfg_get(dev, dev->msix.cap + PCI_MSIX_FLAGS, 2); }

static bool vector_masked(const struct pci_dev *dev, unsigned v)
{
	uint32_t ctrl;

	memcpy(&ctrl, dev->msix.table + v * ENTRY + PCI_MSIX_ENTRY_VECTOR_CTRL, 4);
	return (flags(dev) & PCI_MSIX_FLAGS_MASKALL) || (ctrl & CTRL_MASKED);
}

static void fire(struct pci_dev *dev, unsigned v)
{
	uint64_t one = 1;

	if (write(dev->msix.irqfd[v], &one, sizeof(one)) < 0 && log_once_first(&dev->bad_bar))
		log_warn("PCI %02x.0: MSI-X vector %u: irqfd write failed", dev->slot, v);
}

/* Deliver what became unmasked. */
static void flush_pending(struct pci_dev *dev)
{
	struct pci_msix *m = &dev->msix;

	if (!(flags(dev) & PCI_MSIX_FLAGS_ENABLE))
		return;
	for (unsigned v = 0; v < m->nr_vectors; v++) {
		if ((m->pending & (1ull << v)) && !vector_masked(dev, v)) {
			m->pending &= ~(1ull << v);
			fire(dev, v);
		}
	}
}

bool pci_msix_notify(struct pci_dev *dev, unsigned v)
{
	struct pci_msix *m = &dev->msix;

	if (!dev->has_msix || !(flags(dev) & PCI_MSIX_FLAGS_ENABLE))
		return false;
	if (v >= m->nr_vectors)
		return true; /* no vector assigned: the driver asked for no interrupt */
	if (vector_masked(dev, v))
		m->pending |= 1ull << v;
	else
		fire(dev, v);
	return true;
}

void pci_msix_cfg_written(struct pci_dev *dev, uint32_t off, uint32_t len)
{
	uint32_t f = dev->msix.cap + PCI_MSIX_FLAGS;

	if (off < f + 2 && off + len > f)
		flush_pending(dev);
}

bool pci_msix_bar_access(struct pci_dev *dev, uint64_t off, uint8_t *data, uint32_t len, bool write)
{
	struct pci_msix *m = &dev->msix;
	uint64_t table_end = m->table_off + (uint64_t)m->nr_vectors * ENTRY;

	if (!write)
		memset(data, 0, len);

	if (off >= m->table_off && off < table_end) {
		uint64_t rel = off - m->table_off;
		unsigned v = (unsigned)(rel / ENTRY);
		uint8_t *entry = m->table + v * ENTRY;
		uint32_t lo, hi, msg;

		if (rel % ENTRY + len > ENTRY)
			len = (uint32_t)(ENTRY - rel % ENTRY); /* never past the entry */
		if (!write) {
			memcpy(data, m->table + rel, len);
			return true;
		}
		memcpy(m->table + rel, data, len);
		memcpy(&lo, entry + PCI_MSIX_ENTRY_LOWER_ADDR, 4);
		memcpy(&hi, entry + PCI_MSIX_ENTRY_UPPER_ADDR, 4);
		memcpy(&msg, entry + PCI_MSIX_ENTRY_DATA, 4);
		if (rel % ENTRY < PCI_MSIX_ENTRY_VECTOR_CTRL &&
		    dev->host->set_msi_route(dev->host, m->gsi[v], (uint64_t)hi << 32 | lo, msg) &&
		    log_once_first(&dev->bad_bar))
			log_warn("PCI %02x.0: MSI-X vector %u: cannot route it", dev->slot, v);
		flush_pending(dev);
		return true;
	}
	if (off >= m->pba_off && off < m->pba_off + 8) {
		uint64_t rel = off - m->pba_off;

		if (!write)
			memcpy(data, (uint8_t *)&m->pending + rel, rel + len > 8 ? 8 - rel : len);
		return true;
	}
	return false;
}

void pci_dev_release(struct pci_dev *dev)
{
	for (unsigned v = 0; dev->has_msix && v < dev->msix.nr_vectors; v++)
		if (dev->msix.irqfd[v] >= 0)
			close(dev->msix.irqfd[v]);
	dev->has_msix = false;
}

void pci_dev_state_encode(struct snap_enc *e, const struct pci_dev_state *s)
{
	snap_enc_bytes(e, s->cfg, sizeof(s->cfg));
	snap_enc_bytes(e, s->msix_table, sizeof(s->msix_table));
	snap_enc_u64(e, s->msix_pending);
	snap_enc_u8(e, s->intx_level);
	snap_enc_bytes(e, (const uint8_t[7]){ 0 }, 7);
}

void pci_dev_state_decode(struct snap_dec *d, struct pci_dev_state *s)
{
	uint8_t pad[7];

	snap_dec_bytes(d, s->cfg, sizeof(s->cfg));
	snap_dec_bytes(d, s->msix_table, sizeof(s->msix_table));
	s->msix_pending = snap_dec_u64(d);
	s->intx_level = snap_dec_u8(d);
	snap_dec_bytes(d, pad, sizeof(pad));
}

void pci_dev_save(const struct pci_dev *dev, struct pci_dev_state *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->cfg, dev->cfg, sizeof(out->cfg));
	memcpy(out->msix_table, dev->msix.table, sizeof(out->msix_table));
	out->msix_pending = dev->msix.pending;
	out->intx_level = dev->intx_level;
}

int pci_dev_load(struct pci_dev *dev, const struct pci_dev_state *in, char *err, size_t errlen)
{
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++) {
		if (i == PCI_STATUS || i == PCI_STATUS + 1) /* the function sets its own bits */
			continue;
		if ((in->cfg[i] ^ dev->cfg[i]) & ~dev->wmask[i]) {
			snprintf(err, errlen, "snapshot: PCI %02x.0 is not the function the restored "
				 "configuration made (config byte 0x%02x)", dev->slot, i);
			return -EINVAL;
		}
	}
	if (dev->has_msix && (in->msix_pending >> dev->msix.nr_vectors)) {
		snprintf(err, errlen, "snapshot: PCI %02x.0: MSI-X pending bits out of range", dev->slot);
		return -EINVAL;
	}
	memcpy(dev->cfg, in->cfg, sizeof(dev->cfg));
	if (dev->has_msix) {
		memcpy(dev->msix.table, in->msix_table, dev->msix.nr_vectors * ENTRY);
		dev->msix.pending = in->msix_pending;
	}
	dev->intx_level = in->intx_level;
	if (dev->bar_size)
		pci_bar_written(dev); /* where the guest had moved it */
	return 0;
}
