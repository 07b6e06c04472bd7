/* args — `kiln run` option parsing, see include/kiln/cli.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/cli.h"

const char cli_run_usage[] =
	"usage: kiln run --kernel PATH [--initrd PATH] [--cmdline STRING] [--cpus N] [--memory SIZE]\n"
	"\n"
	"Boot a Linux kernel (bzImage, or ELF vmlinux with a PVH note) with the serial console on\n"
	"standard input/output. On a terminal the console is raw; press Ctrl-A then x to quit.\n"
	"\n"
	"  --kernel PATH     kernel image (required)\n"
	"  --initrd PATH     initial ramdisk\n"
	"  --cmdline STRING  kernel command line (default \"" VM_DEFAULT_CMDLINE "\")\n"
	"  --cpus N          number of vCPUs (default 1)\n"
	"  --memory SIZE     guest RAM: 512M, 2G or a plain number of MiB (default 512M)\n"
	"  --log-level L     error, warn (default), info (adds the boot-timer line) or debug\n"
	"  -h, --help        this text;  --version  kiln's version\n"
	"\n"
	"Exit status:\n"
	"  0    the guest powered off\n"
	"  1    runtime error (I/O, KVM or host failure)\n"
	"  2    bad usage or input file\n"
	"  3    the guest rebooted or reset\n"
	"  4    the guest kernel panicked (pvpanic)\n"
	"  5    guest triple fault, or KVM could not run the guest\n"
	"  128+N  kiln was stopped by signal N (130 SIGINT, 143 SIGTERM)\n";

/* Parse a decimal count in [1, UINT32_MAX]; returns 0 or -EINVAL. */
static int parse_count(const char *text, unsigned *out)
{
	unsigned long long v;
	char *end;

	if (!text || text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_level(const char *text, enum log_level *level)
{
	static const char *const names[] = { [LOG_ERROR] = "error", [LOG_WARN] = "warn",
					      [LOG_INFO] = "info", [LOG_DEBUG] = "debug" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(text, names[i])) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int cli_parse_run(int argc, char **argv, struct vm_config *cfg, enum log_level *level, char *err,
		  size_t errlen)
{
	enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_VERSION,
	       OPT_LOG_LEVEL };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*cfg = (struct vm_config){ .cmdline = VM_DEFAULT_CMDLINE, .nr_cpus = VM_DEFAULT_CPUS,
				   .mem_bytes = (uint64_t)VM_DEFAULT_MEM_MIB << 20 };
	*level = LOG_WARN;
	optind = 0; /* 0, not 1: glibc then also resets its permutation state */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel_path = optarg; break;
		case OPT_INITRD: cfg->initrd_path = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_CPUS:
			if (parse_count(optarg, &cfg->nr_cpus)) {
				snprintf(err, errlen, "--cpus: \"%s\" is not a CPU count of 1 or more",
					 optarg);
				return -EINVAL;
			}
			break;
		case OPT_MEMORY:
			if (cli_parse_size(optarg, &cfg->mem_bytes) || cfg->mem_bytes % 4096) {
				snprintf(err, errlen,
					 "--memory: \"%s\" is not a size (use 512M, 2G or a number of MiB)",
					 optarg);
				return -EINVAL;
			}
			break;
		case OPT_LOG_LEVEL:
			if (parse_level(optarg, level)) {
				snprintf(err, errlen,
					 "--log-level: \"%s\" is not one of error, warn, info, debug", optarg);
				return -EINVAL;
			}
			break;
		case 'h': return CLI_HELP;
		case OPT_VERSION: return CLI_VERSION;
		case ':':
			snprintf(err, errlen, "%s: missing value", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, errlen, "unknown option \"%s\"", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel_path) {
		snprintf(err, errlen, "--kernel is required");
		return -EINVAL;
	}
	return CLI_RUN;
}
