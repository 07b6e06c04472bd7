/* console_host — the virtio console's host side, see include/kiln/console_host.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kiln/console_host.h"
#include "kiln/devices.h"
#include "kiln/log.h"

#define CONSOLE_FILE_MAX (1ull << 30) /* by default: a guest cannot fill the host's disk */
#define CONSOLE_MAX_IOV 256           /* a descriptor chain's buffers (VIRTQ_CHAIN_MAX) */

struct console_host {
	struct loop *loop;
	struct console_host_cb cb;
	char *path;
	int listen_fd;            /* socket host side, else -1 */
	int client_fd;            /* the connected client, or -1 */
	int out_fd;               /* file host side, else -1 */
	uint64_t written, limit;  /* bytes into the file, at most limit */
	struct log_once limit_hit;
	bool want_input;
	unsigned listen_events, client_events; /* what they are watched for */
};

static void drop_client(struct console_host *h)
{
	loop_unwatch(h->loop, h->client_fd);
	close(h->client_fd);
	h->client_fd = -1;
}

/* Watch for what the state calls for: a new client while there is none; the client's input
 * while the device wants it, else only its hang-up. */
static void sync_interest(struct console_host *h)
{
	unsigned listen = h->client_fd < 0 ? LOOP_IN : 0;
	unsigned client = h->want_input ? LOOP_IN : LOOP_HUP;

	if (h->listen_fd >= 0 && listen != h->listen_events &&
	    loop_set_events(h->loop, h->listen_fd, listen) == 0)
		h->listen_events = listen;
	if (h->client_fd >= 0 && client != h->client_events &&
	    loop_set_events(h->loop, h->client_fd, client) == 0)
		h->client_events = client;
}

static void client_event(void *opaque, unsigned events)
{
	struct console_host *h = opaque;

	if (h->client_events == LOOP_HUP) { /* gone while the guest took no input */
		drop_client(h);
		sync_interest(h);
		return;
	}
	h->cb.input(h->cb.opaque);
}

static void listen_event(void *opaque, unsigned events)
{
	struct console_host *h = opaque;
	int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0 && h->client_fd < 0 && loop_watch(h->loop, h, fd, 0, client_event, h) == 0) {
		h->client_fd = fd;
		h->client_events = 0;
	} else if (fd >= 0) {
		close(fd);
	}
	sync_interest(h);
}

/* The listening socket at @path; -errno with @e set. */
static int listen_at(struct console_host *h, const char *path, struct error *e)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return error_set(e, ERROR_USAGE, "console: socket path %s is longer than %zu bytes",
				 path, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	h->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->listen_fd < 0 || bind(h->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(h->listen_fd, 4)) {
		err = errno;
		if (h->listen_fd >= 0)
			close(h->listen_fd); /* not bound: the path is not ours to remove */
		h->listen_fd = -1;
		return error_set(e, err == EADDRINUSE || err == ENOENT || err == EACCES
					    ? ERROR_USAGE : ERROR_RUNTIME,
				 "console: bind %s: %s", path, strerror(err));
	}
	h->path = strdup(path);
	err = h->path ? loop_watch(h->loop, h, h->listen_fd, LOOP_IN, listen_event, h) : -ENOMEM;
	if (err)
		return error_set(e, ERROR_RUNTIME, "console: %s: %s", path, strerror(-err));
	h->listen_events = LOOP_IN;
	return 0;
}

int console_host_open(struct dev_host *host, const struct console_config *cfg,
		      const struct console_host_cb *cb, struct console_host **out, struct error *e)
{
	struct console_host *h = calloc(1, sizeof(*h));
	int ret = 0;

	if (!h)
		return error_set(e, ERROR_RUNTIME, "console: out of memory");
	*h = (struct console_host){ .loop = host->loop, .cb = *cb, .listen_fd = -1,
				    .client_fd = -1, .out_fd = -1,
				    .limit = cfg->file_limit ? cfg->file_limit : CONSOLE_FILE_MAX };
	if (cfg->kind == CONSOLE_FILE) {
		h->out_fd = open(cfg->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		h->path = strdup(cfg->path);
		if (h->out_fd >= 0 && !h->path)
			ret = error_set(e, ERROR_RUNTIME, "console: out of memory");
		else if (h->out_fd < 0)
			ret = error_set(e, ERROR_USAGE, "console: open %s: %s", cfg->path,
					strerror(errno));
	} else {
		ret = listen_at(h, cfg->path, e);
	}
	if (ret) {
		console_host_free(h);
		return ret;
	}
	*out = h;
	return 0;
}

void console_host_free(struct console_host *h)
{
	if (!h)
		return;
	loop_forget(h->loop, h);
	if (h->client_fd >= 0)
		close(h->client_fd);
	if (h->out_fd >= 0)
		close(h->out_fd);
	if (h->listen_fd >= 0) {
		close(h->listen_fd);
		if (h->path)
			unlink(h->path); /* the socket's: a file stays */
	}
	free(h->path);
	free(h);
}

size_t console_host_write(struct console_host *h, const struct iovec *iov, int n)
{
	int fd = h->out_fd >= 0 ? h->out_fd : h->client_fd;
	struct iovec cut[CONSOLE_MAX_IOV];
	uint64_t room = h->limit - h->written, sum = 0;
	ssize_t done;
	int k = 0;

	if (fd < 0 || n <= 0)
		return 0;
	for (; fd == h->out_fd && k < n && k < CONSOLE_MAX_IOV && sum < room; k++) { /* its limit */
		cut[k] = iov[k];
		if (cut[k].iov_len > room - sum)
			cut[k].iov_len = room - sum;
		sum += cut[k].iov_len;
	}
	if (fd == h->out_fd && !k) {
		if (log_once_first(&h->limit_hit))
			log_warn("console: %s reached its limit of %llu MiB; the guest's further output "
				 "is dropped", h->path, (unsigned long long)(h->limit >> 20));
		return 0;
	}
	done = fd == h->out_fd ? writev(fd, cut, k) : writev(fd, iov, n);
	if (done > 0 && fd == h->out_fd)
		h->written += (uint64_t)done;
	if (done < 0 && fd == h->client_fd && errno != EAGAIN && errno != EINTR) {
		drop_client(h); /* the client went away */
		sync_interest(h);
	}
	return done < 0 ? 0 : (size_t)done;
}

ssize_t console_host_read(struct console_host *h, const struct iovec *iov, int n)
{
	ssize_t got;

	if (h->client_fd < 0)
		return -1;
	got = readv(h->client_fd, iov, n);
	if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
		return got > 0 ? got : 0;
	drop_client(h); /* end of the client's input: the next one may connect */
	sync_interest(h);
	return -1;
}

void console_host_want_input(struct console_host *h, bool want)
{
	h->want_input = want;
	sync_interest(h);
}
