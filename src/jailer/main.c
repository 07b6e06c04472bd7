/* SPDX-License-Identifier: Apache-2.0 */
/* main — kiln-jailer's entry point: the steps that build a jail, in Firecracker's order (see
 * jailer.h and Firecracker's docs/jailer.md, "Jailer Operation"). Exit status: 0 (help,
 * version; the parents of the daemon and PID namespace forks), 1 on any error (one line on
 * stderr), 101 when inherited descriptors cannot be closed (Firecracker panics there). On
 * success the process becomes the VMM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "jailer/jailer.h"

/* Exit status of a Rust panic, which is how Firecracker's jailer reports this one. */
#define EXIT_PANIC 101

/* Everything after the arguments are checked, up to the exec. */
static int build_jail(struct jail *j)
{
	int err, dev_null = -1, ret;

	err = jail_mkdir_all(j->chroot_dir);
	if (err)
		return jail_fail_os(err, "Failed to create directory %s", j->chroot_dir);
	if (jail_copy_exec(j) || jail_copy_libs(j))
		return -1;
	if (j->netns && jail_join_netns(j->netns))
		return -1;
	if (jail_set_limits(&j->limits))
		return -1;
	/* Cgroups and /dev/null: not reachable from inside the chroot. */
	if (jail_cgroups_setup(&j->cgroups))
		return -1;
	if (j->daemonize && (dev_null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return jail_fail_os(errno, "Failed to open /dev/null");
	if (jail_pivot_root(j->chroot_dir) || jail_populate(j))
		return -1;
	j->jailer_cpu_us = jail_time_us(CLOCK_PROCESS_CPUTIME_ID) - j->start_cpu_us;
	if (j->daemonize && (ret = jail_daemonize(j, dev_null)))
		return ret;
	if (j->new_pid_ns)
		ret = jail_fork_pid_ns(j);
	else
		ret = jail_save_pid(j, getpid());
	return ret ? ret : jail_exec(j);
}

int main(int argc, char **argv)
{
	struct jail_args args;
	struct jail jail;

	/* No descriptor the caller left open reaches the VMM; nor does its environment. */
	if (close_range(3, ~0u, CLOSE_RANGE_UNSHARE)) {
		jail_fail_os(errno, "Failed to sanitize the Jailer process: Failed to call close "
			     "range syscall");
		return EXIT_PANIC;
	}
	clearenv();
	if (jail_parse_args(argc, argv, &args))
		return 1;
	if (args.help) {
		jail_print_help();
		return 0;
	}
	if (args.version) {
		puts("kiln-jailer " KILN_VERSION);
		return 0;
	}
	if (jail_env_new(&args, &jail))
		return 1;
	return build_jail(&jail) < 0 ? 1 : 0;
}
