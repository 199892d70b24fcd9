/* forktree N DIR: a binary tree of N processes (node i forks 2i+1 and 2i+2);
 * each writes DIR/node<i> and exits with i % 128; the root checks every status. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int n;
static const char *dir;

static int node(int i) {
    char path[256], line[64];
    snprintf(path, sizeof path, "%s/node%d", dir, i);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 100;
    int len = snprintf(line, sizeof line, "node %d of %d\n", i, n);
    if (write(fd, line, len) != len) return 101;
    close(fd);
    pid_t kids[2];
    int nk = 0;
    for (int c = 2 * i + 1; c <= 2 * i + 2 && c < n; c++) {
        pid_t pid = fork();
        if (pid < 0) return 102;
        if (pid == 0) _exit(node(c));
        kids[nk++] = pid;
    }
    for (int k = 0; k < nk; k++) {
        int status;
        if (waitpid(kids[k], &status, 0) != kids[k]) return 103;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != (2 * i + 1 + k) % 128) return 104;
    }
    return i % 128;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    n = atoi(argv[1]);
    dir = argv[2];
    int r = node(0);
    if (r == 0) write(1, "tree ok\n", 8);
    return r;
}
