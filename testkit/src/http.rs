//! JSON requests as tests read them.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Sends a request and reads its answer; the request must be answered (a refused
/// connection panics), whatever its status.
pub trait JsonAnswer {
    /// The status and the JSON body (`null` when the body is not JSON).
    fn status_and_json(self) -> impl Future<Output = (u16, Value)> + Send;

    /// The JSON body as `T`, whatever the status.
    fn json_body<T: DeserializeOwned>(self) -> impl Future<Output = T> + Send;
}

impl JsonAnswer for reqwest::RequestBuilder {
    async fn status_and_json(self) -> (u16, Value) {
        let response = self.send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn json_body<T: DeserializeOwned>(self) -> T {
        self.send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a JSON body of the expected shape")
    }
}
