/* A 64-bit program making two i386 system calls with int $0x80 (getpid,
   write from a buffer below 4 GiB), then the same write through the x86_64
   entry: pyktrace records the first two under the linux32 ABI, the third
   under the x86_64 one. Prints its pid and the i386 getpid's result, each
   as 7 digits (pid_max is at most 2^22): the write is as long whatever
   pid the run gets, so two runs' records compare. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NR32_GETPID 20
#define NR32_WRITE 4

static long int80(long nr, long a, long b, long c)
{
	long ret;
	/* The kernel zeroes r8-r11 on the way back from a 32-bit entry. */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

int main(void)
{
	/* i386 calls see only the low 32 bits of a pointer: MAP_32BIT keeps it whole. */
	char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (low == MAP_FAILED)
		return 2;
	memcpy(low, "i386\n", 5);
	long pid32 = int80(NR32_GETPID, 0, 0, 0);
	long wrote = int80(NR32_WRITE, 1, (long)low, 5);
	if (write(1, low, 5) != 5 || wrote != 5)
		return 3;
	printf("pid=%07d getpid32=%07ld\n", (int)getpid(), pid32);
	return 0;
}
