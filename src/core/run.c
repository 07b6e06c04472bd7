/* SPDX-License-Identifier: Apache-2.0 */
/* run — running a VM: one thread per vCPU while the calling thread serves the event loop, the
 * serial console's input and the signals; the stop protocol; pause and resume. See
 * include/kiln/vm.h.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "kiln/log.h"
#include "vm_internal.h"

#define VM_PAUSE_TIMEOUT_S 2               /* for every vCPU to leave KVM_RUN */

/* vm_request_stop(), and the guest's exit status with VM_STOP_GUEST_EXIT: written only by the
 * request that wins, read after vm_run() joined the vCPU threads. */
static void request_stop(struct vm *vm, enum vm_stop_reason reason, unsigned status)
{
	int none = VM_STOP_NONE;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->stop_reason, &none, (int)reason))
		return;
	vm->guest_exit_status = status;
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		log_err("cannot wake the main loop: %s", strerror(errno));
	/* Parked vCPUs wake up to end. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason)
{
	request_stop(vm, reason, 0);
}

static void host_request_stop(struct dev_host *host, enum vm_stop_reason reason)
{
	vm_request_stop(host_vm(host), reason);
}

static void host_request_exit(struct dev_host *host, unsigned status)
{
	request_stop(host_vm(host), VM_STOP_GUEST_EXIT, status);
}

/* A stop request only has to wake the loop; vm_run() reads the reason. */
static void stop_requested(void *opaque, unsigned events)
{
	struct vm *vm = opaque;
	uint64_t n;

	if (read(vm->stop_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("stop eventfd: %s", strerror(errno));
}

int vm_stop_init(struct vm *vm)
{
	int ret;

	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->host.request_stop = host_request_stop;
	vm->host.request_exit = host_request_exit;
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		return -errno;
	ret = loop_watch(vm->loop, vm, vm->stop_efd, LOOP_IN, stop_requested, vm);
	return ret;
}

void vm_stop_destroy(struct vm *vm)
{
	if (vm->stop_efd >= 0) {
		loop_unwatch(vm->loop, vm->stop_efd);
		close(vm->stop_efd);
	}
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
}

static unsigned console_to_uart(void *uart, const uint8_t *data, unsigned len)
{
	return uart_8250_receive(uart, data, len);
}

/* The console's quit escape (Ctrl-A x) ends the VM as SIGINT would. */
static void quit_from_console(struct vm *vm)
{
	vm->stop_signal = SIGINT;
	vm_request_stop(vm, VM_STOP_SIGNAL);
}

/* What the main loop serves besides the devices: the console's input and the signals. */
struct main_loop {
	struct vm *vm;
	struct console con;
	int sig_fd;
	bool input_watched, input_paused;
};

static void console_readable(void *opaque, unsigned events)
{
	struct main_loop *m = opaque;

	if (console_read(&m->con))
		quit_from_console(m->vm);
}

static void signal_readable(void *opaque, unsigned events)
{
	struct main_loop *m = opaque;
	struct signalfd_siginfo si;

	if (read(m->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if ((si.ssi_signo == SIGTSTP || si.ssi_signo == SIGCONT) && vm_migrating(m->vm)) {
		log_warn("signal %d: a migration is in progress; it decides where the guest runs",
			 (int)si.ssi_signo);
	} else if (si.ssi_signo == SIGTSTP) {
		if (vm_pause(m->vm))
			log_warn("SIGTSTP: a vCPU did not pause within %d s", VM_PAUSE_TIMEOUT_S);
		else
			log_info("paused (SIGTSTP); SIGCONT resumes");
	} else if (si.ssi_signo == SIGCONT) {
		if (vm_is_paused(m->vm))
			log_info("resumed (SIGCONT)");
		vm_resume(m->vm);
	} else {
		m->vm->stop_signal = (int)si.ssi_signo;
		vm_request_stop(m->vm, VM_STOP_SIGNAL);
	}
}

/* Watch the console's input only while the UART has room for it. */
static void follow_input(struct main_loop *m, bool want)
{
	struct loop *loop = m->vm->loop;

	if (m->con.in_fd < 0 || !m->con.pollable) {
		if (m->input_watched) /* end of input */
			loop_forget(loop, &m->con);
		m->input_watched = false;
		return;
	}
	if (!m->input_watched) {
		if (want && loop_watch(loop, &m->con, m->con.in_fd, LOOP_IN, console_readable, m))
			m->con.in_fd = -1; /* e.g. /dev/null: no input */
		m->input_watched = want && m->con.in_fd >= 0;
		m->input_paused = false;
	} else if (want == m->input_paused &&
		   loop_set_events(loop, m->con.in_fd, want ? LOOP_IN : 0) == 0) {
		m->input_paused = !want;
	}
}

/* Serve the console, signals and the loop (devices, and whatever else the front end put on
 * it) until the guest stops. */
static void main_loop(struct vm *vm, int sig_fd)
{
	struct main_loop m = { .vm = vm, .sig_fd = sig_fd };
	struct vm_device *uart = devmgr_find(&vm->devices, &uart_8250_class, NULL);

	console_open(&m.con, STDIN_FILENO, console_to_uart, uart ? uart->state : NULL);
	if (loop_watch(vm->loop, &m, sig_fd, LOOP_IN, signal_readable, &m))
		log_err("cannot watch for signals");
	while (atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
		bool pending = console_flush(&m.con);
		bool want_input = m.con.in_fd >= 0 && !pending;

		/* Regular files cannot be polled: they are always readable until end of file. */
		if (want_input && !m.con.pollable && console_read(&m.con))
			quit_from_console(vm);
		follow_input(&m, want_input);
		/* While typed bytes wait for room in the UART FIFO, poll for it every 10 ms. */
		pending = m.con.head < m.con.tail || (m.con.in_fd >= 0 && !m.con.pollable);
		loop_wait(vm->loop, pending ? 10 : -1);
	}
	loop_forget(vm->loop, &m.con);
	loop_forget(vm->loop, &m);
	console_restore();
}

enum vm_stop_reason vm_run(struct vm *vm)
{
	sigset_t sigs, old;
	int sig_fd;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTSTP); /* pause the guest, not kiln */
	sigaddset(&sigs, SIGCONT); /* resume it */
	/* Blocked before the vCPU threads exist, so they inherit the mask and only the signalfd
	 * sees these signals. */
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return VM_STOP_INTERNAL_ERROR;
	}
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		int ret = vcpu_start(&vm->vcpu[i]);

		if (ret) {
			log_err("vCPU %u: cannot start its thread: %s", i, strerror(-ret));
			vm_request_stop(vm, VM_STOP_INTERNAL_ERROR);
			break;
		}
	}
	main_loop(vm, sig_fd);
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vcpu_stop(&vm->vcpu[i]);
	close(sig_fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return (enum vm_stop_reason)atomic_load(&vm->stop_reason);
}

int vm_stop_signal(const struct vm *vm) { return vm->stop_signal; }

unsigned vm_guest_exit_status(const struct vm *vm) { return vm->guest_exit_status; }

int vm_send_ctrl_alt_del(struct vm *vm)
{
	struct vm_device *kbd = devmgr_find(&vm->devices, &i8042_class, NULL);

	return kbd ? i8042_send_ctrl_alt_del(kbd->state) : -ENODEV;
}

int vm_pause(struct vm *vm)
{
	struct timespec deadline;
	unsigned started = 0;
	int ret = 0;

	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = true;
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		started += vm->vcpu[i].started;
		vcpu_kick(&vm->vcpu[i]);
	}
	/* A kicked vCPU leaves KVM_RUN at once and finishes at most one exit's device work. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += VM_PAUSE_TIMEOUT_S;
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->nr_parked < started && atomic_load(&vm->stop_reason) == VM_STOP_NONE && !ret)
		ret = -pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline);
	pthread_mutex_unlock(&vm->pause_lock);
	return ret;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = false;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_all_parked(struct vm *vm)
{
	unsigned started = 0;
	bool all;

	for (unsigned i = 0; i < vm->nr_cpus; i++)
		started += vm->vcpu[i].started;
	pthread_mutex_lock(&vm->pause_lock);
	all = vm->paused && vm->nr_parked == started;
	pthread_mutex_unlock(&vm->pause_lock);
	return all;
}

bool vm_is_paused(struct vm *vm)
{
	bool paused;

	pthread_mutex_lock(&vm->pause_lock);
	paused = vm->paused;
	pthread_mutex_unlock(&vm->pause_lock);
	return paused;
}
