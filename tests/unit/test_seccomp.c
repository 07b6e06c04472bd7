/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the seccomp filters (src/seccomp): kiln's own filters compile; a filter file
 * in Firecracker's seccompiler format is checked rule by rule, with an error naming the place;
 * and, in a child process that installs one category's filter, a call the filter allows goes
 * through while a forbidden one ends the process with 148 and one log line naming the thread
 * and the call. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/filter.h>
#include <linux/kvm.h>

#include "kiln/log.h"
#include "kiln/seccomp.h"

static char path[] = "/tmp/kiln-test-seccomp-XXXXXX";

/* Load filters from @json written to a file; the error message in @e. */
static int load_text(const char *json, struct seccomp_filters **f, struct error *e)
{
	int fd = mkstemp(path), ret;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	ret = seccomp_filters_load(path, f, e);
	unlink(path);
	strcpy(path, "/tmp/kiln-test-seccomp-XXXXXX");
	return ret;
}

/* The filters built into kiln are exactly what src/seccomp/x86_64.json compiles to now. */
static void test_builtin_filters_compile(void **state)
{
	struct seccomp_filters *f, *json;
	struct error e;

	assert_int_equal(seccomp_filters_builtin(&f), 0);
	assert_int_equal(seccomp_filters_load("src/seccomp/x86_64.json", &json, &e), 0);
	for (unsigned t = 0; t < SECCOMP_THREADS; t++) {
		const struct sock_fprog *a = seccomp_filters_prog(f, t), *b = seccomp_filters_prog(json, t);

		assert_true(a->len > 10);
		assert_int_equal(a->len, b->len);
		assert_memory_equal(a->filter, b->filter, a->len * sizeof(a->filter[0]));
	}
	seccomp_filters_free(json);
	seccomp_filters_free(f);
}

#define ALLOW_ALL(cat) "\"" cat "\": {\"default_action\": \"allow\", \"filter_action\": \"trap\", \"filter\": []}"

/* Every malformed file is refused with its place named: the category, the rule's index and
 * system call, the field. */
static void test_bad_files_are_refused(void **state)
{
	static const struct { const char *json, *want; } cases[] = {
		{ "{", "line 1" },
		{ "[]", "an object of filters" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("vcpu") "}", "no filter for thread category \"worker\"" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("vcpu") ", " ALLOW_ALL("worker") ", " ALLOW_ALL("api") "}",
		  "unknown thread category \"api\"" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("worker") ", \"vcpu\": {\"default_action\": \"deny\", "
		  "\"filter_action\": \"allow\", \"filter\": []}}", "\"vcpu\": \"default_action\" is not" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("worker") ", \"vcpu\": {\"default_action\": \"trap\", "
		  "\"filter_action\": \"allow\", \"filter\": [{\"syscall\": \"read\"}, {\"syscall\": \"no_such_call\"}]}}",
		  "\"vcpu\" rule 1 (\"no_such_call\"): no such system call" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("worker") ", \"vcpu\": {\"default_action\": \"trap\", "
		  "\"filter_action\": \"allow\", \"filter\": [{\"syscall\": \"ioctl\", \"args\": [{\"index\": 6, "
		  "\"type\": \"dword\", \"op\": \"eq\", \"val\": 1}]}]}}", "rule 0 (\"ioctl\"): args[0]: \"index\" must be 0-5" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("worker") ", \"vcpu\": {\"default_action\": \"trap\", "
		  "\"filter_action\": \"allow\", \"filter\": [{\"syscall\": \"ioctl\", \"args\": [{\"index\": 1, "
		  "\"type\": \"dword\", \"op\": \"eq\", \"val\": 4294967296}]}]}}", "does not fit a dword" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("worker") ", \"vcpu\": {\"default_action\": \"trap\", "
		  "\"filter_action\": \"allow\", \"filter\": [{\"syscall\": \"ioctl\", \"arg\": []}]}}",
		  "the rule: unknown field \"arg\"" },
		{ "{" ALLOW_ALL("vmm") ", " ALLOW_ALL("worker") ", \"vcpu\": {\"default_action\": \"trap\", "
		  "\"filter_action\": \"allow\", \"filter\": [{\"syscall\": \"ioctl\", \"args\": [{\"index\": 1, "
		  "\"type\": \"dword\", \"op\": \"approx\", \"val\": 1}]}]}}", "\"op\" must be" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seccomp_filters *f = NULL;
		struct error e;

		assert_int_equal(load_text(cases[i].json, &f, &e), -EINVAL);
		assert_int_equal(e.kind, ERROR_USAGE);
		if (!strstr(e.msg, cases[i].want) || !strstr(e.msg, "/tmp/kiln-test-seccomp-"))
			fail_msg("case %u: \"%s\" does not say \"%s\"", i, e.msg, cases[i].want);
	}
}

#ifndef __SANITIZE_ADDRESS__ /* see main() */
/* Run @fn in a child that installed filter @t of @f with its log on a pipe; returns the
 * child's wait status and its log in @log. */
static int in_child(const struct seccomp_filters *f, enum seccomp_thread t, void (*fn)(void),
		    char *log, size_t len)
{
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		log_set_fd(pipefd[1]);
		if (seccomp_install(f, t))
			_exit(99);
		fn();
		_exit(0);
	}
	close(pipefd[1]);
	n = read(pipefd[0], log, len - 1);
	log[n > 0 ? n : 0] = 0;
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void make_a_socket(void) { socket(AF_INET, SOCK_STREAM, 0); }
static void make_a_process(void) { fork(); }

static void write_and_kvm_run(void)
{
	/* What a vCPU does: a write, and KVM_RUN (on a descriptor that is not a vCPU: the call
	 * is allowed and fails). */
	if (write(STDERR_FILENO, "", 0) < 0 || ioctl(-1, KVM_RUN, 0) != -1)
		_exit(98);
}

/* Each category's filter lets through what that thread does and ends kiln, with one line, at
 * a call it forbids: a socket from a vCPU or a worker, a fork from the main thread. */
static void test_forbidden_calls_end_kiln(void **state)
{
	struct seccomp_filters *f;
	char log[512];
	int status;

	assert_int_equal(seccomp_filters_builtin(&f), 0);
	status = in_child(f, SECCOMP_VCPU, write_and_kvm_run, log, sizeof(log));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(log, "");

	for (enum seccomp_thread t = SECCOMP_VCPU; t <= SECCOMP_WORKER; t++) {
		char want[80];

		status = in_child(f, t, make_a_socket, log, sizeof(log));
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), SECCOMP_EXIT_TRAPPED);
		snprintf(want, sizeof(want), "kiln: seccomp: the %s thread (tid ",
			 seccomp_thread_name(t));
		assert_non_null(strstr(log, want));
		snprintf(want, sizeof(want), ") made system call %d, which its filter forbids",
			 SYS_socket);
		assert_non_null(strstr(log, want));
	}
	status = in_child(f, SECCOMP_VMM, make_a_process, log, sizeof(log));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), SECCOMP_EXIT_TRAPPED);
	assert_non_null(strstr(log, "the vmm thread"));
	seccomp_filters_free(f);
}

static void getppid_fails_with_eperm(void)
{
	if (syscall(SYS_getppid) != -1 || errno != EPERM)
		_exit(97);
	/* An ioctl whose request has garbage in its upper 32 bits still matches a dword "eq"
	 * (Firecracker's rule: musl leaves them set). */
	if (syscall(SYS_ioctl, -1, 0xdead000000000000ull | KVM_RUN, 0) != -1 || errno != EBADF)
		_exit(96);
}

/* Firecracker's format: an errno default action, "eq" on a dword's low half. */
static void test_firecracker_format(void **state)
{
	static const char json[] =
		"{\"vmm\": {\"default_action\": {\"errno\": 1}, \"filter_action\": \"allow\", \"filter\": ["
		"{\"syscall\": \"exit_group\"}, {\"syscall\": \"exit\"}, {\"syscall\": \"write\"},"
		"{\"syscall\": \"ioctl\", \"comment\": \"KVM_RUN\", \"args\": [{\"index\": 1, \"type\": "
		"\"dword\", \"op\": \"eq\", \"val\": 44672, \"comment\": \"KVM_RUN\"}]}]},"
		ALLOW_ALL("vcpu") ", " ALLOW_ALL("worker") "}";
	struct seccomp_filters *f;
	struct error e;
	char log[64];
	int status;

	assert_int_equal(load_text(json, &f, &e), 0);
	status = in_child(f, SECCOMP_VMM, getppid_fails_with_eperm, log, sizeof(log));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	seccomp_filters_free(f);
}

#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_filters_compile),
		cmocka_unit_test(test_bad_files_are_refused),
#ifndef __SANITIZE_ADDRESS__
		/* Not under AddressSanitizer: its runtime makes system calls of its own (signal
		 * stacks, shadow memory) that kiln's filters rightly forbid; a sanitized kiln runs
		 * with --no-seccomp. */
		cmocka_unit_test(test_forbidden_calls_end_kiln),
		cmocka_unit_test(test_firecracker_format),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
