/* SPDX-License-Identifier: Apache-2.0 */
/* cpuid — per-vCPU CPUID topology, see include/kiln/x86.h. */
#include <linux/kvm.h>

#include "kiln/x86.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define TOPO_LEVEL_SMT 1
#define TOPO_LEVEL_CORE 2

unsigned x86_apic_id_shift(unsigned n)
{
	unsigned shift = 0;

	while ((1u << shift) < n)
		shift++;
	return shift;
}

/* Extended topology (leaves 0xB and 0x1F): level 0 = SMT (1 thread per core), level 1 = core. */
static void patch_ext_topology(struct kvm_cpuid_entry2 *e, unsigned index, unsigned nr_cpus)
{
	e->edx = index;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (TOPO_LEVEL_SMT << 8) | 0;
		break;
	case 1:
		e->eax = x86_apic_id_shift(nr_cpus);
		e->ebx = nr_cpus;
		e->ecx = (TOPO_LEVEL_CORE << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index; /* level type 0: invalid, ends the enumeration */
		break;
	}
}

void x86_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned index, unsigned nr_cpus)
{
	unsigned shift = x86_apic_id_shift(nr_cpus);

	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) | ((nr_cpus & 0xff) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (nr_cpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Deterministic cache parameters: cores per package - 1 in EAX[31:26];
			 * each cache is private to its core (one thread shares it). */
			if ((e->eax & 0x1f) == 0)
				break;
			e->eax = (e->eax & 0x3fff) | (((1u << shift) - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			patch_ext_topology(e, index, nr_cpus);
			break;
		case 0x80000001:
			if (nr_cpus > 1)
				e->ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			else
				e->ecx &= ~CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			/* ApicIdSize in ECX[15:12], NC (cores - 1) in ECX[7:0]. */
			e->ecx = (e->ecx & ~0xf0ffu) | (shift << 12) | ((nr_cpus - 1) & 0xff);
			break;
		case 0x8000001e:
			e->eax = index;      /* extended APIC ID */
			e->ebx = index & 0xff; /* compute unit = core, one thread per unit */
			e->ecx = 0;          /* one node, node 0 */
			break;
		}
	}
}
