use crate::cmd::CmdSpec;
pub static COMMANDS: &[CmdSpec] = &[];
