/* sigsink ignore|block LOG: ignore (SIG_IGN) or block every signal it can,
 * say "ready", wait for a line on stdin, then log what is pending: in block
 * mode every pending signal is taken with sigtimedwait, with its si_code and
 * si_value, in the kernel's order. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int block = strcmp(argv[1], "block") == 0;
    int log = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sigset_t all;
    sigfillset(&all);
    if (block) {
        sigprocmask(SIG_BLOCK, &all, NULL);
    } else {
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_IGN);  /* 32, 33: glibc says EINVAL */
    }
    write(1, "ready\n", 6);
    char buf[64];
    if (read(0, buf, sizeof buf) <= 0) return 3;
    char line[96];
    int n = 0;
    if (block) {
        struct timespec zero = {0, 0};
        siginfo_t si;
        int sig;
        while ((sig = sigtimedwait(&all, &si, &zero)) > 0) {
            int len = snprintf(line, sizeof line, "%d code %d value %d\n", sig, si.si_code,
                               si.si_code == SI_QUEUE ? si.si_value.sival_int : -1);
            write(log, line, len);
            n++;
        }
    } else {
        sigset_t pending;
        sigpending(&pending);
        for (int s = 1; s < NSIG; s++) n += sigismember(&pending, s) == 1;
    }
    int len = snprintf(line, sizeof line, "%s: %d pending\n", argv[1], n);
    write(log, line, len);
    write(1, "done\n", 5);
    return 0;
}
