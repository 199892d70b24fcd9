/* map 8 fresh anonymous pages, print where, write one byte to each, read
 * one back: 8 write faults on pages never touched, then no fault */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    char line[64];
    int n = snprintf(line, sizeof line, "%p\n", (void *)p);
    write(1, line, n);
    for (int i = 0; i < 8; i++)
        p[i * page + 5] = 1;
    return p[5] == 1 ? 0 : 2;
}
