/* SPDX-License-Identifier: Apache-2.0 */
/* migrate — live migration between two kiln processes, see include/kiln/vm.h; the connection
 * (TCP or an inherited socket, TLS or plain) is include/kiln/mig_channel.h's.
 *
 * The source streams records (struct mig_rec, little-endian) to the destination:
 *   HELLO  a = guest memory bytes, b = snapshot format version
 *   CONFIG b = bytes, then the VM's configuration (the text the state's "config" section
 *          repeats), so that the destination makes the machine while pre-copy runs; a
 *          destination takes a stream without it (an older source) and makes it at STATE
 *   PAGES  a = offset into guest memory, b = bytes (whole pages, at most MIG_RUN_BYTES), data
 *   STATE  b = bytes, then a snapshot image (include/kiln/snapshot.h) of the paused VM
 * and the destination answers one byte: 'K' once the VM is restored and running there, 'F'
 * if it could not be. Iterative pre-copy: round 0 sends every non-zero page while the guest
 * runs, with dirty logging on (KVM's log for the guest's writes, guest_mem_mark_dirty() for
 * kiln's); each later round sends the pages dirtied during the previous one, until a round is
 * small (MIG_LAST_ROUND_PAGES) or MIG_MAX_ROUNDS have passed. Then stop and copy: the vCPUs
 * pause, the last dirty pages and the state go, and the source ends (VM_STOP_MIGRATED) on 'K'
 * or resumes the guest on anything else. Downtime runs from the pause to the 'K'.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kiln/log.h"
#include "kiln/mig_channel.h"
#include "kiln/seccomp.h"
#include "kiln/thread.h"
#include "kiln/snapshot.h"
#include "vm_internal.h"

#define PAGE 4096ull
#define MIG_RUN_BYTES (1ull << 20)
#define MIG_MAX_ROUNDS 30
#define MIG_LAST_ROUND_PAGES 1024      /* 4 MiB: what the stop-and-copy round may carry */
#define MIG_STATE_MAX (1ull << 30)
#define MIG_ACK_TIMEOUT_S 120      /* the destination's restore, before its answer */

#define MIG_MAGIC 0x4d4e4c4bu /* "KLNM", in every record's flags */

enum { MIG_HELLO = 1, MIG_PAGES = 2, MIG_STATE = 3, MIG_CONFIG = 4 };
#define MIG_CONFIG_MAX (1u << 20)

struct mig_rec {
	uint32_t type, flags;
	uint64_t a, b;
};

struct vm_migration {
	pthread_t thread;
	struct mig_creds *creds;
	struct mig_channel *ch;          /* connected; secured by the thread */
	char host[256];                  /* the destination's name, for its certificate */
	struct loop_task final;          /* the thread asks the loop for the stop-and-copy round */
	bool final_done;                 /* under lock: the loop did it ... */
	int final_ret;                   /* ... with this result */
	char final_err[256];
	uint64_t paused_at;
	/* The downtime's parts (µs after paused_at): device and vCPU state saved, the last dirty
	 * pages sent, the state sent; the rest is the destination's restore and answer. */
	uint64_t saved_us, pages_us, state_us, state_bytes;
	pthread_cond_t final_cond;
	char *config;
	size_t config_len;
	pthread_mutex_t lock;            /* status */
	struct vm_migration_status status;
};

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

static int send_rec(struct mig_channel *ch, uint32_t type, uint64_t a, uint64_t b,
		    const void *data)
{
	struct mig_rec r = { .type = type, .flags = MIG_MAGIC, .a = a, .b = b };
	struct iovec iov[2] = { { &r, sizeof(r) }, { (void *)data, data ? b : 0 } };

	return mig_channel_send(ch, iov, data ? 2 : 1);
}

static int emit_pages(void *ctx, const uint8_t *p, uint64_t off, uint64_t len)
{
	return send_rec(ctx, MIG_PAGES, off, len, p);
}

/* One pass: every non-zero page (@dirty false) or every page dirtied since the last pass. */
static int64_t send_pages(struct vm *vm, struct mig_channel *ch, bool dirty)
{
	return vm_page_runs(vm, dirty, MIG_RUN_BYTES, emit_pages, ch);
}

static uint64_t count_dirty(const struct vm *vm)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (vm->mem.size / PAGE + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(__atomic_load_n(&vm->dirty[w], __ATOMIC_RELAXED));
	return n;
}

/* Dirty logging on, if the VM was not made with it, and both logs cleared. */
static int start_dirty_log(struct vm *vm)
{
	int ret;

	if (!vm->track_dirty) {
		uint64_t *dirty = calloc((vm->mem.size / PAGE + 63) / 64, sizeof(uint64_t));

		if (!dirty)
			return -ENOMEM;
		vm->dirty = dirty;
		vm->mem.dirty = dirty;
		if ((ret = vm_set_memory_slots(vm, true)))
			return ret;
		vm->track_dirty = true;
	}
	vm->diff_ready = false; /* the bitmap is the migration's now: a Diff needs a Full first */
	ret = vm_collect_dirty(vm);
	memset(vm->dirty, 0, (vm->mem.size / PAGE + 63) / 64 * sizeof(uint64_t));
	return ret;
}

static void set_status(struct vm_migration *m, int state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_status(struct vm_migration *m, int state, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	m->status.state = state;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(m->status.error, sizeof(m->status.error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&m->lock);
}

static void account(struct vm_migration *m, int64_t pages)
{
	pthread_mutex_lock(&m->lock);
	m->status.rounds++;
	m->status.bytes += (uint64_t)pages * PAGE;
	m->status.last_round_pages = (uint64_t)pages;
	pthread_mutex_unlock(&m->lock);
}

/* Stop and copy, on the event loop thread so that no device runs meanwhile: pause, finish the
 * devices' requests (save the state), then the pages dirtied since the last round and the
 * state. The thread then waits for the destination's answer. */
static void final_round(void *opaque)
{
	struct vm *vm = opaque;
	struct vm_migration *m = vm->migration;
	struct snap_writer w = { 0 };
	uint8_t *image = NULL;
	char err[256] = "";
	size_t len = 0;
	int64_t pages = 0;
	int ret;

	ret = vm_pause(vm);
	if (ret)
		snprintf(err, sizeof(err), "a vCPU did not pause");
	m->paused_at = now_us();
	if (!ret)
		ret = vm_save_state(vm, m->config, m->config_len, &w, err, sizeof(err));
	m->saved_us = now_us() - m->paused_at;
	if (!ret && (ret = vm_collect_dirty(vm)))
		snprintf(err, sizeof(err), "KVM_GET_DIRTY_LOG: %s", strerror(-ret));
	if (!ret && (pages = send_pages(vm, m->ch, true)) < 0) {
		ret = (int)pages;
		snprintf(err, sizeof(err), "last round: %s", strerror(-ret));
	}
	m->pages_us = now_us() - m->paused_at;
	if (!ret && (ret = snap_writer_image(&w, &image, &len))) {
		if (ret == -EINVAL)
			snprintf(err, sizeof(err), "state section \"%s\" is invalid", w.invalid_name);
		else
			snprintf(err, sizeof(err), "out of memory");
	}
	if (!ret && (ret = send_rec(m->ch, MIG_STATE, 0, len, image)))
		snprintf(err, sizeof(err), "sending the state: %s", strerror(-ret));
	m->state_us = now_us() - m->paused_at;
	m->state_bytes = len;
	free(image);
	snap_writer_free(&w);
	if (!ret)
		account(m, pages);
	pthread_mutex_lock(&m->lock);
	m->final_done = true;
	m->final_ret = ret;
	snprintf(m->final_err, sizeof(m->final_err), "%s", err);
	pthread_cond_signal(&m->final_cond);
	pthread_mutex_unlock(&m->lock);
}

/* Ask the loop for the final round, wait for it and for the destination's 'K'. */
static int stop_and_copy(struct vm_migration *m, char *err, size_t errlen)
{
	uint8_t ack = 0;

	loop_task_schedule(&m->final);
	pthread_mutex_lock(&m->lock);
	while (!m->final_done)
		pthread_cond_wait(&m->final_cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	if (m->final_ret) {
		snprintf(err, errlen, "%s", m->final_err);
		return m->final_ret;
	}
	if (mig_channel_wait(m->ch, MIG_ACK_TIMEOUT_S) || mig_channel_recv(m->ch, &ack, 1) ||
	    ack != 'K') {
		snprintf(err, errlen, "the destination did not take the VM (%s)",
			 ack == 'F' ? "its restore failed" : "no answer");
		return -EIO;
	}
	return 0;
}

static void *migrate_thread(void *arg)
{
	struct vm *vm = arg;
	struct vm_migration *m = vm->migration;
	uint64_t t0 = now_us();
	char err[512] = "";
	int64_t pages;
	int ret;

	log_set_thread_name("migrate");
	/* The destination's answer is awaited here, not on the event loop (PUT /migrate). */
	ret = mig_channel_connected(m->ch, err, sizeof(err));
	seccomp_enter(SECCOMP_WORKER);
	if (!ret)
		ret = mig_channel_handshake(m->ch, m->host, err, sizeof(err));
	if (!ret)
		ret = send_rec(m->ch, MIG_HELLO, vm->mem.size, SNAP_FORMAT_VERSION, NULL);
	if (!ret && m->config_len && m->config_len <= MIG_CONFIG_MAX)
		ret = send_rec(m->ch, MIG_CONFIG, 0, m->config_len, m->config);
	if (!ret && (ret = start_dirty_log(vm)))
		snprintf(err, sizeof(err), "dirty logging: %s", strerror(-ret));
	for (unsigned round = 0; !ret && round < MIG_MAX_ROUNDS; round++) {
		if (round && ((ret = vm_collect_dirty(vm)) || count_dirty(vm) <= MIG_LAST_ROUND_PAGES))
			break;
		pages = send_pages(vm, m->ch, round > 0);
		if (pages < 0)
			ret = (int)pages;
		else
			account(m, pages);
	}
	if (ret && !err[0])
		snprintf(err, sizeof(err), "pre-copy: %s", strerror(-ret));
	if (ret) {
		set_status(m, VM_MIGRATION_FAILED, "%s", err);
		log_err("migration failed: %s", err);
		return NULL;
	}
	if (stop_and_copy(m, err, sizeof(err))) {
		vm_resume(vm); /* the guest carries on here */
		set_status(m, VM_MIGRATION_FAILED, "%s", err);
		log_err("migration failed, the guest continues here: %s", err);
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	m->status.downtime_us = now_us() - m->paused_at;
	m->status.total_us = now_us() - t0;
	m->status.state = VM_MIGRATION_COMPLETED;
	log_info("migration completed: %" PRIu64 " us in all, downtime %" PRIu64 " us, %u rounds, "
		 "%" PRIu64 " MiB sent", m->status.total_us, m->status.downtime_us, m->status.rounds,
		 m->status.bytes >> 20);
	log_info("migration downtime: state saved at %" PRIu64 " us, last %" PRIu64 " pages sent "
		 "at %" PRIu64 " us, %" PRIu64 " bytes of state at %" PRIu64 " us, the destination "
		 "running at %" PRIu64 " us", m->saved_us, m->status.last_round_pages, m->pages_us,
		 m->state_bytes, m->state_us, m->status.downtime_us);
	pthread_mutex_unlock(&m->lock);
	vm_request_stop(vm, VM_STOP_MIGRATED);
	return NULL;
}

int vm_migrate_start(struct vm *vm, const char *url, struct mig_creds *creds,
		     const void *config, size_t config_len, char *err, size_t errlen)
{
	struct vm_migration *m;
	char why[400];
	int fd, ret;

	if (vm_migrating(vm) || vm_is_paused(vm)) {
		mig_creds_free(creds);
		snprintf(err, errlen, vm_is_paused(vm) ? "the microVM is paused; resume it first" :
			 "a migration is in progress");
		return -EBUSY;
	}
	vm_migration_free(vm); /* an earlier, failed one */
	m = calloc(1, sizeof(*m));
	if (!m || !(m->config = malloc(config_len ? config_len : 1))) {
		free(m);
		mig_creds_free(creds);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->creds = creds;
	fd = mig_connect(url, m->host, sizeof(m->host), why, sizeof(why));
	ret = fd < 0 ? fd : mig_channel_open(fd, creds, &m->ch);
	if (ret) {
		snprintf(err, errlen, "destination_url %s", fd < 0 ? why : strerror(-ret));
		mig_creds_free(creds);
		free(m->config);
		free(m);
		return ret;
	}
	memcpy(m->config, config, config_len);
	m->config_len = config_len;
	m->status.state = VM_MIGRATION_ACTIVE;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->final_cond, NULL);
	loop_task_init(vm->loop, &m->final, m, final_round, vm);
	vm->migration = m;
	ret = -kiln_thread_create(&m->thread, migrate_thread, vm);
	if (ret) {
		vm_migration_free(vm);
		snprintf(err, errlen, "cannot start the migration thread: %s", strerror(-ret));
	}
	return ret;
}

bool vm_migrating(struct vm *vm)
{
	struct vm_migration_status st;

	vm_migrate_status(vm, &st);
	return st.state == VM_MIGRATION_ACTIVE;
}

void vm_migrate_status(struct vm *vm, struct vm_migration_status *out)
{
	struct vm_migration *m = vm->migration;

	if (!m) {
		*out = (struct vm_migration_status){ .state = VM_MIGRATION_NONE };
		return;
	}
	pthread_mutex_lock(&m->lock);
	*out = m->status;
	pthread_mutex_unlock(&m->lock);
}

void vm_migration_free(struct vm *vm)
{
	struct vm_migration *m = vm->migration;

	if (!m)
		return;
	mig_channel_abort(m->ch); /* a thread blocked on the destination returns */
	pthread_mutex_lock(&m->lock); /* one waiting for a final round the loop will not run */
	if (!m->final_done) {
		m->final_done = true;
		m->final_ret = -ECANCELED;
	}
	pthread_cond_signal(&m->final_cond);
	pthread_mutex_unlock(&m->lock);
	if (m->thread)
		pthread_join(m->thread, NULL);
	loop_task_cancel(&m->final); /* after the join: the thread may have scheduled it */
	mig_channel_close(m->ch);
	mig_creds_free(m->creds);
	pthread_cond_destroy(&m->final_cond);
	vm->migration = NULL;
	free(m->config);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* --- destination -------------------------------------------------------------------------- */

/* HELLO: guest memory into a new memfd, mapped here to receive pages. */
static int hello(const struct mig_rec *r, struct vm_incoming *in, uint8_t **map, char *err,
		 size_t errlen)
{
	uint64_t host = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);

	if (r->type != MIG_HELLO || r->flags != MIG_MAGIC) {
		snprintf(err, errlen, "the source is not a kiln migrating a VM");
		return -EINVAL;
	}
	/* Its state comes as a snapshot image: any format this kiln reads (kiln restores the
	 * previous snapshot format, so a migration across an upgrade works). */
	if (r->b < SNAP_FORMAT_OLDEST || r->b > SNAP_FORMAT_VERSION) {
		snprintf(err, errlen, "the source writes snapshot format %" PRIu64 "; this kiln reads "
			 "%u-%u", r->b, SNAP_FORMAT_OLDEST, SNAP_FORMAT_VERSION);
		return -EINVAL;
	}
	if (r->a < (16ull << 20) || r->a > host || r->a % PAGE) {
		snprintf(err, errlen, "the source's guest memory (%" PRIu64 " bytes) does not fit "
			 "here", r->a);
		return -EINVAL;
	}
	in->mem_bytes = r->a;
	in->memfd = memfd_create("kiln-guest-ram", MFD_CLOEXEC);
	if (in->memfd < 0 || ftruncate(in->memfd, (off_t)r->a) < 0) {
		snprintf(err, errlen, "guest memory: %s", strerror(errno));
		return -EIO;
	}
	*map = mmap(NULL, r->a, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, in->memfd, 0);
	if (*map == MAP_FAILED) {
		*map = NULL;
		snprintf(err, errlen, "guest memory: mmap: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

/* CONFIG: the configuration text to @prepare. A failure to prepare is kept for the end of the
 * stream (*@failed, its message in @err): the source then hears 'F' as it would have from a
 * restore at STATE. */
static int config(struct mig_channel *ch, const struct mig_rec *r, struct vm_incoming *in,
		  int (*prepare)(void *, const struct vm_incoming *, const char *, size_t, char *,
				 size_t),
		  void *opaque, int *failed, char *err, size_t errlen)
{
	char *text = malloc(r->b);
	int ret = text ? mig_channel_recv(ch, text, r->b) : -ENOMEM;

	if (!ret && prepare)
		*failed = prepare(opaque, in, text, r->b, err, errlen);
	free(text);
	return ret;
}

int vm_migrate_receive(struct mig_channel *ch, struct vm_incoming *in,
		       int (*prepare)(void *opaque, const struct vm_incoming *in,
				      const char *config, size_t len, char *err, size_t errlen),
		       void *opaque, char *err, size_t errlen)
{
	struct mig_rec r;
	bool configured = false;
	int ret, failed = 0;

	*in = (struct vm_incoming){ .memfd = -1, .ch = ch };
	if (errlen)
		err[0] = 0;
	ret = mig_channel_recv(ch, &r, sizeof(r));
	if (!ret)
		ret = hello(&r, in, &in->map, err, errlen);
	while (!ret && !in->state) {
		if ((ret = mig_channel_recv(ch, &r, sizeof(r))))
			break;
		if (r.flags != MIG_MAGIC) {
			snprintf(err, errlen, "malformed migration record");
			ret = -EINVAL;
		} else if (r.type == MIG_PAGES && r.b && !(r.a % PAGE) && !(r.b % PAGE) &&
		    r.b <= MIG_RUN_BYTES && r.a <= in->mem_bytes && r.b <= in->mem_bytes - r.a) {
			ret = mig_channel_recv(ch, in->map + r.a, r.b);
		} else if (r.type == MIG_CONFIG && !configured && r.b && r.b <= MIG_CONFIG_MAX) {
			configured = true;
			ret = config(ch, &r, in, prepare, opaque, &failed, err, errlen);
		} else if (r.type == MIG_STATE && r.b && r.b <= MIG_STATE_MAX) {
			in->state = malloc(r.b);
			in->state_len = r.b;
			ret = in->state ? mig_channel_recv(ch, in->state, r.b) : -ENOMEM;
		} else {
			snprintf(err, errlen, "malformed migration record (type %u)", r.type);
			ret = -EINVAL;
		}
	}
	ret = ret ?: failed;
	if (ret && !err[0])
		snprintf(err, errlen, "migration stream: %s", strerror(-ret));
	if (ret)
		vm_incoming_release(in, false);
	return ret;
}

void vm_incoming_release(struct vm_incoming *in, bool ok)
{
	struct iovec answer = { ok ? "K" : "F", 1 };
	int ret;

	if (in->ch && (ret = mig_channel_send(in->ch, &answer, 1)))
		log_warn("migration: cannot answer the source: %s", strerror(-ret));
	mig_channel_close(in->ch);
	if (in->map)
		munmap(in->map, in->mem_bytes);
	if (in->memfd >= 0)
		close(in->memfd);
	free(in->state);
	*in = (struct vm_incoming){ .memfd = -1 };
}
