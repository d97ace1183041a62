//! Part planning for S3 multipart uploads.

use serde::{Deserialize, Serialize};

pub use sluice_api::limits::{DEFAULT_PART_SIZE, MAX_PART_SIZE, MAX_PARTS, MIB, MIN_PART_SIZE};
pub use sluice_api::status::UploadMode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("size must be greater than 0 bytes")]
    Empty,
    #[error("size {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("size {size} bytes is above the single-PUT limit of {max} bytes; use mode \"multipart\"")]
    TooLargeForSingle { size: u64, max: u64 },
    #[error("mode \"companion\" is chosen by the /s3/multipart routes (Uppy); ask for \"single\" or \"multipart\"")]
    CompanionOnly,
}

/// How a file of a given size is cut into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartPlan {
    pub size: u64,
    pub part_size: u64,
    pub part_count: u32,
}

impl PartPlan {
    /// 5 MiB parts unless that would need more than 10,000 parts; then the
    /// smallest whole MiB that fits.
    pub fn for_size(size: u64, max_size: u64) -> Result<Self, PlanError> {
        if size == 0 {
            return Err(PlanError::Empty);
        }
        let ceiling = max_size.min(MAX_PARTS * MAX_PART_SIZE);
        if size > ceiling {
            return Err(PlanError::TooLarge { size, max: ceiling });
        }
        let part_size =
            if size.div_ceil(DEFAULT_PART_SIZE) <= MAX_PARTS { DEFAULT_PART_SIZE } else { size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB };
        let part_count = size.div_ceil(part_size) as u32;
        Ok(Self { size, part_size, part_count })
    }

    /// The mode and plan for an upload: one PUT at or below `single_put_max`
    /// (a single part holding everything) unless the client asks otherwise,
    /// parts above it.
    pub fn choose(size: u64, max_size: u64, single_put_max: u64, requested: Option<UploadMode>) -> Result<(UploadMode, Self), PlanError> {
        let multipart = Self::for_size(size, max_size)?;
        let mode = requested.unwrap_or(if size <= single_put_max { UploadMode::Single } else { UploadMode::Multipart });
        match mode {
            UploadMode::Multipart => Ok((mode, multipart)),
            UploadMode::Single if size > single_put_max => Err(PlanError::TooLargeForSingle { size, max: single_put_max }),
            UploadMode::Single => Ok((mode, Self { size, part_size: size, part_count: 1 })),
            UploadMode::Companion => Err(PlanError::CompanionOnly),
        }
    }

    /// The plan of an upload whose client cuts the parts (Uppy). With a
    /// declared size it is the cut @uppy/aws-s3 makes by default (6.x, as
    /// 3.x to 5.x): parts of `max(5 MiB, ceil(size / 10,000))`, the last
    /// holding the rest, so each part's exact length can be signed. Without
    /// one nothing is known: parts come from S3.
    pub fn client_cut(size: Option<u64>, max_size: u64) -> Result<Self, PlanError> {
        let Some(size) = size else {
            return Ok(Self { size: 0, part_size: 0, part_count: 0 });
        };
        let size = Self::for_size(size, max_size)?.size;
        let part_size = MIN_PART_SIZE.max(size.div_ceil(MAX_PARTS));
        Ok(Self { size, part_size, part_count: size.div_ceil(part_size) as u32 })
    }

    /// The declared size; none for a client-cut upload that did not declare one.
    pub fn declared_size(&self) -> Option<u64> {
        (self.size > 0).then_some(self.size)
    }

    /// The highest part number a client cutting its own parts may use: the
    /// plan's count when the size was declared; without one, as many 5 MiB
    /// parts (Uppy's smallest) as the largest file allowed needs.
    pub fn client_part_limit(&self, max_size: u64) -> u32 {
        match self.declared_size() {
            // Sessions planned before part sizes were: at least 5 MiB each.
            Some(size) if self.part_count == 0 => size.div_ceil(MIN_PART_SIZE).clamp(1, MAX_PARTS) as u32,
            Some(_) => self.part_count,
            None => max_size.div_ceil(MIN_PART_SIZE).clamp(1, MAX_PARTS) as u32,
        }
    }

    /// The length part `n` of a client-cut upload must have, when the plan
    /// knows it (a declared size).
    pub fn client_part_size(&self, n: u32) -> Option<u64> {
        let part = PartNumber(n);
        (self.part_size > 0 && (1..=self.part_count).contains(&n)).then(|| self.size_of(part))
    }

    /// The exact size part `n` must have: every part is `part_size` but the
    /// last, which holds the remainder.
    pub fn size_of(&self, part: PartNumber) -> u64 {
        let n = u64::from(part.get());
        if n < u64::from(self.part_count) { self.part_size } else { self.size - self.part_size * (u64::from(self.part_count) - 1) }
    }

    pub fn part_number(&self, n: i64) -> Option<PartNumber> {
        (1..=i64::from(self.part_count)).contains(&n).then_some(PartNumber(n as u32))
    }

    pub fn parts(&self) -> impl Iterator<Item = PartNumber> {
        (1..=self.part_count).map(PartNumber)
    }
}

/// A part number inside a plan (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartNumber(u32);

impl PartNumber {
    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 5 * 1024 * MIB * 1024;

    #[test]
    fn small_files_use_5_mib_parts() {
        let plan = PartPlan::for_size(MIB, MAX).unwrap();
        assert_eq!((plan.part_size, plan.part_count), (5 * MIB, 1));
        assert_eq!(plan.size_of(PartNumber(1)), MIB);
    }

    #[test]
    fn last_part_holds_the_remainder() {
        let plan = PartPlan::for_size(12 * MIB + 7, MAX).unwrap();
        assert_eq!(plan.part_count, 3);
        assert_eq!(plan.size_of(PartNumber(1)), 5 * MIB);
        assert_eq!(plan.size_of(PartNumber(3)), 2 * MIB + 7);
    }

    #[test]
    fn exactly_10000_parts_of_5_mib_keeps_5_mib() {
        let plan = PartPlan::for_size(10_000 * 5 * MIB, MAX).unwrap();
        assert_eq!((plan.part_size, plan.part_count), (5 * MIB, 10_000));
    }

    #[test]
    fn larger_files_use_the_smallest_whole_mib_that_fits() {
        // 48 GiB still fits 10,000 parts of 5 MiB (9,831 of them).
        let plan = PartPlan::for_size(48 * 1024 * MIB, MAX).unwrap();
        assert_eq!((plan.part_size, plan.part_count), (5 * MIB, 9_831));
        let plan = PartPlan::for_size(100 * 1024 * MIB, 200 * 1024 * MIB).unwrap();
        assert_eq!((plan.part_size, plan.part_count), (11 * MIB, 9_310));
        let one_more = PartPlan::for_size(10_000 * 5 * MIB + 1, MAX).unwrap();
        assert_eq!(one_more.part_size, 6 * MIB);
        assert_eq!(one_more.part_count, 8_334);
    }

    #[test]
    fn client_cut_uploads_bound_part_numbers_by_the_declared_size() {
        let declared = PartPlan::client_cut(Some(12 * MIB + 7), MAX).unwrap();
        assert_eq!(declared.declared_size(), Some(12 * MIB + 7));
        assert_eq!(declared.client_part_limit(MAX), 3, "5 MiB parts cover it in 3");
        assert_eq!(
            [1, 2, 3, 4].map(|n| declared.client_part_size(n)),
            [Some(5 * MIB), Some(5 * MIB), Some(2 * MIB + 7), None],
            "Uppy's cut: 5 MiB, 5 MiB, the rest"
        );
        assert_eq!(PartPlan::client_cut(Some(1), MAX).unwrap().client_part_limit(MAX), 1);
        let unknown = PartPlan::client_cut(None, MAX).unwrap();
        assert_eq!((unknown.declared_size(), unknown.client_part_size(1)), (None, None));
        assert_eq!(unknown.client_part_limit(20 * MIB), 4, "20 MiB of 5 MiB parts");
        assert_eq!(unknown.client_part_limit(MAX), 10_000);
    }

    #[test]
    fn huge_client_cut_uploads_take_uppys_larger_parts() {
        // Past 10,000 × 5 MiB, Uppy cuts ceil(size / 10,000)-byte parts.
        let size = 60 * 1024 * MIB;
        let plan = PartPlan::client_cut(Some(size), 5 * size).unwrap();
        assert_eq!(plan.part_size, size.div_ceil(10_000));
        assert_eq!(plan.part_count, 10_000);
        let cut: u64 = (1..=plan.part_count).map(|n| plan.client_part_size(n).unwrap()).sum();
        assert_eq!(cut, size);
    }

    #[test]
    fn sessions_planned_before_part_sizes_keep_their_bound() {
        let legacy = PartPlan { size: 12 * MIB, part_size: 0, part_count: 0 };
        assert_eq!((legacy.client_part_limit(MAX), legacy.client_part_size(1)), (3, None));
    }

    #[test]
    fn rejects_empty_and_oversized() {
        assert_eq!(PartPlan::for_size(0, MAX), Err(PlanError::Empty));
        assert_eq!(PartPlan::for_size(11, 10), Err(PlanError::TooLarge { size: 11, max: 10 }));
    }

    #[test]
    fn small_files_go_in_one_put_unless_parts_are_asked_for() {
        let eight = 8 * MIB;
        let (mode, plan) = PartPlan::choose(eight, MAX, eight, None).unwrap();
        assert_eq!((mode, plan.part_size, plan.part_count), (UploadMode::Single, eight, 1));
        let (mode, plan) = PartPlan::choose(eight + 1, MAX, eight, None).unwrap();
        assert_eq!((mode, plan.part_count), (UploadMode::Multipart, 2));
        let (mode, plan) = PartPlan::choose(MIB, MAX, eight, Some(UploadMode::Multipart)).unwrap();
        assert_eq!((mode, plan.part_size, plan.part_count), (UploadMode::Multipart, 5 * MIB, 1));
        assert_eq!(
            PartPlan::choose(eight + 1, MAX, eight, Some(UploadMode::Single)),
            Err(PlanError::TooLargeForSingle { size: eight + 1, max: eight })
        );
        assert_eq!(PartPlan::choose(0, MAX, eight, None), Err(PlanError::Empty));
    }

    #[test]
    fn part_numbers_outside_the_plan_are_refused() {
        let plan = PartPlan::for_size(12 * MIB, MAX).unwrap();
        assert!(plan.part_number(0).is_none());
        assert!(plan.part_number(4).is_none());
        assert!(plan.part_number(-1).is_none());
        assert_eq!(plan.part_number(3).map(PartNumber::get), Some(3));
    }
}
