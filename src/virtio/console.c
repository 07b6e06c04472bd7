/* SPDX-License-Identifier: Apache-2.0 */
/* console — virtio-console (virtio 1.2 §5.3) as a second console, hvc0 in a Linux guest, see
 * include/kiln/virtio_console.h; its host side (a Unix socket or a file) is
 * src/backends/console_host.c.
 *
 * One port, no multiport and no size feature: queue 0 carries bytes to the guest, queue 1
 * bytes from it. Bytes to the guest are read from the client straight into the guest's
 * buffers, only while the guest has buffers; output with nobody connected, or that the client
 * cannot take at once, is dropped and counted (a console, like a serial line, does not hold a
 * guest back). Everything runs on kiln's event loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "kiln/console_host.h"
#include "kiln/devices.h"
#include "kiln/pci.h"
#include "kiln/virtio.h"
#include "kiln/virtio_console.h"

#define CONS_QUEUE_SIZE 64
#define CONS_MAX_WRITE (64u << 10)  /* output taken per buffer; the rest is dropped */
#define RXQ 0
#define TXQ 1

struct cons {
	struct virtio_dev dev;
	struct console_host *hostside;
	bool rx_waiting;          /* the guest has no receive buffers: wait for its kick */
	struct virtq_chain chain;
	uint64_t dropped;
	struct log_once drop;
};

static struct cons *to_cons(struct virtio_dev *dev) { return dev->opaque; }

static void drop_output(struct cons *c, uint64_t bytes)
{
	c->dropped += bytes;
	if (log_once_first(&c->drop))
		log_info("virtio-console: output with no reader dropped (further drops not logged)");
}

/* Guest output (§5.3.6.1): to the client or the file. */
static uint32_t cons_tx(struct virtio_dev *dev, const struct virtq_chain *ch)
{
	struct cons *c = to_cons(dev);
	struct iovec iov[VIRTQ_CHAIN_MAX];
	uint64_t len = ch->out_len < CONS_MAX_WRITE ? ch->out_len : CONS_MAX_WRITE;
	size_t done;

	if (!len)
		return 0;
	done = console_host_write(c->hostside, iov, virtq_chain_iov(ch, false, 0, len, iov));
	if (done < ch->out_len)
		drop_output(c, ch->out_len - done);
	return 0;
}

/* Whether the guest takes input now. */
static bool takes_input(const struct cons *c)
{
	return !c->rx_waiting && virtio_dev_live(&c->dev) && c->dev.q[RXQ].ready;
}

/* Client input into the guest's receive buffers while both have something, VIRTIO_BUDGET
 * buffers per turn of the event loop. Loop thread, lock held. */
static void cons_rx(struct cons *c)
{
	struct virtq *q = &c->dev.q[RXQ];
	unsigned budget = VIRTIO_BUDGET;

	while (takes_input(c)) {
		struct iovec iov[VIRTQ_CHAIN_MAX];
		int ret = virtq_pop(c->dev.mem, q, &c->chain);
		ssize_t got;

		if (ret < 0) {
			virtio_dev_needs_reset(&c->dev, "malformed receive descriptor chain");
			break;
		}
		if (ret == 0) {
			if (virtq_arm_notify(q))
				continue;
			c->rx_waiting = true;
			break;
		}
		if (!c->chain.in_len) {
			virtio_dev_needs_reset(&c->dev, "receive buffer without device-writable bytes");
			break;
		}
		got = console_host_read(c->hostside, iov,
					virtq_chain_iov(&c->chain, true, 0, c->chain.in_len, iov));
		if (got <= 0) {
			q->last_avail--; /* nothing read: the buffer goes back */
			break;
		}
		virtq_push(q, c->chain.head, (uint32_t)got);
		if (--budget == 0 && c->dev.transport.requeue) {
			c->rx_waiting = true; /* until the requeued notify */
			c->dev.transport.requeue(&c->dev, RXQ);
		}
	}
	virtio_dev_notify_if_needed(&c->dev, RXQ);
	console_host_want_input(c->hostside, takes_input(c));
}

static void cons_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct cons *c = to_cons(dev);

	if (q == TXQ)
		virtio_dev_process(dev, TXQ, cons_tx);
	else
		c->rx_waiting = false;
	cons_rx(c);
}

/* The host side has input for the guest. */
static void host_input(void *opaque)
{
	struct cons *c = opaque;

	pthread_mutex_lock(&c->dev.lock);
	cons_rx(c);
	pthread_mutex_unlock(&c->dev.lock);
}

/* On the vCPU thread that wrote the status: the next queue notification asks for input again. */
static void cons_reset(struct virtio_dev *dev) { to_cons(dev)->rx_waiting = false; }

static void cons_free(struct virtio_dev *dev)
{
	struct cons *c = to_cons(dev);

	virtio_dev_destroy(dev);
	console_host_free(c->hostside);
	free(c);
}

static const struct virtio_dev_ops console_ops = {
	.device_id = VIRTIO_ID_CONSOLE,
	.nr_queues = 2,
	.queue_size = CONS_QUEUE_SIZE,
	.pci_class = PCI_CLASS_CODE_UNCLASSIFIED,
	.config_len = 0,
	.queue_notify = cons_queue_notify,
	.reset = cons_reset,
	.free = cons_free,
};

static int cons_create(struct dev_host *host, const void *config, unsigned index, void **state,
		       struct error *e)
{
	struct cons *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return error_set(e, ERROR_RUNTIME, "console: out of memory");
	ret = virtio_dev_init(&c->dev, &console_ops, c, host->mem);
	if (ret) {
		free(c);
		return error_set(e, ERROR_RUNTIME, "console: %s", strerror(-ret));
	}
	ret = console_host_open(host, config,
				&(struct console_host_cb){ .input = host_input, .opaque = c },
				&c->hostside, e);
	if (ret) {
		virtio_dev_destroy(&c->dev);
		free(c);
		return ret;
	}
	*state = &c->dev;
	return 0;
}

const struct device_class virtio_console_class = {
	.name = "console",
	.kind = DEVICE_VIRTIO,
	.max = 1,
	.create = cons_create,
};
