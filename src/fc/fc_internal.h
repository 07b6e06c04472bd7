/* fc_internal — the HTTP layer under the API server, shared by the files of src/fc only. */
#ifndef KILN_FC_INTERNAL_H
#define KILN_FC_INTERNAL_H

#include <stddef.h>
#include <jansson.h>

#include "kiln/loop.h"

#define FC_HTTP_MAX_BODY 51200    /* Firecracker's default --http-api-max-payload-size */
#define FC_HTTP_MAX_CLIENTS 256   /* connections served at once; more wait in the backlog */
#define FC_HTTP_BACKLOG 1024      /* connections waiting to be accepted (capped by somaxconn) */

/* The answer to one request: a status and a JSON body (NULL for none, as with 204); the HTTP
 * layer takes the reference. */
struct http_reply {
	unsigned status;
	json_t *body;
};

/* Called on the loop thread once a request is complete: @method as sent, @path as sent, @body of @len bytes (NUL-terminated; @len 0
 * when there was none). */
typedef void (*http_handler)(void *opaque, const char *method, const char *path,
			     const char *body, size_t len, struct http_reply *reply);

struct http_server;

/* Listen on a new Unix socket at @path (it must not exist) and serve requests from @loop with
 * libmicrohttpd. Returns 0 with *out set, or -errno with a message in @err. */
int http_start(const char *path, struct loop *loop, http_handler handler, void *opaque,
	       struct http_server **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Close every connection and the socket, and remove the socket's path. NULL is fine. */
void http_stop(struct http_server *s);

/* {"fault_message": @fmt...}, Firecracker's error body. */
json_t *http_fault(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
