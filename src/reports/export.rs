//! One rating as the API, the CSV export and the NDJSON export show it:
//! its latest score, comment, agent, team, customer, ticket link and
//! follow-up state. Times are RFC 3339 in UTC.
//!
//! CSV follows RFC 4180 (quoted where needed, CRLF line ends, a header
//! row). A text cell that a spreadsheet would run as a formula (starting
//! with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`: customer text
//! is untrusted.

use serde::Serialize;

use crate::store::RatingRow;

/// The exported shape of a rating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRecord {
    pub id: i64,
    pub source: String,
    pub conversation_id: String,
    pub rating_key: String,
    pub survey: String,
    pub scale: String,
    pub score: i64,
    pub sentiment: String,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    pub tags: Vec<String>,
    pub ticket_url: Option<String>,
    pub rated_at: String,
    pub updated_at: String,
    pub revision: i64,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    pub followed_up_at: Option<String>,
    pub followed_up_by: Option<String>,
    pub follow_up_outcome: Option<String>,
}

/// Unix ms as RFC 3339 UTC (`2026-11-05T10:00:00Z`).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

impl From<RatingRow> for ExportRecord {
    fn from(r: RatingRow) -> Self {
        ExportRecord {
            id: r.id,
            source: r.source,
            conversation_id: r.conversation_id,
            rating_key: r.rating_key,
            survey: r.survey,
            scale: r.scale,
            score: r.score,
            sentiment: r.sentiment,
            comment: r.comment,
            agent: r.agent,
            team: r.team,
            customer: r.customer,
            company: r.company,
            brand: r.brand,
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            ticket_url: r.url,
            rated_at: rfc3339(r.rated_at),
            updated_at: rfc3339(r.updated_at),
            revision: r.revision,
            acknowledged_at: r.acked_at.map(rfc3339),
            acknowledged_by: r.acked_by_name,
            followed_up_at: r.followed_up_at.map(rfc3339),
            followed_up_by: r.followed_up_by_name,
            follow_up_outcome: r.follow_up_outcome,
        }
    }
}

/// The CSV header row.
pub const CSV_HEADER: &str = "id,source,conversation_id,rating_key,survey,scale,score,sentiment,comment,agent,team,customer,company,brand,tags,ticket_url,rated_at,updated_at,revision,acknowledged_at,acknowledged_by,followed_up_at,followed_up_by,follow_up_outcome\r\n";

/// A CSV cell: quoted when it holds a comma, quote or line break.
pub fn csv_cell(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// A text cell from outside (customer, agent, comment): defused against
/// spreadsheet formulas, then quoted as needed.
pub fn csv_text(out: &mut String, value: Option<&str>) {
    let value = value.unwrap_or("");
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        csv_cell(out, &format!("'{value}"));
    } else {
        csv_cell(out, value);
    }
}

impl ExportRecord {
    /// One CSV line, with its CRLF.
    pub fn write_csv(&self, out: &mut String) {
        let opt = |t: &Option<String>| t.clone().unwrap_or_default();
        let plain = [
            self.id.to_string(),
            self.source.clone(),
            self.conversation_id.clone(),
            self.rating_key.clone(),
            self.survey.clone(),
            self.scale.clone(),
            self.score.to_string(),
            self.sentiment.clone(),
        ];
        for (i, v) in plain.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if i == 2 || i == 3 {
                csv_text(out, Some(v));
            } else {
                csv_cell(out, v);
            }
        }
        for v in [
            &self.comment,
            &self.agent,
            &self.team,
            &self.customer,
            &self.company,
            &self.brand,
        ] {
            out.push(',');
            csv_text(out, v.as_deref());
        }
        out.push(',');
        csv_text(out, Some(&self.tags.join(";")));
        out.push(',');
        csv_text(out, self.ticket_url.as_deref());
        for v in [
            self.rated_at.clone(),
            self.updated_at.clone(),
            self.revision.to_string(),
            opt(&self.acknowledged_at),
        ] {
            out.push(',');
            csv_cell(out, &v);
        }
        out.push(',');
        csv_text(out, self.acknowledged_by.as_deref());
        out.push(',');
        csv_cell(out, &opt(&self.followed_up_at));
        out.push(',');
        csv_text(out, self.followed_up_by.as_deref());
        out.push(',');
        csv_text(out, self.follow_up_outcome.as_deref());
        out.push_str("\r\n");
    }

    /// One NDJSON line, with its LF.
    pub fn write_ndjson(&self, out: &mut String) {
        if let Ok(line) = serde_json::to_string(self) {
            out.push_str(&line);
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_text(&mut out, Some("Refund, \"late\"\nagain"));
        assert_eq!(out, "\"Refund, \"\"late\"\"\nagain\"");
        let mut out = String::new();
        csv_text(&mut out, Some("=HYPERLINK(\"x\")"));
        assert_eq!(out, "\"'=HYPERLINK(\"\"x\"\")\"");
        let mut out = String::new();
        csv_cell(&mut out, "-101");
        assert_eq!(out, "-101");
        assert_eq!(CSV_HEADER.split(',').count(), 24);
    }
}
