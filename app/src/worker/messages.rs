//! The worker's side of the messages: which run the page wants, the commands it queued for
//! that run, and posting events back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use wasm_bindgen::JsCast;

use crate::protocol::{Command, Envelope, Event};

thread_local! {
    /// The run the page wants; older runs stop at their next turn.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    static COMMANDS: RefCell<VecDeque<Command>> = const { RefCell::new(VecDeque::new()) };
}

pub(super) fn scope() -> web_sys::DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub(super) fn post(generation: u64, lane: usize, event: Event) {
    let text = serde_json::to_string(&Envelope { generation, lane, event }).expect("events serialise");
    if let Err(e) = scope().post_message(&text.into()) {
        web_sys::console::error_2(&"hafrm worker: could not post an event".into(), &e);
    }
}

/// Makes `generation` the run the page wants, dropping the commands queued for another.
pub(super) fn set_current(generation: u64) {
    CURRENT.with(|c| c.set(generation));
    COMMANDS.with(|c| c.borrow_mut().clear());
}

/// The run the page wants.
pub(super) fn current() -> u64 {
    CURRENT.with(Cell::get)
}

/// Queues `command` for run `generation` if it is still the one the page wants.
pub(super) fn queue_command(generation: u64, command: Command) {
    if is_current(generation) {
        COMMANDS.with(|c| c.borrow_mut().push_back(command));
    }
}

pub(super) fn is_current(generation: u64) -> bool {
    CURRENT.with(Cell::get) == generation
}

pub(super) fn take_commands() -> Vec<Command> {
    COMMANDS.with(|c| c.borrow_mut().drain(..).collect())
}
