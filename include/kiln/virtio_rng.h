/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_rng — the entropy device (virtio 1.2 §5.4): every buffer the driver offers is filled
 * from the host's getrandom(), so the guest never waits for entropy. */
#ifndef KILN_VIRTIO_RNG_H
#define KILN_VIRTIO_RNG_H

#include "kiln/devices.h"

/* The class: create() takes no configuration (NULL); one instance per VM. */
extern const struct device_class virtio_rng_class;

#endif
