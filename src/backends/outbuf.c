/* SPDX-License-Identifier: Apache-2.0 */
/* outbuf — a bounded, never-blocking writer for host output, see include/kiln/outbuf.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/log.h"
#include "kiln/loop.h"
#include "kiln/outbuf.h"

#define OUTBUF_FLUSH_WAIT_MS 1000 /* at exit, how long a reader may stall before the rest goes */

enum sink { SINK_FILE, SINK_SOCKET, SINK_STREAM };

struct outbuf {
	struct loop *loop;
	enum sink sink;
	int fd;                   /* the handle written to */
	bool own_fd;              /* a description of our own, closed with the buffer */
	int restore_flags;        /* the shared description's flags to put back, or -1 */
	bool watched;             /* fd is on the loop (not for regular files) */
	bool broken;              /* a write failed for good: the rest is dropped */
	uint64_t file_limit, written;
	void (*room)(void *opaque);
	void *opaque;
	struct loop_task drain;
	pthread_mutex_t lock;     /* everything below */
	uint8_t *buf;
	size_t cap, head, len;
	bool was_full;            /* a put() found no room: tell room() when there is */
	uint64_t dropped;
	struct log_once limit_hit, write_failed;
};

static void drain(void *opaque);

static void writable(void *opaque, unsigned events)
{
	drain(opaque);
}

/* A non-blocking handle on @fd that leaves @fd's own description alone where possible. */
static int open_handle(struct outbuf *o, int fd)
{
	struct stat st;
	char path[64];
	int flags;

	o->fd = fd;
	o->restore_flags = -1;
	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode)) {
		o->sink = SINK_FILE; /* writes do not wait for a reader */
		return 0;
	}
	if (S_ISSOCK(st.st_mode)) {
		o->sink = SINK_SOCKET; /* send(MSG_DONTWAIT) */
		return 0;
	}
	o->sink = SINK_STREAM;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	o->fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (o->fd >= 0) {
		o->own_fd = true;
		return 0;
	}
	/* No /proc (a jail): make the shared description non-blocking until we are done. */
	o->fd = fd;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK))
		return -errno;
	o->restore_flags = flags;
	return 0;
}

int outbuf_new(struct loop *loop, int fd, size_t cap, uint64_t file_limit,
	       void (*room)(void *opaque), void *opaque, struct outbuf **out)
{
	struct outbuf *o = calloc(1, sizeof(*o));
	int ret;

	if (!o || !(o->buf = malloc(cap))) {
		free(o);
		return -ENOMEM;
	}
	o->loop = loop;
	o->cap = cap;
	o->file_limit = file_limit;
	o->room = room;
	o->opaque = opaque;
	pthread_mutex_init(&o->lock, NULL);
	loop_task_init(loop, &o->drain, o, drain, o);
	ret = open_handle(o, fd);
	if (!ret && o->sink != SINK_FILE) {
		ret = loop_watch(loop, o, o->fd, 0, writable, o);
		o->watched = ret == 0;
		if (ret == -EPERM) /* e.g. /dev/null: never waits */
			ret = 0;
	}
	if (ret) {
		outbuf_free(o);
		return ret;
	}
	*out = o;
	return 0;
}

size_t outbuf_put(struct outbuf *o, const void *p, size_t n)
{
	const uint8_t *src = p;
	size_t take, first;
	bool wake;

	pthread_mutex_lock(&o->lock);
	take = n < o->cap - o->len ? n : o->cap - o->len;
	first = o->cap - (o->head + o->len) % o->cap;
	first = take < first ? take : first;
	memcpy(o->buf + (o->head + o->len) % o->cap, src, first);
	memcpy(o->buf, src + first, take - first);
	wake = !o->len && take;
	o->len += take;
	if (take < n) {
		o->was_full = true;
		o->dropped += n - take;
	}
	pthread_mutex_unlock(&o->lock);
	if (wake)
		loop_task_schedule(&o->drain);
	return take;
}

size_t outbuf_room(struct outbuf *o)
{
	size_t room;

	pthread_mutex_lock(&o->lock);
	room = o->cap - o->len;
	pthread_mutex_unlock(&o->lock);
	return room;
}

uint64_t outbuf_dropped(struct outbuf *o)
{
	uint64_t dropped;

	pthread_mutex_lock(&o->lock);
	dropped = o->dropped;
	pthread_mutex_unlock(&o->lock);
	return dropped;
}

/* Drop everything queued; lock held. */
static void drop_all(struct outbuf *o)
{
	o->dropped += o->len;
	o->head = o->len = 0;
}

/* One write of what is queued; returns bytes written, 0 when the reader is full (EAGAIN), or
 * -1 when the sink is gone or the file is at its limit. Lock held. */
static ssize_t write_some(struct outbuf *o)
{
	size_t n = o->cap - o->head < o->len ? o->cap - o->head : o->len;
	ssize_t done;

	if (o->sink == SINK_FILE) {
		if (o->written >= o->file_limit) {
			if (log_once_first(&o->limit_hit))
				log_warn("console output: the file reached its limit of %llu MiB; the "
					 "guest's further output is dropped",
					 (unsigned long long)(o->file_limit >> 20));
			return -1;
		}
		if (n > o->file_limit - o->written)
			n = o->file_limit - o->written;
	}
	do
		done = o->sink == SINK_SOCKET ? send(o->fd, o->buf + o->head, n,
						     MSG_DONTWAIT | MSG_NOSIGNAL)
					      : write(o->fd, o->buf + o->head, n);
	while (done < 0 && errno == EINTR);
	if (done < 0 && errno == EAGAIN)
		return 0;
	if (done <= 0) {
		if (log_once_first(&o->write_failed))
			log_warn("console output: write failed (%s); the guest's output is dropped",
				 done < 0 ? strerror(errno) : "nothing written");
		o->broken = true;
		return -1;
	}
	o->head = (o->head + (size_t)done) % o->cap;
	o->len -= (size_t)done;
	o->written += (uint64_t)done;
	if (!o->len)
		o->head = 0;
	return done;
}

/* The loop's turn: write what the reader takes; wait for it to take more (LOOP_OUT) if it
 * is full. */
static void drain(void *opaque)
{
	struct outbuf *o = opaque;
	bool room = false;
	ssize_t n = 1;

	pthread_mutex_lock(&o->lock);
	while (o->len && n > 0 && !o->broken)
		n = write_some(o);
	if (n < 0 || o->broken)
		drop_all(o);
	/* Wait for the reader to take more; if the loop cannot wait for that, drop the rest. */
	if (o->watched && loop_set_events(o->loop, o->fd, o->len ? LOOP_OUT : 0))
		drop_all(o);
	if (o->was_full && o->len < o->cap) {
		o->was_full = false;
		room = o->room != NULL;
	}
	pthread_mutex_unlock(&o->lock);
	if (room)
		o->room(o->opaque);
}

void outbuf_flush(struct outbuf *o)
{
	pthread_mutex_lock(&o->lock);
	while (o->len && !o->broken) {
		ssize_t n = write_some(o);
		struct pollfd p = { .fd = o->fd, .events = POLLOUT };

		if (n < 0 || (n == 0 && poll(&p, 1, OUTBUF_FLUSH_WAIT_MS) <= 0))
			break;
	}
	drop_all(o);
	pthread_mutex_unlock(&o->lock);
}

void outbuf_free(struct outbuf *o)
{
	if (!o)
		return;
	loop_forget(o->loop, o);
	if (o->own_fd)
		close(o->fd);
	if (o->restore_flags >= 0)
		fcntl(o->fd, F_SETFL, o->restore_flags);
	pthread_mutex_destroy(&o->lock);
	free(o->buf);
	free(o);
}
