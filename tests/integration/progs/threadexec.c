/* a non-leader thread execs /bin/true-like target given in argv[1] */
#include <pthread.h>
#include <unistd.h>
static char **gargv;
static void *work(void *arg) { (void)arg; execv(gargv[1], gargv + 1); return NULL; }
int main(int argc, char **argv) {
    (void)argc; gargv = argv;
    pthread_t t;
    pthread_create(&t, NULL, work, NULL);
    pause();
    return 1;
}
