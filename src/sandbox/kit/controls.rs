//! The test controls every simulator with a token endpoint or a server-side rate limit offers,
//! written once: a simulator's handle implements the one method that reaches its state, and
//! gets the rest. Callers bring the trait into scope (`use flexgate::sandbox::kit::TokenControls`).

use std::time::Duration;

use super::auth::Tokens;
use super::rate::RateLimit;

/// Controls of a simulator's token endpoint.
pub trait TokenControls {
    /// Runs `change` on the tokens the simulator issued (under its state lock).
    fn change_tokens<R>(&self, change: impl FnOnce(&mut Tokens) -> R) -> R;

    /// Lifetime of tokens issued from now on.
    fn set_token_lifetime(&self, lifetime: Duration) {
        self.change_tokens(|tokens| tokens.set_lifetime(lifetime));
    }

    /// Invalidates every issued access token (the next API call with one gets 401; refresh
    /// tokens stay valid).
    fn revoke_access_tokens(&self) {
        self.change_tokens(Tokens::revoke_access);
    }

    /// Invalidates every issued refresh token (the next refresh gets `invalid_grant`).
    fn revoke_refresh_tokens(&self) {
        self.change_tokens(Tokens::revoke_refresh);
    }
}

/// Control of a simulator's server-side rate limit (how a refusal looks is the vendor's).
pub trait RateControls {
    /// Runs `change` on the simulator's rate limit (under its state lock).
    fn change_rate_limit(&self, change: impl FnOnce(&mut RateLimit));

    /// Turns the limit on (`Some(requests per second)`) or off, forgetting requests counted so far.
    fn set_rate_limit(&self, requests_per_second: Option<u32>) {
        self.change_rate_limit(|limit| limit.set(requests_per_second));
    }
}
