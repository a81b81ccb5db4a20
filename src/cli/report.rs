//! `csatwatch report`: the figures for a range, grouped, as a table for a
//! terminal, JSON or CSV. The same parameters and JSON as
//! `GET /api/v1/report`.

use std::process::ExitCode;

use crate::clock::{Clock as _, SystemClock};
use crate::reports::params::{Params, report_request};
use crate::reports::{self, render};
use crate::settings::Settings;
use crate::store::Store;

/// The flags of `csatwatch report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// First local day, inclusive (YYYY-MM-DD). Default: 30 days before --until.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Local day to stop before, exclusive (YYYY-MM-DD). Default: tomorrow
    /// (today included).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Rows: day, week, month, agent, team, source, survey, tag, brand or customer.
    #[arg(long, default_value = "week")]
    pub by: String,
    /// Only these sources (repeat, or separate with commas).
    #[arg(long)]
    pub source: Vec<String>,
    /// Only these teams.
    #[arg(long)]
    pub team: Vec<String>,
    /// Only these agents.
    #[arg(long)]
    pub agent: Vec<String>,
    /// Only ratings with one of these tags.
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only these brands.
    #[arg(long)]
    pub brand: Vec<String>,
    /// Only these surveys: csat, nps, ces.
    #[arg(long)]
    pub survey: Vec<String>,
    /// table (for a terminal), json or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
}

impl ReportArgs {
    fn params(&self) -> Params {
        let mut p = Params::default();
        let one = [("since", &self.since), ("until", &self.until)];
        for (key, value) in one {
            if let Some(v) = value {
                p.push(key, v.clone());
            }
        }
        p.push("by", self.by.clone());
        let lists = [
            ("source", &self.source),
            ("team", &self.team),
            ("agent", &self.agent),
            ("tag", &self.tag),
            ("brand", &self.brand),
            ("survey", &self.survey),
        ];
        for (key, values) in lists {
            for v in values {
                p.push(key, v.clone());
            }
        }
        p
    }
}

/// Runs `csatwatch report`; exit code 2 for bad flags.
pub async fn report(settings: &Settings, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if !matches!(args.format.as_str(), "table" | "json" | "csv") {
        eprintln!("--format: {:?}; use table, json or csv", args.format);
        return Ok(ExitCode::from(2));
    }
    let req = match report_request(
        &args.params(),
        &settings.reports.time_zone(),
        settings.reports.min_sample,
        SystemClock.now_ms(),
    ) {
        Ok(req) => req,
        Err(e) => {
            eprintln!("--{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    let report = match reports::compute_report(&store, &req).await {
        Ok(report) => report,
        Err(reports::ReportError::Invalid(e)) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let text = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&report)? + "\n",
        "csv" => render::csv(&report),
        _ => render::table(&report),
    };
    print!("{text}");
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
