//! Inspection cost against object size, per family (image, video, office
//! document, PDF): the bytes inspect reads from S3 (counted by the local S3
//! as they leave it) and its time to a verdict, for a small and a large
//! object of each. The handler is called as Lambda would call it, with the
//! S3 event of each object. The PDF scanner's own speed and memory are
//! measured apart, in a process of its own (`pdf-scan`), beside a plain
//! read of the same file.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, LambdaEvent};
use sluice_local::Stack;
use sluice_local::s3::ObjectCreated;
use sluice_shared::aws::metadata;
use sluice_shared::inspection::{MAX_READ_BYTES, samples};

use crate::report::{Report, Row, median, ms};
use crate::{KIB, MIB, Scale};

const MAX_RATIO: f64 = 1.2;
const PDF_MIN_MB_S: f64 = 200.0;
const PDF_MAX_RSS_MIB: f64 = 64.0;

/// A family and how to write an object of it.
#[derive(Clone, Copy)]
pub enum Family {
    Image,
    Video,
    Office,
    Pdf,
}

impl Family {
    fn label(self) -> &'static str {
        match self {
            Self::Image => "image (PNG)",
            Self::Video => "video (MP4, moov last)",
            Self::Office => "office (DOCX)",
            Self::Pdf => "PDF",
        }
    }

    fn name_and_type(self) -> (&'static str, &'static str) {
        match self {
            Self::Image => ("picture.png", "image/png"),
            Self::Video => ("clip.mp4", "video/mp4"),
            Self::Office => ("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            Self::Pdf => ("scan.pdf", "application/pdf"),
        }
    }

    /// Streams an object of `size` bytes to `path` (a GiB is never held).
    async fn write(self, path: &Path, size: u64) -> anyhow::Result<()> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
            match self {
                Self::Image => samples::write_png(&mut out, size)?,
                Self::Video => samples::write_mp4(&mut out, size, 60_000, true)?,
                Self::Office => samples::write_docx(&mut out, size)?,
                Self::Pdf => samples::write_pdf(&mut out, size)?,
            }
            std::io::Write::flush(&mut out)?;
            Ok(())
        })
        .await?
    }
}

pub async fn run(stack: &Stack, bin_dir: &Path, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let owner = crate::api::new_user(&stack.api_url).await?.id.to_string();
    let smallest = scale.inspect_sizes.iter().copied().min().unwrap_or_default();
    let largest = scale.inspect_sizes.iter().copied().max().unwrap_or_default();
    for family in [Family::Image, Family::Video, Family::Office] {
        let small = place(stack, &owner, family, smallest).await?;
        let large = place(stack, &owner, family, largest).await?;
        for placed in [&small, &large] {
            if !placed.kept {
                bail!("the {} sample of {} was refused", family.label(), label(placed.size));
            }
        }
        // Alternated, so whatever else the machine does weighs on both alike.
        let (before_small, before_large) = (stack.s3_probe.reads_of(&small.key), stack.s3_probe.reads_of(&large.key));
        let (mut small_times, mut large_times) = (Vec::new(), Vec::new());
        for _ in 0..scale.inspect_runs {
            small_times.push(inspect_once(stack, &small).await?);
            large_times.push(inspect_once(stack, &large).await?);
        }
        let small_time = median(&mut small_times);
        for (placed, before, time) in [(&small, before_small, small_time), (&large, before_large, median(&mut large_times))] {
            let after = stack.s3_probe.reads_of(&placed.key);
            let runs = scale.inspect_runs as u64;
            let (reads, read) = (u64::from(after.requests - before.requests) / runs, (after.bytes - before.bytes) / runs);
            let within_read = read <= MAX_READ_BYTES && reads <= 3 && reads > 0;
            let is_large = placed.size == large.size;
            let ratio = is_large.then(|| time / small_time);
            let (target, met) = match ratio {
                Some(ratio) => {
                    (format!("≤ 3 reads, ≤ 1 MiB; ≤ {MAX_RATIO}× the {} time", label(smallest)), within_read && ratio <= MAX_RATIO)
                }
                None => ("≤ 3 reads, ≤ 1 MiB".into(), within_read),
            };
            report.add(Row {
                bench: format!("Inspection: {}, {} object", family.label(), label(placed.size)),
                ours: format!("{reads} reads, {:.1} KiB, {} to verdict", read as f64 / KIB as f64, ms(time)),
                reference: if is_large { format!("{} object: {}", label(smallest), ms(small_time)) } else { "—".into() },
                ratio,
                target,
                met: Some(met),
            });
        }
        for placed in [small, large] {
            let _ = stack.clients.s3().delete_object().bucket(&stack.bucket).key(&placed.key).send().await;
        }
    }
    // PDF is read whole: its time follows its size. Through inspect for a
    // small one; the scanner's rate and memory on the largest it scans.
    let pdf = place(stack, &owner, Family::Pdf, smallest).await?;
    let before = stack.s3_probe.reads_of(&pdf.key);
    let mut times = Vec::new();
    for _ in 0..scale.inspect_runs {
        times.push(inspect_once(stack, &pdf).await?);
    }
    let after = stack.s3_probe.reads_of(&pdf.key);
    let runs = scale.inspect_runs as u64;
    let (reads, read) = (u64::from(after.requests - before.requests) / runs, (after.bytes - before.bytes) / runs);
    report.add(Row {
        bench: format!("Inspection: PDF, {} object", label(smallest)),
        ours: format!("{reads} GETs, {:.1} KiB, {} to verdict", read as f64 / KIB as f64, ms(median(&mut times))),
        reference: "—".into(),
        ratio: None,
        target: "kept; each byte read once, as a stream".into(),
        met: Some(pdf.kept && read == pdf.size),
    });
    let _ = stack.clients.s3().delete_object().bucket(&stack.bucket).key(&pdf.key).send().await;
    let scan_size = largest.min(256 * MIB);
    for (shape, syntax_only) in [("shaped like a scan", false), ("all syntax, no streams", true)] {
        let path = crate::scratch_dir().join("scan.pdf");
        let target = path.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&target)?);
            if syntax_only {
                samples::write_pdf_syntax(&mut out, scan_size)?;
            } else {
                samples::write_pdf(&mut out, scan_size)?;
            }
            std::io::Write::flush(&mut out)?;
            Ok(())
        })
        .await??;
        let size = tokio::fs::metadata(&path).await?.len();
        let output = tokio::process::Command::new(bin_dir.join("pdf-scan")).arg(&path).output().await.context("running pdf-scan")?;
        let _ = tokio::fs::remove_file(&path).await;
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [scan, read, rss, verdict] = fields[..] else { bail!("pdf-scan said {text:?} ({})", String::from_utf8_lossy(&output.stderr)) };
        let (scan, read, rss_mib): (f64, f64, f64) = (scan.parse()?, read.parse()?, rss.parse::<f64>()? / 1024.0);
        let mb = size as f64 / 1e6;
        report.add(Row {
            bench: format!("PDF scan: {} file {shape}, one core", label(size)),
            ours: format!("{:.0} MB/s, peak RSS {rss_mib:.1} MiB ({verdict})", mb / scan),
            reference: format!("plain read of the file: {:.0} MB/s", mb / read),
            ratio: Some(read / scan),
            target: format!("≥ {PDF_MIN_MB_S:.0} MB/s, ≤ {PDF_MAX_RSS_MIB:.0} MiB"),
            met: Some(mb / scan >= PDF_MIN_MB_S && rss_mib <= PDF_MAX_RSS_MIB && verdict == "application/pdf"),
        });
    }
    Ok(())
}

fn label(size: u64) -> String {
    if size >= 1024 * MIB {
        format!("{} GiB", size / (1024 * MIB))
    } else if size >= MIB {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

/// An object put as an upload leaves it, and the S3 event of it.
struct Placed {
    key: String,
    size: u64,
    event: serde_json::Value,
    /// Whether the inspection its own event set going kept it.
    kept: bool,
}

/// Puts an object of about `size` bytes of `family` as an upload would
/// leave it, and waits for the inspection its event sets going.
async fn place(stack: &Stack, owner: &str, family: Family, size: u64) -> anyhow::Result<Placed> {
    let file_id = uuid::Uuid::new_v4().to_string();
    let (name, content_type) = family.name_and_type();
    let key = format!("uploads/{owner}/{file_id}/{name}");
    let path = crate::scratch_dir().join(format!("inspect-{size}-{name}"));
    family.write(&path, size).await?;
    let size = tokio::fs::metadata(&path).await?.len();
    stack
        .clients
        .s3()
        .put_object()
        .bucket(&stack.bucket)
        .key(&key)
        .metadata(metadata::DECLARED_TYPE, content_type)
        .body(ByteStream::from_path(&path).await?)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sluice_shared::aws::describe(e)))
        .with_context(|| format!("putting {key}"))?;
    let _ = tokio::fs::remove_file(&path).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.s3_probe.reads_of(&key).requests == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = stack.clients.s3().head_object().bucket(&stack.bucket).key(&key).send().await.is_ok();
    let object = ObjectCreated {
        event_name: "ObjectCreated:Put",
        bucket: stack.bucket.clone(),
        key: key.clone(),
        size,
        etag: String::new(),
        version_id: None,
    };
    Ok(Placed { event: sluice_local::events::s3_event(&object), key, size, kept })
}

/// One call of the inspect handler on the object, as Lambda makes it; its time.
async fn inspect_once(stack: &Stack, placed: &Placed) -> anyhow::Result<f64> {
    let started = Instant::now();
    inspect::handle(&stack.inspect, LambdaEvent::new(placed.event.clone(), Context::default()))
        .await
        .map_err(|e| anyhow::anyhow!("inspect failed on {}: {e}", placed.key))?;
    Ok(started.elapsed().as_secs_f64())
}

/// Streams a structurally valid PNG of `size` bytes to `path`.
pub async fn write_png(path: &Path, size: u64) -> anyhow::Result<()> {
    Family::Image.write(path, size).await
}
