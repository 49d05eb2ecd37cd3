//! Overall deadlines for the long operations of a pass (a whole OfficeRnD read, a binding's
//! sync): each request already has its own timeout, but a server that answers every request
//! just in time, or a long run of 429s, must not hold a pass, and the objects queued behind it,
//! for ever. The message says what took too long and that nothing is lost.

use std::future::Future;
use std::time::Duration;

/// An operation ran past its deadline and was stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} did not finish within {} (a slow or throttling server); it was stopped and is retried, nothing is lost", humanize(*.deadline))]
pub struct Exceeded {
    /// What was stopped.
    pub what: &'static str,
    /// The deadline it ran past.
    pub deadline: Duration,
}

/// Runs `operation`, stopping it when it takes longer than `deadline`.
pub async fn within<F: Future>(
    deadline: Duration,
    what: &'static str,
    operation: F,
) -> Result<F::Output, Exceeded> {
    tokio::time::timeout(deadline, operation)
        .await
        .map_err(|_| Exceeded { what, deadline })
}

fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_operation_past_its_deadline_is_stopped_with_a_message_saying_so() {
        let slow = tokio::time::sleep(Duration::from_secs(3600));
        let exceeded = within(Duration::from_secs(600), "reading OfficeRnD", slow)
            .await
            .unwrap_err();
        assert_eq!(
            exceeded.to_string(),
            "reading OfficeRnD did not finish within 10 min (a slow or throttling server); it was stopped and is retried, nothing is lost"
        );
        let quick = async { 7 };
        assert_eq!(within(Duration::from_secs(1), "x", quick).await, Ok(7));
    }
}
