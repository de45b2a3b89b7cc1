//! Backups as files and words, below the operations that take them: the
//! policy a create asks for, the optional S3 repository's settings, and the
//! report read from what the sidecar and pgBackRest left on disk. The
//! operations (backup, restore, recovery) are `ops::backup`.

pub mod kept;
pub mod policy;
pub mod report;
pub mod s3;

pub use policy::{backup_label, backup_policy, BackupPolicy, Retention};
pub use report::*;
