//! Choosing where the engine runs: an NVIDIA GPU through CUDA (the `cuda` feature), a GPU
//! through wgpu, or the CPU (Burn's flex backend).

pub use burn::tensor::Device;
use serde::Serialize;

#[cfg(any(feature = "webgpu", not(target_family = "wasm")))]
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// CUDA when this build has it and a device answers, else a hardware GPU through wgpu,
    /// else the CPU.
    #[default]
    Auto,
    /// An NVIDIA GPU through CUDA (builds with the `cuda` feature).
    Cuda,
    /// wgpu on whatever adapter it finds, software ones (lavapipe) included.
    Wgpu,
    Cpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cuda" => Ok(Self::Cuda),
            "wgpu" => Ok(Self::Wgpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown backend `{other}` (known: auto, cuda, wgpu, cpu)")),
        }
    }
}

/// The GPU a run computes on: the adapter wgpu picked, or the CUDA device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdapterInfo {
    pub name: String,
    /// Discrete, integrated, virtual, or CPU (a software rasteriser such as lavapipe); for
    /// CUDA, what its kernels are compiled for (`ptx_sm90`).
    pub kind: String,
    /// The graphics API (Vulkan, Metal, DX12, WebGPU…), or `CUDA`.
    pub api: String,
    pub software: bool,
}

/// A device to compute on (without autodiff; training adds it), what it is, and why it was
/// chosen.
#[derive(Clone, Debug)]
pub struct Backend {
    pub device: Device,
    pub adapter: Option<AdapterInfo>,
    pub reason: String,
}

impl Backend {
    #[cfg(not(target_family = "wasm"))]
    pub fn cpu(reason: impl Into<String>) -> Self {
        Self { device: cpu_device(), adapter: None, reason: reason.into() }
    }

    /// One line for people: `cuda: NVIDIA H100 (ptx_sm90): …`, `wgpu: NVIDIA … (discrete
    /// GPU, Vulkan): asked for` or `cpu (flex): no GPU adapter found`.
    pub fn describe(&self) -> String {
        let what = match &self.adapter {
            Some(a) if a.api == CUDA => format!("cuda: {} ({})", a.name, a.kind),
            Some(a) => format!(
                "wgpu: {} ({}{}, {})",
                a.name,
                a.kind,
                if a.software { ", software" } else { "" },
                a.api
            ),
            None => "cpu (flex)".to_string(),
        };
        format!("{what}: {}", self.reason)
    }
}

/// `AdapterInfo::api` of a CUDA device.
const CUDA: &str = "CUDA";

/// The CPU device: Burn's flex backend.
#[cfg(any(feature = "cpu", not(target_family = "wasm")))]
pub fn cpu_device() -> Device {
    Device::flex()
}

/// Whether `device` (with or without autodiff) computes on the CPU.
#[cfg(any(feature = "cpu", not(target_family = "wasm")))]
pub fn is_cpu(device: &Device) -> bool {
    *device == cpu_device()
}

/// The page's WebGPU build has no CPU backend: none of its devices is the CPU.
#[cfg(not(any(feature = "cpu", not(target_family = "wasm"))))]
pub fn is_cpu(_device: &Device) -> bool {
    false
}

#[cfg(any(feature = "webgpu", not(target_family = "wasm")))]
fn adapter_info(info: &burn::tensor::wgpu::wgpu::AdapterInfo) -> AdapterInfo {
    use burn::tensor::wgpu::wgpu::DeviceType;
    let kind = match info.device_type {
        DeviceType::DiscreteGpu => "discrete GPU",
        DeviceType::IntegratedGpu => "integrated GPU",
        DeviceType::VirtualGpu => "virtual GPU",
        DeviceType::Cpu => "CPU adapter",
        DeviceType::Other => "other adapter",
    };
    AdapterInfo {
        name: info.name.clone(),
        kind: kind.to_string(),
        api: format!("{:?}", info.backend),
        software: info.device_type == DeviceType::Cpu,
    }
}

/// Initialises wgpu asynchronously on the default adapter: in a browser, the adapter WebGPU
/// offers (a software fallback adapter included, reported as such).
#[cfg(any(feature = "webgpu", not(target_family = "wasm")))]
pub async fn init_wgpu_async() -> Result<Backend> {
    let (device, setup) = Device::wgpu_options().init_with_setup_async().await.map_err(|e| Error::Backend(e.to_string()))?;
    Ok(Backend { device, adapter: Some(adapter_info(&setup.adapter.get_info())), reason: "the browser's WebGPU adapter".into() })
}

/// Initialises wgpu on the adapter `kind` selects, on `api`. Burn sets a device up once per
/// process (a second setup fails with "Service already initialized"), so a device asked for
/// again is the one set up before; the lock also keeps two threads from setting it up at once.
#[cfg(not(target_family = "wasm"))]
fn init_wgpu(kind: burn::tensor::DeviceKind, api: burn::tensor::wgpu::WgpuBackend, reason: &str) -> Result<Backend> {
    type Ready = Vec<((burn::tensor::DeviceKind, burn::tensor::wgpu::WgpuBackend), (Device, AdapterInfo))>;
    static READY: std::sync::Mutex<Ready> = std::sync::Mutex::new(Vec::new());
    let mut ready = READY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (kind.clone(), api);
    if let Some((_, (device, adapter))) = ready.iter().find(|(set_up, _)| *set_up == key) {
        return Ok(Backend { device: device.clone(), adapter: Some(adapter.clone()), reason: reason.into() });
    }
    let (device, setup) = Device::wgpu_options()
        .device_kind(kind)
        .graphics_api(api)
        .init_with_setup()
        .map_err(|e| Error::Backend(e.to_string()))?;
    let adapter = adapter_info(&setup.adapter.get_info());
    ready.push((key, (device.clone(), adapter.clone())));
    Ok(Backend { device, adapter: Some(adapter), reason: reason.into() })
}

/// The hardware GPUs on the native graphics APIs (Vulkan, Metal, DX12), found without
/// creating a device. OpenGL is left out: probing it opens a display connection, which on a
/// machine without one prints errors of its own (Wayland's `XDG_RUNTIME_DIR is invalid…`),
/// and Burn's kernels want one of the others anyway.
#[cfg(not(target_family = "wasm"))]
fn hardware_adapters() -> (Vec<burn::tensor::wgpu::wgpu::AdapterInfo>, Vec<String>) {
    use burn::tensor::wgpu::wgpu;
    let backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor { backends, ..wgpu::InstanceDescriptor::new_without_display_handle() });
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let (hardware, software): (Vec<_>, Vec<_>) = adapters
        .iter()
        .map(|a| a.get_info())
        .partition(|info| matches!(info.device_type, wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu));
    (hardware, software.into_iter().map(|info| info.name).collect())
}

/// The first CUDA device, or why there is none. The driver, NVRTC and the device's context
/// are looked for first, and one small kernel is compiled and run: Burn panics where one of
/// them fails, and a run should instead fall back (`Auto`) or say what is missing.
#[cfg(all(feature = "cuda", not(target_family = "wasm")))]
fn init_cuda(reason: &str) -> Result<Backend> {
    // SAFETY: each call only tries to open the library under its usual names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::Backend("no NVIDIA driver: libcuda.so could not be loaded".into()));
    }
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::Backend(
            "NVRTC, which compiles the CUDA kernels, could not be loaded (libnvrtc.so): install the CUDA toolkit, \
             or `pip install nvidia-cuda-nvrtc-cu12` and add its lib folder to LD_LIBRARY_PATH"
                .into(),
        ));
    }
    let Some(device) = Device::enumerate(burn::tensor::DeviceType::Cuda).into_vec().into_iter().next() else {
        return Err(Error::Backend("the NVIDIA driver loaded but reports no CUDA device".into()));
    };
    cudarc::driver::CudaContext::new(0).map_err(|e| Error::Backend(format!("the CUDA device could not be opened: {e}")))?;
    // An NVRTC newer than the driver, say, compiles kernels the driver then refuses to load.
    let ran = without_panic_message(|| {
        let sum = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device).add_scalar(1.0);
        (sum.into_data().try_to_vec::<f32>().ok(), device.identity())
    })
    .map_err(|why| Error::Backend(format!("CUDA could not run a kernel: {why}")))?;
    let identity = match ran {
        (Some(sum), identity) if sum == [2.0, 3.0] => identity,
        (sum, _) => return Err(Error::Backend(format!("CUDA computed 1 + [1, 2] as {sum:?}"))),
    };
    let (name, kind) = identity.map(|i| (i.name, i.fingerprint)).unwrap_or_else(|| ("CUDA device 0".into(), "GPU".into()));
    Ok(Backend { device, adapter: Some(AdapterInfo { name, kind, api: CUDA.into(), software: false }), reason: reason.into() })
}

/// Runs `f`, turning a panic into its message, without printing it.
#[cfg(all(feature = "cuda", not(target_family = "wasm")))]
fn without_panic_message<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Why this build cannot use CUDA.
#[cfg(all(not(feature = "cuda"), not(target_family = "wasm")))]
fn init_cuda(_reason: &str) -> Result<Backend> {
    Err(Error::Backend(
        "this hafrm was built without CUDA: build it with `cargo build --release -p hafrm-cli --features cuda`".into(),
    ))
}

/// Picks the backend `choice` asks for. `Auto` takes CUDA where this build has it and a device
/// answers, then a hardware GPU through wgpu, and otherwise the CPU, printing nothing while it
/// looks.
#[cfg(not(target_family = "wasm"))]
pub fn select_backend(choice: BackendChoice) -> Result<Backend> {
    use burn::tensor::DeviceKind;
    use burn::tensor::wgpu::{WgpuBackend, wgpu};
    match choice {
        BackendChoice::Cpu => Ok(Backend::cpu("asked for (--backend cpu)")),
        BackendChoice::Cuda => init_cuda("asked for (--backend cuda)").map_err(|e| Error::Backend(format!("--backend cuda: {}", backend_message(e)))),
        BackendChoice::Wgpu => init_wgpu(DeviceKind::DefaultDevice, WgpuBackend::Auto, "asked for (--backend wgpu)")
            .map_err(|e| Error::Backend(format!("no wgpu adapter: {e}"))),
        BackendChoice::Auto => {
            let cuda = match init_cuda("the NVIDIA GPU found (--backend wgpu or cpu to use another)") {
                Ok(backend) => return Ok(backend),
                // A build without CUDA says nothing about it.
                Err(_) if !cfg!(feature = "cuda") => None,
                Err(e) => Some(backend_message(e)),
            };
            let (hardware, software) = hardware_adapters();
            // Discrete before integrated, as the order of `DeviceKind`s below.
            for (kind, device_type) in [(DeviceKind::DiscreteGpu(0), wgpu::DeviceType::DiscreteGpu), (DeviceKind::IntegratedGpu(0), wgpu::DeviceType::IntegratedGpu)] {
                let Some(info) = hardware.iter().find(|info| info.device_type == device_type) else { continue };
                let api = match info.backend {
                    wgpu::Backend::Metal => WgpuBackend::Metal,
                    wgpu::Backend::Dx12 => WgpuBackend::Dx12,
                    _ => WgpuBackend::Vulkan,
                };
                let reason = match &cuda {
                    Some(why) => format!("the GPU found; no CUDA ({why})"),
                    None => "the GPU found (--backend cpu to use the CPU)".to_string(),
                };
                if let Ok(backend) = init_wgpu(kind, api, &reason) {
                    return Ok(backend);
                }
            }
            let no_gpu = match software.as_slice() {
                [] => "no GPU adapter found".to_string(),
                names => format!("no GPU adapter found, only software ones ({}; --backend wgpu uses them)", names.join(", ")),
            };
            Ok(Backend::cpu(match cuda {
                Some(why) => format!("no CUDA ({why}); {no_gpu}"),
                None => no_gpu,
            }))
        }
    }
}

/// The message of a backend error, without the error kind's prefix.
#[cfg(not(target_family = "wasm"))]
fn backend_message(error: Error) -> String {
    match error {
        Error::Backend(message) => message,
        other => other.to_string(),
    }
}
