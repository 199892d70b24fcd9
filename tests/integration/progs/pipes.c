/* Descriptor pairs for pyktrace's STRU fdpair: pipe2 with O_CLOEXEC (fds 3, 4),
 * pipe (5, 6; glibc makes it a pipe2 with no flags) and a close-on-exec AF_UNIX
 * socketpair (7, 8), a write and a read on each, then the inode numbers /proc
 * names them by (pipe:[N], socket:[N]): the read end of each pipe and both
 * sockets, on one line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long ino(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

int main(void) {
    int p[2], q[2], s[2];
    char buf[8];
    if (pipe2(p, O_CLOEXEC) || pipe(q) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s))
        return 1;
    write(p[1], "ping", 4);
    read(p[0], buf, sizeof buf);
    write(q[1], "pong", 4);
    read(q[0], buf, sizeof buf);
    write(s[0], "sock", 4);
    read(s[1], buf, sizeof buf);
    printf("%lu %lu %lu %lu\n", ino(p[0]), ino(q[0]), ino(s[0]), ino(s[1]));
    return 0;
}
