/* stop itself with SIGSTOP; the parent sees the stop, continues it, then it exits 5 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        write(1, "resumed\n", 8);
        _exit(5);
    }
    int status;
    waitpid(pid, &status, WUNTRACED);
    if (!WIFSTOPPED(status)) return 90;
    kill(pid, SIGCONT);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 91;
}
