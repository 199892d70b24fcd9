/* Prints its effective capabilities and its tracer, from /proc/self/status:
 * run with file capabilities to see whether a traced exec kept them. */
#include <stdio.h>
#include <string.h>

int main(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "TracerPid:", 10) == 0)
            fputs(line, stdout);
    fclose(f);
    return 0;
}
