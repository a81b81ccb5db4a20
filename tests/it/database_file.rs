//! The SQLite file on a real file system: deleted under a running daemon,
//! and missing at start-up. (SQLite only: PostgreSQL has no file of ours.)

use std::sync::Arc;

use csatwatch::app::App;
use csatwatch::clock::{Clock, ManualClock};
use serde_json::Value;

use crate::support::{TestApp, install_crypto, settings, zendesk_body};

/// A daemon on a SQLite file in a folder of its own (`data` in a temporary
/// folder), one rating recorded: the folder, the URL and the app.
async fn running_in_a_folder() -> (tempfile::TempDir, std::path::PathBuf, String, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("data");
    let url = format!("sqlite://{}/csatwatch.db", folder.display());
    let app = TestApp::spawn(settings(&url, None, ""), ManualClock::starting_now()).await;
    let (status, _) = app.post_zendesk(&zendesk_body(1, "bad", "")).await;
    assert_eq!(status, 200);
    (dir, folder, url, app)
}

#[tokio::test]
async fn deleting_the_database_folder_turns_readyz_and_webhooks_503() {
    let (_dir, folder, url, app) = running_in_a_folder().await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    std::fs::remove_dir_all(&folder).unwrap();

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = ready.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().contains("was deleted"),
        "{body}"
    );
    let (status, body) = app.post_zendesk(&zendesk_body(2, "bad", "")).await;
    assert_eq!(status, 503, "{body}");
    // A body that cannot be parsed is not kept in the lost file either.
    let raw = br#"{"not": "zendesk"}"#;
    let headers =
        crate::support::zendesk_headers(crate::support::ZENDESK_SECRET, app.clock.now_ms(), raw);
    let (status, body) = app.post("zendesk", &headers, raw).await;
    assert_eq!(status, 503, "{body}");
    app.stop().await;

    // Restarting on the missing file: refused when asked to.
    install_crypto();
    let mut strict = settings(&url, None, "");
    strict.database.create_if_missing = false;
    let err = App::build_with_clock(
        strict,
        Arc::new(ManualClock::starting_now()) as Arc<dyn Clock>,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("database.create_if_missing = false"),
        "{err:#}"
    );
    assert!(!folder.exists(), "nothing was created");
}

/// Nothing has noticed the loss yet (no readyz probe, no earlier webhook):
/// each write a webhook leads to checks the file itself. A body that cannot
/// be parsed (kept without a transaction) and a valid one (the writer's
/// batch) are both answered 503, whichever comes first, and a bad signature
/// is still a 401.
#[tokio::test]
async fn a_webhook_is_the_first_to_notice_the_deleted_database_and_gets_503() {
    for unparseable_first in [true, false] {
        first_webhook_after_the_database_is_deleted(unparseable_first).await;
    }
}

async fn first_webhook_after_the_database_is_deleted(unparseable_first: bool) {
    let (_dir, folder, _, app) = running_in_a_folder().await;

    std::fs::remove_dir_all(&folder).unwrap();

    let raw = br#"{"not": "zendesk"}"#;
    let headers =
        crate::support::zendesk_headers(crate::support::ZENDESK_SECRET, app.clock.now_ms(), raw);
    for step in if unparseable_first { [0, 1] } else { [1, 0] } {
        let (status, body) = if step == 0 {
            app.post("zendesk", &headers, raw).await
        } else {
            app.post_zendesk(&zendesk_body(2, "bad", "")).await
        };
        let what = ["an unparseable body", "a valid rating"][step];
        assert_eq!(
            status, 503,
            "{what} went to the lost file (unparseable first: {unparseable_first}): {body}"
        );
    }
    let forged = crate::support::zendesk_headers("not-the-secret", app.clock.now_ms(), raw);
    let (status, body) = app.post("zendesk", &forged, raw).await;
    assert_eq!(status, 401, "{body}");
    app.stop().await;
}
