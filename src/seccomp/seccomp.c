/* SPDX-License-Identifier: Apache-2.0 */
/* seccomp — per-thread system call filters, see include/kiln/seccomp.h.
 *
 * A filter file is parsed with jansson, each category compiled with libseccomp into a BPF
 * program once; kiln's own file is compiled at build time (src/seccomp/bpfgen.c), a
 * --seccomp-filter file at start. Threads install the program themselves (seccomp(2) without
 * TSYNC: the calling thread only).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <jansson.h>
#include <seccomp.h>

#include "kiln/log.h"
#include "kiln/seccomp.h"

struct seccomp_filters {
	struct sock_fprog prog[SECCOMP_THREADS];
};

static const char *const thread_names[SECCOMP_THREADS] = { "vmm", "vcpu", "worker" };

static struct seccomp_filters *active;     /* from seccomp_start() on */
static __thread const char *thread_name;   /* the calling thread's category, once filtered */
static __thread pid_t thread_tid;

const char *seccomp_thread_name(enum seccomp_thread t) { return thread_names[t]; }

/* --- compiling --------------------------------------------------------------------------- */

/* Where a file's error is: the file, the category, the rule. */
struct place {
	const char *file;
	const char *category;
	int rule;          /* index in "filter", or -1 */
	const char *syscall;
};

static int bad(struct error *e, const struct place *p, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct error *e, const struct place *p, const char *fmt, ...)
{
	char what[256], where[200] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->category && p->rule >= 0)
		snprintf(where, sizeof(where), "\"%s\" rule %d%s%s%s: ", p->category, p->rule,
			 p->syscall ? " (\"" : "", p->syscall ? p->syscall : "", p->syscall ? "\")" : "");
	else if (p->category)
		snprintf(where, sizeof(where), "\"%s\": ", p->category);
	return error_set(e, ERROR_USAGE, "%s: %s%s", p->file, where, what);
}

/* Only @allowed keys (NULL-terminated) in object @o, "comment" always allowed. */
static int known_keys(json_t *o, const char *const *allowed, struct error *e,
		      const struct place *p, const char *what)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		const char *const *a = allowed;

		while (*a && strcmp(*a, key))
			a++;
		if (!*a && strcmp(key, "comment"))
			return bad(e, p, "%s: unknown field \"%s\"", what, key);
	}
	return 0;
}

/* An action: "allow", "trap", "log", "kill_thread", "kill_process", {"errno": N} or
 * {"trace": N}. */
static int parse_action(json_t *v, uint32_t *out, struct error *e, const struct place *p,
			const char *field)
{
	static const struct { const char *name; uint32_t action; } plain[] = {
		{ "allow", SCMP_ACT_ALLOW }, { "trap", SCMP_ACT_TRAP }, { "log", SCMP_ACT_LOG },
		{ "kill_thread", SCMP_ACT_KILL_THREAD }, { "kill_process", SCMP_ACT_KILL_PROCESS },
	};
	json_t *n;

	if (json_is_string(v)) {
		for (unsigned i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
			if (!strcmp(json_string_value(v), plain[i].name)) {
				*out = plain[i].action;
				return 0;
			}
	} else if (json_is_object(v) && json_object_size(v) == 1) {
		if ((n = json_object_get(v, "errno")) && json_is_integer(n) &&
		    json_integer_value(n) >= 0 && json_integer_value(n) <= 4095) {
			*out = SCMP_ACT_ERRNO((uint16_t)json_integer_value(n));
			return 0;
		}
		if ((n = json_object_get(v, "trace")) && json_is_integer(n) &&
		    json_integer_value(n) >= 0 && json_integer_value(n) <= 65535) {
			*out = SCMP_ACT_TRACE((uint16_t)json_integer_value(n));
			return 0;
		}
	}
	return bad(e, p, "\"%s\" is not allow, trap, log, kill_thread, kill_process, "
		   "{\"errno\": 0-4095} or {\"trace\": 0-65535}", field);
}

/* A condition {"index", "type": "dword"|"qword", "op", "val"} as Firecracker's seccompiler
 * compiles it: "eq" on a dword compares the low 32 bits only. */
static int parse_condition(json_t *c, struct scmp_arg_cmp *out, struct error *e,
			   const struct place *p, unsigned k)
{
	static const char *const keys[] = { "index", "type", "op", "val", NULL };
	static const struct { const char *name; enum scmp_compare op; } ops[] = {
		{ "eq", SCMP_CMP_EQ }, { "ne", SCMP_CMP_NE }, { "ge", SCMP_CMP_GE },
		{ "gt", SCMP_CMP_GT }, { "le", SCMP_CMP_LE }, { "lt", SCMP_CMP_LT },
	};
	json_t *index = json_object_get(c, "index"), *type = json_object_get(c, "type");
	json_t *op = json_object_get(c, "op"), *val = json_object_get(c, "val"), *mask;
	char what[32];
	bool dword;

	snprintf(what, sizeof(what), "args[%u]", k);
	if (!json_is_object(c))
		return bad(e, p, "%s is not an object", what);
	if (known_keys(c, keys, e, p, what))
		return -EINVAL;
	if (!json_is_integer(index) || json_integer_value(index) < 0 ||
	    json_integer_value(index) > 5)
		return bad(e, p, "%s: \"index\" must be 0-5", what);
	if (!json_is_string(type) || (strcmp(json_string_value(type), "dword") &&
				       strcmp(json_string_value(type), "qword")))
		return bad(e, p, "%s: \"type\" must be \"dword\" or \"qword\"", what);
	if (!json_is_integer(val) || json_integer_value(val) < 0)
		return bad(e, p, "%s: \"val\" must be an integer from 0 to 2^63 - 1", what);
	dword = !strcmp(json_string_value(type), "dword");
	if (dword && (uint64_t)json_integer_value(val) > UINT32_MAX)
		return bad(e, p, "%s: \"val\" %lld does not fit a dword", what,
			   (long long)json_integer_value(val));
	*out = (struct scmp_arg_cmp){ .arg = (unsigned)json_integer_value(index),
				      .datum_a = (uint64_t)json_integer_value(val) };
	if (json_is_object(op) && json_object_size(op) == 1 &&
	    (mask = json_object_get(op, "masked_eq")) && json_is_integer(mask) &&
	    json_integer_value(mask) >= 0) {
		out->op = SCMP_CMP_MASKED_EQ;
		out->datum_a = (uint64_t)json_integer_value(mask);
		out->datum_b = (uint64_t)json_integer_value(val);
		return 0;
	}
	for (unsigned i = 0; json_is_string(op) && i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(json_string_value(op), ops[i].name))
			continue;
		out->op = ops[i].op;
		if (dword && ops[i].op == SCMP_CMP_EQ) { /* the upper half is not compared */
			out->op = SCMP_CMP_MASKED_EQ;
			out->datum_b = out->datum_a;
			out->datum_a = UINT32_MAX;
		}
		return 0;
	}
	return bad(e, p, "%s: \"op\" must be eq, ne, ge, gt, le, lt or {\"masked_eq\": MASK}",
		   what);
}

/* One rule {"syscall": NAME, "args": [...]} added to @ctx with @action. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, uint32_t default_action, json_t *r,
		    struct error *e, struct place *p)
{
	static const char *const keys[] = { "syscall", "args", NULL };
	json_t *name = json_object_get(r, "syscall"), *args = json_object_get(r, "args");
	struct scmp_arg_cmp cmp[6];
	unsigned n = 0;
	int nr, ret;

	if (!json_is_object(r))
		return bad(e, p, "a rule is an object");
	if (!json_is_string(name))
		return bad(e, p, "\"syscall\" must be a system call's name");
	p->syscall = json_string_value(name);
	if (known_keys(r, keys, e, p, "the rule"))
		return -EINVAL;
	nr = seccomp_syscall_resolve_name(p->syscall);
	if (nr == __NR_SCMP_ERROR)
		return bad(e, p, "no such system call on this architecture");
	if (args && (!json_is_array(args) || json_array_size(args) > 6))
		return bad(e, p, "\"args\" must be a list of at most 6 conditions");
	for (; args && n < json_array_size(args); n++)
		if (parse_condition(json_array_get(args, n), &cmp[n], e, p, n))
			return -EINVAL;
	if (action == default_action)
		return 0; /* says nothing the default does not */
	ret = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (ret)
		return bad(e, p, "libseccomp refuses it: %s (two conditions on one argument?)",
			   strerror(-ret));
	return 0;
}

/* The BPF program libseccomp makes of @ctx. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *out)
{
	int fd = memfd_create("kiln-seccomp", MFD_CLOEXEC), ret = 0;
	off_t size;

	if (fd < 0)
		return -errno;
	ret = seccomp_export_bpf(ctx, fd);
	size = ret ? 0 : lseek(fd, 0, SEEK_END);
	if (!ret && (size <= 0 || size % sizeof(struct sock_filter) ||
		     size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		ret = -E2BIG;
	if (!ret && !(out->filter = malloc((size_t)size)))
		ret = -ENOMEM;
	if (!ret && pread(fd, out->filter, (size_t)size, 0) != size)
		ret = -EIO;
	if (!ret)
		out->len = (unsigned short)(size / sizeof(struct sock_filter));
	close(fd);
	return ret;
}

/* Category @t from object @o. */
static int compile(json_t *o, enum seccomp_thread t, struct sock_fprog *out, struct error *e,
		   struct place *p)
{
	static const char *const keys[] = { "default_action", "filter_action", "filter", NULL };
	json_t *rules = json_object_get(o, "filter");
	uint32_t def, act;
	scmp_filter_ctx ctx;
	size_t i;
	json_t *r;
	int ret;

	p->category = thread_names[t];
	if (!json_is_object(o))
		return bad(e, p, "a filter is an object");
	if (known_keys(o, keys, e, p, "the filter") ||
	    parse_action(json_object_get(o, "default_action"), &def, e, p, "default_action") ||
	    parse_action(json_object_get(o, "filter_action"), &act, e, p, "filter_action"))
		return -EINVAL;
	if (!json_is_array(rules))
		return bad(e, p, "\"filter\" must be a list of rules");
	ctx = seccomp_init(def);
	if (!ctx)
		return error_set(e, ERROR_RUNTIME, "%s: libseccomp: out of memory", p->file);
	/* Another architecture's calls (x32, i386) are never kiln's. */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* The system call number is found by binary search, not by a scan in number order: a
	 * vCPU thread's KVM_RUN runs 90 BPF instructions through its two filters instead of 181,
	 * a futex wake 42 instead of 127, io_uring_enter 14 instead of 76. libseccomp before 2.5
	 * refuses the attribute and keeps the scan: the same filter, slower. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	json_array_foreach(rules, i, r) {
		p->rule = (int)i;
		p->syscall = NULL;
		if (add_rule(ctx, act, def, r, e, p)) {
			seccomp_release(ctx);
			return -EINVAL;
		}
	}
	p->rule = -1;
	/* glibc tries clone3 first and falls back to clone, whose flags rules can check. */
	if (!ret && def != SCMP_ACT_ERRNO(ENOSYS))
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (ret == -EEXIST)
		ret = 0; /* the file has its own rule for clone3 */
	if (!ret)
		ret = export_bpf(ctx, out);
	seccomp_release(ctx);
	if (ret)
		return error_set(e, ERROR_RUNTIME, "%s: \"%s\": libseccomp: %s", p->file,
				 thread_names[t], strerror(-ret));
	return 0;
}

/* Compile the filters of document @root (NULL: it did not parse, @je says why), named @name in
 * messages. Takes @root's reference. */
static int compile_document(json_t *root, const json_error_t *je, const char *name,
			    struct seccomp_filters **out, struct error *e);

int seccomp_filters_load(const char *path, struct seccomp_filters **out, struct error *e)
{
	json_error_t je;

	return compile_document(json_load_file(path, JSON_REJECT_DUPLICATES, &je), &je, path, out,
				e);
}

int seccomp_filters_from_bpf(const struct sock_fprog *prog, struct seccomp_filters **out)
{
	struct seccomp_filters *f = calloc(1, sizeof(*f));

	for (unsigned t = 0; f && t < SECCOMP_THREADS; t++) {
		size_t size = prog[t].len * sizeof(struct sock_filter);

		f->prog[t].len = prog[t].len;
		f->prog[t].filter = malloc(size);
		if (!f->prog[t].filter) {
			seccomp_filters_free(f);
			return -ENOMEM;
		}
		memcpy(f->prog[t].filter, prog[t].filter, size);
	}
	if (!f)
		return -ENOMEM;
	*out = f;
	return 0;
}

const struct sock_fprog *seccomp_filters_prog(const struct seccomp_filters *f,
					      enum seccomp_thread t)
{
	return &f->prog[t];
}

int seccomp_filters_parse(const char *text, size_t len, const char *name,
			  struct seccomp_filters **out, struct error *e)
{
	json_error_t je;

	return compile_document(json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), &je, name, out,
				e);
}

static int compile_document(json_t *root, const json_error_t *je, const char *name,
			    struct seccomp_filters **out, struct error *e)
{
	struct place p = { .file = name, .rule = -1 };
	struct seccomp_filters *f;
	const char *key;
	json_t *v;
	int ret = 0;

	if (!root)
		return je->line > 0 ? error_set(e, ERROR_USAGE, "%s: line %d: %s", p.file, je->line,
						je->text)
				    : error_set(e, ERROR_USAGE, "%s: %s", p.file, je->text);
	if (!json_is_object(root)) {
		json_decref(root);
		return bad(e, &p, "the file holds an object of filters, one per thread category");
	}
	json_object_foreach(root, key, v) {
		unsigned t = 0;

		while (t < SECCOMP_THREADS && strcmp(key, thread_names[t]))
			t++;
		if (t == SECCOMP_THREADS) {
			bad(e, &p, "unknown thread category \"%s\" (kiln's are vmm, vcpu and worker)",
			    key);
			json_decref(root); /* @key was the document's */
			return -EINVAL;
		}
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		json_decref(root);
		return error_set(e, ERROR_RUNTIME, "seccomp: out of memory");
	}
	for (unsigned t = 0; t < SECCOMP_THREADS && !ret; t++) {
		v = json_object_get(root, thread_names[t]);
		ret = v ? compile(v, t, &f->prog[t], e, &p)
			: bad(e, &p, "no filter for thread category \"%s\"", thread_names[t]);
	}
	json_decref(root);
	if (ret) {
		seccomp_filters_free(f);
		return ret;
	}
	*out = f;
	return 0;
}

void seccomp_filters_free(struct seccomp_filters *f)
{
	if (!f)
		return;
	for (unsigned t = 0; t < SECCOMP_THREADS; t++)
		free(f->prog[t].filter);
	free(f);
}

/* --- installing -------------------------------------------------------------------------- */

/* Append decimal @v to @p; async-signal-safe. */
static char *put_uint(char *p, unsigned long v)
{
	char digits[24];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = digits[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/* SIGSYS from a "trap" action: one line, then the end (async-signal-safe throughout). */
static void trapped(int sig, siginfo_t *si, void *uc)
{
	char line[200], *p = line;

	p = put_str(p, "kiln: seccomp: the ");
	/* A thread that has not added its own filter yet runs under the one it inherited. */
	p = put_str(p, thread_name ? thread_name : "new (vmm filter)");
	p = put_str(p, " thread (tid ");
	p = put_uint(p, (unsigned long)(thread_tid ? thread_tid : gettid()));
	p = put_str(p, ") made system call ");
	p = put_uint(p, (unsigned long)(unsigned)si->si_syscall);
	p = put_str(p, ", which its filter forbids; exiting\n");
	log_write_raw(line, (size_t)(p - line));
	_exit(SECCOMP_EXIT_TRAPPED);
}

/* Filter @t of @f on the calling thread, which no_new_privs allows (set or inherited). */
static int install(const struct seccomp_filters *f, enum seccomp_thread t)
{
	thread_name = thread_names[t];
	thread_tid = gettid();
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f->prog[t]) ? -errno : 0;
}

/* The process-wide handler of trapped calls, and no_new_privs for the calling thread and
 * every thread it makes from now on. */
static int prepare(void)
{
	struct sigaction sa = { .sa_sigaction = trapped, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return 0;
}

int seccomp_install(const struct seccomp_filters *f, enum seccomp_thread t)
{
	int ret = prepare();

	return ret ? ret : install(f, t);
}

int seccomp_start(struct seccomp_filters *f)
{
	int ret = seccomp_install(f, SECCOMP_VMM);

	if (ret)
		return ret;
	active = f;
	return 0;
}

void seccomp_enter(enum seccomp_thread t)
{
	int ret = active ? install(active, t) : 0;

	if (ret) {
		log_err("seccomp: cannot filter a %s thread: %s", thread_names[t], strerror(-ret));
		_exit(SECCOMP_EXIT_TRAPPED);
	}
}
