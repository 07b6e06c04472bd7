/* SPDX-License-Identifier: Apache-2.0 */
/* x86 — architectural vCPU state kiln gives a freshly created x86 vCPU.
 *
 * Owns: CPUID shaping (APIC IDs and topology leaves), the boot GDT and identity page tables,
 * entry register state for the 64-bit Linux boot protocol and PVH, and the initial MSRs, FPU
 * and local APIC LINT setup.
 */
#ifndef KILN_X86_H
#define KILN_X86_H

#include <stdbool.h>
#include <stddef.h>
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

/* Snapshot: write the complete state of vCPU @vcpu_fd (/dev/kvm is @kvm_fd) into @w as the
 * sections of instance @index (CPUID, registers, XSAVE or FPU, XCRs, MSRs including the TSC
 * and kvmclock, LAPIC, MP state, pending events, debug registers; KVM API document §4).
 * The vCPU must be out of KVM_RUN. Returns 0 or -errno with a message in @err. */
struct snap_writer;
struct snap_reader;
int x86_vcpu_save(int kvm_fd, int vcpu_fd, unsigned index, struct snap_writer *w, char *err,
		  size_t errlen) __attribute__((warn_unused_result));

/* The CPUID vCPU @index was given, from snapshot @r, checked against @host (what this host
 * would give the same vCPU: KVM_GET_SUPPORTED_CPUID after x86_cpuid_patch()): NULL with a message naming the missing feature bits in @err when
 * the guest was shown a feature this host cannot offer. Points into @r. */
const struct kvm_cpuid2 *x86_snapshot_cpuid(const struct snap_reader *r, unsigned index,
					    const struct kvm_cpuid2 *host, char *err, size_t errlen);

/* Give vCPU @vcpu_fd (CPUID already set from the snapshot) the state x86_vcpu_save() wrote for
 * @index. Returns 0 or -errno/-EINVAL with a message naming the section in @err. */
int x86_vcpu_load(int kvm_fd, int vcpu_fd, unsigned index, const struct snap_reader *r,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
