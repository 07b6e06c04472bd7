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
	struct rate_limiter limiter;
	uint64_t bytes, requests; /* served so far, under dev.lock */
};

static uint32_t rng_serve(struct virtio_dev *dev, const struct virtq_chain *c)
{
	struct iovec iov[VIRTQ_CHAIN_MAX];
	struct rng *r = dev->opaque;
	uint64_t want = c->in_len < RNG_MAX_CHAIN ? c->in_len : RNG_MAX_CHAIN;
	uint32_t done = 0;
	int n;

	if (!rate_limiter_consume(&r->limiter, want, 1))
		return VIRTQ_THROTTLED;
	n = virtq_chain_iov(c, true, 0, want, iov);
	r->requests++;

	for (int i = 0; i < n; i++) {
		for (size_t off = 0; off < iov[i].iov_len;) {
			ssize_t got = getrandom((uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off, 0);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return done;
			off += (size_t)got;
			done += (uint32_t)got;
			r->bytes += (uint64_t)got;
		}
	}
	return done;
}

/* The rate limiter can pay for the request it refused. */
static void rng_unblocked(void *opaque)
{
	struct rng *r = opaque;

	r->dev.transport.requeue(&r->dev, 0);
}

static unsigned rng_counters(void *state, struct device_counter *out, unsigned max)
{
	struct rng *r = ((struct virtio_dev *)state)->opaque;
	struct device_counter all[3];

	pthread_mutex_lock(&r->dev.lock);
	all[0] = (struct device_counter){ "entropy_bytes", r->bytes };
	all[1] = (struct device_counter){ "entropy_event_count", r->requests };
	all[2] = (struct device_counter){ "entropy_rate_limiter_throttled", r->limiter.throttled };
	pthread_mutex_unlock(&r->dev.lock);
	return device_counters_copy(out, max, all, 3);
}

static void rng_queue_notify(struct virtio_dev *dev, unsigned q)
{
	virtio_dev_process(dev, q, rng_serve);
}

static void rng_free(struct virtio_dev *dev)
{
	rate_limiter_cancel(&((struct rng *)dev->opaque)->limiter);
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
	const struct rng_config *cfg = config;
	struct rng *r = calloc(1, sizeof(*r));

	if (!r || virtio_dev_init(&r->dev, &rng_ops, r, host->mem)) {
		free(r);
		return error_set(e, ERROR_RUNTIME, "rng: out of memory");
	}
	rate_limiter_init(&r->limiter, cfg ? &cfg->limit : &(struct rate_limit){ 0 }, host->loop,
			  host, rng_unblocked, r);
	*state = &r->dev;
	return 0;
}

const struct device_class virtio_rng_class = {
	.name = "rng",
	.kind = DEVICE_VIRTIO,
	.max = 1,
	.create = rng_create,
	.counters = rng_counters,
};
