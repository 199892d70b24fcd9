// SPDX-License-Identifier: GPL-2.0
/*
 * pyktrace's eBPF capture backend: whole FreeBSD ktrace records built in
 * the kernel (docs/FORMAT.md gives the layouts, docs/DESIGN.md "eBPF
 * backend" the design).
 *
 * Records are appended to a per-CPU batch; a batch holds the records of
 * one trace file only and goes to the ring buffer as one sample, prefixed
 * by (file index, byte count), so the drainer writes it to the file as it
 * is.  A batch is flushed when full, when its file changes, when any task
 * is switched out on its CPU (so a thread's records reach the ring in
 * order even if it migrates), at fork (the child's PROCCTOR must precede
 * the child's own records) and at process exit.
 *
 * Every table (argument counts, path arguments, the errno map) comes from
 * ktrace_cli's own tables through maps filled by the loader, so a table
 * change needs no rebuild.  Build: `make bpf`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "records.bpf.h"
#include "stru.bpf.h"
#include "exec.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* One NAMI record for the path at `uptr`; 1 if it could not be read. */
static __always_inline int nami(struct proc *p, __u32 tgid, __u32 tid, __u64 uptr)
{
	struct batch *b = get_batch();
	__u32 off, hdr = hdr_size(p);
	long n;

	if (!b || !uptr)
		return 0;
	off = reserve(b, p->file, tgid, HDR_V1 + PATH_BYTES);
	n = bpf_probe_read_user_str(b->data + ((off + hdr) & BATCH_MASK), PATH_BYTES, (void *)uptr);
	if (n < 0)
		return 1;
	if (n <= 1)
		return 0; /* "" (AT_EMPTY_PATH): no name is looked up */
	n -= 1;       /* FreeBSD records the name without its NUL */
	put_header(b, off, p, KTR_NAMEI, n, tgid, tid);
	commit(b, hdr + n);
	return 0;
}

/* Programs reached by tail call: one array per tracepoint, since a program
 * array holds programs of one attach point only. */
#define JUMP_MORE 0
#define JUMP_EXEC 1

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} enter_jumps SEC(".maps"); /* ktr_sys_enter_more: SCTL and entry STRU records; ktr_sys_enter_exec */

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} exit_jumps SEC(".maps"); /* ktr_sys_exit_more: exit STRU records, then the RET; ktr_sys_exit_exec */

#define SYSCTL_PREFIX_LEN 10 /* "/proc/sys/" */
#define SYSCTL_NAME_MAX 256

struct sctl_name {
	char path[512]; /* a power of two: indexes are masked with it */
	char s[SYSCTL_NAME_MAX + 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sctl_name);
} sctl_scratch SEC(".maps");

struct dots_ctx {
	struct sctl_name *sn;
	__u32 start;
};

static long slash_to_dot(__u32 i, void *data)
{
	struct dots_ctx *dc = data;
	char c = dc->sn->path[(dc->start + i) & (sizeof(dc->sn->path) - 1)];

	dc->sn->s[i & (SYSCTL_NAME_MAX - 1)] = c == '/' ? '.' : c;
	return 0;
}

/*
 * SCTL (-t y) for an open of a /proc/sys path, as the ptrace engine derives
 * it (FreeBSD's record for Linux): the rest of the path, slashes at either
 * end dropped, the others made dots, NUL-terminated.  The path is read
 * again into a scratch buffer (only when `y` is wanted); a path longer than
 * the buffer or not yet in memory makes no record.
 */
static __always_inline void sysctl(struct proc *p, __u32 tgid, __u32 tid, __u64 uptr)
{
	const char prefix[] = "/proc/sys/";
	struct batch *b = get_batch();
	struct sctl_name *sn;
	__u32 off, hdr = hdr_size(p), start = SYSCTL_PREFIX_LEN, end, keep, z = 0;
	long n;

	sn = bpf_map_lookup_elem(&sctl_scratch, &z);
	if (!b || !sn || !uptr)
		return;
	n = bpf_probe_read_user_str(sn->path, sizeof(sn->path), (void *)uptr);
	if (n <= SYSCTL_PREFIX_LEN || n >= sizeof(sn->path))
		return;
#pragma unroll
	for (int i = 0; i < SYSCTL_PREFIX_LEN; i++)
		if (sn->path[i] != prefix[i])
			return;
	end = n - 1; /* the NUL */
	/* Slashes at either end are dropped (a few at most). */
#pragma unroll
	for (int i = 0; i < 4; i++)
		if (start < end && sn->path[start & (sizeof(sn->path) - 1)] == '/')
			start++;
#pragma unroll
	for (int i = 0; i < 4; i++)
		if (end > start && sn->path[(end - 1) & (sizeof(sn->path) - 1)] == '/')
			end--;
	keep = end - start;
	if (keep == 0 || keep >= SYSCTL_NAME_MAX)
		return;
	/* The others become dots (bpf_loop: the callback is verified once). */
	struct dots_ctx dc = { .sn = sn, .start = start };
	bpf_loop(keep, slash_to_dot, &dc, 0);
	sn->s[keep & (SYSCTL_NAME_MAX - 1)] = 0;
	keep++;
	off = reserve(b, p->file, tgid, HDR_V1 + SYSCTL_NAME_MAX);
	if (bpf_probe_read_kernel(b->data + ((off + hdr) & BATCH_MASK), keep, sn->s) != 0)
		return;
	put_header(b, off, p, KTR_SYSCTL, keep, tgid, tid);
	commit(b, hdr + keep);
}

/*
 * KTR_USER, the utrace convention.  A tracepoint cannot fault a page in, so
 * bytes in a page the program never touched (a string literal) are not
 * recorded; prctl does not touch them either, so there is nothing to retry.
 * (A sleepable fentry program could read them; on the 6.18 kernel this was
 * written on, loading one on __x64_sys_prctl failed with EPERM.)
 */
static __always_inline void utrace(struct proc *p, __u32 tgid, __u32 tid, __u64 addr, __u64 len)
{
	struct batch *b = get_batch();
	__u32 off, hdr = hdr_size(p);

	if (!b || len == 0 || len > KTR_USER_MAXLEN)
		return;
	off = reserve(b, p->file, tgid, HDR_V1 + KTR_USER_MAXLEN);
	if (bpf_probe_read_user(b->data + ((off + hdr) & BATCH_MASK), len, (void *)addr) != 0)
		return;
	put_header(b, off, p, KTR_USER, len, tgid, tid);
	commit(b, hdr + len);
}

/* A PROCCTOR under the process's ABI (that of its last call), as FreeBSD
 * writes one with the sysentvec's flags. */
static __always_inline void procctor(struct proc *p, __u32 pid, __u32 tid)
{
	struct batch *b = get_batch();
	__u32 off, hdr;

	if (!b)
		return;
	off = reserve(b, p->file, pid, HDR_V1 + 4);
	hdr = put_header(b, off, p, KTR_PROCCTOR, 4, pid, tid);
	*(__u32 *)(b->data + ((off + hdr) & BATCH_MASK)) = p->abi32 ? SV_FLAGS_LINUX32 : SV_FLAGS_LINUX64;
	commit(b, hdr + 4);
}

/*
 * A record of the other ABI follows: kdump keeps one ABI per process, the
 * last PROCCTOR's, so the process gets a new one first (linux32 before
 * the first record of an i386 call, linux64 again before the next x86_64
 * one), as the ptrace engine writes them.
 */
static __always_inline void abi_switch(struct proc *p, __u32 tgid, __u32 tid, int compat)
{
	p->abi32 = compat;
	if (p->facs & KTRFAC(KTR_PROCCTOR))
		procctor(p, tgid, tid);
}

static __always_inline void sysret(struct proc *p, __u32 tgid, __u32 tid, long nr, __s32 error,
				   __s64 rval);

/*
 * The RET of a call a signal interrupted: Linux's sys_exit sees one of its
 * restart codes, and decides only when it delivers the signal whether the
 * program sees EINTR or the call runs again; FreeBSD records what the
 * program sees.  So the RET waits here, by thread, for the thread's next
 * signal delivery (a handler: EINTR unless SA_RESTART saves an
 * ERESTARTSYS), or its next call or its end (restarted), as the ptrace
 * engine's restarts module decides.  LRU: a thread untraced meanwhile
 * leaves no entry for ever.
 */
#define LX_ERESTARTSYS 512
#define LX_ERESTARTNOHAND 514
#define LX_ERESTART_RESTARTBLOCK 516
#define LX_SA_RESTART 0x10000000
#define FREEBSD_EINTR 4

struct held {
	__s32 nr;
	__u32 code; /* the Linux restart code */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct held);
} held_ret SEC(".maps");

/* Write `tid`'s waiting RET, if any: EINTR if `eintr`, else RESTART. */
static __always_inline void settle_ret(struct proc *p, __u32 tgid, __u32 tid, int eintr)
{
	struct held *h = bpf_map_lookup_elem(&held_ret, &tid);

	if (!h)
		return;
	sysret(p, tgid, tid, h->nr, eintr ? FREEBSD_EINTR : ERESTART, 0);
	bpf_map_delete_elem(&held_ret, &tid);
}

/* Whether a restart code becomes EINTR when the signal with `ka` is delivered. */
static __always_inline int restart_is_eintr(__u32 code, struct k_sigaction *ka)
{
	__u64 handler = (__u64)BPF_CORE_READ(ka, sa.sa_handler);

	if (handler <= 1) /* SIG_DFL, SIG_IGN: no handler runs, the call restarts */
		return 0;
	if (code == LX_ERESTARTSYS)
		return !(BPF_CORE_READ(ka, sa.sa_flags) & LX_SA_RESTART);
	return 1; /* ERESTARTNOHAND, ERESTART_RESTARTBLOCK */
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ktr_sys_enter, struct pt_regs *regs, long id)
{
	__u32 tgid, tid, off, hdr, narg = 6, pathmask = 0, flags = 0, stru = 0;
	struct proc *p = traced_proc(&tgid, &tid);
	struct batch *b;
	int compat;

	if (!p || id < 0)
		return 0;
	settle_ret(p, tgid, tid, 0); /* an interrupted call runs again (or restart_syscall) */
	compat = in_compat(bpf_get_current_task_btf());
	if (compat != p->abi32)
		abi_switch(p, tgid, tid, compat);
	if (id < MAX_SYSCALL) {
		__u32 k = sys_key(id, compat);
		struct sysent *s = bpf_map_lookup_elem(&systab, &k);
		if (s) {
			narg = s->narg > 6 ? 6 : s->narg;
			pathmask = s->pathmask;
			flags = s->flags;
			stru = s->stru;
			if (s->flags & (SYS_SIGRETURN | SYS_EXEC))
				bpf_map_update_elem(&entered, &tid, &k, BPF_ANY);
		}
	}
	if (p->facs & KTRFAC(KTR_SYSCALL)) {
		b = get_batch();
		if (!b)
			return 0;
		off = reserve(b, p->file, tgid, HDR_V1 + 8 + 48);
		hdr = put_header(b, off, p, KTR_SYSCALL, 8 + 8 * narg, tgid, tid);
		__u8 *d = b->data + ((off + hdr) & BATCH_MASK);
		*(__s16 *)(d + 0) = id;
		*(__s16 *)(d + 2) = narg;
		*(__u32 *)(d + 4) = 0;
#pragma unroll
		for (int i = 0; i < 6; i++) {
			if (i < narg)
				*(__u64 *)(d + 8 + 8 * i) = arg_of(regs, i, compat);
		}
		commit(b, hdr + 8 + 8 * narg);
	}
	if (flags & SYS_EXEC) {
		/* ARGS, ENVS and the path, in FreeBSD's order: ktr_sys_enter_exec. */
		if (p->facs & (KTRFAC(KTR_NAMEI) | KTRFAC(KTR_ARGS) | KTRFAC(KTR_ENVS)))
			bpf_tail_call(ctx, &enter_jumps, JUMP_EXEC);
		return 0;
	} else if (pathmask && p->facs & KTRFAC(KTR_NAMEI)) {
		__u32 retry = 0;
#pragma unroll
		for (int i = 0; i < 6; i++) {
			if (pathmask & (1 << i) && nami(p, tgid, tid, arg_of(regs, i, compat)))
				retry |= 1 << i;
		}
		if (retry)
			bpf_map_update_elem(&nami_retry, &tid, &retry, BPF_ANY);
	}
	if (flags & SYS_PRCTL && p->facs & KTRFAC(KTR_USER) && arg_of(regs, 0, compat) == UTRACE_PRCTL)
		utrace(p, tgid, tid, arg_of(regs, 1, compat), arg_of(regs, 2, compat));
	if ((flags & SYS_OPEN && p->facs & KTRFAC(KTR_SYSCTL)) ||
	    (stru && p->facs & KTRFAC(KTR_STRUCT)))
		bpf_tail_call(ctx, &enter_jumps, JUMP_MORE); /* last: after the NAMI */
	return 0;
}

/* Reached by tail call from ktr_sys_enter (never attached itself): kept
 * apart so that each program stays within the verifier's limits. */
SEC("tp_btf/sys_enter")
int BPF_PROG(ktr_sys_enter_more, struct pt_regs *regs, long id)
{
	__u32 tgid, tid, k;
	struct proc *p = traced_proc(&tgid, &tid);
	struct sysent *s;
	int compat = in_compat(bpf_get_current_task_btf());

	if (!p || id < 0 || id >= MAX_SYSCALL)
		return 0;
	k = sys_key(id, compat);
	s = bpf_map_lookup_elem(&systab, &k);
	if (!s)
		return 0;
	if (s->flags & SYS_OPEN && p->facs & KTRFAC(KTR_SYSCTL))
		sysctl(p, tgid, tid, arg_of(regs, s->pathmask & 1 ? 0 : 1, compat)); /* open: 0; openat(2): 1 */
	if (!(p->facs & KTRFAC(KTR_STRUCT)))
		return 0;
	if (s->stru == STRU_SOCKADDR_IN)
		stru_sockaddr(p, tgid, tid, arg_of(regs, s->stru_arg & 7, compat),
			      arg_of(regs, (s->stru_arg + 1) & 7, compat));
	else if (s->stru == STRU_ITIMERVAL && s->flags & SYS_SETITIMER)
		stru_itimerval(p, tgid, tid, arg_of(regs, 1, compat));
	else if (s->stru == STRU_SIGSET && stru_sigset(p, tgid, tid, regs, compat, s->sig, 0)) {
		__u32 *retry = bpf_map_lookup_elem(&nami_retry, &tid), mask = RETRY_SIGSET;
		if (retry)
			mask |= *retry;
		bpf_map_update_elem(&nami_retry, &tid, &mask, BPF_ANY);
	}
	return 0;
}

/* GIO: the bytes a read or write moved, up to the file's --genio-size. */
static __always_inline void genio(struct proc *p, __u32 tgid, __u32 tid, struct pt_regs *regs,
				  int compat, long ret, int rw)
{
	struct batch *b = get_batch();
	__u32 off, hdr = hdr_size(p);
	__u64 n = ret;

	if (!b)
		return;
	if (n > p->genio)
		n = p->genio;
	if (n > GENIO_MAX)
		n = GENIO_MAX;
	if (n == 0)
		return;
	off = reserve(b, p->file, tgid, HDR_V1 + 8 + GENIO_MAX);
	__u8 *g = b->data + ((off + hdr) & BATCH_MASK);
	if (bpf_probe_read_user(g + 8, n, (void *)arg_of(regs, 1, compat)) != 0)
		return;
	put_header(b, off, p, KTR_GENIO, 8 + n, tgid, tid);
	*(__s32 *)(g + 0) = (__s32)arg_of(regs, 0, compat);
	*(__s32 *)(g + 4) = rw;
	commit(b, hdr + 8 + n);
}

/* GIO of a vector call: the iovecs' bytes in order, up to what the call
 * moved and the file's --genio-size, in one record as the ptrace engine
 * makes it.  The loop over the iovecs is a bpf_loop, verified once. */
#define IOV_MAX_SEEN 64

struct iov_walk {
	struct batch *b;
	__u64 iov;
	__u32 start; /* offset of the data in the batch */
	__u32 left;  /* bytes still to take */
	__u32 got;
	__u32 failed;
};

static long iov_step(__u32 i, void *data)
{
	struct iov_walk *w = data;
	__u64 v[2]; /* iov_base, iov_len */
	__u32 n;

	if (w->left == 0 || w->got >= GENIO_MAX)
		return 1;
	if (bpf_probe_read_user(v, sizeof(v), (void *)(w->iov + 16 * (__u64)i)) != 0) {
		w->failed = 1;
		return 1;
	}
	n = v[1] < w->left ? v[1] : w->left;
	if (n > GENIO_MAX - w->got)
		n = GENIO_MAX - w->got;
	if (n == 0)
		return 0;
	asm volatile("%0 &= 0x1fff" : "+r"(n)); /* bounds the verifier sees */
	if (n > GENIO_MAX)
		return 1;
	if (bpf_probe_read_user(w->b->data + ((w->start + w->got) & BATCH_MASK), n, (void *)v[0]) != 0) {
		w->failed = 1;
		return 1;
	}
	w->got += n;
	w->left -= n;
	return 0;
}

static __always_inline void genio_iov(struct proc *p, __u32 tgid, __u32 tid, __s32 fd, int rw,
				      __u64 iov, __u64 cnt, long ret)
{
	struct batch *b = get_batch();
	__u32 off, hdr = hdr_size(p), cap = p->genio < GENIO_MAX ? p->genio : GENIO_MAX;
	struct iov_walk w = {};
	__u8 *g;

	if (!b || !iov || cap == 0)
		return;
	off = reserve(b, p->file, tgid, HDR_V1 + 8 + GENIO_MAX);
	w.b = b;
	w.iov = iov;
	w.start = off + hdr + 8;
	w.left = ret < cap ? ret : cap;
	bpf_loop(cnt < IOV_MAX_SEEN ? cnt : IOV_MAX_SEEN, iov_step, &w, 0);
	if (w.failed || w.got == 0 || w.got > GENIO_MAX)
		return;
	put_header(b, off, p, KTR_GENIO, 8 + w.got, tgid, tid);
	g = b->data + ((off + hdr) & BATCH_MASK);
	*(__s32 *)(g + 0) = fd;
	*(__s32 *)(g + 4) = rw;
	commit(b, hdr + 8 + w.got);
}

/* The RET record. */
static __always_inline void sysret(struct proc *p, __u32 tgid, __u32 tid, long nr, __s32 error,
				   __s64 rval)
{
	struct batch *b;
	__u32 off, hdr;
	__u8 *d;

	if (!(p->facs & KTRFAC(KTR_SYSRET)))
		return;
	b = get_batch();
	if (!b)
		return;
	off = reserve(b, p->file, tgid, HDR_V1 + 16);
	hdr = put_header(b, off, p, KTR_SYSRET, 16, tgid, tid);
	d = b->data + ((off + hdr) & BATCH_MASK);
	*(__s16 *)(d + 0) = nr;
	*(__s16 *)(d + 2) = 0;
	*(__s32 *)(d + 4) = error;
	*(__s64 *)(d + 8) = rval;
	commit(b, hdr + 16);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ktr_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 tgid, tid, flags = 0, stru = 0, k;
	struct proc *p = traced_proc(&tgid, &tid);
	struct sysent *s = NULL;
	long nr;
	__s32 error = 0;
	__s64 rval = ret;
	int compat;

	if (!p)
		return 0;
	compat = in_compat(bpf_get_current_task_btf());
	nr = BPF_CORE_READ(regs, orig_ax);
	if (nr >= 0 && nr < MAX_SYSCALL) {
		k = sys_key(nr, compat);
		s = bpf_map_lookup_elem(&systab, &k);
	}
	if (nr < 0 || (s && s->flags & SYS_EXEC)) {
		/* The call's key from its entry (a call entered before the
		 * process was traced: orig_ax and TS_COMPAT are all there is). */
		__u32 *e = bpf_map_lookup_elem(&entered, &tid);
		if (e) {
			k = *e;
			bpf_map_delete_elem(&entered, &tid);
			compat = k >= I386_BASE;
			nr = k & (MAX_SYSCALL - 1);
			s = bpf_map_lookup_elem(&systab, &k);
		} else if (nr < 0) {
			return 0;
		}
	}
	if (s) {
		flags = s->flags;
		stru = s->stru;
	}
	/* The RET, and the records before it, go under the ABI the call entered with. */
	if (compat != p->abi32)
		abi_switch(p, tgid, tid, compat);
	__u32 *retry = bpf_map_lookup_elem(&nami_retry, &tid);
	if (retry) {
		/* The kernel has faulted the page in by now (not for execve:
		 * that address space is gone). */
		__u32 mask = *retry;
		bpf_map_delete_elem(&nami_retry, &tid);
		if (p->facs & KTRFAC(KTR_NAMEI) && !(flags & SYS_EXEC)) {
#pragma unroll
			for (int i = 0; i < 6; i++) {
				if (mask & (1 << i))
					nami(p, tgid, tid, arg_of(regs, i, compat));
			}
		}
		if (mask & RETRY_SIGSET && s && p->facs & KTRFAC(KTR_STRUCT))
			stru_sigset(p, tgid, tid, regs, compat, s->sig, 0);
	}
	if (flags & SYS_SIGRETURN) {
		/* The value in %rax is the interrupted context's, not a result:
		 * FreeBSD's sigreturn (and the Linuxulator's rt_sigreturn)
		 * return EJUSTRETURN, which is what ktrsysret() records. */
		error = EJUSTRETURN;
		rval = 0;
	} else if (ret < 0 && ret >= -(MAX_ERRNO - 1)) {
		__u32 e = -ret;
		__s32 *m;
		asm volatile("" : "+r"(e)); /* keep the index positive for the verifier */
		if ((e == LX_ERESTARTSYS || e == LX_ERESTARTNOHAND || e == LX_ERESTART_RESTARTBLOCK) &&
		    p->facs & KTRFAC(KTR_SYSRET)) {
			struct held h = {.nr = nr, .code = e};
			bpf_map_update_elem(&held_ret, &tid, &h, BPF_ANY);
			return 0; /* the RET waits for the signal's delivery */
		}
		m = bpf_map_lookup_elem(&errmap, &e);
		error = m ? *m : (__s32)e;
		rval = 0;
	} else if (flags & SYS_EXEC && ret == 0) {
		error = EJUSTRETURN;
	} else if (ret > 0 && flags & (SYS_GIO_READ | SYS_GIO_WRITE) && p->facs & KTRFAC(KTR_GENIO)) {
		genio(p, tgid, tid, regs, compat, ret, flags & SYS_GIO_WRITE ? UIO_WRITE : UIO_READ);
	}
	if (flags & SYS_EXEC && ret != 0 && bpf_map_lookup_elem(&exec_comms, &tid))
		bpf_tail_call(ctx, &exit_jumps, JUMP_EXEC); /* what its entry could not read, then the RET */
	if ((!error && stru && stru != STRU_SOCKADDR_IN && p->facs & KTRFAC(KTR_STRUCT)) ||
	    (ret > 0 && flags & (SYS_GIO_IOV | SYS_GIO_MSG) && p->facs & KTRFAC(KTR_GENIO)))
		bpf_tail_call(ctx, &exit_jumps, JUMP_MORE); /* GIO or STRU, then the RET */
	sysret(p, tgid, tid, nr, error, rval);
	return 0;
}

/* Reached by tail call from ktr_sys_exit for a call that fills a structure:
 * its STRU record, then the RET (the ptrace engine's order). */
SEC("tp_btf/sys_exit")
int BPF_PROG(ktr_sys_exit_more, struct pt_regs *regs, long ret)
{
	__u32 tgid, tid, k;
	struct proc *p = traced_proc(&tgid, &tid);
	struct sysent *s;
	long nr;
	int compat = in_compat(bpf_get_current_task_btf());

	if (!p)
		return 0;
	/* Never an exec or a sigreturn here: orig_ax and TS_COMPAT are the entry's. */
	nr = BPF_CORE_READ(regs, orig_ax);
	if (nr < 0 || nr >= MAX_SYSCALL)
		return 0;
	k = sys_key(nr, compat);
	s = bpf_map_lookup_elem(&systab, &k);
	if (s && ret > 0 && s->flags & (SYS_GIO_IOV | SYS_GIO_MSG) && p->facs & KTRFAC(KTR_GENIO)) {
		__u64 iov = arg_of(regs, 1, compat), cnt = arg_of(regs, 2, compat);
		if (s->flags & SYS_GIO_MSG) {
			__u64 mv[2]; /* msg_iov, msg_iovlen at offset 16 of struct msghdr */
			if (bpf_probe_read_user(mv, sizeof(mv), (void *)(iov + 16)) != 0)
				mv[0] = mv[1] = 0;
			iov = mv[0];
			cnt = mv[1];
		}
		genio_iov(p, tgid, tid, (__s32)arg_of(regs, 0, compat), s->flags & SYS_GIO_OUT ? UIO_WRITE : UIO_READ,
			  iov, cnt, ret);
	}
	if (s && s->stru && p->facs & KTRFAC(KTR_STRUCT)) {
		__u64 where = arg_of(regs, s->stru_arg & 7, compat);
		if (s->stru == STRU_STAT || s->stru == STRU_STATX) {
			stru_stat(p, tgid, tid, where, s->stru == STRU_STATX);
		} else if (s->stru == STRU_SOCKADDR_OUT) {
			__u32 alen;
			__u64 lenp = arg_of(regs, (s->stru_arg + 1) & 7, compat);
			if (where && lenp && bpf_probe_read_user(&alen, 4, (void *)lenp) == 0)
				stru_sockaddr(p, tgid, tid, where, alen);
		} else if (s->stru == STRU_ITIMERVAL) {
			stru_itimerval(p, tgid, tid, arg_of(regs, s->flags & SYS_SETITIMER ? 2 : 1, compat));
		} else if (s->stru == STRU_SIGSET) {
			stru_sigset(p, tgid, tid, regs, compat, s->sig, 1);
		} else if (s->stru == STRU_FDPAIR) {
			/* socketpair's int[2] is its fourth argument, after the domain; pipe's its first */
			stru_fdpair(p, tgid, tid, where, (s->stru_arg & 7) == 3, arg_of(regs, 0, compat));
		}
	}
	sysret(p, tgid, tid, nr, 0, ret);
	return 0;
}

/* Inheritance (-i), done in the kernel before the child can run. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(ktr_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);
	struct proc *p, np;
	struct batch *b;

	if (ctgid == ptgid)
		return 0; /* a new thread: traced with its process */
	p = bpf_map_lookup_elem(&traced, &ptgid);
	if (!p || !(p->facs & KTRFAC_INHERIT))
		return 0;
	np = *p;
	np.drop_pending = 0;
	np.fatal_logged = 0;
	np.dropped = 0;
	if (bpf_map_update_elem(&traced, &ctgid, &np, BPF_ANY) != 0)
		return 0;
	if (np.facs & KTRFAC(KTR_PROCCTOR)) {
		procctor(&np, ctgid, cpid);
		b = get_batch();
		if (b)
			flush(b); /* before the child's own records, which may go via another CPU */
	}
	return 0;
}

/*
 * ARGS / ENVS: the new image's argument or environment area, NUL-separated
 * strings as FreeBSD records them, read from the pages exec has just
 * written.  Up to EXEC_VECTOR_MAX bytes, whole strings only, as the ptrace
 * engine bounds them.  Too big for a batch, the record is built in a
 * per-CPU buffer and sent as a sample of its own, after the batch so far.
 */
#define EXEC_VECTOR_MAX (256 * 1024)

#define ARG_STRLEN_MAX (128 * 1024) /* Linux's MAX_ARG_STRLEN: one string, NUL included */

struct exec_buf {
	/* Room for a string read at the last offset the vector bound allows. */
	__u8 data[8 + HDR_V1 + EXEC_VECTOR_MAX + ARG_STRLEN_MAX];
};

/* One buffer per CPU, indexed by CPU (a per-CPU map value may not be this
 * big); the loader sizes it to the possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_buf);
} exec_scratch SEC(".maps");

struct nul_scan {
	__u8 *area;
	__u32 n;   /* bytes still considered */
	__u32 cut; /* the length up to and with the last NUL seen, 0 if none */
};

static long last_nul(__u32 i, void *data)
{
	struct nul_scan *ns = data;
	__u32 at = ns->n - 1 - i;

	if (at >= EXEC_VECTOR_MAX)
		return 1;
	if (ns->area[at] == 0) {
		ns->cut = at + 1;
		return 1;
	}
	return 0;
}

/* Send the ARGS or ENVS record of `n` bytes built in `x`, after the batch so far. */
static __always_inline void exec_send(struct proc *p, __u32 tgid, __u32 tid, __u16 type,
				      struct exec_buf *x, __u32 n, const char *comm)
{
	struct batch *b = get_batch();
	__u32 hdr = hdr_size(p), size;

	if (!b)
		return;
	flush(b); /* the records before this one go first */
	put_hdr(x->data + 8, p, type, n, tgid, tid, comm);
	*(__u32 *)(x->data + 0) = p->file;
	*(__u32 *)(x->data + 4) = hdr + n;
	size = 8 + hdr + n;
	asm volatile("%0 &= 0x7ffff" : "+r"(size));
	if (size > sizeof(x->data))
		return;
	if (bpf_ringbuf_output(&ring, x->data, size, BPF_RB_NO_WAKEUP) != 0) {
		struct cfg *c = get_cfg();
		__sync_fetch_and_add(&p->dropped, 1);
		p->drop_pending = 1;
		if (c)
			__sync_fetch_and_add(&c->lost_records, 1);
	}
}

static __always_inline struct exec_buf *exec_buf(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&exec_scratch, &cpu);
}

/* The new image's argument or environment area (what exec wrote). */
static __always_inline void exec_strings(struct proc *p, __u32 tgid, __u32 tid, __u16 type,
					 __u64 start, __u64 end, const char *comm)
{
	__u32 hdr = hdr_size(p), n;
	struct exec_buf *x = exec_buf();
	__u8 *area;

	if (!x)
		return;
	n = end > start ? (end - start > EXEC_VECTOR_MAX ? EXEC_VECTOR_MAX : end - start) : 0;
	area = x->data + 8 + (hdr == HDR_V1 ? HDR_V1 : HDR_V0);
	if (n) {
		asm volatile("%0 &= 0x7ffff" : "+r"(n)); /* bounds the verifier sees */
		if (n > EXEC_VECTOR_MAX || bpf_probe_read_user(area, n, (void *)start) != 0)
			return;
		if (end - start > EXEC_VECTOR_MAX) {
			/* Cut after the last whole string that fits. */
			struct nul_scan ns = { .area = area, .n = n };
			bpf_loop(n, last_nul, &ns, 0);
			n = ns.cut;
		}
	}
	exec_send(p, tgid, tid, type, x, n, comm);
}

/* A walk over the calling image's argv or envp, as the ptrace engine reads
 * them: whole strings while they fit in EXEC_VECTOR_MAX bytes. */
struct vec_walk {
	__u8 *area;
	__u64 vec;
	__u32 ptr;    /* 8, or 4 for an i386 call */
	__u32 got;
	__u32 failed; /* a pointer or string could not be read */
};

#define VEC_MAX (1 << 20) /* far beyond Linux's MAX_ARG_STRINGS worth of bytes */

static long vec_step(__u32 i, void *data)
{
	struct vec_walk *w = data;
	__u64 addr = 0;
	__u32 room, max, off;
	long n;

	if (w->ptr == 4) {
		__u32 a32;
		if (bpf_probe_read_user(&a32, 4, (void *)(w->vec + 4 * (__u64)i)) != 0)
			goto bad;
		addr = a32;
	} else if (bpf_probe_read_user(&addr, 8, (void *)(w->vec + 8 * (__u64)i)) != 0) {
		goto bad;
	}
	if (addr == 0)
		return 1;
	off = w->got;
	if (off >= EXEC_VECTOR_MAX)
		return 1;
	room = EXEC_VECTOR_MAX - off;
	max = room < ARG_STRLEN_MAX ? room : ARG_STRLEN_MAX;
	asm volatile("%0 &= 0x3ffff" : "+r"(off)); /* bounds the verifier sees */
	if (max == 0 || max > ARG_STRLEN_MAX)
		return 1;
	n = bpf_probe_read_user_str(w->area + off, max, (void *)addr);
	if (n <= 0)
		goto bad;
	if (n == max && max == room)
		return 1; /* it did not fit whole: the list ends before it */
	w->got += n;
	return 0;
bad:
	w->failed = 1;
	return 1;
}

/* ARGS or ENVS from the vector at `vec`; 1 if some of it could not be read
 * (then, with `partial`, what could be is recorded, as the ptrace engine
 * does; otherwise nothing). */
static __always_inline int exec_vector(struct proc *p, __u32 tgid, __u32 tid, __u16 type, __u64 vec,
				       int compat, int partial)
{
	struct exec_buf *x = exec_buf();
	struct vec_walk w = {};

	if (!x)
		return 0;
	w.area = x->data + 8 + (hdr_size(p) == HDR_V1 ? HDR_V1 : HDR_V0);
	w.vec = vec;
	w.ptr = compat ? 4 : 8;
	if (vec)
		bpf_loop(VEC_MAX, vec_step, &w, 0);
	if (w.failed && !partial)
		return 1;
	exec_send(p, tgid, tid, type, x, w.got, NULL);
	return w.failed;
}

/* The argv, envp and path arguments of execve and execveat. */
static __always_inline void exec_args(struct pt_regs *regs, int compat, __u32 pathmask, __u64 *argv,
				      __u64 *envp, __u64 *path)
{
	int at = pathmask & 1 ? 0 : 1; /* execve: the path first; execveat: after the descriptor */

	*path = arg_of(regs, at, compat);
	*argv = arg_of(regs, at + 1, compat);
	*envp = arg_of(regs, at + 2, compat);
}

/*
 * ARGS, ENVS and the exec's path (NAMI), in FreeBSD's order, from the
 * calling image's memory.  Whatever cannot be read yet (a page the program
 * never touched), and all after it, waits: for the new image's copies if
 * the exec succeeds (ktr_exec), or until the call has read them if it
 * fails (ktr_sys_exit_exec).
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(ktr_sys_enter_exec, struct pt_regs *regs, long id)
{
	__u32 tgid, tid, k;
	struct proc *p = traced_proc(&tgid, &tid);
	struct exec_comm c = {};
	struct sysent *s;
	__u64 argv, envp, path;
	int compat = in_compat(bpf_get_current_task_btf());

	if (!p || id < 0 || id >= MAX_SYSCALL)
		return 0;
	k = sys_key(id, compat);
	s = bpf_map_lookup_elem(&systab, &k);
	if (!s)
		return 0;
	exec_args(regs, compat, s->pathmask, &argv, &envp, &path);
	bpf_get_current_comm(c.s, sizeof(c.s));
	c.deferred = EXEC_DONE;
	if (p->facs & KTRFAC(KTR_ARGS) && exec_vector(p, tgid, tid, KTR_ARGS, argv, compat, 0))
		c.deferred = EXEC_ARGS;
	else if (p->facs & KTRFAC(KTR_ENVS) && exec_vector(p, tgid, tid, KTR_ENVS, envp, compat, 0))
		c.deferred = EXEC_ENVS;
	else if (p->facs & KTRFAC(KTR_NAMEI) && nami(p, tgid, tid, path))
		c.deferred = EXEC_NAMI;
	bpf_map_update_elem(&exec_comms, &tid, &c, BPF_ANY);
	return 0;
}

/* A failed exec's exit: what its entry could not read (the call has read
 * it by now, unless it failed first), then the RET. */
SEC("tp_btf/sys_exit")
int BPF_PROG(ktr_sys_exit_exec, struct pt_regs *regs, long ret)
{
	__u32 tgid, tid, k, stage;
	struct proc *p = traced_proc(&tgid, &tid);
	struct exec_comm *c;
	struct sysent *s;
	__u64 argv, envp, path;
	long nr;
	__s32 error = 0;
	int compat = in_compat(bpf_get_current_task_btf());

	if (!p)
		return 0;
	nr = BPF_CORE_READ(regs, orig_ax); /* a failed exec left the entry's */
	if (nr < 0 || nr >= MAX_SYSCALL)
		return 0;
	k = sys_key(nr, compat);
	s = bpf_map_lookup_elem(&systab, &k);
	c = bpf_map_lookup_elem(&exec_comms, &tid);
	if (!s || !c)
		return 0;
	stage = c->deferred;
	bpf_map_delete_elem(&exec_comms, &tid);
	exec_args(regs, compat, s->pathmask, &argv, &envp, &path);
	if (stage <= EXEC_ARGS && p->facs & KTRFAC(KTR_ARGS))
		exec_vector(p, tgid, tid, KTR_ARGS, argv, compat, 1);
	if (stage <= EXEC_ENVS && p->facs & KTRFAC(KTR_ENVS))
		exec_vector(p, tgid, tid, KTR_ENVS, envp, compat, 1);
	if (stage <= EXEC_NAMI && p->facs & KTRFAC(KTR_NAMEI))
		nami(p, tgid, tid, path);
	if (ret < 0 && ret >= -(MAX_ERRNO - 1)) {
		__u32 e = -ret;
		__s32 *m;
		asm volatile("" : "+r"(e)); /* keep the index positive for the verifier */
		m = bpf_map_lookup_elem(&errmap, &e);
		error = m ? *m : (__s32)e;
		ret = 0;
	}
	sysret(p, tgid, tid, nr, error, ret);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ktr_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid, tid, key = old_pid, stage = EXEC_ARGS; /* the thread's id in the call (a non-leader's exec took the leader's) */
	struct proc *p = traced_proc(&tgid, &tid);
	struct exec_comm *e;
	const char *comm, *path, *interp;

	if (!p)
		return 0;
	/* An engine not run by root may trace only its owner's processes: an
	 * exec that gives other credentials (set-user-ID, set-group-ID, file
	 * capabilities: what AT_SECURE marks) ends the trace before the new
	 * image runs, as FreeBSD's exec does for an unprivileged tracer. */
	if (p->setid_stop && BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec)) {
		bpf_map_delete_elem(&exec_comms, &key);
		bpf_map_delete_elem(&traced, &tgid);
		return 0;
	}
	/* FreeBSD's order, under the name of the image that called exec: what
	 * the entry could not read (ARGS, ENVS, the path), from the kernel's
	 * copies; the #! interpreter; then the new image. */
	e = bpf_map_lookup_elem(&exec_comms, &key);
	comm = e ? e->s : NULL;
	if (e)
		stage = e->deferred;
	if (stage <= EXEC_ENVS && p->facs & (KTRFAC(KTR_ARGS) | KTRFAC(KTR_ENVS))) {
		struct mm_struct *mm = BPF_CORE_READ(task, mm);
		if (mm && stage <= EXEC_ARGS && p->facs & KTRFAC(KTR_ARGS))
			exec_strings(p, tgid, tid, KTR_ARGS, BPF_CORE_READ(mm, arg_start),
				     BPF_CORE_READ(mm, arg_end), comm);
		if (mm && p->facs & KTRFAC(KTR_ENVS))
			exec_strings(p, tgid, tid, KTR_ENVS, BPF_CORE_READ(mm, env_start),
				     BPF_CORE_READ(mm, env_end), comm);
	}
	if (p->facs & KTRFAC(KTR_NAMEI)) {
		if (stage <= EXEC_NAMI)
			nami_kernel(p, tgid, tid, exec_path(bprm), comm);
		/* A script's #! interpreter: binfmt_script makes bprm->interp
		 * its own copy of the name (otherwise it is the path itself). */
		path = BPF_CORE_READ(bprm, filename);
		interp = BPF_CORE_READ(bprm, interp);
		if (interp != path)
			nami_kernel(p, tgid, tid, interp, comm);
	}
	if (e)
		bpf_map_delete_elem(&exec_comms, &key);
	if (p->facs & KTRFAC(KTR_PROCCTOR))
		procctor(p, tgid, tid);
	return 0;
}

/*
 * The code of a fatal signal that Linux turns into a group exit when it is
 * sent (complete_signal: no handler, no core dump): delivery then sees only
 * the SIGKILL that takes every thread, so the sender's si_code, mapped to
 * FreeBSD's, waits here for the PSIG written at delivery.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __s32);
} fatal_code SEC(".maps");

#define SIGNAL_DELIVERED 0 /* the tracepoint's result: queued for the task */
#define SEND_SIG_NOINFO 0  /* the kernel's stand-in siginfo pointers: SI_USER */
#define SEND_SIG_PRIV 1    /* and SI_KERNEL */
#define LX_SI_USER 0
#define LX_SI_KERNEL 0x80

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ktr_exit, struct task_struct *task)
{
	__u32 tgid, tid, off, hdr;
	struct proc *p = traced_proc(&tgid, &tid);
	struct batch *b;

	if (!p)
		return 0;
	/* Only the exiting task's own call (task == current) says it is leaving. */
	if (BPF_CORE_READ(task, pid) != tid)
		return 0;
	settle_ret(p, tgid, tid, 0); /* a thread ending in an interrupted call */
	/* The last thread out: do_exit has already counted it off signal->live. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	b = get_batch();
	if (!b)
		return 0;
	if (p->facs & KTRFAC(KTR_PROCDTOR)) {
		off = reserve(b, p->file, tgid, HDR_V1);
		hdr = put_header(b, off, p, KTR_PROCDTOR, 0, tgid, tid);
		commit(b, hdr);
	}
	flush(b); /* the whole trace is in the ring before the parent can reap it */
	/* Wake the drainer now, before the parent is told: an empty sample
	 * (file index 0, no bytes) that only carries the wake-up. */
	__u32 wake[2] = {0, 0};
	bpf_ringbuf_output(&ring, wake, sizeof(wake), BPF_RB_FORCE_WAKEUP);
	bpf_map_delete_elem(&traced, &tgid);
	bpf_map_delete_elem(&fatal_code, &tgid);
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(ktr_siggen, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	__u32 tgid;
	__s32 code;
	struct proc *p;

	if (result != SIGNAL_DELIVERED || sig <= 0 || sig > LINUX_NSIG || sig == LX_SIGKILL)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	p = bpf_map_lookup_elem(&traced, &tgid);
	if (!p || !(p->facs & KTRFAC(KTR_PSIG)))
		return 0;
	/* Only the send that made the group exit: it set the exit code to its signal. */
	if (!(BPF_CORE_READ(task, signal, flags) & SIGNAL_GROUP_EXIT) ||
	    (BPF_CORE_READ(task, signal, group_exit_code) & 0x7f) != sig)
		return 0;
	if ((unsigned long)info == SEND_SIG_NOINFO)
		code = LX_SI_USER;
	else if ((unsigned long)info == SEND_SIG_PRIV)
		code = LX_SI_KERNEL;
	else
		code = BPF_CORE_READ(info, si_code);
	code = freebsd_sigcode(sig, code);
	bpf_map_update_elem(&fatal_code, &tgid, &code, BPF_NOEXIST);
	return 0;
}

/*
 * PSIG: a signal leaving the queue for its action, as FreeBSD's postsig()
 * logs it: caught, or a default action that does something.  The handler,
 * si_code (mapped to FreeBSD's, as the Linuxulator stores it) and blocked
 * mask come straight from the kernel.
 */
SEC("tp_btf/signal_deliver")
int BPF_PROG(ktr_signal, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	__u32 tgid, tid, off, hdr, idx, z = 0;
	struct proc *p = traced_proc(&tgid, &tid);
	struct sigtab *st;
	struct batch *b;
	__u64 handler, blocked = 0;
	__u32 mask0 = 0, mask1 = 0, mask2 = 0, mask3 = 0;
	__s32 code = 0, signo;
	struct task_struct *task;

	if (!p)
		return 0;
	/* The RET of the call the signal interrupted comes first, as the program sees it. */
	struct held *h = bpf_map_lookup_elem(&held_ret, &tid);
	if (h)
		settle_ret(p, tgid, tid, restart_is_eintr(h->code, ka));
	if (!(p->facs & KTRFAC(KTR_PSIG)) || sig <= 0 || sig > LINUX_NSIG)
		return 0;
	st = bpf_map_lookup_elem(&sigtab, &z);
	if (!st)
		return 0;
	task = bpf_get_current_task_btf();
	handler = (__u64)BPF_CORE_READ(ka, sa.sa_handler);
	if (sig == LX_SIGKILL && BPF_CORE_READ(task, signal, flags) & SIGNAL_GROUP_EXIT) {
		/* A group exit: Linux kills every thread with SIGKILL.  After
		 * exit_group() nothing is logged (FreeBSD logs nothing); after a
		 * fatal signal, that signal is logged once for the process, as
		 * FreeBSD's postsig() does for the thread taking it. */
		int fatal = BPF_CORE_READ(task, signal, group_exit_code) & 0x7f;
		if (fatal == 0 || __sync_lock_test_and_set(&p->fatal_logged, 1))
			return 0;
		sig = fatal;
		handler = 0;
		__s32 *sent = bpf_map_lookup_elem(&fatal_code, &tgid);
		if (sent)
			code = *sent; /* the sender's, kept by ktr_siggen */
	} else if (sig != LX_SIGKILL) {
		if (info)
			code = freebsd_sigcode(sig, BPF_CORE_READ(info, si_code));
		/* The mask the handler returns to, as FreeBSD's postsig() and
		 * PTRACE_GETSIGMASK give it: the one saved before a
		 * sigsuspend-like call, while that call's own is in force. */
		if (bpf_core_field_exists(task->restore_sigmask) &&
		    BPF_CORE_READ_BITFIELD_PROBED(task, restore_sigmask))
			blocked = BPF_CORE_READ(task, saved_sigmask.sig[0]);
		else
			blocked = BPF_CORE_READ(task, blocked.sig[0]);
	}
	idx = sig;
	asm volatile("%0 &= 127" : "+r"(idx)); /* a bound the verifier sees */
	if (idx == 0 || idx > LINUX_NSIG)
		return 0;
	signo = st->signo[idx];
	if (handler == 1) /* SIG_IGN */
		return 0;
	if (handler == 0 && st->default_ignored >> (idx - 1) & 1)
		return 0;
#pragma unroll
	for (int k = 0; k < 8; k++) {
		__u32 key = k * 256 + ((blocked >> (8 * k)) & 0xff);
		struct sigmask *m = bpf_map_lookup_elem(&masktab, &key);
		if (m) {
			mask0 |= m->w[0];
			mask1 |= m->w[1];
			mask2 |= m->w[2];
			mask3 |= m->w[3];
		}
	}
	b = get_batch();
	if (!b)
		return 0;
	off = reserve(b, p->file, tgid, HDR_V1 + 40);
	hdr = put_header(b, off, p, KTR_PSIG, 40, tgid, tid);
	__u8 *d = b->data + ((off + hdr) & BATCH_MASK);
	*(__s32 *)(d + 0) = signo;
	*(__u32 *)(d + 4) = 0;
	*(__u64 *)(d + 8) = handler;
	*(__s32 *)(d + 16) = code;
	*(__u32 *)(d + 20) = mask0;
	*(__u32 *)(d + 24) = mask1;
	*(__u32 *)(d + 28) = mask2;
	*(__u32 *)(d + 32) = mask3;
	*(__u32 *)(d + 36) = 0;
	commit(b, hdr + 40);
	return 0;
}

/* Syscall names, 7 characters and a NUL: the wait message of a CSW record. */
struct wmesg {
	char s[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSTAB_SIZE);
	__type(key, __u32);
	__type(value, struct wmesg);
} sysnames SEC(".maps");

/* Threads switched out asleep in a system call, with its wait message. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct wmesg);
} asleep SEC(".maps");

/* One CSW record (struct ktr_csw: out, user, wmesg[8]); `who` is the task
 * switched in, whose name the header carries, or NULL for current. */
static __always_inline void csw(struct proc *p, __u32 pid, __u32 tid, int out,
				struct wmesg *w, struct task_struct *who)
{
	struct batch *b = get_batch();
	__u32 off, hdr;
	__u8 *d;

	if (!b)
		return;
	off = reserve(b, p->file, pid, HDR_V1 + 16);
	hdr = put_hdr(b->data + (off & BATCH_MASK), p, KTR_CSW, 16, pid, tid, who ? who->comm : NULL);
	d = b->data + ((off + hdr) & BATCH_MASK);
	*(__s32 *)(d + 0) = out;
	*(__s32 *)(d + 4) = 0; /* asleep in the kernel, not preempted in user mode */
	*(__u64 *)(d + 8) = *(__u64 *)w->s;
	commit(b, hdr + 16);
}

/*
 * Any task leaving this CPU: its records must be in the ring before it can
 * run elsewhere.  With `w`, a traced thread going to sleep in a system call
 * gets a CSW "out" record (the wait message is the call's name), and one
 * "in" record when it is switched back in: FreeBSD's ktrcsw() around a
 * sleep, exact here where ptrace can only infer it from counters.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(ktr_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct batch *b = get_batch();
	struct cfg *c = get_cfg();
	int watch = c && c->watch & WATCH_CSW;

	if (watch && !preempt && prev_state != 0 /* TASK_RUNNING */) {
		__u32 pid = BPF_CORE_READ(prev, tgid), tid = BPF_CORE_READ(prev, pid);
		struct proc *p = bpf_map_lookup_elem(&traced, &pid);
		if (p && p->facs & KTRFAC(KTR_CSW)) {
			struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(prev);
			long nr = regs ? BPF_CORE_READ(regs, orig_ax) : -1;
			if (nr >= 0 && nr < MAX_SYSCALL) {
				__u32 k = sys_key(nr, in_compat(prev));
				struct wmesg *w = bpf_map_lookup_elem(&sysnames, &k);
				if (w) {
					csw(p, pid, tid, 1, w, NULL);
					bpf_map_update_elem(&asleep, &tid, w, BPF_ANY);
				}
			}
		}
	}
	if (b && b->hdr_len)
		flush(b);
	if (watch) {
		__u32 tid = BPF_CORE_READ(next, pid);
		struct wmesg *w = bpf_map_lookup_elem(&asleep, &tid);
		if (w) {
			__u32 pid = BPF_CORE_READ(next, tgid);
			struct proc *p = bpf_map_lookup_elem(&traced, &pid);
			if (p && p->facs & KTRFAC(KTR_CSW))
				csw(p, pid, tid, 0, w, next);
			bpf_map_delete_elem(&asleep, &tid);
		}
	}
	return 0;
}

/* x86 page fault error code bits, and FreeBSD's vm_prot_t. */
#define X86_PF_WRITE 0x2
#define X86_PF_INSTR 0x10
#define VM_PROT_READ 1
#define VM_PROT_WRITE 2
#define VM_PROT_EXECUTE 4
#define KERN_SUCCESS 0

/*
 * PFLT and PRET (-t f): a user page fault of a traced process, with the
 * faulting access as FreeBSD's trap_pfault() gives it.  Linux has no
 * tracepoint where the fault ends, so PRET follows at once and says
 * KERN_SUCCESS; a fault that fails is followed by its SIGSEGV or SIGBUS.
 */
SEC("tp_btf/page_fault_user")
int BPF_PROG(ktr_fault, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	struct cfg *c = get_cfg();
	__u32 tgid, tid, off, hdr;
	struct proc *p;
	struct batch *b;
	__u8 *d;

	if (!c || !(c->watch & WATCH_FAULT))
		return 0;
	p = traced_proc(&tgid, &tid);
	if (!p || !(p->facs & (KTRFAC(KTR_FAULT) | KTRFAC(KTR_FAULTEND))))
		return 0;
	b = get_batch();
	if (!b)
		return 0;
	if (p->facs & KTRFAC(KTR_FAULT)) {
		off = reserve(b, p->file, tgid, HDR_V1 + 16);
		hdr = put_header(b, off, p, KTR_FAULT, 16, tgid, tid);
		d = b->data + ((off + hdr) & BATCH_MASK);
		*(__u64 *)(d + 0) = address;
		*(__s32 *)(d + 8) = error_code & X86_PF_INSTR ? VM_PROT_EXECUTE :
				    error_code & X86_PF_WRITE ? VM_PROT_WRITE : VM_PROT_READ;
		*(__u32 *)(d + 12) = 0;
		commit(b, hdr + 16);
	}
	if (p->facs & KTRFAC(KTR_FAULTEND)) {
		off = reserve(b, p->file, tgid, HDR_V1 + 4);
		hdr = put_header(b, off, p, KTR_FAULTEND, 4, tgid, tid);
		*(__s32 *)(b->data + ((off + hdr) & BATCH_MASK)) = KERN_SUCCESS;
		commit(b, hdr + 4);
	}
	return 0;
}
