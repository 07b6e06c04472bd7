/* SPDX-License-Identifier: Apache-2.0 */
/* log — see include/kiln/log.h. */
#include "kiln/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level = LOG_WARN;
static atomic_bool log_crlf;
static atomic_int log_fd = STDERR_FILENO;

void log_set_fd(int fd) { atomic_store(&log_fd, fd); }

void log_set_level(enum log_level level) { atomic_store(&log_level, level); }

bool log_enabled(enum log_level level) { return (int)level <= atomic_load(&log_level); }

void log_set_crlf(bool crlf) { atomic_store(&log_crlf, crlf); }

void log_write_raw(const char *line, size_t len)
{
	ssize_t ret = write(atomic_load(&log_fd), line, len);

	(void)ret; /* nowhere left to report it */
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024] = "kiln: ";
	size_t len;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line + 6, sizeof(line) - 8, fmt, ap);
	va_end(ap);
	strcat(line, atomic_load(&log_crlf) ? "\r\n" : "\n");
	len = strlen(line);
	/* One write per line so lines from several threads do not interleave (and nothing but
	 * write(): any thread may log, under its seccomp filter). */
	log_write_raw(line, len);
}

bool log_once_first(struct log_once *once) { return !atomic_exchange(&once->done, true); }
