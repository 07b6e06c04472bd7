/* SPDX-License-Identifier: Apache-2.0 */
/* poller — one turn of a struct loop_poller a device registered, as kiln's loop would run it,
 * for tests and fuzz targets that hold the poller themselves. */
#ifndef KILN_TEST_POLLER_H
#define KILN_TEST_POLLER_H

#include <poll.h>

#include "kiln/loop.h"

/* prepare(), poll() for up to @wait_ms, dispatch(). */
static inline void test_poller_turn(const struct loop_poller *p, int wait_ms)
{
	struct pollfd fds[64];
	int timeout = 0;
	unsigned n = p->prepare(p->opaque, fds, 64, &timeout);

	poll(fds, n, wait_ms);
	p->dispatch(p->opaque, fds, n);
}

#endif
