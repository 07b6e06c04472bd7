/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_template — Firecracker's static CPU templates as data, see include/kiln/x86.h.
 *
 * Firecracker 1.16 (src/vmm/src/cpu_config/x86_64/static_cpu_templates/, and the same masks
 * as JSON in tests/data/custom_cpu_templates/) defines each template as CPUID registers and
 * MSRs with some bits forced to given values and the others left as KVM offers them. Here a
 * template is one table of such rows, {leaf, subleaf, register, mask, value}: the register
 * becomes (register & ~mask) | value. The T2 family (T2, T2S, T2CL, T2A) shares the rows of
 * leaves 1, 7 and 0xD; T2S is T2 plus a fixed IA32_ARCH_CAPABILITIES, T2CL and T2A mask more of
 * the extended leaves. Which CPUs a template fits is Firecracker's list too: a vendor and
 * exact family/model/stepping signatures.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "kiln/x86.h"

#define MSR_IA32_ARCH_CAPABILITIES 0x10a
/* CPUID.1:EAX bits that name a model: stepping, model, family, extended model and family
 * (not the processor type, bits 13:12), as Firecracker's CpuModel compares them. */
#define SIGNATURE_MODEL_BITS 0x0fff0fffu

enum reg { EAX, EBX, ECX, EDX };

struct cpuid_row {
	uint32_t leaf, subleaf;
	enum reg reg;
	uint32_t mask, value;
};

struct msr_row {
	uint32_t index;
	uint64_t mask, value;
};

#define ROWS(a) .cpuid = a, .nr_cpuid = sizeof(a) / sizeof(a[0])

/* Leaves 1, 7 and 0xD as in a t2 instance (a Xeon E5-2676 v3, Haswell), for all of the T2
 * family:
 *   1 EAX   signature family 6, model 0x3f, stepping 2 (processor type kept)
 *   1 ECX   DTES64, MONITOR, DS-CPL, VMX, SMX, EIST, TM2, CNXT-ID, SDBG, xTPR, PDCM, DCA off
 *   1 EDX   MCE and MTRR on; PSN, DS, ACPI, SS, TM, IA64, PBE off
 *   7.0 EBX SGX, HLE, RTM, RDT-M, MPX, RDT-A, AVX-512 (F, DQ, IFMA, PF, ER, CD, BW, VL),
 *           RDSEED, ADX, PCOMMIT, CLFLUSHOPT, CLWB, PT, SHA off; ERMS on
 *   7.0 ECX AVX512_VBMI, UMIP, PKU, OSPKE, AVX512_VBMI2, GFNI, VAES, VPCLMULQDQ,
 *           AVX512_VNNI, AVX512_BITALG, AVX512_VPOPCNTDQ, LA57, RDPID, SGX_LC off
 *   7.0 EDX AVX512_4VNNIW, AVX512_4FMAPS, FSRM, AVX512_VP2INTERSECT off
 *   0xD.0 EAX  MPX, AVX-512 and PKRU state components off
 *   0xD.1 EAX  XSAVEC, XGETBV with ECX=1, XSAVES off */
#define T2_FAMILY_ROWS                                         \
	{ 0x1, 0, EAX, 0x0fff3fff, 0x000306f2 },               \
	{ 0x1, 0, ECX, 0x0004cdfc, 0 },                        \
	{ 0x1, 0, EDX, 0xe8641080, 0x00001080 },               \
	{ 0x7, 0, EBX, 0xffefda14, 0x00000200 },               \
	{ 0x7, 0, ECX, 0x40415f5e, 0 },                        \
	{ 0x7, 0, EDX, 0x0000011c, 0 },                        \
	{ 0xd, 0, EAX, 0x000002f8, 0 },                        \
	{ 0xd, 1, EAX, 0x0000000e, 0 }

/* T2 and T2S: PREFETCHW and MONITORX (80000001 ECX), 1-GByte pages (80000001 EDX), WBNOINVD
 * (80000008 EBX) off. */
static const struct cpuid_row t2_cpuid[] = {
	T2_FAMILY_ROWS,
	{ 0x80000001, 0, ECX, 0x20000100, 0 },
	{ 0x80000001, 0, EDX, 0x04000000, 0 },
	{ 0x80000008, 0, EBX, 0x00000200, 0 },
};

/* T2CL (Cascade Lake and Ice Lake hosts): in 80000001 also AMD's SSE4A and MisAlignSse (ECX)
 * and MmxExt, MMX, FXSR and FFXSR (EDX), reserved on Intel, forced off. */
static const struct cpuid_row t2cl_cpuid[] = {
	T2_FAMILY_ROWS,
	{ 0x80000001, 0, ECX, 0x200001c0, 0 },
	{ 0x80000001, 0, EDX, 0x07c00000, 0 },
	{ 0x80000008, 0, EBX, 0x00000200, 0 },
};

/* T2A (AMD Milan): in 80000001 also SVM, SSE4A and MisAlignSse (ECX), MmxExt and FFXSR (EDX)
 * off; in 80000008 EBX CLZERO and WBNOINVD off, RstrFpErrPtrs, IbrsPreferred, IbrsSameMode
 * and EferLmsleUnsupported on. */
static const struct cpuid_row t2a_cpuid[] = {
	T2_FAMILY_ROWS,
	{ 0x80000001, 0, ECX, 0x200001c4, 0 },
	{ 0x80000001, 0, EDX, 0x06400000, 0 },
	{ 0x80000008, 0, EBX, 0x001c0205, 0x001c0004 },
};

/* C3 (a c3 instance, Xeon E5-2680 v2, Ivy Bridge): signature family 6, model 0x3e, stepping 4;
 * leaf 1 as T2's but FMA and MOVBE off and SMX, EIST, DCA and IA64 as the host has them;
 * leaves 7 and 0xD much as T2's, with BMI1, AVX2, BMI2 and INVPCID also off and ERMS, EBX bit
 * 22, AVX512_VBMI2, GFNI, VAES, VPCLMULQDQ, AVX512_BITALG, FSRM and AVX512_VP2INTERSECT as the
 * host has them; LZCNT, PREFETCHW and 1-GByte pages off in 80000001; 80000008 untouched. */
static const struct cpuid_row c3_cpuid[] = {
	{ 0x1, 0, EAX, 0x0fff3fff, 0x000306e4 },
	{ 0x1, 0, ECX, 0x0040dd3c, 0 },
	{ 0x1, 0, EDX, 0xa8641080, 0x00001080 },
	{ 0x7, 0, EBX, 0xffafdd3c, 0 },
	{ 0x7, 0, ECX, 0x4041481e, 0 },
	{ 0x7, 0, EDX, 0x0000000c, 0 },
	{ 0xd, 0, EAX, 0x000002f8, 0 },
	{ 0xd, 1, EAX, 0x0000000e, 0 },
	{ 0x80000001, 0, ECX, 0x00000120, 0 },
	{ 0x80000001, 0, EDX, 0x04000000, 0 },
};

/* T2S: IA32_ARCH_CAPABILITIES fixed, all 64 bits, to what both Skylake and Cascade Lake hosts
 * can keep: RSBA, SKIP_L1DFL_VMENTRY, IF_PSCHANGE_MC_NO, MISC_PACKAGE_CTLS,
 * ENERGY_FILTERING_CTL, RRSBA, GDS_NO and RFDS_NO set, every other bit clear. */
static const struct msr_row t2s_msr[] = {
	{ MSR_IA32_ARCH_CAPABILITIES, 0xffffffffffffffffull, 0x000000000c080c4cull },
};

/* T2CL: IA32_ARCH_CAPABILITIES with its control and reserved bits clear (MCU_CONTROL,
 * MISC_PACKAGE_CTLS, ENERGY_FILTERING_CTL, DOITM, FB_CLEAR_CTRL, BHI_NO, XAPIC_DISABLE_STATUS,
 * OVERCLOCKING_STATUS, GDS_CTRL, bits 16, 22 and 29-63); the mitigation bits as KVM offers. */
static const struct msr_row t2cl_msr[] = {
	{ MSR_IA32_ARCH_CAPABILITIES, 0xffffffffe2f51e00ull, 0 },
};

/* CPU signatures (CPUID.1:EAX, SIGNATURE_MODEL_BITS) of Firecracker's CpuModel constants. */
#define SKYLAKE 0x00050654u
#define CASCADE_LAKE 0x00050657u
#define ICE_LAKE 0x000606a6u
#define MILAN 0x00a00f11u

struct template {
	const char *name;
	const char *vendor;
	uint32_t models[3];               /* signatures, 0 ends the list */
	const char *cpus;                 /* the models in words */
	const struct cpuid_row *cpuid;
	unsigned nr_cpuid;
	const struct msr_row *msr;
	unsigned nr_msr;
};

static const struct template templates[] = {
	[X86_CPU_TEMPLATE_NONE] = { .name = "None", .cpus = "" },
	[X86_CPU_TEMPLATE_C3] = { .name = "C3", .vendor = X86_VENDOR_INTEL,
				  .models = { SKYLAKE, CASCADE_LAKE, ICE_LAKE },
				  .cpus = "Intel Skylake, Cascade Lake or Ice Lake", ROWS(c3_cpuid) },
	[X86_CPU_TEMPLATE_T2] = { .name = "T2", .vendor = X86_VENDOR_INTEL,
				  .models = { SKYLAKE, CASCADE_LAKE, ICE_LAKE },
				  .cpus = "Intel Skylake, Cascade Lake or Ice Lake", ROWS(t2_cpuid) },
	[X86_CPU_TEMPLATE_T2S] = { .name = "T2S", .vendor = X86_VENDOR_INTEL,
				   .models = { SKYLAKE, CASCADE_LAKE },
				   .cpus = "Intel Skylake or Cascade Lake", ROWS(t2_cpuid),
				   .msr = t2s_msr, .nr_msr = 1 },
	[X86_CPU_TEMPLATE_T2CL] = { .name = "T2CL", .vendor = X86_VENDOR_INTEL,
				    .models = { CASCADE_LAKE, ICE_LAKE },
				    .cpus = "Intel Cascade Lake or Ice Lake", ROWS(t2cl_cpuid),
				    .msr = t2cl_msr, .nr_msr = 1 },
	[X86_CPU_TEMPLATE_T2A] = { .name = "T2A", .vendor = X86_VENDOR_AMD, .models = { MILAN },
				   .cpus = "AMD Milan", ROWS(t2a_cpuid) },
};

#define NR_TEMPLATES (sizeof(templates) / sizeof(templates[0]))

static const struct template *get(enum x86_cpu_template t)
{
	return &templates[(unsigned)t < NR_TEMPLATES ? t : X86_CPU_TEMPLATE_NONE];
}

const char *x86_cpu_template_name(enum x86_cpu_template t)
{
	return get(t)->name;
}

const char *x86_cpu_template_cpus(enum x86_cpu_template t)
{
	return get(t)->cpus;
}

int x86_cpu_template_parse(const char *name, enum x86_cpu_template *t)
{
	for (unsigned i = 0; i < NR_TEMPLATES; i++) {
		if (!strcmp(name, templates[i].name)) {
			*t = (enum x86_cpu_template)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum x86_template_fit x86_cpu_template_fit(enum x86_cpu_template t, const struct x86_cpu_id *cpu)
{
	const struct template *tp = get(t);

	if (!tp->vendor)
		return X86_TEMPLATE_FITS;
	if (strcmp(cpu->vendor, tp->vendor))
		return X86_TEMPLATE_WRONG_VENDOR;
	for (unsigned i = 0; i < sizeof(tp->models) / sizeof(tp->models[0]) && tp->models[i]; i++)
		if ((cpu->signature & SIGNATURE_MODEL_BITS) == tp->models[i])
			return X86_TEMPLATE_FITS;
	return X86_TEMPLATE_WRONG_MODEL;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, enum reg r)
{
	switch (r) {
	case EAX: return &e->eax;
	case EBX: return &e->ebx;
	case ECX: return &e->ecx;
	default: return &e->edx;
	}
}

int x86_cpu_template_apply(struct kvm_cpuid2 *cpuid, enum x86_cpu_template t, char *err,
			   size_t errlen)
{
	const struct template *tp = get(t);

	for (unsigned i = 0; i < tp->nr_cpuid; i++) {
		const struct cpuid_row *row = &tp->cpuid[i];
		struct kvm_cpuid_entry2 *e = NULL;

		for (unsigned k = 0; k < cpuid->nent && !e; k++)
			if (cpuid->entries[k].function == row->leaf &&
			    cpuid->entries[k].index == row->subleaf)
				e = &cpuid->entries[k];
		if (!e) {
			snprintf(err, errlen, "CPU template %s changes CPUID leaf 0x%" PRIx32 " subleaf "
				 "0x%" PRIx32 ", which this host's KVM does not offer", tp->name,
				 row->leaf, row->subleaf);
			return -ENOENT;
		}
		*reg_of(e, row->reg) = (*reg_of(e, row->reg) & ~row->mask) | row->value;
	}
	return 0;
}

int x86_cpu_template_msr(enum x86_cpu_template t, uint32_t index, uint64_t *value)
{
	const struct template *tp = get(t);

	for (unsigned i = 0; i < tp->nr_msr; i++) {
		if (tp->msr[i].index == index) {
			*value = (*value & ~tp->msr[i].mask) | tp->msr[i].value;
			return 0;
		}
	}
	return -ENOENT;
}

int x86_cpu_template_set_msrs(int vcpu_fd, enum x86_cpu_template t, char *err, size_t errlen)
{
	const struct template *tp = get(t);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} one;

	for (unsigned i = 0; i < tp->nr_msr; i++) {
		uint32_t index = tp->msr[i].index;
		uint64_t value;
		int ret;

		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e[0].index = index;
		ret = ioctl(vcpu_fd, KVM_GET_MSRS, &one);
		if (ret != 1) {
			ret = ret < 0 ? -errno : -ENOENT;
			snprintf(err, errlen, "CPU template %s changes MSR 0x%" PRIx32 ", which this "
				 "host's KVM %s", tp->name, index,
				 ret == -ENOENT ? "does not offer" : "cannot read");
			return ret;
		}
		value = one.e[0].data;
		if (x86_cpu_template_msr(t, index, &value))
			continue; /* cannot happen: the row is the template's */
		one.e[0].data = value;
		ret = ioctl(vcpu_fd, KVM_SET_MSRS, &one);
		if (ret != 1) {
			ret = ret < 0 ? -errno : -EINVAL;
			snprintf(err, errlen, "CPU template %s: this host's KVM refuses MSR 0x%" PRIx32
				 " = 0x%" PRIx64, tp->name, index, value);
			return ret;
		}
	}
	return 0;
}
