//! The fleet tests' harness (`tests/fleet.rs`, `tests/fleet_policy.rs`): a real etcd, hosts as network namespaces (veth on a bridge), each
//! with its own colony-init in its own PID namespace running colony-fleet as a unit.
//!
//! Needs root, `ip`, `unshare` and etcd (Debian's etcd-server); skipped with a message
//! otherwise. Everything a test creates (namespaces, links, processes, cgroups) is removed by
//! Drop guards, also when the test fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{bin, remove_cgroups, skip_or_fail, unique_name, wait_for};

/// Lease time of the test fleets: short, so failover scenarios stay quick.
pub const TTL: u64 = 4;
/// Host loss is noticed when the lease lapses (TTL), then the leader places and the new
/// host's colony-init starts the unit: a bound for "runs elsewhere" that only a hang
/// reaches (on an idle machine it takes about TTL + 2 s; the tests print the figure).
/// A loaded CI machine stretches every step, so this is no speed goal.
pub const FAILOVER: Duration = Duration::from_secs(TTL + 56);
pub const LONG: Duration = Duration::from_secs(60);

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn fleet_bin() -> PathBuf {
    // colony-fleet sits beside colonyctl; building colonyctl's crate does not build it.
    let ctl = bin("colonyctl");
    let p = ctl.with_file_name("colony-fleet");
    if std::env::var_os("COLONY_BIN_DIR").is_none() {
        static BUILT: std::sync::Once = std::sync::Once::new();
        BUILT.call_once(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let ok = Command::new(cargo)
                .current_dir(crate::bins::workspace_root())
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "colony-fleet",
                    "--bin",
                    "colony-fleet",
                ])
                .status()
                .expect("run cargo build")
                .success();
            assert!(ok, "cargo build -p colony-fleet failed");
        });
    }
    assert!(p.exists(), "{} missing", p.display());
    p
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Root, ip, unshare and etcd are needed; say why a test cannot run.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        skip_or_fail!("SKIP fleet tests: they need root (network namespaces)");
        return false;
    }
    for c in ["ip", "unshare", "etcd", "nsenter"] {
        if !have(c) {
            skip_or_fail!("SKIP fleet tests: `{c}` is missing (apt-get install etcd-server iproute2 util-linux)");
            return false;
        }
    }
    true
}

pub fn run(cmd: &str, args: &[&str]) {
    let o = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn quiet(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn kill9(child: &mut Child) {
    // SAFETY: signalling a child this test started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

pub struct Host {
    pub name: String,
    pub ns: String,
    /// The root-namespace end of its veth (on the bridge).
    pub veth_out: String,
    /// Its end inside the namespace.
    pub veth_in: String,
    pub dir: PathBuf,
    pub cgroup: String,
    /// `ip netns exec NS unshare --pid --fork --kill-child colony-init ...`
    pub init: Option<Child>,
    /// Run colony-init (and so the agent) as this user instead of root.
    pub uid: Option<u32>,
}

impl Host {
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn units_dir(&self) -> PathBuf {
        self.dir.join("units")
    }

    /// This host's colony-init, asked directly (not through the fleet): its units' status.
    /// colonyctl as the user of this host's colony-init (its FIFOs are that user's).
    pub fn colonyctl(&self) -> Command {
        match self.uid {
            None => Command::new(bin("colonyctl")),
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(bin("colonyctl"));
                c
            }
        }
    }

    pub fn units(&self) -> Option<Vec<Value>> {
        let o = self
            .colonyctl()
            .arg("--run-dir")
            .arg(self.run_dir())
            .args(["--json", "--timeout", "3s", "status"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        serde_json::from_slice(&o.stdout).ok()
    }

    pub fn unit_state(&self, unit: &str) -> Option<String> {
        self.units()?
            .into_iter()
            .find(|u| u["name"] == unit)
            .and_then(|u| u["state"].as_str().map(str::to_string))
    }

    pub fn runs(&self, app: &str) -> bool {
        self.init.is_some()
            && self.unit_state(&format!("fleet-{app}")).as_deref() == Some("running")
    }

    pub fn log(&self) -> String {
        let init = std::fs::read_to_string(self.dir.join("init.log")).unwrap_or_default();
        let agent =
            std::fs::read_to_string(self.dir.join("log/colony-fleet.log")).unwrap_or_default();
        format!(
            "--- {} colony-init:\n{init}\n--- {} colony-fleet:\n{agent}",
            self.name, self.name
        )
    }

    /// Kill the host: SIGKILL to its PID namespace's init takes every process with it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.init.take() {
            // The namespace's PID 1 is unshare's child; --kill-child does not reach it once
            // it changed user (a credential change clears the parent-death signal), so it
            // is killed by its own PID first.
            let pid = c.id();
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: the child of the unshare this test started, by its PID.
                unsafe { libc::kill(child, libc::SIGKILL) };
            }
            kill9(&mut c);
        }
    }
}

pub struct Etcd {
    pub children: Vec<Child>,
    pub endpoints: Vec<String>,
}

impl Etcd {
    /// The index of a member that is not the raft leader (plain-http clusters): losing it
    /// costs no election, so no agent has a reason to fence.
    pub fn follower(&self) -> usize {
        wait_for("etcd to name its leader", LONG, || {
            let o = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", self.endpoints.join(",")))
                .args(["endpoint", "status", "-w", "json"])
                .stdin(Stdio::null())
                .output()
                .ok()?;
            let v: Value = serde_json::from_slice(&o.stdout).ok()?;
            v.as_array()?.iter().find_map(|e| {
                let st = &e["Status"];
                let me = st["header"]["member_id"].as_u64()?;
                let leader = st["leader"].as_u64()?;
                let ep = e["Endpoint"].as_str()?;
                (me != leader)
                    .then(|| self.endpoints.iter().position(|x| x == ep))
                    .flatten()
            })
        })
    }
}

/// A fleet under test. Drop removes processes, namespaces, links and the bridge.
pub struct Fleet {
    pub tmp: tempfile::TempDir,
    pub tag: String,
    pub net: u8,
    pub bridge: String,
    pub etcd: Etcd,
    pub hosts: Vec<Host>,
    pub extra: String,
    pub t0: Instant,
    /// With TLS: the operator's fleet.toml (ctl uses it instead of bare endpoints).
    pub ctl_config: Option<PathBuf>,
    /// The hosts' lease time, seconds.
    pub ttl: u64,
    /// The `[policy]` table of every host's fleet.toml added from now on. The tests' apps
    /// run as colony-init's own user (root), so root is allowed unless a test says otherwise.
    pub policy: String,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            h.kill();
        }
        for c in &mut self.etcd.children {
            kill9(c);
        }
        for h in &self.hosts {
            quiet("ip", &["netns", "del", &h.ns]);
            quiet("ip", &["link", "del", &h.veth_out]);
            remove_cgroups(&h.cgroup);
        }
        quiet("ip", &["link", "del", &self.bridge]);
        if std::thread::panicking() {
            for h in &self.hosts {
                eprintln!("{}", h.log());
            }
            for i in 0..self.etcd.children.len() {
                let l = std::fs::read_to_string(self.tmp.path().join(format!("etcd{i}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = l.lines().rev().take(20).collect();
                eprintln!(
                    "--- etcd{i} (last lines, newest first):\n{}",
                    tail.join("\n")
                );
            }
        }
    }
}

impl Fleet {
    /// A bridge with `members` etcd members on it; no hosts yet. `extra` is added to every
    /// host's fleet.toml.
    pub fn new(members: usize, extra: &str) -> Fleet {
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{:04x}{seq}", pid % 0xffff);
        // 10.NET.x.0/24 for this fleet only: 10.200-249.
        let net = 200 + ((pid as usize * 7 + seq as usize) % 50) as u8;
        let bridge = format!("cfb{tag}");
        // etcd syncs its log to disk at every write; on a disk busy with builds one sync can
        // outlast the agents' lease. In memory (/dev/shm) a sync costs nothing and the
        // tests see the fleet, not the disk.
        let tmp = tempfile::Builder::new()
            .prefix("colony-fleet-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("tempdir");
        let mut fleet = Fleet {
            tmp,
            tag,
            net,
            bridge,
            etcd: Etcd {
                children: Vec::new(),
                endpoints: Vec::new(),
            },
            hosts: Vec::new(),
            extra: extra.to_string(),
            t0: Instant::now(),
            ctl_config: None,
            ttl: TTL,
            policy: "[policy]\nroot = true\n".to_string(),
        };
        run("ip", &["link", "add", &fleet.bridge, "type", "bridge"]);
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("10.{net}.0.1/16"),
                "dev",
                &fleet.bridge,
            ],
        );
        for i in 0..members {
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("10.{net}.1.{}/16", i + 1),
                    "dev",
                    &fleet.bridge,
                ],
            );
        }
        run("ip", &["link", "set", &fleet.bridge, "up"]);
        fleet.start_etcd(members, false);
        fleet
    }

    /// One etcd member serving TLS only, with client certificates required and etcd's
    /// users and roles on: the agents' user may touch the fleet's prefix, nothing else.
    pub fn new_tls() -> Fleet {
        let mut fleet = Fleet::new(0, "");
        let d = fleet.tmp.path().to_path_buf();
        let ip = fleet.etcd_ip(0);
        run(
            "ip",
            &["addr", "add", &format!("{ip}/16"), "dev", &fleet.bridge],
        );
        let ssl = |args: &[&str]| run("openssl", args);
        let p = |f: &str| d.join(f).to_str().expect("utf-8 path").to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        ssl(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
                "-days",
                "1",
                "-subj",
                "/CN=colony test CA",
            ],
        ]
        .concat());
        for (name, ext) in [
            (
                "server",
                format!(
                    "subjectAltName=IP:{ip},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
                ),
            ),
            ("client", "extendedKeyUsage=clientAuth\n".to_string()),
        ] {
            std::fs::write(d.join(format!("{name}.ext")), ext).expect("ext");
            ssl(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &p(&format!("{name}.key")),
                    "-out",
                    &p(&format!("{name}.csr")),
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat());
            ssl(&[
                "x509",
                "-req",
                "-in",
                &p(&format!("{name}.csr")),
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca.key"),
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &p(&format!("{name}.pem")),
                "-extfile",
                &p(&format!("{name}.ext")),
            ]);
        }
        fleet.start_etcd(1, true);
        let etcdctl = |args: &[&str]| {
            let o = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", fleet.etcd.endpoints.join(",")))
                .args([
                    "--cacert",
                    &p("ca.pem"),
                    "--cert",
                    &p("client.pem"),
                    "--key",
                    &p("client.key"),
                ])
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("etcdctl");
            assert!(
                o.status.success(),
                "etcdctl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        etcdctl(&["user", "add", "root:rootpw"]);
        etcdctl(&["user", "add", "fleet:fleetpw"]);
        etcdctl(&["role", "add", "fleet"]);
        etcdctl(&[
            "role",
            "grant-permission",
            "fleet",
            "--prefix=true",
            "readwrite",
            "/colony/fleet/",
        ]);
        etcdctl(&["user", "grant-role", "fleet", "fleet"]);
        etcdctl(&["auth", "enable"]);
        fleet.extra =
            format!(
            "user = \"fleet\"\npassword = \"fleetpw\"\n[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
            p("ca.pem"), p("client.pem"), p("client.key")
        );
        let endpoints: Vec<String> = fleet
            .etcd
            .endpoints
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        let ctl = d.join("ctl.toml");
        std::fs::write(
            &ctl,
            format!(
                "host = \"operator\"\nendpoints = [{}]\n{}",
                endpoints.join(", "),
                fleet.extra
            ),
        )
        .expect("ctl.toml");
        fleet.ctl_config = Some(ctl);
        fleet
    }

    pub fn etcd_ip(&self, i: usize) -> String {
        format!("10.{}.1.{}", self.net, i + 1)
    }

    pub fn start_etcd(&mut self, members: usize, tls: bool) {
        let scheme = if tls { "https" } else { "http" };
        let d = self.tmp.path().to_path_buf();
        let cluster: Vec<String> = (0..members)
            .map(|i| format!("e{i}=http://{}:2380", self.etcd_ip(i)))
            .collect();
        for i in 0..members {
            let ip = self.etcd_ip(i);
            let log =
                std::fs::File::create(self.tmp.path().join(format!("etcd{i}.log"))).expect("log");
            let child = Command::new("etcd")
                .arg("--name")
                .arg(format!("e{i}"))
                .arg("--data-dir")
                .arg(self.tmp.path().join(format!("etcd{i}")))
                .arg("--listen-client-urls")
                .arg(format!("{scheme}://{ip}:2379"))
                .arg("--advertise-client-urls")
                .arg(format!("{scheme}://{ip}:2379"))
                .arg("--listen-peer-urls")
                .arg(format!("http://{ip}:2380"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://{ip}:2380"))
                .arg("--initial-cluster")
                .arg(cluster.join(","))
                .arg("--initial-cluster-token")
                .arg(format!("t{}", self.tag))
                .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
                .args(if tls {
                    vec![
                        "--client-cert-auth".to_string(),
                        format!("--trusted-ca-file={}", d.join("ca.pem").display()),
                        format!("--cert-file={}", d.join("server.pem").display()),
                        format!("--key-file={}", d.join("server.key").display()),
                    ]
                } else {
                    Vec::new()
                })
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start etcd");
            self.etcd.children.push(child);
            self.etcd.endpoints.push(format!("{scheme}://{ip}:2379"));
        }
        if members == 0 {
            return;
        }
        wait_for("etcd to answer", LONG, || {
            let mut c = Command::new("etcdctl");
            c.env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", self.etcd.endpoints.join(",")));
            if tls {
                c.arg(format!("--cacert={}", d.join("ca.pem").display()))
                    .arg(format!("--cert={}", d.join("client.pem").display()))
                    .arg(format!("--key={}", d.join("client.key").display()));
            }
            let o = c
                .args(["endpoint", "health"])
                .stdin(Stdio::null())
                .output()
                .ok()?;
            o.status.success().then_some(())
        });
    }

    /// Add host `name` (a network namespace with a veth on the bridge, a colony-init in a
    /// PID namespace of its own, colony-fleet as one of its units) and start it.
    pub fn add_host(&mut self, name: &str, labels: &str) -> usize {
        self.add_host_as(name, labels, None)
    }

    pub fn add_host_as(&mut self, name: &str, labels: &str, uid: Option<u32>) -> usize {
        let i = self.hosts.len();
        let ns = format!("cf{}{name}", self.tag);
        let veth_out = format!("cf{}{i}o", self.tag);
        let veth_in = format!("cf{}{i}i", self.tag);
        let dir = self.tmp.path().join(name);
        for d in ["units", "run", "log", "state"] {
            std::fs::create_dir_all(dir.join(d)).expect("host dir");
        }
        let host = Host {
            name: name.to_string(),
            ns: ns.clone(),
            veth_out: veth_out.clone(),
            veth_in: veth_in.clone(),
            dir: dir.clone(),
            cgroup: unique_name("colony-fleet-test"),
            init: None,
            uid,
        };
        self.hosts.push(host);
        run("ip", &["netns", "add", &ns]);
        run(
            "ip",
            &[
                "link", "add", &veth_out, "type", "veth", "peer", "name", &veth_in,
            ],
        );
        run(
            "ip",
            &["link", "set", &veth_out, "master", &self.bridge, "up"],
        );
        run("ip", &["link", "set", &veth_in, "netns", &ns]);
        let addr = format!("10.{}.2.{}/16", self.net, i + 10);
        run("ip", &["-n", &ns, "addr", "add", &addr, "dev", &veth_in]);
        run("ip", &["-n", &ns, "link", "set", &veth_in, "up"]);
        run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        let endpoints: Vec<String> = self
            .etcd
            .endpoints
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        std::fs::write(
            dir.join("fleet.toml"),
            format!(
                "host = {name:?}\nlabels = {{ {labels} }}\nendpoints = [{}]\nttl = \"{}s\"\npublish_every = \"500ms\"\n{}\n{}",
                endpoints.join(", "),
                self.ttl,
                self.extra,
                self.policy,
            ),
        )
        .expect("fleet.toml");
        // No run_dir or units_dir in fleet.toml: the agent, run as a unit, uses those of
        // the colony-init that started it (COLONY_RUN_DIR, COLONY_UNITS_DIR).
        std::fs::write(
            dir.join("units/colony-fleet.unit"),
            format!(
                "exec = [{:?}, \"--config\", {:?}]\n[ready]\ntype = \"notify\"\ntimeout = \"10m\"\n[restart]\ndelay_min = \"200ms\"\n",
                fleet_bin(),
                dir.join("fleet.toml")
            ),
        )
        .expect("agent unit");
        if let Some(uid) = uid {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(self.tmp.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            run(
                "chown",
                &["-R", &format!("{uid}:{uid}"), dir.to_str().expect("utf-8")],
            );
        }
        self.start_host(i);
        i
    }

    pub fn start_host(&mut self, i: usize) {
        let h = &mut self.hosts[i];
        let log = std::fs::File::create(h.dir.join("init.log")).expect("log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &h.ns,
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
            ])
            .args(match h.uid {
                Some(uid) => vec![
                    "setpriv".to_string(),
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".to_string(),
                ],
                None => Vec::new(),
            })
            .arg(bin("colony-init"))
            .arg("--units")
            .arg(h.units_dir())
            .arg("--run-dir")
            .arg(h.run_dir())
            .arg("--log-dir")
            .arg(h.dir.join("log"))
            .arg("--state-dir")
            .arg(h.dir.join("state"))
            .arg("--cgroup-name")
            .arg(&h.cgroup)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start colony-init");
        h.init = Some(child);
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("known host")
    }

    pub fn host_mut(&mut self, name: &str) -> &mut Host {
        self.hosts
            .iter_mut()
            .find(|h| h.name == name)
            .expect("known host")
    }

    /// `colony-fleet ctl ...` (what `colonyctl fleet ...` runs), with the endpoints only:
    /// an operator outside the fleet.
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(fleet_bin());
        match &self.ctl_config {
            Some(cfg) => c.arg("--config").arg(cfg).arg("ctl"),
            None => c
                .arg("ctl")
                .arg("--endpoints")
                .arg(self.etcd.endpoints.join(",")),
        };
        c.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run colony-fleet ctl")
    }

    pub fn status(&self) -> Option<Value> {
        let o = self.ctl(&["--json", "status"]);
        serde_json::from_slice(&o.stdout).ok()
    }

    pub fn app(&self, app: &str) -> Option<Value> {
        self.status()?["apps"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == app)
            .cloned()
    }

    pub fn apply(&self, app: &str, text: &str) {
        eprintln!("{:?} apply {app}", self.t0.elapsed());
        let path = self.tmp.path().join(format!("{app}.toml"));
        std::fs::write(&path, text).expect("app file");
        let o = self.ctl(&["apply", path.to_str().expect("utf-8 path")]);
        assert!(
            o.status.success(),
            "apply {app}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub fn up_hosts(&self) -> Vec<String> {
        self.status()
            .and_then(|s| {
                s["hosts"].as_array().map(|hs| {
                    hs.iter()
                        .filter(|h| h["up"] == true)
                        .filter_map(|h| h["name"].as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    pub fn wait_hosts_up(&self, names: &[&str]) {
        wait_for(&format!("hosts {names:?} up in fleet status"), LONG, || {
            let up = self.up_hosts();
            names
                .iter()
                .all(|n| up.iter().any(|u| u == n))
                .then_some(())
        });
    }

    pub fn leader(&self) -> Option<String> {
        self.status()?["leader"].as_str().map(str::to_string)
    }

    /// Which hosts run `app`, asked of every host's colony-init (not of the fleet).
    pub fn running_on(&self, app: &str) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.runs(app))
            .map(|h| h.name.clone())
            .collect()
    }

    /// Wait until `app` runs on exactly the hosts `want` (every host's colony-init checked).
    pub fn wait_runs_on(&self, app: &str, want: &[&str], limit: Duration) -> Duration {
        let t0 = Instant::now();
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        let mut last = Vec::new();
        let ok = crate::ns::wait_for(limit, || {
            last = self.running_on(app);
            last == want
        });
        assert!(
            ok,
            "{app} should run on {want:?}, runs on {last:?}; fleet status: {}",
            self.status().map(|s| s.to_string()).unwrap_or_default()
        );
        t0.elapsed()
    }

    pub fn wait_runs_somewhere(&self, app: &str, limit: Duration) -> String {
        let mut last = Vec::new();
        let ok = crate::ns::wait_for(limit, || {
            last = self.running_on(app);
            last.len() == 1
        });
        assert!(ok, "{app} should run on one host, runs on {last:?}");
        last.remove(0)
    }
}

/// Samples every host's colony-init over and over, counting hosts where the unit of an
/// application is in one of `states`: more than one at any moment is a double.
pub struct Copies {
    pub stop: Arc<AtomicBool>,
    pub seen: Arc<Mutex<BTreeMap<usize, usize>>>,
    pub handle: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Copies {
    pub fn watch(f: &Fleet, app: &str, states: &[&str]) -> Copies {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<usize, usize>>> = Arc::default();
        let hosts: Vec<(String, Command)> = f
            .hosts
            .iter()
            .map(|h| {
                let mut c = h.colonyctl();
                c.arg("--run-dir")
                    .arg(h.run_dir())
                    .args(["--json", "--timeout", "3s", "status"]);
                (h.name.clone(), c)
            })
            .collect();
        let unit = format!("fleet-{app}");
        let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
        let handle = {
            let stop = stop.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut hosts = hosts;
                let mut worst = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let mut on = Vec::new();
                    for (name, cmd) in hosts.iter_mut() {
                        let copy = cmd
                            .output()
                            .ok()
                            .and_then(|o| serde_json::from_slice::<Vec<Value>>(&o.stdout).ok())
                            .is_some_and(|v| {
                                v.iter().any(|u| {
                                    u["name"] == unit.as_str()
                                        && states.iter().any(|s| u["state"] == s.as_str())
                                })
                            });
                        if copy {
                            on.push(name.clone());
                        }
                    }
                    *seen.lock().unwrap().entry(on.len()).or_default() += 1;
                    if on.len() > 1 {
                        worst = on;
                    }
                }
                worst
            })
        };
        Copies {
            stop,
            seen,
            handle: Some(handle),
        }
    }

    /// Stop watching; fail if two copies were ever seen, or the app was hardly seen at all.
    pub fn check(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let worst = self.handle.take().unwrap().join().unwrap();
        let seen = self.seen.lock().unwrap().clone();
        assert!(
            worst.is_empty(),
            "two copies at once, on {worst:?}; samples by copies: {seen:?}"
        );
        assert!(
            seen.get(&1).copied().unwrap_or(0) > 10,
            "the watcher saw the app: {seen:?}"
        );
    }
}

impl Drop for Copies {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub const SLEEPER: &str = "exec = [\"/bin/sleep\", \"100000\"]\n";
