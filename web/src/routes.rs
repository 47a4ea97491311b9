//! The HTTP routes: pages, the JSON API, actions, the event stream, /metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use units::proto::{TimerStatus, UnitStatus, Verb};

use crate::auth::{self, may_act, unauthorized, Who};
use crate::pages;
use crate::state::{self, Shared};

/// A unit name as colony-init allows (1-64 of `A-Z a-z 0-9 _ . - @`, starting with a
/// letter or digit): anything else is refused before it reaches colony-init.
fn valid_unit(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'))
}

fn valid_target(t: &str) -> bool {
    match t.strip_prefix('@') {
        Some(tag) => valid_unit(tag),
        None => valid_unit(t),
    }
}

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/unit/{name}", get(unit_page))
        .route("/timers", get(timers_page))
        .route("/action", post(form_action))
        .route("/metrics", get(metrics))
        .route("/api/v1/units", get(api_units))
        .route("/api/v1/units/{name}", get(api_unit))
        .route("/api/v1/units/{name}/log", get(api_log))
        .route("/api/v1/units/{name}/log/stream", get(api_log_stream))
        .route("/api/v1/units/{name}/{action}", post(api_action))
        .route("/api/v1/timers", get(api_timers))
        .route("/api/v1/events", get(api_events))
        .merge(crate::fleet_routes::routes())
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(app)
}

fn bad_gateway(e: String) -> Response {
    (StatusCode::BAD_GATEWAY, format!("colony-init: {e}\n")).into_response()
}

macro_rules! who_or_401 {
    ($app:expr, $h:expr) => {
        match auth::who(&$app, &$h).await {
            Some(w) => w,
            None => return unauthorized(&$h),
        }
    };
}

async fn all_units(app: &Shared) -> Result<Arc<Vec<UnitStatus>>, Response> {
    state::all_units(app).await.map_err(bad_gateway)
}

async fn one_unit(app: &Shared, name: &str) -> Result<UnitStatus, Response> {
    if !valid_unit(name) {
        return Err((StatusCode::NOT_FOUND, "404 no such unit\n").into_response());
    }
    let r = state::status(app, vec![name.to_string()])
        .await
        .map_err(bad_gateway)?;
    if r.code == units::proto::exit::NO_SUCH_UNIT {
        return Err((StatusCode::NOT_FOUND, format!("404 no such unit: {name}\n")).into_response());
    }
    state::units_of(r)
        .into_iter()
        .next()
        .ok_or_else(|| (StatusCode::NOT_FOUND, "404 no such unit\n").into_response())
}

#[derive(Deserialize)]
struct FilterQ {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
}

async fn overview(State(app): State<Shared>, h: HeaderMap, Query(f): Query<FilterQ>) -> Response {
    let who = who_or_401!(app, h);
    let units = match all_units(&app).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let csrf = operator_csrf(&who);
    let body = pages::overview(
        &units,
        &|n| app.cpu_percent(n),
        &pages::Filter {
            q: f.q,
            state: f.state,
        },
        csrf.as_deref(),
        SystemTime::now(),
    );
    Html(pages::layout("Units", "overview", &who.user, &body)).into_response()
}

/// Forms for operators that logged in through the page carry its CSRF token.
pub(crate) fn operator_csrf(who: &Who) -> Option<String> {
    (who.role == crate::users::Role::Operator).then(|| who.csrf.clone().unwrap_or_default())
}

async fn login_page() -> Html<String> {
    Html(pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

async fn login(State(app): State<Shared>, Form(f): Form<LoginForm>) -> Response {
    let user = f.user.chars().take(64).collect::<String>();
    let delay = app.login_delay(&user);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let app2 = app.clone();
    let (u2, pw) = (user.clone(), f.password);
    let role = tokio::task::spawn_blocking(move || app2.users.check(&u2, &pw))
        .await
        .ok()
        .flatten();
    match role {
        Some(role) => {
            app.login_ok(&user);
            tracing::info!(user = %user, "logged in");
            let (token, _) = app.new_session(&user, role);
            (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, auth::session_cookie(&token, app.tls)),
                    (header::LOCATION, "/".to_string()),
                ],
            )
                .into_response()
        }
        None => {
            app.login_failed(&user);
            tracing::warn!(user = %user, "login refused");
            (
                StatusCode::UNAUTHORIZED,
                Html(pages::login(Some("Wrong user or password."))),
            )
                .into_response()
        }
    }
}

async fn logout(State(app): State<Shared>, h: HeaderMap) -> Response {
    if let Some(t) = auth::session_token(&h) {
        app.end_session(&t);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!(
                    "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                    auth::COOKIE
                ),
            ),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}

/// The unit's last `n` lines, from the log file colony-init names (never a path from the
/// request).
fn tail(path: Option<&str>, n: usize) -> String {
    let Some(p) = path else { return String::new() };
    let Ok(mut f) = std::fs::File::open(p) else {
        return String::new();
    };
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(from));
    let mut buf = Vec::new();
    let _ = f.take(64 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    lines[skip..].join("\n")
}

async fn unit_page(State(app): State<Shared>, h: HeaderMap, Path(name): Path<String>) -> Response {
    let who = who_or_401!(app, h);
    let u = match one_unit(&app, &name).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let def = read_definition(&app, &u.name).await;
    let log = tail(u.log_file.as_deref(), 50);
    let csrf = operator_csrf(&who);
    let body = pages::unit(
        &u,
        &def,
        &log,
        &app.samples(&u.name),
        csrf.as_deref(),
        SystemTime::now(),
    );
    Html(pages::layout(&u.name, "unit", &who.user, &body)).into_response()
}

/// NAME.unit from the units directory colony-init reports (`info`); `name` is checked.
async fn read_definition(app: &Shared, name: &str) -> String {
    let Ok(r) = state::ask(app, Verb::Info, Vec::new(), Duration::from_secs(5)).await else {
        return String::new();
    };
    let Ok(info) = serde_json::from_value::<units::proto::Info>(r.data) else {
        return String::new();
    };
    let base = name.split('@').next().unwrap_or(name);
    let dir = std::path::Path::new(&info.units_dir);
    std::fs::read_to_string(dir.join(format!("{name}.unit")))
        .or_else(|_| std::fs::read_to_string(dir.join(format!("{base}@.unit"))))
        .unwrap_or_default()
}

async fn timers_list(app: &Shared) -> Result<Arc<Vec<TimerStatus>>, Response> {
    state::all_timers(app).await.map_err(bad_gateway)
}

async fn timers_page(State(app): State<Shared>, h: HeaderMap) -> Response {
    let who = who_or_401!(app, h);
    match timers_list(&app).await {
        Ok(t) => Html(pages::layout(
            "Timers",
            "timers",
            &who.user,
            &pages::timers(&t),
        ))
        .into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    target: String,
    action: String,
    #[serde(default)]
    back: String,
    #[serde(default)]
    signal: Option<String>,
}

fn verb_of(action: &str) -> Option<Verb> {
    match action {
        "start" => Some(Verb::Start),
        "stop" => Some(Verb::Stop),
        "restart" => Some(Verb::Restart),
        "signal" => Some(Verb::Signal),
        _ => None,
    }
}

fn valid_signal(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Carry out an action; `wait`: until the units are up/down (as colonyctl does).
async fn act(
    app: &Shared,
    who: &Who,
    verb: Verb,
    target: &str,
    signal: Option<String>,
    wait: bool,
) -> Result<units::proto::Reply, Response> {
    if !valid_target(target) {
        return Err((StatusCode::BAD_REQUEST, "400 bad unit name\n").into_response());
    }
    let mut args = Vec::new();
    if verb == Verb::Signal {
        match signal {
            Some(s) if valid_signal(&s) => args.push(s),
            _ => {
                return Err(
                    (StatusCode::BAD_REQUEST, "400 signal needs ?signal=NAME\n").into_response()
                )
            }
        }
    } else if !wait {
        args.push("--no-block".to_string());
    }
    args.push(target.to_string());
    tracing::info!(user = %who.user, verb = %verb, target, "action");
    let r = state::ask(app, verb, args, Duration::from_secs(120))
        .await
        .map_err(bad_gateway)?;
    if r.code != units::proto::exit::NO_SUCH_UNIT {
        app.table.acted(target);
    }
    Ok(r)
}

async fn form_action(
    State(app): State<Shared>,
    h: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    let who = who_or_401!(app, h);
    if let Err(r) = may_act(&who, Some(&f.csrf)) {
        return r;
    }
    let Some(verb) = verb_of(&f.action) else {
        return (StatusCode::BAD_REQUEST, "400 unknown action\n").into_response();
    };
    if let Err(r) = act(&app, &who, verb, &f.target, f.signal, false).await {
        return r;
    }
    // Back where the form was: only our own pages.
    let back = if f.back == "/" || (f.back.starts_with("/unit/") && valid_unit(&f.back[6..])) {
        f.back
    } else {
        "/".to_string()
    };
    Redirect::to(&back).into_response()
}

#[derive(Deserialize)]
struct SignalQ {
    signal: Option<String>,
}

async fn api_action(
    State(app): State<Shared>,
    h: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    Query(q): Query<SignalQ>,
) -> Response {
    let who = who_or_401!(app, h);
    let token = h.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if let Err(r) = may_act(&who, token) {
        return r;
    }
    let Some(verb) = verb_of(&action) else {
        return (
            StatusCode::NOT_FOUND,
            "404 actions: start, stop, restart, signal\n",
        )
            .into_response();
    };
    match act(&app, &who, verb, &name, q.signal, true).await {
        Ok(r) => {
            let code = match r.code {
                0 => StatusCode::OK,
                c if c == units::proto::exit::NO_SUCH_UNIT => StatusCode::NOT_FOUND,
                c if c == units::proto::exit::USAGE => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            (code, Json(r)).into_response()
        }
        Err(r) => r,
    }
}

async fn api_units(State(app): State<Shared>, h: HeaderMap) -> Response {
    let _ = who_or_401!(app, h);
    match all_units(&app).await {
        Ok(u) => Json(&*u).into_response(),
        Err(r) => r,
    }
}

async fn api_unit(State(app): State<Shared>, h: HeaderMap, Path(name): Path<String>) -> Response {
    let _ = who_or_401!(app, h);
    match one_unit(&app, &name).await {
        Ok(u) => Json(u).into_response(),
        Err(r) => r,
    }
}

async fn api_timers(State(app): State<Shared>, h: HeaderMap) -> Response {
    let _ = who_or_401!(app, h);
    match timers_list(&app).await {
        Ok(t) => Json(&*t).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct LinesQ {
    lines: Option<usize>,
}

async fn api_log(
    State(app): State<Shared>,
    h: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<LinesQ>,
) -> Response {
    let _ = who_or_401!(app, h);
    match one_unit(&app, &name).await {
        Ok(u) => {
            let text = tail(u.log_file.as_deref(), q.lines.unwrap_or(50).min(1000));
            Json(text.lines().map(str::to_string).collect::<Vec<_>>()).into_response()
        }
        Err(r) => r,
    }
}

/// New lines of a unit's log as server-sent events (the page's live tail): the file
/// colony-init names is read from its end on, as it grows.
async fn api_log_stream(
    State(app): State<Shared>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let _ = who_or_401!(app, h);
    let u = match one_unit(&app, &name).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(path) = u.log_file else {
        return (StatusCode::NOT_FOUND, "404 no log\n").into_response();
    };
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    // Opened and at its end before the stream is answered: once the page sees the stream
    // open, every line written after is sent.
    let Ok(mut f) = tokio::fs::File::open(&path).await else {
        return (StatusCode::NOT_FOUND, "404 no log yet\n").into_response();
    };
    let mut pos = f.seek(std::io::SeekFrom::End(0)).await.unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(256);
    tokio::spawn(async move {
        let mut partial = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if tx.is_closed() {
                return;
            }
            match f.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // Rotated or truncated: start again from the new file's start.
                    let len = tokio::fs::metadata(&path)
                        .await
                        .map(|m| m.len())
                        .unwrap_or(pos);
                    if len < pos {
                        if let Ok(nf) = tokio::fs::File::open(&path).await {
                            f = nf;
                            pos = 0;
                            continue;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(n) => {
                    pos += n as u64;
                    partial.extend_from_slice(&buf[..n]);
                    while let Some(i) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=i).collect();
                        let s = String::from_utf8_lossy(&line).trim_end().to_string();
                        if tx.send(s).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|l| Ok::<_, Infallible>(SseEvent::default().data(l)));
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn event_stream(app: &Shared) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    BroadcastStream::new(app.events.subscribe()).filter_map(|m| match m {
        Ok(line) => Some(Ok(SseEvent::default().data(&*line))),
        // Fell behind: tell the page to reload what it shows.
        Err(_) => Some(Ok(SseEvent::default().data("{\"resync\":true}"))),
    })
}

async fn api_events(State(app): State<Shared>, h: HeaderMap) -> Response {
    let _ = who_or_401!(app, h);
    Sse::new(event_stream(&app))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn metrics(State(app): State<Shared>, h: HeaderMap) -> Response {
    let _ = who_or_401!(app, h);
    // Two requests to colony-init, at once.
    let (units, timers) = tokio::join!(all_units(&app), timers_list(&app));
    let units = match units {
        Ok(u) => u,
        Err(r) => return r,
    };
    let timers = timers.unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&units, &timers),
    )
        .into_response()
}
