/* SPDX-License-Identifier: Apache-2.0 */
/* rebase — `kiln rebase-snap --base-file BASE --diff-file DIFF`: merge a Diff snapshot's
 * memory file onto the memory file of the snapshot before it, as Firecracker's rebase-snap
 * tool does. A diff memory file is as long as guest memory and holds data only where pages
 * were dirtied (holes elsewhere); every data extent of DIFF is copied to the same offset of
 * BASE, which then is the memory file of the diff's snapshot (restore it with the diff's state
 * file). Chains apply in order: base, diff 1, diff 2, ...
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/cli.h"

static const char rebase_usage[] =
	"usage: kiln rebase-snap --base-file BASE --diff-file DIFF\n"
	"\n"
	"Copy the pages a Diff snapshot's memory file DIFF holds onto the memory file BASE of the\n"
	"snapshot it was taken after; BASE then goes with DIFF's snapshot file.\n";

/* Copy [off, off + len) of @in to the same place in @out. */
static int copy_range(int in, int out, off_t off, off_t len)
{
	while (len > 0) {
		loff_t a = off, b = off;
		ssize_t n = copy_file_range(in, &a, out, &b, (size_t)len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += n;
		len -= n;
	}
	return 0;
}

int cli_rebase_snap(int argc, char **argv)
{
	const char *base = NULL, *diff = NULL;
	struct stat sb, sd;
	int in = -1, out = -1, ret = 0;
	off_t data, hole;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(rebase_usage, stdout);
			return 0;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--base-file"))
			base = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--diff-file"))
			diff = argv[++i];
		else {
			fprintf(stderr, "kiln rebase-snap: unknown or incomplete argument \"%s\"\n%s",
				argv[i], rebase_usage);
			return KILN_EXIT_USAGE;
		}
	}
	if (!base || !diff) {
		fprintf(stderr, "kiln rebase-snap: --base-file and --diff-file are needed\n%s",
			rebase_usage);
		return KILN_EXIT_USAGE;
	}
	in = open(diff, O_RDONLY | O_CLOEXEC);
	out = open(base, O_WRONLY | O_CLOEXEC);
	if (in < 0 || out < 0 || fstat(in, &sd) || fstat(out, &sb)) {
		fprintf(stderr, "kiln rebase-snap: %s: %s\n", in < 0 ? diff : base, strerror(errno));
		ret = KILN_EXIT_USAGE;
	} else if (sd.st_size != sb.st_size) {
		fprintf(stderr, "kiln rebase-snap: %s is %lld bytes, %s %lld: not the same guest\n",
			diff, (long long)sd.st_size, base, (long long)sb.st_size);
		ret = KILN_EXIT_USAGE;
	}
	for (data = 0; !ret && (data = lseek(in, data, SEEK_DATA)) >= 0; data = hole) {
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0 || (ret = copy_range(in, out, data, hole - data))) {
			fprintf(stderr, "kiln rebase-snap: copying %s: %s\n", diff,
				strerror(ret ? -ret : errno));
			ret = KILN_EXIT_RUNTIME;
		}
	}
	if (!ret && errno != ENXIO) { /* ENXIO: no data after @data */
		fprintf(stderr, "kiln rebase-snap: %s: %s\n", diff, strerror(errno));
		ret = KILN_EXIT_RUNTIME;
	}
	if (out >= 0 && close(out) && !ret) {
		fprintf(stderr, "kiln rebase-snap: %s: %s\n", base, strerror(errno));
		ret = KILN_EXIT_RUNTIME;
	}
	if (in >= 0)
		close(in);
	return ret;
}
