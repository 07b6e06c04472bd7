/* SPDX-License-Identifier: Apache-2.0 */
/* fc_internal — shared by the files of src/fc only: the HTTP layer under the API server, the
 * metrics, MMDS, and the API server's pieces, laid out as Firecracker's own API server is:
 *
 *   router.c     request parsing and routing (Firecracker's api_server/parsed_request.rs): the
 *                route table, the pre-boot / post-boot rules, request counting;
 *   document.c   the configuration document every PUT and PATCH edits, and GET /vm/config;
 *   resources.c, balloon.c, services.c, snapshot.c
 *                the endpoints (its api_server/request/<resource>.rs);
 *   vmm.c        the controller and the VM's actions (its rpc_interface.rs): InstanceStart,
 *                snapshot load, pause and resume;
 *   guest_view.c what the guest sees of a configuration: a migration's destination checks
 *                the stream's against its operator's.
 *
 * Everything here runs on the thread of the event loop the API server was started on.
 */
#ifndef KILN_FC_INTERNAL_H
#define KILN_FC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "kiln/fc.h"
#include "kiln/loop.h"

/* Firecracker's kernel command line when "boot-source" has no "boot_args". */
#define FC_DEFAULT_CMDLINE "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux " \
			   "i8042.nomux i8042.nopnp i8042.dumbkbd"

#define FC_HTTP_MAX_BODY 51200    /* Firecracker's default --http-api-max-payload-size */
#define FC_HTTP_MAX_CLIENTS 256   /* connections served at once; more wait in the backlog */
#define FC_HTTP_BACKLOG 1024      /* connections waiting to be accepted (capped by somaxconn) */

/* The answer to one request: a status and a JSON body, or a text/plain body, or neither (as
 * with 204); the HTTP layer takes both. */
struct http_reply {
	unsigned status;
	json_t *body;           /* sent as application/json */
	char *text;             /* malloc'd; sent as text/plain, or application/json with json_text */
	bool json_text;
	const char *allow;      /* an Allow header (static), or NULL */
	bool deprecation;       /* a "Deprecation: true" header (the request used a deprecated
				   field) */
};

/* One complete request: method and path as sent, the body (NUL-terminated; len 0 when there
 * was none). */
struct http_request {
	const char *method, *path, *body;
	size_t len;
	void *conn;             /* for http_header() */
};

/* The value of header @name (case-insensitive) of @rq, or NULL. */
const char *http_header(const struct http_request *rq, const char *name);

/* Called on the loop thread once a request is complete. */
typedef void (*http_handler)(void *opaque, const struct http_request *rq,
			     struct http_reply *reply);

struct http_server;

/* Serve HTTP with libmicrohttpd from @loop: on a new Unix socket at @path (it must not exist),
 * or, with @path NULL, only on connections given to http_add_connection(). Returns 0 with
 * *out set, or -errno with a message in @err (-ENOENT: http_library_load() was not called). */
int http_start(const char *path, struct loop *loop, http_handler handler, void *opaque,
	       struct http_server **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Bodies larger than @bytes are answered 400 (FC_HTTP_MAX_BODY until set). */
void http_set_max_body(struct http_server *s, size_t bytes);

/* Serve the connected stream socket @fd (taken over: closed by the server, also when it
 * cannot take it) whose peer is @addr. Returns 0 or -errno. */
struct sockaddr;
int http_add_connection(struct http_server *s, int fd, const struct sockaddr *addr,
			unsigned addrlen);

/* Close every connection and the socket, and remove the socket's path. NULL is fine. */
void http_stop(struct http_server *s);

/* {"fault_message": @fmt...}, Firecracker's error body. */
json_t *http_fault(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct vm;

/* Firecracker's metrics (docs/metrics.md): JSON lines with the counters of every block and
 * network device and of the API, each line the change since the previous one; written when the
 * VM starts, every 60 s, and on FlushMetrics. */
struct fc_metrics;

/* Metrics with no file yet, served on @loop. NULL when out of memory. */
struct fc_metrics *fc_metrics_new(struct loop *loop);

/* Write to @path (an existing file or named pipe, as Firecracker). Once only. Returns 0,
 * -EEXIST (already set: Firecracker's "Reinitialization of metrics not allowed.") or -errno
 * with a message in @err. */
int fc_metrics_set_path(struct fc_metrics *m, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The VM is running: write a line now and then every 60 s (when a path is set). Returns 0 or
 * -errno. */
int fc_metrics_start(struct fc_metrics *m, struct vm *vm) __attribute__((warn_unused_result));

/* Count one API request: @method "GET"/"PUT"/"PATCH", @name Firecracker's counter name
 * (e.g. "machine_cfg"), @failed when it was answered with an error. */
void fc_metrics_count_request(struct fc_metrics *m, const char *method, const char *name,
			      bool failed);

/* Count one request that used a deprecated field (Firecracker's
 * deprecated_api.deprecated_http_api_calls). */
void fc_metrics_count_deprecated(struct fc_metrics *m);

/* Write one line now. Returns 0 (also when no path is set) or -errno. */
int fc_metrics_flush(struct fc_metrics *m);

/* The process's start-up cost, reported under "api_server" (microseconds). */
void fc_metrics_set_startup(struct fc_metrics *m, uint64_t wall_us, uint64_t cpu_us);

/* Stop the periodic flush and close the file. NULL is fine. */
void fc_metrics_free(struct fc_metrics *m);

/* MMDS, Firecracker's microVM metadata service (docs/mmds): a JSON store the API fills and the
 * guest reads over HTTP at a link-local address through the network interfaces that
 * "mmds-config" names, with V1 (open) or V2 (session token) semantics. */
struct mmds;

/* A store with nothing in it yet, its guest-facing HTTP server on @loop. NULL when the server
 * cannot start (message in @err). */
struct mmds *mmds_new(struct loop *loop, char *err, size_t errlen);
/* Close the guest's connections and free the store. NULL is fine. */
void mmds_free(struct mmds *m);

/* The store's limit, @bytes of compact JSON (51200 until set: Firecracker's default). */
void mmds_set_limit(struct mmds *m, size_t bytes);

/* PUT /mmds: replace the store with @value. Returns 0, or -E2BIG when it is larger than the
 * limit. */
int mmds_put(struct mmds *m, json_t *value);
/* PATCH /mmds: RFC 7396 merge patch. Returns 0, -ENODATA before the first PUT, or -E2BIG
 * (the store unchanged). */
int mmds_patch(struct mmds *m, json_t *patch);
/* GET /mmds: a new reference to the store ({} before the first PUT). */
json_t *mmds_get(struct mmds *m);

/* Set the guest-facing side from "mmds-config": V2 needs tokens, @imds_compat answers in IMDS
 * format whatever the Accept header says. */
void mmds_configure(struct mmds *m, bool v2, bool imds_compat);

/* Serve one guest TCP connection whose stream arrives on @fd (taken over), from
 * @peer_ip:@peer_port (network order). Returns 0 or -errno. */
int mmds_add_connection(struct mmds *m, int fd, uint32_t peer_ip, uint16_t peer_port);

/* A struct net_filter's wrap(): put MMDS at address @ip (network order) between a NIC and its
 * backend @inner (taken over; freed on failure). Returns the filtering backend, or NULL with
 * @e set. */
struct dev_host;
struct net_backend;
struct net_backend *mmds_net_wrap(struct mmds *m, uint32_t ip, struct dev_host *host,
				  struct net_backend *inner, struct error *e);

/* The API server (include/kiln/fc.h): one Firecracker-style VM's controller. */

#define FC_ERR_POST_BOOT "The requested operation is not supported after starting the microVM."
#define FC_ERR_PRE_BOOT "The requested operation is not supported before starting the microVM."
#define FC_ERR_DESERIALIZE "An error occurred when deserializing the json body of a request: "

/* The controller of one VM: its configuration, its VM once started, what serves it. */
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
	bool pci;                /* --enable-pci: virtio-pci instead of virtio-mmio */
	/* A live migration's VM, made from the stream's configuration while the source still
	 * pre-copies (fc_api_migration_prepare()), until its state arrives: */
	struct vm *prepared;
	json_t *prepared_doc;    /* the document it was made from (cfg's strings point into it) */
	char *prepared_config;   /* the stream's configuration, which the state must repeat */
	size_t prepared_len;
};

/* One request a route's handler answers. */
struct fc_request {
	struct fc_api *api;
	const char *id;          /* the path's second segment, for routes that take one */
	const char *sub;         /* the third ("start" in /balloon/hinting/start), or NULL */
	json_t *body;            /* NULL for GET */
	struct http_reply *reply;
	const char *deprecated;  /* what fc_deprecated() noted, or NULL */
};

/* When a route may run: Firecracker's "not allowed pre-boot / post-boot" lists. */
enum fc_when { FC_ANY, FC_PRE_BOOT, FC_POST_BOOT };

/* One of Firecracker's routes: the first path segment, and the second when the route needs one
 * ("*": a resource id). */
struct fc_route {
	const char *method, *tok0, *tok1;
	enum fc_when when;
	void (*fn)(struct fc_request *rq); /* answers in rq->reply */
	const char *metric;     /* the request counter's name in the metrics */
};

/* What the router made of a request before its handler runs. */
struct fc_routed {
	const struct fc_route *route; /* the route matched, or NULL; set also when it was refused */
	const char *id;               /* the path's second segment (in segs), or NULL */
	const char *sub;              /* its third (in segs), or NULL */
	json_t *body;                 /* the parsed body (the caller's reference), or NULL */
	char segs[256];               /* the path, split */
};

/* @rq used a deprecated field or value; @msg (static) is Firecracker's notice ("PUT
 * /machine-config: cpu_template field is deprecated."). Whatever the request's outcome, its
 * reply carries "Deprecation: true", the log warns with @msg and the metrics count it, as
 * Firecracker's api_server does for a request that parsed. */
void fc_deprecated(struct fc_request *rq, const char *msg);

/* The route table, in the order routes are tried; *n entries. */
const struct fc_route *fc_routes(size_t *n);

/* Whether route @r may run with a VM started (@booted) or not: NULL, or the fault message of
 * Firecracker's pre-boot / post-boot rule. Pure. */
const char *fc_route_refusal(const struct fc_route *r, bool booted);

/* Route request @method @path with body @body (@len bytes; 0: none) as Firecracker's
 * parsed_request.rs does, for a VM started (@booted) or not: the method, the path, the resource
 * id, the body (JSON; an object except for /mmds), then the route's pre-boot / post-boot rule.
 * Fills @out (release out->body with json_decref() either way); returns 0 when out->route's
 * handler is to run, else -EINVAL with the fault message (a 400) in @err. Pure: touches no VM
 * and no global, so tests run it for either boot state. */
int fc_route_request(const char *method, const char *path, const char *body, size_t len,
		     bool booted, struct fc_routed *out, char *err, size_t errlen);

/* The API server's http_handler (@opaque: the struct fc_api): route the request, run its
 * handler, count it in the metrics under the route's name and log a refusal. Loop thread. */
void fc_api_handle(void *opaque, const struct http_request *hr, struct http_reply *reply);

/* The answers of a handler, into rq->reply: 204 with no body; 200 with @body (reference taken;
 * NULL, out of memory, makes it a 500); 400 with {"fault_message": @fmt...}. */
void fc_reply_ok(struct fc_request *rq);
void fc_reply_json(struct fc_request *rq, json_t *body);
void fc_reply_fault(struct fc_request *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A check a request makes beyond the parser's, on the configuration it would make: e.g. that
 * the files it names open. Returns 0 or -errno with a message in @err. */
typedef int (*fc_config_check)(const struct fc_request *rq, const struct fc_config *c, char *err,
			       size_t errlen);

/* Replace the document by @candidate if it parses (fc_config_parse, no boot source needed) and
 * passes @check (may be NULL), answering 204; else answer 400 with the message after @prefix
 * and leave the document as it was. Takes the reference to @candidate (NULL: out of memory). */
void fc_doc_commit(struct fc_request *rq, json_t *candidate, const char *prefix,
		   fc_config_check check);

/* A copy of the document with @key set to @value (reference taken), or NULL (out of memory). */
json_t *fc_doc_with(const struct fc_api *api, const char *key, json_t *value);

/* A copy of the document with the request's body in list @key, replacing the entry whose
 * @id_key is the path's id, or appended; NULL when out of memory. */
json_t *fc_doc_with_entry(const struct fc_request *rq, const char *key, const char *id_key);

/* The document's entry of list @key whose @id_key is the path's id (borrowed), or NULL. */
json_t *fc_doc_entry(const struct fc_request *rq, const char *key, const char *id_key);

/* The machine configuration with Firecracker's defaults filled in (a new reference), or NULL
 * when out of memory. As Firecracker's GET /machine-config: "cpu_template" only when a static
 * template other than "None" is set and no custom one ("cpu-config") replaces it. */
json_t *fc_doc_machine_config(const struct fc_api *api);

/* Set the members of object @from in object @into, but those that are null: Firecracker
 * takes a null optional field as absent. Returns 0 or -ENOMEM. */
int fc_doc_merge(json_t *into, const json_t *from) __attribute__((warn_unused_result));

/* Whether two FullVmConfiguration documents, both accepted by fc_config_parse(), describe
 * the same guest: @stream, a migration stream's, and @local, its destination operator's
 * (--config-file). Compared with Firecracker's defaults filled in: "machine-config"
 * (vcpu_count, mem_size_mib, smt, cpu_template), "cpu-config" (the custom CPU template, as a
 * whole), "boot-source" boot_args, "drives" by drive_id in order (is_root_device,
 * is_read_only, cache_type, partuuid), "network-interfaces" by iface_id in order (guest_mac),
 * "vsock" (guest_cid), "balloon", "entropy" and "mmds-config" (present or not, and their
 * keys). Paths, taps, sockets, I/O engines, rate limiters,
 * track_dirty_pages, huge_pages, the logger and the metrics are the host's and not compared.
 * Pure. Returns 0, or -EINVAL with the first difference in @err:
 *   drives "rootfs": is_read_only is true in the stream, false in --config-file
 *   vsock: in the stream, not in --config-file */
int fc_config_guest_match(json_t *stream, json_t *local, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The configuration a migration's destination restores with (a new reference), from the
 * stream's document @stream (the peer's: checked with fc_config_parse() first) and its
 * operator's @local (--config-file, or NULL): @local itself when it describes the stream's
 * guest (fc_config_guest_match()), so that every host resource comes from the operator;
 * without @local, the stream's own when it names no host resource a restore would open (a
 * drive's path_on_host, a NIC's host_dev_name, vsock's uds_path, the logger's log_path, the
 * metrics' metrics_path; its boot-source paths are never opened by a restore), less its
 * logger, metrics, track_dirty_pages and huge_pages. Pure. Returns NULL with a message naming
 * the section, the entry and the key in @err when refused (or out of memory). */
json_t *fc_config_incoming(json_t *stream, json_t *local, char *err, size_t errlen);

/* The configuration document of snapshot @snap, loaded as @p says (kept for the restored VM
 * as its document): the "config" section's JSON, for a migration (p->migration) what
 * fc_config_incoming() makes of it, track_dirty_pages set when p->track_dirty_pages. No KVM,
 * no files. Returns 0 with *out a new reference, or -EINVAL with a message in @err. */
struct snap_reader;
int fc_snapshot_config(const struct snap_reader *snap, const struct fc_snapshot_load *p,
		       json_t **out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The handlers of the route table (router.c), one per endpoint, on the loop thread. Each
 * answers in rq->reply, errors included: 400 with Firecracker's fault message (413 when MMDS's
 * store would grow too large, 500 when out of memory); a refused request changes nothing. The
 * router has checked the path, the id, the body's JSON and the route's boot rule already.
 * document.c: */
void fc_get_vm_config(struct fc_request *rq);          /* GET /vm/config */
/* resources.c: */
void fc_get_info(struct fc_request *rq);               /* GET / */
void fc_get_version(struct fc_request *rq);            /* GET /version */
void fc_get_machine_config(struct fc_request *rq);     /* GET /machine-config */
void fc_put_machine_config(struct fc_request *rq);     /* PUT /machine-config */
void fc_patch_machine_config(struct fc_request *rq);   /* PATCH /machine-config */
void fc_put_boot_source(struct fc_request *rq);        /* PUT /boot-source */
void fc_put_drive(struct fc_request *rq);              /* PUT /drives/{id} */
void fc_patch_drive(struct fc_request *rq);            /* PATCH /drives/{id}, after boot */
void fc_put_nic(struct fc_request *rq);                /* PUT /network-interfaces/{id} */
void fc_patch_nic(struct fc_request *rq);              /* PATCH /network-interfaces/{id} */
void fc_put_entropy(struct fc_request *rq);            /* PUT /entropy */
void fc_put_serial(struct fc_request *rq);             /* PUT /serial */
void fc_put_vsock(struct fc_request *rq);              /* PUT /vsock */
void fc_get_balloon_hinting(struct fc_request *rq);   /* GET /balloon/hinting/status */
void fc_patch_balloon_hinting(struct fc_request *rq); /* PATCH /balloon/hinting/start|stop */
void fc_put_cpu_config(struct fc_request *rq);         /* PUT /cpu-config */
/* balloon.c: */
void fc_put_balloon(struct fc_request *rq);            /* PUT /balloon */
void fc_patch_balloon(struct fc_request *rq);          /* PATCH /balloon, after boot */
void fc_get_balloon(struct fc_request *rq);            /* GET /balloon */
void fc_get_balloon_stats(struct fc_request *rq);      /* GET /balloon/statistics */
void fc_patch_balloon_stats(struct fc_request *rq);    /* PATCH /balloon/statistics */
/* services.c: */
void fc_put_logger(struct fc_request *rq);             /* PUT /logger */
void fc_put_metrics(struct fc_request *rq);            /* PUT /metrics */
void fc_put_mmds_config(struct fc_request *rq);        /* PUT /mmds/config */
void fc_put_mmds(struct fc_request *rq);               /* PUT /mmds */
void fc_patch_mmds(struct fc_request *rq);             /* PATCH /mmds */
void fc_get_mmds(struct fc_request *rq);               /* GET /mmds */
/* snapshot.c: */
void fc_put_snapshot_create(struct fc_request *rq);    /* PUT /snapshot/create */
void fc_put_snapshot_load(struct fc_request *rq);      /* PUT /snapshot/load */
void fc_put_migrate(struct fc_request *rq);            /* PUT /migrate (kiln's own) */
void fc_get_migrate(struct fc_request *rq);            /* GET /migrate */
/* vmm.c: */
void fc_put_actions(struct fc_request *rq);            /* PUT /actions */
void fc_patch_vm(struct fc_request *rq);               /* PATCH /vm */

#endif
