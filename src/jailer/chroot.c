/* SPDX-License-Identifier: Apache-2.0 */
/* chroot — the jail's directory: the exec file copied in, the pivot into it, and what the VMM
 * finds there (its folders and device nodes), as Firecracker's jailer builds it; see jailer.h. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "jailer/jailer.h"

#define OLD_ROOT "old_root"

int jail_copy_exec(const struct jail *j)
{
	char dst[PATH_MAX];

	if (jail_path_join(dst, j->chroot_dir, j->exec_name))
		return jail_fail_os(ENAMETOOLONG, "Failed to open %s/%s", j->chroot_dir, j->exec_name);
	return jail_copy_file(j->exec_path, dst, j->uid, j->gid);
}

int jail_pivot_root(const char *chroot_dir)
{
	if (unshare(CLONE_NEWNS))
		return jail_fail_os(errno, "Failed to unshare into new mount namespace");
	/* Slaves, not private: as Firecracker (its docs say private, its code does this). */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL))
		return jail_fail_os(errno, "Failed to change the propagation type to slave");
	/* pivot_root wants the new root to be a mount point of its own. */
	if (mount(chroot_dir, chroot_dir, NULL, MS_BIND | MS_REC, NULL))
		return jail_fail_os(errno, "Failed to bind mount the jail root directory");
	if (chdir(chroot_dir))
		return jail_fail_os(errno, "Failed to change current directory");
	if (mkdir(OLD_ROOT, S_IRUSR | S_IWUSR))
		return jail_fail_os(errno, "Failed to create the jail root directory before pivoting "
				    "root");
	if (syscall(SYS_pivot_root, ".", OLD_ROOT))
		return jail_fail_os(errno, "Failed to pivot root");
	if (chdir("/"))
		return jail_fail_os(errno, "Failed to chdir into chroot directory");
	if (umount2(OLD_ROOT, MNT_DETACH))
		return jail_fail_os(errno, "Failed to unmount the old jail root");
	if (rmdir(OLD_ROOT))
		return jail_fail_os(errno, "Failed to remove old jail root directory");
	return 0;
}

/* mknod a character device @path (mode 0600) and give it to the jail's uid/gid. Returns 0,
 * or -1 with Firecracker's message in @msg (@len bytes). */
static int make_dev(const struct jail *j, const char *path, unsigned major, unsigned minor,
		    char *msg, size_t len)
{
	if (mknod(path, S_IFCHR | S_IRUSR | S_IWUSR, makedev(major, minor))) {
		snprintf(msg, len, "Failed to create %s via mknod inside the jail: %s (os error %d)",
			 path, strerror(errno), errno);
		return -1;
	}
	if (chown(path, j->uid, j->gid)) {
		snprintf(msg, len, "Failed to change owner for %s: %s (os error %d)", path,
			 strerror(errno), errno);
		return -1;
	}
	return 0;
}

int jail_populate(const struct jail *j)
{
	/* /run: where the VMM's API socket goes by default (/run/firecracker.socket). */
	static const char *const folders[] = { "/", "/dev", "/dev/net", "/run" };
	char msg[256];
	int err;

	for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		if ((err = jail_mkdir_all(folders[i])))
			return jail_fail_os(err, "Failed to create directory %s", folders[i]);
		if (chmod(folders[i], S_IRWXU))
			return jail_fail_os(errno, "Failed to change permissions on %s", folders[i]);
		if (chown(folders[i], j->uid, j->gid))
			return jail_fail_os(errno, "Failed to change owner for %s", folders[i]);
	}
	/* Major and minor numbers: Linux's Documentation/admin-guide/devices.txt. An existing
	 * jail fails here: its nodes exist (Firecracker's "File exists" error). */
	if (make_dev(j, "/dev/net/tun", 10, 200, msg, sizeof(msg)) ||
	    make_dev(j, "/dev/kvm", 10, 232, msg, sizeof(msg)))
		return jail_fail("%s", msg);
	if (make_dev(j, "/dev/urandom", 1, 9, msg, sizeof(msg)))
		printf("Warning! Could not create /dev/urandom device inside jailer: %s.\n"
		       "MMDS version 2 will not be available to use.\n", msg);
	/* userfaultfd is a misc device with a dynamic minor, read from /proc/misc. */
	if (j->uffd_minor >= 0 &&
	    make_dev(j, "/dev/userfaultfd", 10, (unsigned)j->uffd_minor, msg, sizeof(msg)))
		return jail_fail("%s", msg);
	return 0;
}
