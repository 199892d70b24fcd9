/* the pyktrace utrace convention from C */
#include <sys/prctl.h>
#define PYKTRACE_UTRACE 0x6b747275
int main(void) {
    static const char msg[] = "hello utrace";
    prctl(PYKTRACE_UTRACE, (unsigned long)msg, sizeof msg - 1, 0, 0);
    return 0;
}
