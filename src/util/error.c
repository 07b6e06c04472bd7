/* SPDX-License-Identifier: Apache-2.0 */
/* error — see include/kiln/error.h. */
#include "kiln/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int error_code(const struct error *e) { return e->kind == ERROR_USAGE ? -EINVAL : -EIO; }

int error_set(struct error *e, enum error_kind kind, const char *fmt, ...)
{
	va_list ap;

	e->kind = kind;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return error_code(e);
}

void error_prefix(struct error *e, const char *fmt, ...)
{
	char old[ERROR_MSG_MAX];
	va_list ap;
	int n;

	memcpy(old, e->msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	/* A message longer than the record is cut, as every message here is. */
	if (n >= 0 && (size_t)n < sizeof(e->msg) &&
	    snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s", old) < 0)
		e->msg[n] = 0;
}
