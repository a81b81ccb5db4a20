//! `check-config --online` for Slack: does the token work (`auth.test`),
//! does every configured channel exist and can the bot post there
//! (`conversations.info`: membership, or `chat:write.public` for a public
//! channel), and what is missing. With a webhook URL, it says what the
//! webhook cannot do. Returns lines for the operator; nothing is posted.

use super::SlackClient;
use crate::settings::Settings;
use crate::sinks::SinkError;

/// The outcome: lines to print, and whether anything must be fixed.
#[derive(Debug, Default)]
pub struct Preflight {
    pub lines: Vec<String>,
    pub problems: usize,
}

impl Preflight {
    fn ok(&mut self, line: String) {
        self.lines.push(format!("  ok: {line}"));
    }
    fn problem(&mut self, line: String) {
        self.problems += 1;
        self.lines.push(format!("  PROBLEM: {line}"));
    }
    fn note(&mut self, line: String) {
        self.lines.push(format!("  note: {line}"));
    }
}

/// Every channel alerts can go to: the default and each rule's.
pub fn configured_channels(settings: &Settings) -> Vec<String> {
    let mut channels: Vec<String> = settings.slack.default_channel.iter().cloned().collect();
    for rule in settings.rules.iter().filter(|r| !r.mute) {
        if let Some(c) = &rule.channel
            && !channels.contains(c)
        {
            channels.push(c.clone());
        }
    }
    channels
}

/// Runs the online checks.
pub async fn check(settings: &Settings) -> Preflight {
    let mut out = Preflight::default();
    let client = match SlackClient::new(&settings.slack) {
        Ok(Some(client)) => client,
        Ok(None) => {
            out.note("no Slack configured: alerts go to the log".into());
            return out;
        }
        Err(e) => {
            out.problem(format!("cannot build the Slack client: {e}"));
            return out;
        }
    };
    if !client.can_update() {
        out.note("incoming webhook: only the first post of each alert is possible; message updates, thread replies, the I'm on it / Followed up buttons, escalations and digest threads need slack.bot_token".into());
        out.note("check the webhook itself with `csatwatch send-test-alert`".into());
        return out;
    }
    match client.auth_test().await {
        Ok(info) => out.ok(format!(
            "token works: bot {} in workspace {} ({})",
            info.user, info.team, info.team_id
        )),
        Err(e) => {
            out.problem(format!("auth.test failed: {e}"));
            return out;
        }
    }
    let scopes = client.granted_scopes().await;
    let public = scopes.iter().any(|s| s == "chat:write.public");
    if !scopes.is_empty() && !scopes.iter().any(|s| s == "chat:write") {
        out.problem(
            "the token lacks chat:write: add it under OAuth & Permissions and reinstall the app"
                .into(),
        );
    }
    if !scopes.is_empty() && !scopes.iter().any(|s| s == "channels:history") {
        out.note(
            "the token lacks channels:history (and groups:history for private channels): after a Slack timeout an alert cannot be checked for and may be posted twice; add them and reinstall the app (docs/slack.md)"
                .into(),
        );
    }
    check_loop_scopes(settings, &scopes, &mut out);
    if settings.slack.signing_secret.is_none() {
        out.note(
            "slack.signing_secret is not set: alerts carry no I'm on it / Followed up buttons"
                .into(),
        );
    }
    for channel in configured_channels(settings) {
        check_channel(&client, &channel, public, &mut out).await;
    }
    out
}

/// The scopes closing the loop needs (docs/closing-the-loop.md): a rule's
/// `dm_agent` cannot work without `users:read.email` and `im:write`; "Assign
/// to me" on a source with `[sources.api]` needs `users:read.email`.
fn check_loop_scopes(settings: &Settings, scopes: &[String], out: &mut Preflight) {
    if scopes.is_empty() {
        return;
    }
    let has = |scope: &str| scopes.iter().any(|s| s == scope);
    let dm = settings.rules.iter().any(|r| r.dm_agent && !r.mute);
    for scope in ["users:read.email", "im:write"] {
        if dm && !has(scope) {
            out.problem(format!(
                "a rule has dm_agent = true but the token lacks {scope}: add it under OAuth & Permissions and reinstall the app"
            ));
        }
    }
    let has_api = settings.sources.iter().any(|s| {
        s.value()
            .clone()
            .into_table()
            .is_ok_and(|t| t.contains_key("api"))
    });
    if has_api && !has("users:read.email") {
        out.note(
            "the token lacks users:read.email: \"Assign to me\" cannot find the clicking person's helpdesk agent (docs/closing-the-loop.md)".into(),
        );
    }
}

async fn check_channel(client: &SlackClient, channel: &str, public: bool, out: &mut Preflight) {
    if channel.starts_with('#') {
        out.note(format!(
            "{channel}: names cannot be checked without more scopes; use the channel id (C…, from the channel's details) to have it checked"
        ));
        return;
    }
    match client.channel_info(channel).await {
        Ok(info) => {
            let name = info["name"].as_str().unwrap_or(channel);
            if info["is_archived"] == true {
                out.problem(format!("{channel} (#{name}) is archived; unarchive it or route alerts elsewhere"));
            } else if info["is_member"] == true {
                out.ok(format!("{channel} (#{name}): the bot is a member and can post"));
            } else if public && info["is_private"] != true {
                out.ok(format!("{channel} (#{name}): not a member, but chat:write.public lets the bot post"));
            } else {
                out.problem(format!(
                    "{channel} (#{name}): the bot is not a member; /invite the bot there (or add chat:write.public for a public channel)"
                ));
            }
        }
        Err(SinkError::Permanent { reason }) if reason.starts_with("missing_scope") => out.note(format!(
            "{channel}: cannot be checked without channels:read (groups:read for private channels); optional"
        )),
        Err(SinkError::Permanent { reason }) if reason.starts_with("channel_not_found") => out.problem(format!(
            "{channel} was not found: check the id, or, for a private channel, invite the bot first"
        )),
        Err(e) => out.problem(format!("{channel}: {e}")),
    }
}
