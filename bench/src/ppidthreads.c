/* T threads, each N raw getppid() calls and nothing else: a record storm (2 records a call) */
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
static long n;
static void *work(void *arg) {
    (void)arg;
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    return NULL;
}
int main(int argc, char **argv) {
    int t = argc > 1 ? atoi(argv[1]) : 2;
    n = argc > 2 ? atol(argv[2]) : 100000;
    pthread_t th[64];
    if (t < 1 || t > 64) return 2;
    for (int i = 0; i < t; i++) pthread_create(&th[i], NULL, work, NULL);
    for (int i = 0; i < t; i++) pthread_join(th[i], NULL);
    return 0;
}
