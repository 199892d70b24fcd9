/* N x (64-byte write to /dev/null + 64-byte read from /dev/zero): GIO-heavy */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 50000;
    char buf[64] = {0};
    int out = open("/dev/null", O_WRONLY), in = open("/dev/zero", O_RDONLY);
    for (long i = 0; i < n; i++) {
        write(out, buf, sizeof buf);
        read(in, buf, sizeof buf);
    }
    return 0;
}
