#!/usr/bin/env python3
"""colony against supervisord, s6, runit, NColony, tini and dumb-init (issue #7).

Run through bench/run; see BENCHMARKS.md for what each number means. The harness:
- installs the peers when missing (apt for supervisor, s6, tini, dumb-init; runit's binaries
  unpacked from its .deb into the cache without installing it; NColony in a virtualenv);
- compiles the C helpers in bench/c (the service every system runs, the orphan maker, the
  floor) into the cache, and builds colony's release binaries;
- runs every system in a temp dir of its own, interleaving systems round by round, and kills
  exactly the process trees it started (by pid), then removes the temp dirs;
- prints medians and colony/peer ratios as Markdown, and writes the raw samples as JSON.
"""

import argparse
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.environ.get("COLONY_BENCH_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "colony-bench"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

SUPERVISORS = ["colony", "colony-nocg", "supervisord", "s6", "runit", "ncolony", "floor"]
INITS = ["colony", "tini", "dumb-init"]
LABEL = {
    "colony": "colony",
    "colony-nocg": "colony, no cgroups",
    "supervisord": "supervisord",
    "s6": "s6",
    "runit": "runit",
    "ncolony": "NColony",
    "floor": "floor (C)",
    "tini": "tini",
    "dumb-init": "dumb-init",
}
METRICS = ["restart", "reap", "start", "floor", "size"]

# ---------------------------------------------------------------------------------------------
# small helpers


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def now_ns():
    return time.monotonic_ns()  # CLOCK_MONOTONIC, the clock stamp.c writes


def run_quiet(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def which(name, extra=()):
    for d in list(extra) + os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def set_subreaper():
    """Orphans of the systems under test come back to us, so we can reap them and no zombie
    of ours lands on the host's PID 1."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


def raise_nofile():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------------------------
# process trees


def proc_table():
    """pid -> (ppid, starttime) for every process."""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2 :].split()
        t[int(d)] = (int(rest[1]), int(rest[19]))
    return t


def descendants(root, table=None):
    table = table or proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


class Started:
    """A process tree this harness started: the root Popen and every pid seen below it."""

    def __init__(self, popen):
        self.p = popen
        self.seen = {}  # pid -> starttime, to never signal a recycled pid

    def snapshot(self):
        table = proc_table()
        pids = [self.p.pid] + descendants(self.p.pid, table)
        for pid in pids:
            if pid in table:
                self.seen[pid] = table[pid][1]
        return pids

    def kill(self, grace=3.0):
        self.snapshot()
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace
            while self.p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        for _ in range(50):
            self.snapshot() if self.p.poll() is None else None
            table = proc_table()
            alive = [p for p, st in self.seen.items() if p in table and table[p][1] == st]
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # our session: the root was started with start_new_session, so its pgid is ours
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in list(self.seen):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            try:
                self.p.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
            table = proc_table()
            alive = [
                p
                for p, st in self.seen.items()
                if p in table and table[p][1] == st and not is_zombie(p)
            ]
            if not alive and self.p.poll() is not None:
                return
            time.sleep(0.05)
        log(f"warning: could not end every process of pid {self.p.pid}")


def is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rfind(")") + 2] == "Z"
    except OSError:
        return True


def mem_of(pid):
    """(rss_kb, pss_kb, ctxsw, cpu_ticks) of one process, or None."""
    try:
        rss = pss = 0
        ctx = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    ctx += int(line.split()[1])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1])
        except OSError:
            pss = None
        try:  # nanoseconds on the CPU; stat's utime+stime only count 10 ms ticks
            with open(f"/proc/{pid}/schedstat") as f:
                cpu = int(f.read().split()[0])
        except OSError:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
            rest = s[s.rfind(")") + 2 :].split()
            cpu = (int(rest[11]) + int(rest[12])) * 1_000_000_000 // CLK_TCK
        return rss, pss, ctx, cpu
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# setup: peers, helpers, colony


class Env:
    def __init__(self, args):
        self.args = args
        self.skip = {}  # system -> reason
        self.bins = {}
        self.versions = {}
        self.notes = []

    # -- peers --------------------------------------------------------------------------------
    def install(self, want):
        apt_pkgs = {"supervisord": "supervisor", "s6": "s6", "tini": "tini", "dumb-init": "dumb-init"}
        need = [
            pkg
            for sysname, pkg in apt_pkgs.items()
            if sysname in want and run_quiet(["dpkg", "-s", pkg]).returncode != 0
        ]
        runit_dir = os.path.join(CACHE, "runit")
        want_runit = "runit" in want and not os.path.exists(os.path.join(runit_dir, "usr/bin/runsv"))
        if (need or want_runit) and self.args.no_install:
            for sysname, pkg in apt_pkgs.items():
                if pkg in need:
                    self.skip[sysname] = "not installed (--no-install)"
            if want_runit:
                self.skip["runit"] = "not unpacked (--no-install)"
            need, want_runit = [], False
        if need or want_runit:
            if os.geteuid() != 0 or not which("apt-get"):
                for sysname, pkg in apt_pkgs.items():
                    if pkg in need:
                        self.skip[sysname] = "not installed, and no root apt-get to install it"
                if want_runit:
                    self.skip["runit"] = "no root apt-get to download it"
            else:
                log("apt-get update")
                run_quiet(["apt-get", "update", "-qq"])
        if need and os.geteuid() == 0 and which("apt-get"):
            before = self.foreign_daemons()
            # Package scripts must not start services here: a policy-rc.d that says no, only
            # if the machine has none, removed afterwards.
            prc = "/usr/sbin/policy-rc.d"
            made = False
            if not os.path.exists(prc):
                with open(prc, "w") as f:
                    f.write("#!/bin/sh\nexit 101\n")
                os.chmod(prc, 0o755)
                made = True
            try:
                log("apt-get install", *need)
                r = run_quiet(
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need],
                    env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                )
                if r.returncode != 0:
                    log("apt-get install failed:", r.stdout[-2000:])
            finally:
                if made:
                    os.unlink(prc)
            after = self.foreign_daemons()
            if after - before:
                self.notes.append(
                    f"installing peers started daemons {sorted(after - before)}; left running"
                )
                log("note: package install started", sorted(after - before), "(not touched)")
            for sysname, pkg in apt_pkgs.items():
                if pkg in need and run_quiet(["dpkg", "-s", pkg]).returncode != 0:
                    self.skip[sysname] = f"apt-get install {pkg} failed"
        if want_runit and "runit" not in self.skip:
            dl = os.path.join(CACHE, "dl")
            shutil.rmtree(dl, ignore_errors=True)
            os.makedirs(dl)
            r = run_quiet(["apt-get", "download", "runit"], cwd=dl)
            debs = [f for f in os.listdir(dl) if f.endswith(".deb")]
            if r.returncode != 0 or not debs:
                self.skip["runit"] = "apt-get download runit failed"
            else:
                # unpacked, never installed: its maintainer scripts would take over services
                run_quiet(["dpkg-deb", "-x", os.path.join(dl, debs[0]), runit_dir])
                with open(os.path.join(runit_dir, "VERSION"), "w") as f:
                    f.write(debs[0].split("_")[1])
        venv = os.path.join(CACHE, "venv")
        if "ncolony" in want and not os.path.exists(os.path.join(venv, "bin", "twistd")):
            if self.args.no_install:
                self.skip["ncolony"] = "not installed (--no-install)"
            else:
                log("virtualenv + pip install ncolony")
                r = run_quiet([sys.executable, "-m", "venv", venv])
                if r.returncode == 0:
                    r = run_quiet([os.path.join(venv, "bin", "pip"), "install", "-q", "ncolony"])
                if r.returncode != 0:
                    self.skip["ncolony"] = "pip install ncolony failed: " + r.stdout.strip()[-200:]
                    shutil.rmtree(venv, ignore_errors=True)
        # locate binaries
        rb = [os.path.join(runit_dir, "usr/bin"), os.path.join(runit_dir, "sbin")]
        locate = {
            "supervisord": ["supervisord", "supervisorctl"],
            "s6": ["s6-svscan", "s6-supervise", "s6-svstat"],
            "runit": ["runsvdir", "runsv", "sv"],
            "tini": ["tini"],
            "dumb-init": ["dumb-init"],
        }
        for sysname, names in locate.items():
            if sysname not in want or sysname in self.skip:
                continue
            for n in names:
                p = which(n, rb if sysname == "runit" else ())
                if not p:
                    self.skip[sysname] = f"{n} not found"
                    break
                self.bins[n] = p
        if "ncolony" in want and "ncolony" not in self.skip:
            self.bins["twistd"] = os.path.join(venv, "bin", "twistd")
        self.peer_versions(want)

    @staticmethod
    def foreign_daemons():
        out = set()
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        c = f.read().strip()
                except OSError:
                    continue
                if c in ("supervisord", "runsvdir", "s6-svscan", "runsv"):
                    out.add((int(pid), c))
        return out

    def peer_versions(self, want):
        def dpkg_ver(pkg):
            r = run_quiet(["dpkg-query", "-W", "-f", "${Version}", pkg])
            return r.stdout.strip() if r.returncode == 0 else None

        for sysname, pkg in [
            ("supervisord", "supervisor"),
            ("s6", "s6"),
            ("tini", "tini"),
            ("dumb-init", "dumb-init"),
        ]:
            if sysname in want and sysname not in self.skip:
                self.versions[sysname] = f"{pkg} {dpkg_ver(pkg)} (Debian)"
        vf = os.path.join(CACHE, "runit", "VERSION")
        if "runit" in want and "runit" not in self.skip and os.path.exists(vf):
            self.versions["runit"] = f"runit {open(vf).read().strip()} (Debian .deb, unpacked)"
        if "ncolony" in want and "ncolony" not in self.skip:
            r = run_quiet([os.path.join(CACHE, "venv", "bin", "pip"), "list", "--format=json"])
            try:
                pk = {p["name"].lower(): p["version"] for p in json.loads(r.stdout)}
                self.versions["ncolony"] = f"ncolony {pk.get('ncolony')} on Twisted {pk.get('twisted')} (PyPI)"
            except ValueError:
                pass
        self.versions["python3"] = platform.python_version()

    # -- C helpers ----------------------------------------------------------------------------
    def helpers(self):
        out = os.path.join(CACHE, "bin")
        os.makedirs(out, exist_ok=True)
        cc = which("gcc") or which("cc")
        if not cc:
            raise SystemExit("bench: no C compiler (gcc) found; apt-get install gcc libc6-dev")
        for name in ("stamp", "orphans", "floor"):
            src = os.path.join(HERE, "c", name + ".c")
            dst = os.path.join(out, name)
            if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
                r = run_quiet([cc, "-O2", "-static", "-o", dst + ".tmp", src])
                if r.returncode != 0:  # no static libc: a dynamic build is still fair, all use it
                    r = run_quiet([cc, "-O2", "-o", dst + ".tmp", src])
                if r.returncode != 0:
                    raise SystemExit(f"bench: cannot compile {src}:\n{r.stdout}")
                os.rename(dst + ".tmp", dst)
            self.bins[name] = dst

    # -- colony -------------------------------------------------------------------------------
    def colony(self):
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        prof = "debug" if self.args.debug else "release"
        if not self.args.no_build:
            cmd = ["cargo", "build", "-q", "-p", "colony-init", "-p", "colonyctl"]
            if not self.args.debug:
                cmd.insert(2, "--release")
            log(" ".join(cmd))
            r = subprocess.run(cmd, cwd=ROOT)
            if r.returncode != 0:
                self.skip["colony"] = "cargo build failed"
                return
        for n in ("colony-init", "colonyctl"):
            p = os.path.join(target, prof, n)
            if not os.path.exists(p):
                self.skip["colony"] = f"{p} not built"
                return
            self.bins[n] = p
        rev = run_quiet(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
        self.versions["colony"] = f"colony {rev} ({prof} build)"


# ---------------------------------------------------------------------------------------------
# the systems under test: each gets a temp dir and a list of services (name, mode)


def read_stamps(path):
    starts, exits = [], []
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) == 3 and line.endswith("\n"):
                    (starts if w[0] == "start" else exits).append((int(w[1]), int(w[2])))
    except OSError:
        pass
    return starts, exits


class System:
    """Writes the config of one system for some services and knows its commands."""

    def __init__(self, env, name, tmp, services, stamp_log):
        self.env, self.name, self.tmp, self.services, self.log = env, name, tmp, services, stamp_log
        self.status_argv = None
        self.status_shell = None
        self.status_ok = None  # predicate on a line of status output: that unit runs
        self.env_vars = {}
        b = env.bins
        st = b["stamp"]
        if name in ("colony", "colony-nocg"):
            units = os.path.join(tmp, "units")
            os.makedirs(units)
            for n, mode in services:
                with open(os.path.join(units, n + ".unit"), "w") as f:
                    f.write(
                        f'exec = ["{st}", "{mode}", "{stamp_log}"]\n'
                        # fastest setting, as NColony's --threshold 0 --minrestartdelay 0:
                        # no death counts as instant, so no anti-spin backoff
                        '[restart]\ndelay_min = "0s"\nthreshold = "0s"\n'
                    )
            dirs = {k: os.path.join(tmp, k) for k in ("run", "log", "state")}
            for d in dirs.values():
                os.makedirs(d)
            self.argv = [b["colony-init"], "--units", units, "--run-dir", dirs["run"],
                         "--log-dir", dirs["log"], "--state-dir", dirs["state"]]
            if name == "colony-nocg":
                # The peers use no cgroups: the same colony with none mounted (a private mount
                # namespace with an empty tmpfs on /sys/fs/cgroup) runs its units in process
                # groups, which shows what the per-unit cgroup costs on this kernel.
                self.argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh",
                             "-c", 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"', "sh",
                             *self.argv]
            self.status_argv = [b["colonyctl"], "--run-dir", dirs["run"], "status"]
            self.status_ok = lambda line: "running" in line
        elif name == "supervisord":
            conf = os.path.join(tmp, "supervisord.conf")
            os.makedirs(os.path.join(tmp, "logs"))
            with open(conf, "w") as f:
                f.write(
                    f"[unix_http_server]\nfile={tmp}/supervisor.sock\n"
                    f"[supervisord]\nnodaemon=true\nlogfile={tmp}/supervisord.log\n"
                    f"pidfile={tmp}/supervisord.pid\nchildlogdir={tmp}/logs\n"
                    f"minfds={len(services) * 4 + 200}\nminprocs={len(services) + 100}\n"
                    "[rpcinterface:supervisor]\n"
                    "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
                    f"[supervisorctl]\nserverurl=unix://{tmp}/supervisor.sock\n"
                )
                for n, mode in services:
                    # fastest settings: RUNNING at once (startsecs=0), never FATAL
                    f.write(
                        f"[program:{n}]\ncommand={st} {mode} {stamp_log}\nautorestart=true\n"
                        "startsecs=0\nstartretries=1000000\n"
                    )
            self.argv = [b["supervisord"], "-c", conf]
            self.status_argv = [b["supervisorctl"], "-c", conf, "status"]
            self.status_ok = lambda line: " RUNNING " in line
        elif name in ("s6", "runit"):
            scan = os.path.join(tmp, "scan")
            os.makedirs(scan)
            for n, mode in services:
                d = os.path.join(scan, n)
                os.makedirs(d)
                # ./run is the service itself (a symlink), so no shell sits in between
                os.symlink(st, os.path.join(d, "run"))
                with open(os.path.join(d, "stamp.conf"), "w") as f:
                    f.write(f"{mode} {stamp_log}\n")
            if name == "s6":
                # s6-svscan supervises at most 500 services unless told (-c)
                self.argv = [b["s6-svscan"], "-c", str(max(500, len(services) + 16)), scan]
                self.status_shell = f'for d in {scan}/*; do {b["s6-svstat"]} "$d"; done'
                self.status_ok = lambda line: line.startswith("up ")
            else:
                self.argv = [b["runsvdir"], scan]
                # runsvdir runs runsv by name, and runit is unpacked, not installed
                self.env_vars = {"PATH": os.path.dirname(b["runsv"]) + ":" + os.environ.get("PATH", "")}
                self.status_shell = f'{b["sv"]} status {scan}/*'
                self.status_ok = lambda line: line.startswith("run: ")
        elif name == "ncolony":
            conf, msgs = os.path.join(tmp, "config"), os.path.join(tmp, "messages")
            os.makedirs(conf)
            os.makedirs(msgs)
            for n, mode in services:
                with open(os.path.join(conf, n), "w") as f:
                    json.dump({"args": [st, mode, stamp_log]}, f)
            # fastest settings: immediate restarts, config dir read at start (then every 10 s)
            self.argv = [b["twistd"], "-n", "--pidfile=", "--logfile", os.path.join(tmp, "twistd.log"),
                         "ncolony", "--config", conf, "--messages", msgs, "--threshold", "0",
                         "--minrestartdelay", "0", "--maxrestartdelay", "0"]
        elif name == "floor":
            if len(services) == 1:  # restart: run the one service again and again
                mode = services[0][1]
                self.argv = [b["floor"], "restart", str(env.args.restarts), mode, st, stamp_log]
            else:
                self.argv = [b["floor"], "start", str(len(services)), st, stamp_log]
        else:
            raise ValueError(name)

    def start(self):
        t0 = now_ns()
        p = subprocess.Popen(
            self.argv, cwd=self.tmp, stdin=subprocess.DEVNULL,
            stdout=open(os.path.join(self.tmp, "out.log"), "wb"), stderr=subprocess.STDOUT,
            start_new_session=True, env=dict(os.environ, **self.env_vars),
        )
        return t0, Started(p)

    def supervisor_pids(self, started):
        """The supervisor's own processes: the tree minus the services."""
        stamp = os.path.realpath(self.env.bins["stamp"])
        return [p for p in started.snapshot() if exe_of(p) not in (stamp, None)]

    def status(self):
        if self.status_argv:
            argv = self.status_argv
        elif self.status_shell:
            argv = ["/bin/sh", "-c", self.status_shell]
        else:
            return None
        t = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           stdin=subprocess.DEVNULL, timeout=120)
        dt = time.perf_counter() - t
        running = sum(1 for line in r.stdout.splitlines() if self.status_ok(line))
        return dt, running, r.stdout


def wait_until(cond, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


# ---------------------------------------------------------------------------------------------
# the measurements


class Bench:
    def __init__(self, env, args):
        self.env, self.args = env, args
        self.samples = {}  # (metric, system) -> [values]
        self.notes = {}  # (metric, system) -> text
        self.tmps = []
        self.started = []

    def add(self, metric, system, value):
        self.samples.setdefault((metric, system), []).append(value)

    def note(self, metric, system, text):
        if (metric, system) not in self.notes:
            log(f"{system}: {metric}: {text}")
        self.notes[(metric, system)] = text

    def tmpdir(self, name):
        d = tempfile.mkdtemp(prefix=f"colony-bench-{name}-")
        self.tmps.append(d)
        return d

    def cleanup_tmp(self, d):
        shutil.rmtree(d, ignore_errors=True)
        if d in self.tmps:
            self.tmps.remove(d)

    def cleanup(self):
        for s in self.started:
            s.kill(grace=1.0)
        self.started = []
        for d in list(self.tmps):
            self.cleanup_tmp(d)

    def ok(self, system):
        return system not in self.env.skip

    # -- (1) restart latency ------------------------------------------------------------------
    def restart(self, system, mode):
        metric = f"restart_{mode}"
        k = self.args.restarts
        tmp = self.tmpdir(system)
        logf = os.path.join(tmp, "stamps")
        sysobj = System(self.env, system, tmp, [("r", mode)], logf)
        t0, st = sysobj.start()
        self.started.append(st)
        # a throttled peer takes about 1 s per restart, a live instance 1.1 s
        budget = 10 + k * (3.0 if mode == "live" else 2.5)
        wait_until(lambda: len(read_stamps(logf)[0]) >= k + 1 or st.p.poll() is not None, budget, 0.05)
        st.kill()
        self.started.remove(st)
        starts, exits = read_stamps(logf)
        exit_of = {pid: ns for ns, pid in exits}
        lat = []
        for (s_prev, pid_prev), (s_next, _) in zip(starts, starts[1:]):
            if pid_prev in exit_of:
                lat.append((s_next - exit_of[pid_prev]) / 1e6)
        lat = lat[:k]  # a fast system logs more restarts before the kill: same count for all
        if not lat:
            self.note(metric, system, f"no restart seen in {budget:.0f} s ({len(starts)} starts); "
                      + tail(os.path.join(tmp, "out.log")))
        else:
            if len(lat) < k:
                self.note(metric, system, f"only {len(lat)} of {k} restarts in {budget:.0f} s")
            for v in lat:
                self.add(metric, system, v)
        self.cleanup_tmp(tmp)

    # -- (2) orphan reaping as PID 1 of a PID namespace ---------------------------------------
    def reap(self, system, mode):
        n = self.args.orphans
        b = self.env.bins
        init = {
            "colony": [b.get("colony-init"), "--"],
            "tini": [b.get("tini"), "--"],
            "dumb-init": [b.get("dumb-init")],
        }[system]
        tmp = self.tmpdir(system)
        argv = ["unshare", "--pid", "--fork", "--mount-proc", *init, b["orphans"], mode, str(n)]
        p = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        st = Started(p)
        self.started.append(st)
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            out, err = "", "timed out after 120 s"
        st.kill(grace=0.5)
        self.started.remove(st)
        self.cleanup_tmp(tmp)
        res = None
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    res = json.loads(line)
                except ValueError:
                    pass
        if not res:
            self.note(f"reap_{mode}", system, f"no result (rc {p.returncode}): {err.strip()[-300:]}")
            return
        self.add(f"reap_{mode}", system, res["ms"])
        self.add(f"reap_{mode}_hwm", system, res["init_hwm_kb"])
        if res["zombies_left"]:
            self.note(f"reap_{mode}", system, f"{res['zombies_left']} zombies left")

    # -- (3)(4)(5) mass start, memory, idle cost, status ---------------------------------------
    def mass(self, system):
        n = self.args.n
        tmp = self.tmpdir(system)
        logf = os.path.join(tmp, "stamps")
        svcs = [(f"s{i:04d}", "sleep") for i in range(n)]
        sysobj = System(self.env, system, tmp, svcs, logf)
        t0, st = sysobj.start()
        self.started.append(st)
        try:
            got = wait_until(lambda: len(read_stamps(logf)[0]) >= n or st.p.poll() is not None,
                             self.args.start_timeout, 0.02)
            starts = read_stamps(logf)[0]
            if len(starts) < n:
                self.note("start", system, f"only {len(starts)} of {n} started in "
                          f"{self.args.start_timeout} s; " + tail(os.path.join(tmp, "out.log")))
                return
            del got
            t_all = max(ns for ns, _ in starts[:n])
            self.add("start", system, (t_all - t0) / 1e9)
            # let the supervisor finish its own bookkeeping of the last start
            time.sleep(self.args.settle)
            pids = sysobj.supervisor_pids(st)
            m = [mem_of(p) for p in pids]
            m = [x for x in m if x]
            self.add("rss", system, sum(x[0] for x in m) / 1024)
            if all(x[1] is not None for x in m):
                self.add("pss", system, sum(x[1] for x in m) / 1024)
            self.add("procs", system, len(m))
            # idle cost: context switches and CPU time of the supervisor processes
            before = {p: mem_of(p) for p in pids}
            time.sleep(self.args.idle)
            after = {p: mem_of(p) for p in pids}
            both = [p for p in pids if before.get(p) and after.get(p)]
            self.add("idle_ctxsw", system, sum(after[p][2] - before[p][2] for p in both))
            self.add("idle_cpu", system,
                     sum(after[p][3] - before[p][3] for p in both) / 1e6)
            # status of all N
            if system != "floor":
                times = []
                for _ in range(self.args.status_reps):
                    r = sysobj.status()
                    if r is None:  # NColony has none: n/a in the table
                        break
                    dt, running, out = r
                    if running < n:
                        self.note("status", system, f"status showed {running} of {n} running: "
                                  + out.strip()[-200:])
                        break
                    times.append(dt * 1000)
                for v in times:
                    self.add("status", system, v)
        finally:
            st.kill()
            self.started.remove(st)
            if system == "floor" and st.p.returncode not in (0, None, -9):
                self.note("start", system, f"floor exited {st.p.returncode}")
            self.cleanup_tmp(tmp)

    # -- (6) the floor: raw fork+exit+wait -------------------------------------------------------
    def forkwait(self):
        n = max(self.args.n, 1000)
        r = run_quiet([self.env.bins["floor"], "forkwait", str(n)])
        try:
            self.add("forkwait", "floor", int(r.stdout.split()[0]) / n / 1000)
        except (ValueError, IndexError):
            self.note("forkwait", "floor", r.stdout[-200:])

    # -- (7) sizes ---------------------------------------------------------------------------------
    def sizes(self):
        rows = []
        musl = "x86_64-unknown-linux-musl"
        built = None
        if "colony" not in self.env.skip and not self.args.no_build:
            have = run_quiet(["rustup", "target", "list", "--installed"]).stdout.split()
            if musl not in have:
                run_quiet(["rustup", "target", "add", musl])
            r = run_quiet(["cargo", "build", "-q", "--release", "--target", musl,
                           "-p", "colony-init", "-p", "colonyctl"], cwd=ROOT)
            target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
            if r.returncode == 0:
                built = (os.path.join(target, musl, "release"), "static musl, stripped")
            else:
                log("musl build failed; sizes of the gnu release build instead")
                built = (os.path.join(target, "release"), "gnu release build, stripped")
        if built:
            for n in ("colony-init", "colonyctl"):
                src = os.path.join(built[0], n)
                if os.path.exists(src):
                    d = self.tmpdir("size")
                    dst = os.path.join(d, n)
                    shutil.copy(src, dst)
                    run_quiet(["strip", dst])
                    rows.append(("colony", n, os.path.getsize(dst), built[1]))
                    self.cleanup_tmp(d)
        for sysname, names in [
            ("tini", ["tini-static", "tini"]),
            ("dumb-init", ["dumb-init"]),
            ("s6", ["s6-svscan", "s6-supervise"]),
            ("runit", ["runsvdir", "runsv"]),
        ]:
            if sysname in self.env.skip:
                continue
            extra = [os.path.join(CACHE, "runit", "usr/bin")] if sysname == "runit" else []
            for n in names:
                p = which(n, extra)
                if p:
                    rows.append((sysname, n, os.path.getsize(p), link_kind(p).lstrip(", ")))
        if "s6" not in self.env.skip:
            for lib in ("libs6.so.2.11", "libskarnet.so.2.13"):
                for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"):
                    p = os.path.join(d, lib)
                    if os.path.exists(p):
                        rows.append(("s6", lib, os.path.getsize(os.path.realpath(p)),
                                     "shared library s6 needs"))
                        break
        if "supervisord" not in self.env.skip:
            r = run_quiet(["dpkg-query", "-W", "-f", "${Installed-Size}", "supervisor"])
            if r.returncode == 0 and r.stdout.strip().isdigit():
                rows.append(("supervisord", "supervisor package", int(r.stdout) * 1024,
                             "Python source, plus a Python 3 runtime"))
        if "ncolony" not in self.env.skip:
            sp = os.path.join(CACHE, "venv")
            rows.append(("ncolony", "virtualenv (ncolony + Twisted + deps)", du(sp),
                         "Python source, plus a Python 3 runtime"))
        return rows


def link_kind(path):
    r = run_quiet(["file", "-b", path])
    if r.returncode != 0:
        return ""
    t = r.stdout
    if "statically linked" in t or "static-pie" in t:
        return ", static"
    if "dynamically linked" in t:
        return ", dynamic (needs libc.so)"
    return ""


def du(path):
    total = 0
    for dp, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dp, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def tail(path, n=300):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace").strip().replace("\n", " | ")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# report


def med(v):
    return statistics.median(v) if v else None


def fmt(v, unit):
    if v is None:
        return "–"
    if unit == "ms":
        return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms" if v < 1000 else f"{v:,.0f} ms"
    if unit == "s":
        return f"{v:.3f} s"
    if unit == "MB":
        return f"{v:.1f} MB" if v >= 1 else f"{v * 1024:.0f} kB"
    if unit == "kB":
        return f"{v:,.0f} kB"
    if unit == "us":
        return f"{v:.1f} µs"
    if unit == "n":
        return f"{v:,.0f}"
    return f"{v}"


def ratio(c, p):
    if c is None or p is None:
        return ""
    if p == 0:
        return " (=)" if c == 0 else " (colony ∞×)"
    r = c / p
    return f" ({r:.2f}×)" if r >= 0.1 or r == 0 else f" ({r:.2g}×)"


def table(bench, rows, systems, skip):
    head = "| metric | " + " | ".join(LABEL[s] for s in systems) + " |"
    out = [head, "|" + "---|" * (len(systems) + 1)]
    for metric, title, unit in rows:
        cells = []
        c = med(bench.samples.get((metric, "colony"), []))
        for s in systems:
            v = med(bench.samples.get((metric, s), []))
            if s in skip:
                cells.append("skipped")
            elif v is None:
                cells.append("n/a" if (metric, s) not in bench.notes else "failed¹")
            else:
                cells.append(fmt(v, unit) + ("" if s == "colony" else ratio(c, v)))
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def report(env, bench, args, sizes, started_at, secs):
    a = args
    lines = []
    lines.append(f"colony bench: N = {a.n}, rounds = {a.rounds}, {a.restarts} restarts per system "
                 f"and mode per round, {a.orphans} orphans, idle window {a.idle:g} s")
    lines.append(f"date {started_at} UTC, took {secs:.0f} s; {platform.node()}: "
                 f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
                 f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    lines.append("versions: " + "; ".join(f"{k}: {v}" for k, v in env.versions.items()))
    lines.append("Cells are medians; (x×) is colony's median divided by that system's: below 1 colony is "
                 "faster or smaller.")
    lines.append("")
    m = set(a.only)
    if "restart" in m or "start" in m:
        rows = []
        if "restart" in m:
            rows += [("restart_exit", "restart latency, exits at once", "ms"),
                     ("restart_live", "restart latency, lives 1.1 s", "ms")]
        if "start" in m:
            rows += [("start", f"mass start of {a.n}: all running", "s"),
                     ("rss", "supervisor RSS, summed", "MB"),
                     ("pss", "supervisor PSS, summed", "MB"),
                     ("procs", "supervisor processes", "n"),
                     ("idle_ctxsw", f"idle {a.idle:g} s: context switches", "n"),
                     ("idle_cpu", f"idle {a.idle:g} s: CPU time", "ms"),
                     ("status", f"status of all {a.n}", "ms")]
        lines.append(table(bench, rows, SUPERVISORS, env.skip))
        lines.append("")
    if "reap" in m:
        rows = [("reap_burst", f"{a.orphans} orphans at once: until no zombie", "ms"),
                ("reap_burst_hwm", "  peak RSS of PID 1", "kB"),
                ("reap_chain", f"{a.orphans} double forks one by one: until no zombie", "ms"),
                ("reap_chain_hwm", "  peak RSS of PID 1", "kB")]
        lines.append(table(bench, rows, INITS, env.skip))
        lines.append("")
    if "floor" in m:
        v = med(bench.samples.get(("forkwait", "floor"), []))
        lines.append(f"floor: raw fork+_exit+waitpid: {fmt(v, 'us')} per process")
        lines.append("")
    if sizes:
        lines.append("| system | file | size | kind |")
        lines.append("|---|---|---|---|")
        for s, n, size, kind in sizes:
            lines.append(f"| {LABEL[s]} | {n} | {size / 1024:,.0f} KiB | {kind} |")
        lines.append("")
    if env.skip:
        for s, why in env.skip.items():
            lines.append(f"skipped {LABEL[s]}: {why}")
    if bench.notes:
        lines.append("")
        for (metric, s), text in sorted(bench.notes.items()):
            lines.append(f"¹ {LABEL.get(s, s)} / {metric}: {text}")
    for n in env.notes:
        lines.append("note: " + n)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="services for mass start, idle, status")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(METRICS),
                    help="comma-separated: " + ",".join(METRICS))
    ap.add_argument("--systems", default="",
                    help="comma-separated subset of " + ",".join(SUPERVISORS + INITS[1:]))
    ap.add_argument("--restarts", type=int, default=5, help="restarts timed per system, mode, round")
    ap.add_argument("--orphans", type=int, default=5000)
    ap.add_argument("--idle", type=float, default=10.0, help="idle window in seconds")
    ap.add_argument("--settle", type=float, default=1.0, help="pause after the last start")
    ap.add_argument("--status-reps", type=int, default=3)
    ap.add_argument("--start-timeout", type=float, default=120.0)
    ap.add_argument("--debug", action="store_true", help="use colony's debug build (smoke)")
    ap.add_argument("--no-build", action="store_true", help="use colony binaries already built")
    ap.add_argument("--no-install", action="store_true", help="do not install missing peers")
    ap.add_argument("--require-colony", action="store_true",
                    help="exit 1 unless every colony measurement produced a number")
    ap.add_argument("--json", help="also write raw samples here")
    args = ap.parse_args()
    args.only = [m for m in args.only.split(",") if m]
    bad = [m for m in args.only if m not in METRICS]
    if bad:
        ap.error(f"unknown metric {bad}; choose from {METRICS}")

    want = set(SUPERVISORS + INITS)
    if args.systems:
        want = {"floor"} | set(args.systems.split(","))
        if "colony" in want:
            want.add("colony-nocg")
    os.makedirs(CACHE, exist_ok=True)
    set_subreaper()
    raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started_at = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    t_begin = time.monotonic()
    env = Env(args)
    env.install(want)
    env.helpers()
    if "colony" in want:
        env.colony()
    if "colony" in env.skip:
        env.skip["colony-nocg"] = env.skip["colony"]
    for s in SUPERVISORS + INITS:
        if s not in want:
            env.skip[s] = "not selected (--systems)"
    bench = Bench(env, args)
    sizes = []
    try:
        for rnd in range(args.rounds):
            log(f"round {rnd + 1}/{args.rounds}")
            # rotate the order each round, so no system always runs right after another
            sup = [s for s in SUPERVISORS if bench.ok(s)]
            sup = sup[rnd % len(sup):] + sup[: rnd % len(sup)] if sup else sup
            ini = [s for s in INITS if bench.ok(s)]
            ini = ini[rnd % len(ini):] + ini[: rnd % len(ini)] if ini else ini
            if "restart" in args.only:
                for mode in ("exit", "live"):
                    for s in sup:
                        log(f"restart/{mode}: {s}")
                        bench.restart(s, mode)
            if "reap" in args.only:
                for mode in ("burst", "chain"):
                    for s in ini:
                        log(f"reap/{mode}: {s}")
                        bench.reap(s, mode)
            if "start" in args.only:
                for s in sup:
                    log(f"mass start/idle/status: {s}")
                    bench.mass(s)
            if "floor" in args.only:
                bench.forkwait()
        if "size" in args.only:
            sizes = bench.sizes()
    finally:
        bench.cleanup()
    text = report(env, bench, args, sizes, started_at, time.monotonic() - t_begin)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "versions": env.versions, "skip": env.skip,
                       "samples": {f"{m}/{s}": v for (m, s), v in bench.samples.items()},
                       "notes": {f"{m}/{s}": v for (m, s), v in bench.notes.items()}}, f, indent=1)
    if args.require_colony and "colony" in want:
        missing = []
        if "colony" in env.skip:
            missing.append("colony skipped: " + env.skip["colony"])
        for (metric, s), text_ in bench.notes.items():
            if s == "colony":
                missing.append(f"{metric}: {text_}")
        expect = []
        if "restart" in args.only:
            expect += ["restart_exit", "restart_live"]
        if "reap" in args.only:
            expect += ["reap_burst", "reap_chain"]
        if "start" in args.only:
            expect += ["start", "rss", "idle_cpu", "status"]
        for metric in expect:
            if not bench.samples.get((metric, "colony")):
                missing.append(f"{metric}: no sample")
        if missing:
            print("colony measurements failed:\n  " + "\n  ".join(sorted(set(missing))), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
