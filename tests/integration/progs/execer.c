/* exec itself twice with known vectors: execve, then execveat; then exit 0 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    if (strcmp(argv[0], "step3") == 0)
        return 0;
    if (strcmp(argv[0], "step2") == 0) {
        char *av[] = {"step3", "x", NULL};
        char *ev[] = {NULL};
        syscall(SYS_execveat, AT_FDCWD, "/proc/self/exe", av, ev, 0);
        return 2;
    }
    char *av[] = {"step2", "one", "two words", "", NULL};
    char *ev[] = {"A=1", "B=two words", "", NULL};
    execve("/proc/self/exe", av, ev);
    return 1;
}
