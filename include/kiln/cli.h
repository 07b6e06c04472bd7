/* SPDX-License-Identifier: Apache-2.0 */
/* cli — the `kiln run` command line: parsing and validation of user input.
 *
 * Owns: option syntax, SIZE parsing, the usage text and the wording of errors for the command
 * line. It turns argv into a struct vm_config and the device configurations it points at
 * without touching files or KVM, so every malformed value is reported before anything starts;
 * errors from vm_create() are worded as the option that caused them.
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/fw_cfg.h"
#include "kiln/log.h"
#include "kiln/virtio_balloon.h"
#include "kiln/virtio_blk.h"
#include "kiln/virtio_console.h"
#include "kiln/virtio_net.h"
#include "kiln/virtio_rng.h"
#include "kiln/virtio_vsock.h"
#include "kiln/vm.h"

/* Exit codes of `kiln run` (documented in the usage text and README.md). */
enum kiln_exit {
	KILN_EXIT_POWEROFF = 0,     /* guest powered off (ACPI S5), or migrated away */
	KILN_EXIT_RUNTIME = 1,      /* runtime error: I/O, KVM or host failure */
	KILN_EXIT_USAGE = 2,        /* bad command line or input file */
	KILN_EXIT_RESET = 3,        /* guest rebooted / reset (kiln run --reboot exit) */
	KILN_EXIT_PANIC = 4,        /* guest kernel panicked (pvpanic) */
	KILN_EXIT_CRASH = 5,        /* guest triple fault, or KVM could not run the guest */
	KILN_EXIT_SIGNAL_BASE = 128 /* + signal number when SIGINT/SIGTERM/SIGHUP ended the VM */
};

/* Parse a memory SIZE: a plain number of MiB ("512"), or a number with a binary-unit suffix
 * K, M, G or T ("512M", "2G"; case-insensitive, optionally followed by "iB" or "B").
 * Returns 0 with *bytes set, -EINVAL for malformed text or 0, -ERANGE for values above 2^63. */
int cli_parse_size(const char *text, uint64_t *bytes) __attribute__((warn_unused_result));

enum cli_action { CLI_RUN, CLI_HELP, CLI_VERSION };

/* The seccomp options every mode takes: --no-seccomp, --seccomp-filter FILE. */
struct cli_sandbox {
	bool off;               /* --no-seccomp */
	const char *filter;     /* --seccomp-filter FILE, or NULL for kiln's own filters */
};

/* Filter this thread and every thread it makes from now on (include/kiln/seccomp.h), unless
 * @s is off. Returns 0, or the exit status after printing the error prefixed by @who (a bad
 * filter file: KILN_EXIT_USAGE). Call before reading anything a client or guest sends. */
int cli_sandbox_start(const struct cli_sandbox *s, const char *who);

/* What `kiln run` parsed: the VM's configuration and the device configurations its device
 * list points at. */
struct cli_run {
	struct vm_config vm;
	enum log_level level;
	struct cli_sandbox sandbox;
	const char *option[VM_MAX_DEVICES];   /* the option that added vm.device[i] ("--disk") */
	struct disk_config disk[VM_MAX_DEVICES];
	struct net_config net[VM_MAX_DEVICES];
	struct vsock_config vsock;
	struct balloon_config balloon;
	struct rng_config rng;
	struct console_config console;
	struct debug_exit_config debug_exit;
	struct fw_cfg_config fw_cfg;
	unsigned nr_disks, nr_nets;
	const char *cpu_template_file; /* --cpu-template FILE: a custom template, read when the
					  VM is made; NULL: none */
	bool reboot_reset;             /* --reboot reset: a guest reset makes the VM anew */
};

/* Parse `kiln run` options in argv[1..argc) into @r (defaults filled in; the whole
 * configuration checked with vm_config_check()). Returns CLI_RUN/CLI_HELP/CLI_VERSION (>= 0),
 * or -EINVAL with a one-line message naming the option and the value in @err. The strings in
 * @r point into argv. */
int cli_parse_run(int argc, char **argv, struct cli_run *r, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Word @e, an error from vm_create() or vm_config_check() on @r's configuration, as the
 * command line's: "--disk: disk0: open /x.img: No such file or directory". */
void cli_word_error(const struct cli_run *r, const struct error *e, char *out, size_t len);

/* Create the VM @r describes and run it to the end; errors are printed prefixed by @who.
 * With @r->reboot_reset, a guest reset (VM_STOP_RESET) destroys the VM and creates it again
 * from the same configuration, as often as the guest resets: the firmware or kernel starts
 * over on fresh RAM and devices, the disk images keep what the guest wrote. Returns the
 * process exit status (enum kiln_exit). */
int cli_run_vm(const struct cli_run *r, const char *who);

/* Run @vm (made on a loop the caller owns) until it stops, then destroy it; why it stopped in
 * *@why unless NULL. Returns the process exit status (enum kiln_exit). */
int cli_vm_run_to_end(struct vm *vm, enum vm_stop_reason *why);

/* Usage text for `kiln run --help`, exit codes included. */
extern const char cli_run_usage[];

/* The Firecracker-compatible front end: Firecracker's process flags (`kiln --api-sock PATH`,
 * `kiln --no-api --config-file PATH`, --id, --boot-timer, --level, --log-path): its REST API
 * or its JSON configuration file (src/fc). Flags kiln does not implement yet are refused by
 * name. With @restore, `kiln restore`: the VM of a snapshot (--snapshot, --mem-file or --uffd)
 * instead of a configuration, the API only with --api-sock. Runs the VM and returns the
 * process exit status. */
int cli_firecracker(int argc, char **argv, bool restore);

/* `kiln rebase-snap --base-file BASE --diff-file DIFF`: copy the data extents of a Diff
 * snapshot's memory file onto its base (src/cli/rebase.c). Returns the exit status. */
int cli_rebase_snap(int argc, char **argv);

#endif
