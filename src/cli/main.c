/* SPDX-License-Identifier: Apache-2.0 */
/* main — kiln's entry point: `kiln run ...`, or Firecracker's process flags (`kiln --no-api
 * --config-file PATH ...`). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kiln/cli.h"
#include "kiln/log.h"
#include "kiln/vm.h"

static const char top_usage[] =
	"usage: kiln run --kernel PATH [options]            (kiln run --help)\n"
	"       kiln --no-api --config-file PATH [options]  Firecracker's flags (kiln --no-api --help)\n"
	"       kiln restore --snapshot PATH --mem-file PATH  a snapshot's VM (kiln restore --help)\n"
	"       kiln rebase-snap --base-file BASE --diff-file DIFF  merge a Diff snapshot's memory\n";

static int cmd_run(int argc, char **argv)
{
	struct timespec start, start_cpu;
	struct cli_run r;
	char err[ERROR_MSG_MAX + 64];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &start);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start_cpu);
	ret = cli_parse_run(argc, argv, &r, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "kiln run: %s\n", err);
		return KILN_EXIT_USAGE;
	}
	if (ret == CLI_HELP) {
		fputs(cli_run_usage, stdout);
		return 0;
	}
	if (ret == CLI_VERSION) {
		puts("kiln " KILN_VERSION);
		return 0;
	}
	log_set_level(r.level);
	r.vm.start = start;
	r.vm.start_cpu = start_cpu;
	return cli_run_vm(&r, "kiln run");
}

/* Sockets (vsock and API clients, taps, images) are descriptors: allow as many as the hard
 * limit lets, as servers do; the soft limit is often 1024. */
static void raise_fd_limit(void)
{
	struct rlimit r;

	if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

int main(int argc, char **argv)
{
	/* A peer that went away (a console pipe, a vsock or API client, a log FIFO) is an EPIPE
	 * for the writer to handle, never the end of kiln. */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(top_usage, stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "rebase-snap"))
		return cli_rebase_snap(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "restore"))
		return cli_firecracker(argc - 1, argv + 1, true);
	if (argc >= 2 && !strncmp(argv[1], "--", 2))
		return cli_firecracker(argc, argv, false);
	fprintf(stderr, "kiln: %s%s", argc >= 2 ? "unknown command; " : "", top_usage);
	return KILN_EXIT_USAGE;
}
