/* SPDX-License-Identifier: Apache-2.0 */
/* console_host — the host side of the virtio console: a Unix socket kiln listens on, with one
 * client at a time, or a file the guest's output is appended to.
 *
 * Owns: the listening socket and its path (created; it must not exist; removed when freed),
 * the client's socket, the output file. The device asks for input only while the guest can
 * take it; otherwise only the client's hang-up is watched, so a client that went away frees
 * the place for the next one. Everything runs on kiln's event loop.
 */
#ifndef KILN_CONSOLE_HOST_H
#define KILN_CONSOLE_HOST_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "kiln/error.h"
#include "kiln/virtio_console.h"

struct dev_host;
struct console_host;

/* What the device is told. */
struct console_host_cb {
	/* The client has input (or closed): read it with console_host_read(). Loop thread, no
	 * device lock held. */
	void (*input)(void *opaque);
	void *opaque;
};

/* The host side @cfg describes. Returns 0 with *out set, or -errno with @e set (ERROR_USAGE
 * when the path is the user's mistake). */
int console_host_open(struct dev_host *host, const struct console_config *cfg,
		      const struct console_host_cb *cb, struct console_host **out, struct error *e)
	__attribute__((warn_unused_result));

/* Close everything, remove the socket's path. NULL is fine. */
void console_host_free(struct console_host *h);

/* The guest's output, @iov[0..@n): to the client or the file, without blocking. Returns the
 * bytes taken (what is not taken is the caller's to drop); a client that went away is dropped.
 * Loop thread. */
size_t console_host_write(struct console_host *h, const struct iovec *iov, int n);

/* Input from the client into @iov[0..@n): the bytes read, 0 when nothing is waiting; -1 when
 * there is no client or it ended (it is dropped; the next one may connect). Loop thread. */
ssize_t console_host_read(struct console_host *h, const struct iovec *iov, int n);

/* Whether to watch the client's input (@want: the guest takes input now) or only its hang-up.
 * Loop thread. */
void console_host_want_input(struct console_host *h, bool want);

#endif
