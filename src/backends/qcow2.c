/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 — QEMU's qcow2 image format as a format layer, see include/kiln/qcow2.h.
 *
 * The L1 and refcount tables stay in memory as they are on the disk (big-endian); L2 tables and
 * refcount blocks go through two small least-recently-used caches of whole clusters. New
 * clusters are taken at the end of the file and never freed by the guest, so the file grows by
 * at most one cluster per guest cluster, plus the tables that map them.
 *
 * Order of metadata on the disk (each arrow an fdatasync): refcount blocks → refcount table →
 * header, before any L2 table that may point at what they count; L2 tables → L1 table. A crash
 * between flushes can leak clusters, never leave a table pointing at a free one.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/block.h"
#include "kiln/log.h"
#include "kiln/qcow2.h"

#define QCOW2_MAGIC 0x514649fbu           /* "QFI\xfb" */
#define HDR_V2_LEN 72u
#define HDR_V3_LEN 104u
#define MIN_CLUSTER_BITS 9u
#define MAX_CLUSTER_BITS 21u              /* 2 MiB, QEMU's limit too */
#define L1_MAX_BYTES (32u << 20)          /* QEMU's limits (§Header, size; §Host cluster mgmt) */
#define RT_MAX_BYTES (8u << 20)
#define BACKING_NAME_MAX 1023u

#define INCOMPAT_DIRTY (1ull << 0)
#define INCOMPAT_CORRUPT (1ull << 1)
#define INCOMPAT_DATA_FILE (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTENDED_L2 (1ull << 4)

#define EXT_END 0u
#define EXT_BACKING_FORMAT 0xe2792acau

#define OFFSET_MASK 0x00fffffffffffe00ull /* bits 9-55 of L1 and L2 entries */
#define COPIED (1ull << 63)               /* refcount exactly one */
#define COMPRESSED (1ull << 62)
#define ZERO_FLAG 1ull                    /* v3: the cluster reads as zeros */
#define L1_RESERVED 0x7f000000000001ffull /* bits 0-8, 56-62 */
#define L2_RESERVED 0x3f000000000001feull /* bits 1-8, 56-61 */
#define RT_RESERVED 0x1ffull              /* bits 0-8 */

#define L2_CACHE_BYTES (1u << 20)
#define RB_CACHE_BYTES (256u << 10)

/* A cluster of metadata in memory, as on the disk. */
struct cached {
	uint64_t off;   /* host offset; 0: an empty slot */
	uint8_t *data;  /* cluster_size bytes */
	uint64_t used;  /* the image's tick at the last use: the least recent goes first */
	bool dirty;
};

struct cache {
	struct cached *e;
	unsigned n;
};

struct qcow2 {
	int fd;                      /* borrowed for the top image, owned for a backing file */
	bool owns_fd, readonly;
	char *path;
	unsigned version, cluster_bits, refcount_order;
	uint64_t cs;                 /* cluster size in bytes */
	uint64_t size;               /* virtual size in bytes */
	uint64_t end;                /* where the next cluster is allocated */
	uint64_t autoclear;          /* v3 auto-clear feature bits found at open */
	uint64_t *l1;                /* big-endian, l1_size entries */
	uint32_t l1_size;
	uint64_t l1_off;
	uint64_t *rt;                /* refcount table, big-endian, rt_entries */
	uint64_t rt_entries, rt_off;
	bool l1_dirty, rt_dirty, header_dirty, refs_dirty; /* refs_dirty: refcounts not yet synced */
	struct cache l2, rb;
	uint64_t tick;
	uint8_t *buf;                /* one cluster: what surrounds a partial write */
	struct qcow2 *backing;       /* a qcow2 backing file, or NULL */
	int raw_fd;                  /* a raw backing file (owned), or -1 */
	uint64_t raw_size;
	struct log_once bad_meta, shared;
};

/* The images of a chain opened so far, to refuse a loop. */
struct chain {
	dev_t dev[QCOW2_CHAIN_MAX];
	ino_t ino[QCOW2_CHAIN_MAX];
	unsigned n;
	bool backing_failed;  /* the error is a backing file's (its message names it) */
};

/* A position in a list of buffers. */
struct iov_pos {
	const struct iovec *iov;
	int n;
	size_t skip;
};

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* The next piece (at most @len bytes) of @c in *@seg; advances. Returns its length, 0 at the
 * end of the list. */
static size_t iov_step(struct iov_pos *c, uint64_t len, struct iovec *seg)
{
	size_t take;

	while (c->n > 0 && c->skip == c->iov->iov_len) {
		c->iov++;
		c->n--;
		c->skip = 0;
	}
	if (c->n == 0 || len == 0)
		return 0;
	take = (size_t)min_u64(c->iov->iov_len - c->skip, len);
	*seg = (struct iovec){ (uint8_t *)c->iov->iov_base + c->skip, take };
	c->skip += take;
	return take;
}

/* The next @len bytes of @c as buffers in @out (room for QCOW2_IOV_MAX). Returns how many. */
static int iov_take(struct iov_pos *c, uint64_t len, struct iovec *out)
{
	int k = 0;
	size_t got;

	while (k < (int)QCOW2_IOV_MAX && (got = iov_step(c, len, &out[k])) > 0) {
		len -= got;
		k++;
	}
	return k;
}

static void iov_zero(struct iov_pos *c, uint64_t len)
{
	struct iovec seg;
	size_t got;

	while ((got = iov_step(c, len, &seg)) > 0) {
		memset(seg.iov_base, 0, got);
		len -= got;
	}
}

static int meta_error(struct qcow2 *q, const char *what, uint64_t value)
{
	if (log_once_first(&q->bad_meta))
		log_err("qcow2 image %s: %s 0x%llx; its I/O fails", q->path, what,
			(unsigned long long)value);
	return -EIO;
}

/* Whether @off is a whole cluster inside the file (not the header). */
static bool cluster_ok(const struct qcow2 *q, uint64_t off)
{
	return off && !(off & (q->cs - 1)) && off <= q->end - q->cs;
}

/* Read @len bytes of metadata at @off; what lies beyond the end of the file reads as zeros.
 * preadv, as every call on the block worker (its seccomp filter has no pread64). */
static int meta_read(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		struct iovec v = { (uint8_t *)buf + done, len - done };
		ssize_t got = preadv(fd, &v, 1, (off_t)(off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0) {
			memset((uint8_t *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)got;
	}
	return 0;
}

static int meta_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = { (void *)buf, len };
	int64_t ret = block_transfer(q->fd, true, &v, 1, off);

	return ret < 0 ? (int)ret : 0;
}

static int sync_file(struct qcow2 *q) { return fdatasync(q->fd) ? -errno : 0; }

/* --- refcounts (§Host cluster management) --- */

static int cache_get(struct qcow2 *q, struct cache *c, uint64_t off, bool fresh,
		     struct cached **out);

/* Put every refcount change on the disk: blocks, then the table, then the header that points at
 * the table, each after the previous one is synced. */
static int refs_write(struct qcow2 *q)
{
	int ret;

	if (!q->refs_dirty)
		return 0;
	for (unsigned i = 0; i < q->rb.n; i++) {
		struct cached *b = &q->rb.e[i];

		if (b->dirty && (ret = meta_write(q, b->data, q->cs, b->off)))
			return ret;
		b->dirty = false;
	}
	if (q->rt_dirty) {
		if ((ret = sync_file(q)) || (ret = meta_write(q, q->rt, q->rt_entries * 8, q->rt_off)))
			return ret;
		q->rt_dirty = false;
	}
	if (q->header_dirty) {
		uint8_t h[12];
		uint64_t off = htobe64(q->rt_off);
		uint32_t clusters = htobe32((uint32_t)(q->rt_entries * 8 / q->cs));

		memcpy(h, &off, 8);
		memcpy(h + 8, &clusters, 4);
		if ((ret = sync_file(q)) || (ret = meta_write(q, h, sizeof(h), 48)))
			return ret;
		q->header_dirty = false;
	}
	if ((ret = sync_file(q)))
		return ret;
	q->refs_dirty = false;
	return 0;
}

/* Store @v in entry @i of refcount block @data (§Host cluster management: big-endian entries;
 * below a byte, bit 0 is the least significant). */
static void refcount_put(uint8_t *data, uint64_t i, unsigned order, uint64_t v)
{
	if (order >= 3) {
		unsigned bytes = 1u << (order - 3);
		uint8_t *p = data + i * bytes;

		for (unsigned b = bytes; b-- > 0; v >>= 8)
			p[b] = (uint8_t)v;
	} else {
		unsigned bits = 1u << order, shift = (unsigned)(i % (8 / bits)) * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);
		uint8_t *p = data + i / (8 / bits);

		*p = (uint8_t)((*p & ~mask) | ((v << shift) & mask));
	}
}

static int refcount_set(struct qcow2 *q, uint64_t off, uint64_t v);

/* Move the refcount table to the end of the file with room for entry @ti and for counting
 * itself; the old table is freed once the header points at the new one. */
static int rt_grow(struct qcow2 *q, uint64_t ti)
{
	uint64_t per_block = (q->cs * 8) >> q->refcount_order, per_cluster = q->cs / 8;
	uint64_t entries = q->rt_entries * 2, clusters, old_off = q->rt_off;
	uint64_t old_clusters = q->rt_entries / per_cluster;
	uint64_t *rt;
	int ret;

	for (;;) {
		if (entries < ti + 1)
			entries = ti + 1;
		entries = (entries + per_cluster - 1) / per_cluster * per_cluster;
		clusters = entries / per_cluster;
		/* the new table and the refcount blocks it may need are counted by it too */
		if (((q->end >> q->cluster_bits) + 2 * clusters + 4) / per_block < entries)
			break;
		entries *= 2;
	}
	if (entries * 8 > RT_MAX_BYTES) {
		if (log_once_first(&q->bad_meta))
			log_err("qcow2 image %s: the refcount table would exceed %u bytes", q->path,
				RT_MAX_BYTES);
		return -ENOSPC;
	}
	rt = calloc(entries, 8);
	if (!rt)
		return -ENOMEM;
	memcpy(rt, q->rt, q->rt_entries * 8);
	free(q->rt);
	q->rt = rt;
	q->rt_entries = entries;
	q->rt_off = q->end;
	q->end += clusters << q->cluster_bits;
	q->rt_dirty = q->header_dirty = q->refs_dirty = true;
	for (uint64_t i = 0; i < clusters; i++)
		if ((ret = refcount_set(q, q->rt_off + (i << q->cluster_bits), 1)))
			return ret;
	if ((ret = refs_write(q)))
		return ret;
	for (uint64_t i = 0; i < old_clusters; i++)
		if ((ret = refcount_set(q, old_off + (i << q->cluster_bits), 0)))
			return ret;
	return 0;
}

/* Set the refcount of the cluster at host offset @off to @v, allocating its refcount block at
 * the end of the file (counted by itself or the next block) and growing the table if needed. */
static int refcount_set(struct qcow2 *q, uint64_t off, uint64_t v)
{
	uint64_t per_block = (q->cs * 8) >> q->refcount_order, idx = off >> q->cluster_bits;
	uint64_t ti = idx / per_block, block;
	struct cached *b;
	int ret;

	if (ti >= q->rt_entries && (ret = rt_grow(q, ti)))
		return ret;
	block = be64toh(q->rt[ti]);
	if (!block) {
		block = q->end;
		q->end += q->cs;
		q->rt[ti] = htobe64(block);
		q->rt_dirty = q->refs_dirty = true;
		if ((ret = cache_get(q, &q->rb, block, true, &b)))
			return ret;
		b->dirty = true;
		if ((ret = refcount_set(q, block, 1)))
			return ret;
	} else if ((block & RT_RESERVED) || !cluster_ok(q, block)) {
		return meta_error(q, "refcount table entry", block);
	}
	if ((ret = cache_get(q, &q->rb, block, false, &b)))
		return ret;
	refcount_put(b->data, idx % per_block, q->refcount_order, v);
	b->dirty = q->refs_dirty = true;
	return 0;
}

/* A new cluster at the end of the file, counted once: its host offset in *off. */
static int alloc_cluster(struct qcow2 *q, uint64_t *off)
{
	*off = q->end;
	q->end += q->cs;
	return refcount_set(q, *off, 1);
}

/* --- the metadata caches --- */

static int cache_init(struct cache *c, uint64_t cs, unsigned budget, unsigned max)
{
	c->n = (unsigned)min_u64(max, budget / cs > 2 ? budget / cs : 2);
	c->e = calloc(c->n, sizeof(*c->e));
	if (!c->e)
		return -ENOMEM;
	for (unsigned i = 0; i < c->n; i++)
		if (!(c->e[i].data = malloc(cs)))
			return -ENOMEM;
	return 0;
}

static void cache_free(struct cache *c)
{
	for (unsigned i = 0; c->e && i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
}

/* Write a dirty cached cluster back; an L2 table only once the refcounts it relies on are on
 * the disk. */
static int cache_write(struct qcow2 *q, struct cache *c, struct cached *e)
{
	int ret;

	if (c == &q->l2 && (ret = refs_write(q)))
		return ret;
	if ((ret = meta_write(q, e->data, q->cs, e->off)))
		return ret;
	e->dirty = false;
	return 0;
}

/* The cluster at host offset @off in cache @c, read from the file, or zeros when @fresh (a new
 * table). The pointer is valid until the next cache_get() on @c. */
static int cache_get(struct qcow2 *q, struct cache *c, uint64_t off, bool fresh,
		     struct cached **out)
{
	struct cached *victim = NULL;
	int ret;

	for (unsigned i = 0; i < c->n; i++) {
		if (c->e[i].off == off) {
			c->e[i].used = ++q->tick;
			*out = &c->e[i];
			return 0;
		}
		if (!victim || c->e[i].used < victim->used)
			victim = &c->e[i];
	}
	if (victim->dirty && (ret = cache_write(q, c, victim)))
		return ret;
	victim->off = 0;
	if (fresh)
		memset(victim->data, 0, q->cs);
	else if ((ret = meta_read(q->fd, victim->data, q->cs, off)))
		return ret;
	victim->off = off;
	victim->used = ++q->tick;
	*out = victim;
	return 0;
}

/* --- cluster mapping (§Cluster mapping) --- */

static uint64_t l2_mask(const struct qcow2 *q)
{
	return L2_RESERVED | (q->version == 2 ? ZERO_FLAG : 0) | COMPRESSED;
}

/* The L2 table for guest offset @pos in *t and the entry's index in *i. *t is NULL when the
 * table is not allocated, unless @alloc (a write), which allocates it. */
static int l2_get(struct qcow2 *q, uint64_t pos, bool alloc, struct cached **t, uint64_t *i)
{
	uint64_t l1i = pos >> (2 * q->cluster_bits - 3), e, off;
	int ret;

	*t = NULL;
	*i = (pos >> q->cluster_bits) & (q->cs / 8 - 1);
	if (l1i >= q->l1_size)
		return meta_error(q, "guest offset beyond the L1 table", pos);
	e = be64toh(q->l1[l1i]);
	off = e & OFFSET_MASK;
	if ((e & L1_RESERVED) || (off && !cluster_ok(q, off)))
		return meta_error(q, "L1 entry", e);
	if (off && alloc && !(e & COPIED)) {
		if (log_once_first(&q->shared))
			log_err("qcow2 image %s: an L2 table is shared (refcount above one); writes to it fail",
				q->path);
		return -EIO;
	}
	if (off)
		return cache_get(q, &q->l2, off, false, t);
	if (!alloc)
		return 0;
	if ((ret = alloc_cluster(q, &off)) || (ret = cache_get(q, &q->l2, off, true, t)))
		return ret;
	(*t)->dirty = true;
	q->l1[l1i] = htobe64(off | COPIED);
	q->l1_dirty = true;
	return 0;
}

/* The L2 entry in table @t at @i, checked; 0 for a table that is not allocated. */
static int l2_entry(struct qcow2 *q, const struct cached *t, uint64_t i, uint64_t *entry)
{
	uint64_t e, off;

	*entry = 0;
	if (!t)
		return 0;
	memcpy(&e, t->data + i * 8, 8);
	e = be64toh(e);
	off = e & OFFSET_MASK;
	if ((e & l2_mask(q)) || (off && !cluster_ok(q, off)) || (!off && (e & COPIED)))
		return meta_error(q, "L2 entry", e);
	*entry = e;
	return 0;
}

/* --- reading --- */

/* @len bytes at host offset @off of @fd into @c. */
static int host_read(int fd, struct iov_pos *c, uint64_t len, uint64_t off)
{
	struct iovec v[QCOW2_IOV_MAX];
	int k = iov_take(c, len, v);
	int64_t ret = block_transfer(fd, false, v, k, off);

	return ret < 0 ? (int)ret : 0;
}

static int layer_read(struct qcow2 *q, struct iov_pos *c, uint64_t pos, uint64_t len);

/* What the backing file holds at @pos (zeros past its end, or without one). */
static int backing_read(struct qcow2 *q, struct iov_pos *c, uint64_t pos, uint64_t len)
{
	uint64_t have;
	int ret;

	if (q->backing)
		return layer_read(q->backing, c, pos, len);
	have = q->raw_fd >= 0 && pos < q->raw_size ? min_u64(len, q->raw_size - pos) : 0;
	if (have && (ret = host_read(q->raw_fd, c, have, pos)))
		return ret;
	iov_zero(c, len - have);
	return 0;
}

/* @len bytes at guest offset @pos inside one cluster. */
static int cluster_read(struct qcow2 *q, struct iov_pos *c, uint64_t pos, uint64_t len)
{
	struct cached *t;
	uint64_t i, e;
	int ret;

	if ((ret = l2_get(q, pos, false, &t, &i)) || (ret = l2_entry(q, t, i, &e)))
		return ret;
	if (e & ZERO_FLAG) {
		iov_zero(c, len);
		return 0;
	}
	if (e & OFFSET_MASK)
		return host_read(q->fd, c, len, (e & OFFSET_MASK) + (pos & (q->cs - 1)));
	return backing_read(q, c, pos, len);
}

/* @len bytes of image @q at @pos into @c; past the virtual size they read as zeros (a backing
 * file smaller than its overlay). */
static int layer_read(struct qcow2 *q, struct iov_pos *c, uint64_t pos, uint64_t len)
{
	while (len > 0) {
		uint64_t l = min_u64(q->cs - (pos & (q->cs - 1)), len);
		int ret;

		if (pos >= q->size) {
			iov_zero(c, len);
			return 0;
		}
		l = min_u64(l, q->size - pos);
		if ((ret = cluster_read(q, c, pos, l)))
			return ret;
		pos += l;
		len -= l;
	}
	return 0;
}

/* --- writing --- */

/* Fill @buf with what guest bytes [@pos, @pos + @len) read as before a write: zeros for a zero
 * cluster, else the backing file's data. */
static int fill_around(struct qcow2 *q, bool zero, uint8_t *buf, uint64_t pos, uint64_t len)
{
	struct iovec v = { buf, len };
	struct iov_pos c = { &v, 1, 0 };

	if (zero) {
		memset(buf, 0, len);
		return 0;
	}
	return backing_read(q, &c, pos, len);
}

/* @len bytes from @c at guest offset @pos inside one cluster: in place when the cluster is this
 * image's own, else into a new cluster with the rest copied around the data (COW). */
static int cluster_write(struct qcow2 *q, struct iov_pos *c, uint64_t pos, uint64_t len)
{
	uint64_t in = pos & (q->cs - 1), i, e, host;
	struct iovec v[QCOW2_IOV_MAX + 2];
	struct cached *t;
	int k = 0, ret;
	int64_t done;

	if ((ret = l2_get(q, pos, true, &t, &i)) || (ret = l2_entry(q, t, i, &e)))
		return ret;
	host = e & OFFSET_MASK;
	if (host && !(e & COPIED)) {
		if (log_once_first(&q->shared))
			log_err("qcow2 image %s: a data cluster is shared (refcount above one); writes to it fail",
				q->path);
		return -EIO;
	}
	if (host && !(e & ZERO_FLAG)) {
		k = iov_take(c, len, v);
		done = block_transfer(q->fd, true, v, k, host + in);
		return done < 0 ? (int)done : 0;
	}
	if (!host && (ret = alloc_cluster(q, &host)))
		return ret;
	if (in && (ret = fill_around(q, e & ZERO_FLAG, q->buf, pos - in, in)))
		return ret;
	if (in + len < q->cs &&
	    (ret = fill_around(q, e & ZERO_FLAG, q->buf + in + len, pos + len, q->cs - in - len)))
		return ret;
	if (in)
		v[k++] = (struct iovec){ q->buf, in };
	k += iov_take(c, len, v + k);
	if (in + len < q->cs)
		v[k++] = (struct iovec){ q->buf + in + len, q->cs - in - len };
	done = block_transfer(q->fd, true, v, k, host);
	if (done < 0)
		return (int)done;
	e = htobe64(host | COPIED);
	memcpy(t->data + i * 8, &e, 8);
	t->dirty = true;
	return 0;
}

/* --- the interface --- */

/* The bytes in @iov[0..n) for a request at @pos, or -EINVAL past the virtual size. */
static int64_t request_len(const struct qcow2 *q, const struct iovec *iov, int n, uint64_t pos)
{
	uint64_t len = 0;

	if (n < 0 || n > (int)QCOW2_IOV_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		len += iov[i].iov_len;
		if (len > q->size)
			return -EINVAL;
	}
	return pos > q->size || len > q->size - pos ? -EINVAL : (int64_t)len;
}

int64_t qcow2_readv(struct qcow2 *q, const struct iovec *iov, int n, uint64_t pos)
{
	struct iov_pos c = { iov, n, 0 };
	int64_t len = request_len(q, iov, n, pos);
	int ret;

	if (len < 0)
		return len;
	ret = layer_read(q, &c, pos, (uint64_t)len);
	return ret ? ret : len;
}

int64_t qcow2_writev(struct qcow2 *q, const struct iovec *iov, int n, uint64_t pos)
{
	struct iov_pos c = { iov, n, 0 };
	int64_t len = request_len(q, iov, n, pos);

	if (q->readonly)
		return -EROFS;
	if (len < 0)
		return len;
	for (uint64_t left = (uint64_t)len; left > 0;) {
		uint64_t l = min_u64(q->cs - (pos & (q->cs - 1)), left);
		int ret = cluster_write(q, &c, pos, l);

		if (ret)
			return ret;
		pos += l;
		left -= l;
	}
	return len;
}

int qcow2_flush(struct qcow2 *q)
{
	int ret;

	if (q->readonly)
		return 0;
	if ((ret = refs_write(q)))
		return ret;
	for (unsigned i = 0; i < q->l2.n; i++)
		if (q->l2.e[i].dirty && (ret = cache_write(q, &q->l2, &q->l2.e[i])))
			return ret;
	if (q->l1_dirty) {
		if ((ret = sync_file(q)) || (ret = meta_write(q, q->l1, (size_t)q->l1_size * 8, q->l1_off)))
			return ret;
		q->l1_dirty = false;
	}
	return sync_file(q);
}

static void layer_free(struct qcow2 *q)
{
	if (!q)
		return;
	layer_free(q->backing);
	if (q->raw_fd >= 0)
		close(q->raw_fd);
	if (q->owns_fd)
		close(q->fd);
	cache_free(&q->l2);
	cache_free(&q->rb);
	free(q->l1);
	free(q->rt);
	free(q->buf);
	free(q->path);
	free(q);
}

void qcow2_close(struct qcow2 *q)
{
	int ret;

	if (q && !q->readonly && (ret = qcow2_flush(q)))
		log_err("qcow2 image %s: writing its metadata back: %s", q->path, strerror(-ret));
	layer_free(q);
}

uint64_t qcow2_size(const struct qcow2 *q) { return q->size; }

/* --- opening (§Header, §Header extensions) --- */

static uint32_t be32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

bool qcow2_probe(int fd)
{
	uint8_t m[4];

	return pread(fd, m, sizeof(m), 0) == (ssize_t)sizeof(m) && be32_at(m) == QCOW2_MAGIC;
}

/* Refuse image @q: "PATH: REASON". */
__attribute__((format(printf, 3, 4)))
static int refuse(struct error *e, const struct qcow2 *q, const char *fmt, ...)
{
	char msg[ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_set(e, ERROR_USAGE, "%s: %s", q->path, msg);
}

/* Whether @bytes at @off are whole clusters inside the file, past the header. */
static bool table_ok(const struct qcow2 *q, uint64_t off, uint64_t bytes)
{
	return off && !(off & (q->cs - 1)) && off <= q->end && bytes <= q->end - off;
}

/* The incompatible features kiln cannot honour, named. */
static int check_incompatible(struct qcow2 *q, uint64_t bits, struct error *e)
{
	if (bits & INCOMPAT_DIRTY)
		return refuse(e, q, "the dirty bit is set (refcounts may be inconsistent); repair it "
			      "with qemu-img check -r all");
	if (bits & INCOMPAT_CORRUPT)
		return refuse(e, q, "the image is marked corrupt; repair it with qemu-img check -r all");
	if (bits & INCOMPAT_DATA_FILE)
		return refuse(e, q, "external data files are not supported");
	if (bits & INCOMPAT_COMPRESSION)
		return refuse(e, q, "compressed clusters are not supported (compression type bit set)");
	if (bits & INCOMPAT_EXTENDED_L2)
		return refuse(e, q, "extended L2 entries are not supported");
	if (bits)
		return refuse(e, q, "unknown incompatible feature bits 0x%llx", (unsigned long long)bits);
	return 0;
}

/* The backing file's name and format (empty: unknown) from the first cluster, already in
 * q->buf; *backing is NULL without one. */
static int read_backing_name(struct qcow2 *q, const uint8_t *h, unsigned hdr_len, char **backing,
			     char fmt[16], struct error *e)
{
	uint64_t name_off = be64_at(h + 8), ext_end = name_off ? name_off : q->cs;
	uint32_t name_len = be32_at(h + 16);

	if (name_off && (name_len == 0 || name_len > BACKING_NAME_MAX || name_off < hdr_len ||
			 name_off > q->cs - name_len))
		return refuse(e, q, "the backing file name (%u bytes at %llu) is outside the first cluster",
			      name_len, (unsigned long long)name_off);
	for (uint64_t off = hdr_len; off + 8 <= ext_end;) {
		uint32_t type = be32_at(q->buf + off), len = be32_at(q->buf + off + 4);

		if (type == EXT_END)
			break;
		if (len > ext_end - off - 8)
			return refuse(e, q, "header extension 0x%x (%u bytes) overruns the header", type, len);
		if (type == EXT_BACKING_FORMAT) {
			if (len == 0 || len > 15 || memchr(q->buf + off + 8, 0, len))
				return refuse(e, q, "the backing file format name is invalid");
			memcpy(fmt, q->buf + off + 8, len);
			fmt[len] = 0;
		}
		off += 8 + (((uint64_t)len + 7) & ~7ull);
	}
	if (!name_off)
		return 0;
	if (memchr(q->buf + name_off, 0, name_len))
		return refuse(e, q, "the backing file name contains a NUL byte");
	*backing = strndup((const char *)q->buf + name_off, name_len);
	return *backing ? 0 : error_set(e, ERROR_RUNTIME, "%s: out of memory", q->path);
}

/* Parse and check the header, read the L1 and refcount tables. */
static int read_header(struct qcow2 *q, uint64_t file_size, char **backing, char fmt[16],
		       uint32_t *nb_snapshots, uint64_t *snapshots_off, struct error *e)
{
	uint8_t h[HDR_V3_LEN] = { 0 };
	unsigned hdr_len = HDR_V2_LEN;
	uint64_t rt_bytes;
	int ret;

	if (file_size < HDR_V2_LEN)
		return refuse(e, q, "%llu bytes is too short for a qcow2 header",
			      (unsigned long long)file_size);
	if ((ret = meta_read(q->fd, h, sizeof(h), 0)))
		return error_set(e, ERROR_RUNTIME, "%s: read: %s", q->path, strerror(-ret));
	if (be32_at(h) != QCOW2_MAGIC)
		return refuse(e, q, "not a qcow2 image (no QFI\\xfb magic)");
	q->version = be32_at(h + 4);
	if (q->version != 2 && q->version != 3)
		return refuse(e, q, "qcow2 version %u is not supported (2 and 3 are)", q->version);
	q->cluster_bits = be32_at(h + 20);
	if (q->cluster_bits < MIN_CLUSTER_BITS || q->cluster_bits > MAX_CLUSTER_BITS)
		return refuse(e, q, "cluster_bits %u is outside %u-%u", q->cluster_bits,
			      MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
	q->cs = 1ull << q->cluster_bits;
	q->end = (file_size + q->cs - 1) & ~(q->cs - 1);
	q->size = be64_at(h + 24);
	if (be32_at(h + 32))
		return refuse(e, q, "encrypted images (crypt_method %u) are not supported", be32_at(h + 32));
	q->refcount_order = 4;
	if (q->version == 3) {
		hdr_len = be32_at(h + 100);
		if (hdr_len < HDR_V3_LEN || hdr_len % 8 || hdr_len > q->cs)
			return refuse(e, q, "header_length %u is invalid", hdr_len);
		if ((ret = check_incompatible(q, be64_at(h + 72), e)))
			return ret;
		q->refcount_order = be32_at(h + 96);
		q->autoclear = be64_at(h + 88);
		if (q->refcount_order > 6)
			return refuse(e, q, "refcount_order %u exceeds 6", q->refcount_order);
	}
	q->l1_size = be32_at(h + 36);
	q->l1_off = be64_at(h + 40);
	if ((uint64_t)q->l1_size * 8 > L1_MAX_BYTES)
		return refuse(e, q, "the L1 table's %u entries exceed %u bytes", q->l1_size, L1_MAX_BYTES);
	if (q->size > (uint64_t)q->l1_size << (2 * q->cluster_bits - 3))
		return refuse(e, q, "virtual size %llu needs more than the L1 table's %u entries",
			      (unsigned long long)q->size, q->l1_size);
	if (q->l1_size && !table_ok(q, q->l1_off, (uint64_t)q->l1_size * 8))
		return refuse(e, q, "the L1 table at 0x%llx is unaligned or beyond the end of the file",
			      (unsigned long long)q->l1_off);
	q->rt_off = be64_at(h + 48);
	rt_bytes = (uint64_t)be32_at(h + 56) << q->cluster_bits;
	if (!rt_bytes || rt_bytes > RT_MAX_BYTES || !table_ok(q, q->rt_off, rt_bytes))
		return refuse(e, q, "the refcount table (%u clusters at 0x%llx) is empty, too large, "
			      "unaligned or beyond the end of the file", be32_at(h + 56),
			      (unsigned long long)q->rt_off);
	q->rt_entries = rt_bytes / 8;
	*nb_snapshots = be32_at(h + 60);
	*snapshots_off = be64_at(h + 64);
	if (*nb_snapshots && !table_ok(q, *snapshots_off, 1))
		return refuse(e, q, "the snapshot table at 0x%llx is unaligned or beyond the end of the file",
			      (unsigned long long)*snapshots_off);
	if (*nb_snapshots && !q->readonly)
		return refuse(e, q, "it has %u internal snapshots; kiln opens such an image read-only only",
			      *nb_snapshots);
	q->buf = malloc(q->cs);
	q->l1 = calloc(q->l1_size ? q->l1_size : 1, 8);
	q->rt = malloc(rt_bytes);
	if (!q->buf || !q->l1 || !q->rt)
		return error_set(e, ERROR_RUNTIME, "%s: out of memory", q->path);
	if ((ret = meta_read(q->fd, q->buf, q->cs, 0)) ||
	    (ret = meta_read(q->fd, q->l1, (size_t)q->l1_size * 8, q->l1_off)) ||
	    (ret = meta_read(q->fd, q->rt, rt_bytes, q->rt_off)))
		return error_set(e, ERROR_RUNTIME, "%s: read: %s", q->path, strerror(-ret));
	return read_backing_name(q, h, hdr_len, backing, fmt, e);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The host clusters of the header, the tables, the refcount blocks and the L2 tables, sorted in
 * *out; two of them the same cluster is an error. */
static int collect_metadata(struct qcow2 *q, uint32_t nb_snapshots, uint64_t snapshots_off,
			    uint64_t **out, uint64_t *count, struct error *e)
{
	uint64_t l1_clusters = ((uint64_t)q->l1_size * 8 + q->cs - 1) >> q->cluster_bits;
	uint64_t rt_clusters = q->rt_entries * 8 >> q->cluster_bits, n = 0;
	uint64_t *m = malloc((2 + l1_clusters + rt_clusters + q->rt_entries + q->l1_size) * 8);

	if (!m)
		return error_set(e, ERROR_RUNTIME, "%s: out of memory", q->path);
	*out = m;
	m[n++] = 0;
	for (uint64_t i = 0; q->l1_size && i < l1_clusters; i++)
		m[n++] = q->l1_off + (i << q->cluster_bits);
	for (uint64_t i = 0; i < rt_clusters; i++)
		m[n++] = q->rt_off + (i << q->cluster_bits);
	if (nb_snapshots)
		m[n++] = snapshots_off;
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		uint64_t v = be64toh(q->rt[i]);

		if (v && ((v & RT_RESERVED) || !cluster_ok(q, v)))
			return refuse(e, q, "refcount table entry %llu (0x%llx) is unaligned or beyond the "
				      "end of the file", (unsigned long long)i, (unsigned long long)v);
		if (v)
			m[n++] = v;
	}
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t v = be64toh(q->l1[i]), off = v & OFFSET_MASK;

		if ((v & L1_RESERVED) || (off && !cluster_ok(q, off)))
			return refuse(e, q, "L1 entry %u (0x%llx) is invalid or beyond the end of the file",
				      i, (unsigned long long)v);
		if (off)
			m[n++] = off;
	}
	qsort(m, n, 8, cmp_u64);
	for (uint64_t i = 1; i < n; i++)
		if (m[i] == m[i - 1])
			return refuse(e, q, "metadata overlaps at host offset 0x%llx",
				      (unsigned long long)m[i]);
	*count = n;
	return 0;
}

/* Check every L2 entry of the active L1 table against the file and the metadata @meta[0..n). */
static int check_l2_tables(struct qcow2 *q, const uint64_t *meta, uint64_t n, struct error *e)
{
	uint64_t per_table = q->cs / 8;

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t table = be64toh(q->l1[i]) & OFFSET_MASK;
		int ret;

		if (!table)
			continue;
		if ((ret = meta_read(q->fd, q->buf, q->cs, table)))
			return error_set(e, ERROR_RUNTIME, "%s: read: %s", q->path, strerror(-ret));
		for (uint64_t j = 0; j < per_table; j++) {
			uint64_t v = be64_at(q->buf + j * 8), off = v & OFFSET_MASK;
			unsigned long long guest = ((uint64_t)i * per_table + j) << q->cluster_bits;

			if (v & COMPRESSED)
				return refuse(e, q, "guest offset 0x%llx is a compressed cluster; compressed "
					      "images are not supported (qemu-img convert -O qcow2 without -c "
					      "writes an uncompressed copy)", guest);
			if ((v & l2_mask(q)) || (off && !cluster_ok(q, off)) || (!off && (v & COPIED)))
				return refuse(e, q, "the L2 entry of guest offset 0x%llx (0x%llx) is invalid "
					      "or beyond the end of the file", guest, (unsigned long long)v);
			if (off && bsearch(&off, meta, n, 8, cmp_u64))
				return refuse(e, q, "the data cluster of guest offset 0x%llx overlaps metadata "
					      "at host offset 0x%llx", guest, (unsigned long long)off);
		}
	}
	return 0;
}

/* Record file @st in the chain: a file seen before is a loop. */
static int chain_add(struct chain *ch, const struct stat *st, const char *path, struct error *e)
{
	for (unsigned i = 0; i < ch->n; i++)
		if (ch->dev[i] == st->st_dev && ch->ino[i] == st->st_ino)
			return error_set(e, ERROR_USAGE, "%s: the backing chain loops back to this file", path);
	if (ch->n == QCOW2_CHAIN_MAX)
		return error_set(e, ERROR_USAGE, "%s: the backing chain is deeper than %u images", path,
				 QCOW2_CHAIN_MAX);
	ch->dev[ch->n] = st->st_dev;
	ch->ino[ch->n++] = st->st_ino;
	return 0;
}

static int open_layer(int fd, bool owns_fd, const char *path, bool readonly, struct chain *ch,
		      struct qcow2 **out, struct error *e);

/* Open backing file @name (relative to @q's directory, as QEMU resolves it) of format @fmt
 * ("raw", "qcow2", or empty: the magic decides), read-only. */
static int open_backing(struct qcow2 *q, const char *name, const char *fmt, struct chain *ch,
			struct error *e)
{
	const char *slash = strrchr(q->path, '/');
	char full[4096];
	struct stat st;
	off_t size;
	int fd, n, ret;

	if (name[0] == '/' || !slash)
		n = snprintf(full, sizeof(full), "%s", name);
	else
		n = snprintf(full, sizeof(full), "%.*s%s", (int)(slash - q->path + 1), q->path, name);
	if (n < 0 || (size_t)n >= sizeof(full))
		return refuse(e, q, "the backing file's path is too long");
	if (*fmt && strcmp(fmt, "raw") && strcmp(fmt, "qcow2"))
		return refuse(e, q, "backing file %s has format %s; kiln reads raw and qcow2", full, fmt);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return refuse(e, q, "backing file %s: %s", full, strerror(errno));
	if (!strcmp(fmt, "qcow2") || (!*fmt && qcow2_probe(fd))) {
		ret = open_layer(fd, true, full, true, ch, &q->backing, e);
		ch->backing_failed |= ret != 0;
		return ret;
	}
	q->raw_fd = fd;
	if (fstat(fd, &st) || (size = lseek(fd, 0, SEEK_END)) < 0)
		return error_set(e, ERROR_RUNTIME, "%s: backing file %s: %s", q->path, full, strerror(errno));
	q->raw_size = (uint64_t)size;
	ret = chain_add(ch, &st, full, e);
	ch->backing_failed |= ret != 0;
	return ret;
}

static int open_layer(int fd, bool owns_fd, const char *path, bool readonly, struct chain *ch,
		      struct qcow2 **out, struct error *e)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	char *backing = NULL, fmt[16] = "";
	uint64_t snapshots_off = 0, *meta = NULL, n_meta = 0;
	uint32_t nb_snapshots = 0;
	struct stat st;
	off_t size;
	int ret;

	if (!q || !(q->path = strdup(path))) {
		free(q);
		if (owns_fd)
			close(fd);
		return error_set(e, ERROR_RUNTIME, "%s: out of memory", path);
	}
	q->fd = fd;
	q->owns_fd = owns_fd;
	q->readonly = readonly;
	q->raw_fd = -1;
	if (fstat(fd, &st) || (size = lseek(fd, 0, SEEK_END)) < 0) {
		ret = error_set(e, ERROR_RUNTIME, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((ret = chain_add(ch, &st, path, e)) ||
	    (ret = read_header(q, (uint64_t)size, &backing, fmt, &nb_snapshots, &snapshots_off, e)) ||
	    (ret = collect_metadata(q, nb_snapshots, snapshots_off, &meta, &n_meta, e)) ||
	    (ret = check_l2_tables(q, meta, n_meta, e)))
		goto fail;
	if (cache_init(&q->l2, q->cs, L2_CACHE_BYTES, 16) || cache_init(&q->rb, q->cs, RB_CACHE_BYTES, 4)) {
		ret = error_set(e, ERROR_RUNTIME, "%s: out of memory", path);
		goto fail;
	}
	if (backing && (ret = open_backing(q, backing, fmt, ch, e)))
		goto fail;
	if (!readonly && q->autoclear) { /* kiln keeps none of them (§Header, autoclear_features) */
		uint64_t zero = 0;

		if ((ret = meta_write(q, &zero, 8, 88)) || (ret = sync_file(q))) {
			error_set(e, ERROR_RUNTIME, "%s: write: %s", path, strerror(-ret));
			goto fail;
		}
	}
	free(meta);
	free(backing);
	*out = q;
	return 0;
fail:
	free(meta);
	free(backing);
	layer_free(q);
	return ret;
}

int qcow2_open(int fd, const char *path, bool readonly, struct qcow2 **out, struct error *e)
{
	struct chain ch = { .n = 0 };
	int ret = open_layer(fd, false, path, readonly, &ch, out, e);

	if (ret && ch.backing_failed)
		error_prefix(e, "%s: backing chain", path);
	return ret;
}
