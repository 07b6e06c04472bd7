/* SPDX-License-Identifier: Apache-2.0 */
/* snapshot — the snapshot endpoints (Firecracker's api_server/request/snapshot.rs) and kiln's
 * own live migration endpoints, see fc_internal.h: each checks its body, then the VM does the
 * work (vm_snapshot, fc_api_snapshot_load, vm_migrate_start).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fc_internal.h"
#include "kiln/fc.h"
#include "kiln/mig_channel.h"
#include "kiln/vm.h"

/* PUT /snapshot/create: Full or Diff, of the paused VM. */
void fc_put_snapshot_create(struct fc_request *rq)
{
	const char *type = "Full", *path, *mem_path, *version = NULL;
	struct vm_snapshot_params p;
	char err[700], *config;
	int ret;

	if (fc_unpack(rq->body, "", FC_FIELDS({ "snapshot_type", 's', false, &type },
					      { "snapshot_path", 's', true, &path },
					      { "mem_file_path", 's', true, &mem_path },
					      { "version", 's', false, &version }), err, sizeof(err))) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
		return;
	}
	if (strcmp(type, "Full") && strcmp(type, "Diff")) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "unknown variant `%s`, expected `Full` or "
			       "`Diff`", type);
		return;
	}
	config = json_dumps(rq->api->doc, JSON_COMPACT);
	if (!config) {
		fc_reply_fault(rq, "Create snapshot error: out of memory");
		return;
	}
	p = (struct vm_snapshot_params){ .state_path = path, .mem_path = mem_path,
					 .diff = !strcmp(type, "Diff"), .config = config,
					 .config_len = strlen(config) };
	ret = vm_snapshot(rq->api->vm, &p, err, sizeof(err));
	free(config);
	if (ret)
		fc_reply_fault(rq, "Create snapshot error: %s", err);
	else
		fc_reply_ok(rq);
}

/* PUT /snapshot/load, before anything is configured. */
void fc_put_snapshot_load(struct fc_request *rq)
{
	struct fc_snapshot_load p = { .mem.type = VM_MEM_FILE };
	const char *mem_file = NULL, *type = NULL, *path = NULL;
	json_t *backend = NULL, *overrides = NULL, *vsock = NULL, *o;
	int diff = 0, dirty = 0, resume = 0, realtime = 0;
	char err[900];
	size_t i;

	if (fc_unpack(rq->body, "", FC_FIELDS({ "snapshot_path", 's', true, &p.snapshot_path },
					      { "mem_file_path", 's', false, &mem_file },
					      { "mem_backend", 'o', false, &backend },
					      { "enable_diff_snapshots", 'b', false, &diff },
					      { "track_dirty_pages", 'b', false, &dirty },
					      { "resume_vm", 'b', false, &resume },
					      { "network_overrides", 'o', false, &overrides },
					      { "vsock_override", 'o', false, &vsock },
					      { "clock_realtime", 'b', false, &realtime }), err,
		      sizeof(err)) ||
	    (vsock && !json_is_null(vsock) &&
	     fc_unpack(vsock, "vsock_override: ", FC_FIELDS({ "uds_path", 's', true, &p.vsock_uds }),
		       err, sizeof(err))) ||
	    (backend && !json_is_null(backend) &&
	     fc_unpack(backend, "mem_backend: ", FC_FIELDS({ "backend_type", 's', true, &type },
							  { "backend_path", 's', true, &path }),
		       err, sizeof(err)))) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
		return;
	}
	if (overrides && !json_is_null(overrides) && !json_is_array(overrides)) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "network_overrides: expected an array");
		return;
	}
	json_array_foreach(overrides, i, o) {
		const char *id, *tap;
		char where[48];

		snprintf(where, sizeof(where), "network_overrides[%zu]: ", i);
		if (fc_unpack(o, where, FC_FIELDS({ "iface_id", 's', true, &id },
						{ "host_dev_name", 's', true, &tap }), err, sizeof(err))) {
			fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
			return;
		}
	}
	p.network_overrides = json_is_array(overrides) ? overrides : NULL;
	p.clock_realtime = realtime;
	/* Firecracker's snapshot.rs TOO_MANY_FIELDS and MISSING_FIELD, as body errors. */
	if (mem_file && path) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "too many fields: either `mem_backend` or "
			       "`mem_file_path` exclusively is required.");
		return;
	}
	if (!mem_file && !path) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "missing field: either `mem_backend` or "
			       "`mem_file_path` is required.");
		return;
	}
	if (mem_file || diff)
		fc_deprecated(rq, "PUT /snapshot/load: mem_file_path and enable_diff_snapshots fields "
			      "are deprecated.");
	if (type && strcmp(type, "File") && strcmp(type, "Uffd")) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "mem_backend: unknown variant `%s`, expected "
			       "`File` or `Uffd`", type);
		return;
	}
	p.mem.type = type && !strcmp(type, "Uffd") ? VM_MEM_UFFD : VM_MEM_FILE;
	p.mem.path = mem_file ? mem_file : path;
	p.track_dirty_pages = diff || dirty;
	p.resume_vm = resume;
	if (fc_api_snapshot_load(rq->api, &p, err, sizeof(err)))
		fc_reply_fault(rq, "%s", err);
	else
		fc_reply_ok(rq);
}

/* PUT /migrate {"destination_url": "tcp:HOST:PORT", and exactly one of "tls_psk_file": FILE,
 * "tls_x509_dir": DIR, "insecure_plain_tcp": true}: kiln's own (Firecracker has no live
 * migration): loads the channel's credentials and connects, then starts it; GET /migrate
 * follows it. The destination is `kiln restore --incoming tcp:HOST:PORT` with the matching
 * --tls-psk, --tls-x509 or --insecure-plain-tcp. */
void fc_put_migrate(struct fc_request *rq)
{
	static const char *const names[3] = { "\"tls_psk_file\"", "\"tls_x509_dir\"",
					      "\"insecure_plain_tcp\": true" };
	const char *url, *psk = NULL, *x509 = NULL;
	struct mig_security sec;
	struct mig_creds *creds;
	char err[600], *config;
	int plain = 0, ret;

	if (fc_unpack(rq->body, "", FC_FIELDS({ "destination_url", 's', true, &url },
					      { "tls_psk_file", 's', false, &psk },
					      { "tls_x509_dir", 's', false, &x509 },
					      { "insecure_plain_tcp", 'b', false, &plain }), err,
		      sizeof(err))) {
		fc_reply_fault(rq, FC_ERR_DESERIALIZE "%s", err);
		return;
	}
	if (mig_security_choose(psk, x509, plain, names, &sec, err, sizeof(err))) {
		fc_reply_fault(rq, "Migration error: %s", err);
		return;
	}
	if (mig_creds_load(&sec, false, &creds, err, sizeof(err))) {
		fc_reply_fault(rq, "Migration error: %s%s", sec.kind == MIG_TLS_PSK ? "tls_psk_file " :
			       sec.kind == MIG_TLS_X509 ? "tls_x509_dir " : "", err);
		return;
	}
	config = json_dumps(rq->api->doc, JSON_COMPACT);
	if (!config) {
		mig_creds_free(creds);
		fc_reply_fault(rq, "Migration error: out of memory");
		return;
	}
	ret = vm_migrate_start(rq->api->vm, url, creds, config, strlen(config), err, sizeof(err));
	free(config);
	if (ret)
		fc_reply_fault(rq, "Migration error: %s", err);
	else
		fc_reply_ok(rq);
}

void fc_get_migrate(struct fc_request *rq)
{
	static const char *const states[] = { "none", "active", "completed", "failed" };
	struct vm_migration_status st;

	vm_migrate_status(rq->api->vm, &st);
	fc_reply_json(rq, json_pack("{s:s, s:i, s:I, s:I, s:I, s:s?}", "state", states[st.state],
				    "rounds", (int)st.rounds, "bytes_sent", (json_int_t)st.bytes,
				    "total_us", (json_int_t)st.total_us,
				    "downtime_us", (json_int_t)st.downtime_us,
				    "error", st.state == VM_MIGRATION_FAILED ? st.error : NULL));
}
