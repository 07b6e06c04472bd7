/* SPDX-License-Identifier: Apache-2.0 */
/* log — kiln's diagnostic messages on stderr.
 *
 * Owns: the process-wide log level and line ending. Messages are one line each, prefixed with
 * "kiln: "; while the console terminal is in raw mode lines end in "\r\n" so they stay readable.
 * Guest-triggered conditions use struct log_once so a hostile guest cannot flood the log.
 */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_OFF = -1, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above @level are dropped. Default LOG_WARN. */
void log_set_level(enum log_level level);
/* True while messages at @level are printed. */
bool log_enabled(enum log_level level);
/* Write messages to @fd (taken over) instead of stderr, e.g. Firecracker's --log-path. */
void log_set_fd(int fd);
/* Terminate lines with "\r\n" (raw terminal) instead of "\n". */
void log_set_crlf(bool crlf);
/* Print one line at @level; the format carries no trailing newline. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write @len bytes of @line (whole lines, prefix and newline included) to the log with one
 * write(): async-signal-safe, for a signal handler's last words. */
void log_write_raw(const char *line, size_t len);

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A flag owned by whoever must report a guest-triggered condition only once. */
struct log_once {
	atomic_bool done;
};

/* Returns true exactly once per @once (thread-safe); use as `if (log_once_first(&x)) log_warn(...)`. */
bool log_once_first(struct log_once *once);

#endif
