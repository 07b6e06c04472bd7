/* SPDX-License-Identifier: Apache-2.0 */
/* kick — the driver-to-device notifications every transport shares (virtio 1.2 §2.9): one
 * eventfd per queue, signalled by KVM (KVM_IOEVENTFD) when the guest writes the queue's index to
 * its notify address, and served on kiln's event loop. See include/kiln/virtio_transport.h. */
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kiln/devices.h"
#include "kiln/virtio.h"
#include "kiln/virtio_transport.h"

static void kick_ready(void *opaque, unsigned events)
{
	struct virtio_kick *k = opaque;
	uint64_t n;

	if (read(k->fd, &n, sizeof(n)) == sizeof(n))
		virtio_dev_queue_notify(k->dev, k->q);
}

int virtio_kicks_create(struct virtio_kick *kicks, struct virtio_dev *dev, struct dev_host *host,
			uint64_t addr, uint64_t stride, uint32_t len)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		kicks[i] = (struct virtio_kick){ .dev = dev, .q = i, .fd = -1, .loop = host->loop };
	for (unsigned i = 0; i < dev->ops->nr_queues; i++) {
		int ret;

		kicks[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (kicks[i].fd < 0)
			return -errno;
		ret = loop_watch(host->loop, host, kicks[i].fd, LOOP_IN, kick_ready, &kicks[i]);
		if (!ret)
			ret = host->ioeventfd(host, true, addr + i * stride, len, i, kicks[i].fd);
		if (ret)
			return ret;
	}
	return 0;
}

void virtio_kicks_destroy(struct virtio_kick *kicks)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (kicks[i].fd < 0)
			continue;
		loop_unwatch(kicks[i].loop, kicks[i].fd);
		close(kicks[i].fd);
	}
}

int virtio_kicks_move(struct virtio_kick *kicks, struct dev_host *host, uint64_t addr,
		      uint64_t new_addr, uint64_t stride, uint32_t len)
{
	int first = 0;

	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		int ret;

		if (kicks[i].fd < 0)
			continue;
		ret = host->ioeventfd_remove(host, true, addr + i * stride, len, i, kicks[i].fd);
		if (!ret)
			ret = host->ioeventfd(host, true, new_addr + i * stride, len, i, kicks[i].fd);
		if (ret && !first)
			first = ret;
	}
	return first;
}

bool virtio_kick(struct virtio_kick *kicks, unsigned q)
{
	uint64_t one = 1;

	if (q >= VIRTIO_MAX_QUEUES || kicks[q].fd < 0)
		return false;
	return write(kicks[q].fd, &one, sizeof(one)) == sizeof(one);
}
