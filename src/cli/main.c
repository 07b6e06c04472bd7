/* main — kiln's entry point: `kiln run ...`; maps the guest's fate to the exit status. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kiln/cli.h"
#include "kiln/log.h"
#include "kiln/vm.h"

static const char top_usage[] = "usage: kiln run --kernel PATH [options]   (kiln run --help)\n";

static int exit_code(enum vm_stop_reason reason, int signo)
{
	switch (reason) {
	case VM_STOP_POWEROFF: return KILN_EXIT_POWEROFF;
	case VM_STOP_RESET: return KILN_EXIT_RESET;
	case VM_STOP_PANIC: return KILN_EXIT_PANIC;
	case VM_STOP_TRIPLE_FAULT:
	case VM_STOP_INTERNAL_ERROR: return KILN_EXIT_CRASH;
	case VM_STOP_SIGNAL: return KILN_EXIT_SIGNAL_BASE + signo;
	case VM_STOP_NONE: break;
	}
	return KILN_EXIT_RUNTIME;
}

static int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	enum log_level level;
	enum vm_error_kind kind;
	enum vm_stop_reason reason;
	struct vm *vm;
	char err[512];
	int ret;

	ret = cli_parse_run(argc, argv, &cfg, &level, err, sizeof(err));
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
	log_set_level(level);
	if (vm_create(&cfg, &vm, &kind, err, sizeof(err))) {
		fprintf(stderr, "kiln run: %s\n", err);
		return (int)kind;
	}
	reason = vm_run(vm);
	ret = exit_code(reason, vm_stop_signal(vm));
	vm_destroy(vm);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(top_usage, stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		puts("kiln " KILN_VERSION);
		return 0;
	}
	fprintf(stderr, "kiln: %s%s", argc >= 2 ? "unknown command; " : "", top_usage);
	return KILN_EXIT_USAGE;
}
