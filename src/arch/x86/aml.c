/* SPDX-License-Identifier: Apache-2.0 */
/* aml — see aml.h. */
#include "aml.h"

#include <stdlib.h>
#include <string.h>

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e

void aml_init(struct aml *a) { memset(a, 0, sizeof(*a)); }

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

static bool aml_reserve(struct aml *a, size_t n)
{
	size_t cap = a->cap ? a->cap : 256;
	uint8_t *p;

	if (a->failed)
		return false;
	while (cap - a->len < n)
		cap *= 2;
	if (cap != a->cap) {
		p = realloc(a->buf, cap);
		if (!p) {
			a->failed = true;
			return false;
		}
		a->buf = p;
		a->cap = cap;
	}
	return true;
}

void aml_bytes(struct aml *a, const void *data, size_t n)
{
	if (!aml_reserve(a, n))
		return;
	memcpy(a->buf + a->len, data, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b) { aml_bytes(a, &b, 1); }

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t le[8];
	unsigned n;

	if (v <= 1) {
		aml_byte(a, v ? AML_ONE : AML_ZERO);
		return;
	}
	if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		n = 1;
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		n = 2;
	} else if (v <= 0xffffffff) {
		aml_byte(a, AML_DWORD_PREFIX);
		n = 4;
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		n = 8;
	}
	for (unsigned i = 0; i < n; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, le, n);
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

void aml_nameseg(struct aml *a, const char *seg) { aml_bytes(a, seg, 4); }

size_t aml_open(struct aml *a, const uint8_t *opcode, size_t oplen)
{
	aml_bytes(a, opcode, oplen);
	return a->len;
}

unsigned aml_pkglength(size_t len, uint8_t out[4])
{
	/* The encoded length counts the PkgLength bytes themselves. One byte holds 0..63; longer
	 * forms keep 4 bits in the lead byte and 8 in each following byte. */
	if (len + 1 <= 0x3f) {
		out[0] = (uint8_t)(len + 1);
		return 1;
	}
	for (unsigned n = 2; n <= 4; n++) {
		size_t total = len + n;

		if (total < (1u << (4 + 8 * (n - 1)))) {
			out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
			for (unsigned i = 1; i < n; i++)
				out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
			return n;
		}
	}
	return 0;
}

void aml_close(struct aml *a, size_t pos)
{
	uint8_t enc[4];
	unsigned n = aml_pkglength(a->len - pos, enc);

	if (n == 0) {
		a->failed = true;
		return;
	}
	if (!aml_reserve(a, n))
		return;
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, enc, n);
	a->len += n;
}

uint32_t aml_eisaid(const char *id)
{
	uint16_t vendor = (uint16_t)(((id[0] & 0x1f) << 10) | ((id[1] & 0x1f) << 5) | (id[2] & 0x1f));
	uint16_t product = (uint16_t)strtoul(id + 3, NULL, 16);

	/* Stored big-endian: vendor then product, each high byte first. */
	return (uint32_t)(vendor >> 8) | (uint32_t)(vendor & 0xff) << 8 |
	       (uint32_t)(product >> 8) << 16 | (uint32_t)(product & 0xff) << 24;
}
