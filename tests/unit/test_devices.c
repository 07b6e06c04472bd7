/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the legacy PC devices, driven only through the I/O bus as a guest would. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"

struct fake {
	struct dev_host host;
	struct bus pio, mmio;
	int irq_level[16];
	int irq_changes;
	enum vm_stop_reason stop;
	int pipe[2];
	struct loop *loop;
	void *state[16];
	const struct device_class *type[16];
	unsigned n;
};

static struct fake F;

static void fake_set_irq(struct dev_host *h, unsigned gsi, bool level)
{
	F.irq_level[gsi] = level;
	F.irq_changes++;
}

static void fake_stop(struct dev_host *h, enum vm_stop_reason r)
{
	if (F.stop == VM_STOP_NONE)
		F.stop = r;
}

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	bus_init(&F.pio, "port");
	bus_init(&F.mmio, "mmio");
	if (pipe2(F.pipe, O_NONBLOCK) || loop_new(&F.loop))
		return -1;
	F.host = (struct dev_host){ .pio = &F.pio, .mmio = &F.mmio, .set_irq = fake_set_irq,
				    .request_stop = fake_stop, .console_out_fd = F.pipe[1],
				    .loop = F.loop };
	clock_gettime(CLOCK_MONOTONIC, &F.host.start);
	for (const struct device_class *const *t = pc_platform_classes; *t; t++) {
		struct error e;

		if ((*t)->create(&F.host, NULL, 0, &F.state[F.n], &e))
			return -1;
		F.type[F.n++] = *t;
	}
	return 0;
}

static int teardown(void **state)
{
	for (unsigned i = 0; i < F.n; i++)
		if (F.type[i]->destroy)
			F.type[i]->destroy(F.state[i]);
	loop_free(F.loop);
	close(F.pipe[0]);
	close(F.pipe[1]);
	bus_destroy(&F.pio);
	bus_destroy(&F.mmio);
	return 0;
}

static void *state_of(const struct device_class *t)
{
	for (unsigned i = 0; i < F.n; i++)
		if (F.type[i] == t)
			return F.state[i];
	fail_msg("device %s missing", t->name);
	return NULL;
}

static uint8_t inb(uint16_t port)
{
	uint8_t v;

	bus_dispatch(&F.pio, port, &v, 1, false);
	return v;
}

static void outb(uint16_t port, uint8_t v) { bus_dispatch(&F.pio, port, &v, 1, true); }


#define COM1 KILN_PORT_COM1

/* Run the loop until the console's pipe has @n bytes for us (the UART's output is written
 * there by the loop), then read them into @buf. */
static void read_console(char *buf, size_t n)
{
	size_t got = 0;

	for (int i = 0; i < 200 && got < n; i++) {
		ssize_t r;

		loop_wait(F.loop, 10);
		r = read(F.pipe[0], buf + got, n - got);
		got += r > 0 ? (size_t)r : 0;
	}
	assert_int_equal(got, n);
}

static void test_uart_transmit(void **state)
{
	char buf[16] = { 0 };

	outb(COM1 + 3, 0x03);
	outb(COM1, 'o');
	outb(COM1, 'k');
	read_console(buf, 2);
	assert_string_equal(buf, "ok");
	assert_int_equal(inb(COM1 + 5) & 0x60, 0x60); /* THRE | TEMT */
	/* Divisor latch access does not transmit. */
	outb(COM1 + 3, 0x83);
	outb(COM1, 0x01);
	assert_int_equal(inb(COM1), 0x01);
	outb(COM1 + 3, 0x03);
	loop_wait(F.loop, 10);
	assert_int_equal(read(F.pipe[0], buf, sizeof(buf)), -1);
}

/* A console reader that does not read never holds the vCPU: writes return at once, THRE and
 * TEMT clear once the output buffer is full (a byte written then is lost), and the THRE
 * interrupt comes when the reader takes output again. */
static void test_uart_reader_that_does_not_read(void **state)
{
	static char sink[1 << 20];
	unsigned written = 0;
	int before;

	outb(COM1 + 3, 0x03);
	outb(COM1 + 1, 0x02); /* ETBEI */
	assert_int_equal(inb(COM1 + 2) & 0x0f, 0x02); /* THRE interrupt: room */
	/* Far more than the pipe (64 KiB) and the UART's buffer (64 KiB) hold together. */
	for (unsigned i = 0; i < (512u << 10) && (inb(COM1 + 5) & 0x20); i++) {
		outb(COM1, 'x');
		written++;
		if (i % 4096 == 0)
			loop_wait(F.loop, 0); /* the loop writes what the pipe takes */
	}
	loop_wait(F.loop, 0);
	assert_int_equal(inb(COM1 + 5) & 0x60, 0); /* busy: the reader is full */
	assert_true(written >= (64u << 10) && written < (512u << 10));
	outb(COM1, 'y'); /* written anyway: lost, not a blocked vCPU */
	assert_int_equal(inb(COM1 + 2) & 0x0f, 0x01); /* no THRE interrupt while busy */
	before = F.irq_changes;
	/* The reader catches up: room again, THRE set and its interrupt raised. */
	while (read(F.pipe[0], sink, sizeof(sink)) > 0 || loop_wait(F.loop, 20) > 0)
		;
	assert_int_equal(inb(COM1 + 5) & 0x60, 0x60);
	assert_true(F.irq_changes > before);
	assert_int_equal(inb(COM1 + 2) & 0x0f, 0x02);
	outb(COM1 + 1, 0x00);
}

/* The checks of Linux's 8250 autoconfig() that decide "16550A". */
static void test_uart_autoconfig_sees_16550a(void **state)
{
	outb(COM1 + 1, 0x00);
	assert_int_equal(inb(COM1 + 1) & 0x0f, 0x00);
	outb(COM1 + 1, 0x0f);
	assert_int_equal(inb(COM1 + 1) & 0x0f, 0x0f);
	outb(COM1 + 1, 0x00);
	outb(COM1 + 4, 0x10 | 0x0a); /* loopback, RTS, OUT2 */
	assert_int_equal(inb(COM1 + 6) & 0xf0, 0x90);
	outb(COM1 + 4, 0x00);
	outb(COM1 + 7, 0xa5);
	assert_int_equal(inb(COM1 + 7), 0xa5);
	outb(COM1 + 2, 0x01); /* enable FIFO */
	assert_int_equal(inb(COM1 + 2) >> 6, 3);
	outb(COM1 + 3, 0xbf); /* EFR probe: must not read 0 */
	assert_int_not_equal(inb(COM1 + 2), 0);
	outb(COM1 + 3, 0x80); /* 16750 probe: 64-byte FIFO bit never sticks */
	outb(COM1 + 2, 0x21);
	assert_int_equal((inb(COM1 + 2) >> 5) & 1, 0);
	outb(COM1 + 3, 0x03);
	outb(COM1 + 1, 0x40); /* XScale UUE bit is not kept */
	assert_int_equal(inb(COM1 + 1) & 0x40, 0);
	outb(COM1 + 1, 0x00);
	/* Loopback echoes transmitted bytes into the receiver. */
	outb(COM1 + 4, 0x10);
	outb(COM1, 0x5a);
	assert_int_equal(inb(COM1 + 5) & 1, 1);
	assert_int_equal(inb(COM1), 0x5a);
	outb(COM1 + 4, 0x08);
}

static void test_uart_interrupts(void **state)
{
	void *uart = state_of(&uart_8250_class);
	const uint8_t in[3] = { 'a', 'b', 'c' };
	uint8_t flood[100];

	outb(COM1 + 1, 0x01); /* ERBFI */
	assert_int_equal(F.irq_level[KILN_IRQ_COM1], 0);
	assert_int_equal(uart_8250_receive(uart, in, 3), 3);
	assert_int_equal(F.irq_level[KILN_IRQ_COM1], 1);
	assert_int_equal(inb(COM1 + 2) & 0x0f, 0x04);
	assert_int_equal(inb(COM1), 'a');
	assert_int_equal(inb(COM1), 'b');
	assert_int_equal(inb(COM1), 'c');
	assert_int_equal(F.irq_level[KILN_IRQ_COM1], 0);
	assert_int_equal(inb(COM1 + 2) & 0x0f, 0x01);
	/* THRE: raised when ETBEI is enabled, acknowledged by reading IIR (Linux's THRE test). */
	outb(COM1 + 1, 0x02);
	assert_int_equal(F.irq_level[KILN_IRQ_COM1], 1);
	assert_int_equal(inb(COM1 + 2) & 0x0f, 0x02);
	assert_int_equal(F.irq_level[KILN_IRQ_COM1], 0);
	assert_int_equal(inb(COM1 + 2) & 0x0f, 0x01);
	outb(COM1, 'x');
	assert_int_equal(F.irq_level[KILN_IRQ_COM1], 1);
	outb(COM1 + 1, 0x00);
	assert_int_equal(F.irq_level[KILN_IRQ_COM1], 0);
	/* The FIFO holds 64 bytes; the rest is left to the caller. */
	memset(flood, 'z', sizeof(flood));
	assert_int_equal(uart_8250_receive(uart, flood, sizeof(flood)), 64);
	outb(COM1 + 2, 0x03); /* clear RX FIFO */
	assert_int_equal(inb(COM1 + 5) & 1, 0);
	{
		char buf[8];
		while (read(F.pipe[0], buf, sizeof(buf)) > 0)
			;
	}
}

static void test_i8042(void **state)
{
	outb(KILN_PORT_I8042_CMD, 0xaa);
	assert_int_equal(inb(KILN_PORT_I8042_CMD) & 1, 1);
	assert_int_equal(inb(KILN_PORT_I8042_DATA), 0x55);
	assert_int_equal(inb(KILN_PORT_I8042_CMD) & 1, 0);
	outb(KILN_PORT_I8042_CMD, 0x60);
	outb(KILN_PORT_I8042_DATA, 0x47);
	outb(KILN_PORT_I8042_CMD, 0x20);
	assert_int_equal(inb(KILN_PORT_I8042_DATA), 0x47);
	outb(KILN_PORT_I8042_CMD, 0xff); /* pulse nothing */
	assert_int_equal(F.stop, VM_STOP_NONE);
	outb(KILN_PORT_I8042_CMD, 0xfe);
	assert_int_equal(F.stop, VM_STOP_RESET);
	F.stop = VM_STOP_NONE;
	outb(KILN_PORT_I8042_CMD, 0xd1);
	outb(KILN_PORT_I8042_DATA, 0xfe);
	assert_int_equal(F.stop, VM_STOP_RESET);
	F.stop = VM_STOP_NONE;
}

/* SendCtrlAltDel: four set-2 bytes, each with an IRQ 1 edge once the guest enabled it, one at
 * a time through the output buffer; a full keyboard FIFO refuses more. */
static void test_i8042_ctrl_alt_del(void **state)
{
	static const uint8_t want[] = { 0x14, 0x11, 0xe0, 0x71 };
	void *kbd = state_of(&i8042_class);
	int changes;

	outb(KILN_PORT_I8042_CMD, 0x60);
	outb(KILN_PORT_I8042_DATA, 0x44); /* KBDINT off */
	F.irq_changes = 0;
	assert_int_equal(i8042_send_ctrl_alt_del(kbd), 0);
	assert_int_equal(F.irq_changes, 0); /* interrupts not enabled yet */
	outb(KILN_PORT_I8042_CMD, 0x60);
	outb(KILN_PORT_I8042_DATA, 0x45); /* KBDINT on: the waiting byte interrupts */
	assert_int_equal(F.irq_changes, 2);
	for (unsigned i = 0; i < sizeof(want); i++) {
		changes = F.irq_changes;
		assert_int_equal(inb(KILN_PORT_I8042_CMD) & 1, 1);
		assert_int_equal(inb(KILN_PORT_I8042_DATA), want[i]);
		/* Reading a byte brings the next, with an edge (raised and lowered). */
		assert_int_equal(F.irq_changes, changes + (i + 1 < sizeof(want) ? 2 : 0));
	}
	assert_int_equal(inb(KILN_PORT_I8042_CMD) & 1, 0);
	assert_int_equal(F.irq_level[1], 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(i8042_send_ctrl_alt_del(kbd), 0);
	assert_int_equal(i8042_send_ctrl_alt_del(kbd), -ENOSPC); /* 1 in the buffer + 15 queued */
}

static int bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0xf); }

static void test_rtc(void **state)
{
	time_t now = time(NULL), got;
	struct tm tm = { 0 };

	outb(KILN_PORT_RTC, 0x0d);
	assert_int_equal(inb(KILN_PORT_RTC + 1), 0x80);
	outb(KILN_PORT_RTC, 0x0a);
	assert_int_equal(inb(KILN_PORT_RTC + 1) & 0x80, 0); /* no update in progress */
	outb(KILN_PORT_RTC, 0x0b);
	assert_int_equal(inb(KILN_PORT_RTC + 1) & 0x06, 0x02); /* BCD, 24-hour */
	outb(KILN_PORT_RTC, 0x00); tm.tm_sec = bcd(inb(KILN_PORT_RTC + 1));
	outb(KILN_PORT_RTC, 0x02); tm.tm_min = bcd(inb(KILN_PORT_RTC + 1));
	outb(KILN_PORT_RTC, 0x04); tm.tm_hour = bcd(inb(KILN_PORT_RTC + 1));
	outb(KILN_PORT_RTC, 0x07); tm.tm_mday = bcd(inb(KILN_PORT_RTC + 1));
	outb(KILN_PORT_RTC, 0x08); tm.tm_mon = bcd(inb(KILN_PORT_RTC + 1)) - 1;
	outb(KILN_PORT_RTC, 0x09); tm.tm_year = bcd(inb(KILN_PORT_RTC + 1));
	outb(KILN_PORT_RTC, 0x32); tm.tm_year += bcd(inb(KILN_PORT_RTC + 1)) * 100 - 1900;
	got = timegm(&tm);
	assert_true(got >= now - 2 && got <= now + 2);
	/* The guest sets the year back by one: later reads keep the offset. */
	outb(KILN_PORT_RTC, 0x09);
	outb(KILN_PORT_RTC + 1, (uint8_t)(((tm.tm_year + 1900 - 1) % 100 / 10) << 4 | (tm.tm_year + 1900 - 1) % 10));
	outb(KILN_PORT_RTC, 0x09);
	assert_int_equal(bcd(inb(KILN_PORT_RTC + 1)), (tm.tm_year + 1900 - 1) % 100);
}

/* A guest that sets the RTC to year 9999 gets a clock two centuries ahead at most, and a
 * snapshot of it restores: its offset is clamped where it is set, and on load, an offset from
 * a file beyond that is clamped the same way rather than reaching gmtime(). */
static void test_rtc_far_dates(void **state)
{
	void *rtc = state_of(&cmos_rtc_class);
	struct snap_enc e = { 0 };
	struct snap_dec d;
	char err[128];
	int century;

	outb(KILN_PORT_RTC, 0x32);
	outb(KILN_PORT_RTC + 1, 0x99);
	outb(KILN_PORT_RTC, 0x09);
	outb(KILN_PORT_RTC + 1, 0x99);
	outb(KILN_PORT_RTC, 0x32);
	century = bcd(inb(KILN_PORT_RTC + 1));
	assert_true(century >= 22 && century <= 23);
	cmos_rtc_class.save(rtc, &e);
	snap_dec_init(&d, e.buf, e.len);
	assert_int_equal(cmos_rtc_class.load(rtc, &d, 1, err, sizeof(err)), 0);
	assert_true(snap_dec_done(&d));
	/* An offset of 2^62 s, as a file may hold: the clock is as far as it may be. */
	memset(e.buf + e.len - 8, 0, 8);
	e.buf[e.len - 1] = 0x40;
	snap_dec_init(&d, e.buf, e.len);
	assert_int_equal(cmos_rtc_class.load(rtc, &d, 1, err, sizeof(err)), 0);
	outb(KILN_PORT_RTC, 0x32);
	assert_int_equal(bcd(inb(KILN_PORT_RTC + 1)), century);
	snap_enc_free(&e);
}

static void test_acpi_pm_poweroff(void **state)
{
	uint16_t cnt;

	bus_dispatch(&F.pio, KILN_PORT_PM1A_CNT, (uint8_t *)&cnt, 2, false);
	assert_int_equal(cnt & 1, 1); /* SCI_EN */
	cnt = (uint16_t)(1 << 10 | 1 << 13); /* S1 */
	bus_dispatch(&F.pio, KILN_PORT_PM1A_CNT, (uint8_t *)&cnt, 2, true);
	assert_int_equal(F.stop, VM_STOP_NONE);
	cnt = (uint16_t)(KILN_ACPI_S5_SLP_TYP << 10); /* SLP_TYP without SLP_EN */
	bus_dispatch(&F.pio, KILN_PORT_PM1A_CNT, (uint8_t *)&cnt, 2, true);
	assert_int_equal(F.stop, VM_STOP_NONE);
	cnt |= 1 << 13;
	bus_dispatch(&F.pio, KILN_PORT_PM1A_CNT, (uint8_t *)&cnt, 2, true);
	assert_int_equal(F.stop, VM_STOP_POWEROFF);
	F.stop = VM_STOP_NONE;
	/* SLP_EN reads as 0, so writing back what was read does not power off again. */
	bus_dispatch(&F.pio, KILN_PORT_PM1A_CNT, (uint8_t *)&cnt, 2, false);
	assert_int_equal(cnt & (1 << 13), 0);
	bus_dispatch(&F.pio, KILN_PORT_PM1A_CNT, (uint8_t *)&cnt, 2, true);
	assert_int_equal(F.stop, VM_STOP_NONE);
}

static void test_pvpanic(void **state)
{
	assert_int_equal(inb(KILN_PORT_PVPANIC), 3);
	outb(KILN_PORT_PVPANIC, 2);
	assert_int_equal(F.stop, VM_STOP_NONE);
	outb(KILN_PORT_PVPANIC, 1);
	assert_int_equal(F.stop, VM_STOP_PANIC);
	F.stop = VM_STOP_NONE;
}

/* Log lines written while @fn runs, at LOG_DEBUG. */
static unsigned log_lines(void (*fn)(void))
{
	char buf[65536];
	unsigned lines = 0;
	ssize_t n;
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	log_set_fd(p[1]);
	log_set_level(LOG_DEBUG);
	fn();
	log_set_level(LOG_WARN);
	log_set_fd(STDERR_FILENO);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(p[0]);
	close(p[1]);
	return lines;
}

static void crash_loaded_flood(void)
{
	for (unsigned i = 0; i < 100000; i++)
		outb(KILN_PORT_PVPANIC, 2);
}

static void boot_timer_flood(void)
{
	uint8_t v = 123;

	for (unsigned i = 0; i < 100000; i++)
		bus_dispatch(&F.mmio, KILN_BOOT_TIMER_GPA, &v, 1, true);
}

/* A guest that writes the same event in a loop gets one log line, not a line each: with a
 * log file (Firecracker's --log-path) it could fill the host's disk. */
static void test_guest_events_are_logged_once(void **state)
{
	assert_in_range(log_lines(crash_loaded_flood), 0, 1); /* test_pvpanic may have had it */
	assert_in_range(log_lines(boot_timer_flood), 0, 1);
}

static void test_describe(void **state)
{
	struct acpi_config acpi = { .nr_cpus = 1 };
	bool com1 = false, rtc = false, pevt = false;

	for (unsigned i = 0; i < F.n; i++)
		if (F.type[i]->describe)
			F.type[i]->describe(F.state[i], &acpi);
	for (unsigned i = 0; i < acpi.nr_devices; i++) {
		const struct acpi_device_desc *d = &acpi.device[i];

		if (!strcmp(d->hid, "PNP0501")) {
			com1 = d->res[0].base == KILN_PORT_COM1 && d->res[1].type == ACPI_RES_IRQ &&
			       d->res[1].base == KILN_IRQ_COM1;
		} else if (!strcmp(d->hid, "PNP0B00")) {
			rtc = d->res[0].base == KILN_PORT_RTC && d->res[1].base == KILN_IRQ_RTC;
		} else if (!strcmp(d->hid, "QEMU0001")) {
			pevt = d->res[0].base == KILN_PORT_PVPANIC && d->res[0].len == 1;
		}
	}
	assert_true(com1);
	assert_true(rtc);
	assert_true(pevt);
}

/* A hostile guest: every access size at every offset of every claimed range. */
static void test_every_access_is_harmless(void **state)
{
	for (int space = 0; space < 2; space++) {
		struct bus *bus = space ? &F.mmio : &F.pio;

		for (unsigned r = 0; r < bus->nr_ranges; r++) {
			uint64_t base = bus->range[r].base, len = bus->range[r].len;

			for (uint64_t off = 0; off < len && off < 64; off++) {
				for (uint32_t sz = 1; sz <= 8; sz *= 2) {
					uint8_t d[8] = { 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a };

					if (base + off == KILN_PORT_I8042_CMD || base + off == KILN_PORT_PM1A_CNT ||
					    base + off == KILN_PORT_PVPANIC)
						continue; /* would stop the VM: covered above */
					bus_dispatch(bus, base + off, d, sz, false);
					bus_dispatch(bus, base + off, d, sz, true);
				}
			}
		}
	}
	assert_int_equal(F.stop, VM_STOP_NONE);
	{
		char buf[64];
		while (read(F.pipe[0], buf, sizeof(buf)) > 0)
			;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uart_transmit),
		cmocka_unit_test(test_uart_reader_that_does_not_read),
		cmocka_unit_test(test_uart_autoconfig_sees_16550a),
		cmocka_unit_test(test_uart_interrupts),
		cmocka_unit_test(test_i8042),
		cmocka_unit_test(test_i8042_ctrl_alt_del),
		cmocka_unit_test(test_rtc),
		cmocka_unit_test(test_rtc_far_dates),
		cmocka_unit_test(test_acpi_pm_poweroff),
		cmocka_unit_test(test_pvpanic),
		cmocka_unit_test(test_guest_events_are_logged_once),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_every_access_is_harmless),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
