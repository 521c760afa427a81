//! What a user proves themselves with, as stored: OATH tokens, the PIN,
//! security questions and answers, one-time bypass, denial counters, and the
//! portal's server-side sessions. Secrets here are always hashed or sealed.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::user::{DefaultMethod, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OathKind {
    /// Time-based (RFC 6238).
    Totp,
    /// Event-based (RFC 4226).
    Hotp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OathAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// How a token computes its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OathParams {
    pub kind: OathKind,
    pub algorithm: OathAlgorithm,
    /// 6 or 8.
    pub digits: u32,
    /// TOTP time step in seconds (ignored for HOTP).
    pub period: u32,
}

impl Default for OathParams {
    fn default() -> Self {
        OathParams {
            kind: OathKind::Totp,
            algorithm: OathAlgorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

/// A token to store. `sealed_secret` is the seed sealed with the label
/// `oath_seed_label(user_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOathToken {
    pub label: String,
    pub params: OathParams,
    pub sealed_secret: String,
    /// TOTP: last time step accepted (replay guard); HOTP: next counter expected.
    pub counter: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OathToken {
    pub id: i64,
    pub user_id: UserId,
    pub label: String,
    pub params: OathParams,
    /// Never leaves the server; empty in a token read back from JSON.
    #[serde(skip_serializing, default)]
    pub sealed_secret: String,
    pub counter: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub fn oath_seed_label(user_id: UserId) -> String {
    format!("oath-seed:user:{user_id}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRecord {
    pub hash: String,
    pub set_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityQuestion {
    pub id: i64,
    pub language: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub question_id: i64,
    pub hash: String,
}

/// Everything the enrollment wizard collected; written in one transaction
/// when the wizard completes, so an abandoned wizard leaves nothing behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub method: DefaultMethod,
    pub token: Option<NewOathToken>,
    pub pin_hash: Option<String>,
    /// (question id, answer hash); empty when questions are not configured.
    pub answers: Vec<(i64, String)>,
    /// The phones a phone call or text message enrollment proved.
    pub phones: Option<EnrolledPhones>,
    /// When set, the user row must still be at this version (a method an
    /// administrator configured in advance is kept; a second wizard
    /// finishing late is refused). When `None`, the user must not have a
    /// method yet.
    pub expected_version: Option<i64>,
}

/// The phones an enrollment saves: the proved number (the phone for calls,
/// the mobile number for texts) and an optional backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledPhones {
    pub method: crate::user::MethodKind,
    pub number: String,
    pub extension: Option<String>,
    pub backup: Option<String>,
}

/// What a guessed secret proves: each is counted on its own, so wrong
/// passwords typed at the portal do not block the codes a VPN checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    /// The primary password (portal sign-in, SDK `primary`, SDK Basic auth
    /// of a directory administrator).
    Password,
    /// A one-time code, with the PIN in front when the mode asks for one.
    Code,
    /// Security-question answers (the portal's fallback).
    Answers,
}

impl Factor {
    pub const ALL: [Factor; 3] = [Factor::Password, Factor::Code, Factor::Answers];

    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Password => "password",
            Factor::Code => "code",
            Factor::Answers => "answers",
        }
    }

    pub fn parse(s: &str) -> Option<Factor> {
        Factor::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Growing back-off: from the `after`th failure in a row, the factor is
/// closed for `base_seconds`, doubling with every further failure up to
/// `cap_seconds`. A guesser is slowed at least as much as by a fixed lock,
/// while the user they target is free again within minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub after: u32,
    pub base_seconds: i64,
    /// `None`: the `after`th failure locks the user until an administrator
    /// unblocks (the original product's "0 minutes" auto-unblock).
    pub cap_seconds: Option<i64>,
    /// A streak ends after this long without failures once the factor is
    /// open again.
    pub quiet_seconds: i64,
}

/// How failures of one factor are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessPolicy {
    pub backoff: Option<Backoff>,
    /// Failures since the last success that lock the user until an
    /// administrator unblocks (NIST SP 800-63B: at most 100).
    pub hard_lock_after: Option<u32>,
    /// Wrong secrets counted per user per hour, across every source and
    /// channel; further checks wait for the hour to end.
    pub hourly_limit: Option<u32>,
}

impl GuessPolicy {
    /// No bound at all (an administrator's own checks).
    pub const NONE: GuessPolicy = GuessPolicy {
        backoff: None,
        hard_lock_after: None,
        hourly_limit: None,
    };
}

pub const HOUR_SECONDS: i64 = 3600;

/// The guessing record of one factor of one user, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureState {
    /// Failures in a row, ended by a success or a quiet period; drives the
    /// back-off.
    pub streak: u32,
    /// Failures since the last success (or unblock); drives the hard lock.
    pub consecutive: u32,
    pub last_failure_at: Option<OffsetDateTime>,
    /// The factor is closed (back-off) until then.
    pub blocked_until: Option<OffsetDateTime>,
    /// The hourly window: when it began and the failures counted in it.
    pub hour_start: Option<OffsetDateTime>,
    pub hour_failures: u32,
}

/// The result of counting one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted. `hard_locked`: this failure locked the user.
    Counted {
        state: FailureState,
        hard_locked: bool,
    },
    /// The factor was closed when the failure arrived (a parallel request
    /// closed it): nothing was counted, and the caller must answer as for a
    /// closed factor — never "wrong", which would still tell the guesser
    /// something.
    Closed { until: OffsetDateTime },
}

impl FailureState {
    /// When the factor opens again, if it is closed at `now`.
    pub fn closed_until(
        &self,
        now: OffsetDateTime,
        policy: &GuessPolicy,
    ) -> Option<OffsetDateTime> {
        let backoff = self.blocked_until.filter(|t| *t > now);
        let hourly = match (policy.hourly_limit, self.hour_start) {
            (Some(limit), Some(start))
                if self.hour_failures >= limit
                    && start + time::Duration::seconds(HOUR_SECONDS) > now =>
            {
                Some(start + time::Duration::seconds(HOUR_SECONDS))
            }
            _ => None,
        };
        backoff.max(hourly)
    }

    /// The state after one more failure at `now`, and whether it locks the
    /// user for good (until an administrator unblocks).
    pub fn after_failure(&self, now: OffsetDateTime, policy: &GuessPolicy) -> (FailureState, bool) {
        let mut next = *self;
        // A streak ends after a quiet period counted from when the factor
        // last opened, so waiting out a back-off does not restart it.
        let quiet_since = self.last_failure_at.max(self.blocked_until);
        let quiet = policy.backoff.map_or(0, |b| b.quiet_seconds);
        let streak_over = quiet_since.is_none_or(|t| t + time::Duration::seconds(quiet) <= now);
        next.streak = if streak_over {
            1
        } else {
            self.streak.saturating_add(1)
        };
        next.consecutive = self.consecutive.saturating_add(1);
        next.last_failure_at = Some(now);
        match self.hour_start {
            Some(start) if start + time::Duration::seconds(HOUR_SECONDS) > now => {
                next.hour_failures = self.hour_failures.saturating_add(1);
            }
            _ => {
                next.hour_start = Some(now);
                next.hour_failures = 1;
            }
        }
        let mut hard_locked = policy
            .hard_lock_after
            .is_some_and(|n| next.consecutive >= n);
        next.blocked_until = None;
        if let Some(b) = policy.backoff {
            if next.streak >= b.after {
                match b.cap_seconds {
                    None => hard_locked = true,
                    Some(cap) => {
                        let doublings = (next.streak - b.after).min(30);
                        let delay = b
                            .base_seconds
                            .saturating_mul(1 << doublings)
                            .min(cap.max(1));
                        next.blocked_until = Some(now + time::Duration::seconds(delay));
                    }
                }
            }
        }
        (next, hard_locked)
    }

    /// The state after a right secret: the streaks end; the hourly count
    /// stays, since the hour bounds wrong secrets whatever came between.
    pub fn after_success(&self) -> FailureState {
        FailureState {
            hour_start: self.hour_start,
            hour_failures: self.hour_failures,
            ..FailureState::default()
        }
    }

    /// Nothing to remember: no row needs writing for a success.
    pub fn is_clear(&self) -> bool {
        self.streak == 0 && self.consecutive == 0 && self.blocked_until.is_none()
    }
}

/// One factor's guessing record as an administrator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorFailures {
    pub factor: Factor,
    /// Failures in a row (drives the pause).
    pub in_a_row: u32,
    /// Failures since the last success (drives the lock).
    pub since_success: u32,
    /// Failures counted in the current hour.
    pub this_hour: u32,
    /// The factor is paused until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub paused_until: Option<OffsetDateTime>,
}

/// The result of using a right code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeUse {
    /// This caller used it: the counter advanced, the code factor's streak
    /// cleared and the audit event was written.
    Accepted,
    /// Another request used it (or a later one) first: a replay.
    Taken,
    /// The code factor was closed; nothing changed.
    Closed { until: OffsetDateTime },
}

/// A portal session as stored: the id is kept only as its SHA-256 hash so a
/// database copy holds no live session ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub data: String,
    pub expires_at: OffsetDateTime,
}

/// An application's credentials for the Web Service SDK. The secret itself
/// is shown once at creation; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub id: i64,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotated_at: Option<OffsetDateTime>,
    pub role: crate::principal::Role,
    /// Only meaningful for role `admin`.
    pub permissions: Vec<crate::user::Permission>,
    /// Only meaningful for role `admin`; `None` is all users.
    pub scope_group: Option<String>,
    /// When the account last authenticated to the SDK; `None` if never.
    /// Recorded at most once a minute, so it may lag by up to a minute.
    /// Defaulted so JSON written before the field existed still reads.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;

    const T0: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    fn policy(cap: Option<i64>) -> GuessPolicy {
        GuessPolicy {
            backoff: Some(Backoff {
                after: 3,
                base_seconds: 60,
                cap_seconds: cap,
                quiet_seconds: 300,
            }),
            hard_lock_after: Some(10),
            hourly_limit: Some(4),
        }
    }

    fn fail_n(p: &GuessPolicy, times: &[i64]) -> (FailureState, bool) {
        times
            .iter()
            .fold((FailureState::default(), false), |(s, _), t| {
                s.after_failure(T0 + Duration::seconds(*t), p)
            })
    }

    #[test]
    fn a_streak_survives_waiting_out_its_pause() {
        let p = policy(Some(900));
        let (s, _) = fail_n(&p, &[0, 1, 2]);
        assert_eq!(s.blocked_until, Some(T0 + Duration::seconds(62)));
        // 300 s after the last failure, but only 240 s after the pause ended.
        let (s, _) = s.after_failure(T0 + Duration::seconds(302), &p);
        assert_eq!(s.streak, 4, "the quiet time counts from the pause's end");
        // Quiet long enough after the pause: a new streak.
        let (s, _) = s.after_failure(T0 + Duration::seconds(302 + 120 + 300), &p);
        assert_eq!((s.streak, s.consecutive), (1, 5));
    }

    #[test]
    fn no_cap_means_the_first_pause_is_a_lock() {
        let (_, locked) = fail_n(&policy(None), &[0, 1]);
        assert!(!locked);
        let (s, locked) = fail_n(&policy(None), &[0, 1, 2]);
        assert!(locked);
        assert_eq!(s.blocked_until, None);
    }

    #[test]
    fn hard_lock_and_hourly_bound() {
        let p = GuessPolicy {
            backoff: None,
            ..policy(None)
        };
        let times: Vec<i64> = (0..10).map(|i| i * 1000).collect();
        let (s, locked) = fail_n(&p, &times);
        assert!(locked, "ten since the last success");
        assert_eq!(s.consecutive, 10);
        let (s, _) = fail_n(&p, &[0, 1, 2, 3]);
        assert_eq!(
            s.closed_until(T0 + Duration::seconds(10), &p),
            Some(T0 + Duration::seconds(HOUR_SECONDS))
        );
        assert_eq!(
            s.closed_until(T0 + Duration::seconds(HOUR_SECONDS), &p),
            None
        );
        let ok = s.after_success();
        assert_eq!((ok.streak, ok.consecutive, ok.hour_failures), (0, 0, 4));
        assert!(ok.closed_until(T0 + Duration::seconds(10), &p).is_some());
    }
}
