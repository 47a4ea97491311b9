/* cgns: run a command as PID 1 of new cgroup, mount and PID namespaces, the way a container
 * runtime hands a delegated cgroup2 subtree to its container (busybox's unshare has no
 * --cgroup).
 *
 *   cgns [-c CGROUP_DIR] [-r] [-p PIDFILE] -- CMD [ARG...]
 *
 * The parent unshares the mount and PID namespaces and forks; the child (PID 1 of the new
 * PID namespace) joins CGROUP_DIR (a cgroup2 directory as the parent sees it), unshares
 * its cgroup namespace there (so CGROUP_DIR is its "/"), makes every mount private,
 * mounts a fresh cgroup2 on /sys/fs/cgroup (read-only with -r) and a fresh proc on /proc,
 * and execs CMD. The parent writes the child's PID (as the caller sees it) to PIDFILE,
 * stays outside CGROUP_DIR, waits, and exits with the child's status (128+N for a signal).
 * Built static by vm-tests/run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "cgns: %s: %s\n", what, strerror(errno));
  _exit(125);
}

static void write_str(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  if (write(fd, s, strlen(s)) < 0) die(path);
  close(fd);
}

int main(int argc, char **argv) {
  const char *cgroup = NULL, *pidfile = NULL;
  int ro = 0, opt;
  while ((opt = getopt(argc, argv, "+c:rp:")) != -1) {
    switch (opt) {
    case 'c': cgroup = optarg; break;
    case 'r': ro = 1; break;
    case 'p': pidfile = optarg; break;
    default:
      fprintf(stderr, "usage: cgns [-c CGROUP_DIR] [-r] [-p PIDFILE] -- CMD [ARG...]\n");
      return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "cgns: no command\n");
    return 2;
  }
  if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0) die("unshare(mount, pid)");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    if (cgroup) {
      char procs[4096];
      snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup);
      write_str(procs, "0");
    }
    if (unshare(CLONE_NEWCGROUP) < 0) die("unshare(cgroup)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private");
    /* The outer cgroup2 and proc go: this namespace sees only its own. */
    umount2("/sys/fs/cgroup", MNT_DETACH);
    unsigned long nsx = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", nsx, NULL) < 0) die("mount cgroup2");
    if (ro && mount(NULL, "/sys/fs/cgroup", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | nsx, NULL) < 0)
      die("remount cgroup2 read-only");
    umount2("/proc", MNT_DETACH);
    if (mount("proc", "/proc", "proc", nsx, NULL) < 0) die("mount proc");
    execvp(argv[optind], argv + optind);
    die(argv[optind]);
  }
  if (pidfile) {
    char tmp[4096], buf[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(tmp);
    int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
    if (write(fd, buf, n) != n) die(tmp);
    close(fd);
    if (rename(tmp, pidfile) < 0) die(pidfile);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) die("waitpid");
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 128 + WTERMSIG(st);
}
