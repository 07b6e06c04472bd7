/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for MMDS's network side (src/fc/mmds_net.c) and its store (src/fc/mmds.c), as a
 * guest sees them: frames go in as a virtio-net device would send them, answers come out as
 * the device would receive them. ARP for the MMDS address, frames for others passed to the
 * backend, a TCP connection whose HTTP request the real libmicrohttpd server answers, RSTs for
 * strangers, hostile headers; the store's merge patch and size limit. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fc/fc_internal.h"
#include "kiln/fc.h"
#include "kiln/devices.h"
#include "kiln/loop.h"
#include "kiln/net_backend.h"

#define MAX_FRAMES 64

static const uint8_t guest_mac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };
static const uint8_t mmds_mac[6] = { 0x06, 0x01, 0x23, 0x45, 0x67, 0x01 };
static const uint8_t guest_ip[4] = { 10, 9, 0, 2 }, mmds_ip[4] = { 169, 254, 169, 254 };

/* The backend under MMDS: counts what passes through. */
static struct {
	struct net_backend be;
	unsigned sent;
} inner;

static int inner_send(struct net_backend *be, const struct iovec *iov, int n) { inner.sent++; return 0; }
static void inner_resume(struct net_backend *be) {}
static int inner_offloads(struct net_backend *be, uint64_t f) { return 0; }
static void inner_free(struct net_backend *be) {}
static const struct net_backend_ops inner_ops = { inner_send, inner_resume, inner_offloads, inner_free };

/* What the "device" received. */
static uint8_t frames[MAX_FRAMES][2048];
static size_t frame_len[MAX_FRAMES];
static unsigned nr_frames;

static bool device_deliver(void *opaque, const struct iovec *iov, int n)
{
	assert_int_equal(n, 1);
	assert_true(nr_frames < MAX_FRAMES && iov[0].iov_len <= sizeof(frames[0]));
	memcpy(frames[nr_frames], iov[0].iov_base, iov[0].iov_len);
	frame_len[nr_frames++] = iov[0].iov_len;
	return true;
}

static struct loop *loop;
static struct mmds *mmds;
static struct net_backend *be;

static int setup(void **state)
{
	static struct dev_host host;
	struct error e;
	char err[256];
	uint32_t ip;

	inner.be = (struct net_backend){ .ops = &inner_ops };
	inner.sent = 0;
	nr_frames = 0;
	if (loop_new(&loop) || !(mmds = mmds_new(loop, err, sizeof(err))))
		return -1;
	host.loop = loop;
	memcpy(&ip, mmds_ip, 4);
	be = mmds_net_wrap(mmds, ip, &host, &inner.be, &e);
	if (!be)
		return -1;
	be->rx = (struct net_rx){ .deliver = device_deliver };
	return 0;
}

static int teardown(void **state)
{
	be->ops->free(be);
	mmds_free(mmds);
	loop_free(loop);
	return 0;
}

/* Run the loop (MMDS's sockets and tasks, the HTTP server) until nothing more happens. */
static void run(void)
{
	for (int i = 0; i < 40; i++)
		loop_wait(loop, 5);
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void send_frame(const uint8_t *f, size_t len)
{
	struct iovec iov = { (void *)f, len };

	assert_int_equal(be->ops->send(be, &iov, 1), 0);
}

/* A TCP segment from the guest's port 40000 to @dst:@port. */
static size_t tcp_frame(uint8_t *f, const uint8_t *dst, unsigned port, uint8_t flags, uint32_t seq,
			uint32_t ack, const char *data)
{
	size_t len = data ? strlen(data) : 0;

	memset(f, 0, 54);
	memcpy(f, mmds_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0800);
	f[14] = 0x45;
	put16(f + 16, (unsigned)(40 + len));
	f[22] = 64;
	f[23] = 6;
	memcpy(f + 26, guest_ip, 4);
	memcpy(f + 30, dst, 4);
	put16(f + 34, 40000);
	put16(f + 36, port);
	put32(f + 38, seq);
	put32(f + 42, ack);
	f[46] = 5 << 4;
	f[47] = flags;
	put16(f + 48, 64240);
	if (len)
		memcpy(f + 54, data, len);
	return 54 + len;
}

static void test_arp_and_pass_through(void **state)
{
	uint8_t arp[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t f[128];

	memcpy(arp + 6, guest_mac, 6);
	put16(arp + 12, 0x0806);
	memcpy(arp + 14, ((uint8_t[]){ 0, 1, 8, 0, 6, 4, 0, 1 }), 8);
	memcpy(arp + 22, guest_mac, 6);
	memcpy(arp + 28, guest_ip, 4);
	memcpy(arp + 38, mmds_ip, 4);
	send_frame(arp, sizeof(arp));
	run();
	assert_int_equal(nr_frames, 1);
	assert_int_equal(inner.sent, 0);                       /* never reaches the tap */
	assert_memory_equal(frames[0], guest_mac, 6);
	assert_int_equal(frames[0][21], 2);                   /* ARP reply */
	assert_memory_equal(frames[0] + 22, mmds_mac, 6);      /* MMDS's MAC */
	assert_memory_equal(frames[0] + 28, mmds_ip, 4);
	assert_memory_equal(frames[0] + 32, guest_mac, 6);
	/* ARP for another address, and a frame to the gateway: the backend's. */
	arp[41] = 1;
	send_frame(arp, sizeof(arp));
	send_frame(f, tcp_frame(f, (uint8_t[]){ 10, 9, 0, 1 }, 80, 0x02, 1, 0, NULL));
	assert_int_equal(inner.sent, 2);
	/* UDP, ICMP or another port at MMDS: swallowed, no answer; runts pass untouched. */
	tcp_frame(f, mmds_ip, 80, 0x02, 1, 0, NULL);
	f[23] = 17;
	send_frame(f, 54);
	send_frame(f, tcp_frame(f, mmds_ip, 22, 0x02, 1, 0, NULL));
	send_frame(f, 10);
	run();
	assert_int_equal(nr_frames, 1);
	assert_int_equal(inner.sent, 3);
}

static const uint8_t *tcp_of(unsigned i) { return frames[i] + 34; }

static void test_tcp_request_answered(void **state)
{
	const char *req = "GET /latest/meta-data HTTP/1.0\r\nHost: x\r\n\r\n";
	json_t *meta = json_pack("{s:{s:{s:s, s:{}}}}", "latest", "meta-data", "ami-id", "ami-1", "net");
	uint32_t iss, seq = 1000, got = 0;
	char body[4096] = "";
	uint8_t f[256];
	bool fin = false;

	assert_int_equal(mmds_put(mmds, meta), 0);
	json_decref(meta);
	send_frame(f, tcp_frame(f, mmds_ip, 80, 0x02, seq, 0, NULL)); /* SYN */
	run();
	assert_int_equal(nr_frames, 1);
	assert_int_equal(tcp_of(0)[13], 0x12);                  /* SYN-ACK */
	assert_int_equal(get32(tcp_of(0) + 8), seq + 1);
	iss = get32(tcp_of(0) + 4);
	seq++;
	send_frame(f, tcp_frame(f, mmds_ip, 80, 0x10, seq, iss + 1, NULL)); /* ACK */
	send_frame(f, tcp_frame(f, mmds_ip, 80, 0x18, seq, iss + 1, req));
	seq += (uint32_t)strlen(req);
	run();
	/* An ACK of the request, then the answer (in order), then a FIN after HTTP/1.0's reply. */
	for (unsigned i = 1; i < nr_frames; i++) {
		const uint8_t *tcp = tcp_of(i);
		size_t data = frame_len[i] - 54;

		assert_int_equal(get32(tcp + 8), seq);
		assert_int_equal(get32(tcp + 4), iss + 1 + got);
		assert_true(got + data < sizeof(body));
		memcpy(body + got, tcp + 20, data);
		got += (uint32_t)data;
		fin |= tcp[13] & 0x01;
	}
	assert_true(fin);
	assert_non_null(strstr(body, " 200 "));
	assert_non_null(strstr(body, "Content-Type: text/plain"));
	assert_non_null(strstr(body, "\r\n\r\nami-id\nnet/"));
	/* The guest closes too; the connection is gone: a stray ACK now gets a RST. */
	nr_frames = 0;
	send_frame(f, tcp_frame(f, mmds_ip, 80, 0x11, seq, iss + 2 + got, NULL));
	run();
	assert_int_equal(nr_frames, 1);
	assert_int_equal(tcp_of(0)[13] & 0x10, 0x10);           /* ACK of the FIN */
	nr_frames = 0;
	send_frame(f, tcp_frame(f, mmds_ip, 80, 0x10, seq + 1, iss + 2 + got, NULL));
	run();
	assert_int_equal(nr_frames, 1);
	assert_int_equal(tcp_of(0)[13], 0x04);                  /* RST */
}

static void test_hostile_segments(void **state)
{
	uint8_t f[256];

	/* Data for no connection: RST at the acknowledged number (RFC 793 "Reset Generation"), or
	 * RST|ACK without an ACK. A data offset past the frame: dropped. */
	send_frame(f, tcp_frame(f, mmds_ip, 80, 0x18, 5, 77, "x"));
	send_frame(f, tcp_frame(f, mmds_ip, 80, 0x08, 5, 0, "x"));
	run();
	assert_int_equal(nr_frames, 2);
	assert_int_equal(tcp_of(0)[13], 0x04);
	assert_int_equal(get32(tcp_of(0) + 4), 77);
	assert_int_equal(tcp_of(1)[13], 0x14);
	assert_int_equal(get32(tcp_of(1) + 8), 6);
	tcp_frame(f, mmds_ip, 80, 0x02, 1, 0, NULL);
	f[46] = 15 << 4;
	send_frame(f, 54);
	/* An IP header length past the frame, a total length larger than the frame. */
	tcp_frame(f, mmds_ip, 80, 0x02, 1, 0, NULL);
	f[14] = 0x4f;
	send_frame(f, 54);
	tcp_frame(f, mmds_ip, 80, 0x02, 1, 0, NULL);
	put16(f + 16, 60000);
	send_frame(f, 40);
	run();
	assert_int_equal(nr_frames, 2);
	assert_int_equal(inner.sent, 0);
}

/* The store: merge patch (RFC 7396: null deletes), nothing before the first PUT, a limit. */
static void test_store(void **state)
{
	json_t *patch = json_pack("{s:{s:n, s:i}}", "a", "b", "c", 3), *big, *v;
	char *s = calloc(1, 60001);

	assert_int_equal(mmds_patch(mmds, patch), -ENODATA);
	assert_int_equal(mmds_put(mmds, v = json_pack("{s:{s:i}}", "a", "b", 1)), 0);
	json_decref(v);
	assert_int_equal(mmds_patch(mmds, patch), 0);
	v = mmds_get(mmds);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "a"), "c")), 3);
	assert_null(json_object_get(json_object_get(v, "a"), "b"));
	json_decref(v);
	memset(s, 'x', 60000);
	big = json_pack("{s:s}", "k", s);
	assert_int_equal(mmds_put(mmds, big), -E2BIG);
	assert_int_equal(mmds_patch(mmds, big), -E2BIG);
	v = mmds_get(mmds); /* unchanged */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "a"), "c")), 3);
	json_decref(v);
	json_decref(big);
	json_decref(patch);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_arp_and_pass_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_request_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
	};
	char err[600];

	/* kiln loads these before its seccomp filters; the tests, before any test. */
	if (http_library_load(err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}

	return cmocka_run_group_tests(tests, NULL, NULL);
}
