/* SPDX-License-Identifier: Apache-2.0 */
/* log — see include/kiln/log.h. */
#include "kiln/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LOG_WARN;
static atomic_bool log_crlf;
static atomic_int log_fd = STDERR_FILENO;

/* Firecracker's format: set before the threads that log exist, read by every thread. */
static struct {
	atomic_bool on, show_level, show_origin;
	char id[72];
	char module[128];
} fc_format;

static __thread char thread_name[16];

void log_set_thread_name(const char *name)
{
	snprintf(thread_name, sizeof(thread_name), "%s", name);
	pthread_setname_np(pthread_self(), thread_name);
}

void log_set_fd(int fd) { atomic_store(&log_fd, fd); }

void log_set_level(enum log_level level) { atomic_store(&log_level, level); }

bool log_enabled(enum log_level level) { return (int)level <= atomic_load(&log_level); }

void log_set_crlf(bool crlf) { atomic_store(&log_crlf, crlf); }

void log_set_firecracker(const char *id, int show_level, int show_origin, const char *module)
{
	tzset(); /* localtime_r() then never opens /etc/localtime from a filtered thread */
	snprintf(fc_format.id, sizeof(fc_format.id), "%s", id ? id : "anonymous-instance");
	if (show_level >= 0)
		atomic_store(&fc_format.show_level, show_level);
	if (show_origin >= 0)
		atomic_store(&fc_format.show_origin, show_origin);
	if (module)
		snprintf(fc_format.module, sizeof(fc_format.module), "%s", module);
	atomic_store(&fc_format.on, true);
}

void log_write_raw(const char *line, size_t len)
{
	ssize_t ret = write(atomic_load(&log_fd), line, len);

	(void)ret; /* nowhere left to report it */
}

/* @file as kiln's sources name it ("../src/virtio/blk.c": "virtio/blk.c"). */
static const char *source_path(const char *file)
{
	const char *src = strstr(file, "src/");

	return src ? src + 4 : file;
}

/* Whether @path's module ("virtio/blk.c" is "virtio::blk") starts with the filter. */
static bool module_enabled(const char *path)
{
	const char *m = fc_format.module;

	if (!*m)
		return true;
	for (; *m; m++) {
		if (*path == '/' && !strncmp(m, "::", 2)) {
			m++;
		} else if (*path != *m || *path == '.') {
			return false;
		}
		path++;
	}
	return true;
}

/* Firecracker's prefix into @buf: "TIME [ID:THREAD[:LEVEL][:FILE:LINE]] ". */
static size_t fc_prefix(char *buf, size_t size, enum log_level level, const char *path, int line)
{
	static const char *const names[] = { [LOG_ERROR] = "ERROR", [LOG_WARN] = "WARN",
					      [LOG_INFO] = "INFO", [LOG_DEBUG] = "DEBUG" };
	char lvl[8] = "", origin[96] = "";
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	if (atomic_load(&fc_format.show_level) && level >= LOG_ERROR && level <= LOG_DEBUG)
		snprintf(lvl, sizeof(lvl), ":%s", names[level]);
	if (atomic_load(&fc_format.show_origin))
		snprintf(origin, sizeof(origin), ":%s:%d", path, line);
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s%s%s] ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec, fc_format.id, thread_name[0] ? thread_name : "kiln", lvl, origin);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

void log_msg(enum log_level level, const char *file, int line_no, const char *fmt, ...)
{
	char line[1280];
	size_t len;
	va_list ap;

	if (!log_enabled(level))
		return;
	if (atomic_load(&fc_format.on)) {
		const char *path = source_path(file);

		if (!module_enabled(path))
			return;
		len = fc_prefix(line, 256, level, path, line_no);
	} else {
		len = (size_t)snprintf(line, sizeof(line), "kiln: ");
	}
	va_start(ap, fmt);
	vsnprintf(line + len, sizeof(line) - len - 2, fmt, ap);
	va_end(ap);
	strcat(line, atomic_load(&log_crlf) ? "\r\n" : "\n");
	len = strlen(line);
	/* One write per line so lines from several threads do not interleave (and nothing but
	 * write(): any thread may log, under its seccomp filter). */
	log_write_raw(line, len);
}

bool log_once_first(struct log_once *once) { return !atomic_exchange(&once->done, true); }
