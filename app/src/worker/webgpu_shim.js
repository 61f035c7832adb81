// Burn's WebGPU kernels may read the subgroup size, which WGSL allows only on a device
// created with the "subgroups" feature; wgpu does not know that feature's web name and never
// asks for it. Ask for it whenever the adapter has it, and note the adapter for the backend
// badge (wgpu only passes on its description, often empty). Some of those kernels reduce
// across a subgroup inside branches that Chromium's uniformity analysis cannot prove uniform
// (naga, natively, accepts them; the engine's WebGPU test checks their results against the
// CPU), so that one diagnostic is lifted.
if (self.GPUAdapter && !self.hafrmShimmed) {
  self.hafrmShimmed = true;
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = function (descriptor = {}) {
    const features = new Set(descriptor.requiredFeatures ?? []);
    if (this.features.has("subgroups")) features.add("subgroups");
    const info = this.info ?? {};
    self.hafrmAdapter = {
      vendor: info.vendor ?? "", architecture: info.architecture ?? "",
      description: info.description ?? "", fallback: Boolean(info.isFallbackAdapter),
    };
    return requestDevice.call(this, { ...descriptor, requiredFeatures: [...features] });
  };
  const createShaderModule = GPUDevice.prototype.createShaderModule;
  GPUDevice.prototype.createShaderModule = function (descriptor) {
    const code = descriptor.code.replace(/^enable subgroups;$/m, "enable subgroups;\ndiagnostic(off, subgroup_uniformity);");
    return createShaderModule.call(this, { ...descriptor, code });
  };
}
