/* SPDX-License-Identifier: Apache-2.0 */
/* config — Firecracker's FullVmConfiguration as a struct vm_config, see include/kiln/fc.h.
 *
 * The same keys, value types and defaults as Firecracker's swagger/firecracker.yaml: 1 vCPU
 * and 128 MiB without "machine-config", Firecracker's default kernel command line without
 * "boot_args", drives in order with the root device first (/dev/vda) and "root=/dev/vda" or
 * "root=PARTUUID=..." with "rw"/"ro" appended to the command line. Devices attach over
 * virtio-mmio as in Firecracker, whose guests boot with pci=off. Unknown keys are refused, as
 * Firecracker refuses them; keys kiln does not implement yet (a drive's "socket",
 * "memory-hotplug", ...) are refused by name unless null. "machine-config" "smt" and
 * "cpu_template" (a static template's name) are Firecracker's; whether the template fits this
 * host's CPU is checked at InstanceStart, as Firecracker checks it (vmm.c). "cpu-config" is a
 * custom CPU template (src/arch/x86/custom_template.c), which wins over "cpu_template" as in
 * Firecracker, where it is set after the machine configuration (resources.rs from_json); in
 * --config-file it may be a path, read when the file is loaded (fc_config_read_cpu_config).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/x86.h"

int fc_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int fc_parse_level(const char *text, enum log_level *level)
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
bool fc_valid_id(const char *id, size_t max, const char *extra)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = strlen(id);

	for (size_t i = 0; i < n; i++)
		if (!strchr(alnum, id[i]) && !strchr(extra, id[i]))
			return false;
	return n >= 1 && n <= max;
}

int fc_unpack(json_t *o, const char *where, const struct fc_field *fields, unsigned n, char *err,
	      size_t errlen)
{
	static const char *const names[] = { ['s'] = "a string", ['b'] = "true or false",
					     ['I'] = "an integer" };
	const char *key;
	json_t *v;

	if (!json_is_object(o))
		return fc_error(err, errlen, "%sexpected an object", where);
	json_object_foreach(o, key, v) {
		unsigned i = 0;

		while (i < n && strcmp(fields[i].key, key))
			i++;
		if (i == n)
			return fc_error(err, errlen, "%sunknown field \"%s\"", where, key);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct fc_field *f = &fields[i];

		v = json_object_get(o, f->key);
		if (!v || (json_is_null(v) && f->type != 'o')) {
			if (f->required)
				return fc_error(err, errlen, "%s\"%s\" is required", where, f->key);
			continue;
		}
		if ((f->type == 's' && !json_is_string(v)) || (f->type == 'b' && !json_is_boolean(v)) ||
		    (f->type == 'I' && !json_is_integer(v)))
			return fc_error(err, errlen, "%s\"%s\": expected %s", where, f->key,
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

/* Add a device of @cls with configuration @config to the VM's list. */
static int fc_add(struct fc_config *r, const struct device_class *cls, const void *config,
		  char *err, size_t errlen)
{
	struct error e;

	return vm_config_add(&r->cfg, cls, config, &e) ? fc_error(err, errlen, "%s", e.msg) : 0;
}

/* One TokenBucket object: "size" and "refill_time" (ms) required, "one_time_burst" optional,
 * all non-negative integers. */
static int parse_bucket(json_t *o, const char *where, const char *key,
			struct token_bucket_config *b, char *err, size_t errlen)
{
	json_int_t size, burst = 0, refill;
	char at[160];

	*b = (struct token_bucket_config){ 0 };
	if (!o || json_is_null(o))
		return 0;
	snprintf(at, sizeof(at), "%s\"%s\": ", where, key);
	if (fc_unpack(o, at, FC_FIELDS({ "size", 'I', true, &size },
				       { "one_time_burst", 'I', false, &burst },
				       { "refill_time", 'I', true, &refill }), err, errlen))
		return -EINVAL;
	if (size < 0 || burst < 0 || refill < 0)
		return fc_error(err, errlen, "%s\"%s\": %lld is negative", at,
				size < 0 ? "size" : burst < 0 ? "one_time_burst" : "refill_time",
				(long long)(size < 0 ? size : burst < 0 ? burst : refill));
	*b = (struct token_bucket_config){ .size = (uint64_t)size, .one_time_burst = (uint64_t)burst,
					   .refill_ms = (uint64_t)refill };
	return 0;
}

int fc_parse_rate_limit(json_t *o, const char *where, struct rate_limit *l, char *err,
			size_t errlen)
{
	json_t *bw = NULL, *ops = NULL;

	*l = (struct rate_limit){ 0 };
	if (!o || json_is_null(o))
		return 0;
	if (fc_unpack(o, where, FC_FIELDS({ "bandwidth", 'o', false, &bw }, { "ops", 'o', false, &ops }),
		      err, errlen) ||
	    parse_bucket(bw, where, "bandwidth", &l->bandwidth, err, errlen) ||
	    parse_bucket(ops, where, "ops", &l->ops, err, errlen))
		return -EINVAL;
	return 0;
}

/* A key kiln knows but does not implement yet: fine when absent or null. */
static int unimplemented(const json_t *v, const char *where, const char *key, char *err,
			 size_t errlen)
{
	if (!v || json_is_null(v))
		return 0;
	return fc_error(err, errlen, "%s\"%s\": not implemented by kiln yet (leave it out or null)",
			where, key);
}

static int parse_boot_source(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	const char *where = "\"boot-source\": ";

	if (!o || json_is_null(o))
		return 0; /* fc_config_parse() decides whether that is fine */
	if (fc_unpack(o, where, FC_FIELDS({ "kernel_image_path", 's', true, &r->cfg.kernel_path },
					  { "boot_args", 's', false, &r->cfg.cmdline },
					  { "initrd_path", 's', false, &r->cfg.initrd_path }), err, errlen))
		return -EINVAL;
	return 0;
}

static int parse_machine(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	json_int_t vcpus, mib;
	int smt = 0, dirty = 0;
	const char *tmpl = NULL, *huge = NULL;
	const char *where = "\"machine-config\": ";

	if (!o || json_is_null(o))
		return 0;
	if (fc_unpack(o, where, FC_FIELDS({ "vcpu_count", 'I', true, &vcpus },
					  { "mem_size_mib", 'I', true, &mib }, { "smt", 'b', false, &smt },
					  { "track_dirty_pages", 'b', false, &dirty },
					  { "cpu_template", 's', false, &tmpl },
					  { "huge_pages", 's', false, &huge }), err, errlen))
		return -EINVAL;
	if (vcpus < 1 || vcpus > FC_MAX_VCPUS)
		return fc_error(err, errlen, "%s\"vcpu_count\": %lld is not in [1, %d]", where,
				(long long)vcpus, FC_MAX_VCPUS);
	if (mib == 0)
		return fc_error(err, errlen, "%s\"mem_size_mib\": 0: " FC_ERR_MEM_SIZE, where);
	if (mib < 1 || mib > (1ll << 30))
		return fc_error(err, errlen, "%s\"mem_size_mib\": %lld is not a size in MiB", where,
				(long long)mib);
	if (smt && vcpus > 1 && vcpus % 2)
		return fc_error(err, errlen, "%s\"vcpu_count\": %lld with \"smt\": true: " FC_ERR_VCPUS,
				where, (long long)vcpus);
	if (tmpl && x86_cpu_template_parse(tmpl, &r->cfg.cpu_template))
		return fc_error(err, errlen, "%s\"cpu_template\": unknown variant `%s`, expected one "
				"of `C3`, `T2`, `T2S`, `None`, `T2CL`, `T2A`", where, tmpl);
	if (huge && strcmp(huge, "None") && strcmp(huge, "2M"))
		return fc_error(err, errlen, "%s\"huge_pages\": unknown variant `%s`, expected `None` "
				"or `2M`", where, huge);
	r->cfg.huge_pages = huge && !strcmp(huge, "2M");
	if (r->cfg.huge_pages && mib % 2)
		return fc_error(err, errlen, "%s\"mem_size_mib\": %lld: " FC_ERR_MEM_SIZE " (2 MiB "
				"huge pages)", where, (long long)mib);
	r->cfg.nr_cpus = (unsigned)vcpus;
	r->cfg.smt = smt;
	r->cfg.mem_bytes = (uint64_t)mib << 20;
	r->cfg.track_dirty_pages = dirty;
	return 0;
}

/* "cpu-config": a custom CPU template, which replaces machine-config's static one. */
static int parse_cpu_config(json_t *v, struct fc_config *r, char *err, size_t errlen)
{
	char why[500];

	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v))
		return fc_error(err, errlen, "\"cpu-config\": \"%.200s\": a template file's path is "
				"read only when --config-file is loaded", json_string_value(v));
	if (!json_is_object(v))
		return fc_error(err, errlen, "\"cpu-config\": expected a CPU template (an object) or, "
				"in --config-file, its file's path");
	if (x86_template_parse(v, &r->cpu_config, why, sizeof(why)))
		return fc_error(err, errlen, "\"cpu-config\": %s", why);
	r->cfg.custom_template = r->cpu_config;
	r->cfg.cpu_template = X86_CPU_TEMPLATE_NONE;
	return 0;
}

int fc_config_read_cpu_config(json_t *root, char *err, size_t errlen)
{
	json_t *v = json_object_get(root, "cpu-config"), *t;
	json_error_t e;
	int ret = 0;

	if (!json_is_string(v))
		return 0;
	t = json_load_file(json_string_value(v), JSON_REJECT_DUPLICATES, &e);
	if (!t && e.line > 0)
		return fc_error(err, errlen, "\"cpu-config\": %.250s: line %d: %s",
				json_string_value(v), e.line, e.text);
	if (!t)
		return fc_error(err, errlen, "\"cpu-config\": %s", e.text);
	if (!json_is_object(t))
		ret = fc_error(err, errlen, "\"cpu-config\": %.250s: expected a CPU template (a JSON "
			       "object)", json_string_value(v));
	else if (json_object_set(root, "cpu-config", t))
		ret = fc_error(err, errlen, "\"cpu-config\": out of memory");
	json_decref(t);
	return ret;
}

/* One drive into @d; *root set for the root device, *partuuid to its PARTUUID or NULL. */
static int parse_drive(json_t *o, unsigned i, struct disk_config *d, bool *root,
		       const char **partuuid, char *err, size_t errlen)
{
	json_t *limiter = NULL, *sock = NULL;
	const char *cache = NULL, *engine = NULL, *id, *path = NULL;
	int is_root, ro = 0;
	char where[48], at[80];

	*root = false;
	*partuuid = NULL;
	snprintf(where, sizeof(where), "\"drives\"[%u]: ", i);
	if (fc_unpack(o, where, FC_FIELDS({ "drive_id", 's', true, &id },
					  { "is_root_device", 'b', true, &is_root },
					  { "path_on_host", 's', false, &path },
					  { "is_read_only", 'b', false, &ro }, { "cache_type", 's', false, &cache },
					  { "io_engine", 's', false, &engine },
					  { "partuuid", 's', false, partuuid },
					  { "rate_limiter", 'o', false, &limiter },
					  { "socket", 'o', false, &sock }), err, errlen))
		return -EINVAL;
	if (!fc_valid_id(id, 64, "_"))
		return fc_error(err, errlen, "%s\"drive_id\": \"%s\" is not 1-64 of A-Z a-z 0-9 _",
				where, id);
	if (unimplemented(sock, where, "socket", err, errlen))
		return -EINVAL;
	*d = (struct disk_config){ .id = id, .readonly = ro, .path = path };
	snprintf(at, sizeof(at), "%s\"rate_limiter\": ", where);
	if (fc_parse_rate_limit(limiter, at, &d->limit, err, errlen))
		return -EINVAL;
	if (!d->path)
		return fc_error(err, errlen, "%s\"path_on_host\" is required", where);
	if (cache && strcmp(cache, "Unsafe") && strcmp(cache, "Writeback"))
		return fc_error(err, errlen, "%s\"cache_type\": \"%s\" is not Unsafe or Writeback",
				where, cache);
	if (engine && strcmp(engine, "Sync") && strcmp(engine, "Async"))
		return fc_error(err, errlen, "%s\"io_engine\": \"%s\" is not Sync or Async", where,
				engine);
	d->engine = engine && !strcmp(engine, "Async") ? BLOCK_ENGINE_IO_URING : BLOCK_ENGINE_SYNC;
	d->cache_unsafe = !cache || !strcmp(cache, "Unsafe"); /* Firecracker's default */
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
		return fc_error(err, errlen, "\"%s\": expected an array", key);
	if (json_array_size(a) > VM_MAX_VIRTIO)
		return fc_error(err, errlen, "\"%s\": %zu entries, more than %d", key,
				json_array_size(a), VM_MAX_VIRTIO);
	return (int)json_array_size(a);
}

/* The drives, the root device first; its root= parameter is appended to the command line. */
static int parse_drives(json_t *a, struct fc_config *r, char *err, size_t errlen)
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
			return fc_error(err, errlen, "\"drives\": A root block device already "
					"exists! (\"%s\" and \"%s\" are both root devices)", root_id,
					d.id);
		if (root) {
			root_id = d.id;
			partuuid = uuid;
			memmove(&r->disk[1], &r->disk[0], r->nr_disks * sizeof(d));
			r->disk[0] = d;
		} else {
			r->disk[r->nr_disks] = d;
		}
		r->nr_disks++;
	}
	for (unsigned k = 0; k < r->nr_disks; k++)
		if (fc_add(r, &virtio_blk_class, &r->disk[k], err, errlen))
			return -EINVAL;
	if (root_id) {
		size_t n = strlen(r->cfg.cmdline) + 64 + (partuuid ? strlen(partuuid) : 0);

		r->cmdline = malloc(n);
		if (!r->cmdline)
			return fc_error(err, errlen, "out of memory");
		snprintf(r->cmdline, n, "%s root=%s%s %s", r->cfg.cmdline,
			 partuuid ? "PARTUUID=" : "/dev/vda", partuuid ? partuuid : "",
			 r->disk[0].readonly ? "ro" : "rw");
		r->cfg.cmdline = r->cmdline;
	}
	return 0;
}

static int parse_nics(json_t *a, struct fc_config *r, char *err, size_t errlen)
{
	size_t i;
	json_t *o;
	int count = device_list(a, "network-interfaces", err, errlen);

	if (count <= 0)
		return count; /* nothing to add, or -EINVAL */
	json_array_foreach(a, i, o) {
		struct net_config *n = &r->net[r->nr_nets];
		json_t *mtu = NULL, *rx = NULL, *tx = NULL;
		const char *text = NULL;
		char where[48], at[80];

		snprintf(where, sizeof(where), "\"network-interfaces\"[%zu]: ", i);
		*n = (struct net_config){ .kind = NET_TAP };
		if (fc_unpack(o, where, FC_FIELDS({ "iface_id", 's', true, &n->id },
						  { "host_dev_name", 's', true, &n->tap },
						  { "guest_mac", 's', false, &text }, { "mtu", 'o', false, &mtu },
						  { "rx_rate_limiter", 'o', false, &rx },
						  { "tx_rate_limiter", 'o', false, &tx }), err, errlen))
			return -EINVAL;
		if (!fc_valid_id(n->id, 64, "_"))
			return fc_error(err, errlen, "%s\"iface_id\": \"%s\" is not 1-64 of A-Z a-z "
					"0-9 _", where, n->id);
		/* Firecracker holds each interface's tap open: a second one cannot open it. */
		for (unsigned k = 0; k < r->nr_nets; k++)
			if (!strcmp(r->net[k].tap, n->tap))
				return fc_error(err, errlen, "%s\"host_dev_name\": Could not create the "
						"network device: tap %s is used by \"%s\" already",
						where, n->tap, r->net[k].id);
		if (mtu && !json_is_null(mtu)) {
			if (!json_is_integer(mtu) || json_integer_value(mtu) < 68 ||
			    json_integer_value(mtu) > 65535)
				return fc_error(err, errlen, "%s\"mtu\": not an MTU in [68, 65535]",
						where);
			n->mtu = (uint16_t)json_integer_value(mtu);
		}
		snprintf(at, sizeof(at), "%s\"rx_rate_limiter\": ", where);
		if (fc_parse_rate_limit(rx, at, &n->rx_limit, err, errlen))
			return -EINVAL;
		snprintf(at, sizeof(at), "%s\"tx_rate_limiter\": ", where);
		if (fc_parse_rate_limit(tx, at, &n->tx_limit, err, errlen))
			return -EINVAL;
		if (text && net_parse_mac(text, n->mac))
			return fc_error(err, errlen, "%s\"guest_mac\": \"%s\" is not a unicast MAC "
					"address like 06:00:AC:10:00:02", where, text);
		n->mac_set = text != NULL;
		for (unsigned k = 0; n->mac_set && k < r->nr_nets; k++)
			if (r->net[k].mac_set && !memcmp(r->net[k].mac, n->mac, sizeof(n->mac)))
				return fc_error(err, errlen, "%s\"guest_mac\": The MAC address is already "
						"in use: %02x:%02x:%02x:%02x:%02x:%02x", where,
						n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4],
						n->mac[5]);
		if (fc_add(r, &virtio_net_class, n, err, errlen))
			return -EINVAL;
		r->nr_nets++;
	}
	return 0;
}

static int parse_logger(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	const char *level = NULL, *path = NULL, *module = NULL;
	int show_level = -1, show_origin = -1;
	const char *where = "\"logger\": ";

	if (!o || json_is_null(o))
		return 0;
	if (fc_unpack(o, where, FC_FIELDS({ "level", 's', false, &level },
					  { "log_path", 's', false, &path },
					  { "show_level", 'b', false, &show_level },
					  { "show_log_origin", 'b', false, &show_origin },
					  { "module", 's', false, &module }), err, errlen))
		return -EINVAL;
	r->level_set = level != NULL;
	if (level && fc_parse_level(level, &r->level))
		return fc_error(err, errlen, "%s\"level\": \"%s\" is not Error, Warning, Info, Debug, "
				"Trace or Off", where, level);
	r->log_show_level = show_level;
	r->log_show_origin = show_origin;
	r->log_module = module;
	if (path)
		r->log_path = path;
	return 0;
}

/* "mmds-config": which interfaces reach MMDS, at which link-local address, V1 or V2. Needs the
 * interfaces parsed first. */
static int parse_mmds_config(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	const char *where = "\"mmds-config\": ", *version = NULL, *ip = MMDS_DEFAULT_ADDR;
	json_t *nics, *name;
	int compat = 0;
	struct in_addr addr;
	size_t i;

	if (!o || json_is_null(o))
		return 0;
	if (fc_unpack(o, where, FC_FIELDS({ "network_interfaces", 'o', true, &nics },
					  { "version", 's', false, &version },
					  { "ipv4_address", 's', false, &ip },
					  { "imds_compat", 'b', false, &compat }), err, errlen))
		return -EINVAL;
	if (version && strcmp(version, "V1") && strcmp(version, "V2"))
		return fc_error(err, errlen, "%s\"version\": unknown variant `%s`, expected `V1` "
				"or `V2`", where, version);
	/* 169.254.0.0/16 without its first and last /24, as Firecracker. */
	if (inet_pton(AF_INET, ip, &addr) != 1 || (ntohl(addr.s_addr) >> 16) != 0xa9fe ||
	    ((ntohl(addr.s_addr) >> 8) & 0xff) == 0 || ((ntohl(addr.s_addr) >> 8) & 0xff) == 0xff)
		return fc_error(err, errlen, "The MMDS IPv4 address is not link local.");
	if (!json_is_array(nics) || !json_array_size(nics))
		return fc_error(err, errlen, "The list of network interface IDs that allow forwarding "
				"MMDS requests is empty.");
	json_array_foreach(nics, i, name) {
		unsigned k = 0;

		while (k < r->nr_nets &&
		       (!json_is_string(name) || strcmp(r->net[k].id, json_string_value(name))))
			k++;
		if (k == r->nr_nets)
			return fc_error(err, errlen, "The list of network interface IDs provided contains "
					"at least one ID that does not correspond to any existing "
					"network interface.");
		r->mmds_nics |= 1u << k;
	}
	r->mmds_v2 = version && !strcmp(version, "V2");
	r->mmds_imds_compat = compat;
	r->mmds_ip = addr.s_addr;
	return 0;
}

static int parse_vsock(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	const char *where = "\"vsock\": ", *id = NULL;
	json_int_t cid;

	if (!o || json_is_null(o))
		return 0;
	if (fc_unpack(o, where, FC_FIELDS({ "guest_cid", 'I', true, &cid },
					  { "uds_path", 's', true, &r->vsock.uds_path },
					  { "vsock_id", 's', false, &id }), err, errlen))
		return -EINVAL;
	if (cid < 3 || cid > (json_int_t)UINT32_MAX - 1)
		return fc_error(err, errlen, "%s\"guest_cid\": %lld is not in [3, %u]", where,
				(long long)cid, UINT32_MAX - 1);
	if (!*r->vsock.uds_path)
		return fc_error(err, errlen, "%s\"uds_path\" is empty", where);
	r->vsock.guest_cid = (uint64_t)cid;
	return fc_add(r, &virtio_vsock_class, &r->vsock, err, errlen);
}

static int parse_balloon(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	const char *where = "\"balloon\": ";
	json_int_t mib, interval = 0;
	int deflate, reporting = 0, hinting = 0;

	if (!o || json_is_null(o))
		return 0;
	if (fc_unpack(o, where, FC_FIELDS({ "amount_mib", 'I', true, &mib },
					  { "deflate_on_oom", 'b', true, &deflate },
					  { "stats_polling_interval_s", 'I', false, &interval },
					  { "free_page_reporting", 'b', false, &reporting },
					  { "free_page_hinting", 'b', false, &hinting }),
		      err, errlen))
		return -EINVAL;
	if (mib < 0 || (uint64_t)mib << 20 > r->cfg.mem_bytes)
		return fc_error(err, errlen, "%s\"amount_mib\": %lld is not in [0, %llu] (the guest's "
				"memory)", where, (long long)mib,
				(unsigned long long)(r->cfg.mem_bytes >> 20));
	if (interval < 0 || interval > 86400)
		return fc_error(err, errlen, "%s\"stats_polling_interval_s\": %lld is not in [0, 86400]",
				where, (long long)interval);
	r->balloon = (struct balloon_config){ .target_bytes = (uint64_t)mib << 20,
						  .deflate_on_oom = deflate,
						  .free_page_reporting = reporting,
						  .free_page_hinting = hinting,
						  .stats_interval_s = (unsigned)interval };
	return fc_add(r, &virtio_balloon_class, &r->balloon, err, errlen);
}

/* "serial": where the serial console's output goes (Firecracker's SerialConfig). */
static int parse_serial(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	json_t *limiter = NULL;
	const char *where = "\"serial\": ";

	if (!o || json_is_null(o))
		return 0;
	if (fc_unpack(o, where, FC_FIELDS({ "serial_out_path", 's', false, &r->cfg.serial_out_path },
					  { "rate_limiter", 'o', false, &limiter }), err, errlen))
		return -EINVAL;
	return parse_bucket(limiter, where, "rate_limiter", &r->cfg.serial_out_limit, err, errlen);
}

static int parse_metrics(json_t *o, struct fc_config *r, char *err, size_t errlen)
{
	if (!o || json_is_null(o))
		return 0;
	return fc_unpack(o, "\"metrics\": ", FC_FIELDS({ "metrics_path", 's', true, &r->metrics_path }),
			 err, errlen);
}

int fc_config_parse(json_t *root, bool need_boot_source, struct fc_config *r, char *err,
		    size_t errlen)
{
	json_t *boot = NULL, *mc = NULL, *drives = NULL, *nics = NULL, *entropy = NULL,
	       *logger = NULL, *metrics = NULL, *vsock = NULL, *balloon = NULL, *mmds = NULL,
	       *cpu = NULL, *hotplug = NULL, *pmem = NULL, *limiter = NULL, *serial = NULL;
	struct error e;

	*r = (struct fc_config){ .log_show_level = -1, .log_show_origin = -1,
				 .cfg = { .nr_cpus = 1,
					  .mem_bytes = (uint64_t)FC_DEFAULT_MEM_MIB << 20,
					  .transport = VM_TRANSPORT_MMIO,
					  .cmdline = FC_DEFAULT_CMDLINE } };
	if (fc_unpack(root, "", FC_FIELDS({ "boot-source", 'o', false, &boot },
					  { "machine-config", 'o', false, &mc },
					  { "drives", 'o', false, &drives },
					  { "network-interfaces", 'o', false, &nics },
					  { "entropy", 'o', false, &entropy },
					  { "logger", 'o', false, &logger },
					  { "metrics", 'o', false, &metrics },
					  { "vsock", 'o', false, &vsock },
					  { "balloon", 'o', false, &balloon },
					  { "mmds-config", 'o', false, &mmds },
					  { "cpu-config", 'o', false, &cpu },
					  { "memory-hotplug", 'o', false, &hotplug },
					  { "pmem", 'o', false, &pmem },
					  { "serial", 'o', false, &serial }), err, errlen))
		return -EINVAL;
	if (pmem && json_is_array(pmem) && !json_array_size(pmem))
		pmem = NULL;
	if (entropy && !json_is_null(entropy) &&
	    fc_unpack(entropy, "\"entropy\": ", FC_FIELDS({ "rate_limiter", 'o', false, &limiter }),
		      err, errlen))
		return -EINVAL;
	if (need_boot_source && (!boot || json_is_null(boot)))
		return fc_error(err, errlen, "\"boot-source\" is required");
	if (parse_boot_source(boot, r, err, errlen) || parse_machine(mc, r, err, errlen) ||
	    parse_cpu_config(cpu, r, err, errlen) ||
	    parse_drives(drives, r, err, errlen) || parse_nics(nics, r, err, errlen) ||
	    parse_logger(logger, r, err, errlen) || parse_metrics(metrics, r, err, errlen) ||
	    parse_serial(serial, r, err, errlen) ||
	    parse_mmds_config(mmds, r, err, errlen) ||
	    fc_parse_rate_limit(limiter, "\"entropy\": \"rate_limiter\": ", &r->rng.limit, err,
				errlen) ||
	    parse_vsock(vsock, r, err, errlen) ||
	    parse_balloon(balloon, r, err, errlen) ||
	    unimplemented(hotplug, "", "memory-hotplug", err, errlen) ||
	    unimplemented(pmem, "", "pmem", err, errlen))
		return -EINVAL;
	if (entropy && !json_is_null(entropy) && fc_add(r, &virtio_rng_class, &r->rng, err, errlen))
		return -EINVAL;
	if (vm_config_check(&r->cfg, &e))
		return fc_error(err, errlen, "%s", e.msg);
	return 0;
}

int fc_open_output(const char *path)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);

	return fd < 0 ? -errno : fd;
}

void fc_config_release(struct fc_config *c)
{
	free(c->cmdline);
	c->cmdline = NULL;
	x86_template_free(c->cpu_config);
	c->cpu_config = NULL;
	c->cfg.custom_template = NULL;
}
