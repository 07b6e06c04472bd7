/* SPDX-License-Identifier: Apache-2.0 */
/* net — virtio-net (virtio 1.2 §5.1), see include/kiln/virtio.h.
 *
 * Queue 0 receives, queue 1 transmits; there is no control queue. Every frame carries the
 * 12-byte virtio-net header (§5.1.6). With a tap backend the header passes through to the host
 * kernel, so checksum offload and TSO/ECN in both directions come for free; with user-mode
 * networking (no header on the host side) those features are not offered and the header is
 * made here. Received frames spread over several buffers with VIRTIO_NET_F_MRG_RXBUF
 * (§5.1.6.4): chains are popped until the frame fits, and returned together so the driver never
 * sees part of a frame; without enough buffers the chains go back to the ring and the backend
 * waits for the driver's next notification. Transmit and receive both run on kiln's event
 * loop. Frames the guest sends that are too short or too long, and frames the host refuses,
 * are dropped and counted.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_ether.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "kiln/net_backend.h"
#include "kiln/pci.h"
#include "kiln/virtio.h"
#include "kiln/virtio_net.h"
#include "kiln/vm_config.h"

#define NET_QUEUE_SIZE 256
_Static_assert(NET_HDR_LEN == sizeof(struct virtio_net_hdr_mrg_rxbuf), "virtio-net header size");
#define RXQ 0
#define TXQ 1
#define BIT(f) (1ull << (f))
#define NET_OFFLOADS (BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM) |                  \
		      BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |             \
		      BIT(VIRTIO_NET_F_GUEST_ECN) | BIT(VIRTIO_NET_F_HOST_TSO4) |               \
		      BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN))

struct net {
	struct virtio_dev dev;
	struct net_backend *be;
	unsigned index;
	char name[80];                 /* "net0" or "net \"eth0\"", for messages */
	struct virtio_net_config config;
	struct log_once bad_frame, offloads_refused;
	struct virtq_chain chain;      /* receive scratch, off the stack */
	struct vring_used_elem used[NET_QUEUE_SIZE];
	struct rate_limiter rx_limiter, tx_limiter; /* loop thread, under dev.lock */
};

static struct net *to_net(struct virtio_dev *dev) { return dev->opaque; }

static void net_read_config(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, (const uint8_t *)&to_net(dev)->config + off, len);
}

/* Write @len bytes of the frame as the guest sees it — @pre zero bytes (the header kiln makes
 * for a backend without one), then @iov — starting @off bytes in, into @c's buffers. */
static void copy_frame(const struct virtq_chain *c, const struct iovec *iov, int n, size_t pre,
		       size_t off, size_t len)
{
	static const uint8_t zero[NET_HDR_LEN];
	size_t dst = 0;

	if (off < pre) {
		size_t k = pre - off < len ? pre - off : len;

		virtq_chain_write(c, 0, zero + off, k);
		dst = k;
		len -= k;
		off = pre;
	}
	off -= pre;
	for (int i = 0; i < n && len; i++) {
		size_t k;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		k = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		virtq_chain_write(c, dst, (const uint8_t *)iov[i].iov_base + off, k);
		dst += k;
		len -= k;
		off = 0;
	}
}

/* Place one frame of @total bytes (header included) in the receive queue. Returns false when
 * the queue has too few buffers (nothing consumed), true when the frame was delivered or
 * dropped. Lock held. */
static bool rx_frame(struct net *nt, const struct iovec *iov, int n, size_t pre, size_t total)
{
	struct virtq *q = &nt->dev.q[RXQ];
	bool mrg = nt->dev.driver_features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	struct iovec num_buffers[2];
	unsigned nr_used = 0;
	size_t done = 0;

	while (done < total) {
		int ret = virtq_pop(nt->dev.mem, q, &nt->chain);
		size_t step;

		if (ret < 0) {
			virtio_dev_needs_reset(&nt->dev, "malformed receive descriptor chain");
			return true;
		}
		if (ret == 0) {
			/* Ask for a kick when the driver adds buffers beyond these, then give every
			 * chain back, unless some arrived meanwhile. */
			if (virtq_arm_notify(q))
				continue;
			q->last_avail -= (uint16_t)nr_used;
			return false;
		}
		if (nr_used == NET_QUEUE_SIZE) { /* buffers too small to ever hold this frame */
			q->last_avail -= (uint16_t)(nr_used + 1);
			goto drop;
		}
		if (nr_used == 0 && virtq_chain_iov(&nt->chain, true, 10, 2, num_buffers) < 0) {
			virtio_dev_needs_reset(&nt->dev, "receive buffer smaller than the virtio-net header");
			return true;
		}
		step = nt->chain.in_len < total - done ? nt->chain.in_len : total - done;
		if (!mrg && step < total) {
			q->last_avail--;
			goto drop;
		}
		copy_frame(&nt->chain, iov, n, pre, done, step);
		nt->used[nr_used++] = (struct vring_used_elem){ .id = nt->chain.head, .len = (uint32_t)step };
		done += step;
	}
	/* num_buffers, little-endian, in the first buffer's header (§5.1.6.4). */
	for (unsigned i = 0, shift = 0; i < 2 && shift < 16; i++)
		for (size_t k = 0; k < num_buffers[i].iov_len && shift < 16; k++, shift += 8)
			((uint8_t *)num_buffers[i].iov_base)[k] = (uint8_t)(nr_used >> shift);
	virtq_push_many(q, nt->used, nr_used);
	nt->be->stats.rx_packets++;
	nt->be->stats.rx_bytes += total - NET_HDR_LEN;
	virtio_dev_notify_if_needed(&nt->dev, RXQ);
	return true;
drop:
	if (log_once_first(&nt->bad_frame))
		log_warn("%s: a %zu-byte frame does not fit the guest's receive buffers; dropped",
			 nt->name, total);
	nt->be->stats.rx_dropped++;
	return true;
}

/* struct net_rx: a frame from the backend (event loop, no lock held). */
static bool net_deliver(void *opaque, const struct iovec *iov, int n)
{
	struct net *nt = opaque;
	size_t pre = nt->be->vnet_hdr ? 0 : NET_HDR_LEN, total = pre;
	bool taken = true;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	pthread_mutex_lock(&nt->dev.lock);
	if (!virtio_dev_live(&nt->dev) || !nt->dev.q[RXQ].ready || total < NET_HDR_LEN + ETH_HLEN)
		nt->be->stats.rx_dropped++;
	else if (!rate_limiter_consume(&nt->rx_limiter, total - NET_HDR_LEN, 1))
		taken = false; /* the backend keeps it until net_rx_unblocked() */
	else if (!(taken = rx_frame(nt, iov, n, pre, total)))
		rate_limiter_refund(&nt->rx_limiter, total - NET_HDR_LEN, 1); /* offered again */
	pthread_mutex_unlock(&nt->dev.lock);
	return taken;
}

static uint32_t net_tx_serve(struct virtio_dev *dev, const struct virtq_chain *c)
{
	struct net *nt = to_net(dev);
	struct iovec iov[VIRTQ_CHAIN_MAX];
	uint64_t skip = nt->be->vnet_hdr ? 0 : NET_HDR_LEN;
	int n, ret;

	if (c->out_len < NET_HDR_LEN + ETH_HLEN || c->out_len > NET_HDR_LEN + NET_MAX_FRAME) {
		if (log_once_first(&nt->bad_frame))
			log_warn("%s: the guest sent a %llu-byte frame (header included); dropped",
				 nt->name, (unsigned long long)c->out_len);
		nt->be->stats.tx_dropped++;
		return 0;
	}
	if (!rate_limiter_consume(&nt->tx_limiter, c->out_len - NET_HDR_LEN, 1))
		return VIRTQ_THROTTLED;
	n = virtq_chain_iov(c, false, skip, c->out_len - skip, iov);
	ret = nt->be->ops->send(nt->be, iov, n);
	if (ret) {
		if (log_once_first(&nt->bad_frame))
			log_warn("%s: the host refused a frame from the guest: %s", nt->name,
				 strerror(-ret));
		nt->be->stats.tx_dropped++;
		return 0;
	}
	nt->be->stats.tx_packets++;
	nt->be->stats.tx_bytes += c->out_len - NET_HDR_LEN;
	return 0;
}

static void net_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct net *nt = to_net(dev);

	if (q == TXQ)
		virtio_dev_process(dev, TXQ, net_tx_serve);
	else
		nt->be->ops->rx_resume(nt->be);
}

/* The rate limiters can pay again: frames the backend kept, buffers the guest queued. */
static void net_rx_unblocked(void *opaque)
{
	struct net *nt = opaque;

	nt->be->ops->rx_resume(nt->be);
}

static void net_tx_unblocked(void *opaque)
{
	struct net *nt = opaque;

	nt->dev.transport.requeue(&nt->dev, TXQ);
}

void virtio_net_set_limits(void *state, const struct rate_limit *rx, unsigned rx_buckets,
			   const struct rate_limit *tx, unsigned tx_buckets)
{
	struct net *nt = to_net(state);

	pthread_mutex_lock(&nt->dev.lock);
	if (rx_buckets)
		rate_limiter_update(&nt->rx_limiter, rx, rx_buckets);
	if (tx_buckets)
		rate_limiter_update(&nt->tx_limiter, tx, tx_buckets);
	pthread_mutex_unlock(&nt->dev.lock);
}

static void net_activate(struct virtio_dev *dev)
{
	struct net *nt = to_net(dev);
	int ret = nt->be->ops->set_offloads(nt->be, dev->driver_features);

	if (ret && log_once_first(&nt->offloads_refused)) /* a guest may cycle DRIVER_OK */
		log_warn("%s: the host refused the guest's offloads: %s", nt->name, strerror(-ret));
}

static void net_reset(struct virtio_dev *dev)
{
	struct net *nt = to_net(dev);

	nt->be->ops->set_offloads(nt->be, 0);
}

static unsigned net_counters(void *state, struct device_counter *out, unsigned max)
{
	const struct net *nt = to_net(state);
	const struct net_counters *s = &nt->be->stats;
	const struct device_counter all[] = {
		{ "rx_packets_count", s->rx_packets }, { "rx_bytes_count", s->rx_bytes },
		{ "rx_dropped_count", s->rx_dropped }, { "tx_packets_count", s->tx_packets },
		{ "tx_bytes_count", s->tx_bytes }, { "tx_dropped_count", s->tx_dropped },
		{ "rx_rate_limiter_throttled", nt->rx_limiter.throttled },
		{ "tx_rate_limiter_throttled", nt->tx_limiter.throttled },
	};
	return device_counters_copy(out, max, all, sizeof(all) / sizeof(all[0]));
}

static void net_free(struct virtio_dev *dev)
{
	struct net *nt = to_net(dev);
	const struct net_counters *s = &nt->be->stats;

	log_info("%s: rx %llu packets %llu bytes %llu dropped, tx %llu packets %llu bytes "
		 "%llu dropped", nt->name, (unsigned long long)s->rx_packets,
		 (unsigned long long)s->rx_bytes, (unsigned long long)s->rx_dropped,
		 (unsigned long long)s->tx_packets, (unsigned long long)s->tx_bytes,
		 (unsigned long long)s->tx_dropped);
	rate_limiter_cancel(&nt->rx_limiter);
	rate_limiter_cancel(&nt->tx_limiter);
	nt->be->ops->free(nt->be);
	virtio_dev_destroy(dev);
	free(nt);
}

static const struct virtio_dev_ops net_ops = {
	.device_id = VIRTIO_ID_NET,
	.nr_queues = 2,
	.queue_size = NET_QUEUE_SIZE,
	.pci_class = PCI_CLASS_CODE_ETHERNET,
	.config_len = offsetof(struct virtio_net_config, mtu) + sizeof(uint16_t),
	.features = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MRG_RXBUF) |
		    NET_OFFLOADS,
	.read_config = net_read_config,
	.queue_notify = net_queue_notify,
	.activate = net_activate,
	.reset = net_reset,
	.free = net_free,
};

struct virtio_dev *virtio_net_new(const struct guest_mem *mem, struct net_backend *be,
				  const uint8_t mac[6], unsigned index)
{
	static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct net *nt = calloc(1, sizeof(*nt));

	if (!nt || virtio_dev_init(&nt->dev, &net_ops, nt, mem)) {
		be->ops->free(be);
		free(nt);
		return NULL;
	}
	nt->be = be;
	nt->index = index;
	rate_limiter_init(&nt->rx_limiter, &(struct rate_limit){ 0 }, NULL, NULL, net_rx_unblocked, nt);
	rate_limiter_init(&nt->tx_limiter, &(struct rate_limit){ 0 }, NULL, NULL, net_tx_unblocked, nt);
	snprintf(nt->name, sizeof(nt->name), "net%u", index);
	be->rx = (struct net_rx){ .deliver = net_deliver, .opaque = nt };
	if (!be->vnet_hdr)
		nt->dev.device_features &= ~NET_OFFLOADS;
	memcpy(nt->config.mac, mac ? mac : base, 6);
	if (!mac)
		nt->config.mac[5] = (uint8_t)(base[5] + index);
	nt->config.status = VIRTIO_NET_S_LINK_UP;
	nt->config.max_virtqueue_pairs = 1;
	return &nt->dev;
}

static int net_create(struct dev_host *host, const void *config, unsigned index, void **state,
		      struct error *e)
{
	const struct net_config *cfg = config;
	struct net_backend *be = net_backend_open(host, cfg, e);
	struct virtio_dev *dev;
	char name[80];

	device_label(&virtio_net_class, cfg, index, name, sizeof(name));
	if (be && cfg->filter.wrap)
		be = cfg->filter.wrap(cfg->filter.opaque, host, be, e);
	if (!be) {
		error_prefix(e, "%s", name);
		return error_code(e);
	}
	dev = virtio_net_new(host->mem, be, cfg->mac_set ? cfg->mac : NULL, index);
	if (!dev)
		return error_set(e, ERROR_RUNTIME, "%s: out of memory", name);
	snprintf(to_net(dev)->name, sizeof(to_net(dev)->name), "%s", name);
	if (cfg->mtu) { /* §5.1.4: the driver uses it as its MTU (VIRTIO_NET_F_MTU) */
		to_net(dev)->config.mtu = cfg->mtu;
		dev->device_features |= BIT(VIRTIO_NET_F_MTU);
	}
	rate_limiter_init(&to_net(dev)->rx_limiter, &cfg->rx_limit, host->loop, host, net_rx_unblocked,
			  dev->opaque);
	rate_limiter_init(&to_net(dev)->tx_limiter, &cfg->tx_limit, host->loop, host, net_tx_unblocked,
			  dev->opaque);
	*state = dev;
	return 0;
}

static const char *net_id(const void *config) { return ((const struct net_config *)config)->id; }

/* Two NICs with the same MAC address would confuse every switch and the guest. */
static int net_check(const struct vm_config *vm, unsigned entry, struct error *e)
{
	const struct net_config *n = vm->device[entry].config;
	char a[80], b[80];

	for (unsigned i = 0; i < entry; i++) {
		const struct net_config *o = vm->device[i].config;

		if (vm->device[i].cls != &virtio_net_class || !n->mac_set || !o->mac_set ||
		    memcmp(n->mac, o->mac, 6))
			continue;
		return error_set(e, ERROR_USAGE, "%s and %s have the same MAC address "
				 "%02x:%02x:%02x:%02x:%02x:%02x",
				 device_label(&virtio_net_class, o, vm_config_class_index(vm, i), a,
					      sizeof(a)),
				 device_label(&virtio_net_class, n, vm_config_class_index(vm, entry), b,
					      sizeof(b)),
				 n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	}
	return 0;
}

const struct device_class virtio_net_class = {
	.name = "net",
	.kind = DEVICE_VIRTIO,
	.create = net_create,
	.id = net_id,
	.check = net_check,
	.counters = net_counters,
};
