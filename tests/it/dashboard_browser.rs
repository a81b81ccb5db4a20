//! The dashboard in a real browser: starts the app with seeded ratings and
//! runs tests/browser/dashboard.mjs, which drives Debian's headless
//! Chromium (sign in, overview, queue, a rating's page), runs axe-core on
//! each page in light and dark at 1280 and 390 px, and writes screenshots.
//!
//! This test fails (it never skips) when Node, the npm packages or Chromium
//! are missing: scripts/test.sh installs them. Screenshots go to
//! `target/dashboard-screenshots`, or to `DASHBOARD_SCREENSHOTS` (set it to
//! `docs/dashboard` to refresh the ones in the docs).

use csatwatch::clock::{Clock, ManualClock};
use csatwatch::store::{RatingAction, Store};

use crate::dashboard::{ACCESS_TOML, Seed, TOKEN, act, change, seed};
use crate::support::{Backend, TestApp, TestDatabase, settings};

pub const EVIL: &str = "<script>alert('x')</script><img src=x onerror=alert(1)> still waiting";

const TEAMS: [&str; 3] = ["Billing", "Shipping", "Returns"];
const AGENTS: [&str; 4] = ["Sam", "Ana", "Lee", "Kim"];

/// Ten weeks of ratings: mostly positive, some negative in every state,
/// one whose comment is HTML.
pub async fn seed_story(store: &Store, now: i64) -> i64 {
    let hour = 3_600_000;
    let mut n = 0;
    for day in 0..70i64 {
        for k in 0..3i64 {
            n += 1;
            let mut s = Seed::negative(&format!("T-{n}"), now - day * 24 * hour - (k + 2) * hour);
            s.team = TEAMS[(n % 3) as usize];
            s.agent = AGENTS[(n % 4) as usize];
            if (n + day) % 5 == 0 {
                s.comment = Some("Took three days to get an answer".into());
            } else {
                s.score = if n % 2 == 0 { 5 } else { 4 };
                s.sentiment = "positive";
                s.comment = if n % 3 == 0 {
                    Some("Quick and friendly".into())
                } else {
                    None
                };
            }
            let id = seed(store, &s).await;
            if s.sentiment == "negative" {
                match n % 4 {
                    0 => act(store, id, RatingAction::FollowUp, "Fay", s.rated_at + hour).await,
                    1 => {
                        act(
                            store,
                            id,
                            RatingAction::Acknowledge,
                            "Ann",
                            s.rated_at + hour,
                        )
                        .await
                    }
                    2 if n % 8 == 2 => {
                        let mut back = s.clone();
                        (back.score, back.sentiment) = (4, "positive");
                        change(store, id, 2, &back).await;
                    }
                    _ => {}
                }
            }
        }
    }
    let mut evil = Seed::negative("EVIL-1", now - 27 * 24 * hour);
    evil.comment = Some(EVIL.into());
    evil.team = "Billing";
    seed(store, &evil).await
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser_and_passes_axe() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/dashboard.mjs");
    assert!(
        root.join("tests/browser/node_modules/puppeteer-core")
            .exists()
            && root.join("tests/browser/node_modules/axe-core").exists(),
        "the browser test needs its npm packages: npm ci --prefix tests/browser (scripts/test.sh does it)"
    );
    let out_dir = std::env::var("DASHBOARD_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target/dashboard-screenshots"));
    let out_dir = if out_dir.is_absolute() {
        out_dir
    } else {
        root.join(out_dir)
    };

    let db = TestDatabase::new(Backend::Sqlite).await;
    let app = TestApp::spawn(
        settings(&db.url, None, ACCESS_TOML),
        ManualClock::starting_now(),
    )
    .await;
    let evil = seed_story(&app.app.store, app.clock.now_ms()).await;

    let expect = serde_json::json!({
        "overview": ["Negatives to close the loop on", "Followed up"],
        "negatives": ["Negative ratings", "Billing", "Download CSV"],
        "rating": ["Versions", EVIL, "Jane Customer"],
        "rating_link": format!("/dashboard/ratings/{evil}"),
    });
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("BASE_URL", format!("http://{}", app.addr))
        .env("TOKEN", TOKEN)
        .env("EXPECT", expect.to_string())
        .env("OUT_DIR", &out_dir)
        .output()
        .await
        .expect("node runs (install Node.js: scripts/test.sh does it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}"
    );
    for name in [
        "overview-1280-light",
        "overview-390-dark",
        "negatives-390-light",
        "rating-1280-light",
    ] {
        assert!(
            out_dir.join(format!("{name}.png")).exists(),
            "{name}.png written"
        );
    }
    app.stop().await;
}
