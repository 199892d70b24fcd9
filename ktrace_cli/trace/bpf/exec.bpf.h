/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What an exec looked up, for the NAMI records FreeBSD's exec writes: the
 * program's path, then each interpreter an image activator looked up (a
 * script's `#!` interpreter, an ELF image's PT_INTERP), in that order and
 * after the ARGS and ENVS records (docs/FORMAT.md), all under the name of
 * the image that called exec.
 *
 * The argument and environment strings are in memory the tracepoints can
 * read only once the new image has replaced the old one
 * (sched_process_exec), so that is where a successful exec's records are
 * written, from the kernel's own copies of the names (linux_binprm), under
 * the caller's name kept here from the call's entry.  The ELF interpreter's
 * name is in no structure left at that point (docs/DESIGN.md).
 */
#ifndef KTRACE_EXEC_BPF_H
#define KTRACE_EXEC_BPF_H

#include "records.bpf.h"

#define COMM_BYTES 16

/* What an exec's entry wrote: all, or the first record it could not read
 * (that one and the rest wait). */
#define EXEC_ARGS 0
#define EXEC_ENVS 1
#define EXEC_NAMI 2
#define EXEC_DONE 3

struct exec_comm {
	char s[COMM_BYTES];
	__u32 deferred; /* EXEC_*: the first record still to write */
};

/* The name of the image in an exec call, by thread id.  LRU: a thread
 * killed inside the call leaves no entry for ever. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct exec_comm);
} exec_comms SEC(".maps");

/* One NAMI record for a name in kernel memory, under `comm` (NULL: current's). */
static __always_inline void nami_kernel(struct proc *p, __u32 tgid, __u32 tid, const char *name,
					const char *comm)
{
	struct batch *b = get_batch();
	__u32 off, hdr = hdr_size(p);
	long n;

	if (!b || !name)
		return;
	off = reserve(b, p->file, tgid, HDR_V1 + PATH_BYTES);
	n = bpf_probe_read_kernel_str(b->data + ((off + hdr) & BATCH_MASK), PATH_BYTES, name);
	if (n <= 1)
		return;
	n -= 1; /* without its NUL, as FreeBSD records it */
	put_hdr(b->data + (off & BATCH_MASK), p, KTR_NAMEI, n, tgid, tid, comm);
	commit(b, hdr + n);
}

/*
 * The path the exec was given, from the kernel's copy: the name itself,
 * except for an execveat relative to a descriptor, which the kernel names
 * "/dev/fd/N/name" ("/dev/fd/N" for AT_EMPTY_PATH, where no name was
 * looked up: NULL).
 */
#define DEV_FD_LEN 8 /* "/dev/fd/" */
#define FD_PREFIX_MAX 24

static __always_inline const char *exec_path(struct linux_binprm *bprm)
{
	const char *f = BPF_CORE_READ(bprm, filename);
	char head[FD_PREFIX_MAX];

	if (!BPF_CORE_READ(bprm, fdpath))
		return f;
	if (bpf_probe_read_kernel_str(head, sizeof(head), f) <= DEV_FD_LEN)
		return NULL;
#pragma unroll
	for (int i = DEV_FD_LEN; i < FD_PREFIX_MAX; i++) {
		if (head[i] == '/')
			return f + i + 1;
		if (head[i] == 0)
			return NULL;
	}
	return NULL;
}

#endif
