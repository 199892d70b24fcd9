/* A read on an empty pipe interrupted by SIGALRM twice: with a handler
 * lacking SA_RESTART the read fails with EINTR; with SA_RESTART the handler
 * writes a byte and the restarted read returns it. A child sends each signal
 * once the parent sleeps in read (its /proc state turns to 'S'). */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int fds[2];
static char byte;
static const char x[] = "x";
static void quiet(int sig) { (void)sig; }
static void feed(int sig) { (void)sig; write(fds[1], x, 1); }

static void install(void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
}

static char state_of(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *close_paren = strrchr(buf, ')');
    return close_paren != NULL && close_paren[1] == ' ' ? close_paren[2] : '?';
}

static void alarm_when_asleep(pid_t parent) {
    if (fork() == 0) {
        while (state_of(parent) != 'S') sched_yield();
        kill(parent, SIGALRM);
        _exit(0);
    }
}

int main(void) {
    pipe(fds);
    install(quiet, 0);
    alarm_when_asleep(getpid());
    ssize_t first = read(fds[0], &byte, 1);
    install(feed, SA_RESTART);
    alarm_when_asleep(getpid());
    ssize_t second = read(fds[0], &byte, 1);
    while (wait(NULL) > 0) {}
    printf("%zd %zd quiet=%p feed=%p byte=%p x=%p\n", first, second, (void *)quiet,
           (void *)feed, (void *)&byte, (void *)x);
    return 0;
}
