//! Browser glue: yielding to the event loop, clocks, downloads, the address bar, and what a
//! panic shows. The timers and clocks work in the page and in the worker alike.

use hafrm::data::formats::human_bytes;
use crate::memory::WASM_MEMORY;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

fn window() -> web_sys::Window {
    web_sys::window().expect("the page runs in a window")
}

/// A property of the global object (the window, or the worker's scope).
fn global_property(name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(&js_sys::global(), &name.into()).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// Gives the browser a turn (input, rendering) before the next piece of work: a macrotask,
/// so pending events and a frame can run first.
pub async fn yield_to_browser() {
    sleep_ms(0).await;
}

/// Resolves once the page has painted a frame (a timeout set in an animation frame runs after
/// that frame's paint), or after 100 ms where no frame comes (a hidden tab): what comes next
/// does not hold up what the page just showed.
pub async fn after_next_paint() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let after_frame = resolve.clone();
        let on_frame = Closure::once_into_js(move || {
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&after_frame, 0);
        });
        let _ = window().request_animation_frame(on_frame.unchecked_ref());
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 100);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Resolves after `ms` milliseconds.
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(set_timeout) = global_property("setTimeout").and_then(|f| f.dyn_into::<js_sys::Function>().ok()) {
            let _ = set_timeout.call2(&js_sys::global(), &resolve, &ms.into());
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Milliseconds since the page (or the worker) started.
pub fn now_ms() -> f64 {
    global_property("performance").map(|p| p.unchecked_into::<web_sys::Performance>().now()).unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// The query string of the page's address.
pub fn query() -> String {
    window().location().search().unwrap_or_default()
}

/// Replaces the address's query string without reloading or adding a history entry.
pub fn set_query(query: &str) {
    let location = window().location();
    let path = location.pathname().unwrap_or_else(|_| "/".into());
    let url = format!("{path}{query}");
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url));
    }
}

/// Whether the browser has the WebGPU API at all.
pub fn has_webgpu() -> bool {
    global_property("navigator").and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok()).is_some_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

/// The adapter WebGPU would give: whether it is a software fallback (SwiftShader, which
/// Chromium offers on a machine without a GPU), what it says it is, and the largest buffer a
/// kernel can use on it (the smaller of `maxStorageBufferBindingSize` and `maxBufferSize`;
/// burn asks for the adapter's own limits). Asking for an adapter creates no device, so the
/// CPU can still be chosen at no cost.
pub struct AdapterProbe {
    pub fallback: bool,
    pub label: String,
    pub max_buffer: Option<u64>,
}

const PROBE_ADAPTER: &str = r#"
return (async () => {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return null;
  const info = adapter.info ?? {};
  const label = [info.description, info.vendor, info.architecture].filter(Boolean).join(" ");
  const maxBuffer = Math.min(adapter.limits.maxStorageBufferBindingSize, adapter.limits.maxBufferSize);
  return { fallback: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter), label, maxBuffer };
})();
"#;

/// `None` when the browser offers no adapter; an error when asking failed.
pub async fn probe_webgpu_adapter() -> Result<Option<AdapterProbe>, String> {
    let promise = js_sys::Function::new_no_args(PROBE_ADAPTER).call0(&JsValue::UNDEFINED).map_err(describe)?;
    let probe = wasm_bindgen_futures::JsFuture::from(promise.unchecked_into::<js_sys::Promise>()).await.map_err(describe)?;
    if probe.is_null() || probe.is_undefined() {
        return Ok(None);
    }
    let field = |name: &str| js_sys::Reflect::get(&probe, &name.into()).ok();
    Ok(Some(AdapterProbe {
        fallback: field("fallback").and_then(|v| v.as_bool()).unwrap_or(false),
        label: field("label").and_then(|v| v.as_string()).unwrap_or_default(),
        max_buffer: field("maxBuffer").and_then(|v| v.as_f64()).map(|bytes| bytes as u64),
    }))
}

/// An in-memory blob URL holding `bytes` (the data stays in the browser).
pub fn blob_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(describe)?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(describe)
}

/// Saves what `url` holds as a file named `name`, through a download link.
pub fn save_url(name: &str, url: &str) -> Result<(), String> {
    let document = window().document().expect("a document");
    let link: web_sys::HtmlAnchorElement = document.create_element("a").map_err(describe)?.unchecked_into();
    link.set_href(url);
    link.set_download(name);
    link.click();
    Ok(())
}

/// A request between the page and the worker with files alongside: the JSON text alone, or an
/// object `{ request, files }` (files travel as handles; their bytes are read where they are
/// used). `None` for anything else.
pub fn request_with_files(data: &JsValue) -> Option<(String, Vec<web_sys::File>)> {
    if let Some(text) = data.as_string() {
        return Some((text, Vec::new()));
    }
    let text = js_sys::Reflect::get(data, &"request".into()).ok()?.as_string()?;
    let files = js_sys::Reflect::get(data, &"files".into()).ok()?.dyn_into::<js_sys::Array>().ok()?;
    Some((text, files.iter().filter_map(|file| file.dyn_into::<web_sys::File>().ok()).collect()))
}

/// The message that sends `text` with `files` to the worker (`request_with_files`).
pub fn message_with_files(text: &str, files: &[web_sys::File]) -> JsValue {
    if files.is_empty() {
        return text.into();
    }
    let message = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&message, &"request".into(), &text.into());
    let _ = js_sys::Reflect::set(&message, &"files".into(), &files.iter().collect::<js_sys::Array>());
    message.into()
}

/// The bytes of a file the user picked; a file over `limit` bytes is refused before it is read.
pub async fn read_bytes(file: &web_sys::File, limit: u64) -> Result<Vec<u8>, String> {
    let size = file.size();
    if size > limit as f64 {
        return Err(format!(
            "{}: {} is over the {} limit for a file opened in the page",
            file.name(),
            human_bytes(size as u64),
            human_bytes(limit)
        ));
    }
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await.map_err(describe)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// A model file the user picked, read range by range as the engine takes its tensors
/// (`FileReaderSync`, which only a worker has), so that the file itself is never held whole in
/// the worker's memory.
pub struct PickedFile {
    file: web_sys::File,
    size: usize,
}

impl PickedFile {
    /// `file`, refused when it is too large for a page to address (32-bit WebAssembly).
    pub fn new(file: web_sys::File) -> Result<Self, String> {
        let size = file.size();
        if size >= WASM_MEMORY as f64 {
            return Err(format!(
                "{}: {} is over the {} a page's WebAssembly can address",
                file.name(),
                human_bytes(size as u64),
                human_bytes(WASM_MEMORY)
            ));
        }
        Ok(PickedFile { file, size: size as usize })
    }
}

impl hafrm::formats::ReadRange for PickedFile {
    fn size(&self) -> usize {
        self.size
    }

    fn read_range(&self, start: usize, end: usize) -> Result<Vec<u8>, String> {
        let part = self.file.slice_with_f64_and_f64(start as f64, end as f64).map_err(describe)?;
        let buffer = web_sys::FileReaderSync::new().and_then(|reader| reader.read_as_array_buffer(&part)).map_err(describe)?;
        Ok(js_sys::Uint8Array::new(&buffer).to_vec())
    }
}

pub fn describe(value: JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// Logs the page's panics to the console and shows them (`show_fatal`).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        show_fatal(&info.to_string());
    }));
}

/// Removes the element with this id, if the page has it.
pub fn remove_element(id: &str) {
    if let Some(element) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(id)) {
        element.remove();
    }
}

/// Since a panic stops the engine's code for good, shows what happened on the page with a way
/// forward: the same settings on the CPU backend. Shown once; later failures are consequences.
pub fn show_fatal(message: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Some(body) = document.body() else { return };
    let query = query();
    let cpu = if query.contains("backend=cpu") {
        None
    } else if query.is_empty() {
        Some("?backend=cpu".to_string())
    } else {
        Some(format!("{query}&backend=cpu"))
    };
    if document.get_element_by_id("fatal").is_some() {
        return;
    }
    let Ok(card) = document.create_element("div") else { return };
    card.set_id("fatal");
    card.set_attribute("role", "alert").ok();
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let action = match cpu {
        Some(href) => format!("<a class=\"button primary\" href=\"{}\">Restart on the CPU backend</a>", escape(&href)),
        None => "<a class=\"button primary\" href=\"\">Reload</a>".to_string(),
    };
    card.set_inner_html(&format!(
        "<h2>The run stopped</h2><p>The engine hit an error it cannot recover from{}:</p><pre>{}</pre>\
         <p>Your settings are in the address, so nothing you chose is lost.</p>{action}",
        if query.contains("backend=cpu") { "" } else { " (often the GPU: its device was lost or ran out of memory)" },
        escape(message)
    ));
    let _ = body.append_child(&card);
}

/// Calls `f` every `ms` milliseconds for the life of the page.
pub fn every(ms: i32, f: impl FnMut() + 'static) {
    let callback = Closure::<dyn FnMut()>::new(f);
    let _ = window().set_interval_with_callback_and_timeout_and_arguments_0(callback.as_ref().unchecked_ref(), ms);
    callback.forget();
}

/// The longest main-thread task seen so far (ms), as `index.html`'s long-task observer records it.
pub fn longest_task_ms() -> Option<f64> {
    global_property("hafrmLongestTask").and_then(|v| v.as_f64())
}

/// Sends the engine's and its libraries' warnings and errors to the browser console (wgpu
/// reports failed shader compilations only there).
struct ConsoleLog;

impl log::Log for ConsoleLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let line = format!("{}: {}", record.target(), record.args());
            match record.level() {
                log::Level::Error => web_sys::console::error_1(&line.into()),
                _ => web_sys::console::warn_1(&line.into()),
            }
        }
    }

    fn flush(&self) {}
}

pub fn install_console_log() {
    static LOGGER: ConsoleLog = ConsoleLog;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// The WebGPU adapter's vendor and architecture (e.g. `google swiftshader`), as the worker's
/// device hook noted them; wgpu passes on only the description, which browsers often leave
/// empty.
pub fn adapter_label() -> Option<String> {
    let adapter = global_property("hafrmAdapter").filter(|a| a.is_object())?;
    let field = |name: &str| js_sys::Reflect::get(&adapter, &name.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let label = [field("description"), field("vendor"), field("architecture")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!label.is_empty()).then_some(label)
}
