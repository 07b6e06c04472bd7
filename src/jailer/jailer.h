/* SPDX-License-Identifier: Apache-2.0 */
/* jailer — kiln-jailer, a drop-in for Firecracker v1.16.1's jailer (its docs/jailer.md and
 * src/jailer): it builds a chroot for one VMM process, puts that process in cgroups, a network
 * namespace, a mount namespace whose root is the chroot and optionally a PID namespace, drops
 * to an unprivileged uid/gid and execs the VMM copied into the chroot.
 *
 * Owns: the jailer's command line (Firecracker's flags and their errors), the checked
 * description of one jail (struct jail: Firecracker's Env), and every step that builds it, in
 * Firecracker's order (main.c). The flags' values, the messages and the exit codes are
 * Firecracker's: every failure prints one line (its error's Display text) on stderr and the
 * jailer exits 1. kiln's additions: a dynamically linked exec file gets its ELF interpreter and
 * shared libraries copied into the jail (libs.c; Firecracker's is static).
 *
 * The jailer is one short-lived, single-threaded process: the structures here point into argv
 * and are never freed (the process execs or exits). Functions that can fail print the error
 * themselves (jail_fail) and return -1, or 1 where this process is done and must exit 0 (the
 * parent of a fork); only main() exits.
 */
#ifndef KILN_JAILER_H
#define KILN_JAILER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JAIL_FC_VERSION "1.16.1" /* the Firecracker jailer this one stands in for */

/* The command line as given (args.c): Firecracker's arg_parser semantics. Values point into
 * argv; defaults are filled in (chroot-base-dir /srv/jailer, cgroup-version 1). */
struct jail_args {
	const char *id, *exec_file, *uid, *gid, *chroot_base, *netns;
	const char *cgroup_version, *parent_cgroup;   /* parent_cgroup NULL: not given */
	bool daemonize, new_pid_ns, help, version;
	const char **cgroups, **limits;               /* --cgroup / --resource-limit values */
	size_t n_cgroups, n_limits;
	char **extra;                                 /* after "--", for the VMM */
	int n_extra;
};

/* One --cgroup FILE=VALUE, its file's controller, and where it is written. */
struct jail_cgroup_prop {
	char *file, *value, *controller;
};

/* A cgroup the jailer makes and joins: its directory under one hierarchy and the properties
 * written there (Firecracker's CgroupV1 per controller, or the one CgroupV2). */
struct jail_cgroup {
	char location[PATH_MAX];
	unsigned parent_depth;                        /* v1: components of --parent-cgroup */
	struct jail_cgroup_prop *props;
	size_t n_props;
};

struct jail_cgroups {
	int version;                                  /* 1 or 2; 0: no --cgroup given */
	struct jail_cgroup *groups;                   /* v1: one per controller; v2: one */
	size_t n_groups;
};

struct jail_limits {
	bool fsize_set;
	uint64_t fsize, nofile;                       /* RLIMIT_FSIZE (bytes), RLIMIT_NOFILE */
};

/* A checked jail (Firecracker's Env). */
struct jail {
	const char *id;
	char exec_path[PATH_MAX];                     /* the exec file, canonical */
	const char *exec_name;                        /* its last component, in exec_path */
	char chroot_dir[PATH_MAX];                    /* <base>/<exec name>/<id>/root */
	uid_t uid;
	gid_t gid;
	const char *netns;
	bool daemonize, new_pid_ns;
	uint64_t start_us, start_cpu_us;              /* CLOCK_MONOTONIC, process CPU time at start */
	uint64_t jailer_cpu_us;                       /* the jailer's own CPU time, for the VMM */
	char **extra;
	int n_extra;
	struct jail_cgroups cgroups;
	struct jail_limits limits;
	int uffd_minor;                               /* /dev/userfaultfd's minor, -1: none */
};

/* util.c */

/* Print @fmt and a newline on stderr (Firecracker's error line); returns -1. */
int jail_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "@fmt: <strerror(@err)> (os error @err)" on stderr, as Firecracker shows an
 * io::Error; returns -1. @err is a positive errno. */
int jail_fail_os(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* @clock (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID) in microseconds. */
uint64_t jail_time_us(clockid_t clock);

/* Write "@dir/@name" into @out (PATH_MAX bytes); -ENAMETOOLONG when it does not fit. An empty
 * @name leaves @dir; a @dir ending in '/' gets no second one. */
int jail_path_join(char *out, const char *dir, const char *name) __attribute__((warn_unused_result));

/* Create directory @path and its missing parents (mode 0777 less the umask), as Rust's
 * fs::create_dir_all: an existing directory is no error. Returns 0 or a positive errno. */
int jail_mkdir_all(const char *path) __attribute__((warn_unused_result));

/* Replace @path's contents with @value and a newline, in one write (cgroup files). Returns 0
 * or a positive errno (Firecracker says "Failed to write to <path>: ..."). */
int jail_write_line(const char *path, const char *value) __attribute__((warn_unused_result));

/* Read @path (at most @size - 1 bytes) into @buf without its last character (the newline),
 * as Firecracker's readln_special. Returns 0 or a positive errno (Firecracker says "Failed to
 * read file <path> into a string: ..."). */
int jail_read_line(const char *path, char *buf, size_t size) __attribute__((warn_unused_result));

/* Whether @path is relative with no ".." and no leading "." component: the components Rust's
 * Path reports (a "." further in is normalized away), which Firecracker refuses in
 * --parent-cgroup and in a --cgroup file. */
bool jail_rel_path_ok(const char *path);

/* Copy regular file @src to @dst (created with @src's mode, never through a symbolic link, no
 * other hard link to it allowed, then owned by @uid:@gid; (uid_t)-1 and (gid_t)-1 keep the
 * owner), as Firecracker copies its binary into the jail. Returns 0 or -1 (printed). */
int jail_copy_file(const char *src, const char *dst, uid_t uid, gid_t gid)
	__attribute__((warn_unused_result));

/* Parse a decimal unsigned integer as Rust's u64::from_str (an optional '+', digits only) no
 * larger than @max. Returns NULL, or Rust's ParseIntError text: "cannot parse integer from
 * empty string", "invalid digit found in string", "number too large to fit in target type". */
const char *jail_parse_uint(const char *text, uint64_t max, uint64_t *out);

/* args.c */

/* Parse argv as Firecracker's jailer does: every flag before "--" is "--name" from the list
 * below, values must not start with "--", flags other than --cgroup and --resource-limit at
 * most once, --id, --exec-file, --uid and --gid required (checked in name order); --help/-h
 * or --version anywhere before "--" wins over everything else. Returns 0, or -1 with
 * "Failed to parse arguments: ..." printed. @a's arrays are allocated (never freed). */
int jail_parse_args(int argc, char **argv, struct jail_args *a) __attribute__((warn_unused_result));

/* The --help text, on stdout. */
void jail_print_help(void);

/* env.c */

/* Check @a and fill @j as Firecracker's Env::new does, in its order: the id, the exec file,
 * the chroot base, uid, gid, the parent cgroup, the cgroup version, then (cgroup v2 without
 * --cgroup) move this process into the parent cgroup when it exists, then each --cgroup,
 * each --resource-limit, and /dev/userfaultfd's minor. Returns 0 or -1 (printed). */
int jail_env_new(const struct jail_args *a, struct jail *j) __attribute__((warn_unused_result));

/* cgroup.c */

/* Read the hierarchies of cgroup @version from /proc/mounts and turn --cgroup values @args
 * into @cg, whose groups are <hierarchy>/<@parent>/<@id>. Errors are Firecracker's ("Invalid
 * format for cgroups: ...", "Cgroup invalid file: ...", "Controller ... is unavailable",
 * "Hierarchy not found: ..."). Returns 0 or -1 (printed). */
int jail_cgroups_parse(struct jail_cgroups *cg, int version, const char **args, size_t n,
		       const char *id, const char *parent) __attribute__((warn_unused_result));

/* cgroup v2 without --cgroup: write this process's pid into <unified>/@parent/cgroup.procs
 * when that cgroup exists (Firecracker's "move to the parent cgroup"). Returns 0 or -1. */
int jail_cgroup_v2_join_parent(const char *parent) __attribute__((warn_unused_result));

/* Make each group's directory, enable the controllers a v2 group needs in its ancestors'
 * cgroup.subtree_control, write the values (v1: after copying each file's value from the
 * parent, so cpuset.cpus/mems start non-empty), then write this process's pid to each group
 * (v1 tasks, v2 cgroup.procs). Returns 0 or -1 (printed). */
int jail_cgroups_setup(const struct jail_cgroups *cg) __attribute__((warn_unused_result));

/* chroot.c */

/* Copy the exec file to <chroot>/<exec name>, owned by the jail's uid/gid. */
int jail_copy_exec(const struct jail *j) __attribute__((warn_unused_result));

/* Enter a new mount namespace (every mount made a slave), bind-mount the chroot on itself,
 * pivot_root into it and detach the old root. The process then sees only the chroot. */
int jail_pivot_root(const char *chroot_dir) __attribute__((warn_unused_result));

/* Inside the jail: /, /dev, /dev/net and /run (mode 0700, owned by the jail's uid/gid), and
 * the device nodes /dev/net/tun, /dev/kvm, /dev/urandom (a warning on stdout when it cannot be
 * made) and /dev/userfaultfd (when the host has one), mode 0600, owned by uid/gid. */
int jail_populate(const struct jail *j) __attribute__((warn_unused_result));

/* libs.c */

/* A dynamically linked exec file: copy its ELF interpreter, the shared libraries it needs
 * (DT_NEEDED, and those its ELF dlopen notes list as "required"; recursively, found as the
 * host's dynamic linker finds them: DT_RUNPATH/DT_RPATH, /etc/ld.so.cache, the default
 * directories) and /etc/ld.so.cache into the chroot at their host paths, owned by root. A
 * static or non-ELF exec file gets nothing. */
int jail_copy_libs(const struct jail *j) __attribute__((warn_unused_result));

/* process.c */

/* Join the network namespace whose handle is the file @path (setns CLONE_NEWNET). */
int jail_join_netns(const char *path) __attribute__((warn_unused_result));

/* setrlimit (soft and hard) RLIMIT_FSIZE when given, and RLIMIT_NOFILE. */
int jail_set_limits(const struct jail_limits *l) __attribute__((warn_unused_result));

/* Daemonize as Firecracker: fork, setsid, fork again, the standard descriptors onto
 * @dev_null (then closed). Returns 0 in the daemon, 1 in the parents (they exit 0), -1. */
int jail_daemonize(struct jail *j, int dev_null) __attribute__((warn_unused_result));

/* --new-pid-ns: fork into a new PID namespace (the child is its init). The parent writes the
 * child's pid to /<exec name>.pid and returns 1 (it exits 0); the child returns 0 (after
 * setsid when the jailer led its session, so the parent's exit sends it no SIGHUP). */
int jail_fork_pid_ns(const struct jail *j) __attribute__((warn_unused_result));

/* Write @pid (decimal, no newline) to the new file /<exec name>.pid. */
int jail_save_pid(const struct jail *j, pid_t pid) __attribute__((warn_unused_result));

/* Drop to the jail's gid (supplementary groups cleared) and uid and exec /<exec name> --id
 * <id> --start-time-us <us> --start-time-cpu-us <us> --parent-cpu-time-us <us> and the extra
 * arguments, with an empty environment and signal mask. Returns -1 (printed) on failure. */
int jail_exec(const struct jail *j) __attribute__((warn_unused_result));

#endif
