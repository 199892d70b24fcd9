/* A process tree driven through pipes, for attaching to live processes.
 *
 * looper RFD,WFD [RFD,WFD ...]: the first pair is the main process's; for
 * each further pair a child is forked (a tree: child k's parent is the main
 * process).  Every process writes its pid ("%7d\n") once ready, then for each byte it
 * reads: 'f' forks a child that looks up /nonexistent/looper-K-child and
 * exits, 't' runs a thread that looks up /nonexistent/looper-K-thread,
 * 'k' raises SIGUSR1 at itself (caught); any byte then looks up
 * /nonexistent/looper-K and is echoed back.  EOF ends the process.  The
 * echo is the test's proof of progress: no sleeps needed.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int me;
static volatile sig_atomic_t caught;

static void lookup(const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/nonexistent/looper-%d%s", me, what);
    int fd = open(path, O_RDONLY);
    if (fd >= 0)
        close(fd);
}

static void *thread_main(void *arg)
{
    (void)arg;
    lookup("-thread");
    return NULL;
}

static void on_usr1(int sig) { (void)sig; caught++; }

static int serve(int rfd, int wfd)
{
    char c, ready[16];
    snprintf(ready, sizeof ready, "%7d\n", (int)getpid());
    if (write(wfd, ready, 8) != 8)
        return 1;
    for (;;) {
        ssize_t n = read(rfd, &c, 1);
        if (n == 0)
            return 0;
        if (n < 0)
            continue; /* EINTR from a signal: keep serving */
        if (c == 'f') {
            pid_t pid = fork();
            if (pid == 0) {
                lookup("-child");
                _exit(0);
            }
            while (waitpid(pid, NULL, 0) < 0)
                ;
        } else if (c == 't') {
            pthread_t th;
            pthread_create(&th, NULL, thread_main, NULL);
            pthread_join(th, NULL);
        } else if (c == 'k') {
            raise(SIGUSR1);
        }
        lookup("");
        if (write(wfd, &c, 1) != 1)
            return 1;
    }
}

int main(int argc, char **argv)
{
    signal(SIGUSR1, on_usr1);
    for (int k = 2; k < argc; k++) {
        if (fork() == 0) {
            int rfd, wfd;
            me = k - 1;
            sscanf(argv[k], "%d,%d", &rfd, &wfd);
            _exit(serve(rfd, wfd));
        }
    }
    int rfd, wfd;
    if (argc < 2 || sscanf(argv[1], "%d,%d", &rfd, &wfd) != 2)
        return 2;
    int status = serve(rfd, wfd);
    while (wait(NULL) > 0)
        ;
    return status;
}
