/* SPDX-License-Identifier: Apache-2.0 */
/* config — checks across a whole VM configuration, see include/kiln/vm_config.h. */
#include <errno.h>
#include <string.h>

#include "kiln/devices.h"
#include "kiln/vm_config.h"

int vm_config_add(struct vm_config *cfg, const struct device_class *cls, const void *config,
		  struct error *e)
{
	if (cfg->nr_devices == VM_MAX_DEVICES) {
		e->input = VM_INPUT_DEVICE + VM_MAX_DEVICES;
		return error_set(e, ERROR_USAGE, "%s: more than %d devices in all", cls->name,
				 VM_MAX_DEVICES);
	}
	cfg->device[cfg->nr_devices++] = (struct vm_device_config){ .cls = cls, .config = config };
	return 0;
}

unsigned vm_config_class_index(const struct vm_config *cfg, unsigned entry)
{
	unsigned index = 0;

	for (unsigned i = 0; i < entry; i++)
		index += cfg->device[i].cls == cfg->device[entry].cls;
	return index;
}

/* Entry @entry against the ones before it: the class's instance limit and unique ids. */
static int check_entry(const struct vm_config *cfg, unsigned entry, struct error *e)
{
	const struct vm_device_config *d = &cfg->device[entry];
	const char *id = d->cls->id ? d->cls->id(d->config) : NULL;
	unsigned index = vm_config_class_index(cfg, entry);

	if (d->cls->max && index >= d->cls->max)
		return error_set(e, ERROR_USAGE, "%s: only %u per VM", d->cls->name, d->cls->max);
	for (unsigned i = 0; id && i < entry; i++) {
		const struct vm_device_config *o = &cfg->device[i];
		const char *other = o->cls == d->cls ? o->cls->id(o->config) : NULL;

		if (other && !strcmp(other, id))
			return error_set(e, ERROR_USAGE, "%s: id \"%s\" is already %s%u's", d->cls->name,
					 id, d->cls->name, vm_config_class_index(cfg, i));
	}
	return d->cls->check ? d->cls->check(cfg, entry, e) : 0;
}

int vm_config_check(const struct vm_config *cfg, struct error *e)
{
	unsigned virtio = 0;

	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		e->input = VM_INPUT_DEVICE + i;
		virtio += cfg->device[i].cls->kind == DEVICE_VIRTIO;
		if (virtio > VM_MAX_VIRTIO)
			return error_set(e, ERROR_USAGE, "%s: %u devices, more than the %d virtio "
					 "slots", cfg->device[i].cls->name, virtio, VM_MAX_VIRTIO);
		if (check_entry(cfg, i, e))
			return -EINVAL;
	}
	e->input = VM_INPUT_NONE;
	return 0;
}
