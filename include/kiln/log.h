/* SPDX-License-Identifier: Apache-2.0 */
/* log — kiln's diagnostic messages on stderr.
 *
 * Owns: the process-wide log level, line format and line ending. Messages are one line each,
 * prefixed with "kiln: ", or in Firecracker's format once its logger is configured
 * (log_set_firecracker): "2026-12-03T14:23:51.123456789 [ID:THREAD:LEVEL:FILE:LINE] message",
 * local time, the level and origin only when asked; while the console terminal is in raw mode
 * lines end in "\r\n" so they stay readable.
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
/* Print one line at @level from source @file:@line (the macros below fill them in); the format
 * carries no trailing newline. */
void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Name the calling thread @name (at most 15 characters are kept) for ps and for the log lines,
 * which then need no system call to learn it. Unnamed threads are "kiln". */
void log_set_thread_name(const char *name);

/* Firecracker's logger (its LoggerConfig): from now on lines are in its format with instance
 * @id (copied; NULL: "anonymous-instance"); @show_level and @show_origin add the level and the
 * source file and line (each < 0: unchanged); @module (copied; NULL: unchanged, "" none) keeps
 * only lines whose module ("virtio::blk" for src/virtio/blk.c) starts with it. Call before
 * threads that log are started (it reads the time zone now: a filtered thread cannot). */
void log_set_firecracker(const char *id, int show_level, int show_origin, const char *module);

/* Write @len bytes of @line (whole lines, prefix and newline included) to the log with one
 * write(): async-signal-safe, for a signal handler's last words. */
void log_write_raw(const char *line, size_t len);

#define log_err(...) log_msg(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

/* A flag owned by whoever must report a guest-triggered condition only once. */
struct log_once {
	atomic_bool done;
};

/* Returns true exactly once per @once (thread-safe); use as `if (log_once_first(&x)) log_warn(...)`. */
bool log_once_first(struct log_once *once);

#endif
