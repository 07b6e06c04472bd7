/* SPDX-License-Identifier: Apache-2.0 */
/* x86 — architectural vCPU state kiln gives a freshly created x86 vCPU.
 *
 * Owns: CPUID shaping (APIC IDs and the topology leaves, with or without SMT), Firecracker's
 * CPU templates as rows of CPUID and MSR masks (src/arch/x86/cpu_template.c: the static ones,
 * which host CPUs each fits, and applying any template; src/arch/x86/custom_template.c: the
 * custom template language), the boot GDT and identity page tables, entry register state for
 * the 64-bit Linux boot protocol and PVH, and the initial MSRs, FPU and local APIC LINT setup.
 */
#ifndef KILN_X86_H
#define KILN_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/boot.h"
#include "kiln/guest_mem.h"

struct kvm_cpuid2;

/* ---- CPU topology ---- */

/* The guest's CPUs: one package of nr_cpus logical processors, APIC ID = vCPU index. With
 * smt, two threads per core (Firecracker's machine-config "smt"); with smt but 1 vCPU (or an
 * odd count, which front ends refuse) one, as in Firecracker. */
struct x86_cpu_topology {
	unsigned nr_cpus;
	bool smt;
};

/* Threads per core of @topo: 1 or 2. */
unsigned x86_threads_per_core(const struct x86_cpu_topology *topo);

/* Give @cpuid (from KVM_GET_SUPPORTED_CPUID; room for @max entries) the entries
 * x86_cpuid_patch() fills for @topo that KVM may leave out: subleaf 1 (the core level) of
 * leaves 0xB and 0x1F where subleaf 0 is listed, and, for SMT on an AMD CPU, the
 * TopologyExtensions bit (CPUID.80000001H:ECX[22]) and leaf 0x8000001E (the maximum extended
 * leaf raised to it). Once per VM, before the per-vCPU patch. Returns 0, or -E2BIG when @max
 * entries are too few. */
int x86_cpuid_prepare(struct kvm_cpuid2 *cpuid, unsigned max, const struct x86_cpu_topology *topo)
	__attribute__((warn_unused_result));

/* Patch @cpuid (prepared by x86_cpuid_prepare()) for vCPU @index of @topo. Sets the initial
 * APIC ID and logical-processor count (leaf 1 EBX), HTT, the TSC-deadline timer and hypervisor
 * bits (leaf 1 ECX; KVM's LAPIC has the timer mode, its supported CPUID omits it), the threads
 * sharing each cache and the cores of the package (leaves 4 and 0x8000001D), the SMT and core
 * levels of leaves 0xB/0x1F, and AMD's CmpLegacy (0x80000001), ApicIdSize and NC (0x80000008)
 * and extended APIC ID, compute unit and threads per unit (0x8000001E), as far as the leaves
 * are present. Intel SDM vol. 2A "CPUID"; AMD APM vol. 3 appendix E. */
void x86_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned index, const struct x86_cpu_topology *topo);

/* Bits needed to number @n cores (ceil(log2(n))). */
unsigned x86_apic_id_shift(unsigned n);

/* ---- CPU identity ---- */

#define X86_VENDOR_INTEL "GenuineIntel"
#define X86_VENDOR_AMD "AuthenticAMD"
#define X86_VENDOR_HYGON "HygonGenuine"

/* A CPU's vendor (CPUID.0: EBX, EDX, ECX) and signature (CPUID.1:EAX: stepping, model,
 * family, processor type, extended model and family). */
struct x86_cpu_id {
	char vendor[13];
	uint32_t signature;
};

/* The CPU kiln runs on (the CPUID instruction, as Firecracker reads it). */
void x86_host_cpu_id(struct x86_cpu_id *id);

/* @id from the registers of CPUID leaf 0 and CPUID.1:EAX (@signature). */
void x86_cpu_id_from_leaves(struct x86_cpu_id *id, uint32_t ebx, uint32_t ecx, uint32_t edx,
			    uint32_t signature);

/* ---- CPU templates as rows (Firecracker's cpu_config: static and custom alike) ---- */

enum x86_cpuid_reg { X86_EAX, X86_EBX, X86_ECX, X86_EDX };

/* One CPUID register of leaf @leaf, subleaf @subleaf: it becomes (register & ~mask) | value.
 * With set_flags the entry's KVM flags (struct kvm_cpuid_entry2.flags, KVM API document
 * §4.46) become @flags, as a custom template's leaf says; a row with mask 0 changes only
 * that. */
struct x86_cpuid_row {
	uint32_t leaf, subleaf;
	enum x86_cpuid_reg reg;
	uint32_t mask, value;
	bool set_flags;
	uint32_t flags;
};

/* One MSR: its value becomes (value & ~mask) | value. */
struct x86_msr_row {
	uint32_t index;
	uint64_t mask, value;
};

/* A KVM capability (KVM_CAP_*) a template adds to the ones checked at VM creation, or (remove)
 * takes out of them: Firecracker's kvm_capabilities "N" and "!N". */
struct x86_kvm_cap {
	uint32_t cap;
	bool remove;
};

/* A CPU template as kiln applies it: rows applied in order (a later row of the same register
 * applies on top of an earlier one), and the KVM capabilities it adds or removes. */
struct x86_template {
	const char *name;                   /* for messages: "T2", ..., "custom" */
	const struct x86_cpuid_row *cpuid;
	unsigned nr_cpuid;
	const struct x86_msr_row *msr;
	unsigned nr_msr;
	const struct x86_kvm_cap *caps;
	unsigned nr_caps;
};

/* Apply @t's CPUID rows to @cpuid (KVM_GET_SUPPORTED_CPUID's, before x86_cpuid_prepare()).
 * NULL is no template. Returns 0, or -ENOENT with a message in @err naming the template and
 * the leaf when @cpuid lacks a leaf and subleaf a row names (Firecracker's
 * CpuidFeatureNotSupported); @cpuid may then be partly changed. */
int x86_template_apply(struct kvm_cpuid2 *cpuid, const struct x86_template *t, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/* MSR @index's value under @t: 0 with *@value passed through each of @t's rows for @index, or
 * -ENOENT (*@value untouched) when @t has none for it. */
int x86_template_msr(const struct x86_template *t, uint32_t index, uint64_t *value)
	__attribute__((warn_unused_result));

/* Set @t's MSRs on vCPU @vcpu_fd (after its boot MSRs): each read with KVM_GET_MSRS, masked
 * as x86_template_msr() says, written back with KVM_SET_MSRS. NULL is no template. Returns 0,
 * or -errno (-ENOENT when KVM cannot read one, -EINVAL when it refuses the value) with a
 * message naming the template and the MSR in @err. */
int x86_template_set_msrs(int vcpu_fd, const struct x86_template *t, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Check the KVM capabilities template @t (NULL: none) asks for: its kvm_capabilities additions
 * and removals applied in order (Firecracker's combine_capabilities, over the template's list
 * alone: kiln checks what it needs itself where it uses it), each asked of @has
 * (KVM_CHECK_EXTENSION > 0). Returns 0, -ENOENT with the first capability @has denies in
 * *@missing, or -ENOMEM. */
int x86_template_check_caps(const struct x86_template *t, bool (*has)(void *ctx, uint32_t cap),
			    void *ctx, uint32_t *missing) __attribute__((warn_unused_result));

/* ---- Custom CPU templates (Firecracker's PUT /cpu-config and "cpu-config") ---- */

/* Parse @doc, a JSON object in Firecracker 1.16's custom template language (its
 * cpu_config/x86_64/custom_cpu_template.rs, docs/cpu_templates/cpu-templates.md):
 *   "kvm_capabilities": ["171", "!56"]      decimal capability numbers, "!" removes
 *   "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
 *                        "modifiers": [{"register": "ecx", "bitmap": "0bxx..."}]}]
 *   "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b..."}]
 * Leaves, subleaves and addresses are strings with a 0x or 0b prefix; a bitmap is up to 32
 * (CPUID) or 64 (MSR) characters of 0 (cleared), 1 (set) and x (kept), "0b" in front and "_"
 * between them optional, missing high bits kept. As in Firecracker, unknown keys of the
 * entries are ignored (not of the template), and entries may repeat (they apply in order).
 * Returns 0 with *@out (free with x86_template_free()), or -EINVAL with a message naming the
 * entry, the key and the value, in Firecracker's words after them:
 *   "cpuid_modifiers"[0]: "modifiers"[1]: "bitmap": Failed to parse string [0b12] as a bitmap -
 *   unknown character: '2'
 * or -ENOMEM. */
struct json_t;
int x86_template_parse(struct json_t *doc, struct x86_template **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Free a template x86_template_parse() made; NULL is fine. */
void x86_template_free(struct x86_template *t);

/* ---- Static CPU templates (Firecracker's cpu_config/x86_64/static_cpu_templates) ---- */

/* Each makes the guest's CPU look like an EC2 instance type's: CPUID registers (and, T2S and
 * T2CL, IA32_ARCH_CAPABILITIES) masked to that CPU's features. */
enum x86_cpu_template {
	X86_CPU_TEMPLATE_NONE,
	X86_CPU_TEMPLATE_C3,
	X86_CPU_TEMPLATE_T2,
	X86_CPU_TEMPLATE_T2S,
	X86_CPU_TEMPLATE_T2CL,
	X86_CPU_TEMPLATE_T2A,
};

/* Whether a template may be used on a CPU (Firecracker's GetCpuTemplate checks). */
enum x86_template_fit {
	X86_TEMPLATE_FITS,
	X86_TEMPLATE_WRONG_VENDOR,  /* an Intel template on AMD, or the other way round */
	X86_TEMPLATE_WRONG_MODEL,   /* the vendor's, but not a model the template was made for */
};

/* Firecracker's name of @t ("None", "C3", "T2", "T2S", "T2CL", "T2A"). */
const char *x86_cpu_template_name(enum x86_cpu_template t);

/* The template called @name (exact case, as Firecracker's). Returns 0 or -EINVAL. */
int x86_cpu_template_parse(const char *name, enum x86_cpu_template *t)
	__attribute__((warn_unused_result));

/* Whether template @t may be used on @cpu: its vendor, then its signature among the CPU models
 * the template lists (family, model and stepping exactly, as Firecracker's CpuModel). NONE
 * fits every CPU. */
enum x86_template_fit x86_cpu_template_fit(enum x86_cpu_template t, const struct x86_cpu_id *cpu);

/* The CPUs @t was made for, in words ("Intel Skylake, Cascade Lake or Ice Lake"), for messages;
 * "" for NONE. */
const char *x86_cpu_template_cpus(enum x86_cpu_template t);

/* @t's rows (static, never NULL; NONE has none), for the x86_template_* functions. */
const struct x86_template *x86_cpu_template_rows(enum x86_cpu_template t);

/* ---- Boot state and snapshots ---- */

/* Write the boot GDT and the identity page tables (0..4 GiB, 2 MiB pages) into guest memory.
 * Returns 0 or -EFAULT when the fixed addresses in layout.h are not RAM. */
int x86_boot_write_tables(const struct guest_mem *mem) __attribute__((warn_unused_result));

/* Give vCPU @vcpu_fd its reset-time extras (MSRs, FPU, LAPIC LINT0 ExtINT / LINT1 NMI) and, for
 * the bootstrap processor, the entry state of @boot (64-bit long mode with RSI = zero page, or
 * 32-bit protected mode with EBX = hvm_start_info for PVH; for BOOT_FIRMWARE the reset state
 * KVM gave it). Application processors keep KVM's reset state and wait for INIT/SIPI in the
 * in-kernel LAPIC. Returns 0 or -errno from KVM. */
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
 * would give the same vCPU: KVM_GET_SUPPORTED_CPUID with the VM's template and topology
 * applied, see x86_cpuid_patch()): NULL with a message naming the missing feature bits in
 * @err when the guest was shown a feature this host cannot offer. Points into @r. */
const struct kvm_cpuid2 *x86_snapshot_cpuid(const struct snap_reader *r, unsigned index,
					    const struct kvm_cpuid2 *host, char *err, size_t errlen);

/* Give vCPU @vcpu_fd (CPUID already set from the snapshot) the state x86_vcpu_save() wrote for
 * @index. Returns 0 or -errno/-EINVAL with a message naming the section in @err. */
int x86_vcpu_load(int kvm_fd, int vcpu_fd, unsigned index, const struct snap_reader *r,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
