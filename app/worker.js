// The training worker: the page's WebAssembly module (the browser has it cached), entered at
// `start_worker` instead of `start_page`. Started by the page as a module worker, with the
// build to run in its address: `hafrm` (with WebGPU) or `hafrm_cpu` (the CPU backend only).
const build = new URL(import.meta.url).searchParams.get("build") === "hafrm_cpu" ? "hafrm_cpu" : "hafrm";
const { default: init, start_worker } = await import(`./${build}.js`);

await init();
start_worker();
