//! The router's HTTP API (DESIGN §5), same origin, with the session cookie.

use js_sys::Reflect;
use serde::de::DeserializeOwned;
use serde::Serialize;
use switchboard_protocol::api::ErrorBody;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCredentials, RequestInit, Response};

use super::decode;
use super::dom::window;
use crate::failure::{Action, Failure};

/// Why a request did not give what was asked.
pub enum ApiError {
    /// The router answered with an error status (and, usually, its JSON error body).
    Refused {
        status: u16,
        body: Option<ErrorBody>,
    },
    /// No answer, or one that could not be read.
    Unreachable,
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            ApiError::Unreachable => None,
        }
    }

    pub fn failure(&self, action: Action) -> Failure {
        match self {
            ApiError::Refused { status, body } => Failure::from_api(*status, body.as_ref(), action),
            ApiError::Unreachable => Failure::unreachable(action),
        }
    }
}

fn init(method: &str, body: Option<&str>) -> RequestInit {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    let headers = js_sys::Object::new();
    let _ = Reflect::set(&headers, &"accept".into(), &"application/json".into());
    if let Some(body) = body {
        let _ = Reflect::set(&headers, &"content-type".into(), &"application/json".into());
        init.set_body(&JsValue::from_str(body));
    }
    init.set_headers(&headers);
    init
}

/// A request already on its way: the browser starts it at once, so it runs while the
/// caller awaits something else.
pub struct Pending(JsFuture);

impl Pending {
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        let body = answer(self.0).await?;
        decode::from_value(body).map_err(|_| ApiError::Unreachable)
    }
}

pub fn begin(method: &str, path: &str, body: Option<&str>) -> Pending {
    let request = init(method, body);
    Pending(JsFuture::from(
        window().fetch_with_str_and_init(path, &request),
    ))
}

/// The body of a successful answer as the browser parsed it (`null` when there is none),
/// or the refusal. Not generic, so it is compiled once for every kind of answer.
async fn answer(response: JsFuture) -> Result<JsValue, ApiError> {
    let response = response
        .await
        .map_err(|_| ApiError::Unreachable)?
        .dyn_into::<Response>()
        .map_err(|_| ApiError::Unreachable)?;
    let body = match response.json() {
        Ok(parsing) => JsFuture::from(parsing).await.unwrap_or(JsValue::NULL),
        Err(_) => JsValue::NULL,
    };
    let status = response.status();
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(ApiError::Refused {
            status,
            body: decode::from_value(body).ok(),
        })
    }
}

fn to_json<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    begin("GET", path, None).json().await
}

pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    let json = to_json(body).ok_or(ApiError::Unreachable)?;
    begin("POST", path, Some(&json)).json().await
}

/// A POST whose answer body does not matter, only whether it succeeded.
pub async fn post_empty(path: &str) -> Result<(), ApiError> {
    answer(begin("POST", path, None).0).await.map(drop)
}

/// A POST the browser finishes even if the page is going away (`keepalive`).
pub fn post_keepalive(path: &str) {
    let request = init("POST", None);
    let _ = Reflect::set(&request, &"keepalive".into(), &JsValue::TRUE);
    // Nobody is left to read the answer.
    let _ = window().fetch_with_str_and_init(path, &request);
}

/// A path segment, escaped (call ids and BSUIDs are plain, but never trust that).
pub fn segment(text: &str) -> String {
    String::from(js_sys::encode_uri_component(text))
}
