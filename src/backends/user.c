/* SPDX-License-Identifier: Apache-2.0 */
/* user — user-mode networking for virtio-net through libslirp, see include/kiln/net.h.
 *
 * slirp is a TCP/IP stack in kiln's process: the guest's frames go in through slirp_input(),
 * its host sockets and timers are served by a loop_poller on kiln's event loop, and the frames
 * it answers with are queued here and offered to the guest from the loop, never from inside
 * send() (the device lock is held there). No root and no host set-up are needed: the guest
 * gets 10.0.2.15 by DHCP, 10.0.2.2 is the host's loopback, 10.0.2.3 forwards DNS to the host's
 * resolver (and IPv6 as QEMU sets it up: fec0::/64).
 *
 * What the guest may reach is the user's choice (struct net_config): restrict=on keeps it off
 * the host and the outside (only hostfwd connects, from outside in), host-loopback=off keeps
 * 10.0.2.2 from reaching the host's loopback services. Every flow the guest starts is a host
 * socket: at max_flows open ones (all of slirp's sockets, polled or not: count_flows()), its
 * new connections (a TCP SYN) and datagrams (UDP, ICMP echo) are dropped, counted, and logged
 * once, until flows end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <slirp/libslirp.h>

#include "kiln/devices.h"
#include "kiln/dynlib.h"
#include "kiln/log.h"
#include "kiln/net_backend.h"

/* libslirp, loaded by net_user_library_load() (see kiln/dynlib.h). */
#define SLIRP_FUNCTIONS(X)              \
	X(slirp_add_hostfwd)            \
	X(slirp_cleanup)                \
	X(slirp_connection_info)        \
	X(slirp_handle_timer)           \
	X(slirp_input)                  \
	X(slirp_new)                    \
	X(slirp_pollfds_fill)           \
	X(slirp_pollfds_poll)

DYNLIB_LIBRARY(slirp, SLIRP_FUNCTIONS, "libslirp.so.0", "user-net",
	       "user-mode networking (--net user)", "recommended");

int net_user_library_load(char *err, size_t errlen)
{
	return DYNLIB_LOAD(slirp, err, errlen);
}

#define USER_QUEUE 256u  /* frames slirp produced that wait for the guest's buffers */
#define USER_MAX_FLOWS 512u /* host sockets for the guest's flows, unless configured */
#define USER_TIMERS 4u

struct user_timer {
	bool used;
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms;  /* -1: not armed */
};

struct user {
	struct net_backend be;
	struct loop *loop;              /* serves the slirp poller, owned by this backend */
	Slirp *slirp;
	bool blocked;                   /* the guest had no room: wait for rx_resume() */
	struct iovec queue[USER_QUEUE]; /* a ring of malloc'd frames */
	unsigned head, count;
	struct pollfd *fds;             /* the loop's array while prepare/dispatch run */
	unsigned nfds, maxfds;
	struct user_timer timer[USER_TIMERS];
	unsigned listening;             /* hostfwd sockets among slirp's */
	unsigned flows, max_flows;      /* the guest's: an estimate no lower than the true count
					   (but for hostfwd connections made since the last exact
					   count), plus the connections opened since */
	unsigned counted;               /* the last exact count (count_flows()) */
	unsigned opened;                /* flows the guest may have opened since then */
	bool exact;                     /* counted exactly since the last prepare() */
	struct log_once guest_error, too_many_flows;
	uint8_t txbuf[NET_MAX_FRAME];
};

static struct user *to_user(struct net_backend *be) { return (struct user *)be; }

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* slirp's callbacks (SlirpCb), all on the event loop thread. */
static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user *u = opaque;
	void *copy;

	if (u->count == USER_QUEUE || !(copy = malloc(len))) {
		u->be.stats.rx_dropped++;
		return (ssize_t)len;
	}
	memcpy(copy, buf, len);
	u->queue[(u->head + u->count++) % USER_QUEUE] = (struct iovec){ copy, len };
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct user *u = opaque;

	if (log_once_first(&u->guest_error))
		log_warn("user-mode network: the guest sent a bad packet: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct user *u = opaque;

	for (unsigned i = 0; i < USER_TIMERS; i++) {
		if (!u->timer[i].used) {
			u->timer[i] = (struct user_timer){ .used = true, .id = id, .cb_opaque = cb_opaque,
							   .expire_ms = -1 };
			return &u->timer[i];
		}
	}
	log_err("user-mode network: slirp asked for more than %u timers", USER_TIMERS);
	return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
	if (timer)
		((struct user_timer *)timer)->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	if (timer)
		((struct user_timer *)timer)->expire_ms = expire_ms;
}

/* Descriptors are collected afresh before every sleep (slirp_pollfds_fill), so there is
 * nothing to register, and nothing to wake: slirp only runs on the loop's own thread. */
static void cb_poll_fd(int fd, void *opaque) {}
static void cb_notify(void *opaque) {}

static const SlirpCb user_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_poll_fd,
	.unregister_poll_fd = cb_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

static int add_poll(int fd, int events, void *opaque)
{
	struct user *u = opaque;
	short ev = 0;

	if (u->nfds == u->maxfds) /* the loop offers twice as many next turn */
		return -1;
	ev |= (events & SLIRP_POLL_IN) ? POLLIN : 0;
	ev |= (events & SLIRP_POLL_OUT) ? POLLOUT : 0;
	ev |= (events & SLIRP_POLL_PRI) ? POLLPRI : 0;
	u->fds[u->nfds] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)u->nfds++;
}

static int get_revents(int idx, void *opaque)
{
	struct user *u = opaque;
	short re;

	if (idx < 0 || (unsigned)idx >= u->nfds)
		return 0;
	re = u->fds[idx].revents;
	return ((re & POLLIN) ? SLIRP_POLL_IN : 0) | ((re & POLLOUT) ? SLIRP_POLL_OUT : 0) |
	       ((re & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((re & POLLERR) ? SLIRP_POLL_ERR : 0) |
	       ((re & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* The guest's flows exactly: every socket slirp_connection_info() lists (a line each: "  TCP[",
 * "  UDP[", "  ICMP["), hostfwd listeners ("HOST_FORWARD") left out. The poll set alone misses
 * sockets slirp does not poll at the moment, such as a TCP connection whose host side is up
 * while the guest's ACK is still to come, which a guest could hold by the thousand. O(sockets),
 * so done only when the estimate reaches the cap, at most once per prepare() and once more per
 * loop turn for a frame that would open a flow. */
static void count_flows(struct user *u)
{
	char *info = slirp.slirp_connection_info(u->slirp), *line = info, *end;
	unsigned n = 0;

	while (line && *line) {
		end = strchr(line, '\n');
		if (end)
			*end = 0;
		if ((!strncmp(line, "  TCP[", 6) || !strncmp(line, "  UDP[", 6) ||
		     !strncmp(line, "  ICMP[", 7)) && !strstr(line, "HOST_FORWARD"))
			n++;
		line = end ? end + 1 : NULL;
	}
	free(info); /* g_string_free()'s buffer: GLib allocates with malloc */
	u->flows = u->counted = n;
	u->opened = 0;
	u->exact = true;
}

static unsigned user_prepare(void *opaque, struct pollfd *fds, unsigned max, int *timeout_ms)
{
	struct user *u = opaque;
	uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	int64_t now = now_ms();

	u->fds = fds;
	u->nfds = 0;
	u->maxfds = max;
	slirp.slirp_pollfds_fill(u->slirp, &t, add_poll, u);
	/* Sockets end without a word from slirp, and move in and out of the poll set: the
	 * estimate stays at the last exact count (or what slirp polls, hostfwd connections
	 * included, if more) plus what the guest opened since, and is recounted at the cap. */
	u->exact = false;
	u->flows = u->nfds > u->listening ? u->nfds - u->listening : 0;
	u->flows = (u->flows > u->counted ? u->flows : u->counted) + u->opened;
	if (u->flows >= u->max_flows)
		count_flows(u);
	for (unsigned i = 0; i < USER_TIMERS; i++) {
		int64_t left;

		if (!u->timer[i].used || u->timer[i].expire_ms < 0)
			continue;
		left = u->timer[i].expire_ms - now;
		left = left < 0 ? 0 : left;
		if ((uint64_t)left < t)
			t = (uint32_t)left;
	}
	if (u->count && !u->blocked)
		t = 0;
	*timeout_ms = t > INT32_MAX ? -1 : (int)t;
	return u->nfds;
}

static void user_dispatch(void *opaque, const struct pollfd *fds, unsigned n)
{
	struct user *u = opaque;
	int64_t now = now_ms();

	u->fds = (struct pollfd *)fds;
	u->nfds = n;
	slirp.slirp_pollfds_poll(u->slirp, 0, get_revents, u);
	for (unsigned i = 0; i < USER_TIMERS; i++) {
		struct user_timer *t = &u->timer[i];

		if (t->used && t->expire_ms >= 0 && t->expire_ms <= now) {
			t->expire_ms = -1;
			slirp.slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
		}
	}
	while (u->count && !u->blocked) {
		struct iovec *f = &u->queue[u->head];

		if (!u->be.rx.deliver(u->be.rx.opaque, f, 1)) {
			u->blocked = true;
			break;
		}
		free(f->iov_base);
		u->head = (u->head + 1) % USER_QUEUE;
		u->count--;
	}
}

/* Whether Ethernet frame @f of @len bytes would have slirp open a host socket: a TCP SYN, a
 * UDP datagram (DHCP aside: slirp answers it itself), an ICMP echo request. */
/* What frame @f does to the guest's flows: FLOW_NEW for a connection slirp gives a socket of
 * its own (a TCP SYN), FLOW_MAYBE for a datagram that opens one unless its flow exists (UDP but
 * DHCP, ICMP echo), FLOW_NONE otherwise. */
enum flow { FLOW_NONE, FLOW_NEW, FLOW_MAYBE };

static enum flow flow_of(const uint8_t *f, size_t len)
{
	size_t l4;
	uint8_t proto;

	if (len >= ETH_HLEN + 20 && f[12] == 0x08 && f[13] == 0x00) { /* IPv4 */
		proto = f[ETH_HLEN + 9];
		l4 = ETH_HLEN + (f[ETH_HLEN] & 0xfu) * 4;
	} else if (len >= ETH_HLEN + 40 && f[12] == 0x86 && f[13] == 0xdd) { /* IPv6 */
		proto = f[ETH_HLEN + 6];
		l4 = ETH_HLEN + 40;
	} else {
		return FLOW_NONE;
	}
	switch (proto) {
	case IPPROTO_TCP: /* SYN, no ACK */
		return len >= l4 + 14 && (f[l4 + 13] & 0x12) == 0x02 ? FLOW_NEW : FLOW_NONE;
	case IPPROTO_UDP:
		return len >= l4 + 4 && !(f[l4 + 2] == 0 && f[l4 + 3] == 67) ? FLOW_MAYBE : FLOW_NONE;
	case IPPROTO_ICMP: return len > l4 && f[l4] == 8 ? FLOW_MAYBE : FLOW_NONE;
	case IPPROTO_ICMPV6: return len > l4 && f[l4] == 128 ? FLOW_MAYBE : FLOW_NONE;
	default: return FLOW_NONE;
	}
}

static int user_send(struct net_backend *be, const struct iovec *iov, int n)
{
	struct user *u = to_user(be);
	enum flow flow;
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		if (iov[i].iov_len > sizeof(u->txbuf) - len)
			return -EMSGSIZE;
		memcpy(u->txbuf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	flow = flow_of(u->txbuf, len);
	if (u->flows >= u->max_flows && flow != FLOW_NONE && !u->exact)
		count_flows(u);
	if (u->flows >= u->max_flows && flow != FLOW_NONE) {
		if (log_once_first(&u->too_many_flows))
			log_warn("user-mode network: the guest has %u flows open (max-flows); its new "
				 "ones are dropped until some end", u->flows);
		return -EMFILE;
	}
	slirp.slirp_input(u->slirp, u->txbuf, (int)len);
	/* Counted at once: SYNs sent in one burst cannot overshoot the cap before the next
	 * prepare() counts slirp's sockets again. */
	if (flow == FLOW_NEW)
		u->flows++;
	if (flow != FLOW_NONE)
		u->opened++;
	return 0;
}

static void user_rx_resume(struct net_backend *be)
{
	to_user(be)->blocked = false;
}

static int user_set_offloads(struct net_backend *be, uint64_t features)
{
	return 0; /* no virtio-net header: the device offers no offloads */
}

static void user_free(struct net_backend *be)
{
	struct user *u = to_user(be);

	if (u->loop)
		loop_forget(u->loop, u);
	if (u->slirp)
		slirp.slirp_cleanup(u->slirp);
	for (; u->count; u->count--, u->head = (u->head + 1) % USER_QUEUE)
		free(u->queue[u->head].iov_base);
	free(u);
}

static const struct net_backend_ops user_ops = {
	.send = user_send,
	.rx_resume = user_rx_resume,
	.set_offloads = user_set_offloads,
	.free = user_free,
};

struct net_backend *net_user_open(struct dev_host *host, const struct net_config *cfg,
				  struct error *e)
{
	SlirpConfig sc = { .version = 4, .in_enabled = true, .in6_enabled = true, .vprefix_len = 64 };
	struct user *u;
	int ret;

	if (!slirp.slirp_new) {
		error_set(e, ERROR_RUNTIME, "user-mode network: libslirp is not loaded");
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		error_set(e, ERROR_RUNTIME, "user-mode network: out of memory");
		return NULL;
	}
	u->be = (struct net_backend){ .ops = &user_ops };
	u->loop = host->loop;
	u->max_flows = cfg->max_flows ? cfg->max_flows : USER_MAX_FLOWS;
	u->listening = cfg->nr_hostfwd;
	sc.restricted = cfg->restrict_guest;
	sc.disable_host_loopback = cfg->no_host_loopback;
	inet_pton(AF_INET, "10.0.2.0", &sc.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &sc.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &sc.vhost);
	inet_pton(AF_INET, "10.0.2.15", &sc.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &sc.vnameserver);
	inet_pton(AF_INET6, "fec0::", &sc.vprefix_addr6);
	inet_pton(AF_INET6, "fec0::2", &sc.vhost6);
	inet_pton(AF_INET6, "fec0::3", &sc.vnameserver6);
	u->slirp = slirp.slirp_new(&sc, &user_callbacks, u);
	if (!u->slirp) {
		error_set(e, ERROR_RUNTIME, "user-mode network: libslirp could not start");
		goto fail;
	}
	for (unsigned i = 0; i < cfg->nr_hostfwd; i++) {
		const struct net_hostfwd *f = &cfg->hostfwd[i];

		errno = 0;
		if (slirp.slirp_add_hostfwd(u->slirp, f->udp, f->host_addr, f->host_port, f->guest_addr,
				      f->guest_port) < 0) {
			error_set(e, ERROR_RUNTIME, "hostfwd=%s: cannot listen on host port %u: %s",
				  f->text, f->host_port, errno ? strerror(errno) : "in use");
			goto fail;
		}
	}
	ret = loop_add_poller(host->loop, u, &(struct loop_poller){ .prepare = user_prepare,
								    .dispatch = user_dispatch,
								    .opaque = u });
	if (ret) {
		error_set(e, ERROR_RUNTIME, "user-mode network: event loop: %s", strerror(-ret));
		goto fail;
	}
	return &u->be;
fail:
	user_free(&u->be);
	return NULL;
}
