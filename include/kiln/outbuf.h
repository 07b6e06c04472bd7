/* SPDX-License-Identifier: Apache-2.0 */
/* outbuf — bytes for a host file descriptor (the serial console's output, a console file),
 * queued by any thread and written by kiln's event loop without ever blocking either.
 *
 * Owns: a bounded ring of bytes, a non-blocking handle on the descriptor (a new open file
 * description where the descriptor allows it, so the terminal or pipe kiln was given keeps its
 * own flags), and the count of bytes written to a regular file, which stops at a limit: a guest
 * can neither block a vCPU on a reader that does not read, nor grow host memory or disk without
 * a bound. What does not fit is dropped and counted, as a serial line drops bytes nobody
 * reads.
 */
#ifndef KILN_OUTBUF_H
#define KILN_OUTBUF_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct outbuf;

/* Queue bytes for @fd (borrowed; it must outlive the buffer) in at most @cap bytes, written on
 * @loop; with @fd a regular file, at most @file_limit bytes are written there in all. When room
 * frees up after a put() found the buffer full, @room(@opaque) runs on the loop's thread (may
 * be NULL). Returns 0 with *out set, or -errno. Loop thread. */
int outbuf_new(struct loop *loop, int fd, size_t cap, uint64_t file_limit,
	       void (*room)(void *opaque), void *opaque, struct outbuf **out)
	__attribute__((warn_unused_result));

/* Queue up to @n bytes of @p; returns how many fit (the rest is the caller's to drop). Any
 * thread, any lock held: it takes the buffer's own lock and may schedule the loop's task. */
size_t outbuf_put(struct outbuf *o, const void *p, size_t n);

/* Bytes that fit now. Any thread. */
size_t outbuf_room(struct outbuf *o);

/* Bytes dropped so far: not queued for lack of room, lost to a write error, or past the file
 * limit. Any thread. */
uint64_t outbuf_dropped(struct outbuf *o);

/* Write what the loop has not written yet, blocking if need be (kiln is exiting). Loop
 * thread. */
void outbuf_flush(struct outbuf *o);

/* Release @o (NULL is fine); queued bytes are not written: flush first. Loop thread. */
void outbuf_free(struct outbuf *o);

#endif
