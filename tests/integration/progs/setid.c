/* run argv[2] (with argv[0] "probe") through execveat: "e" by its descriptor
   (AT_EMPTY_PATH, as fexecve does), "d" relative to a descriptor of its directory */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char *av[] = {"probe", NULL};
    char *ev[] = {NULL};
    char dir[4096], base[4096];
    if (argc < 3)
        return 2;
    if (argv[1][0] == 'e') {
        syscall(SYS_execveat, open(argv[2], O_PATH | O_CLOEXEC), "", av, ev, AT_EMPTY_PATH);
    } else {
        strncpy(dir, argv[2], sizeof dir - 1);
        strncpy(base, argv[2], sizeof base - 1);
        syscall(SYS_execveat, open(dirname(dir), O_PATH | O_DIRECTORY | O_CLOEXEC), basename(base),
                av, ev, 0);
    }
    perror("execveat");
    return 1;
}
