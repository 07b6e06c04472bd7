/* SPDX-License-Identifier: Apache-2.0 */
/* net_backend — the host side of a guest NIC: the backends that move Ethernet frames between the
 * virtio-net device and the host (a tap device, or user-mode networking through libslirp), and
 * the per-NIC counters.
 *
 * Owns: the tap file descriptor (IFF_VNET_HDR, TUNSETOFFLOAD) and the slirp instance with its
 * sockets and timers. Both run on kiln's event loop thread only. A backend hands received
 * frames to the device through struct net_rx with no device lock held; the device transmits
 * through net_backend_ops.send() with its lock held, so a backend never delivers from inside
 * send() (slirp queues what it answers there and delivers on the next loop iteration).
 */
#ifndef KILN_NET_BACKEND_H
#define KILN_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/virtio_net.h"

/* Largest Ethernet frame kiln moves: a 64 KiB GSO packet plus its Ethernet header. */
#define NET_MAX_FRAME (65535u + 14u)
/* The virtio-net header (virtio 1.2 §5.1.6: struct virtio_net_hdr with num_buffers, always
 * present with VIRTIO_F_VERSION_1). */
#define NET_HDR_LEN 12u

/* Per-NIC counters: written on the event loop thread, read by anyone (relaxed loads). */
struct net_counters {
	uint64_t rx_packets, rx_bytes, rx_dropped;   /* host -> guest */
	uint64_t tx_packets, tx_bytes, tx_dropped;   /* guest -> host */
};

/* Where a backend delivers received frames: the device. */
struct net_rx {
	/* Offer one frame in @iov[0..@n) (with a NET_HDR_LEN virtio-net header first when the
	 * backend has vnet_hdr). Returns true when the frame was taken (delivered, or dropped and
	 * counted), false when the guest has no receive buffers: the backend keeps the frame and
	 * offers nothing more until rx_resume(). Event loop thread, no device lock held. */
	bool (*deliver)(void *opaque, const struct iovec *iov, int n);
	void *opaque;
};

struct net_backend;

struct net_backend_ops {
	/* Transmit one frame in @iov[0..@n) (virtio-net header first when vnet_hdr). Returns 0,
	 * or -errno when the host refused it (the device counts the drop). Device lock held. */
	int (*send)(struct net_backend *be, const struct iovec *iov, int n);
	/* The guest posted receive buffers after deliver() returned false: offer frames again
	 * (from the event loop, not from this call). Device lock held. */
	void (*rx_resume)(struct net_backend *be);
	/* The driver accepted @features (VIRTIO_NET_F_GUEST_* bits, 0 after a reset): which
	 * offloaded frames (partial checksums, TSO) the guest can take. Returns 0 or -errno. */
	int (*set_offloads)(struct net_backend *be, uint64_t features);
	void (*free)(struct net_backend *be);
};

struct net_backend {
	const struct net_backend_ops *ops;
	bool vnet_hdr;      /* frames carry the virtio-net header: offloads pass through */
	struct net_rx rx;   /* set by the device before the event loop runs */
	struct net_counters stats; /* the NIC's counters: the device's and the backend's drops */
};

/* Open tap interface @name (it must exist: `ip tuntap add NAME mode tap`) with IFF_VNET_HDR
 * and watch it on host's event loop. Returns the backend, or NULL with @e set (ERROR_USAGE
 * when the name is wrong: missing, not a tap, too long, in use). */
struct net_backend *net_tap_open(struct dev_host *host, const char *name, struct error *e);

/* Whether tap interface @name can be opened now (net_tap_open()'s checks, then closed again):
 * 0, or an error code with @e set as net_tap_open() sets it. For front ends that check a NIC
 * when it is configured (Firecracker opens the tap at PUT /network-interfaces). */
int net_tap_check(const char *name, struct error *e) __attribute__((warn_unused_result));

/* User-mode networking (libslirp): network 10.0.2.0/24, gateway and host loopback at
 * 10.0.2.2, DNS forwarder at 10.0.2.3, DHCP from 10.0.2.15, and the port forwards in @cfg.
 * Its sockets and timers run on host's event loop. Returns the backend, or NULL with @e set
 * (e.g. a forwarded host port that is taken). */
struct net_backend *net_user_open(struct dev_host *host, const struct net_config *cfg,
				  struct error *e);

/* Load libslirp, which net_user_open() needs (see kiln/dynlib.h): before the seccomp filters
 * are installed, when the configuration has a user-mode NIC. Returns 0, or -ENOENT with the
 * loader's reason in @err. */
int net_user_library_load(char *err, size_t errlen) __attribute__((warn_unused_result));

/* The backend @cfg asks for: net_tap_open() or net_user_open(). */
struct net_backend *net_backend_open(struct dev_host *host, const struct net_config *cfg,
				     struct error *e);

/* virtio-net over backend @be (taken over: freed with the device, or at once on failure),
 * MAC @mac or, when NULL, 52:54:00:12:34:56 + @index; @name names the NIC in messages.
 * Returns the device, or NULL when out of memory. For tests and fuzzers; VMs make NICs
 * through virtio_net_class. */
struct virtio_dev;
struct guest_mem;
struct virtio_dev *virtio_net_new(const struct guest_mem *mem, struct net_backend *be,
				  const uint8_t mac[6], unsigned index);

#endif
