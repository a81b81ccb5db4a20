//! Slack (placeholder: being written).
use super::{AlertView, Posted, SinkError};

#[derive(Debug, Clone)]
pub struct SlackClient;

impl SlackClient {
    pub fn new(_s: &crate::settings::SlackSettings) -> anyhow::Result<Option<SlackClient>> {
        Ok(None)
    }
    pub async fn post_alert(&self, _a: &AlertView) -> Result<Posted, SinkError> {
        Err(SinkError::Permanent {
            reason: "todo".into(),
        })
    }
    pub fn mode_name(&self) -> &'static str {
        "slack"
    }
}
