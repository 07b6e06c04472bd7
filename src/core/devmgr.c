/* SPDX-License-Identifier: Apache-2.0 */
/* devmgr — the VM's device manager, see devmgr.h. */
#include "devmgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/pci.h"
#include "kiln/snapshot.h"
#include "kiln/virtio.h"

/* Add one instance of @cls; @entry is its index in the configuration (-1: a platform device). */
static int add(struct devmgr *m, const struct device_class *cls, const void *config, int entry,
	       struct error *e)
{
	struct vm_device *d = &m->dev[m->nr];
	unsigned index = 0;
	int ret;

	for (unsigned i = 0; i < m->nr; i++)
		index += m->dev[i].cls == cls;
	if (m->nr == DEVMGR_MAX)
		return error_set(e, ERROR_RUNTIME, "%s: more than %d devices", cls->name, DEVMGR_MAX);
	e->input = entry >= 0 ? VM_INPUT_DEVICE + entry : VM_INPUT_NONE;
	*d = (struct vm_device){ .cls = cls, .config = config, .index = index };
	ret = cls->create(m->host, config, index, &d->state, e);
	if (ret)
		return ret;
	m->nr++;
	if (cls->kind != DEVICE_VIRTIO) {
		m->nr_platform++;
		return 0;
	}
	ret = m->transport->create(m->host, d->state, m->nr_virtio, &d->transport);
	if (ret) {
		char name[80];

		return error_set(e, ret == -ENOSPC ? ERROR_USAGE : ERROR_RUNTIME, "%s: %s: %s",
				 device_label(cls, config, index, name, sizeof(name)),
				 m->transport->name, ret == -ENOSPC ? "no slot left" : strerror(-ret));
	}
	m->nr_virtio++;
	return 0;
}

int devmgr_create(struct devmgr *m, struct dev_host *host, const struct vm_config *cfg,
		  struct error *e)
{
	int ret;

	*m = (struct devmgr){ .host = host, .transport = cfg->transport == VM_TRANSPORT_PCI
								 ? &virtio_pci_ops : &virtio_mmio_ops };
	for (const struct device_class *const *c = pc_platform_classes; *c; c++)
		if ((ret = add(m, *c, NULL, -1, e)))
			return ret;
	/* By class in registry order, so instances get the same slots whatever the order of the
	 * front end's options. */
	for (const struct device_class *const *c = device_classes; *c; c++)
		for (unsigned i = 0; i < cfg->nr_devices; i++)
			if (cfg->device[i].cls == *c &&
			    (ret = add(m, *c, cfg->device[i].config, (int)i, e)))
				return ret;
	e->input = VM_INPUT_NONE;
	return 0;
}

void devmgr_describe(struct devmgr *m, struct pci_bus *pci, struct acpi_config *acpi,
		     char *cmdline, size_t len)
{
	for (unsigned i = 0; i < m->nr; i++) {
		struct vm_device *d = &m->dev[i];
		size_t used = strlen(cmdline);

		if (d->cls->kind != DEVICE_VIRTIO) {
			if (d->cls->describe)
				d->cls->describe(d->state, acpi);
			continue;
		}
		if (m->transport->describe)
			m->transport->describe(d->transport, acpi);
		if (m->transport->cmdline && used < len)
			m->transport->cmdline(d->transport, cmdline + used, len - used);
	}
	pci_bus_describe(pci, acpi); /* after the devices: _PRT lists them */
}

void devmgr_destroy(struct devmgr *m)
{
	for (unsigned i = m->nr; i-- > 0;) {
		struct vm_device *d = &m->dev[i];

		if (d->cls->kind == DEVICE_VIRTIO) {
			if (d->transport)
				m->transport->destroy(d->transport);
			virtio_dev_free(d->state);
		} else if (d->cls->destroy) {
			d->cls->destroy(d->state);
		}
	}
	m->nr = m->nr_platform = m->nr_virtio = 0;
}

struct vm_device *devmgr_find(struct devmgr *m, const struct device_class *cls, const char *id)
{
	for (unsigned i = 0; i < m->nr; i++) {
		struct vm_device *d = &m->dev[i];
		const char *mine = d->cls == cls && d->config && cls->id ? cls->id(d->config) : NULL;

		if (d->cls == cls && (!id || (mine && !strcmp(mine, id))))
			return d;
	}
	return NULL;
}

void devmgr_save(struct devmgr *m, struct snap_writer *w)
{
	unsigned instance = 0;

	for (unsigned i = 0; i < m->nr; i++) {
		struct vm_device *d = &m->dev[i];
		struct snap_enc e = { 0 };

		if (d->cls->kind == DEVICE_VIRTIO) {
			m->transport->save(d->transport, w, instance++);
		} else if (d->cls->save) {
			d->cls->save(d->state, &e);
			snap_put_enc(w, d->cls->name, 0, d->cls->state_version, &e);
		}
	}
}

int devmgr_load(struct devmgr *m, const struct snap_reader *r, char *err, size_t errlen)
{
	unsigned instance = 0;

	for (unsigned i = 0; i < m->nr; i++) {
		struct vm_device *d = &m->dev[i];
		struct snap_dec dec;
		uint32_t version;
		const void *p;
		size_t len;

		if (d->cls->kind == DEVICE_VIRTIO) {
			if (m->transport->load(d->transport, r, instance++, err, errlen))
				return -EINVAL;
			continue;
		}
		if (!d->cls->load)
			continue;
		p = snap_get_section(r, d->cls->name, 0, d->cls->state_version, &version, &len, err,
				     errlen);
		if (!p)
			return -EINVAL;
		snap_dec_init(&dec, p, len);
		if (d->cls->load(d->state, &dec, version, err, errlen))
			return -EINVAL;
		if (!snap_dec_done(&dec)) {
			snprintf(err, errlen, "snapshot: section \"%s\" (version %u) is %zu bytes, not "
				 "what this kiln reads", d->cls->name, version, len);
			return -EINVAL;
		}
	}
	return 0;
}

void devmgr_restored(struct devmgr *m)
{
	for (unsigned i = 0; i < m->nr; i++)
		if (m->dev[i].cls->kind == DEVICE_VIRTIO)
			virtio_dev_restored(m->dev[i].state);
}
