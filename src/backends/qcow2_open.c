/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 open — opening and checking a qcow2 image, see include/kiln/qcow2.h.
 *
 * Owns: parsing the header and its extensions (§Header, §Header extensions), checking every
 * table at open (L1 and refcount tables, refcount blocks, every L2 entry, overlaps between
 * metadata and data), and opening the backing chain. The checked image is then read and written
 * by qcow2_io.c, which checks every offset again when it uses it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/qcow2_internal.h"

#define QCOW2_MAGIC 0x514649fbu           /* "QFI\xfb" */
#define HDR_V2_LEN 72u
#define HDR_V3_LEN 104u
#define MIN_CLUSTER_BITS 9u
#define MAX_CLUSTER_BITS 21u              /* 2 MiB, QEMU's limit too */
#define L1_MAX_BYTES (32u << 20)          /* QEMU's limits (§Header, size; §Host cluster mgmt) */
#define BACKING_NAME_MAX 1023u

#define INCOMPAT_DIRTY (1ull << 0)
#define INCOMPAT_CORRUPT (1ull << 1)
#define INCOMPAT_DATA_FILE (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTENDED_L2 (1ull << 4)

#define EXT_END 0u
#define EXT_BACKING_FORMAT 0xe2792acau

/* The images of a chain opened so far, to refuse a loop. */
struct chain {
	dev_t dev[QCOW2_CHAIN_MAX];
	ino_t ino[QCOW2_CHAIN_MAX];
	unsigned n;
	bool backing_failed;  /* the error is a backing file's (its message names it) */
};

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

	if (name_off && (name_len == 0 || name_len > BACKING_NAME_MAX || name_len > q->cs ||
			 name_off < hdr_len || name_off > q->cs - name_len))
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
	if ((ret = qcow2_meta_read(q->fd, h, sizeof(h), 0)))
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
	q->file_end = file_size;
	q->first_end = q->end;
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
	if ((ret = qcow2_meta_read(q->fd, q->buf, q->cs, 0)) ||
	    (ret = qcow2_meta_read(q->fd, q->l1, (size_t)q->l1_size * 8, q->l1_off)) ||
	    (ret = qcow2_meta_read(q->fd, q->rt, rt_bytes, q->rt_off)))
		return error_set(e, ERROR_RUNTIME, "%s: read: %s", q->path, strerror(-ret));
	return read_backing_name(q, h, hdr_len, backing, fmt, e);
}

/* The L1 entries the virtual size needs (each maps cs * cs / 8 bytes); at most l1_size, as
 * checked at open. */
static uint64_t l1_needed(const struct qcow2 *q)
{
	unsigned shift = 2 * q->cluster_bits - 3;

	return (q->size + (1ull << shift) - 1) >> shift;
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

		if (v && ((v & RT_RESERVED) || !qcow2_cluster_ok(q, v)))
			return refuse(e, q, "refcount table entry %llu (0x%llx) is unaligned or beyond the "
				      "end of the file", (unsigned long long)i, (unsigned long long)v);
		if (v)
			m[n++] = v;
	}
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t v = be64toh(q->l1[i]), off = v & OFFSET_MASK;

		if ((v & L1_RESERVED) || (off && !qcow2_cluster_ok(q, off)))
			return refuse(e, q, "L1 entry %u (0x%llx) is invalid or beyond the end of the file",
				      i, (unsigned long long)v);
		/* An L2 table past the virtual size maps nothing the guest reaches; refused, so that
		 * the check below reads no more tables than the size needs. */
		if (off && i >= l1_needed(q))
			return refuse(e, q, "L1 entry %u (0x%llx) maps beyond the virtual size", i,
				      (unsigned long long)v);
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

	for (uint64_t i = 0; i < l1_needed(q); i++) {
		uint64_t table = be64toh(q->l1[i]) & OFFSET_MASK;
		int ret;

		if (!table)
			continue;
		if ((ret = qcow2_meta_read(q->fd, q->buf, q->cs, table)))
			return error_set(e, ERROR_RUNTIME, "%s: read: %s", q->path, strerror(-ret));
		for (uint64_t j = 0; j < per_table; j++) {
			uint64_t v = be64_at(q->buf + j * 8), off = v & OFFSET_MASK;
			unsigned long long guest = ((uint64_t)i * per_table + j) << q->cluster_bits;

			if (v & COMPRESSED)
				return refuse(e, q, "guest offset 0x%llx is a compressed cluster; compressed "
					      "images are not supported (qemu-img convert -O qcow2 without -c "
					      "writes an uncompressed copy)", guest);
			if ((v & qcow2_l2_mask(q)) || (off && !qcow2_cluster_ok(q, off)) || (!off && (v & COPIED)))
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
	/* Non-blocking: the name is the image's, and a FIFO must not hang the open. */
	fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return refuse(e, q, "backing file %s: %s", full, strerror(errno));
	if (fstat(fd, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) ||
	    fcntl(fd, F_SETFL, 0) < 0) {
		close(fd);
		return refuse(e, q, "backing file %s: not a regular file or block device", full);
	}
	if (!strcmp(fmt, "qcow2") || (!*fmt && qcow2_probe(fd))) {
		ret = open_layer(fd, true, full, true, ch, &q->backing, e);
		ch->backing_failed |= ret != 0;
		return ret;
	}
	q->raw_fd = fd;
	if ((size = lseek(fd, 0, SEEK_END)) < 0)
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
	if (qcow2_caches_init(q)) {
		ret = error_set(e, ERROR_RUNTIME, "%s: out of memory", path);
		goto fail;
	}
	if (backing && (ret = open_backing(q, backing, fmt, ch, e)))
		goto fail;
	if (!readonly && q->autoclear) { /* kiln keeps none of them (§Header, autoclear_features) */
		uint64_t zero = 0;

		if ((ret = qcow2_meta_write(q, &zero, 8, 88)) || (ret = qcow2_sync(q))) {
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
	qcow2_layer_free(q);
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
