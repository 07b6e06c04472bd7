/* SPDX-License-Identifier: Apache-2.0 */
/* document — the configuration the API builds, see fc_internal.h.
 *
 * The configuration the API builds is one FullVmConfiguration document, the format of
 * --config-file. A PUT or PATCH applies to a copy, the copy goes through the same parser as
 * the file (fc_config_parse), and only a copy that passes replaces the document: a refused
 * request changes nothing. InstanceStart builds the VM from the document.
 */
#include <errno.h>
#include <string.h>

#include "fc_internal.h"
#include "kiln/fc.h"

void fc_doc_commit(struct fc_request *rq, json_t *candidate, const char *prefix,
		   fc_config_check check)
{
	struct fc_config c;
	char err[600];

	if (!candidate) {
		fc_reply_fault(rq, "out of memory");
		return;
	}
	if (fc_config_parse(candidate, false, &c, err, sizeof(err)) ||
	    (check && check(rq, &c, err, sizeof(err)))) {
		fc_reply_fault(rq, "%s%s", prefix, err);
		json_decref(candidate);
	} else {
		json_decref(rq->api->doc);
		rq->api->doc = candidate;
		fc_reply_ok(rq);
	}
	fc_config_release(&c);
}

json_t *fc_doc_with(const struct fc_api *api, const char *key, json_t *value)
{
	json_t *copy = json_deep_copy(api->doc);

	if (!copy || json_object_set_new(copy, key, value)) {
		json_decref(copy);
		return NULL;
	}
	return copy;
}

json_t *fc_doc_with_entry(const struct fc_request *rq, const char *key, const char *id_key)
{
	json_t *copy = json_deep_copy(rq->api->doc), *list, *entry;
	size_t i;

	if (!copy)
		return NULL;
	list = json_object_get(copy, key);
	if (!json_is_array(list)) {
		list = json_array();
		if (json_object_set_new(copy, key, list)) {
			json_decref(copy);
			return NULL;
		}
	}
	json_array_foreach(list, i, entry) {
		const char *id = json_string_value(json_object_get(entry, id_key));

		if (id && !strcmp(id, rq->id))
			return json_array_set(list, i, rq->body) ? (json_decref(copy), NULL) : copy;
	}
	return json_array_append(list, rq->body) ? (json_decref(copy), NULL) : copy;
}

json_t *fc_doc_entry(const struct fc_request *rq, const char *key, const char *id_key)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(rq->api->doc, key), i, e)
		if (!strcmp(json_string_value(json_object_get(e, id_key)) ?: "", rq->id))
			return e;
	return NULL;
}

int fc_doc_merge(json_t *into, const json_t *from)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)from, key, v)
		if (!json_is_null(v) && json_object_set(into, key, v))
			return -ENOMEM;
	return 0;
}

json_t *fc_doc_machine_config(const struct fc_api *api)
{
	json_t *mc = json_pack("{s:i, s:i, s:b, s:b, s:s}", "vcpu_count", 1, "mem_size_mib",
			       FC_DEFAULT_MEM_MIB, "smt", 0, "track_dirty_pages", 0, "huge_pages",
			       "None");
	json_t *set = json_object_get(api->doc, "machine-config");
	const char *tmpl;

	if (mc && json_is_object(set) && fc_doc_merge(mc, set)) {
		json_decref(mc);
		return NULL;
	}
	/* Firecracker shows a static template only when one is set: "None" is no template, and a
	 * custom template replaces it. */
	tmpl = json_string_value(json_object_get(mc, "cpu_template"));
	if ((tmpl && !strcmp(tmpl, "None")) ||
	    json_is_object(json_object_get(api->doc, "cpu-config")))
		json_object_del(mc, "cpu_template");
	return mc;
}

/* @set (borrowed; an object, or NULL) over Firecracker's defaults @defaults (JSON text, ' for
 * "), in Firecracker's key order: a new reference, or NULL when out of memory. */
static json_t *with_defaults(const json_t *set, const char *defaults)
{
	char text[512];
	json_t *o;

	snprintf(text, sizeof(text), "%s", defaults);
	for (char *p = text; *p; p++)
		if (*p == '\'')
			*p = '"';
	o = json_loads(text, 0, NULL);
	if (o && json_is_object(set))
		json_object_update(o, (json_t *)set);
	return o;
}

/* A token bucket as Firecracker shows one: null when it is off (size or refill_time 0), else
 * every key, "one_time_burst" null when 0. A new reference. */
static json_t *shown_bucket(const json_t *b)
{
	json_int_t size = json_integer_value(json_object_get(b, "size"));
	json_int_t burst = json_integer_value(json_object_get(b, "one_time_burst"));
	json_int_t refill = json_integer_value(json_object_get(b, "refill_time"));

	if (!size || !refill)
		return json_null();
	return json_pack("{s:I, s:o, s:I}", "size", size, "one_time_burst",
			 burst ? json_integer(burst) : json_null(), "refill_time", refill);
}

/* Rate limiter @key of object @o (borrowed, or NULL) as Firecracker's GET /vm/config shows it
 * (RateLimiterConfig::into_option of the live limiter): both buckets, null when neither is on. */
static void show_limiter(json_t *o, const char *key)
{
	json_t *rl = json_object_get(o, key), *bw, *ops;

	if (!json_is_object(rl))
		return;
	bw = shown_bucket(json_object_get(rl, "bandwidth"));
	ops = shown_bucket(json_object_get(rl, "ops"));
	if (json_is_null(bw) && json_is_null(ops)) {
		json_object_set_new(o, key, json_null());
		return;
	}
	json_object_set_new(o, key, json_pack("{s:o, s:o}", "bandwidth", bw, "ops", ops));
}

/* Every entry of list @a (borrowed, or NULL) over @defaults: a new array. */
static json_t *list_with_defaults(const json_t *a, const char *defaults)
{
	json_t *out = json_array(), *e;
	size_t i;

	json_array_foreach(a, i, e) {
		json_t *shown = with_defaults(e, defaults);

		show_limiter(shown, "rate_limiter");
		show_limiter(shown, "rx_rate_limiter");
		show_limiter(shown, "tx_rate_limiter");
		json_array_append_new(out, shown);
	}
	return out;
}

/* GET /vm/config: the document with every default Firecracker fills in, in its key order, and
 * rate limiters as the devices' limiters show them. */
void fc_get_vm_config(struct fc_request *rq)
{
	static const char *const keys[] = { "balloon", "drives", "boot-source", "cpu-config",
					    "logger", "machine-config", "metrics", "mmds-config",
					    "network-interfaces", "vsock", "entropy", "pmem",
					    "memory-hotplug" };
	json_t *doc = rq->api->doc, *out = json_object();

	for (unsigned i = 0; out && i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *k = keys[i];
		json_t *v = json_object_get(doc, k);

		if (!strcmp(k, "machine-config"))
			v = fc_doc_machine_config(rq->api);
		else if (!strcmp(k, "logger") || !strcmp(k, "metrics"))
			v = json_null(); /* as Firecracker: not part of the VM's description */
		else if (!strcmp(k, "drives"))
			v = list_with_defaults(v, "{'drive_id':'','partuuid':null,'is_root_device':false,"
					       "'cache_type':'Unsafe','is_read_only':false,"
					       "'path_on_host':null,'rate_limiter':null,"
					       "'io_engine':'Sync','socket':null}");
		else if (!strcmp(k, "network-interfaces"))
			v = list_with_defaults(v, "{'iface_id':'','host_dev_name':'','guest_mac':null,"
					       "'rx_rate_limiter':null,'tx_rate_limiter':null,"
					       "'mtu':null}");
		else if (!strcmp(k, "boot-source"))
			v = with_defaults(v, "{'kernel_image_path':'','initrd_path':null,"
					  "'boot_args':null}");
		else if (!strcmp(k, "balloon") && json_is_object(v))
			v = with_defaults(v, "{'amount_mib':0,'deflate_on_oom':false,"
					  "'stats_polling_interval_s':0,'free_page_hinting':false,"
					  "'free_page_reporting':false}");
		else if (!strcmp(k, "entropy") && json_is_object(v)) {
			v = with_defaults(v, "{'rate_limiter':null}");
			show_limiter(v, "rate_limiter");
		} else if (!strcmp(k, "mmds-config") && json_is_object(v))
			v = with_defaults(v, "{'version':'V1','ipv4_address':'" MMDS_DEFAULT_ADDR "',"
					  "'network_interfaces':[],'imds_compat':false}");
		else if (!strcmp(k, "pmem"))
			v = json_array();
		else
			v = v ? json_incref(v) : json_null();
		json_object_set_new(out, k, v);
	}
	fc_reply_json(rq, out);
}
