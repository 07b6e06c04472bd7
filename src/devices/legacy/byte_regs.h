/* byte_regs — shared by the legacy devices whose registers are one byte wide (8250, i8042,
 * RTC, pvpanic): a wider guest access is split into consecutive byte accesses, as the ISA bus
 * does, so each device only handles single bytes. */
#ifndef KILN_BYTE_REGS_H
#define KILN_BYTE_REGS_H

#include <stdint.h>

typedef uint8_t (*byte_read_fn)(void *opaque, uint64_t offset);
typedef void (*byte_write_fn)(void *opaque, uint64_t offset, uint8_t value);

static inline void byte_regs_read(byte_read_fn fn, void *opaque, uint64_t offset, uint8_t *data,
				  uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = fn(opaque, offset + i);
}

static inline void byte_regs_write(byte_write_fn fn, void *opaque, uint64_t offset,
				   const uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		fn(opaque, offset + i, data[i]);
}

#endif
