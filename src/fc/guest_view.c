/* SPDX-License-Identifier: Apache-2.0 */
/* guest_view — what a guest sees of a Firecracker configuration, and the configuration a
 * migration's destination runs with, see fc_internal.h.
 *
 * A FullVmConfiguration mixes what the guest sees (its vCPUs and memory, its devices in order
 * with the settings a driver can observe) with what the host provides for them (paths of
 * files, taps and sockets, I/O engines, rate limiters, the logger, the metrics). A migration
 * stream carries its source's whole document, and its sender is a network peer: the
 * destination opens only the host resources its own operator named, and checks that the
 * stream describes the same guest, key by key with Firecracker's defaults filled in.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fc_internal.h"
#include "kiln/fc.h"

#define LOCAL "--config-file"

enum guest_shape {
	GUEST_ONE,       /* an object; absent, every key has its default */
	GUEST_OPTIONAL,  /* an object or none, which the guest sees too */
	GUEST_LIST,      /* objects named by id_key, in order */
	GUEST_NONE,      /* nothing the guest sees: only host resources */
	GUEST_WHOLE,     /* a value the guest sees as a whole (absent: none) */
};

/* A key the guest sees, and its value (JSON) when absent or null; NULL: absence is a value. */
struct guest_key {
	const char *key;
	const char *absent;
	bool fold;                  /* compared regardless of case (a MAC address) */
};

struct guest_section {
	const char *name;
	enum guest_shape shape;
	const char *id_key;         /* GUEST_LIST */
	const char *resource;       /* the key naming the host resource a restore opens, if any */
	struct guest_key keys[6];   /* up to the first with key NULL */
};

#define KEY(k, dflt) { .key = k, .absent = dflt }

static const struct guest_section sections[] = {
	{ .name = "machine-config", .shape = GUEST_ONE,
	  .keys = { KEY("vcpu_count", "1"), KEY("mem_size_mib", "128"), KEY("smt", "false"),
		    KEY("cpu_template", "\"None\"") } },
	{ .name = "cpu-config", .shape = GUEST_WHOLE },
	{ .name = "boot-source", .shape = GUEST_ONE,
	  .keys = { KEY("boot_args", "\"" FC_DEFAULT_CMDLINE "\"") } },
	{ .name = "drives", .shape = GUEST_LIST, .id_key = "drive_id", .resource = "path_on_host",
	  .keys = { KEY("is_root_device", "false"), KEY("is_read_only", "false"),
		    KEY("cache_type", "\"Unsafe\""), KEY("partuuid", NULL) } },
	{ .name = "network-interfaces", .shape = GUEST_LIST, .id_key = "iface_id",
	  .resource = "host_dev_name", .keys = { { .key = "guest_mac", .fold = true } } },
	{ .name = "vsock", .shape = GUEST_OPTIONAL, .resource = "uds_path",
	  .keys = { KEY("guest_cid", NULL) } },
	{ .name = "balloon", .shape = GUEST_OPTIONAL,
	  .keys = { KEY("amount_mib", NULL), KEY("deflate_on_oom", NULL),
		    KEY("stats_polling_interval_s", "0"), KEY("free_page_reporting", "false"),
		    KEY("free_page_hinting", "false") } },
	{ .name = "entropy", .shape = GUEST_OPTIONAL },
	{ .name = "mmds-config", .shape = GUEST_OPTIONAL,
	  .keys = { KEY("network_interfaces", NULL), KEY("version", "\"V1\""),
		    KEY("ipv4_address", "\"" MMDS_DEFAULT_ADDR "\""), KEY("imds_compat", "false") } },
	{ .name = "logger", .shape = GUEST_NONE, .resource = "log_path" },
	{ .name = "metrics", .shape = GUEST_NONE, .resource = "metrics_path" },
	{ .name = "serial", .shape = GUEST_NONE, .resource = "serial_out_path" },
};

/* Keys of "machine-config" that are the host's business. */
static const char *const machine_host_keys[] = { "track_dirty_pages", "huge_pages" };

/* Member @key of @o, with null as absent (NULL). */
static json_t *member(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_null(v) ? NULL : v;
}

/* @v as short JSON text (ASCII: the stream's strings are the peer's), or "absent". */
static void show(const json_t *v, char *out, size_t len)
{
	char *text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	if (text && strlen(text) > 64)
		snprintf(out, len, "%.60s...", text);
	else
		snprintf(out, len, "%s", v ? (text ? text : "?") : "absent");
	free(text);
}

static bool same(const json_t *a, const json_t *b, bool fold)
{
	if (fold && json_is_string(a) && json_is_string(b))
		return !strcasecmp(json_string_value(a), json_string_value(b));
	return a == b || (a && b && json_equal(a, b));
}

/* Each guest key of objects @s (the stream's) and @l (the operator's), defaults filled in;
 * the first difference is named after @where. */
static int compare_keys(const struct guest_section *sec, const char *where, const json_t *s,
			const json_t *l, char *err, size_t errlen)
{
	for (const struct guest_key *k = sec->keys; k->key; k++) {
		json_t *dflt = k->absent ? json_loads(k->absent, JSON_DECODE_ANY, NULL) : NULL;
		json_t *vs = member(s, k->key) ?: dflt, *vl = member(l, k->key) ?: dflt;
		char a[80], b[80];
		bool equal = same(vs, vl, k->fold);

		show(vs, a, sizeof(a));
		show(vl, b, sizeof(b));
		json_decref(dflt);
		if (!equal)
			return fc_error(err, errlen, "%s: %s is %s in the stream, %s in " LOCAL, where,
					k->key, a, b);
	}
	return 0;
}

/* The id of list entry @e ("" when it has none: fc_config_parse() refuses that). */
static const char *entry_id(const json_t *e, const char *id_key)
{
	return json_string_value(json_object_get(e, id_key)) ?: "";
}

/* The index of the entry of list @a whose @id_key is @id, or -1. */
static int find_entry(const json_t *a, const char *id_key, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e)
		if (!strcmp(entry_id(e, id_key), id))
			return (int)i;
	return -1;
}

/* A list section: the same entries (by id) in the same order, each with the same keys. */
static int compare_list(const struct guest_section *sec, const json_t *s, const json_t *l,
			char *err, size_t errlen)
{
	const json_t *lists[2] = { s, l };
	char where[128];
	size_t i;
	json_t *e;

	for (int side = 0; side < 2; side++) {
		json_array_foreach(lists[side], i, e) {
			const char *id = entry_id(e, sec->id_key);
			int at = find_entry(lists[!side], sec->id_key, id);

			if (at < 0)
				return fc_error(err, errlen, "%s \"%s\": in %s, not in %s", sec->name, id,
						side ? LOCAL : "the stream", side ? "the stream" : LOCAL);
			if (!side && (size_t)at != i)
				return fc_error(err, errlen, "%s \"%s\": entry %zu in the stream, %d in "
						LOCAL, sec->name, id, i + 1, at + 1);
		}
	}
	json_array_foreach(s, i, e) {
		snprintf(where, sizeof(where), "%s \"%s\"", sec->name, entry_id(e, sec->id_key));
		if (compare_keys(sec, where, e, json_array_get(l, i), err, errlen))
			return -EINVAL;
	}
	return 0;
}

int fc_config_guest_match(json_t *stream, json_t *local, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const struct guest_section *sec = &sections[i];
		json_t *s = member(stream, sec->name), *l = member(local, sec->name);

		if (sec->shape == GUEST_LIST && compare_list(sec, s, l, err, errlen))
			return -EINVAL;
		if (sec->shape == GUEST_OPTIONAL && !s != !l)
			return fc_error(err, errlen, "%s: in %s, not in %s", sec->name,
					s ? "the stream" : LOCAL, s ? LOCAL : "the stream");
		if ((sec->shape == GUEST_ONE || sec->shape == GUEST_OPTIONAL) &&
		    compare_keys(sec, sec->name, s, l, err, errlen))
			return -EINVAL;
		if (sec->shape == GUEST_WHOLE && !same(s, l, false)) {
			char a[80], b[80];

			show(s, a, sizeof(a));
			show(l, b, sizeof(b));
			return fc_error(err, errlen, "%s: %s in the stream, %s in " LOCAL, sec->name, a,
					b);
		}
	}
	return 0;
}

/* Without the operator's configuration: refuse a stream that names a host resource. */
static int no_resources(json_t *stream, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const struct guest_section *sec = &sections[i];
		json_t *s = member(stream, sec->name);
		char where[128];

		if (!sec->resource || !s)
			continue;
		if (sec->shape == GUEST_LIST && json_array_size(s))
			snprintf(where, sizeof(where), "%s \"%s\"", sec->name,
				 entry_id(json_array_get(s, 0), sec->id_key));
		else if (sec->shape != GUEST_LIST && member(s, sec->resource))
			snprintf(where, sizeof(where), "%s", sec->name);
		else
			continue;
		return fc_error(err, errlen, "%s: the stream names a host resource (%s); the "
				"destination takes those only from its own " LOCAL, where,
				sec->resource);
	}
	return 0;
}

json_t *fc_config_incoming(json_t *stream, json_t *local, char *err, size_t errlen)
{
	struct fc_config c;
	char why[600];
	json_t *out, *machine;
	int ret = fc_config_parse(stream, false, &c, why, sizeof(why));

	fc_config_release(&c);
	if (ret) {
		fc_error(err, errlen, "the stream's configuration: %s", why);
		return NULL;
	}
	if (local) {
		if (fc_config_guest_match(stream, local, err, errlen))
			return NULL;
		out = json_deep_copy(local);
	} else {
		if (no_resources(stream, err, errlen))
			return NULL;
		out = json_deep_copy(stream);
		machine = json_object_get(out, "machine-config");
		for (size_t i = 0; i < sizeof(machine_host_keys) / sizeof(machine_host_keys[0]); i++)
			json_object_del(machine, machine_host_keys[i]);
		json_object_del(out, "logger");
		json_object_del(out, "metrics");
	}
	if (!out)
		fc_error(err, errlen, "out of memory");
	return out;
}
