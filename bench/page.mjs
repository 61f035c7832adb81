// The page's first minute, as a teacher meets it: Debian's headless Chromium with WebGPU on
// (on a machine without a GPU that is SwiftShader), the page served from the release build,
// the default URL (or QUERY), Train pressed as soon as the button takes it. For each seed it
// prints the backend chosen, the time to the first step and to the first held-out estimate,
// the held-out accuracy shown at 30 s and 60 s after pressing Train, the steps per second,
// and the longest main-thread task from page load to the end. bench/page.sh runs it.
//   node bench/page.mjs DIST [--seeds 1,2,3] [--seconds 60] [--query "?data=polite"] [--json FILE]
import fs from "node:fs";
// The browser driver the tests install (npm ci --prefix tests).
import { chromium } from "../tests/node_modules/playwright-core/index.mjs";
import { serve } from "../app/serve.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const dist = args[0];
if (!dist || dist.startsWith("--")) {
  console.error("usage: node bench/page.mjs DIST [--seeds 1,2,3] [--seconds 60] [--query Q] [--json FILE]");
  process.exit(2);
}
const seeds = option("--seeds", "1,2,3").split(",").map((s) => s.trim()).filter(Boolean);
const seconds = Number(option("--seconds", "60"));
const query = option("--query", "");
const jsonFile = option("--json", null);
const flags = ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** One load of the page for `seed`: what a user sees in its first `seconds` after Train. */
async function firstMinute(origin, seed) {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: flags });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1500, height: 1250 } })).newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    const separator = query ? "&" : "?";
    const address = `${origin}/${query}${seed === "default" ? "" : `${separator}seed=${seed}`}`;
    await page.goto(address);
    const train = page.locator("#train");
    await train.waitFor();
    await page.waitForFunction(() => !document.querySelector("#train").disabled, null, { timeout: 120_000, polling: 50 });
    await train.click();
    const pressed = Date.now();
    const samples = [];
    const read = () => page.evaluate(() => ({
      phase: document.querySelector("#status")?.dataset.phase,
      status: document.querySelector("#status")?.innerText ?? "",
      accuracy: document.querySelector("#heldout-accuracy")?.dataset.value,
      evalStep: document.querySelector("#heldout-accuracy")?.dataset.step,
      stepsPerSecond: document.querySelector("#steps-per-second")?.dataset.value,
      badge: [...(document.querySelector("#backend-badge")?.querySelectorAll("b, span") ?? [])].map((e) => e.innerText).join(" · "),
      why: document.querySelector("#backend-badge small")?.innerText ?? "",
    }));
    for (;;) {
      const at = (Date.now() - pressed) / 1000;
      const s = await read();
      const step = Number((s.status.match(/step (\d+)\//) ?? s.status.match(/finished: (\d+)/) ?? [0, 0])[1]);
      samples.push({ at, step, accuracy: s.accuracy === undefined ? null : Number(s.accuracy), evalStep: Number(s.evalStep ?? 0), phase: s.phase, stepsPerSecond: Number(s.stepsPerSecond), badge: s.badge, why: s.why });
      if (at > seconds || s.phase === "finished" || s.phase === "failed") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const longest = await page.evaluate(() => Math.max(0, ...window.hafrmLongTasks.map((t) => t.duration)));
    const last = samples[samples.length - 1];
    const at = (t) => samples.filter((s) => s.at <= t).pop();
    const first = (test) => samples.find(test)?.at ?? null;
    const accuracyAt = (t) => at(t)?.accuracy ?? null;
    return {
      seed,
      backend: last.badge.replace(/\s+/g, " ").trim(),
      why: last.why,
      first_step_s: first((s) => s.step >= 1),
      first_heldout_s: first((s) => s.accuracy !== null && s.evalStep >= 1),
      heldout_at_30s: accuracyAt(30),
      heldout_at_60s: accuracyAt(60),
      reached_90_s: first((s) => s.accuracy >= 0.9 && s.evalStep >= 1),
      step_at_60s: at(60)?.step ?? 0,
      steps_per_second: last.stepsPerSecond,
      longest_main_thread_task_ms: longest,
      phase: last.phase,
      errors,
    };
  } finally {
    await browser.close();
  }
}

const { server, origin } = await serve(dist);
const results = [];
try {
  for (const seed of seeds) {
    const result = await firstMinute(origin, seed);
    results.push(result);
    console.error(JSON.stringify(result));
  }
} finally {
  server.close();
}
const pct = (v) => (v === null ? "–" : `${(100 * v).toFixed(1)}%`);
const sec = (v) => (v === null ? "never" : `${v.toFixed(1)} s`);
const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
console.log(`page: ${origin}/${query} · Chromium ${flags[0]} · ${cpuinfo.match(/model name\s*:\s*(.*)/)?.[1] ?? "?"}, ${(cpuinfo.match(/^processor/gm) ?? []).length} cores`);
console.log("");
console.log("| seed | backend chosen | first step | first held-out | held-out at 30 s | held-out at 60 s | 90% reached | step at 60 s | steps/s | longest main-thread task |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.seed} | ${r.backend} | ${sec(r.first_step_s)} | ${sec(r.first_heldout_s)} | ${pct(r.heldout_at_30s)} | ${pct(r.heldout_at_60s)} | ${sec(r.reached_90_s)} | ${r.step_at_60s} | ${r.steps_per_second.toFixed(2)} | ${r.longest_main_thread_task_ms} ms |`);
}
const why = [...new Set(results.map((r) => r.why).filter(Boolean))];
if (why.length) console.log(`\nwhy that backend: ${why.join("; ")}`);
const errors = results.flatMap((r) => r.errors);
if (errors.length) console.log(`\nconsole errors: ${errors.join("; ")}`);
if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(results, null, 2));
