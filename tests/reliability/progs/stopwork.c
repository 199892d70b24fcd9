/* stopwork OUT: for every byte read from stdin, read 512 bytes of /dev/zero
 * and append one numbered line to OUT; "ready" and "done" go to stdout.
 * The test stops and continues it around every byte it sends. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int zero = open("/dev/zero", O_RDONLY);
    if (out < 0 || zero < 0) return 3;
    write(1, "ready\n", 6);
    char c, buf[512], line[64];
    unsigned long n = 0, sum = 0;
    while (read(0, &c, 1) == 1) {
        if (read(zero, buf, sizeof buf) != (ssize_t)sizeof buf) return 4;
        for (size_t k = 0; k < sizeof buf; k++) sum += (unsigned char)buf[k] + 1;
        int len = snprintf(line, sizeof line, "%lu %c %lu\n", n++, c, sum);
        if (write(out, line, len) != len) return 5;
    }
    write(1, "done\n", 5);
    return 0;
}
