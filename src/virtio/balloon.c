/* SPDX-License-Identifier: Apache-2.0 */
/* balloon — virtio-balloon (virtio 1.2 §5.5), see include/kiln/virtio_balloon.h.
 *
 * The host sets a target (num_pages, 4 KiB pages) and the driver inflates toward it: every
 * page frame it puts on the inflate queue is given back to the host at once
 * (guest_mem_discard(): the process's resident set shrinks), and a page it takes back on the deflate queue is simply touched again by the
 * guest (a fresh zero page). With VIRTIO_BALLOON_F_STATS_VQ the driver's statistics buffer is
 * kept and handed back every polling interval, which makes the driver refill it
 * (§5.5.6.3); VIRTIO_BALLOON_F_REPORTING (the free pages the guest reports are given back
 * too), VIRTIO_BALLOON_F_FREE_PAGE_HINT (runs started and stopped by the API: the pages hinted
 * during a run are given back) and VIRTIO_BALLOON_F_DEFLATE_ON_OOM are offered when the user
 * asks for them.
 *
 * Queues: inflate, deflate, then statistics, free page hints and reporting when negotiated (a queue that is not
 * negotiated takes no index, §5.5.2). The hostile guest: page frames outside guest RAM,
 * malformed statistics and reports are refused, counted and logged once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>

#include "kiln/devices.h"
#include "kiln/pci.h"
#include "kiln/snapshot.h"
#include "kiln/virtio.h"
#include "kiln/virtio_balloon.h"
#include "kiln/vm_config.h"

#define BALLOON_QUEUE_SIZE 256
#define BALLOON_MAX_PFNS 4096       /* per buffer (Linux sends at most 256) */
#define BALLOON_MAX_STATS 32        /* tag/value pairs per buffer (Linux sends 10) */
_Static_assert(BALLOON_NR_STATS == VIRTIO_BALLOON_S_NR, "balloon statistics");
#define PAGE 4096u
#define BIT(f) (1ull << (f))

enum balloon_queue { Q_INFLATE, Q_DEFLATE, Q_STATS, Q_HINT, Q_REPORTING, Q_NONE };

/* Free page hint command ids (§5.5.6.7): 0 stops a run (the driver's last word), 1 ends it (the
 * host's: the driver takes its pages back), 2 and up start one. */
#define HINT_STOP 0u
#define HINT_DONE 1u

struct balloon {
	struct virtio_dev dev;
	struct dev_host *host;
	struct virtio_balloon_config config;
	unsigned stats_interval_s;      /* 0: statistics were off at creation */
	struct loop_timer timer;        /* every stats_interval_s: hand the buffer back */
	bool stats_held;          /* the driver's statistics buffer is with us */
	uint16_t stats_head;
	struct balloon_stats stats;
	struct log_once bad_pfn, bad_stats, discard_failed;
	/* Free page hinting: the host's command is config.free_page_hint_cmd_id. */
	uint32_t hint_last;       /* the last run's command id */
	uint32_t hint_guest;      /* the driver's last command id, when hint_guest_set */
	bool hint_guest_set;
	bool hint_ack;            /* answer the driver's STOP with DONE */
	bool hint_stopped;        /* the driver said STOP while serving the queue */
};

static struct balloon *to_b(struct virtio_dev *dev) { return dev->opaque; }

/* What queue @q is, given the negotiated features. */
static enum balloon_queue role(const struct virtio_dev *dev, unsigned q)
{
	bool stats = dev->driver_features & BIT(VIRTIO_BALLOON_F_STATS_VQ);
	bool hint = dev->driver_features & BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	bool reporting = dev->driver_features & BIT(VIRTIO_BALLOON_F_REPORTING);

	if (q < 2)
		return (enum balloon_queue)q;
	if (q == 2 && stats)
		return Q_STATS;
	if (hint && q == 2u + stats)
		return Q_HINT;
	if (reporting && q == 2u + stats + hint)
		return Q_REPORTING;
	return Q_NONE;
}

static void b_read_config(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, (const uint8_t *)&to_b(dev)->config + off, len);
}

/* The driver writes "actual" (§5.5.6). */
static void b_write_config(struct virtio_dev *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct balloon *b = to_b(dev);

	if (off >= offsetof(struct virtio_balloon_config, actual) &&
	    off + len <= offsetof(struct virtio_balloon_config, actual) + sizeof(b->config.actual))
		memcpy((uint8_t *)&b->config + off, data, len);
}

/* Give guest-physical [gpa, gpa + len) back to the host; false when it is not all RAM. */
static bool discard(struct balloon *b, uint64_t gpa, uint64_t len)
{
	void *hva = guest_mem_ptr(b->dev.mem, gpa, len);
	int ret;

	if (!hva)
		return false;
	if ((ret = guest_mem_discard(b->dev.mem, hva, len)) && log_once_first(&b->discard_failed))
		log_warn("balloon: discarding pages: %s", strerror(-ret));
	return true;
}

static void bad_pfn(struct balloon *b, uint32_t pfn)
{
	b->stats.bad_pfns++;
	if (log_once_first(&b->bad_pfn))
		log_warn("balloon: page frame %#x is not guest RAM, or a buffer holds more than %u "
			 "frames; ignored (further ones not logged)", pfn, BALLOON_MAX_PFNS);
}

/* Inflate (§5.5.6.1): an array of 32-bit page frame numbers; runs of consecutive frames are
 * given back in one call. Deflate needs nothing: the guest touches its pages again. */
static uint32_t b_inflate(struct virtio_dev *dev, const struct virtq_chain *c)
{
	struct balloon *b = to_b(dev);
	uint32_t run_start = 0, run_len = 0;

	if (c->out_len > BALLOON_MAX_PFNS * 4) {
		bad_pfn(b, 0); /* a buffer no driver sends: refused whole */
		return 0;
	}
	for (uint64_t off = 0; off + 4 <= c->out_len; off += 4) {
		uint32_t pfn;

		virtq_chain_read(c, off, &pfn, 4);
		if (run_len && pfn == run_start + run_len) {
			run_len++;
			continue;
		}
		if (run_len && !discard(b, (uint64_t)run_start * PAGE, (uint64_t)run_len * PAGE))
			bad_pfn(b, run_start);
		run_start = pfn;
		run_len = 1;
	}
	if (run_len && !discard(b, (uint64_t)run_start * PAGE, (uint64_t)run_len * PAGE))
		bad_pfn(b, run_start);
	b->stats.inflated_pages += c->out_len / 4;
	return 0;
}

static uint32_t b_deflate(struct virtio_dev *dev, const struct virtq_chain *c)
{
	if (c->out_len <= BALLOON_MAX_PFNS * 4)
		to_b(dev)->stats.deflated_pages += c->out_len / 4;
	return 0;
}

/* Free page reporting (§5.5.6.5): each buffer is a range of free guest pages, handed over
 * device-writable; the device may discard their contents. */
/* Give back the free pages of device-writable buffer @iov (already checked to be guest RAM);
 * whole pages only. Returns the bytes given back. */
static uint64_t give_back(struct balloon *b, const struct iovec *iov)
{
	int ret;

	if (((uintptr_t)iov->iov_base | iov->iov_len) % PAGE) {
		b->stats.bad_pfns++;
		return 0;
	}
	ret = guest_mem_discard(b->dev.mem, iov->iov_base, iov->iov_len);
	if (ret && log_once_first(&b->discard_failed))
		log_warn("balloon: discarding free pages: %s", strerror(-ret));
	return iov->iov_len;
}

static uint32_t b_report(struct virtio_dev *dev, const struct virtq_chain *c)
{
	struct balloon *b = to_b(dev);

	for (unsigned i = c->nr_out; i < c->nr_out + c->nr_in; i++)
		b->stats.reported_bytes += give_back(b, &c->iov[i]);
	return 0;
}

/* Free page hints (§5.5.6.7): a chain is either the driver's command id (a 4-byte driver-written
 * buffer) or free pages (device-writable buffers). Pages hinted for the run in progress are
 * given back; hints for an older run, or after STOP or DONE, are not. */
static uint32_t b_hint(struct virtio_dev *dev, const struct virtq_chain *c)
{
	struct balloon *b = to_b(dev);
	uint32_t host = b->config.free_page_hint_cmd_id;

	for (unsigned i = 0; i < c->nr_out; i++) {
		uint8_t *p = c->iov[i].iov_base;

		if (c->iov[i].iov_len != 4)
			continue;
		b->hint_guest = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				(uint32_t)p[3] << 24;
		b->hint_guest_set = true;
		b->hint_stopped |= b->hint_guest == HINT_STOP || b->hint_guest == HINT_DONE;
	}
	if (host == HINT_STOP || host == HINT_DONE || !b->hint_guest_set || b->hint_guest != host)
		return 0; /* not part of the run in progress */
	for (unsigned i = c->nr_out; i < c->nr_out + c->nr_in; i++)
		b->stats.hinted_bytes += give_back(b, &c->iov[i]);
	return 0;
}

/* The host's command id becomes @cmd; the driver hears of it through a configuration change. */
static void hint_command(struct balloon *b, uint32_t cmd)
{
	b->config.free_page_hint_cmd_id = cmd;
	virtio_dev_config_changed(&b->dev);
}

/* The driver's statistics (§5.5.6.3): tag/value pairs; kept, and the buffer held until the
 * next poll. */
static void take_stats(struct balloon *b)
{
	struct virtq *q = &b->dev.q[Q_STATS];
	struct virtq_chain c;
	int ret;

	/* With EVENT_IDX the driver kicks only past avail_event: re-arm it after every pop, or the
	 * next buffer arrives unannounced (§2.7.10). */
	for (;;) {
		ret = virtq_pop(b->dev.mem, q, &c);
		if (ret == 0 && virtq_arm_notify(q))
			continue; /* one arrived meanwhile */
		if (ret <= 0)
			break;
		if (b->stats_held) { /* the driver offered a second buffer: return the older one */
			virtq_push(q, b->stats_head, 0);
			virtio_dev_notify_if_needed(&b->dev, Q_STATS);
		}
		for (uint64_t off = 0; off + sizeof(struct virtio_balloon_stat) <= c.out_len &&
		     off < BALLOON_MAX_STATS * sizeof(struct virtio_balloon_stat);
		     off += sizeof(struct virtio_balloon_stat)) {
			struct virtio_balloon_stat s;

			virtq_chain_read(&c, off, &s, sizeof(s));
			if (s.tag < VIRTIO_BALLOON_S_NR) {
				b->stats.value[s.tag] = s.val;
				b->stats.valid |= 1u << s.tag;
			} else if (log_once_first(&b->bad_stats)) {
				log_warn("balloon: unknown statistic tag %u; ignored", s.tag);
			}
		}
		b->stats.updates++;
		b->stats_held = true;
		b->stats_head = c.head;
	}
	if (ret < 0)
		virtio_dev_needs_reset(&b->dev, "malformed statistics descriptor chain");
}

static void b_queue_notify(struct virtio_dev *dev, unsigned q)
{
	switch (role(dev, q)) {
	case Q_INFLATE: virtio_dev_process(dev, q, b_inflate); break;
	case Q_DEFLATE: virtio_dev_process(dev, q, b_deflate); break;
	case Q_STATS: take_stats(to_b(dev)); break;
	case Q_REPORTING: virtio_dev_process(dev, q, b_report); break;
	case Q_HINT: {
		struct balloon *b = to_b(dev);

		b->hint_stopped = false;
		virtio_dev_process(dev, q, b_hint);
		if (b->hint_stopped && b->hint_ack && virtio_dev_live(dev) &&
		    b->config.free_page_hint_cmd_id != HINT_DONE)
			hint_command(b, HINT_DONE);
		break;
	}
	case Q_NONE: break;
	}
}

/* DRIVER_OK: Linux offers its first statistics buffer (and may inflate) before it sets
 * DRIVER_OK, and those notifications were not served; serve the queues now. */
static void b_activate(struct virtio_dev *dev)
{
	for (unsigned q = 0; q < dev->ops->nr_queues; q++)
		if (dev->q[q].ready)
			b_queue_notify(dev, q);
}

/* The polling interval elapsed: give the statistics buffer back so the driver refills it. */
static void stats_due(void *opaque)
{
	struct balloon *b = opaque;

	pthread_mutex_lock(&b->dev.lock);
	if (b->stats_held && virtio_dev_live(&b->dev)) {
		b->stats_held = false;
		virtio_dev_complete(&b->dev, Q_STATS, b->stats_head, 0);
	}
	pthread_mutex_unlock(&b->dev.lock);
}

static void b_reset(struct virtio_dev *dev)
{
	struct balloon *b = to_b(dev);

	b->stats_held = false;
	b->config.actual = 0;
}

/* Snapshot (the end of the "virtio" section, version 1): the configuration space (u32
 * num_pages, actual, free_page_hint_cmd_id, poison_val), the statistics buffer the device holds
 * (u16 head, u8 held) and 5 zero bytes. */
static void b_save(struct virtio_dev *dev, struct snap_enc *e)
{
	struct balloon *b = to_b(dev);

	snap_enc_u32(e, b->config.num_pages);
	snap_enc_u32(e, b->config.actual);
	snap_enc_u32(e, b->config.free_page_hint_cmd_id);
	snap_enc_u32(e, b->config.poison_val);
	snap_enc_u16(e, b->stats_head);
	snap_enc_u8(e, b->stats_held);
	snap_enc_bytes(e, (const uint8_t[5]){ 0 }, 5);
}

static int b_load(struct virtio_dev *dev, struct snap_dec *d, uint32_t version, char *err,
		  size_t errlen)
{
	struct balloon *b = to_b(dev);
	struct virtio_balloon_config config;
	uint16_t head;
	uint8_t held, pad[5];

	config.num_pages = snap_dec_u32(d);
	config.actual = snap_dec_u32(d);
	config.free_page_hint_cmd_id = snap_dec_u32(d);
	config.poison_val = snap_dec_u32(d);
	head = snap_dec_u16(d);
	held = snap_dec_u8(d);
	snap_dec_bytes(d, pad, sizeof(pad));
	if (held > 1 || (held && head >= BALLOON_QUEUE_SIZE)) {
		snprintf(err, errlen, "snapshot: balloon statistics buffer %u out of range", head);
		return -EINVAL;
	}
	b->config = config;
	b->stats_head = head;
	b->stats_held = held;
	/* The run in progress carries on; what the driver last said is not in the snapshot. */
	b->hint_last = config.free_page_hint_cmd_id;
	return 0;
}

static void b_free(struct virtio_dev *dev)
{
	struct balloon *b = to_b(dev);

	loop_timer_cancel(&b->timer);
	virtio_dev_destroy(dev);
	free(b);
}

static const struct virtio_dev_ops balloon_ops = {
	.device_id = VIRTIO_ID_BALLOON,
	.nr_queues = 5,
	.queue_size = BALLOON_QUEUE_SIZE,
	.pci_class = PCI_CLASS_CODE_UNCLASSIFIED,
	.config_len = sizeof(struct virtio_balloon_config),
	.features = BIT(VIRTIO_BALLOON_F_STATS_VQ),
	.read_config = b_read_config,
	.write_config = b_write_config,
	.queue_notify = b_queue_notify,
	.activate = b_activate,
	.reset = b_reset,
	.save = b_save,
	.load = b_load,
	.free = b_free,
};

int virtio_balloon_set_target(void *state, uint64_t bytes)
{
	struct balloon *b = to_b(state);

	if (bytes / PAGE > UINT32_MAX)
		return -ERANGE;
	pthread_mutex_lock(&b->dev.lock);
	b->config.num_pages = (uint32_t)(bytes / PAGE);
	virtio_dev_config_changed(&b->dev);
	pthread_mutex_unlock(&b->dev.lock);
	return 0;
}

int virtio_balloon_set_stats_interval(void *state, unsigned seconds)
{
	struct balloon *b = to_b(state);
	uint64_t ns = (uint64_t)seconds * 1000000000u;

	if (!b->stats_interval_s || !seconds)
		return -EINVAL; /* statistics were not enabled at boot, or would be turned off */
	pthread_mutex_lock(&b->dev.lock);
	b->stats_interval_s = seconds;
	pthread_mutex_unlock(&b->dev.lock);
	loop_timer_arm(&b->timer, ns, ns);
	return 0;
}

/* The hinting entry points' common checks, under the lock. */
static int hint_usable(struct balloon *b)
{
	if (!(b->dev.device_features & BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT)))
		return -EOPNOTSUPP;
	return virtio_dev_live(&b->dev) ? 0 : -ENODEV;
}

int virtio_balloon_hint_start(void *state, bool ack_on_stop)
{
	struct balloon *b = to_b(state);
	int ret;

	pthread_mutex_lock(&b->dev.lock);
	ret = hint_usable(b);
	if (!ret) {
		b->hint_last = b->hint_last + 1 > HINT_DONE ? b->hint_last + 1 : HINT_DONE + 1;
		b->hint_ack = ack_on_stop;
		hint_command(b, b->hint_last);
	}
	pthread_mutex_unlock(&b->dev.lock);
	return ret;
}

int virtio_balloon_hint_stop(void *state)
{
	struct balloon *b = to_b(state);
	int ret;

	pthread_mutex_lock(&b->dev.lock);
	ret = hint_usable(b);
	if (!ret)
		hint_command(b, HINT_DONE);
	pthread_mutex_unlock(&b->dev.lock);
	return ret;
}

int virtio_balloon_hint_status(void *state, uint32_t *host, uint32_t *guest, bool *guest_set)
{
	struct balloon *b = to_b(state);
	int ret;

	pthread_mutex_lock(&b->dev.lock);
	ret = b->dev.device_features & BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT) ? 0 : -EOPNOTSUPP;
	*host = b->config.free_page_hint_cmd_id;
	*guest = b->hint_guest;
	*guest_set = b->hint_guest_set;
	pthread_mutex_unlock(&b->dev.lock);
	return ret;
}

void virtio_balloon_stats(void *state, struct balloon_stats *out)
{
	struct balloon *b = to_b(state);

	pthread_mutex_lock(&b->dev.lock);
	*out = b->stats;
	out->target_pages = b->config.num_pages;
	out->actual_pages = b->config.actual;
	out->interval_s = b->stats_interval_s;
	pthread_mutex_unlock(&b->dev.lock);
}

static int b_create(struct dev_host *host, const void *config, unsigned index, void **state,
		    struct error *e)
{
	const struct balloon_config *cfg = config;
	struct balloon *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return error_set(e, ERROR_RUNTIME, "balloon: out of memory");
	b->host = host;
	loop_timer_init(host->loop, &b->timer, b, stats_due, b);
	b->config.num_pages = (uint32_t)(cfg->target_bytes / PAGE);
	ret = virtio_dev_init(&b->dev, &balloon_ops, b, host->mem);
	if (ret) {
		free(b);
		return error_set(e, ERROR_RUNTIME, "balloon: %s", strerror(-ret));
	}
	if (cfg->deflate_on_oom)
		b->dev.device_features |= BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	if (cfg->free_page_reporting)
		b->dev.device_features |= BIT(VIRTIO_BALLOON_F_REPORTING);
	if (cfg->free_page_hinting)
		b->dev.device_features |= BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	b->hint_ack = true;
	if (cfg->stats_interval_s) {
		uint64_t ns = (uint64_t)cfg->stats_interval_s * 1000000000u;

		b->stats_interval_s = cfg->stats_interval_s;
		loop_timer_arm(&b->timer, ns, ns);
	} else {
		b->dev.device_features &= ~BIT(VIRTIO_BALLOON_F_STATS_VQ);
	}
	*state = &b->dev;
	return 0;
}

/* The balloon cannot ask for more than the guest has. */
static int b_check(const struct vm_config *vm, unsigned entry, struct error *e)
{
	const struct balloon_config *cfg = vm->device[entry].config;

	if (vm->huge_pages)
		return error_set(e, ERROR_USAGE, "balloon: not with huge pages (a 4 KiB page cannot "
				 "be given back out of a 2 MiB one)");
	if (cfg->target_bytes > vm->mem_bytes)
		return error_set(e, ERROR_USAGE, "balloon: %llu MiB is more than the guest's %llu MiB",
				 (unsigned long long)(cfg->target_bytes >> 20),
				 (unsigned long long)(vm->mem_bytes >> 20));
	return 0;
}

const struct device_class virtio_balloon_class = {
	.name = "balloon",
	.kind = DEVICE_VIRTIO,
	.max = 1,
	.create = b_create,
	.check = b_check,
};
