//! The fleet's routes: its pages, `/api/v1/fleet`, and fleet start/stop of an application.

use std::time::SystemTime;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::{self, may_act, unauthorized, Who};
use crate::fleet::Fleet;
use crate::state::Shared;
use crate::{fleet_pages, pages};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/fleet", get(fleet_page))
        .route("/fleet/host/{name}", get(host_page))
        .route("/fleet/action", post(form_action))
        .route("/api/v1/fleet", get(api_fleet))
        .route("/api/v1/fleet/apps/{name}/{action}", post(api_action))
}

async fn who(app: &Shared, h: &HeaderMap) -> Result<Who, Response> {
    auth::who(app, h).await.ok_or_else(|| unauthorized(h))
}

fn no_fleet() -> Response {
    (
        StatusCode::NOT_FOUND,
        "404 no fleet: set fleet = \"/etc/colony/fleet.toml\" in web.toml\n",
    )
        .into_response()
}

fn fleet_of(app: &Shared) -> Result<&Fleet, Response> {
    app.fleet.as_ref().ok_or_else(no_fleet)
}

fn unreachable(e: String) -> Response {
    (StatusCode::BAD_GATEWAY, format!("the fleet: {e}\n")).into_response()
}

/// The fleet's state, and one more sample of its hosts for the graphs.
async fn status(app: &Shared) -> Result<colony_fleet::ctl::Status, Response> {
    fleet_of(app)?.status().await.map_err(unreachable)
}

async fn fleet_page(State(app): State<Shared>, h: HeaderMap) -> Response {
    let who = match who(&app, &h).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if app.fleet.is_none() {
        let body = "<h1>Fleet</h1><p>No fleet is configured: set <code>fleet = \"/etc/colony/fleet.toml\"</code> \
(colony-fleet's configuration) in web.toml.</p>";
        return Html(pages::layout("Fleet", "fleet", &who.user, body)).into_response();
    }
    match status(&app).await {
        Ok(s) => {
            let csrf = crate::routes::operator_csrf(&who);
            let body = fleet_pages::fleet(&s, csrf.as_deref());
            Html(pages::layout("Fleet", "fleet", &who.user, &body)).into_response()
        }
        Err(r) => r,
    }
}

async fn host_page(State(app): State<Shared>, h: HeaderMap, Path(name): Path<String>) -> Response {
    let who = match who(&app, &h).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let s = match status(&app).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(host) = s.hosts.iter().find(|x| x.name == name) else {
        return (StatusCode::NOT_FOUND, "404 no such host in the fleet\n").into_response();
    };
    let samples = app
        .fleet
        .as_ref()
        .map(|f| f.samples(&name))
        .unwrap_or_default();
    let body = fleet_pages::host(host, &samples, SystemTime::now());
    Html(pages::layout(&name, "host", &who.user, &body)).into_response()
}

async fn api_fleet(State(app): State<Shared>, h: HeaderMap) -> Response {
    if let Err(r) = who(&app, &h).await {
        return r;
    }
    match status(&app).await {
        Ok(s) => Json(s).into_response(),
        Err(r) => r,
    }
}

fn enable_of(action: &str) -> Option<bool> {
    match action {
        "start" => Some(true),
        "stop" => Some(false),
        _ => None,
    }
}

/// Start or stop `name` fleet-wide, as `who`.
async fn act(app: &Shared, who: &Who, name: &str, action: &str) -> Result<(), Response> {
    let Some(enable) = enable_of(action) else {
        return Err((StatusCode::NOT_FOUND, "404 actions: start, stop\n").into_response());
    };
    if !units::parse::valid_unit_name(name) {
        return Err((StatusCode::BAD_REQUEST, "400 bad application name\n").into_response());
    }
    tracing::info!(user = %who.user, action, app = name, "fleet action");
    match fleet_of(app)?.set_enabled(name, enable).await {
        Ok(true) => Ok(()),
        Ok(false) => Err((
            StatusCode::NOT_FOUND,
            format!("404 no application {name} in the fleet\n"),
        )
            .into_response()),
        Err(e) => Err(unreachable(e)),
    }
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    app: String,
    action: String,
}

async fn form_action(
    State(app): State<Shared>,
    h: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    let who = match who(&app, &h).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if let Err(r) = may_act(&who, Some(&f.csrf)) {
        return r;
    }
    match act(&app, &who, &f.app, &f.action).await {
        Ok(()) => Redirect::to("/fleet").into_response(),
        Err(r) => r,
    }
}

async fn api_action(
    State(app): State<Shared>,
    h: HeaderMap,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let who = match who(&app, &h).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let token = h.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if let Err(r) = may_act(&who, token) {
        return r;
    }
    match act(&app, &who, &name, &action).await {
        Ok(()) => Json(serde_json::json!({"app": name, "action": action})).into_response(),
        Err(r) => r,
    }
}
