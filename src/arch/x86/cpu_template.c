/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_template — Firecracker's static CPU templates as data, and applying any CPU template
 * (static or custom), see include/kiln/x86.h.
 *
 * Firecracker 1.16 (src/vmm/src/cpu_config/x86_64/static_cpu_templates/, and the same masks
 * as JSON in tests/data/custom_cpu_templates/) defines each template as CPUID registers and
 * MSRs with some bits forced to given values and the others left as KVM offers them. Here a
 * template is one table of such rows, {leaf, subleaf, register, mask, value}: the register
 * becomes (register & ~mask) | value. The T2 family (T2, T2S, T2CL, T2A) shares the rows of
 * leaves 1, 7 and 0xD; T2S is T2 plus a fixed IA32_ARCH_CAPABILITIES, T2CL and T2A mask more of
 * the extended leaves. Which CPUs a template fits is Firecracker's list too: a vendor and
 * exact family/model/stepping signatures. A custom template (custom_template.c) is the same
 * rows; Firecracker applies both through one path (cpu_config/x86_64/mod.rs apply_template),
 * and so does kiln.
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

/* A row: register @r (EAX, EBX, ECX, EDX) of leaf @l, subleaf @s, masked by @m to value @v. */
#define ROW(l, s, r, m, v) { .leaf = l, .subleaf = s, .reg = X86_##r, .mask = m, .value = v }
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The rows of a static template named @n: CPUID rows @c; with ROWS_MSR also MSR rows @m. */
#define ROWS(n, c) .rows = { .name = n, .cpuid = c, .nr_cpuid = ARRAY_SIZE(c) }
#define ROWS_MSR(n, c, m) .rows = { .name = n, .cpuid = c, .nr_cpuid = ARRAY_SIZE(c), .msr = m, \
				    .nr_msr = ARRAY_SIZE(m) }

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
#define T2_FAMILY_ROWS                                  \
	ROW(0x1, 0, EAX, 0x0fff3fff, 0x000306f2),       \
	ROW(0x1, 0, ECX, 0x0004cdfc, 0),                \
	ROW(0x1, 0, EDX, 0xe8641080, 0x00001080),       \
	ROW(0x7, 0, EBX, 0xffefda14, 0x00000200),       \
	ROW(0x7, 0, ECX, 0x40415f5e, 0),                \
	ROW(0x7, 0, EDX, 0x0000011c, 0),                \
	ROW(0xd, 0, EAX, 0x000002f8, 0),                \
	ROW(0xd, 1, EAX, 0x0000000e, 0)

/* T2 and T2S: PREFETCHW and MONITORX (80000001 ECX), 1-GByte pages (80000001 EDX), WBNOINVD
 * (80000008 EBX) off. */
static const struct x86_cpuid_row t2_cpuid[] = {
	T2_FAMILY_ROWS,
	ROW(0x80000001, 0, ECX, 0x20000100, 0),
	ROW(0x80000001, 0, EDX, 0x04000000, 0),
	ROW(0x80000008, 0, EBX, 0x00000200, 0),
};

/* T2CL (Cascade Lake and Ice Lake hosts): in 80000001 also AMD's SSE4A and MisAlignSse (ECX)
 * and MmxExt, MMX, FXSR and FFXSR (EDX), reserved on Intel, forced off. */
static const struct x86_cpuid_row t2cl_cpuid[] = {
	T2_FAMILY_ROWS,
	ROW(0x80000001, 0, ECX, 0x200001c0, 0),
	ROW(0x80000001, 0, EDX, 0x07c00000, 0),
	ROW(0x80000008, 0, EBX, 0x00000200, 0),
};

/* T2A (AMD Milan): in 80000001 also SVM, SSE4A and MisAlignSse (ECX), MmxExt and FFXSR (EDX)
 * off; in 80000008 EBX CLZERO and WBNOINVD off, RstrFpErrPtrs, IbrsPreferred, IbrsSameMode
 * and EferLmsleUnsupported on. */
static const struct x86_cpuid_row t2a_cpuid[] = {
	T2_FAMILY_ROWS,
	ROW(0x80000001, 0, ECX, 0x200001c4, 0),
	ROW(0x80000001, 0, EDX, 0x06400000, 0),
	ROW(0x80000008, 0, EBX, 0x001c0205, 0x001c0004),
};

/* C3 (a c3 instance, Xeon E5-2680 v2, Ivy Bridge): signature family 6, model 0x3e, stepping 4;
 * leaf 1 as T2's but FMA and MOVBE off and SMX, EIST, DCA and IA64 as the host has them;
 * leaves 7 and 0xD much as T2's, with BMI1, AVX2, BMI2 and INVPCID also off and ERMS, EBX bit
 * 22, AVX512_VBMI2, GFNI, VAES, VPCLMULQDQ, AVX512_BITALG, FSRM and AVX512_VP2INTERSECT as the
 * host has them; LZCNT, PREFETCHW and 1-GByte pages off in 80000001; 80000008 untouched. */
static const struct x86_cpuid_row c3_cpuid[] = {
	ROW(0x1, 0, EAX, 0x0fff3fff, 0x000306e4),
	ROW(0x1, 0, ECX, 0x0040dd3c, 0),
	ROW(0x1, 0, EDX, 0xa8641080, 0x00001080),
	ROW(0x7, 0, EBX, 0xffafdd3c, 0),
	ROW(0x7, 0, ECX, 0x4041481e, 0),
	ROW(0x7, 0, EDX, 0x0000000c, 0),
	ROW(0xd, 0, EAX, 0x000002f8, 0),
	ROW(0xd, 1, EAX, 0x0000000e, 0),
	ROW(0x80000001, 0, ECX, 0x00000120, 0),
	ROW(0x80000001, 0, EDX, 0x04000000, 0),
};

/* T2S: IA32_ARCH_CAPABILITIES fixed, all 64 bits, to what both Skylake and Cascade Lake hosts
 * can keep: RSBA, SKIP_L1DFL_VMENTRY, IF_PSCHANGE_MC_NO, MISC_PACKAGE_CTLS,
 * ENERGY_FILTERING_CTL, RRSBA, GDS_NO and RFDS_NO set, every other bit clear. */
static const struct x86_msr_row t2s_msr[] = {
	{ MSR_IA32_ARCH_CAPABILITIES, 0xffffffffffffffffull, 0x000000000c080c4cull },
};

/* T2CL: IA32_ARCH_CAPABILITIES with its control and reserved bits clear (MCU_CONTROL,
 * MISC_PACKAGE_CTLS, ENERGY_FILTERING_CTL, DOITM, FB_CLEAR_CTRL, BHI_NO, XAPIC_DISABLE_STATUS,
 * OVERCLOCKING_STATUS, GDS_CTRL, bits 16, 22 and 29-63); the mitigation bits as KVM offers. */
static const struct x86_msr_row t2cl_msr[] = {
	{ MSR_IA32_ARCH_CAPABILITIES, 0xffffffffe2f51e00ull, 0 },
};

/* CPU signatures (CPUID.1:EAX, SIGNATURE_MODEL_BITS) of Firecracker's CpuModel constants. */
#define SKYLAKE 0x00050654u
#define CASCADE_LAKE 0x00050657u
#define ICE_LAKE 0x000606a6u
#define MILAN 0x00a00f11u

struct template {
	const char *vendor;
	uint32_t models[3];               /* signatures, 0 ends the list */
	const char *cpus;                 /* the models in words */
	struct x86_template rows;
};

static const struct template templates[] = {
	[X86_CPU_TEMPLATE_NONE] = { .cpus = "", .rows = { .name = "None" } },
	[X86_CPU_TEMPLATE_C3] = { .vendor = X86_VENDOR_INTEL,
				  .models = { SKYLAKE, CASCADE_LAKE, ICE_LAKE },
				  .cpus = "Intel Skylake, Cascade Lake or Ice Lake",
				  ROWS("C3", c3_cpuid) },
	[X86_CPU_TEMPLATE_T2] = { .vendor = X86_VENDOR_INTEL,
				  .models = { SKYLAKE, CASCADE_LAKE, ICE_LAKE },
				  .cpus = "Intel Skylake, Cascade Lake or Ice Lake",
				  ROWS("T2", t2_cpuid) },
	[X86_CPU_TEMPLATE_T2S] = { .vendor = X86_VENDOR_INTEL, .models = { SKYLAKE, CASCADE_LAKE },
				   .cpus = "Intel Skylake or Cascade Lake",
				   ROWS_MSR("T2S", t2_cpuid, t2s_msr) },
	[X86_CPU_TEMPLATE_T2CL] = { .vendor = X86_VENDOR_INTEL, .models = { CASCADE_LAKE, ICE_LAKE },
				    .cpus = "Intel Cascade Lake or Ice Lake",
				    ROWS_MSR("T2CL", t2cl_cpuid, t2cl_msr) },
	[X86_CPU_TEMPLATE_T2A] = { .vendor = X86_VENDOR_AMD, .models = { MILAN }, .cpus = "AMD Milan",
				   ROWS("T2A", t2a_cpuid) },
};

static const struct template *get(enum x86_cpu_template t)
{
	return &templates[(unsigned)t < ARRAY_SIZE(templates) ? t : X86_CPU_TEMPLATE_NONE];
}

const char *x86_cpu_template_name(enum x86_cpu_template t)
{
	return get(t)->rows.name;
}

const char *x86_cpu_template_cpus(enum x86_cpu_template t)
{
	return get(t)->cpus;
}

const struct x86_template *x86_cpu_template_rows(enum x86_cpu_template t)
{
	return &get(t)->rows;
}

int x86_cpu_template_parse(const char *name, enum x86_cpu_template *t)
{
	for (unsigned i = 0; i < ARRAY_SIZE(templates); i++) {
		if (!strcmp(name, templates[i].rows.name)) {
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
	for (unsigned i = 0; i < ARRAY_SIZE(tp->models) && tp->models[i]; i++)
		if ((cpu->signature & SIGNATURE_MODEL_BITS) == tp->models[i])
			return X86_TEMPLATE_FITS;
	return X86_TEMPLATE_WRONG_MODEL;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, enum x86_cpuid_reg r)
{
	switch (r) {
	case X86_EAX: return &e->eax;
	case X86_EBX: return &e->ebx;
	case X86_ECX: return &e->ecx;
	default: return &e->edx;
	}
}

int x86_template_apply(struct kvm_cpuid2 *cpuid, const struct x86_template *t, char *err,
		       size_t errlen)
{
	for (unsigned i = 0; t && i < t->nr_cpuid; i++) {
		const struct x86_cpuid_row *row = &t->cpuid[i];
		struct kvm_cpuid_entry2 *e = NULL;
		uint32_t *reg;

		for (unsigned k = 0; k < cpuid->nent && !e; k++)
			if (cpuid->entries[k].function == row->leaf &&
			    cpuid->entries[k].index == row->subleaf)
				e = &cpuid->entries[k];
		if (!e) {
			snprintf(err, errlen, "CPU template %s changes CPUID leaf 0x%" PRIx32 " subleaf "
				 "0x%" PRIx32 ", which this host's KVM does not offer", t->name,
				 row->leaf, row->subleaf);
			return -ENOENT;
		}
		if (row->set_flags)
			e->flags = row->flags;
		reg = reg_of(e, row->reg);
		*reg = (*reg & ~row->mask) | row->value;
	}
	return 0;
}

int x86_template_msr(const struct x86_template *t, uint32_t index, uint64_t *value)
{
	int ret = -ENOENT;

	for (unsigned i = 0; t && i < t->nr_msr; i++) {
		if (t->msr[i].index == index) {
			*value = (*value & ~t->msr[i].mask) | t->msr[i].value;
			ret = 0;
		}
	}
	return ret;
}

/* Whether MSR row @i of @t is the first row for its MSR. */
static bool first_of_msr(const struct x86_template *t, unsigned i)
{
	for (unsigned k = 0; k < i; k++)
		if (t->msr[k].index == t->msr[i].index)
			return false;
	return true;
}

int x86_template_set_msrs(int vcpu_fd, const struct x86_template *t, char *err, size_t errlen)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} one;

	for (unsigned i = 0; t && i < t->nr_msr; i++) {
		uint32_t index = t->msr[i].index;
		uint64_t value;
		int ret;

		if (!first_of_msr(t, i))
			continue; /* set with all its rows where it first came */
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e[0].index = index;
		ret = ioctl(vcpu_fd, KVM_GET_MSRS, &one);
		if (ret != 1) {
			ret = ret < 0 ? -errno : -ENOENT;
			snprintf(err, errlen, "CPU template %s changes MSR 0x%" PRIx32 ", which this "
				 "host's KVM %s", t->name, index,
				 ret == -ENOENT ? "does not offer" : "cannot read");
			return ret;
		}
		value = one.e[0].data;
		if (x86_template_msr(t, index, &value))
			continue; /* cannot happen: the row is the template's */
		one.e[0].data = value;
		ret = ioctl(vcpu_fd, KVM_SET_MSRS, &one);
		if (ret != 1) {
			ret = ret < 0 ? -errno : -EINVAL;
			snprintf(err, errlen, "CPU template %s: this host's KVM refuses MSR 0x%" PRIx32
				 " = 0x%" PRIx64, t->name, index, value);
			return ret;
		}
	}
	return 0;
}

int x86_template_check_caps(const struct x86_template *t, bool (*has)(void *ctx, uint32_t cap),
			    void *ctx, uint32_t *missing)
{
	unsigned n = 0, extra = t ? t->nr_caps : 0;
	uint32_t *list = malloc((extra + 1) * sizeof(*list));
	int ret = 0;

	if (!list)
		return -ENOMEM;
	/* Firecracker's combine_capabilities over the template's own list: an addition not listed
	 * yet goes last; a removal moves the last one into its place (Vec::swap_remove). Unlike
	 * Firecracker, kiln does not start from Firecracker's 14 default capabilities: what kiln
	 * itself needs is checked where it is used (KVM_CAP_XCRS, for one, is optional to kiln and
	 * missing on nested SVM hosts), so "!N" only takes back an addition of the same template. */
	for (unsigned i = 0; i < extra; i++) {
		const struct x86_kvm_cap *c = &t->caps[i];
		unsigned at = 0;

		while (at < n && list[at] != c->cap)
			at++;
		if (!c->remove && at == n)
			list[n++] = c->cap;
		else if (c->remove && at < n)
			list[at] = list[--n];
	}
	for (unsigned i = 0; i < n && !ret; i++) {
		if (!has(ctx, list[i])) {
			*missing = list[i];
			ret = -ENOENT;
		}
	}
	free(list);
	return ret;
}
