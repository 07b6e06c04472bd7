/* SPDX-License-Identifier: Apache-2.0 */
/* env — the checks that turn the command line into a jail (Firecracker's Env::new), see
 * jailer.h. The messages are Firecracker's: tools that drive its jailer match them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "jailer/jailer.h"

#define ID_MAX 64        /* bytes */
#define NO_FILE 2048     /* RLIMIT_NOFILE unless --resource-limit no-file=N */

/* The bytes of the UTF-8 character at @p (1 for a stray byte), for naming it in a message. */
static int utf8_len(const char *p)
{
	unsigned char c = (unsigned char)*p;
	int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

	for (int k = 1; k < n; k++)
		if (((unsigned char)p[k] & 0xc0) != 0x80)
			return k;
	return n;
}

/* 1-64 bytes of ASCII letters, digits and '-'. Firecracker also takes non-ASCII letters and
 * digits, which kiln's --id refuses: the jailer refuses them first. */
static int check_id(const char *id)
{
	size_t len = strlen(id), pos = 0;

	if (len < 1 || len > ID_MAX)
		return jail_fail("Invalid instance ID: Invalid len (%zu);  the length must be "
				 "between 1 and %d", len, ID_MAX);
	for (const char *p = id; *p; pos++) {
		int n = utf8_len(p);
		char c = *p;

		if (!(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z')))
			return jail_fail("Invalid instance ID: Invalid char (%.*s) at position %zu",
					 n, p, pos);
		p += n;
	}
	return 0;
}

static int check_exec_file(const char *path, struct jail *j)
{
	struct stat st;

	if (!realpath(path, j->exec_path))
		return jail_fail_os(errno, "Failed to canonicalize path %s", path);
	if (stat(j->exec_path, &st) || !S_ISREG(st.st_mode))
		return jail_fail("%s is not a file", j->exec_path);
	j->exec_name = strrchr(j->exec_path, '/') + 1;
	return 0;
}

static int set_chroot_dir(const char *base_arg, struct jail *j)
{
	char base[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	if (!realpath(base_arg, base))
		return jail_fail_os(errno, "Failed to canonicalize path %s", base_arg);
	if (stat(base, &st) || !S_ISDIR(st.st_mode))
		return jail_fail("%s is not a directory", base);
	if (jail_path_join(dir, base, j->exec_name) ||
	    jail_path_join(j->chroot_dir, dir, j->id) ||
	    jail_path_join(dir, j->chroot_dir, "root"))
		return jail_fail_os(ENAMETOOLONG, "Failed to create directory %s/%s/%s/root", base,
				    j->exec_name, j->id);
	memcpy(j->chroot_dir, dir, sizeof(dir));
	return 0;
}

/* --parent-cgroup: see jail_rel_path_ok(). Writes it without empty and "." components to
 * @out (PATH_MAX bytes). */
static int check_parent_cgroup(const char *parent, char *out)
{
	const char *p = parent;
	size_t len = 0;

	if (!jail_rel_path_ok(parent))
		return jail_fail("Parent cgroup path is invalid. Path should not be absolute or "
				 "contain '..' or '.'");
	for (; *p; p += strcspn(p, "/"), p += *p == '/') {
		int n = (int)strcspn(p, "/");

		if (!n || (n == 1 && *p == '.'))
			continue;
		if (len + (size_t)n + 2 > PATH_MAX)
			return jail_fail_os(ENAMETOOLONG, "--parent-cgroup %s", parent);
		len += (size_t)sprintf(out + len, "%s%.*s", len ? "/" : "", n, p);
	}
	out[len] = 0;
	return 0;
}

static int parse_limits(const struct jail_args *a, struct jail_limits *l)
{
	l->nofile = NO_FILE;
	for (size_t i = 0; i < a->n_limits; i++) {
		const char *arg = a->limits[i], *eq = strchr(arg, '='), *why;
		uint64_t v;

		if (!eq)
			return jail_fail("Invalid format for resources limits: %s", arg);
		why = jail_parse_uint(eq + 1, UINT64_MAX, &v);
		if (why)
			return jail_fail("Invalid limit value for resource: %s: %s", eq + 1, why);
		if (eq - arg == 5 && !strncmp(arg, "fsize", 5)) {
			l->fsize_set = true;
			l->fsize = v;
		} else if (eq - arg == 7 && !strncmp(arg, "no-file", 7)) {
			l->nofile = v;
		} else {
			return jail_fail("Invalid resource argument: %.*s", (int)(eq - arg), arg);
		}
	}
	return 0;
}

/* The misc device minor of /dev/userfaultfd from /proc/misc, -1 when the host has none. */
static int userfaultfd_minor(void)
{
	FILE *f = fopen("/proc/misc", "re");
	char line[128], name[64];
	unsigned minor;
	int found = -1;

	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %63s", &minor, name) == 2 && !strcmp(name, "userfaultfd"))
			found = (int)minor;
	fclose(f);
	return found;
}

int jail_env_new(const struct jail_args *a, struct jail *j)
{
	char parent[PATH_MAX];
	uint64_t v;

	memset(j, 0, sizeof(*j));
	j->start_us = jail_time_us(CLOCK_MONOTONIC);
	j->start_cpu_us = jail_time_us(CLOCK_PROCESS_CPUTIME_ID);
	j->id = a->id;
	if (check_id(a->id) || check_exec_file(a->exec_file, j) ||
	    set_chroot_dir(a->chroot_base, j))
		return -1;
	if (jail_parse_uint(a->uid, UINT32_MAX, &v))
		return jail_fail("Invalid uid: %s", a->uid);
	j->uid = (uid_t)v;
	if (jail_parse_uint(a->gid, UINT32_MAX, &v))
		return jail_fail("Invalid gid: %s", a->gid);
	j->gid = (gid_t)v;
	j->netns = a->netns;
	j->daemonize = a->daemonize;
	j->new_pid_ns = a->new_pid_ns;
	j->extra = a->extra;
	j->n_extra = a->n_extra;

	if (check_parent_cgroup(a->parent_cgroup ? a->parent_cgroup : j->exec_name, parent))
		return -1;
	if (jail_parse_uint(a->cgroup_version, UINT8_MAX, &v))
		return jail_fail("%s is an invalid cgroup version specifier", a->cgroup_version);
	/* Firecracker: with v2 and no --cgroup, the intent is to move into the parent cgroup. */
	if (!a->n_cgroups && v == 2 && jail_cgroup_v2_join_parent(parent))
		return -1;
	if (a->n_cgroups &&
	    jail_cgroups_parse(&j->cgroups, (int)v, a->cgroups, a->n_cgroups, a->id, parent))
		return -1;
	if (parse_limits(a, &j->limits))
		return -1;
	j->uffd_minor = userfaultfd_minor();
	return 0;
}
