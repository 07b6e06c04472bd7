/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_balloon — the memory balloon (virtio 1.2 §5.5): inflate and deflate queues, memory
 * statistics, free page hinting and free page reporting; the pages the guest gives back return
 * to the host. */
#ifndef KILN_VIRTIO_BALLOON_H
#define KILN_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/devices.h"

/* A balloon as the user configured it. */
struct balloon_config {
	uint64_t target_bytes;       /* what the guest should give back (whole 4 KiB pages) */
	bool deflate_on_oom;         /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	bool free_page_reporting;    /* offer VIRTIO_BALLOON_F_REPORTING */
	bool free_page_hinting;      /* offer VIRTIO_BALLOON_F_FREE_PAGE_HINT */
	unsigned stats_interval_s;   /* 0: no statistics queue */
};

#define BALLOON_NR_STATS 10          /* VIRTIO_BALLOON_S_NR (§5.5.6.3) */

/* What the balloon knows: the target and the driver's "actual" (4 KiB pages), the driver's
 * last statistics (value[tag], bit tag of valid set when reported) and kiln's own counts. */
struct balloon_stats {
	uint32_t target_pages, actual_pages;
	unsigned interval_s;
	uint32_t valid;
	uint64_t value[BALLOON_NR_STATS];
	uint64_t updates;            /* statistics buffers received */
	uint64_t inflated_pages, deflated_pages, reported_bytes, hinted_bytes;
	uint64_t bad_pfns;           /* page frames or reports outside guest RAM, refused */
};

/* The class: create() takes a struct balloon_config (target at most the guest's RAM); one
 * instance per VM. Statistics are polled every stats_interval_s seconds on the event loop. */
extern const struct device_class virtio_balloon_class;

/* A new target for the balloon @state (a configuration change the driver acts on). Any
 * thread. Returns 0 or -ERANGE. */
int virtio_balloon_set_target(void *state, uint64_t bytes) __attribute__((warn_unused_result));

/* A new statistics interval (seconds, > 0); -EINVAL when statistics were off at creation.
 * Event loop thread. */
int virtio_balloon_set_stats_interval(void *state, unsigned seconds)
	__attribute__((warn_unused_result));

/* A copy of the balloon's state. Any thread. */
void virtio_balloon_stats(void *state, struct balloon_stats *out);

/* Free page hinting (§5.5.6.7), Firecracker's commands: a run asks the driver, through a new
 * command id (2 and up) in the configuration space, to hint its free pages, which are given
 * back to the host while the run lasts; the driver ends its hints with STOP (0), and the host
 * ends the run with DONE (1), after which the driver takes its pages back. Any thread.
 * start: a new run; with @ack_on_stop the device answers the driver's STOP with DONE itself.
 * stop: DONE now. status: the last command the host sent and, when the driver sent one, its
 * last (*@guest_set). Each returns 0, -EOPNOTSUPP when hinting was not configured, or -ENODEV
 * while the driver is not running. */
int virtio_balloon_hint_start(void *state, bool ack_on_stop) __attribute__((warn_unused_result));
int virtio_balloon_hint_stop(void *state) __attribute__((warn_unused_result));
int virtio_balloon_hint_status(void *state, uint32_t *host, uint32_t *guest, bool *guest_set)
	__attribute__((warn_unused_result));

#endif
