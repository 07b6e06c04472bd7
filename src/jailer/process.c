/* SPDX-License-Identifier: Apache-2.0 */
/* process — the jailed process itself: its network namespace, resource limits, daemon and PID
 * namespace forks, pid file, privileges and the exec of the VMM, as Firecracker's jailer does
 * them; see jailer.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "jailer/jailer.h"

int jail_join_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return jail_fail_os(errno, "Failed to open file %s", path);
	err = setns(fd, CLONE_NEWNET) ? errno : 0;
	close(fd);
	return err ? jail_fail_os(err, "Failed to join network namespace: netns") : 0;
}

static int set_limit(int resource, uint64_t value, const char *what)
{
	struct rlimit rl = { .rlim_cur = value, .rlim_max = value };

	return setrlimit(resource, &rl) ? jail_fail("Failed to set limit for resource: %s", what) : 0;
}

int jail_set_limits(const struct jail_limits *l)
{
	if (l->fsize_set && set_limit(RLIMIT_FSIZE, l->fsize, "size of file"))
		return -1;
	return set_limit(RLIMIT_NOFILE, l->nofile, "number of file descriptors");
}

/* fork() with stdio flushed first, so nothing buffered is written twice. */
static pid_t fork_flushed(void)
{
	fflush(NULL);
	return fork();
}

int jail_daemonize(struct jail *j, int dev_null)
{
	pid_t pid = fork_flushed();

	if (pid < 0)
		return jail_fail_os(errno, "Failed to daemonize");
	if (pid)
		return 1;
	/* The child is no process group leader, so setsid() works. */
	if (setsid() < 0)
		return jail_fail_os(errno, "Failed to daemonize: setsid");
	j->jailer_cpu_us += jail_time_us(CLOCK_PROCESS_CPUTIME_ID);
	/* The grandchild is no session leader: it can never take a controlling terminal. */
	pid = fork_flushed();
	if (pid < 0)
		return jail_fail_os(errno, "Failed to daemonize");
	if (pid)
		return 1;
	for (int fd = 0; fd < 3; fd++)
		if (dup2(dev_null, fd) < 0)
			return jail_fail_os(errno, "Failed to duplicate fd");
	close(dev_null);
	j->jailer_cpu_us += jail_time_us(CLOCK_PROCESS_CPUTIME_ID);
	return 0;
}

int jail_save_pid(const struct jail *j, pid_t pid)
{
	char path[PATH_MAX], text[16];
	ssize_t written;
	int fd, n, err = 0;

	snprintf(path, sizeof(path), "/%s.pid", j->exec_name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return jail_fail_os(errno, "Failed to open file %s", path);
	n = snprintf(text, sizeof(text), "%d", (int)pid);
	written = write(fd, text, (size_t)n);
	if (written != n)
		err = written < 0 ? errno : EIO;
	close(fd);
	return err ? jail_fail_os(err, "Failed to write to %s", path) : 0;
}

int jail_fork_pid_ns(const struct jail *j)
{
	/* The child is init of its namespace: a SIGHUP from the end of the jailer's session
	 * would reach the handler the VMM installs. Give it a session of its own instead. */
	bool leader = !j->daemonize && getsid(0) == getpid();
	pid_t pid;

	/* unshare + fork makes the child what clone(CLONE_NEWPID) makes (Firecracker's way)
	 * while glibc keeps its fork bookkeeping. */
	if (unshare(CLONE_NEWPID) || (pid = fork_flushed()) < 0)
		return jail_fail_os(errno, "Failed cloning into a new child process");
	if (!pid)
		return leader && setsid() < 0 ? jail_fail_os(errno, "Failed to daemonize: setsid") : 0;
	return jail_save_pid(j, pid) ? -1 : 1;
}

int jail_exec(const struct jail *j)
{
	char path[PATH_MAX], start[24], cpu[24], parent_cpu[24];
	char **argv = calloc((size_t)j->n_extra + 10, sizeof(*argv));
	char *envp[] = { NULL };
	sigset_t none;
	int n = 0, err;

	if (!argv)
		return jail_fail_os(ENOMEM, "Failed to exec into Firecracker");

	snprintf(path, sizeof(path), "/%s", j->exec_name);
	snprintf(start, sizeof(start), "%" PRIu64, j->start_us);
	snprintf(cpu, sizeof(cpu), "%" PRIu64, jail_time_us(CLOCK_PROCESS_CPUTIME_ID));
	snprintf(parent_cpu, sizeof(parent_cpu), "%" PRIu64, j->jailer_cpu_us);
	argv[n++] = path;
	argv[n++] = "--id";
	argv[n++] = (char *)j->id;
	argv[n++] = "--start-time-us";
	argv[n++] = start;
	argv[n++] = "--start-time-cpu-us";
	argv[n++] = cpu;
	argv[n++] = "--parent-cpu-time-us";
	argv[n++] = parent_cpu;
	for (int i = 0; i < j->n_extra; i++)
		argv[n++] = j->extra[i];
	argv[n] = NULL;

	/* As Rust's Command: gid, then no supplementary groups (EPERM tolerated: not root),
	 * then uid; the VMM starts with no blocked signals and SIGPIPE at its default. */
	if (!setgid(j->gid) && (!setgroups(0, NULL) || errno == EPERM) && !setuid(j->uid)) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execve(path, argv, envp);
	}
	err = errno;
	free(argv);
	return jail_fail_os(err, "Failed to exec into Firecracker");
}
