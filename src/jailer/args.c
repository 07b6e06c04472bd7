/* SPDX-License-Identifier: Apache-2.0 */
/* args — the jailer's command line with Firecracker's arg_parser rules, see jailer.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jailer/jailer.h"

enum flag_id {
	F_CGROUP, F_CGROUP_VERSION, F_CHROOT_BASE_DIR, F_DAEMONIZE, F_EXEC_FILE, F_GID, F_ID,
	F_NETNS, F_NEW_PID_NS, F_PARENT_CGROUP, F_RESOURCE_LIMIT, F_UID, F_COUNT
};

/* In name order: the order Firecracker checks required flags in. */
static const struct flag {
	const char *name;
	bool required, takes_value, multiple;
} flags[F_COUNT] = {
	[F_CGROUP] = { "cgroup", false, true, true },
	[F_CGROUP_VERSION] = { "cgroup-version", false, true, false },
	[F_CHROOT_BASE_DIR] = { "chroot-base-dir", false, true, false },
	[F_DAEMONIZE] = { "daemonize", false, false, false },
	[F_EXEC_FILE] = { "exec-file", true, true, false },
	[F_GID] = { "gid", true, true, false },
	[F_ID] = { "id", true, true, false },
	[F_NETNS] = { "netns", false, true, false },
	[F_NEW_PID_NS] = { "new-pid-ns", false, false, false },
	[F_PARENT_CGROUP] = { "parent-cgroup", false, true, false },
	[F_RESOURCE_LIMIT] = { "resource-limit", false, true, true },
	[F_UID] = { "uid", true, true, false },
};

static const char help[] =
	"kiln-jailer " KILN_VERSION ": Firecracker v" JAIL_FC_VERSION "'s jailer, for kiln\n"
	"\n"
	"required arguments:\n"
	"  --exec-file <exec-file>     File path to exec into (kiln). It is copied into the jail.\n"
	"  --gid <gid>                 The group identifier the jailer switches to after exec.\n"
	"  --id <id>                   Jail ID: 1-64 of A-Z a-z 0-9 and '-'.\n"
	"  --uid <uid>                 The user identifier the jailer switches to after exec.\n"
	"\n"
	"optional arguments:\n"
	"  --cgroup <cgroup>           Cgroup and value to be set by the jailer: <cgroup_file>=<value>\n"
	"                              (e.g. cpu.max=50000). Can be used multiple times.\n"
	"  --cgroup-version <cgroup-version>  Select the cgroup version used by the jailer (1 or 2).\n"
	"                              [default: 1]\n"
	"  --chroot-base-dir <chroot-base-dir>  The base folder where chroot jails are located.\n"
	"                              [default: /srv/jailer]\n"
	"  --daemonize                 Daemonize the jailer before exec, by invoking setsid(), and\n"
	"                              redirecting the standard I/O file descriptors to /dev/null.\n"
	"  --netns <netns>             Path to the network namespace this microVM should join.\n"
	"  --new-pid-ns                Exec into a new PID namespace.\n"
	"  --parent-cgroup <parent-cgroup>  Parent cgroup in which the cgroup of this microvm will\n"
	"                              be placed. [default: the exec file's name]\n"
	"  --resource-limit <resource-limit>  Resource limit values to be set by the jailer:\n"
	"                              <resource>=<value> (e.g. no-file=1024). Can be used multiple\n"
	"                              times. fsize: the maximum size in bytes for files created by\n"
	"                              the process; no-file: one greater than the maximum file\n"
	"                              descriptor number the process can open [default: 2048].\n"
	"  --version                   Print the binary version number.\n"
	"  --help, -h                  Show the help message.\n"
	"\n"
	"Any arguments after the -- separator will be supplied to the jailed binary.\n";

void jail_print_help(void)
{
	fputs(help, stdout);
}

/* Firecracker's ArgumentParsing error: "Failed to parse arguments: <the parser's message>". */
__attribute__((format(printf, 1, 2)))
static int parse_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("Failed to parse arguments: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static int flag_lookup(const char *name)
{
	for (int f = 0; f < F_COUNT; f++)
		if (!strcmp(flags[f].name, name))
			return f;
	return -1;
}

int jail_parse_args(int argc, char **argv, struct jail_args *a)
{
	const char *value[F_COUNT] = { 0 };
	bool given[F_COUNT] = { 0 };
	int end = 1, f;

	memset(a, 0, sizeof(*a));
	while (end < argc && strcmp(argv[end], "--"))
		end++;
	a->extra = argv + (end < argc ? end + 1 : argc);
	a->n_extra = end < argc ? argc - end - 1 : 0;
	for (int i = 1; i < end; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			a->help = true;
		else if (!strcmp(argv[i], "--version"))
			a->version = true;
	if (a->help || a->version)
		return 0;

	a->cgroups = calloc((size_t)argc, sizeof(*a->cgroups));
	a->limits = calloc((size_t)argc, sizeof(*a->limits));
	if (!a->cgroups || !a->limits)
		return jail_fail("Failed to parse arguments: out of memory");
	for (int i = 1; i < end; i++) {
		const char *arg = argv[i];

		if (strncmp(arg, "--", 2))
			return parse_fail("Found argument '%s' which wasn't expected, or isn't valid "
					  "in this context.", arg);
		f = flag_lookup(arg + 2);
		if (f < 0)
			return parse_fail("Found argument '%s' which wasn't expected, or isn't valid "
					  "in this context.", arg + 2);
		if (given[f] && !flags[f].multiple)
			return parse_fail("The argument '%s' was provided more than once.", arg + 2);
		given[f] = true;
		if (!flags[f].takes_value)
			continue;
		if (i + 1 >= end || !strncmp(argv[i + 1], "--", 2))
			return parse_fail("The argument '%s' requires a value, but none was supplied.",
					  flags[f].name);
		value[f] = argv[++i];
		if (f == F_CGROUP)
			a->cgroups[a->n_cgroups++] = value[f];
		else if (f == F_RESOURCE_LIMIT)
			a->limits[a->n_limits++] = value[f];
	}
	for (f = 0; f < F_COUNT; f++)
		if (flags[f].required && !given[f])
			return parse_fail("Argument '%s' required, but not found.", flags[f].name);

	a->id = value[F_ID];
	a->exec_file = value[F_EXEC_FILE];
	a->uid = value[F_UID];
	a->gid = value[F_GID];
	a->chroot_base = given[F_CHROOT_BASE_DIR] ? value[F_CHROOT_BASE_DIR] : "/srv/jailer";
	a->netns = value[F_NETNS];
	a->cgroup_version = given[F_CGROUP_VERSION] ? value[F_CGROUP_VERSION] : "1";
	a->parent_cgroup = value[F_PARENT_CGROUP];
	a->daemonize = given[F_DAEMONIZE];
	a->new_pid_ns = given[F_NEW_PID_NS];
	return 0;
}
