/* SPDX-License-Identifier: Apache-2.0 */
/* args — `kiln run` option parsing, see include/kiln/cli.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kiln/cli.h"

#define CLI_DEFAULT_BIOS "/usr/share/seabios/bios-256k.bin" /* Debian's seabios package */
#define CLI_DEFAULT_UEFI_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd" /* Debian's ovmf package */
#define CLI_DEFAULT_UEFI_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

const char cli_run_usage[] =
	"usage: kiln run --kernel PATH|--firmware bios[=PATH]|uefi[=CODE][,vars=FILE]\n"
	"                [--initrd PATH] [--cmdline STRING]\n"
	"                [--cpus N] [--memory SIZE] [--smt] [--cpu-template NAME|FILE] [--huge-pages 2M]\n"
	"                [--disk PATH[,readonly=on][,format=F][,id=NAME][,engine=E][,cache=C][,LIMIT]...]...\n"
	"                [--rng[=LIMIT,...]] [--transport pci|mmio]\n"
	"                [--net tap=NAME|user[,mac=MAC][,hostfwd=RULE]...[,restrict=on]...]...\n"
	"                [--vsock cid=N,uds=PATH]\n"
	"                [--balloon amount=SIZE[,deflate_on_oom=on][,reporting=on][,stats=S]]\n"
	"                [--console socket=PATH|file=PATH]\n"
	"                [--debug-exit [iobase=PORT,iosize=N]] [--fw-cfg] [--reboot exit|reset]\n"
	"\n"
	"Boot a Linux kernel (bzImage, or ELF vmlinux with a PVH note) or a Multiboot kernel, or a\n"
	"BIOS or UEFI firmware (--firmware), with the serial console on standard input/output. On a terminal the\n"
	"console is raw; press Ctrl-A then x to quit.\n"
	"\n"
	"  --kernel PATH     kernel image (required without --firmware)\n"
	"  --firmware bios[=PATH]\n"
	"                    start a BIOS instead of a kernel, on QEMU's PC (i440FX, fw_cfg): PATH\n"
	"                    default " CLI_DEFAULT_BIOS " (SeaBIOS),\n"
	"                    which boots from the first --disk\n"
	"  --firmware uefi[=CODE][,vars=FILE]\n"
	"                    start UEFI firmware (OVMF) from the first --disk: CODE default\n"
	"                    " CLI_DEFAULT_UEFI_CODE ", read-only; FILE its variable\n"
	"                    store (a copy of OVMF_VARS_4M.fd per VM), where the guest's UEFI\n"
	"                    variables are written; without vars= a private copy of\n"
	"                    " CLI_DEFAULT_UEFI_VARS " whose changes are lost\n"
	"  --initrd PATH     initial ramdisk; for a Multiboot kernel its modules, as QEMU's:\n"
	"                    \"PATH [ARGS],PATH [ARGS]\" (\",,\" is a comma in a module's string)\n"
	"  --cmdline STRING  kernel command line (default \"" VM_DEFAULT_CMDLINE "\")\n"
	"  --cpus N          number of vCPUs (default 1)\n"
	"  --memory SIZE     guest RAM: 512M, 2G or a plain number of MiB (default 512M)\n"
	"  --smt             two threads per core in the guest's CPU topology (--cpus 1 or even)\n"
	"  --cpu-template NAME|FILE\n"
	"                    Firecracker's static CPU templates T2, T2S, T2CL, T2A (Intel or AMD as\n"
	"                    each says) or C3, refused on a host CPU they do not fit; or FILE (a\n"
	"                    path with a /): a custom template in Firecracker's JSON format\n"
	"  --huge-pages 2M   guest RAM on 2 MiB hugetlbfs pages from the host's pool\n"
	"                    (/proc/sys/vm/nr_hugepages); --memory a multiple of 2M, no --balloon\n"
	"  --disk PATH[,readonly=on][,format=raw|qcow2][,id=NAME][,engine=io_uring|sync]\n"
	"                    a raw or qcow2 disk image as virtio-blk (/dev/vda, vdb, ... in order;\n"
	"                    qcow2 found by its magic unless format= says; it runs on sync); id is\n"
	"                    the serial the guest sees (at most 20 characters); I/O through\n"
	"                    io_uring (default) or synchronous calls on a worker thread;\n"
	"                    cache=unsafe: the guest's flushes do nothing (default writeback)\n"
	"                    LIMIT: rate limits, Firecracker's token buckets: bw=SIZE/TIME (bytes\n"
	"                    read and written: SIZE per TIME, e.g. 10M/1s or 64K/100ms), ops=N/TIME\n"
	"                    (requests), bw-burst=SIZE and ops-burst=N (a one-time extra at start)\n"
	"  --net tap=NAME[,mac=MAC]\n"
	"                    a virtio-net NIC on an existing tap interface (ip tuntap add NAME\n"
	"                    mode tap), checksum and TSO offloads passed through\n"
	"  --net user[,mac=MAC][,hostfwd=tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT]...\n"
	"                    a NIC on user-mode networking (libslirp, no root needed): DHCP gives\n"
	"                    10.0.2.15, 10.0.2.2 is the host's loopback, 10.0.2.3 its DNS; hostfwd\n"
	"                    forwards a host port (on 127.0.0.1 unless HOSTADDR) to the guest\n"
	"                    (10.0.2.15 unless GUESTADDR). MAC default 52:54:00:12:34:56 + index.\n"
	"                    restrict=on: the guest reaches neither the host nor the outside (hostfwd\n"
	"                    still connects in); host-loopback=off: 10.0.2.2 does not reach the\n"
	"                    host's loopback services; max-flows=N: at most N of the guest's\n"
	"                    connections and datagram flows at once (default 512)\n"
	"                    rx-LIMIT, tx-LIMIT: rate limits on frames to and from the guest, as\n"
	"                    for --disk (rx-bw=100M/1s,tx-ops=1000/1s)\n"
	"  --rng[=LIMIT,...] a virtio-rng entropy device fed from the host's getrandom(); LIMIT as\n"
	"                    for --disk (--rng=bw=4K/1s)\n"
	"  --vsock cid=N,uds=PATH\n"
	"                    a virtio-vsock device, guest CID N (>= 3), with Firecracker's host\n"
	"                    side: host programs connect to the Unix socket PATH and write\n"
	"                    \"CONNECT <port>\\n\"; guest connections to host port P go to PATH_P\n"
	"  --balloon amount=SIZE[,deflate_on_oom=on][,reporting=on][,stats=SECONDS]\n"
	"                    a virtio-balloon asking the guest to give back SIZE of its RAM (the\n"
	"                    host gets the pages back); statistics every SECONDS; deflate_on_oom\n"
	"                    lets the guest take pages back when it runs out of memory; with\n"
	"                    reporting the guest also hands back the pages it frees\n"
	"  --console socket=PATH|file=PATH\n"
	"                    a virtio-console (hvc0 in Linux): on a Unix socket kiln listens on\n"
	"                    (one client at a time), or appending the guest's output to a file\n"
	"  --debug-exit [iobase=PORT,iosize=N]\n"
	"                    QEMU's isa-debug-exit (default port 0xf4, 1 byte): a guest write of V\n"
	"                    ends the VM and kiln exits with status (V << 1) | 1\n"
	"  --fw-cfg          QEMU's fw_cfg device (ports 0x510, 0x511, 0x514): CPU count, RAM size,\n"
	"                    etc/e820; a Multiboot kernel always gets it\n"
	"  --reboot exit|reset\n"
	"                    what a guest reboot does: reset starts the machine again (firmware or\n"
	"                    kernel from the start, disks as the guest left them), exit ends kiln\n"
	"                    with status 3 (default: reset with --firmware, exit otherwise)\n"
	"  --transport T     how virtio devices attach: pci (default; MSI-X) or mmio (ACPI LNRO0005)\n"
	"  --log-level L     error, warn (default), info (adds the boot-timer line) or debug\n"
	"  --seccomp-filter FILE\n"
	"                    seccomp filters per thread category in Firecracker's seccompiler\n"
	"                    JSON format instead of kiln's own (README: Security)\n"
	"  --no-seccomp      no seccomp filters (every thread is filtered by default)\n"
	"  -h, --help        this text;  --version  kiln's version\n"
	"\n"
	"Exit status:\n"
	"  0    the guest powered off\n"
	"  1    runtime error (I/O, KVM or host failure)\n"
	"  2    bad usage or input file\n"
	"  3    the guest rebooted or reset (with --reboot exit)\n"
	"  4    the guest kernel panicked (pvpanic)\n"
	"  5    guest triple fault, or KVM could not run the guest\n"
	"  (V << 1) | 1  the guest wrote V to --debug-exit's port (low 8 bits)\n"
	"  128+N  kiln was stopped by signal N (130 SIGINT, 143 SIGTERM)\n"
	"  148  a thread made a system call its seccomp filter forbids\n"
	"\n"
	"SIGTSTP pauses the guest (its vCPUs leave KVM_RUN; kiln keeps serving its devices) and\n"
	"SIGCONT resumes it.\n";

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

/* A token count with an optional binary suffix (K, M, G: 2^10, 2^20, 2^30) when @suffix; a
 * plain number is a count of bytes or operations. Returns 0 or -EINVAL. */
static int parse_tokens(const char *text, bool suffix, const char **end, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *e;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &e, 10);
	if (errno)
		return -EINVAL;
	switch (suffix ? *e : 0) {
	case 'K': case 'k': shift = 10; e++; break;
	case 'M': case 'm': shift = 20; e++; break;
	case 'G': case 'g': shift = 30; e++; break;
	}
	if (v > UINT64_MAX >> shift)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	*end = e;
	return 0;
}

/* One rate-limit option named @prefix + "bw", "bw-burst", "ops" or "ops-burst" into @l:
 * bw=SIZE/TIME and ops=N/TIME (SIZE tokens per TIME, a number of ms or s: "10M/1s",
 * "200/100ms"), bursts a SIZE or N. Returns 1 when @opt was one of them, 0 when it was not,
 * -EINVAL for a bad value (@err says which). */
static int parse_limit(const char *opt, const char *prefix, struct rate_limit *l, const char *what,
		       char *err, size_t errlen)
{
	size_t n = strlen(prefix);
	struct token_bucket_config *b;
	const char *v, *end;
	bool burst;
	uint64_t t;

	if (strncmp(opt, prefix, n))
		return 0;
	opt += n;
	if (!strncmp(opt, "bw", 2))
		b = &l->bandwidth, v = opt + 2;
	else if (!strncmp(opt, "ops", 3))
		b = &l->ops, v = opt + 3;
	else
		return 0;
	burst = !strncmp(v, "-burst=", 7);
	if (!burst && *v != '=')
		return 0;
	v += burst ? 7 : 1;
	if (parse_tokens(v, true, &end, burst ? &b->one_time_burst : &b->size) || (burst && *end))
		goto bad;
	if (burst)
		return 1;
	if (*end != '/' || parse_tokens(end + 1, false, &end, &t) || !t)
		goto bad;
	if (!strcmp(end, "ms"))
		b->refill_ms = t;
	else if (!strcmp(end, "s") && t <= UINT64_MAX / 1000)
		b->refill_ms = t * 1000;
	else
		goto bad;
	if (!b->size)
		goto bad;
	return 1;
bad:
	snprintf(err, errlen, "%s: \"%s%s\" is not %s%s=%s", what, prefix, opt, prefix,
		 b == &l->bandwidth ? (burst ? "bw-burst" : "bw") : (burst ? "ops-burst" : "ops"),
		 burst ? "COUNT (K, M, G suffixes)" : "COUNT/TIME like 10M/1s or 100/100ms");
	return -EINVAL;
}

/* "PATH[,readonly=on|off][,format=F][,id=NAME]..." into @d (pointing into @text, which is
 * modified). */
static int parse_disk(char *text, struct disk_config *d, char *err, size_t errlen)
{
	char *opt, *save = NULL;

	*d = (struct disk_config){ .path = strtok_r(text, ",", &save) };
	if (!d->path || !*d->path) {
		snprintf(err, errlen, "--disk: missing PATH");
		return -EINVAL;
	}
	while ((opt = strtok_r(NULL, ",", &save))) {
		int lim = parse_limit(opt, "", &d->limit, "--disk", err, errlen);

		if (lim < 0)
			return -EINVAL;
		if (lim)
			continue;
		if (!strcmp(opt, "readonly=on") || !strcmp(opt, "readonly=off")) {
			d->readonly = !strcmp(opt, "readonly=on");
		} else if (!strcmp(opt, "format=raw") || !strcmp(opt, "format=qcow2")) {
			d->format = !strcmp(opt, "format=raw") ? DISK_FORMAT_RAW : DISK_FORMAT_QCOW2;
		} else if (!strcmp(opt, "cache=unsafe") || !strcmp(opt, "cache=writeback")) {
			d->cache_unsafe = !strcmp(opt, "cache=unsafe");
		} else if (!strcmp(opt, "engine=io_uring") || !strcmp(opt, "engine=sync")) {
			d->engine = !strcmp(opt, "engine=sync") ? BLOCK_ENGINE_SYNC : BLOCK_ENGINE_IO_URING;
		} else if (!strncmp(opt, "id=", 3) && strlen(opt + 3) >= 1 && strlen(opt + 3) <= 20 &&
			   strspn(opt + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") == strlen(opt + 3)) {
			d->id = opt + 3;
		} else {
			snprintf(err, errlen, "--disk %s: \"%s\" is not readonly=on|off, "
				 "format=raw|qcow2, engine=io_uring|sync, cache=writeback|unsafe, id=NAME (1-20 of "
				 "A-Z a-z 0-9 _ - .), bw=, "
				 "bw-burst=, ops= or ops-burst=", d->path, opt);
			return -EINVAL;
		}
	}
	return 0;
}

/* "tap=NAME[,mac=MAC]" or "user[,mac=MAC][,hostfwd=RULE]..." into @n (pointing into @text,
 * which is modified). */
static int parse_net(char *text, struct net_config *n, char *err, size_t errlen)
{
	char *opt, *save = NULL, *kind = strtok_r(text, ",", &save);

	*n = (struct net_config){ .kind = NET_USER };
	if (kind && !strncmp(kind, "tap=", 4) && kind[4]) {
		n->kind = NET_TAP;
		n->tap = kind + 4;
	} else if (!kind || strcmp(kind, "user")) {
		snprintf(err, errlen, "--net: \"%s\" is not tap=NAME or user", kind ? kind : "");
		return -EINVAL;
	}
	while ((opt = strtok_r(NULL, ",", &save))) {
		int lim = parse_limit(opt, "rx-", &n->rx_limit, "--net", err, errlen);

		if (!lim)
			lim = parse_limit(opt, "tx-", &n->tx_limit, "--net", err, errlen);
		if (lim < 0)
			return -EINVAL;
		if (lim)
			continue;
		if (!strncmp(opt, "mac=", 4)) {
			if (net_parse_mac(opt + 4, n->mac)) {
				snprintf(err, errlen, "--net %s: \"%s\" is not a unicast MAC address "
					 "like 52:54:00:12:34:56", kind, opt + 4);
				return -EINVAL;
			}
			n->mac_set = true;
		} else if (!strncmp(opt, "hostfwd=", 8) && n->kind == NET_USER) {
			if (n->nr_hostfwd == NET_MAX_HOSTFWD) {
				snprintf(err, errlen, "--net user: more than %d hostfwd rules", NET_MAX_HOSTFWD);
				return -EINVAL;
			}
			if (net_parse_hostfwd(opt + 8, &n->hostfwd[n->nr_hostfwd])) {
				snprintf(err, errlen, "--net user: \"%s\" is not hostfwd=tcp|udp:"
					 "[HOSTADDR]:PORT-[GUESTADDR]:PORT", opt);
				return -EINVAL;
			}
			n->nr_hostfwd++;
		} else if (n->kind == NET_USER && (!strcmp(opt, "restrict=on") ||
						   !strcmp(opt, "restrict=off"))) {
			n->restrict_guest = !strcmp(opt, "restrict=on");
		} else if (n->kind == NET_USER && (!strcmp(opt, "host-loopback=on") ||
						   !strcmp(opt, "host-loopback=off"))) {
			n->no_host_loopback = !strcmp(opt, "host-loopback=off");
		} else if (n->kind == NET_USER && !strncmp(opt, "max-flows=", 10)) {
			if (parse_count(opt + 10, &n->max_flows) || n->max_flows > 65536) {
				snprintf(err, errlen, "--net user: \"%s\" is not max-flows=1..65536", opt);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen, "--net %s: \"%s\" is not %s, or rx-/tx- bw=, bw-burst=, "
				 "ops=, ops-burst=", kind, opt,
				 n->kind == NET_TAP ? "mac=MAC" : "mac=MAC, hostfwd=RULE, restrict=on|off, "
				 "host-loopback=on|off, max-flows=N");
			return -EINVAL;
		}
	}
	return 0;
}

/* "amount=SIZE[,deflate_on_oom=on][,reporting=on][,stats=SECONDS]" into @b. */
static int parse_balloon(char *text, struct balloon_config *b, char *err, size_t errlen)
{
	char *opt, *save = NULL, *end;
	bool amount = false;

	*b = (struct balloon_config){ 0 };
	for (opt = strtok_r(text, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		if (!strncmp(opt, "amount=", 7)) {
			if (!strcmp(opt + 7, "0")) {
				b->target_bytes = 0;
			} else if (cli_parse_size(opt + 7, &b->target_bytes)) {
				snprintf(err, errlen, "--balloon: \"%s\" is not a SIZE like 256M", opt + 7);
				return -EINVAL;
			}
			amount = true;
		} else if (!strcmp(opt, "deflate_on_oom=on") || !strcmp(opt, "deflate_on_oom=off")) {
			b->deflate_on_oom = !strcmp(opt + 15, "on");
		} else if (!strcmp(opt, "reporting=on") || !strcmp(opt, "reporting=off")) {
			b->free_page_reporting = !strcmp(opt + 10, "on");
		} else if (!strncmp(opt, "stats=", 6)) {
			errno = 0;
			unsigned long s = strtoul(opt + 6, &end, 10);

			if (errno || end == opt + 6 || *end || opt[6] == '-' || s > 86400) {
				snprintf(err, errlen, "--balloon: \"%s\" is not a statistics interval "
					 "(0 to 86400 seconds)", opt + 6);
				return -EINVAL;
			}
			b->stats_interval_s = (unsigned)s;
		} else {
			snprintf(err, errlen, "--balloon: \"%s\" is not amount=SIZE, deflate_on_oom=on|off, "
				 "reporting=on|off or stats=SECONDS", opt);
			return -EINVAL;
		}
	}
	if (!amount) {
		snprintf(err, errlen, "--balloon needs amount=SIZE");
		return -EINVAL;
	}
	return 0;
}

/* "[bw=...][,ops=...]" (or nothing) into @c. */
static int parse_rng(char *text, struct rng_config *c, char *err, size_t errlen)
{
	char *opt, *save = NULL;

	*c = (struct rng_config){ 0 };
	for (opt = text ? strtok_r(text, ",", &save) : NULL; opt; opt = strtok_r(NULL, ",", &save)) {
		int lim = parse_limit(opt, "", &c->limit, "--rng", err, errlen);

		if (lim < 0)
			return -EINVAL;
		if (!lim) {
			snprintf(err, errlen, "--rng: \"%s\" is not bw=, bw-burst=, ops= or ops-burst=",
				 opt);
			return -EINVAL;
		}
	}
	return 0;
}

/* "cid=N,uds=PATH" into @v (pointing into @text, which is modified). */
static int parse_vsock(char *text, struct vsock_config *v, char *err, size_t errlen)
{
	char *opt, *save = NULL, *end;

	for (opt = strtok_r(text, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		if (!strncmp(opt, "cid=", 4)) {
			errno = 0;
			v->guest_cid = strtoull(opt + 4, &end, 10);
			if (errno || end == opt + 4 || *end || opt[4] == '-' || v->guest_cid < 3 ||
			    v->guest_cid > UINT32_MAX - 1) {
				snprintf(err, errlen, "--vsock: \"%s\" is not a guest CID (3 to %u)",
					 opt + 4, UINT32_MAX - 1);
				return -EINVAL;
			}
		} else if (!strncmp(opt, "uds=", 4) && opt[4]) {
			v->uds_path = opt + 4;
		} else {
			snprintf(err, errlen, "--vsock: \"%s\" is not cid=N or uds=PATH", opt);
			return -EINVAL;
		}
	}
	if (!v->guest_cid || !v->uds_path) {
		snprintf(err, errlen, "--vsock needs cid=N and uds=PATH");
		return -EINVAL;
	}
	return 0;
}

/* --debug-exit's value: "iobase=PORT,iosize=N", either or both (QEMU's property names). */
static int parse_debug_exit(char *text, struct debug_exit_config *c, char *err, size_t errlen)
{
	char *opt, *save = NULL, *end;
	unsigned long v;

	*c = (struct debug_exit_config){ .iobase = KILN_PORT_DEBUG_EXIT, .iosize = 1 };
	for (opt = text ? strtok_r(text, ",", &save) : NULL; opt; opt = strtok_r(NULL, ",", &save)) {
		bool base = !strncmp(opt, "iobase=", 7), size = !strncmp(opt, "iosize=", 7);

		errno = 0;
		v = base || size ? strtoul(opt + 7, &end, 0) : 0;
		if ((!base && !size) || errno || end == opt + 7 || *end ||
		    (base && v > 0xffff) || (size && v != 1 && v != 2 && v != 4)) {
			snprintf(err, errlen, "--debug-exit: \"%s\" is not iobase=PORT (0..0xffff) or "
				 "iosize=1|2|4", opt);
			return -EINVAL;
		}
		if (base)
			c->iobase = (uint16_t)v;
		else
			c->iosize = (unsigned)v;
	}
	if ((unsigned)c->iobase + c->iosize > 0x10000) {
		snprintf(err, errlen, "--debug-exit: iobase 0x%x + iosize %u passes port 0xffff",
			 c->iobase, c->iosize);
		return -EINVAL;
	}
	return 0;
}

/* Add device @config of @cls to @r's VM as option @option's. */
static int add_device(struct cli_run *r, const char *option, const struct device_class *cls,
		      const void *config, char *err, size_t errlen)
{
	struct error e;

	if (vm_config_add(&r->vm, cls, config, &e)) {
		snprintf(err, errlen, "%s: %s", option, e.msg);
		return -EINVAL;
	}
	r->option[r->vm.nr_devices - 1] = option;
	return 0;
}

void cli_word_error(const struct cli_run *r, const struct error *e, char *out, size_t len)
{
	static const char *const settings[] = {
		[VM_INPUT_CPUS] = "--cpus", [VM_INPUT_MEMORY] = "--memory",
		[VM_INPUT_KERNEL] = "--kernel", [VM_INPUT_INITRD] = "--initrd",
		[VM_INPUT_CMDLINE] = "--cmdline", [VM_INPUT_FIRMWARE] = "--firmware",
	};
	const char *option = NULL;

	if (e->input >= VM_INPUT_DEVICE && e->input - VM_INPUT_DEVICE < (int)r->vm.nr_devices)
		option = r->option[e->input - VM_INPUT_DEVICE];
	else if (e->input > VM_INPUT_NONE && e->input <= VM_INPUT_FIRMWARE)
		option = settings[e->input];
	if (option)
		snprintf(out, len, "%s: %s", option, e->msg);
	else
		snprintf(out, len, "%s", e->msg);
}

/* --firmware: bios[=PATH] or uefi[=CODE][,vars=FILE] into @cfg (strings point into @arg, whose
 * ",vars=" is cut off). Returns 0 or -EINVAL with @err set. */
static int parse_firmware(char *arg, struct vm_config *cfg, char *err, size_t errlen)
{
	bool uefi = !strncmp(arg, "uefi", 4), bios = !strncmp(arg, "bios", 4);
	char *vars = strstr(arg, ",vars="), *path = NULL;

	if (vars) {
		*vars = 0;
		vars += 6;
	}
	if ((!uefi && !bios) || (arg[4] && arg[4] != '=')) {
		snprintf(err, errlen, "--firmware: \"%s\" is not bios[=PATH] or uefi[=CODE][,vars=FILE]",
			 arg);
		return -EINVAL;
	}
	if (arg[4] == '=' && !*(path = arg + 5)) {
		snprintf(err, errlen, "--firmware: %s= names no file", bios ? "bios" : "uefi");
		return -EINVAL;
	}
	if (vars && bios) {
		snprintf(err, errlen, "--firmware: vars=%s: only uefi has a variable store", vars);
		return -EINVAL;
	}
	if (vars && !*vars) {
		snprintf(err, errlen, "--firmware: vars= names no file");
		return -EINVAL;
	}
	cfg->firmware_path = path ?: bios ? CLI_DEFAULT_BIOS : CLI_DEFAULT_UEFI_CODE;
	cfg->firmware_vars_path = bios ? NULL : vars ?: CLI_DEFAULT_UEFI_VARS;
	cfg->firmware_vars_private = uefi && !vars;
	return 0;
}

int cli_parse_run(int argc, char **argv, struct cli_run *r, char *err, size_t errlen)
{
	enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_VERSION,
	       OPT_LOG_LEVEL, OPT_DISK, OPT_NET, OPT_RNG, OPT_TRANSPORT, OPT_VSOCK, OPT_BALLOON,
	       OPT_CONSOLE, OPT_NO_SECCOMP, OPT_SECCOMP_FILTER, OPT_SMT, OPT_CPU_TEMPLATE,
	       OPT_HUGE_PAGES, OPT_DEBUG_EXIT, OPT_FW_CFG, OPT_FIRMWARE, OPT_REBOOT };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "firmware", required_argument, NULL, OPT_FIRMWARE },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "smt", no_argument, NULL, OPT_SMT },
		{ "cpu-template", required_argument, NULL, OPT_CPU_TEMPLATE },
		{ "huge-pages", required_argument, NULL, OPT_HUGE_PAGES },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "net", required_argument, NULL, OPT_NET },
		{ "rng", optional_argument, NULL, OPT_RNG },
		{ "vsock", required_argument, NULL, OPT_VSOCK },
		{ "balloon", required_argument, NULL, OPT_BALLOON },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "transport", required_argument, NULL, OPT_TRANSPORT },
		{ "debug-exit", optional_argument, NULL, OPT_DEBUG_EXIT },
		{ "fw-cfg", no_argument, NULL, OPT_FW_CFG },
		{ "reboot", required_argument, NULL, OPT_REBOOT },
		{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
		{ "seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_config *cfg = &r->vm;
	bool have_vsock = false, have_balloon = false, have_console = false, have_rng = false;
	bool have_debug_exit = false, have_fw_cfg = false, have_reboot = false;
	char *arg;
	struct error e;
	int c;

	memset(r, 0, sizeof(*r));
	*cfg = (struct vm_config){ .cmdline = VM_DEFAULT_CMDLINE, .nr_cpus = VM_DEFAULT_CPUS,
				   .mem_bytes = (uint64_t)VM_DEFAULT_MEM_MIB << 20 };
	r->level = LOG_WARN;
	optind = 0; /* 0, not 1: glibc then also resets its permutation state */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel_path = optarg; break;
		case OPT_INITRD: cfg->initrd_path = optarg; break;
		case OPT_FIRMWARE:
			if (parse_firmware(optarg, cfg, err, errlen))
				return -EINVAL;
			break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_REBOOT:
			if (strcmp(optarg, "exit") && strcmp(optarg, "reset")) {
				snprintf(err, errlen, "--reboot: \"%s\" is not exit or reset", optarg);
				return -EINVAL;
			}
			r->reboot_reset = !strcmp(optarg, "reset");
			have_reboot = true;
			break;
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
			if (parse_level(optarg, &r->level)) {
				snprintf(err, errlen,
					 "--log-level: \"%s\" is not one of error, warn, info, debug", optarg);
				return -EINVAL;
			}
			break;
		case OPT_DISK:
			if (r->vm.nr_devices == VM_MAX_DEVICES) {
				snprintf(err, errlen, "--disk %s: more than %d devices", optarg,
					 VM_MAX_DEVICES);
				return -EINVAL;
			}
			if (parse_disk(optarg, &r->disk[r->nr_disks], err, errlen) ||
			    add_device(r, "--disk", &virtio_blk_class, &r->disk[r->nr_disks], err, errlen))
				return -EINVAL;
			r->nr_disks++;
			break;
		case OPT_NET:
			if (r->vm.nr_devices == VM_MAX_DEVICES) {
				snprintf(err, errlen, "--net %s: more than %d devices", optarg,
					 VM_MAX_DEVICES);
				return -EINVAL;
			}
			if (parse_net(optarg, &r->net[r->nr_nets], err, errlen) ||
			    add_device(r, "--net", &virtio_net_class, &r->net[r->nr_nets], err, errlen))
				return -EINVAL;
			r->nr_nets++;
			break;
		case OPT_RNG:
			if (have_rng) {
				snprintf(err, errlen, "--rng: only one entropy device");
				return -EINVAL;
			}
			if (parse_rng(optarg, &r->rng, err, errlen) ||
			    add_device(r, "--rng", &virtio_rng_class, &r->rng, err, errlen))
				return -EINVAL;
			have_rng = true;
			break;
		case OPT_VSOCK:
			if (have_vsock) {
				snprintf(err, errlen, "--vsock: only one vsock device");
				return -EINVAL;
			}
			if (parse_vsock(optarg, &r->vsock, err, errlen) ||
			    add_device(r, "--vsock", &virtio_vsock_class, &r->vsock, err, errlen))
				return -EINVAL;
			have_vsock = true;
			break;
		case OPT_BALLOON:
			if (have_balloon) {
				snprintf(err, errlen, "--balloon: only one balloon");
				return -EINVAL;
			}
			if (parse_balloon(optarg, &r->balloon, err, errlen) ||
			    add_device(r, "--balloon", &virtio_balloon_class, &r->balloon, err, errlen))
				return -EINVAL;
			have_balloon = true;
			break;
		case OPT_CONSOLE:
			if (have_console) {
				snprintf(err, errlen, "--console: only one virtio console");
				return -EINVAL;
			}
			if (!strncmp(optarg, "socket=", 7) && optarg[7]) {
				r->console = (struct console_config){ .kind = CONSOLE_SOCKET, .path = optarg + 7 };
			} else if (!strncmp(optarg, "file=", 5) && optarg[5]) {
				r->console = (struct console_config){ .kind = CONSOLE_FILE, .path = optarg + 5 };
			} else {
				snprintf(err, errlen, "--console: \"%s\" is not socket=PATH or file=PATH",
					 optarg);
				return -EINVAL;
			}
			if (add_device(r, "--console", &virtio_console_class, &r->console, err, errlen))
				return -EINVAL;
			have_console = true;
			break;
		case OPT_DEBUG_EXIT:
			/* QEMU's spelling puts the properties in the next word: take it when it
			 * names one. */
			arg = optarg;
			if (!arg && optind < argc && (!strncmp(argv[optind], "iobase=", 7) ||
						      !strncmp(argv[optind], "iosize=", 7)))
				arg = argv[optind++];
			if (have_debug_exit) {
				snprintf(err, errlen, "--debug-exit: only one");
				return -EINVAL;
			}
			if (parse_debug_exit(arg, &r->debug_exit, err, errlen) ||
			    add_device(r, "--debug-exit", &debug_exit_class, &r->debug_exit, err, errlen))
				return -EINVAL;
			have_debug_exit = true;
			break;
		case OPT_FW_CFG:
			if (!have_fw_cfg &&
			    add_device(r, "--fw-cfg", &fw_cfg_class, &r->fw_cfg, err, errlen))
				return -EINVAL;
			have_fw_cfg = true;
			break;
		case OPT_TRANSPORT:
			if (!strcmp(optarg, "pci")) {
				cfg->transport = VM_TRANSPORT_PCI;
			} else if (!strcmp(optarg, "mmio")) {
				cfg->transport = VM_TRANSPORT_MMIO;
			} else {
				snprintf(err, errlen, "--transport: \"%s\" is not pci or mmio", optarg);
				return -EINVAL;
			}
			break;
		case OPT_SMT: cfg->smt = true; break;
		case OPT_CPU_TEMPLATE:
			if (strchr(optarg, '/')) {
				r->cpu_template_file = optarg;
				cfg->cpu_template = X86_CPU_TEMPLATE_NONE;
			} else if (!x86_cpu_template_parse(optarg, &cfg->cpu_template)) {
				r->cpu_template_file = NULL;
			} else {
				snprintf(err, errlen, "--cpu-template: \"%s\" is not T2, T2S, T2CL, T2A, "
					 "C3, None or a template file (a path with a /)", optarg);
				return -EINVAL;
			}
			break;
		case OPT_HUGE_PAGES:
			if (strcmp(optarg, "2M") && strcasecmp(optarg, "none")) {
				snprintf(err, errlen, "--huge-pages: \"%s\" is not 2M or none", optarg);
				return -EINVAL;
			}
			cfg->huge_pages = !strcmp(optarg, "2M");
			break;
		case OPT_NO_SECCOMP: r->sandbox.off = true; break;
		case OPT_SECCOMP_FILTER: r->sandbox.filter = optarg; break;
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
	if (!cfg->kernel_path && !cfg->firmware_path) {
		snprintf(err, errlen, "--kernel (or --firmware) is required");
		return -EINVAL;
	}
	if (cfg->firmware_path && !cfg->firmware_vars_path && (cfg->kernel_path || cfg->initrd_path)) {
		snprintf(err, errlen, "--firmware: the BIOS boots from a disk; %s is not taken with it "
			 "(QEMU's linuxboot option ROM is not built; --firmware uefi loads a kernel)",
			 cfg->kernel_path ? "--kernel" : "--initrd");
		return -EINVAL;
	}
	if (cfg->firmware_path && cfg->initrd_path && !cfg->kernel_path) {
		snprintf(err, errlen, "--firmware: --initrd goes with --kernel");
		return -EINVAL;
	}
	if (!have_reboot)
		r->reboot_reset = cfg->firmware_path != NULL; /* as QEMU's PC, where firmware runs */
	if (cfg->smt && cfg->nr_cpus > 1 && cfg->nr_cpus % 2) {
		snprintf(err, errlen, "--smt: --cpus %u: with two threads per core the count must be "
			 "1 or even", cfg->nr_cpus);
		return -EINVAL;
	}
	if (cfg->huge_pages && cfg->mem_bytes % (2u << 20)) {
		snprintf(err, errlen, "--huge-pages 2M: --memory %" PRIu64 " KiB is not a multiple of "
			 "2 MiB", cfg->mem_bytes >> 10);
		return -EINVAL;
	}
	if (r->sandbox.off && r->sandbox.filter) {
		snprintf(err, errlen, "--no-seccomp and --seccomp-filter exclude each other");
		return -EINVAL;
	}
	if (vm_config_check(cfg, &e)) {
		cli_word_error(r, &e, err, errlen);
		return -EINVAL;
	}
	return CLI_RUN;
}
