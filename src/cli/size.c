/* SPDX-License-Identifier: Apache-2.0 */
/* size — SIZE arguments ("512M", "2G", "512"), see include/kiln/cli.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "kiln/cli.h"

int cli_parse_size(const char *text, uint64_t *bytes)
{
	unsigned shift = 20; /* a plain number is MiB */
	unsigned long long n;
	char *end;

	if (!text || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: return -EINVAL;
		}
		end++;
		if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
			return -EINVAL;
	}
	if (n == 0)
		return -EINVAL;
	if (n > (UINT64_C(1) << 63) >> shift)
		return -ERANGE;
	*bytes = (uint64_t)n << shift;
	return 0;
}
