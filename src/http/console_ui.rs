//! `GET /console` and its files. The console is a few static files (`src/http/console/`):
//! compiled into release binaries, so it works offline and on an air-gapped network, and read
//! from disk by debug builds, so editing them needs no rebuild. Everything it shows it gets
//! from the public API, as any client would (see `console_session`).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::openai::error::{ApiError, Envelope};
use super::openapi::tags::CONSOLE;

#[derive(RustEmbed)]
#[folder = "src/http/console/"]
struct Files;

/// No inline script or style, no `eval`, nothing from elsewhere; API calls only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => return None,
    })
}

fn serve(name: &str) -> Response {
    let (Some(kind), Some(file)) = (content_type(name), Files::get(name)) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            Some("not_found"),
            format!("The console has no file {name:?}."),
        )
        .into_response();
    };
    super::docs::page_file(kind, CSP, file.data.into_owned())
}

/// The operator console.
///
/// A page for people: sign in with an admin key, then manage projects, service accounts,
/// keys, admin keys, credentials and read the audit log. It calls the documented API.
#[utoipa::path(get, path = "/console", tag = CONSOLE, security(()),
    responses((status = 200, description = "The console page.", body = String, content_type = "text/html")))]
pub async fn page() -> Response {
    serve("index.html")
}

/// One of the console's files (scripts, stylesheet, icon), by name.
#[utoipa::path(get, path = "/console/assets/{name}", tag = CONSOLE, security(()),
    params(("name" = String, Path, description = "A file name, e.g. `main.js`.")),
    responses(
        (status = 200, description = "The file: JavaScript, CSS, SVG or PNG.", content(
            (String = "text/javascript"), (String = "text/css"), (String = "image/svg+xml"),
            (String = "image/png"))),
        (status = 404, description = "No such file.", body = Envelope),
    ))]
pub async fn asset(Path(name): Path<String>) -> Response {
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return serve("");
    }
    serve(&name)
}
