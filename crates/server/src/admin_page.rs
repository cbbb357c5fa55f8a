//! The web status page of the admin HTTPS listener (docs/ADMIN.md): one
//! HTML, one script and one style sheet, embedded in the binary (no build
//! step, nothing fetched from elsewhere). They hold no data: the script
//! asks for the token and reads `/v1/status` and `/v1/sessions` with it.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const HTML: &str = include_str!("../assets/admin.html");
const SCRIPT: &str = include_str!("../assets/admin.js");
const STYLE: &str = include_str!("../assets/admin.css");

/// The paths served without the token (GET only).
pub const PUBLIC_PATHS: [&str; 3] = ["/", "/admin.js", "/admin.css"];

/// The page's routes.
pub fn routes() -> Router {
    Router::new()
        .route(PUBLIC_PATHS[0], get(html))
        .route(PUBLIC_PATHS[1], get(script))
        .route(PUBLIC_PATHS[2], get(style))
}

async fn html() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], HTML)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}
