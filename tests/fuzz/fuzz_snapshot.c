/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile snapshot file against the container reader and the section
 * decoder (src/snapshot/format.c). A checksum would stop a fuzzer at the door, so half of the
 * inputs are wrapped in a valid header and trailer (length and CRC-32 made right) and exercise
 * the section framing: of those, half as format 2 (what kiln writes) and half as format 1 (what
 * kiln wrote before sections had versions, still read). The other half go in raw (after the
 * first byte, which chooses, so that a raw file can start with the magic). Every section
 * of every name the VM reads is then looked up in each way an owner can, and decoded field by
 * field; AddressSanitizer turns any read outside the buffer into a crash.
 * Build and run: scripts/fuzz [SECONDS]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "kiln/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 56

static const char *const names[] = { "config", "vm", "irqchip", "pit2", "clock", "msi", "virtio",
				     "vpci", "vmmio", "cpuid", "regs", "msrs", "uart_8250" };

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* Decode @len bytes at @p as an owner would, in widths chosen by the bytes themselves, until
 * the cursor is spent or spoilt. */
static void decode(const uint8_t *p, size_t len)
{
	struct snap_dec d;
	volatile uint64_t sink = 0;
	uint8_t tmp[16];

	snap_dec_init(&d, p, len);
	while (!d.bad && d.off < d.len) {
		switch (snap_dec_u8(&d) & 7) {
		case 0:
			sink ^= snap_dec_u16(&d);
			break;
		case 1:
			sink ^= snap_dec_u32(&d);
			break;
		case 2:
			sink ^= snap_dec_u64(&d);
			break;
		case 3:
			snap_dec_bytes(&d, tmp, sizeof(tmp));
			sink ^= tmp[15];
			break;
		default:
			break;
		}
	}
	sink ^= snap_dec_done(&d);
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte chooses; the rest is the file, or the sections of one. */
	bool wrap = size && (data[0] & 1), v1 = size && (data[0] & 2);
	size_t len = size ? size - 1 : 0;
	struct snap_reader r;
	char err[256];
	uint8_t *buf;

	if (wrap)
		len += HEADER + 8;
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	if (wrap) {
		memset(buf, 0, HEADER);
		memcpy(buf, "KILNSNAP", 8);
		le32(buf + 8, v1 ? 1 : SNAP_FORMAT_VERSION);
		le32(buf + 12, HEADER);
		memcpy(buf + 16, "fuzz", 4); /* any kiln version is read */
		le64(buf + 48, len);
		memcpy(buf + HEADER, data + 1, size - 1);
		memcpy(buf + len - 8, "KEND", 4);
		le32(buf + len - 4, (uint32_t)crc32(0, buf, (uInt)(len - 4)));
	} else if (len) {
		memcpy(buf, data + 1, len);
	}
	if (snap_reader_take(&r, buf, len, "fuzz", err, sizeof(err)) == 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			for (uint32_t inst = 0; inst < 3; inst++) {
				uint32_t version;
				size_t got;
				const uint8_t *p = snap_get(&r, names[i], inst, &version, &got);

				if (p)
					decode(p, got);
				p = snap_get_section(&r, names[i], inst, 2, &version, &got, err,
						     sizeof(err));
				if (p && (version < 1 || version > 2))
					abort();
				snap_get_exact(&r, names[i], inst, 1, 8, err, sizeof(err));
			}
		}
		snap_reader_close(&r);
	}
	return 0;
}
