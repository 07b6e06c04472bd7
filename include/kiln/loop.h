/* SPDX-License-Identifier: Apache-2.0 */
/* loop — kiln's event loop: file descriptors with read and write interest, timers, pollers, and
 * the wait that serves them.
 *
 * Owns: one epoll descriptor; a table of watches indexed by descriptor; one min-heap of armed
 * timers, served by a single timerfd (CLOCK_MONOTONIC, absolute, nanosecond deadlines) that is
 * itself on the epoll set; the pollers and the pollfd array they fill. Nothing has a fixed
 * limit: every table grows as needed.
 *
 * One loop per process, made by the front end before any VM exists, so that the API server is
 * served before, while and after a VM runs; a VM registers its devices' descriptors and timers on
 * it and takes them back (loop_forget) when it is destroyed.
 *
 * Threads: single-threaded. Only the thread that calls loop_wait() may use the loop or its
 * timers, including from the callbacks loop_wait() runs. loop_wait() is not reentrant. The one
 * exception is a task (struct loop_task): any thread may schedule one, and the loop runs it on
 * its own thread, which is how a vCPU thread hands the loop work that touches registrations.
 *
 * Callbacks may call anything here except loop_wait() and loop_free(): unwatch or forget any
 * registration (their own included), watch new descriptors, arm or cancel any timer. A
 * registration that is dropped is never called afterwards, even when its event is already in
 * the batch being served.
 */
#ifndef KILN_LOOP_H
#define KILN_LOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

/* Interest and event bits of a watch. */
#define LOOP_IN  0x1u /* readable */
#define LOOP_OUT 0x2u /* writable */
/* Error or hang-up (EPOLLERR, EPOLLHUP, EPOLLRDHUP): reported, never asked for, whenever the
 * descriptor is in the wait set (interest not 0), whatever the interest. With LOOP_IN the peer
 * may have only shut down its sending side (EPOLLRDHUP, which is asked for only with LOOP_IN, so
 * that a peer that closed its sending side but still reads never wakes a pure writer): data may
 * still be buffered, read until end of file. */
#define LOOP_ERR 0x4u
/* Interest in the peer's hang-up alone (EPOLLRDHUP), reported as LOOP_ERR: for a socket whose
 * data must wait but whose peer going away must not (a vsock host program waiting for the
 * guest's answer). */
#define LOOP_HUP 0x8u

/* A watch's callback: @events is what happened, LOOP_IN | LOOP_OUT | LOOP_ERR bits, never 0,
 * limited to the watch's current interest plus LOOP_ERR. */
typedef void (*loop_fd_fn)(void *opaque, unsigned events);

/* Something served on the loop that is not one file descriptor known in advance: a set of
 * descriptors that changes every iteration, with its own timeouts (libslirp, libmicrohttpd). */
struct loop_poller {
	/* Before the loop sleeps: fill up to @max entries of @fds and return how many; lower
	 * *@timeout_ms (milliseconds, -1 for none) when work is due sooner. A poller that fills
	 * all @max entries is offered twice as many from the next iteration on (memory
	 * permitting), so descriptors that did not fit wait one iteration, not forever. */
	unsigned (*prepare)(void *opaque, struct pollfd *fds, unsigned max, int *timeout_ms);
	/* After the loop wakes: the entries prepare() filled, with revents set. */
	void (*dispatch)(void *opaque, const struct pollfd *fds, unsigned n);
	void *opaque;
};

/* A timer, embedded in its user's structure. Set up with loop_timer_init(); every field is
 * private to the loop (read the state with loop_timer_armed() and loop_timer_deadline_ns()).
 * Its memory must stay valid while it is armed: cancel it, or forget its owner, before freeing
 * it. */
struct loop_timer {
	struct loop *loop;
	const void *owner;
	void (*fn)(void *opaque);
	void *opaque;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
	uint64_t period_ns;   /* 0: one-shot */
	uint64_t seq;         /* arming order: equal deadlines fire first armed, first run */
	unsigned index;       /* in the loop's heap, or a mark for "not armed" or "stranded" */
	struct loop_timer *stranded_next; /* while the heap could not grow (out of memory) */
};

/* A task: work any thread asks the loop's thread to do once, soon. Embedded in its user's
 * structure, set up with loop_task_init(); the fields are private to the loop. Its memory must
 * stay valid while it is scheduled: cancel it, or forget its owner, before freeing it. */
struct loop_task {
	struct loop *loop;
	const void *owner;
	void (*fn)(void *opaque);
	void *opaque;
	bool scheduled;              /* under the loop's task lock */
	struct loop_task *next;
};

struct loop;

/* A new, empty loop in *out, to release with loop_free(). Returns 0 or -errno (-ENOMEM, or
 * epoll_create1 and timerfd_create's errors). */
int loop_new(struct loop **out) __attribute__((warn_unused_result));

/* Release @loop (NULL is fine). Not from a callback. What is still registered is dropped:
 * descriptors are not closed, armed timers are disarmed (so their memory must still be valid),
 * pollers are not called. */
void loop_free(struct loop *loop);

/* Call @fn(@opaque, events) whenever @fd is ready for @events (LOOP_IN and/or LOOP_OUT,
 * level-triggered), or has an error or hang-up (LOOP_ERR). With @events 0 the watch is
 * registered but out of the wait set: nothing is reported, not even a hang-up, which is how a
 * device stops reading a socket whose peer may have hung up without the loop spinning on it
 * (loop_set_events() puts it back).
 *
 * @fd stays the caller's: unwatch it (loop_unwatch, loop_forget) before closing it. @owner tags
 * the watch for loop_forget(). No limit on the number of watches; looking one up by descriptor
 * takes constant time.
 *
 * Returns 0; -EEXIST when @fd is already watched; -EBADF for a negative @fd; -EINVAL for unknown
 * bits in @events or a NULL @fn; -ENOMEM; or -errno from epoll_ctl (-EPERM: @fd cannot be
 * waited for, e.g. a regular file, checked even with @events 0). */
int loop_watch(struct loop *loop, const void *owner, int fd, unsigned events, loop_fd_fn fn,
	       void *opaque) __attribute__((warn_unused_result));

/* Change watched @fd's interest to @events (LOOP_IN and/or LOOP_OUT, or 0 to take it out of the
 * wait set as with loop_watch(); from 0 it goes back in). Events of the old interest that are
 * already in the batch being served are not reported. Returns 0; -ENOENT when @fd is not
 * watched; -EINVAL for unknown bits; or -errno from epoll_ctl (the interest is then unchanged). */
int loop_set_events(struct loop *loop, int fd, unsigned events)
	__attribute__((warn_unused_result));

/* Forget watched @fd (nothing when it is not watched); its callback is never called again, even
 * for an event already in the batch being served. Callable from any callback, @fd's own
 * included; the watch's memory is released after the batch. */
void loop_unwatch(struct loop *loop, int fd);

/* Serve @p (copied) on every iteration from now on; @owner tags it for loop_forget(). A poller
 * added by a callback is first served on the next loop_wait(). No limit on the number of
 * pollers. Returns 0 or -ENOMEM. */
int loop_add_poller(struct loop *loop, const void *owner, const struct loop_poller *p)
	__attribute__((warn_unused_result));

/* Drop every watch, poller, armed timer and scheduled task @owner registered, as
 * loop_unwatch(), loop_timer_cancel() and loop_task_cancel() would: none of their callbacks
 * is called afterwards. Callable from any
 * callback. Call it while the watched descriptors are still open. */
void loop_forget(struct loop *loop, const void *owner);

/* Set up @t on @loop, not armed: when it fires, the loop calls @fn(@opaque). @owner tags it for
 * loop_forget(). @t must not be armed (its earlier contents are ignored). Cannot fail: arming
 * never allocates from the caller's point of view (see loop_timer_arm). */
void loop_timer_init(struct loop *loop, struct loop_timer *t, const void *owner,
		     void (*fn)(void *opaque), void *opaque);

/* Fire @t @delay_ns nanoseconds from now (0: as soon as the loop runs timers, in the current
 * loop_wait() when armed from a watch's callback, else the next one), then every @period_ns
 * nanoseconds if that is not 0. Arming an armed timer replaces its schedule. A periodic timer
 * keeps its phase (next deadline = previous deadline + period) but never fires a burst to catch
 * up: when the loop fell behind by a period or more, the next deadline is now + period. A timer
 * armed from a timer callback never fires in the same round of timers, so a callback that arms
 * its own timer with delay 0 does not keep loop_wait() busy.
 *
 * Never fails: if the heap cannot grow (out of memory), the timer waits on a list that is
 * searched linearly until it can; it still fires on time. */
void loop_timer_arm(struct loop_timer *t, uint64_t delay_ns, uint64_t period_ns);

/* Disarm @t; nothing when it is not armed. Callable from any callback, @t's own included (a
 * periodic timer then stops). */
void loop_timer_cancel(struct loop_timer *t);

/* Whether @t is armed. A one-shot timer is no longer armed when its callback runs. */
bool loop_timer_armed(const struct loop_timer *t);

/* @t's next deadline (CLOCK_MONOTONIC, nanoseconds, comparable with loop_now_ns()), or 0 when
 * @t is not armed. From a periodic timer's own callback: the deadline after the current one. */
uint64_t loop_timer_deadline_ns(const struct loop_timer *t);

/* Set up @t on @loop, not scheduled: when it runs, the loop calls @fn(@opaque) on its thread.
 * @owner tags it for loop_forget(). Loop thread, before the task is shared. */
void loop_task_init(struct loop *loop, struct loop_task *t, const void *owner,
		    void (*fn)(void *opaque), void *opaque);

/* Ask the loop to run @t once, soon (in the next or the current loop_wait()); nothing when it is
 * already scheduled. Any thread, any lock held: it only takes the loop's task lock and signals
 * an eventfd. */
void loop_task_schedule(struct loop_task *t);

/* Unschedule @t (nothing when it is not scheduled). Any thread; a task whose callback is
 * already running is not waited for. */
void loop_task_cancel(struct loop_task *t);

/* CLOCK_MONOTONIC now, in nanoseconds: the clock timers run on. */
uint64_t loop_now_ns(void);

/* Wait up to @timeout_ms milliseconds (-1: no limit; timers due sooner shorten the wait, to the
 * nanosecond) and run, in this order: the pollers' dispatch, the callbacks of ready descriptors
 * (up to a batch of 64; the rest are served by the next call), the tasks scheduled before the
 * batch, and the callbacks of due timers in deadline order. Returns the number of watch and timer callbacks run (0 on timeout; poller
 * dispatches are not counted), or -errno: -EINTR (a signal: not an error to report), -EDEADLK
 * when called from a callback, -ENOMEM, or poll, epoll_wait and timerfd_settime's errors. */
int loop_wait(struct loop *loop, int timeout_ms);

#endif
