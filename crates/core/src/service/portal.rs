//! `PortalService`: the User Portal's self-service flows. The in-process
//! portal and a portal on a separate server (over the portal link) call the
//! same trait; callers need the `portal` grant. Operations act for the end
//! user named by `username`, whom the portal has signed in (or is signing in).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Ctx;
use crate::challenge::{Authentication, PhoneChoice};
use crate::error::Result;
use crate::factors::OathToken;
use crate::portal::{
    Account, ChangePhone, EnrollPhone, EnrollmentOptions, FinishEnrollment, ImportOath,
    PendingOath, PhoneSlot, PortalConfig, Proof, SignIn, Verified,
};
use crate::user::{MethodKind, User};

#[async_trait]
pub trait PortalService: Send + Sync + 'static {
    /// Ready to serve: the database answers. Also says whether the primary
    /// directory (LDAP, RADIUS) answers, which does not fail readiness.
    async fn ready(&self, ctx: &Ctx) -> Result<crate::directory::Readiness>;

    /// The settings the portal renders by (a projection).
    async fn portal_settings(&self, ctx: &Ctx) -> Result<PortalConfig>;

    /// The signed-in user, as the portal shows them.
    async fn portal_user(&self, ctx: &Ctx, username: &str) -> Result<User>;

    // --- Sign-in -------------------------------------------------------------
    /// Username and password, then what comes next (second step, enrollment,
    /// or signed in through a trusted IP or a one-time bypass).
    async fn begin_sign_in(&self, ctx: &Ctx, username: &str, password: String) -> Result<SignIn>;
    /// The second step: a code for the user's method or the OATH fallback, or
    /// answers to security questions. Failures count towards lockout.
    async fn verify(
        &self,
        ctx: &Ctx,
        username: &str,
        proof: Proof,
        code: Option<String>,
        answers: Vec<(i64, String)>,
    ) -> Result<Verified>;

    /// The second step by phone: calls the user (phone call) or texts them
    /// a code (text message), on their primary or backup phone. The
    /// challenge's id is the portal's to keep for `verify_phone`.
    async fn call_or_text(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: PhoneChoice,
    ) -> Result<Authentication>;

    /// Where the call or text message `challenge` stands for `username`:
    /// `Accepted` once answered on the phone (or with the typed `code` of a
    /// one-way text), `Waiting` while it waits (at most `wait` for a
    /// decision), `Rejected` with the reason otherwise.
    async fn verify_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Verified>;

    // --- Enrollment wizard -----------------------------------------------------
    async fn enrollment_options(&self, ctx: &Ctx, username: &str) -> Result<EnrollmentOptions>;
    /// "Call Me Now" / "Text Me Now": calls or texts the phone being
    /// enrolled (nothing is saved); the challenge is the wizard's to follow.
    async fn enrollment_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        phone: EnrollPhone,
    ) -> Result<Authentication>;
    /// Where the wizard's call or text stands (with the typed `code` of a
    /// one-way text, answering it; waiting up to `wait` otherwise).
    async fn enrollment_phone_status(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication>;
    /// A new authenticator-app secret, sealed for the round trip.
    async fn new_oath_secret(&self, ctx: &Ctx, username: &str) -> Result<PendingOath>;
    /// A third-party token's secret typed in by the user.
    async fn import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath>;
    /// Proves the user holds the secret; returns it sealed as confirmed.
    async fn confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String>;
    /// Writes everything the wizard collected, in one transaction.
    async fn finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User>;

    // --- Account maintenance ------------------------------------------------------
    async fn account(&self, ctx: &Ctx, username: &str) -> Result<Account>;
    /// Calls or texts a new number for one of the user's phones; nothing is
    /// saved until `change_phone_status` sees the call or text answered.
    async fn change_phone(
        &self,
        ctx: &Ctx,
        username: &str,
        change: ChangePhone,
    ) -> Result<Authentication>;
    /// Where the proof of a new number stands (answering it with the typed
    /// `code` of a text); once accepted, the number is saved to `slot`.
    async fn change_phone_status(
        &self,
        ctx: &Ctx,
        username: &str,
        challenge: &str,
        slot: PhoneSlot,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication>;
    async fn change_pin(&self, ctx: &Ctx, username: &str, pin: String) -> Result<()>;
    /// "Generate Activation Code": a code for the mobile app, with the
    /// service URL and the activation URI (wizard and account page).
    async fn activation_code(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<crate::mobile::ActivationOffer>;
    /// Removes one of the user's mobile-app devices (refused when their
    /// method stands on it alone).
    async fn remove_device(&self, ctx: &Ctx, username: &str, device_id: &str) -> Result<()>;
    async fn change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()>;
    async fn add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken>;
    async fn delete_oath_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()>;
    async fn change_language(&self, ctx: &Ctx, username: &str, language: String) -> Result<User>;
    async fn change_method(&self, ctx: &Ctx, username: &str, method: MethodKind) -> Result<User>;
    /// Lets the next sign-on skip the second step within the returned time.
    /// `Some(0)` withdraws a waiting bypass instead (returns the time now).
    async fn start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime>;

    // --- Passed sessions (forward-auth) ------------------------------------------
    /// Opens a passed session for `username`, whose sign-in the portal has
    /// just completed `via`, when `passed_sessions.enabled` (else `None`):
    /// the cookie to set, and `return_to` if it is a protected site's
    /// address that lets this user in (else why not).
    async fn pass_session(
        &self,
        ctx: &Ctx,
        username: &str,
        via: crate::passed::PassedVia,
        return_to: Option<String>,
    ) -> Result<Option<crate::passed::PassedTicket>>;
    /// Ends the passed session whose cookie is `token` (signing out, also
    /// after the portal's own session ended); returns the cookie's domain,
    /// to clear it there.
    async fn end_passed_session(&self, ctx: &Ctx, token: &str) -> Result<Option<String>>;

    // --- Sessions (server-side, shared by every portal node) ----------------------
    async fn session_load(&self, ctx: &Ctx, id_hash: &str) -> Result<Option<String>>;
    async fn session_save(
        &self,
        ctx: &Ctx,
        id_hash: &str,
        data: String,
        ttl_seconds: i64,
    ) -> Result<()>;
    async fn session_drop(&self, ctx: &Ctx, id_hash: &str) -> Result<()>;
}
