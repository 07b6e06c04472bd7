/* SPDX-License-Identifier: Apache-2.0 */
/* block — the disk-image engines behind virtio-blk: io_uring (liburing), and a synchronous
 * engine (preadv/pwritev/fdatasync) on a worker thread of its own, for hosts or users that do
 * not want io_uring.
 *
 * Owns: the submission and completion of data transfers and flushes on one image file
 * descriptor. The device tags each request; completions come back through done() with the byte
 * count or -errno, on the event loop thread, in whatever order they finish. Neither engine
 * blocks the event loop: io_uring completes in the kernel, the synchronous engine on its
 * worker, and both signal an eventfd the loop watches. The backend is opaque: its users never
 * see liburing. An image with a format layer (qcow2, include/kiln/qcow2.h) runs on the
 * synchronous engine, whose worker calls the layer; a raw image's path is unchanged.
 */
#ifndef KILN_BLOCK_H
#define KILN_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/virtio_blk.h"

struct dev_host;
struct block_backend;
struct qcow2;

enum block_op { BLOCK_READ, BLOCK_WRITE, BLOCK_FLUSH };

/* A backend on image @fd (borrowed) for up to @depth requests in flight with engine @want;
 * io_uring that the kernel refuses (ENOSYS, EPERM) falls back to the synchronous engine,
 * logged once. With @fmt (a qcow2 layer on @fd, borrowed) the engine is the synchronous one and
 * requests go through @fmt: guest offsets in, -EINVAL past its virtual size. Completions are signalled on host's event loop: @ready(@opaque) runs there and
 * must take the caller's lock and call block_reap(), which calls @done(@opaque, tag, result)
 * for each. Returns 0 with *out set, or -errno. */
int block_backend_new(int fd, struct qcow2 *fmt, unsigned depth, enum block_engine want,
		      struct dev_host *host,
		      void (*ready)(void *opaque),
		      void (*done)(void *opaque, uint32_t tag, int64_t result), void *opaque,
		      struct block_backend **out) __attribute__((warn_unused_result));

/* Wait for every request in flight (completing them through done()) and release @b. NULL is
 * fine. */
void block_backend_free(struct block_backend *b);

/* The engine that actually runs (io_uring may have fallen back to sync). */
enum block_engine block_backend_engine(const struct block_backend *b);

/* Make later requests use image @fd with format layer @fmt (or NULL: raw), both borrowed; call
 * block_drain() first. Returns 0, or -EOPNOTSUPP for a format layer on the io_uring engine
 * (nothing changed). */
int block_set_image(struct block_backend *b, int fd, struct qcow2 *fmt)
	__attribute__((warn_unused_result));

/* The whole transfer of @v[0..n) at byte @pos of @fd (pwritev or preadv): short transfers
 * continue, reaching the end of the file is -EIO. Consumes @v. Returns the bytes moved or
 * -errno. */
int64_t block_transfer(int fd, bool write, struct iovec *v, int n, uint64_t pos)
	__attribute__((warn_unused_result));

/* Queue @op on @iov[0..n) (at most VIRTQ_CHAIN_MAX entries) at byte @pos with @tag; it starts
 * at the next block_submit_queued(). @iov may be reused once block_submit_queued() returned.
 * At most @depth requests may be queued or in flight. */
void block_start(struct block_backend *b, enum block_op op, const struct iovec *iov, int n,
		 uint64_t pos, uint32_t tag);

/* Hand the queued requests to the engine (one io_uring_enter, or one wake-up of the worker). */
void block_submit_queued(struct block_backend *b);

/* Deliver the completions that have arrived, through done(). Caller's lock held. */
void block_reap(struct block_backend *b);

/* Wait until nothing is queued or in flight (device reset, snapshot, a new image), delivering
 * every completion through done(). Caller's lock held. */
void block_drain(struct block_backend *b);

#endif
