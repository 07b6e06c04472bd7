/* block — io_uring and synchronous disk-image engines, see include/kiln/block.h. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kiln/block.h"
#include "kiln/devices.h"
#include "kiln/log.h"

static struct log_once no_uring;

int block_backend_init(struct block_backend *b, int fd, unsigned depth, enum block_engine want,
		       struct dev_host *host, void (*ready)(void *opaque),
		       void (*done)(void *opaque, uint32_t tag, int64_t result), void *opaque)
{
	int ret;

	memset(b, 0, sizeof(*b));
	b->fd = fd;
	b->efd = -1;
	b->done = done;
	b->opaque = opaque;
	b->engine = BLOCK_ENGINE_SYNC;
	if (want == BLOCK_ENGINE_SYNC)
		return 0;
	ret = io_uring_queue_init(depth, &b->ring, 0);
	if (ret == -ENOSYS || ret == -EPERM) {
		if (log_once_first(&no_uring))
			log_warn("io_uring is not available here (%s); disks use synchronous I/O",
				 strerror(-ret));
		return 0;
	}
	if (ret)
		return ret;
	if (!(b->ring.features & IORING_FEAT_SUBMIT_STABLE)) { /* before Linux 5.5 */
		io_uring_queue_exit(&b->ring);
		if (log_once_first(&no_uring))
			log_warn("io_uring here lacks IORING_FEAT_SUBMIT_STABLE; disks use synchronous I/O");
		return 0;
	}
	b->engine = BLOCK_ENGINE_IO_URING;
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = b->efd < 0 ? -errno : io_uring_register_eventfd(&b->ring, b->efd);
	if (!ret)
		ret = host->watch_fd(host, b->efd, ready, opaque);
	if (ret)
		block_backend_destroy(b);
	return ret;
}

void block_backend_destroy(struct block_backend *b)
{
	if (b->engine == BLOCK_ENGINE_IO_URING) {
		block_drain(b);
		io_uring_queue_exit(&b->ring);
	}
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
	b->engine = BLOCK_ENGINE_SYNC;
}

/* The whole transfer; short transfers continue, 0 bytes is an error. */
static int64_t transfer(int fd, bool write, const struct iovec *in, int n, uint64_t pos)
{
	struct iovec iov[IOV_MAX];
	struct iovec *v = iov;
	int64_t total = 0;

	if (n > IOV_MAX)
		return -EINVAL;
	memcpy(iov, in, (size_t)n * sizeof(*iov));
	while (n > 0) {
		ssize_t got = write ? pwritev(fd, v, n, (off_t)pos) : preadv(fd, v, n, (off_t)pos);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		pos += (uint64_t)got;
		total += got;
		while (n > 0 && (size_t)got >= v->iov_len) {
			got -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (uint8_t *)v->iov_base + got;
			v->iov_len -= (size_t)got;
		}
	}
	return total;
}

void block_start(struct block_backend *b, enum block_op op, const struct iovec *iov, int n,
		 uint64_t pos, uint32_t tag)
{
	struct io_uring_sqe *sqe;

	if (b->engine == BLOCK_ENGINE_SYNC) {
		int64_t r = op == BLOCK_FLUSH ? (fdatasync(b->fd) ? -errno : 0) :
			    transfer(b->fd, op == BLOCK_WRITE, iov, n, pos);

		b->done(b->opaque, tag, r);
		return;
	}
	sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) { /* the submission ring is full: send what is queued and retry once */
		block_submit_queued(b);
		sqe = io_uring_get_sqe(&b->ring);
	}
	if (!sqe) {
		b->done(b->opaque, tag, -EBUSY);
		return;
	}
	if (op == BLOCK_FLUSH)
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
	else if (op == BLOCK_WRITE)
		io_uring_prep_writev(sqe, b->fd, iov, (unsigned)n, pos);
	else
		io_uring_prep_readv(sqe, b->fd, iov, (unsigned)n, pos);
	io_uring_sqe_set_data64(sqe, tag);
	b->queued++;
}

void block_submit_queued(struct block_backend *b)
{
	int ret;

	if (b->engine != BLOCK_ENGINE_IO_URING || b->queued == 0)
		return;
	do
		ret = io_uring_submit(&b->ring);
	while (ret == -EINTR);
	if (ret > 0) {
		b->inflight += (unsigned)ret;
		b->queued -= (unsigned)ret < b->queued ? (unsigned)ret : b->queued;
	}
	if (ret < 0)
		log_err("io_uring_submit: %s", strerror(-ret));
}

static void complete(struct block_backend *b, struct io_uring_cqe *cqe)
{
	uint32_t tag = (uint32_t)io_uring_cqe_get_data64(cqe);
	int64_t res = cqe->res;

	io_uring_cqe_seen(&b->ring, cqe);
	b->inflight--;
	b->done(b->opaque, tag, res);
}

void block_reap(struct block_backend *b)
{
	struct io_uring_cqe *cqe;
	uint64_t n;

	if (b->engine != BLOCK_ENGINE_IO_URING)
		return;
	if (read(b->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("block: completion eventfd: %s", strerror(errno));
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0)
		complete(b, cqe);
}

void block_drain(struct block_backend *b)
{
	struct io_uring_cqe *cqe;

	if (b->engine != BLOCK_ENGINE_IO_URING)
		return;
	block_submit_queued(b);
	while (b->inflight > 0 && io_uring_wait_cqe(&b->ring, &cqe) == 0)
		complete(b, cqe);
}
