// A pretrained model in the page, as a student meets it: Debian's headless Chromium (WebGPU on,
// which is SwiftShader on a machine without a GPU), the page served from the release build,
// the model opened from disk (one GGUF file, or a Hugging Face folder picked whole). Prints the
// time the worker took to describe the model and what it said, the time from "Train this
// model" until its tensors are read (and dequantised) and until the run is ready (the first
// held-out estimate and token views too), then the run's steps: seconds a step as the page
// reports them.
//   node bench/backbone-page.mjs DIST MODEL [--query "?backend=cpu&pairs=100&steps=3&batch=8&eval_every=3"] [--timeout S]
import fs from "node:fs";
import { chromium } from "../tests/node_modules/playwright-core/index.mjs";
import { serve } from "../app/serve.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const [dist, model] = args;
if (!dist || !model || model.startsWith("--")) {
  console.error('usage: node bench/backbone-page.mjs DIST MODEL [--query Q] [--timeout S]');
  process.exit(2);
}
const query = option("--query", "?backend=cpu&pairs=100&steps=3&batch=8&eval_every=3");
const timeout = Number(option("--timeout", "1800")) * 1000;
const flags = ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const { server, origin } = await serve(dist);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: flags });
const seconds = (since) => ((Date.now() - since) / 1000).toFixed(1);
try {
  const page = await (await browser.newContext({ viewport: { width: 1500, height: 1250 } })).newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  page.on("worker", (w) => w.on("console", (m) => { if (m.type() === "error") console.error(`worker: ${m.text()}`); }));
  const phase = () => page.locator("#status").getAttribute("data-phase");
  const waitForPhase = (wanted) => page.waitForFunction((w) => w.includes(document.querySelector("#status")?.dataset.phase), wanted, { timeout, polling: 250 });
  await page.goto(`${origin}/${query}`);
  await waitForPhase(["ready"]);

  let since = Date.now();
  await page.setInputFiles(fs.statSync(model).isDirectory() ? "#backbone-folder" : "#backbone-files", model);
  await page.waitForFunction(() => document.querySelector("#backbone-info, #backbone-error"), null, { timeout, polling: 100 });
  const error = await page.locator("#backbone-error").count() ? await page.locator("#backbone-error").innerText() : null;
  if (error) throw new Error(`the page refused the model: ${error}`);
  console.log(`described in ${seconds(since)} s:\n  ${(await page.locator("#backbone-info").innerText()).replaceAll("\n", "\n  ")}`);

  since = Date.now();
  await page.click("#use-backbone");
  await page.waitForFunction(() => document.querySelector("#status")?.dataset.phase !== "ready", null, { timeout, polling: 100 });
  // The worker says when the tensors are in and the held-out pairs' first scoring begins.
  await page.waitForFunction(() => /scoring held-out|failed/.test(document.querySelector("#status")?.innerText + document.querySelector("#status")?.dataset.phase), null, { timeout, polling: 100 });
  const read = seconds(since);
  await waitForPhase(["ready", "failed"]);
  if ((await phase()) === "failed") throw new Error(`loading failed: ${await page.locator("#status").innerText()}`);
  console.log(`Train this model to ready: ${seconds(since)} s, the tensors read in ${read} s (${await page.locator("footer").innerText()})`);

  since = Date.now();
  await page.click("#train");
  await waitForPhase(["finished", "failed"]);
  const status = await page.locator("#status").innerText();
  const rate = Number(await page.locator("#steps-per-second").getAttribute("data-value"));
  console.log(`trained in ${seconds(since)} s, ${rate.toFixed(3)} steps a second (${(1 / rate).toFixed(1)} s a step, evaluations included): ${status}`);
} finally {
  await browser.close();
  server.close();
}
