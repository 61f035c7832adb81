// The page's first minute, as a teacher meets it: Debian's headless Chromium with WebGPU on
// (on a machine without a GPU that is SwiftShader), the page served from the release build,
// the default URL (or QUERY), Train pressed as soon as the button takes it. For each seed it
// prints the backend chosen, the time to the first step and to the first held-out estimate,
// the held-out accuracy shown at 30 s and 60 s after pressing Train, the steps per second,
// and the longest main-thread task while loading, while training and while a teacher goes
// through the token views after it. bench/page.sh runs it.
// With --loads N it then loads the page N times more without training (each in a new browser,
// until 2 s after Train takes a click) and counts the loads that had a task over 50 ms.
//   node bench/page.mjs DIST [--seeds 1,2,3] [--seconds 60] [--query "?data=polite"] [--loads N] [--json FILE]
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
  console.error("usage: node bench/page.mjs DIST [--seeds 1,2,3] [--seconds 60] [--query Q] [--loads N] [--json FILE]");
  process.exit(2);
}
const seeds = option("--seeds", "1,2,3").split(",").map((s) => s.trim()).filter(Boolean);
const seconds = Number(option("--seconds", "60"));
const query = option("--query", "");
const jsonFile = option("--json", null);
const loads = Number(option("--loads", "0"));
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
    const trainedAt = await page.evaluate(() => performance.now());
    const pressedAt = trainedAt - (Date.now() - pressed);
    await tourTokenViews(page);
    // The Long Tasks API reports only tasks of 50 ms or more: null means none.
    const longest = (from, to) => page.evaluate(([from, to]) => {
      const tasks = window.hafrmLongTasks.filter((t) => t.start >= from && t.start < to);
      return tasks.length ? Math.max(...tasks.map((t) => t.duration)) : null;
    }, [from, to]);
    const longestTasks = { load: await longest(0, pressedAt), training: await longest(pressedAt, trainedAt), token_views: await longest(trainedAt, Infinity) };
    const last = samples[samples.length - 1];
    const at = (t) => samples.filter((s) => s.at <= t).pop();
    const first = (test) => samples.find(test)?.at ?? null;
    const accuracyAt = (t) => (t > seconds ? null : at(t)?.accuracy ?? null);
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
      longest_main_thread_task_ms: longestTasks,
      phase: last.phase,
      errors,
    };
  } finally {
    await browser.close();
  }
}

/** The long tasks (ms) of one load of the page, until 2 s after Train takes a click. */
async function loadOnly(origin) {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: flags });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1500, height: 1250 } })).newPage();
    await page.goto(`${origin}/${query}`);
    await page.locator("#train").waitFor();
    await page.waitForFunction(() => !document.querySelector("#train").disabled, null, { timeout: 120_000, polling: 50 });
    await new Promise((r) => setTimeout(r, 2000));
    return await page.evaluate(() => window.hafrmLongTasks.map((t) => t.duration));
  } finally {
    await browser.close();
  }
}

/** What a teacher does with the token views after training: six held-out pairs, each
 * attribution method on one of them, the hover card over a few tokens, and a text of their own
 * scored. */
async function tourTokenViews(page) {
  const options = await page.locator("#pair-select option").allInnerTexts();
  for (const [index, label] of options.slice(0, 6).entries()) {
    await page.selectOption("#pair-select", String(index));
    const prompt = label.replace(/^\d+\. /, "");
    await page.waitForFunction((p) => document.querySelector("#pair-view .prompt")?.innerText.includes(p) && document.querySelector("#pair-view .tok"), prompt, { timeout: 60_000, polling: 50 });
  }
  for (const method of await page.locator(".segmented button[data-method]").all()) await method.click();
  const tokens = page.locator("#pair-view .tok");
  for (let i = 0; i < Math.min(5, await tokens.count()); i++) await tokens.nth(i).hover();
  await page.click("#score-own");
  await page.locator("#own-view .tok").first().waitFor({ timeout: 60_000 });
}

const { server, origin } = await serve(dist);
const results = [];
const loadTasks = [];
try {
  for (const seed of seeds) {
    const result = await firstMinute(origin, seed);
    results.push(result);
    console.error(JSON.stringify(result));
  }
  for (let i = 0; i < loads; i++) loadTasks.push(await loadOnly(origin));
} finally {
  server.close();
}
const pct = (v) => (v === null ? "–" : `${(100 * v).toFixed(1)}%`);
const sec = (v) => (v === null ? "never" : `${v.toFixed(1)} s`);
const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
console.log(`page: ${origin}/${query} · Chromium ${flags[0]} · ${cpuinfo.match(/model name\s*:\s*(.*)/)?.[1] ?? "?"}, ${(cpuinfo.match(/^processor/gm) ?? []).length} cores`);
console.log("");
console.log("| seed | backend chosen | first step | first held-out | held-out at 30 s | held-out at 60 s | 90% reached | step at 60 s | steps/s | longest main-thread task: load / training / token views |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
const ms = (v) => (v === null ? "none over 50 ms" : `${Math.round(v)} ms`);
for (const r of results) {
  const t = r.longest_main_thread_task_ms;
  console.log(`| ${r.seed} | ${r.backend} | ${sec(r.first_step_s)} | ${sec(r.first_heldout_s)} | ${pct(r.heldout_at_30s)} | ${pct(r.heldout_at_60s)} | ${sec(r.reached_90_s)} | ${r.step_at_60s} | ${r.steps_per_second.toFixed(2)} | ${ms(t.load)} / ${ms(t.training)} / ${ms(t.token_views)} |`);
}
if (loads) {
  const long = loadTasks.filter((tasks) => tasks.length);
  console.log(`\n${loads} more loads: ${long.length} with a task over 50 ms${long.length ? ` (longest ${Math.round(Math.max(...long.flat()))} ms)` : ""}`);
}
const why = [...new Set(results.map((r) => r.why).filter(Boolean))];
if (why.length) console.log(`\nwhy that backend: ${why.join("; ")}`);
const errors = results.flatMap((r) => r.errors);
if (errors.length) console.log(`\nconsole errors: ${errors.join("; ")}`);
if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(results, null, 2));
