/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The core of ktrace.bpf.c: FreeBSD's numbers, the maps, and the per-CPU
 * batches whole records are built in (reserve, header, commit, flush).
 */
#ifndef KTRACE_RECORDS_BPF_H
#define KTRACE_RECORDS_BPF_H

/* FreeBSD's record types and facility bits (sys/sys/ktrace.h). */
#define KTR_SYSCALL 1
#define KTR_SYSRET 2
#define KTR_NAMEI 3
#define KTR_GENIO 4
#define KTR_PSIG 5
#define KTR_CSW 6
#define KTR_USER 7
#define KTR_STRUCT 8
#define KTR_SYSCTL 9
#define KTR_PROCCTOR 10
#define KTR_PROCDTOR 11
#define KTR_FAULT 13
#define KTR_FAULTEND 14
#define KTR_ARGS 16
#define KTR_ENVS 17
#define KTR_DROP 0x8000
#define KTR_VERSIONED 0x4000
#define KTRFAC(t) (1u << (t))
#define KTRFAC_INHERIT 0x40000000u
#define UIO_READ 0
#define UIO_WRITE 1
#define ERESTART (-1)
#define EJUSTRETURN (-2)
#define SV_ABI_LINUX 3
#define SV_LP64 0x200
/* FreeBSD's linux32 sysentvec on amd64 (docs/FORMAT.md): ILP32 and IA32,
 * with its shared page, timekeep page and Linux signal quirks. */
#define SV_ILP32 0x100
#define SV_IA32 0x4000
#define SV_SHP 0x10000
#define SV_TIMEKEEP 0x40000
#define SV_SIG_DISCIGN 0x200000
#define SV_SIG_WAITNDQ 0x400000
#define SV_FLAGS_LINUX64 (SV_ABI_LINUX | SV_LP64)
#define SV_FLAGS_LINUX32 (SV_ABI_LINUX | SV_ILP32 | SV_IA32 | SV_SHP | SV_TIMEKEEP | \
			  SV_SIG_DISCIGN | SV_SIG_WAITNDQ)

#define HDR_V1 64 /* sizeof(struct ktr_header) v1 on amd64 */
#define HDR_V0 56
#define PATH_BYTES 4096 /* PATH_MAX, NUL included: what the ptrace engine reads */
#define GENIO_MAX 4096  /* the largest --genio-size the backend honours */
#define REC_MAX (HDR_V1 + 8 + GENIO_MAX)
#define BATCH_DATA 16384 /* power of two: offsets are masked with it for the verifier */
#define BATCH_MASK (BATCH_DATA - 1)
#define BATCH_PIDS 4
#define MAX_SYSCALL 1024
/* systab and sysnames hold the x86_64 calls, then the i386 (int $0x80)
 * calls from I386_BASE on: the key of a call is its number plus the base
 * of the ABI it entered with. */
#define I386_BASE MAX_SYSCALL
#define SYSTAB_SIZE (2 * MAX_SYSCALL)
#define MAX_ERRNO 4096

/* Syscall table flags (systab.flags). */
#define SYS_EXEC 1
#define SYS_GIO_READ 2
#define SYS_GIO_WRITE 4
#define SYS_SIGRETURN 8
#define SYS_PRCTL 16
#define SYS_OPEN 32 /* open, openat, openat2: a /proc/sys path makes a SCTL record */
#define SYS_SETITIMER 64
#define SYS_GIO_IOV 128 /* readv, writev and their positioned forms */
#define SYS_GIO_MSG 256 /* recvmsg, sendmsg: the iovec array is in the msghdr */
#define SYS_GIO_OUT 512 /* the vector call writes (else it reads) */

/* The `u` convention: prctl(UTRACE_PRCTL, addr, len) is a harmless EINVAL
 * for the kernel and a KTR_USER record for pyktrace. */
#define UTRACE_PRCTL 0x6b747275
#define KTR_USER_MAXLEN 2048

struct proc {
	__u32 facs;
	__u32 file;      /* index of the trace file (the drainer's table) */
	__u32 version;   /* header version of that file: 0 or 1 */
	__u32 genio;     /* bytes of data per GIO record */
	__u32 drop_pending;
	__u32 fatal_logged; /* the PSIG of a fatal signal is written once */
	__u64 dropped;   /* records lost in the ring for this process */
	__u32 abi32;     /* its last PROCCTOR says linux32: its last call was i386 */
	__u32 setid_stop; /* the engine is not root's: an exec that changes credentials ends the trace */
};

struct sysent {
	__u8 narg;
	__u8 pathmask; /* bit i: argument i is a path (NAMI) */
	__u16 flags;
	__u8 stru;     /* STRU_*: the structure a STRU record shows */
	__u8 stru_arg; /* the argument that points to it */
	__u16 sig;     /* STRU_SIGSET: where the call's masks are (SIGSET_* below) */
};

/* STRU kinds, as trace/rules.py numbers them. */
#define STRU_STAT 1         /* struct stat * at exit */
#define STRU_STATX 2        /* struct statx * at exit */
#define STRU_SOCKADDR_IN 3  /* (addr, addrlen) at entry */
#define STRU_SOCKADDR_OUT 4 /* (addr, socklen_t *) at exit */
#define STRU_ITIMERVAL 5    /* setitimer: new at entry, old at exit; getitimer at exit */
#define STRU_SIGSET 6       /* l_sigset_t masks, where the Linuxulator logs them */
#define STRU_FDPAIR 7       /* the int[2] of pipe, pipe2 (argument 0) or socketpair (3), at exit */

/* sysent.sig, as trace/sigsets.py packs it: the argument holding the
 * sigsetsize, the argument pointing to the mask copied in (plus one; 0:
 * none) and to the mask handed back, each either the mask itself or a
 * struct sigaction whose mask follows three words, and whether argument 0
 * must be a signal number (rt_sigaction). */
#define SIGSET_SIZE_ARG(d) ((d) & 7)
#define SIGSET_ENTRY_PTR(d) (((d) >> 3) & 7)
#define SIGSET_ENTRY_SA 0x40
#define SIGSET_EXIT_PTR(d) (((d) >> 7) & 7)
#define SIGSET_EXIT_SA 0x400
#define SIGSET_SIGNO 0x800

#define WATCH_CSW 1   /* some process is traced with `w` */
#define WATCH_FAULT 2 /* some process is traced with `f` */

struct cfg {
	__u64 realtime_off; /* CLOCK_REALTIME - CLOCK_MONOTONIC, kept by the loader */
	__u32 batch_limit;  /* flush a batch once it would exceed this */
	__u32 wake_at;      /* force one wake-up once this many bytes wait */
	__u32 woken;        /* set by the first forced wake-up, cleared by the drainer */
	__u32 watch;        /* WATCH_*: hooks on every switch or fault look only when asked */
	__u64 lost_batches;
	__u64 lost_records;
};

struct batch {
	__u32 npids;
	__u32 slot;
	__u32 pids[BATCH_PIDS];
	__u32 counts[BATCH_PIDS];
	/* The ring-buffer sample starts here. */
	__u32 hdr_file;
	__u32 hdr_len;
	__u8 data[BATCH_DATA + REC_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct proc);
} traced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} nami_retry SEC(".maps"); /* bits 0-5: path arguments; RETRY_SIGSET */

/* The mask a signal call copies in could not be read at entry: read it
 * again at exit, where it still comes before the RET (and the mask the
 * call hands back), as the ptrace engine orders them. */
#define RETRY_SIGSET (1u << 8)

/*
 * Threads inside a call whose exit cannot tell which call it was, by
 * thread, with the call's systab key: rt_sigreturn and sigreturn reset
 * orig_ax to -1 from the frame, and a successful exec sets orig_ax and
 * TS_COMPAT for the new image (an execveat looks like an execve, an i386
 * exec of an x86_64 image like an x86_64 one).  LRU: a thread that leaves
 * without its exit (a -c in between) leaves no entry for ever.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} entered SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSTAB_SIZE);
	__type(key, __u32);
	__type(value, struct sysent);
} systab SEC(".maps");

#define LINUX_NSIG 64
#define LX_SIGKILL 9
#define SIGNAL_GROUP_EXIT 0x4 /* signal_struct.flags (linux/sched/signal.h) */

/* Linux signal numbers to FreeBSD's, for the record's signo. */
struct sigtab {
	__s32 signo[LINUX_NSIG + 1];
	__u32 pad;
	__u64 default_ignored; /* bit n-1: signal n does nothing by default (or stops) */
};

/* A Linux mask to FreeBSD's sigset, a byte at a time: entry k * 256 + b is
 * FreeBSD's set for byte k of the Linux mask being b. */
struct sigmask {
	__u32 w[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8 * 256);
	__type(key, __u32);
	__type(value, struct sigmask);
} masktab SEC(".maps");

/* Linux si_code -> the FreeBSD code the Linuxulator stores, filled from
 * ktrace_cli's tables.  Key: (Linux signal << 16) | (code & 0xffff), with
 * signal 0 for the codes that mean the same for every signal (<= 0 and
 * SI_KERNEL).  A code missing here is stored as LINUX_ONLY_CODE_BASE plus
 * its low 16 bits, as the ptrace backend does. */
#define LINUX_SI_KERNEL 0x80
#define LINUX_ONLY_CODE_BASE 0x20000
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __s32);
} sicodetab SEC(".maps");

static __always_inline __s32 freebsd_sigcode(int sig, __s32 code)
{
	__u32 low = (__u32)code & 0xffff;
	__u32 key = (code <= 0 || code == LINUX_SI_KERNEL) ? low : ((__u32)sig << 16) | low;
	__s32 *v = bpf_map_lookup_elem(&sicodetab, &key);

	return v ? *v : LINUX_ONLY_CODE_BASE + (__s32)low;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sigtab);
} sigtab SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_ERRNO);
	__type(key, __u32);
	__type(value, __s32);
} errmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct cfg);
} ktr_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct batch);
} batches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* the loader may change it before load */
} ring SEC(".maps");

static __always_inline struct cfg *get_cfg(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&ktr_config, &z);
}

/*
 * Send the batch to the ring as one sample.  hdr_len is the number of
 * bytes used.  When the ring is full the batch is lost: each process
 * whose records were in it has them counted, and its next record carries
 * KTR_DROP, as kern_ktrace.c marks the record after a request-pool drop.
 */
/* A global function: the verifier checks it once, not at every call site,
 * which keeps loading fast. */
__noinline int flush(struct batch *b)
{
	if (!b)
		return 0;
	__u32 n = b->hdr_len;
	struct cfg *c;
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (n == 0)
		return 0;
	if (n > BATCH_DATA + REC_MAX)
		n = BATCH_DATA + REC_MAX;
	c = get_cfg();
	if (c && c->wake_at && !c->woken &&
	    bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA) + n > c->wake_at &&
	    __sync_lock_test_and_set(&c->woken, 1) == 0)
		flags = BPF_RB_FORCE_WAKEUP; /* once per drain: no wake-up storm */
	if (bpf_ringbuf_output(&ring, &b->hdr_file, n + 8, flags) != 0) {
		__u32 lost = 0;
#pragma unroll
		for (int i = 0; i < BATCH_PIDS; i++) {
			if (i >= b->npids)
				break;
			__u32 pid = b->pids[i];
			struct proc *p = bpf_map_lookup_elem(&traced, &pid);
			lost += b->counts[i];
			if (p) {
				__sync_fetch_and_add(&p->dropped, b->counts[i]);
				p->drop_pending = 1;
			}
		}
		if (c) {
			__sync_fetch_and_add(&c->lost_batches, 1);
			__sync_fetch_and_add(&c->lost_records, lost);
		}
	}
	b->hdr_len = 0;
	b->npids = 0;
	return 0;
}

static __always_inline struct batch *get_batch(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&batches, &z);
}

/*
 * Make room for a record of at most `maxlen` bytes for process `tgid` of
 * file `file`; the record goes at the returned offset (already bounded for
 * the verifier).  -1 if there is no batch.
 */
static __always_inline int reserve(struct batch *b, __u32 file, __u32 tgid, __u32 maxlen)
{
	struct cfg *c = get_cfg();
	__u32 limit = c ? c->batch_limit : BATCH_DATA - 1;
	int slot = -1;

	if (limit == 0 || limit > BATCH_DATA - 1)
		limit = BATCH_DATA - 1;
	if (b->hdr_len && (b->hdr_file != file || b->hdr_len + maxlen > limit))
		flush(b);
#pragma unroll
	for (int i = 0; i < BATCH_PIDS; i++) {
		if (i < b->npids && b->pids[i] == tgid)
			slot = i;
	}
	if (slot < 0) {
		if (b->npids >= BATCH_PIDS)
			flush(b);
		slot = b->npids & (BATCH_PIDS - 1);
		b->pids[slot] = tgid;
		b->counts[slot] = 0;
		b->npids = slot + 1;
	}
	b->slot = slot;
	b->hdr_file = file;
	return b->hdr_len & BATCH_MASK;
}

static __always_inline void commit(struct batch *b, __u32 len)
{
	b->counts[b->slot & (BATCH_PIDS - 1)]++;
	b->hdr_len += len;
}

static __always_inline __u16 drop_mark(struct proc *p)
{
	if (p->drop_pending && __sync_lock_test_and_set(&p->drop_pending, 0))
		return KTR_DROP;
	return 0;
}

/*
 * The header at data[off]: v1 (64 bytes, nanoseconds, CPU) or v0 (56
 * bytes, microseconds).  Returns the header's size.
 */
static __always_inline __u32 put_hdr(__u8 *h, struct proc *p, __u16 type, __u32 payload,
				     __u32 pid, __u32 tid, const char *comm)
{
	struct cfg *c = get_cfg();
	__u64 ns = bpf_ktime_get_ns() + (c ? c->realtime_off : 0);
	__u16 drop = drop_mark(p);

	*(__s32 *)(h + 0) = payload;
	*(__u32 *)(h + 8) = pid;
	if (comm) /* another name than current's (CSW in, the records of an exec) */
		bpf_probe_read_kernel(h + 12, 16, comm);
	else
		bpf_get_current_comm(h + 12, 16);
	*(__u32 *)(h + 28) = 0; /* comm is MAXCOMLEN + 1 = 20 bytes in FreeBSD */
	*(__s64 *)(h + 32) = ns / 1000000000;
	*(__s64 *)(h + 48) = tid;
	if (p->version) {
		*(__u16 *)(h + 4) = type | KTR_VERSIONED | drop;
		*(__u16 *)(h + 6) = 1;
		*(__s64 *)(h + 40) = ns % 1000000000;
		*(__s32 *)(h + 56) = bpf_get_smp_processor_id();
		*(__u32 *)(h + 60) = 0;
		return HDR_V1;
	}
	*(__u16 *)(h + 4) = type | drop;
	*(__u16 *)(h + 6) = 0;
	*(__s64 *)(h + 40) = (ns % 1000000000) / 1000;
	return HDR_V0;
}

static __always_inline __u32 put_header(struct batch *b, __u32 off, struct proc *p, __u16 type,
					__u32 payload, __u32 pid, __u32 tid)
{
	return put_hdr(b->data + (off & BATCH_MASK), p, type, payload, pid, tid, NULL);
}

static __always_inline struct proc *traced_proc(__u32 *tgid, __u32 *tid)
{
	__u64 id = bpf_get_current_pid_tgid();

	*tgid = id >> 32;
	*tid = (__u32)id;
	return bpf_map_lookup_elem(&traced, tgid);
}

/*
 * An i386 system call under way: x86's in_ia32_syscall(), the bit the
 * 32-bit entry (int $0x80, sysenter, syscall from 32-bit code) sets in the
 * thread's status and the return to user mode clears.  It is what the
 * kernel's audit arch, and so PTRACE_GET_SYSCALL_INFO, reports; the code
 * segment would not do: 64-bit code may issue int $0x80.
 */
#define TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h */

static __always_inline int in_compat(struct task_struct *t)
{
	return (t->thread_info.status & TS_COMPAT) != 0; /* a trusted BTF pointer: a plain load */
}

static __always_inline __u32 sys_key(long nr, int compat)
{
	return nr + (compat ? I386_BASE : 0);
}

/* Argument i of the call: an i386 call's are the low halves of ebx, ecx,
 * edx, esi, edi, ebp (64-bit code issuing int $0x80 may have left the
 * upper halves set; the kernel ignores them), zero-extended. */
static __always_inline __u64 arg_of(struct pt_regs *regs, int i, int compat)
{
	if (compat) {
		switch (i) {
		case 0: return (__u32)BPF_CORE_READ(regs, bx);
		case 1: return (__u32)BPF_CORE_READ(regs, cx);
		case 2: return (__u32)BPF_CORE_READ(regs, dx);
		case 3: return (__u32)BPF_CORE_READ(regs, si);
		case 4: return (__u32)BPF_CORE_READ(regs, di);
		default: return (__u32)BPF_CORE_READ(regs, bp);
		}
	}
	switch (i) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	default: return BPF_CORE_READ(regs, r9);
	}
}

static __always_inline __u32 hdr_size(struct proc *p)
{
	return p->version ? HDR_V1 : HDR_V0;
}

#endif
