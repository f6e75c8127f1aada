//! What a verifier knows of a folder's SRS: checked against a ceremony file it holds, or
//! what setup recorded.

use std::path::Path;

use zkinfer_circuits::artifacts::{files, in_dir, read_json, srs_note, KeysInfo, KzgVerifierKey};
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_circuits::srs_file::{self, SrsFileInfo};

use crate::VerifyError;

/// What is known of the SRS a proof was checked with.
#[derive(Clone, Debug)]
pub enum SrsCheck {
    /// The folder's points are this ceremony file's.
    Matches {
        /// The file given.
        path: String,
        /// What it is.
        info: SrsFileInfo,
    },
    /// Not checked against a file: what is known without one.
    Unchecked(String),
}

impl std::fmt::Display for SrsCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SrsCheck::Matches { path, info } => {
                write!(f, "matches {path} (sha256 {}", info.sha256)?;
                match &info.recognised {
                    Some(name) => write!(f, ", recognised as {name})"),
                    None => write!(f, ", not a ceremony file zkinfer knows)"),
                }
            }
            SrsCheck::Unchecked(note) => f.write_str(note),
        }
    }
}

/// What is known of the folder's SRS: checked against a ceremony file when one is given
/// (an error if they differ), else what the folder's keys record.
pub fn srs_check(
    dir: &Path,
    folder: &VerifierFolder,
    ceremony: Option<&Path>,
) -> Result<SrsCheck, VerifyError> {
    match ceremony {
        Some(path) => check_srs(
            &srs_file::choose(path, folder.settings.plan.k)?,
            &folder.kzg,
        ),
        None => {
            let recorded: Option<KeysInfo> = read_json(&in_dir(dir, files::KEYS)).ok();
            Ok(SrsCheck::Unchecked(srs_note(
                recorded.as_ref().map(|k| &k.srs),
                &folder.kzg,
            )))
        }
    }
}

/// The folder's SRS points must be the ceremony file's (any k: every file of one ceremony
/// has the same g, g2 and s·g2).
fn check_srs(path: &Path, kzg: &KzgVerifierKey) -> Result<SrsCheck, VerifyError> {
    let (info, points) = srs_file::read(path, None)?;
    if (points.g[0], points.g2, points.s_g2) != (kzg.g, kzg.g2, kzg.s_g2) {
        return Err(VerifyError::Srs(format!(
            "the folder's SRS points are not those of {} (its s·g2 differs): the proof rests on another setup",
            path.display()
        )));
    }
    Ok(SrsCheck::Matches {
        path: path.display().to_string(),
        info,
    })
}
