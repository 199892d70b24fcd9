/* Prints its effective uid and looks up a path: run set-uid to see whether a
 * traced exec kept its privileges and whether the tracer saw it. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("euid=%d\n", (int)geteuid());
    fflush(stdout);
    int fd = open("/nonexistent/euid", O_RDONLY);
    if (fd >= 0)
        close(fd);
    return 0;
}
