//! GraphiQL at `/`, served entirely from files embedded in the binary: no CDN needed.

use poem::http::header;
use poem::{Endpoint, IntoResponse, Response, Route, get, handler};

const INDEX_HTML: &str = include_str!("../../assets/graphiql/index.html");

#[handler]
pub fn page() -> Response {
    INDEX_HTML
        .with_content_type("text/html; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "no-cache")
        .into_response()
}

fn asset(body: &'static [u8], content_type: &'static str) -> impl Endpoint {
    get(poem::endpoint::make_sync(move |_| {
        body.with_content_type(content_type)
            .with_header(header::CACHE_CONTROL, "public, max-age=86400")
            .into_response()
    }))
}

pub fn assets() -> Route {
    Route::new()
        .at(
            "/graphiql.min.js",
            asset(
                include_bytes!("../../assets/graphiql/graphiql.min.js"),
                "text/javascript",
            ),
        )
        .at(
            "/graphiql.min.css",
            asset(
                include_bytes!("../../assets/graphiql/graphiql.min.css"),
                "text/css",
            ),
        )
        .at(
            "/react.production.min.js",
            asset(
                include_bytes!("../../assets/graphiql/react.production.min.js"),
                "text/javascript",
            ),
        )
        .at(
            "/react-dom.production.min.js",
            asset(
                include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
                "text/javascript",
            ),
        )
        .at(
            "/start.js",
            asset(
                include_bytes!("../../assets/graphiql/start.js"),
                "text/javascript",
            ),
        )
}
