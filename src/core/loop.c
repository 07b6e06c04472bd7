/* loop — see include/kiln/loop.h. */
#include "kiln/loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_MAX_WATCHES 96
#define LOOP_MAX_POLLERS 8
#define LOOP_MAX_POLLFDS 1024 /* descriptors all pollers may ask for together */
#define LOOP_MAX_EVENTS 16

/* A watched descriptor; fd -1 marks a free slot. epoll's data.ptr points at the slot, so slots
 * never move. */
struct loop_watch {
	int fd;
	const void *owner;
	void (*cb)(void *opaque);
	void *opaque;
};

struct loop_poller_slot {
	const void *owner;
	struct loop_poller p;
};

struct loop {
	int epoll_fd;
	struct loop_watch watch[LOOP_MAX_WATCHES];
	unsigned nr_pollers;
	struct loop_poller_slot poller[LOOP_MAX_POLLERS];
	struct pollfd fds[LOOP_MAX_POLLFDS];
};

int loop_new(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0) {
		int ret = -errno;

		free(loop);
		return ret;
	}
	for (unsigned i = 0; i < LOOP_MAX_WATCHES; i++)
		loop->watch[i].fd = -1;
	*out = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epoll_fd);
	free(loop);
}

static struct loop_watch *find_watch(struct loop *loop, int fd)
{
	for (unsigned i = 0; i < LOOP_MAX_WATCHES; i++)
		if (loop->watch[i].fd == fd)
			return &loop->watch[i];
	return NULL;
}

int loop_watch(struct loop *loop, const void *owner, int fd, void (*cb)(void *opaque),
	       void *opaque)
{
	struct loop_watch *w = find_watch(loop, -1);

	if (!w)
		return -ENOSPC;
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.ptr = w }))
		return -errno;
	*w = (struct loop_watch){ .fd = fd, .owner = owner, .cb = cb, .opaque = opaque };
	return 0;
}

int loop_pause(struct loop *loop, int fd, bool paused)
{
	struct loop_watch *w = fd >= 0 ? find_watch(loop, fd) : NULL;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

	if (!w)
		return -ENOENT;
	/* Out of the epoll set, not just EPOLLIN off: errors and hang-ups are always reported. */
	return epoll_ctl(loop->epoll_fd, paused ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int loop_add_poller(struct loop *loop, const void *owner, const struct loop_poller *p)
{
	if (loop->nr_pollers == LOOP_MAX_POLLERS)
		return -ENOSPC;
	loop->poller[loop->nr_pollers++] = (struct loop_poller_slot){ .owner = owner, .p = *p };
	return 0;
}

void loop_forget(struct loop *loop, const void *owner)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < LOOP_MAX_WATCHES; i++) {
		struct loop_watch *w = &loop->watch[i];

		if (w->fd >= 0 && w->owner == owner) {
			epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL); /* ENOENT if paused */
			w->fd = -1;
		}
	}
	for (unsigned i = 0; i < loop->nr_pollers; i++)
		if (loop->poller[i].owner != owner)
			loop->poller[kept++] = loop->poller[i];
	loop->nr_pollers = kept;
}

static bool still_registered(const struct loop *loop, const struct loop_poller_slot *slot)
{
	for (unsigned i = 0; i < loop->nr_pollers; i++)
		if (loop->poller[i].owner == slot->owner && loop->poller[i].p.opaque == slot->p.opaque)
			return true;
	return false;
}

/* The pollers' turn: poll() over the epoll descriptor and everything they asked for. Returns
 * whether the epoll set has events, or -errno. */
static int poll_with_pollers(struct loop *loop, int timeout_ms)
{
	unsigned first[LOOP_MAX_POLLERS + 1], n = 1, count = loop->nr_pollers;
	struct loop_poller_slot slot[LOOP_MAX_POLLERS];

	/* A dispatch may add or forget pollers: serve the ones that prepared and are still here. */
	for (unsigned i = 0; i < count; i++)
		slot[i] = loop->poller[i];
	loop->fds[0] = (struct pollfd){ .fd = loop->epoll_fd, .events = POLLIN };
	for (unsigned i = 0; i < count; i++) {
		first[i] = n;
		n += slot[i].p.prepare(slot[i].p.opaque, loop->fds + n, LOOP_MAX_POLLFDS - n,
				       &timeout_ms);
	}
	first[count] = n;
	if (poll(loop->fds, n, timeout_ms) < 0)
		return -errno;
	for (unsigned i = 0; i < count; i++)
		if (still_registered(loop, &slot[i]))
			slot[i].p.dispatch(slot[i].p.opaque, loop->fds + first[i], first[i + 1] - first[i]);
	return loop->fds[0].revents != 0;
}

int loop_wait(struct loop *loop, int timeout_ms)
{
	struct epoll_event ev[LOOP_MAX_EVENTS];
	int n, ran = 0;

	if (loop->nr_pollers) {
		int ready = poll_with_pollers(loop, timeout_ms);

		if (ready <= 0)
			return ready;
		timeout_ms = 0;
	}
	n = epoll_wait(loop->epoll_fd, ev, LOOP_MAX_EVENTS, timeout_ms);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = ev[i].data.ptr;

		/* An earlier callback may have forgotten this watch. */
		if (w->fd >= 0) {
			w->cb(w->opaque);
			ran++;
		}
	}
	return ran;
}
