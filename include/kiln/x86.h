/* x86 — architectural vCPU state kiln gives a freshly created x86 vCPU.
 *
 * Owns: CPUID shaping (APIC IDs and topology leaves), the boot GDT and identity page tables,
 * entry register state for the 64-bit Linux boot protocol and PVH, and the initial MSRs, FPU
 * and local APIC LINT setup.
 */
#ifndef KILN_X86_H
#define KILN_X86_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/boot.h"
#include "kiln/guest_mem.h"

struct kvm_cpuid2;

/* Patch @cpuid (from KVM_GET_SUPPORTED_CPUID) for vCPU @index of @nr_cpus: one package of
 * nr_cpus cores with one thread each, APIC ID = index. Sets the initial APIC ID (leaf 1 EBX),
 * the logical-processor count and HTT, the hypervisor bit, Intel leaves 4/0xB/0x1F and AMD
 * leaves 0x80000001/0x80000008/0x8000001E as far as they are present. Intel SDM vol. 2A
 * "CPUID"; AMD APM vol. 3 appendix E. */
void x86_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned index, unsigned nr_cpus);

/* Bits needed to number @n cores (ceil(log2(n))). */
unsigned x86_apic_id_shift(unsigned n);

/* Write the boot GDT and the identity page tables (0..4 GiB, 2 MiB pages) into guest memory.
 * Returns 0 or -EFAULT when the fixed addresses in layout.h are not RAM. */
int x86_boot_write_tables(const struct guest_mem *mem) __attribute__((warn_unused_result));

/* Give vCPU @vcpu_fd its reset-time extras (MSRs, FPU, LAPIC LINT0 ExtINT / LINT1 NMI) and, for
 * the bootstrap processor, the entry state of @boot (64-bit long mode with RSI = zero page, or
 * 32-bit protected mode with EBX = hvm_start_info for PVH). Returns 0 or -errno from KVM. */
int x86_vcpu_setup(int vcpu_fd, const struct boot_info *boot, bool bsp)
	__attribute__((warn_unused_result));

#endif
