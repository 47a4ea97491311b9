//! The fleet's pages: hosts and applications (with fleet start/stop), and a host's page
//! with its units and graphs. Plain tables and forms, like the other pages.

use std::fmt::Write;
use std::time::SystemTime;

use colony_fleet::ctl::{HostView, Status};

use crate::fleet::HostSample;
use crate::pages::{bytes, esc, graph};

fn memory(h: &HostView) -> String {
    match (h.memory_bytes, h.memory_available_bytes) {
        (Some(t), Some(a)) => format!("{} / {}", bytes(t.saturating_sub(a)), bytes(t)),
        _ => String::new(),
    }
}

fn host_state(h: &HostView) -> (&'static str, &'static str) {
    match (h.up, h.error.is_some()) {
        (false, _) => ("lost", "failed"),
        (true, true) => ("up (no colony-init)", "backoff"),
        (true, false) => ("up", "running"),
    }
}

/// The class that colours an application's state like a unit's.
fn app_class(state: &str) -> &'static str {
    match state {
        "running" => "running",
        "starting" | "stopping" | "degraded" => "starting",
        "waiting" => "waiting",
        "stopped" => "stopped",
        _ => "failed",
    }
}

fn app_form(app: &str, csrf: &str) -> String {
    format!(
        "<form class=inline method=post action=\"/fleet/action\"><input type=hidden name=csrf value=\"{c}\">\
<input type=hidden name=app value=\"{n}\"><button name=action value=start>start</button>\
<button name=action value=stop>stop</button></form>",
        c = esc(csrf),
        n = esc(app)
    )
}

pub fn fleet(s: &Status, csrf: Option<&str>) -> String {
    let mut b = String::from("<h1>Fleet</h1>");
    match &s.leader {
        Some(l) => {
            let _ = write!(b, "<p>Leader: <b id=leader>{}</b></p>", esc(l));
        }
        None => b.push_str("<p class=err>No leader: no agent is placing applications.</p>"),
    }
    b.push_str(
        "<h2>Hosts</h2><table id=hosts><thead><tr><th>Host</th><th>State</th><th>Load</th><th>CPUs</th>\
<th>Memory used</th><th>Units running</th><th>Labels</th></tr></thead><tbody>",
    );
    for h in &s.hosts {
        let (state, class) = host_state(h);
        let running = h.units.iter().filter(|u| u.state == "running").count();
        let _ = write!(
            b,
            "<tr data-host=\"{n}\"><td><a href=\"/fleet/host/{n}\">{n}</a>{lead}</td><td><span class=\"st {class}\">{state}</span></td>\
<td>{load}</td><td>{cpus}</td><td>{mem}</td><td>{units}</td><td>{labels}</td></tr>",
            n = esc(&h.name),
            lead = if h.leader { " <b>(leader)</b>" } else { "" },
            load = h.load.map(|l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])).unwrap_or_default(),
            cpus = h.cpus.map(|c| c.to_string()).unwrap_or_default(),
            mem = memory(h),
            units = if h.up { format!("{running}/{}", h.units.len()) } else { String::new() },
            labels = esc(&h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")),
        );
    }
    b.push_str(
        "</tbody></table><h2>Applications</h2><table id=apps><thead><tr><th>Application</th><th>State</th>\
<th>Runs on</th><th>Assigned to</th><th>Replicas</th><th>Strategy</th><th>Why</th><th>Actions</th></tr></thead><tbody>",
    );
    for a in &s.apps {
        let _ = write!(
            b,
            "<tr data-app=\"{n}\"><td>{n}</td><td><span class=\"st {class}\">{st}</span></td><td data-k=hosts>{on}</td>\
<td>{assigned}</td><td>{r}</td><td>{strategy}{fixed}</td><td data-k=why>{why}</td><td>",
            n = esc(&a.name),
            class = app_class(&a.state),
            st = esc(&a.state),
            on = esc(&a.hosts.join(", ")),
            assigned = esc(&a.assigned.join(", ")),
            r = a.replicas,
            strategy = esc(&a.strategy),
            fixed = if a.movable { "" } else { " (fixed)" },
            why = esc(a.why.as_deref().unwrap_or("")),
        );
        if let Some(c) = csrf {
            b.push_str(&app_form(&a.name, c));
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table>");
    b
}

pub fn host(h: &HostView, samples: &[HostSample], now: SystemTime) -> String {
    let (state, class) = host_state(h);
    let mut b = format!(
        "<h1>Host {n}</h1><p><span class=\"st {class}\">{state}</span>{lead} load {load}, memory {mem}, \
{cpus} CPUs. Labels: {labels}</p>",
        n = esc(&h.name),
        lead = if h.leader { " (leader)" } else { "" },
        load = h
            .load
            .map(|l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]))
            .unwrap_or_default(),
        mem = memory(h),
        cpus = h.cpus.unwrap_or(0),
        labels = esc(
            &h.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    if let Some(e) = &h.error {
        let _ = write!(b, "<p class=err>{}</p>", esc(e));
    }
    let ago = |s: &HostSample| -(now.duration_since(s.at).unwrap_or_default().as_secs_f64());
    let load: Vec<(f64, f64)> = samples.iter().map(|s| (ago(s), s.load)).collect();
    let mem: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (ago(s), s.memory_used as f64))
        .collect();
    b.push_str(&graph("Load (1 min)", &load, &|v| format!("{v:.2}")));
    b.push_str(&graph("Memory used", &mem, &|v| bytes(v as u64)));
    b.push_str(
        "<h2>Units</h2><table><thead><tr><th>Unit</th><th>State</th><th>PID</th><th>Restarts</th>\
<th>Memory</th><th>Tasks</th></tr></thead><tbody>",
    );
    for u in &h.units {
        let _ = write!(
            b,
            "<tr><td>{n}</td><td><span class=\"st {s}\">{s}</span></td><td>{pid}</td><td>{r}</td><td>{m}</td><td>{t}</td></tr>",
            n = esc(&u.name),
            s = esc(&u.state),
            pid = u.pid.map(|p| p.to_string()).unwrap_or_default(),
            r = u.restarts,
            m = u.memory_bytes.map(bytes).unwrap_or_default(),
            t = u.tasks.map(|t| t.to_string()).unwrap_or_default(),
        );
    }
    b.push_str("</tbody></table>");
    b
}
