/* SPDX-License-Identifier: Apache-2.0 */
/* vsock_host — Firecracker's host side of vsock over Unix sockets, see include/kiln/vsock_host.h.
 *
 * A host program's connection waits here until its line "CONNECT <port>\n" is complete (at
 * most VSOCK_LINE_MAX bytes, at most VSOCK_HOST_PENDING such connections at once: when all are
 * taken, a new one replaces the one that has waited longest, so programs that connect and
 * say nothing cannot lock the others out); then the socket goes to the device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kiln/devices.h"
#include "kiln/listener.h"
#include "kiln/log.h"
#include "kiln/vsock_host.h"

#define VSOCK_LINE_MAX 32                  /* "CONNECT <port>\n" */
#define VSOCK_HOST_PENDING 64              /* connections writing their line at once */
#define VSOCK_PORT_SUFFIX 11               /* "_<port>" */

struct pending {
	struct vsock_host *h;
	int fd;                 /* -1: a free slot */
	uint64_t since;         /* when it connected (the host's count of connections) */
	unsigned len;
	char line[VSOCK_LINE_MAX];
};

struct vsock_host {
	struct loop *loop;
	struct vsock_host_cb cb;
	struct listener listener;
	uint64_t connections;           /* accepted so far */
	struct pending pending[VSOCK_HOST_PENDING];
	struct log_once crowded;
};

static void pending_close(struct pending *p)
{
	loop_unwatch(p->h->loop, p->fd);
	close(p->fd);
	p->fd = -1;
	p->len = 0;
}

/* Bytes of a host program's line; once it is whole, the connection goes to the device. */
static void line_readable(void *opaque, unsigned events)
{
	struct pending *p = opaque;
	ssize_t n = read(p->fd, p->line + p->len, sizeof(p->line) - 1 - p->len);
	unsigned long port;
	char *nl, *end;
	int fd;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		pending_close(p);
		return;
	}
	p->len += (unsigned)n;
	p->line[p->len] = 0;
	nl = strchr(p->line, '\n');
	if (!nl) {
		if (p->len == sizeof(p->line) - 1)
			pending_close(p); /* no line: not our protocol */
		return;
	}
	*nl = 0;
	errno = 0;
	port = strncmp(p->line, "CONNECT ", 8) ? 0 : strtoul(p->line + 8, &end, 10);
	if (!port || errno || *end || port > UINT32_MAX || nl + 1 != p->line + p->len) {
		pending_close(p);
		return;
	}
	fd = p->fd;
	loop_unwatch(p->h->loop, fd);
	p->fd = -1;
	p->len = 0;
	if (!p->h->cb.connect_request(p->h->cb.opaque, fd, (uint32_t)port))
		close(fd);
}

/* A host program connected: it waits for its line in a free slot, or the oldest one's. */
static void accepted(void *opaque, int fd)
{
	struct vsock_host *h = opaque;
	struct pending *p = &h->pending[0];

	for (unsigned i = 0; i < VSOCK_HOST_PENDING && p->fd >= 0; i++)
		if (h->pending[i].fd < 0 || h->pending[i].since < p->since)
			p = &h->pending[i];
	if (p->fd >= 0) {
		if (log_once_first(&h->crowded))
			log_warn("vsock %s: %d connections waiting for their CONNECT line; the oldest "
				 "are closed", h->listener.path, VSOCK_HOST_PENDING);
		pending_close(p);
	}
	if (loop_watch(h->loop, h, fd, LOOP_IN, line_readable, p)) {
		close(fd);
		return;
	}
	p->fd = fd;
	p->len = 0;
	p->since = h->connections++;
}

int vsock_host_open(struct dev_host *host, const char *uds_path, const struct vsock_host_cb *cb,
		    struct vsock_host **out, struct error *e)
{
	struct vsock_host *h;
	int ret;

	if (strlen(uds_path) + VSOCK_PORT_SUFFIX >= sizeof(h->listener.path))
		return error_set(e, ERROR_USAGE, "vsock: uds_path %s is longer than %zu bytes",
				 uds_path, sizeof(h->listener.path) - 1 - VSOCK_PORT_SUFFIX);
	h = calloc(1, sizeof(*h));
	if (!h)
		return error_set(e, ERROR_RUNTIME, "vsock: out of memory");
	h->loop = host->loop;
	h->cb = *cb;
	for (unsigned i = 0; i < VSOCK_HOST_PENDING; i++)
		h->pending[i] = (struct pending){ .h = h, .fd = -1 };
	ret = listener_open(&h->listener, host->loop, "vsock", uds_path, 128, accepted, h, e);
	if (ret) {
		free(h);
		return ret;
	}
	*out = h;
	return 0;
}

void vsock_host_free(struct vsock_host *h)
{
	if (!h)
		return;
	loop_forget(h->loop, h);
	for (unsigned i = 0; i < VSOCK_HOST_PENDING; i++)
		if (h->pending[i].fd >= 0)
			close(h->pending[i].fd);
	listener_close(&h->listener);
	free(h);
}

int vsock_host_connect(struct vsock_host *h, uint32_t port)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char name[sizeof(h->listener.path) + VSOCK_PORT_SUFFIX];
	int fd;

	/* vsock_host_open() left room for the suffix: it always fits. */
	snprintf(name, sizeof(name), "%s_%u", h->listener.path, port);
	memcpy(addr.sun_path, name, sizeof(addr.sun_path) - 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

int vsock_host_accepted(int fd, uint32_t host_port)
{
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", host_port);

	return write(fd, ok, (size_t)n) == n ? 0 : -EPIPE;
}
