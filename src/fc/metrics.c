/* SPDX-License-Identifier: Apache-2.0 */
/* metrics — Firecracker's metrics file, see fc_internal.h.
 *
 * One compact JSON object per line (docs/metrics.md): "utc_timestamp_ms", "api_server",
 * "block_<drive_id>" and "net_<iface_id>" for each device followed by the sums "block" and
 * "net", "uart", "vsock" and "entropy" (one device each), and "get_api_requests",
 * "put_api_requests", "patch_api_requests", "deprecated_api". Counters are the change since the previous line, as Firecracker's SharedIncMetric. Field names follow
 * Firecracker's where the meaning is the same (read_count, rx_bytes_count, conns_added, ...);
 * kiln's own counters have their own names (rx_dropped_count, tx_dropped_count,
 * tx_buffer_full_count).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fc_internal.h"
#include "kiln/log.h"
#include "kiln/virtio_blk.h"
#include "kiln/virtio_net.h"
#include "kiln/virtio_rng.h"
#include "kiln/virtio_vsock.h"
#include "kiln/vm.h"

#define METRICS_PERIOD_S 60
#define METRICS_MAX_DEVICES (VM_MAX_DEVICES + VM_MAX_PLATFORM)
#define METRICS_MAX_REQUESTS 32 /* distinct method + name pairs */

/* A device's counters when a line was written. */
struct device_totals {
	const struct device_class *cls;
	const char *id;
	unsigned index, n;
	struct device_counter c[DEVICE_MAX_COUNTERS];
};

struct request_count {
	const char *method, *name;
	uint64_t count, fails;
};

struct fc_metrics {
	struct loop *loop;
	int fd;                  /* the metrics file, or -1 */
	struct loop_timer timer; /* every METRICS_PERIOD_S once the VM runs */
	struct vm *vm;
	uint64_t startup_us, startup_cpu_us;
	unsigned nr_prev;
	struct device_totals prev[METRICS_MAX_DEVICES]; /* the totals at the previous line */
	unsigned nr_requests;
	struct request_count requests[METRICS_MAX_REQUESTS];
	uint64_t deprecated;     /* requests with a deprecated field since the previous line */
	struct log_once write_failed;
};

/* The period elapsed: a line. */
static void period_elapsed(void *opaque)
{
	fc_metrics_flush(opaque);
}

struct fc_metrics *fc_metrics_new(struct loop *loop)
{
	struct fc_metrics *m = calloc(1, sizeof(*m));

	if (m) {
		m->loop = loop;
		m->fd = -1;
		loop_timer_init(loop, &m->timer, m, period_elapsed, m);
	}
	return m;
}

int fc_metrics_set_path(struct fc_metrics *m, const char *path, char *err, size_t errlen)
{
	if (m->fd >= 0) {
		snprintf(err, errlen, "Reinitialization of metrics not allowed.");
		return -EEXIST;
	}
	m->fd = fc_open_output(path);
	if (m->fd < 0) {
		int ret = m->fd;

		snprintf(err, errlen, "Failed to open target file %s: %s", path, strerror(-ret));
		m->fd = -1;
		return ret;
	}
	return 0;
}

void fc_metrics_set_startup(struct fc_metrics *m, uint64_t wall_us, uint64_t cpu_us)
{
	m->startup_us = wall_us;
	m->startup_cpu_us = cpu_us;
}

void fc_metrics_count_request(struct fc_metrics *m, const char *method, const char *name,
			      bool failed)
{
	struct request_count *r = NULL;

	for (unsigned i = 0; i < m->nr_requests && !r; i++)
		if (!strcmp(m->requests[i].method, method) && !strcmp(m->requests[i].name, name))
			r = &m->requests[i];
	if (!r && m->nr_requests < METRICS_MAX_REQUESTS)
		r = &m->requests[m->nr_requests++];
	if (!r)
		return;
	r->method = method;
	r->name = name;
	r->count++;
	r->fails += failed;
}

/* Firecracker's device groups: a class, the prefix of its objects' keys, whether each device
 * has its own object besides the group's sum (not for a class with one instance per VM), and
 * the fields the sum carries (the devices' counters of those names). */
struct group {
	const struct device_class *cls;
	const char *name;
	bool per_device;
	const char *fields[DEVICE_MAX_COUNTERS];
};

static const struct group groups[] = {
	{ &virtio_blk_class, "block", true, { "read_count", "read_bytes", "write_count", "write_bytes",
					"flush_count", "invalid_reqs_count", "execute_fails",
					"rate_limiter_throttled_events" } },
	{ &virtio_net_class, "net", true, { "rx_packets_count", "rx_bytes_count",
					    "rx_dropped_count", "tx_packets_count", "tx_bytes_count",
					    "tx_dropped_count", "rx_rate_limiter_throttled",
					    "tx_rate_limiter_throttled" } },
	{ &virtio_rng_class, "entropy", false, { "entropy_bytes", "entropy_event_count",
						 "entropy_rate_limiter_throttled" } },
	{ &uart_8250_class, "uart", false, { "read_count", "missed_read_count", "write_count",
					     "missed_write_count", "rate_limiter_dropped_bytes" } },
	{ &virtio_vsock_class, "vsock", false, { "conns_added", "conns_killed", "conns_removed",
						 "rx_packets_count", "rx_bytes_count",
						 "tx_packets_count", "tx_bytes_count",
						 "tx_buffer_full_count" } },
};

static uint64_t value(const struct device_totals *d, const char *name)
{
	for (unsigned i = 0; i < d->n; i++)
		if (!strcmp(d->c[i].name, name))
			return d->c[i].value;
	return 0;
}

/* Every device's counters now. */
static unsigned collect(struct vm *vm, struct device_totals *out)
{
	struct vm_device_info info[METRICS_MAX_DEVICES];
	unsigned n = vm_devices(vm, info, METRICS_MAX_DEVICES), k = 0;

	for (unsigned i = 0; i < n && i < METRICS_MAX_DEVICES; i++) {
		if (!info[i].cls->counters)
			continue;
		out[k] = (struct device_totals){ .cls = info[i].cls, .id = info[i].id,
						 .index = info[i].index };
		out[k].n = info[i].cls->counters(info[i].state, out[k].c, DEVICE_MAX_COUNTERS);
		k++;
	}
	return k;
}

/* "<group>_<id>" objects with each device's change since @prev (for a per_device group), and
 * "<group>" with their sum. */
static void add_devices(json_t *line, const struct group *g, const struct device_totals *now,
			const struct device_totals *prev, unsigned n)
{
	uint64_t sum[DEVICE_MAX_COUNTERS] = { 0 };
	json_t *total = json_object();

	for (unsigned i = 0; i < n; i++) {
		json_t *dev = NULL;
		char key[96];

		if (now[i].cls != g->cls)
			continue;
		if (g->per_device)
			dev = json_object();
		for (unsigned f = 0; f < DEVICE_MAX_COUNTERS && g->fields[f]; f++) {
			uint64_t delta = value(&now[i], g->fields[f]) - value(&prev[i], g->fields[f]);

			if (dev)
				json_object_set_new(dev, g->fields[f], json_integer((json_int_t)delta));
			sum[f] += delta;
		}
		if (!dev)
			continue;
		if (now[i].id)
			snprintf(key, sizeof(key), "%s_%s", g->name, now[i].id);
		else
			snprintf(key, sizeof(key), "%s_%u", g->name, now[i].index);
		json_object_set_new(line, key, dev);
	}
	for (unsigned f = 0; f < DEVICE_MAX_COUNTERS && g->fields[f]; f++)
		json_object_set_new(total, g->fields[f], json_integer((json_int_t)sum[f]));
	json_object_set_new(line, g->name, total);
}

void fc_metrics_count_deprecated(struct fc_metrics *m)
{
	m->deprecated++;
}

static void add_requests(struct fc_metrics *m, json_t *line)
{
	static const char *const methods[][2] = { { "GET", "get_api_requests" },
						  { "PUT", "put_api_requests" },
						  { "PATCH", "patch_api_requests" } };

	for (unsigned i = 0; i < 3; i++) {
		json_t *o = json_object();

		for (unsigned r = 0; r < m->nr_requests; r++) {
			struct request_count *rc = &m->requests[r];
			char key[64];

			if (strcmp(rc->method, methods[i][0]))
				continue;
			snprintf(key, sizeof(key), "%s_count", rc->name);
			json_object_set_new(o, key, json_integer((json_int_t)rc->count));
			snprintf(key, sizeof(key), "%s_fails", rc->name);
			json_object_set_new(o, key, json_integer((json_int_t)rc->fails));
			rc->count = rc->fails = 0;
		}
		json_object_set_new(line, methods[i][1], o);
	}
	json_object_set_new(line, "deprecated_api", json_pack("{s:I}", "deprecated_http_api_calls",
							      (json_int_t)m->deprecated));
	m->deprecated = 0;
}

int fc_metrics_flush(struct fc_metrics *m)
{
	struct device_totals now[METRICS_MAX_DEVICES];
	struct timespec t;
	unsigned n = 0;
	json_t *line;
	char *text;
	int ret = 0;

	if (m->fd < 0)
		return 0;
	if (m->vm)
		n = collect(m->vm, now);
	clock_gettime(CLOCK_REALTIME, &t);
	line = json_object();
	json_object_set_new(line, "utc_timestamp_ms",
			    json_integer((json_int_t)t.tv_sec * 1000 + t.tv_nsec / 1000000));
	json_object_set_new(line, "api_server",
			    json_pack("{s:I, s:I}", "process_startup_time_us",
				      (json_int_t)m->startup_us, "process_startup_time_cpu_us",
				      (json_int_t)m->startup_cpu_us));
	/* Devices never change after boot: the previous totals line up by position. */
	for (unsigned g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		add_devices(line, &groups[g], now, m->nr_prev == n ? m->prev : now, n);
	add_requests(m, line);
	memcpy(m->prev, now, n * sizeof(now[0]));
	m->nr_prev = n;
	text = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	if (!text)
		return -ENOMEM;
	{
		size_t len = strlen(text);

		text[len] = '\n'; /* json_dumps's terminator becomes the line's end */
		if (write(m->fd, text, len + 1) != (ssize_t)(len + 1)) {
			ret = -errno ?: -EIO;
			if (log_once_first(&m->write_failed))
				log_warn("metrics: cannot write a line: %s", strerror(-ret));
		}
	}
	free(text);
	return ret;
}

int fc_metrics_start(struct fc_metrics *m, struct vm *vm)
{
	uint64_t period = (uint64_t)METRICS_PERIOD_S * 1000000000u;

	m->vm = vm;
	m->nr_prev = collect(vm, m->prev); /* all zero at boot */
	if (m->fd < 0)
		return 0;
	loop_timer_arm(&m->timer, period, period);
	return fc_metrics_flush(m);
}

void fc_metrics_free(struct fc_metrics *m)
{
	if (!m)
		return;
	loop_timer_cancel(&m->timer);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}
