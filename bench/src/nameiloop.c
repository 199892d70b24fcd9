/* N rounds of stat + open + close over 8 paths, one missing: NAMI-heavy */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
static const char *paths[] = {"/etc/passwd", "/etc/group", "/etc/hostname", "/usr/bin/env",
                              "/bin/sh", "/etc/os-release", "/usr/lib", "/nonexistent/x"};
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 4000;
    struct stat st;
    for (long i = 0; i < n; i++) {
        const char *p = paths[i % 8];
        stat(p, &st);
        int fd = open(p, O_RDONLY);
        if (fd >= 0) close(fd);
    }
    return 0;
}
