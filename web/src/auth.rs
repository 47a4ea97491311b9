//! Who is asking: a session cookie (browsers, with a CSRF token for every action) or HTTP
//! Basic (scripts). Viewers read; operators act.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;

use crate::state::Shared;
use crate::users::Role;

pub const COOKIE: &str = "colony_session";

#[derive(Debug, Clone)]
pub struct Who {
    pub user: String,
    pub role: Role,
    /// Through a session cookie: its CSRF token (None: HTTP Basic, which a browser never
    /// sends on its own to another site's form, so needs none).
    pub csrf: Option<String>,
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// The caller, if its credentials hold.
pub async fn who(app: &Shared, headers: &HeaderMap) -> Option<Who> {
    if let Some(t) = session_token(headers) {
        if let Some(s) = app.session(&t) {
            return Some(Who {
                user: s.user,
                role: s.role,
                csrf: Some(s.csrf),
            });
        }
    }
    let basic = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, pw) = raw.split_once(':')?;
    let (user, pw) = (user.to_string(), pw.to_string());
    let delay = app.login_delay(&user);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let app2 = app.clone();
    let u2 = user.clone();
    let role = tokio::task::spawn_blocking(move || app2.users.check(&u2, &pw))
        .await
        .ok()
        .flatten();
    match role {
        Some(role) => {
            app.login_ok(&user);
            Some(Who {
                user,
                role,
                csrf: None,
            })
        }
        None => {
            app.login_failed(&user);
            None
        }
    }
}

/// No valid credentials: browsers (asking for HTML) go to the login page, others get 401.
pub fn unauthorized(headers: &HeaderMap) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if html {
        Redirect::to("/login").into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"colony\"")],
            "401 unauthorized: log in, or use HTTP Basic with a user of the users file\n",
        )
            .into_response()
    }
}

/// May `who` act, with this CSRF token (from the form or the X-CSRF-Token header)?
pub fn may_act(who: &Who, token: Option<&str>) -> Result<(), Response> {
    if who.role != Role::Operator {
        return Err((
            StatusCode::FORBIDDEN,
            "403 forbidden: viewers may not act; an operator may\n",
        )
            .into_response());
    }
    if let Some(expected) = &who.csrf {
        let ok = token.is_some_and(|t| constant_eq(t.as_bytes(), expected.as_bytes()));
        if !ok {
            return Err((
                StatusCode::FORBIDDEN,
                "403 forbidden: missing or wrong CSRF token (reload the page)\n",
            )
                .into_response());
        }
    }
    Ok(())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The Set-Cookie value of a new session.
pub fn session_cookie(token: &str, tls: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        crate::state::SESSION_TTL.as_secs(),
        if tls { "; Secure" } else { "" }
    )
}
