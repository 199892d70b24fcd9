/* midsys MODE [PATH ARGS...]: threads caught in the middle of system calls.
 * NBLOCKED threads block in read(2) on a pipe nobody writes and NBUSY
 * threads call getppid(2) in a loop.  Once every busy thread is inside its
 * loop (past the thread start-up calls, rt_sigprocmask among them) and /proc
 * shows every blocked thread sleeping inside read (state S, syscall 0), MODE
 * decides what happens:
 *   exit: the main thread prints "exiting" and calls exit_group(3);
 *   exec: the main thread blocks in read too, and a non-leader thread
 *         prints "exec" and execv()s PATH with ARGS. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NBLOCKED 3
#define NBUSY 2

static int block_fd;
static pid_t blocked[NBLOCKED + 1];
static int nblocked;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char **exec_argv;
static int nbusy_looping;

static void *block(void *arg)
{
    char c;
    (void)arg;
    pthread_mutex_lock(&mu);
    blocked[nblocked++] = (pid_t)syscall(SYS_gettid);
    pthread_mutex_unlock(&mu);
    read(block_fd, &c, 1);
    return NULL;
}

static void *busy(void *arg)
{
    (void)arg;
    getppid();
    __atomic_add_fetch(&nbusy_looping, 1, __ATOMIC_SEQ_CST);
    for (;;)
        getppid();
    return NULL;
}

/* Whether task tid sleeps inside read(2): /proc/self/task/TID/stat state S
 * (not t, a tracing stop) and /proc/self/task/TID/syscall starting "0 ". */
static int in_read(pid_t tid)
{
    char path[64], buf[512];
    FILE *f;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    if (!(f = fopen(path, "r")))
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end = strrchr(buf, ')');
    if (!end || end[1] != ' ' || end[2] != 'S')
        return 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    if (!(f = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strncmp(buf, "0 ", 2) == 0;
}

static void wait_blocked(int want)
{
    while (__atomic_load_n(&nbusy_looping, __ATOMIC_SEQ_CST) < NBUSY)
        sched_yield();
    for (;;) {
        int ok = 0;
        pthread_mutex_lock(&mu);
        int n = nblocked;
        pthread_mutex_unlock(&mu);
        for (int k = 0; k < n; k++)
            ok += in_read(blocked[k]);
        if (ok == want)
            return;
        sched_yield();
    }
}

static void *execer(void *arg)
{
    (void)arg;
    wait_blocked(NBLOCKED + 1);
    write(1, "exec\n", 5);
    execv(exec_argv[0], exec_argv);
    return NULL;
}

int main(int argc, char **argv)
{
    int fds[2];
    pthread_t th;
    if (argc < 2 || pipe(fds) != 0)
        return 2;
    block_fd = fds[0];
    for (int k = 0; k < NBLOCKED; k++)
        pthread_create(&th, NULL, block, NULL);
    for (int k = 0; k < NBUSY; k++)
        pthread_create(&th, NULL, busy, NULL);
    if (strcmp(argv[1], "exit") == 0) {
        wait_blocked(NBLOCKED);
        write(1, "exiting\n", 8);
        syscall(SYS_exit_group, 3);
    } else if (strcmp(argv[1], "exec") == 0 && argc > 2) {
        exec_argv = argv + 2;
        pthread_create(&th, NULL, execer, NULL);
        block(NULL);
    }
    return 2;
}
