//! What the engine tells an observer (the Prometheus metrics of `GET
//! /metrics`) about its decisions. A port like `Store`: the engine knows
//! nothing of the metrics library, and a server without metrics has none.
//!
//! Every value handed over comes from a fixed set — event names are
//! constants of the engine, results are `ResultCode`s, methods are method
//! names — never a username or an address, so an observer that keeps one
//! series per combination stays bounded.

use crate::audit::ResultCode;
use crate::service::{Actor, Ctx};

/// One decision of the engine, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Which face of Twofold asked (`front_end`): `portal`, `sdk`, ...
    pub front_end: &'a str,
    /// The audit event's name (`sdk.validate`, `portal.verify`, ...).
    pub event: &'a str,
    /// The method the decision was about, when the event names one.
    pub method: Option<&'a str>,
    pub result: ResultCode,
}

/// An observer of the engine's decisions. Called on the request's path, so
/// it must be cheap and must not block (counting in memory is).
pub trait Telemetry: Send + Sync + 'static {
    fn decision(&self, d: &Decision<'_>);
}

/// The front-end a call came through, from who made it: a bounded label.
pub fn front_end(ctx: &Ctx) -> &'static str {
    match &ctx.actor {
        // A user through the local portal, or through a separate portal
        // that relays for them with its service account (`via`): the User
        // Portal either way.
        Actor::User(_) => "portal",
        Actor::ServiceAccount(_) => "sdk",
        Actor::Cli => "cli",
        Actor::Admin(_) => "admin",
        Actor::Provider(_) => "provider",
        Actor::Device(_) => "mobile_app",
        Actor::Proxy => "forward_auth",
        Actor::System | Actor::Job(_) => "system",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Access;

    #[test]
    fn front_ends_follow_the_actor() {
        let of = |actor: Actor, via: Option<Actor>| {
            let mut ctx = Ctx::new(actor, Access::full(), None);
            ctx.via = via;
            front_end(&ctx)
        };
        assert_eq!(of(Actor::User("jan".into()), None), "portal");
        assert_eq!(
            of(
                Actor::User("jan".into()),
                Some(Actor::ServiceAccount("portal".into()))
            ),
            "portal"
        );
        assert_eq!(of(Actor::ServiceAccount("vpn".into()), None), "sdk");
        assert_eq!(of(Actor::Cli, None), "cli");
        assert_eq!(of(Actor::Admin("ann".into()), None), "admin");
        assert_eq!(of(Actor::Provider("twilio"), None), "provider");
        assert_eq!(of(Actor::Device("9b2f41c0aa".into()), None), "mobile_app");
        assert_eq!(of(Actor::Proxy, None), "forward_auth");
        assert_eq!(of(Actor::System, None), "system");
        assert_eq!(of(Actor::Job("sync"), None), "system");
    }
}
