/* SPDX-License-Identifier: Apache-2.0 */
/* i8042 — the PS/2 keyboard controller at ports 0x60/0x64: the controller commands firmware
 * and Linux use, the reset line (command 0xFE, or an output-port write with bit 0 clear),
 * which stops the VM with VM_STOP_RESET, and a keyboard that only ever types Ctrl+Alt+Del
 * (Firecracker's SendCtrlAltDel), in scan code set 2 on IRQ 1.
 *
 * The DSDT does not list the controller and the FADT does not announce it, so Linux's i8042
 * driver binds only when told to probe (i8042.nopnp, part of Firecracker's default command
 * line, with i8042.dumbkbd so that atkbd sends the keyboard no commands); its reboot path
 * reaches port 0x64 either way. No mouse is attached. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byte_regs.h"
#include "kiln/devices.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"

#define KBD_FIFO 16
#define KBD_IRQ 1

#define STS_OBF 0x01          /* status: output buffer full */
#define STS_SYS 0x04
#define STS_CMD 0x08
#define CMD_READ_CONFIG 0x20
#define CMD_WRITE_CONFIG 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_WRITE_OUTPUT 0xd1
#define CMD_PULSE_FIRST 0xf0   /* 0xF0..0xFF pulse output lines whose bit is clear; bit 0 = reset */
#define CFG_KBD_INT 0x01      /* command byte: IRQ 1 when a keyboard byte arrives */
#define CFG_KBD_DISABLED 0x10
#define CFG_AUX_DISABLED 0x20

struct i8042 {
	struct byte_dev dev; /* first: the bus hands us &dev */
	struct dev_host *host;
	uint8_t config;   /* controller command byte */
	uint8_t status;
	uint8_t out;      /* output buffer, valid while STS_OBF */
	uint8_t pending;  /* command waiting for its data byte on port 0x60, or 0 */
	bool out_kbd;     /* the output buffer holds a keyboard byte (not a controller reply) */
	uint8_t kbd[KBD_FIFO]; /* keyboard bytes not yet in the output buffer */
	unsigned kbd_head, kbd_count;
};

static void push(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_kbd = false;
	k->status |= STS_OBF;
}

/* An IRQ 1 edge, if the guest enabled keyboard interrupts. */
static void kbd_interrupt(struct i8042 *k)
{
	if (k->config & CFG_KBD_INT) {
		k->host->set_irq(k->host, KBD_IRQ, true);
		k->host->set_irq(k->host, KBD_IRQ, false);
	}
}

/* Move the next keyboard byte into a free output buffer and interrupt. */
static void deliver(struct i8042 *k)
{
	if ((k->status & STS_OBF) || !k->kbd_count || (k->config & CFG_KBD_DISABLED))
		return;
	push(k, k->kbd[k->kbd_head]);
	k->out_kbd = true;
	k->kbd_head = (k->kbd_head + 1) % KBD_FIFO;
	k->kbd_count--;
	kbd_interrupt(k);
}

int i8042_send_ctrl_alt_del(void *state)
{
	/* Set 2 make codes: left Ctrl, left Alt, Delete (extended). */
	static const uint8_t keys[] = { 0x14, 0x11, 0xe0, 0x71 };
	struct i8042 *k = state;
	int ret = 0;

	pthread_mutex_lock(&k->dev.lock);
	if (k->kbd_count + sizeof(keys) > KBD_FIFO) {
		ret = -ENOSPC; /* the guest is not reading its keyboard */
	} else {
		for (unsigned i = 0; i < sizeof(keys); i++)
			k->kbd[(k->kbd_head + k->kbd_count++) % KBD_FIFO] = keys[i];
		deliver(k);
	}
	pthread_mutex_unlock(&k->dev.lock);
	return ret;
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CONFIG: push(k, k->config); break;
	case CMD_WRITE_CONFIG:
	case CMD_WRITE_OUTPUT: k->pending = cmd; break;
	case CMD_SELF_TEST: push(k, 0x55); break;
	case CMD_KBD_TEST: push(k, 0x00); break;
	case CMD_DISABLE_KBD: k->config |= CFG_KBD_DISABLED; break;
	case CMD_ENABLE_KBD:
		k->config &= ~CFG_KBD_DISABLED;
		deliver(k);
		break;
	case CMD_DISABLE_AUX: k->config |= CFG_AUX_DISABLED; break;
	case CMD_ENABLE_AUX: k->config &= ~CFG_AUX_DISABLED; break;
	default:
		if (cmd >= CMD_PULSE_FIRST && !(cmd & 1))
			k->host->request_stop(k->host, VM_STOP_RESET);
		break;
	}
}

static void data(struct i8042 *k, uint8_t v)
{
	switch (k->pending) {
	case CMD_WRITE_CONFIG: {
		bool enabled = (v & CFG_KBD_INT) && !(k->config & CFG_KBD_INT);

		k->config = v;
		if (enabled && (k->status & STS_OBF) && k->out_kbd)
			kbd_interrupt(k); /* a key already waits in the buffer */
		deliver(k);
		break;
	}
	case CMD_WRITE_OUTPUT:
		if (!(v & 1))
			k->host->request_stop(k->host, VM_STOP_RESET);
		break;
	default: push(k, 0xfe); break; /* a byte for the keyboard: none attached, "resend" */
	}
	k->pending = 0;
}

/* Offsets: 0 = port 0x60 (data), 4 = port 0x64 (status / command). */
static uint8_t i8042_read_byte(struct byte_dev *dev, uint64_t off)
{
	struct i8042 *k = (struct i8042 *)dev;

	if (off == 4)
		return k->status;
	if (off == 0) {
		uint8_t v = k->out;

		k->status &= ~STS_OBF;
		deliver(k);
		return v;
	}
	return 0xff;
}

static void i8042_write_byte(struct byte_dev *dev, uint64_t off, uint8_t v)
{
	struct i8042 *k = (struct i8042 *)dev;

	if (off == 4) {
		k->status |= STS_CMD;
		command(k, v);
	} else if (off == 0) {
		k->status &= ~STS_CMD;
		data(k, v);
	}
}

static int i8042_create(struct dev_host *host, const void *config, unsigned index,
		        void **state, struct error *e)
{
	/* One range covers 0x60..0x64; 0x61..0x63 (system control, unmodelled) read as 0xff. */
	struct i8042 *k = byte_dev_new(sizeof(*k), i8042_read_byte, i8042_write_byte, host->pio,
				       KILN_PORT_I8042_DATA,
				       KILN_PORT_I8042_CMD - KILN_PORT_I8042_DATA + 1, "i8042", e);

	if (!k)
		return error_code(e);
	k->host = host;
	k->status = STS_SYS;
	k->config = CFG_AUX_DISABLED | 0x04; /* system flag, keyboard enabled, no interrupts */
	*state = k;
	return 0;
}

/* Snapshot, section version 1, u8 each: the command byte, status, output buffer, pending
 * command, whether the output buffer holds a keyboard byte, the count of keyboard bytes not yet
 * read; then those bytes in order (KBD_FIFO bytes, unused ones zero). */
static void i8042_save(void *state, struct snap_enc *e)
{
	struct i8042 *k = state;
	uint8_t kbd[KBD_FIFO] = { 0 };

	pthread_mutex_lock(&k->dev.lock);
	for (unsigned i = 0; i < k->kbd_count; i++)
		kbd[i] = k->kbd[(k->kbd_head + i) % KBD_FIFO];
	snap_enc_u8(e, k->config);
	snap_enc_u8(e, k->status);
	snap_enc_u8(e, k->out);
	snap_enc_u8(e, k->pending);
	snap_enc_u8(e, k->out_kbd);
	snap_enc_u8(e, (uint8_t)k->kbd_count);
	pthread_mutex_unlock(&k->dev.lock);
	snap_enc_bytes(e, kbd, sizeof(kbd));
}

static int i8042_load(void *state, struct snap_dec *d, uint32_t version, char *err, size_t errlen)
{
	struct i8042 *k = state;
	uint8_t v[6], kbd[KBD_FIFO];

	snap_dec_bytes(d, v, sizeof(v));
	snap_dec_bytes(d, kbd, sizeof(kbd));
	if (v[4] > 1 || v[5] > KBD_FIFO) {
		snprintf(err, errlen, "snapshot: keyboard controller state out of range");
		return -EINVAL;
	}
	pthread_mutex_lock(&k->dev.lock);
	k->config = v[0];
	k->status = v[1];
	k->out = v[2];
	k->pending = v[3];
	k->out_kbd = v[4];
	memcpy(k->kbd, kbd, sizeof(k->kbd));
	k->kbd_head = 0;
	k->kbd_count = v[5];
	pthread_mutex_unlock(&k->dev.lock);
	return 0;
}

const struct device_class i8042_class = {
	.kind = DEVICE_PLATFORM,
	.name = "i8042", .create = i8042_create, .destroy = byte_dev_free,
	.state_version = 1, .save = i8042_save, .load = i8042_load,
};
