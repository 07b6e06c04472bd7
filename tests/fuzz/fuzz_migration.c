/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile migration source against the destination. The input becomes
 * the byte stream a source sends, written into a socketpair and taken by the receive path as
 * `kiln restore --incoming fd:N --insecure-plain-tcp` takes it (mig_channel_open(), then
 * vm_migrate_receive(): HELLO, CONFIG, PAGES and STATE records into a memfd and a snapshot
 * image, the CONFIG's text through the same checks as the image's, as the prepare step takes it);
 * a stream it accepts then goes as far as a restore goes without KVM: the snapshot container
 * (snap_reader_take), its "config" section, fc_snapshot_config() with the destination's
 * checks (fc_config_incoming(): against the operator's --config-file, or with none) and
 * fc_config_parse() of what would be restored.
 *
 * The first byte chooses: bits 0-1 the shape of the stream, bit 2 whether the destination
 * has its operator's configuration (the document below), bit 3 --track-dirty-pages, bit 4
 * the HELLO's snapshot format (1 or 2), bit 5 (modes 2 and 3) a CONFIG record with the
 * configuration before the pages.
 *   0  the rest as it is: records of any type, flags and fields, data or not;
 *   1  a valid HELLO, then records whose headers (type, a, b; the magic right) and data come
 *      from the input;
 *   2  a valid HELLO, a few PAGES, and a STATE whose image is a well-formed snapshot (its
 *      CRC right) with the rest of the input as its "config" section;
 *   3  as 2, but "config" is the operator's document edited by the input, three bytes per
 *      edit (where, which key, which value), so that the fuzzer reaches every comparison the
 *      destination makes without having to learn JSON.
 * AddressSanitizer turns any read or write outside a buffer into a crash; the target also
 * checks that a configuration the destination accepts names only the operator's resources.
 * Build and run: scripts/fuzz [SECONDS]. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fc/fc_internal.h"
#include "kiln/fc.h"
#include "kiln/log.h"
#include "kiln/mig_channel.h"
#include "kiln/snapshot.h"
#include "kiln/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The stream's records, as src/core/migrate.c writes them (little-endian x86-64). */
#define MAGIC 0x4d4e4c4bu
enum { HELLO = 1, PAGES = 2, STATE = 3, CONFIG = 4 };
struct rec {
	uint32_t type, flags;
	uint64_t a, b;
};

#define PAGE 4096u
#define GUEST_BYTES (16u << 20)   /* the smallest guest memory a destination takes */
#define STREAM_MAX (256u << 10)   /* bytes written to the socket; the rest is cut */

/* The destination operator's --config-file: every kind of device, host values its own. */
static const char operator_doc[] =
	"{\"boot-source\": {\"kernel_image_path\": \"/d/vmlinuz\", \"boot_args\": \"console=ttyS0\"},"
	" \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 16, \"track_dirty_pages\": false},"
	" \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"/d/root\", \"is_root_device\": true,"
	"              \"is_read_only\": true},"
	"             {\"drive_id\": \"data\", \"path_on_host\": \"/d/data\", \"is_root_device\": false,"
	"              \"cache_type\": \"Writeback\", \"io_engine\": \"Sync\"}],"
	" \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap-d\","
	"                          \"guest_mac\": \"06:00:AC:10:00:02\"}],"
	" \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/d/v.sock\"},"
	" \"balloon\": {\"amount_mib\": 4, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 1},"
	" \"entropy\": {},"
	" \"mmds-config\": {\"network_interfaces\": [\"eth0\"], \"version\": \"V2\"},"
	" \"logger\": {\"level\": \"Info\"}, \"metrics\": {\"metrics_path\": \"/d/metrics\"}}";

/* Where an edit goes: a member of the document's root, or of one of its objects. */
static const char *const places[] = {
	NULL, "machine-config", "boot-source", "drives", "network-interfaces", "vsock", "balloon",
	"entropy", "mmds-config", "logger", "metrics",
};
static const char *const keys[] = {
	"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages",
	"kernel_image_path", "initrd_path", "boot_args", "drive_id", "path_on_host",
	"is_root_device", "is_read_only", "cache_type", "io_engine", "partuuid", "rate_limiter",
	"iface_id", "host_dev_name", "guest_mac", "guest_cid", "uds_path", "amount_mib",
	"deflate_on_oom", "stats_polling_interval_s", "free_page_reporting", "network_interfaces",
	"version", "ipv4_address", "imds_compat", "level", "log_path", "metrics_path", "bogus",
	"drives", "network-interfaces", "vsock", "balloon", "entropy", "mmds-config", "cpu-config",
	"kvm_capabilities", "msr_modifiers",
};
static const char *const values[] = {
	"null", "true", "false", "0", "1", "3", "16", "256", "-1", "1099511627776", "\"\"",
	"\"x\"", "\"None\"", "\"Writeback\"", "\"Unsafe\"", "\"Async\"", "\"V1\"", "\"V2\"",
	"\"06:00:ac:10:00:02\"", "\"06:00:AC:10:00:03\"", "\"169.254.169.254\"", "\"rootfs\"",
	"\"data\"", "\"eth0\"", "\"/etc/shadow\"", "\"\\u001b[2J\"", "[]", "{}", "[\"eth0\"]",
	"[\"eth1\"]", "{\"drive_id\": \"x\", \"path_on_host\": \"/x\", \"is_root_device\": false}",
};

static struct mig_creds *plain;
static json_t *operator;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mig_security s = { .kind = MIG_INSECURE_PLAIN };
	struct fc_config c;
	char err[512];

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_OFF);
	operator = json_loads(operator_doc, 0, NULL);
	if (!operator || fc_config_parse(operator, true, &c, err, sizeof(err)) ||
	    mig_creds_load(&s, true, &plain, err, sizeof(err)))
		abort();
	fc_config_release(&c);
	return 0;
}

/* A growing stream, cut at STREAM_MAX. */
struct stream {
	uint8_t buf[STREAM_MAX];
	size_t len;
};

static void put(struct stream *s, const void *p, size_t n)
{
	if (n > STREAM_MAX - s->len)
		n = STREAM_MAX - s->len;
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void put_rec(struct stream *s, uint32_t type, uint64_t a, uint64_t b)
{
	struct rec r = { .type = type, .flags = MAGIC, .a = a, .b = b };

	put(s, &r, sizeof(r));
}

/* The input, consumed from the front. */
struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take_u8(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint64_t take_u64(struct input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)take_u8(in) << (8 * i);
	return v;
}

/* Mode 1: records with the input's headers and data. */
static void records(struct stream *s, struct input *in)
{
	while (in->left && s->len < STREAM_MAX) {
		uint8_t type = take_u8(in) % 5;
		uint64_t a = take_u64(in), b = take_u64(in) & 0xfffff; /* up to a run's 1 MiB */
		size_t n = b < in->left ? (size_t)b : in->left;

		put_rec(s, type, a, b);
		put(s, in->p, n);
		in->p += n;
		in->left -= n;
	}
}

/* Mode 3: the operator's document with the input's edits, as text (malloc'd). */
static char *edited(struct input *in)
{
	json_t *doc = json_deep_copy(operator);
	char *text;

	while (doc && in->left >= 3) {
		uint8_t where = take_u8(in), which = take_u8(in), what = take_u8(in);
		const char *place = places[where % (sizeof(places) / sizeof(places[0]))];
		const char *key = keys[which % (sizeof(keys) / sizeof(keys[0]))];
		json_t *target = place ? json_object_get(doc, place) : doc;

		if (json_is_array(target)) /* a list: its entry where / 16 */
			target = json_array_get(target, (where >> 4) % 3);
		if (!json_is_object(target))
			continue;
		if (what == 0xff)
			json_object_del(target, key);
		else
			json_object_set_new(target, key,
					    json_loads(values[what % (sizeof(values) / sizeof(values[0]))],
						       JSON_DECODE_ANY, NULL));
	}
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return text;
}

/* Modes 2 and 3: a HELLO, with @early the configuration, up to three pages, and a well-formed
 * snapshot with the configuration. */
static void framed(struct stream *s, struct input *in, uint32_t format, bool edit, bool early)
{
	struct snap_writer w = { 0 };
	uint8_t page[3][PAGE], *image = NULL;
	uint64_t at[3];
	unsigned pages = take_u8(in) % 4;
	char *config = NULL;
	const char *text;
	size_t len = 0, text_len;

	for (unsigned i = 0; i < pages; i++) {
		size_t n;

		at[i] = (uint64_t)take_u8(in) * 16 * PAGE;
		n = in->left < PAGE ? in->left : PAGE;
		memset(page[i], 0, PAGE);
		memcpy(page[i], in->p, n);
		in->p += n;
		in->left -= n;
	}
	if (edit)
		config = edited(in);
	text = config ? config : (const char *)in->p;
	text_len = config ? strlen(config) : in->left;
	put_rec(s, HELLO, GUEST_BYTES, format);
	if (early) {
		put_rec(s, CONFIG, 0, text_len);
		put(s, text, text_len);
	}
	for (unsigned i = 0; i < pages; i++) {
		put_rec(s, PAGES, at[i], PAGE);
		put(s, page[i], PAGE);
	}
	snap_put(&w, "config", 0, 1, text, text_len);
	if (!snap_writer_image(&w, &image, &len)) {
		put_rec(s, STATE, 0, len);
		put(s, image, len);
	}
	free(config);
	free(image);
	snap_writer_free(&w);
}

/* An accepted configuration @doc (taken): with the operator's file, the document is the
 * operator's; without it, no host resource may come from the stream. */
static void check_config(json_t *doc, bool with_operator)
{
	struct fc_config c;
	char err[900];

	if (with_operator && !json_equal(json_object_get(doc, "drives"),
					 json_object_get(operator, "drives")))
		abort();
	if (fc_config_parse(doc, false, &c, err, sizeof(err)) == 0 && !with_operator &&
	    (c.nr_disks || c.nr_nets || c.vsock.uds_path || c.log_path || c.metrics_path))
		abort();
	fc_config_release(&c);
	json_decref(doc);
}

/* The prepare step of an early configuration, up to where it would need KVM: the same checks
 * as the image's (check_config below). */
static int prepare(void *opaque, const struct vm_incoming *in, const char *config, size_t len,
		   char *err, size_t errlen)
{
	bool with_operator = *(const bool *)opaque;
	json_t *doc = json_loadb(config, len, JSON_REJECT_DUPLICATES, NULL), *mine;

	if (!doc)
		return -EINVAL;
	mine = fc_config_incoming(doc, with_operator ? operator : NULL, err, errlen);
	json_decref(doc);
	if (!mine)
		return -EINVAL;
	check_config(mine, with_operator);
	return 0;
}

/* What the restore makes of an accepted stream, up to where it would need KVM. */
static void restore_config(struct vm_incoming *in, bool with_operator, bool dirty)
{
	struct fc_snapshot_load p = { .snapshot_path = "fuzz", .migration = true,
				      .host_config = with_operator ? operator : NULL,
				      .track_dirty_pages = dirty };
	struct snap_reader snap;
	char err[900];
	json_t *doc;

	if (snap_reader_take(&snap, in->state, in->state_len, "fuzz", err, sizeof(err)) == 0) {
		if (fc_snapshot_config(&snap, &p, &doc, err, sizeof(err)) == 0)
			check_config(doc, with_operator);
		snap_reader_close(&snap);
	}
	in->state = NULL; /* snap_reader_take() took it, whatever happened */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct stream s;
	struct input in = { data + (size ? 1 : 0), size ? size - 1 : 0 };
	uint8_t how = size ? data[0] : 0;
	struct mig_channel *ch;
	struct vm_incoming got;
	int sv[2], big = 4 << 20;
	char err[512];
	ssize_t n;

	s.len = 0;
	if ((how & 3) == 0)
		put(&s, in.p, in.left);
	else if ((how & 3) == 1) {
		put_rec(&s, HELLO, GUEST_BYTES, how & 16 ? 1 : 2);
		records(&s, &in);
	} else
		framed(&s, &in, how & 16 ? 1 : 2, (how & 3) == 3, how & 32);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	/* What fits in the socket goes (the same amount for the same input), then the end. */
	n = send(sv[0], s.buf, s.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	shutdown(sv[0], SHUT_WR);
	if (mig_channel_open(sv[1], plain, &ch) == 0) {
		if (mig_channel_handshake(ch, NULL, err, sizeof(err)))
			abort(); /* nothing to shake hands about on plain TCP */
		bool with_operator = how & 4;

		if (vm_migrate_receive(ch, &got, prepare, &with_operator, err, sizeof(err)) == 0) {
			restore_config(&got, how & 4, how & 8);
			vm_incoming_release(&got, false);
		}
	}
	close(sv[0]);
	return 0;
}
