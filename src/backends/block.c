/* SPDX-License-Identifier: Apache-2.0 */
/* block — io_uring and synchronous disk-image engines, see include/kiln/block.h.
 *
 * The synchronous engine runs every request on one worker thread per disk, in the order the
 * device started them (a FLUSH covers the writes before it), and hands completions back to the
 * event loop through an eventfd, as io_uring does: the loop never waits for the disk.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <liburing.h>

#include "kiln/block.h"
#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/thread.h"
#include "kiln/qcow2.h"
#include "kiln/seccomp.h"
#include "kiln/virtq.h"

/* A request of the synchronous engine; iov is its own copy. */
struct sync_req {
	enum block_op op;
	int fd;
	struct qcow2 *fmt;          /* the image's format layer, or NULL (raw) */
	struct iovec *iov;
	int n;
	uint64_t pos;
	uint32_t tag;
	int64_t result;
};

/* A first-in first-out queue of requests, capacity depth. */
struct sync_fifo {
	struct sync_req *req;
	unsigned head, count;
};

struct block_backend {
	int fd;                     /* the image, borrowed */
	struct qcow2 *fmt;          /* its qcow2 layer (borrowed; sync engine only), or NULL */
	enum block_engine engine;   /* what actually runs */
	unsigned depth;
	int efd;                    /* completions are signalled here; watched on the loop */
	struct loop *loop;
	void (*ready)(void *opaque);
	void (*done)(void *opaque, uint32_t tag, int64_t result);
	void *opaque;
	unsigned inflight;          /* started and not yet delivered through done() */
	/* io_uring */
	struct io_uring ring;
	unsigned queued;            /* SQEs prepared and not yet submitted */
	struct log_once submit_failed;
	/* synchronous engine: the loop thread fills todo, the worker moves requests to finished */
	pthread_t worker;
	bool worker_running, stop;
	pthread_mutex_t lock;
	pthread_cond_t work, finish;
	struct sync_fifo todo, finished;
};

static struct log_once no_uring;

static void fifo_push(struct sync_fifo *f, unsigned depth, const struct sync_req *r)
{
	f->req[(f->head + f->count++) % depth] = *r;
}

static struct sync_req fifo_pop(struct sync_fifo *f, unsigned depth)
{
	struct sync_req r = f->req[f->head];

	f->head = (f->head + 1) % depth;
	f->count--;
	return r;
}

_Static_assert(VIRTQ_CHAIN_MAX <= QCOW2_IOV_MAX, "a request's buffers fit the qcow2 layer");

int64_t block_transfer(int fd, bool write, struct iovec *v, int n, uint64_t pos)
{
	int64_t total = 0;

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

/* One request of the synchronous engine, on its worker: the file itself or its format layer. */
static int64_t run_sync(struct sync_req *r)
{
	if (r->op == BLOCK_FLUSH)
		return r->fmt ? qcow2_flush(r->fmt) : fdatasync(r->fd) ? -errno : 0;
	if (r->fmt)
		return r->op == BLOCK_WRITE ? qcow2_writev(r->fmt, r->iov, r->n, r->pos)
					    : qcow2_readv(r->fmt, r->iov, r->n, r->pos);
	return block_transfer(r->fd, r->op == BLOCK_WRITE, r->iov, r->n, r->pos);
}

static void *sync_worker(void *opaque)
{
	struct block_backend *b = opaque;
	uint64_t one = 1;

	log_set_thread_name("disk-io");
	seccomp_enter(SECCOMP_WORKER);
	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct sync_req r;

		while (!b->stop && !b->todo.count)
			pthread_cond_wait(&b->work, &b->lock);
		if (!b->todo.count)
			break; /* stopping, and nothing left */
		r = fifo_pop(&b->todo, b->depth);
		pthread_mutex_unlock(&b->lock);
		r.result = run_sync(&r);
		pthread_mutex_lock(&b->lock);
		fifo_push(&b->finished, b->depth, &r);
		pthread_cond_broadcast(&b->finish);
		if (write(b->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_err("block: completion eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static int sync_init(struct block_backend *b)
{
	int ret;

	b->todo.req = calloc(b->depth, sizeof(*b->todo.req));
	b->finished.req = calloc(b->depth, sizeof(*b->finished.req));
	if (!b->todo.req || !b->finished.req)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->work, NULL);
	pthread_cond_init(&b->finish, NULL);
	ret = -kiln_thread_create(&b->worker, sync_worker, b);
	b->worker_running = ret == 0;
	if (ret) {
		pthread_mutex_destroy(&b->lock);
		pthread_cond_destroy(&b->work);
		pthread_cond_destroy(&b->finish);
	}
	return ret;
}

/* io_uring if the kernel gives it (and copies submitted iovecs, Linux 5.5), else -ENOSYS. */
static int uring_init(struct block_backend *b)
{
	int ret = io_uring_queue_init(b->depth, &b->ring, 0);

	if (ret == -ENOSYS || ret == -EPERM) {
		if (log_once_first(&no_uring))
			log_warn("io_uring is not available here (%s); disks use synchronous I/O",
				 strerror(-ret));
		return -ENOSYS;
	}
	if (ret)
		return ret;
	if (!(b->ring.features & IORING_FEAT_SUBMIT_STABLE)) {
		io_uring_queue_exit(&b->ring);
		if (log_once_first(&no_uring))
			log_warn("io_uring here lacks IORING_FEAT_SUBMIT_STABLE; disks use synchronous I/O");
		return -ENOSYS;
	}
	b->engine = BLOCK_ENGINE_IO_URING;
	ret = io_uring_register_eventfd(&b->ring, b->efd);
	return ret;
}

/* Completions were signalled: the device's callback takes its lock and reaps them. */
static void efd_readable(void *opaque, unsigned events)
{
	struct block_backend *b = opaque;

	b->ready(b->opaque);
}

int block_backend_new(int fd, struct qcow2 *fmt, unsigned depth, enum block_engine want,
		      struct dev_host *host,
		      void (*ready)(void *opaque),
		      void (*done)(void *opaque, uint32_t tag, int64_t result), void *opaque,
		      struct block_backend **out)
{
	struct block_backend *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return -ENOMEM;
	*b = (struct block_backend){ .fd = fd, .fmt = fmt, .engine = BLOCK_ENGINE_SYNC, .depth = depth,
				     .loop = host->loop, .ready = ready, .done = done,
				     .opaque = opaque };
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0) {
		ret = -errno;
		free(b);
		return ret;
	}
	ret = want == BLOCK_ENGINE_IO_URING && !fmt ? uring_init(b) : -ENOSYS;
	if (ret == -ENOSYS)
		ret = sync_init(b);
	if (!ret)
		ret = loop_watch(host->loop, host, b->efd, LOOP_IN, efd_readable, b);
	if (ret) {
		block_backend_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

static void deliver(struct block_backend *b, uint32_t tag, int64_t result)
{
	b->inflight--;
	b->done(b->opaque, tag, result);
}

/* The user data of a submission that stands for no request (see fail_unsubmitted()). */
#define NO_REQUEST UINT64_MAX

static void uring_complete(struct block_backend *b, struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	int64_t res = cqe->res;

	io_uring_cqe_seen(&b->ring, cqe);
	if (data != NO_REQUEST)
		deliver(b, (uint32_t)data, res);
}

void block_reap(struct block_backend *b)
{
	struct io_uring_cqe *cqe;
	uint64_t n;

	if (read(b->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("block: completion eventfd: %s", strerror(errno));
	if (b->engine == BLOCK_ENGINE_IO_URING) {
		while (io_uring_peek_cqe(&b->ring, &cqe) == 0)
			uring_complete(b, cqe);
		return;
	}
	pthread_mutex_lock(&b->lock);
	while (b->finished.count) {
		struct sync_req r = fifo_pop(&b->finished, b->depth);

		/* done() may start new requests: the backend's lock is not held across it. */
		pthread_mutex_unlock(&b->lock);
		free(r.iov);
		deliver(b, r.tag, r.result);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

void block_drain(struct block_backend *b)
{
	struct io_uring_cqe *cqe;

	block_submit_queued(b);
	if (b->engine == BLOCK_ENGINE_IO_URING) {
		while (b->inflight > 0) {
			int ret;

			block_submit_queued(b); /* what a full submission queue held back */
			if (b->inflight == 0)
				break; /* the kernel refused them: they completed with the error */
			ret = io_uring_wait_cqe(&b->ring, &cqe);
			if (ret == -EINTR)
				continue; /* a vCPU kick, say: the requests are still in the kernel */
			if (ret) {
				log_err("block: waiting for %u requests: %s", b->inflight,
					strerror(-ret));
				break;
			}
			uring_complete(b, cqe);
		}
		return;
	}
	while (b->inflight > 0) {
		pthread_mutex_lock(&b->lock);
		while (!b->finished.count)
			pthread_cond_wait(&b->finish, &b->lock);
		pthread_mutex_unlock(&b->lock);
		block_reap(b);
	}
}

void block_backend_free(struct block_backend *b)
{
	if (!b)
		return;
	if (b->engine == BLOCK_ENGINE_IO_URING) {
		block_drain(b);
		io_uring_queue_exit(&b->ring);
	} else if (b->worker_running) {
		block_drain(b);
		pthread_mutex_lock(&b->lock);
		b->stop = true;
		pthread_cond_signal(&b->work);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->worker, NULL);
		pthread_mutex_destroy(&b->lock);
		pthread_cond_destroy(&b->work);
		pthread_cond_destroy(&b->finish);
	}
	free(b->todo.req);
	free(b->finished.req);
	loop_unwatch(b->loop, b->efd);
	close(b->efd);
	free(b);
}

enum block_engine block_backend_engine(const struct block_backend *b) { return b->engine; }

int block_set_image(struct block_backend *b, int fd, struct qcow2 *fmt)
{
	if (fmt && b->engine != BLOCK_ENGINE_SYNC)
		return -EOPNOTSUPP;
	b->fd = fd;
	b->fmt = fmt;
	return 0;
}

/* The request could not start: complete it at once with @err. */
static void refuse(struct block_backend *b, uint32_t tag, int err)
{
	b->inflight++;
	deliver(b, tag, err);
}

void block_start(struct block_backend *b, enum block_op op, const struct iovec *iov, int n,
		 uint64_t pos, uint32_t tag)
{
	struct io_uring_sqe *sqe;
	struct sync_req r = { .op = op, .fd = b->fd, .fmt = b->fmt, .n = n, .pos = pos, .tag = tag };

	if (b->engine == BLOCK_ENGINE_SYNC) {
		if (b->inflight == b->depth || (n && !(r.iov = malloc((size_t)n * sizeof(*iov))))) {
			refuse(b, tag, b->inflight == b->depth ? -EBUSY : -ENOMEM);
			return;
		}
		if (n)
			memcpy(r.iov, iov, (size_t)n * sizeof(*iov));
		pthread_mutex_lock(&b->lock);
		fifo_push(&b->todo, b->depth, &r);
		pthread_mutex_unlock(&b->lock);
		b->inflight++;
		b->queued++;
		return;
	}
	sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) { /* the submission ring is full: send what is queued and retry once */
		block_submit_queued(b);
		sqe = io_uring_get_sqe(&b->ring);
	}
	if (!sqe) {
		refuse(b, tag, -EBUSY);
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
	b->inflight++;
}

/* io_uring_submit() failed (-EAGAIN, -ENOMEM: the kernel is short of memory) and the kernel
 * took none of the submissions between its head and tail. Each request completes now with the
 * error, rather than leaving a drain waiting for completions that cannot come, and its
 * submission becomes a no-op, sent with the next ones, whose completion is ignored. */
static void fail_unsubmitted(struct block_backend *b, int err)
{
	struct io_uring_sq *sq = &b->ring.sq;
	unsigned head = io_uring_smp_load_acquire(sq->khead), tail = *sq->ktail;

	if (log_once_first(&b->submit_failed))
		log_err("block: io_uring_submit: %s; %u requests fail", strerror(-err), tail - head);
	for (; head != tail; head++) {
		struct io_uring_sqe *sqe = &sq->sqes[sq->array[head & sq->ring_mask]];
		uint64_t data = sqe->user_data;

		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, NO_REQUEST);
		if (data != NO_REQUEST)
			deliver(b, (uint32_t)data, err);
	}
}

void block_submit_queued(struct block_backend *b)
{
	int ret;

	if (!b->queued)
		return;
	if (b->engine == BLOCK_ENGINE_SYNC) {
		pthread_mutex_lock(&b->lock);
		pthread_cond_signal(&b->work);
		pthread_mutex_unlock(&b->lock);
		b->queued = 0;
		return;
	}
	do
		ret = io_uring_submit(&b->ring);
	while (ret == -EINTR);
	if (ret > 0)
		b->queued -= (unsigned)ret < b->queued ? (unsigned)ret : b->queued;
	if (ret < 0)
		fail_unsubmitted(b, ret);
}
