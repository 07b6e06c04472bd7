/* SPDX-License-Identifier: Apache-2.0 */
/* router — Firecracker's REST API: routing and the pre-boot / post-boot rules, see
 * fc_internal.h. The reference is Firecracker's swagger/firecracker.yaml and its API server
 * (parsed_request.rs): the same paths, status codes and fault messages.
 *
 * Routing is a pure function of the request and of whether a VM has started
 * (fc_route_request), so its every refusal can be tested without KVM; fc_api_handle() runs the
 * route's handler and counts the request under the route's metrics name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void fc_reply_ok(struct fc_request *rq) { *rq->reply = (struct http_reply){ .status = 204 }; }

void fc_reply_json(struct fc_request *rq, json_t *body)
{
	*rq->reply = (struct http_reply){ .status = body ? 200 : 500,
					   .body = body ? body : http_fault("out of memory") };
}

/* 400 with Firecracker's {"fault_message": ...}. */
void fc_reply_fault(struct fc_request *rq, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*rq->reply = (struct http_reply){ .status = 400, .body = http_fault("%s", msg) };
}

/* Firecracker's routes: the first path segment, and the second when the route needs one ("*":
 * a resource id). Segments a route does not use are ignored, as Firecracker ignores them. */
static const struct fc_route routes[] = {
	{ "GET", "", NULL, FC_ANY, fc_get_info, "instance_info" },
	{ "GET", "version", NULL, FC_ANY, fc_get_version, "vmm_version" },
	{ "GET", "vm", "config", FC_ANY, fc_get_vm_config, "vm_config" },
	{ "GET", "machine-config", NULL, FC_ANY, fc_get_machine_config, "machine_cfg" },
	{ "PUT", "machine-config", NULL, FC_PRE_BOOT, fc_put_machine_config, "machine_cfg" },
	{ "PATCH", "machine-config", NULL, FC_PRE_BOOT, fc_patch_machine_config, "machine_cfg" },
	{ "PUT", "boot-source", NULL, FC_PRE_BOOT, fc_put_boot_source, "boot_source" },
	{ "PUT", "drives", "*", FC_PRE_BOOT, fc_put_drive, "drive" },
	{ "PATCH", "drives", "*", FC_POST_BOOT, fc_patch_drive, "drive" },
	{ "PUT", "network-interfaces", "*", FC_PRE_BOOT, fc_put_nic, "network" },
	{ "PATCH", "network-interfaces", "*", FC_POST_BOOT, fc_patch_nic, "network" },
	{ "PUT", "entropy", NULL, FC_PRE_BOOT, fc_put_entropy, "entropy" },
	{ "PUT", "serial", NULL, FC_PRE_BOOT, fc_put_serial, "serial" },
	{ "PUT", "logger", NULL, FC_PRE_BOOT, fc_put_logger, "logger" },
	{ "PUT", "metrics", NULL, FC_PRE_BOOT, fc_put_metrics, "metrics" },
	{ "PUT", "actions", NULL, FC_ANY, fc_put_actions, "actions" },
	{ "PATCH", "vm", NULL, FC_ANY, fc_patch_vm, "vm" }, /* checks the state after the body */
	{ "PUT", "mmds", "config", FC_PRE_BOOT, fc_put_mmds_config, "mmds" },
	{ "GET", "mmds", NULL, FC_ANY, fc_get_mmds, "mmds" },
	{ "PUT", "mmds", NULL, FC_ANY, fc_put_mmds, "mmds" },
	{ "PATCH", "mmds", NULL, FC_ANY, fc_patch_mmds, "mmds" },
	{ "PUT", "vsock", NULL, FC_PRE_BOOT, fc_put_vsock, "vsock" },
	{ "GET", "balloon", "statistics", FC_ANY, fc_get_balloon_stats, "balloon" },
	/* Free page hinting: /balloon/hinting/start, /stop (PATCH) and /status (GET). */
	{ "GET", "balloon", "hinting", FC_POST_BOOT, fc_get_balloon_hinting, "balloon" },
	{ "PATCH", "balloon", "hinting", FC_POST_BOOT, fc_patch_balloon_hinting, "balloon" },
	{ "PATCH", "balloon", "statistics", FC_POST_BOOT, fc_patch_balloon_stats, "balloon" },
	{ "PUT", "balloon", NULL, FC_PRE_BOOT, fc_put_balloon, "balloon" },
	{ "PATCH", "balloon", NULL, FC_POST_BOOT, fc_patch_balloon, "balloon" },
	{ "GET", "balloon", NULL, FC_ANY, fc_get_balloon, "balloon" },
	{ "PUT", "cpu-config", NULL, FC_PRE_BOOT, fc_put_cpu_config, "cpu_cfg" },
	{ "PUT", "snapshot", "create", FC_POST_BOOT, fc_put_snapshot_create, "create_snapshot" },
	{ "PUT", "snapshot", "load", FC_PRE_BOOT, fc_put_snapshot_load, "load_snapshot" },
	{ "PUT", "migrate", NULL, FC_POST_BOOT, fc_put_migrate, "migrate" },
	{ "GET", "migrate", NULL, FC_POST_BOOT, fc_get_migrate, "migrate" },
};

const struct fc_route *fc_routes(size_t *n)
{
	*n = ARRAY_SIZE(routes);
	return routes;
}

static const struct fc_route *find_route(const char *method, const char *tok0, const char *tok1)
{
	for (unsigned i = 0; i < ARRAY_SIZE(routes); i++) {
		const struct fc_route *r = &routes[i];

		if (!strcmp(r->method, method) && !strcmp(r->tok0, tok0) &&
		    (!r->tok1 || !strcmp(r->tok1, "*") || (tok1 && !strcmp(r->tok1, tok1))))
			return r;
	}
	return NULL;
}

const char *fc_route_refusal(const struct fc_route *r, bool booted)
{
	if (r->when == FC_PRE_BOOT && booted)
		return FC_ERR_POST_BOOT;
	if (r->when == FC_POST_BOOT && !booted)
		return FC_ERR_PRE_BOOT;
	return NULL;
}

int fc_route_request(const char *method, const char *path, const char *body, size_t len,
		     bool booted, struct fc_routed *out, char *err, size_t errlen)
{
	bool get = !strcmp(method, "GET");
	const struct fc_route *r = NULL;
	char *tok0, *tok1 = NULL, *tok2 = NULL;
	const char *refusal;
	json_error_t e;

	*out = (struct fc_routed){ 0 };
	if (strlen(path) < sizeof(out->segs)) {
		snprintf(out->segs, sizeof(out->segs), "%s", path + strspn(path, "/"));
		tok0 = out->segs;
		if ((tok1 = strchr(tok0, '/'))) {
			*tok1++ = 0;
			if ((tok2 = strchr(tok1, '/'))) {
				*tok2++ = 0;
				tok2[strcspn(tok2, "/")] = 0;
			}
		}
		r = out->route = find_route(method, tok0, tok1);
	} else {
		snprintf(out->segs, 65, "%.64s", path); /* named, shortened, in the message below */
		tok0 = out->segs;
	}
	if (strcmp(method, "GET") && strcmp(method, "PUT") && strcmp(method, "PATCH"))
		return fc_error(err, errlen, "Invalid request method and/or path: %.16s %s.", method,
				tok0);
	if (get && len)
		return fc_error(err, errlen, "GET request cannot have a body.");
	/* Firecracker's one request whose body may be left out: a hinting run's start. */
	if (!get && !len && !(r && r->tok1 && !strcmp(r->tok1, "hinting")))
		return fc_error(err, errlen, "Empty %s request.", method);
	if (!r)
		return fc_error(err, errlen, "Invalid request method and/or path: %s %s.", method,
				tok0);
	if (r->tok1 && !strcmp(r->tok1, "*") && (!tok1 || !*tok1))
		return fc_error(err, errlen, "The ID cannot be empty.");
	if (r->tok1 && !strcmp(r->tok1, "*") && !fc_valid_id(tok1, 64, "_"))
		return fc_error(err, errlen, "API Resource IDs can only contain alphanumeric "
				"characters and underscores.");
	/* A number beyond 64 bits is a float to Firecracker's serde_json, where an integer is
	 * expected: "invalid type". */
	if (!get && len && !(out->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e)))
		return fc_error(err, errlen, FC_ERR_DESERIALIZE "%s%s at line %d column %d.",
				json_error_code(&e) == json_error_numeric_overflow ?
				"invalid type: " : "", e.text, e.line, e.column);
	if (!get && len && !json_is_object(out->body) && strcmp(r->tok0, "mmds"))
		return fc_error(err, errlen, FC_ERR_DESERIALIZE "expected a JSON object.");
	if ((refusal = fc_route_refusal(r, booted)))
		return fc_error(err, errlen, "%s", refusal);
	out->id = tok1;
	out->sub = tok2;
	return 0;
}

void fc_deprecated(struct fc_request *rq, const char *msg)
{
	rq->deprecated = msg;
}

void fc_api_handle(void *opaque, const struct http_request *hr, struct http_reply *reply)
{
	struct fc_request rq = { .api = opaque, .reply = reply };
	struct fc_routed routed;
	char err[1024];

	log_debug("api: %s %s (%zu bytes)", hr->method, hr->path, hr->len);
	if (fc_route_request(hr->method, hr->path, hr->body, hr->len, rq.api->vm != NULL, &routed,
			     err, sizeof(err))) {
		fc_reply_fault(&rq, "%s", err);
	} else {
		rq.id = routed.id;
		rq.sub = routed.sub;
		rq.body = routed.body;
		routed.route->fn(&rq);
	}
	if (rq.deprecated) {
		reply->deprecation = true;
		log_warn("%s", rq.deprecated);
		fc_metrics_count_deprecated(rq.api->metrics);
	}
	json_decref(routed.body);
	if (routed.route)
		fc_metrics_count_request(rq.api->metrics, routed.route->method, routed.route->metric,
					 reply->status >= 400);
	if (reply->status >= 400)
		log_info("api: %s %s: %u %s", hr->method, hr->path, reply->status,
			 json_string_value(json_object_get(reply->body, "fault_message")));
}
