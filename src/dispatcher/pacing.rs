//! Pacing of messages to Slack: per channel, a pace of one message per
//! `alerts.channel_interval` with bursts of `alerts.channel_burst`; for the
//! whole workspace, at most `slack.max_per_minute`. Both are token buckets
//! kept as "theoretical arrival times" (GCRA), on the monotonic clock: they
//! shape real traffic, so they follow real time. A channel Slack answered
//! 429 for waits out its `Retry-After` on the app clock instead, because
//! that wait is recorded in the outbox (`next_attempt_at`).
//!
//! Pacing is per process; replicas share only the outbox. Slack's own 429s
//! (honoured) are the backstop when several replicas post at once.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Whether a message may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Yes; the slot is taken.
    Now,
    /// Not to this channel for this long (its pace, or Slack's `Retry-After`).
    ChannelIn(Duration),
    /// Not to any channel for this long (`slack.max_per_minute`).
    WorkspaceIn(Duration),
}

/// The buckets of one dispatcher.
#[derive(Debug)]
pub struct Pacer {
    limits: std::sync::RwLock<Limits>,
    state: Mutex<State>,
}

/// The paces, replaced whole by a settings reload.
#[derive(Debug, Clone, Copy)]
struct Limits {
    channel_interval: Duration,
    channel_burst: u32,
    workspace_interval: Duration,
    workspace_burst: u32,
}

impl Limits {
    fn new(channel_interval: Duration, channel_burst: u32, max_per_minute: u32) -> Limits {
        let per_minute = max_per_minute.max(1);
        Limits {
            channel_interval,
            channel_burst: channel_burst.max(1),
            workspace_interval: Duration::from_secs(60) / per_minute,
            // A minute's worth at once at most; the per-channel pace still applies.
            workspace_burst: per_minute,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// When each channel's bucket is next empty again (its TAT).
    channels: HashMap<String, Instant>,
    workspace: Option<Instant>,
    /// Channels Slack rate-limited, until when (app clock, ms).
    blocked: HashMap<String, i64>,
}

impl Pacer {
    pub fn new(channel_interval: Duration, channel_burst: u32, max_per_minute: u32) -> Pacer {
        Pacer {
            limits: std::sync::RwLock::new(Limits::new(
                channel_interval,
                channel_burst,
                max_per_minute,
            )),
            state: Mutex::new(State::default()),
        }
    }

    /// New paces (a settings reload), from the next reservation on. The
    /// buckets keep their state: a channel that just posted still waits.
    pub fn set_limits(&self, channel_interval: Duration, channel_burst: u32, max_per_minute: u32) {
        *self.limits.write().unwrap_or_else(|e| e.into_inner()) =
            Limits::new(channel_interval, channel_burst, max_per_minute);
    }

    /// Takes a slot for one message to `channel` if one is free now;
    /// otherwise takes nothing and says how long until one is. The
    /// dispatcher never sleeps on a channel's pace: it sends to the other
    /// channels and comes back.
    pub async fn try_reserve(&self, channel: &str, now_ms: i64) -> Slot {
        let now = Instant::now();
        let limits = *self.limits.read().unwrap_or_else(|e| e.into_inner());
        let mut state = self.state.lock().await;
        if let Some(&until) = state.blocked.get(channel)
            && until > now_ms
        {
            return Slot::ChannelIn(Duration::from_millis((until - now_ms) as u64));
        }
        let workspace_tat = state.workspace.unwrap_or(now);
        let workspace = wait_for(
            workspace_tat,
            limits.workspace_interval,
            limits.workspace_burst,
            now,
        );
        if !workspace.is_zero() {
            return Slot::WorkspaceIn(workspace);
        }
        let channel_tat = state.channels.get(channel).copied().unwrap_or(now);
        let wait = wait_for(
            channel_tat,
            limits.channel_interval,
            limits.channel_burst,
            now,
        );
        if !wait.is_zero() {
            return Slot::ChannelIn(wait);
        }
        state.channels.insert(
            channel.to_string(),
            channel_tat.max(now) + limits.channel_interval,
        );
        state.workspace = Some(workspace_tat.max(now) + limits.workspace_interval);
        Slot::Now
    }

    /// Channels Slack rate-limited that are still waiting at `now_ms`, and
    /// for how long.
    pub async fn blocked(&self, now_ms: i64) -> Vec<(String, Duration)> {
        let mut state = self.state.lock().await;
        state.blocked.retain(|_, until| *until > now_ms);
        state
            .blocked
            .iter()
            .map(|(c, until)| (c.clone(), Duration::from_millis((until - now_ms) as u64)))
            .collect()
    }

    /// Remembers that Slack asked `channel` to wait until `until_ms`.
    pub async fn block(&self, channel: &str, until_ms: i64) {
        let mut state = self.state.lock().await;
        let entry = state.blocked.entry(channel.to_string()).or_insert(until_ms);
        *entry = (*entry).max(until_ms);
    }
}

/// GCRA: a bucket of `burst` tokens refilled one per `interval`, whose
/// theoretical arrival time is `tat`, admits a message after this wait.
fn wait_for(tat: Instant, interval: Duration, burst: u32, now: Instant) -> Duration {
    let allowance = interval * (burst - 1);
    tat.checked_sub(allowance)
        .map(|earliest| earliest.saturating_duration_since(now))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn try_reserve_takes_free_slots_only_and_says_when_the_next_one_is() {
        let pacer = Pacer::new(Duration::from_secs(1), 2, 1000);
        assert_eq!(pacer.try_reserve("#a", 0).await, Slot::Now);
        assert_eq!(pacer.try_reserve("#a", 0).await, Slot::Now);
        // The burst is spent: a refusal takes nothing, and says when.
        assert_eq!(
            pacer.try_reserve("#a", 0).await,
            Slot::ChannelIn(Duration::from_secs(1))
        );
        assert_eq!(
            pacer.try_reserve("#a", 0).await,
            Slot::ChannelIn(Duration::from_secs(1))
        );
        // Another channel is not held up by #a.
        assert_eq!(pacer.try_reserve("#b", 0).await, Slot::Now);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(pacer.try_reserve("#a", 0).await, Slot::Now);
        // Retry-After blocks its channel on the app clock.
        pacer.block("#b", 4_000).await;
        assert_eq!(
            pacer.try_reserve("#b", 1_000).await,
            Slot::ChannelIn(Duration::from_secs(3))
        );
        assert_eq!(pacer.blocked(1_000).await.len(), 1);
        assert!(pacer.blocked(4_000).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn try_reserve_reports_a_full_workspace() {
        let pacer = Pacer::new(Duration::from_millis(1), 100, 2);
        assert_eq!(pacer.try_reserve("#a", 0).await, Slot::Now);
        assert_eq!(pacer.try_reserve("#b", 0).await, Slot::Now);
        assert_eq!(
            pacer.try_reserve("#c", 0).await,
            Slot::WorkspaceIn(Duration::from_secs(30))
        );
    }
}
