/*
 * The ptrace engine's wait loop for plain syscall stops, in C (docs/DESIGN.md, Speed).
 *
 * Loaded with ctypes by trace/fastloop.py; libc only, no Python API. kt_run()
 * waits for stops as Engine._wait and Engine._spin_wait do (rounds that
 * collect every pending stop, spin-then-block) and handles a syscall stop
 * itself when it needs nothing but its CALL or RET record: the thread is
 * known (has a slot), its process records normally (x86_64 calls, not
 * passed through or being detached), no RET waits for a restart, and
 * Rules.plain_stops says the call is plain under the process's facilities.
 * It writes the record byte for byte as format/writer.py's TraceFile packs
 * it into the file's buffer here, and resumes the thread. Under the same
 * slot flags it also resumes the stops that need no record and no decision
 * (a new task's first stop, a signal's delivery stop when no PSIG record or
 * signal bookkeeping is due), and writes the CALL of an exec that needs no
 * set-id check and the EJUSTRETURN RETs of sigreturn and a successful exec
 * (rules.PLAIN_*). Every other stop
 * goes back to Python with its wait status and the syscall information
 * already read. Python drains these buffers into its own before it writes
 * a record of its own, so records stay in order.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#define KT_MAX_SYSCALL 1024   /* rules.MAX_SYSCALL */
#define KT_ERRNO_LIMIT 4096   /* convert.ERRNO_LIMIT */
#define KT_SLOTS 16384        /* traced threads known here at once; more go through Python */
#define KT_INDEX (KT_SLOTS * 2)
#define KT_FILES 1024
#define KT_PLAINS 64          /* distinct facility sets in use */
#define KT_READY 4096
/* What Python and this file agree on (slot and file layouts, the plain-table values):
 * fastloop.INTERFACE. Raised with any change to them, so a library built from older
 * sources (an editable install not rebuilt) is refused rather than misread. */
#define KT_INTERFACE 2

#define INFO_SIZE 88
#define OP_ENTRY 1
#define OP_EXIT 2
#define AUDIT_ARCH_X86_64 0xC000003Eu
#define STATUS_SYSCALL_STOP 0x857f
#define STATUS_SECCOMP_STOP ((7 << 16) | (5 << 8) | 0x7f)
#define WAIT_ALL (__WALL | WUNTRACED)
#define EVENT_EXIT 6
#define EVENT_STOP 0x80
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define REQ_SYSCALL 24
#define REQ_GET_SYSCALL_INFO 0x420e

#define FAC_SYSCALL (1 << 1)
#define FAC_SYSRET (1 << 2)
#define KTR_SYSCALL 1
#define KTR_SYSRET 2
#define KTR_VERSIONED 0x4000
#define FREEBSD_ERESTART (-1)  /* FreeBSD's, not Linux's ERESTART */
#define FREEBSD_EJUSTRETURN (-2)
/* rules.plain_stops's values. */
#define PLAIN_UNLESS_SETID 2  /* entry */
#define PLAIN_JUSTRETURN 2    /* exit */
#define PLAIN_EXEC_RET 3      /* exit */
/* kt_slot.flags, set by Python (fastloop.py) */
#define SLOT_SIG_QUIET 1      /* a signal's delivery stop needs no record nor bookkeeping */
#define SLOT_FIRST_STOP 2     /* a new task whose first stop only resumes it */
#define SLOT_NO_SETID 4       /* no set-id check before an exec (root, or a filtered process) */
#define CPU_UNKNOWN (-1)
#define ROUND_SKIP 7          /* engine.ROUND_SKIP */
#define SPIN_NS 60000         /* engine.SPIN_NS */
#define SPIN_SKIP 256
#define BUDGET_NS 5000000     /* back to Python at least this often: its signal handlers run */
#define FLUSH_MARGIN_NS 1000000
#define FILE_HIGH (1 << 20)   /* a buffer this full goes back to Python */

/* kt_run's answers. */
#define KT_STOP 1    /* a stop for Python: shared.pid, .status (and .info if has_info) */
#define KT_IDLE 2    /* records wait and the loop would block with no flush timer armed */
#define KT_INTR 3    /* a signal interrupted the wait: its handler runs in Python */
#define KT_ECHILD 4  /* nothing left to wait for */
#define KT_YIELD 5   /* budget spent, attention asked or a buffer full: Python looks around */

/* One traced thread, written by Python (fastloop.SLOT) and read back after C changed it. */
struct kt_slot {
	int32_t tid;
	int32_t tgid;
	int32_t file;     /* index in files, -1: no file */
	int32_t plain;    /* index in plains */
	int32_t facs;
	int32_t mode_op;  /* PTRACE_SYSCALL, or PTRACE_CONT under a seccomp filter */
	uint8_t ok;       /* recording x86_64 calls, not passed through or being detached */
	uint8_t restart;  /* a RET waits for the thread's next stop (Thread.restart_ret) */
	uint8_t insys;
	uint8_t changed;  /* C changed insys/nr/args/entry_ns since Python last read them */
	int32_t nr;
	int64_t entry_ns;
	uint64_t args[6];
	char comm[20];
	uint8_t argc;     /* 6, or 0 when Thread.args is () */
	uint8_t flags;    /* SLOT_* */
	uint8_t started;  /* C resumed its first stop (Thread.started) */
	uint8_t pad;
};
_Static_assert(sizeof(struct kt_slot) == 112, "fastloop.SLOT's layout");

/* What Python reads after each kt_run(): fastloop.SHARED. */
struct kt_shared {
	int32_t pid;
	int32_t status;
	int32_t has_info;
	volatile int32_t attention;  /* set by the control thread: come back to Python */
	uint8_t info[INFO_SIZE];
	int32_t ndirty;               /* files whose buffers hold records */
	int32_t pad;
	int32_t dirty[KT_FILES];
};

/* One trace file's records written here; Python copies buf[0:len] into its TraceFile's
 * buffer, then zeroes len and dirty and shared.ndirty (fastloop.FILE). */
struct kt_file {
	char *buf;
	uint64_t len, cap;
	int32_t version;
	int32_t used;
	int32_t dirty;
	int32_t pad;
};
_Static_assert(sizeof(struct kt_file) == 40, "fastloop.FILE's layout");

struct kt_state {
	struct kt_shared shared;
	struct kt_slot slots[KT_SLOTS];
	int32_t free_slots[KT_SLOTS];
	int32_t nfree;
	int32_t index_key[KT_INDEX];  /* tid -> slot, open addressing; 0 is empty */
	int32_t index_val[KT_INDEX];
	struct kt_file files[KT_FILES];
	const uint8_t *plain_entry[KT_PLAINS];
	const uint8_t *plain_exit[KT_PLAINS];
	uint8_t narg[KT_MAX_SYSCALL];
	int32_t errmap[KT_ERRNO_LIMIT];
	int32_t ready_pid[KT_READY], ready_status[KT_READY];
	int32_t ready_head, ready_len;
	int32_t round_skip, spin_misses, spin_skip;
	int32_t block_next;  /* the next wait blocks at once: no stop is expected soon */
};

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned hash(int32_t tid)
{
	return ((uint32_t)tid * 2654435761u) & (KT_INDEX - 1);
}

/* ----- set-up, called from Python ----- */

struct kt_state *kt_new(const uint8_t *narg, const int32_t *errmap)
{
	struct kt_state *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	memcpy(st->narg, narg, sizeof st->narg);
	memcpy(st->errmap, errmap, sizeof st->errmap);
	for (int i = 0; i < KT_SLOTS; i++)
		st->free_slots[i] = KT_SLOTS - 1 - i;
	st->nfree = KT_SLOTS;
	return st;
}

void kt_free(struct kt_state *st)
{
	for (int i = 0; i < KT_FILES; i++)
		free(st->files[i].buf);
	free(st);
}

/* The plain-stop tables of one facility set; Python keeps them alive. -1 when full. */
int kt_plain(struct kt_state *st, const uint8_t *entry, const uint8_t *exit_)
{
	for (int i = 0; i < KT_PLAINS; i++) {
		if (!st->plain_entry[i]) {
			st->plain_entry[i] = entry;
			st->plain_exit[i] = exit_;
			return i;
		}
	}
	return -1;
}

int kt_file_open(struct kt_state *st, int version)
{
	for (int i = 0; i < KT_FILES; i++) {
		struct kt_file *f = &st->files[i];
		if (!f->used) {
			f->used = 1;
			f->version = version;
			f->len = 0;
			return i;
		}
	}
	return -1;
}

/* Python drained it first. */
void kt_file_close(struct kt_state *st, int i)
{
	struct kt_file *f = &st->files[i];
	free(f->buf);
	memset(f, 0, sizeof *f);
}

static int lookup(struct kt_state *st, int32_t tid)
{
	for (unsigned h = hash(tid);; h = (h + 1) & (KT_INDEX - 1)) {
		if (st->index_key[h] == tid)
			return st->index_val[h];
		if (!st->index_key[h])
			return -1;
	}
}

/* The slot of tid, made if new; -1 when every slot is taken (the thread stays Python's). */
int kt_slot(struct kt_state *st, int32_t tid)
{
	unsigned h = hash(tid);
	for (;; h = (h + 1) & (KT_INDEX - 1)) {
		if (st->index_key[h] == tid)
			return st->index_val[h];
		if (!st->index_key[h])
			break;
	}
	if (!st->nfree)
		return -1;
	int s = st->free_slots[--st->nfree];
	memset(&st->slots[s], 0, sizeof st->slots[s]);
	st->slots[s].tid = tid;
	st->slots[s].file = -1;
	st->index_key[h] = tid;
	st->index_val[h] = s;
	return s;
}

/* Forget tid (linear probing with backward shift: no tombstones under fork churn). */
void kt_drop(struct kt_state *st, int32_t tid)
{
	unsigned h = hash(tid);
	for (;; h = (h + 1) & (KT_INDEX - 1)) {
		if (!st->index_key[h])
			return;
		if (st->index_key[h] == tid)
			break;
	}
	int s = st->index_val[h];
	memset(&st->slots[s], 0, sizeof st->slots[s]);
	st->free_slots[st->nfree++] = s;
	unsigned hole = h;
	for (unsigned j = (h + 1) & (KT_INDEX - 1); st->index_key[j]; j = (j + 1) & (KT_INDEX - 1)) {
		unsigned home = hash(st->index_key[j]);
		/* Move j into the hole unless its home lies cyclically in (hole, j]. */
		int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (!stays) {
			st->index_key[hole] = st->index_key[j];
			st->index_val[hole] = st->index_val[j];
			hole = j;
		}
	}
	st->index_key[hole] = 0;
}

int kt_interface(void) { return KT_INTERFACE; }
void *kt_slots(struct kt_state *st) { return st->slots; }
void *kt_shared(struct kt_state *st) { return &st->shared; }
void *kt_files(struct kt_state *st) { return st->files; }

/* ----- records, as format/writer.py's TraceFile packs them ----- */

static char *room(struct kt_state *st, int fi, size_t n)
{
	struct kt_file *f = &st->files[fi];
	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 65536;
		while (cap < f->len + n)
			cap *= 2;
		char *buf = realloc(f->buf, cap);
		if (!buf)
			return NULL;
		f->buf = buf;
		f->cap = cap;
	}
	if (!f->dirty) {
		f->dirty = 1;
		st->shared.dirty[st->shared.ndirty++] = fi;
	}
	char *at = f->buf + f->len;
	f->len += n;
	return at;
}

static void put16(char *p, int v) { int16_t x = (int16_t)v; memcpy(p, &x, 2); }
static void put32(char *p, int32_t v) { memcpy(p, &v, 4); }
static void put64(char *p, int64_t v) { memcpy(p, &v, 8); }

/* struct ktr_header, v0 (56 bytes) or v1 (64); returns its size. */
static size_t header(char *p, int version, int type, int len, const struct kt_slot *s, int64_t ns)
{
	int64_t sec = ns / 1000000000, nsec = ns % 1000000000;
	if (version) {
		put32(p, len);
		put16(p + 4, type | KTR_VERSIONED);
		put16(p + 6, 1);
		put32(p + 8, s->tgid);
		memcpy(p + 12, s->comm, 20);
		put64(p + 32, sec);
		put64(p + 40, nsec);
		put64(p + 48, s->tid);
		put32(p + 56, CPU_UNKNOWN);
		put32(p + 60, 0);
		return 64;
	}
	put32(p, len);
	put16(p + 4, type);
	put16(p + 6, 0);
	put32(p + 8, s->tgid);
	memcpy(p + 12, s->comm, 20);
	put64(p + 32, sec);
	put64(p + 40, nsec / 1000);
	put64(p + 48, s->tid);
	return 56;
}

/* KTR_SYSCALL: code, narg, pad, then narg register_t; 0, or -1 without memory. */
int kt_put_syscall(struct kt_state *st, const struct kt_slot *s, int64_t ns, int nr, int narg,
		   const uint64_t *args)
{
	int version = st->files[s->file].version;
	int len = 8 + 8 * narg;
	char *p = room(st, s->file, (version ? 64 : 56) + len);
	if (!p)
		return -1;
	p += header(p, version, KTR_SYSCALL, len, s, ns);
	put16(p, nr);
	put16(p + 2, narg);
	put32(p + 4, 0);
	memcpy(p + 8, args, 8 * narg);
	return 0;
}

/* KTR_SYSRET: code, eosys, error, retval. */
int kt_put_sysret(struct kt_state *st, const struct kt_slot *s, int64_t ns, int nr, int error,
		  int64_t rval)
{
	int version = st->files[s->file].version;
	char *p = room(st, s->file, (version ? 64 : 56) + 16);
	if (!p)
		return -1;
	p += header(p, version, KTR_SYSRET, 16, s, ns);
	put16(p, nr);
	put16(p + 2, 0);
	put32(p + 4, error);
	put64(p + 8, rval);
	return 0;
}

/* ----- the loop ----- */

/* 1: handled here; 0: Python's, with shared.info read. */
static int fast_stop(struct kt_state *st, struct kt_slot *s)
{
	struct kt_shared *sh = &st->shared;
	sh->has_info = 0;
	if (ptrace(REQ_GET_SYSCALL_INFO, s->tid, (void *)INFO_SIZE, sh->info) <= 0)
		return 0;
	sh->has_info = 1;
	uint8_t op = sh->info[0];
	uint32_t arch;
	uint64_t w[7];
	memcpy(&arch, sh->info + 4, 4);
	memcpy(w, sh->info + 24, sizeof w);
	if (!s->ok || arch != AUDIT_ARCH_X86_64)
		return 0;
	if (op == OP_EXIT) {
		int nr = s->nr;
		if (!s->insys || nr < 0 || nr >= KT_MAX_SYSCALL)
			return 0;
		uint8_t how = st->plain_exit[s->plain][nr];
		if (how && how != PLAIN_JUSTRETURN && how != PLAIN_EXEC_RET)
			return 0;
		int64_t rval = (int64_t)w[0];
		int error = 0;
		if (how == PLAIN_JUSTRETURN) {
			rval = 0;  /* the restored registers are the interrupted code's, not a result */
			error = FREEBSD_EJUSTRETURN;
		} else if (w[1] & 0xff) {
			int64_t e = -rval;
			error = (e > 0 && e < KT_ERRNO_LIMIT) ? st->errmap[e] : (int)e;
			rval = 0;
		} else if (how == PLAIN_EXEC_RET) {
			rval = 0;  /* a new image: nothing returns to the old one */
			error = FREEBSD_EJUSTRETURN;
		}
		if (error == FREEBSD_ERESTART)
			return 0;  /* its RET waits for the next stop: trace/restarts.py */
		if (s->file >= 0 && (s->facs & FAC_SYSRET)) {
			if (kt_put_sysret(st, s, clock_ns(CLOCK_REALTIME), nr, error, rval))
				return 0;
		}
		s->insys = 0;
		s->changed = 1;
		ptrace(s->mode_op, s->tid, 0, 0);
		return 1;
	}
	if (op == OP_ENTRY) {
		uint64_t nr = w[0];
		if (nr >= KT_MAX_SYSCALL || s->restart)
			return 0;
		uint8_t how = st->plain_entry[s->plain][nr];
		if (how && !(how == PLAIN_UNLESS_SETID && (s->flags & SLOT_NO_SETID)))
			return 0;
		int64_t ns = clock_ns(CLOCK_REALTIME);
		if (s->file >= 0 && (s->facs & FAC_SYSCALL)) {
			if (kt_put_syscall(st, s, ns, (int)nr, st->narg[nr], w + 1))
				return 0;
		}
		s->insys = 1;
		s->nr = (int32_t)nr;
		s->entry_ns = ns;
		memcpy(s->args, w + 1, sizeof s->args);
		s->argc = 6;
		s->changed = 1;
		ptrace(REQ_SYSCALL, s->tid, 0, 0);
		return 1;
	}
	return 0;
}

static int is_exec_entry(const uint8_t *info)
{
	uint64_t nr;
	memcpy(&nr, info + 24, 8);
	return info[0] == OP_ENTRY && (nr == NR_EXECVE || nr == NR_EXECVEAT);
}

/* A stop other than a syscall stop that needs nothing but its resumption; 1 if resumed here.
 * As Engine._signal_stop and Engine.other_stop do when the slot's flags say nothing else is due. */
static int quiet_stop(struct kt_slot *s, int status)
{
	if ((status & 0xff) != 0x7f || !s->ok)
		return 0;
	int sig = (status >> 8) & 0xff, event = status >> 16;
	if (event == 0 && (s->flags & SLOT_SIG_QUIET) && !s->restart) {
		ptrace(s->insys ? REQ_SYSCALL : s->mode_op, s->tid, 0, (void *)(intptr_t)sig);
		return 1;
	}
	if (event == EVENT_STOP && (s->flags & SLOT_FIRST_STOP)) {
		s->flags &= ~SLOT_FIRST_STOP;
		s->started = 1;
		s->changed = 1;
		ptrace(s->mode_op, s->tid, 0, 0);
		return 1;
	}
	return 0;
}

/* A blocking wait; KT_IDLE first if records would wait past the flush timer. */
static int block(struct kt_state *st, int64_t flush_deadline, int *pid, int *status)
{
	if (st->shared.ndirty && (!flush_deadline ||
				  clock_ns(CLOCK_MONOTONIC) > flush_deadline - FLUSH_MARGIN_NS)) {
		st->block_next = 1;
		return KT_IDLE;
	}
	*pid = waitpid(-1, status, WAIT_ALL);
	if (*pid < 0)
		return errno == EINTR ? KT_INTR : KT_ECHILD;
	return 0;
}

/* Engine._spin_wait and Engine._wait's rounds: 0 with a stop, or a KT_ answer. */
static int next_stop(struct kt_state *st, int nthreads, int spin, int64_t flush_deadline,
		     int *pid, int *status)
{
	int r;
	if (st->block_next || !spin) {
		st->block_next = 0;
		if ((r = block(st, flush_deadline, pid, status)))
			return r;
	} else if (st->spin_skip) {
		st->spin_skip--;
		if ((r = block(st, flush_deadline, pid, status)))
			return r;
	} else {
		int64_t deadline = clock_ns(CLOCK_MONOTONIC) + SPIN_NS;
		for (;;) {
			*pid = waitpid(-1, status, WAIT_ALL | WNOHANG);
			if (*pid < 0)
				return errno == EINTR ? KT_INTR : KT_ECHILD;
			if (*pid) {
				st->spin_misses = 0;
				break;
			}
			if (clock_ns(CLOCK_MONOTONIC) > deadline) {
				if (++st->spin_misses >= 4) {
					st->spin_skip = SPIN_SKIP;  /* a CPU-bound tracee: stop stealing its CPU */
					st->spin_misses = 0;
				}
				if ((r = block(st, flush_deadline, pid, status)))
					return r;
				break;
			}
		}
	}
	if (nthreads > 1) {
		if (st->round_skip) {
			st->round_skip--;
			return 0;
		}
		int found = 0;
		while (st->ready_len < KT_READY) {
			int s2, p2 = waitpid(-1, &s2, WAIT_ALL | WNOHANG);
			if (p2 <= 0)
				break;
			int at = (st->ready_head + st->ready_len) % KT_READY;
			st->ready_pid[at] = p2;
			st->ready_status[at] = s2;
			st->ready_len++;
			found = 1;
		}
		if (!found)
			st->round_skip = ROUND_SKIP;
	}
	return 0;
}

/* Wait for stops and handle the plain ones until one is Python's (KT_STOP) or another KT_ answer.
 * flush_deadline: CLOCK_MONOTONIC ns when Python's flush timer fires, 0 if none is armed. */
int kt_run(struct kt_state *st, int nthreads, int spin, int64_t flush_deadline)
{
	struct kt_shared *sh = &st->shared;
	int64_t start = 0;
	unsigned handled = 0;
	for (;;) {
		if (sh->attention) {
			sh->attention = 0;
			return KT_YIELD;
		}
		int pid, status;
		if (st->ready_len) {
			pid = st->ready_pid[st->ready_head];
			status = st->ready_status[st->ready_head];
			st->ready_head = (st->ready_head + 1) % KT_READY;
			st->ready_len--;
		} else {
			int r = next_stop(st, nthreads, spin, flush_deadline, &pid, &status);
			if (r)
				return r;
		}
		sh->pid = pid;
		sh->status = status;
		sh->has_info = 0;
		int s = lookup(st, pid);
		if (status != STATUS_SYSCALL_STOP && status != STATUS_SECCOMP_STOP) {
			if (s < 0 || !quiet_stop(&st->slots[s], status)) {
				/* A thread past its exit event is tearing down: no stop comes soon. */
				st->block_next |= (status >> 16) == EVENT_EXIT;
				return KT_STOP;
			}
		} else if (s < 0 || !fast_stop(st, &st->slots[s])) {
			/* Nor while an execve loads the new image. */
			st->block_next |= sh->has_info && is_exec_entry(sh->info);
			return KT_STOP;
		} else if (sh->has_info && is_exec_entry(sh->info)) {
			st->block_next = 1;
		}
		if ((++handled & 15) == 0) {
			int64_t now = clock_ns(CLOCK_MONOTONIC);
			if (!start)
				start = now;
			else if (now - start > BUDGET_NS)
				return KT_YIELD;
			for (int k = 0; k < sh->ndirty; k++)
				if (st->files[sh->dirty[k]].len > FILE_HIGH)
					return KT_YIELD;
		}
	}
}

/* Forget the stops collected but not handled (the engine lost its tracees). */
void kt_clear_ready(struct kt_state *st)
{
	st->ready_len = 0;
	st->ready_head = 0;
}
