//! What the CLI keeps between runs, in the user's config folder (or
//! SLUICE_CONFIG_DIR): the signed-in session, readable by the user alone,
//! and one small file per unfinished upload, so running the same command
//! again resumes it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub fn config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let base = dirs::config_dir().context("no config folder for this user; set SLUICE_CONFIG_DIR")?;
    Ok(base.join("sluice"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub api: String,
    pub email: String,
    pub token: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn credentials_path() -> Result<PathBuf> {
    Ok(config_dir()?.join("credentials.json"))
}

/// Written with mode 0600 from the start, never readable by others even briefly.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).with_context(|| format!("writing {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn save_credentials(credentials: &Credentials) -> Result<()> {
    write_private(&credentials_path()?, &serde_json::to_vec_pretty(credentials)?)
}

pub fn load_credentials() -> Result<Option<Credentials>> {
    let path = credentials_path()?;
    match std::fs::read(&path) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged; run `sluice login`", path.display()))?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// An upload in progress, found again by the file's path, size and mtime:
/// a file changed since is a new upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resumable {
    pub file_id: String,
    pub path: PathBuf,
    pub size: u64,
    pub api: String,
}

#[derive(Clone)]
pub struct ResumeKey(String);

impl ResumeKey {
    pub fn of(api: &str, path: &Path, metadata: &std::fs::Metadata) -> Result<Self> {
        let canonical = path.canonicalize().with_context(|| format!("reading {}", path.display()))?;
        let mtime = metadata.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
        let mut hash = Sha256::new();
        hash.update(api.as_bytes());
        hash.update([0]);
        hash.update(canonical.as_os_str().as_encoded_bytes());
        hash.update([0]);
        hash.update(metadata.len().to_le_bytes());
        hash.update(mtime.as_nanos().to_le_bytes());
        let hex: String = hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
        Ok(Self(hex))
    }

    fn path(&self) -> Result<PathBuf> {
        Ok(config_dir()?.join("uploads").join(format!("{}.json", self.0)))
    }

    pub fn load(&self) -> Result<Option<Resumable>> {
        match std::fs::read(self.path()?) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn save(&self, state: &Resumable) -> Result<()> {
        write_private(&self.path()?, &serde_json::to_vec_pretty(state)?)
    }

    pub fn forget(&self) -> Result<()> {
        match std::fs::remove_file(self.path()?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
