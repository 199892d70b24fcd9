/* deterministic I/O: pipe write/read, writev, a stat and a socket connect that fails */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
int main(void) {
    int p[2];
    char buf[16];
    struct stat st;
    pipe(p);
    write(p[1], "ping", 4);
    read(p[0], buf, sizeof buf);
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    writev(p[1], iov, 2);
    read(p[0], buf, sizeof buf);
    stat("/", &st);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, "/nonexistent/sock");
    connect(s, (struct sockaddr *)&sun, sizeof sun);
    int s4 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    sendto(s4, "udp", 3, 0, (struct sockaddr *)&sin, sizeof sin);
    return 0;
}
