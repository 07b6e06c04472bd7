/* SPDX-License-Identifier: Apache-2.0 */
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
#include "kiln/listener.h"
#include "kiln/log.h"

#define CONSOLE_FILE_MAX (1ull << 30) /* by default: a guest cannot fill the host's disk */
#define CONSOLE_MAX_IOV 256           /* a descriptor chain's buffers (VIRTQ_CHAIN_MAX) */

struct console_host {
	struct loop *loop;
	struct console_host_cb cb;
	char *path;               /* the file's */
	struct listener listener; /* socket host side */
	int client_fd;            /* the connected client, or -1 */
	int out_fd;               /* file host side, else -1 */
	uint64_t written, limit;  /* bytes into the file, at most limit */
	struct log_once limit_hit;
	bool want_input;
	bool input_ended;         /* the client shut its sending side with input still unread */
	unsigned client_events;   /* what it is watched for */
};

static void drop_client(struct console_host *h)
{
	loop_unwatch(h->loop, h->client_fd);
	close(h->client_fd);
	h->client_fd = -1;
	h->input_ended = false;
}

/* Watch for what the state calls for: a new client while there is none; the client's input
 * while the device wants it, else only its hang-up (nothing once its input ended: the guest
 * reads what is left, then the end, and the client is dropped). */
static void sync_interest(struct console_host *h)
{
	unsigned client = h->want_input ? LOOP_IN : h->input_ended ? 0 : LOOP_HUP;

	if (h->listener.loop)
		listener_pause(&h->listener, h->client_fd >= 0);
	if (h->client_fd >= 0 && client != h->client_events &&
	    loop_set_events(h->loop, h->client_fd, client) == 0)
		h->client_events = client;
}

static void client_event(void *opaque, unsigned events)
{
	struct console_host *h = opaque;

	if (h->client_events == LOOP_HUP) { /* gone, or done sending, while the guest took no input */
		char c;

		if (recv(h->client_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
			h->input_ended = true; /* input waits for the guest; the client may still read */
		else
			drop_client(h);
		sync_interest(h);
		return;
	}
	h->cb.input(h->cb.opaque);
}

/* A client connected (the listener pauses while there is one). */
static void client_accepted(void *opaque, int fd)
{
	struct console_host *h = opaque;

	if (h->client_fd < 0 && loop_watch(h->loop, h, fd, 0, client_event, h) == 0) {
		h->client_fd = fd;
		h->client_events = 0;
	} else {
		close(fd);
	}
	sync_interest(h);
}

int console_host_open(struct dev_host *host, const struct console_config *cfg,
		      const struct console_host_cb *cb, struct console_host **out, struct error *e)
{
	struct console_host *h = calloc(1, sizeof(*h));
	int ret = 0;

	if (!h)
		return error_set(e, ERROR_RUNTIME, "console: out of memory");
	*h = (struct console_host){ .loop = host->loop, .cb = *cb, .client_fd = -1, .out_fd = -1,
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
		ret = listener_open(&h->listener, host->loop, "console", cfg->path, 4,
				    client_accepted, h, e);
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
	listener_close(&h->listener);
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
