//! Choosing where the engine runs: a GPU through wgpu, or the CPU (Burn's flex backend).

pub use burn::tensor::Device;
use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// A hardware GPU through wgpu when there is one, else the CPU.
    #[default]
    Auto,
    /// wgpu on whatever adapter it finds, software ones (lavapipe) included.
    Wgpu,
    Cpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "wgpu" | "gpu" => Ok(Self::Wgpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown backend `{other}` (known: auto, wgpu, cpu)")),
        }
    }
}

/// The adapter wgpu picked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdapterInfo {
    pub name: String,
    /// Discrete, integrated, virtual, or CPU (a software rasteriser such as lavapipe).
    pub kind: String,
    /// The graphics API (Vulkan, Metal, DX12, WebGPU…).
    pub api: String,
    pub software: bool,
}

/// A device to compute on (without autodiff; training adds it) and what it is.
#[derive(Clone, Debug)]
pub struct Backend {
    pub device: Device,
    pub adapter: Option<AdapterInfo>,
}

impl Backend {
    pub fn cpu() -> Self {
        Self { device: cpu_device(), adapter: None }
    }

    /// One line for people: `wgpu: NVIDIA … (discrete GPU, Vulkan)` or `cpu (flex)`.
    pub fn describe(&self) -> String {
        match &self.adapter {
            Some(a) => format!(
                "wgpu: {} ({}{}, {})",
                a.name,
                a.kind,
                if a.software { ", software" } else { "" },
                a.api
            ),
            None => "cpu (flex)".to_string(),
        }
    }
}

/// The host CPU device, also where checkpoints are assembled.
pub fn cpu_device() -> Device {
    Device::flex()
}

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
pub async fn init_wgpu_async() -> Result<Backend> {
    let (device, setup) = Device::wgpu_options().init_with_setup_async().await.map_err(|e| Error::Backend(e.to_string()))?;
    Ok(Backend { device, adapter: Some(adapter_info(&setup.adapter.get_info())) })
}

/// Initialises wgpu on the adapter `kind` selects.
#[cfg(not(target_family = "wasm"))]
fn init_wgpu(kind: burn::tensor::DeviceKind) -> Result<Backend> {
    let (device, setup) = Device::wgpu_options()
        .device_kind(kind)
        .init_with_setup()
        .map_err(|e| Error::Backend(e.to_string()))?;
    Ok(Backend { device, adapter: Some(adapter_info(&setup.adapter.get_info())) })
}

/// Picks the backend `choice` asks for.
#[cfg(not(target_family = "wasm"))]
pub fn select_backend(choice: BackendChoice) -> Result<Backend> {
    use burn::tensor::DeviceKind;
    match choice {
        BackendChoice::Cpu => Ok(Backend::cpu()),
        BackendChoice::Wgpu => init_wgpu(DeviceKind::DefaultDevice)
            .map_err(|e| Error::Backend(format!("no wgpu adapter: {e}"))),
        BackendChoice::Auto => {
            for kind in [DeviceKind::DiscreteGpu(0), DeviceKind::IntegratedGpu(0)] {
                if let Ok(backend) = init_wgpu(kind) {
                    return Ok(backend);
                }
            }
            Ok(Backend::cpu())
        }
    }
}
