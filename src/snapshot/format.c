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
#define FILE_MAX (1ull << 30) /* device state is kilobytes; guest memory has its own file */

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
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
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
