/* SPDX-License-Identifier: Apache-2.0 */
/* boot_timer — Firecracker's boot-timer register at MMIO KILN_BOOT_TIMER_GPA: when the guest
 * writes the byte 123 at offset 0 (its /init does, through /dev/mem), kiln logs the wall and CPU
 * time since it started, at LOG_INFO ("--log-level info"), once (a guest can write it in a
 * loop). Reads return 0. */
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"

#define BOOT_TIMER_MAGIC 123

static int64_t us_since(clockid_t clock, const struct timespec *start)
{
	struct timespec now;

	clock_gettime(clock, &now);
	return ((int64_t)(now.tv_sec - start->tv_sec) * 1000000000 + now.tv_nsec - start->tv_nsec) / 1000;
}

static void boot_timer_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = 0;
}

struct boot_timer {
	const struct dev_host *host;
	struct log_once logged;
};

static void boot_timer_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct boot_timer *t = opaque;
	const struct dev_host *host = t->host;

	if (off == 0 && data[0] == BOOT_TIMER_MAGIC && log_once_first(&t->logged))
		log_info("guest boot time: %" PRId64 " us wall, %" PRId64 " us cpu since kiln started; "
			 "%" PRId64 " us wall, %" PRId64 " us cpu since the VM was made (InstanceStart)",
			 us_since(CLOCK_MONOTONIC, &host->start),
			 us_since(CLOCK_PROCESS_CPUTIME_ID, &host->start_cpu),
			 us_since(CLOCK_MONOTONIC, &host->vm_start),
			 us_since(CLOCK_PROCESS_CPUTIME_ID, &host->vm_start_cpu));
}

static const struct bus_ops boot_timer_ops = { .read = boot_timer_read, .write = boot_timer_write };

static int boot_timer_create(struct dev_host *host, const void *config, unsigned index,
		             void **state, struct error *e)
{
	struct boot_timer *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return error_set(e, ERROR_RUNTIME, "boot timer: out of memory");
	t->host = host;
	ret = device_claim(host->mmio, KILN_BOOT_TIMER_GPA, KILN_BOOT_TIMER_SIZE, &boot_timer_ops,
			   t, "boot timer", e);
	if (ret) {
		free(t);
		return ret;
	}
	*state = t;
	return 0;
}

const struct device_class boot_timer_class = {
	.kind = DEVICE_PLATFORM, .name = "boot_timer", .create = boot_timer_create, .destroy = free };
