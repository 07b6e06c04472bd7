/* SPDX-License-Identifier: Apache-2.0 */
/* format — the snapshot container and its section encoders, see include/kiln/snapshot.h. */
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

#define MAGIC "KILNSNAP"
#define TRAILER_MAGIC "KEND"

/* Byte offsets and sizes of the layout in snapshot.h. */
#define HEADER_BYTES 56         /* every format so far */
#define HDR_FORMAT 8
#define HDR_HEADER_BYTES 12
#define HDR_KILN_VERSION 16
#define HDR_FILE_BYTES 48
#define SECTION_V1_BYTES 24     /* name, instance, length */
#define SECTION_V2_BYTES 32     /* name, instance, version, reserved, length */
#define SEC_INSTANCE 12
#define SEC_V1_LENGTH 16
#define SEC_V2_VERSION 16
#define SEC_V2_RESERVED 20
#define SEC_V2_LENGTH 24
#define TRAILER_BYTES 8

_Static_assert(HEADER_BYTES % 8 == 0 && SECTION_V1_BYTES % 8 == 0 && SECTION_V2_BYTES % 8 == 0,
	       "section data starts 8-byte aligned");
_Static_assert(SNAP_KILN_VERSION_MAX == HDR_FILE_BYTES - HDR_KILN_VERSION, "header layout");

/* A section header, decoded. */
struct section {
	char name[SNAP_NAME_MAX];
	uint32_t instance;
	uint32_t version;       /* 1 in a format-1 file */
	uint32_t reserved;
	uint64_t len;
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

static size_t section_header_bytes(uint32_t format)
{
	return format == 1 ? SECTION_V1_BYTES : SECTION_V2_BYTES;
}

/* Decode the section header at @p of a file of @format; the caller checked that it lies
 * inside the buffer. */
static void parse_section(const uint8_t *p, uint32_t format, struct section *s)
{
	memcpy(s->name, p, SNAP_NAME_MAX);
	s->instance = get_le32(p + SEC_INSTANCE);
	if (format == 1) {
		s->version = 1;
		s->reserved = 0;
		s->len = get_le64(p + SEC_V1_LENGTH);
	} else {
		s->version = get_le32(p + SEC_V2_VERSION);
		s->reserved = get_le32(p + SEC_V2_RESERVED);
		s->len = get_le64(p + SEC_V2_LENGTH);
	}
}

/* Room for @more bytes at the end of the sections, or NULL (and oom set). The whole file,
 * header and trailer included, stays within what a reader takes. */
static uint8_t *grow(struct snap_writer *w, size_t more)
{
	if (w->oom)
		return NULL;
	if (w->len > SNAP_FILE_MAX - HEADER_BYTES - TRAILER_BYTES ||
	    more > SNAP_FILE_MAX - HEADER_BYTES - TRAILER_BYTES - w->len) {
		w->oom = true;
		return NULL;
	}
	if (w->cap - w->len < more) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *buf;

		while (cap - w->len < more) /* no overflow: both are at most SNAP_FILE_MAX */
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

void snap_put(struct snap_writer *w, const char *name, uint32_t instance, uint32_t version,
	      const void *data, size_t len)
{
	size_t name_len = strnlen(name, SNAP_NAME_MAX + 1);
	uint8_t *p;

	if (!name_len || name_len > SNAP_NAME_MAX || !version) {
		if (!w->invalid) {
			w->invalid = true;
			memset(w->invalid_name, 0, sizeof(w->invalid_name));
			memcpy(w->invalid_name, name,
			       name_len > SNAP_NAME_MAX ? SNAP_NAME_MAX : name_len);
		}
		return;
	}
	if (len > SNAP_FILE_MAX) { /* would not fit in a file; and pad8() cannot overflow */
		w->oom = true;
		return;
	}
	p = grow(w, SECTION_V2_BYTES + pad8(len));
	if (!p)
		return;
	memset(p, 0, SECTION_V2_BYTES + pad8(len));
	memcpy(p, name, name_len);
	put_le32(p + SEC_INSTANCE, instance);
	put_le32(p + SEC_V2_VERSION, version);
	put_le64(p + SEC_V2_LENGTH, len);
	if (len)
		memcpy(p + SECTION_V2_BYTES, data, len);
}

void snap_put_enc(struct snap_writer *w, const char *name, uint32_t instance, uint32_t version,
		  struct snap_enc *e)
{
	if (e->oom)
		w->oom = true;
	else
		snap_put(w, name, instance, version, e->buf, e->len);
	snap_enc_free(e);
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
	size_t file_len = HEADER_BYTES + w->len + TRAILER_BYTES; /* grow() kept it in bounds */
	uint8_t *buf;

	if (w->invalid)
		return -EINVAL;
	if (w->oom)
		return -ENOMEM;
	buf = malloc(file_len);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, HEADER_BYTES);
	memcpy(buf, MAGIC, 8);
	put_le32(buf + HDR_FORMAT, SNAP_FORMAT_VERSION);
	put_le32(buf + HDR_HEADER_BYTES, HEADER_BYTES);
	snprintf((char *)buf + HDR_KILN_VERSION, SNAP_KILN_VERSION_MAX, "%s", KILN_VERSION);
	put_le64(buf + HDR_FILE_BYTES, file_len);
	if (w->len)
		memcpy(buf + HEADER_BYTES, w->buf, w->len);
	memcpy(buf + file_len - TRAILER_BYTES, TRAILER_MAGIC, 4);
	put_le32(buf + file_len - 4, (uint32_t)crc32(0, buf, (uInt)(file_len - 4)));
	*out = buf;
	*len = file_len;
	return 0;
}

int snap_writer_save(const struct snap_writer *w, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	uint8_t *image;
	size_t len;
	int fd, ret;

	ret = snap_writer_image(w, &image, &len);
	if (ret == -EINVAL) {
		snprintf(err, errlen, "snapshot %s: section \"%s\" has version 0, or a name empty "
			 "or longer than %u bytes", path, w->invalid_name, SNAP_NAME_MAX);
		return ret;
	}
	if (ret) {
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

/* Whether the sections exactly fill [HEADER_BYTES, len - TRAILER_BYTES), each with a version
 * and a zero reserved field; else false with the offset of the first bad one in *at. */
static bool framing_ok(const struct snap_reader *r, size_t *at)
{
	size_t off = HEADER_BYTES, end = r->len - TRAILER_BYTES;
	size_t hdr = section_header_bytes(r->format);

	while (off < end) {
		struct section s;

		*at = off;
		if (end - off < hdr)
			return false;
		parse_section(r->buf + off, r->format, &s);
		off += hdr;
		if (!s.version || s.reserved || s.len > end - off || pad8(s.len) > end - off)
			return false;
		off += pad8(s.len);
	}
	return true;
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
	uint32_t format, header_bytes;
	uint64_t file_len;
	size_t at = 0, i;

	*r = (struct snap_reader){ .buf = buf, .len = len };
	/* The magic and the format version come first in every format, whatever follows. */
	if (len < HDR_FORMAT + 4 || memcmp(buf, MAGIC, 8))
		return bad(r, err, errlen, "snapshot_path %s: not a kiln snapshot", what);
	format = get_le32(buf + HDR_FORMAT);
	if (format > SNAP_FORMAT_VERSION)
		return bad(r, err, errlen, "snapshot_path %s: snapshot format %u is newer than "
			   "this kiln reads (%u-%u)", what, format, SNAP_FORMAT_OLDEST,
			   SNAP_FORMAT_VERSION);
	if (format < SNAP_FORMAT_OLDEST)
		return bad(r, err, errlen, "snapshot_path %s: snapshot format %u is not one kiln "
			   "wrote (this kiln reads %u-%u)", what, format, SNAP_FORMAT_OLDEST,
			   SNAP_FORMAT_VERSION);
	r->format = format;
	if (len > SNAP_FILE_MAX)
		return bad(r, err, errlen, "snapshot_path %s: %zu bytes, more than a snapshot "
			   "holds (1 GiB)", what, len);
	if (len < HEADER_BYTES + TRAILER_BYTES)
		return bad(r, err, errlen, "snapshot_path %s: %zu bytes, less than a header and "
			   "trailer (truncated)", what, len);
	header_bytes = get_le32(buf + HDR_HEADER_BYTES);
	if (header_bytes != HEADER_BYTES)
		return bad(r, err, errlen, "snapshot_path %s: a header of %u bytes; format %u has "
			   "%u (corrupted)", what, header_bytes, format, HEADER_BYTES);
	file_len = get_le64(buf + HDR_FILE_BYTES);
	if (file_len != len)
		return bad(r, err, errlen, "snapshot_path %s: %zu bytes, the header says %llu "
			   "(truncated or appended to)", what, len, (unsigned long long)file_len);
	if (memcmp(buf + len - TRAILER_BYTES, TRAILER_MAGIC, 4) ||
	    get_le32(buf + len - 4) != (uint32_t)crc32(0, buf, (uInt)(len - 4)))
		return bad(r, err, errlen, "snapshot_path %s: checksum mismatch (the file is corrupted)",
			   what);
	if (!framing_ok(r, &at))
		return bad(r, err, errlen, "snapshot_path %s: malformed sections (at byte %zu)",
			   what, at);
	/* Informational only (messages, logs): never compared, and never trusted to be text. */
	for (i = 0; i < SNAP_KILN_VERSION_MAX - 1 && buf[HDR_KILN_VERSION + i]; i++) {
		uint8_t c = buf[HDR_KILN_VERSION + i];

		r->kiln_version[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	r->kiln_version[i] = 0;
	return 0;
}

const void *snap_get(const struct snap_reader *r, const char *name, uint32_t instance,
		     uint32_t *version, size_t *len)
{
	size_t name_len = strnlen(name, SNAP_NAME_MAX + 1), off = HEADER_BYTES, end, hdr;
	char want[SNAP_NAME_MAX] = { 0 };

	if (!r->buf || !name_len || name_len > SNAP_NAME_MAX) /* no file, or a name none has */
		return NULL;
	memcpy(want, name, name_len);
	end = r->len - TRAILER_BYTES;
	hdr = section_header_bytes(r->format);
	while (off < end) { /* framing was checked at open */
		struct section s;

		parse_section(r->buf + off, r->format, &s);
		off += hdr;
		if (s.instance == instance && !memcmp(s.name, want, sizeof(want))) {
			*version = s.version;
			*len = s.len;
			return r->buf + off;
		}
		off += pad8(s.len);
	}
	return NULL;
}

/* How messages name a section: "name", or "name" instance N when N is not 0. */
static void section_label(char *out, size_t n, const char *name, uint32_t instance)
{
	if (instance)
		snprintf(out, n, "\"%.12s\" instance %u", name, instance);
	else
		snprintf(out, n, "\"%.12s\"", name);
}

const void *snap_get_section(const struct snap_reader *r, const char *name, uint32_t instance,
			     uint32_t max_version, uint32_t *version, size_t *len, char *err,
			     size_t errlen)
{
	const void *p = snap_get(r, name, instance, version, len);
	char label[48];

	if (p && *version <= max_version)
		return p;
	if (errlen) {
		section_label(label, sizeof(label), name, instance);
		if (!p)
			snprintf(err, errlen, "snapshot: no section %s", label);
		else if (max_version > 1)
			snprintf(err, errlen, "snapshot: section %s is version %u, newer than this "
				 "kiln reads (1-%u)", label, *version, max_version);
		else
			snprintf(err, errlen, "snapshot: section %s is version %u, newer than this "
				 "kiln reads (1)", label, *version);
	}
	return NULL;
}

const void *snap_get_exact(const struct snap_reader *r, const char *name, uint32_t instance,
			   uint32_t version, size_t len, char *err, size_t errlen)
{
	uint32_t got_version;
	size_t got;
	const void *p = snap_get(r, name, instance, &got_version, &got);
	char label[48];

	if (p && got_version == version && got == len)
		return p;
	if (errlen) {
		section_label(label, sizeof(label), name, instance);
		if (!p)
			snprintf(err, errlen, "snapshot: no section %s", label);
		else if (got_version != version)
			snprintf(err, errlen, "snapshot: section %s is version %u, this kiln reads "
				 "only version %u", label, got_version, version);
		else
			snprintf(err, errlen, "snapshot: section %s is %zu bytes, expected %zu",
				 label, got, len);
	}
	return NULL;
}

void snap_reader_close(struct snap_reader *r)
{
	free(r->buf);
	*r = (struct snap_reader){ 0 };
}
