/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile guest against MMDS's network side (src/fc/mmds_net.c) and the
 * HTTP server behind it.
 *
 * The input is a list of records. A record whose first byte has bit 7 set is a raw frame (the
 * next byte is its length); any other is a TCP segment from the guest to the MMDS address,
 * built from the record so that the fuzzer reaches every connection state: the first byte's
 * low bits are the flags, then a port selector, a sequence offset, an acknowledgement offset
 * (relative to the last sequence number MMDS sent, so handshakes complete), a header-length
 * nibble and payload bytes. Between records MMDS's poller and the HTTP server's loop run, so
 * answers flow. AddressSanitizer turns any out-of-bounds access into a crash; the target
 * checks that every frame MMDS hands the device is a well-formed Ethernet frame within bounds.
 * Build and run: scripts/fuzz [SECONDS].
 */
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fc/fc_internal.h"
#include "kiln/devices.h"
#include "kiln/log.h"
#include "kiln/fc.h"
#include "kiln/loop.h"
#include "kiln/net_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* As kiln's main(): a peer that went away (the HTTP server's or a host socket's) is an EPIPE
 * for the writer, not a SIGPIPE that ends the fuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[600];

	signal(SIGPIPE, SIG_IGN);
	/* MMDS's HTTP server is libmicrohttpd, loaded as kiln's Firecracker mode loads it. */
	if (http_library_load(err, sizeof(err)))
		abort();
	return 0;
}

static uint32_t last_seq; /* the next sequence number MMDS will send, as last seen */
static unsigned sent;

static int sink_send(struct net_backend *be, const struct iovec *iov, int n) { sent++; return 0; }
static void no_resume(struct net_backend *be) {}
static int no_offloads(struct net_backend *be, uint64_t f) { return 0; }
static void no_free(struct net_backend *be) {}
static const struct net_backend_ops sink_ops = { sink_send, no_resume, no_offloads, no_free };

static bool device_deliver(void *opaque, const struct iovec *iov, int n)
{
	const uint8_t *f = iov[0].iov_base;
	size_t len = iov[0].iov_len;

	if (n != 1 || len < 14 || len > NET_MAX_FRAME)
		abort();
	if (f[12] == 0x08 && f[13] == 0x00) { /* IPv4 + TCP from MMDS */
		size_t tcp_len;

		if (len < 54 || (size_t)(f[16] << 8 | f[17]) != len - 14)
			abort();
		tcp_len = len - 34 - (size_t)(f[46] >> 4) * 4;
		last_seq = (uint32_t)f[38] << 24 | f[39] << 16 | f[40] << 8 | f[41];
		last_seq += (uint32_t)tcp_len + ((f[47] & 0x03) ? 1 : 0);
	}
	return (len & 7) != 3; /* now and then the guest has no room: frames must wait */
}

static void run(struct net_backend *be, struct loop *loop)
{
	for (int i = 0; i < 3; i++) {
		be->ops->rx_resume(be);
		loop_wait(loop, 0);
	}
}

static size_t segment(const uint8_t *r, size_t avail, uint8_t *f)
{
	static const uint8_t mmds_ip[4] = { 169, 254, 169, 254 };
	size_t payload = avail > 7 ? avail - 7 : 0, doff;

	if (avail < 7)
		return 0;
	if (payload > 1400)
		payload = 1400;
	memset(f, 0, 54);
	f[12] = 0x08;
	f[14] = 0x45;
	f[23] = 6;
	memcpy(f + 26, ((uint8_t[]){ 10, 9, 0, 2 }), 4);
	memcpy(f + 30, mmds_ip, 4);
	f[34] = 0x9c;
	f[35] = (uint8_t)(0x40 + (r[1] & 3));             /* one of four guest ports */
	f[37] = (r[1] & 0x80) ? 81 : 80;
	f[41] = r[2];                                      /* sequence: small numbers */
	{
		uint32_t ack = last_seq + (uint32_t)(int8_t)r[3];

		f[42] = (uint8_t)(ack >> 24);
		f[43] = (uint8_t)(ack >> 16);
		f[44] = (uint8_t)(ack >> 8);
		f[45] = (uint8_t)ack;
	}
	doff = (r[4] & 0x0f) ? (r[4] & 0x0f) : 5;
	f[46] = (uint8_t)(doff << 4);
	f[47] = r[0] & 0x3f;
	f[48] = r[5];
	f[49] = r[6];
	memcpy(f + 54, r + 7, payload);
	f[16] = (uint8_t)((40 + payload) >> 8);
	f[17] = (uint8_t)(40 + payload);
	return 54 + payload;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dev_host host;
	static uint8_t f[2048];
	struct net_backend inner = { .ops = &sink_ops };
	struct loop *loop;
	struct mmds *mmds;
	struct net_backend *be;
	struct error e;
	char err[128];
	uint32_t ip;

	log_set_level(LOG_OFF);
	if (loop_new(&loop) || !(mmds = mmds_new(loop, err, sizeof(err))))
		abort();
	host.loop = loop;
	{
		json_t *store = json_pack("{s:{s:s}}", "latest", "a", "b");

		mmds_put(mmds, store);
		json_decref(store);
	}
	mmds_configure(mmds, size && (data[0] & 0x40), false);
	inet_pton(AF_INET, "169.254.169.254", &ip);
	be = mmds_net_wrap(mmds, ip, &host, &inner, &e);
	if (!be)
		abort();
	be->rx = (struct net_rx){ .deliver = device_deliver };
	last_seq = 0;
	while (size) {
		size_t len, rec;

		if (data[0] & 0x80) { /* raw: a length byte, then up to that many bytes */
			size_t want = size > 1 ? data[1] : 0, have = size > 2 ? size - 2 : 0;

			len = want < have ? want : have;
			memcpy(f, data + 2 * (size > 2), len);
			rec = size < 2 + len ? size : 2 + len;
		} else {
			rec = size < 64 ? size : 7 + (data[4] >> 4) * 8;
			rec = rec > size ? size : rec;
			len = segment(data, rec, f);
		}
		if (len) {
			struct iovec iov = { f, len };

			be->ops->send(be, &iov, 1);
		}
		run(be, loop);
		data += rec;
		size -= rec;
	}
	be->ops->free(be);
	mmds_free(mmds);
	loop_free(loop);
	return 0;
}
