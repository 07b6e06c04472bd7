/* SPDX-License-Identifier: Apache-2.0 */
/* bus — dispatch of guest port I/O and MMIO exits to the device that owns the address.
 *
 * Owns: the table of address ranges of one address space (ports or MMIO) and the record of
 * unclaimed addresses already reported. Ranges are registered before any vCPU runs; afterwards
 * only a range's base may change (bus_move(), a PCI BAR the guest moves), as one atomic store,
 * so lookups take no lock and see a moving range at its old place or its new one. An access
 * nobody claims reads as all-ones, is ignored on write, is logged once per address, and never
 * stops the VM.
 */
#ifndef KILN_BUS_H
#define KILN_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_RANGES 32
#define BUS_MAX_REPORTED 64

struct bus_ops {
	/* Fill @data[0..len) for a read at @offset bytes into the range (len 1, 2, 4 or 8). */
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	/* Consume a write of @data[0..len) at @offset bytes into the range. */
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base, len; /* bytes */
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *space; /* "port" or "mmio", for messages */
	unsigned nr_ranges;
	struct bus_range range[BUS_MAX_RANGES];
	pthread_mutex_t report_lock;
	pthread_mutex_t move_lock;  /* serialises bus_move() */
	unsigned nr_reported;
	uint64_t reported[BUS_MAX_REPORTED];
};

/* Initialise an empty bus named @space ("port" or "mmio"). */
void bus_init(struct bus *bus, const char *space);
void bus_destroy(struct bus *bus);

/* Claim [base, base + len) for @ops. Returns 0, -EBUSY when it overlaps a claimed range,
 * -ENOSPC when the table is full, -EINVAL for len 0 or a wrapping range. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name) __attribute__((warn_unused_result));

/* Move the range that starts at @base and belongs to @opaque to @new_base, its length kept.
 * Any thread, while vCPUs dispatch. Returns 0, -ENOENT when no such range is registered,
 * -EBUSY when the new place overlaps another range, -EINVAL when it wraps. */
int bus_move(struct bus *bus, uint64_t base, const void *opaque, uint64_t new_base)
	__attribute__((warn_unused_result));

/* Route one guest access of @len bytes (1..8) at @addr. Returns true when a device claimed it;
 * false for unclaimed addresses (reads then see 0xff bytes) and for accesses that straddle the
 * end of a range. */
bool bus_dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
