/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup — the jail's cgroups, v1 and v2, as Firecracker's jailer makes them, see jailer.h.
 * Hierarchies come from /proc/mounts; a group is <hierarchy>/<parent cgroup>/<id>. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/jailer.h"

#define MOUNTS "/proc/mounts"
#define MAX_MOUNTS 64

/* The mount points of one cgroup version (v2: the first cgroup2 mount only). */
struct hierarchies {
	struct { char *dir, *options; } m[MAX_MOUNTS];
	size_t n;
};

/* Firecracker's pattern for a line: "<[a-z2]*> <dir> cgroup|cgroup2 <options> 0 0". */
static int read_hierarchies(int version, struct hierarchies *h)
{
	char line[PATH_MAX + 512];
	FILE *f = fopen(MOUNTS, "re");

	h->n = 0;
	if (!f)
		return jail_fail_os(errno, "Failed to open file %s", MOUNTS);
	while (h->n < MAX_MOUNTS && fgets(line, sizeof(line), f)) {
		char *field[6], *save, *t;
		int n = 0;

		for (t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
			if (n++ < 6)
				field[n - 1] = t;
		if (n != 6 || strspn(field[0], "abcdefghijklmnopqrstuvwxyz2") != strlen(field[0]) ||
		    strcmp(field[4], "0") || strcmp(field[5], "0") ||
		    strcmp(field[2], version == 2 ? "cgroup2" : version == 1 ? "cgroup" : ""))
			continue;
		h->m[h->n].dir = strdup(field[1]);
		h->m[h->n].options = strdup(field[3]);
		if (!h->m[h->n].dir || !h->m[h->n].options) {
			fclose(f);
			return jail_fail_os(ENOMEM, "Failed to read line from %s", MOUNTS);
		}
		h->n++;
		if (version == 2)
			break;
	}
	fclose(f);
	if (!h->n)
		return jail_fail("Hierarchy not found: No hierarchy found for this cgroup version.");
	return 0;
}

/* Whether the @sep-separated @list holds the word @word. */
static bool list_has(const char *list, const char *sep, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; *p; p += strcspn(p, sep), p += *p != 0)
		if (strcspn(p, sep) == len && !strncmp(p, word, len))
			return true;
	return false;
}

static int group_init(struct jail_cgroup *g, const char *hierarchy, const char *parent,
		      const char *id)
{
	char dir[PATH_MAX];

	g->parent_depth = 0;
	for (const char *p = parent; *p; p += strcspn(p, "/"), p += *p == '/')
		g->parent_depth++;
	if (jail_path_join(dir, hierarchy, parent) || jail_path_join(g->location, dir, id))
		return jail_fail_os(ENAMETOOLONG, "Failed to create directory %s/%s/%s", hierarchy,
				    parent, id);
	return 0;
}

/* One FILE=VALUE: checked, its controller found, added to its group (made on first use). */
static int add_prop(struct jail_cgroups *cg, const struct hierarchies *h, const char *avail,
		    const char *arg, const char *id, const char *parent)
{
	const char *eq = strchr(arg, '='), *hierarchy = h->m[0].dir;
	struct jail_cgroup *g = NULL;
	struct jail_cgroup_prop prop;
	char *file, *dot;

	if (!eq || !eq[1] || strchr(eq + 1, '='))
		return jail_fail("Invalid format for cgroups: %s", arg);
	file = strndup(arg, (size_t)(eq - arg));
	if (!file)
		return jail_fail_os(ENOMEM, "--cgroup %s", arg);
	if (!jail_rel_path_ok(file))
		return jail_fail("Cgroup invalid file: %s", arg);
	dot = strchr(file, '.');
	if (!dot)
		return jail_fail("Cgroup invalid file: %s", file);
	prop = (struct jail_cgroup_prop){ .file = file, .value = (char *)eq + 1,
					  .controller = strndup(file, (size_t)(dot - file)) };
	if (!prop.controller)
		return jail_fail_os(ENOMEM, "--cgroup %s", arg);

	if (cg->version == 1) {
		hierarchy = NULL;
		for (size_t i = 0; i < h->n && !hierarchy; i++)
			if (list_has(h->m[i].options, ",", prop.controller))
				hierarchy = h->m[i].dir;
		if (!hierarchy)
			return jail_fail("Controller %s is unavailable", prop.controller);
		for (size_t i = 0; i < cg->n_groups && !g; i++)
			if (!strcmp(cg->groups[i].props[0].controller, prop.controller))
				g = &cg->groups[i];
	} else {
		if (!list_has(avail, " \n", prop.controller))
			return jail_fail("Controller %s is unavailable", prop.controller);
		g = cg->n_groups ? &cg->groups[0] : NULL;
	}
	if (!g) {
		g = &cg->groups[cg->n_groups++];
		if (group_init(g, hierarchy, parent, id))
			return -1;
	}
	g->props[g->n_props++] = prop;
	return 0;
}

int jail_cgroups_parse(struct jail_cgroups *cg, int version, const char **args, size_t n,
		       const char *id, const char *parent)
{
	struct hierarchies h;
	char avail[1024] = "", path[PATH_MAX];

	if (read_hierarchies(version, &h))
		return -1;
	cg->version = version;
	cg->n_groups = 0;
	cg->groups = calloc(n, sizeof(*cg->groups));
	for (size_t i = 0; cg->groups && i < n; i++)
		if (!(cg->groups[i].props = calloc(n, sizeof(*cg->groups[i].props))))
			cg->groups = NULL;
	if (!cg->groups)
		return jail_fail_os(ENOMEM, "--cgroup");
	/* v2: the controllers the hierarchy has; none when it cannot be read. */
	if (version == 2 && !jail_path_join(path, h.m[0].dir, "cgroup.controllers") &&
	    jail_read_line(path, avail, sizeof(avail)))
		avail[0] = 0;
	for (size_t i = 0; i < n; i++)
		if (add_prop(cg, &h, avail, args[i], id, parent))
			return -1;
	return 0;
}

int jail_cgroup_v2_join_parent(const char *parent)
{
	struct hierarchies h;
	char dir[PATH_MAX], procs[PATH_MAX], pid[16];
	struct stat st;
	int err;

	if (read_hierarchies(2, &h))
		return -1;
	if (jail_path_join(dir, h.m[0].dir, parent) || stat(dir, &st))
		return 0;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	err = jail_path_join(procs, dir, "cgroup.procs") ? ENAMETOOLONG : jail_write_line(procs, pid);
	if (err)
		return jail_fail("Failed to move process to cgroup (%s): %s (os error %d).\nHint: If "
				 "you intended to create a child cgroup under %s, pass any --cgroup "
				 "parameters.", dir, strerror(err), err, dir);
	return 0;
}

/* @path's parent directory into @out; false for "/". */
static bool parent_dir(const char *path, char *out)
{
	const char *slash = strrchr(path, '/');

	if (!slash || !strcmp(path, "/"))
		return false;
	snprintf(out, PATH_MAX, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return true;
}

static int write_file(const char *dir, const char *name, const char *value)
{
	char path[PATH_MAX];
	int err = jail_path_join(path, dir, name) ? ENAMETOOLONG : jail_write_line(path, value);

	return err ? jail_fail_os(err, "Failed to write to %s/%s", dir, name) : 0;
}

/* v1: copy @file's value from the parent of @path into @path (cpuset.cpus and cpuset.mems of
 * a new v1 cgroup are empty); when the parent's is empty too, fill it from its own parent
 * first, up to @retry levels up. @quiet: that inner attempt, whose failure is no error. */
static int inherit(const char *path, const char *file, unsigned retry, bool quiet)
{
	char dir[PATH_MAX], from[PATH_MAX], line[4096];
	int err;

	if (!parent_dir(path, dir))
		return quiet ? -1 : jail_fail("File %s doesn't have a parent", path);
	if (jail_path_join(from, dir, file))
		return quiet ? -1 : jail_fail_os(ENAMETOOLONG, "Failed to read file %s/%s", dir, file);
	err = jail_read_line(from, line, sizeof(line));
	if (!err && !line[0] && retry > 0) {
		inherit(dir, file, retry - 1, true);
		err = jail_read_line(from, line, sizeof(line));
	}
	if (quiet && (err || !line[0]))
		return -1;
	if (err)
		return jail_fail_os(err, "Failed to read file %s into a string", from);
	if (!line[0])
		return jail_fail("Failed to inherit cgroups configurations from file %s in path %s",
				 file, path);
	return quiet ? (jail_path_join(from, path, file) || jail_write_line(from, line) ? -1 : 0)
		     : write_file(path, file, line);
}

/* v2: "+@controller" into cgroup.subtree_control of @dir and of each ancestor that has one,
 * top down. */
static int enable_controller(const char *dir, const char *controller)
{
	char path[PATH_MAX], up[PATH_MAX], plus[64];
	struct stat st;

	if (jail_path_join(path, dir, "cgroup.subtree_control") || stat(path, &st))
		return 0;
	if (parent_dir(dir, up) && enable_controller(up, controller))
		return -1;
	snprintf(plus, sizeof(plus), "+%s", controller);
	return write_file(dir, "cgroup.subtree_control", plus);
}

static int write_values(int version, const struct jail_cgroup *g)
{
	char parent[PATH_MAX];
	int err = jail_mkdir_all(g->location);

	if (err)
		return jail_fail_os(err, "Failed to create directory %s", g->location);
	for (size_t i = 0; i < g->n_props; i++) {
		const struct jail_cgroup_prop *p = &g->props[i];
		bool enabled = false;

		if (version == 1 && inherit(g->location, p->file, g->parent_depth, false))
			return -1;
		for (size_t k = 0; k < i; k++)
			enabled |= !strcmp(g->props[k].controller, p->controller);
		if (version == 2 && !enabled && parent_dir(g->location, parent) &&
		    enable_controller(parent, p->controller))
			return -1;
		if (write_file(g->location, p->file, p->value))
			return -1;
	}
	return 0;
}

int jail_cgroups_setup(const struct jail_cgroups *cg)
{
	char pid[16];

	for (size_t i = 0; i < cg->n_groups; i++)
		if (write_values(cg->version, &cg->groups[i]))
			return -1;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (size_t i = 0; i < cg->n_groups; i++)
		if (write_file(cg->groups[i].location, cg->version == 1 ? "tasks" : "cgroup.procs", pid))
			return -1;
	return 0;
}
