/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for per-vCPU CPUID topology: one thread per core, and SMT (two threads per
 * core, Firecracker's smt) for 1, 2, 4 and 6 vCPUs; the entries x86_cpuid_prepare() adds.
 * And Firecracker's static CPU templates: names, which CPUs each fits, their CPUID masks on a
 * synthetic table, their MSR masks. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/kvm.h>

#include "kiln/x86.h"

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *t, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < t->nent; i++)
		if (t->entries[i].function == fn && t->entries[i].index == idx)
			return &t->entries[i];
	fail_msg("leaf 0x%x.%u missing", fn, idx);
	return NULL;
}

#define CPUS(n) (&(const struct x86_cpu_topology){ .nr_cpus = (n) })
#define SMT(n) (&(const struct x86_cpu_topology){ .nr_cpus = (n), .smt = true })

static bool has(struct kvm_cpuid2 *t, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < t->nent; i++)
		if (t->entries[i].function == fn && t->entries[i].index == idx)
			return true;
	return false;
}

/* @n entries into a table with room for @room; caller frees. */
static struct kvm_cpuid2 *table(const struct kvm_cpuid_entry2 *e, unsigned n, unsigned room)
{
	struct kvm_cpuid2 *t = calloc(1, sizeof(*t) + room * sizeof(t->entries[0]));

	assert_non_null(t);
	t->nent = n;
	memcpy(t->entries, e, n * sizeof(*e));
	return t;
}

/* A CPUID table shaped like KVM_GET_SUPPORTED_CPUID's on a 16-thread host; caller frees. */
static struct kvm_cpuid2 *fill(void)
{
	static const struct kvm_cpuid_entry2 host[] = {
		{ .function = 1, .ebx = 0xff080800, .ecx = 0x1, .edx = 0 },
		{ .function = 4, .index = 0, .eax = 0xfc004121 },
		{ .function = 4, .index = 1, .eax = 0 },
		{ .function = 0xb, .index = 0, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 7 },
		{ .function = 0xb, .index = 1, .eax = 4, .ebx = 16, .ecx = 0x201, .edx = 7 },
		{ .function = 0xb, .index = 2, .eax = 9, .ebx = 9, .ecx = 9, .edx = 9 },
		{ .function = 0x80000001, .ecx = 0x2 },
		{ .function = 0x80000008, .ecx = 0x700f },
		{ .function = 0x8000001e, .eax = 7, .ebx = 0x103, .ecx = 0x100 },
	};

	return table(host, sizeof(host) / sizeof(host[0]), sizeof(host) / sizeof(host[0]));
}

/* What a newer KVM gives on an AMD host without TopologyExtensions (QEMU's qemu64): leaf 0xB
 * with subleaf 0 only, extended leaves up to 0x80000008; room for 4 more entries. */
static struct kvm_cpuid2 *fill_amd(void)
{
	static const struct kvm_cpuid_entry2 host[] = {
		{ .function = 0, .eax = 0xd, .ebx = 0x68747541, .ecx = 0x444d4163, .edx = 0x69746e65 },
		{ .function = 1, .eax = 0x00060fb1, .ebx = 0x00000800 },
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
		{ .function = 0x80000000, .eax = 0x80000008 },
		{ .function = 0x80000001, .ecx = 0x1 },
		{ .function = 0x80000008, .eax = 0x3028 },
	};

	return table(host, sizeof(host) / sizeof(host[0]), sizeof(host) / sizeof(host[0]) + 4);
}

static void test_apic_id_shift(void **state)
{
	assert_int_equal(x86_apic_id_shift(1), 0);
	assert_int_equal(x86_apic_id_shift(2), 1);
	assert_int_equal(x86_apic_id_shift(3), 2);
	assert_int_equal(x86_apic_id_shift(4), 2);
	assert_int_equal(x86_apic_id_shift(5), 3);
	assert_int_equal(x86_apic_id_shift(255), 8);
}

static void test_four_cpus_vcpu3(void **state)
{
	struct kvm_cpuid2 *t = fill();

	x86_cpuid_patch(t, 3, CPUS(4));
	assert_int_equal(find(t, 1, 0)->ebx >> 24, 3);
	assert_int_equal((find(t, 1, 0)->ebx >> 16) & 0xff, 4);
	assert_int_equal(find(t, 1, 0)->ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
	assert_true(find(t, 1, 0)->ecx & (1u << 31));          /* hypervisor */
	assert_true(find(t, 1, 0)->ecx & (1u << 24));          /* TSC-deadline timer */
	assert_true(find(t, 1, 0)->ecx & 0x1);                 /* the rest kept (SSE3) */
	assert_true(find(t, 1, 0)->edx & (1u << 28));          /* HTT */
	assert_int_equal(find(t, 4, 0)->eax >> 26, 3);         /* cores per package - 1 */
	assert_int_equal((find(t, 4, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal(find(t, 4, 0)->eax & 0x3fff, 0x0121);
	assert_int_equal(find(t, 4, 1)->eax, 0);               /* null subleaf untouched */
	assert_int_equal(find(t, 0xb, 0)->ebx, 1);
	assert_int_equal(find(t, 0xb, 0)->ecx, 0x100);
	assert_int_equal(find(t, 0xb, 0)->edx, 3);
	assert_int_equal(find(t, 0xb, 1)->eax, 2);
	assert_int_equal(find(t, 0xb, 1)->ebx, 4);
	assert_int_equal(find(t, 0xb, 1)->ecx, 0x201);
	assert_int_equal(find(t, 0xb, 2)->ecx, 2);             /* invalid level ends the list */
	assert_int_equal(find(t, 0xb, 2)->ebx, 0);
	assert_int_equal(find(t, 0x80000001, 0)->ecx & 2, 2);
	assert_int_equal(find(t, 0x80000008, 0)->ecx & 0xff, 3);
	assert_int_equal((find(t, 0x80000008, 0)->ecx >> 12) & 0xf, 2);
	assert_int_equal(find(t, 0x8000001e, 0)->eax, 3);
	assert_int_equal(find(t, 0x8000001e, 0)->ebx, 3);
	assert_int_equal(find(t, 0x8000001e, 0)->ecx, 0);
	free(t);
}

static void test_one_cpu(void **state)
{
	struct kvm_cpuid2 *t = fill();

	x86_cpuid_patch(t, 0, CPUS(1));
	assert_int_equal(find(t, 1, 0)->ebx >> 24, 0);
	assert_false(find(t, 1, 0)->edx & (1u << 28));
	assert_int_equal(find(t, 4, 0)->eax >> 26, 0);
	assert_int_equal(find(t, 0xb, 1)->eax, 0);
	assert_int_equal(find(t, 0xb, 1)->ebx, 1);
	assert_int_equal(find(t, 0x80000001, 0)->ecx & 2, 0);
	assert_int_equal(find(t, 0x80000008, 0)->ecx & 0xf0ff, 0);
	free(t);
}

/* SMT with one vCPU is one thread (Firecracker's cpu_bits = 0 for a single vCPU). */
static void test_smt_one_cpu(void **state)
{
	struct kvm_cpuid2 *t = fill();

	assert_int_equal(x86_threads_per_core(SMT(1)), 1);
	x86_cpuid_patch(t, 0, SMT(1));
	assert_false(find(t, 1, 0)->edx & (1u << 28));
	assert_int_equal((find(t, 4, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal(find(t, 0xb, 0)->eax, 0);
	assert_int_equal(find(t, 0xb, 0)->ebx, 1);
	assert_int_equal(find(t, 0xb, 1)->ebx, 1);
	assert_int_equal(find(t, 0x8000001e, 0)->ebx, 0);
	free(t);
}

/* Two vCPUs with SMT: one core of two threads. */
static void test_smt_two_cpus(void **state)
{
	struct kvm_cpuid2 *t = fill();

	assert_int_equal(x86_threads_per_core(SMT(2)), 2);
	x86_cpuid_patch(t, 1, SMT(2));
	assert_int_equal(find(t, 1, 0)->ebx >> 24, 1);
	assert_int_equal((find(t, 1, 0)->ebx >> 16) & 0xff, 2);
	assert_true(find(t, 1, 0)->edx & (1u << 28));          /* HTT */
	assert_int_equal((find(t, 4, 0)->eax >> 14) & 0xfff, 1); /* 2 threads share each cache */
	assert_int_equal(find(t, 4, 0)->eax >> 26, 0);          /* one core */
	assert_int_equal(find(t, 4, 0)->eax & 0x3fff, 0x0121);
	assert_int_equal(find(t, 4, 1)->eax, 0);
	assert_int_equal(find(t, 0xb, 0)->eax, 1);              /* SMT level: shift 1 */
	assert_int_equal(find(t, 0xb, 0)->ebx, 2);              /* 2 threads */
	assert_int_equal(find(t, 0xb, 0)->ecx, 0x100);
	assert_int_equal(find(t, 0xb, 0)->edx, 1);
	assert_int_equal(find(t, 0xb, 1)->eax, 1);              /* core level: package shift 1 */
	assert_int_equal(find(t, 0xb, 1)->ebx, 2);
	assert_int_equal(find(t, 0xb, 1)->ecx, 0x201);
	assert_int_equal(find(t, 0xb, 1)->edx, 1);
	assert_int_equal(find(t, 0x80000008, 0)->ecx & 0xff, 1);
	assert_int_equal((find(t, 0x80000008, 0)->ecx >> 12) & 0xf, 1);
	assert_int_equal(find(t, 0x8000001e, 0)->eax, 1);
	assert_int_equal(find(t, 0x8000001e, 0)->ebx, 0x100);   /* 2 threads per unit, unit 0 */
	assert_int_equal(find(t, 0x8000001e, 0)->ecx, 0);
	free(t);
}

/* Four vCPUs with SMT: two cores of two threads; vCPU 3 is thread 1 of core 1. */
static void test_smt_four_cpus(void **state)
{
	struct kvm_cpuid2 *t = fill();

	x86_cpuid_patch(t, 3, SMT(4));
	assert_int_equal(find(t, 1, 0)->ebx >> 24, 3);
	assert_int_equal((find(t, 1, 0)->ebx >> 16) & 0xff, 4);
	assert_int_equal((find(t, 4, 0)->eax >> 14) & 0xfff, 1);
	assert_int_equal(find(t, 4, 0)->eax >> 26, 1);          /* cores per package - 1 */
	assert_int_equal(find(t, 0xb, 0)->eax, 1);
	assert_int_equal(find(t, 0xb, 0)->ebx, 2);
	assert_int_equal(find(t, 0xb, 1)->eax, 2);
	assert_int_equal(find(t, 0xb, 1)->ebx, 4);
	assert_int_equal(find(t, 0xb, 1)->edx, 3);
	assert_int_equal(find(t, 0xb, 2)->ecx, 2);
	assert_int_equal(find(t, 0x80000008, 0)->ecx & 0xff, 3);
	assert_int_equal((find(t, 0x80000008, 0)->ecx >> 12) & 0xf, 2);
	assert_int_equal(find(t, 0x8000001e, 0)->eax, 3);
	assert_int_equal(find(t, 0x8000001e, 0)->ebx, 0x101);   /* 2 threads per unit, unit 1 */
	free(t);
}

/* Six vCPUs with SMT: three cores, the core ID takes two APIC ID bits above the thread's. */
static void test_smt_six_cpus(void **state)
{
	struct kvm_cpuid2 *t = fill();

	x86_cpuid_patch(t, 5, SMT(6));
	assert_int_equal(find(t, 4, 0)->eax >> 26, 3);          /* 2 core bits */
	assert_int_equal(find(t, 0xb, 1)->eax, 3);
	assert_int_equal(find(t, 0xb, 1)->ebx, 6);
	assert_int_equal((find(t, 0x80000008, 0)->ecx >> 12) & 0xf, 3);
	assert_int_equal(find(t, 0x8000001e, 0)->ebx, 0x102);
	free(t);
}

/* The core level KVM leaves out is added; with SMT on AMD also TOPOEXT and leaf 0x8000001E. */
static void test_prepare_amd(void **state)
{
	struct kvm_cpuid2 *t = fill_amd();
	unsigned n = t->nent;

	assert_int_equal(x86_cpuid_prepare(t, n + 4, CPUS(2)), 0);
	assert_int_equal(t->nent, n + 1);
	assert_int_equal(find(t, 0xb, 1)->flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	assert_false(has(t, 0x8000001e, 0));
	assert_int_equal(find(t, 0x80000001, 0)->ecx, 0x1);     /* no TOPOEXT without SMT */
	x86_cpuid_patch(t, 1, CPUS(2));
	assert_int_equal(find(t, 0xb, 1)->ebx, 2);
	assert_int_equal(find(t, 0xb, 1)->ecx, 0x201);
	free(t);

	t = fill_amd();
	assert_int_equal(x86_cpuid_prepare(t, n + 4, SMT(2)), 0);
	assert_int_equal(t->nent, n + 2);
	assert_int_equal(find(t, 0x80000001, 0)->ecx, 0x1 | (1u << 22));
	assert_int_equal(find(t, 0x80000000, 0)->eax, 0x8000001e);
	x86_cpuid_patch(t, 1, SMT(2));
	assert_int_equal(find(t, 0x8000001e, 0)->ebx, 0x100);
	assert_int_equal(find(t, 0x8000001e, 0)->eax, 1);
	/* Prepared twice (a restore after a boot): nothing more is added. */
	assert_int_equal(x86_cpuid_prepare(t, n + 4, SMT(2)), 0);
	assert_int_equal(t->nent, n + 2);
	free(t);

	t = fill_amd();
	assert_int_equal(x86_cpuid_prepare(t, n, CPUS(2)), -E2BIG);
	free(t);
}

/* An Intel table gets no AMD leaves, whatever the topology. */
static void test_prepare_intel(void **state)
{
	struct kvm_cpuid2 *t = fill_amd();
	unsigned n = t->nent;

	find(t, 0, 0)->ebx = 0x756e6547; /* GenuineIntel */
	find(t, 0, 0)->edx = 0x49656e69;
	find(t, 0, 0)->ecx = 0x6c65746e;
	assert_int_equal(x86_cpuid_prepare(t, n + 4, SMT(2)), 0);
	assert_int_equal(t->nent, n + 1);
	assert_false(has(t, 0x8000001e, 0));
	assert_int_equal(find(t, 0x80000001, 0)->ecx, 0x1);
	free(t);
}

static void test_cpu_id(void **state)
{
	struct x86_cpu_id id;

	x86_cpu_id_from_leaves(&id, 0x68747541, 0x444d4163, 0x69746e65, 0x00a00f11);
	assert_string_equal(id.vendor, X86_VENDOR_AMD);
	assert_int_equal(id.signature, 0x00a00f11);
	x86_host_cpu_id(&id);
	assert_int_equal(strlen(id.vendor), 12);
}

static void test_template_names(void **state)
{
	static const char *const names[] = { "None", "C3", "T2", "T2S", "T2CL", "T2A" };
	enum x86_cpu_template t;

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(x86_cpu_template_parse(names[i], &t), 0);
		assert_string_equal(x86_cpu_template_name(t), names[i]);
	}
	assert_int_equal(x86_cpu_template_parse("T2", &t), 0);
	assert_int_equal(t, X86_CPU_TEMPLATE_T2);
	assert_int_equal(x86_cpu_template_parse("t2", &t), -EINVAL); /* serde's exact names */
	assert_int_equal(x86_cpu_template_parse("T3", &t), -EINVAL);
	assert_int_equal(x86_cpu_template_parse("", &t), -EINVAL);
}

static struct x86_cpu_id cpu(const char *vendor, uint32_t signature)
{
	struct x86_cpu_id id = { .signature = signature };

	strcpy(id.vendor, vendor);
	return id;
}

/* Firecracker's vendor, then exact family/model/stepping lists. */
static void test_template_fit(void **state)
{
	const struct x86_cpu_id skylake = cpu(X86_VENDOR_INTEL, 0x00050654);
	const struct x86_cpu_id skylake_type1 = cpu(X86_VENDOR_INTEL, 0x00051654);
	const struct x86_cpu_id cascade_lake = cpu(X86_VENDOR_INTEL, 0x00050657);
	const struct x86_cpu_id cascade_lake_6 = cpu(X86_VENDOR_INTEL, 0x00050656);
	const struct x86_cpu_id ice_lake = cpu(X86_VENDOR_INTEL, 0x000606a6);
	const struct x86_cpu_id sapphire_rapids = cpu(X86_VENDOR_INTEL, 0x000806f8);
	const struct x86_cpu_id milan = cpu(X86_VENDOR_AMD, 0x00a00f11);
	const struct x86_cpu_id qemu64 = cpu(X86_VENDOR_AMD, 0x00060fb1);

	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_NONE, &qemu64), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2, &skylake), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2, &skylake_type1), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2, &ice_lake), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_C3, &cascade_lake), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_C3, &cascade_lake_6),
			 X86_TEMPLATE_WRONG_MODEL);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2S, &skylake), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2S, &ice_lake),
			 X86_TEMPLATE_WRONG_MODEL);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2CL, &skylake),
			 X86_TEMPLATE_WRONG_MODEL);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2CL, &ice_lake), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2, &sapphire_rapids),
			 X86_TEMPLATE_WRONG_MODEL);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2A, &milan), X86_TEMPLATE_FITS);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2A, &qemu64),
			 X86_TEMPLATE_WRONG_MODEL);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2A, &skylake),
			 X86_TEMPLATE_WRONG_VENDOR);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_T2, &milan),
			 X86_TEMPLATE_WRONG_VENDOR);
	assert_int_equal(x86_cpu_template_fit(X86_CPU_TEMPLATE_C3, &qemu64),
			 X86_TEMPLATE_WRONG_VENDOR);
}

/* Static template @tp's rows applied to @t. */
static int apply(struct kvm_cpuid2 *t, enum x86_cpu_template tp, char *err, size_t errlen)
{
	return x86_template_apply(t, x86_cpu_template_rows(tp), err, errlen);
}

/* MSR @index's value under static template @tp. */
static int msr(enum x86_cpu_template tp, uint32_t index, uint64_t *value)
{
	return x86_template_msr(x86_cpu_template_rows(tp), index, value);
}

/* The leaves the T2 family changes, every register all ones, and one it leaves alone. */
static struct kvm_cpuid2 *fill_ones(bool with_80000008)
{
	static const uint32_t leaves[][2] = { { 1, 0 }, { 7, 0 }, { 0xd, 0 }, { 0xd, 1 },
					      { 0x80000001, 0 }, { 6, 0 }, { 0x80000008, 0 } };
	struct kvm_cpuid_entry2 e[7];
	unsigned n = with_80000008 ? 7 : 6;

	for (unsigned i = 0; i < n; i++)
		e[i] = (struct kvm_cpuid_entry2){ .function = leaves[i][0], .index = leaves[i][1],
						  .eax = ~0u, .ebx = ~0u, .ecx = ~0u, .edx = ~0u };
	return table(e, n, n);
}

static void test_template_apply(void **state)
{
	struct kvm_cpuid2 *t = fill_ones(true);
	char err[200] = "";

	assert_int_equal(apply(t, X86_CPU_TEMPLATE_T2A, err, sizeof(err)), 0);
	assert_int_equal(find(t, 1, 0)->eax, 0xf003c6f2);          /* Haswell's 0x306f2 */
	assert_int_equal(find(t, 1, 0)->ecx, ~0x0004cdfcu);        /* VMX, PDCM, ... off */
	assert_int_equal(find(t, 1, 0)->edx, ~0xe8641080u | 0x1080);
	assert_int_equal(find(t, 7, 0)->ebx, 0x001027eb);          /* AVX-512, SHA off; ERMS on */
	assert_false(find(t, 7, 0)->ebx & (1u << 16));             /* AVX512F */
	assert_true(find(t, 7, 0)->ebx & (1u << 0));               /* FSGSBASE: the host's */
	assert_int_equal(find(t, 7, 0)->ecx, ~0x40415f5eu);
	assert_int_equal(find(t, 7, 0)->edx, ~0x0000011cu);
	assert_int_equal(find(t, 7, 0)->eax, ~0u);                 /* not in the table */
	assert_int_equal(find(t, 0xd, 0)->eax, ~0x000002f8u);
	assert_int_equal(find(t, 0xd, 1)->eax, ~0x0000000eu);
	assert_int_equal(find(t, 0x80000001, 0)->ecx, ~0x200001c4u); /* SVM off */
	assert_int_equal(find(t, 0x80000001, 0)->edx, ~0x06400000u);
	assert_int_equal(find(t, 0x80000008, 0)->ebx, 0xfffffdfe);  /* CLZERO, WBNOINVD off */
	assert_int_equal(find(t, 6, 0)->eax, ~0u);
	free(t);

	/* The same rows on zeros: only the forced ones appear. */
	t = fill_ones(true);
	for (unsigned i = 0; i < t->nent; i++)
		t->entries[i].eax = t->entries[i].ebx = t->entries[i].ecx = t->entries[i].edx = 0;
	assert_int_equal(apply(t, X86_CPU_TEMPLATE_T2, err, sizeof(err)), 0);
	assert_int_equal(find(t, 1, 0)->eax, 0x000306f2);
	assert_int_equal(find(t, 1, 0)->edx, 0x00001080);          /* MCE, MTRR */
	assert_int_equal(find(t, 7, 0)->ebx, 0x00000200);          /* ERMS */
	assert_int_equal(find(t, 0x80000008, 0)->ebx, 0);
	free(t);

	/* None changes nothing; C3 does not need leaf 0x80000008, T2 does. */
	t = fill_ones(false);
	assert_int_equal(apply(t, X86_CPU_TEMPLATE_NONE, err, sizeof(err)), 0);
	assert_int_equal(find(t, 1, 0)->eax, ~0u);
	assert_int_equal(apply(t, X86_CPU_TEMPLATE_C3, err, sizeof(err)), 0);
	assert_int_equal(find(t, 1, 0)->eax, 0xf003c6e4);          /* Ivy Bridge's 0x306e4 */
	assert_int_equal(apply(t, X86_CPU_TEMPLATE_T2, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "CPU template T2 changes CPUID leaf 0x80000008 subleaf 0x0, which "
			    "this host's KVM does not offer");
	free(t);
}

static void test_template_msr(void **state)
{
	uint64_t v = 0xffff;

	assert_int_equal(msr(X86_CPU_TEMPLATE_T2S, 0x10a, &v), 0);
	assert_int_equal(v, 0x0c080c4c);                            /* every bit fixed */
	v = ~0ull;
	assert_int_equal(msr(X86_CPU_TEMPLATE_T2CL, 0x10a, &v), 0);
	assert_int_equal(v, 0x1d0ae1ff);                            /* controls and reserved off */
	v = 7;
	assert_int_equal(msr(X86_CPU_TEMPLATE_T2, 0x10a, &v), -ENOENT);
	assert_int_equal(msr(X86_CPU_TEMPLATE_T2S, 0x10b, &v), -ENOENT);
	assert_int_equal(msr(X86_CPU_TEMPLATE_T2A, 0x10a, &v), -ENOENT);
	assert_int_equal(v, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apic_id_shift),
		cmocka_unit_test(test_four_cpus_vcpu3),
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_smt_one_cpu),
		cmocka_unit_test(test_smt_two_cpus),
		cmocka_unit_test(test_smt_four_cpus),
		cmocka_unit_test(test_smt_six_cpus),
		cmocka_unit_test(test_prepare_amd),
		cmocka_unit_test(test_prepare_intel),
		cmocka_unit_test(test_cpu_id),
		cmocka_unit_test(test_template_names),
		cmocka_unit_test(test_template_fit),
		cmocka_unit_test(test_template_apply),
		cmocka_unit_test(test_template_msr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
