/* SPDX-License-Identifier: Apache-2.0 */
/* loop — see include/kiln/loop.h. */
#include "kiln/loop.h"
#include "kiln/log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 64                  /* epoll events served per loop_wait() */
#define LOOP_POLLER_FDS 256            /* pollfd entries first offered to a poller */
#define LOOP_POLLER_FDS_MAX (1u << 24) /* offers stop doubling there: more than a process opens */

/* loop_timer.index when the timer is not in the heap. */
#define TIMER_IDLE UINT_MAX           /* not armed */
#define TIMER_STRANDED (UINT_MAX - 1) /* armed, on loop.stranded: the heap could not grow */

/* A watched descriptor. Heap-allocated so that it never moves: epoll's data.ptr points at it.
 * A forgotten watch stays allocated, with fd -1, until the batch that may still name it is
 * served. */
struct loop_watch {
	int fd;
	unsigned events; /* interest: LOOP_IN | LOOP_OUT; 0 when out of the epoll set */
	const void *owner;
	loop_fd_fn fn;
	void *opaque;
	struct loop_watch *next_dead;
};

struct loop_poller_slot {
	const void *owner;
	struct loop_poller p;
	bool dead;         /* forgotten during loop_wait(); removed from the array after it */
	unsigned offer;    /* pollfd entries offered to prepare() */
	size_t first, n;   /* this iteration's entries in loop.pfd */
};

struct loop {
	int epoll_fd;
	int timer_fd;  /* on the epoll set with data.ptr = the loop itself */
	bool running;  /* inside loop_wait(): releases are deferred until it ends */

	struct loop_watch **watch; /* indexed by descriptor; NULL: not watched */
	size_t nr_watch_slots;
	struct loop_watch *dead;   /* forgotten during loop_wait(), freed after the batch */

	struct loop_poller_slot *poller;
	size_t nr_pollers, cap_pollers;
	bool pollers_dead;         /* some poller[].dead is set */
	struct pollfd *pfd;        /* [0] the epoll descriptor, then each poller's entries */
	size_t cap_pfd;

	struct loop_timer **heap;  /* min-heap on (deadline_ns, seq); heap[i]->index == i */
	size_t nr_timers, cap_timers;
	struct loop_timer *stranded;
	uint64_t timer_seq;
	uint64_t timer_fd_ns;      /* deadline timer_fd is set to; 0: disarmed */
	bool in_timers;            /* running timer callbacks ... */
	uint64_t timers_now;       /* ... for the timers due at this time */

	int task_fd;               /* eventfd on the epoll set (data.ptr = &task_fd): tasks due */
	pthread_mutex_t task_lock; /* the scheduled tasks, first in first out */
	struct loop_task *task_head, *task_tail;
	unsigned nr_tasks;
};

/* @arr (*@cap elements of @size bytes) reallocated to hold at least @need, by doubling; *@cap
 * updated. NULL when out of memory (then @arr and *@cap are unchanged). */
static void *grow_array(void *arr, size_t size, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return arr;
	while (n < need) {
		if (n > SIZE_MAX / 2 / size)
			return NULL;
		n *= 2;
	}
	p = reallocarray(arr, n, size);
	if (p)
		*cap = n;
	return p;
}

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int loop_new(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	int ret;

	if (!loop)
		return -ENOMEM;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0) {
		ret = -errno;
		goto out_free;
	}
	loop->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (loop->timer_fd < 0) {
		ret = -errno;
		goto out_epoll;
	}
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->timer_fd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.ptr = loop })) {
		ret = -errno;
		goto out_timer;
	}
	loop->task_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->task_fd < 0) {
		ret = -errno;
		goto out_timer;
	}
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->task_fd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.ptr = &loop->task_fd })) {
		ret = -errno;
		close(loop->task_fd);
		goto out_timer;
	}
	pthread_mutex_init(&loop->task_lock, NULL);
	*out = loop;
	return 0;
out_timer:
	close(loop->timer_fd);
out_epoll:
	close(loop->epoll_fd);
out_free:
	free(loop);
	return ret;
}

/* Free what was forgotten during loop_wait(), now that no batch names it. */
static void loop_release(struct loop *loop)
{
	size_t kept = 0;

	while (loop->dead) {
		struct loop_watch *w = loop->dead;

		loop->dead = w->next_dead;
		free(w);
	}
	if (!loop->pollers_dead)
		return;
	for (size_t i = 0; i < loop->nr_pollers; i++)
		if (!loop->poller[i].dead)
			loop->poller[kept++] = loop->poller[i];
	loop->nr_pollers = kept;
	loop->pollers_dead = false;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	for (size_t fd = 0; fd < loop->nr_watch_slots; fd++)
		free(loop->watch[fd]);
	loop_release(loop);
	for (size_t i = 0; i < loop->nr_timers; i++)
		loop->heap[i]->index = TIMER_IDLE;
	for (struct loop_timer *t = loop->stranded; t; t = t->stranded_next)
		t->index = TIMER_IDLE;
	free(loop->watch);
	free(loop->poller);
	free(loop->pfd);
	free(loop->heap);
	for (struct loop_task *t = loop->task_head; t; t = t->next)
		t->scheduled = false;
	pthread_mutex_destroy(&loop->task_lock);
	close(loop->task_fd);
	close(loop->timer_fd);
	close(loop->epoll_fd);
	free(loop);
}

/* ---- Watches ---- */

static struct loop_watch *watch_find(const struct loop *loop, int fd)
{
	return fd >= 0 && (size_t)fd < loop->nr_watch_slots ? loop->watch[fd] : NULL;
}

#define LOOP_INTEREST (LOOP_IN | LOOP_OUT | LOOP_HUP)

/* What epoll is asked for with interest @events. EPOLLRDHUP only with LOOP_IN or LOOP_HUP: a
 * peer that shut down its sending side matters to a reader, and must not wake a writer
 * forever. */
static uint32_t epoll_bits(unsigned events)
{
	return (events & LOOP_IN ? EPOLLIN : 0u) | (events & LOOP_OUT ? EPOLLOUT : 0u) |
	       (events & (LOOP_IN | LOOP_HUP) ? EPOLLRDHUP : 0u);
}

/* What to report of epoll events @e to a watch whose interest is now @events (it may have
 * changed since epoll queued @e). */
static unsigned loop_bits(uint32_t e, unsigned events)
{
	uint32_t err = EPOLLERR | EPOLLHUP | (events & (LOOP_IN | LOOP_HUP) ? EPOLLRDHUP : 0u);

	return (((e & EPOLLIN ? LOOP_IN : 0u) | (e & EPOLLOUT ? LOOP_OUT : 0u)) & events) |
	       (e & err ? LOOP_ERR : 0u);
}

static int watch_ctl(struct loop *loop, int op, struct loop_watch *w, unsigned events)
{
	struct epoll_event ev = { .events = epoll_bits(events), .data.ptr = w };

	return epoll_ctl(loop->epoll_fd, op, w->fd, &ev) ? -errno : 0;
}

int loop_watch(struct loop *loop, const void *owner, int fd, unsigned events, loop_fd_fn fn,
	       void *opaque)
{
	struct loop_watch *w;
	int ret;

	if (fd < 0)
		return -EBADF;
	if ((events & ~LOOP_INTEREST) || !fn)
		return -EINVAL;
	if (watch_find(loop, fd))
		return -EEXIST;
	if ((size_t)fd >= loop->nr_watch_slots) {
		size_t old = loop->nr_watch_slots;
		struct loop_watch **table = grow_array(loop->watch, sizeof(*table),
						       &loop->nr_watch_slots, (size_t)fd + 1);

		if (!table)
			return -ENOMEM;
		memset(table + old, 0, (loop->nr_watch_slots - old) * sizeof(*table));
		loop->watch = table;
	}
	w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct loop_watch){ .fd = fd, .events = events, .owner = owner, .fn = fn,
				  .opaque = opaque };
	ret = watch_ctl(loop, EPOLL_CTL_ADD, w, events);
	if (ret) {
		free(w);
		return ret;
	}
	/* With no interest the ADD only checked that epoll takes @fd: out of the set again. */
	if (!events)
		epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	loop->watch[fd] = w;
	return 0;
}

int loop_set_events(struct loop *loop, int fd, unsigned events)
{
	struct loop_watch *w = watch_find(loop, fd);
	int op, ret;

	if (!w)
		return -ENOENT;
	if (events & ~LOOP_INTEREST)
		return -EINVAL;
	if (events == w->events)
		return 0;
	/* Interest 0 is out of the set, not EPOLL_CTL_MOD to 0: epoll would still report
	 * errors and hang-ups, and the loop would spin on a hung-up descriptor nobody reads. */
	op = !w->events ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	ret = watch_ctl(loop, op, w, events);
	if (!ret)
		w->events = events;
	return ret;
}

void loop_unwatch(struct loop *loop, int fd)
{
	struct loop_watch *w = watch_find(loop, fd);

	if (!w)
		return;
	if (w->events) /* fails only when the caller already closed @fd: then epoll dropped it */
		epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	loop->watch[fd] = NULL;
	w->fd = -1;
	if (loop->running) {
		w->next_dead = loop->dead;
		loop->dead = w;
	} else {
		free(w);
	}
}

/* ---- Pollers ---- */

int loop_add_poller(struct loop *loop, const void *owner, const struct loop_poller *p)
{
	if (loop->nr_pollers == loop->cap_pollers) {
		struct loop_poller_slot *slots = grow_array(loop->poller, sizeof(*slots),
							    &loop->cap_pollers, loop->nr_pollers + 1);

		if (!slots)
			return -ENOMEM;
		loop->poller = slots;
	}
	loop->poller[loop->nr_pollers++] = (struct loop_poller_slot){
		.owner = owner, .p = *p, .offer = LOOP_POLLER_FDS };
	return 0;
}

/* The pollers' turn: prepare, poll() over the epoll descriptor and what they asked for, then
 * dispatch. Pollers added meanwhile wait for the next turn; forgotten ones are skipped. Returns
 * whether the epoll set has events, or -errno. */
static int pollers_run(struct loop *loop, int timeout_ms)
{
	size_t count = loop->nr_pollers, need = 1, n = 1;

	for (size_t i = 0; i < count; i++)
		need += loop->poller[i].offer;
	if (need > loop->cap_pfd) {
		struct pollfd *pfd = grow_array(loop->pfd, sizeof(*pfd), &loop->cap_pfd, need);

		if (pfd) /* else offer what there is: the pollers' descriptors wait their turn */
			loop->pfd = pfd;
		else if (!loop->cap_pfd)
			return -ENOMEM;
	}
	loop->pfd[0] = (struct pollfd){ .fd = loop->epoll_fd, .events = POLLIN };
	for (size_t i = 0; i < count; i++) {
		struct loop_poller_slot *s = &loop->poller[i];
		size_t max = loop->cap_pfd - n < s->offer ? loop->cap_pfd - n : s->offer;
		size_t got = 0;

		if (!s->dead) {
			struct loop_poller p = s->p;

			got = p.prepare(p.opaque, loop->pfd + n, (unsigned)max, &timeout_ms);
			s = &loop->poller[i]; /* prepare() may have added a poller: moved */
			if (got > max)
				got = max;
			/* Full: maybe more wanted in. Offer twice as many next time. */
			if (got == max && max == s->offer && s->offer < LOOP_POLLER_FDS_MAX)
				s->offer *= 2;
		}
		s->first = n;
		s->n = got;
		n += got;
	}
	if (poll(loop->pfd, n, timeout_ms) < 0)
		return -errno;
	for (size_t i = 0; i < count; i++) {
		struct loop_poller_slot s = loop->poller[i]; /* a dispatch may move the array */

		if (!s.dead)
			s.p.dispatch(s.p.opaque, loop->pfd + s.first, (unsigned)s.n);
	}
	return loop->pfd[0].revents != 0;
}

/* ---- Timers ---- */

static bool timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->deadline_ns != b->deadline_ns ? a->deadline_ns < b->deadline_ns : a->seq < b->seq;
}

static void heap_place(struct loop *loop, size_t i, struct loop_timer *t)
{
	loop->heap[i] = t;
	t->index = (unsigned)i;
}

static void heap_up(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];

	while (i) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_place(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_place(loop, i, t);
}

static void heap_down(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= loop->nr_timers)
			break;
		if (child + 1 < loop->nr_timers && timer_before(loop->heap[child + 1], loop->heap[child]))
			child++;
		if (!timer_before(loop->heap[child], t))
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, t);
}

/* Whether the heap has room for one more timer, growing it if need be. */
static bool heap_reserve(struct loop *loop)
{
	struct loop_timer **heap;

	if (loop->nr_timers < loop->cap_timers)
		return true;
	if (loop->nr_timers >= TIMER_STRANDED) /* indexes must stay below the marks */
		return false;
	heap = grow_array(loop->heap, sizeof(*heap), &loop->cap_timers, loop->nr_timers + 1);
	if (heap)
		loop->heap = heap;
	return heap != NULL;
}

static void heap_insert(struct loop *loop, struct loop_timer *t)
{
	loop->heap[loop->nr_timers++] = t;
	heap_up(loop, loop->nr_timers - 1);
}

/* Queue @t, its deadline set: in the heap, or on the stranded list when out of memory. */
static void timer_link(struct loop *loop, struct loop_timer *t)
{
	if (heap_reserve(loop)) {
		heap_insert(loop, t);
	} else {
		t->index = TIMER_STRANDED;
		t->stranded_next = loop->stranded;
		loop->stranded = t;
	}
}

static void timer_unlink(struct loop *loop, struct loop_timer *t)
{
	if (t->index == TIMER_STRANDED) {
		struct loop_timer **pp = &loop->stranded;

		while (*pp != t)
			pp = &(*pp)->stranded_next;
		*pp = t->stranded_next;
	} else {
		size_t i = t->index;
		struct loop_timer *last = loop->heap[--loop->nr_timers];

		if (last != t) {
			heap_place(loop, i, last);
			heap_down(loop, i);
			heap_up(loop, last->index);
		}
	}
	t->index = TIMER_IDLE;
}

/* The armed timer due first, or NULL. */
static struct loop_timer *timer_first(const struct loop *loop)
{
	struct loop_timer *first = loop->nr_timers ? loop->heap[0] : NULL;

	for (struct loop_timer *t = loop->stranded; t; t = t->stranded_next)
		if (!first || timer_before(t, first))
			first = t;
	return first;
}

void loop_timer_init(struct loop *loop, struct loop_timer *t, const void *owner,
		     void (*fn)(void *opaque), void *opaque)
{
	*t = (struct loop_timer){ .loop = loop, .owner = owner, .fn = fn, .opaque = opaque,
				  .index = TIMER_IDLE };
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

void loop_timer_arm(struct loop_timer *t, uint64_t delay_ns, uint64_t period_ns)
{
	struct loop *loop = t->loop;

	if (t->index != TIMER_IDLE)
		timer_unlink(loop, t);
	t->deadline_ns = add_sat(loop_now_ns(), delay_ns);
	/* Armed by a timer callback: after this round, or it could run forever. */
	if (loop->in_timers && t->deadline_ns <= loop->timers_now)
		t->deadline_ns = loop->timers_now + 1;
	t->period_ns = period_ns;
	t->seq = ++loop->timer_seq;
	timer_link(loop, t);
}

void loop_timer_cancel(struct loop_timer *t)
{
	if (t->index != TIMER_IDLE)
		timer_unlink(t->loop, t);
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->index != TIMER_IDLE;
}

uint64_t loop_timer_deadline_ns(const struct loop_timer *t)
{
	return t->index != TIMER_IDLE ? t->deadline_ns : 0;
}

/* Disarm every timer of @owner. */
static void timers_forget(struct loop *loop, const void *owner)
{
	struct loop_timer **pp = &loop->stranded;
	size_t kept = 0;

	while (*pp) {
		struct loop_timer *t = *pp;

		if (t->owner == owner) {
			*pp = t->stranded_next;
			t->index = TIMER_IDLE;
		} else {
			pp = &t->stranded_next;
		}
	}
	for (size_t i = 0; i < loop->nr_timers; i++) {
		struct loop_timer *t = loop->heap[i];

		if (t->owner == owner)
			t->index = TIMER_IDLE;
		else
			loop->heap[kept++] = t;
	}
	if (kept == loop->nr_timers)
		return;
	loop->nr_timers = kept;
	for (size_t i = 0; i < kept; i++)
		loop->heap[i]->index = (unsigned)i;
	for (size_t i = kept / 2; i-- > 0;)
		heap_down(loop, i);
}

/* Before sleeping: stranded timers into the heap if it can grow now, and the timerfd set to the
 * earliest deadline; when that is already past, *@timeout_ms becomes 0. Returns 0 or -errno. */
static int timers_prepare(struct loop *loop, int *timeout_ms)
{
	struct itimerspec its = { 0 };
	struct loop_timer *first;
	uint64_t want = 0;

	while (loop->stranded && heap_reserve(loop)) {
		struct loop_timer *t = loop->stranded;

		loop->stranded = t->stranded_next;
		heap_insert(loop, t);
	}
	first = timer_first(loop);
	if (first && first->deadline_ns <= loop_now_ns()) {
		*timeout_ms = 0;
		return 0;
	}
	if (first)
		want = first->deadline_ns < INT64_MAX ? first->deadline_ns : INT64_MAX;
	if (want == loop->timer_fd_ns)
		return 0;
	its.it_value.tv_sec = (time_t)(want / 1000000000u);
	its.it_value.tv_nsec = (long)(want % 1000000000u);
	if (timerfd_settime(loop->timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		return -errno;
	loop->timer_fd_ns = want;
	return 0;
}

/* The timerfd fired: clear its readiness; timers_run() does the work. */
static void timers_drain(struct loop *loop)
{
	uint64_t ticks;

	if (read(loop->timer_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
		loop->timer_fd_ns = 0; /* expired: disarmed */
}

/* Run the callbacks of the timers due now, in deadline order. Returns how many ran. */
static int timers_run(struct loop *loop)
{
	struct loop_timer *t;
	uint64_t now;
	int ran = 0;

	if (!loop->nr_timers && !loop->stranded)
		return 0;
	now = loop_now_ns();
	loop->in_timers = true;
	loop->timers_now = now;
	while ((t = timer_first(loop)) && t->deadline_ns <= now) {
		timer_unlink(loop, t);
		if (t->period_ns) {
			uint64_t next = add_sat(t->deadline_ns, t->period_ns);

			/* Keep the phase, but no burst to catch up after falling behind. */
			t->deadline_ns = next > now ? next : add_sat(now, t->period_ns);
			t->seq = ++loop->timer_seq;
			timer_link(loop, t);
		}
		/* Last use of @t here: the callback may cancel, re-arm or free it. */
		t->fn(t->opaque);
		ran++;
	}
	loop->in_timers = false;
	return ran;
}

/* ---- Tasks ---- */

void loop_task_init(struct loop *loop, struct loop_task *t, const void *owner,
		    void (*fn)(void *opaque), void *opaque)
{
	*t = (struct loop_task){ .loop = loop, .owner = owner, .fn = fn, .opaque = opaque };
}

void loop_task_schedule(struct loop_task *t)
{
	struct loop *loop = t->loop;
	uint64_t one = 1;
	bool wake;

	pthread_mutex_lock(&loop->task_lock);
	wake = !t->scheduled;
	if (wake) {
		t->scheduled = true;
		t->next = NULL;
		if (loop->task_tail)
			loop->task_tail->next = t;
		else
			loop->task_head = t;
		loop->task_tail = t;
		loop->nr_tasks++;
	}
	pthread_mutex_unlock(&loop->task_lock);
	/* A full counter (2^64 - 2 wake-ups unread) is still readable: nothing is lost. */
	if (wake && write(loop->task_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("event loop: task eventfd: %s", strerror(errno));
}

/* Take @t off the list; task lock held, @t scheduled. */
static void task_unlink(struct loop *loop, struct loop_task *t)
{
	struct loop_task **pp = &loop->task_head, *prev = NULL;

	while (*pp != t) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = t->next;
	if (loop->task_tail == t)
		loop->task_tail = prev;
	loop->nr_tasks--;
	t->scheduled = false;
}

void loop_task_cancel(struct loop_task *t)
{
	pthread_mutex_lock(&t->loop->task_lock);
	if (t->scheduled)
		task_unlink(t->loop, t);
	pthread_mutex_unlock(&t->loop->task_lock);
}

static void tasks_forget(struct loop *loop, const void *owner)
{
	pthread_mutex_lock(&loop->task_lock);
	for (struct loop_task *t = loop->task_head, *next; t; t = next) {
		next = t->next;
		if (t->owner == owner)
			task_unlink(loop, t);
	}
	pthread_mutex_unlock(&loop->task_lock);
}

/* Run the tasks scheduled before now, oldest first; one that is scheduled again meanwhile runs
 * next time. Returns how many ran. */
static int tasks_run(struct loop *loop)
{
	unsigned n;
	uint64_t v;
	int ran = 0;

	if (read(loop->task_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&loop->task_lock);
	n = loop->nr_tasks;
	pthread_mutex_unlock(&loop->task_lock);
	while (n--) {
		struct loop_task *t;

		pthread_mutex_lock(&loop->task_lock);
		t = loop->task_head;
		if (t)
			task_unlink(loop, t);
		pthread_mutex_unlock(&loop->task_lock);
		if (!t)
			break;
		t->fn(t->opaque); /* last use of @t: the callback may free it */
		ran++;
	}
	return ran;
}

/* ---- Owners and the wait ---- */

void loop_forget(struct loop *loop, const void *owner)
{
	for (size_t fd = 0; fd < loop->nr_watch_slots; fd++)
		if (loop->watch[fd] && loop->watch[fd]->owner == owner)
			loop_unwatch(loop, (int)fd);
	for (size_t i = 0; i < loop->nr_pollers; i++) {
		if (loop->poller[i].owner == owner) {
			loop->poller[i].dead = true;
			loop->pollers_dead = true;
		}
	}
	if (!loop->running)
		loop_release(loop);
	timers_forget(loop, owner);
	tasks_forget(loop, owner);
}

int loop_wait(struct loop *loop, int timeout_ms)
{
	struct epoll_event ev[LOOP_BATCH];
	int ret, n = 0, ran = 0;
	bool ready = true, tasks = false;

	if (loop->running)
		return -EDEADLK;
	loop->running = true;
	ret = timers_prepare(loop, &timeout_ms);
	if (ret)
		goto out;
	if (loop->nr_pollers) {
		ret = pollers_run(loop, timeout_ms);
		if (ret < 0)
			goto out;
		ready = ret;
		timeout_ms = 0;
	}
	if (ready) {
		n = epoll_wait(loop->epoll_fd, ev, LOOP_BATCH, timeout_ms);
		if (n < 0) {
			ret = -errno;
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = ev[i].data.ptr;
		unsigned got;

		if (ev[i].data.ptr == loop) {
			timers_drain(loop);
			continue;
		}
		if (ev[i].data.ptr == &loop->task_fd) {
			tasks = true;
			continue;
		}
		/* An earlier callback of this batch may have forgotten the watch or changed its
		 * interest: report only what it still asks for. */
		got = loop_bits(ev[i].events, w->events);
		if (w->fd < 0 || !w->events || !got)
			continue;
		w->fn(w->opaque, got);
		ran++;
	}
	if (tasks)
		ran += tasks_run(loop);
	ret = ran + timers_run(loop);
out:
	loop->running = false;
	loop_release(loop);
	return ret;
}
