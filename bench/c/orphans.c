/* Runs as the only child of an init under test (PID 1 of a fresh PID namespace) and hands it
 * orphans to reap:
 *   orphans burst N   a helper forks N children, which block on a pipe, and exits: N orphans
 *                     land on PID 1 at once; then the pipe is closed and all exit together.
 *   orphans chain N   N double forks one by one: the middle process exits at once, the
 *                     grandchild too, so PID 1 gets a steady stream of zombies.
 * It measures from the release (burst) or the first fork (chain) until every one of the N
 * pids is gone (kill(pid, 0) fails with ESRCH only after its zombie was reaped), then prints
 * one JSON line with the time, PID 1's peak and current RSS, and the zombies left. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/1/status", "r");
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k)) v = atol(line + k);
    fclose(f);
    return v;
}

static int zombies(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int z = 0;
    if (!d) return -1;
    while ((e = readdir(d))) {
        char p[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) {
            char *r = strrchr(buf, ')');
            if (r && r[1] == ' ' && r[2] == 'Z') z++;
        }
        fclose(f);
    }
    closedir(d);
    return z;
}

static void wait_gone(pid_t *pids, int n) {
    struct timespec d = {0, 100000};
    for (int i = 0; i < n; i++)
        while (kill(pids[i], 0) == 0 || errno != ESRCH) nanosleep(&d, NULL);
}

static int read_full(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: orphans burst|chain N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    int q[2];
    if (!pids || pipe(q)) return 1;
    long long t0, t1;
    if (!strcmp(argv[1], "burst")) {
        int p[2];
        if (pipe(p)) return 1;
        pid_t mid = fork();
        if (mid < 0) return 1;
        if (mid == 0) {
            for (int i = 0; i < n; i++) {
                pid_t c = fork();
                if (c < 0) _exit(1);
                if (c == 0) {
                    char b;
                    close(p[1]);
                    close(q[1]);
                    (void)!read(p[0], &b, 1);
                    _exit(0);
                }
                (void)!write(q[1], &c, sizeof c);
            }
            _exit(0);
        }
        close(q[1]);
        close(p[0]);
        if (read_full(q[0], pids, sizeof *pids * (size_t)n)) return 1;
        waitpid(mid, NULL, 0);
        t0 = now_ns();
        close(p[1]);
        wait_gone(pids, n);
        t1 = now_ns();
    } else if (!strcmp(argv[1], "chain")) {
        t0 = now_ns();
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c < 0) return 1;
            if (c == 0) {
                pid_t g = fork();
                if (g == 0) _exit(0);
                (void)!write(q[1], &g, sizeof g);
                _exit(0);
            }
            waitpid(c, NULL, 0);
            if (read_full(q[0], &pids[i], sizeof pids[i])) return 1;
        }
        wait_gone(pids, n);
        t1 = now_ns();
    } else {
        return 2;
    }
    printf("{\"mode\": \"%s\", \"n\": %d, \"ms\": %.3f, \"init_hwm_kb\": %ld, \"init_rss_kb\": %ld, "
           "\"zombies_left\": %d}\n",
           argv[1], n, (t1 - t0) / 1e6, status_kb("VmHWM:"), status_kb("VmRSS:"), zombies());
    return 0;
}
