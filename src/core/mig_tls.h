/* SPDX-License-Identifier: Apache-2.0 */
/* mig_tls — the TLS half of a migration's channel (include/kiln/mig_channel.h), shared by
 * src/core/mig_tls.c (credentials, handshake, records; everything GnuTLS) and
 * src/core/mig_channel.c (sockets, addresses, plain TCP) only.
 */
#ifndef KILN_MIG_TLS_H
#define KILN_MIG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/mig_channel.h"

/* Whether @c were loaded for MIG_INSECURE_PLAIN: the channel is the bare socket. */
bool mig_creds_plain(const struct mig_creds *c);

/* One TLS session over a connected socket (which stays the caller's). */
struct mig_tls;

/* Start TLS on @fd as mig_channel_open() says: the handshake as @c's side, peers verified.
 * Returns 0 with *out set, or -ENOMEM, -ETIMEDOUT, -ECONNRESET or -EPROTO with a message
 * ("TLS handshake with the source: ...") in @err. */
int mig_tls_open(const struct mig_creds *c, int fd, const char *peer_host, struct mig_tls **out,
		 char *err, size_t errlen) __attribute__((warn_unused_result));

/* mig_channel_send() and mig_channel_recv() over @t's records. */
int mig_tls_send(struct mig_tls *t, const struct iovec *iov, unsigned n)
	__attribute__((warn_unused_result));
int mig_tls_recv(struct mig_tls *t, void *buf, uint64_t len) __attribute__((warn_unused_result));

/* Whether records already received hold data a receive would return without reading the
 * socket. */
bool mig_tls_pending(struct mig_tls *t);

/* Free the session (no closing alert). NULL is fine. */
void mig_tls_close(struct mig_tls *t);

#endif
