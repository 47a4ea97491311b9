//! The HTML pages: plain tables and forms that work without JavaScript, and one small
//! inline script that keeps them live from the event stream. Everything is in the binary.

use std::fmt::Write;
use std::time::SystemTime;

use units::proto::{TimerStatus, UnitStatus};

use crate::state::{cpu_between, Sample};

/// HTML-escape.
pub fn esc(s: &str) -> String {
    Esc(s).to_string()
}

/// `s` HTML-escaped as it is written (into a page, without a String of its own).
pub struct Esc<'a>(pub &'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

const STYLE: &str = r#"
body{font:14px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#cfd8dc;text-decoration:none}header b{margin-right:auto}
main{padding:16px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}
th{background:#eceff1}.st{font-weight:bold;border-radius:3px;padding:1px 6px}
.running{background:#c8e6c9}.starting,.stopping{background:#fff9c4}.backoff{background:#ffe0b2}
.failed,.invalid{background:#ffcdd2}.stopped,.exited{background:#e0e0e0}.waiting{background:#bbdefb}
form.inline{display:inline}button{font-size:12px}pre{background:#111;color:#ddd;padding:8px;overflow:auto;max-height:24em}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}
svg{background:#fff;border:1px solid #ccc}.err{color:#b71c1c}
"#;

/// The live script: the event stream updates the rows (state, pid, restarts) in place, at
/// most once a frame; on the fleet's pages, a change of the fleet reads the page again.
const SCRIPT: &str = r#"
(function(){
 if(!window.EventSource)return;
 var page=document.body.dataset.page;
 // The rows by unit, found once: a page of 1000 rows is not searched at each event.
 var rows=null;
 function rowOf(n){
  if(!rows){rows=new Map();document.querySelectorAll('tr[data-unit]').forEach(function(r){rows.set(r.dataset.unit,r)})}
  return rows.get(n);
 }
 // Only what differs is written: an unchanged cell costs no layout.
 function set(row,k,v){var c=row.querySelector('[data-k="'+k+'"]');v=String(v);if(c&&c.textContent!==v)c.textContent=v}
 function apply(e,live){
  var row=rowOf(e.unit);
  // A unit new to colony-init: the overview is rendered again (a unit merely outside its
  // filter is not).
  if(!row){if(live&&page==='overview'&&e.to&&e.from==null)location.reload();return}
  if(!e.to){row.remove();rows.delete(e.unit);return}
  var st=row.querySelector('.st');
  if(st.textContent!==e.to){st.textContent=e.to;st.className='st '+e.to}
  set(row,'pid',e.pid==null?'':e.pid);set(row,'restarts',e.restarts);
  if(e.reason||!live)set(row,'reason',e.reason||'');
  if(!live)return;
  set(row,'uptime','0s');
  // A flash that asks for no layout now (no reading of offsetWidth to restart it).
  if(row.animate)row.animate([{backgroundColor:'#fff59d'},{backgroundColor:'transparent'}],{duration:1000});
  window.colonyLastEvent=e;
 }
 // Events wait for the next frame, the last of each unit kept (with the last reason, and
 // the time of the first: a kill and its restart may show as one change of pid and
 // restarts): a burst of them is one layout, not one an event.
 var queue=new Map(),frame=0;
 function flush(){frame=0;var q=queue;queue=new Map();q.forEach(function(e){apply(e,true)})}
 function later(e){
  var p=queue.get(e.unit);
  // The change this frame shows: from the first event's state to the last one's.
  e.first=p?p.first:e.time;
  if(p){e.from=p.from;if(!e.reason)e.reason=p.reason;queue.delete(e.unit)}
  queue.set(e.unit,e);
  if(!frame)frame=requestAnimationFrame(flush);
 }
 // What changed between the page's rendering and the stream's start (or while it was
 // behind): one read of the units shown, at each (re)connection.
 function refresh(){
  if(page==='fleet'||page==='host'){fleet();return}
  var shown=document.querySelectorAll('tr[data-unit]');if(!shown.length)return;
  var url=page==='unit'?'/api/v1/units/'+shown[0].dataset.unit:'/api/v1/units';
  fetch(url,{headers:{Accept:'application/json'}}).then(function(r){return r.json()}).then(function(l){
   (Array.isArray(l)?l:[l]).forEach(function(u){apply({unit:u.name,to:u.state,pid:u.pid,restarts:u.restarts,reason:u.error},false)});
  },function(){});
 }
 // The fleet changed: read this page again and put its new content in place (one read at
 // a time; changes meanwhile make one more).
 var busy=false,again=false;
 function fleet(){
  if(page!=='fleet'&&page!=='host')return;
  if(busy){again=true;return}
  busy=true;
  fetch(location.href,{headers:{Accept:'text/html'}}).then(function(r){return r.ok?r.text():''}).then(function(t){
   var m=t&&new DOMParser().parseFromString(t,'text/html').querySelector('main'),cur=document.querySelector('main');
   if(m&&cur&&m.innerHTML!==cur.innerHTML)cur.innerHTML=m.innerHTML;
  },function(){}).then(function(){busy=false;if(again){again=false;fleet()}});
 }
 var log=document.getElementById('log'),es,ls;
 function open(){
  es=new EventSource('/api/v1/events');
  es.onopen=refresh;
  es.onmessage=function(m){
   var e;try{e=JSON.parse(m.data)}catch(x){return}
   if(e.resync){refresh();return}
   if(e.fleet){fleet();return}
   later(e);
  };
  if(log&&log.dataset.unit){
   ls=new EventSource('/api/v1/units/'+log.dataset.unit+'/log/stream');
   ls.onopen=function(){log.dataset.live='1'};
   ls.onmessage=function(m){log.textContent+=m.data+'\n';log.scrollTop=log.scrollHeight};
  }
 }
 // A page kept in the back/forward cache must not hold its streams: the browser has
 // only 6 connections to a host, and a few such pages would stall every request.
 addEventListener('pagehide',function(){es.close();if(ls){ls.close();delete log.dataset.live}});
 addEventListener('pageshow',function(e){if(e.persisted)open()});
 open();
})();
"#;

pub fn layout(title: &str, page: &str, user: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
<title>{t} - colony</title><style>{STYLE}</style></head><body data-page=\"{page}\">\
<header><b>colony</b><a href=\"/\">Units</a><a href=\"/timers\">Timers</a><a href=\"/fleet\">Fleet</a><a href=\"/metrics\">Metrics</a>\
<span>{u}</span><form class=inline method=post action=\"/logout\"><button>Log out</button></form></header>\
<main>{body}</main><script>{SCRIPT}</script></body></html>",
        t = esc(title),
        u = esc(user)
    )
}

pub fn login(error: Option<&str>) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Log in - colony</title><style>{STYLE}</style></head>\
<body><header><b>colony</b></header><main><h1>Log in</h1>{e}<form method=post action=\"/login\">\
<p><label>User <input name=user autocomplete=username required></label></p>\
<p><label>Password <input name=password type=password autocomplete=current-password required></label></p>\
<p><button>Log in</button></p></form></main></body></html>",
        e = error
            .map(|e| format!("<p class=err>{}</p>", esc(e)))
            .unwrap_or_default()
    )
}

pub fn bytes(n: u64) -> String {
    let mut v = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if v < 1024.0 {
            return format!("{v:.1} {unit}");
        }
        v /= 1024.0;
    }
    format!("{v:.1} TiB")
}

fn uptime(since: &str, now: SystemTime) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(since) else {
        return String::new();
    };
    let now: chrono::DateTime<chrono::Utc> = now.into();
    let secs = (now - t.with_timezone(&chrono::Utc)).num_seconds().max(0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

fn last_exit(u: &UnitStatus) -> String {
    let Some(e) = &u.last_exit else {
        return String::new();
    };
    let mut s = match (&e.code, &e.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => sig.clone(),
        _ => "did not start".into(),
    };
    if let Some(r) = &e.reason {
        s.push_str(&format!(" ({r})"));
    }
    s
}

/// One form for a target's start/stop/restart buttons (each button names its action):
/// the CSRF token once a row, not once a button, keeps a page of 1000 units small.
fn action_form(target: &str, csrf: &str, back: &str) -> String {
    let mut b = String::new();
    write_action_form(&mut b, target, csrf, back);
    b
}

fn write_action_form(b: &mut String, target: &str, csrf: &str, back: &str) {
    let _ = write!(
        b,
        "<form class=inline method=post action=\"/action\"><input type=hidden name=csrf value=\"{c}\">\
<input type=hidden name=target value=\"{t}\"><input type=hidden name=back value=\"{b}\">\
<button name=action value=start>start</button><button name=action value=stop>stop</button>\
<button name=action value=restart>restart</button></form>",
        c = Esc(csrf),
        t = Esc(target),
        b = Esc(back)
    );
}

/// An optional number, or nothing.
struct Opt<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => Ok(()),
        }
    }
}

pub struct Filter {
    pub q: String,
    pub state: String,
}

pub fn overview(
    units: &[UnitStatus],
    cpu: &dyn Fn(&str) -> Option<f64>,
    f: &Filter,
    csrf: Option<&str>,
    now: SystemTime,
) -> String {
    let mut b = String::with_capacity(2048 + units.len() * 720);
    let _ = write!(
        b,
        "<h1>Units</h1><form method=get action=\"/\">Filter: <input name=q value=\"{}\" placeholder=\"name or @tag\"> \
<select name=state><option value=\"\">any state</option>",
        esc(&f.q)
    );
    for s in [
        "running", "starting", "stopping", "backoff", "failed", "stopped", "exited", "waiting",
        "invalid", "skipped",
    ] {
        let sel = if f.state == s { " selected" } else { "" };
        let _ = write!(b, "<option{sel}>{s}</option>");
    }
    b.push_str("</select> <button>Filter</button></form>");
    if let (Some(c), Some(tag)) = (csrf, f.q.strip_prefix('@')) {
        let _ = write!(b, "<p>Tag @{}: ", esc(tag));
        b.push_str(&action_form(&f.q, c, "/"));
        b.push_str("</p>");
    }
    b.push_str("<table id=units><thead><tr><th>Unit</th><th>State</th><th>PID</th><th>Uptime</th><th>Restarts</th>\
<th>Memory</th><th>CPU</th><th>Health</th><th>Last exit</th><th>Why</th><th>Tags</th><th>Actions</th></tr></thead><tbody>");
    let q = f.q.trim();
    for u in units {
        let matches = if let Some(tag) = q.strip_prefix('@') {
            u.tags.iter().any(|t| t == tag)
        } else {
            u.name.contains(q)
        };
        if !matches || (!f.state.is_empty() && u.state != f.state) {
            continue;
        }
        let _ = write!(
            b,
            "<tr data-unit=\"{n}\"><td><a href=\"/unit/{n}\">{n}</a></td><td><span class=\"st {s}\">{s}</span></td>\
<td data-k=pid>{pid}</td><td data-k=uptime>{up}</td><td data-k=restarts>{r}</td><td>{m}</td><td>{c}</td><td>{h}</td>\
<td>{le}</td><td data-k=reason>{why}</td><td>",
            n = Esc(&u.name),
            s = Esc(&u.state),
            pid = Opt(u.pid),
            up = uptime(&u.since, now),
            r = u.restarts,
            m = u.memory_bytes.map(bytes).unwrap_or_default(),
            c = cpu(&u.name).map(|c| format!("{c:.1}%")).unwrap_or_default(),
            h = Esc(u.health.as_deref().unwrap_or("")),
            le = Esc(&last_exit(u)),
            why = Esc(u.error.as_deref().unwrap_or("")),
        );
        for (i, t) in u.tags.iter().enumerate() {
            let sp = if i > 0 { " " } else { "" };
            let _ = write!(b, "{sp}<a href=\"/?q=%40{0}\">@{0}</a>", Esc(t));
        }
        b.push_str("</td><td>");
        if let Some(c) = csrf {
            write_action_form(&mut b, &u.name, c, "/");
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table>");
    b
}

/// A line graph of `points` (x: seconds ago, y: value) as SVG.
pub fn graph(title: &str, points: &[(f64, f64)], fmt: &dyn Fn(f64) -> String) -> String {
    let (w, h) = (600.0, 150.0);
    if points.len() < 2 {
        return format!("<h3>{}</h3><p>Not enough samples yet.</p>", esc(title));
    }
    let x0 = points.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let x1 = points.iter().map(|p| p.0).fold(f64::MIN, f64::max);
    let ymax = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    let dx = (x1 - x0).max(1e-9);
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", (x - x0) / dx * w, h - y / ymax * (h - 10.0)))
        .collect();
    format!(
        "<h3>{t}</h3><svg class=graph width={w} height={h} viewBox=\"0 0 {w} {h}\" role=img aria-label=\"{t}\">\
<polyline fill=none stroke=\"#1565c0\" stroke-width=2 points=\"{p}\"/>\
<text x=4 y=12 font-size=11>max {m}</text></svg>",
        t = esc(title),
        p = path.join(" "),
        m = esc(&fmt(ymax)),
    )
}

pub fn unit(
    u: &UnitStatus,
    definition: &str,
    log: &str,
    samples: &[Sample],
    csrf: Option<&str>,
    now: SystemTime,
) -> String {
    let mut b = String::new();
    let n = esc(&u.name);
    let _ = write!(b, "<h1>{n}</h1><table><tbody><tr data-unit=\"{n}\"><td>State <span class=\"st {s}\">{s}</span></td>\
<td>PID <span data-k=pid>{pid}</span></td><td>Restarts <span data-k=restarts>{r}</span></td><td>Up <span data-k=uptime>{up}</span></td>\
<td data-k=reason>{why}</td></tr></tbody></table>",
        s = esc(&u.state),
        pid = u.pid.map(|p| p.to_string()).unwrap_or_default(),
        r = u.restarts,
        up = uptime(&u.since, now),
        why = esc(u.error.as_deref().unwrap_or("")),
    );
    if let Some(c) = csrf {
        b.push_str("<p>");
        b.push_str(&action_form(&u.name, c, &format!("/unit/{}", u.name)));
        let _ = write!(
            b,
            "<form class=inline method=post action=\"/action\"><input type=hidden name=csrf value=\"{c}\">\
<input type=hidden name=target value=\"{n}\"><input type=hidden name=action value=signal>\
<input type=hidden name=back value=\"/unit/{n}\"><select name=signal><option>HUP</option><option>TERM</option>\
<option>KILL</option><option>USR1</option><option>USR2</option><option>INT</option></select><button>signal</button></form></p>",
            c = esc(c)
        );
    }
    b.push_str("<h2>Status</h2><dl>");
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(u) {
        for (k, v) in m {
            if v.is_null() {
                continue;
            }
            let v = match v {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            };
            let _ = write!(b, "<dt>{}</dt><dd>{}</dd>", esc(&k), esc(&v));
        }
    }
    b.push_str("</dl>");
    for w in &u.warnings {
        let _ = write!(b, "<p class=err>warning: {}</p>", esc(w));
    }
    let now_s = now;
    let ago = |s: &Sample| {
        -(now_s
            .duration_since(s.at())
            .unwrap_or_default()
            .as_secs_f64())
    };
    let mem: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((ago(s), s.memory()? as f64)))
        .collect();
    let cpu: Vec<(f64, f64)> = samples
        .windows(2)
        .filter_map(|w| Some((ago(&w[1]), cpu_between(&w[0], &w[1])?)))
        .collect();
    b.push_str(&graph("Memory", &mem, &|v| bytes(v as u64)));
    b.push_str(&graph("CPU %", &cpu, &|v| format!("{v:.1}%")));
    let _ = write!(
        b,
        "<h2>Log</h2><pre id=log data-unit=\"{n}\">{}</pre><h2>Definition</h2><pre>{}</pre>",
        esc(log),
        esc(definition)
    );
    b
}

pub fn timers(t: &[TimerStatus]) -> String {
    let mut b = String::from(
        "<h1>Timers</h1><table><thead><tr><th>Unit</th><th>Schedule</th><th>Next</th><th>Last</th>\
<th>Result</th><th>Skipped</th><th>Running</th></tr></thead><tbody>",
    );
    for x in t {
        let _ = write!(
            b,
            "<tr><td><a href=\"/unit/{n}\">{n}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.schedule),
            esc(x.next.as_deref().unwrap_or("")),
            esc(x.last.as_deref().unwrap_or("")),
            esc(x.last_result.as_deref().unwrap_or("")),
            x.skipped,
            x.running,
            n = esc(&x.name)
        );
    }
    b.push_str("</tbody></table>");
    b
}
