/* SPDX-License-Identifier: GPL-2.0 */
/*
 * STRU records of ktrace.bpf.c: Linux structures in FreeBSD's amd64
 * layouts, as trace/convert.py makes them for the ptrace engine.
 */
#ifndef KTRACE_STRU_BPF_H
#define KTRACE_STRU_BPF_H

#include "records.bpf.h"

/* A STRU record's start: the header after reserve(), then the structure's
 * name with its NUL; returns the offset of the structure's bytes. */
#define STRU_MAX (16 + 256) /* name and the largest structure (a sockaddr) */

static __always_inline struct batch *stru_begin(struct proc *p, __u32 tgid, __u32 *offp)
{
	struct batch *b = get_batch();

	if (b)
		*offp = reserve(b, p->file, tgid, HDR_V1 + STRU_MAX);
	return b;
}

/* FreeBSD's dev_t from Linux's: the major and minor split, packed by
 * FreeBSD's makedev(). */
static __always_inline __u64 freebsd_dev(__u64 dev)
{
	__u64 major = ((dev >> 32) & 0xFFFFF000) | ((dev >> 8) & 0xFFF);
	__u64 minor = ((dev >> 12) & 0xFFFFFF00) | (dev & 0xFF);

	return ((major & 0xFFFFFF00) << 32) | ((major & 0xFF) << 8) | ((minor & 0xFF00) << 24) |
	       (minor & 0xFFFF00FF);
}

static __always_inline __u64 freebsd_makedev(__u64 major, __u64 minor)
{
	return ((major & 0xFFFFFF00) << 32) | ((major & 0xFF) << 8) | ((minor & 0xFF00) << 24) |
	       (minor & 0xFFFF00FF);
}

/* Linux x86-64 struct stat (144 bytes) and the fields of struct statx used. */
struct lx_stat {
	__u64 dev, ino, nlink;
	__u32 mode, uid, gid, pad0;
	__u64 rdev;
	__s64 size, blksize, blocks;
	__s64 atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns;
	__s64 reserved[3];
};

struct lx_statx_ts {
	__s64 sec;
	__u32 nsec, pad;
};

struct lx_statx {
	__u32 mask, blksize;
	__u64 attributes;
	__u32 nlink, uid, gid;
	__u16 mode, pad0;
	__u64 ino, size, blocks, attributes_mask;
	struct lx_statx_ts atime, btime, ctime, mtime;
	__u32 rdev_major, rdev_minor, dev_major, dev_minor;
};

/* FreeBSD amd64 struct stat (224 bytes). */
struct fb_stat {
	__u64 dev, ino, nlink;
	__u16 mode;
	__s16 padding0;
	__u32 uid, gid, padding1;
	__u64 rdev;
	__s64 atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns, birthtime, birthtime_ns;
	__s64 size, blocks;
	__s32 blksize;
	__u32 flags;
	__u64 gen;
	__u64 spare[10];
};

#define STATX_BTIME 0x800

/* STRU "stat" from a stat or statx buffer the kernel has just filled. */
static __always_inline void stru_stat(struct proc *p, __u32 tgid, __u32 tid, __u64 addr, int is_statx)
{
	__u32 off, hdr = hdr_size(p);
	struct batch *b = stru_begin(p, tgid, &off);
	struct fb_stat *f;
	__u8 *d;

	if (!b || !addr)
		return;
	d = b->data + ((off + hdr) & BATCH_MASK);
	__builtin_memcpy(d, "stat", 5);
	f = (struct fb_stat *)(d + 5);
	if (is_statx) {
		struct lx_statx x;
		if (bpf_probe_read_user(&x, sizeof(x), (void *)addr) != 0)
			return;
		__builtin_memset(f, 0, sizeof(*f));
		f->dev = freebsd_makedev(x.dev_major, x.dev_minor);
		f->ino = x.ino;
		f->nlink = x.nlink;
		f->mode = x.mode;
		f->uid = x.uid;
		f->gid = x.gid;
		f->rdev = freebsd_makedev(x.rdev_major, x.rdev_minor);
		f->atime = x.atime.sec;
		f->atime_ns = x.atime.nsec;
		f->mtime = x.mtime.sec;
		f->mtime_ns = x.mtime.nsec;
		f->ctime = x.ctime.sec;
		f->ctime_ns = x.ctime.nsec;
		f->birthtime = x.mask & STATX_BTIME ? x.btime.sec : -1;
		f->birthtime_ns = x.mask & STATX_BTIME ? x.btime.nsec : 0;
		f->size = x.size;
		f->blocks = x.blocks;
		f->blksize = x.blksize;
	} else {
		struct lx_stat l;
		if (bpf_probe_read_user(&l, sizeof(l), (void *)addr) != 0)
			return;
		__builtin_memset(f, 0, sizeof(*f));
		f->dev = freebsd_dev(l.dev);
		f->ino = l.ino;
		f->nlink = l.nlink;
		f->mode = l.mode;
		f->uid = l.uid;
		f->gid = l.gid;
		f->rdev = freebsd_dev(l.rdev);
		f->atime = l.atime;
		f->atime_ns = l.atime_ns;
		f->mtime = l.mtime;
		f->mtime_ns = l.mtime_ns;
		f->ctime = l.ctime;
		f->ctime_ns = l.ctime_ns;
		f->birthtime = -1; /* Linux's stat has no birth time */
		f->size = l.size;
		f->blocks = l.blocks;
		f->blksize = l.blksize;
	}
	put_header(b, off, p, KTR_STRUCT, 5 + sizeof(*f), tgid, tid);
	commit(b, hdr + 5 + sizeof(*f));
}

/* Linux address families to FreeBSD's; 0xff: FreeBSD has none (no record). */
static __always_inline __u8 freebsd_family(__u16 f)
{
	switch (f) {
	case 0: return 0;   /* AF_UNSPEC */
	case 1: return 1;   /* AF_UNIX */
	case 2: return 2;   /* AF_INET */
	case 10: return 28; /* AF_INET6 */
	case 16: return 38; /* AF_NETLINK */
	case 31: return 36; /* AF_BLUETOOTH */
	default: return 0xff;
	}
}

#define SOCKADDR_MAX 255 /* sa_len is one byte */
#define SUN_PATH_FREEBSD 104

/* STRU "sockaddr": FreeBSD's (sa_len, sa_family, data) from Linux's. */
static __always_inline void stru_sockaddr(struct proc *p, __u32 tgid, __u32 tid, __u64 addr, __u64 alen)
{
	__u32 off, hdr = hdr_size(p), n;
	struct batch *b;
	__u16 lfam;
	__u8 fam, *d;

	if (!addr || alen < 2 || alen > 4096)
		return;
	if (bpf_probe_read_user(&lfam, 2, (void *)addr) != 0)
		return;
	fam = freebsd_family(lfam);
	if (fam == 0xff)
		return;
	n = alen - 2; /* the data after the family */
	if (fam == 1 && n > SUN_PATH_FREEBSD)
		n = SUN_PATH_FREEBSD;
	if (n > SOCKADDR_MAX - 2)
		n = SOCKADDR_MAX - 2;
	b = stru_begin(p, tgid, &off);
	if (!b)
		return;
	d = b->data + ((off + hdr) & BATCH_MASK);
	__builtin_memcpy(d, "sockaddr", 9);
	if (n && bpf_probe_read_user(d + 11, n, (void *)(addr + 2)) != 0)
		return;
	d[9] = n + 2;
	d[10] = fam;
	put_header(b, off, p, KTR_STRUCT, 11 + n, tgid, tid);
	commit(b, hdr + 11 + n);
}

/* STRU "itimerval": the same layout on both systems. */
static __always_inline void stru_itimerval(struct proc *p, __u32 tgid, __u32 tid, __u64 addr)
{
	__u32 off, hdr = hdr_size(p);
	struct batch *b;
	__u8 *d;

	if (!addr)
		return;
	b = stru_begin(p, tgid, &off);
	if (!b)
		return;
	d = b->data + ((off + hdr) & BATCH_MASK);
	__builtin_memcpy(d, "itimerval", 10);
	if (bpf_probe_read_user(d + 10, 32, (void *)addr) != 0)
		return;
	put_header(b, off, p, KTR_STRUCT, 10 + 32, tgid, tid);
	commit(b, hdr + 10 + 32);
}

/*
 * STRU "l_sigset_t": the 8-byte Linux mask a signal call copied in (at
 * entry) or handed back (at exit, on success), as FreeBSD's Linuxulator
 * logs it and trace/sigsets.py finds it for the ptrace engine: nothing
 * when sigsetsize is not 8, nor for rt_sigaction of a signal outside 1..64.
 * Inside a struct sigaction the mask follows the handler, flags and
 * restorer: three words, of 8 bytes on x86_64 and 4 on i386.
 */
#define LX_SIGSET_SIZE 8
#define LX_NSIG 64

static __always_inline int stru_sigset(struct proc *p, __u32 tgid, __u32 tid, struct pt_regs *regs,
				       int compat, __u16 desc, int at_exit)
{
	__u32 ptr = at_exit ? SIGSET_EXIT_PTR(desc) : SIGSET_ENTRY_PTR(desc), off, hdr = hdr_size(p);
	__u64 addr, signo;
	struct batch *b;
	__u8 *d;

	if (ptr == 0 || arg_of(regs, SIGSET_SIZE_ARG(desc), compat) != LX_SIGSET_SIZE)
		return 0;
	if (desc & SIGSET_SIGNO) {
		signo = arg_of(regs, 0, compat);
		if (signo < 1 || signo > LX_NSIG)
			return 0;
	}
	addr = arg_of(regs, ptr - 1, compat);
	if (!addr)
		return 0;
	if (desc & (at_exit ? SIGSET_EXIT_SA : SIGSET_ENTRY_SA))
		addr += compat ? 3 * 4 : 3 * 8;
	b = stru_begin(p, tgid, &off);
	if (!b)
		return 0;
	d = b->data + ((off + hdr) & BATCH_MASK);
	__builtin_memcpy(d, "l_sigset_t", 11);
	if (bpf_probe_read_user(d + 11, LX_SIGSET_SIZE, (void *)addr) != 0)
		return 1;
	put_header(b, off, p, KTR_STRUCT, 11 + LX_SIGSET_SIZE, tgid, tid);
	commit(b, hdr + 11 + LX_SIGSET_SIZE);
	return 0;
}

/*
 * STRU "fdpair" (ours, docs/FORMAT.md): the two descriptors a pipe, pipe2
 * or socketpair wrote to its int[2], and the inode numbers of the files
 * they name (what /proc/PID/fd shows as pipe:[N] or socket:[N]), read from
 * the calling task's descriptor table, where the call has just put them.
 */
#define FDPAIR_PIPE 1
#define FDPAIR_SOCKET 2

struct fdpair {
	__s32 fd[2];
	__u32 kind;
	__u32 family; /* FreeBSD's number for a socketpair's domain; 0 for a pipe */
	__u64 ino[2]; /* 0: not known */
};

/* The inode number of the file descriptor `fd` of the current task names; 0 if none. */
static __always_inline __u64 fd_ino(__s32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **array, *f = NULL;

	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	array = BPF_CORE_READ(fdt, fd);
	if (!array || bpf_probe_read_kernel(&f, sizeof(f), array + fd) != 0 || !f)
		return 0;
	return BPF_CORE_READ(f, f_inode, i_ino);
}

static __always_inline void stru_fdpair(struct proc *p, __u32 tgid, __u32 tid, __u64 addr, int socket,
					__u64 domain)
{
	__u32 off, hdr = hdr_size(p);
	struct fdpair pair = {};
	struct batch *b;
	__u8 fam, *d;

	if (!addr || bpf_probe_read_user(pair.fd, sizeof(pair.fd), (void *)addr) != 0)
		return;
	pair.kind = socket ? FDPAIR_SOCKET : FDPAIR_PIPE;
	if (socket) {
		fam = freebsd_family(domain);
		pair.family = fam == 0xff ? 0 : fam;
	}
	pair.ino[0] = fd_ino(pair.fd[0]);
	pair.ino[1] = fd_ino(pair.fd[1]);
	b = stru_begin(p, tgid, &off);
	if (!b)
		return;
	d = b->data + ((off + hdr) & BATCH_MASK);
	__builtin_memcpy(d, "fdpair", 7);
	__builtin_memcpy(d + 7, &pair, sizeof(pair));
	put_header(b, off, p, KTR_STRUCT, 7 + sizeof(pair), tgid, tid);
	commit(b, hdr + 7 + sizeof(pair));
}

#endif
