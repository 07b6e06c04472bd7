/* SPDX-License-Identifier: Apache-2.0 */
/* debug_exit — QEMU's isa-debug-exit (hw/misc/debugexit.c, QEMU 7.2): a guest write of value v
 * (1, 2 or 4 bytes, little-endian) to its ports ends the VM and kiln exits with status
 * (v << 1) | 1, as QEMU does, so test kernels built for `qemu -device isa-debug-exit` report
 * their result unchanged. Reads return 0. Only in a VM that asks for it (`kiln run
 * --debug-exit`): any guest write ends the VM. */
#include <stdlib.h>

#include "kiln/devices.h"
#include "kiln/log.h"

struct debug_exit {
	struct dev_host *host;
	struct log_once logged;
};

static void debug_exit_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = 0;
}

static void debug_exit_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct debug_exit *d = opaque;
	uint32_t v = 0;

	for (uint32_t i = 0; i < len && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	if (log_once_first(&d->logged))
		log_info("guest wrote 0x%x to isa-debug-exit; exit status %u", v, ((v << 1) | 1) & 0xff);
	d->host->request_exit(d->host, (v << 1) | 1);
}

static const struct bus_ops debug_exit_ops = { .read = debug_exit_read, .write = debug_exit_write };

static int debug_exit_create(struct dev_host *host, const void *config, unsigned index,
			     void **state, struct error *e)
{
	const struct debug_exit_config *c = config;
	struct debug_exit *d;
	int ret;

	if (c->iosize != 1 && c->iosize != 2 && c->iosize != 4)
		return error_set(e, ERROR_USAGE, "debug-exit: iosize %u is not 1, 2 or 4", c->iosize);
	d = calloc(1, sizeof(*d));
	if (!d)
		return error_set(e, ERROR_RUNTIME, "debug-exit: out of memory");
	d->host = host;
	ret = device_claim(host->pio, c->iobase, c->iosize, &debug_exit_ops, d, "debug-exit", e);
	if (ret) {
		e->kind = ERROR_USAGE; /* the operator chose a port another device has */
		free(d);
		return ret;
	}
	*state = d;
	return 0;
}

const struct device_class debug_exit_class = {
	.kind = DEVICE_PLATFORM, .name = "debug_exit", .max = 1,
	.create = debug_exit_create, .destroy = free,
};
