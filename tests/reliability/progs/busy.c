/* busy NPROC NTHREADS: NPROC processes (the first is the parent of the
 * others), each with NTHREADS workers bouncing numbered messages through a
 * socketpair as fast as they can, while its main thread sits in read(0).
 * EOF on stdin stops the workers (after at least MIN_ROUNDS rounds each);
 * each process then writes one line per worker, "proc P thread T ok" or
 * "... BAD round N", with a single write(2).  Once every worker of a process
 * has done 100 rounds it writes "ready P".  The output does not depend on
 * timing, so an untraced run gives the same lines. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIN_ROUNDS 2000
#define MAXT 16

static volatile int stop;
static int me, nthreads;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int warm;

struct worker { int index; long bad; };

static void *work(void *arg)
{
    struct worker *w = arg;
    int sv[2];
    w->bad = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    w->bad = 0;
    for (long n = 0; !stop || n < MIN_ROUNDS; n++) {
        long msg[4] = {n, me, w->index, n * 7 + 1}, got[4];
        if (write(sv[0], msg, sizeof msg) != (ssize_t)sizeof msg
            || read(sv[1], got, sizeof got) != (ssize_t)sizeof got
            || memcmp(msg, got, sizeof msg) != 0
            || getpid() <= 0) {
            w->bad = n + 1;
            break;
        }
        if (n == 100) {
            pthread_mutex_lock(&mu);
            if (++warm == nthreads)
                pthread_cond_signal(&cv);
            pthread_mutex_unlock(&mu);
        }
    }
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static int run(void)
{
    pthread_t th[MAXT];
    struct worker w[MAXT];
    char c, out[64 * MAXT];
    for (int k = 0; k < nthreads; k++) {
        w[k].index = k;
        pthread_create(&th[k], NULL, work, &w[k]);
    }
    pthread_mutex_lock(&mu);
    while (warm < nthreads)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    int len = snprintf(out, sizeof out, "ready %d\n", me);
    write(1, out, len);
    while (read(0, &c, 1) != 0)
        ;
    stop = 1;
    len = 0;
    for (int k = 0; k < nthreads; k++) {
        pthread_join(th[k], NULL);
        if (w[k].bad)
            len += snprintf(out + len, sizeof out - len, "proc %d thread %d BAD round %ld\n",
                            me, k, w[k].bad);
        else
            len += snprintf(out + len, sizeof out - len, "proc %d thread %d ok\n", me, k);
    }
    write(1, out, len);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int nproc = atoi(argv[1]);
    nthreads = atoi(argv[2]);
    if (nproc < 1 || nthreads < 1 || nthreads > MAXT)
        return 2;
    for (int p = 1; p < nproc; p++) {
        if (fork() == 0) {
            me = p;
            _exit(run());
        }
    }
    int status, failed = run();
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed;
}
