//! Where a run trains: the browser's WebGPU adapter or the CPU, and why.

use std::cell::RefCell;

use hafrm::device::{Backend, Device};
use wasm_bindgen::prelude::*;

use crate::browser::{adapter_label, AdapterProbe, has_webgpu, probe_webgpu_adapter};
use crate::protocol::BackendBadge;
use crate::settings::BackendPreference;

thread_local! {
    /// The WebGPU backend, initialised once per worker (a wgpu runtime cannot be set up twice).
    static WEBGPU: RefCell<Option<Result<Backend, String>>> = const { RefCell::new(None) };
}

/// Burn's WebGPU kernels may read the subgroup size, which WGSL allows only on a device
/// created with the "subgroups" feature; wgpu does not know that feature's web name and never
/// asks for it. Ask for it whenever the adapter has it, and note the adapter for the backend
/// badge (wgpu only passes on its description, often empty). Some of those kernels reduce
/// across a subgroup inside branches that Chromium's uniformity analysis cannot prove uniform
/// (naga, natively, accepts them; the engine's WebGPU test checks their results against the
/// CPU), so that one diagnostic is lifted.
pub(super) fn install_webgpu_shim() {
    if let Err(e) = js_sys::Function::new_no_args(include_str!("webgpu_shim.js")).call0(&JsValue::UNDEFINED) {
        web_sys::console::warn_2(&"hafrm worker: WebGPU shim failed".into(), &e);
    }
}

/// Where a run with `preference` trains: the browser's WebGPU adapter, or the CPU and why.
/// Auto: WebGPU on a GPU, the CPU otherwise (no WebGPU, no adapter, or only a software
/// fallback adapter, on which a step of the demo takes seconds where the CPU backend takes a
/// fraction of one). WebGPU: whatever adapter there is.
pub(super) async fn choose_backend(preference: BackendPreference) -> Result<AdapterProbe, String> {
    match preference {
        BackendPreference::Cpu => return Err("chosen under Backend".into()),
        _ if !has_webgpu() => return Err("this browser offers no WebGPU".into()),
        _ => {}
    }
    match probe_webgpu_adapter().await {
        Ok(None) => Err("the browser offers no WebGPU adapter".into()),
        Ok(Some(adapter)) if adapter.fallback && preference == BackendPreference::Auto => {
            let name = if adapter.label.is_empty() { "a software renderer".to_string() } else { adapter.label };
            Err(format!("the only WebGPU adapter is a software fallback ({name}), slower than the CPU backend; choose WebGPU under Backend to use it anyway"))
        }
        Ok(Some(adapter)) => Ok(adapter),
        Err(e) => Err(format!("asking for a WebGPU adapter failed: {e}")),
    }
}

/// The device to train on, its badge, and on WebGPU the largest buffer the adapter allows; or,
/// where the run goes to the CPU in a build without a CPU backend, why. `cpu_because`: the
/// reason the page already knows (`Event::CpuBuild`).
pub(super) async fn backend(preference: BackendPreference, cpu_because: Option<String>) -> Result<(Device, BackendBadge, Option<u64>), String> {
    let chosen = match cpu_because {
        Some(reason) => Err(reason),
        None => choose_backend(preference).await,
    };
    let probe = match chosen {
        Ok(probe) => probe,
        Err(note) => return on_cpu(note),
    };
    if WEBGPU.with(|w| w.borrow().is_none()) {
        let result = start_webgpu().await;
        WEBGPU.with(|w| *w.borrow_mut() = Some(result));
    }
    match WEBGPU.with(|w| w.borrow().clone()).expect("initialised above") {
        Ok(backend) => {
            let adapter = backend.adapter.expect("wgpu reports its adapter");
            let name = Some(adapter.name).filter(|n| !n.trim().is_empty()).or_else(adapter_label).unwrap_or_else(|| "unnamed adapter".into());
            let detail = if adapter.software { format!("{name} · software fallback adapter") } else { name };
            let note = match preference {
                BackendPreference::WebGpu => "chosen under Backend",
                _ => "the browser's GPU",
            };
            Ok((backend.device, BackendBadge { kind: "WebGPU".into(), detail, software: adapter.software, note: Some(note.into()) }, probe.max_buffer))
        }
        Err(e) if e.contains("No suitable graphics adapter") || e.contains("No adapter available") => {
            on_cpu("the browser offers no WebGPU adapter".into())
        }
        Err(e) => on_cpu(format!("WebGPU failed to start: {e}")),
    }
}

/// The CPU device and its badge, saying why the run is there.
#[cfg(feature = "cpu")]
pub(super) fn on_cpu(note: String) -> Result<(Device, BackendBadge, Option<u64>), String> {
    let badge = BackendBadge { kind: "CPU".into(), detail: "Burn flex, WebAssembly".into(), software: false, note: Some(note) };
    Ok((hafrm::device::cpu_device(), badge, None))
}

/// The WebGPU build has no CPU backend (the CPU-only build's is compiled for speed, and
/// leaving it out keeps this build's download small): the run goes to that build.
#[cfg(not(feature = "cpu"))]
pub(super) fn on_cpu(note: String) -> Result<(Device, BackendBadge, Option<u64>), String> {
    Err(note)
}

/// Burn's wgpu runtime on the browser's adapter.
#[cfg(feature = "webgpu")]
pub(super) async fn start_webgpu() -> Result<Backend, String> {
    hafrm::device::init_wgpu_async().await.map_err(|e| e.to_string())
}

/// The CPU-only build has no WebGPU backend; the page gives a run that asks for WebGPU to a
/// worker of the other build, so this answers only Auto finding a GPU the page did not see.
#[cfg(not(feature = "webgpu"))]
pub(super) async fn start_webgpu() -> Result<Backend, String> {
    Err("the page loaded its CPU-only build; choose WebGPU under Backend".into())
}
