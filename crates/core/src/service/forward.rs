//! `ForwardAuth`: whether a request a reverse proxy (nginx `auth_request`,
//! Traefik `forwardAuth`, Caddy `forward_auth`) asks about may pass, by the
//! passed session its browser carries and the access rules. Callers need
//! the `portal` grant: passed sessions are opened by the portal's sign-in.

use async_trait::async_trait;

use super::Ctx;
use crate::error::Result;
use crate::passed::{ForwardDecision, ForwardRequest};

#[async_trait]
pub trait ForwardAuth: Send + Sync + 'static {
    /// Allow (with the user, for the site's headers), send to sign in, or
    /// refuse. A session whose user was disabled, locked or deleted ends
    /// here, at its next request. Not audited when allowed (every asset of
    /// every page asks); refusals of a signed-in user are.
    async fn forward_check(&self, ctx: &Ctx, request: ForwardRequest) -> Result<ForwardDecision>;
}
