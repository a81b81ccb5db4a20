//! Slack (client being written): the alert as a Block Kit message ([`message`]).
pub mod message;

use super::{AlertView, Posted, SinkError};

#[derive(Debug, Clone)]
pub struct SlackClient;

impl SlackClient {
    pub async fn post_alert(&self, _a: &AlertView) -> Result<Posted, SinkError> {
        Err(SinkError::Permanent {
            reason: "todo".into(),
        })
    }
    pub fn mode_name(&self) -> &'static str {
        "slack"
    }
}
