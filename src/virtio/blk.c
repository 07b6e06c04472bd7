/* blk — virtio-blk (virtio 1.2 §5.2) over a raw image file, see include/kiln/virtio.h.
 *
 * Requests are served on kiln's event loop with preadv/pwritev/fdatasync/fallocate on the image
 * (the portable backend). Every request is checked before the file is touched: header and
 * status byte present, data a whole number of 512-byte sectors, the sector range inside the
 * image; anything else completes with VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP.
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

#include "kiln/virtio.h"

#define SECTOR 512u
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (VIRTQ_CHAIN_MAX - 2)      /* header and status take one each */
#define BLK_MAX_DISCARD_SEG 32u
#define BLK_MAX_DISCARD_SECTORS (1u << 22)    /* 2 GiB per segment */
#define HDR_LEN sizeof(struct virtio_blk_outhdr)

struct blk {
	struct virtio_dev dev;
	int fd;
	bool readonly;
	uint64_t sectors;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config;
	struct log_once bad_request;
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

/* Whole-request transfer at byte @pos; short transfers continue, 0 bytes is an error. */
static int transfer(struct blk *b, bool write, struct iovec *iov, int n, uint64_t pos)
{
	while (n > 0) {
		ssize_t done = write ? pwritev(b->fd, iov, n, (off_t)pos) : preadv(b->fd, iov, n, (off_t)pos);

		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return -EIO;
		pos += (uint64_t)done;
		while (n > 0 && (size_t)done >= iov->iov_len) {
			done -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

static uint8_t rw(struct blk *b, const struct virtq_chain *c, const struct virtio_blk_outhdr *h,
		  bool write, uint32_t *written)
{
	uint64_t len = write ? c->out_len - HDR_LEN : c->in_len - 1;
	struct iovec iov[VIRTQ_CHAIN_MAX];
	int n;

	if (write && b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (len % SECTOR || !in_range(b, h->sector, len / SECTOR))
		return VIRTIO_BLK_S_IOERR;
	n = virtq_chain_iov(c, !write, write ? HDR_LEN : 0, len, iov);
	if (n < 0 || transfer(b, write, iov, n, h->sector * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	if (!write)
		*written = (uint32_t)len;
	return VIRTIO_BLK_S_OK;
}

/* DISCARD and WRITE_ZEROES (§5.2.6): segments of struct virtio_blk_discard_write_zeroes. */
static uint8_t discard_or_zero(struct blk *b, const struct virtq_chain *c, bool zero)
{
	uint64_t len = c->out_len - HDR_LEN;

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
	uint32_t written = 0;
	uint8_t status;

	if (c->in_len == 0 || virtq_chain_read(c, 0, &h, HDR_LEN) != HDR_LEN) {
		if (log_once_first(&b->bad_request))
			log_warn("virtio-blk: request without a header or status byte");
		return 0;
	}
	switch (h.type) {
	case VIRTIO_BLK_T_IN: status = rw(b, c, &h, false, &written); break;
	case VIRTIO_BLK_T_OUT: status = rw(b, c, &h, true, &written); break;
	case VIRTIO_BLK_T_FLUSH:
		status = b->readonly || !fdatasync(b->fd) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
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
	virtq_chain_write(c, c->in_len - 1, &status, 1);
	return written + 1;
}

static void blk_queue_notify(struct virtio_dev *dev, unsigned q)
{
	virtio_dev_process(dev, q, blk_serve);
}

static void blk_free(struct virtio_dev *dev)
{
	struct blk *b = to_blk(dev);

	virtio_dev_destroy(&b->dev);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
	.queue_size = BLK_QUEUE_SIZE,
	.config_len = offsetof(struct virtio_blk_config, unused1) + sizeof(((struct virtio_blk_config *)0)->unused1),
	.features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_FLUSH) |
		    (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES),
	.read_config = blk_read_config,
	.queue_notify = blk_queue_notify,
	.free = blk_free,
};

/* Open and size the image; returns 0 or -errno with @err set. */
static int open_image(struct blk *b, const struct disk_config *cfg, bool *usage, char *err,
		      size_t errlen)
{
	struct stat st;
	uint64_t bytes;

	b->fd = open(cfg->path, (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		*usage = errno == ENOENT || errno == ENOTDIR || errno == EISDIR;
		snprintf(err, errlen, "--disk %s: %s", cfg->path, strerror(errno));
		return -errno;
	}
	if (fstat(b->fd, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		*usage = true;
		snprintf(err, errlen, "--disk %s: not a regular file or block device", cfg->path);
		return -EINVAL;
	}
	bytes = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(b->fd, BLKGETSIZE64, &bytes)) {
		snprintf(err, errlen, "--disk %s: BLKGETSIZE64: %s", cfg->path, strerror(errno));
		return -errno;
	}
	if (bytes == 0 || bytes % SECTOR) {
		*usage = true;
		snprintf(err, errlen, "--disk %s: size %llu bytes is not a positive multiple of 512",
			 cfg->path, (unsigned long long)bytes);
		return -EINVAL;
	}
	b->sectors = bytes / SECTOR;
	return 0;
}

struct virtio_dev *virtio_blk_new(const struct guest_mem *mem, const struct disk_config *cfg,
				  unsigned index, bool *usage, char *err, size_t errlen)
{
	struct blk *b = calloc(1, sizeof(*b));

	*usage = false;
	if (!b) {
		snprintf(err, errlen, "--disk %s: out of memory", cfg->path);
		return NULL;
	}
	b->readonly = cfg->readonly;
	if (open_image(b, cfg, usage, err, errlen)) {
		if (b->fd >= 0)
			close(b->fd);
		free(b);
		return NULL;
	}
	if (cfg->id)
		memcpy(b->serial, cfg->id, strnlen(cfg->id, sizeof(b->serial))); /* no NUL at 20 (§5.2.6) */
	else
		snprintf(b->serial, sizeof(b->serial), "kiln-disk%u", index);
	b->config = (struct virtio_blk_config){
		.capacity = b->sectors,
		.seg_max = BLK_SEG_MAX,
		.max_discard_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_discard_seg = BLK_MAX_DISCARD_SEG,
		.discard_sector_alignment = 1,
		.max_write_zeroes_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_write_zeroes_seg = BLK_MAX_DISCARD_SEG,
		.write_zeroes_may_unmap = 1,
	};
	if (virtio_dev_init(&b->dev, &blk_ops, b, mem)) {
		close(b->fd);
		free(b);
		snprintf(err, errlen, "--disk %s: cannot set up the device", cfg->path);
		return NULL;
	}
	if (b->readonly)
		b->dev.device_features |= 1ull << VIRTIO_BLK_F_RO;
	return &b->dev;
}
