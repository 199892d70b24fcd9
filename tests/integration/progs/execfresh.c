/* execve whose path, argv and envp strings lie in a file mapping nothing
 * has touched yet (argv[1] names the file: the path at offset 0, argv[0]
 * at 4096, the environment's one string at 8192); the new image exits 0. */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#define PAGE 4096
int main(int argc, char **argv) {
    if (argc < 2)
        return 0;
    int fd = open(argv[1], O_RDONLY);
    char *m = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    if (fd < 0 || m == MAP_FAILED)
        return 1;
    char *av[] = {m + PAGE, NULL};
    char *ev[] = {m + 2 * PAGE, NULL};
    execve(m, av, ev);
    return 2;
}
