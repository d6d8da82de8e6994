use switchboard_testkit::server::free_port;

use crate::helpers::{route, spawn_app, text_message, ADMIN_TOKEN, AGENT_TOKEN};

#[tokio::test]
async fn admin_paths_need_an_admin_token() {
    let app = spawn_app("").await;
    let url = format!("{}/api/deliveries", app.address);
    let cases = [
        (None, 401),
        (Some("not-a-token"), 401),
        (Some(AGENT_TOKEN), 403),
        (Some(ADMIN_TOKEN), 200),
    ];
    for (token, status) in cases {
        let mut request = app.client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{token:?}");
    }
}

#[tokio::test]
async fn bad_admin_requests_get_clear_errors() {
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let app = spawn_app(&route("crm", r#"["message"]"#, &url, "")).await;
    let receipt = app.post_signed(text_message(1)).await;
    let event = receipt["events"][0]["id"].as_str().unwrap().to_owned();
    let cases = [
        ("GET", "/api/deliveries?state=lost".to_owned(), 400),
        ("GET", "/api/deliveries?limit=0".to_owned(), 400),
        ("POST", "/api/deliveries/999999/retry".to_owned(), 404),
        ("POST", "/api/events/evt_nope/replay".to_owned(), 400),
        (
            "POST",
            format!("/api/events/evt_{}/replay", "0".repeat(32)),
            404,
        ),
        (
            "POST",
            format!("/api/events/{event}/replay?route=elsewhere"),
            404,
        ),
        ("GET", format!("/api/events/{event}"), 200),
        ("POST", "/api/deliveries/abc/retry".to_owned(), 400),
        ("GET", "/api/deliveries?limit=lots".to_owned(), 400),
    ];
    for (method, path, status) in cases {
        let request = match method {
            "GET" => app.client.get(format!("{}{path}", app.address)),
            _ => app.client.post(format!("{}{path}", app.address)),
        };
        let response = request.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        if status >= 400 {
            let body: serde_json::Value = response.json().await.expect("a JSON error");
            assert!(
                body["error"]["message"].is_string(),
                "{method} {path}: {body}"
            );
        }
    }
    // None of the refused requests queued anything.
    assert_eq!(app.count_rows("jobs"), 1);
}
