/* open and read argv[1], write it to stdout, fail an open, a nonblocking read and exit 3 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[64];
    int p[2];
    (void)argc;
    int fd = open(argv[1], O_RDONLY);
    int n = read(fd, buf, sizeof buf);
    close(fd);
    write(1, buf, n);
    open("/nonexistent/basic", O_RDONLY);
    pipe2(p, O_NONBLOCK);
    read(p[0], buf, sizeof buf);
    return 3;
}
