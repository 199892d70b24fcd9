/* iothreads T BLOCKS DIR: T threads each write BLOCKS 4 KiB blocks of a fixed
 * pattern to DIR/t<i> with pwrite, read them back with pread and check them.
 * No malloc or stdio in the threads, so the syscalls depend on nothing but T and BLOCKS. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int blocks;
static const char *dir;

static void *work(void *arg) {
    long t = (long)arg;
    char path[256], buf[4096], back[4096];
    snprintf(path, sizeof path, "%s/t%ld", dir, t);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return (void *)1;
    for (int b = 0; b < blocks; b++) {
        for (int k = 0; k < (int)sizeof buf; k++) buf[k] = (char)('a' + (t * 7 + b * 3 + k) % 26);
        if (pwrite(fd, buf, sizeof buf, (off_t)b * sizeof buf) != (ssize_t)sizeof buf) return (void *)2;
    }
    for (int b = 0; b < blocks; b++) {
        if (pread(fd, back, sizeof back, (off_t)b * sizeof back) != (ssize_t)sizeof back) return (void *)3;
        for (int k = 0; k < (int)sizeof back; k++)
            if (back[k] != (char)('a' + (t * 7 + b * 3 + k) % 26)) return (void *)4;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int n = atoi(argv[1]);
    blocks = atoi(argv[2]);
    dir = argv[3];
    pthread_t th[256];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (n > 256) return 2;
    for (long i = 0; i < n; i++)
        if (pthread_create(&th[i], &attr, work, (void *)i)) return 5;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += r != NULL;
    }
    if (!bad) write(1, "threads ok\n", 11);
    return bad;
}
