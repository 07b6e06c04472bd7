/* SPDX-License-Identifier: Apache-2.0 */
/* mig_channel — a migration's connection: its address, its socket and its bytes, plain or
 * through mig_tls.c, see include/kiln/mig_channel.h.
 *
 * The socket blocks, with SO_SNDTIMEO and SO_RCVTIMEO at MIG_IO_TIMEOUT_S: a send or receive
 * that makes no progress for that long fails with EAGAIN, which plain sends and receives and
 * GnuTLS's transport (GNUTLS_E_AGAIN) both report as -ETIMEDOUT.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "kiln/log.h"
#include "mig_tls.h"

#define MIG_NEXT_ADDRESS_MS 100 /* how long one of several addresses may take to refuse */

struct mig_channel {
	int fd;
	const struct mig_creds *creds;
	struct mig_tls *tls;             /* after a TLS handshake */
	bool ready;                      /* after mig_channel_handshake() */
};

/* "tcp:HOST:PORT" into an address and HOST into @host; -EINVAL when it is not that. */
static int resolve(const char *url, bool listen, struct addrinfo **out, char *host,
		   size_t hostlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = listen ? AI_PASSIVE : 0 };
	const char *port;

	if (strncmp(url, "tcp:", 4) || !(port = strrchr(url + 4, ':')) ||
	    (size_t)(port - url - 4) >= hostlen || !port[1])
		return -EINVAL;
	memcpy(host, url + 4, (size_t)(port - url - 4));
	host[port - url - 4] = 0;
	return getaddrinfo(host[0] ? host : NULL, port + 1, &hints, out) ? -EINVAL : 0;
}

/* A name with more addresses than one (localhost: ::1, then 127.0.0.1): whether the
 * connection under way on @fd is refused within MIG_NEXT_ADDRESS_MS, the error if so (the next
 * address is then tried, as a blocking connect would), else 0. Bounds what a silent address
 * costs the caller's thread; the last address is left to mig_channel_connected(). */
static int refused_soon(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int why = 0;

	if (poll(&p, 1, MIG_NEXT_ADDRESS_MS) == 1 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &why, &len) < 0)
		why = errno;
	return why;
}

int mig_connect(const char *url, char *host, size_t hostlen, char *err, size_t errlen)
{
	struct addrinfo *ai;
	int fd = -1, saved = ECONNREFUSED;

	if (resolve(url, false, &ai, host, hostlen)) {
		snprintf(err, errlen, "\"%s\" is not tcp:HOST:PORT", url);
		return -EINVAL;
	}
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS)
			saved = errno;
		else if (!a->ai_next || !(saved = refused_soon(fd)))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", url, strerror(saved));
		return -EINVAL;
	}
	return fd;
}

/* "fd:N": a connected stream socket the caller handed over. */
static int inherited(const char *url, char *err, size_t errlen)
{
	const char *why = NULL;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(int);
	long n;
	char *end;
	int type, flags;

	errno = 0;
	n = strtol(url + 3, &end, 10);
	if (url[3] < '0' || url[3] > '9' || *end || errno || n > INT_MAX)
		why = "not fd:N with N a descriptor number";
	else if (fcntl((int)n, F_SETFD, FD_CLOEXEC) < 0)
		why = "not an open descriptor";
	else if (getsockopt((int)n, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		why = "not a socket";
	else if (type != SOCK_STREAM)
		why = "not a stream socket";
	else if (len = sizeof(peer), getpeername((int)n, (struct sockaddr *)&peer, &len) < 0)
		why = "not a connected socket";
	/* Callers written around an event loop (Go, tokio, asyncio) hand over non-blocking
	 * sockets; the channel's receive blocks, bounded by SO_RCVTIMEO. */
	else if ((flags = fcntl((int)n, F_GETFL)) < 0 ||
		 fcntl((int)n, F_SETFL, flags & ~O_NONBLOCK) < 0)
		why = "its file status flags cannot be set";
	if (why) {
		snprintf(err, errlen, "%s: %s", url, why);
		return -EINVAL;
	}
	return (int)n;
}

int mig_accept(const char *url, char *err, size_t errlen)
{
	struct addrinfo *ai;
	char host[256];
	int lfd, fd, one = 1;

	if (!strncmp(url, "fd:", 3))
		return inherited(url, err, errlen);
	if (resolve(url, true, &ai, host, sizeof(host))) {
		snprintf(err, errlen, "\"%s\" is not tcp:HOST:PORT or fd:N", url);
		return -EINVAL;
	}
	lfd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, ai->ai_addr, ai->ai_addrlen) || listen(lfd, 1)) {
		snprintf(err, errlen, "%s: %s", url, strerror(errno));
		freeaddrinfo(ai);
		if (lfd >= 0)
			close(lfd);
		return -EINVAL;
	}
	freeaddrinfo(ai);
	log_info("waiting for a migration on %s", url);
	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		snprintf(err, errlen, "%s: accept: %s", url, strerror(errno));
	close(lfd);
	return fd < 0 ? -EIO : fd;
}

int mig_channel_open(int fd, const struct mig_creds *creds, struct mig_channel **out)
{
	struct timeval tv = { .tv_sec = MIG_IO_TIMEOUT_S };
	struct mig_channel *c = NULL;
	int ret = 0, one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		ret = -errno;
	/* The stop-and-copy round ends with small records (the last pages, the state, the
	 * answer): Nagle's algorithm would hold each behind the peer's delayed ACK (40 ms on
	 * Linux), inside the downtime. Not a TCP socket (fd:N may be AF_UNIX): nothing to do. */
	else if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) && errno != EOPNOTSUPP &&
		 errno != ENOPROTOOPT)
		ret = -errno;
	else if (!(c = calloc(1, sizeof(*c))))
		ret = -ENOMEM;
	if (ret) {
		close(fd);
		return ret;
	}
	*c = (struct mig_channel){ .fd = fd, .creds = creds };
	*out = c;
	return 0;
}

int mig_channel_connected(struct mig_channel *c, char *err, size_t errlen)
{
	struct pollfd p = { .fd = c->fd, .events = POLLOUT };
	int flags = fcntl(c->fd, F_GETFL), why = 0, n;
	socklen_t len = sizeof(why);

	if (flags < 0 || !(flags & O_NONBLOCK))
		return 0;
	do
		n = poll(&p, 1, MIG_IO_TIMEOUT_S * 1000);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		why = n ? errno : ETIMEDOUT;
	else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &why, &len) < 0)
		why = errno;
	if (!why && fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		why = errno;
	if (why)
		snprintf(err, errlen, "connect: %s", strerror(why));
	return -why;
}

int mig_channel_handshake(struct mig_channel *c, const char *peer_host, char *err, size_t errlen)
{
	int ret = mig_creds_plain(c->creds) ? 0 :
		  mig_tls_open(c->creds, c->fd, peer_host, &c->tls, err, errlen);

	c->ready = !ret;
	return ret;
}

static int send_plain(int fd, const struct iovec *iov, unsigned n)
{
	struct iovec v[MIG_CHANNEL_IOV_MAX];
	struct msghdr msg = { .msg_iov = v, .msg_iovlen = n };

	if (n > MIG_CHANNEL_IOV_MAX)
		return -EINVAL;
	memcpy(v, iov, n * sizeof(*iov));
	while (msg.msg_iovlen) {
		ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			return sent == 0 ? -EIO : errno == EAGAIN ? -ETIMEDOUT : -errno;
		while (msg.msg_iovlen && (size_t)sent >= msg.msg_iov->iov_len) {
			sent -= (ssize_t)msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + sent;
			msg.msg_iov->iov_len -= (size_t)sent;
		}
	}
	return 0;
}

static int recv_plain(int fd, void *buf, uint64_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len > (1u << 30) ? (1u << 30) : len, MSG_WAITALL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += n;
		len -= (uint64_t)n;
	}
	return 0;
}

int mig_channel_send(struct mig_channel *c, const struct iovec *iov, unsigned n)
{
	if (!c->ready)
		return -ENOTCONN;
	return c->tls ? mig_tls_send(c->tls, iov, n) : send_plain(c->fd, iov, n);
}

int mig_channel_recv(struct mig_channel *c, void *buf, uint64_t len)
{
	if (!c->ready)
		return -ENOTCONN;
	return c->tls ? mig_tls_recv(c->tls, buf, len) : recv_plain(c->fd, buf, len);
}

int mig_channel_wait(struct mig_channel *c, unsigned seconds)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int n;

	if (c->tls && mig_tls_pending(c->tls))
		return 0;
	do
		n = poll(&pfd, 1, (int)(seconds * 1000));
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n ? 0 : -ETIMEDOUT;
}

void mig_channel_abort(struct mig_channel *c)
{
	shutdown(c->fd, SHUT_RDWR);
}

void mig_channel_close(struct mig_channel *c)
{
	if (!c)
		return;
	mig_tls_close(c->tls);
	close(c->fd);
	free(c);
}
