/* SPDX-License-Identifier: Apache-2.0 */
/* uffd — the Uffd memory backend of a restore, as Firecracker defines it
 * (docs/snapshotting/handling-page-faults-on-snapshot-resume.md): guest memory is anonymous
 * and registered with a userfaultfd (missing pages, with remove events for the balloon); a
 * page-fault handler process listening on a Unix socket receives, in one message, the JSON
 * layout of the memory and the userfaultfd (SCM_RIGHTS), and fills each page from the memory
 * file when the guest or kiln first touches it. The layout is one object per region:
 *   [{"base_host_virt_addr": HVA, "size": BYTES, "offset": FILE_OFFSET,
 *     "page_size": 4096, "page_size_kib": 4096}]
 * (page_size_kib is Firecracker's deprecated name for the same byte count). kiln keeps the
 * connection and its own copy of the userfaultfd open for the VM's lifetime.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "vm_internal.h"

#define UFFD_MSG_MAX 1024

/* The layout message: one object per region, offsets as the memory file has them. */
static int layout_json(const struct guest_mem *mem, char *buf, size_t len)
{
	size_t used = 0;
	uint64_t off = 0;

	used += (size_t)snprintf(buf, len, "[");
	for (unsigned i = 0; i < mem->nr_regions && used < len; i++) {
		used += (size_t)snprintf(buf + used, len - used,
					 "%s{\"base_host_virt_addr\":%" PRIuPTR ",\"size\":%" PRIu64
					 ",\"offset\":%" PRIu64 ",\"page_size\":4096,"
					 "\"page_size_kib\":4096}", i ? "," : "",
					 (uintptr_t)mem->region[i].hva, mem->region[i].size, off);
		off += mem->region[i].size;
	}
	if (used < len)
		used += (size_t)snprintf(buf + used, len - used, "]");
	return used < len ? (int)used : -ENOSPC;
}

static int send_handshake(int sock, int uffd, const char *json, size_t len)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl = { 0 };
	struct iovec iov = { .iov_base = (void *)json, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int vm_restore_uffd(struct vm *vm, const struct vm_config *cfg, const struct vm_mem_backend *mb,
		    struct error *e)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char json[UFFD_MSG_MAX];
	int sock, ret, len;

	if (strlen(mb->path) >= sizeof(addr.sun_path))
		return error_set(e, ERROR_USAGE, "mem_backend %s: socket path too long", mb->path);
	memcpy(addr.sun_path, mb->path, strlen(mb->path));
	if (guest_mem_alloc(&vm->mem, cfg->mem_bytes, false))
		return error_set(e, ERROR_RUNTIME, "cannot reserve %" PRIu64 " MiB of guest memory",
			       cfg->mem_bytes >> 20);
	/* Transparent huge pages would have the handler's 4 KiB copies land in 2 MiB pages. */
	madvise(vm->mem.mapping, vm->mem.mapping_len, MADV_NOHUGEPAGE);
	vm->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (vm->uffd < 0)
		return error_set(e, ERROR_RUNTIME, "userfaultfd: %s", strerror(errno));
	reg.range.start = (uintptr_t)vm->mem.mapping;
	reg.range.len = vm->mem.mapping_len;
	if (ioctl(vm->uffd, UFFDIO_API, &api) < 0 || ioctl(vm->uffd, UFFDIO_REGISTER, &reg) < 0)
		return error_set(e, ERROR_RUNTIME, "userfaultfd: %s", strerror(errno));
	len = layout_json(&vm->mem, json, sizeof(json));
	if (len < 0)
		return error_set(e, ERROR_RUNTIME, "userfaultfd: layout message too long");
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return error_set(e, ERROR_RUNTIME, "socket: %s", strerror(errno));
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = errno;
		close(sock);
		return error_set(e, ERROR_USAGE, "mem_backend %s: cannot reach the page-fault "
			       "handler: %s", mb->path, strerror(ret));
	}
	ret = send_handshake(sock, vm->uffd, json, (size_t)len);
	if (ret) {
		close(sock);
		return error_set(e, ERROR_RUNTIME, "mem_backend %s: sending the userfaultfd: %s",
			       mb->path, strerror(-ret));
	}
	vm->uffd_sock = sock; /* held open: the handler takes its end closing as kiln's exit */
	return 0;
}
