/* A read on an empty pipe while a child exits. SIGCHLD is ignored by
 * default: FreeBSD discards it, so does Linux unless the process is
 * ptraced, and then the read is interrupted and run again unseen by the
 * program. Child a exits once the parent sleeps in the read (its /proc
 * state turns to 'S'); child b writes the byte once a is a zombie (the
 * SIGCHLD was sent) and the parent sleeps again: in the same read, or in
 * the one the kernel ran again for its tracer. */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

int main(void) {
    int fds[2];
    static char byte;
    pid_t parent = getpid();
    pipe(fds);
    pid_t a = fork();
    if (a == 0) {
        while (state_of(parent) != 'S') sched_yield();
        _exit(0);
    }
    if (fork() == 0) {
        while (state_of(a) != 'Z') sched_yield();
        while (state_of(parent) != 'S') sched_yield();
        write(fds[1], "x", 1);
        _exit(0);
    }
    ssize_t got = read(fds[0], &byte, 1);
    while (wait(NULL) > 0) {}
    printf("%zd byte=%p\n", got, (void *)&byte);
    return 0;
}
