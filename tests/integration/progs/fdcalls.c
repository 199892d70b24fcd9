/* Descriptor calls for pykdump's --calls, call filters and descriptor paths.
 * fdcalls DIR: open DIR/data.txt (fd 3), read it, dup2 it to 10, F_DUPFD_CLOEXEC it
 * to 20, close 3, fail two opens (ENOENT, ENOTDIR), bind an AF_UNIX socket to
 * DIR/sock and listen on it, make an eventfd, fork a child that preads fd 10, then re-exec itself
 * ("fdcalls DIR after") where fd 10 survives and the close-on-exec fd 20 is gone. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char path[512], buf[64];
    if (argc > 2) {
        /* After the exec: 10 is still open, 20 was closed by the exec. */
        pread(10, buf, 5, 0);
        read(20, buf, sizeof buf);
        return 0;
    }
    snprintf(path, sizeof path, "%s/data.txt", argv[1]);
    int fd = open(path, O_RDONLY);
    read(fd, buf, sizeof buf);
    dup2(fd, 10);
    fcntl(fd, F_DUPFD_CLOEXEC, 20);
    close(fd);
    snprintf(path, sizeof path, "%s/missing", argv[1]);
    open(path, O_RDONLY);
    snprintf(path, sizeof path, "%s/data.txt/x", argv[1]);
    open(path, O_RDONLY);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", argv[1]);
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    listen(s, 1);
    eventfd(0, EFD_CLOEXEC);
    pid_t child = fork();
    if (child == 0) {
        pread(10, buf, 5, 0);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    execl(argv[0], argv[0], argv[1], "after", (char *)NULL);
    return 1;
}
