/* SPDX-License-Identifier: Apache-2.0 */
/* rng — virtio-rng / entropy device (virtio 1.2 §5.4), see include/kiln/virtio_rng.h: every
 * device-writable buffer the driver offers is filled from getrandom(), so the guest never waits
 * for entropy. A chain gets at most RNG_MAX_CHAIN bytes per request. */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <linux/virtio_ids.h>

#include "kiln/devices.h"
#include "kiln/pci.h"
#include "kiln/virtio.h"
#include "kiln/virtio_rng.h"

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_CHAIN 65536u

struct rng {
	struct virtio_dev dev;
};

static uint32_t rng_serve(struct virtio_dev *dev, const struct virtq_chain *c)
{
	struct iovec iov[VIRTQ_CHAIN_MAX];
	uint64_t want = c->in_len < RNG_MAX_CHAIN ? c->in_len : RNG_MAX_CHAIN;
	uint32_t done = 0;
	int n = virtq_chain_iov(c, true, 0, want, iov);

	for (int i = 0; i < n; i++) {
		for (size_t off = 0; off < iov[i].iov_len;) {
			ssize_t got = getrandom((uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off, 0);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return done;
			off += (size_t)got;
			done += (uint32_t)got;
		}
	}
	return done;
}

static void rng_queue_notify(struct virtio_dev *dev, unsigned q)
{
	virtio_dev_process(dev, q, rng_serve);
}

static void rng_free(struct virtio_dev *dev)
{
	virtio_dev_destroy(dev);
	free(dev->opaque);
}

static const struct virtio_dev_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG,
	.nr_queues = 1,
	.queue_size = RNG_QUEUE_SIZE,
	.pci_class = PCI_CLASS_CODE_UNCLASSIFIED,
	.queue_notify = rng_queue_notify,
	.free = rng_free,
};

static int rng_create(struct dev_host *host, const void *config, unsigned index, void **state,
		      struct error *e)
{
	struct rng *r = calloc(1, sizeof(*r));

	if (!r || virtio_dev_init(&r->dev, &rng_ops, r, host->mem)) {
		free(r);
		return error_set(e, ERROR_RUNTIME, "rng: out of memory");
	}
	*state = &r->dev;
	return 0;
}

const struct device_class virtio_rng_class = {
	.name = "rng",
	.kind = DEVICE_VIRTIO,
	.max = 1,
	.create = rng_create,
};
