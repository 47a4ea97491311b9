/* The floor: what the kernel allows without a supervisor's bookkeeping.
 *   floor start N STAMP LOG        fork+exec N "STAMP sleep LOG", then wait for SIGTERM,
 *                                  TERM them all and reap them
 *   floor restart K MODE STAMP LOG run "STAMP MODE LOG" K+1 times in a row: fork, exec, wait
 *   floor forkwait N               N times fork, _exit(0) in the child, waitpid; prints ns */
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

static pid_t spawn(char *const *argv) {
    pid_t c = fork();
    if (c == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    return c;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "start")) {
        int n = atoi(argv[2]);
        pid_t *pids = calloc((size_t)n, sizeof *pids);
        sigset_t set;
        int sig;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        char *cargv[] = {argv[3], "sleep", argv[4], NULL};
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0) {
                sigprocmask(SIG_UNBLOCK, &set, NULL);
                execv(cargv[0], cargv);
                _exit(127);
            }
            pids[i] = c;
        }
        sigwait(&set, &sig);
        for (int i = 0; i < n; i++)
            if (pids[i] > 0) kill(pids[i], SIGTERM);
        for (int i = 0; i < n; i++)
            if (pids[i] > 0) waitpid(pids[i], NULL, 0);
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "restart")) {
        int k = atoi(argv[2]);
        char *cargv[] = {argv[4], argv[3], argv[5], NULL};
        for (int i = 0; i <= k; i++) {
            pid_t c = spawn(cargv);
            if (c < 0) return 1;
            waitpid(c, NULL, 0);
        }
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "forkwait")) {
        int n = atoi(argv[2]);
        long long t0 = now_ns();
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0) _exit(0);
            waitpid(c, NULL, 0);
        }
        printf("%lld\n", now_ns() - t0);
        return 0;
    }
    fprintf(stderr, "usage: floor start N STAMP LOG | restart K MODE STAMP LOG | forkwait N\n");
    return 2;
}
