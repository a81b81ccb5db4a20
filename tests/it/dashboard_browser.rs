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
use csatwatch::reports::period;
use csatwatch::store::{RatingAction, Store};
use jiff::tz::TimeZone;

use crate::dashboard::{ACCESS_TOML, Seed, TOKEN, act, change, seed};
use crate::support::{Backend, TestApp, TestDatabase, settings};

pub const EVIL: &str = "<script>alert('x')</script><img src=x onerror=alert(1)> still waiting";

const TEAMS: [&str; 3] = ["Billing", "Shipping", "Returns"];
const AGENTS: [&str; 4] = ["Sam", "Ana", "Lee", "Kim"];

/// What the seeded story should show on the overview.
pub struct Story {
    /// The rating whose comment is HTML.
    pub evil: i64,
    /// CSAT % of the default period (the last 30 days), as the page writes it.
    pub csat_text: String,
}

/// Ten weeks of ratings: mostly positive, some negative in every state,
/// one whose comment is HTML.
pub async fn seed_story(store: &Store, now: i64) -> Story {
    let hour = 3_600_000;
    let mut n = 0;
    // (rated_at, positive now) of every rating, to work out the CSAT %.
    let mut seeded: Vec<(i64, bool)> = Vec::new();
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
            let mut positive = s.sentiment == "positive";
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
                        positive = true;
                    }
                    _ => {}
                }
            }
            seeded.push((s.rated_at, positive));
        }
    }
    // NPS and CES answers over the same weeks (not part of CSAT).
    for i in 0..60i64 {
        let mut s = Seed::negative(&format!("N-{i}"), now - (i * 23 + 5) * hour);
        s.team = TEAMS[(i % 3) as usize];
        s.agent = AGENTS[(i % 4) as usize];
        s.comment = None;
        if i % 2 == 0 {
            s.scale = "nps";
            s.score = [10, 9, 8, 10, 3, 9, 7, 10, 6, 9][(i / 2 % 10) as usize];
        } else {
            s.scale = "ces";
            s.score = [7, 6, 5, 2, 6, 7][(i / 2 % 6) as usize];
        }
        s.sentiment = match (s.scale, s.score) {
            ("nps", 0..=6) | ("ces", 1..=3) => "negative",
            ("nps", 7..=8) | ("ces", 4) => "neutral",
            _ => "positive",
        };
        seed(store, &s).await;
    }
    // A CSAT drop alert from 25 to 16 days ago: marked on the trend.
    for (kind, at) in [
        ("drop", now - 25 * 24 * hour),
        ("recovery", now - 16 * 24 * hour),
    ] {
        let mut tx = store.begin().await.unwrap();
        tx.insert_report_message(&csatwatch::store::NewReportMessage {
            kind,
            name: "csat-drop".into(),
            period: format!("overall|{at}"),
            channel: "#leads".into(),
            body: "{}".into(),
            created_at_ms: at,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let mut evil = Seed::negative("EVIL-1", now - 27 * 24 * hour);
    evil.comment = Some(EVIL.into());
    evil.team = "Billing";
    seeded.push((evil.rated_at, false));
    let since = period::add_days(period::local_date(now, &TimeZone::UTC), -29);
    let since_ms = period::start_of_day_ms(since, &TimeZone::UTC).unwrap();
    let in_period: Vec<bool> = seeded
        .iter()
        .filter(|(at, _)| *at >= since_ms)
        .map(|(_, p)| *p)
        .collect();
    let positive = in_period.iter().filter(|p| **p).count();
    Story {
        evil: seed(store, &evil).await,
        csat_text: format!("{:.1}%", 100.0 * positive as f64 / in_period.len() as f64),
    }
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
    let story = seed_story(&app.app.store, app.clock.now_ms()).await;

    let expect = serde_json::json!({
        "overview": ["CSAT by week", "Closing the loop", "Billing", "Shipping", "Kim", story.csat_text],
        "negatives": ["Negative ratings", "Billing", "Download CSV"],
        "rating": ["Versions", EVIL, "Jane Customer"],
        "rating_link": format!("/dashboard/ratings/{}", story.evil),
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
