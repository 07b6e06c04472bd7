/* fc_internal — the HTTP layer under the API server and the metrics, shared by the files of
 * src/fc only. */
#ifndef KILN_FC_INTERNAL_H
#define KILN_FC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "kiln/loop.h"

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
 * *out set, or -errno with a message in @err. */
int http_start(const char *path, struct loop *loop, http_handler handler, void *opaque,
	       struct http_server **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

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

/* Write one line now. Returns 0 (also when no path is set) or -errno. */
int fc_metrics_flush(struct fc_metrics *m);

/* The process's start-up cost, reported under "api_server" (microseconds). */
void fc_metrics_set_startup(struct fc_metrics *m, uint64_t wall_us, uint64_t cpu_us);

void fc_metrics_free(struct fc_metrics *m);

/* MMDS, Firecracker's microVM metadata service (docs/mmds): a JSON store the API fills and the
 * guest reads over HTTP at a link-local address through the network interfaces that
 * "mmds-config" names, with V1 (open) or V2 (session token) semantics. */
struct mmds;

/* A store with nothing in it yet, its guest-facing HTTP server on @loop. NULL when the server
 * cannot start (message in @err). */
struct mmds *mmds_new(struct loop *loop, char *err, size_t errlen);
void mmds_free(struct mmds *m);

/* PUT /mmds: replace the store with @value. Returns 0, or -E2BIG when it is larger than the
 * limit (51200 bytes as JSON). */
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
 * backend @inner (taken over; freed on failure). Returns the filtering backend, or NULL with a
 * message in @err. */
struct dev_host;
struct net_backend;
struct net_backend *mmds_net_wrap(struct mmds *m, uint32_t ip, struct dev_host *host,
				  struct net_backend *inner, char *err, size_t errlen);

#endif
