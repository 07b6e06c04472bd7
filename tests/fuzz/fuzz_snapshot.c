/* libFuzzer target: a hostile snapshot file against the container reader
 * (src/snapshot/format.c). A checksum would stop a fuzzer at the door, so half of the inputs
 * are wrapped in a valid header and trailer (length and CRC-32 made right) and exercise the
 * section framing; the other half go in raw. Every section of every name the VM reads is then
 * looked up; AddressSanitizer turns any read outside the buffer into a crash.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool wrap = size && (data[0] & 1);
	size_t len = wrap ? HEADER + (size - 1) + 8 : size;
	uint8_t *buf = malloc(len ? len : 1);
	struct snap_reader r;
	char err[256];

	if (!buf)
		return 0;
	if (wrap) {
		uint64_t file_len = len;
		uint32_t crc;

		memset(buf, 0, HEADER);
		memcpy(buf, "KILNSNAP", 8);
		memcpy(buf + 8, &(uint32_t){ SNAP_FORMAT_VERSION }, 4);
		memcpy(buf + 12, &(uint32_t){ HEADER }, 4);
		memcpy(buf + 16, KILN_VERSION, strlen(KILN_VERSION));
		memcpy(buf + 48, &file_len, 8);
		memcpy(buf + HEADER, data + 1, size - 1);
		memcpy(buf + len - 8, "KEND", 4);
		crc = (uint32_t)crc32(0, buf, (uInt)(len - 4));
		memcpy(buf + len - 4, &crc, 4);
	} else if (size) {
		memcpy(buf, data, size);
	}
	if (snap_reader_take(&r, buf, len, "fuzz", err, sizeof(err)) == 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			for (uint32_t inst = 0; inst < 3; inst++) {
				size_t got;
				const uint8_t *p = snap_get(&r, names[i], inst, &got);
				volatile uint8_t sink = 0;

				for (size_t k = 0; p && k < got; k++)
					sink ^= p[k];
				(void)sink;
				snap_get_exact(&r, names[i], inst, 8, err, sizeof(err));
			}
		}
		snap_reader_close(&r);
	}
	return 0;
}
