/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the event loop: read and write interest, interest 0, hang-up interest, dropping
 * registrations from callbacks in the middle of a batch, owners, no fixed limits, the timer
 * heap, pollers, and tasks scheduled from other threads.
 * Timing assertions are one-sided ("not before the deadline") plus generous bounds ("within
 * 2 s"): the machine running them is shared and noisy. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kiln/loop.h"

#define MS 1000000ull     /* nanoseconds */
#define EVENTUALLY_MS 2000 /* how long "eventually" may take */

static struct loop *loop_make(void)
{
	struct loop *loop = NULL;

	assert_int_equal(loop_new(&loop), 0);
	assert_non_null(loop);
	return loop;
}

static void pipe_make(int p[2])
{
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void pipe_close(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

static void put_byte(int fd)
{
	assert_int_equal(write(fd, "x", 1), 1);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Serve @loop until *@count reaches @want or EVENTUALLY_MS pass. Returns *@count. */
static int run_until(struct loop *loop, const int *count, int want)
{
	uint64_t end = loop_now_ns() + EVENTUALLY_MS * MS;

	while (*count < want && loop_now_ns() < end) {
		int n = loop_wait(loop, 10);

		assert_true(n >= 0 || n == -EINTR);
	}
	return *count;
}

/* What a watch's callback saw. */
struct rec {
	int calls;
	unsigned events; /* of the last call */
	unsigned all;    /* of every call */
};

static void rec_fd(void *opaque, unsigned events)
{
	struct rec *r = opaque;

	r->calls++;
	r->events = events;
	r->all |= events;
}

/* ---- Watches ---- */

/* Registration errors: what loop_watch and loop_set_events refuse, and that a refused
 * registration leaves nothing behind (the same fd can then be watched). */
static void test_watch_errors(void **state)
{
	struct loop *loop = loop_make();
	struct rec r = { 0 };
	FILE *file = tmpfile();
	int p[2], closed;

	assert_non_null(file);
	pipe_make(p);
	closed = dup(p[0]); /* a descriptor number that is free */
	assert_true(closed >= 0);
	close(closed);
	const struct {
		const char *what;
		int fd;
		unsigned events;
		loop_fd_fn fn;
		int want;
	} cases[] = {
		{ "negative fd", -1, LOOP_IN, rec_fd, -EBADF },
		{ "unknown interest bit", p[0], 0x10, rec_fd, -EINVAL },
		{ "LOOP_ERR is not an interest", p[0], LOOP_ERR, rec_fd, -EINVAL },
		{ "no callback", p[0], LOOP_IN, NULL, -EINVAL },
		{ "closed fd", closed, LOOP_IN, rec_fd, -EBADF },
		{ "closed fd, interest 0", closed, 0, rec_fd, -EBADF },
		{ "regular file", fileno(file), LOOP_IN, rec_fd, -EPERM },
		{ "regular file, interest 0", fileno(file), 0, rec_fd, -EPERM },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = loop_watch(loop, &r, cases[i].fd, cases[i].events, cases[i].fn, &r);

		if (ret != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].what, ret, cases[i].want);
	}
	/* Nothing half-registered: the pipe can be watched once, not twice. */
	assert_int_equal(loop_watch(loop, &r, p[0], LOOP_IN, rec_fd, &r), 0);
	assert_int_equal(loop_watch(loop, &r, p[0], LOOP_IN, rec_fd, &r), -EEXIST);
	assert_int_equal(loop_set_events(loop, p[0], 0x10), -EINVAL);
	assert_int_equal(loop_set_events(loop, p[1], LOOP_IN), -ENOENT);
	assert_int_equal(loop_set_events(loop, -1, LOOP_IN), -ENOENT);
	loop_unwatch(loop, p[1]); /* not watched: nothing */
	loop_unwatch(loop, -1);
	loop_unwatch(loop, p[0]);
	assert_int_equal(loop_set_events(loop, p[0], LOOP_IN), -ENOENT);
	assert_int_equal(loop_watch(loop, &r, p[0], LOOP_IN, rec_fd, &r), 0);
	loop_free(loop);
	/* loop_free() does not close what it watched. */
	assert_int_equal(fcntl(p[0], F_GETFD) >= 0, 1);
	assert_int_equal(r.calls, 0);
	pipe_close(p);
	fclose(file);
}

/* Read interest on a pipe: nothing while empty, LOOP_IN once a byte is there, level-triggered
 * (again while unread, not after it is read). */
static void test_read_interest(void **state)
{
	struct loop *loop = loop_make();
	struct rec r = { 0 };
	char c;
	int p[2];

	pipe_make(p);
	assert_int_equal(loop_watch(loop, &r, p[0], LOOP_IN, rec_fd, &r), 0);
	assert_int_equal(loop_wait(loop, 0), 0);
	assert_int_equal(r.calls, 0);
	put_byte(p[1]);
	assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.events, LOOP_IN);
	assert_int_equal(loop_wait(loop, 0), 1); /* still unread */
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(loop_wait(loop, 0), 0);
	assert_int_equal(r.calls, 2);
	loop_free(loop);
	pipe_close(p);
}

/* Write interest: a full pipe is not writable; once the reader drains it, LOOP_OUT is
 * reported. Changing the interest to LOOP_IN on the write end (never readable) silences it. */
static void test_write_interest(void **state)
{
	struct loop *loop = loop_make();
	struct rec r = { 0 };
	char buf[4096];
	int p[2];

	pipe_make(p);
	memset(buf, 'x', sizeof(buf));
	while (write(p[1], buf, sizeof(buf)) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(loop_watch(loop, &r, p[1], LOOP_OUT, rec_fd, &r), 0);
	assert_int_equal(loop_wait(loop, 0), 0);
	assert_int_equal(r.calls, 0);
	while (read(p[0], buf, sizeof(buf)) > 0)
		;
	assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 1);
	assert_int_equal(r.events, LOOP_OUT);
	assert_int_equal(loop_set_events(loop, p[1], LOOP_IN), 0);
	assert_int_equal(loop_wait(loop, 0), 0);
	assert_int_equal(loop_set_events(loop, p[1], LOOP_IN | LOOP_OUT), 0);
	assert_int_equal(loop_wait(loop, 0), 1);
	assert_int_equal(r.events, LOOP_OUT);
	loop_free(loop);
	pipe_close(p);
}

/* Which bits a callback sees on a connected stream socket, per interest and what the peer
 * did: only the interest plus LOOP_ERR; a peer's shutdown of its sending side is LOOP_ERR for
 * a reader but not for a pure writer (no EPOLLRDHUP spin); interest 0 sees nothing. */
static void test_interest_table(void **state)
{
	enum peer { PEER_WRITES, PEER_NOTHING, PEER_SHUT_WR, PEER_CLOSES };
	static const struct {
		const char *what;
		unsigned interest;
		enum peer peer;
		int calls;
		unsigned must, must_not;
	} cases[] = {
		{ "IN, data", LOOP_IN, PEER_WRITES, 1, LOOP_IN, LOOP_OUT | LOOP_ERR },
		{ "IN, idle", LOOP_IN, PEER_NOTHING, 0, 0, 0 },
		{ "OUT, idle", LOOP_OUT, PEER_NOTHING, 1, LOOP_OUT, LOOP_IN | LOOP_ERR },
		{ "IN|OUT, data", LOOP_IN | LOOP_OUT, PEER_WRITES, 1, LOOP_IN | LOOP_OUT, LOOP_ERR },
		{ "IN, peer shut down writing", LOOP_IN, PEER_SHUT_WR, 1, LOOP_IN | LOOP_ERR, LOOP_OUT },
		{ "OUT, peer shut down writing", LOOP_OUT, PEER_SHUT_WR, 1, LOOP_OUT, LOOP_IN | LOOP_ERR },
		{ "IN, peer closed", LOOP_IN, PEER_CLOSES, 1, LOOP_IN | LOOP_ERR, LOOP_OUT },
		{ "OUT, peer closed", LOOP_OUT, PEER_CLOSES, 1, LOOP_ERR, LOOP_IN },
		{ "0, data", 0, PEER_WRITES, 0, 0, 0 },
		{ "0, peer closed", 0, PEER_CLOSES, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct loop *loop = loop_make();
		struct rec r = { 0 };
		int sv[2], n;

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		assert_int_equal(loop_watch(loop, &r, sv[0], cases[i].interest, rec_fd, &r), 0);
		switch (cases[i].peer) {
		case PEER_WRITES:
			put_byte(sv[1]);
			break;
		case PEER_NOTHING:
			break;
		case PEER_SHUT_WR:
			assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
			break;
		case PEER_CLOSES:
			close(sv[1]);
			sv[1] = -1;
			break;
		}
		n = loop_wait(loop, cases[i].calls ? EVENTUALLY_MS : 50);
		if (n != cases[i].calls || r.calls != cases[i].calls)
			fail_msg("%s: %d callbacks (returned %d), want %d", cases[i].what, r.calls, n,
				 cases[i].calls);
		if ((r.all & cases[i].must) != cases[i].must || (r.all & cases[i].must_not))
			fail_msg("%s: events %#x, want all of %#x and none of %#x", cases[i].what, r.all,
				 cases[i].must, cases[i].must_not);
		loop_free(loop);
		pipe_close(sv);
	}
}

/* Interest 0 takes the descriptor out of the wait set: even a hang-up is not reported (no
 * busy loop on a peer that went away). Setting LOOP_IN again reports the hang-up, as LOOP_ERR
 * alone (the pipe is empty): a callback for an error-only event is still called. */
static void test_events_zero_hides_hangup(void **state)
{
	struct loop *loop = loop_make();
	struct rec r = { 0 };
	uint64_t start;
	int p[2];

	pipe_make(p);
	assert_int_equal(loop_watch(loop, &r, p[0], 0, rec_fd, &r), 0);
	close(p[1]);
	p[1] = -1;
	start = loop_now_ns();
	assert_int_equal(loop_wait(loop, 50), 0);
	assert_true(loop_now_ns() >= start + 50 * MS); /* slept: the hang-up did not wake it */
	assert_int_equal(r.calls, 0);
	assert_int_equal(loop_set_events(loop, p[0], LOOP_IN), 0);
	assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.events, LOOP_ERR);
	/* And out again, from a watched state this time (EPOLL_CTL_DEL). */
	assert_int_equal(loop_set_events(loop, p[0], 0), 0);
	start = loop_now_ns();
	assert_int_equal(loop_wait(loop, 50), 0);
	assert_true(loop_now_ns() >= start + 50 * MS);
	assert_int_equal(r.calls, 1);
	loop_free(loop);
	pipe_close(p);
}

/* Two readable pipes served in one batch; whichever callback runs first acts on the other.
 * In every case the other's pending event must not reach a callback; the forgotten watch's
 * memory must not be used (ASan would report it). */
enum batch_action { UNWATCH_OTHER, UNWATCH_BOTH, REWATCH_OTHER, SILENCE_OTHER, FORGET_OWNER };

struct batch {
	struct loop *loop;
	enum batch_action action;
	int fd[2];
	int calls[2];
	struct rec fresh; /* the callback REWATCH_OTHER registers */
};

static void batch_side(struct batch *b, int me)
{
	int other = !me;

	if (++b->calls[me] > 1) /* act once: later waits only count */
		return;
	switch (b->action) {
	case UNWATCH_BOTH:
		loop_unwatch(b->loop, b->fd[me]);
		/* fall through */
	case UNWATCH_OTHER:
		loop_unwatch(b->loop, b->fd[other]);
		break;
	case REWATCH_OTHER:
		loop_unwatch(b->loop, b->fd[other]);
		assert_int_equal(loop_watch(b->loop, b, b->fd[other], LOOP_IN, rec_fd, &b->fresh), 0);
		break;
	case SILENCE_OTHER:
		assert_int_equal(loop_set_events(b->loop, b->fd[other], 0), 0);
		break;
	case FORGET_OWNER:
		loop_forget(b->loop, b);
		break;
	}
}

static void batch_side0(void *opaque, unsigned events) { batch_side(opaque, 0); }
static void batch_side1(void *opaque, unsigned events) { batch_side(opaque, 1); }

static void test_unwatch_in_batch(void **state)
{
	static const struct {
		const char *what;
		enum batch_action action;
		int later; /* callbacks on the next loop_wait */
	} cases[] = {
		{ "unwatch the other", UNWATCH_OTHER, 1 },
		{ "unwatch itself, then the other", UNWATCH_BOTH, 0 },
		{ "unwatch the other and watch its fd again", REWATCH_OTHER, 2 },
		{ "set the other's interest to 0", SILENCE_OTHER, 1 },
		{ "forget the owner of both", FORGET_OWNER, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct batch b = { .loop = loop_make(), .action = cases[i].action };
		int p0[2], p1[2];

		pipe_make(p0);
		pipe_make(p1);
		b.fd[0] = p0[0];
		b.fd[1] = p1[0];
		assert_int_equal(loop_watch(b.loop, &b, b.fd[0], LOOP_IN, batch_side0, &b), 0);
		assert_int_equal(loop_watch(b.loop, &b, b.fd[1], LOOP_IN, batch_side1, &b), 0);
		put_byte(p0[1]);
		put_byte(p1[1]);
		/* Both ready before the wait: one epoll batch holds both events. */
		if (loop_wait(b.loop, EVENTUALLY_MS) != 1 || b.calls[0] + b.calls[1] != 1 ||
		    b.fresh.calls != 0)
			fail_msg("%s: calls %d + %d, fresh %d", cases[i].what, b.calls[0], b.calls[1],
				 b.fresh.calls);
		/* Still readable: what is still watched reports again. */
		if (loop_wait(b.loop, 0) != cases[i].later)
			fail_msg("%s: next wait ran the wrong number of callbacks", cases[i].what);
		if (cases[i].action == REWATCH_OTHER)
			assert_int_equal(b.fresh.calls, 1);
		loop_free(b.loop);
		pipe_close(p0);
		pipe_close(p1);
	}
}

/* No fixed limit: more than 1000 pipes watched at once (more than one epoll batch), plus one
 * descriptor with a high number (the table indexed by fd grows sparse). Each is reported once
 * its byte is there, and not again once read. */
#define MANY_PIPES 1100

struct many {
	int fd;
	int calls;
	int *total;
};

static void many_readable(void *opaque, unsigned events)
{
	struct many *m = opaque;
	char c;

	assert_int_equal(read(m->fd, &c, 1), 1);
	m->calls++;
	(*m->total)++;
}

static void test_many_watches(void **state)
{
	struct loop *loop = loop_make();
	struct many *m = calloc(MANY_PIPES + 1, sizeof(*m));
	int (*p)[2] = calloc(MANY_PIPES, sizeof(*p));
	struct rlimit rl;
	int total = 0, high = -1, high_writer = -1;

	assert_non_null(m);
	assert_non_null(p);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * MANY_PIPES + 100) {
		rl.rlim_cur = rl.rlim_max < 2 * MANY_PIPES + 4200 ? rl.rlim_max : 2 * MANY_PIPES + 4200;
		setrlimit(RLIMIT_NOFILE, &rl);
		assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < 2 * MANY_PIPES + 100) {
		free(m);
		free(p);
		loop_free(loop);
		skip();
	}
	for (int i = 0; i < MANY_PIPES; i++) {
		pipe_make(p[i]);
		m[i] = (struct many){ .fd = p[i][0], .total = &total };
		assert_int_equal(loop_watch(loop, &m, m[i].fd, LOOP_IN, many_readable, &m[i]), 0);
	}
	if (rl.rlim_cur > 4100) { /* one more pipe, its read end moved to fd 4096 */
		int hp[2];

		pipe_make(hp);
		high = dup3(hp[0], 4096, O_CLOEXEC);
		assert_int_equal(high, 4096);
		close(hp[0]);
		hp[0] = high;
		m[MANY_PIPES] = (struct many){ .fd = high, .total = &total };
		assert_int_equal(loop_watch(loop, &m, high, LOOP_IN, many_readable, &m[MANY_PIPES]), 0);
		high_writer = hp[1];
		put_byte(high_writer);
	}
	for (int i = 0; i < MANY_PIPES; i++)
		put_byte(p[i][1]);
	assert_int_equal(run_until(loop, &total, MANY_PIPES + (high >= 0)), MANY_PIPES + (high >= 0));
	for (int i = 0; i < MANY_PIPES + (high >= 0); i++)
		if (m[i].calls != 1)
			fail_msg("pipe %d: %d callbacks", i, m[i].calls);
	assert_int_equal(loop_wait(loop, 0), 0);
	loop_forget(loop, &m);
	for (int i = 0; i < MANY_PIPES; i++)
		put_byte(p[i][1]);
	assert_int_equal(loop_wait(loop, 50), 0);
	loop_free(loop);
	for (int i = 0; i < MANY_PIPES; i++)
		pipe_close(p[i]);
	if (high >= 0) {
		close(high);
		close(high_writer);
	}
	free(m);
	free(p);
}

/* ---- Timers ---- */

struct tick {
	struct loop_timer timer;
	int calls;
	uint64_t fired_ns;   /* loop_now_ns() in the last call */
	uint64_t deadline_ns; /* as armed, for the checks */
	int *order;          /* where to append @id when called, or NULL */
	int *nr_order;
	int id;
};

static void tick_fired(void *opaque)
{
	struct tick *t = opaque;

	t->calls++;
	t->fired_ns = loop_now_ns();
	if (t->order)
		t->order[(*t->nr_order)++] = t->id;
}

/* A one-shot timer fires once, not before its deadline, and eventually; the wait that runs it
 * counts it; afterwards it is disarmed. */
static void test_timer_oneshot(void **state)
{
	struct loop *loop = loop_make();
	struct tick t = { 0 };
	uint64_t armed;
	int n = 0;

	loop_timer_init(loop, &t.timer, &t, tick_fired, &t);
	assert_false(loop_timer_armed(&t.timer));
	assert_int_equal(loop_timer_deadline_ns(&t.timer), 0);
	armed = loop_now_ns();
	loop_timer_arm(&t.timer, 20 * MS, 0);
	assert_true(loop_timer_armed(&t.timer));
	assert_true(loop_timer_deadline_ns(&t.timer) >= armed + 20 * MS);
	while (!t.calls && loop_now_ns() < armed + EVENTUALLY_MS * MS)
		n += loop_wait(loop, -1); /* the timer alone ends the wait */
	assert_int_equal(t.calls, 1);
	assert_int_equal(n, 1);
	assert_true(t.fired_ns >= armed + 20 * MS);
	assert_false(loop_timer_armed(&t.timer));
	assert_int_equal(loop_timer_deadline_ns(&t.timer), 0);
	assert_int_equal(loop_wait(loop, 50), 0);
	assert_int_equal(t.calls, 1);
	loop_free(loop);
}

/* Timers with different deadlines fire in deadline order, not arming order, each not before
 * its own deadline. */
static void test_timer_order(void **state)
{
	static const unsigned delay_ms[] = { 30, 10, 20, 0, 25, 5, 15 };
	enum { N = sizeof(delay_ms) / sizeof(delay_ms[0]) };
	static const int want[N] = { 3, 5, 1, 6, 2, 4, 0 };
	struct loop *loop = loop_make();
	struct tick t[N];
	int order[N], nr = 0;
	uint64_t armed[N];

	for (int i = 0; i < N; i++) {
		t[i] = (struct tick){ .order = order, .nr_order = &nr, .id = i };
		loop_timer_init(loop, &t[i].timer, loop, tick_fired, &t[i]);
		armed[i] = loop_now_ns();
		loop_timer_arm(&t[i].timer, delay_ms[i] * MS, 0);
	}
	assert_int_equal(run_until(loop, &nr, N), N);
	assert_memory_equal(order, want, sizeof(want));
	for (int i = 0; i < N; i++) {
		assert_int_equal(t[i].calls, 1);
		assert_true(t[i].fired_ns >= armed[i] + delay_ms[i] * MS);
	}
	loop_free(loop);
}

/* A periodic timer fires repeatedly and keeps its phase: each next deadline is the previous
 * one plus the period (unless the loop fell a whole period behind), never before it is due. */
struct phase {
	struct loop_timer timer;
	uint64_t period, prev; /* deadline of the call now running */
	int calls, kept;
};

static void phase_fired(void *opaque)
{
	struct phase *ph = opaque;
	uint64_t now = loop_now_ns(), next = loop_timer_deadline_ns(&ph->timer);

	assert_true(now >= ph->prev);              /* not early */
	assert_true(loop_timer_armed(&ph->timer)); /* periodic: still armed in its callback */
	if (ph->prev + ph->period > now) {         /* did not fall behind: phase kept exactly */
		assert_true(next == ph->prev + ph->period);
		ph->kept++;
	} else { /* maybe fell behind (then now + period, no burst): depends on when it ran */
		assert_true(next == ph->prev + ph->period ||
			    (next > ph->prev + ph->period && next <= now + ph->period));
	}
	ph->prev = next;
	ph->calls++;
}

static void test_timer_periodic_phase(void **state)
{
	struct loop *loop = loop_make();
	struct phase ph = { .period = 20 * MS };

	loop_timer_init(loop, &ph.timer, &ph, phase_fired, &ph);
	loop_timer_arm(&ph.timer, ph.period, ph.period);
	ph.prev = loop_timer_deadline_ns(&ph.timer);
	assert_int_equal(run_until(loop, &ph.calls, 6), 6);
	assert_true(ph.kept > 0); /* at least some periods were on time, even on a busy machine */
	loop_timer_cancel(&ph.timer);
	loop_free(loop);
}

/* A periodic timer whose loop falls behind by several periods fires once, then resumes one
 * period later: no burst of catch-up calls. */
struct slow {
	struct loop_timer timer;
	int calls;
	uint64_t first_deadline, second_next;
};

#define SLOW_PERIOD (100 * MS)
#define SLOW_STALL_MS 350

static void slow_fired(void *opaque)
{
	struct slow *s = opaque;

	if (++s->calls == 1)
		sleep_ms(SLOW_STALL_MS); /* the loop falls three periods behind */
	else if (s->calls == 2)
		s->second_next = loop_timer_deadline_ns(&s->timer);
}

static void test_timer_no_burst(void **state)
{
	struct loop *loop = loop_make();
	struct slow s = { 0 };

	loop_timer_init(loop, &s.timer, &s, slow_fired, &s);
	loop_timer_arm(&s.timer, 0, SLOW_PERIOD);
	s.first_deadline = loop_timer_deadline_ns(&s.timer);
	assert_int_equal(run_until(loop, &s.calls, 2), 2);
	/* The second call was the one late period; the next one is a period after it, not at
	 * first + 2 periods (which would be a burst). */
	assert_true(s.second_next >= s.first_deadline + SLOW_STALL_MS * MS + SLOW_PERIOD);
	loop_timer_cancel(&s.timer);
	loop_free(loop);
}

/* Re-arming replaces the schedule: sooner, later, and periodic to one-shot. */
static void test_timer_rearm(void **state)
{
	struct loop *loop = loop_make();
	struct tick t = { 0 };
	uint64_t armed;

	loop_timer_init(loop, &t.timer, &t, tick_fired, &t);
	/* Sooner: 10 s becomes 10 ms, fires once. */
	loop_timer_arm(&t.timer, 10000 * MS, 0);
	armed = loop_now_ns();
	loop_timer_arm(&t.timer, 10 * MS, 0);
	assert_int_equal(run_until(loop, &t.calls, 1), 1);
	assert_true(t.fired_ns >= armed + 10 * MS);
	assert_false(loop_timer_armed(&t.timer));
	/* Later: 10 ms becomes 150 ms, not early. */
	loop_timer_arm(&t.timer, 10 * MS, 0);
	armed = loop_now_ns();
	loop_timer_arm(&t.timer, 150 * MS, 0);
	assert_int_equal(run_until(loop, &t.calls, 2), 2);
	assert_true(t.fired_ns >= armed + 150 * MS);
	/* Periodic becomes one-shot: fires once, then never again. */
	loop_timer_arm(&t.timer, 5 * MS, 5 * MS);
	loop_timer_arm(&t.timer, 10 * MS, 0);
	assert_int_equal(run_until(loop, &t.calls, 3), 3);
	assert_false(loop_timer_armed(&t.timer));
	assert_int_equal(loop_wait(loop, 50), 0);
	assert_int_equal(t.calls, 3);
	loop_free(loop);
}

/* Cancelling: a periodic timer stops itself from its own callback; a timer cancels another
 * that is due in the same round (it does not run); cancelling an idle timer does nothing. */
struct canceller {
	struct loop_timer timer;
	int calls, stop_after;
	struct loop_timer *victim;
};

static void canceller_fired(void *opaque)
{
	struct canceller *c = opaque;

	if (++c->calls == c->stop_after)
		loop_timer_cancel(&c->timer);
	if (c->victim)
		loop_timer_cancel(c->victim);
}

static void test_timer_cancel(void **state)
{
	struct loop *loop = loop_make();
	struct canceller self = { .stop_after = 3 }, killer = { .stop_after = 1 };
	struct tick victim = { 0 };

	loop_timer_init(loop, &self.timer, &self, canceller_fired, &self);
	loop_timer_cancel(&self.timer); /* idle: nothing */
	loop_timer_arm(&self.timer, 5 * MS, 5 * MS);
	assert_int_equal(run_until(loop, &self.calls, 3), 3);
	assert_false(loop_timer_armed(&self.timer));
	assert_int_equal(loop_wait(loop, 50), 0);
	assert_int_equal(self.calls, 3);

	/* Both due in the same round; the killer's deadline is earlier, so it runs first. */
	killer.victim = &victim.timer;
	loop_timer_init(loop, &killer.timer, &killer, canceller_fired, &killer);
	loop_timer_init(loop, &victim.timer, &victim, tick_fired, &victim);
	loop_timer_arm(&killer.timer, 0, 0);
	loop_timer_arm(&victim.timer, 0, 0);
	sleep_ms(2);
	assert_int_equal(loop_wait(loop, 0), 1);
	assert_int_equal(killer.calls, 1);
	assert_int_equal(victim.calls, 0);
	assert_false(loop_timer_armed(&victim.timer));
	loop_free(loop);
}

/* A timer callback arms another timer (and itself) with delay 0: they fire on the next wait,
 * not in the same round, so a callback re-arming itself at once cannot keep loop_wait busy.
 * A watch callback arming a timer with delay 0 gets it run in the same wait. */
struct chain {
	struct loop_timer timer;
	int calls, rearm;
	struct loop_timer *next;
};

static void chain_fired(void *opaque)
{
	struct chain *c = opaque;

	c->calls++;
	if (c->next)
		loop_timer_arm(c->next, 0, 0);
	if (c->rearm-- > 0)
		loop_timer_arm(&c->timer, 0, 0);
}

static void arm_from_watch(void *opaque, unsigned events)
{
	loop_timer_arm(opaque, 0, 0);
}

static void test_timer_arms_timer(void **state)
{
	struct loop *loop = loop_make();
	struct chain a = { 0 }, b = { 0 }, self = { .rearm = 4 };
	struct tick t = { 0 };
	int p[2];

	loop_timer_init(loop, &a.timer, &a, chain_fired, &a);
	loop_timer_init(loop, &b.timer, &b, chain_fired, &b);
	a.next = &b.timer;
	loop_timer_arm(&a.timer, 0, 0);
	assert_int_equal(loop_wait(loop, 0), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
	assert_true(loop_timer_armed(&b.timer));
	assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 1);
	assert_int_equal(b.calls, 1);

	loop_timer_init(loop, &self.timer, &self, chain_fired, &self);
	loop_timer_arm(&self.timer, 0, 0);
	for (int i = 1; i <= 5; i++) {
		assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 1);
		assert_int_equal(self.calls, i);
	}
	assert_false(loop_timer_armed(&self.timer));

	pipe_make(p);
	loop_timer_init(loop, &t.timer, &t, tick_fired, &t);
	assert_int_equal(loop_watch(loop, &t, p[0], LOOP_IN, arm_from_watch, &t.timer), 0);
	put_byte(p[1]);
	assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 2);
	assert_int_equal(t.calls, 1);
	loop_free(loop);
	pipe_close(p);
}

/* Thousands of timers (the heap grows past any small limit) with pseudo-random deadlines; half
 * forgotten by owner, then some cancelled and some re-armed (forgotten ones included, which
 * arms them again): each armed one fires exactly once, not before its deadline, and all fire
 * in deadline order. A second round has them all due at once, so that one loop_wait() pops the
 * whole heap: any broken heap order shows. */
#define MANY_TIMERS 5000

static uint32_t lcg(uint32_t *rnd)
{
	*rnd = *rnd * 1103515245u + 12345u;
	return *rnd >> 8;
}

/* Check @t[0..MANY_TIMERS) fired as @armed says, in deadline order (@order, @nr calls). */
static void many_check(const struct tick *t, const bool *armed, const int *order, int nr)
{
	for (int i = 0; i < MANY_TIMERS; i++) {
		if (t[i].calls != armed[i])
			fail_msg("timer %d: %d calls, armed %d", i, t[i].calls, armed[i]);
		if (t[i].calls && t[i].fired_ns < t[i].deadline_ns)
			fail_msg("timer %d: early", i);
	}
	for (int i = 1; i < nr; i++)
		if (t[order[i]].deadline_ns < t[order[i - 1]].deadline_ns)
			fail_msg("call %d: timer %d (deadline %llu) after timer %d (deadline %llu)", i,
				 order[i], (unsigned long long)t[order[i]].deadline_ns, order[i - 1],
				 (unsigned long long)t[order[i - 1]].deadline_ns);
}

static void test_many_timers(void **state)
{
	struct loop *loop = loop_make();
	struct tick *t = calloc(MANY_TIMERS, sizeof(*t));
	int *order = calloc(MANY_TIMERS, sizeof(*order));
	bool *armed = calloc(MANY_TIMERS, sizeof(*armed));
	int owner[2], nr = 0, want = 0;
	uint32_t rnd = 12345;

	assert_non_null(t);
	assert_non_null(order);
	assert_non_null(armed);
	for (int i = 0; i < MANY_TIMERS; i++) {
		t[i] = (struct tick){ .order = order, .nr_order = &nr, .id = i };
		loop_timer_init(loop, &t[i].timer, &owner[i % 2], tick_fired, &t[i]);
		loop_timer_arm(&t[i].timer, lcg(&rnd) % (40 * MS), 0);
		armed[i] = i % 2 == 0;
	}
	loop_forget(loop, &owner[1]); /* before the cancels: it rebuilds the heap */
	for (int i = 0; i < MANY_TIMERS; i++) {
		if (i % 7 == 0) {
			loop_timer_cancel(&t[i].timer);
			armed[i] = false;
		} else if (i % 5 == 0) {
			loop_timer_arm(&t[i].timer, lcg(&rnd) % (40 * MS), 0);
			armed[i] = true;
		}
	}
	for (int i = 0; i < MANY_TIMERS; i++) {
		assert_int_equal(loop_timer_armed(&t[i].timer), armed[i]);
		t[i].deadline_ns = loop_timer_deadline_ns(&t[i].timer);
		want += armed[i];
	}
	assert_int_equal(run_until(loop, &nr, want), want);
	assert_int_equal(loop_wait(loop, 50), 0);
	many_check(t, armed, order, nr);

	/* All due at once: arm within 5 ms, cancel a third, wait past every deadline, then one
	 * round runs them all. */
	nr = want = 0;
	for (int i = 0; i < MANY_TIMERS; i++) {
		t[i].calls = 0;
		loop_timer_arm(&t[i].timer, lcg(&rnd) % (5 * MS), 0);
	}
	for (int i = 0; i < MANY_TIMERS; i++) {
		armed[i] = lcg(&rnd) % 3 != 0;
		if (!armed[i])
			loop_timer_cancel(&t[i].timer);
		t[i].deadline_ns = loop_timer_deadline_ns(&t[i].timer);
		want += armed[i];
	}
	sleep_ms(10);
	assert_int_equal(loop_wait(loop, 0), want);
	many_check(t, armed, order, nr);
	loop_free(loop);
	free(armed);
	free(order);
	free(t);
}

/* loop_free() disarms the timers still armed (so a later cancel is harmless). */
static void test_free_disarms(void **state)
{
	struct loop *loop = loop_make();
	struct tick t = { 0 };

	loop_timer_init(loop, &t.timer, &t, tick_fired, &t);
	loop_timer_arm(&t.timer, 1000 * MS, 0);
	loop_free(loop);
	assert_false(loop_timer_armed(&t.timer));
	loop_timer_cancel(&t.timer);
	assert_int_equal(t.calls, 0);
}

/* ---- Pollers ---- */

struct pol {
	int fd;           /* to ask for, @want times (the same fd may appear repeatedly) */
	unsigned want;
	int set_timeout;  /* lower *timeout_ms to this, or leave it when < 0 */
	int prepares, dispatches;
	int saw_timeout;  /* *timeout_ms as prepare() received it */
	unsigned offered; /* @max of the last prepare() */
	unsigned got;     /* n of the last dispatch() */
	short revents;    /* of its first entry */
	struct loop *loop;
	const void *forget; /* owner to forget in dispatch(), or NULL */
};

static unsigned pol_prepare(void *opaque, struct pollfd *fds, unsigned max, int *timeout_ms)
{
	struct pol *p = opaque;
	unsigned n = p->want < max ? p->want : max;

	p->prepares++;
	p->offered = max;
	p->saw_timeout = *timeout_ms;
	for (unsigned i = 0; i < n; i++)
		fds[i] = (struct pollfd){ .fd = p->fd, .events = POLLIN };
	if (p->set_timeout >= 0 && (*timeout_ms < 0 || p->set_timeout < *timeout_ms))
		*timeout_ms = p->set_timeout;
	return n;
}

static void pol_dispatch(void *opaque, const struct pollfd *fds, unsigned n)
{
	struct pol *p = opaque;

	p->dispatches++;
	p->got = n;
	p->revents = n ? fds[0].revents : 0;
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(fds[i].fd, p->fd);
	if (p->forget)
		loop_forget(p->loop, p->forget);
}

static int pol_add(struct loop *loop, struct pol *p)
{
	p->loop = loop;
	return loop_add_poller(loop, p, &(struct loop_poller){ .prepare = pol_prepare,
							       .dispatch = pol_dispatch, .opaque = p });
}

/* A poller's cycle with a pipe: prepare, then dispatch with the pipe's revents; alongside, an
 * ordinary watch is still served (and only it is counted by loop_wait). */
static void test_poller_cycle(void **state)
{
	struct loop *loop = loop_make();
	struct pol p = { .want = 1, .set_timeout = -1 };
	struct rec r = { 0 };
	int a[2], b[2];
	char c;

	pipe_make(a);
	pipe_make(b);
	p.fd = a[0];
	assert_int_equal(pol_add(loop, &p), 0);
	assert_int_equal(loop_watch(loop, &r, b[0], LOOP_IN, rec_fd, &r), 0);
	assert_int_equal(loop_wait(loop, 0), 0);
	assert_int_equal(p.prepares, 1);
	assert_int_equal(p.dispatches, 1);
	assert_int_equal(p.got, 1);
	assert_int_equal(p.revents, 0);
	put_byte(a[1]);
	assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 0); /* dispatches are not counted */
	assert_int_equal(p.dispatches, 2);
	assert_int_equal(p.revents, POLLIN);
	assert_int_equal(read(a[0], &c, 1), 1);
	put_byte(b[1]);
	assert_int_equal(loop_wait(loop, EVENTUALLY_MS), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(p.dispatches, 3);
	assert_int_equal(p.revents, 0);
	loop_free(loop);
	pipe_close(a);
	pipe_close(b);
}

/* A poller's timeout lowers the wait: loop_wait(5 s) with a poller asking for 30 ms returns
 * after 30 ms, well before 5 s; a due timer lowers the timeout the poller sees to 0, and an
 * armed one ends a poll() that has no timeout of its own. */
static void test_poller_timeout(void **state)
{
	struct loop *loop = loop_make();
	struct pol p = { .fd = -1, .set_timeout = 30 };
	struct tick t = { 0 };
	uint64_t start;

	assert_int_equal(pol_add(loop, &p), 0);
	start = loop_now_ns();
	assert_int_equal(loop_wait(loop, 5000), 0);
	assert_int_equal(p.saw_timeout, 5000);
	assert_true(loop_now_ns() >= start + 30 * MS);
	assert_true(loop_now_ns() < start + EVENTUALLY_MS * MS);

	loop_timer_init(loop, &t.timer, &t, tick_fired, &t);
	loop_timer_arm(&t.timer, 0, 0);
	assert_int_equal(loop_wait(loop, 5000), 1);
	assert_int_equal(p.saw_timeout, 0);

	p.set_timeout = -1;
	start = loop_now_ns();
	loop_timer_arm(&t.timer, 20 * MS, 0);
	assert_int_equal(loop_wait(loop, 5000), 1);
	assert_int_equal(t.calls, 2);
	assert_true(t.fired_ns >= start + 20 * MS);
	assert_true(loop_now_ns() < start + EVENTUALLY_MS * MS);
	loop_free(loop);
}

/* No fixed limit on pollers or their descriptors: a poller wanting 3000 entries is offered
 * more each time it fills its offer until all fit; many pollers coexist. A poller that forgets
 * itself from its dispatch is never called again, one forgotten by an earlier poller's dispatch
 * is not dispatched even in that same turn, and the others go on. */
static void test_poller_growth(void **state)
{
	enum { NR = 20 };
	struct loop *loop = loop_make();
	struct pol big = { .want = 3000, .set_timeout = -1 }, small[NR];
	int p[2], turns = 0;

	pipe_make(p);
	big.fd = p[0];
	assert_int_equal(pol_add(loop, &big), 0);
	for (int i = 0; i < NR; i++) {
		small[i] = (struct pol){ .fd = p[0], .want = 2, .set_timeout = -1 };
		assert_int_equal(pol_add(loop, &small[i]), 0);
	}
	small[7].forget = &small[7];
	small[3].forget = &small[4];
	put_byte(p[1]);
	while (big.got < big.want && turns++ < 20)
		assert_int_equal(loop_wait(loop, 0), 0);
	assert_int_equal(big.got, 3000);
	assert_int_equal(big.revents, POLLIN);
	assert_int_equal(small[4].prepares, 1);
	assert_int_equal(small[4].dispatches, 0);
	for (int i = 0; i < NR; i++) {
		if (i == 4)
			continue;
		assert_int_equal(small[i].prepares, i == 7 ? 1 : turns);
		assert_int_equal(small[i].dispatches, i == 7 ? 1 : turns);
		assert_int_equal(small[i].got, 2);
		assert_int_equal(small[i].revents, POLLIN);
	}
	loop_free(loop);
	pipe_close(p);
}

/* ---- Owners and the wait itself ---- */

/* loop_forget(owner) drops that owner's watches, pollers and armed timers, and nothing of
 * another owner's; from inside one of the owner's own callbacks, its other watch's pending
 * event and its due timer do not run either. */
struct owned {
	struct loop *loop;
	struct rec w[2];
	struct tick timer, periodic;
	struct pol pol;
	bool forget_in_callback;
};

static void owned_fd(void *opaque, unsigned events)
{
	struct rec *r = opaque;

	r->calls++;
}

static void owned_forgetting_fd(void *opaque, unsigned events)
{
	struct owned *o = opaque;

	o->w[0].calls++; /* counts for both of o's watches */
	loop_forget(o->loop, o);
}

static void test_forget_owner(void **state)
{
	for (int inside = 0; inside < 2; inside++) {
		struct loop *loop = loop_make();
		struct owned x = { .loop = loop }, y = { .loop = loop };
		int px[2][2], py[2];

		x.pol = (struct pol){ .fd = -1, .set_timeout = -1 };
		y.pol = (struct pol){ .fd = -1, .set_timeout = -1 };
		pipe_make(px[0]);
		pipe_make(px[1]);
		pipe_make(py);
		/* x: two watches (each forgets x when @inside: whichever runs first), a poller,
		 * two timers. */
		for (int i = 0; i < 2; i++)
			assert_int_equal(loop_watch(loop, &x, px[i][0], LOOP_IN,
						    inside ? owned_forgetting_fd : owned_fd,
						    inside ? (void *)&x : (void *)&x.w[i]), 0);
		assert_int_equal(loop_add_poller(loop, &x, &(struct loop_poller){
				.prepare = pol_prepare, .dispatch = pol_dispatch, .opaque = &x.pol }), 0);
		loop_timer_init(loop, &x.timer.timer, &x, tick_fired, &x.timer);
		loop_timer_init(loop, &x.periodic.timer, &x, tick_fired, &x.periodic);
		loop_timer_arm(&x.timer.timer, 0, 0);
		loop_timer_arm(&x.periodic.timer, 0, 1 * MS);
		/* y: one of each. */
		assert_int_equal(loop_watch(loop, &y, py[0], LOOP_IN, owned_fd, &y.w[0]), 0);
		assert_int_equal(loop_add_poller(loop, &y, &(struct loop_poller){
				.prepare = pol_prepare, .dispatch = pol_dispatch, .opaque = &y.pol }), 0);
		loop_timer_init(loop, &y.timer.timer, &y, tick_fired, &y.timer);
		loop_timer_arm(&y.timer.timer, 0, 0);
		put_byte(px[0][1]);
		put_byte(px[1][1]);
		put_byte(py[1]);
		if (!inside)
			loop_forget(loop, &x);
		for (int i = 0; i < 3; i++)
			assert_true(loop_wait(loop, i ? 20 : EVENTUALLY_MS) >= 0);
		if (inside) {
			/* x's first watch ran (its callback forgot x), its poller ran in that
			 * first wait, before the watches; nothing of x after that. */
			assert_int_equal(x.w[0].calls + x.w[1].calls, 1);
			assert_int_equal(x.pol.dispatches, 1);
		} else {
			assert_int_equal(x.w[0].calls + x.w[1].calls, 0);
			assert_int_equal(x.pol.prepares, 0);
		}
		assert_int_equal(x.timer.calls + x.periodic.calls, 0);
		assert_false(loop_timer_armed(&x.timer.timer));
		assert_false(loop_timer_armed(&x.periodic.timer));
		assert_int_equal(y.w[0].calls, 3); /* unread: reported on every wait */
		assert_int_equal(y.pol.dispatches, 3);
		assert_int_equal(y.timer.calls, 1);
		loop_free(loop);
		pipe_close(px[0]);
		pipe_close(px[1]);
		pipe_close(py);
	}
}

/* loop_wait() is not reentrant: from a callback it refuses with -EDEADLK. */
struct nested {
	struct loop *loop;
	int calls;
};

static void nested_wait(void *opaque, unsigned events)
{
	struct nested *n = opaque;

	n->calls++;
	assert_int_equal(loop_wait(n->loop, 0), -EDEADLK);
}

static void test_wait_not_reentrant(void **state)
{
	struct nested n = { .loop = loop_make() };
	int p[2];

	pipe_make(p);
	assert_int_equal(loop_watch(n.loop, &n, p[0], LOOP_IN, nested_wait, &n), 0);
	put_byte(p[1]);
	assert_int_equal(loop_wait(n.loop, EVENTUALLY_MS), 1);
	assert_int_equal(n.calls, 1);
	loop_free(n.loop);
	pipe_close(p);
}

/* ---- Hang-up interest and tasks ---- */

/* LOOP_HUP: data on the socket wakes nobody; the peer going away does, as LOOP_ERR. */
static void test_hup_interest(void **state)
{
	struct loop *loop = loop_make();
	struct rec r = { 0 };
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(loop_watch(loop, &r, sv[0], LOOP_HUP, rec_fd, &r), 0);
	put_byte(sv[1]);
	assert_int_equal(loop_wait(loop, 50), 0);
	assert_int_equal(r.calls, 0);
	close(sv[1]);
	assert_int_equal(run_until(loop, &r.calls, 1), 1);
	assert_int_equal(r.events, LOOP_ERR);
	loop_unwatch(loop, sv[0]);
	close(sv[0]);
	loop_free(loop);
}

struct task_rec {
	struct loop_task task;
	int runs;
};

static void task_run(void *opaque) { ((struct task_rec *)opaque)->runs++; }

static void *schedule_twice(void *opaque)
{
	struct task_rec *t = opaque;

	loop_task_schedule(&t->task);
	loop_task_schedule(&t->task); /* still scheduled: one run */
	return NULL;
}

/* A task scheduled from another thread wakes a loop waiting without a timeout, and runs once on
 * the loop's thread; cancelled or forgotten, it does not run. */
static void test_tasks(void **state)
{
	struct loop *loop = loop_make();
	struct task_rec a = { 0 }, b = { 0 };
	pthread_t thread;

	loop_task_init(loop, &a.task, &a, task_run, &a);
	loop_task_init(loop, &b.task, &b, task_run, &b);
	assert_int_equal(pthread_create(&thread, NULL, schedule_twice, &a), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(loop_wait(loop, -1), 1);
	assert_int_equal(a.runs, 1);
	assert_int_equal(loop_wait(loop, 20), 0);
	assert_int_equal(a.runs, 1);
	/* Cancelled, then scheduled again: one run. */
	loop_task_schedule(&a.task);
	loop_task_cancel(&a.task);
	loop_task_schedule(&b.task);
	assert_int_equal(run_until(loop, &b.runs, 1), 1);
	assert_int_equal(a.runs, 1);
	/* Forgetting its owner unschedules it. */
	loop_task_schedule(&a.task);
	loop_forget(loop, &a);
	assert_int_equal(loop_wait(loop, 20), 0);
	assert_int_equal(a.runs, 1);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_errors),
		cmocka_unit_test(test_read_interest),
		cmocka_unit_test(test_write_interest),
		cmocka_unit_test(test_interest_table),
		cmocka_unit_test(test_events_zero_hides_hangup),
		cmocka_unit_test(test_unwatch_in_batch),
		cmocka_unit_test(test_many_watches),
		cmocka_unit_test(test_timer_oneshot),
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_periodic_phase),
		cmocka_unit_test(test_timer_no_burst),
		cmocka_unit_test(test_timer_rearm),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_arms_timer),
		cmocka_unit_test(test_many_timers),
		cmocka_unit_test(test_free_disarms),
		cmocka_unit_test(test_poller_cycle),
		cmocka_unit_test(test_poller_timeout),
		cmocka_unit_test(test_poller_growth),
		cmocka_unit_test(test_forget_owner),
		cmocka_unit_test(test_wait_not_reentrant),
		cmocka_unit_test(test_hup_interest),
		cmocka_unit_test(test_tasks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
