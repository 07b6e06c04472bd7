/* SPDX-License-Identifier: Apache-2.0 */
/* dynlib — see include/kiln/dynlib.h. */
#include "kiln/dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int dynlib_load(const char *soname, const char *const *names, size_t n, void *table, char *err,
		size_t errlen)
{
	/* RTLD_NOW: every symbol bound here, before the filters; none later from a vCPU. */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	const char *why;

	if (!h) {
		why = dlerror();
		snprintf(err, errlen, "cannot load %s: %s", soname, why ? why : "unknown error");
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++) {
		void *sym;

		dlerror();
		sym = dlsym(h, names[i]);
		if (!sym) {
			why = dlerror();
			snprintf(err, errlen, "%s has no %s: %s", soname, names[i],
				 why ? why : "the symbol is NULL");
			return -ENOENT;
		}
		memcpy((char *)table + i * sizeof(sym), &sym, sizeof(sym));
	}
	return 0;
}
