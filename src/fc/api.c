/* api — Firecracker's REST API: routing, the pre-boot / post-boot rules and the endpoints,
 * see include/kiln/fc.h. The reference is Firecracker's swagger/firecracker.yaml and its API
 * server (parsed_request.rs): the same paths, JSON fields, status codes and fault messages.
 *
 * The configuration the API builds is one FullVmConfiguration document, the format of
 * --config-file. A PUT or PATCH applies to a copy, the copy goes through the same parser as
 * the file (fc_config_parse), and only a copy that passes replaces the document: a refused
 * request changes nothing. InstanceStart builds the VM from the document.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"

#define ERR_POST_BOOT "The requested operation is not supported after starting the microVM."
#define ERR_PRE_BOOT "The requested operation is not supported before starting the microVM."
#define ERR_DESERIALIZE "An error occurred when deserializing the json body of a request: "

struct fc_api {
	struct http_server *http;
	struct loop *loop;
	char *id;
	json_t *doc;             /* the configuration so far; the VM's strings point into it */
	struct fc_config cfg;    /* parsed from doc at InstanceStart */
	struct vm *vm;           /* NULL until InstanceStart */
	struct fc_metrics *metrics;
	struct mmds *mmds;
	struct timespec start, start_cpu; /* when kiln started */
};

/* When a route may run: Firecracker's "not allowed pre-boot / post-boot" lists. */
enum when { ANY, PRE_BOOT, POST_BOOT };

struct request {
	struct fc_api *api;
	const char *id;          /* the path's second segment, for routes that take one */
	json_t *body;            /* NULL for GET */
	struct http_reply *reply;
};

static uint64_t elapsed_us(const struct timespec *from, const struct timespec *to)
{
	return (uint64_t)((to->tv_sec - from->tv_sec) * 1000000 + (to->tv_nsec - from->tv_nsec) / 1000);
}

static void ok(struct request *rq) { *rq->reply = (struct http_reply){ .status = 204 }; }

static void ok_json(struct request *rq, json_t *body)
{
	*rq->reply = (struct http_reply){ .status = body ? 200 : 500,
					   .body = body ? body : http_fault("out of memory") };
}

/* 400 with Firecracker's {"fault_message": ...}. */
__attribute__((format(printf, 2, 3)))
static void fault(struct request *rq, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*rq->reply = (struct http_reply){ .status = 400, .body = http_fault("%s", msg) };
}

static void bad(struct request *rq, const char *msg) { fault(rq, "%s", msg); }

/* A check a request makes beyond the parser's, on the configuration it would make: e.g. that
 * the files it names open. Returns 0 or -errno with a message in @err. */
typedef int (*config_check)(const struct request *rq, const struct fc_config *c, char *err,
			    size_t errlen);

/* Replace the document by @candidate if it parses and passes @check (may be NULL); else 400
 * with the message after @prefix. Takes the reference to @candidate. */
static void commit(struct request *rq, json_t *candidate, const char *prefix, config_check check)
{
	struct fc_config c;
	char err[600];

	if (!candidate) {
		bad(rq, "out of memory");
		return;
	}
	if (fc_config_parse(candidate, false, &c, err, sizeof(err)) ||
	    (check && check(rq, &c, err, sizeof(err)))) {
		fault(rq, "%s%s", prefix, err);
		json_decref(candidate);
	} else {
		json_decref(rq->api->doc);
		rq->api->doc = candidate;
		ok(rq);
	}
	fc_config_release(&c);
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

/* A copy of the document with @key set to @value (reference taken). */
static json_t *with(struct fc_api *api, const char *key, json_t *value)
{
	json_t *copy = json_deep_copy(api->doc);

	if (!copy || json_object_set_new(copy, key, value)) {
		json_decref(copy);
		return NULL;
	}
	return copy;
}

/* The machine configuration with Firecracker's defaults filled in. */
static json_t *machine_config(struct fc_api *api)
{
	json_t *mc = json_pack("{s:i, s:i, s:b, s:b, s:s}", "vcpu_count", 1, "mem_size_mib",
			       FC_DEFAULT_MEM_MIB, "smt", 0, "track_dirty_pages", 0, "huge_pages",
			       "None");
	json_t *set = json_object_get(api->doc, "machine-config");

	if (mc && json_is_object(set))
		json_object_update(mc, set);
	return mc;
}

static void get_info(struct request *rq)
{
	struct fc_api *api = rq->api;
	const char *state = !api->vm ? "Not started" : vm_is_paused(api->vm) ? "Paused" : "Running";

	ok_json(rq, json_pack("{s:s, s:s, s:s, s:s}", "id", api->id, "state", state, "vmm_version",
			      KILN_VERSION, "app_name", "kiln"));
}

static void get_version(struct request *rq)
{
	ok_json(rq, json_pack("{s:s}", "firecracker_version", KILN_VERSION));
}

static void get_machine_config(struct request *rq) { ok_json(rq, machine_config(rq->api)); }

static void get_vm_config(struct request *rq)
{
	static const char *const keys[] = { "balloon", "drives", "boot-source", "cpu-config",
					    "logger", "machine-config", "metrics", "mmds-config",
					    "network-interfaces", "vsock", "entropy" };
	json_t *out = json_object();

	for (unsigned i = 0; out && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(rq->api->doc, keys[i]);

		if (!strcmp(keys[i], "machine-config"))
			v = machine_config(rq->api);
		else if (!strcmp(keys[i], "logger") || !strcmp(keys[i], "metrics"))
			v = json_null(); /* as Firecracker: not part of the VM's description */
		else if (!v)
			v = !strcmp(keys[i], "drives") || !strcmp(keys[i], "network-interfaces")
				    ? json_array() : json_null();
		else
			json_incref(v);
		json_object_set_new(out, keys[i], v);
	}
	ok_json(rq, out);
}

static void put_machine_config(struct request *rq)
{
	commit(rq, with(rq->api, "machine-config", json_incref(rq->body)), "Machine config error: ",
	       NULL);
}

static void patch_machine_config(struct request *rq)
{
	json_t *mc;

	if (!json_object_size(rq->body)) {
		bad(rq, "Empty PATCH request.");
		return;
	}
	mc = machine_config(rq->api);
	if (mc)
		json_object_update(mc, rq->body);
	commit(rq, mc ? with(rq->api, "machine-config", mc) : NULL, "Machine config error: ", NULL);
}

static int boot_files_open(const struct request *rq, const struct fc_config *c, char *err,
			   size_t errlen)
{
	return check_open("kernel file", c->cfg.kernel_path, O_RDONLY, err, errlen) ?:
	       check_open("initrd file", c->cfg.initrd_path, O_RDONLY, err, errlen);
}

static void put_boot_source(struct request *rq)
{
	commit(rq, with(rq->api, "boot-source", json_incref(rq->body)), "Boot source error: ",
	       boot_files_open);
}

static void put_entropy(struct request *rq)
{
	commit(rq, with(rq->api, "entropy", json_incref(rq->body)), "Entropy device error: ", NULL);
}

/* A copy of the document with @body in list @key, replacing the entry whose @id_key is the
 * path's id, or appended. */
static json_t *with_entry(struct request *rq, const char *key, const char *id_key)
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

/* The body's @id_key, when it is a string that differs from the path's id. */
static const char *other_id(const struct request *rq, const char *id_key)
{
	const char *id = json_string_value(json_object_get(rq->body, id_key));

	return id && strcmp(id, rq->id) ? id : NULL;
}

static int drive_file_opens(const struct request *rq, const struct fc_config *c, char *err,
			    size_t errlen)
{
	for (unsigned i = 0; i < c->cfg.nr_disks; i++)
		if (!strcmp(c->cfg.disk[i].id, rq->id))
			return check_open("backing file", c->cfg.disk[i].path,
					  c->cfg.disk[i].readonly ? O_RDONLY : O_RDWR, err, errlen);
	return 0;
}

static void put_drive(struct request *rq)
{
	if (other_id(rq, "drive_id"))
		bad(rq, "The id from the path does not match the id from the body!");
	else
		commit(rq, with_entry(rq, "drives", "drive_id"), "Drive config error: ",
		       drive_file_opens);
}

static void put_nic(struct request *rq)
{
	const char *other = other_id(rq, "iface_id");

	if (other)
		fault(rq, "The id from the path [%s] does not "
		      "match the id from the body [%s]!",
		      rq->id, other);
	else
		commit(rq, with_entry(rq, "network-interfaces", "iface_id"),
		       "Network config error: ", NULL);
}

/* Firecracker's logger: applied at once, not part of the VM's description. */
static void put_logger(struct request *rq)
{
	json_t *candidate = json_pack("{s:O}", "logger", rq->body);
	struct fc_config c;
	char err[600];
	int fd = -1;

	if (!candidate) {
		bad(rq, "out of memory");
		return;
	}
	if (fc_config_parse(candidate, false, &c, err, sizeof(err))) {
		fault(rq, "Logger error: %s", err);
	} else if (c.log_path &&
		   (fd = open(c.log_path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC)) < 0) {
		fault(rq, "Logger error: Failed to open "
		      "target file %s: %s", c.log_path,
		      strerror(errno));
	} else {
		if (fd >= 0)
			log_set_fd(fd);
		if (c.level_set)
			log_set_level(c.level);
		ok(rq);
	}
	fc_config_release(&c);
	json_decref(candidate);
}

/* The interfaces "mmds-config" names carry MMDS between the NIC and the tap. */
static struct net_backend *wrap_mmds(void *opaque, struct dev_host *host,
				     struct net_backend *inner, char *err, size_t errlen)
{
	struct fc_api *api = opaque;

	return mmds_net_wrap(api->mmds, api->cfg.mmds_ip, host, inner, err, errlen);
}

/* What InstanceStart and a snapshot load share once api->cfg is parsed: MMDS on the NICs
 * that carry it, and kiln's start time for the boot timer. */
static void prepare_config(struct fc_api *api)
{
	for (unsigned i = 0; i < api->cfg.cfg.nr_nets; i++)
		if (api->cfg.mmds_nics & (1u << i))
			api->cfg.cfg.net[i].filter = (struct net_filter){ wrap_mmds, api };
	mmds_configure(api->mmds, api->cfg.mmds_v2, api->cfg.mmds_imds_compat);
	api->cfg.cfg.start = api->start;
	api->cfg.cfg.start_cpu = api->start_cpu;
}

int fc_api_instance_start(struct fc_api *api, char *err, size_t errlen)
{
	enum vm_error_kind kind;
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
	prepare_config(api);
	if (vm_create(&api->cfg.cfg, api->loop, &api->vm, &kind, why, sizeof(why))) {
		snprintf(err, errlen, "Start microvm error: %s", why);
		api->vm = NULL;
		return kind == VM_ERR_USAGE ? -EINVAL : -EIO;
	}
	log_info("microVM %s: InstanceStart", api->id);
	if (fc_metrics_start(api->metrics, api->vm))
		log_warn("metrics: cannot start the periodic flush");
	return 0;
}

int fc_api_snapshot_load(struct fc_api *api, const struct fc_snapshot_load *p, char *err,
			 size_t errlen)
{
	struct snap_reader snap;
	struct timespec t0, t1;
	enum vm_error_kind kind = VM_ERR_USAGE;
	const char *text;
	json_t *doc = NULL, *machine;
	size_t len;
	char why[700];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (json_object_size(api->doc)) {
		free(p->image);
		snprintf(err, errlen, "Load snapshot error: Loading a microVM snapshot not allowed "
			 "after configuring boot-specific resources.");
		return -EINVAL;
	}
	ret = p->image ? snap_reader_take(&snap, p->image, p->image_len, p->snapshot_path, why,
					  sizeof(why))
		       : snap_reader_open(&snap, p->snapshot_path, why, sizeof(why));
	if (!ret && !(text = snap_get(&snap, "config", 0, &len))) {
		snprintf(why, sizeof(why), "snapshot_path %s: no configuration section",
			 p->snapshot_path);
		ret = -EINVAL;
	}
	if (!ret && !(doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL))) {
		snprintf(why, sizeof(why), "snapshot_path %s: its configuration is not JSON",
			 p->snapshot_path);
		ret = -EINVAL;
	}
	machine = json_object_get(doc, "machine-config");
	if (!ret && p->track_dirty_pages && json_is_object(machine))
		json_object_set_new(machine, "track_dirty_pages", json_true());
	fc_config_release(&api->cfg);
	if (!ret && (ret = fc_config_parse(doc, true, &api->cfg, why, sizeof(why))))
		ret = -EINVAL;
	if (!ret) {
		prepare_config(api);
		ret = vm_restore(&api->cfg.cfg, &snap, &p->mem, api->loop, &api->vm, &kind, why,
				 sizeof(why));
		if (ret)
			api->vm = NULL;
	}
	snap_reader_close(&snap);
	if (ret) {
		fc_config_release(&api->cfg);
		json_decref(doc);
		snprintf(err, errlen, "Load snapshot error: %s", why);
		return kind == VM_ERR_USAGE ? -EINVAL : -EIO;
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

static void instance_start(struct request *rq)
{
	char err[700];

	if (fc_api_instance_start(rq->api, err, sizeof(err)))
		bad(rq, err);
	else
		ok(rq);
}

static void put_actions(struct request *rq)
{
	const char *type;
	char err[300];
	int ret;

	if (fc_unpack(rq->body, "", FC_FIELDS({ "action_type", 's', true, &type }), err,
		      sizeof(err))) {
		fault(rq, ERR_DESERIALIZE "%s", err);
	} else if (!strcmp(type, "InstanceStart")) {
		if (rq->api->vm)
			bad(rq, ERR_POST_BOOT);
		else
			instance_start(rq);
	} else if (!strcmp(type, "SendCtrlAltDel")) {
		if (!rq->api->vm)
			bad(rq, ERR_PRE_BOOT);
		else if (vm_send_ctrl_alt_del(rq->api->vm))
			bad(rq, "Internal VMM error: the guest has not read the previous keys.");
		else
			ok(rq);
	} else if (!strcmp(type, "FlushMetrics")) {
		if (!rq->api->vm)
			bad(rq, ERR_PRE_BOOT);
		else if ((ret = fc_metrics_flush(rq->api->metrics)))
			fault(rq, "Metrics error: %s",
			      strerror(-ret));
		else
			ok(rq);
	} else {
		fault(rq, ERR_DESERIALIZE "unknown variant "
		      "`%s`, expected one of "
		      "`FlushMetrics`, `InstanceStart`, "
		      "`SendCtrlAltDel`", type);
	}
}

static void patch_vm(struct request *rq)
{
	const char *state;
	char err[300];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "state", 's', true, &state }), err, sizeof(err))) {
		fault(rq, ERR_DESERIALIZE "%s", err);
	} else if (strcmp(state, "Paused") && strcmp(state, "Resumed")) {
		fault(rq, ERR_DESERIALIZE "unknown variant "
		      "`%s`, expected `Paused` or "
		      "`Resumed`", state);
	} else if (!rq->api->vm) {
		bad(rq, ERR_PRE_BOOT);
	} else if (vm_migrating(rq->api->vm)) {
		bad(rq, "A migration is in progress: it decides where the guest runs.");
	} else if (!strcmp(state, "Resumed")) {
		vm_resume(rq->api->vm);
		ok(rq);
	} else if (vm_pause(rq->api->vm)) {
		bad(rq, "Internal VMM error: a vCPU did not pause within 2 s");
	} else {
		ok(rq);
	}
}

static void put_metrics(struct request *rq)
{
	const char *path;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "metrics_path", 's', true, &path }), err,
		      sizeof(err)))
		fault(rq, ERR_DESERIALIZE "%s", err);
	else if (fc_metrics_set_path(rq->api->metrics, path, err, sizeof(err)))
		fault(rq, "Metrics error: %s", err);
	else
		ok(rq);
}

static void put_vsock(struct request *rq)
{
	commit(rq, with(rq->api, "vsock", json_incref(rq->body)), "Vsock config error: ", NULL);
}

static void put_balloon(struct request *rq)
{
	commit(rq, with(rq->api, "balloon", json_incref(rq->body)), "Balloon config error: ", NULL);
}

/* The configured balloon (the document's, with its defaults), or NULL with a 400. */
static json_t *balloon_or_fault(struct request *rq)
{
	json_t *b = json_object_get(rq->api->doc, "balloon");

	if (!json_is_object(b)) {
		bad(rq, "Balloon error: No balloon device configured.");
		return NULL;
	}
	if (!json_object_get(b, "stats_polling_interval_s"))
		json_object_set_new(b, "stats_polling_interval_s", json_integer(0));
	return b;
}

static void get_balloon(struct request *rq)
{
	json_t *b = balloon_or_fault(rq);

	if (b)
		ok_json(rq, json_deep_copy(b));
}

/* PATCH /balloon after boot: a new target. */
static void patch_balloon(struct request *rq)
{
	json_t *b = balloon_or_fault(rq);
	json_int_t mib;
	char err[300];

	if (!b)
		return;
	if (fc_unpack(rq->body, "", FC_FIELDS({ "amount_mib", 'I', true, &mib }), err, sizeof(err)))
		fault(rq, ERR_DESERIALIZE "%s", err);
	else if (mib < 0 || (uint64_t)mib << 20 > rq->api->cfg.cfg.mem_bytes)
		fault(rq, "Balloon error: \"amount_mib\": %lld is not in [0, %llu] (the guest's memory)",
		      (long long)mib, (unsigned long long)(rq->api->cfg.cfg.mem_bytes >> 20));
	else if (virtio_balloon_set_target(vm_balloon(rq->api->vm), (uint64_t)mib << 20))
		bad(rq, "Balloon error: the target is too large");
	else {
		json_object_set_new(b, "amount_mib", json_integer(mib));
		ok(rq);
	}
}

/* PATCH /balloon/statistics after boot: a new polling interval (statistics on at boot). */
static void patch_balloon_stats(struct request *rq)
{
	json_t *b = balloon_or_fault(rq);
	json_int_t interval;
	char err[300];

	if (!b)
		return;
	if (fc_unpack(rq->body, "", FC_FIELDS({ "stats_polling_interval_s", 'I', true, &interval }),
		      err, sizeof(err)))
		fault(rq, ERR_DESERIALIZE "%s", err);
	else if (json_integer_value(json_object_get(b, "stats_polling_interval_s")) == 0 ||
		 interval <= 0 || interval > 86400)
		bad(rq, "Balloon error: Cannot enable or disable statistics after boot; the interval "
			"must stay in [1, 86400].");
	else if (virtio_balloon_set_stats_interval(vm_balloon(rq->api->vm), (unsigned)interval))
		bad(rq, "Balloon error: cannot change the statistics interval");
	else {
		json_object_set_new(b, "stats_polling_interval_s", json_integer(interval));
		ok(rq);
	}
}

/* GET /balloon/statistics: Firecracker's BalloonStats, with what the guest reported. */
static void get_balloon_stats(struct request *rq)
{
	static const char *const names[BALLOON_NR_STATS] = {
		"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
		"available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
	};
	json_t *b = balloon_or_fault(rq), *out;
	struct balloon_stats s;

	if (!b)
		return;
	if (!json_integer_value(json_object_get(b, "stats_polling_interval_s"))) {
		bad(rq, "Balloon error: Statistics for the balloon device are not enabled.");
		return;
	}
	if (!rq->api->vm) {
		bad(rq, ERR_PRE_BOOT);
		return;
	}
	virtio_balloon_stats(vm_balloon(rq->api->vm), &s);
	out = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)s.target_pages,
			"actual_pages", (json_int_t)s.actual_pages, "target_mib",
			(json_int_t)(s.target_pages >> 8), "actual_mib", (json_int_t)(s.actual_pages >> 8));
	for (unsigned i = 0; out && i < BALLOON_NR_STATS; i++)
		if (s.valid & (1u << i))
			json_object_set_new(out, names[i], json_integer((json_int_t)s.value[i]));
	ok_json(rq, out);
}

static void put_mmds_config(struct request *rq)
{
	commit(rq, with(rq->api, "mmds-config", json_incref(rq->body)), "MMDS config error: ",
	       NULL);
}

static void mmds_result(struct request *rq, int ret)
{
	if (ret == -E2BIG)
		*rq->reply = (struct http_reply){ .status = 413, .body = http_fault(
			"MMDS limit exceeded error: The MMDS patch request doesn't fit.") };
	else if (ret == -ENODATA)
		bad(rq, "MMDS error: The MMDS data store is not initialized.");
	else if (ret)
		fault(rq, "MMDS error: %s", strerror(-ret));
	else
		ok(rq);
}

static void put_mmds(struct request *rq)
{
	if (rq->id && *rq->id)
		fault(rq, "Unrecognized PUT request path `%s`.", rq->id);
	else
		mmds_result(rq, mmds_put(rq->api->mmds, rq->body));
}

static void patch_mmds(struct request *rq) { mmds_result(rq, mmds_patch(rq->api->mmds, rq->body)); }

static void get_mmds(struct request *rq) { ok_json(rq, mmds_get(rq->api->mmds)); }

/* PUT /snapshot/create: Full or Diff, of the paused VM. */
static void snapshot_create(struct request *rq)
{
	const char *type = "Full", *path, *mem_path, *version = NULL;
	struct vm_snapshot_params p;
	char err[700], *config;
	int ret;

	if (fc_unpack(rq->body, "", FC_FIELDS({ "snapshot_type", 's', false, &type },
					      { "snapshot_path", 's', true, &path },
					      { "mem_file_path", 's', true, &mem_path },
					      { "version", 's', false, &version }), err, sizeof(err))) {
		fault(rq, ERR_DESERIALIZE "%s", err);
		return;
	}
	if (strcmp(type, "Full") && strcmp(type, "Diff")) {
		fault(rq, ERR_DESERIALIZE "unknown variant `%s`, expected `Full` or `Diff`", type);
		return;
	}
	config = json_dumps(rq->api->doc, JSON_COMPACT);
	if (!config) {
		bad(rq, "Create snapshot error: out of memory");
		return;
	}
	p = (struct vm_snapshot_params){ .state_path = path, .mem_path = mem_path,
					 .diff = !strcmp(type, "Diff"), .config = config,
					 .config_len = strlen(config) };
	ret = vm_snapshot(rq->api->vm, &p, err, sizeof(err));
	free(config);
	if (ret)
		fault(rq, "Create snapshot error: %s", err);
	else
		ok(rq);
}

/* PUT /snapshot/load, before anything is configured. */
static void snapshot_load(struct request *rq)
{
	struct fc_snapshot_load p = { .mem.type = VM_MEM_FILE };
	const char *mem_file = NULL, *type = NULL, *path = NULL;
	json_t *backend = NULL, *overrides = NULL;
	int diff = 0, dirty = 0, resume = 0;
	char err[900];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "snapshot_path", 's', true, &p.snapshot_path },
					      { "mem_file_path", 's', false, &mem_file },
					      { "mem_backend", 'o', false, &backend },
					      { "enable_diff_snapshots", 'b', false, &diff },
					      { "track_dirty_pages", 'b', false, &dirty },
					      { "resume_vm", 'b', false, &resume },
					      { "network_overrides", 'o', false, &overrides }), err,
		      sizeof(err)) ||
	    (backend && !json_is_null(backend) &&
	     fc_unpack(backend, "mem_backend: ", FC_FIELDS({ "backend_type", 's', true, &type },
							  { "backend_path", 's', true, &path }),
		       err, sizeof(err)))) {
		fault(rq, ERR_DESERIALIZE "%s", err);
		return;
	}
	if (overrides && json_array_size(overrides)) {
		bad(rq, "Load snapshot error: \"network_overrides\" is not implemented by kiln yet");
		return;
	}
	if (!!mem_file == !!path) {
		bad(rq, "Load snapshot error: exactly one of \"mem_backend\" and \"mem_file_path\" "
		    "is needed");
		return;
	}
	if (type && strcmp(type, "File") && strcmp(type, "Uffd")) {
		fault(rq, ERR_DESERIALIZE "mem_backend: unknown variant `%s`, expected `File` or "
		      "`Uffd`", type);
		return;
	}
	p.mem.type = type && !strcmp(type, "Uffd") ? VM_MEM_UFFD : VM_MEM_FILE;
	p.mem.path = mem_file ? mem_file : path;
	p.track_dirty_pages = diff || dirty;
	p.resume_vm = resume;
	if (fc_api_snapshot_load(rq->api, &p, err, sizeof(err)))
		bad(rq, err);
	else
		ok(rq);
}

/* PUT /migrate {"destination_url": "tcp:HOST:PORT"}: kiln's own (Firecracker has no live
 * migration): starts it; GET /migrate follows it. The destination is `kiln restore
 * --incoming tcp:HOST:PORT`. */
static void put_migrate(struct request *rq)
{
	const char *url;
	char err[600], *config;
	int ret;

	if (fc_unpack(rq->body, "", FC_FIELDS({ "destination_url", 's', true, &url }), err,
		      sizeof(err))) {
		fault(rq, ERR_DESERIALIZE "%s", err);
		return;
	}
	config = json_dumps(rq->api->doc, JSON_COMPACT);
	ret = config ? vm_migrate_start(rq->api->vm, url, config, strlen(config), err, sizeof(err))
		     : -ENOMEM;
	free(config);
	if (ret)
		fault(rq, "Migration error: %s", ret == -ENOMEM && !config ? "out of memory" : err);
	else
		ok(rq);
}

static void get_migrate(struct request *rq)
{
	static const char *const states[] = { "none", "active", "completed", "failed" };
	struct vm_migration_status st;

	vm_migrate_status(rq->api->vm, &st);
	ok_json(rq, json_pack("{s:s, s:i, s:I, s:I, s:I, s:s?}", "state", states[st.state],
			      "rounds", (int)st.rounds, "bytes_sent", (json_int_t)st.bytes,
			      "total_us", (json_int_t)st.total_us,
			      "downtime_us", (json_int_t)st.downtime_us,
			      "error", st.state == VM_MIGRATION_FAILED ? st.error : NULL));
}

/* Known to Firecracker, not (yet) to kiln: refused by name. */
static void not_implemented(struct request *rq)
{
	bad(rq, "This request is not implemented by kiln yet.");
}

/* The document's entry of list @key whose @id_key is the path's id, or NULL. */
static json_t *entry(struct request *rq, const char *key, const char *id_key)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(rq->api->doc, key), i, e)
		if (!strcmp(json_string_value(json_object_get(e, id_key)) ?: "", rq->id))
			return e;
	return NULL;
}

/* PATCH /drives/{id} after boot: a new backing file (the guest sees the new capacity). */
static void patch_drive(struct request *rq)
{
	const char *id, *path = NULL;
	json_t *limiter = NULL, *drive;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "drive_id", 's', true, &id },
					      { "path_on_host", 's', false, &path },
					      { "rate_limiter", 'o', false, &limiter }), err, sizeof(err)))
		fault(rq, ERR_DESERIALIZE "%s", err);
	else if (strcmp(id, rq->id))
		bad(rq, "The id from the path does not match the id from the body!");
	else if (limiter && !json_is_null(limiter))
		bad(rq, "Drive config error: \"rate_limiter\": not implemented by kiln yet");
	else if (!(drive = entry(rq, "drives", "drive_id")))
		fault(rq, "Drive config error: no drive \"%s\"", rq->id);
	else if (path && vm_replace_disk(rq->api->vm, rq->id, path, err, sizeof(err)))
		fault(rq, "Drive config error: %s", err);
	else {
		if (path) {
			json_object_set_new(drive, "path_on_host", json_string(path));
			/* The running configuration's strings point into the document. */
			for (unsigned i = 0; i < rq->api->cfg.cfg.nr_disks; i++)
				if (!strcmp(rq->api->cfg.cfg.disk[i].id, rq->id))
					rq->api->cfg.cfg.disk[i].path =
						json_string_value(json_object_get(drive, "path_on_host"));
		}
		ok(rq);
	}
}

/* PATCH /network-interfaces/{id} after boot: only rate limiters, which kiln does not have. */
static void patch_nic(struct request *rq)
{
	json_t *rx = NULL, *tx = NULL;
	const char *id;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "iface_id", 's', true, &id },
					      { "rx_rate_limiter", 'o', false, &rx },
					      { "tx_rate_limiter", 'o', false, &tx }), err, sizeof(err)))
		fault(rq, ERR_DESERIALIZE "%s", err);
	else if (strcmp(id, rq->id))
		fault(rq, "The id from the path [%s] does not match the id from the body [%s]!",
		      rq->id, id);
	else if ((rx && !json_is_null(rx)) || (tx && !json_is_null(tx)))
		bad(rq, "Network config error: rate limiters are not implemented by kiln yet");
	else if (!entry(rq, "network-interfaces", "iface_id"))
		fault(rq, "Network config error: no network interface \"%s\"", rq->id);
	else
		ok(rq);
}

/* Firecracker's routes: the first path segment, and the second when the route needs one ("*":
 * a resource id). Segments a route does not use are ignored, as Firecracker ignores them. */
static const struct route {
	const char *method, *tok0, *tok1;
	enum when when;
	void (*fn)(struct request *rq);
	const char *metric;     /* the request counter's name in the metrics */
} routes[] = {
	{ "GET", "", NULL, ANY, get_info, "instance_info" },
	{ "GET", "version", NULL, ANY, get_version, "vmm_version" },
	{ "GET", "vm", "config", ANY, get_vm_config, "vm_config" },
	{ "GET", "machine-config", NULL, ANY, get_machine_config, "machine_cfg" },
	{ "PUT", "machine-config", NULL, PRE_BOOT, put_machine_config, "machine_cfg" },
	{ "PATCH", "machine-config", NULL, PRE_BOOT, patch_machine_config, "machine_cfg" },
	{ "PUT", "boot-source", NULL, PRE_BOOT, put_boot_source, "boot_source" },
	{ "PUT", "drives", "*", PRE_BOOT, put_drive, "drive" },
	{ "PATCH", "drives", "*", POST_BOOT, patch_drive, "drive" },
	{ "PUT", "network-interfaces", "*", PRE_BOOT, put_nic, "network" },
	{ "PATCH", "network-interfaces", "*", POST_BOOT, patch_nic, "network" },
	{ "PUT", "entropy", NULL, PRE_BOOT, put_entropy, "entropy" },
	{ "PUT", "logger", NULL, PRE_BOOT, put_logger, "logger" },
	{ "PUT", "metrics", NULL, PRE_BOOT, put_metrics, "metrics" },
	{ "PUT", "actions", NULL, ANY, put_actions, "actions" },
	{ "PATCH", "vm", NULL, ANY, patch_vm, "vm" }, /* checks the state after the body */
	{ "PUT", "mmds", "config", PRE_BOOT, put_mmds_config, "mmds" },
	{ "GET", "mmds", NULL, ANY, get_mmds, "mmds" },
	{ "PUT", "mmds", NULL, ANY, put_mmds, "mmds" },
	{ "PATCH", "mmds", NULL, ANY, patch_mmds, "mmds" },
	{ "PUT", "vsock", NULL, PRE_BOOT, put_vsock, "vsock" },
	{ "GET", "balloon", "statistics", ANY, get_balloon_stats, "balloon" },
	{ "PATCH", "balloon", "statistics", POST_BOOT, patch_balloon_stats, "balloon" },
	{ "PUT", "balloon", NULL, PRE_BOOT, put_balloon, "balloon" },
	{ "PATCH", "balloon", NULL, POST_BOOT, patch_balloon, "balloon" },
	{ "GET", "balloon", NULL, ANY, get_balloon, "balloon" },
	{ "PUT", "cpu-config", NULL, PRE_BOOT, not_implemented, "cpu_cfg" },
	{ "PUT", "snapshot", "create", POST_BOOT, snapshot_create, "create_snapshot" },
	{ "PUT", "snapshot", "load", PRE_BOOT, snapshot_load, "load_snapshot" },
	{ "PUT", "migrate", NULL, POST_BOOT, put_migrate, "migrate" },
	{ "GET", "migrate", NULL, POST_BOOT, get_migrate, "migrate" },
};

static const struct route *find_route(const char *method, const char *tok0, const char *tok1)
{
	for (unsigned i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		if (!strcmp(r->method, method) && !strcmp(r->tok0, tok0) &&
		    (!r->tok1 || !strcmp(r->tok1, "*") || (tok1 && !strcmp(r->tok1, tok1))))
			return r;
	}
	return NULL;
}

static void handle(void *opaque, const struct http_request *hr, struct http_reply *reply)
{
	const char *method = hr->method, *path = hr->path, *body = hr->body;
	size_t len = hr->len;
	struct request rq = { .api = opaque, .reply = reply };
	bool get = !strcmp(method, "GET");
	const struct route *r = NULL;
	char segs[256], *tok0, *tok1 = NULL;
	json_error_t e;

	log_debug("api: %s %s (%zu bytes)", method, path, len);
	if (strlen(path) < sizeof(segs)) {
		snprintf(segs, sizeof(segs), "%s", path + strspn(path, "/"));
		tok0 = segs;
		if ((tok1 = strchr(tok0, '/'))) {
			*tok1++ = 0;
			tok1[strcspn(tok1, "/")] = 0;
		}
		r = find_route(method, tok0, tok1);
	} else {
		snprintf(segs, 65, "%.64s", path); /* named, shortened, in the message below */
		tok0 = segs;
	}
	if (strcmp(method, "GET") && strcmp(method, "PUT") && strcmp(method, "PATCH")) {
		fault(&rq, "Invalid request method and/or path: "
		      "%.16s %s.", method, tok0);
	} else if (get && len) {
		bad(&rq, "GET request cannot have a body.");
	} else if (!get && !len) {
		fault(&rq, "Empty %s request.", method);
	} else if (!r) {
		fault(&rq, "Invalid request method and/or path: "
		      "%s %s.", method, tok0);
	} else if (r->tok1 && !strcmp(r->tok1, "*") && (!tok1 || !*tok1)) {
		bad(&rq, "The ID cannot be empty.");
	} else if (r->tok1 && !strcmp(r->tok1, "*") && !fc_valid_id(tok1, 64, "_")) {
		bad(&rq, "API Resource IDs can only contain alphanumeric characters and underscores.");
	} else if (!get && !(rq.body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e))) {
		fault(&rq, ERR_DESERIALIZE "%s at line %d column "
		      "%d.", e.text, e.line, e.column);
	} else if (!get && !json_is_object(rq.body) && strcmp(r->tok0, "mmds")) {
		bad(&rq, ERR_DESERIALIZE "expected a JSON object.");
	} else if (r->when == PRE_BOOT && rq.api->vm) {
		bad(&rq, ERR_POST_BOOT);
	} else if (r->when == POST_BOOT && !rq.api->vm) {
		bad(&rq, ERR_PRE_BOOT);
	} else {
		rq.id = tok1;
		r->fn(&rq);
	}
	json_decref(rq.body);
	if (r)
		fc_metrics_count_request(rq.api->metrics, r->method, r->metric, reply->status >= 400);
	if (reply->status >= 400)
		log_info("api: %s %s: %u %s", method, path, reply->status,
			 json_string_value(json_object_get(reply->body, "fault_message")));
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
	api->start = o->start;
	api->start_cpu = o->start_cpu;
	if (o->metrics_path && (ret = fc_metrics_set_path(api->metrics, o->metrics_path, err, errlen)))
		snprintf(err, errlen, "metrics path %s: %s", o->metrics_path, strerror(-ret));
	if (!ret && o->sock_path)
		ret = http_start(o->sock_path, o->loop, handle, api, &api->http, err, errlen);
	if (ret) {
		fc_api_stop(api);
		return ret;
	}
	/* Firecracker's api_server.process_startup_time: from kiln's start to serving. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	fc_metrics_set_startup(api->metrics, elapsed_us(&o->start, &now),
			       elapsed_us(&o->start_cpu, &cpu));
	*out = api;
	return 0;
}

struct vm *fc_api_vm(struct fc_api *api) { return api->vm; }

void fc_api_stop(struct fc_api *api)
{
	http_stop(api->http);
	fc_metrics_free(api->metrics);
	mmds_free(api->mmds);
	fc_config_release(&api->cfg);
	json_decref(api->doc);
	free(api->id);
	free(api);
}
