//! The API's handlers in process (`tower::ServiceExt::oneshot`, no socket):
//! roles and the mapping of every kind of failure to a JSON error body.

use super::auth::{generate_key, hash_key, store_key};
use super::*;
use axum::body::Body;
use axum::http::Request as HttpRequest;
use tower::ServiceExt;

struct Api {
    router: Router,
    kiosk: String,
    admin: String,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let service = crate::service::tests::site(dir.path()).await;
    let mut keys = Vec::new();
    for (name, role) in [("kiosk", ApiRole::Kiosk), ("admin", ApiRole::Admin)] {
        let key = generate_key();
        store_key(service.store(), name, role, &hash_key(&key), None, "test")
            .await
            .unwrap();
        keys.push(key);
    }
    let admin = keys.pop().unwrap();
    let kiosk = keys.pop().unwrap();
    Api {
        router: router(service, None),
        kiosk,
        admin,
        _dir: dir,
    }
}

/// Sends one request; returns the status and the body as JSON.
async fn call(
    api: &Api,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = HttpRequest::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = api.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{method} {uri}: {status} with a body that is not JSON ({ct:?}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

#[tokio::test]
async fn a_call_without_a_key_is_401_in_json() {
    let api = api().await;
    let (status, body) = call(&api, "GET", "/api/parkings", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["code"].is_string(), "{body}");
    let (status, _) = call(&api, "GET", "/api/parkings", Some("not-a-key"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_kiosk_may_not_read_the_audit_log_but_an_admin_may() {
    let api = api().await;
    let (status, body) = call(&api, "GET", "/api/audit", Some(&api.kiosk), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    let (status, body) = call(&api, "GET", "/api/audit", Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["records"].is_array(), "{body}");
}

#[tokio::test]
async fn an_unknown_session_is_404_naming_what_was_not_found() {
    let api = api().await;
    let (status, body) = call(&api, "GET", "/api/sessions/nope", Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "session_not_found", "{body}");
}

#[tokio::test]
async fn bad_bodies_are_json_errors_that_name_the_problem() {
    let api = api().await;
    // Not a plate.
    let (status, body) = call(
        &api,
        "POST",
        "/api/entry",
        Some(&api.kiosk),
        Some(r#"{"license_plate":"!!"}"#),
    )
    .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert_eq!(body["error"]["field"], "license_plate", "{body}");
    // Not JSON at all.
    let (status, body) = call(&api, "POST", "/api/entry", Some(&api.kiosk), Some("{")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    // A gate the site does not have.
    let (status, body) = call(
        &api,
        "POST",
        "/api/entry",
        Some(&api.kiosk),
        Some(r#"{"license_plate":"B123ABC","gate":"back-door"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "unknown_gate", "{body}");
}

#[tokio::test]
async fn an_entry_through_the_api_is_decided_and_can_be_read_back() {
    let api = api().await;
    let (status, body) = call(
        &api,
        "POST",
        "/api/entry",
        Some(&api.kiosk),
        Some(r#"{"license_plate":"b 123 abc","gate":"main"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["license_plate"], "B123ABC", "normalised");
    assert_eq!(body["verdict"], "admit");
    let id = body["session_id"].as_str().unwrap();
    let (status, s) = call(
        &api,
        "GET",
        &format!("/api/sessions/{id}"),
        Some(&api.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["session_id"], id);
}
