/* sbprobe: tries what each argument names and prints "what=errno" (0: it worked; count:
 * the entries; ifaces: the interfaces), then DONE, then waits, so that a test can read its
 * /proc/PID/status and mountinfo. Shared by integration/tests/sandbox.rs and the sandbox
 * boot of vm-tests (built static as /bin/sbprobe). Only ever run it inside a unit's own mount
 * namespace: `mount` mounts a tmpfs on /tmp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

static int count(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        int r = 0;
        errno = 0;
        if (!strncmp(a, "write:", 6)) {
            int fd = open(a + 6, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            r = fd < 0 ? errno : 0;
            if (fd >= 0) { close(fd); unlink(a + 6); }
        } else if (!strncmp(a, "count:", 6)) {
            r = count(a + 6);
        } else if (!strncmp(a, "exists:", 7)) {
            struct stat st;
            r = stat(a + 7, &st) < 0 ? errno : 0;
        } else if (!strcmp(a, "mount")) {
            r = mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m") < 0 ? errno : 0;
        } else if (!strcmp(a, "packet")) {
            int fd = socket(AF_PACKET, SOCK_RAW, 0);
            r = fd < 0 ? errno : 0;
            if (fd >= 0) close(fd);
        } else if (!strcmp(a, "inet")) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            r = fd < 0 ? errno : 0;
            if (fd >= 0) close(fd);
        } else if (!strcmp(a, "wx")) {
            void *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            r = mprotect(p, 4096, PROT_READ | PROT_EXEC) < 0 ? errno : 0;
        } else if (!strcmp(a, "unshare")) {
            r = unshare(CLONE_NEWUTS) < 0 ? errno : 0;
        } else if (!strcmp(a, "personality")) {
            r = personality(PER_LINUX32) == -1 ? errno : 0;
        } else if (!strcmp(a, "realtime")) {
            struct sched_param sp = { .sched_priority = 1 };
            r = sched_setscheduler(0, SCHED_FIFO, &sp) < 0 ? errno : 0;
            sp.sched_priority = 0;
            sched_setscheduler(0, SCHED_OTHER, &sp);
        } else if (!strcmp(a, "suid")) {
            int fd = open("/tmp/suid-probe", O_WRONLY | O_CREAT, 0644);
            if (fd >= 0) close(fd);
            r = chmod("/tmp/suid-probe", 04755) < 0 ? errno : 0;
            unlink("/tmp/suid-probe");
        } else if (!strcmp(a, "hostname")) {
            /* Only ever run where protect_hostname holds: elsewhere it would rename the host. */
            r = sethostname("colony-probe", 12) < 0 ? errno : 0;
        } else if (!strcmp(a, "adjtimex")) {
            /* modes = 0: a read of the clock's state that changes nothing, denied by @clock. */
            struct timex t;
            memset(&t, 0, sizeof t);
            r = adjtimex(&t) < 0 ? errno : 0;
        } else if (!strncmp(a, "chr:", 4)) {
            struct stat st;
            r = stat(a + 4, &st) < 0 ? errno : (S_ISCHR(st.st_mode) ? 0 : -1);
        } else if (!strcmp(a, "ifaces")) {
            struct if_nameindex *n = if_nameindex(), *p = n;
            while (p && p->if_index) { r++; p++; }
            if (n) if_freenameindex(n);
        }
        printf("%s=%d\n", a, r);
    }
    printf("DONE\n");
    fflush(stdout);
    for (;;) pause();
}
