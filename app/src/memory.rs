//! WebAssembly memory running out, told to the user. When the module's memory cannot grow any
//! more, Rust aborts: a trap, which in the worker rejects the promise that was polling the run,
//! and a worker's unhandled rejection reaches no one. The page went quiet with the run half
//! done. The allocator here notes the request that failed; `app/worker.js` catches the trap and
//! posts `stopped_message`, which names what ran out and what to change.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hafrm::data::formats::human_bytes;
use wasm_bindgen::JsCast;

/// The most a page's WebAssembly memory holds (32-bit addresses).
pub const WASM_MEMORY: u64 = 4 << 30;

/// The size of the last allocation the system allocator refused; 0 while none was.
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, noting the size of a request it cannot serve (it asks the module's
/// memory to grow, and that fails at the browser's limit). Noting it allocates nothing, so it
/// is safe to do inside the allocator.
struct NotingAllocator;

// SAFETY: every call is passed on to `System` unchanged; only a null result is noted.
unsafe impl GlobalAlloc for NotingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        noted(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        noted(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        noted(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn noted(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() {
        REFUSED.store(size, Ordering::Relaxed);
    }
    ptr
}

#[global_allocator]
static ALLOCATOR: NotingAllocator = NotingAllocator;

/// The bytes the module's memory has grown to (read as a JavaScript number: at 4 GiB it no
/// longer fits a `u32`).
fn memory_size() -> u64 {
    let buffer = wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>().buffer();
    js_sys::Reflect::get(&buffer, &"byteLength".into()).ok().and_then(|n| n.as_f64()).unwrap_or(0.0) as u64
}

/// What the page says when the worker's code stopped with `reason` (the trap's or the
/// exception's text): out of memory when an allocation was refused, with what to change.
pub fn stopped_message(reason: &str) -> String {
    match REFUSED.load(Ordering::Relaxed) {
        0 => format!("the training worker stopped: {reason}"),
        refused => format!(
            "out of memory: the training worker could not get {} more, with {} in use (a page's WebAssembly holds at most {}, and the browser may allow less). \
             Try fewer pairs a step, a shorter max length, or, for a pretrained model, LoRA or frozen layers. ({reason})",
            human_bytes(refused as u64),
            human_bytes(memory_size()),
            human_bytes(WASM_MEMORY)
        ),
    }
}
