# A static i386 program without libc (as --32, ld -m elf_i386): pipe(fds),
# write "hi" to its write end, exit 0. Every call goes through int $0x80
# with i386 numbers; the descriptors land in a 32-bit int[2] as on x86_64.
        .globl _start
        .text
_start:
        movl    $42, %eax               # pipe(fds)
        movl    $fds, %ebx
        int     $0x80
        movl    $4, %eax                # write(fds[1], msg, 2)
        movl    fds+4, %ebx
        movl    $msg, %ecx
        movl    $2, %edx
        int     $0x80
        movl    $1, %eax                # exit(0)
        xorl    %ebx, %ebx
        int     $0x80
        .data
msg:    .ascii  "hi"
fds:    .long   -1, -1
