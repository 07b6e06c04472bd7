/* SPDX-License-Identifier: Apache-2.0 */
/* listener — a Unix stream socket kiln listens on at a path: the host sides of the virtio
 * console and of vsock, and (binding only) the API socket.
 *
 * Owns: the listening socket and its path: created (the path must not exist), removed when
 * closed. Connections are accepted on kiln's event loop and handed to the user, non-blocking
 * and close-on-exec. When accept() runs out of descriptors or memory, listening pauses and
 * resumes LISTENER_RETRY_NS later (logged once), so the loop neither spins on a socket it
 * cannot serve nor stops accepting for good.
 */
#ifndef KILN_LISTENER_H
#define KILN_LISTENER_H

#include <stdbool.h>
#include <sys/un.h>

#include "kiln/error.h"
#include "kiln/log.h"
#include "kiln/loop.h"

#define LISTENER_RETRY_NS 100000000ull /* 100 ms */

/* Embedded in its user's structure; every field is private. */
struct listener {
	struct loop *loop;                 /* NULL: not listening */
	int fd;
	bool paused;                       /* by its user */
	bool starved;                      /* out of descriptors: until the retry timer */
	unsigned events;                   /* the interest it is watched with */
	struct loop_timer retry;
	void (*accepted)(void *opaque, int fd);
	void *opaque;
	const char *what;                  /* for messages: "console", "vsock" */
	struct log_once trouble;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* Bind a Unix stream socket to @path (at most 107 bytes) and listen with @backlog. Returns the
 * socket (non-blocking, close-on-exec), or -errno: -ENAMETOOLONG, or socket(), bind() and
 * listen()'s (-EADDRINUSE: @path exists). Nothing is left at @path on failure. */
int unix_listen(const char *path, int backlog);

/* Whether unix_listen()'s error @err is the user's mistake about the path (taken, in a missing
 * directory, not allowed, too long), for ERROR_USAGE. */
bool unix_listen_user_error(int err);

/* Listen at @path on @loop (loop thread from then on), calling @accepted(@opaque, fd) for each
 * connection, which takes the descriptor over. @what names the listener in messages (a string
 * that outlives it). Returns 0, or -errno with @e set naming @what and @path (ERROR_USAGE when
 * unix_listen_user_error()). @l must be zeroed or closed before. */
int listener_open(struct listener *l, struct loop *loop, const char *what, const char *path,
		  int backlog, void (*accepted)(void *opaque, int fd), void *opaque, struct error *e)
	__attribute__((warn_unused_result));

/* Stop accepting (@paused) or accept again: connections wait in the backlog meanwhile. */
void listener_pause(struct listener *l, bool paused);

/* Stop listening and remove the path; nothing when @l is not listening. */
void listener_close(struct listener *l);

#endif
