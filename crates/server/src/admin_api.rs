//! The admin API's HTTP routes (docs/ADMIN.md), served on the admin Unix
//! socket. Each handler is a line or two over [`AdminView`]:
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/status` | the [`Snapshot`](crate::admin_snapshot::Snapshot) |
//! | `GET /v1/sessions?user=U&protocol=P` | the sessions, filtered |
//! | `GET /v1/sessions/{id}` | one session, or 404 |
//! | `POST /v1/sessions/{id}/disconnect` | ends it (Admin-Reset) |
//! | `POST /v1/disconnect?user=U` or `?all=true` | ends a user's or all |
//! | `POST /v1/reload` | reads the configuration again (`{ok, changed, error}`) |
//! | `GET /metrics` | Prometheus text |

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::admin_snapshot::SessionFilter;
use crate::admin_view::{AdminView, DisconnectTarget};
use crate::SessionId;

/// The routes over `view`.
pub fn router(view: Arc<AdminView>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/sessions", get(sessions))
        .route("/v1/sessions/{id}", get(session))
        .route("/v1/sessions/{id}/disconnect", post(disconnect_one))
        .route("/v1/disconnect", post(disconnect_many))
        .route("/v1/reload", post(reload))
        .route("/metrics", get(metrics))
        .with_state(view)
}

/// Serves `router(view)` on `listener` until `stop` turns true.
pub async fn serve(listener: UnixListener, view: Arc<AdminView>, mut stop: watch::Receiver<bool>) {
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, router(view))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!("admin API: {e}");
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn status(State(view): State<Arc<AdminView>>) -> Response {
    Json(view.snapshot()).into_response()
}

async fn sessions(
    State(view): State<Arc<AdminView>>,
    Query(filter): Query<SessionFilter>,
) -> Response {
    Json(view.sessions(&filter)).into_response()
}

async fn session(State(view): State<Arc<AdminView>>, Path(id): Path<u64>) -> Response {
    match view.session(SessionId::from_raw(id)) {
        Some(s) => Json(s).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no session {id}")),
    }
}

async fn disconnect_one(State(view): State<Arc<AdminView>>, Path(id): Path<u64>) -> Response {
    let done = view.disconnect(&DisconnectTarget::Session(SessionId::from_raw(id)));
    if done.sessions.is_empty() {
        return error(StatusCode::NOT_FOUND, &format!("no session {id}"));
    }
    Json(done).into_response()
}

/// `POST /v1/disconnect`'s query: exactly one of the two.
#[derive(Debug, Deserialize)]
struct Many {
    user: Option<String>,
    #[serde(default)]
    all: bool,
}

async fn disconnect_many(State(view): State<Arc<AdminView>>, Query(q): Query<Many>) -> Response {
    let target = match (q.user, q.all) {
        (Some(user), false) => DisconnectTarget::User(user),
        (None, true) => DisconnectTarget::All,
        _ => return error(StatusCode::BAD_REQUEST, "give either user=NAME or all=true"),
    };
    Json(view.disconnect(&target)).into_response()
}

/// Reload (reload.rs): 200 with the outcome whether taken or refused
/// (`ok` says which), so that the client can print the reason.
async fn reload(State(view): State<Arc<AdminView>>) -> Response {
    let Some(reloader) = view.reloader.clone() else {
        return error(StatusCode::NOT_FOUND, "this server cannot reload");
    };
    match tokio::task::spawn_blocking(move || reloader.reload()).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the reload task failed: {e}"),
        ),
    }
}

async fn metrics(State(view): State<Arc<AdminView>>) -> Response {
    let text = crate::metrics_render::render(
        &view.metrics,
        &view.snapshot(),
        &view.dropped(),
        &view.ipsec_dropped(),
        &view.netbios_counts(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_client::{request, AdminClientError};
    use crate::admin_snapshot::{Disconnected, SessionView, Snapshot};
    use crate::config::Ipv4Pool;
    use crate::pool::StaticPool;
    use crate::radius_auth::TunnelKind;
    use crate::sessions::Sessions;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_routes_answer_over_the_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let sessions = Arc::new(Sessions::new());
        sessions.open(SessionId::from_raw(1), "192.0.2.1:4000", TunnelKind::Sstp);
        sessions.with(SessionId::from_raw(1), |r| r.claim("alice", None, None));
        sessions.open(SessionId::from_raw(2), "192.0.2.2:4000", TunnelKind::Pptp);
        let pool = Arc::new(StaticPool::new(&Ipv4Pool::default()));
        let view = Arc::new(AdminView::new("s", sessions.clone(), pool));
        let (stop, stop_rx) = watch::channel(false);
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(serve(listener, view, stop_rx));

        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            let get = |route: &str| request(&p, "GET", route);
            let status: Snapshot =
                serde_json::from_slice(&get("/v1/status").unwrap().body).unwrap();
            assert_eq!(status.sessions.len(), 2);
            let list: Vec<SessionView> =
                serde_json::from_slice(&get("/v1/sessions?protocol=pptp").unwrap().body).unwrap();
            assert_eq!(list.iter().map(|s| s.id).collect::<Vec<_>>(), vec![2]);
            let one: SessionView =
                serde_json::from_slice(&get("/v1/sessions/1").unwrap().body).unwrap();
            assert_eq!(one.user.as_deref(), Some("alice"));
            match get("/v1/sessions/9") {
                Err(AdminClientError::Status { status, message }) => {
                    assert_eq!((status, message.as_str()), (404, "no session 9"))
                }
                other => panic!("{other:?}"),
            }
            match request(&p, "POST", "/v1/disconnect") {
                Err(AdminClientError::Status { status, .. }) => assert_eq!(status, 400),
                other => panic!("{other:?}"),
            }
            let done: Disconnected = serde_json::from_slice(
                &request(&p, "POST", "/v1/sessions/2/disconnect")
                    .unwrap()
                    .body,
            )
            .unwrap();
            assert_eq!(done.sessions, vec![2]);
            let metrics = String::from_utf8(get("/metrics").unwrap().body).unwrap();
            assert!(metrics.contains("ras_sessions{protocol=\"pptp\",state=\"authenticating\"} 1"));
            assert!(metrics.ends_with("# EOF\n"));
        })
        .await
        .unwrap();
        assert!(sessions
            .with(SessionId::from_raw(2), |r| r.live.stop_requested())
            .unwrap());
        stop.send(true).unwrap();
        server.await.unwrap();
    }
}
