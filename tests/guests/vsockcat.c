/* SPDX-License-Identifier: Apache-2.0 */
/* vsockcat — the test guest's AF_VSOCK tool (busybox has none), built static into the test
 * initramfs by scripts/test-initramfs.
 *
 *   vsockcat listen PORT        accept one connection: copy it to stdout, stdin to it
 *   vsockcat connect CID PORT   connect: copy stdin to it, it to stdout
 *   vsockcat echo PORT          serve every connection (a process each), echoing its bytes
 *
 * Standard input's end shuts the socket's sending side; the copy ends when the peer's
 * stream ends. Exit status 0, or 1 with a message.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static void die(const char *what)
{
	fprintf(stderr, "vsockcat: %s: %s\n", what, strerror(errno));
	exit(1);
}

static unsigned number(const char *text)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);

	if (*end || end == text) {
		fprintf(stderr, "vsockcat: \"%s\" is not a number\n", text);
		exit(1);
	}
	return (unsigned)v;
}

static int listener(unsigned port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128))
		die("listen");
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy @in to @sock and @sock to @out until @sock's stream ends. */
static void copy(int sock, int in, int out)
{
	static char buf[65536];
	struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = in, .events = POLLIN } };

	for (;;) {
		if (poll(p, in >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (p[0].revents) {
			ssize_t n = read(sock, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				die("read");
			if (n == 0)
				return;
			if (write_all(out, buf, (size_t)n))
				die("write");
		}
		if (in >= 0 && p[1].revents) {
			ssize_t n = read(in, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				shutdown(sock, SHUT_WR);
				in = -1;
			} else if (write_all(sock, buf, (size_t)n)) {
				die("send");
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "listen")) {
		int l = listener(number(argv[2])), s = accept(l, NULL, NULL);

		if (s < 0)
			die("accept");
		copy(s, STDIN_FILENO, STDOUT_FILENO);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "connect")) {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = number(argv[2]),
					 .svm_port = number(argv[3]) };
		int s = socket(AF_VSOCK, SOCK_STREAM, 0);

		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)))
			die("connect");
		copy(s, STDIN_FILENO, STDOUT_FILENO);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "echo")) {
		int l = listener(number(argv[2]));

		signal(SIGCHLD, SIG_IGN); /* no zombies */
		for (;;) {
			int s = accept(l, NULL, NULL);

			if (s < 0) {
				if (errno == EINTR)
					continue;
				die("accept");
			}
			if (fork() == 0) {
				close(l);
				copy(s, -1, s);
				_exit(0);
			}
			close(s);
		}
	}
	fprintf(stderr, "usage: vsockcat listen PORT | connect CID PORT | echo PORT\n");
	return 1;
}
