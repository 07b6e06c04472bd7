/* SPDX-License-Identifier: Apache-2.0 */
/* console — the host terminal side of the serial console.
 *
 * Owns: the terminal mode of standard input (raw while the VM runs, restored on every exit
 * path through console_restore(), which is also registered with atexit) and the escape
 * sequence Ctrl-A x (quit) / Ctrl-A Ctrl-A (a literal Ctrl-A). Bytes typed go to a sink
 * callback; what the sink cannot take yet is kept and offered again.
 */
#ifndef KILN_CONSOLE_H
#define KILN_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>

#define CONSOLE_BUF 256

struct console {
	int in_fd;            /* -1 when there is no (more) input */
	bool pollable;        /* in_fd can be watched with epoll (not a regular file) */
	bool escape;          /* the previous byte was Ctrl-A */
	uint8_t buf[CONSOLE_BUF];
	unsigned head, tail;  /* pending bytes are buf[head..tail) */
	/* Takes up to @len bytes, returns how many it took. */
	unsigned (*sink)(void *opaque, const uint8_t *data, unsigned len);
	void *opaque;
};

/* Attach to @in_fd; when it is a terminal switch it to raw mode (saved for restore). */
void console_open(struct console *con, int in_fd,
		  unsigned (*sink)(void *opaque, const uint8_t *data, unsigned len), void *opaque);

/* Read what is available and feed the sink. Returns true when the user typed the quit escape.
 * On end of input in_fd becomes -1. */
bool console_read(struct console *con);

/* Offer pending bytes to the sink again; returns true while bytes remain pending. */
bool console_flush(struct console *con);

/* Put the terminal back as it was (idempotent, async-signal-safe enough for atexit). */
void console_restore(void);

#endif
