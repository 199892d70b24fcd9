# A static i386 program without libc (as --32, ld -m elf_i386): getpid,
# write "hi\n" to fd 1, open argv[1] read-only (the test passes a path that
# does not exist), exit 0. Every call goes through int $0x80 with i386 numbers.
        .globl _start
        .text
_start:
        movl    $20, %eax               # getpid
        int     $0x80
        movl    $4, %eax                # write(1, msg, 3)
        movl    $1, %ebx
        movl    $msg, %ecx
        movl    $3, %edx
        int     $0x80
        movl    $5, %eax                # open(argv[1], O_RDONLY)
        movl    8(%esp), %ebx
        xorl    %ecx, %ecx
        xorl    %edx, %edx
        int     $0x80
        movl    $1, %eax                # exit(0)
        xorl    %ebx, %ebx
        int     $0x80
        .data
msg:    .ascii  "hi\n"
