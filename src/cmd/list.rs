//! Placeholder: filled in by the data-structures issue.
use crate::cmd::CmdSpec;
pub static COMMANDS: &[CmdSpec] = &[];
