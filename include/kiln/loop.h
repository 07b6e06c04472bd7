/* loop — kiln's event loop: file descriptors with callbacks, pollers, and the wait that serves
 * them.
 *
 * Owns: the epoll descriptor and the table of watched descriptors and pollers. One loop per
 * process, made by the front end before any VM exists, so that the API server is served
 * before, while and after a VM runs; a VM registers its devices' descriptors on it and takes
 * them back (loop_forget) when it is destroyed. Single-threaded: only the thread that calls
 * loop_wait() may use it.
 */
#ifndef KILN_LOOP_H
#define KILN_LOOP_H

#include <poll.h>
#include <stdbool.h>

/* Something served on the loop that is not one file descriptor: a set of descriptors that
 * changes every iteration, or timers (libslirp, libmicrohttpd). */
struct loop_poller {
	/* Before the loop sleeps: fill up to @max entries of @fds and return how many; lower
	 * *@timeout_ms (milliseconds, -1 for none) when work is due sooner. */
	unsigned (*prepare)(void *opaque, struct pollfd *fds, unsigned max, int *timeout_ms);
	/* After it wakes: the entries prepare() filled, with revents set. */
	void (*dispatch)(void *opaque, const struct pollfd *fds, unsigned n);
	void *opaque;
};

struct loop;

/* A new, empty loop in *out. Returns 0 or -errno. */
int loop_new(struct loop **out) __attribute__((warn_unused_result));

/* Release @loop (NULL is fine); what is still registered is dropped, not closed. */
void loop_free(struct loop *loop);

/* Call @cb(@opaque) each time @fd is readable (or has an error or hang-up). @fd stays the
 * caller's; @owner tags the registration for loop_forget(). Returns 0, -ENOSPC when the table
 * is full, or -errno from epoll_ctl. */
int loop_watch(struct loop *loop, const void *owner, int fd, void (*cb)(void *opaque),
	       void *opaque) __attribute__((warn_unused_result));

/* Take watched @fd out of the wait (@paused) or put it back. Returns 0 or -errno (-ENOENT: not
 * watched). */
int loop_pause(struct loop *loop, int fd, bool paused);

/* Serve @p (copied) on every iteration from now on. Returns 0 or -ENOSPC. */
int loop_add_poller(struct loop *loop, const void *owner, const struct loop_poller *p)
	__attribute__((warn_unused_result));

/* Drop every watch and poller @owner registered; call while their descriptors are still
 * open. */
void loop_forget(struct loop *loop, const void *owner);

/* Wait up to @timeout_ms (-1: no limit) and run the callbacks and pollers that are due.
 * Returns the number of watch callbacks run, or -errno (-EINTR is not an error to report). */
int loop_wait(struct loop *loop, int timeout_ms);

#endif
