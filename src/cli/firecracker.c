/* firecracker — Firecracker's process flags and JSON configuration file, see include/kiln/cli.h.
 *
 * The file is Firecracker's FullVmConfiguration (its swagger/firecracker.yaml): the same keys,
 * value types and defaults — 1 vCPU and 128 MiB without "machine-config", Firecracker's default
 * kernel command line without "boot_args", drives in order with the root device first
 * (/dev/vda) and "root=/dev/vda" or "root=PARTUUID=..." with "rw"/"ro" appended to the command
 * line. Devices attach over virtio-mmio as in Firecracker, whose guests boot with pci=off.
 * Unknown keys are refused, as Firecracker refuses them; keys kiln does not implement yet
 * (rate limiters, vsock, balloon, metrics, MMDS, ...) are refused by name unless null.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <jansson.h>

#include "kiln/cli.h"

#define FC_DEFAULT_MEM_MIB 128
#define FC_MAX_VCPUS 32
#define FC_DEFAULT_CMDLINE "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux " \
			   "i8042.nomux i8042.nopnp i8042.dumbkbd"

static const char fc_usage[] =
	"usage: kiln --no-api --config-file PATH [--id ID] [--boot-timer] [--level LEVEL]\n"
	"            [--log-path PATH]\n"
	"\n"
	"Firecracker's process flags: boot the VM that a Firecracker JSON configuration file\n"
	"describes (\"boot-source\", \"machine-config\", \"drives\", \"network-interfaces\",\n"
	"\"entropy\", \"logger\"), with the serial console on standard input/output.\n"
	"\n"
	"  --no-api            no API server (required: kiln's API server is not built yet)\n"
	"  --config-file PATH  the VM configuration (Firecracker's JSON format)\n"
	"  --id ID             the microVM's id (1-64 of A-Z a-z 0-9 -), default anonymous-instance\n"
	"  --boot-timer        log the guest's boot time (its write of 123 to MMIO 0xC0000000)\n"
	"  --level LEVEL       Error, Warning (default), Info, Debug, Trace or Off\n"
	"  --log-path PATH     write log lines to this existing file or named pipe\n"
	"  --version, --help\n"
	"\n"
	"Exit status as for `kiln run` (see kiln run --help).\n";

/* Firecracker flags kiln does not implement yet: refused by name, never ignored. */
static const char *const fc_unimplemented[] = {
	"--api-sock", "--seccomp-filter", "--no-seccomp", "--start-time-us", "--start-time-cpu-us",
	"--parent-cpu-time-us", "--metrics-path", "--mmds-size-limit", "--http-api-max-payload-size",
	"--show-level", "--show-log-origin", "--module", "--describe-snapshot", "--snapshot-version",
	"--enable-pci", NULL,
};

struct fc_run {
	const char *config_file, *id, *log_path;
	bool no_api, boot_timer;
	enum log_level level;
	json_t *root;           /* the configuration; cfg's strings point into it */
	char *cmdline;
	struct vm_config cfg;
};

static int usage_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int usage_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_level(const char *text, enum log_level *level)
{
	static const struct { const char *name; enum log_level level; } names[] = {
		{ "error", LOG_ERROR }, { "warning", LOG_WARN }, { "warn", LOG_WARN },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG }, { "trace", LOG_DEBUG }, { "off", LOG_OFF },
	};

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(text, names[i].name)) {
			*level = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

/* 1..@max characters of A-Z a-z 0-9 and @extra. */
static bool valid_id(const char *id, size_t max, const char *extra)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = strlen(id);

	for (size_t i = 0; i < n; i++)
		if (!strchr(alnum, id[i]) && !strchr(extra, id[i]))
			return false;
	return n >= 1 && n <= max;
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
			return usage_error(err, errlen, "unknown flag \"%s\" (kiln --help)", flag);
		memcpy(name, flag, len);
		name[len] = 0;
		if (!strcmp(name, "--help") || !strcmp(name, "-h"))
			return CLI_HELP;
		if (!strcmp(name, "--version"))
			return CLI_VERSION;
		if (!strcmp(name, "--no-api") || !strcmp(name, "--boot-timer")) {
			if (eq)
				return usage_error(err, errlen, "%s takes no value", name);
			*(!strcmp(name, "--no-api") ? &r->no_api : &r->boot_timer) = true;
			continue;
		}
		for (const char *const *u = fc_unimplemented; *u; u++)
			if (!strcmp(name, *u))
				return usage_error(err, errlen, "%s: a Firecracker flag kiln does not "
						   "implement yet", name);
		if (strcmp(name, "--config-file") && strcmp(name, "--id") && strcmp(name, "--level") &&
		    strcmp(name, "--log-path"))
			return usage_error(err, errlen, "unknown flag \"%s\" (kiln --help)", flag);
		value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!value)
			return usage_error(err, errlen, "%s: missing value", name);
		if (!strcmp(name, "--config-file")) {
			r->config_file = value;
		} else if (!strcmp(name, "--id")) {
			if (!valid_id(value, 64, "-"))
				return usage_error(err, errlen, "--id: \"%s\" is not 1-64 of A-Z a-z 0-9 -",
						   value);
			r->id = value;
		} else if (!strcmp(name, "--level")) {
			if (parse_level(value, &r->level))
				return usage_error(err, errlen, "--level: \"%s\" is not Error, Warning, "
						   "Info, Debug, Trace or Off", value);
		} else {
			r->log_path = value;
		}
	}
	if (!r->no_api)
		return usage_error(err, errlen, "the API server is not implemented yet: run with "
				   "--no-api --config-file PATH");
	if (!r->config_file)
		return usage_error(err, errlen, "--no-api needs --config-file PATH");
	return CLI_RUN;
}

/* One key of a JSON object: its type ('s' string, 'b' boolean, 'I' integer, 'o' any value)
 * and where the value goes (const char **, int *, json_int_t *, json_t **). */
struct field {
	const char *key;
	char type;
	bool required;
	void *out;
};

/* Unpack object @o into @fields: every key known, required ones present, each of its type
 * (null counts as absent for optional fields). Errors name the key, prefixed by @where. */
static int unpack(json_t *o, const char *where, const struct field *fields, unsigned n, char *err,
		  size_t errlen)
{
	static const char *const names[] = { ['s'] = "a string", ['b'] = "true or false",
					     ['I'] = "an integer" };
	const char *key;
	json_t *v;

	if (!json_is_object(o))
		return usage_error(err, errlen, "%sexpected an object", where);
	json_object_foreach(o, key, v) {
		unsigned i = 0;

		while (i < n && strcmp(fields[i].key, key))
			i++;
		if (i == n)
			return usage_error(err, errlen, "%sunknown field \"%s\"", where, key);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct field *f = &fields[i];

		v = json_object_get(o, f->key);
		if (!v || (json_is_null(v) && f->type != 'o')) {
			if (f->required)
				return usage_error(err, errlen, "%s\"%s\" is required", where, f->key);
			continue;
		}
		if ((f->type == 's' && !json_is_string(v)) || (f->type == 'b' && !json_is_boolean(v)) ||
		    (f->type == 'I' && !json_is_integer(v)))
			return usage_error(err, errlen, "%s\"%s\": expected %s", where, f->key,
					   names[(unsigned char)f->type]);
		switch (f->type) {
		case 's': *(const char **)f->out = json_string_value(v); break;
		case 'b': *(int *)f->out = json_is_true(v); break;
		case 'I': *(json_int_t *)f->out = json_integer_value(v); break;
		default: *(json_t **)f->out = v; break;
		}
	}
	return 0;
}

#define FIELDS(...) ((const struct field[]){ __VA_ARGS__ }), \
	sizeof((const struct field[]){ __VA_ARGS__ }) / sizeof(struct field)

/* A key kiln knows but does not implement yet: fine when absent or null. */
static int unimplemented(const json_t *v, const char *where, const char *key, char *err,
			 size_t errlen)
{
	if (!v || json_is_null(v))
		return 0;
	return usage_error(err, errlen, "%s\"%s\": not implemented by kiln yet (leave it out or null)",
			   where, key);
}

static int parse_boot_source(json_t *o, struct fc_run *r, char *err, size_t errlen)
{
	const char *where = "\"boot-source\": ";

	if (!o || json_is_null(o))
		return usage_error(err, errlen, "\"boot-source\" is required");
	if (unpack(o, where, FIELDS({ "kernel_image_path", 's', true, &r->cfg.kernel_path },
				    { "boot_args", 's', false, &r->cfg.cmdline },
				    { "initrd_path", 's', false, &r->cfg.initrd_path }), err, errlen))
		return -EINVAL;
	if (!r->cfg.cmdline)
		r->cfg.cmdline = FC_DEFAULT_CMDLINE;
	return 0;
}

static int parse_machine(json_t *o, struct fc_run *r, char *err, size_t errlen)
{
	json_int_t vcpus, mib;
	int smt = 0, dirty = 0;
	const char *tmpl = NULL, *huge = NULL;
	const char *where = "\"machine-config\": ";

	if (!o || json_is_null(o))
		return 0;
	if (unpack(o, where, FIELDS({ "vcpu_count", 'I', true, &vcpus },
				    { "mem_size_mib", 'I', true, &mib }, { "smt", 'b', false, &smt },
				    { "track_dirty_pages", 'b', false, &dirty },
				    { "cpu_template", 's', false, &tmpl },
				    { "huge_pages", 's', false, &huge }), err, errlen))
		return -EINVAL;
	if (vcpus < 1 || vcpus > FC_MAX_VCPUS)
		return usage_error(err, errlen, "%s\"vcpu_count\": %lld is not in [1, %d]", where,
				   (long long)vcpus, FC_MAX_VCPUS);
	if (mib < 1 || mib > (1ll << 30))
		return usage_error(err, errlen, "%s\"mem_size_mib\": %lld is not a size in MiB", where,
				   (long long)mib);
	if (smt)
		return usage_error(err, errlen, "%s\"smt\": true is not implemented by kiln yet", where);
	if (dirty)
		return usage_error(err, errlen, "%s\"track_dirty_pages\": true is not implemented by "
				   "kiln yet", where);
	if (tmpl && strcmp(tmpl, "None"))
		return usage_error(err, errlen, "%s\"cpu_template\": \"%s\" is not implemented by kiln "
				   "yet (None is)", where, tmpl);
	if (huge && strcmp(huge, "None"))
		return usage_error(err, errlen, "%s\"huge_pages\": \"%s\" is not implemented by kiln "
				   "yet (None is)", where, huge);
	r->cfg.nr_cpus = (unsigned)vcpus;
	r->cfg.mem_bytes = (uint64_t)mib << 20;
	return 0;
}

/* One drive into @d; *root set for the root device, *partuuid to its PARTUUID or NULL. */
static int parse_drive(json_t *o, unsigned i, struct disk_config *d, bool *root,
		       const char **partuuid, char *err, size_t errlen)
{
	json_t *limiter = NULL, *sock = NULL;
	const char *cache = NULL, *engine = NULL, *id, *path = NULL;
	int is_root, ro = 0;
	char where[48];

	*root = false;
	*partuuid = NULL;
	snprintf(where, sizeof(where), "\"drives\"[%u]: ", i);
	if (unpack(o, where, FIELDS({ "drive_id", 's', true, &id },
				    { "is_root_device", 'b', true, &is_root },
				    { "path_on_host", 's', false, &path },
				    { "is_read_only", 'b', false, &ro }, { "cache_type", 's', false, &cache },
				    { "io_engine", 's', false, &engine },
				    { "partuuid", 's', false, partuuid },
				    { "rate_limiter", 'o', false, &limiter },
				    { "socket", 'o', false, &sock }), err, errlen))
		return -EINVAL;
	if (!valid_id(id, 64, "_"))
		return usage_error(err, errlen, "%s\"drive_id\": \"%s\" is not 1-64 of A-Z a-z 0-9 _",
				   where, id);
	if (unimplemented(limiter, where, "rate_limiter", err, errlen) ||
	    unimplemented(sock, where, "socket", err, errlen))
		return -EINVAL;
	*d = (struct disk_config){ .id = id, .readonly = ro, .path = path };
	if (!d->path)
		return usage_error(err, errlen, "%s\"path_on_host\" is required", where);
	if (cache && strcmp(cache, "Unsafe") && strcmp(cache, "Writeback"))
		return usage_error(err, errlen, "%s\"cache_type\": \"%s\" is not Unsafe or Writeback",
				   where, cache);
	if (engine && strcmp(engine, "Sync") && strcmp(engine, "Async"))
		return usage_error(err, errlen, "%s\"io_engine\": \"%s\" is not Sync or Async", where,
				   engine);
	d->engine = engine && !strcmp(engine, "Async") ? BLOCK_ENGINE_IO_URING : BLOCK_ENGINE_SYNC;
	*root = is_root;
	if (!is_root)
		*partuuid = NULL;
	return 0;
}

/* A list of devices under @key: absent or null (0 entries), else an array of at most
 * VM_MAX_VIRTIO. Returns the number of entries, or -EINVAL with a message. */
static int device_list(const json_t *a, const char *key, char *err, size_t errlen)
{
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return usage_error(err, errlen, "\"%s\": expected an array", key);
	if (json_array_size(a) > VM_MAX_VIRTIO)
		return usage_error(err, errlen, "\"%s\": %zu entries, more than %d", key,
				   json_array_size(a), VM_MAX_VIRTIO);
	return (int)json_array_size(a);
}

/* The drives, the root device first; its root= parameter is appended to the command line. */
static int parse_drives(json_t *a, struct fc_run *r, char *err, size_t errlen)
{
	const char *root_id = NULL, *partuuid = NULL;
	size_t i;
	json_t *o;
	int count = device_list(a, "drives", err, errlen);

	if (count <= 0)
		return count; /* nothing to add, or -EINVAL */
	json_array_foreach(a, i, o) {
		struct disk_config d;
		const char *uuid;
		bool root;

		if (parse_drive(o, (unsigned)i, &d, &root, &uuid, err, errlen))
			return -EINVAL;
		if (root && root_id)
			return usage_error(err, errlen, "\"drives\": \"%s\" and \"%s\" are both root "
					   "devices", root_id, d.id);
		if (root) {
			root_id = d.id;
			partuuid = uuid;
			memmove(&r->cfg.disk[1], &r->cfg.disk[0], r->cfg.nr_disks * sizeof(d));
			r->cfg.disk[0] = d;
		} else {
			r->cfg.disk[r->cfg.nr_disks] = d;
		}
		r->cfg.nr_disks++;
	}
	if (root_id) {
		size_t n = strlen(r->cfg.cmdline) + 64 + (partuuid ? strlen(partuuid) : 0);

		r->cmdline = malloc(n);
		if (!r->cmdline)
			return usage_error(err, errlen, "out of memory");
		snprintf(r->cmdline, n, "%s root=%s%s %s", r->cfg.cmdline,
			 partuuid ? "PARTUUID=" : "/dev/vda", partuuid ? partuuid : "",
			 r->cfg.disk[0].readonly ? "ro" : "rw");
		r->cfg.cmdline = r->cmdline;
	}
	return 0;
}

static int parse_nics(json_t *a, struct fc_run *r, char *err, size_t errlen)
{
	size_t i;
	json_t *o;
	int count = device_list(a, "network-interfaces", err, errlen);

	if (count <= 0)
		return count; /* nothing to add, or -EINVAL */
	json_array_foreach(a, i, o) {
		struct net_config *n = &r->cfg.net[r->cfg.nr_nets];
		json_t *mtu = NULL, *rx = NULL, *tx = NULL;
		const char *id, *text = NULL;
		char where[48];

		snprintf(where, sizeof(where), "\"network-interfaces\"[%zu]: ", i);
		*n = (struct net_config){ .kind = NET_TAP };
		if (unpack(o, where, FIELDS({ "iface_id", 's', true, &id },
					    { "host_dev_name", 's', true, &n->tap },
					    { "guest_mac", 's', false, &text }, { "mtu", 'o', false, &mtu },
					    { "rx_rate_limiter", 'o', false, &rx },
					    { "tx_rate_limiter", 'o', false, &tx }), err, errlen))
			return -EINVAL;
		if (!valid_id(id, 64, "_"))
			return usage_error(err, errlen, "%s\"iface_id\": \"%s\" is not 1-64 of A-Z a-z "
					   "0-9 _", where, id);
		if (unimplemented(mtu, where, "mtu", err, errlen) ||
		    unimplemented(rx, where, "rx_rate_limiter", err, errlen) ||
		    unimplemented(tx, where, "tx_rate_limiter", err, errlen))
			return -EINVAL;
		if (text && net_parse_mac(text, n->mac))
			return usage_error(err, errlen, "%s\"guest_mac\": \"%s\" is not a unicast MAC "
					   "address like 06:00:AC:10:00:02", where, text);
		n->mac_set = text != NULL;
		r->cfg.nr_nets++;
	}
	return 0;
}

static int parse_logger(json_t *o, struct fc_run *r, char *err, size_t errlen)
{
	const char *level = NULL, *path = NULL, *module = NULL;
	int show_level = 0, show_origin = 0;
	const char *where = "\"logger\": ";

	if (!o || json_is_null(o))
		return 0;
	if (unpack(o, where, FIELDS({ "level", 's', false, &level }, { "log_path", 's', false, &path },
				    { "show_level", 'b', false, &show_level },
				    { "show_log_origin", 'b', false, &show_origin },
				    { "module", 's', false, &module }), err, errlen))
		return -EINVAL;
	if (level && parse_level(level, &r->level))
		return usage_error(err, errlen, "%s\"level\": \"%s\" is not Error, Warning, Info, Debug, "
				   "Trace or Off", where, level);
	if (show_level || show_origin || module)
		return usage_error(err, errlen, "%s\"show_level\", \"show_log_origin\" and \"module\" "
				   "are not implemented by kiln yet", where);
	if (path)
		r->log_path = path;
	return 0;
}

static int parse_config(struct fc_run *r, char *err, size_t errlen)
{
	json_t *boot = NULL, *mc = NULL, *drives = NULL, *nics = NULL, *entropy = NULL,
	       *logger = NULL, *metrics = NULL, *vsock = NULL, *balloon = NULL, *mmds = NULL,
	       *cpu = NULL, *hotplug = NULL, *pmem = NULL, *limiter = NULL;
	json_error_t e;

	r->root = json_load_file(r->config_file, JSON_REJECT_DUPLICATES, &e);
	if (!r->root)
		return e.line > 0 ? usage_error(err, errlen, "line %d: %s", e.line, e.text)
				  : usage_error(err, errlen, "%s", e.text);
	r->cfg = (struct vm_config){ .nr_cpus = 1, .mem_bytes = (uint64_t)FC_DEFAULT_MEM_MIB << 20,
				     .transport = VM_TRANSPORT_MMIO };
	if (unpack(r->root, "", FIELDS({ "boot-source", 'o', false, &boot },
				       { "machine-config", 'o', false, &mc }, { "drives", 'o', false, &drives },
				       { "network-interfaces", 'o', false, &nics },
				       { "entropy", 'o', false, &entropy }, { "logger", 'o', false, &logger },
				       { "metrics", 'o', false, &metrics }, { "vsock", 'o', false, &vsock },
				       { "balloon", 'o', false, &balloon },
				       { "mmds-config", 'o', false, &mmds },
				       { "cpu-config", 'o', false, &cpu },
				       { "memory-hotplug", 'o', false, &hotplug },
				       { "pmem", 'o', false, &pmem }), err, errlen))
		return -EINVAL;
	if (pmem && json_is_array(pmem) && !json_array_size(pmem))
		pmem = NULL;
	if (entropy && !json_is_null(entropy) &&
	    unpack(entropy, "\"entropy\": ", FIELDS({ "rate_limiter", 'o', false, &limiter }), err,
		   errlen))
		return -EINVAL;
	if (parse_boot_source(boot, r, err, errlen) || parse_machine(mc, r, err, errlen) ||
	    parse_drives(drives, r, err, errlen) || parse_nics(nics, r, err, errlen) ||
	    parse_logger(logger, r, err, errlen) ||
	    unimplemented(limiter, "\"entropy\": ", "rate_limiter", err, errlen) ||
	    unimplemented(metrics, "", "metrics", err, errlen) ||
	    unimplemented(vsock, "", "vsock", err, errlen) ||
	    unimplemented(balloon, "", "balloon", err, errlen) ||
	    unimplemented(mmds, "", "mmds-config", err, errlen) ||
	    unimplemented(cpu, "", "cpu-config", err, errlen) ||
	    unimplemented(hotplug, "", "memory-hotplug", err, errlen) ||
	    unimplemented(pmem, "", "pmem", err, errlen))
		return -EINVAL;
	r->cfg.rng = entropy && !json_is_null(entropy);
	return cli_check_config(&r->cfg, err, errlen);
}

int cli_firecracker(int argc, char **argv)
{
	struct fc_run r = { 0 };
	char err[900], why[600];
	int ret, fd;

	ret = parse_flags(argc, argv, &r, err, sizeof(err));
	if (ret == CLI_HELP || ret == CLI_VERSION) {
		fputs(ret == CLI_HELP ? fc_usage : "kiln " KILN_VERSION "\n", stdout);
		return 0;
	}
	if (ret == CLI_RUN && parse_config(&r, why, sizeof(why)))
		ret = usage_error(err, sizeof(err), "--config-file %.250s: %s", r.config_file, why);
	if (ret == 0 && r.log_path) {
		/* As Firecracker: an existing file or named pipe, not created here. */
		fd = open(r.log_path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			ret = usage_error(err, sizeof(err), "log path %s: %s", r.log_path, strerror(errno));
		else
			log_set_fd(fd);
	}
	if (ret < 0) {
		fprintf(stderr, "kiln: %s\n", err);
		json_decref(r.root);
		free(r.cmdline);
		return KILN_EXIT_USAGE;
	}
	log_set_level(r.boot_timer && r.level < LOG_INFO ? LOG_INFO : r.level);
	log_info("microVM %s: starting (kiln %s)", r.id ? r.id : "anonymous-instance", KILN_VERSION);
	ret = cli_run_vm(&r.cfg, "kiln");
	json_decref(r.root);
	free(r.cmdline);
	return ret;
}
