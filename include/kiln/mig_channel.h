/* SPDX-License-Identifier: Apache-2.0 */
/* mig_channel — the connection a live migration's stream travels on (include/kiln/vm.h):
 * where it comes from (tcp:HOST:PORT, or fd:N, QEMU's name for a connected socket the caller
 * hands over), how it is secured, and moving bytes over it.
 *
 * Owns: the socket, the TLS session (GnuTLS) and its credentials, and the I/O timeouts. A
 * channel is TLS 1.2 or later with either a pre-shared key (a psktool file of identity:hexkey
 * lines) or X.509 certificates (a directory laid out as QEMU's tls-creds-x509), the peer
 * authenticated both ways; or plain TCP, neither authenticated nor encrypted, only when the
 * operator asks for it by its name (MIG_INSECURE_PLAIN). Every send and receive fails after
 * MIG_IO_TIMEOUT_S without progress, plain or TLS, so a peer that stalls ends the migration
 * instead of blocking kiln. What the bytes mean is src/core/migrate.c's.
 */
#ifndef KILN_MIG_CHANNEL_H
#define KILN_MIG_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define MIG_IO_TIMEOUT_S 60    /* seconds a peer may stop reading or writing */
#define MIG_PSK_MIN_BYTES 16   /* the shortest pre-shared key accepted (128 bits) */
#define MIG_CHANNEL_IOV_MAX 8  /* buffers one mig_channel_send() takes */

enum mig_security_kind { MIG_INSECURE_PLAIN, MIG_TLS_PSK, MIG_TLS_X509 };

/* How the operator secures a migration's channel. */
struct mig_security {
	enum mig_security_kind kind;
	/* MIG_TLS_PSK: the key file (psktool's format, identity:hexkey per line; the source uses
	 * the first entry, the destination accepts any); MIG_TLS_X509: the directory holding
	 * ca-cert.pem and server-cert.pem + server-key.pem (destination) or client-cert.pem +
	 * client-key.pem (source). Borrowed. */
	const char *path;
};

/* Pick exactly one of a PSK file @psk, an X.509 directory @x509 (NULL: not given) and @plain,
 * which a front end names @names[0..2] in its messages (e.g. "--tls-psk FILE", "--tls-x509 DIR",
 * "--insecure-plain-tcp"). Pure. Returns 0 with *out set (out->path borrows the argument), or
 * -EINVAL with a message naming the options in @err: none given, or two that exclude each
 * other. */
int mig_security_choose(const char *psk, const char *x509, bool plain,
			const char *const names[3], struct mig_security *out, char *err,
			size_t errlen) __attribute__((warn_unused_result));

/* Load GnuTLS, which mig_creds_load() and the TLS channels need (see kiln/dynlib.h): before
 * the seccomp filters are installed, in a process that may migrate. Returns 0, or -ENOENT with
 * the loader's reason in @err. */
int mig_tls_library_load(char *err, size_t errlen) __attribute__((warn_unused_result));

/* Credentials loaded from the files @mig_security names, for one side of a migration. */
struct mig_creds;

/* Read and check @s's files now, for the destination (@server) or the source. Errors name the
 * file and what is wrong with it, never a key's bytes ("keys.psk: line 2: the key is not
 * hexadecimal", "dir/ca-cert.pem: No such file or directory"); the caller puts its option's
 * name first. Returns 0 with *out set (free it with mig_creds_free()), -EINVAL (a missing or
 * malformed file), -ENOENT (TLS asked for, GnuTLS not loaded: mig_tls_library_load()) or
 * -ENOMEM. */
int mig_creds_load(const struct mig_security *s, bool server, struct mig_creds **out,
		   char *err, size_t errlen) __attribute__((warn_unused_result));

/* Wipe the keys and free @c. NULL is fine. */
void mig_creds_free(struct mig_creds *c);

/* Start connecting to @url, "tcp:HOST:PORT" (HOST a name or an address, resolved now), and
 * copy HOST into @host (@hostlen bytes; the name an X.509 destination's certificate must
 * carry). Does not wait for the destination (but up to 100 ms for each address of a name with
 * several, to fall back to the next when one is refused): returns the socket (close-on-exec,
 * non-blocking until mig_channel_connected()) connected or with its connection under way, or -EINVAL with
 * a message naming @url in @err (malformed, unresolvable, or no socket to be had); a
 * refused connection shows in mig_channel_connected(). The caller puts its option's name
 * first. */
int mig_connect(const char *url, char *host, size_t hostlen, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The destination's connection from @url: "tcp:HOST:PORT" is listened on (HOST empty: every
 * address) and its first connection accepted (blocks, logging "waiting for a migration on
 * URL" at info level); "fd:N" is descriptor N, which must be a connected stream socket,
 * taken over. Returns the socket, or -EINVAL (a malformed @url, an address that cannot be
 * listened on, a descriptor that is not a connected stream socket) or -EIO (accept failed),
 * with a message naming @url in @err. */
int mig_accept(const char *url, char *err, size_t errlen) __attribute__((warn_unused_result));

/* An open channel: a connected socket, then under TLS unless its credentials are plain. */
struct mig_channel;

/* Take over the connected socket @fd (closed on failure too) for a channel secured as @creds
 * says (which must outlive it) and set its timeouts. Nothing goes over it before
 * mig_channel_handshake(). Returns 0 with *out set, or -ENOMEM or -errno. */
int mig_channel_open(int fd, const struct mig_creds *creds, struct mig_channel **out)
	__attribute__((warn_unused_result));

/* Wait up to MIG_IO_TIMEOUT_S for the connection mig_connect() started on @c's socket to be
 * made (at once for any other socket), then make the socket blocking. mig_channel_abort()
 * from another thread ends the wait. Returns 0, or -errno (-ETIMEDOUT, -ECONNREFUSED, ...)
 * with a message in @err. Needs poll, getsockopt and fcntl (the vmm seccomp category). */
int mig_channel_connected(struct mig_channel *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Secure @c: for TLS, the handshake as the destination (server) or the source (client),
 * whichever its credentials were loaded for, both sides verifying the peer (PSK: the same key
 * under an identity the destination's file holds; X.509: a certificate chain to ca-cert.pem,
 * and on the source the destination's certificate carrying @peer_host), then the destination
 * confirms it accepted the source with one byte, 'R' (in TLS 1.3 a client's handshake ends
 * before the server has judged its certificate); nothing for plain TCP, whose stream is as
 * kiln's before TLS. Blocks up to MIG_IO_TIMEOUT_S per step. Returns 0, or -ENOMEM, -ETIMEDOUT, -ECONNRESET or
 * -EPROTO (the peer failed authentication or does not speak TLS) with a message in @err. */
int mig_channel_handshake(struct mig_channel *c, const char *peer_host, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Send the @n buffers (at most MIG_CHANNEL_IOV_MAX) of @iov, all of them, in order. One thread
 * at a time per channel.
 * Returns 0, -ETIMEDOUT (the peer read nothing for MIG_IO_TIMEOUT_S), -EPIPE/-ECONNRESET
 * (the peer went away), -ENOTCONN (no handshake yet) or another -errno (-EPROTO: a TLS
 * error). */
int mig_channel_send(struct mig_channel *c, const struct iovec *iov, unsigned n)
	__attribute__((warn_unused_result));

/* Receive exactly @len bytes into @buf. Returns 0, -ECONNRESET (the stream ended first),
 * -ETIMEDOUT (nothing arrived for MIG_IO_TIMEOUT_S), -ENOTCONN (no handshake yet) or another
 * -errno (-EPROTO: a TLS error, such as a record that fails its integrity check). */
int mig_channel_recv(struct mig_channel *c, void *buf, uint64_t len)
	__attribute__((warn_unused_result));

/* Wait up to @seconds (beyond MIG_IO_TIMEOUT_S, e.g. for an answer that takes the peer a
 * restore) until a receive would find data or the stream's end. Returns 0, -ETIMEDOUT or
 * -errno. */
int mig_channel_wait(struct mig_channel *c, unsigned seconds) __attribute__((warn_unused_result));

/* Make every send and receive on @c, current and later, fail at once: shuts the socket down.
 * Any thread; the channel stays allocated for its owner to close. */
void mig_channel_abort(struct mig_channel *c);

/* Close the socket and free @c (a TLS session without a closing alert: the stream's own
 * records say where it ends). NULL is fine. */
void mig_channel_close(struct mig_channel *c);

#endif
