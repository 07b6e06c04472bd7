/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_net — virtio-net (virtio 1.2 §5.1): a NIC's configuration, its device class and the
 * syntax users write MAC addresses and port forwards in.
 *
 * Owns: struct net_config, which every front end fills (--net, Firecracker's
 * network-interfaces), and the parsers shared by them. The device is src/virtio/net.c; the host
 * side (a tap device, or user-mode networking) is include/kiln/net_backend.h.
 */
#ifndef KILN_VIRTIO_NET_H
#define KILN_VIRTIO_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/devices.h"
#include "kiln/rate_limiter.h"

#define NET_MAX_HOSTFWD 8

enum net_kind { NET_TAP, NET_USER };

/* Something between a NIC and its backend (Firecracker's MMDS): wrap() gets the opened
 * backend and returns the one the device uses, which owns @inner; or NULL with @e set
 * (@inner freed). */
struct net_backend;
struct net_filter {
	struct net_backend *(*wrap)(void *opaque, struct dev_host *host, struct net_backend *inner,
				    struct error *e);
	void *opaque;
};

/* hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (QEMU's syntax). */
struct net_hostfwd {
	bool udp;
	struct in_addr host_addr;   /* default 127.0.0.1 */
	uint16_t host_port;
	struct in_addr guest_addr;  /* default the first DHCP address, 10.0.2.15 */
	uint16_t guest_port;
	const char *text;           /* as the user wrote it, for messages */
};

/* A NIC as the user configured it. */
struct net_config {
	enum net_kind kind;
	const char *tap;            /* NET_TAP: the interface name */
	const char *id;             /* the interface's name (Firecracker's iface_id), or NULL */
	uint8_t mac[6];
	bool mac_set;               /* else 52:54:00:12:34:56 + the NIC's index */
	struct net_filter filter;   /* wrap() NULL: none */
	unsigned nr_hostfwd;        /* NET_USER only */
	struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
	bool restrict_guest;        /* NET_USER: restrict=on, only hostfwd (QEMU's option) */
	bool no_host_loopback;      /* NET_USER: host-loopback=off, 10.0.2.2 is not the host's lo */
	unsigned max_flows;         /* NET_USER: the guest's flows (host sockets) at once; 0: 512 */
	uint16_t mtu;               /* offered to the guest (VIRTIO_NET_F_MTU), 68..65535; 0: none */
	struct rate_limit rx_limit; /* frames to the guest: bytes (without the virtio header), frames */
	struct rate_limit tx_limit; /* frames from the guest, likewise; all zero: no limit */
};

/* The class: create() takes a struct net_config (the backend is opened then: a tap that does
 * not exist is the user's error). Counters: rx_packets_count, rx_bytes_count,
 * rx_dropped_count, tx_packets_count, tx_bytes_count, tx_dropped_count. */
extern const struct device_class virtio_net_class;

/* Replace NIC @state's receive (@rx) and transmit (@tx) rate-limit buckets named in @rx_buckets
 * and @tx_buckets (RATE_LIMIT_* bits; 0 keeps that direction as it is). The new buckets start
 * full; frames waiting on the old limits go at once. Event loop thread. */
void virtio_net_set_limits(void *state, const struct rate_limit *rx, unsigned rx_buckets,
			   const struct rate_limit *tx, unsigned tx_buckets);

/* Parse a MAC address "52:54:00:12:34:56" into @mac; a multicast address is refused.
 * Returns 0 or -EINVAL. */
int net_parse_mac(const char *text, uint8_t mac[6]) __attribute__((warn_unused_result));

/* Parse a hostfwd rule (see struct net_hostfwd) into @fwd; @fwd->text = @text.
 * Returns 0 or -EINVAL. */
int net_parse_hostfwd(const char *text, struct net_hostfwd *fwd) __attribute__((warn_unused_result));

#endif
