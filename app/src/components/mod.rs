//! The page's panels, one component per file. They read and change the run through the
//! `Studio` and `SettingsState` that `App` provides as context.

pub mod backbone_picker;
pub mod backend_badge;
pub mod charts_panel;
pub mod data_upload;
pub mod number_field;
pub mod own_text;
pub mod race;
pub mod run_controls;
pub mod status;
pub mod token_panel;
pub mod tokens;
