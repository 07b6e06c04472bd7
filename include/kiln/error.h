/* SPDX-License-Identifier: Apache-2.0 */
/* error — what a failed operation tells its caller: a kind, the input at fault and one line.
 *
 * Owns: the error record that replaces the (err, errlen, bool *usage) triple. A device or
 * backend writes a message naming the object and the value ("disk \"rootfs\": open /x.img: No
 * such file or directory") and never the front end's wording; the front end that reports it
 * adds its own prefix ("--disk" for `kiln run`, "Start microvm error:" for the API) and maps
 * the kind to an exit code or an HTTP status.
 */
#ifndef KILN_ERROR_H
#define KILN_ERROR_H

#include <stddef.h>

#define ERROR_MSG_MAX 512

enum error_kind {
	ERROR_RUNTIME = 1, /* the host failed (I/O, KVM, out of memory): exit 1, HTTP 400 "Internal" */
	ERROR_USAGE = 2,   /* the user's input is wrong (a value, a file's contents): exit 2 */
};

struct error {
	enum error_kind kind;
	/* Which input is at fault, in the terms of the module that reports it (vm_create():
	 * enum vm_input); 0 when no single input is. */
	int input;
	char msg[ERROR_MSG_MAX];
};

/* Record a failure of @kind with the message @fmt (no trailing newline). Returns -EINVAL for
 * ERROR_USAGE and -EIO for ERROR_RUNTIME, so a function can `return error_set(e, ...)`. */
int error_set(struct error *e, enum error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Put "@fmt: " before the message already in @e (a caller naming the object it was working
 * on). The kind and input stay. */
void error_prefix(struct error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The negative errno a caller returns for @e's kind (-EINVAL usage, -EIO runtime). */
int error_code(const struct error *e);

#endif
