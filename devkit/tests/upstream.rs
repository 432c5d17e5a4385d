//! The echo upstream shows exactly what reached it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use gateward_devkit::http;
use gateward_devkit::upstream::Echo;
use serde_json::json;

#[test]
fn echoes_method_path_and_headers() {
    let echo = Echo::start().unwrap();
    assert_eq!(echo.url(), format!("http://127.0.0.1:{}", echo.port()));
    let r = http::request(
        "POST",
        &format!("{}/deploy?env=prod", echo.url()),
        &[
            ("X-CI-Repository", "octo-org/deploy"),
            ("x-ci-subject", "repo:octo-org/deploy:environment:prod"),
        ],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json().unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/deploy?env=prod");
    let headers = body["headers"].as_object().unwrap();
    assert_eq!(headers["x-ci-repository"], "octo-org/deploy");
    assert_eq!(
        headers["x-ci-subject"],
        "repo:octo-org/deploy:environment:prod"
    );
    assert!(headers.contains_key("host"));
    assert!(!headers.contains_key("authorization"));
    assert_eq!(echo.received(), vec![body]);
}

#[test]
fn repeated_headers_are_joined() {
    let echo = Echo::start().unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", echo.port())).unwrap();
    s.write_all(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    let body: serde_json::Value =
        serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["method"], "GET");
    assert_eq!(
        body["headers"]["x-forwarded-for"],
        json!("10.0.0.1, 10.0.0.2")
    );
}

#[test]
fn stops_on_drop() {
    let echo = Echo::start().unwrap();
    let port = echo.port();
    drop(echo);
    drop(TcpListener::bind(("127.0.0.1", port)).expect("the port is free after drop"));
}
