/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_rng — the entropy device (virtio 1.2 §5.4): every buffer the driver offers is filled
 * from the host's getrandom(), so the guest never waits for entropy. */
#ifndef KILN_VIRTIO_RNG_H
#define KILN_VIRTIO_RNG_H

#include "kiln/devices.h"
#include "kiln/rate_limiter.h"

struct rng_config {
	struct rate_limit limit; /* bytes handed to the guest, requests; all zero: no limit */
};

/* The class: create() takes a struct rng_config, or NULL for no limit; one instance per VM.
 * Counters: entropy_bytes, entropy_event_count, entropy_rate_limiter_throttled. */
extern const struct device_class virtio_rng_class;

#endif
