/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_console — a second console (virtio 1.2 §5.3, hvc0 in Linux) whose host side is a Unix
 * socket kiln listens on or a file the guest's output is appended to. */
#ifndef KILN_VIRTIO_CONSOLE_H
#define KILN_VIRTIO_CONSOLE_H

#include <stdint.h>

#include "kiln/devices.h"

/* A virtio-console's host side as the user configured it. */
struct console_config {
	enum { CONSOLE_SOCKET, CONSOLE_FILE } kind;
	const char *path;           /* the Unix socket kiln listens on (it must not exist; one
				       client at a time; removed with the device), or the output
				       file (created or appended to) */
	uint64_t file_limit;        /* bytes the guest may write to the file (0: 1 GiB) */
};

/* The class: create() takes a struct console_config; one instance per VM. */
extern const struct device_class virtio_console_class;

#endif
