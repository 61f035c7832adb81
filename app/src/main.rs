//! HaF-RM Studio, the browser front end (Leptos, client-side rendered).
//!
//! Placeholder until the browser issue fills it: it links the engine the page will drive, so
//! the workspace already checks that the engine builds without its CLI.

fn main() {
    let presets = ["tiny", "small"];
    let encoder = hafrm::tokenizer::TextEncoder::builtin();
    for preset in presets {
        let config = hafrm::config::ModelConfig::preset(preset, encoder.vocab_size()).expect("known preset");
        println!("{preset}: d_model {}, {} layers", config.d_model, config.n_layers);
    }
}
