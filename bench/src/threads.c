/* T threads, each N x (getppid + 64-byte write to /dev/null) */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
static long n;
static int out;
static void *work(void *arg) {
    char buf[64] = {0};
    (void)arg;
    for (long i = 0; i < n; i++) {
        syscall(SYS_getppid);
        write(out, buf, sizeof buf);
    }
    return NULL;
}
int main(int argc, char **argv) {
    int t = argc > 1 ? atoi(argv[1]) : 4;
    n = argc > 2 ? atol(argv[2]) : 5000;
    out = open("/dev/null", O_WRONLY);
    pthread_t th[64];
    for (int i = 0; i < t; i++) pthread_create(&th[i], NULL, work, NULL);
    for (int i = 0; i < t; i++) pthread_join(th[i], NULL);
    return 0;
}
