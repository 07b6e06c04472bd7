/* virtio_driver — the driver side of device initialisation (virtio 1.2 §3.1.1) for queue 0,
 * shared by the unit tests and the fuzz targets: ACKNOWLEDGE|DRIVER, @features, FEATURES_OK,
 * queue 0 at @desc/@avail/@used with @qsize entries, DRIVER_OK. Returns the status read back
 * (without FEATURES_OK when the device refused the features, and then stops there). */
#ifndef KILN_TEST_VIRTIO_DRIVER_H
#define KILN_TEST_VIRTIO_DRIVER_H

#include <linux/virtio_config.h>

#include "kiln/virtio.h"

static inline uint8_t test_driver_init(struct virtio_dev *dev, uint64_t features, uint16_t qsize,
				       uint64_t desc, uint64_t avail, uint64_t used)
{
	virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	virtio_dev_set_driver_features(dev, 0, (uint32_t)features);
	virtio_dev_set_driver_features(dev, 1, (uint32_t)(features >> 32));
	virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(dev->status & VIRTIO_CONFIG_S_FEATURES_OK))
		return dev->status;
	dev->q[0].size = qsize;
	dev->q[0].desc_gpa = desc;
	dev->q[0].avail_gpa = avail;
	dev->q[0].used_gpa = used;
	virtio_dev_set_queue_ready(dev, 0, true);
	virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
	return dev->status;
}

#endif
