/* rtflood live|held NSIGS LOG: catch SIGRTMIN..SIGRTMIN+NSIGS-1 with
 * SA_SIGINFO (all signals masked in the handler), recording (signal, si_value)
 * in order. "held" keeps them blocked until the line on stdin arrives; "live"
 * takes them as they come while waiting for it. Then the record goes to LOG. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX 200000
static int got_sig[MAX], got_val[MAX];
static volatile int count;

static void caught(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (count < MAX) {
        got_sig[count] = sig - SIGRTMIN;
        got_val[count] = si->si_value.sival_int;
        count++;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int held = strcmp(argv[1], "held") == 0;
    int nsigs = atoi(argv[2]);
    int log = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = caught;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigset_t rt;
    sigemptyset(&rt);
    for (int k = 0; k < nsigs; k++) {
        sigaction(SIGRTMIN + k, &sa, NULL);
        sigaddset(&rt, SIGRTMIN + k);
    }
    if (held) sigprocmask(SIG_BLOCK, &rt, NULL);
    char line[64];
    int len = snprintf(line, sizeof line, "ready %d\n", SIGRTMIN);
    write(1, line, len);
    char buf[64];
    if (read(0, buf, sizeof buf) <= 0) return 3;
    if (held) sigprocmask(SIG_UNBLOCK, &rt, NULL);
    for (int i = 0; i < count; i++) {
        len = snprintf(line, sizeof line, "%d %d\n", got_sig[i], got_val[i]);
        write(log, line, len);
    }
    len = snprintf(line, sizeof line, "%d caught\n", count);
    write(log, line, len);
    write(1, "done\n", 5);
    return 0;
}
