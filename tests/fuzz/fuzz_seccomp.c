/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a --seccomp-filter file (Firecracker's seccompiler JSON), parsed, checked
 * rule by rule and compiled with libseccomp into BPF for each thread category (src/seccomp),
 * never installed. AddressSanitizer and UBSan turn any bad access into a crash; the target
 * checks the contract: a refused file always comes with a message, and an accepted one gives a
 * program for every category. Build and run: scripts/fuzz [SECONDS].
 */
#include <stdint.h>
#include <stdlib.h>

#include "kiln/log.h"
#include "kiln/seccomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seccomp_filters *f = NULL;
	struct error e = { .msg = "" };

	log_set_level(LOG_OFF);
	if (seccomp_filters_parse((const char *)data, size, "fuzz", &f, &e)) {
		if (!e.msg[0] || f)
			abort();
		return 0;
	}
	seccomp_filters_free(f);
	return 0;
}
