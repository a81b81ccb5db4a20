//! Slack: the alert as a Block Kit message ([`message`], with the escaping
//! and cutting in [`text`]) and its delivery through the Web API with a bot
//! token or through an incoming webhook ([`client`]), whose answers
//! [`errors`] sorts into retry or give up; [`threads`] renders updates,
//! escalations and digests. Button clicks coming back from Slack are
//! handled in the HTTP layer (`http::slack`); this module only sends.

pub mod client;
pub mod errors;
pub mod message;
pub mod modals;
pub mod preflight;
pub mod text;
pub mod threads;
pub mod users;

pub use client::{AuthInfo, SlackClient};
