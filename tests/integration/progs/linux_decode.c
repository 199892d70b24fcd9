/*
 * linux_decode: one raw syscall per Linux argument decoder, with arguments a
 * test can predict exactly.  Every call goes through syscall(2), so libc adds
 * nothing between them; every pointer lies in one mapping at a fixed address
 * (BUF), and the descriptors are numbered from 3 because all others are
 * closed first.  The calls that fail here (TCGETS on /dev/null, lseek before
 * the start) fail harmlessly: only their CALL records matter.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

#define BUF 0x7e000000UL
#define AT(off) ((void *)(BUF + (off)))

int main(void)
{
	long pid = syscall(SYS_getpid);

	syscall(SYS_close_range, 3, ~0U, 0);
	if (syscall(SYS_mmap, BUF, 0x10000, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != (long)BUF)
		return 1;
	strcpy(AT(0x100), "hello");
	strcpy(AT(0x600), "ldecode");
	strcpy(AT(0x900), "/");
	strcpy(AT(0xc00), "ld");
	((struct epoll_event *)AT(0xb00))->events = EPOLLIN;

	syscall(SYS_mprotect, BUF + 0x8000, 0x1000, PROT_READ);
	syscall(SYS_madvise, BUF + 0x8000, 0x1000, MADV_DONTNEED);
	syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);	/* 3 */
	*(int *)AT(0) = 1;
	syscall(SYS_setsockopt, 3, IPPROTO_TCP, TCP_NODELAY, AT(0), 4);
	syscall(SYS_setsockopt, 3, SOL_SOCKET, SO_REUSEADDR, AT(0), 4);
	syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, AT(0x40));		/* 4, 5 */
	syscall(SYS_fcntl, 4, F_SETFL, O_NONBLOCK);
	syscall(SYS_fcntl, 4, F_SETFD, FD_CLOEXEC);
	syscall(SYS_fcntl, 4, F_DUPFD_CLOEXEC, 10);				/* 10 */
	syscall(SYS_sendto, 4, AT(0x100), 5, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
	syscall(SYS_ioctl, 5, FIONREAD, AT(0x200));
	syscall(SYS_recvfrom, 5, AT(0x300), 16, MSG_PEEK, 0, 0);
	syscall(SYS_ioctl, 0, TCGETS, AT(0x400));
	syscall(SYS_futex, AT(0x500), FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
	syscall(SYS_prctl, PR_SET_NAME, AT(0x600), 0, 0, 0);
	syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, AT(0x700));
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, AT(0x800), 0, 8);
	syscall(SYS_wait4, -1, 0, WNOHANG, 0);
	syscall(SYS_statx, AT_FDCWD, AT(0x900), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, AT(0x1000));
	syscall(SYS_getrandom, AT(0xa00), 16, GRND_NONBLOCK);
	syscall(SYS_epoll_create1, EPOLL_CLOEXEC);				/* 6 */
	syscall(SYS_epoll_ctl, 6, EPOLL_CTL_ADD, 5, AT(0xb00));
	syscall(SYS_access, AT(0x900), R_OK | W_OK);
	syscall(SYS_faccessat2, AT_FDCWD, AT(0x900), F_OK, AT_EACCESS);
	syscall(SYS_memfd_create, AT(0xc00), MFD_CLOEXEC | MFD_ALLOW_SEALING);	/* 7 */
	syscall(SYS_lseek, 7, -1L, SEEK_END);
	syscall(SYS_fcntl, 7, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);			/* 8 */
	syscall(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_CLOEXEC);		/* 9 */
	syscall(SYS_timerfd_settime, 9, TFD_TIMER_ABSTIME, AT(0xd00), 0);
	syscall(SYS_signalfd4, -1, AT(0xe00), 8, SFD_CLOEXEC | SFD_NONBLOCK);	/* 11 */
	syscall(SYS_inotify_init1, IN_NONBLOCK | IN_CLOEXEC);			/* 12 */
	syscall(SYS_pipe2, AT(0xf00), O_CLOEXEC);				/* 13, 14 */
	syscall(SYS_dup3, 4, 20, O_CLOEXEC);					/* 20 */
	syscall(SYS_arch_prctl, ARCH_GET_FS, AT(0x1100));
	syscall(SYS_setpgid, 0, 0);
	/* An int, as bash passes a job's process group: its register is not sign-extended. */
	syscall(SYS_kill, (long)(unsigned int)-(int)pid, SIGCONT);
	if (syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0) == 0)
		syscall(SYS_exit_group, 7);
	syscall(SYS_wait4, -1, AT(0x1200), __WALL, 0);
	syscall(SYS_exit_group, 0);
	return 0;
}
