//! How long a message that failed for a passing reason (Postgres down, a
//! throttled table) waits before its next delivery: doubling from a base,
//! capped, so an outage of hours costs a few receives an hour rather than
//! burning the queue's maxReceiveCount in minutes.

/// Seconds to hide a message after its `receive_count`-th delivery failed:
/// `base`, `2·base`, `4·base` … never more than `cap` (and never more than
/// SQS's 12-hour visibility limit).
pub fn backoff_secs(receive_count: u32, base: u64, cap: u64) -> u64 {
    const SQS_MAX_VISIBILITY: u64 = 12 * 3600;
    let doublings = receive_count.saturating_sub(1).min(32);
    base.saturating_mul(1u64 << doublings).min(cap).min(SQS_MAX_VISIBILITY)
}

/// How long messages survive failing the whole time: the sum of the delays
/// before each of the first `max_receive_count - 1` redeliveries.
pub fn survives_secs(max_receive_count: u32, base: u64, cap: u64) -> u64 {
    (1..max_receive_count).map(|n| backoff_secs(n, base, cap)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let delays: Vec<u64> = (1..=8).map(|n| backoff_secs(n, 20, 600)).collect();
        assert_eq!(delays, [20, 40, 80, 160, 320, 600, 600, 600]);
    }

    #[test]
    fn huge_counts_neither_overflow_nor_pass_sqs_limit() {
        assert_eq!(backoff_secs(u32::MAX, 20, u64::MAX), 12 * 3600);
        assert_eq!(backoff_secs(0, 20, 600), 20);
    }

    #[test]
    fn a_hundred_receives_outlast_days_of_outage() {
        // template.yaml's numbers: maxReceiveCount 100, base 20 s, cap 3600 s.
        let survives = survives_secs(100, 20, 3600);
        assert!((3 * 86_400..4 * 86_400).contains(&survives), "{survives}");
        assert_eq!(survives_secs(3, 2, 3), 2 + 3);
    }
}
