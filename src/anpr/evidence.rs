//! Evidence for decided reads: the exact crop that was read and the frame it
//! came from, as JPEG files under `<data_dir>/evidence/<date>/`. Plates are
//! personal data, so day folders older than the retention period are deleted
//! by [`EvidenceStore::clean`] (run at start and hourly by the wiring).

use crate::events::Evidence;
use crate::ingest::Frame;
use crate::vision::image::RgbImage;
use chrono::{DateTime, NaiveDate, Utc};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

pub struct EvidenceStore {
    data_dir: PathBuf,
    retention_days: u32,
}

impl EvidenceStore {
    pub fn new(data_dir: &Path, retention_days: u32) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            retention_days,
        }
    }

    fn day_dir(&self, day: NaiveDate) -> PathBuf {
        self.data_dir
            .join("evidence")
            .join(day.format("%Y-%m-%d").to_string())
    }

    /// Writes the crop and the frame; returns their paths relative to the data dir.
    pub fn save(
        &self,
        id: &str,
        at: DateTime<Utc>,
        crop: &RgbImage,
        frame: &Frame,
    ) -> Result<Evidence, EvidenceError> {
        let dir = self.day_dir(at.date_naive());
        let err = |path: &Path, reason: String| EvidenceError::Write {
            path: path.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(&dir).map_err(|e| err(&dir, e.to_string()))?;
        let crop_path = dir.join(format!("{id}-crop.jpg"));
        let frame_path = dir.join(format!("{id}-frame.jpg"));
        let crop_img =
            image::RgbImage::from_raw(crop.width as u32, crop.height as u32, crop.data.clone())
                .ok_or_else(|| err(&crop_path, "crop buffer size".into()))?;
        crop_img
            .save(&crop_path)
            .map_err(|e| err(&crop_path, e.to_string()))?;
        frame
            .to_rgb_image()
            .save(&frame_path)
            .map_err(|e| err(&frame_path, e.to_string()))?;
        let rel = |p: &Path| {
            p.strip_prefix(&self.data_dir)
                .unwrap_or(p)
                .display()
                .to_string()
        };
        Ok(Evidence {
            crop: Some(rel(&crop_path)),
            frame: Some(rel(&frame_path)),
        })
    }

    /// Deletes day folders older than the retention period; returns how many.
    pub fn clean(&self, now: DateTime<Utc>) -> usize {
        let cutoff = now.date_naive() - chrono::Days::new(self.retention_days as u64);
        let Ok(entries) = std::fs::read_dir(self.data_dir.join("evidence")) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(day) = NaiveDate::parse_from_str(&name, "%Y-%m-%d") {
                if day < cutoff && std::fs::remove_dir_all(e.path()).is_ok() {
                    removed += 1;
                    tracing::info!(day = %name, "evidence past retention deleted");
                }
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn saves_jpegs_and_enforces_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::new(dir.path(), 30);
        let frame = Frame {
            camera: Arc::from("c"),
            seq: 0,
            captured_at: Utc::now(),
            pts_ms: 0,
            width: 4,
            height: 2,
            stride: 16,
            data: Arc::new(vec![200; 16 * 2]),
        };
        let crop = RgbImage::filled(3, 2, [10, 20, 30]);
        let old = Utc::now() - chrono::Duration::days(40);
        let e = store.save("a", old, &crop, &frame).unwrap();
        let e2 = store.save("b", Utc::now(), &crop, &frame).unwrap();
        assert!(dir.path().join(e.crop.as_ref().unwrap()).is_file());
        let img = image::open(dir.path().join(e2.frame.as_ref().unwrap())).unwrap();
        assert_eq!((img.width(), img.height()), (4, 2));
        assert_eq!(store.clean(Utc::now()), 1);
        assert!(!dir.path().join(e.crop.unwrap()).exists());
        assert!(dir.path().join(e2.crop.unwrap()).exists());
    }
}
