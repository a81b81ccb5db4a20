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

/// The buckets of one dispatcher.
#[derive(Debug)]
pub struct Pacer {
    channel_interval: Duration,
    channel_burst: u32,
    workspace_interval: Duration,
    workspace_burst: u32,
    state: Mutex<State>,
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
        let per_minute = max_per_minute.max(1);
        Pacer {
            channel_interval,
            channel_burst: channel_burst.max(1),
            workspace_interval: Duration::from_secs(60) / per_minute,
            // A minute's worth at once at most; the per-channel pace still applies.
            workspace_burst: per_minute,
            state: Mutex::new(State::default()),
        }
    }

    /// Takes a slot for one message to `channel` and returns how long to
    /// wait before sending it (zero within the burst).
    pub async fn reserve(&self, channel: &str) -> Duration {
        let now = Instant::now();
        let mut state = self.state.lock().await;
        let channel_tat = state.channels.get(channel).copied().unwrap_or(now);
        let workspace_tat = state.workspace.unwrap_or(now);
        let wait =
            wait_for(channel_tat, self.channel_interval, self.channel_burst, now).max(wait_for(
                workspace_tat,
                self.workspace_interval,
                self.workspace_burst,
                now,
            ));
        let at = now + wait;
        state.channels.insert(
            channel.to_string(),
            channel_tat.max(at) + self.channel_interval,
        );
        state.workspace = Some(workspace_tat.max(at) + self.workspace_interval);
        wait
    }

    /// Remembers that Slack asked `channel` to wait until `until_ms`.
    pub async fn block(&self, channel: &str, until_ms: i64) {
        let mut state = self.state.lock().await;
        let entry = state.blocked.entry(channel.to_string()).or_insert(until_ms);
        *entry = (*entry).max(until_ms);
    }

    /// Until when `channel` is rate-limited by Slack, if it is after `now_ms`.
    pub async fn blocked_until(&self, channel: &str, now_ms: i64) -> Option<i64> {
        let state = self.state.lock().await;
        state.blocked.get(channel).copied().filter(|&t| t > now_ms)
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
    async fn a_channel_takes_a_burst_then_one_per_interval() {
        let pacer = Pacer::new(Duration::from_secs(1), 3, 1000);
        let mut waits = Vec::new();
        for _ in 0..5 {
            waits.push(pacer.reserve("#a").await.as_millis());
        }
        assert_eq!(waits, [0, 0, 0, 1000, 2000]);
        // Another channel has its own bucket.
        assert_eq!(pacer.reserve("#b").await, Duration::ZERO);
        // Time refills the bucket.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(pacer.reserve("#a").await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_workspace_cap_holds_across_channels() {
        let pacer = Pacer::new(Duration::from_millis(1), 100, 6);
        let mut waits = Vec::new();
        for i in 0..8 {
            waits.push(pacer.reserve(&format!("#c{i}")).await.as_secs());
        }
        // Six a minute: the first six at once, then one every ten seconds.
        assert_eq!(waits, [0, 0, 0, 0, 0, 0, 10, 20]);
    }

    #[tokio::test]
    async fn retry_after_blocks_only_its_channel_until_it_passes() {
        let pacer = Pacer::new(Duration::from_secs(1), 3, 100);
        pacer.block("#a", 5_000).await;
        assert_eq!(pacer.blocked_until("#a", 1_000).await, Some(5_000));
        assert_eq!(pacer.blocked_until("#b", 1_000).await, None);
        assert_eq!(pacer.blocked_until("#a", 5_000).await, None);
    }
}
