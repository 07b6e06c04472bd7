/* SPDX-License-Identifier: Apache-2.0 */
/* balloon — the balloon's endpoints (Firecracker's api_server/request/balloon.rs), see
 * fc_internal.h: configured before boot in the document, its target and statistics interval
 * changed after boot on the running device.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/virtio.h"
#include "kiln/vm.h"

void fc_put_balloon(struct fc_request *rq)
{
	fc_doc_commit(rq, fc_doc_with(rq->api, "balloon", json_incref(rq->body)),
		      "Balloon config error: ", NULL);
}

/* The configured balloon (the document's, with its defaults), or NULL with a 400. */
static json_t *balloon_or_fault(struct fc_request *rq)
{
	json_t *b = json_object_get(rq->api->doc, "balloon");

	if (!json_is_object(b)) {
		fc_reply_fault(rq, "Balloon error: No balloon device configured.");
		return NULL;
	}
	if (!json_object_get(b, "stats_polling_interval_s"))
		json_object_set_new(b, "stats_polling_interval_s", json_integer(0));
	return b;
}

void fc_get_balloon(struct fc_request *rq)
{
	json_t *b = balloon_or_fault(rq);

	if (b)
		fc_reply_json(rq, json_deep_copy(b));
}

/* PATCH /balloon after boot: a new target. */
void fc_patch_balloon(struct fc_request *rq)
{
	json_t *b = balloon_or_fault(rq);
	json_int_t mib;
	char err[300];

	if (!b)
		return;
	if (fc_unpack(rq->body, "", FC_FIELDS({ "amount_mib", 'I', true, &mib }), err, sizeof(err)))
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	else if (mib < 0 || (uint64_t)mib << 20 > rq->api->cfg.cfg.mem_bytes)
		fc_reply_fault(rq, "Balloon error: \"amount_mib\": %lld is not in [0, %llu] (the "
			       "guest's memory)", (long long)mib,
			       (unsigned long long)(rq->api->cfg.cfg.mem_bytes >> 20));
	else if (virtio_balloon_set_target(vm_device_find(rq->api->vm, &virtio_balloon_class, NULL), (uint64_t)mib << 20))
		fc_reply_fault(rq, "Balloon error: the target is too large");
	else {
		json_object_set_new(b, "amount_mib", json_integer(mib));
		fc_reply_ok(rq);
	}
}

/* PATCH /balloon/statistics after boot: a new polling interval (statistics on at boot). */
void fc_patch_balloon_stats(struct fc_request *rq)
{
	json_t *b = balloon_or_fault(rq);
	json_int_t interval;
	char err[300];

	if (!b)
		return;
	if (fc_unpack(rq->body, "", FC_FIELDS({ "stats_polling_interval_s", 'I', true, &interval }),
		      err, sizeof(err)))
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	else if (json_integer_value(json_object_get(b, "stats_polling_interval_s")) == 0 ||
		 interval <= 0 || interval > 86400)
		fc_reply_fault(rq, "Balloon error: Cannot enable or disable statistics after boot; "
			       "the interval must stay in [1, 86400].");
	else if (virtio_balloon_set_stats_interval(vm_device_find(rq->api->vm, &virtio_balloon_class, NULL), (unsigned)interval))
		fc_reply_fault(rq, "Balloon error: cannot change the statistics interval");
	else {
		json_object_set_new(b, "stats_polling_interval_s", json_integer(interval));
		fc_reply_ok(rq);
	}
}

/* GET /balloon/statistics: Firecracker's BalloonStats, with what the guest reported. */
void fc_get_balloon_stats(struct fc_request *rq)
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
		fc_reply_fault(rq, "Balloon error: Statistics for the balloon device are not "
			       "enabled.");
		return;
	}
	if (!rq->api->vm) {
		fc_reply_fault(rq, FC_ERR_PRE_BOOT);
		return;
	}
	virtio_balloon_stats(vm_device_find(rq->api->vm, &virtio_balloon_class, NULL), &s);
	out = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)s.target_pages,
			"actual_pages", (json_int_t)s.actual_pages, "target_mib",
			(json_int_t)(s.target_pages >> 8), "actual_mib", (json_int_t)(s.actual_pages >> 8));
	for (unsigned i = 0; out && i < BALLOON_NR_STATS; i++)
		if (s.valid & (1u << i))
			json_object_set_new(out, names[i], json_integer((json_int_t)s.value[i]));
	fc_reply_json(rq, out);
}

/* The hinting call's result as Firecracker words it; true when it succeeded. */
static bool hinting_ok(struct fc_request *rq, int ret)
{
	if (ret == -EOPNOTSUPP)
		fc_reply_fault(rq, "Balloon error: Free page hinting is not enabled for the balloon "
			       "device.");
	else if (ret)
		fc_reply_fault(rq, "Balloon error: The balloon device is not active yet.");
	return !ret;
}

/* PATCH /balloon/hinting/start ({"acknowledge_on_stop": bool}, true when left out; the body
 * may be left out too) and /balloon/hinting/stop after boot. */
void fc_patch_balloon_hinting(struct fc_request *rq)
{
	void *dev = vm_device_find(rq->api->vm, &virtio_balloon_class, NULL);
	int ack = 1;
	char err[300];

	if (!balloon_or_fault(rq))
		return;
	if (!rq->sub || (strcmp(rq->sub, "start") && strcmp(rq->sub, "stop"))) {
		fc_reply_fault(rq, "Invalid request method and/or path: PATCH balloon.");
		return;
	}
	if (!strcmp(rq->sub, "start") && rq->body &&
	    fc_unpack(rq->body, "", FC_FIELDS({ "acknowledge_on_stop", 'b', false, &ack }), err,
		      sizeof(err))) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
		return;
	}
	if (hinting_ok(rq, !dev ? -ENODEV : !strcmp(rq->sub, "start") ?
				   virtio_balloon_hint_start(dev, ack) : virtio_balloon_hint_stop(dev)))
		fc_reply_ok(rq);
}

/* GET /balloon/hinting/status: the host's last command and the guest's, when it sent one. */
void fc_get_balloon_hinting(struct fc_request *rq)
{
	void *dev = vm_device_find(rq->api->vm, &virtio_balloon_class, NULL);
	uint32_t host, guest;
	bool guest_set;

	if (!balloon_or_fault(rq))
		return;
	if (!rq->sub || strcmp(rq->sub, "status")) {
		fc_reply_fault(rq, "Invalid request method and/or path: GET balloon.");
		return;
	}
	if (hinting_ok(rq, dev ? virtio_balloon_hint_status(dev, &host, &guest, &guest_set) :
				 -ENODEV))
		fc_reply_json(rq, guest_set ? json_pack("{s:I, s:I}", "host_cmd", (json_int_t)host,
							"guest_cmd", (json_int_t)guest)
					    : json_pack("{s:I}", "host_cmd", (json_int_t)host));
}
