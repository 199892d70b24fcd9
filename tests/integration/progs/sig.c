/* SIGUSR1 to a handler, then SIGUSR2 with default action kills the process */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static void handler(int sig) { (void)sig; write(1, "caught\n", 7); }
int main(void) {
    printf("handler=%p\n", (void *)handler);
    fflush(stdout);
    signal(SIGUSR1, handler);
    kill(getpid(), SIGUSR1);
    signal(SIGCHLD, SIG_IGN);
    kill(getpid(), SIGCHLD);
    kill(getpid(), SIGUSR2);
    return 0;
}
