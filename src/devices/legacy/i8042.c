/* i8042 — the PS/2 keyboard controller at ports 0x60/0x64, as far as a guest without a
 * keyboard needs it: the controller commands firmware and Linux use, and the reset line
 * (command 0xFE, or an output-port write with bit 0 clear), which stops the VM with
 * VM_STOP_RESET. No keyboard or mouse is attached; the DSDT does not list the controller, so
 * Linux's i8042 driver does not bind, while its reboot path still reaches port 0x64. */
#include <errno.h>
#include <stdlib.h>

#include "byte_regs.h"
#include "kiln/devices.h"
#include "kiln/layout.h"

#define STS_OBF 0x01
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
#define CFG_KBD_DISABLED 0x10
#define CFG_AUX_DISABLED 0x20

struct i8042 {
	struct byte_dev dev; /* first: the bus hands us &dev */
	struct dev_host *host;
	uint8_t config;   /* controller command byte */
	uint8_t status;
	uint8_t out;      /* output buffer, valid while STS_OBF */
	uint8_t pending;  /* command waiting for its data byte on port 0x60, or 0 */
};

static void push(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->status |= STS_OBF;
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
	case CMD_ENABLE_KBD: k->config &= ~CFG_KBD_DISABLED; break;
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
	case CMD_WRITE_CONFIG: k->config = v; break;
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
		k->status &= ~STS_OBF;
		return k->out;
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

static int i8042_create(struct dev_host *host, void **state)
{
	int ret;
	/* One range covers 0x60..0x64; 0x61..0x63 (system control, unmodelled) read as 0xff. */
	struct i8042 *k = byte_dev_new(sizeof(*k), i8042_read_byte, i8042_write_byte, host->pio,
				       KILN_PORT_I8042_DATA,
				       KILN_PORT_I8042_CMD - KILN_PORT_I8042_DATA + 1, "i8042", &ret);

	if (!k)
		return ret;
	k->host = host;
	k->status = STS_SYS;
	k->config = CFG_AUX_DISABLED | 0x04; /* system flag, keyboard enabled, no interrupts */
	*state = k;
	return 0;
}

const struct device_type i8042_type = {
	.name = "i8042", .create = i8042_create, .destroy = byte_dev_free,
};
