/* SPDX-License-Identifier: Apache-2.0 */
/* aml — a small byte builder for the AML that kiln's DSDT needs (ACPI 6.5 §20.2): names,
 * integers, strings, packages, buffers, scopes and devices, with PkgLength computed when a
 * package closes. Errors (out of memory) stick in the builder and are reported once at the end.
 */
#ifndef KILN_AML_H
#define KILN_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *data, size_t n);
/* Integer in the shortest encoding (§20.2.3: ZeroOp, OneOp, Byte/Word/DWord/QWordPrefix). */
void aml_integer(struct aml *a, uint64_t v);
/* String (StringPrefix, ASCII, NUL). */
void aml_string(struct aml *a, const char *s);
/* A 4-character NameSeg (§20.2.2); @seg must be exactly 4 valid characters. */
void aml_nameseg(struct aml *a, const char *seg);
/* Open a package-length scope after @opcode bytes (1 or 2); returns the position to close. */
size_t aml_open(struct aml *a, const uint8_t *opcode, size_t oplen);
/* Close the scope opened at @pos: insert its PkgLength (§20.2.4, 1..4 bytes). */
void aml_close(struct aml *a, size_t pos);
/* Encode a PkgLength for a package whose contents (after the PkgLength) are @len bytes into
 * @out (4 bytes of room); returns the encoding's size, or 0 when too large (>= 2^28). */
unsigned aml_pkglength(size_t len, uint8_t out[4]);
/* The compressed EISA id (ACPI 6.5 §19.6.44 EISAID) of "AAA####" as the AML DWord. */
uint32_t aml_eisaid(const char *id);

#endif
