/* SPDX-License-Identifier: Apache-2.0 */
/* cmos_rtc — the MC146818 real-time clock and its 128 bytes of CMOS RAM at ports 0x70/0x71.
 *
 * Owns: the index register, CMOS RAM and the guest's clock offset. Time registers are computed
 * from the host's CLOCK_REALTIME (UTC) at every read, in BCD or binary as status register B
 * says; a guest that sets the clock (hwclock -w) moves an offset, never the host clock. The
 * clock is always in 24-hour mode (B bit 1 reads as set). Motorola MC146818A data sheet. CMOS
 * RAM starts with what QEMU 7.2's PC writes there (hw/i386/pc.c pc_cmos_init), which firmware
 * reads: memory sizes and the boot order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "byte_regs.h"
#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/guest_mem.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"

#define CMOS_SIZE 128
#define REG_SEC 0x00
#define REG_MIN 0x02
#define REG_HOUR 0x04
#define REG_WDAY 0x06
#define REG_MDAY 0x07
#define REG_MON 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_CENTURY 0x32
#define B_24H 0x02
#define B_BINARY 0x04
#define A_DIVIDER_32K 0x26 /* 32.768 kHz time base, 1024 Hz periodic rate; UIP clear */
#define D_VRT 0x80
#define CMOS_BASE_MEM 0x15      /* KiB below 1 MiB, 16 bits (0x15, 0x16) */
#define CMOS_EXT_MEM 0x17       /* KiB from 1 MiB, at most 65535 (0x17, 0x18; again 0x30, 0x31) */
#define CMOS_EXT_MEM2 0x30
#define CMOS_MEM_16M 0x34       /* 64 KiB units from 16 MiB below 4 GiB (0x34, 0x35) */
#define CMOS_MEM_4G 0x5b        /* 64 KiB units above 4 GiB, 24 bits (0x5b-0x5d) */
#define CMOS_BOOT_ORDER3 0x38   /* high nibble: third boot device; bit 0: no floppy check */
#define CMOS_BOOT_ORDER 0x3d    /* low nibble first, high second: 1 floppy, 2 disk, 3 CD */

struct rtc {
	struct byte_dev dev; /* first: the bus hands us &dev */
	uint8_t index;
	uint8_t cmos[CMOS_SIZE];
	time_t offset; /* guest time - host time, seconds */
};

static uint8_t to_reg(const struct rtc *r, int v)
{
	return r->cmos[REG_B] & B_BINARY ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int from_reg(const struct rtc *r, uint8_t v)
{
	return r->cmos[REG_B] & B_BINARY ? v : (v >> 4) * 10 + (v & 0x0f);
}

static bool is_time_reg(uint8_t i)
{
	return i == REG_SEC || i == REG_MIN || i == REG_HOUR || (i >= REG_WDAY && i <= REG_YEAR) ||
	       i == REG_CENTURY;
}

/* How far the guest's clock may be from the host's, in seconds, either way: two centuries. A
 * guest may write any date; what it gets is clamped to this, so host time plus the offset is
 * always a time the registers can show, and a snapshot with it always restores. */
#define RTC_MAX_OFFSET (200LL * 366 * 86400)

static time_t clamp_offset(long long offset)
{
	return (time_t)(offset > RTC_MAX_OFFSET ? RTC_MAX_OFFSET :
			offset < -RTC_MAX_OFFSET ? -RTC_MAX_OFFSET : offset);
}

/* Load the time registers from host time + offset. */
static void rtc_load_time(struct rtc *r)
{
	time_t now = time(NULL) + r->offset;
	struct tm tm = { 0 };

	gmtime_r(&now, &tm);
	r->cmos[REG_SEC] = to_reg(r, tm.tm_sec);
	r->cmos[REG_MIN] = to_reg(r, tm.tm_min);
	r->cmos[REG_HOUR] = to_reg(r, tm.tm_hour);
	r->cmos[REG_WDAY] = to_reg(r, tm.tm_wday + 1);
	r->cmos[REG_MDAY] = to_reg(r, tm.tm_mday);
	r->cmos[REG_MON] = to_reg(r, tm.tm_mon + 1);
	r->cmos[REG_YEAR] = to_reg(r, (tm.tm_year + 1900) % 100);
	r->cmos[REG_CENTURY] = to_reg(r, (tm.tm_year + 1900) / 100);
}

/* The guest wrote a time register: the registers now hold the guest's time; keep its offset. */
static void rtc_store_time(struct rtc *r)
{
	struct tm tm = {
		.tm_sec = from_reg(r, r->cmos[REG_SEC]), .tm_min = from_reg(r, r->cmos[REG_MIN]),
		.tm_hour = from_reg(r, r->cmos[REG_HOUR]), .tm_mday = from_reg(r, r->cmos[REG_MDAY]),
		.tm_mon = from_reg(r, r->cmos[REG_MON]) - 1,
		.tm_year = from_reg(r, r->cmos[REG_CENTURY]) * 100 + from_reg(r, r->cmos[REG_YEAR]) - 1900,
	};
	time_t t = timegm(&tm);

	if (t != (time_t)-1)
		r->offset = clamp_offset((long long)t - time(NULL));
}

/* Offsets: 0 = port 0x70 (index; bit 7 is the NMI mask, ignored), 1 = port 0x71 (data). */
static uint8_t rtc_read_byte(struct byte_dev *dev, uint64_t off)
{
	struct rtc *r = (struct rtc *)dev;
	uint8_t v;

	if (off == 0)
		return r->index;
	if (is_time_reg(r->index))
		rtc_load_time(r);
	v = r->cmos[r->index];
	if (r->index == REG_C)
		r->cmos[REG_C] = 0; /* interrupt flags clear on read */
	return v;
}

static void rtc_write_byte(struct byte_dev *dev, uint64_t off, uint8_t v)
{
	struct rtc *r = (struct rtc *)dev;

	if (off == 0) {
		r->index = v & 0x7f;
		return;
	}
	switch (r->index) {
	case REG_A: r->cmos[REG_A] = (v & 0x7f); break;  /* UIP is read-only */
	case REG_B: r->cmos[REG_B] = v | B_24H; break;
	case REG_C:
	case REG_D: break;                            /* read-only */
	default:
		if (is_time_reg(r->index))
			rtc_load_time(r);
		r->cmos[r->index] = v;
		if (is_time_reg(r->index))
			rtc_store_time(r);
	}
}

static void put(struct rtc *r, uint8_t at, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		r->cmos[at + i] = (uint8_t)(v >> (8 * i));
}

/* QEMU's memory-size bytes for @mem, and its default boot order "cad" (disk, floppy, CD). */
static void rtc_set_memory(struct rtc *r, const struct guest_mem *mem)
{
	uint64_t low = guest_mem_low_end(mem), high = 0, ext;

	for (unsigned i = 1; i < mem->nr_regions && i < GUEST_MEM_MAX_REGIONS; i++)
		high += mem->region[i].size;
	ext = low > (1u << 20) ? (low >> 10) - 1024 : 0;
	put(r, CMOS_BASE_MEM, 640, 2);
	put(r, CMOS_EXT_MEM, ext > 0xffff ? 0xffff : ext, 2);
	put(r, CMOS_EXT_MEM2, ext > 0xffff ? 0xffff : ext, 2);
	ext = low > (16u << 20) ? (low - (16u << 20)) >> 16 : 0;
	put(r, CMOS_MEM_16M, ext > 0xffff ? 0xffff : ext, 2);
	put(r, CMOS_MEM_4G, high >> 16, 3);
	r->cmos[CMOS_BOOT_ORDER] = 0x12;
	r->cmos[CMOS_BOOT_ORDER3] = 0x30;
}

static int rtc_create(struct dev_host *host, const void *config, unsigned index,
		      void **state, struct error *e)
{
	struct rtc *r = byte_dev_new(sizeof(*r), rtc_read_byte, rtc_write_byte, host->pio,
				     KILN_PORT_RTC, 2, "rtc", e);

	if (!r)
		return error_code(e);
	/* glibc reads the time zone file at its first time conversion, gmtime_r() included: do it
	 * now, on the thread that makes devices, not on a vCPU (whose filter has no open()). */
	tzset();
	r->cmos[REG_A] = A_DIVIDER_32K;
	r->cmos[REG_B] = B_24H;
	r->cmos[REG_D] = D_VRT;
	if (host->mem)
		rtc_set_memory(r, host->mem);
	*state = r;
	return 0;
}

static void rtc_describe(void *state, struct acpi_config *acpi)
{
	static const struct acpi_device_desc rtc = {
		.name = "RTC_", .hid = "PNP0B00", .uid = 0, .nr_res = 2,
		.res = { { ACPI_RES_IO, KILN_PORT_RTC, 2 }, { ACPI_RES_IRQ, KILN_IRQ_RTC, 0 } },
	};

	device_describe(acpi, &rtc);
}

/* Snapshot, section version 1: the index (u8), CMOS RAM (128 bytes), 7 zero bytes, and the
 * guest's offset from the host's clock (seconds, a two's complement u64), so the guest's wall
 * clock continues from the host's time at restore. */

static void rtc_save(void *state, struct snap_enc *e)
{
	struct rtc *r = state;

	pthread_mutex_lock(&r->dev.lock);
	snap_enc_u8(e, r->index);
	snap_enc_bytes(e, r->cmos, sizeof(r->cmos));
	snap_enc_bytes(e, (const uint8_t[7]){ 0 }, 7);
	snap_enc_u64(e, (uint64_t)(int64_t)r->offset);
	pthread_mutex_unlock(&r->dev.lock);
}

static int rtc_load(void *state, struct snap_dec *d, uint32_t version, char *err, size_t errlen)
{
	struct rtc *r = state;
	uint8_t index = snap_dec_u8(d), cmos[CMOS_SIZE], pad[7];
	int64_t offset;

	snap_dec_bytes(d, cmos, sizeof(cmos));
	snap_dec_bytes(d, pad, sizeof(pad));
	offset = (int64_t)snap_dec_u64(d);
	if (index >= CMOS_SIZE) {
		snprintf(err, errlen, "snapshot: CMOS index %u out of range", index);
		return -EINVAL;
	}
	pthread_mutex_lock(&r->dev.lock);
	r->index = index;
	memcpy(r->cmos, cmos, sizeof(r->cmos));
	r->offset = clamp_offset(offset); /* as the guest would have got it from this kiln */
	pthread_mutex_unlock(&r->dev.lock);
	return 0;
}

const struct device_class cmos_rtc_class = {
	.kind = DEVICE_PLATFORM,
	.name = "cmos_rtc", .create = rtc_create, .destroy = byte_dev_free, .describe = rtc_describe,
	.state_version = 1, .save = rtc_save, .load = rtc_load,
};
