/* The service every supervisor runs in the benchmark.
 *   stamp MODE LOG    MODE: exit (exit at once), live (exit after 1.1 s), sleep (pause forever)
 *   stamp             reads "MODE LOG" from ./stamp.conf (for s6 and runit, whose ./run
 *                     is a symlink to this binary, so no shell sits between them)
 * It appends "start NS PID" on entry and "exit NS PID" just before _exit to LOG, NS being
 * CLOCK_MONOTONIC nanoseconds (the clock the harness reads), one write(2) per line.
 * Static, so that exec costs the same under every supervisor. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void put(const char *log, const char *what, long long ns) {
    char buf[96];
    int n = snprintf(buf, sizeof buf, "%s %lld %d\n", what, ns, (int)getpid());
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, buf, (size_t)n);
        close(fd);
    }
}

int main(int argc, char **argv) {
    long long t0 = now_ns();
    char mode[32] = "", log[4096] = "";
    if (argc >= 3) {
        snprintf(mode, sizeof mode, "%s", argv[1]);
        snprintf(log, sizeof log, "%s", argv[2]);
    } else {
        FILE *f = fopen("stamp.conf", "r");
        if (!f || fscanf(f, "%31s %4095s", mode, log) != 2) return 111;
        fclose(f);
    }
    put(log, "start", t0);
    if (!strcmp(mode, "exit")) {
        put(log, "exit", now_ns());
        _exit(0);
    }
    if (!strcmp(mode, "live")) {
        struct timespec d = {1, 100000000};
        while (nanosleep(&d, &d) != 0) {
        }
        put(log, "exit", now_ns());
        _exit(0);
    }
    for (;;) pause();
}
