/* SPDX-License-Identifier: Apache-2.0 */
/* thread — how kiln starts the threads it makes besides the main one (vCPUs, the synchronous
 * disk engine, a migration's sender).
 *
 * Owns: their stack size. glibc's default is 8 MiB; on a host whose transparent huge pages
 * are "always", the top of such a stack can be a 2 MiB huge page the thread touches a few KiB
 * of (measured in the KVM box: 2 MiB of a vCPU thread's stack resident). kiln's deepest
 * frames are tens of KiB (a frame buffer, a chain's iovecs), so each thread gets
 * KILN_THREAD_STACK, too small a mapping to hold a huge page.
 */
#ifndef KILN_THREAD_H
#define KILN_THREAD_H

#include <pthread.h>

#define KILN_THREAD_STACK (1u << 20) /* bytes */

/* pthread_create() with a KILN_THREAD_STACK stack. Returns 0 or an error number (not -errno),
 * as pthread_create() does. */
int kiln_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
	__attribute__((warn_unused_result));

#endif
