/* getppid argv[1] times as fast as it can, then exit 0: a record storm */
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    for (long i = 0; i < n; i++)
        getppid();
    return 0;
}
