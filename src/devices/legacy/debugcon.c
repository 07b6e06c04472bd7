/* SPDX-License-Identifier: Apache-2.0 */
/* debugcon — QEMU's isa-debugcon at port KILN_PORT_DEBUGCON (hw/char/debugcon.c, QEMU 7.2),
 * where OVMF writes its DEBUG log: each byte written is a character, and reads return 0xe9,
 * the value by which firmware (OVMF's PlatformDebugLibIoPort) knows the port is there. kiln
 * logs the output line by line at debug level (`--log-level debug`), control characters as
 * '.', and stops after DEBUGCON_MAX_BYTES (logged once), so a guest cannot fill the log. */
#include <stdlib.h>

#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"

#define DEBUGCON_READBACK 0xe9
#define DEBUGCON_LINE 200
#define DEBUGCON_MAX_BYTES (16u << 20)

struct debugcon {
	pthread_mutex_t lock;
	char line[DEBUGCON_LINE + 1];
	unsigned len;
	uint64_t total;     /* bytes the guest wrote */
	struct log_once capped;
};

static void debugcon_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = DEBUGCON_READBACK;
}

static void flush_line(struct debugcon *d)
{
	d->line[d->len] = 0;
	log_debug("firmware: %s", d->line);
	d->len = 0;
}

static void debugcon_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct debugcon *d = opaque;

	if (off != 0 || !log_enabled(LOG_DEBUG))
		return;
	pthread_mutex_lock(&d->lock);
	d->total += 1;
	if (d->total > DEBUGCON_MAX_BYTES) {
		if (log_once_first(&d->capped))
			log_debug("firmware: debug console output beyond %u bytes is dropped",
				  DEBUGCON_MAX_BYTES);
	} else if (data[0] == '\n') {
		flush_line(d);
	} else if (data[0] != '\r') {
		d->line[d->len++] = data[0] >= 0x20 && data[0] < 0x7f ? (char)data[0] : '.';
		if (d->len == DEBUGCON_LINE)
			flush_line(d);
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct bus_ops debugcon_ops = { .read = debugcon_read, .write = debugcon_write };

static void debugcon_destroy(void *state)
{
	struct debugcon *d = state;

	if (d->len)
		flush_line(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int debugcon_create(struct dev_host *host, const void *config, unsigned index,
			   void **state, struct error *e)
{
	struct debugcon *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return error_set(e, ERROR_RUNTIME, "debugcon: out of memory");
	pthread_mutex_init(&d->lock, NULL);
	ret = device_claim(host->pio, KILN_PORT_DEBUGCON, 1, &debugcon_ops, d, "debugcon", e);
	if (ret) {
		debugcon_destroy(d);
		return ret;
	}
	*state = d;
	return 0;
}

const struct device_class debugcon_class = {
	.kind = DEVICE_PLATFORM, .name = "debugcon", .max = 1,
	.create = debugcon_create, .destroy = debugcon_destroy,
};
