/* Signals whose si_code the Linuxulator translates, a handler's return, a new
 * thread, and a fault that kills: kill (SI_USER), sigqueue (SI_QUEUE),
 * raise (tgkill: SI_LWP), SIGPWR and a realtime signal, an itimer (SI_KERNEL),
 * an integer division by zero (FPE_INTDIV). Prints the handler's address for the test to compare. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void handler(int sig) { got = sig; }
static void *thread_main(void *arg) { return arg; }

int main(int argc, char **argv) {
    (void)argv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    printf("handler=%p\n", (void *)handler);
    fflush(stdout);
    kill(getpid(), SIGUSR1);
    union sigval value = {.sival_int = 7};
    sigqueue(getpid(), SIGUSR1, value);
    raise(SIGUSR1);
    /* Linux-only SIGPWR and a realtime signal, renumbered as the Linuxulator does. */
    sigaction(SIGPWR, &sa, NULL);
    kill(getpid(), SIGPWR);
    sigaction(SIGRTMIN + 2, &sa, NULL);
    kill(getpid(), SIGRTMIN + 2);
    /* The alarm comes while SIGALRM is blocked, so it waits in sigsuspend. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct itimerval once = {.it_value = {.tv_sec = 0, .tv_usec = 1000}};
    setitimer(ITIMER_REAL, &once, NULL);
    while (got != SIGALRM) sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    volatile int zero = argc - 1;
    return 10 / zero;
}
