/* SPDX-License-Identifier: Apache-2.0 */
/* run — create and run the VM a front end configured; map its fate to the exit status. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "kiln/boot.h"
#include "kiln/cli.h"
#include "kiln/log.h"
#include "kiln/net_backend.h"
#include "kiln/seccomp.h"

static int exit_code(enum vm_stop_reason reason, int signo, unsigned guest_status)
{
	switch (reason) {
	case VM_STOP_POWEROFF:
	case VM_STOP_MIGRATED: return KILN_EXIT_POWEROFF;
	case VM_STOP_RESET: return KILN_EXIT_RESET;
	case VM_STOP_PANIC: return KILN_EXIT_PANIC;
	case VM_STOP_TRIPLE_FAULT:
	case VM_STOP_INTERNAL_ERROR: return KILN_EXIT_CRASH;
	case VM_STOP_SIGNAL: return KILN_EXIT_SIGNAL_BASE + signo;
	case VM_STOP_GUEST_EXIT: return (int)(guest_status & 0xff);
	case VM_STOP_NONE: break;
	}
	return KILN_EXIT_RUNTIME;
}

int cli_sandbox_start(const struct cli_sandbox *s, const char *who)
{
	struct seccomp_filters *f;
	struct error e;
	int ret;

	if (s->off)
		return 0;
	if (!s->filter && seccomp_filters_builtin(&f)) {
		fprintf(stderr, "%s: seccomp: out of memory\n", who);
		return KILN_EXIT_RUNTIME;
	}
	if (s->filter && seccomp_filters_load(s->filter, &f, &e)) {
		fprintf(stderr, "%s: --seccomp-filter: %s\n", who, e.msg);
		return e.kind == ERROR_USAGE ? KILN_EXIT_USAGE : KILN_EXIT_RUNTIME;
	}
	ret = seccomp_start(f);
	if (ret) {
		fprintf(stderr, "%s: seccomp: %s\n", who, strerror(-ret));
		seccomp_filters_free(f);
		return KILN_EXIT_RUNTIME;
	}
	return 0;
}

int cli_vm_run_to_end(struct vm *vm, enum vm_stop_reason *why)
{
	enum vm_stop_reason reason = vm_run(vm);
	/* the signal and the guest's status are known once vm_run() is done */
	int ret = exit_code(reason, vm_stop_signal(vm), vm_guest_exit_status(vm));

	vm_destroy(vm);
	if (why)
		*why = reason;
	return ret;
}

/* --cpu-template FILE: the custom template in it (Firecracker's format), or NULL after
 * printing why not. */
static struct x86_template *read_template(const char *path, const char *who)
{
	struct x86_template *t = NULL;
	json_error_t je;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	char why[600];

	if (!doc)
		fprintf(stderr, "%s: --cpu-template %s: %s%s\n", who, path,
			je.line > 0 ? "not JSON: " : "", je.text);
	else if (x86_template_parse(doc, &t, why, sizeof(why)))
		fprintf(stderr, "%s: --cpu-template %s: %s\n", who, path, why);
	json_decref(doc);
	return t;
}

/* A UEFI VM without vars=FILE: its variable store starts as a copy of the default VARS file
 * in a memfd that lives as long as kiln, so what the guest writes survives its resets (as in
 * QEMU's flash device) and is gone at exit. Points @cfg at it through /proc/self/fd; *fd is
 * closed by the caller. Returns 0, or the exit status after printing why not. */
static int private_vars(struct vm_config *cfg, int *fd, char *path, size_t len, const char *who)
{
	int in = open(cfg->firmware_vars_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st, code;
	ssize_t n = 0;
	char buf[65536], why[200];

	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "%s: --firmware: vars %s: %s\n", who, cfg->firmware_vars_path,
			in < 0 ? strerror(errno) : "not a regular file");
		if (in >= 0)
			close(in);
		return KILN_EXIT_USAGE;
	}
	/* Its size against the code's now, while the message can still name the file. */
	if (!stat(cfg->firmware_path, &code) && S_ISREG(code.st_mode) &&
	    !boot_uefi_code_check((size_t)code.st_size, why, sizeof(why)) &&
	    boot_uefi_vars_check((size_t)code.st_size, (size_t)st.st_size, why, sizeof(why))) {
		fprintf(stderr, "%s: --firmware: vars %s: %s\n", who, cfg->firmware_vars_path, why);
		close(in);
		return KILN_EXIT_USAGE;
	}
	*fd = memfd_create("kiln-uefi-vars", MFD_CLOEXEC);
	while (*fd >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(*fd, buf, (size_t)n) != n)
			n = -1;
	close(in);
	if (*fd < 0 || n < 0) {
		fprintf(stderr, "%s: --firmware: a private copy of vars %s: %s\n", who,
			cfg->firmware_vars_path, strerror(errno));
		return KILN_EXIT_RUNTIME;
	}
	snprintf(path, len, "/proc/self/fd/%d", *fd);
	cfg->firmware_vars_path = path;
	cfg->firmware_vars_private = false;
	return 0;
}

/* The shared libraries @r's VM needs beyond the ones every VM does: libslirp for a user-mode
 * NIC (kiln/dynlib.h), loaded before the seccomp filters forbid it. Returns 0, or the exit
 * status after printing why not. */
static int load_libraries(const struct cli_run *r, const char *who)
{
	char err[600];

	for (unsigned i = 0; i < r->nr_nets; i++) {
		if (r->net[i].kind != NET_USER)
			continue;
		if (net_user_library_load(err, sizeof(err))) {
			fprintf(stderr, "%s: --net user: %s\n", who, err);
			return KILN_EXIT_RUNTIME;
		}
		break;
	}
	return 0;
}

int cli_run_vm(const struct cli_run *r, const char *who)
{
	struct vm_config cfg = r->vm;
	struct x86_template *custom = NULL;
	struct loop *loop;
	struct error e;
	struct vm *vm;
	char err[ERROR_MSG_MAX + 64], vars_path[40];
	int ret, vars_fd = -1;

	if (cfg.firmware_vars_private && (ret = private_vars(&cfg, &vars_fd, vars_path,
							     sizeof(vars_path), who)))
		return ret;
	if (r->cpu_template_file && !(custom = read_template(r->cpu_template_file, who))) {
		if (vars_fd >= 0)
			close(vars_fd);
		return KILN_EXIT_USAGE;
	}
	cfg.custom_template = custom;
	ret = load_libraries(r, who);
	if (!ret)
		ret = cli_sandbox_start(&r->sandbox, who);
	/* A reset is a new machine: QEMU resets each device in place, kiln makes the VM again
	 * (the seccomp filters already allow all that vm_create() does). */
	for (unsigned boot = 1; !ret; boot++) {
		if (boot > 1)
			log_info("the guest reset: starting the machine again (boot %u)", boot);
		if ((ret = loop_new(&loop))) {
			fprintf(stderr, "%s: event loop: %s\n", who, strerror(-ret));
			ret = KILN_EXIT_RUNTIME;
		} else if (vm_create(&cfg, loop, &vm, &e)) {
			cli_word_error(r, &e, err, sizeof(err));
			fprintf(stderr, "%s: %s\n", who, err);
			loop_free(loop);
			ret = e.kind == ERROR_USAGE ? KILN_EXIT_USAGE : KILN_EXIT_RUNTIME;
		} else {
			enum vm_stop_reason why;

			ret = cli_vm_run_to_end(vm, &why);
			loop_free(loop);
			/* The reason, not the status: --debug-exit's value 1 also makes status 3. */
			if (why == VM_STOP_RESET && r->reboot_reset)
				ret = 0; /* and around again */
			else
				break;
		}
	}
	x86_template_free(custom);
	if (vars_fd >= 0)
		close(vars_fd);
	return ret;
}
