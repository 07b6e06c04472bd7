/* SPDX-License-Identifier: Apache-2.0 */
/* uffd_handler — the page-fault handler process of a Uffd snapshot restore, for kiln's tests
 * and benchmark. It follows Firecracker's docs/snapshotting/handling-page-faults-on-snapshot-
 * resume.md; the message is a JSON array of src/vmm/src/persist.rs's GuestRegionUffdMapping.
 *
 *   uffd_handler SOCKET_PATH MEM_FILE
 *
 * SOCKET_PATH appears once it is listening (bound under a temporary name, then renamed), so a
 * test can wait for it. One connection is accepted; it carries one message, the userfaultfd
 * attached by SCM_RIGHTS to a JSON array of at most 8 objects with unsigned integer fields:
 *   [{"base_host_virt_addr":140245465513984,"size":134217728,"offset":0,"page_size":4096}]
 * The page size is "page_size" in bytes, else "page_size_kib" (which Firecracker also fills
 * in bytes; a value below 4096 there is taken as KiB). Other integer fields are ignored.
 * A fault gets its page copied from MEM_FILE at offset + (page - base_host_virt_addr), or a
 * zero page if a UFFD_EVENT_REMOVE (balloon) covered the page. The VMM keeps its end of the
 * socket open while the guest runs, as Firecracker does: its end of file, or SIGTERM/SIGINT,
 * ends the handler with status 0 and "uffd_handler: N faults served" on stderr. Any error
 * ends it with status 1 and a message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#define MAX_REGIONS 8
#define MAX_PENDING 4096 /* faults waiting out an EAGAIN; at most one per faulting thread */

struct region {
	uint64_t base, size, offset, page_size;
	uint64_t *removed; /* one bit per page: a REMOVE covered it, it faults in as zeros */
};

static struct region regions[MAX_REGIONS];
static int nregions;
static const uint8_t *mem; /* MEM_FILE, mapped read-only */
static uint64_t mem_size, sys_page_size;
static const void *zeros;  /* a zeroed largest page: hugetlbfs has no UFFDIO_ZEROPAGE */
static int uffd;
static unsigned long faults_served;
static volatile sig_atomic_t stop;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("uffd_handler: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- The message: [{"name": unsigned integer, ...}, ...] ---- */

static const char *cur; /* parse position in the NUL-terminated message */

static void skip_space(void)
{
	cur += strspn(cur, " \t\r\n");
}

static bool eat(char c)
{
	skip_space();
	if (*cur != c)
		return false;
	cur++;
	return true;
}

static const char *parse_region(struct region *r)
{
	static const char *const names[] = { "base_host_virt_addr", "size", "offset", "page_size",
					     "page_size_kib" };
	uint64_t page_size = 0, page_size_kib = 0;
	uint64_t *const fields[] = { &r->base, &r->size, &r->offset, &page_size, &page_size_kib };
	unsigned seen = 0;
	if (!eat('{'))
		return "expected '{'";
	do {
		if (!eat('"'))
			return "expected a field name";
		const char *name = cur;
		size_t len = strcspn(name, "\"\\");
		if (!len || name[len] != '"')
			return "expected a field name";
		cur = name + len + 1;
		if (!eat(':'))
			return "expected ':'";
		skip_space();
		if (*cur < '0' || *cur > '9')
			return "expected an unsigned integer";
		uint64_t v = 0;
		for (; *cur >= '0' && *cur <= '9'; cur++)
			if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *cur - '0', &v))
				return "integer larger than 64 bits";
		if (*cur == '.' || *cur == 'e' || *cur == 'E')
			return "not an integer";
		for (unsigned i = 0; i < 5; i++)
			if (strlen(names[i]) == len && !memcmp(name, names[i], len)) {
				*fields[i] = v;
				seen |= 1u << i;
			}
	} while (eat(','));
	if (!eat('}'))
		return "expected ',' or '}'";
	if ((seen & 0x7) != 0x7 || !(seen & 0x18)) /* the first three, and a page size */
		return "a region lacks base_host_virt_addr, size, offset or page_size(_kib)";
	if (seen & 8)
		r->page_size = page_size;
	else
		r->page_size = page_size_kib < 4096 ? page_size_kib * 1024 : page_size_kib;
	return NULL;
}

static void parse_regions(const char *msg)
{
	const char *err = NULL;
	cur = msg;
	if (!eat('['))
		err = "expected '['";
	do {
		if (!err && nregions == MAX_REGIONS)
			err = "more than 8 regions";
		if (!err)
			err = parse_region(&regions[nregions++]);
	} while (!err && eat(','));
	if (!err && !eat(']'))
		err = "expected ',' or ']'";
	if (!err) {
		skip_space();
		if (*cur)
			err = "bytes after the array";
	}
	if (err)
		die("bad message at byte %td: %s: %s", cur - msg, err, msg);
}

static void check_regions(void)
{
	uint64_t largest = 0, end;
	for (int i = 0; i < nregions; i++) {
		struct region *r = &regions[i];
		uint64_t ps = r->page_size;
		if (ps < sys_page_size || (ps & (ps - 1)) || ps > (1u << 30))
			die("region %d: page size %#lx is not a power of two from %#lx to 1 GiB",
			    i, ps, sys_page_size);
		if (!r->size || r->size % ps || r->base % ps || r->base + r->size < r->base)
			die("region %d: empty, unaligned or wrapping (base %#lx size %#lx)", i,
			    r->base, r->size);
		if (__builtin_add_overflow(r->offset, r->size, &end) || end > mem_size)
			die("region %d: offset %#lx + size %#lx is beyond MEM_FILE's %#lx bytes",
			    i, r->offset, r->size, mem_size);
		for (int j = 0; j < i; j++)
			if (r->base < regions[j].base + regions[j].size &&
			    regions[j].base < r->base + r->size)
				die("regions %d and %d overlap", j, i);
		if (!(r->removed = calloc((r->size / ps + 63) / 64, sizeof(uint64_t))))
			die("out of memory for region %d", i);
		largest = ps > largest ? ps : largest;
	}
	zeros = mmap(NULL, largest, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (zeros == MAP_FAILED)
		die("mmap of a zero page: %s", strerror(errno));
}

/* ---- The socket ---- */

static int listen_at(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(addr.sun_path))
		die("socket path %s is too long", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if ((unlink(path) && errno != ENOENT) || (unlink(addr.sun_path) && errno != ENOENT))
		die("unlink of the stale socket %s: %s", path, strerror(errno));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 1) ||
	    rename(addr.sun_path, path)) {
		int err = errno;
		unlink(addr.sun_path);
		die("bind, listen or rename to %s: %s", path, strerror(err));
	}
	return fd;
}

/* Read the message (one recvmsg, or more if the stream splits it) and the uffd with it. */
static int receive_message(int conn, char *buf, size_t cap)
{
	union { struct cmsghdr align; char space[CMSG_SPACE(4 * sizeof(int))]; } ctl;
	int fd = -1;
	size_t len = 0;
	/* Field names hold no ']', so the array ends at the first one. */
	while (!memchr(buf, ']', len)) {
		struct iovec iov = { .iov_base = buf + len, .iov_len = cap - 1 - len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space,
				     .msg_controllen = sizeof(ctl.space) };
		struct pollfd pfd = { .fd = conn, .events = POLLIN };
		if (len == cap - 1)
			die("message longer than %zu bytes", cap - 1);
		if (poll(&pfd, 1, 10000) != 1)
			die("no message from the VMM within 10 s");
		ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			die("recvmsg: %s after %zu bytes", n ? strerror(errno) : "end of file", len);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			if (fd >= 0 || c->cmsg_len != CMSG_LEN(sizeof(int)))
				die("the message carries more than one file descriptor");
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
		}
		if (mh.msg_flags & MSG_CTRUNC)
			die("the message carries more than one file descriptor");
		len += (size_t)n;
		buf[len] = '\0';
		char first = buf[strspn(buf, " \t\r\n")];
		if (first && first != '[')
			break; /* not an array: parse_regions says so */
	}
	if (fd < 0)
		die("the message carries no file descriptor (SCM_RIGHTS): %s", buf);
	return fd;
}

/* ---- Faults ---- */

static void mark_removed(uint64_t start, uint64_t end)
{
	for (int i = 0; i < nregions; i++) {
		struct region *r = &regions[i];
		uint64_t lo = start > r->base ? start : r->base;
		uint64_t hi = end < r->base + r->size ? end : r->base + r->size;
		if (lo >= hi)
			continue;
		uint64_t first = (lo - r->base) / r->page_size;
		uint64_t last = (hi - r->base - 1) / r->page_size;
		for (uint64_t p = first; p <= last; p++)
			r->removed[p / 64] |= 1ull << (p % 64);
	}
}

/* Resolve one fault. false: the kernel said EAGAIN (a REMOVE is in flight), retry later. */
static bool serve_fault(uint64_t addr)
{
	struct region *r = NULL;
	for (int i = 0; i < nregions && !r; i++)
		if (addr - regions[i].base < regions[i].size) /* wraps when below base */
			r = &regions[i];
	if (!r)
		die("fault at %#lx is outside every region of the message", addr);
	uint64_t page = addr & ~(r->page_size - 1), idx = (page - r->base) / r->page_size;
	bool removed = r->removed[idx / 64] >> (idx % 64) & 1;
	struct uffdio_range range = { .start = page, .len = r->page_size };
	const char *op;
	int ret;
	if (removed && r->page_size == sys_page_size) {
		struct uffdio_zeropage zero = { .range = range };
		op = "UFFDIO_ZEROPAGE";
		ret = ioctl(uffd, UFFDIO_ZEROPAGE, &zero);
	} else {
		const void *src = removed ? zeros : mem + r->offset + (page - r->base);
		struct uffdio_copy copy = { .dst = page, .src = (uintptr_t)src, .len = range.len };
		op = "UFFDIO_COPY";
		ret = ioctl(uffd, UFFDIO_COPY, &copy);
	}
	if (ret == 0) {
		faults_served++;
		return true;
	}
	switch (errno) {
	case EAGAIN: /* a REMOVE waits to be read: read it, then retry */
		return false;
	case ESRCH:  /* the VMM exited */
	case ENOENT: /* the VMM unmapped the page meanwhile */
		return true;
	case EEXIST: /* populated already: make sure the faulting thread wakes */
		if (ioctl(uffd, UFFDIO_WAKE, &range) && errno != ESRCH)
			die("UFFDIO_WAKE of page %#lx: %s", page, strerror(errno));
		faults_served++;
		return true;
	default:
		die("%s of page %#lx: %s", op, page, strerror(errno));
	}
}

static void on_signal(int sig)
{
	stop = sig;
}

int main(int argc, char **argv)
{
	static char msg[16384];
	static uint64_t pending[MAX_PENDING];
	size_t npending = 0;
	struct stat st;
	if (argc != 3)
		die("usage: uffd_handler SOCKET_PATH MEM_FILE");
	sys_page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	int mem_fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (mem_fd < 0 || fstat(mem_fd, &st))
		die("MEM_FILE %s: %s", argv[2], strerror(errno));
	if (st.st_size <= 0)
		die("MEM_FILE %s is empty", argv[2]);
	mem_size = (uint64_t)st.st_size;
	if ((mem = mmap(NULL, mem_size, PROT_READ, MAP_PRIVATE, mem_fd, 0)) == MAP_FAILED)
		die("mmap of MEM_FILE %s: %s", argv[2], strerror(errno));
	close(mem_fd);

	int lfd = listen_at(argv[1]), conn;
	while ((conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		if (errno != EINTR)
			die("accept on %s: %s", argv[1], strerror(errno));
	close(lfd);
	uffd = receive_message(conn, msg, sizeof(msg));
	char fd_path[64], target[64] = "";
	snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", uffd);
	if (readlink(fd_path, target, sizeof(target) - 1) > 0 &&
	    strcmp(target, "anon_inode:[userfaultfd]"))
		die("the received file descriptor is %s, not a userfaultfd", target);
	parse_regions(msg);
	check_regions();
	int flags = fcntl(uffd, F_GETFL); /* poll() says only POLLERR for a blocking uffd */
	if (flags < 0 || fcntl(uffd, F_SETFL, flags | O_NONBLOCK))
		die("fcntl of the received file descriptor: %s", strerror(errno));

	/* SIGTERM and SIGINT are taken only inside ppoll, so none falls between check and wait. */
	sigset_t blocked, unblocked;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	if (sigprocmask(SIG_BLOCK, &blocked, &unblocked) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGINT, &sa, NULL))
		die("signal setup: %s", strerror(errno));

	struct pollfd pfd[2] = { { .fd = uffd, .events = POLLIN },
				 { .fd = conn, .events = POLLIN | POLLRDHUP } };
	while (!stop) {
		struct timespec retry = { .tv_nsec = 1000000 }; /* 1 ms while faults wait */
		if (ppoll(pfd, 2, npending ? &retry : NULL, &unblocked) < 0) {
			if (errno == EINTR)
				continue;
			die("ppoll: %s", strerror(errno));
		}
		if (pfd[0].revents & (POLLERR | POLLNVAL))
			die("the received file descriptor is not a ready userfaultfd (UFFDIO_API?)");
		if (pfd[0].revents & POLLHUP)
			break;
		for (bool more = pfd[0].revents & POLLIN; more;) {
			struct uffd_msg ev[32];
			ssize_t n = read(uffd, ev, sizeof(ev));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0 || n % (ssize_t)sizeof(ev[0]))
				die("read of the uffd: %s", n ? strerror(errno) : "end of file");
			more = n == (ssize_t)sizeof(ev);
			for (ssize_t i = 0; i < n / (ssize_t)sizeof(ev[0]); i++) {
				if (ev[i].event == UFFD_EVENT_PAGEFAULT && npending == MAX_PENDING)
					die("more than %d faults pending", MAX_PENDING);
				if (ev[i].event == UFFD_EVENT_PAGEFAULT)
					pending[npending++] = ev[i].arg.pagefault.address;
				else if (ev[i].event == UFFD_EVENT_REMOVE)
					mark_removed(ev[i].arg.remove.start, ev[i].arg.remove.end);
				/* UNMAP and the rest: guest memory stays where it is */
			}
		}
		size_t kept = 0;
		for (size_t i = 0; i < npending; i++)
			if (!serve_fault(pending[i]))
				pending[kept++] = pending[i];
		npending = kept;
		if (pfd[1].revents) { /* the VMM sends nothing more: ignore data, stop at its end */
			char junk[4096];
			ssize_t got = recv(conn, junk, sizeof(junk), MSG_DONTWAIT);
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
				break;
		}
	}
	fprintf(stderr, "uffd_handler: %lu faults served\n", faults_served);
	return 0;
}
