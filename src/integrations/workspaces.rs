//! Workspaces: each organization's own file area for agent artifacts, a directory named by
//! its id under WORKSPACES_DIR. Paths inside it are relative and checked part by part:
//! no `..`, no absolute paths, no hidden or odd names, no symlinks followed, so one
//! tenant's path can never name another's file.

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

const MAX_PATH_CHARS: usize = 200;
const MAX_DEPTH: usize = 8;
const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Workspaces {
    root: PathBuf,
}

/// One file of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the workspace, `/`-separated.
    pub path: String,
    pub size: u64,
    pub modified_at: Option<DateTime<Utc>>,
}

/// Checks a workspace-relative path: 1–8 parts of letters, digits, `-`, `_` and `.`, none
/// starting with a dot.
pub fn checked_path(path: &str) -> AppResult<PathBuf> {
    let invalid = || {
        AppError::bad_input(
            "path",
            "a relative path of letters, digits, -, _ and . (no .., no leading dots)",
        )
    };
    if path.is_empty() || path.chars().count() > MAX_PATH_CHARS {
        return Err(invalid());
    }
    let mut checked = PathBuf::new();
    for component in Path::new(path).components() {
        let Component::Normal(part) = component else {
            return Err(invalid());
        };
        let part = part.to_str().ok_or_else(invalid)?;
        let plain = part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !plain || part.starts_with('.') {
            return Err(invalid());
        }
        checked.push(part);
    }
    if checked.components().count() == 0 || checked.components().count() > MAX_DEPTH {
        return Err(invalid());
    }
    Ok(checked)
}

impl Workspaces {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn dir(&self, organization: Uuid) -> PathBuf {
        self.root.join(organization.to_string())
    }

    /// Writes a file (replacing it), creating its directories.
    pub async fn write(&self, organization: Uuid, path: &str, contents: &[u8]) -> AppResult<()> {
        if contents.len() > MAX_FILE_BYTES {
            return Err(AppError::bad_input("contents", "files are at most 10 MiB"));
        }
        let relative = checked_path(path)?;
        let dir = self.dir(organization);
        let target = dir.join(&relative);
        refuse_symlinks(&dir, &relative).await?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(AppError::internal)?;
        }
        tokio::fs::write(&target, contents)
            .await
            .map_err(AppError::internal)
    }

    pub async fn read(&self, organization: Uuid, path: &str) -> AppResult<Vec<u8>> {
        let relative = checked_path(path)?;
        let dir = self.dir(organization);
        refuse_symlinks(&dir, &relative).await?;
        match tokio::fs::read(dir.join(relative)).await {
            Ok(contents) => Ok(contents),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(AppError::NotFound("file")),
            Err(error) => Err(AppError::internal(error)),
        }
    }

    /// Every file of the organization's workspace under `prefix` (all when empty), by path.
    pub async fn list(&self, organization: Uuid, prefix: &str) -> AppResult<Vec<FileEntry>> {
        let dir = self.dir(organization);
        let start = if prefix.is_empty() {
            dir.clone()
        } else {
            dir.join(checked_path(prefix)?)
        };
        let mut files = Vec::new();
        let mut pending = vec![start];
        while let Some(current) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&current).await {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(AppError::internal(error)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(AppError::internal)? {
                let kind = entry.file_type().await.map_err(AppError::internal)?;
                if kind.is_dir() {
                    pending.push(entry.path());
                } else if kind.is_file() {
                    let metadata = entry.metadata().await.map_err(AppError::internal)?;
                    let relative = entry
                        .path()
                        .strip_prefix(&dir)
                        .map_err(AppError::internal)?
                        .to_owned();
                    files.push(FileEntry {
                        path: relative
                            .components()
                            .filter_map(|part| part.as_os_str().to_str())
                            .collect::<Vec<_>>()
                            .join("/"),
                        size: metadata.len(),
                        modified_at: metadata.modified().ok().map(DateTime::<Utc>::from),
                    });
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Removes the organization's whole workspace (with the organization).
    pub async fn remove(&self, organization: Uuid) -> AppResult<()> {
        match tokio::fs::remove_dir_all(self.dir(organization)).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(AppError::internal(error)),
        }
    }
}

/// A symlink planted inside a workspace could point into another; none is followed.
async fn refuse_symlinks(dir: &Path, relative: &Path) -> AppResult<()> {
    let mut current = dir.to_path_buf();
    for part in relative.components() {
        current.push(part);
        match tokio::fs::symlink_metadata(&current).await {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(AppError::bad_input("path", "links are not followed"));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        for good in ["out.json", "jobs/0193/answer.md", "a-b_c.d/e"] {
            assert!(checked_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/../../b",
            "/etc/passwd",
            ".hidden",
            "a/.git/config",
            "a b",
            "a\\b",
            "x/./y/..",
            "a/b/c/d/e/f/g/h/i",
        ] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn organizations_never_see_each_others_files() {
        let root = std::env::temp_dir().join(format!("tenantql-ws-{}", Uuid::now_v7()));
        let workspaces = Workspaces::new(root.clone());
        let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
        workspaces.write(acme, "jobs/1/out.txt", b"acme").await.unwrap();
        assert_eq!(workspaces.read(acme, "jobs/1/out.txt").await.unwrap(), b"acme");
        assert!(matches!(
            workspaces.read(globex, "jobs/1/out.txt").await,
            Err(AppError::NotFound(_))
        ));
        assert!(workspaces.list(globex, "").await.unwrap().is_empty());
        assert_eq!(
            workspaces.list(acme, "jobs").await.unwrap()[0].path,
            "jobs/1/out.txt"
        );
        let escape = format!("../{acme}/jobs/1/out.txt");
        assert!(workspaces.read(globex, &escape).await.is_err());

        #[cfg(unix)]
        {
            let acme_dir = root.join(acme.to_string());
            std::fs::create_dir_all(root.join(globex.to_string())).unwrap();
            std::os::unix::fs::symlink(&acme_dir, root.join(globex.to_string()).join("link")).unwrap();
            assert!(workspaces.read(globex, "link/jobs/1/out.txt").await.is_err());
            assert!(workspaces.write(globex, "link/planted.txt", b"x").await.is_err());
        }

        workspaces.remove(acme).await.unwrap();
        assert!(workspaces.list(acme, "").await.unwrap().is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
