/* N threads each open a distinct missing path; the main thread joins them */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static void *work(void *arg) {
    char path[64];
    snprintf(path, sizeof path, "/nonexistent/thread%ld", (long)arg);
    open(path, O_RDONLY);
    return NULL;
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    pthread_t t[64];
    for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    return 0;
}
