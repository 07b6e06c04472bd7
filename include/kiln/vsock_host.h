/* SPDX-License-Identifier: Apache-2.0 */
/* vsock_host — the host side of virtio-vsock in Firecracker's model (its docs/vsock.md): host
 * programs connect to a Unix socket kiln listens on and write "CONNECT <port>\n" to reach the
 * guest's port; a guest program connecting to host port P reaches the program listening on
 * the Unix socket "<uds_path>_<P>".
 *
 * Owns: the listening socket and its path (created; it must not exist; removed when freed),
 * the host connections until their CONNECT line is complete, and the protocol's text. A
 * connection whose line names a port goes to the device (connect_request) with its socket;
 * from then on the device owns that socket and moves the stream. Everything runs on kiln's
 * event loop.
 */
#ifndef KILN_VSOCK_HOST_H
#define KILN_VSOCK_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/error.h"

struct dev_host;
struct vsock_host;

/* What the device does with a host program's request. */
struct vsock_host_cb {
	/* The program on stream @fd (non-blocking; taken over) asked for guest port @port. Returns
	 * false when the device cannot take another connection (then @fd is closed). Loop thread,
	 * no device lock held. */
	bool (*connect_request)(void *opaque, int fd, uint32_t port);
	void *opaque;
};

/* Listen at @uds_path (at most 96 bytes, room being left for "_<port>") for host programs.
 * Returns 0 with *out set, or -errno with @e set (ERROR_USAGE when the path is the user's
 * mistake: taken, in a missing directory, not allowed, too long). */
int vsock_host_open(struct dev_host *host, const char *uds_path, const struct vsock_host_cb *cb,
		    struct vsock_host **out, struct error *e) __attribute__((warn_unused_result));

/* Stop listening, close the connections still writing their line, remove the path. NULL is
 * fine. */
void vsock_host_free(struct vsock_host *h);

/* A guest program connects to host port @port: a non-blocking stream to "<uds_path>_<port>",
 * or -errno (nobody listens there). */
int vsock_host_connect(struct vsock_host *h, uint32_t port);

/* The guest accepted the connection the program on @fd asked for: tell it "OK <host_port>\n".
 * Returns 0, or -errno when the program is gone. */
int vsock_host_accepted(int fd, uint32_t host_port) __attribute__((warn_unused_result));

#endif
