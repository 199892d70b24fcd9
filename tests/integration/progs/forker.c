/* fork a child that opens a path and exits 7; the parent waits and exits with it */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t pid = fork();
    if (pid == 0) {
        open("/nonexistent/child", O_RDONLY);
        _exit(7);
    }
    int status;
    waitpid(pid, &status, 0);
    open("/nonexistent/parent", O_RDONLY);
    return WEXITSTATUS(status);
}
