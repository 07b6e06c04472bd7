/* loop — kiln's event loop: the file descriptors and pollers devices register through
 * struct dev_host, and the wait that serves both (see vm_internal.h). */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/epoll.h>

#include "vm_internal.h"

static struct vm *host_vm(struct dev_host *host) { return (struct vm *)((char *)host - offsetof(struct vm, host)); }

int vm_add_watch(struct vm *vm, int fd, void (*cb)(void *opaque), void *opaque)
{
	struct vm_watch *w = &vm->watch[vm->nr_watches];

	if (vm->nr_watches == VM_MAX_WATCHES)
		return -ENOSPC;
	*w = (struct vm_watch){ .fd = fd, .cb = cb, .opaque = opaque };
	if (epoll_ctl(vm->epoll_fd, EPOLL_CTL_ADD, fd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.ptr = w }))
		return -errno;
	vm->nr_watches++;
	return 0;
}

static int host_watch_fd(struct dev_host *host, int fd, void (*cb)(void *opaque), void *opaque)
{
	return vm_add_watch(host_vm(host), fd, cb, opaque);
}

static int host_pause_fd(struct dev_host *host, int fd, bool paused)
{
	struct vm *vm = host_vm(host);

	/* Out of the epoll set, not just EPOLLIN off: errors and hang-ups are always reported. */
	for (unsigned i = 0; i < vm->nr_watches; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &vm->watch[i] };

		if (vm->watch[i].fd == fd)
			return epoll_ctl(vm->epoll_fd, paused ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, fd, &ev)
				       ? -errno : 0;
	}
	return -ENOENT;
}

static int host_add_poller(struct dev_host *host, const struct dev_poller *p)
{
	struct vm *vm = host_vm(host);

	if (vm->nr_pollers == VM_MAX_POLLERS)
		return -ENOSPC;
	vm->poller[vm->nr_pollers++] = *p;
	return 0;
}

void vm_loop_init(struct vm *vm)
{
	vm->host.watch_fd = host_watch_fd;
	vm->host.pause_fd = host_pause_fd;
	vm->host.add_poller = host_add_poller;
}

int vm_loop_wait(struct vm *vm, struct epoll_event *ev, int max, int timeout_ms)
{
	struct pollfd fds[VM_MAX_POLLFDS];
	unsigned first[VM_MAX_POLLERS + 1], n = 1;
	int ready;

	if (!vm->nr_pollers)
		return epoll_wait(vm->epoll_fd, ev, max, timeout_ms);
	/* The epoll set is one more descriptor for poll(), beside what the pollers want. */
	fds[0] = (struct pollfd){ .fd = vm->epoll_fd, .events = POLLIN };
	for (unsigned i = 0; i < vm->nr_pollers; i++) {
		first[i] = n;
		n += vm->poller[i].prepare(vm->poller[i].opaque, fds + n, VM_MAX_POLLFDS - n,
					   &timeout_ms);
	}
	first[vm->nr_pollers] = n;
	ready = poll(fds, n, timeout_ms);
	if (ready < 0)
		return -1;
	for (unsigned i = 0; i < vm->nr_pollers; i++)
		vm->poller[i].dispatch(vm->poller[i].opaque, fds + first[i], first[i + 1] - first[i]);
	return fds[0].revents ? epoll_wait(vm->epoll_fd, ev, max, 0) : 0;
}
