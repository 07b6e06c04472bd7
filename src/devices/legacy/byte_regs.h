/* SPDX-License-Identifier: Apache-2.0 */
/* byte_regs — the common frame of the legacy devices whose registers are one byte wide (8250,
 * i8042, RTC, ACPI PM1): one mutex per device, and wider guest accesses split into consecutive
 * byte accesses as the ISA bus does, so each device only handles single bytes under its lock.
 * A device embeds struct byte_dev as its first member. */
#ifndef KILN_BYTE_REGS_H
#define KILN_BYTE_REGS_H

#include <pthread.h>
#include <stdint.h>

#include "kiln/bus.h"
#include "kiln/error.h"

struct byte_dev {
	pthread_mutex_t lock;
	/* Called with the lock held, once per byte; @offset is within the registered range. */
	uint8_t (*read)(struct byte_dev *dev, uint64_t offset);
	void (*write)(struct byte_dev *dev, uint64_t offset, uint8_t value);
};

/* Allocate a zeroed device of @size bytes whose first member is a struct byte_dev, wire its
 * byte callbacks and claim [base, base + len) on @bus for it under @name. Returns the device
 * (free it with byte_dev_free), or NULL with @e set (out of memory, or the range is taken). */
void *byte_dev_new(size_t size, uint8_t (*read)(struct byte_dev *, uint64_t),
		   void (*write)(struct byte_dev *, uint64_t, uint8_t), struct bus *bus,
		   uint64_t base, uint64_t len, const char *name, struct error *e);

/* device_class.destroy for a device allocated with malloc whose first member is its byte_dev. */
void byte_dev_free(void *state);

#endif
