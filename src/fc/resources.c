/* SPDX-License-Identifier: Apache-2.0 */
/* resources — the endpoints of the VM's description (Firecracker's api_server/request/:
 * instance_info.rs, version.rs, machine_configuration.rs, boot_source.rs, drive.rs, net.rs,
 * entropy.rs, vsock.rs), see fc_internal.h. Before boot each edits the configuration
 * document (document.c); after boot a drive gets a new backing file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fc_internal.h"
#include "kiln/fc.h"
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

void fc_put_machine_config(struct fc_request *rq)
{
	fc_doc_commit(rq, fc_doc_with(rq->api, "machine-config", json_incref(rq->body)),
		      "Machine config error: ", NULL);
}

void fc_patch_machine_config(struct fc_request *rq)
{
	json_t *mc;

	if (!json_object_size(rq->body)) {
		fc_reply_fault(rq, "Empty PATCH request.");
		return;
	}
	mc = fc_doc_machine_config(rq->api);
	if (mc)
		json_object_update(mc, rq->body);
	fc_doc_commit(rq, mc ? fc_doc_with(rq->api, "machine-config", mc) : NULL,
		      "Machine config error: ", NULL);
}

/* Whether @path opens with @flags; else -errno and a message naming @what. */
static int check_open(const char *what, const char *path, int flags, char *err, size_t errlen)
{
	int fd = path ? open(path, flags | O_CLOEXEC) : -1;

	if (!path)
		return 0;
	if (fd < 0) {
		int ret = -errno;

		snprintf(err, errlen, "the %s %s cannot be opened: %s", what, path, strerror(errno));
		return ret;
	}
	close(fd);
	return 0;
}

static int boot_files_open(const struct fc_request *rq, const struct fc_config *c, char *err,
			   size_t errlen)
{
	return check_open("kernel file", c->cfg.kernel_path, O_RDONLY, err, errlen) ?:
	       check_open("initrd file", c->cfg.initrd_path, O_RDONLY, err, errlen);
}

void fc_put_boot_source(struct fc_request *rq)
{
	fc_doc_commit(rq, fc_doc_with(rq->api, "boot-source", json_incref(rq->body)),
		      "Boot source error: ", boot_files_open);
}

void fc_put_entropy(struct fc_request *rq)
{
	fc_doc_commit(rq, fc_doc_with(rq->api, "entropy", json_incref(rq->body)),
		      "Entropy device error: ", NULL);
}

void fc_put_vsock(struct fc_request *rq)
{
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
			return check_open("backing file", c->disk[i].path,
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

void fc_put_nic(struct fc_request *rq)
{
	const char *other = other_id(rq, "iface_id");

	if (other)
		fc_reply_fault(rq, "The id from the path [%s] does not "
			       "match the id from the body [%s]!",
			       rq->id, other);
	else
		fc_doc_commit(rq, fc_doc_with_entry(rq, "network-interfaces", "iface_id"),
			      "Network config error: ", NULL);
}

/* PATCH /drives/{id} after boot: a new backing file (the guest sees the new capacity). */
void fc_patch_drive(struct fc_request *rq)
{
	const char *id, *path = NULL;
	json_t *limiter = NULL, *drive;
	struct error e;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "drive_id", 's', true, &id },
					      { "path_on_host", 's', false, &path },
					      { "rate_limiter", 'o', false, &limiter }), err, sizeof(err)))
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	else if (strcmp(id, rq->id))
		fc_reply_fault(rq, "The id from the path does not match the id from the body!");
	else if (limiter && !json_is_null(limiter))
		fc_reply_fault(rq, "Drive config error: \"rate_limiter\": not implemented by kiln yet");
	else if (!(drive = fc_doc_entry(rq, "drives", "drive_id")))
		fc_reply_fault(rq, "Drive config error: no drive \"%s\"", rq->id);
	else if (path && virtio_blk_replace(vm_device_find(rq->api->vm, &virtio_blk_class, rq->id),
					    path, &e))
		fc_reply_fault(rq, "Drive config error: %s", e.msg);
	else {
		if (path) {
			json_object_set_new(drive, "path_on_host", json_string(path));
			/* The running configuration's strings point into the document. */
			for (unsigned i = 0; i < rq->api->cfg.nr_disks; i++)
				if (!strcmp(rq->api->cfg.disk[i].id, rq->id))
					rq->api->cfg.disk[i].path =
						json_string_value(json_object_get(drive, "path_on_host"));
		}
		fc_reply_ok(rq);
	}
}

/* PATCH /network-interfaces/{id} after boot: only rate limiters, which kiln does not have. */
void fc_patch_nic(struct fc_request *rq)
{
	json_t *rx = NULL, *tx = NULL;
	const char *id;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "iface_id", 's', true, &id },
					      { "rx_rate_limiter", 'o', false, &rx },
					      { "tx_rate_limiter", 'o', false, &tx }), err, sizeof(err)))
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	else if (strcmp(id, rq->id))
		fc_reply_fault(rq, "The id from the path [%s] does not match the id from the body "
			       "[%s]!", rq->id, id);
	else if ((rx && !json_is_null(rx)) || (tx && !json_is_null(tx)))
		fc_reply_fault(rq, "Network config error: rate limiters are not implemented by kiln "
			       "yet");
	else if (!fc_doc_entry(rq, "network-interfaces", "iface_id"))
		fc_reply_fault(rq, "Network config error: no network interface \"%s\"", rq->id);
	else
		fc_reply_ok(rq);
}

/* Known to Firecracker, not (yet) to kiln: refused by name. */
void fc_not_implemented(struct fc_request *rq)
{
	fc_reply_fault(rq, "This request is not implemented by kiln yet.");
}
