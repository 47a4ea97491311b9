/* sockprobe: tries an AF_INET and an AF_UNIX socket and prints "inet=ERRNO unix=ERRNO"
 * (0: it worked), for the sandbox boot's restrict_address_families. */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static int try(int family) {
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

int main(void) {
    printf("inet=%d unix=%d\n", try(AF_INET), try(AF_UNIX));
    return 0;
}
