/* SPDX-License-Identifier: Apache-2.0 */
/* tap — the tap backend of virtio-net, see include/kiln/net_backend.h.
 *
 * The tap is opened with IFF_VNET_HDR and a 12-byte header (TUNSETVNETHDRSZ), so the guest's
 * checksum and segmentation offloads pass through the host kernel unchanged: a 64 KiB TSO
 * frame is one writev() here, and the kernel segments it (or a bridge forwards it whole).
 * Received frames are read into one bounce buffer and offered to the device; when the guest
 * has no buffers the frame is kept and the descriptor is paused until it posts some.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/net_backend.h"

#define TAP_BUDGET 64u /* frames read per wake-up, so one busy NIC does not starve the loop */

struct tap {
	struct net_backend be;
	struct dev_host *host;
	int fd;
	bool paused;
	bool broken;       /* reading failed for good */
	size_t pending;    /* bytes of a frame in buf that the guest had no room for */
	struct loop_timer retry; /* offers the pending frame again after rx_resume() */
	char name[IFNAMSIZ];
	uint8_t buf[NET_HDR_LEN + NET_MAX_FRAME];
};

static struct tap *to_tap(struct net_backend *be) { return (struct tap *)be; }

static void tap_readable(void *opaque, unsigned events)
{
	struct tap *t = opaque;

	for (unsigned i = 0; i < TAP_BUDGET; i++) {
		if (!t->pending) {
			ssize_t n = read(t->fd, t->buf, sizeof(t->buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0) {
				/* e.g. the interface was deleted: the descriptor stays "ready" with an
				 * error forever, so stop watching it rather than spin. */
				log_warn("tap %s: read: %s; the guest receives nothing more",
					 t->name, strerror(errno));
				t->broken = true;
				if (loop_set_events(t->host->loop, t->fd, 0))
					loop_unwatch(t->host->loop, t->fd);
				return;
			}
			if ((size_t)n <= NET_HDR_LEN)
				continue;
			t->pending = (size_t)n;
		}
		if (!t->be.rx.deliver(t->be.rx.opaque, &(struct iovec){ t->buf, t->pending }, 1)) {
			t->paused = loop_set_events(t->host->loop, t->fd, 0) == 0;
			return;
		}
		t->pending = 0;
	}
}

static int tap_send(struct net_backend *be, const struct iovec *iov, int n)
{
	ssize_t ret;

	do
		ret = writev(to_tap(be)->fd, iov, n);
	while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : 0;
}

/* The frame held back is offered again even when nothing more arrives on the tap (reading
 * resumes level-triggered, which says nothing about the frame already read). */
static void tap_retry(void *opaque)
{
	tap_readable(opaque, LOOP_IN);
}

static void tap_rx_resume(struct net_backend *be)
{
	struct tap *t = to_tap(be);

	if (t->paused && !t->broken && loop_set_events(t->host->loop, t->fd, LOOP_IN) == 0) {
		t->paused = false;
		if (t->pending)
			loop_timer_arm(&t->retry, 0, 0);
	}
}

static int tap_set_offloads(struct net_backend *be, uint64_t features)
{
	unsigned flags = 0;

	if (features & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
		flags |= TUN_F_CSUM;
		if (features & (1ull << VIRTIO_NET_F_GUEST_TSO4))
			flags |= TUN_F_TSO4;
		if (features & (1ull << VIRTIO_NET_F_GUEST_TSO6))
			flags |= TUN_F_TSO6;
		if (features & (1ull << VIRTIO_NET_F_GUEST_ECN))
			flags |= TUN_F_TSO_ECN;
	}
	return ioctl(to_tap(be)->fd, TUNSETOFFLOAD, flags) < 0 ? -errno : 0;
}

static void tap_free(struct net_backend *be)
{
	struct tap *t = to_tap(be);

	loop_timer_cancel(&t->retry);
	if (t->fd >= 0) {
		loop_unwatch(t->host->loop, t->fd);
		close(t->fd);
	}
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.rx_resume = tap_rx_resume,
	.set_offloads = tap_set_offloads,
	.free = tap_free,
};

/* Attach to tap interface @name: a non-blocking descriptor with IFF_VNET_HDR, or -1 with @e
 * naming the interface and what is wrong. */
static int tap_attach(const char *name, struct error *e)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd, err;

	if (!name[0] || strlen(name) >= IFNAMSIZ) {
		error_set(e, ERROR_USAGE, "tap \"%s\": an interface name has 1 to %d characters", name,
			  IFNAMSIZ - 1);
		return -1;
	}
	if (!if_nametoindex(name)) {
		error_set(e, ERROR_USAGE, "tap %s: no such network interface (create it first: "
			  "ip tuntap add %s mode tap)", name, name);
		return -1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		error_set(e, ERROR_RUNTIME, "tap %s: /dev/net/tun: %s", name, strerror(errno));
		return -1;
	}
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = errno;
		error_set(e, err == EINVAL || err == EBUSY ? ERROR_USAGE : ERROR_RUNTIME, "tap %s: %s",
			  name, err == EINVAL ? "not a tap device (or a multiqueue one)" :
			  err == EBUSY ? "already in use by another process" : strerror(err));
		close(fd);
		return -1;
	}
	return fd;
}

int net_tap_check(const char *name, struct error *e)
{
	int fd = tap_attach(name, e);

	if (fd < 0)
		return error_code(e);
	close(fd);
	return 0;
}

struct net_backend *net_tap_open(struct dev_host *host, const char *name, struct error *e)
{
	int hdr_len = NET_HDR_LEN, ret;
	struct tap *t = calloc(1, sizeof(*t));

	if (!t) {
		error_set(e, ERROR_RUNTIME, "tap %s: out of memory", name);
		return NULL;
	}
	t->be = (struct net_backend){ .ops = &tap_ops, .vnet_hdr = true };
	t->host = host;
	loop_timer_init(host->loop, &t->retry, host, tap_retry, t);
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->fd = tap_attach(name, e);
	if (t->fd < 0)
		goto fail;
	if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdr_len) < 0 || ioctl(t->fd, TUNSETOFFLOAD, 0) < 0) {
		error_set(e, ERROR_RUNTIME, "tap %s: virtio-net header: %s", name, strerror(errno));
		goto fail;
	}
	ret = loop_watch(host->loop, host, t->fd, LOOP_IN, tap_readable, t);
	if (ret) {
		error_set(e, ERROR_RUNTIME, "tap %s: event loop: %s", name, strerror(-ret));
		goto fail;
	}
	return &t->be;
fail:
	tap_free(&t->be);
	return NULL;
}
