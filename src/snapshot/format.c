/* format — the snapshot container, see include/kiln/snapshot.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "kiln/snapshot.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the snapshot format is little-endian");

#define MAGIC "KILNSNAP"
#define TRAILER_MAGIC "KEND"
#define VERSION_LEN 32

struct header {
	char magic[8];
	uint32_t format;
	uint32_t header_len;
	char kiln_version[VERSION_LEN];
	uint64_t file_len;
};

struct section {
	char name[SNAP_NAME_MAX];
	uint32_t instance;
	uint64_t len;
};

struct trailer {
	char magic[4];
	uint32_t crc;
};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Little-endian stores and loads by shifts, so that the bytes are the same whatever the host. */
static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t get_le32(const uint8_t *p)
{
	return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* Room for @n more bytes at the end of @e, or NULL (and oom set). */
static uint8_t *enc_grow(struct snap_enc *e, size_t n)
{
	if (e->oom)
		return NULL;
	if (e->len > SNAP_FILE_MAX || n > SNAP_FILE_MAX - e->len) {
		e->oom = true;
		return NULL;
	}
	if (e->cap - e->len < n) {
		size_t cap = e->cap ? e->cap : 256;
		uint8_t *buf;

		while (cap - e->len < n) /* no overflow: both are at most SNAP_FILE_MAX */
			cap *= 2;
		buf = realloc(e->buf, cap);
		if (!buf) {
			e->oom = true;
			return NULL;
		}
		e->buf = buf;
		e->cap = cap;
	}
	e->len += n;
	return e->buf + e->len - n;
}

void snap_enc_u8(struct snap_enc *e, uint8_t v)
{
	uint8_t *p = enc_grow(e, 1);

	if (p)
		*p = v;
}

void snap_enc_u16(struct snap_enc *e, uint16_t v)
{
	uint8_t *p = enc_grow(e, 2);

	if (p)
		put_le16(p, v);
}

void snap_enc_u32(struct snap_enc *e, uint32_t v)
{
	uint8_t *p = enc_grow(e, 4);

	if (p)
		put_le32(p, v);
}

void snap_enc_u64(struct snap_enc *e, uint64_t v)
{
	uint8_t *p = enc_grow(e, 8);

	if (p)
		put_le64(p, v);
}

void snap_enc_bytes(struct snap_enc *e, const void *p, size_t n)
{
	uint8_t *q;

	if (!n)
		return;
	q = enc_grow(e, n);
	if (q)
		memcpy(q, p, n);
}

void snap_enc_free(struct snap_enc *e)
{
	free(e->buf);
	*e = (struct snap_enc){ 0 };
}

void snap_dec_init(struct snap_dec *d, const void *p, size_t len)
{
	*d = (struct snap_dec){ .p = p, .len = len };
}

/* The next @n bytes, consumed, or NULL (and bad set) when fewer are left or a read failed. */
static const uint8_t *dec_take(struct snap_dec *d, size_t n)
{
	if (d->bad || d->off > d->len || n > d->len - d->off) {
		d->bad = true;
		return NULL;
	}
	d->off += n;
	return d->p + d->off - n;
}

uint8_t snap_dec_u8(struct snap_dec *d)
{
	const uint8_t *p = dec_take(d, 1);

	return p ? *p : 0;
}

uint16_t snap_dec_u16(struct snap_dec *d)
{
	const uint8_t *p = dec_take(d, 2);

	return p ? get_le16(p) : 0;
}

uint32_t snap_dec_u32(struct snap_dec *d)
{
	const uint8_t *p = dec_take(d, 4);

	return p ? get_le32(p) : 0;
}

uint64_t snap_dec_u64(struct snap_dec *d)
{
	const uint8_t *p = dec_take(d, 8);

	return p ? get_le64(p) : 0;
}

void snap_dec_bytes(struct snap_dec *d, void *out, size_t n)
{
	const uint8_t *p;

	if (!n)
		return;
	p = dec_take(d, n);
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

bool snap_dec_done(const struct snap_dec *d)
{
	return !d->bad && d->off == d->len;
}

static void *grow(struct snap_writer *w, size_t more)
{
	if (w->oom)
		return NULL;
	if (w->cap - w->len < more) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *buf;

		while (cap - w->len < more)
			cap *= 2;
		buf = realloc(w->buf, cap);
		if (!buf) {
			w->oom = true;
			return NULL;
		}
		w->buf = buf;
		w->cap = cap;
	}
	w->len += more;
	return w->buf + w->len - more;
}

void snap_put(struct snap_writer *w, const char *name, uint32_t instance, const void *data,
	      size_t len)
{
	struct section s = { .instance = instance, .len = len };
	uint8_t *p;

	memcpy(s.name, name, strnlen(name, sizeof(s.name)));
	p = grow(w, sizeof(s) + pad8(len));
	if (!p)
		return;
	memcpy(p, &s, sizeof(s));
	memset(p + sizeof(s), 0, pad8(len));
	if (len)
		memcpy(p + sizeof(s), data, len);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int snap_writer_image(const struct snap_writer *w, uint8_t **out, size_t *len)
{
	struct header h = { .magic = MAGIC, .format = SNAP_FORMAT_VERSION, .header_len = sizeof(h) };
	struct trailer t = { .magic = TRAILER_MAGIC };
	uint8_t *buf;

	if (w->oom)
		return -ENOMEM;
	snprintf(h.kiln_version, sizeof(h.kiln_version), "%s", KILN_VERSION);
	h.file_len = sizeof(h) + w->len + sizeof(t);
	buf = malloc(h.file_len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &h, sizeof(h));
	if (w->len)
		memcpy(buf + sizeof(h), w->buf, w->len);
	memcpy(buf + sizeof(h) + w->len, t.magic, sizeof(t.magic));
	t.crc = (uint32_t)crc32(0, buf, (uInt)(h.file_len - sizeof(t.crc)));
	memcpy(buf + h.file_len - sizeof(t.crc), &t.crc, sizeof(t.crc));
	*out = buf;
	*len = h.file_len;
	return 0;
}

int snap_writer_save(const struct snap_writer *w, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	uint8_t *image;
	size_t len;
	int fd, ret;

	if (snap_writer_image(w, &image, &len)) {
		snprintf(err, errlen, "snapshot %s: out of memory", path);
		return -ENOMEM;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= sizeof(tmp)) {
		free(image);
		snprintf(err, errlen, "snapshot_path %s: too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		free(image);
		snprintf(err, errlen, "snapshot_path %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = write_all(fd, image, len);
	free(image);
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		snprintf(err, errlen, "snapshot_path %s: %s", path, strerror(-ret));
	}
	return ret;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	*w = (struct snap_writer){ 0 };
}

__attribute__((format(printf, 4, 5)))
static int bad(struct snap_reader *r, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	snap_reader_close(r);
	return -EINVAL;
}

/* Whether the sections exactly fill [sizeof(header), len - sizeof(trailer)). */
static bool framing_ok(const struct snap_reader *r)
{
	size_t off = sizeof(struct header), end = r->len - sizeof(struct trailer);

	while (off < end) {
		struct section s;

		if (end - off < sizeof(s))
			return false;
		memcpy(&s, r->buf + off, sizeof(s));
		off += sizeof(s);
		if (s.len > end - off || pad8(s.len) > end - off)
			return false;
		off += pad8(s.len);
	}
	return off == end;
}

int snap_reader_open(struct snap_reader *r, const char *path, char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0, len;
	uint8_t *buf;
	int fd, e;

	*r = (struct snap_reader){ 0 };
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "snapshot_path %s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > SNAP_FILE_MAX) {
		close(fd);
		snprintf(err, errlen, "snapshot_path %s: not a regular file of at most 1 GiB", path);
		return -EINVAL;
	}
	len = (size_t)st.st_size;
	buf = malloc(len ? len : 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "snapshot_path %s: out of memory", path);
		return -ENOMEM;
	}
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != len) {
		free(buf);
		snprintf(err, errlen, "snapshot_path %s: read error", path);
		return -EIO;
	}
	return snap_reader_take(r, buf, len, path, err, errlen);
}

int snap_reader_take(struct snap_reader *r, uint8_t *buf, size_t len, const char *what,
		     char *err, size_t errlen)
{
	struct header h;
	struct trailer t;

	*r = (struct snap_reader){ .buf = buf, .len = len };
	if (r->len < sizeof(h) + sizeof(t) || memcmp(r->buf, MAGIC, 8))
		return bad(r, err, errlen, "snapshot_path %s: not a kiln snapshot", what);
	memcpy(&h, r->buf, sizeof(h));
	if (h.format != SNAP_FORMAT_VERSION || h.header_len != sizeof(h))
		return bad(r, err, errlen, "snapshot_path %s: snapshot format %u, this kiln reads %u",
			   what, h.format, SNAP_FORMAT_VERSION);
	h.kiln_version[VERSION_LEN - 1] = 0;
	if (strcmp(h.kiln_version, KILN_VERSION))
		return bad(r, err, errlen,
			   "snapshot_path %s: made by kiln %s; this is kiln %s, which restores only its own",
			   what, h.kiln_version, KILN_VERSION);
	if (h.file_len != r->len)
		return bad(r, err, errlen, "snapshot_path %s: %zu bytes, the header says %llu "
			   "(truncated or appended to)", what, r->len, (unsigned long long)h.file_len);
	memcpy(&t, r->buf + r->len - sizeof(t), sizeof(t));
	if (memcmp(t.magic, TRAILER_MAGIC, 4) ||
	    t.crc != (uint32_t)crc32(0, r->buf, (uInt)(r->len - sizeof(t.crc))))
		return bad(r, err, errlen, "snapshot_path %s: checksum mismatch (the file is corrupted)",
			   what);
	if (!framing_ok(r))
		return bad(r, err, errlen, "snapshot_path %s: malformed sections", what);
	return 0;
}

const void *snap_get(const struct snap_reader *r, const char *name, uint32_t instance,
		     size_t *len)
{
	size_t off = sizeof(struct header), end = r->len - sizeof(struct trailer);
	char want[SNAP_NAME_MAX] = { 0 };

	memcpy(want, name, strnlen(name, sizeof(want)));
	while (off < end) { /* framing was checked at open */
		struct section s;

		memcpy(&s, r->buf + off, sizeof(s));
		off += sizeof(s);
		if (s.instance == instance && !memcmp(s.name, want, sizeof(want))) {
			*len = s.len;
			return r->buf + off;
		}
		off += pad8(s.len);
	}
	return NULL;
}

const void *snap_get_exact(const struct snap_reader *r, const char *name, uint32_t instance,
			   size_t len, char *err, size_t errlen)
{
	size_t got;
	const void *p = snap_get(r, name, instance, &got);

	if (!p && errlen)
		snprintf(err, errlen, "snapshot has no section %.12s.%u", name, instance);
	else if (p && got != len && errlen)
		snprintf(err, errlen, "snapshot section %.12s.%u is %zu bytes, expected %zu", name,
			 instance, got, len);
	return p && got == len ? p : NULL;
}

void snap_reader_close(struct snap_reader *r)
{
	free(r->buf);
	*r = (struct snap_reader){ 0 };
}
