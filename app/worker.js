// The training worker: the page's own WebAssembly module (the browser has it cached), entered
// at `start_worker` instead of `start_page`. Started by the page as a module worker.
import init, { start_worker } from "./hafrm.js";

await init();
start_worker();
