/* SPDX-License-Identifier: Apache-2.0 */
/* regs — boot-time register, MSR, FPU and LAPIC state of a vCPU, see include/kiln/x86.h.
 *
 * The 64-bit Linux entry (Linux boot protocol, "64-bit BOOT PROTOCOL") wants long mode with
 * paging on an identity map covering the kernel, zero page and command line, __BOOT_CS = 0x10
 * and __BOOT_DS = 0x18 as flat segments and RSI = the zero page. The PVH entry (Xen
 * docs/misc/pvh.pandoc) wants 32-bit protected mode, paging off, flat CS/DS, a busy TSS and
 * EBX = the hvm_start_info address. A Multiboot kernel (Multiboot 0.6.96 §3.2) enters as PVH
 * does, with EAX = 0x2BADB002 and EBX = the multiboot info. Firmware (BOOT_FIRMWARE) starts as
 * the processor does after RESET (Intel SDM vol. 3A §9.1.4: real mode, CS base 0xffff0000,
 * IP 0xfff0), which is the state KVM gives a new vCPU: only the extras are set.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "kiln/layout.h"
#include "kiln/x86.h"

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)
#define PTE_PRESENT (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_PS (1ull << 7)

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_DEF_TYPE_E (1ull << 11)
#define MTRR_TYPE_WB 6ull

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

/* GDT descriptors, flat 4 GiB: access byte and flags as in the Intel SDM vol. 3A §3.4.5. */
static const uint64_t boot_gdt[] = {
	[0] = 0,
	[KILN_GDT_CODE32 / 8] = 0x00cf9b000000ffffull, /* 32-bit code, read/exec, accessed */
	[KILN_GDT_CODE64 / 8] = 0x00af9b000000ffffull, /* 64-bit code (L=1) */
	[KILN_GDT_DATA / 8] = 0x00cf93000000ffffull,   /* data, read/write, accessed */
	[KILN_GDT_TSS / 8] = 0x00008b0000000067ull,    /* 32-bit TSS, busy, 104 bytes at 0 */
};

int x86_boot_write_tables(const struct guest_mem *mem)
{
	uint64_t pml4 = KILN_BOOT_PDPT | PTE_PRESENT | PTE_RW;
	uint64_t pdpt[4], pd[4 * 512];

	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (KILN_BOOT_PD + i * 4096) | PTE_PRESENT | PTE_RW;
	for (unsigned i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	if (guest_mem_write(mem, KILN_BOOT_GDT, boot_gdt, sizeof(boot_gdt)) ||
	    guest_mem_write(mem, KILN_BOOT_PML4, &pml4, sizeof(pml4)) ||
	    guest_mem_write(mem, KILN_BOOT_PDPT, pdpt, sizeof(pdpt)) ||
	    guest_mem_write(mem, KILN_BOOT_PD, pd, sizeof(pd)))
		return -EFAULT;
	return 0;
}

/* A KVM segment matching boot_gdt[selector / 8]. */
static struct kvm_segment segment(uint16_t selector)
{
	uint64_t d = boot_gdt[selector / 8];
	struct kvm_segment s = {
		.base = (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000)),
		.limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000)),
		.selector = selector,
		.type = (d >> 40) & 0xf,
		.present = (d >> 47) & 1,
		.dpl = (d >> 45) & 3,
		.db = (d >> 54) & 1,
		.s = (d >> 44) & 1,
		.l = (d >> 53) & 1,
		.g = (d >> 55) & 1,
	};

	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

static int setup_sregs(int fd, const struct boot_info *boot)
{
	struct kvm_sregs sregs;
	bool lm = boot->protocol == BOOT_LINUX_64;

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.gdt.base = KILN_BOOT_GDT;
	sregs.gdt.limit = sizeof(boot_gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = segment(lm ? KILN_GDT_CODE64 : KILN_GDT_CODE32);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(KILN_GDT_DATA);
	sregs.tr = segment(KILN_GDT_TSS);
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (lm) {
		sregs.cr3 = KILN_BOOT_PML4;
		sregs.cr4 |= X86_CR4_PAE;
		sregs.cr0 |= X86_CR0_PG;
		sregs.efer |= X86_EFER_LME | X86_EFER_LMA;
	}
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	return 0;
}

static int setup_regs(int fd, const struct boot_info *boot)
{
	struct kvm_regs regs = { .rflags = 0x2, .rip = boot->entry };

	if (boot->protocol == BOOT_LINUX_64)
		regs.rsi = boot->params_gpa;
	else
		regs.rbx = boot->params_gpa;
	if (boot->protocol == BOOT_MULTIBOOT)
		regs.rax = BOOT_MULTIBOOT_MAGIC;
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static int setup_msrs(int fd)
{
	static const struct { uint32_t index; uint64_t data; } init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_LSTAR, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_E | MTRR_TYPE_WB },
	};
	enum { N = sizeof(init) / sizeof(init[0]) };
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + N * sizeof(msrs->entries[0]));
	int ret;

	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = N;
	for (unsigned i = 0; i < N; i++)
		msrs->entries[i] = (struct kvm_msr_entry){ .index = init[i].index, .data = init[i].data };
	ret = ioctl(fd, KVM_SET_MSRS, msrs);
	ret = ret < 0 ? -errno : ret == N ? 0 : -EINVAL; /* KVM returns how many it accepted */
	free(msrs);
	return ret;
}

static int setup_fpu(int fd)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	return ioctl(fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

/* Route the legacy PIC through LINT0 (ExtINT) and NMIs through LINT1, as firmware does. */
static int setup_lapic(int fd)
{
	struct kvm_lapic_state lapic;
	uint32_t v;

	if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	memcpy(&v, &lapic.regs[APIC_LVT_LINT0], 4);
	v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(&lapic.regs[APIC_LVT_LINT0], &v, 4);
	memcpy(&v, &lapic.regs[APIC_LVT_LINT1], 4);
	v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&lapic.regs[APIC_LVT_LINT1], &v, 4);
	return ioctl(fd, KVM_SET_LAPIC, &lapic) < 0 ? -errno : 0;
}

int x86_vcpu_setup(int vcpu_fd, const struct boot_info *boot, bool bsp)
{
	int ret;

	ret = setup_msrs(vcpu_fd);
	if (!ret)
		ret = setup_fpu(vcpu_fd);
	if (!ret)
		ret = setup_lapic(vcpu_fd);
	bsp = bsp && boot->protocol != BOOT_FIRMWARE; /* firmware starts from KVM's reset state */
	if (!ret && bsp)
		ret = setup_sregs(vcpu_fd, boot);
	if (!ret && bsp)
		ret = setup_regs(vcpu_fd, boot);
	return ret;
}
