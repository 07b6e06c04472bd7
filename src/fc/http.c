/* SPDX-License-Identifier: Apache-2.0 */
/* http — the API server's HTTP layer: libmicrohttpd on a Unix socket, served from kiln's event
 * loop (no thread of its own), see fc_internal.h.
 *
 * libmicrohttpd runs with MHD_USE_EPOLL and no internal thread: its epoll descriptor and its
 * timeout are a loop_poller, and MHD_run() does the work when either is due. Bodies are
 * collected up to FC_HTTP_MAX_BODY bytes (http_set_max_body); a larger one is read to its end, dropped and answered
 * with 400, as Firecracker does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <microhttpd.h>

#include "fc_internal.h"
#include "kiln/dynlib.h"
#include "kiln/listener.h"
#include "kiln/log.h"

/* libmicrohttpd, loaded by http_library_load() (see kiln/dynlib.h). */
#define MHD_FUNCTIONS(X)                        \
	X(MHD_add_connection)                   \
	X(MHD_add_response_header)              \
	X(MHD_create_response_from_buffer)      \
	X(MHD_destroy_response)                 \
	X(MHD_get_daemon_info)                  \
	X(MHD_get_timeout)                      \
	X(MHD_lookup_connection_value)          \
	X(MHD_queue_response)                   \
	X(MHD_run)                              \
	X(MHD_start_daemon)                     \
	X(MHD_stop_daemon)

DYNLIB_LIBRARY(mhd, MHD_FUNCTIONS, "libmicrohttpd.so.12", "api", "the Firecracker API, MMDS",
	       "required");

int http_library_load(char *err, size_t errlen)
{
	return DYNLIB_LOAD(mhd, err, errlen);
}

#define HTTP_IDLE_TIMEOUT_S 60 /* a client that sends nothing for this long is dropped */

struct http_server {
	struct MHD_Daemon *daemon;
	size_t max_body;         /* bytes */
	int listen_fd;
	int epoll_fd;         /* libmicrohttpd's */
	char *path;
	struct loop *loop;
	http_handler handler;
	void *opaque;
};

/* One request being received. */
struct request {
	char *body;
	size_t len;
	bool too_big;
};

json_t *http_fault(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:s}", "fault_message", msg);
}

const char *http_header(const struct http_request *rq, const char *name)
{
	return mhd.MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

static enum MHD_Result respond(struct MHD_Connection *c, struct http_reply *reply)
{
	char *text = reply->body ? json_dumps(reply->body, JSON_COMPACT) : reply->text;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	reply->text = NULL; /* owned by text now */
	if (reply->body && !text)
		return MHD_NO;
	resp = mhd.MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (char *)"",
					       text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	mhd.MHD_add_response_header(resp, "Server", "kiln API");
	if (text)
		mhd.MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					reply->body || reply->json_text ? "application/json"
									: "text/plain");
	if (reply->allow)
		mhd.MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
	if (reply->deprecation)
		mhd.MHD_add_response_header(resp, "Deprecation", "true");
	ret = mhd.MHD_queue_response(c, reply->status, resp);
	mhd.MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct request *r = *con_cls;
	struct http_reply reply = { 0 };
	enum MHD_Result ret;

	if (!r) { /* the headers are in; the body, if any, follows */
		r = calloc(1, sizeof(*r));
		*con_cls = r;
		return r ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		if (!r->too_big && r->len + *upload_size <= s->max_body) {
			char *grown = realloc(r->body, r->len + *upload_size + 1);

			if (!grown)
				return MHD_NO;
			memcpy(grown + r->len, upload, *upload_size);
			r->body = grown;
			r->len += *upload_size;
			r->body[r->len] = 0;
		} else {
			r->too_big = true;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big) {
		reply = (struct http_reply){ .status = 400,
					     .body = http_fault("Request payload is larger than the "
								"limit of %zu bytes allowed by server.",
								s->max_body) };
	} else {
		struct http_request rq = { .method = method, .path = url,
					   .body = r->body ? r->body : "", .len = r->len, .conn = c };

		s->handler(s->opaque, &rq, &reply);
	}
	ret = respond(c, &reply);
	json_decref(reply.body);
	free(reply.text);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode code)
{
	struct request *r = *con_cls;

	if (r) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

/* libmicrohttpd's diagnostics: a printf format of its own, hence the attribute. */
__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	log_debug("api: %s", msg);
}

static unsigned http_prepare(void *opaque, struct pollfd *fds, unsigned max, int *timeout_ms)
{
	struct http_server *s = opaque;
	MHD_UNSIGNED_LONG_LONG ms;

	if (mhd.MHD_get_timeout(s->daemon, &ms) == MHD_YES &&
	    (*timeout_ms < 0 || ms < (unsigned)*timeout_ms))
		*timeout_ms = ms > 60000 ? 60000 : (int)ms;
	if (!max)
		return 0;
	fds[0] = (struct pollfd){ .fd = s->epoll_fd, .events = POLLIN };
	return 1;
}

static void http_dispatch(void *opaque, const struct pollfd *fds, unsigned n)
{
	struct http_server *s = opaque;

	/* Cheap when nothing is due; also runs the idle timeouts. */
	mhd.MHD_run(s->daemon);
}

static int listen_unix(const char *path, char *err, size_t errlen)
{
	int fd = unix_listen(path, FC_HTTP_BACKLOG);

	if (fd == -ENAMETOOLONG)
		snprintf(err, errlen, "--api-sock %s: longer than %zu bytes", path,
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	else if (fd < 0)
		snprintf(err, errlen, "--api-sock %s: %s", path, strerror(-fd));
	return fd;
}

void http_set_max_body(struct http_server *s, size_t bytes)
{
	s->max_body = bytes;
}

int http_start(const char *path, struct loop *loop, http_handler handler, void *opaque,
	       struct http_server **out, char *err, size_t errlen)
{
	struct http_server *s;
	const union MHD_DaemonInfo *info;
	int ret;

	if (!mhd.MHD_start_daemon) {
		snprintf(err, errlen, "libmicrohttpd is not loaded");
		return -ENOENT;
	}
	s = calloc(1, sizeof(*s));
	if (!s || (path && !(s->path = strdup(path)))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*s = (struct http_server){ .listen_fd = -1, .path = s->path, .loop = loop,
				   .handler = handler, .opaque = opaque, .max_body = FC_HTTP_MAX_BODY };
	s->listen_fd = path ? listen_unix(path, err, errlen) : -1;
	if (path && s->listen_fd < 0) {
		ret = s->listen_fd;
		free(s->path);
		free(s);
		return ret;
	}
	struct MHD_OptionItem listen_opt[] = {
		{ path ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, s->listen_fd, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};

	s->daemon = mhd.MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
				     (path ? 0 : MHD_USE_NO_LISTEN_SOCKET), 0, NULL, NULL,
				     on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
				     MHD_OPTION_ARRAY, listen_opt,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)FC_HTTP_MAX_CLIENTS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
	info = s->daemon ? mhd.MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		snprintf(err, errlen, "libmicrohttpd cannot serve %s", path ? path : "connections");
		http_stop(s);
		return -EIO;
	}
	s->epoll_fd = info->epoll_fd;
	ret = loop_add_poller(loop, s, &(struct loop_poller){ .prepare = http_prepare,
							      .dispatch = http_dispatch, .opaque = s });
	if (ret) {
		snprintf(err, errlen, "event loop: %s", strerror(-ret));
		http_stop(s);
		return ret;
	}
	*out = s;
	return 0;
}

int http_add_connection(struct http_server *s, int fd, const struct sockaddr *addr,
			unsigned addrlen)
{
	/* libmicrohttpd closes @fd itself when it cannot take it. */
	return mhd.MHD_add_connection(s->daemon, fd, addr, addrlen) == MHD_YES ? 0 : (-errno ?: -EIO);
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	loop_forget(s->loop, s);
	if (s->daemon)
		mhd.MHD_stop_daemon(s->daemon); /* closes the listening socket too */
	else if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->listen_fd >= 0)
		unlink(s->path);
	free(s->path);
	free(s);
}
