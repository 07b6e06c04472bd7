/* SPDX-License-Identifier: Apache-2.0 */
/* resources — the endpoints of the VM's description (Firecracker's api_server/request/:
 * instance_info.rs, version.rs, machine_configuration.rs, cpu_configuration.rs,
 * boot_source.rs, drive.rs, net.rs, entropy.rs, vsock.rs), see fc_internal.h. Before boot
 * each edits the configuration document (document.c); after boot a drive gets a new backing
 * file.
 *
 * A VM has one CPU template, static ("machine-config" "cpu_template") or custom
 * ("cpu-config"), and the one set last wins, as in Firecracker (vmm_config/machine_config.rs:
 * both are its MachineConfig.cpu_template): PUT /cpu-config drops the static one; a PUT or
 * PATCH /machine-config that names a template ("None" included) drops the custom one, and one
 * that names none keeps whichever is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/net_backend.h"
#include "kiln/vm.h"

void fc_get_info(struct fc_request *rq)
{
	struct fc_api *api = rq->api;
	const char *state = !api->vm ? "Not started" : vm_is_paused(api->vm) ? "Paused" : "Running";

	fc_reply_json(rq, json_pack("{s:s, s:s, s:s, s:s}", "id", api->id, "state", state,
				    "vmm_version", KILN_VERSION, "app_name", "kiln"));
}

void fc_get_version(struct fc_request *rq)
{
	fc_reply_json(rq, json_pack("{s:s}", "firecracker_version", KILN_VERSION));
}

void fc_get_machine_config(struct fc_request *rq)
{
	fc_reply_json(rq, fc_doc_machine_config(rq->api));
}

/* The document with machine configuration @mc (reference taken; NULL: out of memory), less
 * the custom CPU template when the request names a static one (a field Firecracker 1.16
 * deprecates: @deprecation is its notice). */
static json_t *with_machine_config(struct fc_request *rq, json_t *mc, const char *deprecation)
{
	json_t *named = json_object_get(rq->body, "cpu_template");
	json_t *doc = mc ? fc_doc_with(rq->api, "machine-config", mc) : NULL;

	if (named && !json_is_null(named)) {
		fc_deprecated(rq, deprecation);
		if (doc)
			json_object_del(doc, "cpu-config");
	}
	return doc;
}

void fc_put_machine_config(struct fc_request *rq)
{
	json_t *named = json_object_get(rq->body, "cpu_template");
	json_t *set = json_object_get(json_object_get(rq->api->doc, "machine-config"),
				      "cpu_template");
	json_t *mc = json_deep_copy(rq->body);

	/* Firecracker's MachineConfigUpdate: no template in the body keeps the one set. */
	if (mc && (!named || json_is_null(named)) && set &&
	    json_object_set(mc, "cpu_template", set)) {
		json_decref(mc);
		mc = NULL;
	}
	fc_doc_commit(rq, with_machine_config(rq, mc, "PUT /machine-config: cpu_template field is "
					       "deprecated."), "Machine config error: ", NULL);
}

void fc_patch_machine_config(struct fc_request *rq)
{
	json_t *mc;

	if (!json_object_size(rq->body)) {
		fc_reply_fault(rq, "Empty PATCH request.");
		return;
	}
	/* Firecracker's MachineConfigUpdate: what the body leaves out or null stays as it was. */
	mc = fc_doc_machine_config(rq->api);
	if (mc && fc_doc_merge(mc, rq->body)) {
		json_decref(mc);
		mc = NULL;
	}
	fc_doc_commit(rq, with_machine_config(rq, mc, "PATCH /machine-config: cpu_template field "
					       "is deprecated."), "Machine config error: ", NULL);
}

/* Whether @path opens with @flags; else -errno and Firecracker's message @what (its text
 * before the I/O error) followed by the error as Rust prints it and the path, as Firecracker's
 * "Error manipulating the backing file: No such file or directory (os error 2) /x". */
static int check_open(const char *what, const char *path, int flags, char *err, size_t errlen)
{
	int fd = path ? open(path, flags | O_CLOEXEC) : -1;

	if (!path)
		return 0;
	if (fd < 0) {
		int ret = -errno;

		snprintf(err, errlen, "%s %s (os error %d) %s", what, strerror(errno), errno, path);
		return ret;
	}
	close(fd);
	return 0;
}

static int boot_files_open(const struct fc_request *rq, const struct fc_config *c, char *err,
			   size_t errlen)
{
	return check_open("The kernel file cannot be opened:", c->cfg.kernel_path, O_RDONLY, err,
			  errlen) ?:
	       check_open("The initrd file cannot be opened due to invalid path or invalid "
			  "permissions.", c->cfg.initrd_path, O_RDONLY, err, errlen);
}

void fc_put_boot_source(struct fc_request *rq)
{
	fc_doc_commit(rq, fc_doc_with(rq->api, "boot-source", json_incref(rq->body)),
		      "Boot source error: ", boot_files_open);
}

/* As Firecracker's parse_put_cpu_config: the body is a custom CPU template, refused as a body
 * that does not deserialize; it replaces any template set before. */
void fc_put_cpu_config(struct fc_request *rq)
{
	struct x86_template *t;
	json_t *doc;
	char err[600];

	if (x86_template_parse(rq->body, &t, err, sizeof(err))) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
		return;
	}
	x86_template_free(t);
	doc = fc_doc_with(rq->api, "cpu-config", json_incref(rq->body));
	json_object_del(json_object_get(doc, "machine-config"), "cpu_template");
	fc_doc_commit(rq, doc, FC_ERR_DESERIALIZE, NULL);
}

void fc_put_entropy(struct fc_request *rq)
{
	fc_doc_commit(rq, fc_doc_with(rq->api, "entropy", json_incref(rq->body)),
		      "Entropy device error: ", NULL);
}

void fc_put_serial(struct fc_request *rq)
{
	fc_doc_commit(rq, fc_doc_with(rq->api, "serial", json_incref(rq->body)),
		      "Serial config error: ", NULL);
}

void fc_put_vsock(struct fc_request *rq)
{
	json_t *id = json_object_get(rq->body, "vsock_id");

	if (id && !json_is_null(id))
		fc_deprecated(rq, "PUT /vsock: vsock_id field is deprecated.");
	fc_doc_commit(rq, fc_doc_with(rq->api, "vsock", json_incref(rq->body)),
		      "Vsock config error: ", NULL);
}

/* The body's @id_key, when it is a string that differs from the path's id. */
static const char *other_id(const struct fc_request *rq, const char *id_key)
{
	const char *id = json_string_value(json_object_get(rq->body, id_key));

	return id && strcmp(id, rq->id) ? id : NULL;
}

static int drive_file_opens(const struct fc_request *rq, const struct fc_config *c, char *err,
			    size_t errlen)
{
	for (unsigned i = 0; i < c->nr_disks; i++)
		if (!strcmp(c->disk[i].id, rq->id))
			return check_open("Unable to create the virtio block device: Virtio "
					  "backend error: Error manipulating the backing file:",
					  c->disk[i].path,
					  c->disk[i].readonly ? O_RDONLY : O_RDWR, err, errlen);
	return 0;
}

void fc_put_drive(struct fc_request *rq)
{
	if (other_id(rq, "drive_id"))
		fc_reply_fault(rq, "The id from the path does not match the id from the body!");
	else
		fc_doc_commit(rq, fc_doc_with_entry(rq, "drives", "drive_id"), "Drive config error: ",
			      drive_file_opens);
}

/* As Firecracker, which opens the tap at PUT: a tap that cannot be opened is refused now. */
static int nic_tap_opens(const struct fc_request *rq, const struct fc_config *c, char *err,
			 size_t errlen)
{
	struct error e;

	for (unsigned i = 0; i < c->nr_nets; i++)
		if (!strcmp(c->net[i].id, rq->id) && net_tap_check(c->net[i].tap, &e))
			return fc_error(err, errlen, "%s", e.msg);
	return 0;
}

void fc_put_nic(struct fc_request *rq)
{
	const char *other = other_id(rq, "iface_id");

	if (other)
		fc_reply_fault(rq, "The id from the path [%s] does not "
			       "match the id from the body [%s]!",
			       rq->id, other);
	else
		fc_doc_commit(rq, fc_doc_with_entry(rq, "network-interfaces", "iface_id"),
			      "Network config error: ", nic_tap_opens);
}

/* A PATCH's "rate_limiter" (Firecracker's RateLimiterUpdate): a bucket given replaces the one in
 * force (size or refill_time 0 turns it off), a bucket absent or null stays as it is. The
 * merged object, the document's next value, in *@merged (a new reference), its limits in @l.
 * Returns 0, or -EINVAL with a message in @err (nothing changed). */
static int merge_limit(json_t *entry, const char *key, json_t *patch, json_t **merged,
		       struct rate_limit *l, unsigned *buckets, char *err, size_t errlen)
{
	json_t *cur = json_object_get(entry, key);
	char where[48];

	*merged = NULL;
	*buckets = 0;
	if (!patch || json_is_null(patch))
		return 0;
	snprintf(where, sizeof(where), "\"%s\": ", key);
	if (fc_parse_rate_limit(patch, where, l, err, errlen)) /* the patch alone, as sent */
		return -EINVAL;
	*merged = json_is_object(cur) ? json_deep_copy(cur) : json_object();
	for (const char *const *b = (const char *const[]){ "bandwidth", "ops", NULL }; *b; b++) {
		json_t *v = json_object_get(patch, *b);

		if (v && !json_is_null(v)) {
			json_object_set(*merged, *b, v);
			*buckets |= **b == 'b' ? RATE_LIMIT_BANDWIDTH : RATE_LIMIT_OPS;
		}
	}
	if (!*merged || fc_parse_rate_limit(*merged, where, l, err, errlen)) {
		json_decref(*merged);
		*merged = NULL;
		return -EINVAL;
	}
	return 0;
}

/* Firecracker's DriveError::DeviceUpdate around @what (its VmmError text). */
#define FC_ERR_PATCH_DRIVE(what) "Drive config error: Unable to patch the block device: " what \
				 " Please verify the request arguments."

/* PATCH /drives/{id} after boot: a new backing file (the guest sees the new capacity), new rate
 * limits. As Firecracker's, a PATCH that sets neither is refused (it would be a vhost-user
 * drive's config update, which a virtio drive refuses). */
void fc_patch_drive(struct fc_request *rq)
{
	const char *id, *path = NULL;
	json_t *limiter = NULL, *drive, *merged = NULL;
	struct rate_limit limit;
	unsigned buckets;
	void *disk = NULL;
	struct error e;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "drive_id", 's', true, &id },
					      { "path_on_host", 's', false, &path },
					      { "rate_limiter", 'o', false, &limiter }), err, sizeof(err)))
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	else if (strcmp(id, rq->id))
		fc_reply_fault(rq, "The id from the path does not match the id from the body!");
	else if (!(drive = fc_doc_entry(rq, "drives", "drive_id")))
		fc_reply_fault(rq, "Drive config error: no drive \"%s\"", rq->id);
	else if (!path && (!limiter || json_is_null(limiter)))
		fc_reply_fault(rq, FC_ERR_PATCH_DRIVE("Block: Running method expected different "
						      "backend."));
	else if (path && check_open("Block: Virtio backend error: Error manipulating the backing "
				    "file:", path, json_is_true(json_object_get(drive, "is_read_only")) ?
				    O_RDONLY : O_RDWR, err, sizeof(err)))
		fc_reply_fault(rq, FC_ERR_PATCH_DRIVE("%s"), err);
	else if (merge_limit(drive, "rate_limiter", limiter, &merged, &limit, &buckets, err,
			     sizeof(err)))
		fc_reply_fault(rq, "Drive config error: %s", err);
	else if ((path || merged) &&
		 !(disk = vm_device_find(rq->api->vm, &virtio_blk_class, rq->id))) {
		json_decref(merged);
		fc_reply_fault(rq, "Drive config error: no drive \"%s\"", rq->id);
	} else if (path && virtio_blk_replace(disk, path, &e)) {
		json_decref(merged);
		fc_reply_fault(rq, "Drive config error: %s", e.msg);
	} else {
		if (path) {
			json_object_set_new(drive, "path_on_host", json_string(path));
			/* The running configuration's strings point into the document. */
			for (unsigned i = 0; i < rq->api->cfg.nr_disks; i++)
				if (!strcmp(rq->api->cfg.disk[i].id, rq->id))
					rq->api->cfg.disk[i].path =
						json_string_value(json_object_get(drive, "path_on_host"));
		}
		if (merged) {
			virtio_blk_set_limit(disk, &limit, buckets);
			json_object_set_new(drive, "rate_limiter", merged);
			for (unsigned i = 0; i < rq->api->cfg.nr_disks; i++)
				if (!strcmp(rq->api->cfg.disk[i].id, rq->id))
					rq->api->cfg.disk[i].limit = limit;
		}
		fc_reply_ok(rq);
	}
}

/* PATCH /network-interfaces/{id} after boot: new receive and transmit rate limits. */
void fc_patch_nic(struct fc_request *rq)
{
	json_t *rx = NULL, *tx = NULL, *nic, *rx_merged = NULL, *tx_merged = NULL;
	struct rate_limit rx_limit, tx_limit;
	unsigned rx_buckets, tx_buckets;
	const char *id;
	void *dev = NULL;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "iface_id", 's', true, &id },
					      { "rx_rate_limiter", 'o', false, &rx },
					      { "tx_rate_limiter", 'o', false, &tx }), err, sizeof(err)))
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	else if (strcmp(id, rq->id))
		fc_reply_fault(rq, "The id from the path [%s] does not match the id from the body "
			       "[%s]!", rq->id, id);
	else if (!(nic = fc_doc_entry(rq, "network-interfaces", "iface_id")))
		fc_reply_fault(rq, "Network config error: no network interface \"%s\"", rq->id);
	else if (merge_limit(nic, "rx_rate_limiter", rx, &rx_merged, &rx_limit, &rx_buckets, err,
			     sizeof(err)) ||
		 merge_limit(nic, "tx_rate_limiter", tx, &tx_merged, &tx_limit, &tx_buckets, err,
			     sizeof(err))) {
		json_decref(rx_merged);
		fc_reply_fault(rq, "Network config error: %s", err);
	} else if ((rx_merged || tx_merged) &&
		   !(dev = vm_device_find(rq->api->vm, &virtio_net_class, rq->id))) {
		json_decref(rx_merged);
		json_decref(tx_merged);
		fc_reply_fault(rq, "Network config error: no network interface \"%s\"", rq->id);
	} else {
		if (dev)
			virtio_net_set_limits(dev, &rx_limit, rx_merged ? rx_buckets : 0, &tx_limit,
					      tx_merged ? tx_buckets : 0);
		for (unsigned i = 0; i < rq->api->cfg.nr_nets; i++) {
			if (strcmp(rq->api->cfg.net[i].id, rq->id))
				continue;
			if (rx_merged)
				rq->api->cfg.net[i].rx_limit = rx_limit;
			if (tx_merged)
				rq->api->cfg.net[i].tx_limit = tx_limit;
		}
		if (rx_merged)
			json_object_set_new(nic, "rx_rate_limiter", rx_merged);
		if (tx_merged)
			json_object_set_new(nic, "tx_rate_limiter", tx_merged);
		fc_reply_ok(rq);
	}
}
