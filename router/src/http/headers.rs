//! The headers every answer carries, pages and API alike: what the dialer's page may load,
//! that it may not be framed, that types are not sniffed and that no referrer leaves it.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;

/// The dialer loads its own script, styles, icons and WebAssembly (compiling it needs
/// `'wasm-unsafe-eval'`, and nothing more), and talks only to this server: `fetch` and
/// the WebSocket (`'self'` covers `ws:`/`wss:` to the same host). Everything else is off.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; \
     img-src 'self'; \
     connect-src 'self'; \
     media-src 'self'; \
     base-uri 'none'; \
     form-action 'self'; \
     frame-ancestors 'none'";

/// A year: browsers keep to https for this host that long after one answer over https.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// The middleware that adds the headers to every answer (those a handler set itself are
/// kept). `https`: the public URL is https, so browsers are told to keep to it.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // For browsers that predate `frame-ancestors`.
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"));
    if https {
        headers.add((header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY))
    } else {
        headers
    }
}
