/* SPDX-License-Identifier: Apache-2.0 */
/* bus — see include/kiln/bus.h. */
#include "kiln/bus.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "kiln/log.h"

void bus_init(struct bus *bus, const char *space)
{
	memset(bus, 0, sizeof(*bus));
	bus->space = space;
	pthread_mutex_init(&bus->report_lock, NULL);
}

void bus_destroy(struct bus *bus) { pthread_mutex_destroy(&bus->report_lock); }

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	if (len == 0 || base + len < base)
		return -EINVAL;
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->range[i];

		if (base < r->base + r->len && r->base < base + len)
			return -EBUSY;
	}
	if (bus->nr_ranges == BUS_MAX_RANGES)
		return -ENOSPC;
	bus->range[bus->nr_ranges++] =
		(struct bus_range){ .base = base, .len = len, .ops = ops, .opaque = opaque, .name = name };
	return 0;
}

/* Log an unclaimed access once per address (the first BUS_MAX_REPORTED addresses). */
static void bus_report(struct bus *bus, uint64_t addr, uint32_t len, bool is_write)
{
	bool first = true;

	pthread_mutex_lock(&bus->report_lock);
	for (unsigned i = 0; i < bus->nr_reported; i++)
		if (bus->reported[i] == addr)
			first = false;
	if (first && bus->nr_reported < BUS_MAX_REPORTED)
		bus->reported[bus->nr_reported++] = addr;
	else
		first = false;
	pthread_mutex_unlock(&bus->report_lock);
	if (first)
		log_info("unclaimed %s %s at 0x%" PRIx64 " (%u bytes); further accesses not logged",
			 bus->space, is_write ? "write" : "read", addr, len);
}

bool bus_dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->range[i];
		uint64_t off = addr - r->base;

		if (addr < r->base || off >= r->len)
			continue;
		if (len > r->len - off)
			break;
		if (is_write) {
			if (r->ops->write)
				r->ops->write(r->opaque, off, data, len);
		} else if (r->ops->read) {
			r->ops->read(r->opaque, off, data, len);
		} else {
			memset(data, 0xff, len);
		}
		return true;
	}
	if (!is_write)
		memset(data, 0xff, len);
	bus_report(bus, addr, len, is_write);
	return false;
}
