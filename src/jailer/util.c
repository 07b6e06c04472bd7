/* SPDX-License-Identifier: Apache-2.0 */
/* util — the jailer's error lines, paths and small file operations, see jailer.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jailer/jailer.h"

int jail_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

int jail_fail_os(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s (os error %d)\n", strerror(err), err);
	return -1;
}

uint64_t jail_time_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int jail_path_join(char *out, const char *dir, const char *name)
{
	size_t len = strlen(dir);
	const char *sep = !*name || (len && dir[len - 1] == '/') ? "" : "/";

	return snprintf(out, PATH_MAX, "%s%s%s", dir, sep, name) >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

int jail_mkdir_all(const char *path)
{
	char parent[PATH_MAX];
	char *slash;
	int err;

	if (is_dir(path))
		return 0;
	if (!mkdir(path, 0777) || (errno == EEXIST && is_dir(path)))
		return 0;
	if (errno != ENOENT)
		return errno;
	if (snprintf(parent, sizeof(parent), "%s", path) >= (int)sizeof(parent))
		return ENAMETOOLONG;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return ENOENT;
	*slash = 0;
	err = jail_mkdir_all(parent);
	if (err)
		return err;
	return !mkdir(path, 0777) || (errno == EEXIST && is_dir(path)) ? 0 : errno;
}

int jail_write_line(const char *path, const char *value)
{
	char line[4096];
	ssize_t written;
	int fd, n, err = 0;

	n = snprintf(line, sizeof(line), "%s\n", value);
	if (n >= (int)sizeof(line))
		return E2BIG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return errno;
	written = write(fd, line, (size_t)n);
	if (written != n)
		err = written < 0 ? errno : EIO;
	close(fd);
	return err;
}

int jail_read_line(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0) {
			int err = errno;

			close(fd);
			return err;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len ? len - 1 : 0] = 0;
	return 0;
}

bool jail_rel_path_ok(const char *path)
{
	const char *p = path;

	if (*p == '/' || !strcmp(p, ".") || !strncmp(p, "./", 2))
		return false;
	for (; *p; p += strcspn(p, "/"), p += *p == '/')
		if (!strncmp(p, "..", 2) && (p[2] == '/' || !p[2]))
			return false;
	return true;
}

int jail_copy_file(const char *src, const char *dst, uid_t uid, gid_t gid)
{
	char buf[65536];
	struct stat st;
	off_t copied = 0;
	ssize_t n;
	int in, out, ret = -1;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return jail_fail_os(errno, "Failed to open %s", src);
	if (fstat(in, &st)) {
		jail_fail_os(errno, "Cannot get metadata for a file: %s", src);
		goto out_in;
	}
	/* Not O_TRUNC: a hard link found below must be refused before anything changes. */
	out = open(dst, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
	if (out < 0) {
		jail_fail_os(errno, "Failed to open %s", dst);
		goto out_in;
	}
	if (fstat(out, &st)) {
		jail_fail_os(errno, "Cannot get metadata for a file: %s", dst);
		goto out_out;
	}
	if (st.st_nlink > 1) {
		jail_fail("Detected hard link at: %s", dst);
		goto out_out;
	}
	if (fchown(out, uid, gid)) {
		jail_fail_os(errno, "Failed to change owner for %s", dst);
		goto out_out;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		ssize_t written = n < 0 ? -1 : write(out, buf, (size_t)n);

		if (n < 0 || written != n) {
			jail_fail_os(written < 0 ? errno : EIO, "Failed to copy %s to %s", src, dst);
			goto out_out;
		}
		copied += n;
	}
	/* A file left by an earlier jail may have been longer. */
	if (ftruncate(out, copied)) {
		jail_fail_os(errno, "Failed to copy %s to %s", src, dst);
		goto out_out;
	}
	ret = 0;
out_out:
	close(out);
out_in:
	close(in);
	return ret;
}

const char *jail_parse_uint(const char *text, uint64_t max, uint64_t *out)
{
	const char *p = text;
	uint64_t v = 0;

	if (!*p)
		return "cannot parse integer from empty string";
	if (*p == '+')
		p++;
	if (!*p)
		return "invalid digit found in string";
	/* Rust checks each character before the overflow it would cause. */
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return "invalid digit found in string";
		if (v > (max - (uint64_t)(*p - '0')) / 10)
			return "number too large to fit in target type";
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return NULL;
}
