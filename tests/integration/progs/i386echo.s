# A static i386 echo loop: read one byte from fd 0, write it to fd 1, until
# end of file, then exit 0. The test drives it through pipes and attaches to
# it while it waits in read. Built like i386.s.
        .globl _start
        .text
_start:
        movl    $3, %eax                # read(0, buf, 1)
        xorl    %ebx, %ebx
        movl    $buf, %ecx
        movl    $1, %edx
        int     $0x80
        cmpl    $1, %eax
        jne     done
        movl    $4, %eax                # write(1, buf, 1)
        movl    $1, %ebx
        movl    $buf, %ecx
        movl    $1, %edx
        int     $0x80
        jmp     _start
done:
        movl    $1, %eax                # exit(0)
        xorl    %ebx, %ebx
        int     $0x80
        .lcomm  buf, 1
