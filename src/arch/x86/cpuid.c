/* SPDX-License-Identifier: Apache-2.0 */
/* cpuid — per-vCPU CPUID topology, see include/kiln/x86.h.
 *
 * One package; APIC ID = vCPU index. Without SMT every core has one thread; with SMT two, the
 * low bit of the APIC ID numbering the thread in its core (Intel SDM vol. 3A §10.9.1,
 * "Hierarchical Mapping of Shared Resources").
 */
#include <cpuid.h>
#include <errno.h>
#include <string.h>
#include <linux/kvm.h>

#include "kiln/x86.h"

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define CPUID_80000001_ECX_TOPOEXT (1u << 22)
#define CPUID_EXT_TOPOLOGY_AMD 0x8000001eu
#define TOPO_LEVEL_SMT 1
#define TOPO_LEVEL_CORE 2

unsigned x86_apic_id_shift(unsigned n)
{
	unsigned shift = 0;

	while ((1u << shift) < n)
		shift++;
	return shift;
}

unsigned x86_threads_per_core(const struct x86_cpu_topology *topo)
{
	return topo->smt && topo->nr_cpus % 2 == 0 ? 2 : 1;
}

/* The shape of @topo: threads per core, the APIC ID bits of a thread within its core and of
 * a logical processor within the package. */
struct shape {
	unsigned threads, thread_bits, package_bits;
};

static struct shape shape_of(const struct x86_cpu_topology *topo)
{
	unsigned threads = x86_threads_per_core(topo);
	unsigned thread_bits = x86_apic_id_shift(threads);

	return (struct shape){ .threads = threads, .thread_bits = thread_bits,
			       .package_bits = thread_bits +
					       x86_apic_id_shift(topo->nr_cpus / threads) };
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *cpuid, uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == function && cpuid->entries[i].index == index)
			return &cpuid->entries[i];
	return NULL;
}

/* Whether leaf 0 of @cpuid names AMD (or Hygon, whose topology leaves are AMD's). */
static bool is_amd(struct kvm_cpuid2 *cpuid)
{
	const struct kvm_cpuid_entry2 *leaf0 = find(cpuid, 0, 0);
	struct x86_cpu_id id;

	if (!leaf0)
		return false;
	x86_cpu_id_from_leaves(&id, leaf0->ebx, leaf0->ecx, leaf0->edx, 0);
	return !strcmp(id.vendor, X86_VENDOR_AMD) || !strcmp(id.vendor, X86_VENDOR_HYGON);
}

/* Append an empty entry @function.@index to @cpuid, which has room for @max; NULL when full. */
static struct kvm_cpuid_entry2 *add(struct kvm_cpuid2 *cpuid, unsigned max, uint32_t function,
				    uint32_t index, uint32_t flags)
{
	if (cpuid->nent >= max)
		return NULL;
	cpuid->entries[cpuid->nent] = (struct kvm_cpuid_entry2){ .function = function,
								 .index = index, .flags = flags };
	return &cpuid->entries[cpuid->nent++];
}

int x86_cpuid_prepare(struct kvm_cpuid2 *cpuid, unsigned max, const struct x86_cpu_topology *topo)
{
	static const uint32_t ext_topology[] = { 0xb, 0x1f };
	struct kvm_cpuid_entry2 *ext;

	/* Newer KVMs list only subleaf 0 of the extended topology leaves: without the core level
	 * a guest would take every core for a package of its own. */
	for (unsigned i = 0; i < sizeof(ext_topology) / sizeof(ext_topology[0]); i++)
		if (find(cpuid, ext_topology[i], 0) && !find(cpuid, ext_topology[i], 1) &&
		    !add(cpuid, max, ext_topology[i], 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX))
			return -E2BIG;
	/* An AMD guest learns of threads only through TOPOEXT and leaf 0x8000001E (Linux
	 * early_init_amd(); AMD APM vol. 3 appendix E.4.24), which Firecracker also offers. */
	if (x86_threads_per_core(topo) == 1 || !is_amd(cpuid))
		return 0;
	ext = find(cpuid, 0x80000001, 0);
	if (!ext || !find(cpuid, 0x80000000, 0))
		return 0; /* no extended leaves at all: a guest sees one thread per core */
	ext->ecx |= CPUID_80000001_ECX_TOPOEXT;
	if (!find(cpuid, CPUID_EXT_TOPOLOGY_AMD, 0) &&
	    !add(cpuid, max, CPUID_EXT_TOPOLOGY_AMD, 0, 0))
		return -E2BIG;
	ext = find(cpuid, 0x80000000, 0);
	if (ext->eax < CPUID_EXT_TOPOLOGY_AMD)
		ext->eax = CPUID_EXT_TOPOLOGY_AMD;
	return 0;
}

/* Extended topology (leaves 0xB and 0x1F): level 0 = SMT, level 1 = core (Intel SDM vol. 2A,
 * CPUID leaf 0BH). */
static void patch_ext_topology(struct kvm_cpuid_entry2 *e, unsigned index, unsigned nr_cpus,
			       const struct shape *s)
{
	e->edx = index;
	switch (e->index) {
	case 0:
		e->eax = s->thread_bits;
		e->ebx = s->threads;
		e->ecx = (TOPO_LEVEL_SMT << 8) | 0;
		break;
	case 1:
		e->eax = s->package_bits;
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

/* Deterministic cache parameters (Intel leaf 4, AMD leaf 0x8000001D): every cache is private
 * to its core and shared by the core's threads, EAX[25:14] = threads - 1. Intel's EAX[31:26]
 * (addressable core IDs in the package - 1) is @cores_field, or -1 for AMD's (reserved). */
static void patch_cache(struct kvm_cpuid_entry2 *e, const struct shape *s, int cores_field)
{
	if ((e->eax & 0x1f) == 0)
		return; /* cache type 0: no more caches */
	e->eax = (e->eax & ~(0xfffu << 14)) | ((s->threads - 1) << 14);
	if (cores_field >= 0)
		e->eax = (e->eax & 0x03ffffffu) | ((uint32_t)cores_field << 26);
}

void x86_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned index, const struct x86_cpu_topology *topo)
{
	const struct shape s = shape_of(topo);
	unsigned nr_cpus = topo->nr_cpus;

	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) | ((nr_cpus & 0xff) << 16);
			/* KVM's in-kernel LAPIC has the TSC-deadline mode (KVM_CAP_TSC_DEADLINE_TIMER,
			 * always there with the in-kernel irqchip kiln makes), but KVM before Linux
			 * 6.14 leaves the bit out of KVM_GET_SUPPORTED_CPUID for userspace to set, as
			 * Firecracker and QEMU do. Without it Linux runs the LAPIC timer in one-shot
			 * mode and calibrates it at every boot (0.8 s of the cloud kernel's boot, on its
			 * own clock, in scripts/kvm-box). */
			e->ecx |= CPUID_1_ECX_TSC_DEADLINE | CPUID_1_ECX_HYPERVISOR;
			if (nr_cpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			patch_cache(e, &s, (int)((1u << (s.package_bits - s.thread_bits)) - 1));
			break;
		case 0xb:
		case 0x1f:
			patch_ext_topology(e, index, nr_cpus, &s);
			break;
		case 0x80000001:
			if (nr_cpus > 1)
				e->ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			else
				e->ecx &= ~CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			/* ApicIdSize in ECX[15:12], NC (logical processors - 1) in ECX[7:0]. */
			e->ecx = (e->ecx & ~0xf0ffu) | (s.package_bits << 12) | ((nr_cpus - 1) & 0xff);
			break;
		case 0x8000001d:
			patch_cache(e, &s, -1);
			break;
		case CPUID_EXT_TOPOLOGY_AMD:
			e->eax = index;                                 /* extended APIC ID */
			e->ebx = ((s.threads - 1) << 8) |               /* threads per compute unit - 1 */
				 ((index >> s.thread_bits) & 0xff);     /* compute unit = core */
			e->ecx = 0;                                     /* one node, node 0 */
			break;
		}
	}
}

void x86_cpu_id_from_leaves(struct x86_cpu_id *id, uint32_t ebx, uint32_t ecx, uint32_t edx,
			    uint32_t signature)
{
	memcpy(id->vendor, &ebx, 4);
	memcpy(id->vendor + 4, &edx, 4);
	memcpy(id->vendor + 8, &ecx, 4);
	id->vendor[12] = '\0';
	id->signature = signature;
}

void x86_host_cpu_id(struct x86_cpu_id *id)
{
	unsigned eax = 0, ebx = 0, ecx = 0, edx = 0, signature = 0;

	__get_cpuid(0, &eax, &ebx, &ecx, &edx);
	if (eax >= 1) {
		unsigned b, c, d;

		__get_cpuid(1, &signature, &b, &c, &d);
	}
	x86_cpu_id_from_leaves(id, ebx, ecx, edx, signature);
}
