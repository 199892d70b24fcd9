# A static i386 program that execs its arguments: execve(argv[1], &argv[1],
# envp) through int $0x80, so a 32-bit image is replaced by (typically) a
# 64-bit one; exits with the error number if the exec fails. Built like i386.s.
        .globl _start
        .text
_start:
        movl    (%esp), %eax            # argc
        leal    8(%esp,%eax,4), %edx    # envp: past argv[argc] (NULL)
        leal    8(%esp), %ecx           # &argv[1]
        movl    (%ecx), %ebx            # argv[1]
        movl    $11, %eax               # execve
        int     $0x80
        movl    %eax, %ebx              # exit(-eax)
        negl    %ebx
        movl    $1, %eax
        int     $0x80
