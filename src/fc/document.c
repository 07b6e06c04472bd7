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
	/* Firecracker shows a static template only when one is set: "None" is no template. */
	tmpl = json_string_value(json_object_get(mc, "cpu_template"));
	if (tmpl && !strcmp(tmpl, "None"))
		json_object_del(mc, "cpu_template");
	return mc;
}

void fc_get_vm_config(struct fc_request *rq)
{
	static const char *const keys[] = { "balloon", "drives", "boot-source", "cpu-config",
					    "logger", "machine-config", "metrics", "mmds-config",
					    "network-interfaces", "vsock", "entropy" };
	json_t *out = json_object();

	for (unsigned i = 0; out && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(rq->api->doc, keys[i]);

		if (!strcmp(keys[i], "machine-config"))
			v = fc_doc_machine_config(rq->api);
		else if (!strcmp(keys[i], "logger") || !strcmp(keys[i], "metrics"))
			v = json_null(); /* as Firecracker: not part of the VM's description */
		else if (!v)
			v = !strcmp(keys[i], "drives") || !strcmp(keys[i], "network-interfaces")
				    ? json_array() : json_null();
		else
			json_incref(v);
		json_object_set_new(out, keys[i], v);
	}
	fc_reply_json(rq, out);
}
