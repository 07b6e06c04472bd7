/* SPDX-License-Identifier: Apache-2.0 */
/* vmm — the controller of a Firecracker-style VM and its actions (Firecracker's
 * rpc_interface.rs), see include/kiln/fc.h: the API server's start and stop, InstanceStart,
 * snapshot load, PUT /actions and PATCH /vm (pause, resume).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/log.h"
#include "kiln/qcow2.h"
#include "kiln/snapshot.h"
#include "kiln/x86.h"

static uint64_t elapsed_us(const struct timespec *from, const struct timespec *to)
{
	return (uint64_t)((to->tv_sec - from->tv_sec) * 1000000 + (to->tv_nsec - from->tv_nsec) / 1000);
}

/* The interfaces "mmds-config" names carry MMDS between the NIC and the tap. */
static struct net_backend *wrap_mmds(void *opaque, struct dev_host *host,
				     struct net_backend *inner, struct error *e)
{
	struct fc_api *api = opaque;

	return mmds_net_wrap(api->mmds, api->cfg.mmds_ip, host, inner, e);
}

/* What InstanceStart and a snapshot load share once api->cfg is parsed: MMDS on the NICs
 * that carry it, and kiln's start time for the boot timer. */
static void prepare_config(struct fc_api *api)
{
	for (unsigned i = 0; i < api->cfg.nr_nets; i++)
		if (api->cfg.mmds_nics & (1u << i))
			api->cfg.net[i].filter = (struct net_filter){ wrap_mmds, api };
	mmds_configure(api->mmds, api->cfg.mmds_v2, api->cfg.mmds_imds_compat);
	api->cfg.cfg.start = api->start;
	api->cfg.cfg.start_cpu = api->start_cpu;
	api->cfg.cfg.transport = api->pci ? VM_TRANSPORT_PCI : VM_TRANSPORT_MMIO;
}

/* Firecracker's GetCpuTemplate checks, made before anything is built: the static template
 * must be for this host's vendor and one of the CPU models it lists. */
static int check_cpu_template(const struct fc_api *api, char *err, size_t errlen)
{
	enum x86_cpu_template t = api->cfg.cfg.cpu_template;
	struct x86_cpu_id host;
	enum x86_template_fit fit;

	x86_host_cpu_id(&host);
	fit = x86_cpu_template_fit(t, &host);
	if (fit == X86_TEMPLATE_FITS)
		return 0;
	log_warn("microVM %s: cpu_template %s is for %s CPUs; this host's is %s, signature "
		 "0x%08" PRIx32, api->id, x86_cpu_template_name(t), x86_cpu_template_cpus(t),
		 host.vendor, host.signature);
	snprintf(err, errlen, "Start microvm error: Failed to get CPU template: %s",
		 fit == X86_TEMPLATE_WRONG_VENDOR
			 ? "CPU vendor mismatched between actual CPU and CPU template."
			 : "The current CPU model is not permitted to apply the CPU template.");
	return -EINVAL;
}

int fc_api_instance_start(struct fc_api *api, char *err, size_t errlen)
{
	struct error e;
	char why[600];

	if (!json_is_object(json_object_get(api->doc, "boot-source"))) {
		snprintf(err, errlen, "Start microvm error: Cannot start microvm without kernel "
			 "configuration.");
		return -EINVAL;
	}
	fc_config_release(&api->cfg);
	if (fc_config_parse(api->doc, true, &api->cfg, why, sizeof(why))) {
		snprintf(err, errlen, "Start microvm error: %s", why);
		return -EINVAL;
	}
	if (check_cpu_template(api, err, errlen))
		return -EINVAL;
	prepare_config(api);
	if (vm_create(&api->cfg.cfg, api->loop, &api->vm, &e)) {
		snprintf(err, errlen, "Start microvm error: %s", e.msg);
		api->vm = NULL;
		return error_code(&e);
	}
	log_info("microVM %s: InstanceStart", api->id);
	if (fc_metrics_start(api->metrics, api->vm))
		log_warn("metrics: cannot start the periodic flush");
	return 0;
}

/* The load's overrides of the snapshot's host resources, into its configuration @doc: each
 * network override's tap for the NIC of its iface_id, the vsock device's socket. Each must name
 * something the snapshot has (Firecracker's rule). */
static int apply_overrides(json_t *doc, const struct fc_snapshot_load *p, char *err, size_t errlen)
{
	json_t *o, *nic, *vsock = json_object_get(doc, "vsock");
	size_t i, k;

	json_array_foreach(p->network_overrides, i, o) {
		const char *id = json_string_value(json_object_get(o, "iface_id"));
		bool found = false;

		json_array_foreach(json_object_get(doc, "network-interfaces"), k, nic) {
			if (!strcmp(json_string_value(json_object_get(nic, "iface_id")) ?: "", id)) {
				json_object_set(nic, "host_dev_name", json_object_get(o, "host_dev_name"));
				found = true;
			}
		}
		if (!found)
			return fc_error(err, errlen, "network_overrides: the snapshot has no network "
					"interface \"%s\"", id);
	}
	if (p->vsock_uds && !json_is_object(vsock))
		return fc_error(err, errlen, "vsock_override: the snapshot has no vsock device");
	if (p->vsock_uds)
		json_object_set_new(vsock, "uds_path", json_string(p->vsock_uds));
	return 0;
}

/* The document of a snapshot's configuration @text (@len bytes): for a migration checked
 * against this host's (fc_config_incoming()), then @p's overrides applied. */
static int config_doc(const char *text, size_t len, const struct fc_snapshot_load *p,
		      json_t **out, char *err, size_t errlen)
{
	json_t *doc, *machine;

	if (!(doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)))
		return fc_error(err, errlen, "snapshot_path %s: its configuration is not JSON",
				p->snapshot_path);
	if (p->migration) {
		json_t *mine = fc_config_incoming(doc, p->host_config, err, errlen);

		json_decref(doc);
		if (!(doc = mine))
			return -EINVAL;
	}
	if (apply_overrides(doc, p, err, errlen)) {
		json_decref(doc);
		return -EINVAL;
	}
	machine = json_object_get(doc, "machine-config");
	if (p->track_dirty_pages && json_is_object(machine))
		json_object_set_new(machine, "track_dirty_pages", json_true());
	*out = doc;
	return 0;
}

/* The configuration section of @snap: its text, *@len bytes; NULL with @err set. */
static const char *config_text(const struct snap_reader *snap, const struct fc_snapshot_load *p,
			       size_t *len, char *err, size_t errlen)
{
	uint32_t version;

	if (!snap_get(snap, "config", 0, &version, len)) {
		fc_error(err, errlen, "snapshot_path %s: no configuration section", p->snapshot_path);
		return NULL;
	}
	return snap_get_section(snap, "config", 0, 1, &version, len, err, errlen);
}

int fc_snapshot_config(const struct snap_reader *snap, const struct fc_snapshot_load *p,
		       json_t **out, char *err, size_t errlen)
{
	size_t len;
	const char *text = config_text(snap, p, &len, err, errlen);

	return text ? config_doc(text, len, p, out, err, errlen) : -EINVAL;
}

/* Whether @doc configures boot-specific resources, after which Firecracker refuses a snapshot
 * load: any key but "cpu-config" (its PUT /cpu-config leaves rpc_interface.rs's boot_path
 * unset), which the snapshot's configuration then replaces. */
static bool boot_configured(json_t *doc)
{
	return json_object_size(doc) > (json_object_get(doc, "cpu-config") ? 1u : 0u);
}

/* Whether a disk of @c is a qcow2 image (by its format or, unnamed, its magic). */
static bool any_qcow2(const struct fc_config *c)
{
	for (unsigned i = 0; i < c->nr_disks; i++) {
		int fd = c->disk[i].format == DISK_FORMAT_AUTO ?
			 open(c->disk[i].path, O_RDONLY | O_CLOEXEC) : -1;
		bool qcow2 = c->disk[i].format == DISK_FORMAT_QCOW2 || (fd >= 0 && qcow2_probe(fd));

		if (fd >= 0)
			close(fd);
		if (qcow2)
			return true;
	}
	return false;
}

/* The configuration document @doc parsed into api->cfg (its strings point into @doc), ready
 * for a VM. */
static int parse_for_restore(struct fc_api *api, json_t *doc, const struct fc_snapshot_load *p,
			     char *err, size_t errlen)
{
	fc_config_release(&api->cfg);
	/* A restore loads no kernel: a migration's operator may leave the boot source out. */
	if (fc_config_parse(doc, !p->migration, &api->cfg, err, errlen)) {
		fc_config_release(&api->cfg);
		return -EINVAL;
	}
	prepare_config(api);
	api->cfg.cfg.clock_realtime = p->clock_realtime;
	return 0;
}

int fc_api_migration_prepare(struct fc_api *api, const struct fc_snapshot_load *p,
			     const char *config, size_t len, char *err, size_t errlen)
{
	struct error e = { .kind = ERROR_USAGE };
	json_t *doc = NULL;
	char why[700];
	int ret = config_doc(config, len, p, &doc, why, sizeof(why));

	if (!ret)
		ret = parse_for_restore(api, doc, p, why, sizeof(why));
	if (!ret && any_qcow2(&api->cfg)) {
		log_info("migration: a qcow2 disk: the VM is made when the source has paused");
		fc_config_release(&api->cfg);
		json_decref(doc);
		return 0;
	}
	if (!ret && !(api->prepared_config = malloc(len ? len : 1)))
		ret = error_set(&e, ERROR_RUNTIME, "out of memory");
	if (!ret && (ret = vm_restore_prepare(&api->cfg.cfg, &p->mem, api->loop, &api->prepared,
					      &e)))
		snprintf(why, sizeof(why), "%s", e.msg);
	if (ret) {
		free(api->prepared_config);
		api->prepared_config = NULL;
		api->prepared = NULL;
		fc_config_release(&api->cfg);
		json_decref(doc);
		snprintf(err, errlen, "Incoming migration: %s", why);
		return ret;
	}
	memcpy(api->prepared_config, config, len);
	api->prepared_len = len;
	api->prepared_doc = doc;
	log_info("migration: the microVM is made while the source pre-copies its memory");
	return 0;
}

void fc_api_migration_drop(struct fc_api *api)
{
	if (!api->prepared)
		return;
	vm_destroy(api->prepared);
	api->prepared = NULL;
	fc_config_release(&api->cfg);
	json_decref(api->prepared_doc);
	api->prepared_doc = NULL;
	free(api->prepared_config);
	api->prepared_config = NULL;
}

/* The VM fc_api_migration_prepare() made, finished with the state in @snap, whose configuration
 * must be the one the stream began with. Returns 0 with api->vm set and *@doc the document, or
 * -errno with @e set (the prepared VM dropped). */
static int finish_prepared(struct fc_api *api, const struct snap_reader *snap,
			   const struct fc_snapshot_load *p, json_t **doc, struct error *e)
{
	size_t len;
	const char *text = config_text(snap, p, &len, e->msg, sizeof(e->msg));
	int ret = text ? 0 : -EINVAL;

	if (!ret && (len != api->prepared_len || memcmp(text, api->prepared_config, len)))
		ret = error_set(e, ERROR_USAGE, "the state's configuration is not the one the stream "
				"began with");
	if (!ret)
		ret = vm_restore_finish(api->prepared, snap, e);
	if (ret) {
		fc_api_migration_drop(api);
		return ret;
	}
	api->vm = api->prepared;
	*doc = api->prepared_doc;
	api->prepared = NULL;
	api->prepared_doc = NULL;
	free(api->prepared_config);
	api->prepared_config = NULL;
	return 0;
}

int fc_api_snapshot_load(struct fc_api *api, const struct fc_snapshot_load *p, char *err,
			 size_t errlen)
{
	struct snap_reader snap;
	struct timespec t0, t1;
	struct error e = { .kind = ERROR_USAGE };
	json_t *doc = NULL;
	char why[700];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (boot_configured(api->doc)) {
		free(p->image);
		snprintf(err, errlen, "Load snapshot error: Loading a microVM snapshot not allowed "
			 "after configuring boot-specific resources.");
		return -EINVAL;
	}
	ret = p->image ? snap_reader_take(&snap, p->image, p->image_len, p->snapshot_path, why,
					  sizeof(why))
		       : snap_reader_open(&snap, p->snapshot_path, why, sizeof(why));
	if (!ret && api->prepared) {
		if ((ret = finish_prepared(api, &snap, p, &doc, &e)))
			snprintf(why, sizeof(why), "%s", e.msg);
	} else {
		if (!ret)
			ret = fc_snapshot_config(&snap, p, &doc, why, sizeof(why));
		if (!ret)
			ret = parse_for_restore(api, doc, p, why, sizeof(why));
		if (!ret && (ret = vm_restore(&api->cfg.cfg, &snap, &p->mem, api->loop, &api->vm,
					      &e))) {
			api->vm = NULL;
			snprintf(why, sizeof(why), "%s", e.msg);
		}
	}
	snap_reader_close(&snap); /* also after a failed open */
	if (ret) {
		fc_config_release(&api->cfg);
		json_decref(doc);
		snprintf(err, errlen, "%s%s", p->migration ? "Incoming migration: " :
			 "Load snapshot error: ", why);
		return error_code(&e);
	}
	json_decref(api->doc); /* empty; the configuration's strings point into doc now */
	api->doc = doc;
	if (p->resume_vm)
		vm_resume(api->vm);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("microVM %s: snapshot %s loaded in %" PRIu64 " us%s", api->id, p->snapshot_path,
		 elapsed_us(&t0, &t1), p->resume_vm ? ", resumed" : ", paused");
	if (fc_metrics_start(api->metrics, api->vm))
		log_warn("metrics: cannot start the periodic flush");
	return 0;
}

static void instance_start(struct fc_request *rq)
{
	char err[700];

	if (fc_api_instance_start(rq->api, err, sizeof(err)))
		fc_reply_fault(rq, "%s", err);
	else
		fc_reply_ok(rq);
}

void fc_put_actions(struct fc_request *rq)
{
	const char *type;
	char err[300];
	int ret;

	if (fc_unpack(rq->body, "", FC_FIELDS({ "action_type", 's', true, &type }), err,
		      sizeof(err))) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	} else if (!strcmp(type, "InstanceStart")) {
		if (rq->api->vm)
			fc_reply_fault(rq, FC_ERR_POST_BOOT);
		else
			instance_start(rq);
	} else if (!strcmp(type, "SendCtrlAltDel")) {
		if (!rq->api->vm)
			fc_reply_fault(rq, FC_ERR_PRE_BOOT);
		else if (vm_send_ctrl_alt_del(rq->api->vm))
			fc_reply_fault(rq, "Internal VMM error: the guest has not read the previous "
				       "keys.");
		else
			fc_reply_ok(rq);
	} else if (!strcmp(type, "FlushMetrics")) {
		if (!rq->api->vm)
			fc_reply_fault(rq, FC_ERR_PRE_BOOT);
		else if ((ret = fc_metrics_flush(rq->api->metrics)))
			fc_reply_fault(rq, "Metrics error: %s",
				       strerror(-ret));
		else
			fc_reply_ok(rq);
	} else {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "unknown variant "
			       "`%s`, expected one of "
			       "`FlushMetrics`, `InstanceStart`, "
			       "`SendCtrlAltDel`", type);
	}
}

void fc_patch_vm(struct fc_request *rq)
{
	const char *state;
	char err[300];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "state", 's', true, &state }), err, sizeof(err))) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	} else if (strcmp(state, "Paused") && strcmp(state, "Resumed")) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "unknown variant "
			       "`%s`, expected `Paused` or "
			       "`Resumed`", state);
	} else if (!rq->api->vm) {
		fc_reply_fault(rq, FC_ERR_PRE_BOOT);
	} else if (vm_migrating(rq->api->vm)) {
		fc_reply_fault(rq, "A migration is in progress: it decides where the guest runs.");
	} else if (!strcmp(state, "Resumed")) {
		vm_resume(rq->api->vm);
		fc_reply_ok(rq);
	} else if (vm_pause(rq->api->vm)) {
		fc_reply_fault(rq, "Internal VMM error: a vCPU did not pause within 2 s");
	} else {
		fc_reply_ok(rq);
	}
}

int fc_api_start(const struct fc_api_options *o, struct fc_api **out, char *err, size_t errlen)
{
	struct fc_api *api = calloc(1, sizeof(*api));
	struct timespec now, cpu;
	int ret = 0;

	if (!api || !(api->id = strdup(o->id)) || !(api->metrics = fc_metrics_new(o->loop))) {
		if (api)
			free(api->id);
		free(api);
		json_decref(o->doc);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	api->mmds = mmds_new(o->loop, err, errlen);
	if (!api->mmds) {
		api->doc = o->doc;
		fc_api_stop(api);
		return -EIO;
	}
	api->doc = o->doc;
	api->loop = o->loop;
	api->pci = o->pci;
	mmds_set_limit(api->mmds, o->mmds_limit ? o->mmds_limit :
			       o->http_max_body ? o->http_max_body : FC_HTTP_MAX_BODY);
	if (o->metadata && mmds_put(api->mmds, o->metadata)) {
		snprintf(err, errlen, "--metadata: %zu bytes of JSON, more than the MMDS limit",
			 json_dumpb(o->metadata, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY));
		fc_api_stop(api);
		return -EINVAL;
	}
	api->start = o->start;
	api->start_cpu = o->start_cpu;
	if (o->metrics_path && (ret = fc_metrics_set_path(api->metrics, o->metrics_path, err, errlen)))
		snprintf(err, errlen, "metrics path %s: %s", o->metrics_path, strerror(-ret));
	if (!ret && o->sock_path)
		ret = http_start(o->sock_path, o->loop, fc_api_handle, api, &api->http, err, errlen);
	if (!ret && api->http && o->http_max_body)
		http_set_max_body(api->http, o->http_max_body);
	if (ret) {
		fc_api_stop(api);
		return ret;
	}
	/* Firecracker's api_server.process_startup_time: from kiln's start (or its jailer's) to
	 * serving; the CPU time adds the jailer's parent's. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	fc_metrics_set_startup(api->metrics, elapsed_us(&o->start, &now),
			       elapsed_us(&o->start_cpu, &cpu) + o->parent_cpu_us);
	*out = api;
	return 0;
}

struct vm *fc_api_vm(struct fc_api *api) { return api->vm; }

void fc_api_stop(struct fc_api *api)
{
	fc_api_migration_drop(api);
	http_stop(api->http);
	fc_metrics_free(api->metrics);
	mmds_free(api->mmds);
	fc_config_release(&api->cfg);
	json_decref(api->doc);
	free(api->id);
	free(api);
}
