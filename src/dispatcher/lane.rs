//! The fast lane: alerts claimed by the writer as it enqueues them.
//!
//! Without it, a new alert costs the dispatcher a read (the due rows) and a
//! commit of its own (the claim) before it can be sent: on SQLite that
//! commit waits for the write lock behind the writer's batch and then for
//! its own sync to disk, which is most of the time between a webhook's 2xx
//! and its Slack message. With it, the writer inserts the alerts of a batch
//! already claimed for this process's dispatcher (the claim is part of the
//! commit that records the rating) and hands their ids over in memory; the
//! dispatcher reads them and sends. The claim is the same lease with the
//! same fencing token as one the dispatcher takes itself, so a crash, a
//! takeover by another replica and the in-doubt check work as before.
//!
//! The lane is open only while
//! - this process's dispatcher runs (not in tests that flush by hand, not
//!   after shutdown began), and
//! - its last pass left nothing waiting: no channel held by its pace, the
//!   workspace cap or Slack's `Retry-After`. Alerts that must wait go the
//!   usual way (pending, due rows), where storm control can fold them and
//!   a channel's messages keep their order.
//!
//! An alert handed over that its channel cannot take now after all is
//! released (pending again, unclaimed) and the lane closes until a pass
//! drains what waits. Claims handed over to a dispatcher that stopped are
//! released by it at shutdown, or by the writer when the lane had already
//! closed.

use std::sync::Mutex;

/// Shared by the writer (which claims and hands over) and this process's
/// dispatcher (which opens it and takes what was handed over).
#[derive(Debug, Default)]
pub struct Lane {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The running dispatcher's claim token for the lane and its lease;
    /// `None` while no dispatcher runs.
    owner: Option<Owner>,
    /// Whether the dispatcher's last pass left nothing waiting.
    admitting: bool,
    /// The alert ids handed over, in commit order.
    handed: Vec<i64>,
    counts: LaneCounts,
}

/// What went through the lane since start (tests and `/metrics`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LaneCounts {
    /// Alerts the writer claimed and handed over.
    pub handed: u64,
    /// Of those, alerts the dispatcher released to wait their turn.
    pub released: u64,
}

#[derive(Debug, Clone)]
struct Owner {
    /// `<instance>:<uuid>`, one per run of the dispatcher: every alert the
    /// writer claims while it runs carries it, so the dispatcher sends
    /// what many commits handed over as one batch (one read, one record of
    /// the sends). The token fences as a per-batch one does: only new rows
    /// are ever given it, and a takeover clears it.
    token: String,
    lease_ms: i64,
}

/// A claim the writer puts on the alerts of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneClaim {
    pub token: String,
    pub claimed_until: i64,
}

impl Lane {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The claim for a batch committed at `now_ms`, when the lane is open.
    pub fn claim(&self, now_ms: i64) -> Option<LaneClaim> {
        let state = self.state();
        match &state.owner {
            Some(owner) if state.admitting => Some(LaneClaim {
                token: owner.token.clone(),
                claimed_until: now_ms + owner.lease_ms,
            }),
            _ => None,
        }
    }

    /// Hands over `ids`, committed under `claim`. False when the dispatcher
    /// that owned the claim has stopped: the caller releases them.
    pub fn hand_over(&self, claim: &LaneClaim, ids: &[i64]) -> bool {
        let mut state = self.state();
        let owned = state.owner.as_ref().is_some_and(|o| o.token == claim.token);
        if owned && !ids.is_empty() {
            state.counts.handed += ids.len() as u64;
            metrics::counter!("csatwatch_alert_claims_total", "by" => "writer")
                .increment(ids.len() as u64);
            state.handed.extend_from_slice(ids);
        }
        owned
    }

    /// What went through the lane so far.
    pub fn counts(&self) -> LaneCounts {
        self.state().counts
    }

    /// Opens the lane for the dispatcher `instance` (its run loop started;
    /// tests that stand in for a dispatcher).
    pub fn open(&self, instance: &str, lease_ms: i64) {
        let mut state = self.state();
        state.owner = Some(Owner {
            token: format!("{instance}:{}", uuid::Uuid::new_v4().simple()),
            lease_ms,
        });
        state.admitting = true;
        state.handed.clear();
    }

    /// Closes the lane (the run loop is ending). What was handed over and
    /// not taken stays claimed until the dispatcher releases its claims.
    pub fn close(&self) {
        let mut state = self.state();
        state.owner = None;
        state.admitting = false;
        state.handed.clear();
    }

    /// A new lease from a settings reload, for claims made from now on.
    pub(super) fn set_lease(&self, lease_ms: i64) {
        if let Some(owner) = self.state().owner.as_mut() {
            owner.lease_ms = lease_ms;
        }
    }

    /// Whether the writer may claim: the last pass left nothing waiting.
    pub(super) fn admit(&self, admitting: bool) {
        self.state().admitting = admitting;
    }

    /// Whether the last pass left nothing waiting (and the lane is open).
    pub(super) fn admitting(&self) -> bool {
        let state = self.state();
        state.owner.is_some() && state.admitting
    }

    /// Counts `n` alerts handed over and then released.
    pub(super) fn released(&self, n: u64) {
        self.state().counts.released += n;
    }

    /// Puts ids taken but not taken up (a pass failed) back in front,
    /// unless the lane closed meanwhile (the dispatcher's release at
    /// shutdown covers them).
    pub(super) fn give_back(&self, ids: Vec<i64>) {
        let mut state = self.state();
        if state.owner.is_some() && !ids.is_empty() {
            let later = std::mem::replace(&mut state.handed, ids);
            state.handed.extend(later);
        }
    }

    /// The lane's claim token and everything handed over since the last
    /// take, in commit order; `None` when nothing was.
    pub fn take(&self) -> Option<(String, Vec<i64>)> {
        let mut state = self.state();
        let ids = std::mem::take(&mut state.handed);
        match &state.owner {
            Some(owner) if !ids.is_empty() => Some((owner.token.clone(), ids)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_lane_claims_nothing_and_refuses_a_hand_over() {
        let lane = Lane::default();
        assert_eq!(lane.claim(1_000), None);
        lane.open("inst", 120_000);
        let claim = lane.claim(1_000).expect("open");
        assert!(claim.token.starts_with("inst:"));
        assert_eq!(claim.claimed_until, 121_000);
        lane.close();
        assert!(!lane.hand_over(&claim, &[1]));
        assert_eq!(lane.take(), None);
    }

    #[test]
    fn a_lane_that_stops_admitting_still_takes_claims_made_before() {
        let lane = Lane::default();
        lane.open("inst", 10);
        let claim = lane.claim(0).unwrap();
        lane.admit(false);
        assert_eq!(lane.claim(0), None);
        assert!(lane.hand_over(&claim, &[3, 4]));
        assert_eq!(lane.take(), Some((claim.token.clone(), vec![3, 4])));
        assert_eq!(lane.take(), None);
    }

    #[test]
    fn what_several_commits_handed_over_is_taken_as_one_batch_in_commit_order() {
        let lane = Lane::default();
        lane.open("inst", 10);
        let first = lane.claim(0).unwrap();
        let second = lane.claim(5).unwrap();
        assert_eq!(first.token, second.token);
        assert!(lane.hand_over(&first, &[1, 2]));
        assert!(lane.hand_over(&second, &[3]));
        assert_eq!(lane.take(), Some((first.token, vec![1, 2, 3])));
        assert_eq!(lane.counts().handed, 3);
    }

    #[test]
    fn ids_given_back_come_first_at_the_next_take() {
        let lane = Lane::default();
        lane.open("inst", 10);
        let claim = lane.claim(0).unwrap();
        assert!(lane.hand_over(&claim, &[1]));
        let (_, taken) = lane.take().unwrap();
        assert!(lane.hand_over(&claim, &[2]));
        lane.give_back(taken);
        assert_eq!(lane.take(), Some((claim.token, vec![1, 2])));
        lane.close();
        lane.give_back(vec![3]);
        assert_eq!(lane.take(), None);
    }

    #[test]
    fn a_claim_of_an_earlier_run_is_refused_after_a_restart() {
        let lane = Lane::default();
        lane.open("same", 10);
        let claim = lane.claim(0).unwrap();
        lane.close();
        lane.open("same", 10);
        assert!(!lane.hand_over(&claim, &[1]));
        assert_eq!(lane.take(), None);
    }
}
