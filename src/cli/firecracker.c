/* SPDX-License-Identifier: Apache-2.0 */
/* firecracker — Firecracker's process flags, see include/kiln/cli.h: boot from a JSON
 * configuration file (--no-api --config-file), or serve Firecracker's REST API on a Unix socket
 * (--api-sock) and boot on InstanceStart. The configuration format and the API are src/fc.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "kiln/cli.h"
#include "kiln/fc.h"
#include "kiln/mig_channel.h"
#include "kiln/snapshot.h"

#define FC_DEFAULT_API_SOCK "/run/firecracker.socket"

static const char fc_usage[] =
	"usage: kiln [--api-sock PATH] [--config-file PATH] [--id ID] [--boot-timer]\n"
	"            [--level LEVEL] [--log-path PATH] [--metrics-path PATH]\n"
	"            [--seccomp-filter FILE | --no-seccomp]\n"
	"       kiln --no-api --config-file PATH [...]\n"
	"\n"
	"Firecracker's process flags: serve Firecracker's REST API on a Unix socket and boot the\n"
	"VM on InstanceStart, or boot at once the VM that a Firecracker JSON configuration file\n"
	"describes (\"boot-source\", \"machine-config\", \"drives\", \"network-interfaces\",\n"
	"\"entropy\", \"logger\"). The serial console is on standard input/output.\n"
	"\n"
	"  --api-sock PATH     the API socket, which must not exist (default " FC_DEFAULT_API_SOCK ")\n"
	"  --no-api            no API server: boot from --config-file\n"
	"  --config-file PATH  the VM configuration (Firecracker's JSON format); with the API, the\n"
	"                      VM boots at once and the API serves it\n"
	"  --id ID             the microVM's id (1-64 of A-Z a-z 0-9 -), default anonymous-instance\n"
	"  --boot-timer        log the guest's boot time (its write of 123 to MMIO 0xC0000000)\n"
	"  --level LEVEL       Error, Warning (default), Info, Debug, Trace or Off\n"
	"  --log-path PATH     write log lines to this file (created if missing) or named pipe,\n"
	"                      in Firecracker's format: TIME [ID:THREAD[:LEVEL][:FILE:LINE]] TEXT\n"
	"  --show-level, --show-log-origin\n"
	"                      add each line's level, and the source file and line it comes from\n"
	"  --module MODULE     only lines from kiln's module MODULE (virtio, virtio::blk, fc, ...)\n"
	"  --metrics-path PATH write metrics (JSON lines) to this file (created if missing) or\n"
	"                      named pipe\n"
	"  --metadata FILE     JSON the MMDS data store starts with\n"
	"  --http-api-max-payload-size BYTES\n"
	"                      largest API request body (default 51200)\n"
	"  --mmds-size-limit BYTES\n"
	"                      largest MMDS data store (default: the payload size)\n"
	"  --enable-pci        devices on virtio-pci (MSI-X) instead of virtio-mmio; the guest's\n"
	"                      boot_args must then not say pci=off\n"
	"  --snapshot-version  print the snapshot format this kiln writes (v2) and exit\n"
	"  --describe-snapshot FILE\n"
	"                      print the format of snapshot FILE and exit\n"
	"  --start-time-us US, --start-time-cpu-us US, --parent-cpu-time-us US\n"
	"                      the jailer's start (CLOCK_MONOTONIC and process CPU time, in\n"
	"                      microseconds) and its parent's CPU time: the metrics' startup times\n"
	"                      count from there\n"
	"  --seccomp-filter FILE  seccomp filters in Firecracker's seccompiler JSON format, per\n"
	"                      thread category (vmm, vcpu, worker), instead of kiln's own\n"
	"  --no-seccomp        no seccomp filters (every thread is filtered by default)\n"
	"  --version, --help\n"
	"\n"
	"Exit status as for `kiln run` (see kiln run --help).\n";

static const char restore_usage[] =
	"usage: kiln restore --snapshot PATH (--mem-file PATH | --uffd SOCKET) [--paused]\n"
	"       kiln restore --incoming tcp:HOST:PORT|fd:N\n"
	"                    (--tls-psk FILE | --tls-x509 DIR | --insecure-plain-tcp)\n"
	"                    [--config-file PATH] [--paused]\n"
	"                    [--track-dirty-pages] [--api-sock PATH] [--id ID] [--level LEVEL]\n"
	"                    [--log-path PATH] [--metrics-path PATH]\n"
	"\n"
	"Run the VM of a snapshot made with PUT /snapshot/create, as PUT /snapshot/load would:\n"
	"the configuration, vCPU and device state come from the snapshot file, guest memory from\n"
	"the memory file (mapped privately: pages load when first touched) or from the page-fault\n"
	"handler listening on SOCKET (Firecracker's Uffd backend). The serial console is on\n"
	"standard input/output; with --api-sock the API serves the restored VM (pause, resume,\n"
	"further snapshots).\n"
	"\n"
	"  --snapshot PATH       the snapshot file\n"
	"  --mem-file PATH       its guest memory file\n"
	"  --uffd SOCKET         a page-fault handler's Unix socket instead of --mem-file\n"
	"  --incoming tcp:HOST:PORT|fd:N  take one live migration (PUT /migrate on the source) on\n"
	"                        the first connection to HOST:PORT, or on the connected socket N\n"
	"                        handed over by the caller, and run the migrated VM\n"
	"  --tls-psk FILE        the migration runs over TLS with a pre-shared key: FILE holds\n"
	"                        psktool's identity:hexkey lines, the source's identity among them\n"
	"  --tls-x509 DIR        over TLS with certificates: DIR holds ca-cert.pem, server-cert.pem\n"
	"                        and server-key.pem; the source must show a certificate of that CA\n"
	"  --insecure-plain-tcp  over plain TCP: neither authenticated nor encrypted (a trusted\n"
	"                        network only); one of these three is needed with --incoming\n"
	"  --config-file PATH    with --incoming: this host's side of the VM (Firecracker's JSON:\n"
	"                        drives' path_on_host, network-interfaces' host_dev_name, vsock's\n"
	"                        uds_path, logger, metrics). The stream's configuration must describe\n"
	"                        the same guest; without this file it may name no host resource\n"
	"  --paused              leave the VM paused (resume it with PATCH /vm)\n"
	"  --track-dirty-pages   log dirtied pages, for Diff snapshots of the restored VM\n"
	"  other flags as for kiln's Firecracker mode (kiln --help); --api-sock has no default\n";


struct fc_run {
	const char *api_sock, *config_file, *id, *log_path, *metrics_path;
	int show_level, show_origin; /* --show-level, --show-log-origin: 1, else -1 (unchanged) */
	const char *module;     /* --module */
	size_t http_max_body, mmds_limit; /* --http-api-max-payload-size, --mmds-size-limit */
	const char *metadata_path; /* --metadata */
	json_t *metadata;
	bool pci;               /* --enable-pci */
	bool snapshot_version;  /* --snapshot-version: print kiln's snapshot format and exit */
	const char *describe;   /* --describe-snapshot FILE: print its format and exit */
	bool restore;           /* kiln restore: load below instead of a configuration */
	struct fc_snapshot_load load;
	const char *incoming;   /* kiln restore --incoming: from a migration instead */
	const char *tls_psk, *tls_x509; /* --tls-psk, --tls-x509 */
	bool plain_tcp;         /* --insecure-plain-tcp */
	struct mig_security security; /* the one of the three given */
	struct mig_creds *creds; /* the destination's, loaded as security says */
	struct timespec start, start_cpu;
	uint64_t parent_cpu_us;
	bool no_api, boot_timer;
	struct cli_sandbox sandbox;
	enum log_level level;
	json_t *root;           /* the configuration; cfg's strings point into it */
	struct fc_config cfg;
};

/* A decimal count (microseconds, as the jailer passes them; bytes). */
static int parse_us(const char *text, uint64_t *out)
{
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(text, &end, 10);
	return errno || *end || *out > INT64_MAX / 1000 ? -EINVAL : 0;
}

/* What `kiln restore` needs: a snapshot and its memory, or --incoming with exactly one way to
 * secure the channel. */
static int check_restore(struct fc_run *r, char *err, size_t errlen)
{
	static const char *const names[3] = { "--tls-psk FILE", "--tls-x509 DIR",
					      "--insecure-plain-tcp" };

	if (r->incoming && (r->load.snapshot_path || r->load.mem.path))
		return fc_error(err, errlen, "--incoming takes no --snapshot, --mem-file or --uffd");
	if (!r->incoming && (!r->load.snapshot_path || !r->load.mem.path))
		return fc_error(err, errlen, "kiln restore needs --snapshot PATH and --mem-file "
				   "PATH or --uffd SOCKET, or --incoming tcp:HOST:PORT|fd:N "
				   "(kiln restore --help)");
	if (r->no_api)
		return fc_error(err, errlen, "kiln restore takes no --no-api");
	if (!r->incoming && (r->config_file || r->tls_psk || r->tls_x509 || r->plain_tcp))
		return fc_error(err, errlen, "--config-file, --tls-psk, --tls-x509 and "
				   "--insecure-plain-tcp go with --incoming (a snapshot file holds "
				   "its own configuration)");
	if (r->incoming && mig_security_choose(r->tls_psk, r->tls_x509, r->plain_tcp, names,
					       &r->security, err, errlen))
		return -EINVAL;
	r->load.migration = r->incoming != NULL;
	r->no_api = !r->api_sock;
	return CLI_RUN;
}

static int parse_flags(int argc, char **argv, struct fc_run *r, char *err, size_t errlen)
{
	r->level = LOG_WARN;
	for (int i = 1; i < argc; i++) {
		const char *flag = argv[i], *value = NULL;
		char name[64];
		const char *eq = strchr(flag, '=');
		size_t len = eq ? (size_t)(eq - flag) : strlen(flag);

		if (len >= sizeof(name))
			return fc_error(err, errlen, "unknown flag \"%s\" (kiln --help)", flag);
		memcpy(name, flag, len);
		name[len] = 0;
		if (!strcmp(name, "--help") || !strcmp(name, "-h"))
			return CLI_HELP;
		if (!strcmp(name, "--version"))
			return CLI_VERSION;
		if (!strcmp(name, "--no-api") || !strcmp(name, "--boot-timer") ||
		    !strcmp(name, "--no-seccomp") || !strcmp(name, "--show-level") ||
		    !strcmp(name, "--show-log-origin") || !strcmp(name, "--enable-pci") ||
		    !strcmp(name, "--snapshot-version") ||
		    (r->restore && (!strcmp(name, "--paused") || !strcmp(name, "--track-dirty-pages") ||
				    !strcmp(name, "--insecure-plain-tcp")))) {
			if (eq)
				return fc_error(err, errlen, "%s takes no value", name);
			if (!strcmp(name, "--insecure-plain-tcp"))
				r->plain_tcp = true;
			else if (!strcmp(name, "--paused"))
				r->load.resume_vm = false;
			else if (!strcmp(name, "--track-dirty-pages"))
				r->load.track_dirty_pages = true;
			else if (!strcmp(name, "--no-seccomp"))
				r->sandbox.off = true;
			else if (!strcmp(name, "--show-level"))
				r->show_level = 1;
			else if (!strcmp(name, "--enable-pci"))
				r->pci = true;
			else if (!strcmp(name, "--snapshot-version"))
				r->snapshot_version = true;
			else if (!strcmp(name, "--show-log-origin"))
				r->show_origin = 1;
			else
				*(!strcmp(name, "--no-api") ? &r->no_api : &r->boot_timer) = true;
			continue;
		}
		if (r->restore && (!strcmp(name, "--snapshot") || !strcmp(name, "--mem-file") ||
				   !strcmp(name, "--uffd") || !strcmp(name, "--incoming") ||
				   !strcmp(name, "--tls-psk") || !strcmp(name, "--tls-x509"))) {
			value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!value)
				return fc_error(err, errlen, "%s: missing value", name);
			if (!strcmp(name, "--snapshot")) {
				r->load.snapshot_path = value;
			} else if (!strcmp(name, "--incoming")) {
				r->incoming = value;
			} else if (!strcmp(name, "--tls-psk")) {
				r->tls_psk = value;
			} else if (!strcmp(name, "--tls-x509")) {
				r->tls_x509 = value;
			} else {
				if (r->load.mem.path)
					return fc_error(err, errlen, "--mem-file and --uffd: give one");
				r->load.mem.path = value;
				r->load.mem.type = !strcmp(name, "--uffd") ? VM_MEM_UFFD : VM_MEM_FILE;
			}
			continue;
		}
		if (strcmp(name, "--config-file") && strcmp(name, "--id") && strcmp(name, "--level") &&
		    strcmp(name, "--log-path") && strcmp(name, "--api-sock") &&
		    strcmp(name, "--metrics-path") && strcmp(name, "--seccomp-filter") &&
		    strcmp(name, "--start-time-us") && strcmp(name, "--start-time-cpu-us") &&
		    strcmp(name, "--parent-cpu-time-us") && strcmp(name, "--module") &&
		    strcmp(name, "--http-api-max-payload-size") && strcmp(name, "--mmds-size-limit") &&
		    strcmp(name, "--metadata") && strcmp(name, "--describe-snapshot"))
			return fc_error(err, errlen, "unknown flag \"%s\" (kiln --help)", flag);
		value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!value)
			return fc_error(err, errlen, "%s: missing value", name);
		if (!strcmp(name, "--config-file")) {
			r->config_file = value;
		} else if (!strcmp(name, "--api-sock")) {
			r->api_sock = value;
		} else if (!strcmp(name, "--metrics-path")) {
			r->metrics_path = value;
		} else if (!strcmp(name, "--seccomp-filter")) {
			r->sandbox.filter = value;
		} else if (!strcmp(name, "--start-time-us") || !strcmp(name, "--start-time-cpu-us") ||
			   !strcmp(name, "--parent-cpu-time-us")) {
			uint64_t us;

			if (parse_us(value, &us))
				return fc_error(err, errlen, "%s: \"%s\" is not a number of microseconds",
						name, value);
			if (!strcmp(name, "--parent-cpu-time-us"))
				r->parent_cpu_us = us;
			else
				*(!strcmp(name, "--start-time-us") ? &r->start : &r->start_cpu) =
					(struct timespec){ .tv_sec = (time_t)(us / 1000000),
							   .tv_nsec = (long)(us % 1000000) * 1000 };
		} else if (!strcmp(name, "--id")) {
			if (!fc_valid_id(value, 64, "-"))
				return fc_error(err, errlen, "--id: \"%s\" is not 1-64 of A-Z a-z 0-9 -",
						   value);
			r->id = value;
		} else if (!strcmp(name, "--module")) {
			r->module = value;
		} else if (!strcmp(name, "--metadata")) {
			r->metadata_path = value;
		} else if (!strcmp(name, "--describe-snapshot")) {
			r->describe = value;
		} else if (!strcmp(name, "--http-api-max-payload-size") ||
			   !strcmp(name, "--mmds-size-limit")) {
			uint64_t n;

			if (parse_us(value, &n) || n == 0)
				return fc_error(err, errlen, "%s: \"%s\" is not a number of bytes",
						name, value);
			*(!strcmp(name, "--mmds-size-limit") ? &r->mmds_limit : &r->http_max_body) =
				(size_t)n;
		} else if (!strcmp(name, "--level")) {
			if (fc_parse_level(value, &r->level))
				return fc_error(err, errlen, "--level: \"%s\" is not Error, Warning, "
						   "Info, Debug, Trace or Off", value);
		} else {
			r->log_path = value;
		}
	}
	if (r->sandbox.off && r->sandbox.filter)
		return fc_error(err, errlen, "--no-seccomp and --seccomp-filter exclude each other");
	if (r->restore)
		return check_restore(r, err, errlen);
	if (r->no_api && r->api_sock)
		return fc_error(err, errlen, "--no-api and --api-sock exclude each other");
	if (r->no_api && !r->config_file)
		return fc_error(err, errlen, "--no-api needs --config-file PATH");
	if (!r->no_api && !r->api_sock)
		r->api_sock = FC_DEFAULT_API_SOCK;
	return CLI_RUN;
}

/* Read and check the configuration file into r->root and r->cfg. */
static int parse_config_file(struct fc_run *r, char *err, size_t errlen)
{
	json_error_t e;
	char why[600];

	r->root = json_load_file(r->config_file, JSON_REJECT_DUPLICATES, &e);
	if (!r->root)
		return e.line > 0 ? fc_error(err, errlen, "--config-file %.250s: line %d: %s",
					     r->config_file, e.line, e.text)
				  : fc_error(err, errlen, "--config-file %.250s: %s", r->config_file,
					     e.text);
	/* A migration's destination restores: its operator may leave the boot source out. */
	if (fc_config_read_cpu_config(r->root, why, sizeof(why)) ||
	    fc_config_parse(r->root, !r->restore, &r->cfg, why, sizeof(why)))
		return fc_error(err, errlen, "--config-file %.250s: %s", r->config_file, why);
	if (r->cfg.level_set)
		r->level = r->cfg.level;
	if (r->cfg.log_path)
		r->log_path = r->cfg.log_path;
	if (r->cfg.log_show_level >= 0)
		r->show_level = r->cfg.log_show_level;
	if (r->cfg.log_show_origin >= 0)
		r->show_origin = r->cfg.log_show_origin;
	if (r->cfg.log_module)
		r->module = r->cfg.log_module;
	if (r->cfg.metrics_path && !r->metrics_path)
		r->metrics_path = r->cfg.metrics_path;
	return 0;
}

/* --metadata FILE: the JSON the MMDS store starts with. */
static int load_metadata(struct fc_run *r, char *err, size_t errlen)
{
	json_error_t e;

	r->metadata = json_load_file(r->metadata_path, JSON_REJECT_DUPLICATES, &e);
	if (!r->metadata)
		return e.line > 0 ? fc_error(err, errlen, "--metadata %.250s: line %d: %s",
					     r->metadata_path, e.line, e.text)
				  : fc_error(err, errlen, "--metadata %.250s: %s", r->metadata_path,
					     e.text);
	return 0;
}

/* --snapshot-version: the snapshot format this kiln writes; --describe-snapshot FILE: the
 * format FILE is in (Firecracker prints its own data format version, "vX.Y.Z"). Exit 0, or 1
 * with a message when FILE is not a snapshot this kiln reads. */
static int describe_snapshot(const struct fc_run *r)
{
	struct snap_reader rd;
	char err[600];

	if (!r->describe) {
		printf("v%u\n", SNAP_FORMAT_VERSION);
		return 0;
	}
	if (snap_reader_open(&rd, r->describe, err, sizeof(err))) {
		fprintf(stderr, "kiln: --describe-snapshot: %s\n", err);
		return KILN_EXIT_RUNTIME;
	}
	printf("v%u\n", rd.format);
	snap_reader_close(&rd);
	return 0;
}

struct signal_watch {
	int fd;
	int signo; /* the first signal read, or 0 */
};

static void signal_readable(void *opaque, unsigned events)
{
	struct signal_watch *w = opaque;
	struct signalfd_siginfo si;

	if (read(w->fd, &si, sizeof(si)) == sizeof(si) && !w->signo)
		w->signo = (int)si.ssi_signo;
}

/* The destination's credentials for the channel --incoming takes. */
static int load_creds(struct fc_run *r, char *err, size_t errlen)
{
	char why[600];
	int ret = mig_creds_load(&r->security, true, &r->creds, why, sizeof(why));

	if (ret)
		fc_error(err, errlen, "%s%s", r->tls_psk ? "--tls-psk " : r->tls_x509 ?
			 "--tls-x509 " : "", why);
	return ret ? -EINVAL : 0;
}

struct incoming {
	struct fc_api *api;
	struct fc_run *r;
};

/* The stream's configuration arrived: make the machine while the memory comes. */
static int prepare_incoming(void *opaque, const struct vm_incoming *in, const char *config,
			    size_t len, char *err, size_t errlen)
{
	struct incoming *c = opaque;

	c->r->load.mem = (struct vm_mem_backend){ .type = VM_MEM_SHARED_FD, .fd = in->memfd };
	return fc_api_migration_prepare(c->api, &c->r->load, config, len, err, errlen);
}

/* kiln restore --incoming: take a migration's memory and state over a secured channel,
 * restore the VM from them with this host's resources (--config-file) and tell the source
 * whether it runs here. */
static int load_incoming(struct fc_api *api, struct fc_run *r, char *err, size_t errlen)
{
	struct mig_channel *ch;
	struct vm_incoming in;
	char why[600];
	int fd = mig_accept(r->incoming, why, sizeof(why)), ret;

	if (fd < 0) {
		snprintf(err, errlen, "--incoming %s", why);
		return fd;
	}
	ret = mig_channel_open(fd, r->creds, &ch);
	if (ret) {
		snprintf(err, errlen, "--incoming %s: %s", r->incoming, strerror(-ret));
		return -EIO;
	}
	ret = mig_channel_handshake(ch, NULL, err, errlen);
	if (ret) {
		mig_channel_close(ch);
		return -EIO;
	}
	r->load.snapshot_path = r->incoming; /* names the image in messages */
	r->load.host_config = r->root;
	ret = vm_migrate_receive(ch, &in, prepare_incoming, &(struct incoming){ api, r }, err,
				 errlen);
	if (ret) {
		fc_api_migration_drop(api);
		return ret == -EINVAL ? -EINVAL : -EIO;
	}
	r->load.image = in.state;
	r->load.image_len = in.state_len;
	r->load.mem = (struct vm_mem_backend){ .type = VM_MEM_SHARED_FD, .fd = in.memfd };
	in.state = NULL; /* the load takes the image */
	ret = fc_api_snapshot_load(api, &r->load, err, errlen);
	vm_incoming_release(&in, ret == 0);
	return ret;
}

/* Serve the API until InstanceStart has made a VM (or, with a configuration file, make it at
 * once), then run it; SIGINT, SIGTERM and SIGHUP before that end kiln with 128 + the signal.
 * With --no-api there is no socket: the configuration file's VM starts at once. */
static int run_firecracker(struct fc_run *r)
{
	struct loop *loop = NULL;
	struct fc_api *api = NULL;
	struct signal_watch sig = { .fd = -1 };
	struct vm *vm = NULL;
	sigset_t sigs;
	char err[700];
	int ret;

	ret = cli_sandbox_start(&r->sandbox, "kiln");
	if (ret)
		return ret;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	ret = loop_new(&loop);
	if (ret)
		snprintf(err, sizeof(err), "event loop: %s", strerror(-ret));
	if (!ret && (sig.fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		ret = -errno;
		snprintf(err, sizeof(err), "signalfd: %s", strerror(errno));
	}
	if (!ret && (ret = loop_watch(loop, &sig, sig.fd, LOOP_IN, signal_readable, &sig)))
		snprintf(err, sizeof(err), "event loop: %s", strerror(-ret));
	if (!ret) {
		struct fc_api_options o = {
			.sock_path = r->no_api ? NULL : r->api_sock,
			.id = r->id ? r->id : "anonymous-instance",
			/* A migration's --config-file is checked against the stream, not booted. */
			.doc = r->root && !r->restore ? json_incref(r->root) : json_object(),
			.metrics_path = r->metrics_path, .loop = loop,
			.start = r->start, .start_cpu = r->start_cpu,
			.parent_cpu_us = r->parent_cpu_us,
			.http_max_body = r->http_max_body, .mmds_limit = r->mmds_limit,
			.metadata = r->metadata, .pci = r->pci,
		};

		ret = fc_api_start(&o, &api, err, sizeof(err));
	}
	if (!ret && r->root && !r->restore)
		ret = fc_api_instance_start(api, err, sizeof(err));
	if (!ret && r->restore && r->incoming)
		ret = load_incoming(api, r, err, sizeof(err));
	else if (!ret && r->restore)
		ret = fc_api_snapshot_load(api, &r->load, err, sizeof(err));
	while (!ret && !(vm = fc_api_vm(api)) && !sig.signo) {
		int n = loop_wait(loop, -1);

		if (n < 0 && n != -EINTR) {
			snprintf(err, sizeof(err), "event loop: %s", strerror(-n));
			ret = -EIO;
		}
	}
	if (sig.fd >= 0) {
		loop_forget(loop, &sig);
		close(sig.fd);
	}
	if (ret)
		fprintf(stderr, "kiln: %s\n", err);
	else if (vm)
		ret = cli_vm_run_to_end(vm, NULL);
	else
		ret = KILN_EXIT_SIGNAL_BASE + sig.signo;
	if (api)
		fc_api_stop(api);
	loop_free(loop);
	return ret < 0 ? (ret == -EINVAL ? KILN_EXIT_USAGE : KILN_EXIT_RUNTIME) : ret;
}

int cli_firecracker(int argc, char **argv, bool restore)
{
	struct fc_run r = { .restore = restore, .load.resume_vm = true, .show_level = -1,
			    .show_origin = -1 };
	char err[900];
	int ret, fd;

	clock_gettime(CLOCK_MONOTONIC, &r.start);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &r.start_cpu);
	ret = parse_flags(argc, argv, &r, err, sizeof(err));
	if (ret == CLI_HELP || ret == CLI_VERSION) {
		fputs(ret == CLI_VERSION ? "kiln " KILN_VERSION "\n" : restore ? restore_usage : fc_usage,
		      stdout);
		return 0;
	}
	if (ret == CLI_RUN && (r.snapshot_version || r.describe))
		return describe_snapshot(&r);
	/* The API server and MMDS (libmicrohttpd) and a migration's TLS (GnuTLS, which
	 * libmicrohttpd loads anyway): before the credentials are read, and before the seccomp
	 * filters forbid loading code (kiln/dynlib.h). */
	if (ret == CLI_RUN &&
	    (http_library_load(err, sizeof(err)) || mig_tls_library_load(err, sizeof(err)))) {
		fprintf(stderr, "kiln: %s\n", err);
		return KILN_EXIT_RUNTIME;
	}
	if (ret == CLI_RUN && r.config_file)
		ret = parse_config_file(&r, err, sizeof(err));
	if (ret == CLI_RUN && r.metadata_path)
		ret = load_metadata(&r, err, sizeof(err));
	if (ret == CLI_RUN && r.incoming)
		ret = load_creds(&r, err, sizeof(err));
	if (ret == 0 && r.log_path) {
		fd = fc_open_output(r.log_path);
		if (fd < 0)
			ret = fc_error(err, sizeof(err), "log path %s: %s", r.log_path, strerror(-fd));
		else
			log_set_fd(fd);
	}
	/* Firecracker's logger asked for: its line format from the first line on. */
	if (ret == 0 && (r.log_path || r.show_level >= 0 || r.show_origin >= 0 || r.module))
		log_set_firecracker(r.id, r.show_level, r.show_origin, r.module);
	if (ret < 0) {
		fprintf(stderr, "kiln: %s\n", err);
		ret = KILN_EXIT_USAGE;
	} else {
		log_set_level(r.boot_timer && r.level < LOG_INFO ? LOG_INFO : r.level);
		log_info("microVM %s: starting (kiln %s)", r.id ? r.id : "anonymous-instance",
			 KILN_VERSION);
		ret = run_firecracker(&r);
	}
	fc_config_release(&r.cfg);
	json_decref(r.root);
	json_decref(r.metadata);
	mig_creds_free(r.creds);
	return ret;
}
