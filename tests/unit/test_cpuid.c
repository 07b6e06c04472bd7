/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for per-vCPU CPUID topology. */
#include <setjmp.h>
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

	struct kvm_cpuid2 *t = calloc(1, sizeof(*t) + sizeof(host));

	assert_non_null(t);
	t->nent = sizeof(host) / sizeof(host[0]);
	memcpy(t->entries, host, sizeof(host));
	return t;
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

	x86_cpuid_patch(t, 3, 4);
	assert_int_equal(find(t, 1, 0)->ebx >> 24, 3);
	assert_int_equal((find(t, 1, 0)->ebx >> 16) & 0xff, 4);
	assert_int_equal(find(t, 1, 0)->ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
	assert_true(find(t, 1, 0)->ecx & (1u << 31));          /* hypervisor */
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

	x86_cpuid_patch(t, 0, 1);
	assert_int_equal(find(t, 1, 0)->ebx >> 24, 0);
	assert_false(find(t, 1, 0)->edx & (1u << 28));
	assert_int_equal(find(t, 4, 0)->eax >> 26, 0);
	assert_int_equal(find(t, 0xb, 1)->eax, 0);
	assert_int_equal(find(t, 0xb, 1)->ebx, 1);
	assert_int_equal(find(t, 0x80000001, 0)->ecx & 2, 0);
	assert_int_equal(find(t, 0x80000008, 0)->ecx & 0xf0ff, 0);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apic_id_shift),
		cmocka_unit_test(test_four_cpus_vcpu3),
		cmocka_unit_test(test_one_cpu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
