/* SPDX-License-Identifier: Apache-2.0 */
/* listener — Unix stream sockets kiln listens on, see include/kiln/listener.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kiln/listener.h"

int unix_listen(const char *path, int backlog)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		err = -errno;
		close(fd); /* not bound: the path is not ours to remove */
		return err;
	}
	if (listen(fd, backlog)) {
		err = -errno;
		close(fd);
		unlink(path);
		return err;
	}
	return fd;
}

bool unix_listen_user_error(int err)
{
	return err == -EADDRINUSE || err == -ENOENT || err == -EACCES || err == -ENOTDIR ||
	       err == -EROFS || err == -ENAMETOOLONG;
}

static void set_interest(struct listener *l)
{
	unsigned want = l->paused || l->starved ? 0 : LOOP_IN;

	if (want != l->events && loop_set_events(l->loop, l->fd, want) == 0)
		l->events = want;
}

static void retry_elapsed(void *opaque)
{
	struct listener *l = opaque;

	l->starved = false;
	set_interest(l);
}

static void readable(void *opaque, unsigned events)
{
	struct listener *l = opaque;
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0) {
		l->accepted(l->opaque, fd);
		return;
	}
	if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM)
		return; /* the connection went away meanwhile, or a signal */
	if (log_once_first(&l->trouble))
		log_warn("%s %s: cannot accept a connection: %s; retrying every %llu ms", l->what,
			 l->path, strerror(errno), LISTENER_RETRY_NS / 1000000);
	l->starved = true;
	set_interest(l);
	loop_timer_arm(&l->retry, LISTENER_RETRY_NS, 0);
}

int listener_open(struct listener *l, struct loop *loop, const char *what, const char *path,
		  int backlog, void (*accepted)(void *opaque, int fd), void *opaque, struct error *e)
{
	int fd = unix_listen(path, backlog), ret;

	if (fd < 0)
		return error_set(e, unix_listen_user_error(fd) ? ERROR_USAGE : ERROR_RUNTIME,
				 "%s: bind %s: %s", what, path, strerror(-fd));
	*l = (struct listener){ .loop = loop, .fd = fd, .events = LOOP_IN, .accepted = accepted,
				.opaque = opaque, .what = what };
	strcpy(l->path, path);
	loop_timer_init(loop, &l->retry, l, retry_elapsed, l);
	ret = loop_watch(loop, l, fd, LOOP_IN, readable, l);
	if (ret) {
		close(fd);
		unlink(path);
		l->loop = NULL;
		return error_set(e, ERROR_RUNTIME, "%s: socket %s: %s", what, path, strerror(-ret));
	}
	return 0;
}

void listener_pause(struct listener *l, bool paused)
{
	l->paused = paused;
	set_interest(l);
}

void listener_close(struct listener *l)
{
	if (!l->loop)
		return;
	loop_forget(l->loop, l); /* its watch and retry timer */
	close(l->fd);
	unlink(l->path);
	l->loop = NULL;
}
