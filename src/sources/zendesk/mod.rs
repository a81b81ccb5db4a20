//! Zendesk (placeholder: being written).
use super::{ParseError, Parsed, SignatureError, Source, WebhookRequest};
use crate::settings::{ConfigProblem, SourceSettings};

pub struct ZendeskSource;

impl ZendeskSource {
    pub fn from_settings(_key: &str, _s: &SourceSettings) -> Result<Self, Vec<ConfigProblem>> {
        Ok(ZendeskSource)
    }
}

impl Source for ZendeskSource {
    fn kind(&self) -> &'static str {
        "zendesk"
    }
    fn verify(&self, _r: &WebhookRequest<'_>) -> Result<(), SignatureError> {
        Err(SignatureError::Mismatch)
    }
    fn parse(&self, _r: &WebhookRequest<'_>) -> Result<Parsed, ParseError> {
        Err(ParseError::new("todo"))
    }
}
