/* SPDX-License-Identifier: Apache-2.0 */
/* custom_template — Firecracker's custom CPU template language, parsed into the rows every CPU
 * template is made of, see include/kiln/x86.h.
 *
 * The reference is Firecracker 1.16.1: cpu_config/x86_64/custom_cpu_template.rs (the shape:
 * unknown keys refused at the top, ignored inside the entries; nothing checked across entries),
 * cpu_config/templates.rs (KvmCapability; RegisterValueFilter, the bitmap language) and
 * cpu_config/templates_serde.rs (numbers with a 0x or 0b prefix). Its messages are kept, after
 * the entry and the key they are about; numbers parse as Rust's from_str_radix and str::parse
 * do ("+" allowed in front, the same error kinds), so a template Firecracker takes is taken
 * here and one it refuses is refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "kiln/x86.h"

#define SHOWN 100 /* at most this many bytes of a value in a message */

/* Rust's IntErrorKind, for an unsigned integer. */
enum int_error { INT_OK, INT_EMPTY, INT_INVALID_DIGIT, INT_POS_OVERFLOW };

static const char *const int_kind[] = {
	[INT_EMPTY] = "Empty", [INT_INVALID_DIGIT] = "InvalidDigit",
	[INT_POS_OVERFLOW] = "PosOverflow",
};

/* ParseIntError's Display text. */
static const char *const int_text[] = {
	[INT_EMPTY] = "cannot parse integer from empty string",
	[INT_INVALID_DIGIT] = "invalid digit found in string",
	[INT_POS_OVERFLOW] = "number too large to fit in target type",
};

static const char *const reg_names[] = {
	[X86_EAX] = "eax", [X86_EBX] = "ebx", [X86_ECX] = "ecx", [X86_EDX] = "edx",
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The length of a value to print. */
static int shown(size_t len)
{
	return len > SHOWN ? SHOWN : (int)len;
}

/* @s (@len bytes) as an unsigned number in @radix of at most @max, as Rust's from_str_radix:
 * one "+" may lead; the first bad digit or the first overflow ends it. */
static enum int_error parse_uint(const char *s, size_t len, unsigned radix, uint64_t max,
				 uint64_t *out)
{
	uint64_t v = 0;

	if (!len)
		return INT_EMPTY;
	if (s[0] == '+') {
		if (len == 1)
			return INT_INVALID_DIGIT;
		s++;
		len--;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned c = (unsigned char)s[i], d = 99;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'z')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'Z')
			d = c - 'A' + 10;
		if (d >= radix)
			return INT_INVALID_DIGIT;
		if (v > (max - d) / radix)
			return INT_POS_OVERFLOW;
		v = v * radix + d;
	}
	*out = v;
	return INT_OK;
}

/* Member @key of entry @o (@where names the entry): a string, required. */
static int get_string(json_t *o, const char *where, const char *key, const char **s, size_t *len,
		      char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return fail(err, errlen, "%s\"%s\" is required", where, key);
	if (!json_is_string(v))
		return fail(err, errlen, "%s\"%s\": expected a string", where, key);
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

/* Member @key of @o: a number of at most 32 bits with a 0x or 0b prefix (Firecracker's
 * deserialize_from_str_u32). */
static int get_number(json_t *o, const char *where, const char *key, uint32_t *out, char *err,
		      size_t errlen)
{
	const char *s;
	size_t len;
	unsigned radix;
	uint64_t v = 0;
	enum int_error e;

	if (get_string(o, where, key, &s, &len, err, errlen))
		return -EINVAL;
	radix = len >= 2 && !memcmp(s, "0b", 2) ? 2 : len >= 2 && !memcmp(s, "0x", 2) ? 16 : 0;
	if (!radix)
		return fail(err, errlen, "%s\"%s\": No supported number system prefix found in value "
			    "[%.*s]. Make sure to prefix the number with '0x' for hexadecimal numbers "
			    "or '0b' for binary numbers.", where, key, shown(len), s);
	e = parse_uint(s + 2, len - 2, radix, UINT32_MAX, &v);
	if (e != INT_OK)
		return fail(err, errlen, "%s\"%s\": Failed to parse string [%.*s] as a number for CPU "
			    "template - ParseIntError { kind: %s }", where, key, shown(len), s,
			    int_kind[e]);
	*out = (uint32_t)v;
	return 0;
}

/* Member "bitmap" of @o, a register of @bits bits (Firecracker's RegisterValueFilter): from the
 * right, 0 clears a bit, 1 sets it, x keeps it, _ separates; an optional "0b" in front; bits
 * not given are kept. *@mask gets the bits set or cleared, *@value the bits set. */
static int get_bitmap(json_t *o, const char *where, unsigned bits, uint64_t *mask,
		      uint64_t *value, char *err, size_t errlen)
{
	const char *s, *p;
	size_t len, n;
	unsigned i = 0;

	if (get_string(o, where, "bitmap", &s, &len, err, errlen))
		return -EINVAL;
	p = len >= 2 && !memcmp(s, "0b", 2) ? s + 2 : s;
	n = len - (size_t)(p - s);
	*mask = *value = 0;
	while (n--) {
		unsigned char c = (unsigned char)p[n];

		if (i == bits)
			return fail(err, errlen, "%s\"bitmap\": Failed to parse string [%.*s] as a "
				    "bitmap - string is too long", where, shown(len), s);
		if (c == '_')
			continue;
		if (c == '0' || c == '1')
			*mask |= 1ull << i;
		if (c == '1')
			*value |= 1ull << i;
		if (c != '0' && c != '1' && c != 'x')
			return fail(err, errlen, c >= 0x20 && c < 0x7f ?
				    "%s\"bitmap\": Failed to parse string [%.*s] as a bitmap - unknown "
				    "character: '%c'" : "%s\"bitmap\": Failed to parse string [%.*s] as "
				    "a bitmap - unknown character: byte 0x%02x", where, shown(len), s, c);
		i++;
	}
	return 0;
}

/* An array member @key of the template (absent: none). */
static int get_list(json_t *doc, const char *key, json_t **out, char *err, size_t errlen)
{
	*out = json_object_get(doc, key);
	if (*out && !json_is_array(*out))
		return fail(err, errlen, "\"%s\": expected an array", key);
	return 0;
}

/* "kvm_capabilities"[@i]: "N" adds capability N to the checks, "!N" removes it. */
static int parse_cap(json_t *v, size_t i, struct x86_kvm_cap *cap, char *err, size_t errlen)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	uint64_t n = 0;
	enum int_error e;

	if (!json_is_string(v))
		return fail(err, errlen, "\"kvm_capabilities\"[%zu]: expected a string", i);
	cap->remove = len && s[0] == '!';
	e = parse_uint(s + cap->remove, len - cap->remove, 10, UINT32_MAX, &n);
	if (e != INT_OK)
		return fail(err, errlen, "\"kvm_capabilities\"[%zu]: Failed to parse string [%.*s] as a "
			    "kvm capability - can not convert to numeric: %s", i, shown(len), s,
			    int_text[e]);
	cap->cap = (uint32_t)n;
	return 0;
}

/* "cpuid_modifiers"[@i]: a leaf and subleaf, its KVM flags and its register modifiers, into
 * rows from @rows on (one row, changing only the flags, when it has no modifier). Returns the
 * number of rows or -EINVAL. */
static int parse_leaf(json_t *o, size_t i, struct x86_cpuid_row *rows, char *err, size_t errlen)
{
	struct x86_cpuid_row base = { .set_flags = true };
	json_t *flags, *mods, *m;
	char where[48], at[96];
	size_t k;

	snprintf(where, sizeof(where), "\"cpuid_modifiers\"[%zu]: ", i);
	if (!json_is_object(o))
		return fail(err, errlen, "%sexpected an object", where);
	if (get_number(o, where, "leaf", &base.leaf, err, errlen) ||
	    get_number(o, where, "subleaf", &base.subleaf, err, errlen))
		return -EINVAL;
	flags = json_object_get(o, "flags");
	if (!flags || json_is_null(flags))
		return fail(err, errlen, "%s\"flags\" is required", where);
	if (!json_is_integer(flags))
		return fail(err, errlen, "%s\"flags\": expected an integer", where);
	if (json_integer_value(flags) < 0 || json_integer_value(flags) > UINT32_MAX)
		return fail(err, errlen, "%s\"flags\": %lld is not in [0, %u]", where,
			    (long long)json_integer_value(flags), UINT32_MAX);
	base.flags = (uint32_t)json_integer_value(flags);
	mods = json_object_get(o, "modifiers");
	if (!mods || json_is_null(mods))
		return fail(err, errlen, "%s\"modifiers\" is required", where);
	if (!json_is_array(mods))
		return fail(err, errlen, "%s\"modifiers\": expected an array", where);
	rows[0] = base;
	json_array_foreach(mods, k, m) {
		const char *name;
		size_t len;
		uint64_t mask, value;
		unsigned r = 0;

		snprintf(at, sizeof(at), "%s\"modifiers\"[%zu]: ", where, k);
		if (!json_is_object(m))
			return fail(err, errlen, "%sexpected an object", at);
		if (get_string(m, at, "register", &name, &len, err, errlen))
			return -EINVAL;
		while (r < 4 && (strlen(reg_names[r]) != len || memcmp(reg_names[r], name, len)))
			r++;
		if (r == 4)
			return fail(err, errlen, "%s\"register\": \"%.*s\": Invalid CPUID register. Must "
				    "be one of [eax, ebx, ecx, edx]", at, shown(len), name);
		if (get_bitmap(m, at, 32, &mask, &value, err, errlen))
			return -EINVAL;
		rows[k] = base;
		rows[k].reg = (enum x86_cpuid_reg)r;
		rows[k].mask = (uint32_t)mask;
		rows[k].value = (uint32_t)value;
	}
	return json_array_size(mods) ? (int)json_array_size(mods) : 1;
}

/* "msr_modifiers"[@i]: an MSR's address and bitmap. */
static int parse_msr(json_t *o, size_t i, struct x86_msr_row *row, char *err, size_t errlen)
{
	char where[48];

	snprintf(where, sizeof(where), "\"msr_modifiers\"[%zu]: ", i);
	if (!json_is_object(o))
		return fail(err, errlen, "%sexpected an object", where);
	return get_number(o, where, "addr", &row->index, err, errlen) ?:
	       get_bitmap(o, where, 64, &row->mask, &row->value, err, errlen);
}

int x86_template_parse(json_t *doc, struct x86_template **out, char *err, size_t errlen)
{
	json_t *caps, *leaves, *msrs, *v;
	size_t nr_rows = 0, i;
	struct x86_template *t;
	struct x86_msr_row *msr;
	struct x86_cpuid_row *cpuid;
	struct x86_kvm_cap *cap;
	const char *key;
	int ret = 0;

	*out = NULL;
	if (!json_is_object(doc))
		return fail(err, errlen, "expected an object");
	json_object_foreach(doc, key, v)
		if (strcmp(key, "kvm_capabilities") && strcmp(key, "cpuid_modifiers") &&
		    strcmp(key, "msr_modifiers"))
			return fail(err, errlen, "unknown field `%s`, expected one of "
				    "`kvm_capabilities`, `cpuid_modifiers`, `msr_modifiers`", key);
	if (get_list(doc, "kvm_capabilities", &caps, err, errlen) ||
	    get_list(doc, "cpuid_modifiers", &leaves, err, errlen) ||
	    get_list(doc, "msr_modifiers", &msrs, err, errlen))
		return -EINVAL;
	/* One block: the template, then its MSR, CPUID and capability rows (in that order, each
	 * aligned for the next). parse_leaf() fills as many rows as counted here. */
	json_array_foreach(leaves, i, v)
		nr_rows += json_array_size(json_object_get(v, "modifiers")) ?: 1;
	t = calloc(1, sizeof(*t) + json_array_size(msrs) * sizeof(*msr) +
		      nr_rows * sizeof(*cpuid) + json_array_size(caps) * sizeof(*cap));
	if (!t) {
		fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	msr = (struct x86_msr_row *)(t + 1);
	cpuid = (struct x86_cpuid_row *)(msr + json_array_size(msrs));
	cap = (struct x86_kvm_cap *)(cpuid + nr_rows);
	*t = (struct x86_template){ .name = "custom", .msr = msr, .cpuid = cpuid, .caps = cap };
	json_array_foreach(caps, i, v)
		if (!ret && !(ret = parse_cap(v, i, &cap[i], err, errlen)))
			t->nr_caps++;
	json_array_foreach(leaves, i, v) {
		int n = ret ? 0 : parse_leaf(v, i, &cpuid[t->nr_cpuid], err, errlen);

		if (n < 0)
			ret = n;
		t->nr_cpuid += n > 0 ? (unsigned)n : 0;
	}
	json_array_foreach(msrs, i, v)
		if (!ret && !(ret = parse_msr(v, i, &msr[i], err, errlen)))
			t->nr_msr++;
	if (ret) {
		free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void x86_template_free(struct x86_template *t)
{
	free(t);
}
