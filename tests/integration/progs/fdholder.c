/* A process that already holds a descriptor when it is attached to.
 *
 * fdholder PATH: opens PATH (it becomes descriptor 3), writes "ready\n", then
 * for each byte read from standard input reads the first 4 bytes of PATH with
 * pread and echoes the byte back.  EOF ends it.  The echo is the test's proof
 * of progress: no sleeps needed.
 */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char c, buf[4];
    if (argc != 2)
        return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd != 3)
        return 3;
    if (write(1, "ready\n", 6) != 6)
        return 4;
    while (read(0, &c, 1) == 1) {
        if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
            return 5;
        if (write(1, &c, 1) != 1)
            return 6;
    }
    return 0;
}
