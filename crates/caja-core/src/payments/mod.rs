//! Payments through a provider: the rules that hold whatever the provider and the
//! transport. Verifying a provider's webhook signature, the circuit breaker around calls
//! out, and the retry back-off are all pure here (time is passed in, randomness too), so
//! each is unit tested without a network or a clock.

pub mod backoff;
pub mod breaker;
pub mod signature;
