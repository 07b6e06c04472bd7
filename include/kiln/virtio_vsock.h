/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_vsock — virtio-vsock (virtio 1.2 §5.10) with Firecracker's host side over Unix
 * sockets (Firecracker docs/vsock.md). */
#ifndef KILN_VIRTIO_VSOCK_H
#define KILN_VIRTIO_VSOCK_H

#include <stdint.h>

#include "kiln/devices.h"

struct vsock_config {
	uint64_t guest_cid;         /* the guest's CID, 3 .. UINT32_MAX - 1 */
	const char *uds_path;       /* host programs connect here and write "CONNECT <port>\n"
				       (kiln creates it; it must not exist; removed with the
				       device); guest connections to host port P go to the Unix
				       socket "<uds_path>_<P>" */
};

/* The class: create() takes a struct vsock_config; one instance per VM. */
extern const struct device_class virtio_vsock_class;

#endif
