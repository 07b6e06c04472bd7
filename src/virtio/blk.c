/* SPDX-License-Identifier: Apache-2.0 */
/* blk — virtio-blk (virtio 1.2 §5.2) over a raw or qcow2 image file, see include/kiln/virtio.h.
 *
 * Reads, writes and flushes go to the image through a block backend (include/kiln/block.h):
 * io_uring, completing out of order on kiln's event loop, or synchronous I/O. GET_ID, DISCARD
 * and WRITE_ZEROES are served at once (raw images only). A qcow2 image goes through its format
 * layer (include/kiln/qcow2.h) on the synchronous engine. Every request is checked before the file is touched:
 * header and status byte present, data a whole number of 512-byte sectors, the sector range
 * inside the image, at most BLK_SEG_MAX segments of BLK_SIZE_MAX bytes (seg_max and size_max,
 * advertised: the host work one request asks is bounded however the driver aliases its
 * buffers); anything else completes with VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP.
 * A request is tracked by its head descriptor until it completes; a driver that offers a head
 * still in flight breaks the ring (DEVICE_NEEDS_RESET).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <sys/ioctl.h>

#include "kiln/block.h"
#include "kiln/devices.h"
#include "kiln/pci.h"
#include "kiln/qcow2.h"
#include "kiln/virtio.h"
#include "kiln/virtio_blk.h"

#define SECTOR 512u
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (VIRTQ_CHAIN_MAX - 2)      /* header and status take one each */
#define BLK_SIZE_MAX (64u << 10)               /* bytes per data segment (Linux's default) */
#define BLK_REQ_MAX ((uint64_t)BLK_SEG_MAX * BLK_SIZE_MAX) /* data bytes per request */
#define BLK_MAX_DISCARD_SEG 32u
#define BLK_MAX_DISCARD_SECTORS (1u << 22)    /* 2 GiB per segment */
#define HDR_LEN sizeof(struct virtio_blk_outhdr)

#define BLK_SCRATCH_IOVS 2048u /* iovecs of one submission batch */
#define BLK_BACKEND_DEPTH (2 * BLK_QUEUE_SIZE) /* a queue's worth, and one from before a reset */

/* What a virtio-blk device did since it was made (its counters). */
struct blk_counters {
	uint64_t read_count, read_bytes;   /* completed reads */
	uint64_t write_count, write_bytes; /* completed writes */
	uint64_t flush_count;
	uint64_t invalid_reqs;             /* refused by the device: range, read-only, unsupported */
	uint64_t io_errors;                /* the host's read, write or flush failed */
};

/* A request handed to the backend, indexed by its head descriptor. */
struct blk_req {
	bool busy;
	uint32_t type;          /* VIRTIO_BLK_T_IN, _OUT or _FLUSH */
	uint8_t *status;        /* the status byte in guest memory */
	uint64_t len;           /* data bytes expected (0 for a flush) */
	uint32_t written;       /* bytes written into the chain on success */
};

struct blk {
	struct virtio_dev dev;
	int fd;
	struct qcow2 *qcow2;    /* the format layer on fd, or NULL for a raw image */
	bool readonly;
	bool cache_unsafe;      /* flushes do nothing (struct disk_config) */
	uint16_t generation;    /* driver resets so far: a request's tag carries the one it began
				   in, and one from before the last reset touches no guest memory */
	char name[80];          /* "disk0" or "disk \"rootfs\"", for messages */
	struct block_backend *io;
	struct blk_req req[BLK_QUEUE_SIZE];
	/* iovecs of the requests queued since the last submission: the kernel copies them when
	 * they are submitted (IORING_FEAT_SUBMIT_STABLE), so one batch's worth is enough. */
	struct iovec scratch[BLK_SCRATCH_IOVS];
	unsigned scratch_used;
	uint64_t sectors;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config;
	struct rate_limiter limiter;
	struct log_once bad_request;
	struct blk_counters stats; /* under dev.lock */
};

static struct blk *to_blk(struct virtio_dev *dev) { return dev->opaque; }

static void blk_read_config(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, (const uint8_t *)&to_blk(dev)->config + off, len);
}

static bool in_range(const struct blk *b, uint64_t sector, uint64_t sectors)
{
	return sector <= b->sectors && sectors <= b->sectors - sector;
}

/* A request's tag for the backend: its head descriptor and the generation it began in. */
static uint32_t req_tag(const struct blk *b, uint16_t head)
{
	return head | (uint32_t)b->generation << 16;
}

/* A backend completion: status byte, used element. Lock held. */
static void blk_done(void *opaque, uint32_t tag, int64_t result)
{
	struct blk *b = opaque;
	struct blk_req *r = &b->req[(uint16_t)tag];
	bool ok;

	if (tag >> 16 != b->generation)
		return; /* begun before a reset: the driver has forgotten it, and so has the slot */
	ok = result >= 0 && (uint64_t)result == r->len;
	r->busy = false;
	if (!ok)
		b->stats.io_errors++;
	else if (r->type == VIRTIO_BLK_T_FLUSH)
		b->stats.flush_count++;
	else if (r->type == VIRTIO_BLK_T_OUT)
		b->stats.write_count++, b->stats.write_bytes += r->len;
	else
		b->stats.read_count++, b->stats.read_bytes += r->len;
	*r->status = ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	virtq_push(&b->dev.q[0], (uint16_t)tag, (ok ? r->written : 0) + 1);
}

/* io_uring completions arrived (event loop). */
static void blk_io_ready(void *opaque)
{
	struct blk *b = opaque;

	pthread_mutex_lock(&b->dev.lock);
	block_reap(b->io);
	if (virtio_dev_live(&b->dev))
		virtio_dev_notify_if_needed(&b->dev, 0);
	pthread_mutex_unlock(&b->dev.lock);
}

/* Hand the queued requests to the kernel; their iovecs are free again. A submission the kernel
 * refuses completes its requests at once (IOERR): the driver hears of them. */
static void submit(struct blk *b)
{
	block_submit_queued(b->io);
	b->scratch_used = 0;
	if (virtio_dev_live(&b->dev))
		virtio_dev_notify_if_needed(&b->dev, 0);
}

/* Whether every segment keeps to size_max, when the driver was told of it (a guest restored
 * from a snapshot made before kiln offered it was not; BLK_REQ_MAX still bounds it). */
static bool segments_fit(const struct blk *b, const struct iovec *iov, int n)
{
	if (!(b->dev.driver_features & (1ull << VIRTIO_BLK_F_SIZE_MAX)))
		return true;
	for (int i = 0; i < n; i++)
		if (iov[i].iov_len > BLK_SIZE_MAX)
			return false;
	return true;
}

/* IN, OUT and FLUSH go to the backend; returns VIRTQ_DEFERRED, or a status when the request
 * fails its checks. */
static int start_io(struct blk *b, const struct virtq_chain *c, const struct virtio_blk_outhdr *h,
		    uint8_t *status)
{
	bool write = h->type == VIRTIO_BLK_T_OUT, flush = h->type == VIRTIO_BLK_T_FLUSH;
	uint64_t len = flush ? 0 : write ? c->out_len - HDR_LEN : c->in_len - 1;
	struct blk_req *r = &b->req[c->head];
	struct iovec *iov;
	int n = 0;

	if (flush && (b->readonly || b->cache_unsafe))
		return VIRTIO_BLK_S_OK; /* nothing written, or durability not asked for */
	if (write && b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (!flush && (len % SECTOR || len > BLK_REQ_MAX || !in_range(b, h->sector, len / SECTOR)))
		return VIRTIO_BLK_S_IOERR;
	if (b->scratch_used + VIRTQ_CHAIN_MAX > BLK_SCRATCH_IOVS)
		submit(b);
	iov = b->scratch + b->scratch_used;
	if (!flush) {
		n = virtq_chain_iov(c, !write, write ? HDR_LEN : 0, len, iov);
		if (n < 0 || n > (int)BLK_SEG_MAX || !segments_fit(b, iov, n))
			return VIRTIO_BLK_S_IOERR;
		b->scratch_used += (unsigned)n;
	}
	r->busy = true;
	r->type = h->type;
	r->status = status;
	r->len = len;
	r->written = write ? 0 : (uint32_t)len;
	block_start(b->io, flush ? BLOCK_FLUSH : write ? BLOCK_WRITE : BLOCK_READ, iov, n,
		    h->sector * SECTOR, req_tag(b, c->head));
	return -1;
}

/* DISCARD and WRITE_ZEROES (§5.2.6): segments of struct virtio_blk_discard_write_zeroes. */
static uint8_t discard_or_zero(struct blk *b, const struct virtq_chain *c, bool zero)
{
	uint64_t len = c->out_len - HDR_LEN;

	if (b->qcow2)
		return VIRTIO_BLK_S_UNSUPP; /* not offered */
	if (b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (len == 0 || len % sizeof(struct virtio_blk_discard_write_zeroes) ||
	    len / sizeof(struct virtio_blk_discard_write_zeroes) > BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_UNSUPP;
	for (uint64_t off = HDR_LEN; off < c->out_len; off += sizeof(struct virtio_blk_discard_write_zeroes)) {
		struct virtio_blk_discard_write_zeroes seg;
		int mode;

		virtq_chain_read(c, off, &seg, sizeof(seg));
		if (seg.num_sectors > BLK_MAX_DISCARD_SECTORS || (seg.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
		    (!zero && seg.flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (!in_range(b, seg.sector, seg.num_sectors))
			return VIRTIO_BLK_S_IOERR;
		if (seg.num_sectors == 0)
			continue;
		/* Discard and unmapping zeroes punch a hole; plain zeroes keep the blocks. */
		mode = zero && !seg.flags ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		if (fallocate(b->fd, mode, (off_t)(seg.sector * SECTOR), (off_t)seg.num_sectors * SECTOR) &&
		    (!zero || fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       (off_t)(seg.sector * SECTOR), (off_t)seg.num_sectors * SECTOR)))
			return zero ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK; /* discard is a hint */
	}
	return VIRTIO_BLK_S_OK;
}

/* One request (§5.2.6): header (driver-written), data, status byte (device-writable, last). */
static uint32_t blk_serve(struct virtio_dev *dev, const struct virtq_chain *c)
{
	struct blk *b = to_blk(dev);
	struct virtio_blk_outhdr h;
	struct iovec st;
	uint32_t written = 0;
	int status;

	if (c->in_len == 0 || virtq_chain_read(c, 0, &h, HDR_LEN) != HDR_LEN ||
	    virtq_chain_iov(c, true, c->in_len - 1, 1, &st) != 1) {
		if (log_once_first(&b->bad_request))
			log_warn("%s: request without a header or status byte", b->name);
		return 0;
	}
	if (b->req[c->head].busy) {
		virtio_dev_needs_reset(dev, "the driver offered a request that is still in flight");
		return VIRTQ_DEFERRED;
	}
	/* Every request is an operation; reads and writes also cost their data bytes. */
	if (!rate_limiter_consume(&b->limiter, h.type == VIRTIO_BLK_T_IN || h.type == VIRTIO_BLK_T_OUT ?
				  c->out_len + c->in_len - HDR_LEN - 1 : 0, 1))
		return VIRTQ_THROTTLED;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_FLUSH:
		status = start_io(b, c, &h, st.iov_base);
		if (status < 0)
			return VIRTQ_DEFERRED;
		break;
	case VIRTIO_BLK_T_GET_ID:
		written = (uint32_t)virtq_chain_write(c, 0, b->serial,
						      c->in_len - 1 < sizeof(b->serial) ? c->in_len - 1 : sizeof(b->serial));
		status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_DISCARD: status = discard_or_zero(b, c, false); break;
	case VIRTIO_BLK_T_WRITE_ZEROES: status = discard_or_zero(b, c, true); break;
	default: status = VIRTIO_BLK_S_UNSUPP; break;
	}
	if (status != VIRTIO_BLK_S_OK)
		b->stats.invalid_reqs++;
	*(uint8_t *)st.iov_base = (uint8_t)status;
	return written + 1;
}

static unsigned blk_counters(void *state, struct device_counter *out, unsigned max)
{
	struct blk *b = to_blk(state);
	struct blk_counters c;
	uint64_t throttled;

	pthread_mutex_lock(&b->dev.lock);
	c = b->stats;
	throttled = b->limiter.throttled;
	pthread_mutex_unlock(&b->dev.lock);
	const struct device_counter all[] = {
		{ "read_count", c.read_count }, { "read_bytes", c.read_bytes },
		{ "write_count", c.write_count }, { "write_bytes", c.write_bytes },
		{ "flush_count", c.flush_count }, { "invalid_reqs_count", c.invalid_reqs },
		{ "execute_fails", c.io_errors },
		{ "rate_limiter_throttled_events", throttled },
	};
	return device_counters_copy(out, max, all, sizeof(all) / sizeof(all[0]));
}

static void blk_queue_notify(struct virtio_dev *dev, unsigned q)
{
	virtio_dev_process(dev, q, blk_serve);
	submit(to_blk(dev));
}

/* The rate limiter can pay for the request it refused: serve the queue again. */
static void blk_unblocked(void *opaque)
{
	struct blk *b = opaque;

	b->dev.transport.requeue(&b->dev, 0);
}

void virtio_blk_set_limit(void *state, const struct rate_limit *limit, unsigned buckets)
{
	struct blk *b = to_blk(state);

	pthread_mutex_lock(&b->dev.lock);
	rate_limiter_update(&b->limiter, limit, buckets);
	pthread_mutex_unlock(&b->dev.lock);
}

/* Reset (§2.4), on the vCPU thread that wrote the status: forget what is in flight without
 * waiting for the disk. Those requests finish in the background (a read still lands in the
 * buffer it was given, as a DMA engine's would) and complete nothing: no status byte, no used
 * element. They count against the backend's depth until then, so a driver that resets over and
 * over has its new requests refused, not more host work queued. */
static void blk_reset(struct virtio_dev *dev)
{
	struct blk *b = to_blk(dev);

	submit(b);
	b->generation++;
	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		b->req[i].busy = false;
}

/* Snapshot: every request in flight completes into the used ring first, and the image is
 * flushed. */
static void blk_quiesce(struct virtio_dev *dev)
{
	struct blk *b = to_blk(dev);

	submit(b);
	block_drain(b->io);
	if (virtio_dev_live(dev))
		virtio_dev_notify_if_needed(dev, 0);
	/* What the guest saw complete is on the disk for whoever opens the image next (a
	 * restore, a migration's destination). */
	if (!b->readonly) {
		int ret = b->qcow2 ? qcow2_flush(b->qcow2) : fdatasync(b->fd) ? -errno : 0;

		if (ret)
			log_warn("%s: flush before the snapshot: %s", b->name, strerror(-ret));
	}
}

static void blk_free(struct virtio_dev *dev)
{
	struct blk *b = to_blk(dev);

	b->generation++; /* what the drain completes touches no guest memory */
	rate_limiter_cancel(&b->limiter);
	block_backend_free(b->io);
	virtio_dev_destroy(&b->dev);
	qcow2_close(b->qcow2);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
	.queue_size = BLK_QUEUE_SIZE,
	.pci_class = PCI_CLASS_CODE_STORAGE_OTHER,
	.config_len = offsetof(struct virtio_blk_config, unused1) + sizeof(((struct virtio_blk_config *)0)->unused1),
	.features = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		    (1ull << VIRTIO_BLK_F_FLUSH) |
		    (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES),
	.read_config = blk_read_config,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.quiesce = blk_quiesce,
	.free = blk_free,
};

/* Open the image at @path for disk @name: *fd, its qcow2 layer in *q (NULL for a raw image) and
 * the guest's size in *sectors. On failure @e names the disk and the path, *fd is -1. */
static int open_image(const char *name, const char *path, bool readonly, enum disk_format format,
		      int *fd, struct qcow2 **q, uint64_t *sectors, struct error *e)
{
	struct stat st;
	uint64_t bytes;
	int err;

	*q = NULL;
	*fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (*fd < 0) {
		err = errno;
		return error_set(e, err == ENOENT || err == ENOTDIR || err == EISDIR || err == EACCES ||
				    err == EROFS ? ERROR_USAGE : ERROR_RUNTIME,
				 "%s: open %s: %s", name, path, strerror(err));
	}
	if (fstat(*fd, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		error_set(e, ERROR_USAGE, "%s: %s is not a regular file or block device", name, path);
		goto fail;
	}
	bytes = (uint64_t)st.st_size;
	if (format == DISK_FORMAT_QCOW2 || (format == DISK_FORMAT_AUTO && qcow2_probe(*fd))) {
		if (qcow2_open(*fd, path, readonly, q, e)) {
			error_prefix(e, "%s", name);
			goto fail;
		}
		bytes = qcow2_size(*q);
	} else if (S_ISBLK(st.st_mode) && ioctl(*fd, BLKGETSIZE64, &bytes)) {
		error_set(e, ERROR_RUNTIME, "%s: %s: BLKGETSIZE64: %s", name, path, strerror(errno));
		goto fail;
	}
	if (bytes == 0 || bytes % SECTOR) {
		error_set(e, ERROR_USAGE, "%s: %s: %ssize %llu bytes is not a positive multiple of 512",
			  name, path, *q ? "virtual " : "", (unsigned long long)bytes);
		goto fail;
	}
	*sectors = bytes / SECTOR;
	return 0;
fail:
	qcow2_close(*q);
	*q = NULL;
	close(*fd);
	*fd = -1;
	return error_code(e);
}

int virtio_blk_replace(void *state, const char *path, struct error *e)
{
	struct blk *b = to_blk(state);
	struct qcow2 *q;
	uint64_t sectors;
	int fd, ret = open_image(b->name, path, b->readonly, DISK_FORMAT_AUTO, &fd, &q, &sectors, e);

	if (ret)
		return ret;
	pthread_mutex_lock(&b->dev.lock);
	block_drain(b->io); /* what is in flight finishes on the old image */
	if (block_set_image(b->io, fd, q)) {
		pthread_mutex_unlock(&b->dev.lock);
		qcow2_close(q);
		close(fd);
		return error_set(e, ERROR_USAGE, "%s: %s is a qcow2 image and the disk runs on io_uring "
				 "(a raw disk cannot become qcow2 while it runs)", b->name, path);
	}
	qcow2_close(b->qcow2);
	close(b->fd);
	b->fd = fd;
	b->qcow2 = q;
	b->sectors = sectors;
	b->config.capacity = sectors;
	virtio_dev_config_changed(&b->dev);
	pthread_mutex_unlock(&b->dev.lock);
	return 0;
}

static int blk_create(struct dev_host *host, const void *config, unsigned index, void **state,
		      struct error *e)
{
	const struct disk_config *cfg = config;
	struct blk *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return error_set(e, ERROR_RUNTIME, "disk%u: out of memory", index);
	device_label(&virtio_blk_class, cfg, index, b->name, sizeof(b->name));
	b->readonly = cfg->readonly;
	if (open_image(b->name, cfg->path, cfg->readonly, cfg->format, &b->fd, &b->qcow2, &b->sectors, e)) {
		free(b);
		return error_code(e);
	}
	if (cfg->id)
		memcpy(b->serial, cfg->id, strnlen(cfg->id, sizeof(b->serial))); /* no NUL at 20 (§5.2.6) */
	else
		snprintf(b->serial, sizeof(b->serial), "kiln-disk%u", index);
	b->config = (struct virtio_blk_config){
		.capacity = b->sectors,
		.size_max = BLK_SIZE_MAX,
		.seg_max = BLK_SEG_MAX,
		.max_discard_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_discard_seg = BLK_MAX_DISCARD_SEG,
		.discard_sector_alignment = 1,
		.max_write_zeroes_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_write_zeroes_seg = BLK_MAX_DISCARD_SEG,
		.write_zeroes_may_unmap = 1,
	};
	ret = virtio_dev_init(&b->dev, &blk_ops, b, host->mem);
	if (ret) {
		error_set(e, ERROR_RUNTIME, "%s: %s", b->name, strerror(-ret));
		qcow2_close(b->qcow2);
		close(b->fd);
		free(b);
		return error_code(e);
	}
	ret = block_backend_new(b->fd, b->qcow2, BLK_BACKEND_DEPTH, cfg->engine, host, blk_io_ready,
				blk_done, b, &b->io);
	if (ret) {
		error_set(e, ERROR_RUNTIME, "%s: I/O engine: %s", b->name, strerror(-ret));
		virtio_dev_destroy(&b->dev);
		qcow2_close(b->qcow2);
		close(b->fd);
		free(b);
		return error_code(e);
	}
	if (b->readonly)
		b->dev.device_features |= 1ull << VIRTIO_BLK_F_RO;
	if (b->qcow2) /* served by punching holes in a raw file */
		b->dev.device_features &= ~(1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	b->cache_unsafe = cfg->cache_unsafe;
	if (b->cache_unsafe)
		b->dev.device_features &= ~(1ull << VIRTIO_BLK_F_FLUSH);
	rate_limiter_init(&b->limiter, &cfg->limit, host->loop, host, blk_unblocked, b);
	*state = &b->dev;
	return 0;
}

static const char *blk_id(const void *config)
{
	return ((const struct disk_config *)config)->id;
}

const struct device_class virtio_blk_class = {
	.name = "disk",
	.kind = DEVICE_VIRTIO,
	.create = blk_create,
	.id = blk_id,
	.counters = blk_counters,
};
