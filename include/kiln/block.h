/* block — the disk-image backends behind virtio-blk: io_uring (liburing), and a synchronous
 * engine (preadv/pwritev/fdatasync on kiln's event loop) where io_uring is not allowed.
 *
 * Owns: the submission and completion of data transfers and flushes on one image file
 * descriptor. The device tags each request; completions come back through done() with the byte
 * count or -errno, on the event loop thread, in whatever order the kernel finishes them.
 */
#ifndef KILN_BLOCK_H
#define KILN_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <liburing.h>

struct dev_host;

enum block_engine { BLOCK_ENGINE_IO_URING, BLOCK_ENGINE_SYNC };
enum block_op { BLOCK_READ, BLOCK_WRITE, BLOCK_FLUSH };

struct block_backend {
	int fd;                     /* the image, borrowed */
	enum block_engine engine;   /* what actually runs (io_uring may fall back to sync) */
	struct io_uring ring;
	int efd;                    /* completion eventfd registered with the ring */
	unsigned queued;            /* SQEs prepared and not yet submitted */
	unsigned inflight;          /* submitted and not yet completed */
	/* One completion: @result is the byte count (or 0 for a flush) or -errno. */
	void (*done)(void *opaque, uint32_t tag, int64_t result);
	void *opaque;
};

/* Set up @b on image @fd for up to @depth requests in flight with engine @want; io_uring that
 * the kernel refuses (ENOSYS, EPERM) falls back to sync, logged once. The ring's completions
 * are watched on host's event loop; their callback @ready(@opaque) must take the caller's lock
 * and call block_reap(). Returns 0 or -errno. */
int block_backend_init(struct block_backend *b, int fd, unsigned depth, enum block_engine want,
		       struct dev_host *host, void (*ready)(void *opaque),
		       void (*done)(void *opaque, uint32_t tag, int64_t result), void *opaque)
	__attribute__((warn_unused_result));
void block_backend_destroy(struct block_backend *b);

/* Start @op on @iov[0..n) at byte @pos. The sync engine finishes it before returning (done()
 * is called from here); io_uring queues it until block_submit_queued(). @iov may be reused
 * once block_submit_queued() returned (the kernel copied it: IORING_FEAT_SUBMIT_STABLE). */
void block_start(struct block_backend *b, enum block_op op, const struct iovec *iov, int n,
		 uint64_t pos, uint32_t tag);

/* Hand queued io_uring requests to the kernel (one io_uring_enter for the batch). */
void block_submit_queued(struct block_backend *b);

/* Deliver the completions the kernel has finished (io_uring), through done(). */
void block_reap(struct block_backend *b);

/* Wait until nothing is in flight (device reset), delivering every completion. */
void block_drain(struct block_backend *b);

#endif
