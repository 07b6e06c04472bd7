/* SPDX-License-Identifier: Apache-2.0 */
/* mig_tls — how a migration's channel is secured: the operator's choice, the credentials and
 * the TLS sessions (GnuTLS), see include/kiln/mig_channel.h and mig_tls.h.
 *
 * TLS 1.2 or 1.3 under GnuTLS's NORMAL priorities, older versions and static-RSA key
 * exchange removed. With a pre-shared key, only the key exchanges that add (EC)DHE (forward
 * secrecy, as QEMU's tls-creds-psk); the destination
 * looks the source's identity up in its own key file. With X.509 (QEMU's tls-creds-x509
 * layout), the destination requires the source's client certificate, both verify the peer's
 * chain against ca-cert.pem, and the source also the destination's host name or address.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <gnutls/gnutls.h>

#include "kiln/dynlib.h"
#include "mig_tls.h"

/* GnuTLS, loaded by mig_tls_library_load() (see kiln/dynlib.h): its functions, and its
 * gnutls_malloc and gnutls_free, which are variables (pointers to the allocator it uses). */
#define GNUTLS_SYMBOLS(X)                               \
	X(gnutls_alert_get)                             \
	X(gnutls_alert_get_name)                        \
	X(gnutls_alert_send)                            \
	X(gnutls_alert_send_appropriate)                \
	X(gnutls_certificate_allocate_credentials)      \
	X(gnutls_certificate_free_credentials)          \
	X(gnutls_certificate_server_set_request)        \
	X(gnutls_certificate_set_x509_key_mem)          \
	X(gnutls_certificate_set_x509_trust_mem)        \
	X(gnutls_certificate_verification_status_print) \
	X(gnutls_credentials_set)                       \
	X(gnutls_deinit)                                \
	X(gnutls_error_is_fatal)                        \
	X(gnutls_free)                                  \
	X(gnutls_handshake)                             \
	X(gnutls_handshake_set_timeout)                 \
	X(gnutls_init)                                  \
	X(gnutls_malloc)                                \
	X(gnutls_priority_set_direct)                   \
	X(gnutls_psk_allocate_client_credentials)       \
	X(gnutls_psk_allocate_server_credentials)       \
	X(gnutls_psk_free_client_credentials)           \
	X(gnutls_psk_free_server_credentials)           \
	X(gnutls_psk_set_client_credentials2)           \
	X(gnutls_psk_set_server_credentials_function2)  \
	X(gnutls_record_check_pending)                  \
	X(gnutls_record_recv)                           \
	X(gnutls_record_send)                           \
	X(gnutls_server_name_set)                       \
	X(gnutls_session_get_ptr)                       \
	X(gnutls_session_get_verify_cert_status)        \
	X(gnutls_session_set_ptr)                       \
	X(gnutls_session_set_verify_cert)               \
	X(gnutls_strerror)                              \
	X(gnutls_transport_set_int2)

DYNLIB_LIBRARY(tls, GNUTLS_SYMBOLS, "libgnutls.so.30", "migration-tls", "TLS for live migration",
	       "required");

int mig_tls_library_load(char *err, size_t errlen)
{
	return DYNLIB_LOAD(tls, err, errlen);
}

#define CRED_FILE_MAX (1u << 20) /* bytes of a key or certificate file */
#define PSK_IDENTITY_MAX 128
/* TLS 1.2 and 1.3 only (GnuTLS's NORMAL still allows 1.0 and 1.1); key exchanges with
 * forward secrecy only: (EC)DHE with a pre-shared key, and no static-RSA exchange with
 * certificates. */
#define TLS_VERSIONS ":-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define PSK_PRIORITY "NORMAL:+ECDHE-PSK:+DHE-PSK" TLS_VERSIONS
#define X509_PRIORITY "NORMAL:-RSA" TLS_VERSIONS

struct psk_entry {
	char *identity;
	uint8_t *key;
	size_t key_len;
};

struct mig_creds {
	enum mig_security_kind kind;
	bool server;
	char *path;                      /* the PSK file, for messages */
	struct psk_entry *psk;
	unsigned nr_psk;
	gnutls_psk_client_credentials_t psk_client;
	gnutls_psk_server_credentials_t psk_server;
	gnutls_certificate_credentials_t x509;
};

#define TLS_RECORD 16384                /* bytes of data in a full TLS record */

struct mig_tls {
	gnutls_session_t s;
	uint8_t stage[TLS_RECORD];       /* small pieces gathered into one record */
	const struct mig_creds *creds;
	char host[256];                  /* the name the destination's certificate must carry */
	char unknown[PSK_IDENTITY_MAX + 1]; /* an identity the source offered that the file lacks */
};

int mig_security_choose(const char *psk, const char *x509, bool plain,
			const char *const names[3], struct mig_security *out, char *err,
			size_t errlen)
{
	static const enum mig_security_kind kinds[3] = { MIG_TLS_PSK, MIG_TLS_X509,
							 MIG_INSECURE_PLAIN };
	const bool given[3] = { psk != NULL, x509 != NULL, plain };
	int first = -1;

	for (int i = 0; i < 3; i++) {
		if (!given[i])
			continue;
		if (first >= 0) {
			snprintf(err, errlen, "%s and %s exclude each other", names[first], names[i]);
			return -EINVAL;
		}
		first = i;
	}
	if (first < 0) {
		snprintf(err, errlen, "the migration channel needs one of %s, %s or %s", names[0],
			 names[1], names[2]);
		return -EINVAL;
	}
	*out = (struct mig_security){ .kind = kinds[first],
				      .path = first == 0 ? psk : first == 1 ? x509 : NULL };
	return 0;
}

bool mig_creds_plain(const struct mig_creds *c)
{
	return c->kind == MIG_INSECURE_PLAIN;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One "identity:hexkey" line (@len bytes at @line, no newline) into @e. */
static int psk_line(const char *line, size_t len, struct psk_entry *e, char *err, size_t errlen)
{
	const char *colon = memchr(line, ':', len);
	size_t id_len, hex_len;

	if (!colon) {
		snprintf(err, errlen, "expected identity:hexkey (psktool's format)");
		return -EINVAL;
	}
	id_len = (size_t)(colon - line);
	hex_len = len - id_len - 1;
	if (!id_len || id_len > PSK_IDENTITY_MAX) {
		snprintf(err, errlen, "the identity is empty or longer than %d bytes",
			 PSK_IDENTITY_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < id_len; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
			snprintf(err, errlen, "the identity holds a control character");
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < hex_len || hex_len % 2; i++) {
		if (hex_len % 2 || hex_digit(colon[1 + i]) < 0) {
			snprintf(err, errlen, "the key is not hexadecimal (an even number of 0-9 a-f)");
			return -EINVAL;
		}
	}
	if (hex_len / 2 < MIG_PSK_MIN_BYTES) {
		snprintf(err, errlen, "the key is %zu bytes; at least %d are needed (psktool makes "
			 "32)", hex_len / 2, MIG_PSK_MIN_BYTES);
		return -EINVAL;
	}
	e->identity = strndup(line, id_len);
	e->key = malloc(hex_len / 2);
	if (!e->identity || !e->key)
		return -ENOMEM;
	e->key_len = hex_len / 2;
	for (size_t i = 0; i < e->key_len; i++)
		e->key[i] = (uint8_t)(hex_digit(colon[1 + 2 * i]) << 4 | hex_digit(colon[2 + 2 * i]));
	return 0;
}

/* The whole of @path (a regular file of at most CRED_FILE_MAX bytes) into a malloc'd,
 * NUL-terminated *out. Opened non-blocking, so that a FIFO in its place is refused, not
 * waited on. */
static int read_small_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	ssize_t n = 0;
	char *buf;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CRED_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, fd < 0 ? strerror(errno) :
			 "not a regular file of at most 1 MiB");
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	for (*len = 0; buf && *len < (size_t)st.st_size; *len += (size_t)n) {
		n = read(fd, buf + *len, (size_t)st.st_size - *len);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		n = n < 0 ? 0 : n;
	}
	close(fd);
	if (!buf)
		return -ENOMEM;
	if (*len < (size_t)st.st_size) {
		snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "shorter than its size");
		free(buf);
		return -EINVAL;
	}
	buf[*len] = 0;
	*out = buf;
	return 0;
}

/* psktool's file: one identity:hexkey per line (empty lines skipped), identities unique. */
static int load_psk_file(struct mig_creds *c, const char *path, char *err, size_t errlen)
{
	char *text, *line, why[160];
	size_t len;
	unsigned no = 0;
	int ret = read_small_file(path, &text, &len, err, errlen);

	if (ret)
		return ret;
	for (line = text; !ret && line < text + len; ) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
		struct psk_entry *grown;

		no++;
		if (n && line[n - 1] == '\r')
			n--;
		if (!n) {
			line = nl ? nl + 1 : text + len;
			continue;
		}
		grown = realloc(c->psk, (c->nr_psk + 1) * sizeof(*c->psk));
		if (!grown) {
			ret = -ENOMEM;
			break;
		}
		c->psk = grown;
		c->psk[c->nr_psk] = (struct psk_entry){ 0 };
		ret = psk_line(line, n, &c->psk[c->nr_psk], why, sizeof(why));
		c->nr_psk++; /* freed with the rest, whatever happened */
		for (unsigned i = 0; !ret && i + 1 < c->nr_psk; i++) {
			if (!strcmp(c->psk[i].identity, c->psk[c->nr_psk - 1].identity)) {
				snprintf(why, sizeof(why), "identity \"%s\" is there twice",
					 c->psk[i].identity);
				ret = -EINVAL;
			}
		}
		if (ret == -EINVAL)
			snprintf(err, errlen, "%s: line %u: %s", path, no, why);
		line = nl ? nl + 1 : text + len;
	}
	explicit_bzero(text, len);
	free(text);
	if (!ret && !c->nr_psk) {
		snprintf(err, errlen, "%s: no identity:hexkey line (psktool's format)", path);
		ret = -EINVAL;
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return ret;
}

/* The destination's look-up of the identity a source offers (GnuTLS frees *key). */
static int psk_lookup(gnutls_session_t s, const gnutls_datum_t *identity, gnutls_datum_t *key)
{
	struct mig_tls *t = tls.gnutls_session_get_ptr(s);
	const struct mig_creds *c = t->creds;
	size_t i;

	for (unsigned k = 0; k < c->nr_psk; k++) {
		const struct psk_entry *e = &c->psk[k];

		if (strlen(e->identity) != identity->size ||
		    memcmp(e->identity, identity->data, identity->size))
			continue;
		key->data = (*tls.gnutls_malloc)(e->key_len);
		if (!key->data)
			return -1;
		memcpy(key->data, e->key, e->key_len);
		key->size = (unsigned)e->key_len;
		return 0;
	}
	/* The peer's bytes, printable, for the message. */
	for (i = 0; i < identity->size && i < sizeof(t->unknown) - 1; i++)
		t->unknown[i] = identity->data[i] >= 0x20 && identity->data[i] < 0x7f &&
				identity->data[i] != '"' ? (char)identity->data[i] : '?';
	t->unknown[i] = 0;
	return -1;
}

static int load_psk(struct mig_creds *c, const char *path, char *err, size_t errlen)
{
	int ret = load_psk_file(c, path, err, errlen);

	if (ret)
		return ret;
	c->path = strdup(path);
	if (!c->path)
		ret = GNUTLS_E_MEMORY_ERROR;
	else if (c->server && !(ret = tls.gnutls_psk_allocate_server_credentials(&c->psk_server)))
		tls.gnutls_psk_set_server_credentials_function2(c->psk_server, psk_lookup);
	else if (!c->server && !(ret = tls.gnutls_psk_allocate_client_credentials(&c->psk_client)))
		ret = tls.gnutls_psk_set_client_credentials2(c->psk_client,
			&(gnutls_datum_t){ (unsigned char *)c->psk[0].identity,
					   (unsigned)strlen(c->psk[0].identity) },
			&(gnutls_datum_t){ c->psk[0].key, (unsigned)c->psk[0].key_len },
			GNUTLS_PSK_KEY_RAW);
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, tls.gnutls_strerror(ret));
		return ret == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
	}
	return 0;
}

/* @dir/@name read whole into @d (a malloc'd copy, wiped and freed by the caller). */
static int x509_file(const char *dir, const char *name, gnutls_datum_t *d, char *err,
		     size_t errlen)
{
	char path[PATH_MAX];
	size_t len;
	char *text;
	int ret;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
		snprintf(err, errlen, "%.200s...: path too long", dir);
		return -EINVAL;
	}
	ret = read_small_file(path, &text, &len, err, errlen);
	if (!ret)
		*d = (gnutls_datum_t){ .data = (unsigned char *)text, .size = (unsigned)len };
	return ret;
}

/* QEMU's tls-creds-x509 directory: ca-cert.pem, and this side's certificate and key. */
static int load_x509(struct mig_creds *c, const char *dir, char *err, size_t errlen)
{
	const char *side = c->server ? "server" : "client";
	gnutls_datum_t file[3] = { { 0 } }; /* ca, cert, key */
	char name[3][32];
	int ret;

	snprintf(name[0], sizeof(name[0]), "ca-cert.pem");
	snprintf(name[1], sizeof(name[1]), "%s-cert.pem", side);
	snprintf(name[2], sizeof(name[2]), "%s-key.pem", side);
	ret = x509_file(dir, name[0], &file[0], err, errlen);
	ret = ret ?: x509_file(dir, name[1], &file[1], err, errlen);
	ret = ret ?: x509_file(dir, name[2], &file[2], err, errlen);
	if (!ret && tls.gnutls_certificate_allocate_credentials(&c->x509)) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
	}
	if (!ret) {
		ret = tls.gnutls_certificate_set_x509_trust_mem(c->x509, &file[0], GNUTLS_X509_FMT_PEM);
		if (ret <= 0) {
			snprintf(err, errlen, "%s/%s: %s", dir, name[0], ret ? tls.gnutls_strerror(ret) :
				 "no certificate in it");
			ret = -EINVAL;
		} else if ((ret = tls.gnutls_certificate_set_x509_key_mem(c->x509, &file[1], &file[2],
								      GNUTLS_X509_FMT_PEM)) < 0) {
			snprintf(err, errlen, "%s/%s, %s/%s: %s", dir, name[1], dir, name[2],
				 tls.gnutls_strerror(ret));
			ret = -EINVAL;
		} else {
			ret = 0;
		}
	}
	for (unsigned i = 0; i < 3; i++) {
		if (file[i].data)
			explicit_bzero(file[i].data, file[i].size);
		free(file[i].data);
	}
	return ret;
}

int mig_creds_load(const struct mig_security *s, bool server, struct mig_creds **out,
		   char *err, size_t errlen)
{
	struct mig_creds *c;
	int ret = 0;

	if (s->kind != MIG_INSECURE_PLAIN && !tls.gnutls_init) {
		snprintf(err, errlen, "GnuTLS is not loaded");
		return -ENOENT;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->kind = s->kind;
	c->server = server;
	if (s->kind == MIG_TLS_PSK)
		ret = load_psk(c, s->path, err, errlen);
	else if (s->kind == MIG_TLS_X509)
		ret = load_x509(c, s->path, err, errlen);
	if (ret) {
		mig_creds_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void mig_creds_free(struct mig_creds *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nr_psk; i++) {
		if (c->psk[i].key)
			explicit_bzero(c->psk[i].key, c->psk[i].key_len);
		free(c->psk[i].key);
		free(c->psk[i].identity);
	}
	free(c->psk);
	free(c->path);
	if (c->psk_client)
		tls.gnutls_psk_free_client_credentials(c->psk_client);
	if (c->psk_server)
		tls.gnutls_psk_free_server_credentials(c->psk_server);
	if (c->x509)
		tls.gnutls_certificate_free_credentials(c->x509);
	free(c);
}

/* A record-layer error as an errno: the socket's timeouts surface as GNUTLS_E_AGAIN (the
 * socket blocks, so nothing else returns it). */
static int tls_errno(int ret)
{
	switch (ret) {
	case GNUTLS_E_AGAIN:
	case GNUTLS_E_TIMEDOUT:
		return -ETIMEDOUT;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
		return -ECONNRESET;
	case GNUTLS_E_PUSH_ERROR:
		return -EPIPE;
	case GNUTLS_E_MEMORY_ERROR:
		return -ENOMEM;
	default:
		return -EPROTO;
	}
}

/* Why the handshake failed, in words, into @err. */
static void handshake_error(struct mig_tls *t, int ret, char *err, size_t errlen)
{
	const char *peer = t->creds->server ? "the source" : "the destination";
	/* What a pre-shared key that differs from the peer's looks like from either side. */
	const char *hint = t->creds->kind == MIG_TLS_PSK ? " (not the same key as the peer's?)" : "";
	gnutls_datum_t status = { 0 };
	char why[300];

	if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
	    !tls.gnutls_certificate_verification_status_print(
		    tls.gnutls_session_get_verify_cert_status(t->s), GNUTLS_CRT_X509, &status, 0))
		snprintf(why, sizeof(why), "its certificate: %s", status.data);
	else if (t->unknown[0])
		snprintf(why, sizeof(why), "identity \"%s\" is not in %s", t->unknown, t->creds->path);
	else if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
		snprintf(why, sizeof(why), "it refused the handshake (TLS alert: %s)%s",
			 tls.gnutls_alert_get_name(tls.gnutls_alert_get(t->s)),
			 tls.gnutls_alert_get(t->s) == GNUTLS_A_UNKNOWN_PSK_IDENTITY ? "" : hint);
	else if ((ret == GNUTLS_E_NO_CERTIFICATE_FOUND || ret == GNUTLS_E_CERTIFICATE_REQUIRED) &&
		 t->creds->server)
		snprintf(why, sizeof(why), "it sent no certificate (it has none of a CA in "
			 "ca-cert.pem)");
	else if (tls_errno(ret) == -ETIMEDOUT)
		snprintf(why, sizeof(why), "nothing arrived for %d s", MIG_IO_TIMEOUT_S);
	else if (tls_errno(ret) != -EPROTO)
		snprintf(why, sizeof(why), "the connection ended (%s)", tls.gnutls_strerror(ret));
	else
		snprintf(why, sizeof(why), "%s%s", tls.gnutls_strerror(ret), hint);
	(*tls.gnutls_free)(status.data);
	snprintf(err, errlen, "TLS handshake with %s: %s", peer, why);
}

/* Whether @host is an IP address (which a certificate carries as such, with no SNI). */
static bool is_address(const char *host)
{
	uint8_t a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* The session's priorities, credentials and peer checks, as @t's side. */
static int tls_setup(struct mig_tls *t, const char *peer_host)
{
	const struct mig_creds *c = t->creds;
	int ret;

	if (c->kind == MIG_TLS_PSK)
		return tls.gnutls_priority_set_direct(t->s, PSK_PRIORITY, NULL) ?:
		       tls.gnutls_credentials_set(t->s, GNUTLS_CRD_PSK, c->server ?
					      (void *)c->psk_server : (void *)c->psk_client);
	ret = tls.gnutls_priority_set_direct(t->s, X509_PRIORITY, NULL) ?:
	      tls.gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->x509);
	if (ret)
		return ret;
	if (c->server) {
		tls.gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
		tls.gnutls_session_set_verify_cert(t->s, NULL, 0);
		return 0;
	}
	snprintf(t->host, sizeof(t->host), "%s", peer_host ? peer_host : "");
	tls.gnutls_session_set_verify_cert(t->s, t->host, 0);
	return t->host[0] && !is_address(t->host) ?
	       tls.gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, t->host, strlen(t->host)) : 0;
}

/* In TLS 1.3 the client's handshake ends before the server has checked the client's
 * certificate: the destination says it accepted the source with one byte, 'R', which the
 * source waits for (a refusal arrives as the server's alert instead). Returns 0 or a GnuTLS
 * error. */
static int confirm(struct mig_tls *t)
{
	uint8_t byte = 0;
	ssize_t n;

	if (t->creds->server) {
		do
			n = tls.gnutls_record_send(t->s, "R", 1);
		while (n == GNUTLS_E_INTERRUPTED);
		return n < 0 ? (int)n : 0;
	}
	do
		n = tls.gnutls_record_recv(t->s, &byte, 1);
	while (n == GNUTLS_E_INTERRUPTED);
	return n < 0 ? (int)n : n == 0 || byte != 'R' ? GNUTLS_E_UNEXPECTED_PACKET : 0;
}

int mig_tls_open(const struct mig_creds *c, int fd, const char *peer_host, struct mig_tls **out,
		 char *err, size_t errlen)
{
	struct mig_tls *t = calloc(1, sizeof(*t));
	int ret;

	if (!t || tls.gnutls_init(&t->s, c->server ? GNUTLS_SERVER : GNUTLS_CLIENT)) {
		free(t);
		snprintf(err, errlen, "TLS: out of memory");
		return -ENOMEM;
	}
	t->creds = c;
	tls.gnutls_session_set_ptr(t->s, t);
	ret = tls_setup(t, peer_host);
	if (ret) {
		snprintf(err, errlen, "TLS: %s", tls.gnutls_strerror(ret));
		mig_tls_close(t);
		return ret == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EPROTO;
	}
	tls.gnutls_transport_set_int2(t->s, fd, fd);
	tls.gnutls_handshake_set_timeout(t->s, MIG_IO_TIMEOUT_S * 1000);
	do
		ret = tls.gnutls_handshake(t->s);
	while (ret < 0 && ret != GNUTLS_E_AGAIN && !tls.gnutls_error_is_fatal(ret));
	if (ret >= 0)
		ret = confirm(t);
	if (ret < 0) {
		handshake_error(t, ret, err, errlen);
		/* The peer learns why at once instead of waiting for its timeout. */
		if (t->unknown[0])
			tls.gnutls_alert_send(t->s, GNUTLS_AL_FATAL, GNUTLS_A_UNKNOWN_PSK_IDENTITY);
		else
			tls.gnutls_alert_send_appropriate(t->s, ret);
		mig_tls_close(t);
		return tls_errno(ret);
	}
	*out = t;
	return 0;
}

/* One record of @len bytes (at most TLS_RECORD). */
static int send_record(struct mig_tls *t, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = tls.gnutls_record_send(t->s, p, len);
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0)
			return tls_errno((int)n);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig_tls_send(struct mig_tls *t, const struct iovec *iov, unsigned n)
{
	size_t staged = 0;
	int ret = 0;

	/* Full records straight from the buffers; small pieces (a record's header) gathered in
	 * t->stage with what follows them. Nothing is allocated: a thread arena's heap that grew
	 * and shrank would make glibc read /proc (a system call the worker's filter forbids). */
	for (unsigned i = 0; i < n && !ret; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left && !ret) {
			size_t k = left < TLS_RECORD - staged ? left : TLS_RECORD - staged;

			if (!staged && left >= TLS_RECORD) {
				ret = send_record(t, p, TLS_RECORD);
				k = TLS_RECORD;
			} else {
				memcpy(t->stage + staged, p, k);
				staged += k;
				if (staged == TLS_RECORD) {
					ret = send_record(t, t->stage, staged);
					staged = 0;
				}
			}
			p += k;
			left -= k;
		}
	}
	return ret ?: send_record(t, t->stage, staged);
}

int mig_tls_recv(struct mig_tls *t, void *buf, uint64_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = tls.gnutls_record_recv(t->s, p, len > (1u << 30) ? (1u << 30) : len);

		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return n ? tls_errno((int)n) : -ECONNRESET;
		p += n;
		len -= (uint64_t)n;
	}
	return 0;
}

bool mig_tls_pending(struct mig_tls *t)
{
	return tls.gnutls_record_check_pending(t->s) > 0;
}

void mig_tls_close(struct mig_tls *t)
{
	if (!t)
		return;
	tls.gnutls_deinit(t->s);
	free(t);
}
