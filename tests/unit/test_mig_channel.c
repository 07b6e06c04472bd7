/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for a migration's channel (src/core/mig_channel.c, mig_tls.c): the choice of how
 * it is secured and its wording for each front end, the PSK key file's checks (each refusal
 * with its message, never a key's bytes), the X.509 directory's, and both ends of real
 * channels over a socketpair: plain, and TLS with a pre-shared key (a right key moves data
 * both ways, records split and corked; a wrong key, an unknown identity, a peer that does not
 * speak TLS fail the handshake on both sides with a message), and TLS with X.509 certificates
 * that certtool (gnutls-bin) makes for the test: a chain to the CA both ways moves data; a
 * destination's certificate of another CA, or for another host name, and a source's of
 * another CA (or of one that took our CA's name) fail on both sides, naming the fault. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "kiln/mig_channel.h"

#define KEY_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static char dir[64];

static const char *file(const char *name, const char *text)
{
	static char path[8][128];
	static unsigned next;
	char *p = path[next++ % 8];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	if (text) {
		f = fopen(p, "w");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
	}
	return p;
}

static int setup(void **state)
{
	char err[600];

	if (mig_tls_library_load(err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(dir, sizeof(dir), "/tmp/kiln-mig-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void test_security_choice(void **state)
{
	static const char *const cli[3] = { "--tls-psk FILE", "--tls-x509 DIR",
					    "--insecure-plain-tcp" };
	static const char *const api[3] = { "\"tls_psk_file\"", "\"tls_x509_dir\"",
					    "\"insecure_plain_tcp\": true" };
	struct mig_security s;
	char err[256];

	assert_int_equal(mig_security_choose(NULL, NULL, false, cli, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the migration channel needs one of --tls-psk FILE, --tls-x509 DIR "
			    "or --insecure-plain-tcp");
	assert_int_equal(mig_security_choose(NULL, NULL, false, api, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the migration channel needs one of \"tls_psk_file\", "
			    "\"tls_x509_dir\" or \"insecure_plain_tcp\": true");
	assert_int_equal(mig_security_choose("k", "d", false, cli, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--tls-psk FILE and --tls-x509 DIR exclude each other");
	assert_int_equal(mig_security_choose(NULL, "d", true, api, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\"tls_x509_dir\" and \"insecure_plain_tcp\": true exclude each "
			    "other");
	assert_int_equal(mig_security_choose("k", "d", true, cli, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--tls-psk FILE and --tls-x509 DIR exclude each other");

	assert_int_equal(mig_security_choose("k", NULL, false, cli, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, MIG_TLS_PSK);
	assert_string_equal(s.path, "k");
	assert_int_equal(mig_security_choose(NULL, "d", false, cli, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, MIG_TLS_X509);
	assert_string_equal(s.path, "d");
	assert_int_equal(mig_security_choose(NULL, NULL, true, cli, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, MIG_INSECURE_PLAIN);
	assert_null(s.path);
}

/* Key files refused, each with its message after the file's path. */
static void test_psk_file_refusals(void **state)
{
	static const struct { const char *text, *message; } rows[] = {
		{ "", "no identity:hexkey line (psktool's format)" },
		{ "\n\n", "no identity:hexkey line (psktool's format)" },
		{ "kiln " KEY_A "\n", "line 1: expected identity:hexkey (psktool's format)" },
		{ "\n:" KEY_A "\n", "line 2: the identity is empty or longer than 128 bytes" },
		{ "ki\tln:" KEY_A "\n", "line 1: the identity holds a control character" },
		{ "kiln:" KEY_A "x\n", "line 1: the key is not hexadecimal (an even number of 0-9 a-f)" },
		{ "kiln:" KEY_A "0\n", "line 1: the key is not hexadecimal (an even number of 0-9 a-f)" },
		{ "kiln:zz" KEY_A "\n", "line 1: the key is not hexadecimal (an even number of 0-9 a-f)" },
		{ "kiln:\n", "line 1: the key is 0 bytes; at least 16 are needed (psktool makes 32)" },
		{ "kiln:0123456789abcdef0123456789abcd\n",
		  "line 1: the key is 15 bytes; at least 16 are needed (psktool makes 32)" },
		{ "a:" KEY_A "\nb:" KEY_B "\na:" KEY_B "\n", "line 3: identity \"a\" is there twice" },
	};
	struct mig_security s = { .kind = MIG_TLS_PSK };
	struct mig_creds *c = NULL;
	char err[512], want[512];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		s.path = file("bad.psk", rows[i].text);
		for (int server = 0; server < 2; server++) {
			err[0] = 0;
			assert_int_equal(mig_creds_load(&s, server, &c, err, sizeof(err)), -EINVAL);
			snprintf(want, sizeof(want), "%s: %s", s.path, rows[i].message);
			if (strcmp(err, want))
				fail_msg("row %zu: got \"%s\", want \"%s\"", i, err, want);
			assert_null(strstr(err, "0123456789abcdef"));
		}
	}
	s.path = file("missing.psk", NULL);
	assert_int_equal(mig_creds_load(&s, true, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: No such file or directory", s.path);
	assert_string_equal(err, want);
	s.path = dir;
	assert_int_equal(mig_creds_load(&s, false, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file of at most 1 MiB", dir);
	assert_string_equal(err, want);
	/* A FIFO with no writer: refused at once, not waited on. */
	s.path = file("fifo.psk", NULL);
	assert_int_equal(mkfifo(s.path, 0600), 0);
	assert_int_equal(mig_creds_load(&s, true, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file of at most 1 MiB", s.path);
	assert_string_equal(err, want);
	unlink(s.path);
}

static void test_x509_dir_refusals(void **state)
{
	struct mig_security s = { .kind = MIG_TLS_X509, .path = dir };
	struct mig_creds *c = NULL;
	char err[512], want[512];

	unlink(file("ca-cert.pem", NULL));
	assert_int_equal(mig_creds_load(&s, true, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/ca-cert.pem: No such file or directory", dir);
	assert_string_equal(err, want);
	file("ca-cert.pem", "not PEM\n");
	assert_int_equal(mig_creds_load(&s, false, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/client-cert.pem: No such file or directory", dir);
	assert_string_equal(err, want);
	file("server-cert.pem", "");
	file("server-key.pem", "");
	assert_int_equal(mig_creds_load(&s, true, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/ca-cert.pem: no certificate in it", dir);
	assert_string_equal(err, want);
	unlink(file("ca-cert.pem", NULL));
}

/* One end of a channel, run on a thread of its own. */
struct end {
	const struct mig_creds *creds;
	int fd;
	struct mig_channel *ch;
	int ret;
	char err[512];
	pthread_t thread;
};

static void *end_open(void *arg)
{
	struct end *e = arg;

	/* No cmocka assertion here: this may run on a thread of its own. */
	e->ret = mig_channel_open(e->fd, e->creds, &e->ch);
	if (!e->ret)
		e->ret = mig_channel_handshake(e->ch, "localhost", e->err, sizeof(e->err));
	return NULL;
}

static struct mig_creds *creds(enum mig_security_kind kind, const char *psk_text, bool server)
{
	struct mig_security s = { .kind = kind,
				  .path = psk_text ? file(server ? "dst.psk" : "src.psk", psk_text) :
						     NULL };
	struct mig_creds *c = NULL;
	char err[512];

	if (mig_creds_load(&s, server, &c, err, sizeof(err)))
		fail_msg("%s", err);
	return c;
}

/* Open both ends at once (the destination on a thread); returns whether both succeeded. */
static bool connect_ends(struct end *dst, struct end *src)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	dst->fd = sv[0];
	src->fd = sv[1];
	assert_int_equal(pthread_create(&dst->thread, NULL, end_open, dst), 0);
	end_open(src);
	assert_non_null(src->ch);
	if (src->ret) /* the destination must not wait for a client that gave up */
		mig_channel_abort(src->ch);
	pthread_join(dst->thread, NULL);
	return !dst->ret && !src->ret;
}

static void close_ends(struct end *dst, struct end *src)
{
	mig_channel_close(dst->ch);
	mig_channel_close(src->ch);
}

struct transfer {
	struct mig_channel *ch;
	const uint8_t *data;
	size_t len;
	int ret;
};

static void *send_thread(void *arg)
{
	struct transfer *t = arg;
	uint32_t header = (uint32_t)t->len;
	struct iovec iov[2] = { { &header, sizeof(header) }, { (void *)t->data, t->len } };

	t->ret = mig_channel_send(t->ch, iov, 2);
	return NULL;
}

/* 3 MiB and a header from @src to @dst, then one byte back. */
static void exchange(struct end *dst, struct end *src)
{
	size_t len = 3u << 20;
	uint8_t *data = malloc(len), *got = malloc(len), answer = 0;
	struct transfer t = { .ch = src->ch, .data = data, .len = len };
	pthread_t thread;
	uint32_t header = 0;

	assert_non_null(data);
	assert_non_null(got);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 12));
	assert_int_equal(pthread_create(&thread, NULL, send_thread, &t), 0);
	assert_int_equal(mig_channel_recv(dst->ch, &header, sizeof(header)), 0);
	assert_int_equal(header, len);
	assert_int_equal(mig_channel_recv(dst->ch, got, len), 0);
	pthread_join(thread, NULL);
	assert_int_equal(t.ret, 0);
	assert_memory_equal(got, data, len);
	assert_int_equal(mig_channel_send(dst->ch, &(struct iovec){ "K", 1 }, 1), 0);
	assert_int_equal(mig_channel_wait(src->ch, 5), 0);
	assert_int_equal(mig_channel_recv(src->ch, &answer, 1), 0);
	assert_int_equal(answer, 'K');
	/* The end of the stream is an error for a receive that wanted more. */
	mig_channel_abort(dst->ch);
	assert_int_equal(mig_channel_recv(src->ch, &answer, 1), -ECONNRESET);
	free(data);
	free(got);
}

static void test_plain_channel(void **state)
{
	struct mig_creds *plain_dst = creds(MIG_INSECURE_PLAIN, NULL, true);
	struct mig_creds *plain_src = creds(MIG_INSECURE_PLAIN, NULL, false);
	struct end dst = { .creds = plain_dst }, src = { .creds = plain_src };
	uint8_t byte;
	int fd[2];

	assert_true(connect_ends(&dst, &src));
	exchange(&dst, &src);
	close_ends(&dst, &src);

	/* Nothing moves before the handshake. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0);
	assert_int_equal(mig_channel_open(fd[0], plain_src, &src.ch), 0);
	assert_int_equal(mig_channel_recv(src.ch, &byte, 1), -ENOTCONN);
	mig_channel_close(src.ch);
	close(fd[1]);
	mig_creds_free(plain_dst);
	mig_creds_free(plain_src);
}

static void test_psk_channel(void **state)
{
	struct mig_creds *d = creds(MIG_TLS_PSK, "other:" KEY_B "\nkiln:" KEY_A "\n", true);
	struct mig_creds *s = creds(MIG_TLS_PSK, "kiln:" KEY_A "\nother:" KEY_A "\n", false);
	struct end dst = { .creds = d }, src = { .creds = s };

	/* The source offers its file's first identity; the destination finds it anywhere. */
	assert_true(connect_ends(&dst, &src));
	exchange(&dst, &src);
	close_ends(&dst, &src);
	mig_creds_free(d);
	mig_creds_free(s);
}

static void test_psk_refused(void **state)
{
	struct mig_creds *d = creds(MIG_TLS_PSK, "kiln:" KEY_A "\n", true);
	struct mig_creds *wrong = creds(MIG_TLS_PSK, "kiln:" KEY_B "\n", false);
	struct mig_creds *stranger = creds(MIG_TLS_PSK, "stranger:" KEY_A "\n", false);
	struct mig_creds *plain = creds(MIG_INSECURE_PLAIN, NULL, false);
	struct end dst = { .creds = d }, src = { .creds = wrong };
	char want[256];

	/* A wrong key under a known identity. */
	assert_false(connect_ends(&dst, &src));
	assert_true(dst.ret == -EPROTO || dst.ret == -ECONNRESET);
	assert_true(src.ret == -EPROTO || src.ret == -ECONNRESET);
	if (strncmp(dst.err, "TLS handshake with the source: ", 31) ||
	    !strstr(dst.err, " (not the same key as the peer's?)") ||
	    strncmp(src.err, "TLS handshake with the destination: it refused the handshake (TLS "
		    "alert: ", 64) || !strstr(src.err, " (not the same key as the peer's?)"))
		fail_msg("got \"%s\" and \"%s\"", dst.err, src.err);
	close_ends(&dst, &src);

	/* An identity the destination's file lacks: named. */
	dst = (struct end){ .creds = d };
	src = (struct end){ .creds = stranger };
	assert_false(connect_ends(&dst, &src));
	snprintf(want, sizeof(want), "TLS handshake with the source: identity \"stranger\" is not "
		 "in %s", file("dst.psk", NULL));
	assert_string_equal(dst.err, want);
	assert_string_equal(src.err, "TLS handshake with the destination: it refused the handshake "
			    "(TLS alert: The SRP/PSK username is missing or not known)");
	close_ends(&dst, &src);

	/* A source that does not speak TLS. */
	dst = (struct end){ .creds = d };
	src = (struct end){ .creds = plain };
	{
		int sv[2];
		uint8_t junk[64];

		memset(junk, 'K', sizeof(junk));
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		dst.fd = sv[0];
		assert_int_equal(pthread_create(&dst.thread, NULL, end_open, &dst), 0);
		assert_int_equal(write(sv[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
		pthread_join(dst.thread, NULL);
		close(sv[1]);
	}
	assert_int_not_equal(dst.ret, 0);
	if (strncmp(dst.err, "TLS handshake with the source: ", 31))
		fail_msg("got \"%s\"", dst.err);
	mig_channel_close(dst.ch);
	mig_creds_free(d);
	mig_creds_free(wrong);
	mig_creds_free(stranger);
	mig_creds_free(plain);
}

/* certtool with @args (a shell fragment) in the test's directory. */
static void certtool(const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cd %s && certtool %s >/dev/null 2>&1", dir, args);
	if (system(cmd))
		fail_msg("certtool %s failed (is gnutls-bin installed?)", args);
}

/* A CA in @ca-cert.pem and @ca-key.pem, its name "kiln test @name". */
static void make_ca(const char *ca, const char *name)
{
	char args[512], info[128];

	snprintf(args, sizeof(args), "--generate-privkey --key-type ecdsa --outfile %s-key.pem",
		 ca);
	certtool(args);
	snprintf(args, sizeof(args), "--generate-self-signed --load-privkey %s-key.pem --template "
		 "%s.info --outfile %s-cert.pem", ca, ca, ca);
	snprintf(info, sizeof(info), "cn = kiln test %s\nca\ncert_signing_key\n"
		 "expiration_days = 30\n", name);
	file(strcat(strcpy((char[64]){ 0 }, ca), ".info"), info);
	certtool(args);
}

/* A certificate for @role (server or client) that @ca signs, into @out/. */
static void make_cert(const char *ca, const char *out, const char *role, const char *extra)
{
	char args[512], info[256];

	mkdir(file(out, NULL), 0700);
	snprintf(info, sizeof(info), "cn = kiln %s\n%s\ntls_www_%s\nsigning_key\nencryption_key\n"
		 "expiration_days = 30\n", role, extra, role);
	file("leaf.info", info);
	snprintf(args, sizeof(args), "--generate-privkey --key-type ecdsa --outfile %s/%s-key.pem",
		 out, role);
	certtool(args);
	snprintf(args, sizeof(args), "--generate-certificate --load-ca-certificate %s-cert.pem "
		 "--load-ca-privkey %s-key.pem --load-privkey %s/%s-key.pem --template leaf.info "
		 "--outfile %s/%s-cert.pem", ca, ca, out, role, out, role);
	certtool(args);
}

static void trust(const char *ca, const char *out)
{
	char args[256];

	snprintf(args, sizeof(args), "--certificate-info --infile %s-cert.pem --outfile "
		 "%s/ca-cert.pem", ca, out);
	certtool(args);
}

static struct mig_creds *x509(const char *sub, bool server)
{
	struct mig_security s = { .kind = MIG_TLS_X509, .path = file(sub, NULL) };
	struct mig_creds *c = NULL;
	char err[512];

	if (mig_creds_load(&s, server, &c, err, sizeof(err)))
		fail_msg("%s", err);
	return c;
}

static void test_x509_channel(void **state)
{
	struct mig_creds *d, *s, *rogue, *impostor, *blind, *other_host;
	struct end dst, src;

	make_ca("ca", "CA");
	make_ca("other", "other CA");
	make_ca("twin", "CA"); /* the same name as ours, another key */
	make_cert("ca", "dst", "server", "dns_name = localhost\nip_address = 127.0.0.1");
	make_cert("ca", "src", "client", "");
	make_cert("other", "rogue", "client", "");     /* a source of another CA */
	make_cert("twin", "impostor", "client", "");   /* ... of a CA that takes our CA's name */
	make_cert("ca", "blind", "client", "");        /* a source that trusts another CA */
	make_cert("ca", "elsewhere", "server", "dns_name = elsewhere.example");
	trust("ca", "dst");
	trust("ca", "src");
	trust("ca", "rogue");
	trust("ca", "impostor");
	trust("other", "blind");
	trust("ca", "elsewhere");
	d = x509("dst", true);
	s = x509("src", false);
	rogue = x509("rogue", false);
	impostor = x509("impostor", false);
	blind = x509("blind", false);
	other_host = x509("elsewhere", true);

	dst = (struct end){ .creds = d };
	src = (struct end){ .creds = s };
	assert_true(connect_ends(&dst, &src));
	exchange(&dst, &src);
	close_ends(&dst, &src);

	/* The destination refuses a source with no certificate of its CA ... */
	dst = (struct end){ .creds = d };
	src = (struct end){ .creds = rogue };
	assert_false(connect_ends(&dst, &src));
	assert_string_equal(dst.err, "TLS handshake with the source: it sent no certificate (it "
			    "has none of a CA in ca-cert.pem)");
	if (strncmp(src.err, "TLS handshake with the destination: it refused the handshake "
		    "(TLS alert: ", 73))
		fail_msg("got \"%s\"", src.err);
	close_ends(&dst, &src);

	/* ... or with one that another CA signed under our CA's name. */
	dst = (struct end){ .creds = d };
	src = (struct end){ .creds = impostor };
	assert_false(connect_ends(&dst, &src));
	assert_string_equal(dst.err, "TLS handshake with the source: its certificate: The "
			    "certificate is NOT trusted. The certificate issuer is unknown. ");
	assert_string_equal(src.err, "TLS handshake with the destination: it refused the handshake "
			    "(TLS alert: Certificate is bad)");
	close_ends(&dst, &src);

	/* The source refuses a destination whose CA it does not trust ... */
	dst = (struct end){ .creds = d };
	src = (struct end){ .creds = blind };
	assert_false(connect_ends(&dst, &src));
	assert_string_equal(src.err, "TLS handshake with the destination: its certificate: The "
			    "certificate is NOT trusted. The certificate issuer is unknown. ");
	if (strncmp(dst.err, "TLS handshake with the source: ", 31))
		fail_msg("got \"%s\"", dst.err);
	close_ends(&dst, &src);

	/* ... or whose certificate is for another host. */
	dst = (struct end){ .creds = other_host };
	src = (struct end){ .creds = s };
	assert_false(connect_ends(&dst, &src));
	assert_string_equal(src.err, "TLS handshake with the destination: its certificate: The "
			    "certificate is NOT trusted. The name in the certificate does not match "
			    "the expected. ");
	close_ends(&dst, &src);

	mig_creds_free(d);
	mig_creds_free(s);
	mig_creds_free(rogue);
	mig_creds_free(impostor);
	mig_creds_free(blind);
	mig_creds_free(other_host);
}

static void test_addresses(void **state)
{
	char err[256], host[64];
	int sv[2], fd;

	assert_int_equal(mig_connect("udp:nowhere", host, sizeof(host), err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\"udp:nowhere\" is not tcp:HOST:PORT");
	assert_int_equal(mig_accept("unix:/x", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\"unix:/x\" is not tcp:HOST:PORT or fd:N");
	assert_int_equal(mig_accept("fd:", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "fd:: not fd:N with N a descriptor number");
	assert_int_equal(mig_accept("fd:-1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "fd:-1: not fd:N with N a descriptor number");
	assert_int_equal(mig_accept("fd:99999", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "fd:99999: not an open descriptor");
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	snprintf(host, sizeof(host), "fd:%d", fd);
	assert_int_equal(mig_accept(host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ": not a socket"));
	close(fd);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(host, sizeof(host), "fd:%d", fd);
	assert_int_equal(mig_accept(host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ": not a stream socket"));
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(host, sizeof(host), "fd:%d", fd);
	assert_int_equal(mig_accept(host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ": not a connected socket"));
	close(fd);
	/* handed over non-blocking, as a caller's event loop would: made blocking */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	snprintf(host, sizeof(host), "fd:%d", sv[0]);
	assert_int_equal(mig_accept(host, err, sizeof(err)), sv[0]);
	assert_true(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_security_choice),
		cmocka_unit_test(test_psk_file_refusals),
		cmocka_unit_test(test_x509_dir_refusals),
		cmocka_unit_test(test_plain_channel),
		cmocka_unit_test(test_psk_channel),
		cmocka_unit_test(test_psk_refused),
		cmocka_unit_test(test_x509_channel),
		cmocka_unit_test(test_addresses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
