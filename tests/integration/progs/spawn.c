/* a small process tree: a child that execs this program to open argv[1] (exit 3
   when it cannot, 0 when it can), then a child that dies of SIGTERM; the parent
   exits with the first child's status */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "open") == 0) {
        char buf[16];
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return 3;
        read(fd, buf, sizeof buf);
        close(fd);
        return 0;
    }
    char *path = argc > 1 ? argv[1] : "/nonexistent/spawn";
    int status, ignored;
    pid_t a = fork();
    if (a == 0) {
        execl(argv[0], argv[0], "open", path, (char *)NULL);
        _exit(127);
    }
    waitpid(a, &status, 0);
    pid_t b = fork();
    if (b == 0) {
        raise(SIGTERM);
        _exit(1);
    }
    waitpid(b, &ignored, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
