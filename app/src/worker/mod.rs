//! The worker that owns the engine's sessions, so that training never blocks the page: it sets
//! a run up (or a race: one session per method, on the same data and seed), trains it step by
//! step, answers the page's commands between steps, and reports everything the page shows as
//! events. `messages.rs` talks to the page, `backbone.rs` inspects a model the user opened,
//! `setup.rs` sets a run up, `drive.rs` trains it, `backend.rs` chooses where.

mod backbone;
mod backend;
mod drive;
mod messages;
mod setup;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::protocol::{Event, Phase, Request};

use backbone::inspect;
use backend::install_webgpu_shim;
use messages::{current, is_current, post, queue_command, scope, set_current};
use setup::run;

/// The worker's entry point: listens to the page.
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        post(current(), 0, Event::Fatal(info.to_string()));
    }));
    crate::browser::install_console_log();
    install_webgpu_shim();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|message: web_sys::MessageEvent| {
        let Some((text, files)) = crate::browser::request_with_files(&message.data()) else { return };
        match serde_json::from_str::<Request>(&text) {
            Ok(Request::Launch { generation, settings, upload, cpu_because }) => {
                set_current(generation);
                spawn_local(async move {
                    if let Err(message) = run(settings, upload, files, cpu_because, generation).await
                        && is_current(generation)
                    {
                        post(generation, 0, Event::Busy(false));
                        post(generation, 0, Event::Phase(Phase::Failed(message)));
                    }
                });
            }
            Ok(Request::Inspect { id, settings, upload }) => spawn_local(async move {
                let info = inspect(&settings, upload, &files).await;
                post(0, 0, Event::Backbone { id, info });
            }),
            Ok(Request::Command { generation, command }) => queue_command(generation, command),
            Err(e) => web_sys::console::error_1(&format!("hafrm worker: unreadable request: {e}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // A message that reaches a worker before it listens is dropped, so the page waits for this.
    post(0, 0, Event::Listening);
}
