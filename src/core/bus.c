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
	pthread_mutex_init(&bus->move_lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	pthread_mutex_destroy(&bus->report_lock);
	pthread_mutex_destroy(&bus->move_lock);
}

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

int bus_move(struct bus *bus, uint64_t base, const void *opaque, uint64_t new_base)
{
	struct bus_range *found = NULL;
	int ret = 0;

	pthread_mutex_lock(&bus->move_lock);
	for (unsigned i = 0; i < bus->nr_ranges; i++)
		if (bus->range[i].opaque == opaque && bus->range[i].base == base) /* moves: locked */
			found = &bus->range[i];
	if (!found)
		ret = -ENOENT;
	else if (new_base + found->len < new_base)
		ret = -EINVAL;
	for (unsigned i = 0; !ret && i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->range[i];

		if (r != found && new_base < r->base + r->len && r->base < new_base + found->len)
			ret = -EBUSY;
	}
	if (!ret)
		__atomic_store_n(&found->base, new_base, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&bus->move_lock);
	return ret;
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
		uint64_t base = __atomic_load_n(&r->base, __ATOMIC_ACQUIRE);
		uint64_t off = addr - base;

		if (addr < base || off >= r->len)
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
