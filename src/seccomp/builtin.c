/* SPDX-License-Identifier: Apache-2.0 */
/* builtin — kiln's own seccomp filters, see include/kiln/seccomp.h: the BPF programs
 * src/seccomp/bpfgen.c compiled from src/seccomp/x86_64.json when kiln was built. */
#include <linux/filter.h>

#include "kiln/seccomp.h"

/* Generated: seccomp_bpf.c. */
extern const struct sock_fprog seccomp_builtin_prog[SECCOMP_THREADS];

int seccomp_filters_builtin(struct seccomp_filters **out)
{
	return seccomp_filters_from_bpf(seccomp_builtin_prog, out);
}
