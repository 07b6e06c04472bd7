/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_driver — the driver side of device initialisation (virtio 1.2 §3.1.1), shared by the
 * unit tests and the fuzz targets. */
#ifndef KILN_TEST_VIRTIO_DRIVER_H
#define KILN_TEST_VIRTIO_DRIVER_H

#include <linux/virtio_config.h>

#include "kiln/virtio.h"

/* ACKNOWLEDGE|DRIVER, @features, FEATURES_OK. Returns false when the device refused them. */
static inline bool test_driver_features(struct virtio_dev *dev, uint64_t features)
{
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	virtio_dev_set_driver_features(dev, 0, (uint32_t)features);
	virtio_dev_set_driver_features(dev, 1, (uint32_t)(features >> 32));
	virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_FEATURES_OK);
	return dev->status & VIRTIO_CONFIG_S_FEATURES_OK;
}

/* Queue @q with @qsize entries at @desc/@avail/@used, enabled. */
static inline void test_driver_queue(struct virtio_dev *dev, unsigned q, uint16_t qsize,
				     uint64_t desc, uint64_t avail, uint64_t used)
{
	dev->q[q].size = qsize;
	dev->q[q].desc_gpa = desc;
	dev->q[q].avail_gpa = avail;
	dev->q[q].used_gpa = used;
	virtio_dev_set_queue_ready(dev, q, true);
}

/* Features, queue 0, DRIVER_OK. Returns the status read back (without FEATURES_OK when the
 * device refused the features, and then stops there). */
static inline uint8_t test_driver_init(struct virtio_dev *dev, uint64_t features, uint16_t qsize,
				       uint64_t desc, uint64_t avail, uint64_t used)
{
	if (!test_driver_features(dev, features))
		return dev->status;
	test_driver_queue(dev, 0, qsize, desc, avail, used);
	virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	return dev->status;
}

#endif
