/* vsock_host — Firecracker's host side of vsock over Unix sockets, see include/kiln/vsock_host.h.
 *
 * A host program's connection waits here until its line "CONNECT <port>\n" is complete (at
 * most VSOCK_LINE_MAX bytes, at most VSOCK_HOST_PENDING such connections at once); then the
 * socket goes to the device. When accept() runs out of descriptors, listening pauses and is
 * retried after VSOCK_HOST_RETRY_NS, so the loop neither spins nor stops accepting for good.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/vsock_host.h"

#define VSOCK_LINE_MAX 32                  /* "CONNECT <port>\n" */
#define VSOCK_HOST_PENDING 64              /* connections writing their line at once */
#define VSOCK_HOST_RETRY_NS 100000000ull   /* accept again after running out of descriptors */
#define VSOCK_PORT_SUFFIX 12               /* "_<port>" with its NUL */

struct pending {
	struct vsock_host *h;
	int fd;                 /* -1: a free slot */
	unsigned len;
	char line[VSOCK_LINE_MAX];
};

struct vsock_host {
	struct loop *loop;
	struct vsock_host_cb cb;
	char *path;
	int listen_fd;
	struct loop_timer retry;        /* listening again after EMFILE */
	struct pending pending[VSOCK_HOST_PENDING];
	struct log_once trouble;
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

static void listen_again(void *opaque)
{
	struct vsock_host *h = opaque;

	if (loop_set_events(h->loop, h->listen_fd, LOOP_IN))
		loop_timer_arm(&h->retry, VSOCK_HOST_RETRY_NS, 0);
}

/* A host program connected. */
static void listen_readable(void *opaque, unsigned events)
{
	struct vsock_host *h = opaque;
	int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct pending *p = NULL;

	if (fd < 0) {
		if (errno != EMFILE && errno != ENFILE)
			return;
		if (log_once_first(&h->trouble))
			log_warn("vsock %s: out of file descriptors; host connections wait", h->path);
		if (loop_set_events(h->loop, h->listen_fd, 0) == 0)
			loop_timer_arm(&h->retry, VSOCK_HOST_RETRY_NS, 0);
		return;
	}
	for (unsigned i = 0; i < VSOCK_HOST_PENDING && !p; i++)
		if (h->pending[i].fd < 0)
			p = &h->pending[i];
	if (!p || loop_watch(h->loop, h, fd, LOOP_IN, line_readable, p)) {
		if (log_once_first(&h->trouble))
			log_warn("vsock %s: %d connections waiting for their CONNECT line; refusing "
				 "more", h->path, VSOCK_HOST_PENDING);
		close(fd);
		return;
	}
	p->fd = fd;
	p->len = 0;
}

int vsock_host_open(struct dev_host *host, const char *uds_path, const struct vsock_host_cb *cb,
		    struct vsock_host **out, struct error *e)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct vsock_host *h;
	int err;

	if (strlen(uds_path) + VSOCK_PORT_SUFFIX > sizeof(addr.sun_path))
		return error_set(e, ERROR_USAGE, "vsock: uds_path %s is longer than %zu bytes",
				 uds_path, sizeof(addr.sun_path) - VSOCK_PORT_SUFFIX);
	h = calloc(1, sizeof(*h));
	if (!h || !(h->path = strdup(uds_path))) {
		free(h);
		return error_set(e, ERROR_RUNTIME, "vsock: out of memory");
	}
	h->loop = host->loop;
	h->cb = *cb;
	loop_timer_init(h->loop, &h->retry, h, listen_again, h);
	for (unsigned i = 0; i < VSOCK_HOST_PENDING; i++)
		h->pending[i] = (struct pending){ .h = h, .fd = -1 };
	strcpy(addr.sun_path, uds_path);
	h->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->listen_fd < 0 || bind(h->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(h->listen_fd, 128)) {
		err = errno;
		error_set(e, err == EADDRINUSE || err == ENOENT || err == EACCES ? ERROR_USAGE
										 : ERROR_RUNTIME,
			  "vsock: bind %s: %s", uds_path, strerror(err));
		if (h->listen_fd >= 0)
			close(h->listen_fd); /* not bound: the path is not ours to remove */
		free(h->path);
		free(h);
		return error_code(e);
	}
	err = loop_watch(h->loop, h, h->listen_fd, LOOP_IN, listen_readable, h);
	if (err) {
		close(h->listen_fd);
		unlink(uds_path);
		free(h->path);
		free(h);
		return error_set(e, ERROR_RUNTIME, "vsock: event loop: %s", strerror(-err));
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
	close(h->listen_fd);
	unlink(h->path);
	free(h->path);
	free(h);
}

int vsock_host_connect(struct vsock_host *h, uint32_t port)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", h->path, port);
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
