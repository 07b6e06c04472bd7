/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 I/O — reading and writing an open qcow2 image, see include/kiln/qcow2.h.
 *
 * Owns: mapping guest offsets through the L1 and L2 tables, allocation of new clusters and their
 * refcounts, copy-on-write from the backing file, the metadata caches, flushing, and freeing an
 * image. Opening and checking an image is qcow2_open.c's.
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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/qcow2_internal.h"
#include "kiln/block.h"
#include "kiln/log.h"

#define L2_CACHE_BYTES (1u << 20)
#define RB_CACHE_BYTES (256u << 10)

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

bool qcow2_cluster_ok(const struct qcow2 *q, uint64_t off)
{
	return off && !(off & (q->cs - 1)) && off <= q->end - q->cs;
}

/* preadv, as every call on the block worker (its seccomp filter has no pread64). */
int qcow2_meta_read(int fd, void *buf, size_t len, uint64_t off)
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

int qcow2_meta_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = { (void *)buf, len };
	int64_t ret = block_transfer(q->fd, true, &v, 1, off);

	return ret < 0 ? (int)ret : 0;
}

int qcow2_sync(struct qcow2 *q) { return fdatasync(q->fd) ? -errno : 0; }

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

		if (b->dirty && (ret = qcow2_meta_write(q, b->data, q->cs, b->off)))
			return ret;
		b->dirty = false;
	}
	if (q->rt_dirty) {
		if ((ret = qcow2_sync(q)) || (ret = qcow2_meta_write(q, q->rt, q->rt_entries * 8, q->rt_off)))
			return ret;
		q->rt_dirty = false;
	}
	if (q->header_dirty) {
		uint8_t h[12];
		uint64_t off = htobe64(q->rt_off);
		uint32_t clusters = htobe32((uint32_t)(q->rt_entries * 8 / q->cs));

		memcpy(h, &off, 8);
		memcpy(h + 8, &clusters, 4);
		if ((ret = qcow2_sync(q)) || (ret = qcow2_meta_write(q, h, sizeof(h), 48)))
			return ret;
		q->header_dirty = false;
	}
	if ((ret = qcow2_sync(q)))
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
	} else if ((block & RT_RESERVED) || !qcow2_cluster_ok(q, block)) {
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

int qcow2_caches_init(struct qcow2 *q)
{
	int ret = cache_init(&q->l2, q->cs, L2_CACHE_BYTES, 16);

	return ret ? ret : cache_init(&q->rb, q->cs, RB_CACHE_BYTES, 4);
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
	if ((ret = qcow2_meta_write(q, e->data, q->cs, e->off)))
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
	else if ((ret = qcow2_meta_read(q->fd, victim->data, q->cs, off)))
		return ret;
	victim->off = off;
	victim->used = ++q->tick;
	*out = victim;
	return 0;
}

/* --- cluster mapping (§Cluster mapping) --- */

uint64_t qcow2_l2_mask(const struct qcow2 *q)
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
	if ((e & L1_RESERVED) || (off && !qcow2_cluster_ok(q, off)))
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
	if ((e & qcow2_l2_mask(q)) || (off && !qcow2_cluster_ok(q, off)) || (!off && (e & COPIED)))
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
	if (e & OFFSET_MASK) {
		uint64_t host = (e & OFFSET_MASK) + (pos & (q->cs - 1));
		/* Inside one cluster: only the last one at open can reach past the file's end. */
		uint64_t have = host >= q->first_end || host + len <= q->file_end ? len :
				host < q->file_end ? q->file_end - host : 0;

		if (have && (ret = host_read(q->fd, c, have, host)))
			return ret;
		iov_zero(c, len - have);
		return 0;
	}
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
		if ((ret = qcow2_sync(q)) || (ret = qcow2_meta_write(q, q->l1, (size_t)q->l1_size * 8, q->l1_off)))
			return ret;
		q->l1_dirty = false;
	}
	return qcow2_sync(q);
}

void qcow2_layer_free(struct qcow2 *q)
{
	if (!q)
		return;
	qcow2_layer_free(q->backing);
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
	qcow2_layer_free(q);
}

uint64_t qcow2_size(const struct qcow2 *q) { return q->size; }
