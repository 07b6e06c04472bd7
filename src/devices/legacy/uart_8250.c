/* SPDX-License-Identifier: Apache-2.0 */
/* uart_8250 — a 16550A UART as COM1 (0x3F8, IRQ 4): the serial console.
 *
 * Owns: the register file, a 64-byte receive FIFO fed from the host terminal, and the
 * interrupt line. Transmitted bytes go to a bounded buffer (include/kiln/outbuf.h) that kiln's
 * event loop writes to the console fd without blocking, so a reader that does not read never
 * holds a vCPU: THRE/TEMT read as set while the buffer has room, as a real 16550's do while its
 * transmitter takes bytes, and clear while it is full (a byte written then is lost, as on the
 * chip); the "THR empty" interrupt is pending from the moment ETBEI is enabled, a byte is
 * written with room left, or room frees up, until IIR reports it. Register behaviour follows
 * the National Semiconductor PC16550D data sheet; the probe sequence Linux runs
 * (drivers/tty/serial/8250/8250_port.c, autoconfig) identifies it as a 16550A. With an output
 * limit (dev_host.console_out_limit, Firecracker's /serial rate_limiter), bytes beyond it are
 * dropped and counted, as Firecracker's SerialOut does: the guest never waits for the limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byte_regs.h"
#include "kiln/acpi.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/outbuf.h"
#include "kiln/snapshot.h"

#define UART_FIFO 64
#define UART_REGS 8
#define UART_OUT_BUF (64u << 10)         /* output waiting for the console's reader */
#define UART_OUT_FILE_MAX (1ull << 30)   /* at most this much into a regular file */

enum { RBR_THR_DLL = 0, IER_DLM = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define IER_ERBFI 0x01
#define IER_ETBEI 0x02
#define IER_ELSI  0x04
#define IER_EDSSI 0x08
#define IIR_NONE  0x01
#define IIR_MSI   0x00
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB  0x80
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MSR_DELTAS 0x0f

struct uart {
	struct byte_dev dev; /* first: the bus hands us &dev */
	struct dev_host *host;
	uint8_t rx[UART_FIFO];
	unsigned rx_head, rx_count;
	uint8_t ier, lcr, mcr, scr, dll, dlm, msr_deltas;
	bool fifo_on;
	bool thri_pending;  /* THR-empty interrupt waiting for IIR to report it */
	bool irq_level;
	struct outbuf *out;  /* to host->console_out_fd */
	struct log_once tx_lost;
	struct token_bucket out_limit;
	/* Firecracker's uart metrics: bytes the guest read, RBR reads with nothing there, bytes
	 * written to the console, bytes lost to a full buffer, bytes over the limit */
	uint64_t read_count, missed_read_count, write_count, missed_write_count, dropped_bytes;
};

static uint8_t uart_msr(const struct uart *u)
{
	if (u->mcr & MCR_LOOP) /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
		return (uint8_t)(((u->mcr & 0x01) << 5) | ((u->mcr & 0x02) << 3) |
				 ((u->mcr & 0x04) << 4) | ((u->mcr & 0x08) << 4)) | u->msr_deltas;
	return 0xb0 | u->msr_deltas; /* DCD, DSR, CTS: a terminal is always there */
}

static uint8_t uart_iir(const struct uart *u)
{
	uint8_t id = IIR_NONE;

	if ((u->ier & IER_ERBFI) && u->rx_count)
		id = IIR_RDI;
	else if ((u->ier & IER_ETBEI) && u->thri_pending)
		id = IIR_THRI;
	else if ((u->ier & IER_EDSSI) && u->msr_deltas)
		id = IIR_MSI;
	return id | (u->fifo_on ? IIR_FIFO : 0);
}

/* Recompute the interrupt line; call with the lock held. */
static void uart_update_irq(struct uart *u)
{
	bool level = !(uart_iir(u) & IIR_NONE);

	if (level != u->irq_level) {
		u->irq_level = level;
		u->host->set_irq(u->host, KILN_IRQ_COM1, level);
	}
}

static void uart_rx_push(struct uart *u, uint8_t byte)
{
	if (u->rx_count == UART_FIFO)
		return; /* overrun: the byte is lost, as on the chip */
	u->rx[(u->rx_head + u->rx_count++) % UART_FIFO] = byte;
}

/* Whether the transmitter takes a byte now (THRE, TEMT). */
static bool uart_tx_room(struct uart *u)
{
	return outbuf_room(u->out) > 0;
}

/* A byte written to THR: queued for the console; with room left, THR is empty again at once. */
static void uart_transmit(struct uart *u, uint8_t byte)
{
	if (u->mcr & MCR_LOOP) {
		uart_rx_push(u, byte);
		u->thri_pending = true;
		return;
	}
	if (!token_bucket_try(&u->out_limit, 1, loop_now_ns())) {
		u->dropped_bytes++;
	} else if (outbuf_put(u->out, &byte, 1)) {
		u->write_count++;
	} else {
		u->missed_write_count++;
		if (log_once_first(&u->tx_lost))
			log_warn("serial console: the guest wrote while the transmitter was busy (its "
				 "reader does not read); output lost");
	}
	u->thri_pending = uart_tx_room(u);
}

/* The console's reader took output after the buffer was full: THR is empty again. Loop
 * thread. */
static void uart_tx_room_again(void *opaque)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->dev.lock);
	u->thri_pending = true;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->dev.lock);
}

static uint8_t uart_read_byte(struct byte_dev *dev, uint64_t off)
{
	struct uart *u = (struct uart *)dev;
	uint8_t v = 0;

	switch (off) {
	case RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
		} else if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO;
			u->rx_count--;
			u->read_count++;
		} else {
			u->missed_read_count++;
		}
		break;
	case IER_DLM: v = u->lcr & LCR_DLAB ? u->dlm : u->ier; break;
	case IIR_FCR:
		v = uart_iir(u);
		if ((v & 0x0f) == IIR_THRI)
			u->thri_pending = false; /* reading IIR acknowledges THRE */
		break;
	case LCR: v = u->lcr; break;
	case MCR: v = u->mcr; break;
	case LSR: v = (uart_tx_room(u) ? LSR_THRE | LSR_TEMT : 0) | (u->rx_count ? LSR_DR : 0); break;
	case MSR:
		v = uart_msr(u);
		u->msr_deltas = 0;
		break;
	case SCR: v = u->scr; break;
	}
	uart_update_irq(u);
	return v;
}

static void uart_write_byte(struct byte_dev *dev, uint64_t off, uint8_t v)
{
	struct uart *u = (struct uart *)dev;

	switch (off) {
	case RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		uart_transmit(u, v);
		break;
	case IER_DLM:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling ETBEI while THR is empty raises the THRE interrupt at once. */
		if ((v & IER_ETBEI) && !(u->ier & IER_ETBEI) && uart_tx_room(u))
			u->thri_pending = true;
		u->ier = v & (IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI);
		break;
	case IIR_FCR:
		u->fifo_on = v & FCR_ENABLE;
		if (v & FCR_CLEAR_RX)
			u->rx_count = 0;
		break;
	case LCR: u->lcr = v; break;
	case MCR: {
		uint8_t before = uart_msr(u);

		u->mcr = v & 0x1f;
		u->msr_deltas |= (uint8_t)(((before ^ uart_msr(u)) >> 4) & MSR_DELTAS);
		break;
	}
	case SCR: u->scr = v; break;
	default: break; /* LSR and MSR are read-only */
	}
	uart_update_irq(u);
}

unsigned uart_8250_receive(void *uart_state, const uint8_t *buf, unsigned len)
{
	struct uart *u = uart_state;
	unsigned taken = 0;

	pthread_mutex_lock(&u->dev.lock);
	while (taken < len && u->rx_count < UART_FIFO)
		uart_rx_push(u, buf[taken++]);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->dev.lock);
	return taken;
}

static void uart_destroy(void *state)
{
	struct uart *u = state;

	if (u->out) {
		outbuf_flush(u->out); /* what the guest wrote last, a panic message say */
		outbuf_free(u->out);
	}
	byte_dev_free(u);
}

static int uart_create(struct dev_host *host, const void *config, unsigned index,
		       void **state, struct error *e)
{
	struct uart *u = byte_dev_new(sizeof(*u), uart_read_byte, uart_write_byte, host->pio,
				      KILN_PORT_COM1, UART_REGS, "COM1", e);
	int ret;

	if (!u)
		return error_code(e);
	u->host = host;
	token_bucket_init(&u->out_limit, &host->console_out_limit, loop_now_ns());
	u->lcr = 0x03; /* 8N1 */
	u->mcr = 0x08; /* OUT2 */
	ret = outbuf_new(host->loop, host->console_out_fd, UART_OUT_BUF, UART_OUT_FILE_MAX,
			 uart_tx_room_again, u, &u->out);
	if (ret) {
		uart_destroy(u);
		return error_set(e, ERROR_RUNTIME, "COM1: console output: %s", strerror(-ret));
	}
	*state = u;
	return 0;
}

static void uart_describe(void *state, struct acpi_config *acpi)
{
	static const struct acpi_device_desc com1 = {
		.name = "COM1", .hid = "PNP0501", .uid = 1, .nr_res = 2,
		.res = { { ACPI_RES_IO, KILN_PORT_COM1, UART_REGS }, { ACPI_RES_IRQ, KILN_IRQ_COM1, 0 } },
	};

	device_describe(acpi, &com1);
}

/* Snapshot, section version 1: the receive FIFO in order (64 bytes, unused ones zero), then u8
 * each: count, IER, LCR, MCR, SCR, DLL, DLM, MSR deltas, FIFO enabled, THRE pending, IRQ level. */
static void uart_save(void *state, struct snap_enc *e)
{
	struct uart *u = state;
	uint8_t rx[UART_FIFO] = { 0 };

	pthread_mutex_lock(&u->dev.lock);
	for (unsigned i = 0; i < u->rx_count; i++)
		rx[i] = u->rx[(u->rx_head + i) % UART_FIFO];
	snap_enc_bytes(e, rx, sizeof(rx));
	snap_enc_u8(e, (uint8_t)u->rx_count);
	snap_enc_u8(e, u->ier);
	snap_enc_u8(e, u->lcr);
	snap_enc_u8(e, u->mcr);
	snap_enc_u8(e, u->scr);
	snap_enc_u8(e, u->dll);
	snap_enc_u8(e, u->dlm);
	snap_enc_u8(e, u->msr_deltas);
	snap_enc_u8(e, u->fifo_on);
	snap_enc_u8(e, u->thri_pending);
	snap_enc_u8(e, u->irq_level);
	pthread_mutex_unlock(&u->dev.lock);
}

static int uart_load(void *state, struct snap_dec *d, uint32_t version, char *err, size_t errlen)
{
	struct uart *u = state;
	uint8_t rx[UART_FIFO], v[11];

	snap_dec_bytes(d, rx, sizeof(rx));
	snap_dec_bytes(d, v, sizeof(v));
	/* count, IER, MCR and the deltas within their bits; the flags 0 or 1 */
	if (v[0] > UART_FIFO || v[1] > 0x0f || v[3] > 0x1f || v[7] > MSR_DELTAS || v[8] > 1 ||
	    v[9] > 1 || v[10] > 1) {
		snprintf(err, errlen, "snapshot: serial port state out of range");
		return -EINVAL;
	}
	pthread_mutex_lock(&u->dev.lock);
	memcpy(u->rx, rx, sizeof(u->rx));
	u->rx_head = 0;
	u->rx_count = v[0];
	u->ier = v[1];
	u->lcr = v[2];
	u->mcr = v[3];
	u->scr = v[4];
	u->dll = v[5];
	u->dlm = v[6];
	u->msr_deltas = v[7];
	u->fifo_on = v[8];
	u->thri_pending = v[9];
	u->irq_level = v[10]; /* the line's level itself is in the restored irqchip */
	pthread_mutex_unlock(&u->dev.lock);
	return 0;
}

static unsigned uart_counters(void *state, struct device_counter *out, unsigned max)
{
	struct uart *u = state;

	pthread_mutex_lock(&u->dev.lock);
	struct device_counter all[] = {
		{ "read_count", u->read_count },
		{ "missed_read_count", u->missed_read_count },
		{ "write_count", u->write_count },
		{ "missed_write_count", u->missed_write_count },
		{ "rate_limiter_dropped_bytes", u->dropped_bytes },
	};
	pthread_mutex_unlock(&u->dev.lock);
	return device_counters_copy(out, max, all, sizeof(all) / sizeof(all[0]));
}

const struct device_class uart_8250_class = {
	.kind = DEVICE_PLATFORM,
	.name = "uart_8250", .create = uart_create, .destroy = uart_destroy, .describe = uart_describe,
	.counters = uart_counters,
	.state_version = 1, .save = uart_save, .load = uart_load,
};
