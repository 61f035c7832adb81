// The training worker: the page's WebAssembly module (the browser has it cached), entered at
// `start_worker` instead of `start_page`. Started by the page as a module worker, with the
// build to run in its address: `hafrm` (with WebGPU) or `hafrm_cpu` (the CPU backend only).
const build = new URL(import.meta.url).searchParams.get("build") === "hafrm_cpu" ? "hafrm_cpu" : "hafrm";
const { default: init, start_worker, worker_stopped } = await import(`./${build}.js`);

await init();

// A trap in the module (its memory could not grow, or a panic after its own report) rejects the
// promise that was running it, which nobody else hears in a worker: tell the page. The page
// shows the first message it gets, so a second report is harmless.
function stop(reason) {
  let message = `the training worker stopped: ${reason}`;
  try {
    message = worker_stopped(String(reason));
  } catch (_) {
    // The module cannot even say why; the reason alone will do.
  }
  postMessage(JSON.stringify({ generation: 0, lane: 0, event: { Fatal: message } }));
}
addEventListener("unhandledrejection", (event) => stop(event.reason));
// Handled here, an error does not reach the page's `Worker.onerror`, which is left for a worker
// whose script never ran.
addEventListener("error", (event) => {
  event.preventDefault();
  stop(event.error ?? event.message);
});

start_worker();
