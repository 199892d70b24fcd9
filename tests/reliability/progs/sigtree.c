/* sigtree N DIR: a parent and N children each catch SIGHUP and SIGINT (the
 * parent SIGTERM too), log every caught signal to DIR/<idx>.log and ack it on
 * stdout. Children die of SIGTERM's default action; on SIGTERM the parent
 * reaps them in order, logs how each ended, and exits 0. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int idx, logfd;
static volatile sig_atomic_t got_term;

static void say(int fd, const char *s) { write(fd, s, strlen(s)); }

static void caught(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char line[64];
    snprintf(line, sizeof line, "%d caught %d code %d\n", idx, sig, si->si_code);
    say(logfd, line);
    snprintf(line, sizeof line, "ack %d %d\n", idx, sig);
    say(1, line);
    if (sig == SIGTERM) got_term = 1;
}

static void setup(const char *dir, int term) {
    char path[256];
    snprintf(path, sizeof path, "%s/%d.log", dir, idx);
    logfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = caught;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (term) sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[1]);
    pid_t kids[64];
    char line[64];
    for (int i = 1; i <= n && i < 64; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            idx = i;
            setup(argv[2], 0);
            snprintf(line, sizeof line, "ready %d %d\n", idx, (int)getpid());
            say(1, line);
            for (;;) pause();
        }
    }
    idx = 0;
    setup(argv[2], 1);
    snprintf(line, sizeof line, "ready 0 %d\n", (int)getpid());
    say(1, line);
    while (!got_term) pause();
    for (int i = 1; i <= n && i < 64; i++) {
        int status;
        waitpid(kids[i], &status, 0);
        if (WIFSIGNALED(status)) snprintf(line, sizeof line, "child %d killed by %d\n", i, WTERMSIG(status));
        else snprintf(line, sizeof line, "child %d exited %d\n", i, WEXITSTATUS(status));
        say(logfd, line);
    }
    say(1, "done\n");
    return 0;
}
