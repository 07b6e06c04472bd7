/* SPDX-License-Identifier: Apache-2.0 */
/* byte_regs — see byte_regs.h. */
#include "byte_regs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void byte_dev_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct byte_dev *dev = opaque;

	pthread_mutex_lock(&dev->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = dev->read ? dev->read(dev, offset + i) : 0xff;
	pthread_mutex_unlock(&dev->lock);
}

static void byte_dev_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct byte_dev *dev = opaque;

	pthread_mutex_lock(&dev->lock);
	for (uint32_t i = 0; i < len && dev->write; i++)
		dev->write(dev, offset + i, data[i]);
	pthread_mutex_unlock(&dev->lock);
}

static const struct bus_ops byte_dev_ops = { .read = byte_dev_read, .write = byte_dev_write };

void byte_dev_free(void *state)
{
	struct byte_dev *dev = state;

	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

void *byte_dev_new(size_t size, uint8_t (*read)(struct byte_dev *, uint64_t),
		   void (*write)(struct byte_dev *, uint64_t, uint8_t), struct bus *bus,
		   uint64_t base, uint64_t len, const char *name, struct error *e)
{
	struct byte_dev *dev = calloc(1, size);
	int ret;

	if (!dev) {
		error_set(e, ERROR_RUNTIME, "%s: out of memory", name);
		return NULL;
	}
	pthread_mutex_init(&dev->lock, NULL);
	dev->read = read;
	dev->write = write;
	ret = bus_register(bus, base, len, &byte_dev_ops, dev, name);
	if (ret) {
		error_set(e, ERROR_RUNTIME, "%s: %s bus: %s", name, bus->space, strerror(-ret));
		byte_dev_free(dev);
		return NULL;
	}
	return dev;
}

