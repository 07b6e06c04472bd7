/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for Firecracker's custom CPU templates (src/arch/x86/custom_template.c) and for
 * applying any template's rows (src/arch/x86/cpu_template.c): a table of templates the parser
 * refuses, each with its exact message; the rows a good one makes (bitmaps, numbers in hex and
 * binary, contracted bitmaps, separators); the rows applied to a synthetic CPUID table
 * (flags, repeated entries in order, a missing leaf); MSR rows; and the KVM capabilities a
 * template adds and takes back (kiln does not start from Firecracker's default list).
 *
 * Templates are written with ' for " (converted before parsing); messages are verbatim. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <linux/kvm.h>

#include "kiln/x86.h"

#define X32 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define NOPREFIX "No supported number system prefix found in value [%s]. Make sure to prefix " \
		 "the number with '0x' for hexadecimal numbers or '0b' for binary numbers."
#define LEAF(l) "{'cpuid_modifiers': [{'leaf': '" l "', 'subleaf': '0x0', 'flags': 0, " \
		"'modifiers': []}]}"
#define MOD(reg, bitmap) "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, " \
			 "'modifiers': [{'register': 'eax', 'bitmap': '0bx'}, {'register': '" reg \
			 "', 'bitmap': '" bitmap "'}]}]}"
#define MSR(addr, bitmap) "{'msr_modifiers': [{'addr': '" addr "', 'bitmap': '" bitmap "'}]}"
#define CAP(c) "{'kvm_capabilities': ['56', '" c "']}"
#define AT_MOD "\"cpuid_modifiers\"[0]: \"modifiers\"[1]: "

static json_t *load(const char *text)
{
	char *copy = strdup(text);
	json_error_t e;
	json_t *v;

	for (char *p = copy; *p; p++)
		if (*p == '\'')
			*p = '"';
	v = json_loads(copy, JSON_REJECT_DUPLICATES, &e);
	if (!v)
		fail_msg("%s: %s", text, e.text);
	free(copy);
	return v;
}

/* @text parsed: 0 with *@t, or the error in @err. */
static int parse(const char *text, struct x86_template **t, char *err, size_t errlen)
{
	json_t *doc = load(text);
	int ret = x86_template_parse(doc, t, err, errlen);

	json_decref(doc);
	return ret;
}

struct bad {
	const char *doc;
	const char *message;
};

static const struct bad bad[] = {
	/* the template */
	{ "[]", "expected an object" },
	{ "{'reg_modifiers': []}", "unknown field `reg_modifiers`, expected one of "
	  "`kvm_capabilities`, `cpuid_modifiers`, `msr_modifiers`" },
	{ "{'cpuid_modifiers': {}}", "\"cpuid_modifiers\": expected an array" },
	{ "{'msr_modifiers': null}", "\"msr_modifiers\": expected an array" },
	{ "{'kvm_capabilities': '56'}", "\"kvm_capabilities\": expected an array" },
	/* kvm_capabilities: decimal, "!" removes (Rust's u32 parse) */
	{ CAP("!a2"), "\"kvm_capabilities\"[1]: Failed to parse string [!a2] as a kvm capability - "
	  "can not convert to numeric: invalid digit found in string" },
	{ CAP("!"), "\"kvm_capabilities\"[1]: Failed to parse string [!] as a kvm capability - "
	  "can not convert to numeric: cannot parse integer from empty string" },
	{ CAP("4294967296"), "\"kvm_capabilities\"[1]: Failed to parse string [4294967296] as a kvm "
	  "capability - can not convert to numeric: number too large to fit in target type" },
	{ CAP("0x38"), "\"kvm_capabilities\"[1]: Failed to parse string [0x38] as a kvm capability "
	  "- can not convert to numeric: invalid digit found in string" },
	{ CAP("-1"), "\"kvm_capabilities\"[1]: Failed to parse string [-1] as a kvm capability - "
	  "can not convert to numeric: invalid digit found in string" },
	{ "{'kvm_capabilities': [56]}", "\"kvm_capabilities\"[0]: expected a string" },
	/* cpuid_modifiers: numbers as strings with a prefix */
	{ LEAF("1"), "\"cpuid_modifiers\"[0]: \"leaf\": No supported number system prefix found in "
	  "value [1]. Make sure to prefix the number with '0x' for hexadecimal numbers or '0b' for "
	  "binary numbers." },
	{ LEAF("k"), "\"cpuid_modifiers\"[0]: \"leaf\": No supported number system prefix found in "
	  "value [k]. Make sure to prefix the number with '0x' for hexadecimal numbers or '0b' for "
	  "binary numbers." },
	{ LEAF("0X1"), "\"cpuid_modifiers\"[0]: \"leaf\": No supported number system prefix found "
	  "in value [0X1]. Make sure to prefix the number with '0x' for hexadecimal numbers or '0b' "
	  "for binary numbers." },
	{ LEAF("0xzz"), "\"cpuid_modifiers\"[0]: \"leaf\": Failed to parse string [0xzz] as a number "
	  "for CPU template - ParseIntError { kind: InvalidDigit }" },
	{ LEAF("0b102"), "\"cpuid_modifiers\"[0]: \"leaf\": Failed to parse string [0b102] as a "
	  "number for CPU template - ParseIntError { kind: InvalidDigit }" },
	{ LEAF("0x"), "\"cpuid_modifiers\"[0]: \"leaf\": Failed to parse string [0x] as a number "
	  "for CPU template - ParseIntError { kind: Empty }" },
	{ LEAF("0x+"), "\"cpuid_modifiers\"[0]: \"leaf\": Failed to parse string [0x+] as a number "
	  "for CPU template - ParseIntError { kind: InvalidDigit }" },
	{ LEAF("0x-1"), "\"cpuid_modifiers\"[0]: \"leaf\": Failed to parse string [0x-1] as a number "
	  "for CPU template - ParseIntError { kind: InvalidDigit }" },
	{ LEAF("0x100000000"), "\"cpuid_modifiers\"[0]: \"leaf\": Failed to parse string "
	  "[0x100000000] as a number for CPU template - ParseIntError { kind: PosOverflow }" },
	{ "{'cpuid_modifiers': [{'leaf': 1, 'subleaf': '0x0', 'flags': 0, 'modifiers': []}]}",
	  "\"cpuid_modifiers\"[0]: \"leaf\": expected a string" },
	{ "{'cpuid_modifiers': [{'subleaf': '0x0', 'flags': 0, 'modifiers': []}]}",
	  "\"cpuid_modifiers\"[0]: \"leaf\" is required" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'flags': 0, 'modifiers': []}]}",
	  "\"cpuid_modifiers\"[0]: \"subleaf\" is required" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'modifiers': []}]}",
	  "\"cpuid_modifiers\"[0]: \"flags\" is required" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': '0', 'modifiers': []}]}",
	  "\"cpuid_modifiers\"[0]: \"flags\": expected an integer" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': -1, 'modifiers': []}]}",
	  "\"cpuid_modifiers\"[0]: \"flags\": -1 is not in [0, 4294967295]" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0}]}",
	  "\"cpuid_modifiers\"[0]: \"modifiers\" is required" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': {}}]}",
	  "\"cpuid_modifiers\"[0]: \"modifiers\": expected an array" },
	{ "{'cpuid_modifiers': [7]}", "\"cpuid_modifiers\"[0]: expected an object" },
	{ "{'cpuid_modifiers': [" "{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': []}, "
	  "{'leaf': '0x7', 'subleaf': '0x0', 'flags': 1, 'modifiers': [7]}]}",
	  "\"cpuid_modifiers\"[1]: \"modifiers\"[0]: expected an object" },
	/* registers and 32-bit bitmaps */
	{ MOD("ekx", "0bx"), AT_MOD "\"register\": \"ekx\": Invalid CPUID register. Must be one of "
	  "[eax, ebx, ecx, edx]" },
	{ MOD("EAX", "0bx"), AT_MOD "\"register\": \"EAX\": Invalid CPUID register. Must be one of "
	  "[eax, ebx, ecx, edx]" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': "
	  "[{'bitmap': '0b1'}]}]}", "\"cpuid_modifiers\"[0]: \"modifiers\"[0]: \"register\" is "
	  "required" },
	{ "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': "
	  "[{'register': 'eax'}]}]}", "\"cpuid_modifiers\"[0]: \"modifiers\"[0]: \"bitmap\" is "
	  "required" },
	{ MOD("ecx", "0bx" X32), AT_MOD "\"bitmap\": Failed to parse string [0bx" X32 "] as a "
	  "bitmap - string is too long" },
	{ MOD("ecx", "0b_" X32), AT_MOD "\"bitmap\": Failed to parse string [0b_" X32 "] as a "
	  "bitmap - string is too long" },
	{ MOD("ecx", "0b0_xϽ1_xx"), AT_MOD "\"bitmap\": Failed to parse string [0b0_xϽ1_xx] as a "
	  "bitmap - unknown character: byte 0xbd" },
	{ MOD("ecx", "0b12"), AT_MOD "\"bitmap\": Failed to parse string [0b12] as a bitmap - "
	  "unknown character: '2'" },
	{ MOD("ecx", "0x0f"), AT_MOD "\"bitmap\": Failed to parse string [0x0f] as a bitmap - "
	  "unknown character: 'f'" },
	{ MOD("ecx", "0bX1"), AT_MOD "\"bitmap\": Failed to parse string [0bX1] as a bitmap - "
	  "unknown character: 'X'" },
	/* msr_modifiers: 64-bit bitmaps */
	{ MSR("0jj0", "0b1"), "\"msr_modifiers\"[0]: \"addr\": No supported number system prefix "
	  "found in value [0jj0]. Make sure to prefix the number with '0x' for hexadecimal numbers "
	  "or '0b' for binary numbers." },
	{ MSR("0x200", "0bx00100x0x1xxxx05xxx1xxxxxxxxxxx1"), "\"msr_modifiers\"[0]: \"bitmap\": "
	  "Failed to parse string [0bx00100x0x1xxxx05xxx1xxxxxxxxxxx1] as a bitmap - unknown "
	  "character: '5'" },
	{ MSR("0x200", "0b1" X32 X32), "\"msr_modifiers\"[0]: \"bitmap\": Failed to parse string "
	  "[0b1" X32 X32 "] as a bitmap - string is too long" },
	{ "{'msr_modifiers': [{'bitmap': '0b1'}]}", "\"msr_modifiers\"[0]: \"addr\" is required" },
	{ "{'msr_modifiers': [{'addr': '0x10'}]}", "\"msr_modifiers\"[0]: \"bitmap\" is required" },
	{ "{'msr_modifiers': [{'addr': '0x10', 'bitmap': 0}]}",
	  "\"msr_modifiers\"[0]: \"bitmap\": expected a string" },
	{ "{'msr_modifiers': ['0x10']}", "\"msr_modifiers\"[0]: expected an object" },
};

static void test_refused(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct x86_template *t = (void *)1;
		char err[600] = "";

		if (parse(bad[i].doc, &t, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i].doc);
		assert_null(t);
		if (strcmp(err, bad[i].message))
			fail_msg("%s:\n  got  %s\n  want %s", bad[i].doc, err, bad[i].message);
	}
}

/* Firecracker's documented example (docs/cpu_templates/cpu-templates.md) and the rows it
 * makes; numbers in hex and binary, "+" as Rust takes it, unknown keys of entries ignored. */
static void test_parsed(void **state)
{
	struct x86_template *t;
	char err[600] = "";

	assert_int_equal(parse("{'kvm_capabilities': ['!56', '+171'], 'cpuid_modifiers': [{'leaf': "
			       "'0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': [{'register': "
			       "'eax', 'bitmap': '0bxxxx000000000011xx00011011110010'}]}, "
			       "{'leaf': '0b111', 'subleaf': '0x+1', 'flags': 1, 'note': 'x', "
			       "'modifiers': []}], 'msr_modifiers': [{'addr': '0x10', 'bitmap': "
			       "'0b0000000000000000000000000000000000000000000000000000000000000000'}, "
			       "{'addr': '0xc0000080', 'bitmap': '0b1_x_0', 'comment': 1}]}",
			       &t, err, sizeof(err)), 0);
	assert_string_equal(t->name, "custom");
	assert_int_equal(t->nr_caps, 2);
	assert_true(t->caps[0].remove);
	assert_int_equal(t->caps[0].cap, 56);
	assert_false(t->caps[1].remove);
	assert_int_equal(t->caps[1].cap, 171);
	assert_int_equal(t->nr_cpuid, 2);
	assert_int_equal(t->cpuid[0].leaf, 1);
	assert_int_equal(t->cpuid[0].subleaf, 0);
	assert_int_equal(t->cpuid[0].reg, X86_EAX);
	assert_int_equal(t->cpuid[0].mask, 0x0fff3fff);      /* the docs: clear, set */
	assert_int_equal(t->cpuid[0].value, 0x000306f2);
	assert_true(t->cpuid[0].set_flags);
	assert_int_equal(t->cpuid[0].flags, 0);
	/* A leaf without modifiers: it must exist and gets its flags (a row with mask 0). */
	assert_int_equal(t->cpuid[1].leaf, 7);
	assert_int_equal(t->cpuid[1].subleaf, 1);
	assert_int_equal(t->cpuid[1].mask, 0);
	assert_int_equal(t->cpuid[1].flags, 1);
	assert_true(t->cpuid[1].set_flags);
	assert_int_equal(t->nr_msr, 2);
	assert_int_equal(t->msr[0].index, 0x10);
	assert_true(t->msr[0].mask == ~0ull && t->msr[0].value == 0);
	/* Contracted: bits not given are kept; "_" separates. */
	assert_int_equal(t->msr[1].index, 0xc0000080);
	assert_true(t->msr[1].mask == 0x5 && t->msr[1].value == 0x4);
	x86_template_free(t);

	/* Everything optional: the empty template; "0b" is optional in a bitmap. */
	assert_int_equal(parse("{}", &t, err, sizeof(err)), 0);
	assert_true(!t->nr_caps && !t->nr_cpuid && !t->nr_msr);
	x86_template_free(t);
	assert_int_equal(parse(MOD("edx", "1" X32), &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse(MOD("edx", "10x1"), &t, err, sizeof(err)), 0);
	assert_int_equal(t->nr_cpuid, 2);
	assert_int_equal(t->cpuid[0].mask, 0);                 /* '0bx': keeps bit 0 */
	assert_int_equal(t->cpuid[1].reg, X86_EDX);
	assert_true(t->cpuid[1].mask == 0xd && t->cpuid[1].value == 0x9);
	x86_template_free(t);
	x86_template_free(NULL);
}

static struct kvm_cpuid2 *table(void)
{
	static const uint32_t leaves[][2] = { { 1, 0 }, { 7, 0 }, { 7, 1 } };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 3 * sizeof(c->entries[0]));

	c->nent = 3;
	for (unsigned i = 0; i < 3; i++)
		c->entries[i] = (struct kvm_cpuid_entry2){ .function = leaves[i][0],
							   .index = leaves[i][1],
							   .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
							   .eax = 0xf0, .ebx = 0xf0, .ecx = 0xf0,
							   .edx = 0xf0 };
	return c;
}

/* Rows applied in order (Firecracker's apply_template): a repeated entry on top of the earlier
 * one, the flags a leaf names, a leaf KVM does not offer refused. */
static void test_apply(void **state)
{
	struct kvm_cpuid2 *c = table();
	struct x86_template *t;
	char err[600] = "";

	assert_int_equal(parse("{'cpuid_modifiers': ["
			       "{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': ["
			       "{'register': 'ecx', 'bitmap': '0b0000_0001'}, "
			       "{'register': 'ecx', 'bitmap': '0b1xxx_xxx0'}]}, "
			       "{'leaf': '0x7', 'subleaf': '0x1', 'flags': 0, 'modifiers': []}, "
			       "{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': ["
			       "{'register': 'edx', 'bitmap': '0b1111'}]}]}", &t, err, sizeof(err)), 0);
	assert_int_equal(x86_template_apply(c, t, err, sizeof(err)), 0);
	assert_int_equal(c->entries[0].ecx, 0x80);       /* 0x01, then bit 7 on and bit 0 off */
	assert_int_equal(c->entries[0].edx, 0xff);
	assert_int_equal(c->entries[0].eax, 0xf0);
	assert_int_equal(c->entries[0].flags, 0);
	assert_int_equal(c->entries[1].flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX); /* not named */
	assert_int_equal(c->entries[2].flags, 0);
	assert_int_equal(c->entries[2].ecx, 0xf0);
	x86_template_free(t);

	assert_int_equal(parse(LEAF("0xd"), &t, err, sizeof(err)), 0);
	assert_int_equal(x86_template_apply(c, t, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "CPU template custom changes CPUID leaf 0xd subleaf 0x0, which this "
			    "host's KVM does not offer");
	x86_template_free(t);
	assert_int_equal(x86_template_apply(c, NULL, err, sizeof(err)), 0);
	free(c);
}

static void test_msr(void **state)
{
	struct x86_template *t;
	char err[600] = "";
	uint64_t v = 0xff;

	assert_int_equal(parse("{'msr_modifiers': [{'addr': '0x10a', 'bitmap': '0b0000'}, "
			       "{'addr': '0x10b', 'bitmap': '0b1'}, "
			       "{'addr': '0x10a', 'bitmap': '0b1xx1_xxxx_xxxx'}]}", &t, err,
			       sizeof(err)), 0);
	assert_int_equal(x86_template_msr(t, 0x10a, &v), 0);
	assert_int_equal(v, 0x9f0);                      /* both rows, in order */
	v = 2;
	assert_int_equal(x86_template_msr(t, 0x10b, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(x86_template_msr(t, 0x10c, &v), -ENOENT);
	assert_int_equal(v, 3);
	assert_int_equal(x86_template_msr(NULL, 0x10a, &v), -ENOENT);
	x86_template_free(t);
}

/* A fake KVM_CHECK_EXTENSION: every capability but those in the zero-ended list @ctx. */
static bool has(void *ctx, uint32_t cap)
{
	for (const uint32_t *p = ctx; *p; p++)
		if (*p == cap)
			return false;
	return true;
}

/* The template's own list: what "N" adds, less what a later "!N" takes back (a removal moves
 * the last one into its place); no template, or a static one, asks for nothing. */
static void test_caps(void **state)
{
	uint32_t none[] = { 0 }, xcrs[] = { KVM_CAP_XCRS, 0 }, two[] = { 171, 172, 0 };
	struct x86_template *t;
	uint32_t missing = 0;
	char err[600];

	assert_int_equal(x86_template_check_caps(NULL, has, xcrs, &missing), 0);
	assert_int_equal(x86_template_check_caps(x86_cpu_template_rows(X86_CPU_TEMPLATE_T2), has,
						 xcrs, &missing), 0);
	assert_int_equal(parse("{'kvm_capabilities': ['!56', '171', '171', '!9999']}", &t, err,
			       sizeof(err)), 0);
	assert_int_equal(x86_template_check_caps(t, has, none, &missing), 0);
	assert_int_equal(x86_template_check_caps(t, has, xcrs, &missing), 0);
	assert_int_equal(x86_template_check_caps(t, has, two, &missing), -ENOENT);
	assert_int_equal(missing, 171);
	x86_template_free(t);
	/* "!171" takes back the "171" before it: then 172, moved into its place, is checked. */
	assert_int_equal(parse("{'kvm_capabilities': ['171', '172', '!171']}", &t, err, sizeof(err)),
			 0);
	assert_int_equal(x86_template_check_caps(t, has, two, &missing), -ENOENT);
	assert_int_equal(missing, 172);
	x86_template_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_parsed),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_msr),
		cmocka_unit_test(test_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
