/* SPDX-License-Identifier: Apache-2.0 */
/* mmds — Firecracker's microVM metadata service: the JSON store and its guest-facing HTTP
 * server, see fc_internal.h. The reference is Firecracker's docs/mmds/mmds-user-guide.md and
 * its MMDS implementation (the status codes and messages below are its).
 *
 * GET answers a JSON pointer into the store (runs of '/' collapsed, a trailing '/' ignored):
 * in IMDS form by default (an object's keys sorted, one per line, objects marked with '/'; a
 * string as it is) or as JSON with "Accept: application/json". PUT /latest/api/token makes a
 * session token for X-metadata-token-ttl-seconds (1..21600) seconds; with V2 every GET needs
 * a valid one in X-metadata-token, with V1 tokens are optional. Tokens are 32 random bytes
 * (hex) kept with their expiry in a small table; the one expiring first makes room.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "fc_internal.h"
#include "kiln/log.h"

#define MMDS_LIMIT_BYTES 51200   /* the store as JSON; Firecracker's default */
#define MMDS_MAX_TOKENS 256
#define MMDS_TOKEN_BYTES 32
#define MMDS_TTL_MAX 21600
#define TOKEN_PATH "/latest/api/token"

struct token {
	char text[2 * MMDS_TOKEN_BYTES + 1];
	struct timespec expiry;  /* CLOCK_MONOTONIC; tv_sec 0: free */
};

struct mmds {
	json_t *store;           /* NULL until the first PUT */
	size_t limit;            /* bytes of the store as compact JSON */
	bool v2, imds_compat;
	struct http_server *http;
	struct token tokens[MMDS_MAX_TOKENS];
};

static size_t json_size(json_t *v)
{
	return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

int mmds_put(struct mmds *m, json_t *value)
{
	if (json_size(value) > m->limit)
		return -E2BIG;
	json_decref(m->store);
	m->store = json_incref(value);
	return 0;
}

/* RFC 7396 MergePatch(@target, @patch): a new reference to the result. */
static json_t *merge_patch(json_t *target, json_t *patch)
{
	json_t *out, *v;
	const char *key;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	json_object_foreach(patch, key, v) {
		if (json_is_null(v)) {
			json_object_del(out, key);
		} else {
			json_t *merged = merge_patch(json_object_get(out, key), v);

			json_object_set_new(out, key, merged);
		}
	}
	return out;
}

int mmds_patch(struct mmds *m, json_t *patch)
{
	json_t *merged;

	if (!m->store)
		return -ENODATA;
	merged = merge_patch(m->store, patch);
	if (!merged)
		return -ENOMEM;
	if (json_size(merged) > m->limit) {
		json_decref(merged);
		return -E2BIG;
	}
	json_decref(m->store);
	m->store = merged;
	return 0;
}

json_t *mmds_get(struct mmds *m) { return m->store ? json_incref(m->store) : json_object(); }

void mmds_configure(struct mmds *m, bool v2, bool imds_compat)
{
	m->v2 = v2;
	m->imds_compat = imds_compat;
}

static void reply_text(struct http_reply *reply, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_text(struct http_reply *reply, unsigned status, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	*reply = (struct http_reply){ .status = text ? status : 500, .text = text };
}

static bool expired(const struct timespec *t, const struct timespec *now)
{
	return t->tv_sec < now->tv_sec || (t->tv_sec == now->tv_sec && t->tv_nsec <= now->tv_nsec);
}

static bool token_valid(struct mmds *m, const char *text)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!text || strlen(text) != 2 * MMDS_TOKEN_BYTES)
		return false;
	for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++)
		if (m->tokens[i].expiry.tv_sec && !expired(&m->tokens[i].expiry, &now) &&
		    !strcmp(m->tokens[i].text, text))
			return true;
	return false;
}

/* PUT /latest/api/token. */
static void make_token(struct mmds *m, const struct http_request *rq, struct http_reply *reply)
{
	const char *ttl_text = http_header(rq, "X-metadata-token-ttl-seconds");
	uint8_t raw[MMDS_TOKEN_BYTES];
	struct token *slot = &m->tokens[0];
	struct timespec now;
	unsigned long ttl;
	char *end;

	if (!ttl_text)
		ttl_text = http_header(rq, "X-aws-ec2-metadata-token-ttl-seconds");
	if (http_header(rq, "X-Forwarded-For")) {
		reply_text(reply, 400, "Invalid header. Reason: Unsupported header name. Key: "
			   "X-Forwarded-For");
		return;
	}
	if (strcmp(rq->path, TOKEN_PATH)) {
		reply_text(reply, 404, "Resource not found: %s.", rq->path);
		return;
	}
	if (!ttl_text) {
		reply_text(reply, 400, "Token time to live value not found. Use "
			   "`X-metadata-token-ttl-seconds` or `X-aws-ec2-metadata-token-ttl-seconds` "
			   "header to specify the token's lifetime.");
		return;
	}
	errno = 0;
	ttl = strtoul(ttl_text, &end, 10);
	if (errno || end == ttl_text || *end || ttl_text[0] == '-' || ttl > UINT32_MAX) {
		reply_text(reply, 400, "Invalid header. Reason: Invalid value. "
			   "Key:X-metadata-token-ttl-seconds; Value:%.64s", ttl_text);
		return;
	}
	if (ttl < 1 || ttl > MMDS_TTL_MAX) {
		reply_text(reply, 400, "Invalid time to live value provided for token: %lu. Please "
			   "provide a value between 1 and %d.", ttl, MMDS_TTL_MAX);
		return;
	}
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
		reply_text(reply, 500, "Cannot make a token.");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* A free or expired slot, else the one that expires first. */
	for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
		struct token *t = &m->tokens[i];

		if (!t->expiry.tv_sec || expired(&t->expiry, &now)) {
			slot = t;
			break;
		}
		if (t->expiry.tv_sec < slot->expiry.tv_sec)
			slot = t;
	}
	for (unsigned i = 0; i < MMDS_TOKEN_BYTES; i++)
		snprintf(slot->text + 2 * i, 3, "%02x", raw[i]);
	slot->expiry = (struct timespec){ now.tv_sec + (time_t)ttl, now.tv_nsec };
	reply_text(reply, 200, "%s", slot->text);
}

/* RFC 6901: the value @path points at in @doc (runs of '/' count as one, a trailing '/' is
 * ignored), or NULL. */
static json_t *lookup(json_t *doc, const char *path)
{
	json_t *v = doc;

	while (v && *path) {
		char token[256];
		size_t n = 0;

		path += strspn(path, "/");
		if (!*path)
			break;
		for (; *path && *path != '/'; path++) {
			char c = *path;

			if (c == '~' && (path[1] == '0' || path[1] == '1'))
				c = *++path == '0' ? '~' : '/';
			if (n + 1 >= sizeof(token))
				return NULL;
			token[n++] = c;
		}
		token[n] = 0;
		if (json_is_object(v)) {
			v = json_object_get(v, token);
		} else if (json_is_array(v)) {
			char *end;
			unsigned long idx = strtoul(token, &end, 10);

			v = *end || !n || (token[0] == '0' && n > 1) ? NULL : json_array_get(v, idx);
		} else {
			v = NULL;
		}
	}
	return v;
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* IMDS form: an object's keys sorted, one per line (objects end in '/'), or a string. */
static void reply_imds(struct http_reply *reply, json_t *v)
{
	size_t n = json_object_size(v), len = 0, i = 0;
	const char **keys;
	const char *key;
	json_t *child;
	char *text, *p;

	if (json_is_string(v)) {
		reply_text(reply, 200, "%s", json_string_value(v));
		return;
	}
	if (!json_is_object(v)) {
		reply_text(reply, 501, "Cannot retrieve value. The value has an unsupported type.");
		return;
	}
	keys = calloc(n ? n : 1, sizeof(*keys));
	if (!keys) {
		reply_text(reply, 500, "Out of memory.");
		return;
	}
	json_object_foreach(v, key, child) {
		keys[i++] = key;
		len += strlen(key) + 2;
	}
	qsort(keys, n, sizeof(*keys), compare_keys);
	text = p = malloc(len + 1);
	if (text) {
		for (i = 0; i < n; i++)
			p += sprintf(p, "%s%s%s", i ? "\n" : "", keys[i],
				     json_is_object(json_object_get(v, keys[i])) ? "/" : "");
		*p = 0;
	}
	free(keys);
	*reply = (struct http_reply){ .status = text ? 200 : 500, .text = text };
}

static void serve_get(struct mmds *m, const struct http_request *rq, struct http_reply *reply)
{
	const char *token = http_header(rq, "X-metadata-token");
	const char *accept = http_header(rq, "Accept");
	json_t *v;

	if (!token)
		token = http_header(rq, "X-aws-ec2-metadata-token");
	if (m->v2 && !token) {
		reply_text(reply, 401, "No MMDS token provided. Use `X-metadata-token` or "
			   "`X-aws-ec2-metadata-token` header to specify the session token.");
		return;
	}
	if (m->v2 && !token_valid(m, token)) {
		reply_text(reply, 401, "MMDS token not valid.");
		return;
	}
	v = m->store ? lookup(m->store, rq->path) : NULL;
	if (!v && !(m->store == NULL && !rq->path[strspn(rq->path, "/")] && accept &&
		    !strcmp(accept, "application/json"))) {
		reply_text(reply, 404, "Resource not found: %s.", rq->path);
		return;
	}
	if (!m->imds_compat && accept && !strcmp(accept, "application/json")) {
		char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");

		*reply = (struct http_reply){ .status = text ? 200 : 500, .text = text,
					      .json_text = true };
		return;
	}
	reply_imds(reply, v);
}

/* The guest's requests (Firecracker's MMDS rules: GET and the token PUT; nothing with a
 * body). */
static void handle(void *opaque, const struct http_request *rq, struct http_reply *reply)
{
	struct mmds *m = opaque;

	if (rq->len)
		reply_text(reply, 400, "Invalid request.");
	else if (!strcmp(rq->method, "GET"))
		serve_get(m, rq, reply);
	else if (!strcmp(rq->method, "PUT"))
		make_token(m, rq, reply);
	else
		reply_text(reply, 405, "Not allowed HTTP method.");
	if (reply->status == 405)
		reply->allow = "GET, PUT";
}

int mmds_add_connection(struct mmds *m, int fd, uint32_t peer_ip, uint16_t peer_port)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = peer_port,
				    .sin_addr = { .s_addr = peer_ip } };

	return http_add_connection(m->http, fd, (const struct sockaddr *)&peer, sizeof(peer));
}

struct mmds *mmds_new(struct loop *loop, char *err, size_t errlen)
{
	struct mmds *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errlen, "MMDS: out of memory");
		return NULL;
	}
	if (http_start(NULL, loop, handle, m, &m->http, err, errlen)) {
		free(m);
		return NULL;
	}
	m->limit = MMDS_LIMIT_BYTES;
	return m;
}

void mmds_set_limit(struct mmds *m, size_t bytes)
{
	m->limit = bytes;
}

void mmds_free(struct mmds *m)
{
	if (!m)
		return;
	http_stop(m->http);
	json_decref(m->store);
	free(m);
}
