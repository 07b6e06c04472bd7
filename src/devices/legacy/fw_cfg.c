/* SPDX-License-Identifier: Apache-2.0 */
/* fw_cfg — QEMU's firmware configuration device on x86 port I/O, see include/kiln/fw_cfg.h.
 * Spec: QEMU docs/specs/fw_cfg.rst; behaviour as QEMU 7.2's hw/nvram/fw_cfg.c (a read past an
 * item's end gives zeros, a DMA read past it zero-fills, writes are refused: no item is
 * writable). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/acpi.h"
#include "kiln/fw_cfg.h"
#include "kiln/guest_mem.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/snapshot.h"

#define DMA_SIGNATURE "QEMU CFG" /* what a read of the DMA address register returns */
#define DMA_ACCESS_SIZE 16       /* FWCfgDmaAccess: be32 control, be32 length, be64 address */
#define FILE_ENTRY_SIZE 64       /* FWCfgFile: be32 size, be16 select, be16 reserved, name[56] */
#define NO_ITEM 0xffff          /* the selector before the guest writes one: reads give 0 */
#define FW_CFG_WRITE_CHANNEL 0x4000

struct fw_cfg_item {
	uint16_t key;
	uint32_t len;
	uint8_t *data;
	char name[FW_CFG_MAX_FILE_NAME]; /* "" for a legacy key */
};

struct fw_cfg {
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	unsigned nr_items, nr_files;
	struct fw_cfg_item item[FW_CFG_MAX_ITEMS];
	/* The guest's view, saved in snapshots. */
	uint16_t selector;
	uint32_t offset;         /* into the selected item, bytes */
	uint64_t dma_addr;       /* the DMA address register (its high half may be set alone) */
	struct log_once bad_access, bad_dma;
};

static struct fw_cfg_item *find(struct fw_cfg *fw, uint16_t key)
{
	for (unsigned i = 0; i < fw->nr_items; i++)
		if (fw->item[i].key == key)
			return &fw->item[i];
	return NULL;
}

static int add_item(struct fw_cfg *fw, uint16_t key, const char *name, const void *data,
		    uint32_t len)
{
	struct fw_cfg_item *it;

	if (len > FW_CFG_MAX_ITEM_SIZE)
		return -EINVAL;
	if (find(fw, key))
		return -EEXIST;
	if (fw->nr_items == FW_CFG_MAX_ITEMS)
		return -ENOSPC;
	it = &fw->item[fw->nr_items];
	*it = (struct fw_cfg_item){ .key = key, .len = len, .data = malloc(len ? len : 1) };
	if (!it->data)
		return -ENOMEM;
	if (len)
		memcpy(it->data, data, len);
	snprintf(it->name, sizeof(it->name), "%s", name);
	fw->nr_items++;
	return 0;
}

/* A key fw_cfg_add() takes: below the files, in the generic or the architecture's table. */
static bool legacy_key(uint16_t key)
{
	return (key & ~FW_CFG_ARCH_LOCAL) < FW_CFG_FILE_FIRST && key != FW_CFG_FILE_DIR;
}

int fw_cfg_add(struct fw_cfg *fw, uint16_t key, const void *data, uint32_t len)
{
	int ret;

	if (!legacy_key(key))
		return -EINVAL;
	pthread_mutex_lock(&fw->lock);
	ret = add_item(fw, key, "", data, len);
	pthread_mutex_unlock(&fw->lock);
	return ret;
}

int fw_cfg_add_le(struct fw_cfg *fw, uint16_t key, uint64_t value, unsigned size)
{
	uint8_t b[8];

	if (size != 2 && size != 4 && size != 8)
		return -EINVAL;
	for (unsigned i = 0; i < size; i++)
		b[i] = (uint8_t)(value >> (8 * i));
	return fw_cfg_add(fw, key, b, size);
}

static void put_be(uint8_t *p, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * (size - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v = v << 8 | p[i];
	return v;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct fw_cfg_item *const *)a)->name, (*(struct fw_cfg_item *const *)b)->name);
}

/* FW_CFG_FILE_DIR from the files, sorted by name. Lock held. */
static int rebuild_dir(struct fw_cfg *fw)
{
	struct fw_cfg_item *files[FW_CFG_MAX_ITEMS], *dir = find(fw, FW_CFG_FILE_DIR);
	uint32_t len = 4 + fw->nr_files * FILE_ENTRY_SIZE;
	uint8_t *data = calloc(1, len);
	unsigned n = 0;

	if (!data)
		return -ENOMEM;
	for (unsigned i = 0; i < fw->nr_items; i++)
		if (fw->item[i].name[0])
			files[n++] = &fw->item[i];
	qsort(files, n, sizeof(files[0]), by_name);
	put_be(data, n, 4);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = data + 4 + i * FILE_ENTRY_SIZE;

		put_be(e, files[i]->len, 4);
		put_be(e + 4, files[i]->key, 2);
		memcpy(e + 8, files[i]->name, strlen(files[i]->name));
	}
	free(dir->data);
	dir->data = data;
	dir->len = len;
	return 0;
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, uint32_t len)
{
	size_t name_len = strlen(name);
	int ret = 0;

	if (name_len == 0 || name_len >= FW_CFG_MAX_FILE_NAME)
		return -EINVAL;
	pthread_mutex_lock(&fw->lock);
	for (unsigned i = 0; i < fw->nr_items && !ret; i++)
		if (!strcmp(fw->item[i].name, name))
			ret = -EEXIST;
	if (!ret)
		ret = add_item(fw, FW_CFG_FILE_FIRST + fw->nr_files, name, data, len);
	if (!ret) {
		fw->nr_files++;
		ret = rebuild_dir(fw);
	}
	pthread_mutex_unlock(&fw->lock);
	return ret;
}

/* The selected item (NULL: none). Bit 14 of the selector (the write channel of old QEMUs)
 * is ignored, as QEMU 7.2 does. Lock held. */
static const struct fw_cfg_item *selected(struct fw_cfg *fw)
{
	return find(fw, fw->selector & ~FW_CFG_WRITE_CHANNEL);
}

static uint8_t read_byte(struct fw_cfg *fw)
{
	const struct fw_cfg_item *it = selected(fw);

	if (!it || fw->offset >= it->len)
		return 0;
	return it->data[fw->offset++];
}

/* The guest's FWCfgDmaAccess at fw->dma_addr, carried out: fw_cfg.rst "Guest-side DMA
 * interface". The control word is written back 0 (done) or FW_CFG_DMA_CTL_ERROR. Lock held. */
static void run_dma(struct fw_cfg *fw)
{
	uint8_t *access = guest_mem_ptr(fw->mem, fw->dma_addr, DMA_ACCESS_SIZE);
	const struct fw_cfg_item *it;
	uint32_t control, length, avail = 0;
	uint64_t addr;
	uint8_t *dst = NULL;
	bool error = false;

	if (!access) {
		if (log_once_first(&fw->bad_dma))
			log_warn("fw_cfg: DMA access structure at 0x%" PRIx64 " is not in guest RAM",
				 fw->dma_addr);
		return;
	}
	control = (uint32_t)get_be(access, 4);
	length = (uint32_t)get_be(access + 4, 4);
	addr = get_be(access + 8, 8);
	if (control & FW_CFG_DMA_CTL_SELECT) {
		fw->selector = (uint16_t)(control >> 16);
		fw->offset = 0;
	}
	it = selected(fw);
	if (it && fw->offset < it->len)
		avail = it->len - fw->offset;
	if (control & FW_CFG_DMA_CTL_WRITE) {
		error = length != 0; /* no item is writable */
	} else if (control & FW_CFG_DMA_CTL_READ) {
		dst = length ? guest_mem_ptr(fw->mem, addr, length) : NULL;
		error = length && !dst;
		if (dst) {
			uint32_t n = length < avail ? length : avail;

			memcpy(dst, it ? it->data + fw->offset : dst, n);
			memset(dst + n, 0, length - n);
			guest_mem_mark_dirty(fw->mem, dst, length);
		}
	}
	if (!error && (control & (FW_CFG_DMA_CTL_READ | FW_CFG_DMA_CTL_SKIP)))
		fw->offset += length < avail ? length : avail;
	if (error && log_once_first(&fw->bad_dma))
		log_warn("fw_cfg: DMA %s of %" PRIu32 " bytes at 0x%" PRIx64 " refused (%s)",
			 control & FW_CFG_DMA_CTL_WRITE ? "write" : "read", length, addr,
			 control & FW_CFG_DMA_CTL_WRITE ? "no item is writable" : "not in guest RAM");
	put_be(access, error ? FW_CFG_DMA_CTL_ERROR : 0, 4);
	guest_mem_mark_dirty(fw->mem, access, 4);
}

static void bad_access(struct fw_cfg *fw, const char *what, uint64_t port, uint32_t len)
{
	if (log_once_first(&fw->bad_access))
		log_warn("fw_cfg: %s of %u bytes at port 0x%" PRIx64 " ignored", what, len, port);
}

static void ctl_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct fw_cfg *fw = opaque;

	pthread_mutex_lock(&fw->lock);
	if (len == 1) {
		data[0] = read_byte(fw); /* QEMU's combined port: a byte read at either port is data */
	} else {
		memset(data, 0xff, len);
		bad_access(fw, "read", KILN_PORT_FW_CFG + off, len);
	}
	pthread_mutex_unlock(&fw->lock);
}

static void ctl_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct fw_cfg *fw = opaque;

	pthread_mutex_lock(&fw->lock);
	if (off == 0 && len == 2) {
		fw->selector = (uint16_t)(data[0] | data[1] << 8);
		fw->offset = 0;
	} else {
		bad_access(fw, "write", KILN_PORT_FW_CFG + off, len); /* data writes: QEMU 2.4+ too */
	}
	pthread_mutex_unlock(&fw->lock);
}

static void dma_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < 8 ? (uint8_t)DMA_SIGNATURE[off + i] : 0xff;
}

static void dma_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct fw_cfg *fw = opaque;
	uint64_t v = get_be(data, len);

	pthread_mutex_lock(&fw->lock);
	if (off == 0 && len == 4) {
		fw->dma_addr = v << 32;
	} else if (off == 4 && len == 4) {
		fw->dma_addr = (fw->dma_addr & ~0xffffffffull) | v;
		run_dma(fw);
	} else if (off == 0 && len == 8) {
		fw->dma_addr = v;
		run_dma(fw);
	} else {
		bad_access(fw, "DMA register write", KILN_PORT_FW_CFG_DMA + off, len);
	}
	pthread_mutex_unlock(&fw->lock);
}

static const struct bus_ops ctl_ops = { .read = ctl_read, .write = ctl_write };
static const struct bus_ops dma_ops = { .read = dma_read, .write = dma_write };

static void fw_cfg_destroy(void *state)
{
	struct fw_cfg *fw = state;

	if (!fw)
		return;
	for (unsigned i = 0; i < fw->nr_items; i++)
		free(fw->item[i].data);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
}

static int fw_cfg_create(struct dev_host *host, const void *config, unsigned index, void **state,
			 struct error *e)
{
	struct fw_cfg *fw = calloc(1, sizeof(*fw));
	int ret;

	if (!fw)
		return error_set(e, ERROR_RUNTIME, "fw_cfg: out of memory");
	pthread_mutex_init(&fw->lock, NULL);
	fw->mem = host->mem;
	fw->selector = NO_ITEM;
	ret = add_item(fw, FW_CFG_SIGNATURE, "", "QEMU", 4);
	if (!ret)
		ret = add_item(fw, FW_CFG_ID, "",
			       (uint8_t[4]){ FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA, 0, 0, 0 }, 4);
	if (!ret)
		ret = add_item(fw, FW_CFG_FILE_DIR, "", (uint8_t[4]){ 0 }, 4);
	if (ret) {
		fw_cfg_destroy(fw);
		return error_set(e, ERROR_RUNTIME, "fw_cfg: out of memory");
	}
	ret = device_claim(host->pio, KILN_PORT_FW_CFG, 2, &ctl_ops, fw, "fw_cfg", e);
	if (!ret)
		ret = device_claim(host->pio, KILN_PORT_FW_CFG_DMA, 8, &dma_ops, fw, "fw_cfg dma", e);
	if (ret) {
		fw_cfg_destroy(fw);
		return ret;
	}
	*state = fw;
	return 0;
}

/* As QEMU's DSDT: Device (FWCF) { _HID "QEMU0002", _CRS IO 0x510, 12 ports }. */
static void fw_cfg_describe(void *state, struct acpi_config *acpi)
{
	static const struct acpi_device_desc fwcf = {
		.name = "FWCF", .hid = "QEMU0002", .uid = 0, .nr_res = 1,
		.res = { { ACPI_RES_IO, KILN_PORT_FW_CFG, 12 } },
	};

	device_describe(acpi, &fwcf);
}

/* Snapshot, section version 1: selector (u16), offset (u32), DMA address (u64). The items are
 * not saved: the same configuration makes them again. */
static void fw_cfg_save(void *state, struct snap_enc *e)
{
	struct fw_cfg *fw = state;

	pthread_mutex_lock(&fw->lock);
	snap_enc_u16(e, fw->selector);
	snap_enc_u32(e, fw->offset);
	snap_enc_u64(e, fw->dma_addr);
	pthread_mutex_unlock(&fw->lock);
}

static int fw_cfg_load(void *state, struct snap_dec *d, uint32_t version, char *err,
		       size_t errlen)
{
	struct fw_cfg *fw = state;
	uint16_t selector = snap_dec_u16(d);
	uint32_t offset = snap_dec_u32(d);
	uint64_t dma_addr = snap_dec_u64(d);

	pthread_mutex_lock(&fw->lock);
	fw->selector = selector; /* any value: an unknown key reads as zeros, as it did */
	fw->offset = offset;
	fw->dma_addr = dma_addr;
	pthread_mutex_unlock(&fw->lock);
	return 0;
}

const struct device_class fw_cfg_class = {
	.kind = DEVICE_PLATFORM, .name = "fw_cfg", .max = 1,
	.create = fw_cfg_create, .destroy = fw_cfg_destroy, .describe = fw_cfg_describe,
	.state_version = 1, .save = fw_cfg_save, .load = fw_cfg_load,
};
