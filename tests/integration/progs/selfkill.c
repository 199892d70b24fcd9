/* a process that SIGKILLs itself */
#include <signal.h>
#include <unistd.h>
int main(void) { write(1, "x", 1); kill(getpid(), SIGKILL); return 0; }
