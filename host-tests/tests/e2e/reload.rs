//! A configuration reload in a real Envoy: the stack's listener comes from a file Envoy watches
//! (LDS), and `Stack::reload` renames a new one into place, as an operator without a control
//! plane would.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gateward_devkit::envoy::EnvoyError;
use gateward_devkit::http;

use super::*;

/// The audience the reloaded configuration accepts instead of the demo's.
const OTHER_AUDIENCE: &str = "https://github.com/octo-org-staging";

/// Waits until `sent` has grown by `more` (the load thread is making progress).
fn wait_for_more(sent: &AtomicUsize, more: usize) {
    let target = sent.load(Ordering::SeqCst) + more;
    assert!(
        eventually(Duration::from_secs(30), || sent.load(Ordering::SeqCst)
            >= target),
        "the load stalled"
    );
}

#[test]
fn a_reload_takes_effect_on_every_worker_and_bad_tokens_stay_refused_during_it() {
    let mut run = run("reload", |o| o.concurrency = 2);
    let ours = mint(&run, "github-actions", json!({}));
    let theirs = mint(&run, "github-actions", json!({"aud": OTHER_AUDIENCE}));
    assert_eq!(deploy(&run, &ours).status, 200);
    assert_eq!(code(&deploy(&run, &theirs)), "audience_mismatch");

    // Invalid under both configurations: forged, expired, for a third audience, none.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let bad: Vec<Option<String>> = vec![
        Some(forged(&ours)),
        Some(forged(&theirs)),
        Some(mint(
            &run,
            "github-actions",
            json!({"iat": now - 900, "nbf": now - 900, "exp": now - 600}),
        )),
        Some(mint(
            &run,
            "github-actions",
            json!({"aud": "https://github.com/nobody"}),
        )),
        None,
    ];
    let url = format!("{}/deploy", run.url());
    let (stop, sent) = (AtomicBool::new(false), AtomicUsize::new(0));
    let answers = std::thread::scope(|s| {
        // Two clients send the bad tokens without pause, marked so the upstream can tell.
        let load: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        for token in &bad {
                            let auth = token.as_ref().map(|t| format!("Bearer {t}"));
                            let mut headers = vec![("x-load", "bad")];
                            headers.extend(auth.iter().map(|a| ("authorization", a.as_str())));
                            let r = http::request("POST", &url, &headers, b"").unwrap();
                            answers.push((r.status, r.text()));
                            sent.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    answers
                })
            })
            .collect();
        wait_for_more(&sent, 20);
        let mut config: Value = serde_json::from_str(run.gateward_config()).unwrap();
        config["issuers"][0]["audiences"] = json!([OTHER_AUDIENCE]);
        let reloaded = run.stack.reload(&config.to_string());
        wait_for_more(&sent, 20);
        stop.store(true, Ordering::SeqCst);
        reloaded.unwrap_or_else(|e| panic!("{e}"));
        load.into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    eprintln!(
        "{} bad tokens sent around the reload, all refused",
        answers.len()
    );
    for (status, body) in &answers {
        assert!(
            matches!(status, 401 | 403),
            "a bad token got {status} during the reload: {body}"
        );
    }
    assert_eq!(run.listener_version(), 2);

    // Each worker runs the new configuration: connections land on either, so ask several times.
    for _ in 0..10 {
        let r = deploy(&run, &theirs);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(code(&deploy(&run, &ours)), "audience_mismatch");
    }
    let received = run.upstream.received();
    assert!(
        received
            .iter()
            .all(|e| e["headers"].get("x-load").is_none()),
        "a bad token reached the upstream"
    );
    assert_eq!(
        received.len(),
        11,
        "one deploy before the reload, ten after"
    );

    // A configuration the filter refuses is rejected by Envoy, and the previous one serves on.
    let running = run.gateward_config().to_string();
    let mut broken: Value = serde_json::from_str(&running).unwrap();
    broken["issuers"][0]["audiences"] = json!([]);
    match run.stack.reload(&broken.to_string()) {
        Err(EnvoyError::Rejected { log }) => assert!(
            log.contains("issuers[0].audiences: must not be empty"),
            "{log}"
        ),
        other => panic!("an invalid configuration was not rejected: {other:?}"),
    }
    assert_eq!(run.gateward_config(), running);
    assert_eq!(deploy(&run, &theirs).status, 200);
    assert_eq!(code(&deploy(&run, &ours)), "audience_mismatch");
}
