/* SPDX-License-Identifier: Apache-2.0 */
/* irq — the VM's interrupt routing: ISA IRQ lines and GSIs into the in-kernel PIC and IOAPIC,
 * MSI routes the guest programs into PCI functions, irqfds and ioeventfds. See vm_internal.h.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so every MSI change rewrites it from the PC's
 * fixed routes and the MSI routes kept here (vm->msi, under msi_lock).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kiln/layout.h"
#include "kiln/log.h"
#include "vm_internal.h"

static void host_set_irq(struct dev_host *host, unsigned gsi, bool level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(host_vm(host)->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE gsi %u level %d: %s", gsi, level, strerror(errno));
}

static int ioeventfd(struct dev_host *host, bool mmio, uint64_t addr, uint32_t len,
		     uint64_t value, int fd, uint32_t flags)
{
	struct kvm_ioeventfd io = { .datamatch = value, .addr = addr, .len = len, .fd = fd,
				    .flags = flags | KVM_IOEVENTFD_FLAG_DATAMATCH |
					     (mmio ? 0 : KVM_IOEVENTFD_FLAG_PIO) };

	return ioctl(host_vm(host)->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int host_ioeventfd(struct dev_host *host, bool mmio, uint64_t addr, uint32_t len,
			  uint64_t value, int fd)
{
	return ioeventfd(host, mmio, addr, len, value, fd, 0);
}

static int host_ioeventfd_remove(struct dev_host *host, bool mmio, uint64_t addr, uint32_t len,
				 uint64_t value, int fd)
{
	return ioeventfd(host, mmio, addr, len, value, fd, KVM_IOEVENTFD_FLAG_DEASSIGN);
}

static int host_irqfd(struct dev_host *host, unsigned gsi, int fd)
{
	struct kvm_irqfd irq = { .fd = (uint32_t)fd, .gsi = gsi };

	return ioctl(host_vm(host)->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

/* GSI routing as on a PC: ISA IRQ n to PIC pin n and IOAPIC pin n, except the PIT's IRQ 0,
 * which reaches IOAPIC pin 2 (the MADT's IRQ0->GSI2 override); GSI 16..23 IOAPIC only; then the
 * MSI routes PCI functions programmed. KVM_SET_GSI_ROUTING replaces the whole table, so every
 * change rewrites it. Called with msi_lock held (or before any vCPU runs). */
int vm_set_gsi_routing(struct vm *vm)
{
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + (16 + KILN_IOAPIC_PINS + vm->nr_msi) *
					   sizeof(r->entries[0]));
	unsigned n = 0;
	int ret;

	if (!r)
		return -ENOMEM;
	for (unsigned irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue; /* the slave PIC's cascade */
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = irq, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = irq < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				       .pin = irq % 8 } };
	}
	for (unsigned gsi = 0; gsi < KILN_IOAPIC_PINS; gsi++) {
		if (gsi == 2)
			continue;
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi == 0 ? 2 : gsi } };
	}
	for (unsigned i = 0; i < vm->nr_msi; i++)
		if (vm->msi[i].type == KVM_IRQ_ROUTING_MSI)
			r->entries[n++] = vm->msi[i];
	r->nr = n;
	ret = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
	free(r);
	return ret;
}

static int host_alloc_msi_gsi(struct dev_host *host)
{
	struct vm *vm = host_vm(host);
	int gsi = -ENOSPC;

	pthread_mutex_lock(&vm->msi_lock);
	if (vm->nr_msi < KILN_MSI_GSI_MAX)
		gsi = KILN_MSI_GSI_BASE + (int)vm->nr_msi++;
	pthread_mutex_unlock(&vm->msi_lock);
	return gsi;
}

static int host_set_msi_route(struct dev_host *host, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct vm *vm = host_vm(host);
	int ret = -EINVAL;

	pthread_mutex_lock(&vm->msi_lock);
	if (gsi >= KILN_MSI_GSI_BASE && gsi - KILN_MSI_GSI_BASE < vm->nr_msi) {
		vm->msi[gsi - KILN_MSI_GSI_BASE] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
				   .data = data } };
		ret = vm_set_gsi_routing(vm);
	}
	pthread_mutex_unlock(&vm->msi_lock);
	return ret;
}

int vm_irq_init(struct vm *vm)
{
	pthread_mutex_init(&vm->msi_lock, NULL);
	vm->msi = calloc(KILN_MSI_GSI_MAX, sizeof(*vm->msi));
	vm->host.set_irq = host_set_irq;
	vm->host.ioeventfd = host_ioeventfd;
	vm->host.ioeventfd_remove = host_ioeventfd_remove;
	vm->host.irqfd = host_irqfd;
	vm->host.alloc_msi_gsi = host_alloc_msi_gsi;
	vm->host.set_msi_route = host_set_msi_route;
	return vm->msi ? 0 : -ENOMEM;
}

void vm_irq_destroy(struct vm *vm)
{
	pthread_mutex_destroy(&vm->msi_lock);
	free(vm->msi);
}
