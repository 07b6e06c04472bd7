/* SPDX-License-Identifier: Apache-2.0 */
/* services — the endpoints of what serves the VM rather than describes it (Firecracker's
 * api_server/request/logger.rs, metrics.rs, mmds.rs), see fc_internal.h: the logger and the
 * metrics file, applied at once, and MMDS, its configuration in the document and its data
 * store.
 */
#include <errno.h>
#include <string.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/log.h"

/* Firecracker's logger: applied at once, not part of the VM's description. */
void fc_put_logger(struct fc_request *rq)
{
	json_t *candidate = json_pack("{s:O}", "logger", rq->body);
	struct fc_config c;
	char err[600];
	int fd = -1;

	if (!candidate) {
		fc_reply_fault(rq, "out of memory");
		return;
	}
	if (fc_config_parse(candidate, false, &c, err, sizeof(err))) {
		fc_reply_fault(rq, "Logger error: %s", err);
	} else if (c.log_path && (fd = fc_open_output(c.log_path)) < 0) {
		fc_reply_fault(rq, "Logger error: Failed to open target file %s: %s", c.log_path,
			       strerror(-fd));
	} else {
		if (fd >= 0)
			log_set_fd(fd);
		if (c.level_set)
			log_set_level(c.level);
		log_set_firecracker(rq->api->id, c.log_show_level, c.log_show_origin, c.log_module);
		fc_reply_ok(rq);
	}
	fc_config_release(&c);
	json_decref(candidate);
}

void fc_put_metrics(struct fc_request *rq)
{
	const char *path;
	char err[600];

	if (fc_unpack(rq->body, "", FC_FIELDS({ "metrics_path", 's', true, &path }), err,
		      sizeof(err)))
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
	else if (fc_metrics_set_path(rq->api->metrics, path, err, sizeof(err)))
		fc_reply_fault(rq, "Metrics error: %s", err);
	else
		fc_reply_ok(rq);
}

void fc_put_mmds_config(struct fc_request *rq)
{
	const char *version = json_string_value(json_object_get(rq->body, "version"));

	/* Firecracker's MmdsVersion: a version it does not know fails the body's deserializing. */
	if (version && strcmp(version, "V1") && strcmp(version, "V2")) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "unknown variant `%s`, expected `V1` or `V2`",
			       version);
		return;
	}
	if (!version || !strcmp(version, "V1")) /* V1 is the default */
		fc_deprecated(rq, "PUT /mmds/config: V1 is deprecated. Use V2 instead.");
	fc_doc_commit(rq, fc_doc_with(rq->api, "mmds-config", json_incref(rq->body)),
		      "MMDS config error: ", NULL);
}

static void mmds_result(struct fc_request *rq, int ret)
{
	if (ret == -E2BIG)
		*rq->reply = (struct http_reply){ .status = 413, .body = http_fault(
			"MMDS limit exceeded error: The MMDS patch request doesn't fit.") };
	else if (ret == -ENODATA)
		fc_reply_fault(rq, "MMDS error: The MMDS data store is not initialized.");
	else if (ret)
		fc_reply_fault(rq, "MMDS error: %s", strerror(-ret));
	else
		fc_reply_ok(rq);
}

void fc_put_mmds(struct fc_request *rq)
{
	if (rq->id && *rq->id)
		fc_reply_fault(rq, "Unrecognized PUT request path `%s`.", rq->id);
	else
		mmds_result(rq, mmds_put(rq->api->mmds, rq->body));
}

void fc_patch_mmds(struct fc_request *rq)
{
	mmds_result(rq, mmds_patch(rq->api->mmds, rq->body));
}

void fc_get_mmds(struct fc_request *rq) { fc_reply_json(rq, mmds_get(rq->api->mmds)); }
