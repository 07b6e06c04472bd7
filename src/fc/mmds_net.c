/* SPDX-License-Identifier: Apache-2.0 */
/* mmds_net — the guest's way to MMDS: a filter between a virtio-net device and its backend that
 * answers ARP for the MMDS address and terminates TCP connections to its port 80, as
 * Firecracker's MMDS network stack does (docs/mmds/mmds-design.md). Every other frame passes
 * through to the backend untouched, and every frame for the MMDS address stays in kiln.
 *
 * Each connection's byte stream goes through a socketpair to the MMDS HTTP server
 * (libmicrohttpd, see mmds.c), so kiln carries no HTTP parser here; this file only does
 * Ethernet, ARP, IPv4 and the TCP states a server needs: SYN -> SYN-ACK, in-order data
 * acknowledged as it is taken, the server's answer in MSS-sized segments within the guest's
 * window, FIN both ways, RST for strangers. Frames to the guest are never lost (they wait for
 * receive buffers), so kiln never retransmits; a guest retransmission is acknowledged again.
 * Everything runs on the event loop thread (send() with the device lock held; the sockets'
 * callbacks, the flush task and the idle timer without it), so no lock of its own is needed.
 * Frames for the guest are queued where the device lock is held and handed over by the flush
 * task, which runs without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fc_internal.h"
#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/net_backend.h"

#define ETH_HLEN 14
#define ETH_P_IPV4 0x0800
#define ETH_P_ARP 0x0806
#define IP_HLEN 20
#define TCP_HLEN 20
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define MMDS_PORT 80
#define MMDS_MSS 1460
#define MMDS_WINDOW 65535u        /* what kiln advertises; a stream takes at most this much */
#define MMDS_MAX_CONNS 30
#define MMDS_MAX_QUEUED 256       /* frames waiting for the guest's receive buffers */
#define MMDS_IDLE_S 120           /* a connection with no traffic for this long is dropped */
#define MMDS_IDLE_CHECK_NS 10000000000ull /* how often that is checked */

/* The address MMDS answers from: Firecracker's. */
static const uint8_t mmds_mac[6] = { 0x06, 0x01, 0x23, 0x45, 0x67, 0x01 };

enum conn_state { CONN_FREE, CONN_SYN_RCVD, CONN_OPEN };

struct conn {
	enum conn_state state;
	uint8_t peer_mac[6];
	uint32_t peer_ip;         /* network order */
	uint16_t peer_port;       /* network order */
	uint32_t snd_nxt, snd_una, rcv_nxt;
	uint32_t peer_window;
	struct mmds_net *mn;
	int fd;                   /* kiln's end of the socketpair to the HTTP server, or -1 */
	unsigned events;          /* the interest fd is watched with */
	bool fin_rcvd;            /* the guest is done sending */
	bool fin_sent;            /* the server is done: FIN queued */
	time_t last;              /* CLOCK_MONOTONIC seconds of the last segment */
};

struct frame {
	size_t len;
	uint8_t *data;
};

struct mmds_net {
	struct net_backend base;  /* first: the device sees this backend */
	struct net_backend *inner;
	struct mmds *mmds;
	uint32_t ip;              /* the MMDS address, network order */
	size_t hdr;               /* NET_HDR_LEN when frames carry the virtio-net header */
	struct conn conn[MMDS_MAX_CONNS];
	struct frame queue[MMDS_MAX_QUEUED];
	unsigned head, count;
	bool guest_full;          /* the guest had no receive buffers: wait for rx_resume */
	struct loop *loop;
	struct loop_task flush;   /* hands queued frames to the guest */
	struct loop_timer idle;   /* drops connections that went quiet */
	uint16_t ip_id;
	uint8_t in[NET_HDR_LEN + NET_MAX_FRAME]; /* the frame being looked at */
	struct log_once queue_full;
};

static struct mmds_net *to_mn(struct net_backend *be) { return (struct mmds_net *)be; }

static void conn_event(void *opaque, unsigned events);
static void sync_interest(struct mmds_net *mn);

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, (uint16_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

/* RFC 1071 one's-complement sum, folded. */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void wake(struct mmds_net *mn)
{
	loop_task_schedule(&mn->flush);
}

/* A new frame of @len bytes (after the virtio-net header, which is zeroed) on the queue, or
 * NULL when the queue is full. */
static uint8_t *queue_frame(struct mmds_net *mn, size_t len)
{
	struct frame *f;

	if (mn->count == MMDS_MAX_QUEUED) {
		if (log_once_first(&mn->queue_full))
			log_warn("mmds: the guest does not take its frames; dropping answers");
		return NULL;
	}
	f = &mn->queue[(mn->head + mn->count) % MMDS_MAX_QUEUED];
	f->len = mn->hdr + len;
	f->data = calloc(1, f->len);
	if (!f->data)
		return NULL;
	mn->count++;
	wake(mn);
	return f->data + mn->hdr;
}

static void eth_header(uint8_t *p, const uint8_t *dst, uint16_t type)
{
	memcpy(p, dst, 6);
	memcpy(p + 6, mmds_mac, 6);
	put16(p + 12, type);
}

/* Queue a TCP segment from MMDS to @c's peer: @flags, @data of @len bytes. */
static void send_segment(struct mmds_net *mn, struct conn *c, uint8_t flags, const uint8_t *data,
			 size_t len)
{
	size_t opt = (flags & TCP_SYN) ? 4 : 0, tcp_len = TCP_HLEN + opt + len;
	uint8_t *p = queue_frame(mn, ETH_HLEN + IP_HLEN + tcp_len), *ip, *tcp;
	uint32_t sum;

	if (!p)
		return;
	eth_header(p, c->peer_mac, ETH_P_IPV4);
	ip = p + ETH_HLEN;
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP_HLEN + tcp_len));
	put16(ip + 4, mn->ip_id++);
	put16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, &mn->ip, 4);
	memcpy(ip + 16, &c->peer_ip, 4);
	put16(ip + 10, fold(sum16(ip, IP_HLEN, 0)));
	tcp = ip + IP_HLEN;
	put16(tcp, MMDS_PORT);
	memcpy(tcp + 2, &c->peer_port, 2);
	put32(tcp + 4, c->snd_nxt);
	put32(tcp + 8, (flags & TCP_ACK) ? c->rcv_nxt : 0);
	tcp[12] = (uint8_t)(((TCP_HLEN + opt) / 4) << 4);
	tcp[13] = flags;
	put16(tcp + 14, MMDS_WINDOW);
	if (opt) { /* MSS */
		tcp[20] = 2;
		tcp[21] = 4;
		put16(tcp + 22, MMDS_MSS);
	}
	if (len)
		memcpy(tcp + TCP_HLEN + opt, data, len);
	/* Pseudo-header: addresses, protocol, TCP length. */
	sum = sum16(ip + 12, 8, IPPROTO_TCP + (uint32_t)tcp_len);
	put16(tcp + 16, fold(sum16(tcp, tcp_len, sum)));
	c->snd_nxt += (uint32_t)len + ((flags & (TCP_SYN | TCP_FIN)) ? 1 : 0);
}

/* An RST for a segment that belongs to no connection (RFC 793, "Reset Generation"). */
static void send_reset(struct mmds_net *mn, const uint8_t *eth, const uint8_t *ip,
		       const uint8_t *tcp, size_t payload)
{
	struct conn c = { .peer_ip = 0 };
	uint8_t flags = tcp[13];

	memcpy(c.peer_mac, eth + 6, 6);
	memcpy(&c.peer_ip, ip + 12, 4);
	memcpy(&c.peer_port, tcp, 2);
	if (flags & TCP_ACK) {
		c.snd_nxt = get32(tcp + 8);
		send_segment(mn, &c, TCP_RST, NULL, 0);
	} else {
		c.rcv_nxt = get32(tcp + 4) + (uint32_t)payload + ((flags & (TCP_SYN | TCP_FIN)) ? 1 : 0);
		send_segment(mn, &c, TCP_RST | TCP_ACK, NULL, 0);
	}
}

static void conn_close(struct conn *c)
{
	struct mmds_net *mn = c->mn;

	if (c->fd >= 0) {
		loop_unwatch(mn->loop, c->fd);
		close(c->fd);
	}
	*c = (struct conn){ .mn = mn, .state = CONN_FREE, .fd = -1 };
}

static struct conn *find_conn(struct mmds_net *mn, uint32_t ip, uint16_t port)
{
	for (unsigned i = 0; i < MMDS_MAX_CONNS; i++)
		if (mn->conn[i].state != CONN_FREE && mn->conn[i].peer_ip == ip &&
		    mn->conn[i].peer_port == port)
			return &mn->conn[i];
	return NULL;
}

static time_t now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

/* A SYN for a new connection: SYN-ACK from a random initial sequence number. */
static void tcp_open(struct mmds_net *mn, const uint8_t *eth, const uint8_t *ip,
		     const uint8_t *tcp)
{
	struct conn *c = NULL;
	uint32_t iss;

	for (unsigned i = 0; !c && i < MMDS_MAX_CONNS; i++)
		if (mn->conn[i].state == CONN_FREE)
			c = &mn->conn[i];
	if (!c) {
		send_reset(mn, eth, ip, tcp, 0); /* no room: refused */
		return;
	}
	if (getrandom(&iss, sizeof(iss), GRND_NONBLOCK) != sizeof(iss))
		iss = (uint32_t)now_s() * 2654435761u;
	*c = (struct conn){ .mn = mn, .state = CONN_SYN_RCVD, .fd = -1, .snd_nxt = iss, .snd_una = iss,
			    .rcv_nxt = get32(tcp + 4) + 1, .peer_window = get16(tcp + 14),
			    .last = now_s() };
	memcpy(c->peer_mac, eth + 6, 6);
	memcpy(&c->peer_ip, ip + 12, 4);
	memcpy(&c->peer_port, tcp, 2);
	send_segment(mn, c, TCP_SYN | TCP_ACK, NULL, 0);
}

/* The handshake's last ACK: hand the stream to the HTTP server. */
static bool tcp_established(struct mmds_net *mn, struct conn *c)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
		return false;
	if (loop_watch(mn->loop, mn, sv[0], 0, conn_event, c)) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	if (mmds_add_connection(mn->mmds, sv[1], c->peer_ip, c->peer_port)) {
		loop_unwatch(mn->loop, sv[0]);
		close(sv[0]);
		return false;
	}
	c->fd = sv[0];
	c->events = 0;
	c->state = CONN_OPEN;
	return true;
}

/* One TCP segment from the guest to the MMDS address. */
static void tcp_input(struct mmds_net *mn, const uint8_t *eth, const uint8_t *ip, size_t ip_len)
{
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4, doff;
	const uint8_t *tcp = ip + ihl;
	uint32_t seq, ack, peer_ip;
	uint16_t peer_port;
	uint8_t flags;
	size_t payload;
	struct conn *c;

	if (ip_len < ihl + TCP_HLEN)
		return;
	doff = (size_t)(tcp[12] >> 4) * 4;
	if (doff < TCP_HLEN || ip_len < ihl + doff || get16(tcp + 2) != MMDS_PORT)
		return; /* malformed, or another port: dropped, as Firecracker drops it */
	payload = ip_len - ihl - doff;
	flags = tcp[13];
	seq = get32(tcp + 4);
	ack = get32(tcp + 8);
	memcpy(&peer_ip, ip + 12, 4);
	memcpy(&peer_port, tcp, 2);
	c = find_conn(mn, peer_ip, peer_port);
	if (flags & TCP_RST) {
		if (c)
			conn_close(c);
		return;
	}
	if (!c) {
		if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
			tcp_open(mn, eth, ip, tcp);
		else
			send_reset(mn, eth, ip, tcp, payload);
		return;
	}
	c->last = now_s();
	c->peer_window = get16(tcp + 14);
	if (flags & TCP_SYN) { /* a retransmitted SYN: our SYN-ACK again */
		if (c->state == CONN_SYN_RCVD) {
			c->snd_nxt = c->snd_una;
			send_segment(mn, c, TCP_SYN | TCP_ACK, NULL, 0);
		}
		return;
	}
	if (!(flags & TCP_ACK))
		return;
	if (ack - c->snd_una <= c->snd_nxt - c->snd_una)
		c->snd_una = ack; /* acknowledges what was sent */
	if (c->state == CONN_SYN_RCVD) {
		if (c->snd_una != c->snd_nxt || !tcp_established(mn, c)) {
			send_segment(mn, c, TCP_RST, NULL, 0);
			conn_close(c);
			return;
		}
	}
	if (seq != c->rcv_nxt) {
		if (payload || (flags & TCP_FIN))
			send_segment(mn, c, TCP_ACK, NULL, 0); /* out of order or again: re-ACK */
		return;
	}
	if (payload && !c->fin_rcvd) {
		ssize_t n = write(c->fd, tcp + doff, payload);

		if (n > 0)
			c->rcv_nxt += (uint32_t)n; /* the rest comes again when the guest retransmits */
	}
	if ((flags & TCP_FIN) && !c->fin_rcvd && seq + payload == c->rcv_nxt) {
		c->fin_rcvd = true;
		c->rcv_nxt++;
		shutdown(c->fd, SHUT_WR); /* the server sees the end of the request stream */
	}
	if (payload || (flags & TCP_FIN))
		send_segment(mn, c, TCP_ACK, NULL, 0);
	if (c->fin_rcvd && c->fin_sent && c->snd_una == c->snd_nxt)
		conn_close(c); /* both directions closed and acknowledged */
}

/* ARP request for the MMDS address: answer with MMDS's MAC (RFC 826). */
static void arp_input(struct mmds_net *mn, const uint8_t *eth, const uint8_t *arp)
{
	uint8_t *p;

	if (get16(arp) != 1 || get16(arp + 2) != ETH_P_IPV4 || arp[4] != 6 || arp[5] != 4 ||
	    get16(arp + 6) != 1)
		return;
	p = queue_frame(mn, ETH_HLEN + 28);
	if (!p)
		return;
	eth_header(p, eth + 6, ETH_P_ARP);
	memcpy(p + ETH_HLEN, arp, 6);
	put16(p + ETH_HLEN + 6, 2);               /* reply */
	memcpy(p + ETH_HLEN + 8, mmds_mac, 6);    /* sender: MMDS */
	memcpy(p + ETH_HLEN + 14, &mn->ip, 4);
	memcpy(p + ETH_HLEN + 18, arp + 8, 10);   /* target: the asker's MAC and address */
}

/* Whether the frame in mn->in (@len bytes after the header) is for MMDS; if so it is
 * consumed. */
static bool mmds_input(struct mmds_net *mn, size_t len)
{
	const uint8_t *eth = mn->in + mn->hdr, *l3 = eth + ETH_HLEN;
	size_t l3_len = len - ETH_HLEN;

	if (len < ETH_HLEN)
		return false;
	if (get16(eth + 12) == ETH_P_ARP) {
		uint32_t target;

		if (l3_len < 28)
			return false;
		memcpy(&target, l3 + 24, 4);
		if (target != mn->ip)
			return false;
		arp_input(mn, eth, l3);
		return true;
	}
	if (get16(eth + 12) == ETH_P_IPV4 && l3_len >= IP_HLEN && (l3[0] >> 4) == 4) {
		uint32_t dst;
		size_t total = get16(l3 + 2);

		memcpy(&dst, l3 + 16, 4);
		if (dst != mn->ip)
			return false;
		/* A GSO frame's length field may be 0 or stale: the frame's size is the truth. */
		if (total < IP_HLEN || total > l3_len)
			total = l3_len;
		if (l3[9] == IPPROTO_TCP && (l3[0] & 0x0f) >= 5 && !(get16(l3 + 6) & 0x3fff))
			tcp_input(mn, eth, l3, total);
		return true; /* anything else for MMDS (fragments, ICMP, UDP) is dropped */
	}
	return false;
}

static int mn_send(struct net_backend *be, const struct iovec *iov, int n)
{
	struct mmds_net *mn = to_mn(be);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		size_t take = iov[i].iov_len;

		if (len + take > sizeof(mn->in))
			return mn->inner->ops->send(mn->inner, iov, n); /* too big for MMDS anyway */
		memcpy(mn->in + len, iov[i].iov_base, take);
		len += take;
	}
	if (len >= mn->hdr && mmds_input(mn, len - mn->hdr)) {
		sync_interest(mn);
		return 0;
	}
	return mn->inner->ops->send(mn->inner, iov, n);
}

/* The backend's frames go to the device as they are. */
static bool inner_deliver(void *opaque, const struct iovec *iov, int n)
{
	struct mmds_net *mn = opaque;

	return mn->base.rx.deliver(mn->base.rx.opaque, iov, n);
}

static void mn_rx_resume(struct net_backend *be)
{
	struct mmds_net *mn = to_mn(be);

	mn->inner->ops->rx_resume(mn->inner);
	if (mn->guest_full) {
		mn->guest_full = false;
		wake(mn);
	}
}

static int mn_set_offloads(struct net_backend *be, uint64_t features)
{
	return to_mn(be)->inner->ops->set_offloads(to_mn(be)->inner, features);
}

static void mn_free(struct net_backend *be)
{
	struct mmds_net *mn = to_mn(be);

	loop_forget(mn->loop, mn); /* the sockets' watches, the flush task, the idle timer */
	for (unsigned i = 0; i < MMDS_MAX_CONNS; i++)
		conn_close(&mn->conn[i]);
	for (; mn->count; mn->count--, mn->head = (mn->head + 1) % MMDS_MAX_QUEUED)
		free(mn->queue[mn->head].data);
	mn->inner->ops->free(mn->inner);
	free(mn);
}

static const struct net_backend_ops mmds_net_ops = {
	.send = mn_send, .rx_resume = mn_rx_resume, .set_offloads = mn_set_offloads,
	.free = mn_free,
};

/* Hand queued frames to the guest until it has no room. */
static void flush_queue(struct mmds_net *mn)
{
	while (mn->count && !mn->guest_full) {
		struct frame *f = &mn->queue[mn->head];
		struct iovec iov = { f->data, f->len };

		if (!mn->base.rx.deliver(mn->base.rx.opaque, &iov, 1)) {
			mn->guest_full = true; /* rx_resume() wakes us */
			return;
		}
		free(f->data);
		mn->head = (mn->head + 1) % MMDS_MAX_QUEUED;
		mn->count--;
	}
}

/* The server's answer on @c: as much as the guest's window has room for, then FIN at its end. */
static void conn_output(struct mmds_net *mn, struct conn *c)
{
	uint8_t buf[MMDS_MSS];

	while (!c->fin_sent && c->snd_nxt - c->snd_una < c->peer_window &&
	       mn->count < MMDS_MAX_QUEUED - 1) {
		size_t room = c->peer_window - (c->snd_nxt - c->snd_una);
		ssize_t n = read(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf));

		if (n > 0) {
			send_segment(mn, c, TCP_ACK | TCP_PSH, buf, (size_t)n);
		} else if (n == 0 || errno != EAGAIN) {
			send_segment(mn, c, TCP_FIN | TCP_ACK, NULL, 0);
			c->fin_sent = true;
		} else {
			break;
		}
	}
}

/* Read the server's answer on each connection only while the queue and the guest's window have
 * room for it. Loop thread. */
static void sync_interest(struct mmds_net *mn)
{
	bool room = mn->count < MMDS_MAX_QUEUED - 1;

	for (unsigned i = 0; i < MMDS_MAX_CONNS; i++) {
		struct conn *c = &mn->conn[i];
		unsigned ev = room && c->state == CONN_OPEN && !c->fin_sent &&
			      c->snd_nxt - c->snd_una < c->peer_window ? LOOP_IN : 0;

		if (c->fd >= 0 && ev != c->events && loop_set_events(mn->loop, c->fd, ev) == 0)
			c->events = ev;
	}
}

/* The HTTP server answered on a connection. */
static void conn_event(void *opaque, unsigned events)
{
	struct conn *c = opaque;
	struct mmds_net *mn = c->mn;

	if (c->state == CONN_OPEN)
		conn_output(mn, c);
	flush_queue(mn);
	sync_interest(mn);
}

/* Frames wait for the guest: hand them over (without the device lock). */
static void flush_task(void *opaque)
{
	struct mmds_net *mn = opaque;

	flush_queue(mn);
	sync_interest(mn);
}

/* Every MMDS_IDLE_CHECK_NS: drop the connections that went quiet. */
static void idle_check(void *opaque)
{
	struct mmds_net *mn = opaque;
	time_t now = now_s();

	for (unsigned k = 0; k < MMDS_MAX_CONNS; k++) {
		struct conn *c = &mn->conn[k];

		if (c->state != CONN_FREE && now - c->last > MMDS_IDLE_S) {
			send_segment(mn, c, TCP_RST, NULL, 0);
			conn_close(c);
		}
	}
	flush_queue(mn);
	sync_interest(mn);
}

struct net_backend *mmds_net_wrap(struct mmds *mmds, uint32_t ip, struct dev_host *host,
				  struct net_backend *inner, struct error *e)
{
	struct mmds_net *mn = calloc(1, sizeof(*mn));

	if (!mn) {
		error_set(e, ERROR_RUNTIME, "MMDS: out of memory");
		inner->ops->free(inner);
		return NULL;
	}
	mn->base = (struct net_backend){ .ops = &mmds_net_ops, .vnet_hdr = inner->vnet_hdr };
	mn->inner = inner;
	mn->mmds = mmds;
	mn->ip = ip;
	mn->hdr = inner->vnet_hdr ? NET_HDR_LEN : 0;
	mn->loop = host->loop;
	for (unsigned i = 0; i < MMDS_MAX_CONNS; i++)
		mn->conn[i] = (struct conn){ .mn = mn, .fd = -1 };
	inner->rx = (struct net_rx){ .deliver = inner_deliver, .opaque = mn };
	loop_task_init(mn->loop, &mn->flush, mn, flush_task, mn);
	loop_timer_init(mn->loop, &mn->idle, mn, idle_check, mn);
	loop_timer_arm(&mn->idle, MMDS_IDLE_CHECK_NS, MMDS_IDLE_CHECK_NS);
	return &mn->base;
}
