/* SPDX-License-Identifier: Apache-2.0 */
/* post_port — port 0x80, the POST-code port Linux writes for its I/O delay (outb_p): accepted
 * silently so the io_delay writes neither log nor cost more than the exit itself. */
#include "kiln/devices.h"
#include "kiln/layout.h"

static const struct bus_ops post_port_ops = { 0 }; /* reads see 0xff, writes are dropped */

static int post_port_create(struct dev_host *host, const void *config, unsigned index,
		            void **state, struct error *e)
{
	*state = NULL;
	return device_claim(host->pio, KILN_PORT_POST, 1, &post_port_ops, NULL, "post", e);
}

const struct device_class post_port_class = {
	.kind = DEVICE_PLATFORM, .name = "post_port", .create = post_port_create };
