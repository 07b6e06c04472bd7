/* SPDX-License-Identifier: Apache-2.0 */
/* console — see console.h. */
#include "console.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "kiln/log.h"

#define CTRL_A 0x01

/* The terminal state to restore is process-wide: there is one controlling terminal. */
static struct termios saved_termios;
static int saved_fd = -1;
static bool restore_registered;

void console_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSAFLUSH, &saved_termios);
		saved_fd = -1;
		log_set_crlf(false);
	}
}

void console_open(struct console *con, int in_fd,
		  unsigned (*sink)(void *opaque, const uint8_t *data, unsigned len), void *opaque)
{
	struct termios raw;
	struct stat st;

	*con = (struct console){ .in_fd = in_fd, .sink = sink, .opaque = opaque };
	con->pollable = fstat(in_fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
	if (!isatty(in_fd) || tcgetattr(in_fd, &saved_termios))
		return;
	raw = saved_termios;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* kiln's own log lines still start at column 0 */
	if (tcsetattr(in_fd, TCSAFLUSH, &raw))
		return;
	saved_fd = in_fd;
	log_set_crlf(true);
	if (!restore_registered) /* once: a guest reset opens the console again */
		restore_registered = !atexit(console_restore);
}

bool console_flush(struct console *con)
{
	if (con->head < con->tail)
		con->head += con->sink(con->opaque, con->buf + con->head, con->tail - con->head);
	if (con->head == con->tail)
		con->head = con->tail = 0;
	return con->head < con->tail;
}

bool console_read(struct console *con)
{
	uint8_t in[CONSOLE_BUF];
	ssize_t n;

	if (con->in_fd < 0 || con->tail == CONSOLE_BUF)
		return false;
	n = read(con->in_fd, in, CONSOLE_BUF - con->tail);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	if (n <= 0) {
		con->in_fd = -1; /* end of input: the guest keeps running */
		return false;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (saved_fd >= 0 && con->escape) {
			con->escape = false;
			if (in[i] == 'x' || in[i] == 'X')
				return true;
			if (in[i] != CTRL_A)
				continue;
		} else if (saved_fd >= 0 && in[i] == CTRL_A) {
			con->escape = true;
			continue;
		}
		con->buf[con->tail++] = in[i];
	}
	console_flush(con);
	return false;
}
