/* SPDX-License-Identifier: Apache-2.0 */
/* device_class — making one device from its class in a unit test or fuzzer, without a VM. */
#ifndef KILN_TEST_DEVICE_CLASS_H
#define KILN_TEST_DEVICE_CLASS_H

#include <stdio.h>

#include "kiln/devices.h"

/* Instance 0 of @cls from @config on @host, or NULL (the reason printed on stderr). */
static inline void *test_device_new(const struct device_class *cls, struct dev_host *host,
				    const void *config)
{
	struct error e;
	void *state;

	if (cls->create(host, config, 0, &state, &e)) {
		fprintf(stderr, "%s: %s\n", cls->name, e.msg);
		return NULL;
	}
	return state;
}

#endif
