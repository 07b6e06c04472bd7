/* net — the host side of a guest NIC: the backends that move Ethernet frames between the
 * virtio-net device and the host (a tap device, or user-mode networking through libslirp), the
 * NIC configuration the command line builds, and the per-NIC counters.
 *
 * Owns: the tap file descriptor (IFF_VNET_HDR, TUNSETOFFLOAD) and the slirp instance with its
 * sockets and timers. Both run on kiln's event loop thread only. A backend hands received
 * frames to the device through struct net_rx with no device lock held; the device transmits
 * through net_backend_ops.send() with its lock held, so a backend never delivers from inside
 * send() (slirp queues what it answers there and delivers on the next loop iteration).
 */
#ifndef KILN_NET_H
#define KILN_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct dev_host;

#define NET_MAX_HOSTFWD 8
/* Largest Ethernet frame kiln moves: a 64 KiB GSO packet plus its Ethernet header. */
#define NET_MAX_FRAME (65535u + 14u)
/* The virtio-net header (virtio 1.2 §5.1.6: struct virtio_net_hdr with num_buffers, always
 * present with VIRTIO_F_VERSION_1). */
#define NET_HDR_LEN 12u

enum net_kind { NET_TAP, NET_USER };

/* Something between a NIC and its backend (Firecracker's MMDS): wrap() gets the opened
 * backend and returns the one the device uses, which owns @inner; or NULL with a message in
 * @err (@inner freed). */
struct net_backend;
struct net_filter {
	struct net_backend *(*wrap)(void *opaque, struct dev_host *host, struct net_backend *inner,
				    char *err, size_t errlen);
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

/* A NIC as the user configured it (--net tap=NAME|user[,mac=..][,hostfwd=..]). */
struct net_config {
	enum net_kind kind;
	const char *tap;            /* NET_TAP: the interface name */
	const char *id;             /* the interface's name in metrics (Firecracker's iface_id), or NULL */
	uint8_t mac[6];
	bool mac_set;               /* else 52:54:00:12:34:56 + the NIC's index */
	struct net_filter filter;   /* wrap() NULL: none */
	unsigned nr_hostfwd;        /* NET_USER only */
	struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
};

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
 * and watch it on host's event loop. Returns the backend, or NULL with a one-line reason in
 * @err (*usage true when the name is wrong: missing, not a tap, too long). */
struct net_backend *net_tap_open(struct dev_host *host, const char *name, bool *usage, char *err,
				 size_t errlen);

/* User-mode networking (libslirp): network 10.0.2.0/24, gateway and host loopback at
 * 10.0.2.2, DNS forwarder at 10.0.2.3, DHCP from 10.0.2.15, and the port forwards in @cfg.
 * Its sockets and timers run on host's event loop. Returns the backend, or NULL with a reason
 * in @err (*usage false: e.g. a forwarded host port that is taken). */
struct net_backend *net_user_open(struct dev_host *host, const struct net_config *cfg, bool *usage,
				  char *err, size_t errlen);

/* The backend @cfg asks for: net_tap_open() or net_user_open(). */
struct net_backend *net_backend_open(struct dev_host *host, const struct net_config *cfg,
				     bool *usage, char *err, size_t errlen);

/* Parse a MAC address "52:54:00:12:34:56" into @mac; a multicast address is refused.
 * Returns 0 or -EINVAL. */
int net_parse_mac(const char *text, uint8_t mac[6]) __attribute__((warn_unused_result));

/* Parse a hostfwd rule (see struct net_hostfwd) into @fwd; @fwd->text = @text.
 * Returns 0 or -EINVAL. */
int net_parse_hostfwd(const char *text, struct net_hostfwd *fwd) __attribute__((warn_unused_result));

#endif
