//! Backing off repeated failed sign-ins for one email from one address:
//! each one costs an Argon2 hash, and guessing passwords must be slow. The
//! first few failures are free; after them each attempt waits twice as long
//! as the one before, but never more than a minute. The count is kept per
//! address too, so failing on purpose from one address does not hold up
//! the owner signing in from another.

/// Failures allowed before any wait.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait between attempts.
pub const MAX_WAIT_SECS: u64 = 60;
/// Failures older than this are forgotten.
pub const FORGET_AFTER_SECS: u64 = 3600;

/// Seconds to wait before the next attempt, after `failures` failures the
/// last of which was `since_last` seconds ago; None when it may go ahead.
pub fn signin_wait(failures: u32, since_last: u64) -> Option<u64> {
    if failures < FREE_FAILURES || since_last >= FORGET_AFTER_SECS {
        return None;
    }
    let wait = 1u64.checked_shl(failures - FREE_FAILURES).unwrap_or(u64::MAX).min(MAX_WAIT_SECS);
    wait.checked_sub(since_last).filter(|&left| left > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_are_free_then_the_wait_doubles_up_to_a_minute() {
        // GIVEN fewer failures than the free ones, WHEN asked at once, THEN no wait
        assert_eq!(signin_wait(0, 0), None);
        assert_eq!(signin_wait(FREE_FAILURES - 1, 0), None);
        // GIVEN more, THEN 1 s, 2 s, 4 s … never over a minute
        assert_eq!(signin_wait(FREE_FAILURES, 0), Some(1));
        assert_eq!(signin_wait(FREE_FAILURES + 1, 0), Some(2));
        assert_eq!(signin_wait(FREE_FAILURES + 3, 0), Some(8));
        assert_eq!(signin_wait(FREE_FAILURES + 10, 0), Some(MAX_WAIT_SECS));
        assert_eq!(signin_wait(u32::MAX, 0), Some(MAX_WAIT_SECS));
        // WHEN the wait has passed, or the failures are old, THEN go ahead
        assert_eq!(signin_wait(FREE_FAILURES + 3, 3), Some(5));
        assert_eq!(signin_wait(FREE_FAILURES + 3, 8), None);
        assert_eq!(signin_wait(u32::MAX, FORGET_AFTER_SECS), None);
    }
}
