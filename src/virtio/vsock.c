/* SPDX-License-Identifier: Apache-2.0 */
/* vsock — virtio-vsock (virtio 1.2 §5.10), see include/kiln/virtio_vsock.h; its host side,
 * Firecracker's Unix sockets, is src/backends/vsock_host.c.
 *
 * Queue 0 carries packets to the guest, queue 1 packets from it, queue 2 events. The host is
 * CID 2. A host program's request for a guest port (its "CONNECT <port>" line) becomes a
 * REQUEST to the guest from a fresh host port and, on the guest's RESPONSE, its "OK <host
 * port>" answer and a relayed stream; a guest's REQUEST to host port P becomes a connection to
 * the program listening at "<uds_path>_<P>". Stream data flows under the spec's credit rules
 * (§5.10.6.3): each side advertises buf_alloc and fwd_cnt, kiln never sends more than the
 * guest's free credit, and a guest that sends more than kiln's is reset. Data to the guest is
 * read from the host socket straight into the guest's buffers.
 *
 * Everything runs on kiln's event loop: the queues' kicks and every connection's socket, each
 * registered on the loop with the interest its state calls for (sync_interest() after every
 * event: read a host socket only while the guest can take what is read). A driver reset arrives
 * on a vCPU thread: the connections it ends are closed by a loop task. The hostile guest:
 * malformed headers, packets for other CIDs or types, unknown ops and credit lies are dropped
 * or answered with a reset, counted, and logged once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "kiln/devices.h"
#include "kiln/pci.h"
#include "kiln/virtio.h"
#include "kiln/virtio_vsock.h"
#include "kiln/vsock_host.h"

#define VSOCK_QUEUE_SIZE 256
#define RXQ 0
#define TXQ 1
#define EVQ 2
#define HDR_LEN sizeof(struct virtio_vsock_hdr)
#define VSOCK_HOST_CID 2
#define VSOCK_BUF_ALLOC (256u << 10)   /* per connection: guest bytes kiln holds at most */
#define VSOCK_MAX_PAYLOAD (64u << 10)  /* largest packet kiln sends or takes */
#define VSOCK_MAX_CONNS 512             /* host sockets at once (RLIMIT_NOFILE is raised) */
#define VSOCK_PENDING_MAX (16u << 20)  /* per VM: guest bytes held for host sockets that lag */
#define VSOCK_MAX_RESETS 64            /* resets for unknown connections, waiting for buffers */
#define VSOCK_EPHEMERAL_FIRST (1u << 30)

_Static_assert(HDR_LEN == 44, "virtio-vsock header size (§5.10.6)");

enum conn_state {
	CONN_FREE,
	CONN_CLOSING,   /* ended by a driver reset; the loop closes it */
	CONN_REQUEST,   /* REQUEST to send or sent; waiting for the guest's RESPONSE */
	CONN_OPEN,
};

struct conn {
	struct vsock *vs;
	enum conn_state state;
	int fd;
	unsigned events;       /* the interest it is watched with */
	bool host_readable;    /* the host socket has data (or EOF) the guest has not had */
	uint32_t host_port, guest_port;
	bool request_due, response_due, credit_due, shutdown_due, reset_due;
	bool host_eof;         /* the host side will send no more */
	bool guest_no_send;    /* the guest said SHUTDOWN SEND: no more data from it */
	bool guest_no_recv;    /* the guest said SHUTDOWN RCV: send it no more */
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the guest's, from its last header */
	uint32_t tx_cnt;       /* bytes sent to the guest */
	uint32_t rx_cnt;       /* bytes received from the guest */
	uint32_t fwd_cnt;      /* of those, written to the host socket */
	uint32_t fwd_cnt_told; /* fwd_cnt in the last header sent */
	uint8_t *pending;      /* guest bytes the host socket did not take yet */
	size_t pending_len;
};

struct reset {
	uint32_t host_port, guest_port;
};

/* Counted since the device was made; Firecracker's names (its VsockDeviceMetrics) where the
 * meaning is the same, "rx" being towards the guest. */
struct vsock_stats {
	uint64_t conns_added, conns_killed, conns_removed;
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t tx_buffer_full; /* connections reset: VSOCK_PENDING_MAX was held already */
};

struct vsock {
	struct virtio_dev dev;
	struct dev_host *host;
	uint64_t guest_cid;
	struct virtio_vsock_config config;
	struct vsock_host *hostside; /* the Unix sockets (src/backends/vsock_host.c) */
	uint32_t next_port;
	unsigned next_conn;          /* where the round-robin over connections resumes */
	bool rx_waiting;             /* the guest had no receive buffers: wait for its kick */
	struct conn conn[VSOCK_MAX_CONNS];
	unsigned nr_resets;
	struct reset resets[VSOCK_MAX_RESETS];
	struct loop_task close_task; /* closes the CONN_CLOSING connections */
	struct virtq_chain chain;    /* receive scratch */
	size_t pending_held;         /* bytes of the connections' pending buffers */
	struct vsock_stats stats;
	struct log_once bad_packet, too_many, pending_full;
};

static struct vsock *to_vs(struct virtio_dev *dev) { return dev->opaque; }

static void vs_read_config(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, (const uint8_t *)&to_vs(dev)->config + off, len);
}

static void bad_packet(struct vsock *vs, const char *what)
{
	if (log_once_first(&vs->bad_packet))
		log_warn("vsock: %s; dropped (further ones not logged)", what);
}

/* A buffer for what @c's host socket does not take yet, from the VM's VSOCK_PENDING_MAX;
 * false when that is held already (counted, logged once) or memory is short. */
static bool hold_pending(struct vsock *vs, struct conn *c)
{
	if (c->pending)
		return true;
	if (vs->pending_held + VSOCK_BUF_ALLOC > VSOCK_PENDING_MAX) {
		vs->stats.tx_buffer_full++;
		if (log_once_first(&vs->pending_full))
			log_warn("vsock: host programs leave %u MiB of the guest's data unread; "
				 "connections needing more are reset", VSOCK_PENDING_MAX >> 20);
		return false;
	}
	c->pending = malloc(VSOCK_BUF_ALLOC);
	if (c->pending)
		vs->pending_held += VSOCK_BUF_ALLOC;
	return c->pending != NULL;
}

static void release_pending(struct vsock *vs, struct conn *c)
{
	if (!c->pending)
		return;
	free(c->pending);
	c->pending = NULL;
	c->pending_len = 0;
	vs->pending_held -= VSOCK_BUF_ALLOC;
}

/* Forget @c's socket and free its slot. Loop thread. */
static void conn_close(struct conn *c)
{
	struct vsock *vs = c->vs;

	if (c->fd >= 0) {
		loop_unwatch(vs->host->loop, c->fd);
		close(c->fd);
	}
	if (c->state != CONN_FREE)
		vs->stats.conns_removed++;
	release_pending(vs, c);
	*c = (struct conn){ .vs = vs, .state = CONN_FREE, .fd = -1 };
}

static struct conn *find_conn(struct vsock *vs, uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &vs->conn[i];

		if (c->state >= CONN_REQUEST && c->host_port == host_port &&
		    c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

static void conn_event(void *opaque, unsigned events);
static void sync_interest(struct vsock *vs);

/* A slot in @state for the host socket @fd, watched on the loop (interest set by
 * sync_interest()), or NULL when every slot is taken or the loop refuses it. Loop thread. */
static struct conn *new_conn(struct vsock *vs, int fd, enum conn_state state)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &vs->conn[i];

		if (c->state != CONN_FREE)
			continue;
		if (loop_watch(vs->host->loop, vs, fd, 0, conn_event, c))
			return NULL;
		*c = (struct conn){ .vs = vs, .state = state, .fd = fd };
		vs->stats.conns_added++;
		return c;
	}
	if (log_once_first(&vs->too_many))
		log_warn("vsock: %d connections at once; refusing more", VSOCK_MAX_CONNS);
	return NULL;
}

/* Bytes the guest can still take on @c (§5.10.6.3.1). */
static uint32_t peer_credit(const struct conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt;

	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

/* A reset for a connection kiln does not have (or no longer has). */
static void queue_reset(struct vsock *vs, uint32_t host_port, uint32_t guest_port)
{
	if (vs->nr_resets < VSOCK_MAX_RESETS)
		vs->resets[vs->nr_resets++] = (struct reset){ host_port, guest_port };
}

/* --- to the guest ------------------------------------------------------------------------ */

/* Pop a receive chain with room for a header; NULL when the guest has none (then it is asked
 * to kick, and rx_waiting is set). */
static struct virtq_chain *rx_chain(struct vsock *vs)
{
	struct virtq *q = &vs->dev.q[RXQ];

	if (vs->rx_waiting || !virtio_dev_live(&vs->dev) || !q->ready)
		return NULL;
	for (;;) {
		int ret = virtq_pop(vs->dev.mem, q, &vs->chain);

		if (ret < 0) {
			virtio_dev_needs_reset(&vs->dev, "malformed receive descriptor chain");
			return NULL;
		}
		if (ret == 0) {
			if (virtq_arm_notify(q))
				continue;
			vs->rx_waiting = true;
			return NULL;
		}
		if (vs->chain.in_len >= HDR_LEN)
			return &vs->chain;
		virtio_dev_needs_reset(&vs->dev, "receive buffer smaller than a vsock header");
		return NULL;
	}
}

/* Send one packet on chain @ch: header for @op from @c's ports (or @r's), @len data bytes
 * already in place after it. */
static void rx_send(struct vsock *vs, struct virtq_chain *ch, struct conn *c,
		    const struct reset *r, uint16_t op, uint32_t flags, uint32_t len)
{
	struct virtio_vsock_hdr h = {
		.src_cid = VSOCK_HOST_CID, .dst_cid = vs->guest_cid,
		.src_port = c ? c->host_port : r->host_port,
		.dst_port = c ? c->guest_port : r->guest_port,
		.len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = VSOCK_BUF_ALLOC, .fwd_cnt = c ? c->fwd_cnt : 0,
	};

	if (c) {
		c->fwd_cnt_told = c->fwd_cnt;
		c->tx_cnt += len;
		vs->stats.conns_killed += op == VIRTIO_VSOCK_OP_RST;
	}
	vs->stats.rx_packets++;
	vs->stats.rx_bytes += len;
	virtq_chain_write(ch, 0, &h, HDR_LEN);
	virtq_push(&vs->dev.q[RXQ], ch->head, (uint32_t)HDR_LEN + len);
}

/* Data from @c's host socket into a chain. Returns false when there was nothing to send (and
 * then the socket has nothing to read, or ended). */
static bool rx_data(struct vsock *vs, struct conn *c, struct virtq_chain *ch)
{
	struct iovec iov[VIRTQ_CHAIN_MAX];
	uint64_t room = ch->in_len - HDR_LEN;
	uint32_t want = peer_credit(c);
	ssize_t got;
	int n;

	if (want > room)
		want = (uint32_t)room;
	if (want > VSOCK_MAX_PAYLOAD)
		want = VSOCK_MAX_PAYLOAD;
	if (!want)
		return false;
	n = virtq_chain_iov(ch, true, HDR_LEN, want, iov);
	got = n > 0 ? readv(c->fd, iov, n) : -1;
	if (got > 0) {
		rx_send(vs, ch, c, NULL, VIRTIO_VSOCK_OP_RW, 0, (uint32_t)got);
		return true;
	}
	if (got < 0 && errno == EINTR)
		return false;
	c->host_readable = false;
	if (got < 0 && errno == EAGAIN)
		return false;
	/* End of the host's stream (or it broke): the guest gets no more data. */
	c->host_eof = true;
	c->shutdown_due = true;
	return false;
}

/* One packet for @c if it has something to say; returns whether a chain was used. */
static bool rx_conn(struct vsock *vs, struct conn *c)
{
	struct virtq_chain *ch;
	uint16_t op = 0;
	uint32_t flags = 0;

	if (c->reset_due)
		op = VIRTIO_VSOCK_OP_RST;
	else if (c->request_due)
		op = VIRTIO_VSOCK_OP_REQUEST;
	else if (c->response_due)
		op = VIRTIO_VSOCK_OP_RESPONSE;
	else if (c->shutdown_due)
		op = VIRTIO_VSOCK_OP_SHUTDOWN, flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	else if (c->credit_due)
		op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
	else if (!(c->host_readable && c->state == CONN_OPEN && !c->host_eof &&
		   !c->guest_no_recv && peer_credit(c)))
		return false;
	ch = rx_chain(vs);
	if (!ch)
		return false;
	if (!op) {
		if (rx_data(vs, c, ch))
			return true;
		vs->dev.q[RXQ].last_avail--; /* nothing read: the chain goes back */
		if (ch->in_len == HDR_LEN) {
			vs->rx_waiting = true; /* no room for data: wait for the driver's next buffers */
			return false;
		}
		return rx_conn(vs, c); /* EOF may have made a SHUTDOWN due */
	}
	c->reset_due = c->request_due = c->response_due = false;
	if (op == VIRTIO_VSOCK_OP_SHUTDOWN)
		c->shutdown_due = false;
	c->credit_due = false;
	rx_send(vs, ch, c, NULL, op, flags, 0);
	if (op == VIRTIO_VSOCK_OP_RST)
		conn_close(c);
	return true;
}

/* Fill the guest's receive buffers: resets, then every connection in turn (one packet each per
 * round, so a busy stream does not starve the others), until nothing is left or no buffers
 * are, or VIRTIO_BUDGET packets went in: then the rest waits for the next turn of the loop.
 * Lock held. */
static void rx_pump(struct vsock *vs)
{
	unsigned budget = VIRTIO_BUDGET;
	bool sent = true;

	while (vs->nr_resets) {
		struct virtq_chain *ch = rx_chain(vs);

		if (!ch)
			goto out;
		rx_send(vs, ch, NULL, &vs->resets[--vs->nr_resets], VIRTIO_VSOCK_OP_RST, 0, 0);
	}
	while (sent && !vs->rx_waiting) {
		sent = false;
		for (unsigned k = 0; k < VSOCK_MAX_CONNS && !vs->rx_waiting; k++) {
			unsigned i = (vs->next_conn + k) % VSOCK_MAX_CONNS;
			struct conn *c = &vs->conn[i];

			if (c->state >= CONN_REQUEST && rx_conn(vs, c)) {
				sent = true;
				vs->next_conn = i + 1;
				if (--budget == 0 && vs->dev.transport.requeue) {
					vs->rx_waiting = true; /* until the requeued notify */
					vs->dev.transport.requeue(&vs->dev, RXQ);
				}
			}
		}
	}
out:
	virtio_dev_notify_if_needed(&vs->dev, RXQ);
}

/* --- from the guest ---------------------------------------------------------------------- */

/* Write what the guest sent and the host socket has not taken yet (the buffer goes back once
 * empty). Returns false when the socket broke. */
static bool flush_pending(struct conn *c)
{
	while (c->pending_len) {
		ssize_t n = write(c->fd, c->pending, c->pending_len);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n < 0) {
			release_pending(c->vs, c); /* nobody will read it */
			return false;
		}
		memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
		c->pending_len -= (size_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	release_pending(c->vs, c);
	if (c->guest_no_send)
		shutdown(c->fd, SHUT_WR);
	if (c->guest_no_send && c->guest_no_recv)
		c->reset_due = true; /* closed both ways and all written: done (§5.10.6.6) */
	/* Tell the guest about freed room before it runs dry (it does not ask). */
	if (c->fwd_cnt - c->fwd_cnt_told >= VSOCK_BUF_ALLOC / 4)
		c->credit_due = true;
	return true;
}

/* An RW packet's @len bytes at @off in chain @ch for @c: to the host socket, or kept. */
static void tx_data(struct vsock *vs, struct conn *c, const struct virtq_chain *ch, uint32_t len)
{
	struct iovec iov[VIRTQ_CHAIN_MAX];
	ssize_t n = 0;
	int nr;

	if (c->rx_cnt - c->fwd_cnt + len > VSOCK_BUF_ALLOC) {
		bad_packet(vs, "the guest sent more than its credit");
		c->reset_due = true;
		return;
	}
	c->rx_cnt += len;
	vs->stats.tx_bytes += len;
	nr = virtq_chain_iov(ch, false, HDR_LEN, len, iov);
	if (!c->pending_len) {
		n = writev(c->fd, iov, nr);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			c->reset_due = true; /* the host program went away */
			return;
		}
		n = n < 0 ? 0 : n;
		c->fwd_cnt += (uint32_t)n;
	}
	if ((uint32_t)n < len) {
		if (!hold_pending(vs, c)) {
			c->reset_due = true;
			return;
		}
		virtq_chain_read(ch, HDR_LEN + (uint64_t)n, c->pending + c->pending_len, len - (uint32_t)n);
		c->pending_len += len - (size_t)n;
	}
	if (c->fwd_cnt - c->fwd_cnt_told >= VSOCK_BUF_ALLOC / 4)
		c->credit_due = true;
}

/* The guest connects to host port @h->dst_port: the program listening at <uds_path>_<port>. */
static void tx_request(struct vsock *vs, const struct virtio_vsock_hdr *h)
{
	int fd = vsock_host_connect(vs->hostside, h->dst_port);
	struct conn *c = fd >= 0 ? new_conn(vs, fd, CONN_OPEN) : NULL;

	if (!c) {
		if (fd >= 0)
			close(fd);
		queue_reset(vs, h->dst_port, h->src_port); /* nobody listens there */
		return;
	}
	c->host_port = h->dst_port;
	c->guest_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->response_due = true;
}

/* One packet from the guest (§5.10.6.4). */
static uint32_t vs_tx_serve(struct virtio_dev *dev, const struct virtq_chain *ch)
{
	struct vsock *vs = to_vs(dev);
	struct virtio_vsock_hdr h;
	struct conn *c;

	if (virtq_chain_read(ch, 0, &h, HDR_LEN) != HDR_LEN) {
		bad_packet(vs, "a packet without a header");
		return 0;
	}
	if (h.src_cid != vs->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
		bad_packet(vs, "a packet for another CID, or not from the guest's");
		return 0;
	}
	vs->stats.tx_packets++;
	if (h.len > VSOCK_MAX_PAYLOAD || h.len > ch->out_len - HDR_LEN) {
		bad_packet(vs, "a packet longer than its buffers");
		queue_reset(vs, h.dst_port, h.src_port);
		return 0;
	}
	if (h.type != VIRTIO_VSOCK_TYPE_STREAM) {
		queue_reset(vs, h.dst_port, h.src_port); /* only streams here */
		return 0;
	}
	c = find_conn(vs, h.dst_port, h.src_port);
	if (h.op == VIRTIO_VSOCK_OP_REQUEST) {
		if (c)
			c->reset_due = true; /* the same ports twice */
		else
			tx_request(vs, &h);
		return 0;
	}
	if (!c) {
		if (h.op != VIRTIO_VSOCK_OP_RST)
			queue_reset(vs, h.dst_port, h.src_port);
		return 0;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != CONN_REQUEST || c->request_due) {
			c->reset_due = true;
			break;
		}
		c->state = CONN_OPEN;
		if (vsock_host_accepted(c->fd, c->host_port))
			c->reset_due = true;
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CONN_OPEN || c->guest_no_send)
			c->reset_due = true;
		else
			tx_data(vs, c, ch, h.len);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		c->guest_no_recv |= !!(h.flags & VIRTIO_VSOCK_SHUTDOWN_RCV);
		c->guest_no_send |= !!(h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND);
		/* What the guest sent still goes to the host first; then the end. */
		if (!c->pending_len && !flush_pending(c))
			c->reset_due = true;
		break;
	case VIRTIO_VSOCK_OP_RST:
		conn_close(c);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break; /* the header said it all */
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->credit_due = true;
		break;
	default:
		bad_packet(vs, "an unknown op");
		c->reset_due = true;
		break;
	}
	return 0;
}

static void vs_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct vsock *vs = to_vs(dev);

	if (q == TXQ)
		virtio_dev_process(dev, TXQ, vs_tx_serve);
	else if (q == RXQ)
		vs->rx_waiting = false;
	rx_pump(vs); /* answers, resets, credit updates; new buffers for waiting data */
	sync_interest(vs);
}

/* --- the host side ----------------------------------------------------------------------- */

/* What @c's socket is watched for, given its state. */
static unsigned conn_interest(const struct vsock *vs, const struct conn *c, bool guest_takes)
{
	unsigned ev = 0;

	if (c->reset_due)
		return 0; /* ended: nothing more to hear until the reset goes out and it closes */
	switch (c->state) {
	case CONN_REQUEST: return LOOP_HUP; /* the host program gives up before the guest answers */
	case CONN_OPEN:
		/* Read only while the guest can take what is read and nothing read waits. */
		if (!c->host_readable && !c->host_eof && !c->guest_no_recv && peer_credit(c) &&
		    guest_takes)
			ev |= LOOP_IN;
		if (c->pending_len)
			ev |= LOOP_OUT;
		return ev;
	default: return 0;
	}
}

/* Give every socket the interest its state calls for, after anything may have changed it.
 * Loop thread, lock held. */
static void sync_interest(struct vsock *vs)
{
	bool guest_takes = !vs->rx_waiting && virtio_dev_live(&vs->dev) && vs->dev.q[RXQ].ready;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &vs->conn[i];
		unsigned ev;

		if (c->state == CONN_FREE)
			continue;
		ev = conn_interest(vs, c, guest_takes);
		if (ev != c->events && loop_set_events(vs->host->loop, c->fd, ev) == 0)
			c->events = ev;
	}
}

/* Whether a connection other than @c has @c's pair of ports. */
static bool pair_taken(const struct vsock *vs, const struct conn *c)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		const struct conn *o = &vs->conn[i];

		if (o != c && o->state >= CONN_REQUEST && o->host_port == c->host_port &&
		    o->guest_port == c->guest_port)
			return true;
	}
	return false;
}

/* A host program asked for guest port @port: a REQUEST to the guest from a fresh host port. */
static bool connect_request(void *opaque, int fd, uint32_t port)
{
	struct vsock *vs = opaque;
	struct conn *c;

	pthread_mutex_lock(&vs->dev.lock);
	c = new_conn(vs, fd, CONN_REQUEST);
	if (c) {
		c->guest_port = port;
		do { /* a host port no other connection to @port uses */
			c->host_port = vs->next_port++;
			if (vs->next_port == 0)
				vs->next_port = VSOCK_EPHEMERAL_FIRST;
		} while (pair_taken(vs, c));
		c->request_due = true;
		rx_pump(vs);
		sync_interest(vs);
	}
	pthread_mutex_unlock(&vs->dev.lock);
	return c != NULL;
}

/* Something happened on a connection's host socket. */
static void conn_event(void *opaque, unsigned events)
{
	struct conn *c = opaque;
	struct vsock *vs = c->vs;

	pthread_mutex_lock(&vs->dev.lock);
	if (c->state == CONN_REQUEST)
		c->reset_due = true; /* hung up: the guest gets a reset instead */
	else if (c->state == CONN_OPEN && (events & LOOP_OUT) && !flush_pending(c))
		c->reset_due = true;
	if (c->state == CONN_OPEN && (events & (LOOP_IN | LOOP_ERR)))
		c->host_readable = true;
	rx_pump(vs);
	sync_interest(vs);
	pthread_mutex_unlock(&vs->dev.lock);
}

/* The loop's half of a driver reset: close what vs_reset() ended. */
static void close_ended(void *opaque)
{
	struct vsock *vs = opaque;

	pthread_mutex_lock(&vs->dev.lock);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs->conn[i].state == CONN_CLOSING)
			conn_close(&vs->conn[i]);
	sync_interest(vs);
	pthread_mutex_unlock(&vs->dev.lock);
}

/* On the vCPU thread that wrote the status: the driver is gone, and every connection with it
 * ends (the host programs see EOF once the loop closes them). */
static void vs_reset(struct virtio_dev *dev)
{
	struct vsock *vs = to_vs(dev);
	bool ended = false;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		if (vs->conn[i].state >= CONN_REQUEST) {
			vs->conn[i].state = CONN_CLOSING;
			ended = true;
		}
	}
	if (ended)
		loop_task_schedule(&vs->close_task);
	vs->nr_resets = 0;
	vs->rx_waiting = false;
}

/* After a restore the host side is new and every connection the guest had is gone: tell the
 * driver with a transport reset event (§5.10.6.7), as Firecracker does; it then resets its
 * sockets. The event queue holds buffers the driver posted for this. */
static void vs_restored(struct virtio_dev *dev)
{
	struct virtq *q = &dev->q[EVQ];
	struct virtio_vsock_event ev = { .id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET };
	struct virtq_chain *ch = &to_vs(dev)->chain;
	int ret;

	if (!q->ready)
		return;
	ret = virtq_pop(dev->mem, q, ch);
	if (ret < 0 || (ret > 0 && ch->in_len < sizeof(ev))) {
		virtio_dev_needs_reset(dev, "malformed event queue buffer");
		return;
	}
	if (ret == 0) {
		log_warn("vsock: the guest posted no event buffer; it was not told of the restore");
		return;
	}
	virtq_chain_write(ch, 0, &ev, sizeof(ev));
	virtio_dev_complete(dev, EVQ, ch->head, sizeof(ev));
}

/* Close every host socket and the host side, release @vs's own memory. */
static void close_host(struct vsock *vs)
{
	loop_forget(vs->host->loop, vs); /* the sockets' watches and the close task */
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		conn_close(&vs->conn[i]);
	vsock_host_free(vs->hostside);
	free(vs);
}

static unsigned vs_counters(void *state, struct device_counter *out, unsigned max)
{
	struct vsock *vs = to_vs(state);
	struct vsock_stats s;

	pthread_mutex_lock(&vs->dev.lock);
	s = vs->stats;
	pthread_mutex_unlock(&vs->dev.lock);
	const struct device_counter all[] = {
		{ "conns_added", s.conns_added }, { "conns_killed", s.conns_killed },
		{ "conns_removed", s.conns_removed }, { "rx_packets_count", s.rx_packets },
		{ "rx_bytes_count", s.rx_bytes }, { "tx_packets_count", s.tx_packets },
		{ "tx_bytes_count", s.tx_bytes }, { "tx_buffer_full_count", s.tx_buffer_full },
	};
	return device_counters_copy(out, max, all, sizeof(all) / sizeof(all[0]));
}

static void vs_free(struct virtio_dev *dev)
{
	virtio_dev_destroy(dev);
	close_host(to_vs(dev));
}

static const struct virtio_dev_ops vsock_ops = {
	.device_id = VIRTIO_ID_VSOCK,
	.nr_queues = 3,
	.queue_size = VSOCK_QUEUE_SIZE,
	.pci_class = PCI_CLASS_CODE_UNCLASSIFIED,
	.config_len = sizeof(struct virtio_vsock_config),
	.read_config = vs_read_config,
	.queue_notify = vs_queue_notify,
	.reset = vs_reset,
	.restored = vs_restored,
	.free = vs_free,
};

static int vs_create(struct dev_host *host, const void *config, unsigned index, void **state,
		     struct error *e)
{
	const struct vsock_config *cfg = config;
	struct vsock *vs = calloc(1, sizeof(*vs));
	int ret;

	if (!vs)
		return error_set(e, ERROR_RUNTIME, "vsock: out of memory");
	vs->host = host;
	vs->guest_cid = cfg->guest_cid;
	vs->config.guest_cid = cfg->guest_cid;
	vs->next_port = VSOCK_EPHEMERAL_FIRST;
	loop_task_init(host->loop, &vs->close_task, vs, close_ended, vs);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		vs->conn[i] = (struct conn){ .vs = vs, .fd = -1 };
	ret = virtio_dev_init(&vs->dev, &vsock_ops, vs, host->mem);
	if (ret) {
		free(vs);
		return error_set(e, ERROR_RUNTIME, "vsock: %s", strerror(-ret));
	}
	ret = vsock_host_open(host, cfg->uds_path,
			      &(struct vsock_host_cb){ .connect_request = connect_request,
						       .opaque = vs },
			      &vs->hostside, e);
	if (ret) {
		virtio_dev_destroy(&vs->dev);
		free(vs);
		return ret;
	}
	*state = &vs->dev;
	return 0;
}

const struct device_class virtio_vsock_class = {
	.name = "vsock",
	.kind = DEVICE_VIRTIO,
	.max = 1,
	.create = vs_create,
	.counters = vs_counters,
};
