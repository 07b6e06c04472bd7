/* pci_config — PCI configuration mechanism #1 (ports 0xCF8-0xCFF) on a machine with no PCI
 * devices yet: CONFIG_ADDRESS holds what a 32-bit write put there (Linux's type-1 probe reads
 * it back), and CONFIG_DATA reads as all-ones, the "no device" answer. PCI Local Bus 3.0
 * §3.2.2.3.2. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/devices.h"
#include "kiln/layout.h"

#define CONFIG_ADDRESS_ENABLE 0x80000000u

struct pci_config {
	_Atomic uint32_t address;
};

static void pci_config_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_config *p = opaque;
	uint32_t v = atomic_load(&p->address);

	if (off == 0 && len == 4)
		memcpy(data, &v, 4);
	else
		memset(data, 0xff, len);
}

static void pci_config_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_config *p = opaque;
	uint32_t v;

	/* Only a dword access at 0xCF8 is CONFIG_ADDRESS; data-port writes reach no device. */
	if (off == 0 && len == 4) {
		memcpy(&v, data, 4);
		atomic_store(&p->address, v & (CONFIG_ADDRESS_ENABLE | 0x00fffffcu));
	}
}

static const struct bus_ops pci_config_ops = { .read = pci_config_read, .write = pci_config_write };

static int pci_config_create(struct dev_host *host, void **state)
{
	struct pci_config *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	ret = bus_register(host->pio, KILN_PORT_PCI_CONFIG, 8, &pci_config_ops, p, "pci config");
	if (ret) {
		free(p);
		return ret;
	}
	*state = p;
	return 0;
}

const struct device_type pci_config_type = {
	.name = "pci_config", .create = pci_config_create, .destroy = free,
};
