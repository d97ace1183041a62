//! S3's bucket versioning, for the local S3 (s3s-fs has none): in a bucket
//! whose versioning is enabled, every PUT and completed multipart upload is
//! a new version with its own id, readable and deletable by that id while
//! later PUTs replace the current one. Each version is a hard link to the
//! file s3s-fs wrote (s3s-fs replaces objects by rename, so the link keeps
//! the old bytes), with copies of its metadata files. A delete without a
//! version id leaves a delete marker: the key reads as missing, its
//! versions stay. Deleting the current version by id makes the previous
//! one current, as S3 does. The index survives restarts (`make dev`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

const INDEX: &str = ".sluice-versions.json";

#[derive(Default, Serialize, Deserialize)]
struct Index {
    /// Buckets whose versioning is enabled.
    enabled: BTreeSet<String>,
    /// `bucket/key` → its versions.
    keys: HashMap<String, KeyVersions>,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct KeyVersions {
    /// Oldest first.
    ids: Vec<String>,
    /// None while a delete marker is on top.
    current: Option<String>,
}

pub struct Versions {
    /// s3s-fs's root: buckets are folders in it, metadata files beside them.
    root: PathBuf,
    index: Index,
}

/// What a delete by version id did.
pub struct Removed {
    /// It was the current version: the key now reads as this one (or as
    /// missing when None).
    pub was_current: bool,
    pub now_current: Option<String>,
}

impl Versions {
    pub fn open(root: &Path) -> Self {
        let index = std::fs::read(root.join(INDEX)).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        Self { root: root.to_path_buf(), index }
    }

    fn save(&self) {
        if let Ok(bytes) = serde_json::to_vec(&self.index) {
            let tmp = self.root.join(format!("{INDEX}.tmp"));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(tmp, self.root.join(INDEX));
            }
        }
    }

    pub fn set_enabled(&mut self, bucket: &str, enabled: bool) {
        if enabled {
            self.index.enabled.insert(bucket.to_string());
        } else {
            self.index.enabled.remove(bucket);
        }
        self.save();
    }

    pub fn is_enabled(&self, bucket: &str) -> bool {
        self.index.enabled.contains(bucket)
    }

    fn entry(&self, bucket: &str, key: &str) -> Option<&KeyVersions> {
        self.index.keys.get(&format!("{bucket}/{key}"))
    }

    pub fn current(&self, bucket: &str, key: &str) -> Option<String> {
        self.entry(bucket, key).and_then(|v| v.current.clone())
    }

    pub fn has(&self, bucket: &str, key: &str, version_id: &str) -> bool {
        self.entry(bucket, key).is_some_and(|v| v.ids.iter().any(|id| id == version_id))
    }

    /// Records the object s3s-fs now holds at `stored_key` as a new version
    /// of `key`; answers its id.
    pub fn snapshot(&mut self, bucket: &str, key: &str, stored_key: &str, version_key: impl Fn(&str) -> String) -> std::io::Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.link(bucket, stored_key, &version_key(&id))?;
        let versions = self.index.keys.entry(format!("{bucket}/{key}")).or_default();
        versions.ids.push(id.clone());
        versions.current = Some(id.clone());
        self.save();
        Ok(id)
    }

    /// A delete without a version id: a delete marker goes on top.
    pub fn mark_deleted(&mut self, bucket: &str, key: &str) {
        if let Some(versions) = self.index.keys.get_mut(&format!("{bucket}/{key}")) {
            versions.current = None;
            self.save();
        }
    }

    /// Removes one version's files; when it was the current one, the
    /// previous version (if any) is linked back as the current object.
    pub fn remove(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: &str,
        stored_key: &str,
        version_key: impl Fn(&str) -> String,
    ) -> std::io::Result<Removed> {
        let name = format!("{bucket}/{key}");
        let Some(mut versions) = self.index.keys.get(&name).cloned() else {
            return Ok(Removed { was_current: false, now_current: None });
        };
        self.unlink(bucket, &version_key(version_id))?;
        versions.ids.retain(|id| id != version_id);
        let was_current = versions.current.as_deref() == Some(version_id);
        if was_current {
            self.unlink(bucket, stored_key)?;
            versions.current = versions.ids.last().cloned();
            if let Some(previous) = &versions.current {
                self.link(bucket, &version_key(previous), stored_key)?;
            }
        }
        let now_current = versions.current.clone();
        if versions.ids.is_empty() {
            self.index.keys.remove(&name);
        } else {
            self.index.keys.insert(name, versions);
        }
        self.save();
        Ok(Removed { was_current, now_current })
    }

    /// The object file and s3s-fs's two metadata files of a stored key.
    fn files(&self, bucket: &str, stored_key: &str) -> [PathBuf; 3] {
        let (b, k) = (URL_SAFE_NO_PAD.encode(bucket), URL_SAFE_NO_PAD.encode(stored_key));
        [
            self.root.join(bucket).join(stored_key),
            self.root.join(format!(".bucket-{b}.object-{k}.metadata.json")),
            self.root.join(format!(".bucket-{b}.object-{k}.internal.json")),
        ]
    }

    fn link(&self, bucket: &str, from: &str, to: &str) -> std::io::Result<()> {
        let [object, metadata, internal] = self.files(bucket, from);
        let [to_object, to_metadata, to_internal] = self.files(bucket, to);
        if let Some(dir) = to_object.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&to_object);
        std::fs::hard_link(object, to_object)?;
        for (from, to) in [(metadata, to_metadata), (internal, to_internal)] {
            if from.exists() {
                std::fs::copy(from, to)?;
            }
        }
        Ok(())
    }

    fn unlink(&self, bucket: &str, stored_key: &str) -> std::io::Result<()> {
        for file in self.files(bucket, stored_key) {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}
