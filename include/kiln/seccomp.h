/* SPDX-License-Identifier: Apache-2.0 */
/* seccomp — the system calls each of kiln's threads may make (seccomp-bpf, compiled with
 * libseccomp).
 *
 * Owns: the filters, one per thread category, written in Firecracker's seccompiler JSON format
 * (its docs/seccompiler.md: per category a "default_action", a "filter_action" and "filter", a
 * list of rules naming a system call and, optionally, "args" conditions, all of which must
 * hold). kiln's own filters are src/seccomp/x86_64.json, compiled into BPF when kiln is built
 * (nothing is parsed or compiled at start); --seccomp-filter FILE replaces them. The main thread (event loop, API, device host sides) installs the "vmm"
 * filter before it reads anything a client or guest sends; every thread it creates starts with
 * that filter and adds its own category's on top (filters stack: the stricter answer wins).
 * Compiling adds one rule to every filter: clone3 fails with ENOSYS, so glibc makes threads
 * with clone, whose flags the rules can check.
 *
 * A call a filter traps (default_action "trap", kiln's choice) ends kiln: one log line naming
 * the thread and the system call number, then exit status 148, as Firecracker.
 */
#ifndef KILN_SECCOMP_H
#define KILN_SECCOMP_H

#include "kiln/error.h"

#define SECCOMP_EXIT_TRAPPED 148 /* Firecracker's exit code for a forbidden system call */

enum seccomp_thread {
	SECCOMP_VMM,    /* the main thread: event loop, API, devices' host sides */
	SECCOMP_VCPU,   /* a vCPU thread: KVM_RUN and the exits it handles */
	SECCOMP_WORKER, /* a helper thread: the synchronous disk engine, a migration's sender */
	SECCOMP_THREADS
};

struct seccomp_filters;

/* Compile the filters of the JSON file at @path for this machine's architecture. Returns 0 with *out set (release with seccomp_filters_free()), or
 * -EINVAL with @e naming the file, the category and the rule at fault (ERROR_USAGE), -ENOMEM
 * or -EIO (ERROR_RUNTIME). */
int seccomp_filters_load(const char *path, struct seccomp_filters **out, struct error *e)
	__attribute__((warn_unused_result));

/* The same from @len bytes of JSON at @text, named @name in messages. */
int seccomp_filters_parse(const char *text, size_t len, const char *name,
			  struct seccomp_filters **out, struct error *e)
	__attribute__((warn_unused_result));

/* kiln's own filters, compiled when kiln was built. Returns 0 with *out set, or -ENOMEM. */
int seccomp_filters_builtin(struct seccomp_filters **out) __attribute__((warn_unused_result));

struct sock_fprog;

/* Filters made of BPF programs @prog[SECCOMP_THREADS] (copied), one per category. Returns 0 or
 * -ENOMEM. */
int seccomp_filters_from_bpf(const struct sock_fprog *prog,
			     struct seccomp_filters **out) __attribute__((warn_unused_result));

/* Category @t's BPF program in @f (borrowed). */
const struct sock_fprog *seccomp_filters_prog(const struct seccomp_filters *f,
					      enum seccomp_thread t);

void seccomp_filters_free(struct seccomp_filters *f);

/* From now on every thread is filtered with @f (taken over): install the "vmm" filter on the
 * calling thread (setting no_new_privs and the handler that reports a trapped call). Call once,
 * before any other thread exists. Returns 0 or -errno (then nothing is installed). */
int seccomp_start(struct seccomp_filters *f) __attribute__((warn_unused_result));

/* Install category @t's filter on the calling thread, first thing in a new thread; nothing
 * when seccomp_start() was not called (--no-seccomp). A thread that cannot be filtered must
 * not run: kiln logs why and exits with SECCOMP_EXIT_TRAPPED. */
void seccomp_enter(enum seccomp_thread t);

/* Install filter @t of @f on the calling thread alone (no_new_privs set, the handler of
 * trapped calls in place). For tests that check one category in a child process. */
int seccomp_install(const struct seccomp_filters *f, enum seccomp_thread t)
	__attribute__((warn_unused_result));

/* The category's name in filter files ("vmm", "vcpu", "worker"). */
const char *seccomp_thread_name(enum seccomp_thread t);

#endif
