/* SPDX-License-Identifier: Apache-2.0 */
/* state — a vCPU's complete architectural state in and out of a snapshot, see
 * include/kiln/x86.h.
 *
 * Sections per vCPU (instance = vCPU index): "cpuid", "regs", "sregs", "xsave" (or "fpu" when
 * KVM has no XSAVE), "xcrs" (when KVM has them), "tsc_khz", "msrs", "lapic", "mp_state",
 * "events", "debugregs". The MSRs are every one in KVM_GET_MSR_INDEX_LIST this vCPU can read, the TSC and
 * the kvmclock MSRs among them. Restore order follows the dependencies in the KVM API document:
 * CPUID first (it decides which MSRs and XSAVE components exist), special registers before the
 * MSRs and the LAPIC (APIC base), the LAPIC before the TSC deadline (ignored unless the LAPIC
 * timer is in deadline mode), events last.
 *
 * Every section but "tsc_khz" is a KVM UAPI structure (or an array of them) stored raw, which
 * the kernel keeps stable: version 1 each, read back with its size checked. "tsc_khz" is kiln's
 * own: a little-endian u32, version 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "kiln/log.h"
#include "kiln/snapshot.h"
#include "kiln/x86.h"

#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define CPUID_MAX 256

struct msrs {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[];
};

/* One ioctl that fills or reads a fixed-size struct, as one section. */
struct fixed {
	const char *name;
	unsigned long get, set;
	size_t size;
	int cap;                 /* KVM_CAP_* that must be present, or 0 */
};

static const struct fixed fixed_state[] = {
	{ "regs", KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), 0 },
	{ "sregs", KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), 0 },
	{ "xcrs", KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), KVM_CAP_XCRS },
	{ "debugregs", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs),
	  KVM_CAP_DEBUGREGS },
	{ "mp_state", KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state), 0 },
	{ "lapic", KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), 0 },
	{ "events", KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events),
	  KVM_CAP_VCPU_EVENTS },
};

static const struct fixed *fixed_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(fixed_state) / sizeof(fixed_state[0]); i++)
		if (!strcmp(fixed_state[i].name, name))
			return &fixed_state[i];
	return NULL;
}

static bool has_cap(int kvm_fd, int cap) { return !cap || ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap) > 0; }

/* The XSAVE area KVM uses for this host: KVM_GET_XSAVE2's size when larger than struct
 * kvm_xsave (AMX), 0 when KVM has no XSAVE (then the legacy FPU state is used). */
static size_t xsave_size(int kvm_fd)
{
	int size;

	if (!has_cap(kvm_fd, KVM_CAP_XSAVE))
		return 0;
	size = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return size > (int)sizeof(struct kvm_xsave) ? (size_t)size : sizeof(struct kvm_xsave);
}

static struct kvm_msr_list *msr_index_list(int kvm_fd)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;

	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return NULL;
	}
	return list;
}

/* Read every listed MSR the vCPU has: KVM_GET_MSRS stops at the first one it cannot read, so
 * skip that one and go on. */
static struct msrs *read_msrs(int kvm_fd, int vcpu_fd)
{
	struct kvm_msr_list *list = msr_index_list(kvm_fd);
	struct msrs *m;
	unsigned n = 0;

	if (!list)
		return NULL;
	m = calloc(1, sizeof(*m) + list->nmsrs * sizeof(m->e[0]));
	if (!m) {
		free(list);
		return NULL;
	}
	for (unsigned i = 0; i < list->nmsrs;) {
		struct msrs *batch = (struct msrs *)((uint8_t *)m + n * sizeof(m->e[0]));
		struct kvm_msrs saved = batch->hdr; /* the header overlays entries already read */
		int got;

		batch->hdr.nmsrs = list->nmsrs - i;
		for (unsigned j = 0; j < batch->hdr.nmsrs; j++)
			batch->e[j] = (struct kvm_msr_entry){ .index = list->indices[i + j] };
		got = ioctl(vcpu_fd, KVM_GET_MSRS, batch);
		batch->hdr = saved;
		if (got < 0) {
			free(list);
			free(m);
			return NULL;
		}
		n += (unsigned)got;
		i += (unsigned)got + 1; /* the one at i + got could not be read */
	}
	free(list);
	m->hdr.nmsrs = n;
	return m;
}

int x86_vcpu_save(int kvm_fd, int vcpu_fd, unsigned index, struct snap_writer *w, char *err,
		  size_t errlen)
{
	size_t xsize = xsave_size(kvm_fd);
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + CPUID_MAX * sizeof(cpuid->entries[0]));
	uint8_t buf[sizeof(struct kvm_sregs) + sizeof(struct kvm_lapic_state)];
	void *xsave = calloc(1, xsize ? xsize : sizeof(struct kvm_fpu));
	struct msrs *msrs = NULL;
	const char *step = "KVM_GET_CPUID2";
	int ret = 0;

	if (!cpuid || !xsave) {
		ret = -ENOMEM;
		goto out;
	}
	cpuid->nent = CPUID_MAX;
	if (ioctl(vcpu_fd, KVM_GET_CPUID2, cpuid) < 0)
		goto out_errno;
	snap_put(w, "cpuid", index, 1, cpuid,
		 sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]));
	for (size_t i = 0; i < sizeof(fixed_state) / sizeof(fixed_state[0]); i++) {
		const struct fixed *f = &fixed_state[i];

		if (!has_cap(kvm_fd, f->cap))
			continue;
		step = f->name;
		memset(buf, 0, sizeof(buf));
		if (ioctl(vcpu_fd, f->get, buf) < 0)
			goto out_errno;
		snap_put(w, f->name, index, 1, buf, f->size);
	}
	step = xsize ? "xsave" : "fpu";
	if (ioctl(vcpu_fd, !xsize ? KVM_GET_FPU : xsize > sizeof(struct kvm_xsave) ?
		  KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0)
		goto out_errno;
	snap_put(w, step, index, 1, xsave, xsize ? xsize : sizeof(struct kvm_fpu));
	step = "tsc_khz";
	if (has_cap(kvm_fd, KVM_CAP_GET_TSC_KHZ)) {
		int khz = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);

		if (khz <= 0)
			goto out_errno;
		struct snap_enc enc = { 0 };

		snap_enc_u32(&enc, (uint32_t)khz);
		snap_put_enc(w, "tsc_khz", index, 1, &enc);
	}
	step = "msrs";
	msrs = read_msrs(kvm_fd, vcpu_fd);
	if (!msrs)
		goto out_errno;
	snap_put(w, "msrs", index, 1, msrs->e, msrs->hdr.nmsrs * sizeof(msrs->e[0]));
	goto out;
out_errno:
	ret = -errno;
	snprintf(err, errlen, "vCPU %u: saving %s: %s", index, step, strerror(errno));
out:
	if (ret == -ENOMEM)
		snprintf(err, errlen, "vCPU %u: out of memory", index);
	free(cpuid);
	free(xsave);
	free(msrs);
	return ret;
}

/* Feature words a guest may have been shown, and whether this host's KVM offers them. */
static const struct { uint32_t leaf, subleaf; int reg; const char *name; } feature_words[] = {
	{ 1, 0, 2, "CPUID.1:ECX" }, { 1, 0, 3, "CPUID.1:EDX" },
	{ 7, 0, 1, "CPUID.7.0:EBX" }, { 7, 0, 2, "CPUID.7.0:ECX" }, { 7, 0, 3, "CPUID.7.0:EDX" },
	{ 0xd, 1, 0, "CPUID.0xD.1:EAX" },
	{ 0x80000001, 0, 2, "CPUID.80000001:ECX" }, { 0x80000001, 0, 3, "CPUID.80000001:EDX" },
};

static uint32_t cpuid_reg(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf, int reg)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == leaf && (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
					    e->index == subleaf)) {
			uint32_t r[4] = { e->eax, e->ebx, e->ecx, e->edx };

			return r[reg];
		}
	}
	return 0;
}

const struct kvm_cpuid2 *x86_snapshot_cpuid(const struct snap_reader *r, unsigned index,
					    const struct kvm_cpuid2 *host, char *err, size_t errlen)
{
	uint32_t version;
	size_t len;
	const struct kvm_cpuid2 *c = snap_get_section(r, "cpuid", index, 1, &version, &len, err,
						      errlen);

	if (!c)
		return NULL;
	if (len < sizeof(*c) || c->nent > CPUID_MAX ||
	    len != sizeof(*c) + c->nent * sizeof(c->entries[0])) {
		snprintf(err, errlen, "snapshot: section \"cpuid\" of vCPU %u is malformed", index);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(feature_words) / sizeof(feature_words[0]); i++) {
		uint32_t want = cpuid_reg(c, feature_words[i].leaf, feature_words[i].subleaf,
					  feature_words[i].reg);
		uint32_t have = cpuid_reg(host, feature_words[i].leaf, feature_words[i].subleaf,
					  feature_words[i].reg);

		if (want & ~have) {
			snprintf(err, errlen, "this host's CPU lacks features the snapshot's guest uses: "
				 "%s bits 0x%08" PRIx32, feature_words[i].name, want & ~have);
			return NULL;
		}
	}
	return c;
}

static int set_fixed(int vcpu_fd, unsigned index, const char *name, const struct snap_reader *r,
		     bool required, char *err, size_t errlen)
{
	const struct fixed *f = fixed_by_name(name);
	uint32_t version;
	size_t len;
	const void *p = snap_get(r, name, index, &version, &len);
	uint8_t buf[sizeof(struct kvm_sregs) + sizeof(struct kvm_lapic_state)];

	if (!p && !required)
		return 0;
	if (!snap_get_exact(r, name, index, 1, f->size, err, errlen))
		return -EINVAL;
	memcpy(buf, p, f->size);
	if (f->set == KVM_SET_VCPU_EVENTS)
		((struct kvm_vcpu_events *)buf)->flags |= KVM_VCPUEVENT_VALID_NMI_PENDING |
							  KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (ioctl(vcpu_fd, f->set, buf) < 0) {
		int e = errno;

		snprintf(err, errlen, "vCPU %u: restoring %s: %s", index, name, strerror(e));
		return -e;
	}
	return 0;
}

/* The value of MSR @index among @e, 0 when absent. */
static uint64_t msr_value(const struct kvm_msr_entry *e, unsigned n, uint32_t index)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].index == index)
			return e[i].data;
	return 0;
}

/* KVM_SET_MSRS stops at the first MSR it refuses: log that one and go on with the rest. */
static int set_msrs(int vcpu_fd, unsigned index, const struct kvm_msr_entry *e, unsigned n,
		    bool deadline_only)
{
	struct msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->e[0]));
	unsigned k = 0;

	if (!m)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		if (!deadline_only || e[i].index == MSR_IA32_TSC_DEADLINE)
			m->e[k++] = e[i];
	/* A deadline of 0 with the timer in TSC-deadline mode would leave the restored vCPU
	 * without timer interrupts until its guest rearms the timer by some other path, which a
	 * tickless idle guest never does; Firecracker has seen KVM save 0 while the expiry was not
	 * yet delivered. The snapshot's TSC instead makes the timer fire once at restore, a
	 * spurious tick the guest ignores. KVM ignores the write in the other timer modes. */
	for (unsigned i = 0; deadline_only && i < k; i++)
		if (m->e[i].data == 0)
			m->e[i].data = msr_value(e, n, MSR_IA32_TSC);
	for (unsigned i = 0; i < k;) {
		struct msrs *batch = (struct msrs *)((uint8_t *)m + i * sizeof(m->e[0]));
		struct kvm_msrs saved = batch->hdr;
		int done;

		batch->hdr.nmsrs = k - i;
		done = ioctl(vcpu_fd, KVM_SET_MSRS, batch);
		batch->hdr = saved;
		if (done < 0) {
			free(m);
			return -errno;
		}
		if ((unsigned)done < k - i)
			log_warn("vCPU %u: KVM refused MSR 0x%x = 0x%llx from the snapshot", index,
				 m->e[i + done].index, (unsigned long long)m->e[i + done].data);
		i += (unsigned)done + 1;
	}
	free(m);
	return 0;
}

/* The guest's TSC ran at the snapshot's rate: keep it (KVM scales it when the host's differs,
 * with KVM_CAP_TSC_CONTROL); before the MSRs, which set the TSC itself. */
static void set_tsc_khz(int kvm_fd, int vcpu_fd, unsigned index, const struct snap_reader *r)
{
	const void *p = snap_get_exact(r, "tsc_khz", index, 1, 4, NULL, 0);
	int now = has_cap(kvm_fd, KVM_CAP_GET_TSC_KHZ) ? ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0) : -1;
	struct snap_dec dec;
	uint32_t khz;

	if (!p)
		return;
	snap_dec_init(&dec, p, 4);
	khz = snap_dec_u32(&dec);
	if (now == (int)khz)
		return;
	if (!has_cap(kvm_fd, KVM_CAP_TSC_CONTROL) ||
	    ioctl(vcpu_fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		log_warn("vCPU %u: the snapshot's TSC ran at %u kHz, this host's at %d kHz and KVM "
			 "cannot scale it: the guest's TSC clock will drift", index, khz, now);
}

int x86_vcpu_load(int kvm_fd, int vcpu_fd, unsigned index, const struct snap_reader *r,
		  char *err, size_t errlen)
{
	size_t xsize = xsave_size(kvm_fd), len;
	const struct kvm_msr_entry *msrs;
	uint32_t version;
	const void *fpu;
	int ret;

	err[0] = 0;
	set_tsc_khz(kvm_fd, vcpu_fd, index, r);
	if ((ret = set_fixed(vcpu_fd, index, "regs", r, true, err, errlen)))
		return ret;
	fpu = snap_get_exact(r, xsize ? "xsave" : "fpu", index, 1,
			     xsize ? xsize : sizeof(struct kvm_fpu), err, errlen);
	if (!fpu)
		return -EINVAL;
	if (ioctl(vcpu_fd, !xsize ? KVM_SET_FPU : KVM_SET_XSAVE, fpu) < 0) {
		ret = -errno;
		snprintf(err, errlen, "vCPU %u: restoring the FPU state: %s", index, strerror(-ret));
		return ret;
	}
	if ((ret = set_fixed(vcpu_fd, index, "xcrs", r, has_cap(kvm_fd, KVM_CAP_XCRS), err, errlen)) ||
	    (ret = set_fixed(vcpu_fd, index, "sregs", r, true, err, errlen)))
		return ret;
	msrs = snap_get_section(r, "msrs", index, 1, &version, &len, err, errlen);
	if (!msrs)
		return -EINVAL;
	if (len % sizeof(*msrs)) {
		snprintf(err, errlen, "snapshot: section \"msrs\" of vCPU %u is malformed", index);
		return -EINVAL;
	}
	if ((ret = set_msrs(vcpu_fd, index, msrs, (unsigned)(len / sizeof(*msrs)), false)) ||
	    (ret = set_fixed(vcpu_fd, index, "mp_state", r, true, err, errlen)) ||
	    (ret = set_fixed(vcpu_fd, index, "lapic", r, true, err, errlen)) ||
	    (ret = set_msrs(vcpu_fd, index, msrs, (unsigned)(len / sizeof(*msrs)), true)) ||
	    (ret = set_fixed(vcpu_fd, index, "debugregs", r, false, err, errlen)) ||
	    (ret = set_fixed(vcpu_fd, index, "events", r, false, err, errlen))) {
		if (ret == -ENOMEM || (ret && !err[0]))
			snprintf(err, errlen, "vCPU %u: restoring MSRs: %s", index, strerror(-ret));
		return ret;
	}
	return 0;
}
