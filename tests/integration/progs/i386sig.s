# A static i386 program that catches SIGUSR1: rt_sigaction with the i386
# struct (handler, flags with SA_RESTORER and SA_SIGINFO, restorer, then an
# 8-byte mask blocking SIGUSR2 in the handler), kill
# itself, return from the handler through rt_sigreturn, exit 1 if the
# handler ran. Built like i386.s, with as --32 and ld -m elf_i386.
        .globl _start
        .text
_start:
        movl    $174, %eax              # rt_sigaction(SIGUSR1, &act, NULL, 8)
        movl    $10, %ebx
        movl    $act, %ecx
        xorl    %edx, %edx
        movl    $8, %esi
        int     $0x80
        movl    $20, %eax               # getpid
        int     $0x80
        movl    %eax, %ebx              # kill(pid, SIGUSR1)
        movl    $37, %eax
        movl    $10, %ecx
        int     $0x80
        movl    $1, %eax                # exit(handled)
        movl    handled, %ebx
        int     $0x80
handler:
        movl    $1, handled
        ret
restorer:
        movl    $173, %eax              # rt_sigreturn
        int     $0x80
        .data
act:    .long   handler, 0x04000004, restorer, 0x800, 0  # SA_RESTORER|SA_SIGINFO (the rt frame), mask SIGUSR2
handled:
        .long   0
