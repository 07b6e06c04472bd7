/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for PCI bus 0 and the virtio-pci transport, driven through the port and MMIO buses
 * as a guest would: configuration mechanism #1 and ECAM, the host bridge, empty slots, BAR
 * sizing, the virtio vendor capabilities, MSI-X routing and masking, INTx and the ISR. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/pci.h"
#include "kiln/virtio.h"
#include "kiln/virtio_rng.h"
#include "kiln/virtio_transport.h"
#include "common/device_class.h"

static struct {
	struct dev_host host;
	struct loop *loop;
	struct bus pio, mmio;
	struct guest_mem mem;
	unsigned next_gsi, routes, irqfds, ioeventfds, ioeventfds_removed;
	uint64_t ioeventfd_addr;
	uint64_t route_addr[64];
	uint32_t route_data[64];
	int intx[32];
} F;

static void fake_irq(struct dev_host *h, unsigned gsi, bool level) { F.intx[gsi] = level; }
static int fake_ioeventfd(struct dev_host *h, bool mmio, uint64_t a, uint32_t l, uint64_t v, int fd)
{
	F.ioeventfds++;
	F.ioeventfd_addr = a;
	return 0;
}
static int fake_ioeventfd_remove(struct dev_host *h, bool mmio, uint64_t a, uint32_t l, uint64_t v,
				 int fd)
{
	F.ioeventfds_removed++;
	return 0;
}
static int fake_irqfd(struct dev_host *h, unsigned gsi, int fd)
{
	F.irqfds++;
	return 0;
}
static int fake_alloc(struct dev_host *h) { return (int)(KILN_MSI_GSI_BASE + F.next_gsi++); }
static int fake_route(struct dev_host *h, unsigned gsi, uint64_t addr, uint32_t data)
{
	F.route_addr[gsi - KILN_MSI_GSI_BASE] = addr;
	F.route_data[gsi - KILN_MSI_GSI_BASE] = data;
	F.routes++;
	return 0;
}

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	bus_init(&F.pio, "port");
	bus_init(&F.mmio, "mmio");
	if (loop_new(&F.loop))
		return -1;
	F.host = (struct dev_host){ .pio = &F.pio, .mmio = &F.mmio, .set_irq = fake_irq,
				    .loop = F.loop, .ioeventfd = fake_ioeventfd,
				    .ioeventfd_remove = fake_ioeventfd_remove,
				    .irqfd = fake_irqfd, .alloc_msi_gsi = fake_alloc,
				    .set_msi_route = fake_route, .mem = &F.mem };
	return 0;
}

static int teardown(void **state)
{
	loop_free(F.loop);
	bus_destroy(&F.pio);
	bus_destroy(&F.mmio);
	return 0;
}

static uint32_t cfg_read_port(unsigned slot, unsigned reg, unsigned len)
{
	uint32_t addr = 0x80000000u | slot << 11 | (reg & 0xfc), v = 0;

	bus_dispatch(&F.pio, KILN_PORT_PCI_CONFIG, (uint8_t *)&addr, 4, true);
	bus_dispatch(&F.pio, KILN_PORT_PCI_CONFIG + 4 + (reg & 3), (uint8_t *)&v, len, false);
	return v;
}

static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned len)
{
	uint32_t v = 0;

	bus_dispatch(&F.mmio, KILN_PCI_ECAM_GPA + (slot << 15) + reg, (uint8_t *)&v, len, false);
	return v;
}

static void cfg_write(unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
	bus_dispatch(&F.mmio, KILN_PCI_ECAM_GPA + (slot << 15) + reg, (uint8_t *)&v, len, true);
}

static void test_host_bridge_and_empty_slots(void **state)
{
	struct pci_bus *bus;

	assert_int_equal(pci_bus_create(&F.host, PCI_HOST_GENERIC, &bus), 0);
	assert_int_equal(cfg_read_port(0, PCI_VENDOR_ID, 2), 0x1b36);
	assert_int_equal(cfg_read_port(0, PCI_CLASS_REVISION, 4) >> 8, PCI_CLASS_CODE_HOST_BRIDGE);
	assert_int_equal(cfg_read(0, PCI_VENDOR_ID, 2), 0x1b36);
	assert_int_equal(cfg_read_port(5, PCI_VENDOR_ID, 4), 0xffffffff);
	assert_int_equal(cfg_read(31, PCI_VENDOR_ID, 4), 0xffffffff);
	/* Function 1, bus 1 and disabled CONFIG_ADDRESS: nothing there. */
	assert_int_equal(cfg_read(0, (1 << 12) | PCI_VENDOR_ID, 2), 0xffff);
	{
		uint32_t addr = 1u << 16 | 0x80000000u, v = 0;

		bus_dispatch(&F.pio, KILN_PORT_PCI_CONFIG, (uint8_t *)&addr, 4, true);
		bus_dispatch(&F.pio, KILN_PORT_PCI_CONFIG + 4, (uint8_t *)&v, 4, false);
		assert_int_equal(v, 0xffffffff);
	}
	/* The read-only vendor ID ignores writes. */
	cfg_write(0, PCI_VENDOR_ID, 2, 0x1234);
	assert_int_equal(cfg_read(0, PCI_VENDOR_ID, 2), 0x1b36);
	pci_bus_destroy(bus);
}

/* Find the virtio vendor capability of @type; returns its config offset or 0. */
static unsigned find_cap(unsigned slot, uint8_t type)
{
	unsigned guard = 0;

	for (unsigned at = cfg_read(slot, PCI_CAPABILITY_LIST, 1); at && guard++ < 48;
	     at = cfg_read(slot, at + 1, 1))
		if (cfg_read(slot, at, 1) == PCI_CAP_ID_VNDR && cfg_read(slot, at + 3, 1) == type)
			return at;
	return 0;
}

static unsigned find_msix(unsigned slot)
{
	for (unsigned at = cfg_read(slot, PCI_CAPABILITY_LIST, 1); at; at = cfg_read(slot, at + 1, 1))
		if (cfg_read(slot, at, 1) == PCI_CAP_ID_MSIX)
			return at;
	return 0;
}

static uint32_t bar_rd(uint32_t bar, uint32_t off, unsigned len)
{
	uint32_t v = 0;

	bus_dispatch(&F.mmio, bar + off, (uint8_t *)&v, len, false);
	return v;
}

static void bar_wr(uint32_t bar, uint32_t off, unsigned len, uint32_t v)
{
	bus_dispatch(&F.mmio, bar + off, (uint8_t *)&v, len, true);
}

static void test_virtio_pci_function(void **state)
{
	struct virtio_dev *rng = test_device_new(&virtio_rng_class, &F.host, NULL);
	struct virtio_pci *vp;
	struct pci_bus *bus;
	unsigned common, notify, isr, cfgcap, msix;
	uint32_t bar, size, common_off, isr_off, table;

	assert_int_equal(pci_bus_create(&F.host, PCI_HOST_GENERIC, &bus), 0);
	F.host.pci = bus;
	assert_non_null(rng);
	assert_int_equal(virtio_pci_ops.create(&F.host, rng, 0, (void **)&vp), 0);
	assert_int_equal(cfg_read(1, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(1, PCI_DEVICE_ID, 2), 0x1040 + 4);
	assert_int_equal(cfg_read(1, PCI_REVISION_ID, 1), 1);
	assert_true(cfg_read(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_int_equal(cfg_read(1, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(cfg_read(1, PCI_INTERRUPT_LINE, 1), KILN_PCI_INTX_GSI);

	/* BAR sizing: all ones reads back the size mask, then the address is restored. */
	bar = cfg_read(1, PCI_BASE_ADDRESS_0, 4);
	assert_true(bar >= KILN_PCI_MEM_START && bar < KILN_PCI_MEM_END);
	cfg_write(1, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	size = ~cfg_read(1, PCI_BASE_ADDRESS_0, 4) + 1;
	assert_int_equal(size, 0x8000);
	assert_int_equal(bar % size, 0);
	cfg_write(1, PCI_BASE_ADDRESS_0, 4, bar);
	assert_int_equal(cfg_read(1, PCI_BASE_ADDRESS_0, 4), bar);

	common = find_cap(1, VIRTIO_PCI_CAP_COMMON_CFG);
	notify = find_cap(1, VIRTIO_PCI_CAP_NOTIFY_CFG);
	isr = find_cap(1, VIRTIO_PCI_CAP_ISR_CFG);
	cfgcap = find_cap(1, VIRTIO_PCI_CAP_PCI_CFG);
	msix = find_msix(1);
	assert_true(common && notify && isr && cfgcap && msix);
	assert_int_equal(find_cap(1, VIRTIO_PCI_CAP_DEVICE_CFG), 0); /* rng has no config */
	assert_int_equal(cfg_read(1, notify + 16, 4), 4);            /* notify_off_multiplier */
	common_off = cfg_read(1, common + VIRTIO_PCI_CAP_OFFSET, 4);
	isr_off = cfg_read(1, isr + VIRTIO_PCI_CAP_OFFSET, 4);
	assert_int_equal(F.ioeventfds, 1);                            /* one queue */

	/* Common configuration: queues, features, status. */
	assert_int_equal(bar_rd(bar, common_off + offsetof(struct virtio_pci_common_cfg, num_queues), 2), 1);
	bar_wr(bar, common_off + offsetof(struct virtio_pci_common_cfg, device_feature_select), 4, 1);
	assert_true(bar_rd(bar, common_off + offsetof(struct virtio_pci_common_cfg, device_feature), 4) &
		    (1u << (VIRTIO_F_VERSION_1 - 32)));
	/* The PCI-config window reads the same register through configuration space. */
	cfg_write(1, cfgcap + VIRTIO_PCI_CAP_OFFSET, 4, common_off + offsetof(struct virtio_pci_common_cfg, num_queues));
	cfg_write(1, cfgcap + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	assert_int_equal(cfg_read(1, cfgcap + 16, 2), 1);

	/* A queue vector the function does not have reads back as NO_VECTOR. */
	bar_wr(bar, common_off + offsetof(struct virtio_pci_common_cfg, queue_msix_vector), 2, 7);
	assert_int_equal(bar_rd(bar, common_off + offsetof(struct virtio_pci_common_cfg, queue_msix_vector), 2),
			 VIRTIO_MSI_NO_VECTOR);
	bar_wr(bar, common_off + offsetof(struct virtio_pci_common_cfg, queue_msix_vector), 2, 1);
	bar_wr(bar, common_off + offsetof(struct virtio_pci_common_cfg, msix_config), 2, 0);

	/* INTx while MSI-X is off: the config interrupt raises the line, reading the ISR drops it. */
	pthread_mutex_lock(&rng->lock);
	rng->isr |= VIRTIO_ISR_CONFIG;
	rng->transport.notify(rng, VIRTIO_CONFIG_IRQ);
	pthread_mutex_unlock(&rng->lock);
	assert_int_equal(F.intx[KILN_PCI_INTX_GSI], 1);
	assert_int_equal(bar_rd(bar, isr_off, 1), VIRTIO_ISR_CONFIG);
	assert_int_equal(F.intx[KILN_PCI_INTX_GSI], 0);
	assert_int_equal(bar_rd(bar, isr_off, 1), 0);

	/* MSI-X: two vectors (config + one queue), each routed when the guest writes its entry. */
	assert_int_equal((cfg_read(1, msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1, 2);
	assert_int_equal(F.irqfds, 2);
	table = cfg_read(1, msix + PCI_MSIX_TABLE, 4);
	bar_wr(bar, table + 16 + PCI_MSIX_ENTRY_LOWER_ADDR, 4, 0xfee00000);
	bar_wr(bar, table + 16 + PCI_MSIX_ENTRY_DATA, 4, 0x4041);
	assert_int_equal(F.route_addr[1], 0xfee00000);
	assert_int_equal(F.route_data[1], 0x4041);
	cfg_write(1, msix + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	/* Vector 1 is still masked: a queue interrupt becomes pending, unmasking delivers it. */
	pthread_mutex_lock(&rng->lock);
	rng->transport.notify(rng, 0);
	pthread_mutex_unlock(&rng->lock);
	assert_int_equal(bar_rd(bar, cfg_read(1, msix + PCI_MSIX_PBA, 4), 4), 2);
	bar_wr(bar, table + 16 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
	assert_int_equal(bar_rd(bar, cfg_read(1, msix + PCI_MSIX_PBA, 4), 4), 0);
	/* With MSI-X on, INTx stays low. */
	assert_int_equal(F.intx[KILN_PCI_INTX_GSI], 0);

	virtio_pci_ops.destroy(vp);
	virtio_dev_free(rng);
	pci_bus_destroy(bus);
}

static void test_bus_fills_up(void **state)
{
	struct virtio_dev *dev[KILN_PCI_INTX_LINES + 1];
	struct virtio_pci *vp[KILN_PCI_INTX_LINES + 1];
	struct pci_bus *bus;

	assert_int_equal(pci_bus_create(&F.host, PCI_HOST_GENERIC, &bus), 0);
	F.host.pci = bus;
	for (unsigned i = 0; i < KILN_PCI_INTX_LINES; i++) {
		dev[i] = test_device_new(&virtio_rng_class, &F.host, NULL);
		assert_int_equal(virtio_pci_ops.create(&F.host, dev[i], i, (void **)&vp[i]), 0);
		assert_int_equal(cfg_read(i + 1, PCI_INTERRUPT_LINE, 1), KILN_PCI_INTX_GSI + i);
	}
	dev[KILN_PCI_INTX_LINES] = test_device_new(&virtio_rng_class, &F.host, NULL);
	assert_int_equal(virtio_pci_ops.create(&F.host, dev[KILN_PCI_INTX_LINES], KILN_PCI_INTX_LINES,
					       (void **)&vp[KILN_PCI_INTX_LINES]), -ENOSPC);
	for (unsigned i = 0; i < KILN_PCI_INTX_LINES; i++) {
		virtio_pci_ops.destroy(vp[i]);
		virtio_dev_free(dev[i]);
	}
	virtio_dev_free(dev[KILN_PCI_INTX_LINES]);
	pci_bus_destroy(bus);
}

/* Firmware that assigns BARs itself (SeaBIOS) moves them: the BAR's registers and its notify
 * ioeventfds follow a move inside the PCI hole; a move onto another range or past the I/O
 * APIC is refused and the BAR stays. */
static void test_bar_moves(void **state)
{
	struct virtio_dev *rng = test_device_new(&virtio_rng_class, &F.host, NULL);
	const uint32_t to = 0xfebf0000;
	struct virtio_pci *vp;
	struct pci_bus *bus;
	uint32_t bar, common_off;

	assert_int_equal(pci_bus_create(&F.host, PCI_HOST_GENERIC, &bus), 0);
	F.host.pci = bus;
	assert_int_equal(virtio_pci_ops.create(&F.host, rng, 0, (void **)&vp), 0);
	bar = cfg_read(1, PCI_BASE_ADDRESS_0, 4);
	common_off = cfg_read(1, find_cap(1, VIRTIO_PCI_CAP_COMMON_CFG) + VIRTIO_PCI_CAP_OFFSET, 4);
	cfg_write(1, PCI_BASE_ADDRESS_0, 4, to);
	assert_int_equal(cfg_read(1, PCI_BASE_ADDRESS_0, 4), to);
	assert_int_equal(bar_rd(to, common_off + offsetof(struct virtio_pci_common_cfg, num_queues), 2), 1);
	assert_int_equal(bar_rd(bar, common_off, 4), 0xffffffff);
	assert_int_equal(F.ioeventfds_removed, 1);
	assert_int_equal(F.ioeventfds, 2);
	assert_true(F.ioeventfd_addr >= to && F.ioeventfd_addr < to + 0x8000);
	/* Over the ECAM window, then past the I/O APIC: refused, the BAR decodes where it was. */
	cfg_write(1, PCI_BASE_ADDRESS_0, 4, (uint32_t)KILN_PCI_ECAM_GPA);
	cfg_write(1, PCI_BASE_ADDRESS_0, 4, (uint32_t)KILN_IOAPIC_GPA);
	assert_int_equal(bar_rd(to, common_off + offsetof(struct virtio_pci_common_cfg, num_queues), 2), 1);
	assert_int_equal(F.ioeventfds, 2);
	virtio_pci_ops.destroy(vp);
	virtio_dev_free(rng);
	pci_bus_destroy(bus);
}

/* With firmware the host bridge is QEMU's i440FX, whose PAM registers keep what is written. */
static void test_i440fx_bridge(void **state)
{
	struct pci_bus *bus;

	assert_int_equal(pci_bus_create(&F.host, PCI_HOST_I440FX, &bus), 0);
	assert_int_equal(cfg_read_port(0, PCI_VENDOR_ID, 4), 0x12378086);
	assert_int_equal(cfg_read_port(0, PCI_CLASS_REVISION, 4) >> 8, PCI_CLASS_CODE_HOST_BRIDGE);
	cfg_write(0, 0x58, 4, 0x30303030);
	assert_int_equal(cfg_read_port(0, 0x58, 4), 0x30303000); /* 0x58 is not a PAM register */
	pci_bus_destroy(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_bridge_and_empty_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_pci_function, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bus_fills_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i440fx_bridge, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
