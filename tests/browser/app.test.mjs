// End-to-end tests of HaF-RM Studio in Debian's headless Chromium, driven by playwright-core.
// tests/app.rs runs them (`cargo test`) with:
//   HAFRM_DIST       the release build of the app (bash app/build.sh)
//   HAFRM_BIN        the native `hafrm` binary, to check the model the page downloads
//   HAFRM_ARTIFACTS  where screenshots and timings go
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { execFileSync, spawn } from "node:child_process";
import net from "node:net";
import { chromium } from "playwright-core";
import { serve } from "../../app/serve.mjs";

const dist = process.env.HAFRM_DIST;
const hafrm = process.env.HAFRM_BIN;
const artifacts = process.env.HAFRM_ARTIFACTS ?? fs.mkdtempSync(path.join(os.tmpdir(), "hafrm-artifacts-"));
fs.mkdirSync(artifacts, { recursive: true });

// A small configuration: the polite set is decided by one lexical cue, so 20 steps of 8 pairs
// reach 100% natively (seeds 42 and 7 both; 95% after 5 steps). With 20 held-out pairs, 90%
// would happen by chance with probability 2e-4.
const QUICK = "?data=polite&pairs=200&steps=20&batch=8&eval_every=5";
// On WebGPU without a GPU (SwiftShader) every new tensor shape compiles its kernels: a step of
// 4 pairs takes about 15 s, scoring the reference policy about 1.2 s a pair and a token view
// (all six methods) over a minute. So this run is small: 36 training pairs, 4 held out, 5
// steps of 4, evaluated once at the end; what it must prove is that the page on WebGPU trains
// the engine's run, so its last loss and held-out accuracy are compared with `hafrm train`'s
// natively on the same settings (the engine's WebGPU kernels are checked against its CPU
// backend in engine/tests/webgpu_browser.rs).
// The page's Auto backend takes the CPU over a software adapter, so this run asks for WebGPU.
// It also trains with a margin and reward centering from the address, which change its loss.
const WEBGPU = { pairs: 40, steps: 5, batch: 4, eval_every: 5, center: 0.5, margin: 0.5 };
const WEBGPU_QUERY = `?data=polite&pairs=${WEBGPU.pairs}&steps=${WEBGPU.steps}&batch=${WEBGPU.batch}&eval_every=${WEBGPU.eval_every}&center=${WEBGPU.center}&margin=${WEBGPU.margin}&backend=webgpu`;
const ACCURACY_THRESHOLD = 0.9;
const TRAIN_TIMEOUT_MS = 15 * 60 * 1000;

const BASE_FLAGS = [
  "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

/** A page on the app, recording console errors (the page's and its worker's) and every
 * request's URL. `prepare` may route requests before the page loads. */
async function open(flags, query, prepare = async () => {}, served = null) {
  const { server, origin } = served ?? (await serve(dist));
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: [...BASE_FLAGS, ...flags] });
  const context = await browser.newContext({ viewport: { width: 1500, height: 1250 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  const error = (text) => { if (!errors.includes(text)) errors.push(text); };
  page.on("console", (m) => { if (m.type() === "error") error(m.text()); });
  page.on("pageerror", (e) => error(String(e)));
  page.on("worker", (w) => w.on("console", (m) => { if (m.type() === "error") error(m.text()); }));
  page.on("request", (r) => requests.push(r.url()));
  await prepare(page);
  const loaded = Date.now();
  await page.goto(origin + "/" + query);
  const close = async () => { await browser.close(); server?.close(); };
  return { page, origin, errors, requests, loaded, close };
}

const phase = (page) => page.locator("#status").getAttribute("data-phase");

/** Which of the app's two builds (app/build.sh) the page and its workers loaded. */
const builds = (requests) => ["hafrm_bg.wasm", "hafrm_cpu_bg.wasm"].filter((file) => requests.some((url) => new URL(url).pathname === `/${file}`));

/** The training worker's script, whichever build its address names. */
const WORKER_SCRIPT = /\/worker\.js(\?.*)?$/;

async function waitForPhase(page, wanted, timeout) {
  await page.waitForFunction(
    (w) => w.includes(document.querySelector("#status")?.dataset.phase),
    wanted,
    { timeout, polling: 250 },
  );
}

/** Presses Train (after one single Step when `stepFirst`) and waits for the run to finish;
 * returns timings. */
async function train(session, label, { stepFirst = false } = {}) {
  const { page } = session;
  await waitForPhase(page, ["ready"], TRAIN_TIMEOUT_MS);
  const ready = Date.now();
  if (stepFirst) {
    await page.click("#step");
    await waitForPhase(page, ["paused"], TRAIN_TIMEOUT_MS);
    assert.match(await page.locator("#status").innerText(), /step 1\//);
  }
  await page.click("#train");
  await waitForPhase(page, ["finished", "failed"], TRAIN_TIMEOUT_MS);
  const done = Date.now();
  const failure = await page.locator("#failure").count();
  assert.equal(failure, 0, failure ? await page.locator("#failure").innerText() : "");
  const stepsPerSecond = Number(await page.locator("#steps-per-second").getAttribute("data-value"));
  // The longest main-thread task while training (not while loading).
  const longestTask = await page.evaluate((since) => Math.max(0, ...window.hafrmLongTasks.filter((t) => t.start >= since).map((t) => t.duration)), await page.evaluate(() => performance.now()) - (done - ready));
  const timing = {
    label,
    page_load_to_ready_s: (ready - session.loaded) / 1000,
    page_load_to_trained_s: (done - session.loaded) / 1000,
    training_s: (done - ready) / 1000,
    steps_per_second: stepsPerSecond,
    longest_main_thread_task_ms: longestTask,
  };
  fs.writeFileSync(path.join(artifacts, `timing-${label}.json`), JSON.stringify(timing, null, 2));
  console.log(JSON.stringify(timing));
  return timing;
}

/** Training curves of a trained page: the loss falls and held-out accuracy passes the bar. */
async function assertLearned(page) {
  await assertLossFalls(page);
  const accuracy = Number(await page.locator("#heldout-accuracy").getAttribute("data-value"));
  assert.ok(accuracy >= ACCURACY_THRESHOLD, `held-out accuracy ${accuracy} >= ${ACCURACY_THRESHOLD}`);
}

async function assertLossFalls(page) {
  const loss = page.locator("#loss");
  const [first, last] = [Number(await loss.getAttribute("data-first")), Number(await loss.getAttribute("data-last"))];
  assert.ok(last < first, `the loss falls: ${first} -> ${last}`);
}

/** The page's length-bias figures (the reward head's, or DPO's implicit reward's). */
async function lengthBias(page) {
  const figure = async (name) => {
    const value = await page.locator("#length-bias").getAttribute(`data-${name}`);
    return value === null ? null : Number(value);
  };
  return { longer: await figure("longer"), shorter: await figure("shorter"), correlation: await figure("correlation") };
}

/** The page's last loss, held-out accuracy and (when given) length bias are those of `hafrm
 * train` natively with the same settings (the backends' sums differ in their last digits). */
function assertSameAsCli({ loss, accuracy, bias }, args, label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hafrm-${label}-`));
  execFileSync(hafrm, ["train", ...args, "--backend", "cpu", "--out", path.join(dir, "run")]);
  const records = fs.readFileSync(path.join(dir, "run", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const lastTrain = records.filter((r) => r.kind === "train").pop();
  const lastEval = records.filter((r) => r.kind === "eval").pop();
  assert.ok(Math.abs(loss - lastTrain.loss) <= 1e-2 * Math.abs(lastTrain.loss) + 1e-4, `${label}: the page's loss ${loss}, hafrm train's ${lastTrain.loss}`);
  assert.ok(Math.abs(accuracy - lastEval.accuracy) <= 1 / lastEval.pairs + 1e-6, `${label}: the page's held-out accuracy ${accuracy}, hafrm train's ${lastEval.accuracy}`);
  if (bias) {
    const cli = lastEval.length_bias;
    const implicit = args.includes("dpo");
    const accuracyOf = (group) => (implicit ? group.implicit_accuracy : group.reward_accuracy);
    // A figure the engine cannot give (an empty group, a score that does not vary) is left out
    // of its JSON and off the page.
    const expected = { longer: accuracyOf(cli.chosen_longer) ?? null, shorter: accuracyOf(cli.chosen_shorter) ?? null, correlation: (implicit ? cli.implicit_length_correlation : cli.reward_length_correlation) ?? null };
    for (const name of ["longer", "shorter"]) {
      const [shown, want] = [bias[name], expected[name]];
      assert.ok(shown === want || Math.abs(shown - want) <= 1 / lastEval.pairs + 1e-6, `${label}: the page's length bias (${name}) ${shown}, hafrm train's ${want}`);
    }
    const [shown, want] = [bias.correlation, expected.correlation];
    assert.ok(shown === want || Math.abs(shown - want) <= 0.05, `${label}: the page's score-length correlation ${shown}, hafrm train's ${want}`);
  }
}

/** What every page that trained must show. */
async function assertTokenViews(session, badge, { checked = true } = {}) {
  const { page, origin, errors, requests } = session;
  assert.match(await page.locator("#backend-badge").innerText(), badge);
  // Chosen and rejected, each with coloured tokens (the scale's zero is rgb(247, 247, 247)).
  for (const label of ["chosen", "rejected"]) {
    const tokens = page.locator(`#pair-view .response[data-label="${label}"] .tok`);
    assert.ok((await tokens.count()) > 3, `${label} shows its tokens`);
    const coloured = await tokens.evaluateAll((spans) => spans.filter((s) => getComputedStyle(s).backgroundColor !== "rgb(247, 247, 247)").length);
    assert.ok(coloured > 0, `${label} has coloured tokens`);
  }
  assert.ok((await page.locator("#pair-view .tok.decisive").count()) > 0, "the decisive span is outlined");
  // Hovering a token shows its text, id and value.
  await page.locator("#pair-view .tok").first().hover();
  const card = await page.locator(".hover-card").innerText();
  assert.match(card, /id \d+/);
  assert.match(card, /prefix\s+[+-]\d/);
  if (!checked) {
    // On a software adapter the page does not check attributions (docs/page.md).
    assert.match(await page.locator("#faithfulness-line").innerText(), /on a software WebGPU adapter, where it would take minutes, hafrm eval --attribution checks the downloaded run/);
    assert.equal(await page.locator("#pair-view").getAttribute("data-method"), "occlusion");
  } else {
    // Precision@1 per method, with the random baseline.
    assert.equal(await page.locator("#precision tr").count(), 7);
    // Faithfulness per method with random deletion, and the most faithful method shown by
    // default, its figure in words.
    assert.equal(await page.locator("#faithfulness tr").count(), 7);
    const line = await page.locator("#faithfulness-line").innerText();
    assert.match(line, /^Showing \w+ by default: removing its top 10% of tokens lowers the reward by -?\d+\.\d+; removing a random 10% lowers it by -?\d+\.\d+\.$/, line);
    const chosenMethod = await page.locator("#faithfulness-line").getAttribute("data-default");
    assert.equal(await page.locator("#pair-view").getAttribute("data-method"), chosenMethod);
    assert.equal(await page.locator(`#faithfulness tr.default`).getAttribute("data-method"), chosenMethod);
  }
  assert.match(await page.locator("#method-explained").innerText(), /\w+: .+\./);
  assert.deepEqual(errors, [], "no console errors");
  const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith("blob:") && !u.startsWith("data:"));
  assert.deepEqual(foreign, [], "no request leaves the page's origin");
}

/** Presses a download button and unpacks the tar it offers into `dir`. */
async function downloadInto(page, button, dir) {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click(button)]);
  const tar = path.join(dir, download.suggestedFilename());
  await download.saveAs(tar);
  execFileSync("tar", ["xf", tar], { cwd: dir });
}

/** Downloads the page's run (Download model) and unpacks it; returns the run's directory. */
async function downloadRun(page) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hafrm-download-"));
  await downloadInto(page, "#download-model", dir);
  return path.join(dir, "hafrm-run");
}

/** Downloads the model, unpacks it, and scores with the native runner. */
async function assertDownloadedModelLoads(page) {
  const run = await downloadRun(page);
  const out = execFileSync(hafrm, ["score", "--model", run, "--backend", "cpu", "--prompt", "Write a note to my neighbour.", "--response", "Could you please keep it down? Thank you."]).toString();
  assert.match(out, /reward/i, out);
  const evaluation = execFileSync(hafrm, ["eval", "--model", run, "--backend", "cpu", "--demo", "polite", "--demo-pairs", "40", "--json"]).toString();
  const accuracy = JSON.parse(evaluation.trim().split("\n").pop()).accuracy;
  assert.ok(accuracy >= ACCURACY_THRESHOLD, `the downloaded model scores ${accuracy} with hafrm eval`);
  const [metrics] = await Promise.all([page.waitForEvent("download"), page.click("#download-metrics")]);
  const lines = fs.readFileSync(await metrics.path(), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.filter((l) => l.kind === "train").length, 20);
}

test("trains on WebGPU in the page and shows coloured tokens", { timeout: 2 * TRAIN_TIMEOUT_MS }, async () => {
  const session = await open(["--enable-unsafe-webgpu"], WEBGPU_QUERY);
  const { page } = session;
  try {
    await page.waitForSelector("#backend-badge.gpu", { timeout: 120_000 });
    assert.deepEqual(builds(session.requests), ["hafrm_bg.wasm"], "WebGPU asked for: the WebGPU build alone");
    // One single step, then Train runs the rest from there.
    await train(session, "webgpu", { stepFirst: true });
    await assertLossFalls(page);
    const loss = Number(await page.locator("#loss").getAttribute("data-last"));
    const accuracy = Number(await page.locator("#heldout-accuracy").getAttribute("data-value"));
    const args = ["--demo", "polite", "--demo-pairs", WEBGPU.pairs, "--steps", WEBGPU.steps, "--batch", WEBGPU.batch, "--eval-every", WEBGPU.eval_every, "--center-rewards", WEBGPU.center, "--margin", WEBGPU.margin].map(String);
    assertSameAsCli({ loss, accuracy, bias: await lengthBias(page) }, args, "webgpu");
    await assertTokenViews(session, /WebGPU/, { checked: false });
    await page.screenshot({ path: path.join(artifacts, "app-webgpu.png"), fullPage: true });
    // The CPU chosen under Backend trains in a worker of the CPU-only build (the WebGPU build
    // has no CPU backend).
    await page.selectOption('select[name="backend"]', "cpu");
    await page.click("#reset");
    await waitForPhase(page, ["ready"], TRAIN_TIMEOUT_MS);
    assert.match(await page.locator("#backend-badge").innerText(), /CPU/);
    assert.deepEqual(builds(session.requests), ["hafrm_bg.wasm", "hafrm_cpu_bg.wasm"], "the run on the CPU went to a worker of the CPU-only build");
    await page.click("#step");
    await waitForPhase(page, ["paused"], TRAIN_TIMEOUT_MS);
    assert.match(await page.locator("#status").innerText(), /step 1\//);
    // Auto in the WebGPU build, which has no CPU backend, on a software adapter: its worker
    // says the run belongs on the CPU, and the page launches it again in the CPU-only build,
    // the reason on the badge.
    await page.selectOption('select[name="backend"]', "auto");
    await page.click("#reset");
    await waitForPhase(page, ["ready"], TRAIN_TIMEOUT_MS);
    assert.match(await page.locator("#backend-badge").innerText(), /CPU[\s\S]*the only WebGPU adapter is a software fallback/);
    assert.deepEqual(page.workers().map((w) => new URL(w.url()).search), ["?build=hafrm_cpu"], "the run is in a worker of the CPU-only build");
    await page.click("#step");
    await waitForPhase(page, ["paused"], TRAIN_TIMEOUT_MS);
    assert.match(await page.locator("#status").innerText(), /step 1\//);
    assert.deepEqual(session.errors, [], "no console errors");
  } finally {
    await session.close();
  }
});

test("falls back to the CPU without WebGPU, trains, and hands its model to the CLI", { timeout: TRAIN_TIMEOUT_MS + 120_000 }, async () => {
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], QUICK);
  try {
    await train(session, "cpu");
    await assertLearned(session.page);
    const loss = Number(await session.page.locator("#loss").getAttribute("data-last"));
    const accuracy = Number(await session.page.locator("#heldout-accuracy").getAttribute("data-value"));
    const bias = await lengthBias(session.page);
    // Most polite pairs are of one length (a word for a word); some are not.
    assert.ok(bias.longer !== null || bias.shorter !== null, `some held-out pairs differ in length: ${JSON.stringify(bias)}`);
    assertSameAsCli({ loss, accuracy, bias }, ["--demo", "polite", "--demo-pairs", "200", "--steps", "20", "--batch", "8", "--eval-every", "5"], "cpu");
    await assertTokenViews(session, /CPU/);
    await session.page.screenshot({ path: path.join(artifacts, "app-cpu.png"), fullPage: true });
    await assertDownloadedModelLoads(session.page);
  } finally {
    await session.close();
  }
});

// The page at its plain address, as a teacher opens it on a machine without a GPU, where
// Chromium offers WebGPU only through SwiftShader, a software fallback adapter: Auto takes the
// CPU backend and says why; pressing Train shows a first held-out estimate within a few steps;
// and the run it trains is the engine's default run, the one `hafrm train` trains with no
// options (the run it hands over holds the same settings as `hafrm train --print-config`).
test("the page's default run picks the CPU over a software adapter, moves at once, and is the command line's", { timeout: 480_000 }, async () => {
  const session = await open(["--enable-unsafe-webgpu"], "");
  const { page } = session;
  try {
    await page.waitForSelector("#backend-badge b", { timeout: 120_000 });
    const badge = await page.locator("#backend-badge").innerText();
    assert.match(badge, /^CPU/, badge);
    assert.match(badge, /software fallback/, badge);
    assert.match(badge, /WebGPU under Backend/, badge);
    assert.deepEqual(builds(session.requests), ["hafrm_cpu_bg.wasm"], "without a hardware GPU, the CPU-only build alone");
    await page.waitForFunction(() => !document.querySelector("#train").disabled, null, { timeout: 240_000 });
    await page.click("#train");
    // An early estimate (on some of the held-out pairs) after a few steps, before the first
    // full evaluation at step 50.
    await page.waitForFunction(() => Number(document.querySelector("#heldout-accuracy")?.dataset.step) >= 5, null, { timeout: 240_000, polling: 100 });
    const step = Number(await page.locator("#heldout-accuracy").getAttribute("data-step"));
    assert.ok(step < 50, `the first estimate after step 0 comes at step ${step}`);
    assert.match(await page.locator(".stat small").first().innerText(), /early estimate on \d+ of \d+ pairs/);
    const run = await downloadRun(page);
    const pageConfig = JSON.parse(fs.readFileSync(path.join(run, "config.json"), "utf8"));
    const cliConfig = JSON.parse(execFileSync(hafrm, ["train", "--print-config"]).toString());
    assert.deepEqual(pageConfig, cliConfig);
    assert.match(await page.locator("#status").innerText(), /training: step \d+\/400/);
    assert.deepEqual(session.errors, [], "no console errors");
  } finally {
    await session.close();
  }
});

// A mode in the address takes the mode's own loss weights, as `hafrm train --mode` does: the
// baseline trains without the policy loss and is not refused for a policy weight it was not given.
// The page's token scores are the engine's: "Try your own" under the trained model against
// `hafrm attribute --json` for the downloaded model, which is the trained one (the best by
// held-out accuracy, and the run evaluates once, at its end); so are its faithfulness and
// precision tables, against `hafrm eval --attribution` on the same held-out pairs.
test("a baseline run from the address trains, and its token scores and trust tables are the command line's", { timeout: 300_000 }, async () => {
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], "?data=polite&pairs=40&steps=3&batch=4&mode=baseline");
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    await page.click("#train");
    await waitForPhase(page, ["finished"], 240_000);
    assert.match(page.url(), /mode=baseline/);
    assert.doesNotMatch(page.url(), /alpha=/);
    await page.waitForFunction(() => document.querySelector("#faithfulness-line")?.dataset.default, null, { timeout: 60_000 });
    const method = await page.locator("#faithfulness-line").getAttribute("data-default");
    await page.click("#score-own");
    const tokens = page.locator("#own-view .tok");
    await tokens.first().waitFor({ timeout: 60_000 });
    const shown = await tokens.evaluateAll((spans) => spans.map((s) => Number(s.dataset.value)));
    // Every method of one token, from its hover card (4 decimals).
    await tokens.nth(1).hover();
    const card = await page.locator(".hover-card tr").evaluateAll((rows) => Object.fromEntries(rows.map((r) => [r.cells[0].textContent, Number(r.cells[1].textContent)])));
    const [prompt, response] = [await page.locator("#own-prompt").inputValue(), await page.locator("#own-response").inputValue()];
    const run = await downloadRun(page);
    const [cli] = JSON.parse(execFileSync(hafrm, ["attribute", "--model", run, "--backend", "cpu", "--prompt", prompt, "--response", response, "--json"]).toString());
    assert.equal(shown.length, cli.scores[method].length, "as many tokens as the engine's");
    shown.forEach((value, j) => {
      const engine = cli.scores[method][j];
      assert.ok(Math.abs(value - engine) <= 1e-4 + 1e-3 * Math.abs(engine), `${method}, token ${j}: the page shows ${value}, hafrm attribute ${engine}`);
    });
    assert.equal(Object.keys(card).length, 6);
    for (const [name, value] of Object.entries(card)) {
      const engine = cli.scores[name][1];
      assert.ok(Math.abs(value - engine) <= 2e-4 + 1e-3 * Math.abs(engine), `${name}, token 1: the page's card says ${value}, hafrm attribute ${engine}`);
    }
    // The page's trust tables are `hafrm eval --attribution`'s for the same model and pairs:
    // faithfulness (to the 3 decimals shown), precision@1 of the pair and the default method.
    const checked = Number((await page.locator("#faithfulness p").innerText()).match(/over (\d+) held-out pairs/)[1]);
    const lines = execFileSync(hafrm, ["eval", "--model", run, "--backend", "cpu", "--attribution", "--attribution-pairs", String(checked), "--json"]).toString();
    const report = JSON.parse(lines.trim().split("\n").pop());
    assert.equal(report.default_method, method, "the default method");
    const faithfulness = await page.locator("#faithfulness tr").evaluateAll((rows) => rows.map((r) => [r.dataset.method, Number(r.cells[2].textContent), Number(r.cells[3].textContent)]));
    assert.equal(faithfulness.length, 7);
    for (const [name, comprehensiveness, sufficiency] of faithfulness) {
      const cli = report.faithfulness[name];
      assert.ok(Math.abs(comprehensiveness - cli.comprehensiveness) <= 1.5e-3, `${name}: the page's comprehensiveness ${comprehensiveness}, hafrm eval's ${cli.comprehensiveness}`);
      assert.ok(Math.abs(sufficiency - cli.sufficiency) <= 1.5e-3, `${name}: the page's sufficiency ${sufficiency}, hafrm eval's ${cli.sufficiency}`);
    }
    const precision = await page.locator("#precision tr").evaluateAll((rows) => rows.map((r) => [r.dataset.method, Number(r.cells[2].textContent.replace("%", ""))]));
    assert.equal(precision.length, 7);
    for (const [name, pair] of precision) {
      const cli = 100 * report.precision[name].pair;
      assert.ok(Math.abs(pair - cli) <= 0.5 + 1e-6, `${name}: the page's precision@1 ${pair}%, hafrm eval's ${cli}%`);
    }
    assert.deepEqual(session.errors, [], "no console errors");
  } finally {
    await session.close();
  }
});

// The race (`?compare=`), on the CPU fallback: the methods train side by side on the same data
// and seed, one chart draws their held-out accuracy in their colours, the token view shows the
// same held-out pair under each, and each method's lane is the engine's own run of that method:
// its last loss and held-out accuracy are those of `hafrm train --mode <method>` with the same
// settings (natively; the two backends' sums differ in their last digits).
test("a race from the address trains each method as its own run, side by side", { timeout: 480_000 }, async () => {
  const methods = ["haf", "baseline", "dpo"];
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], `?data=polite&pairs=200&steps=10&batch=8&eval_every=5&compare=${methods}`);
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    assert.ok(await page.locator("#compare").isChecked(), "the switch is on");
    await page.click("#train");
    await waitForPhase(page, ["finished", "failed"], 300_000);
    assert.equal(await page.locator("#failure").count(), 0);
    assert.match(page.url(), /compare=haf,baseline,dpo/);
    for (const method of methods) {
      const stat = page.locator(`#race-${method}`);
      assert.equal(await stat.getAttribute("data-step"), "10", method);
      // Each lane in its own model's most faithful method: DPO's, measured on its implicit
      // reward, is the implicit token reward, not the flat scores of a reward head that never
      // trained.
      const lane = page.locator(`#pair-view .lane[data-method="${method}"]`);
      if (method === "dpo") assert.equal(await lane.getAttribute("data-attribution"), "implicit");
      assert.doesNotMatch(await lane.locator(".legend").innerText(), /^-0\.000/, `${method}: its colour scale is not flat`);
      const [loss, accuracy] = [Number(await stat.getAttribute("data-loss")), Number(await stat.getAttribute("data-value"))];
      assertSameAsCli({ loss, accuracy }, ["--demo", "polite", "--demo-pairs", "200", "--steps", "10", "--batch", "8", "--eval-every", "5", "--mode", method], `race-${method}`);
      for (const label of ["chosen", "rejected"]) {
        const tokens = page.locator(`#pair-view .lane[data-method="${method}"] .response[data-label="${label}"] .tok`);
        assert.ok((await tokens.count()) > 3, `${method}: ${label} shows its tokens`);
      }
    }
    // The lanes are different runs: HaF's loss has the policy term the baseline lacks.
    assert.notEqual(await page.locator("#race-haf").getAttribute("data-loss"), await page.locator("#race-baseline").getAttribute("data-loss"));
    // One chart: a line per method in the method's colour (as in `hafrm experiment`'s plots), then chance.
    const strokes = await page.locator("#race svg polyline").evaluateAll((lines) => lines.map((l) => l.getAttribute("stroke")));
    assert.deepEqual(strokes, ["#1f77b4", "#e67e22", "#2ca02c", "#999"]);
    assert.match(await page.locator("#race-standing").innerText(), /^At step 10: .+ one pair is 5\.0 points\.$/);
    // The switch off: a single run of the lead, and the address says so.
    await page.click("#compare");
    await page.waitForFunction(() => !location.search.includes("compare"), null, { timeout: 10_000 });
    await page.click("#reset");
    await page.waitForFunction(() => !document.querySelector("#race"), null, { timeout: 60_000 });
    assert.deepEqual(session.errors, [], "no console errors");
  } finally {
    await session.close();
  }
});

// When the engine's code stops for good (a panic: on WebGPU usually a lost device or an
// out-of-memory error), the page must say so and offer the CPU backend, not go blank. The worker
// is replaced by a stand-in that fails the way the real one does: it reports the panic
// (`Fatal`), or it traps and the browser reports the error.
for (const [how, worker] of [
  ["reports a panic", `postMessage(JSON.stringify({ generation: 0, event: "Listening" }));
     onmessage = (m) => postMessage(JSON.stringify({ generation: JSON.parse(m.data).Launch.generation, event: { Fatal: "panicked at wgpu: Device lost (simulated)" } }));`],
  ["traps", `onmessage = () => { throw new Error("RuntimeError: unreachable (simulated)"); }; postMessage(JSON.stringify({ generation: 0, event: "Listening" }));`],
]) {
  test(`a training worker that ${how} stops the run with a message and offers the CPU`, { timeout: 120_000 }, async () => {
    const session = await open(["--enable-unsafe-webgpu"], "?data=polite&steps=5", (page) =>
      page.route(WORKER_SCRIPT, (route) => route.fulfill({ contentType: "text/javascript", body: worker })));
    const { page } = session;
    try {
      const fatal = page.locator("#fatal");
      await fatal.waitFor({ timeout: 60_000 });
      assert.match(await fatal.innerText(), /simulated/);
      const restart = page.locator("#fatal a", { hasText: "Restart on the CPU backend" });
      const href = await restart.getAttribute("href");
      assert.match(href, /data=polite/, "the restart keeps the settings");
      assert.match(href, /backend=cpu/);
      assert.ok(await page.locator("#train").isVisible(), "the page is still there behind the message");
    } finally {
      await session.close();
    }
  });
}

// The real worker running out of memory: V8 is told to let a WebAssembly memory grow to
// MEMORY_CAP_PAGES pages of 64 KiB only, far below the 4 GiB a page may have, and the run asks
// for more (a large batch). Rust aborts when an allocation fails, which in a worker rejects a
// promise no one hears; the page must say what ran out and what to change.
const MEMORY_CAP_PAGES = 1600; // 100 MiB
test("a training worker that runs out of memory says so on the page and what to change", { timeout: 300_000 }, async () => {
  const session = await open(["--disable-gpu", "--disable-features=WebGPU", `--js-flags=--wasm-max-mem-pages=${MEMORY_CAP_PAGES}`], "?data=polite&pairs=400&steps=5&batch=256");
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    await page.click("#train");
    const fatal = page.locator("#fatal");
    await fatal.waitFor({ timeout: 240_000 });
    const text = await fatal.innerText();
    assert.match(text, /out of memory: the training worker could not get [\d.]+ [KMG]iB more, with [\d.]+ MiB in use/, text);
    const inUse = Number(text.match(/with ([\d.]+) MiB in use/)[1]);
    assert.ok(inUse > 50 && inUse <= MEMORY_CAP_PAGES / 16, `memory in use ${inUse} MiB, under the cap of ${MEMORY_CAP_PAGES / 16} MiB`);
    assert.match(text, /fewer pairs a step, a shorter max length/);
    assert.ok(await page.locator("#train").isVisible(), "the page is still there behind the message");
  } finally {
    await session.close();
  }
});

// The module failing to download leaves a message where the page would be, not a loading note.
test("a page whose module cannot be downloaded says so", { timeout: 60_000 }, async () => {
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], "", (page) =>
    page.route(/\/hafrm_cpu_bg\.wasm$/, (route) => route.fulfill({ status: 404, body: "not here" })));
  const { page } = session;
  try {
    await page.waitForFunction(() => /could not load/.test(document.querySelector("#loading")?.textContent ?? ""), null, { timeout: 30_000 });
    assert.match(await page.locator("#loading").innerText(), /HaF-RM Studio could not load: hafrm_cpu_bg\.wasm: the server answered 404/);
  } finally {
    await session.close();
  }
});

test("a malformed upload shows the engine's error and keeps the current run", { timeout: 300_000 }, async () => {
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], QUICK);
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    await page.click("#step");
    await page.waitForFunction(() => document.querySelector("#status").dataset.phase === "paused", null, { timeout: 60_000 });
    const bad = [
      JSON.stringify({ prompt: "Hi", chosen: "Hello!", rejected: "Go away." }),
      JSON.stringify({ prompt: "Hi", chosen: 5, rejected: "Go away." }),
    ].join("\n");
    await page.setInputFiles("#upload", { name: "bad.jsonl", mimeType: "application/json", buffer: Buffer.from(bad) });
    const error = await page.locator("#upload-error").innerText({ timeout: 30_000 });
    assert.match(error, /bad\.jsonl: line 2: field `chosen`/);
    assert.equal(await phase(page), "paused", "the run goes on");
    assert.match(await page.locator("#status").innerText(), /step 1\//);
    // Settings live in the address: choosing DPO puts it there.
    await page.click('button[data-mode="dpo"]');
    assert.match(page.url(), /mode=dpo/);
    assert.match(page.url(), /data=polite/);
    assert.deepEqual(session.errors, []);
  } finally {
    await session.close();
  }
});

// A safetensors file with tensor `name`'s dtype changed, its header kept at its length.
function withDtype(file, name, dtype) {
  const length = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + length).toString("utf8"));
  header[name].dtype = dtype;
  const text = JSON.stringify(header);
  assert.ok(text.length <= length, "the changed header fits");
  return Buffer.concat([file.subarray(0, 8), Buffer.from(text.padEnd(length, " ")), file.subarray(8 + length)]);
}

// A GGUF file (version 2 or 3) with its first tensor's type set to ggml type `type`.
function withGgmlType(file, type) {
  let at = 8; // past the magic and the version
  const u32 = () => { at += 4; return file.readUInt32LE(at - 4); };
  const u64 = () => { at += 8; return Number(file.readBigUInt64LE(at - 8)); };
  const skipString = () => {
    const length = u64();
    at += length;
  };
  // Bytes of each metadata value type (gguf.h's gguf_type); 8 is a string, 9 an array.
  const widths = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skipValue = (kind) => {
    if (kind === 8) skipString();
    else if (kind === 9) {
      const item = u32();
      const count = u64();
      if (item in widths) at += count * widths[item];
      else for (let i = 0; i < count; i++) skipValue(item);
    } else at += widths[kind];
  };
  u64(); // tensors
  const pairs = u64();
  for (let i = 0; i < pairs; i++) {
    skipString();
    skipValue(u32());
  }
  skipString(); // the first tensor's name
  const dimensions = u32();
  at += 8 * dimensions;
  const copy = Buffer.from(file);
  copy.writeUInt32LE(type, at);
  return copy;
}

/** Downloads the run folder and the reward model from the page and unpacks both (into a new
 * directory named from `prefix`); returns their paths. */
async function downloadRunAndRewardModel(page, prefix) {
  const saved = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const button of ["#download-model", "#download-reward-model"]) await downloadInto(page, button, saved);
  return [path.join(saved, "hafrm-run"), path.join(saved, "hafrm-reward-model")];
}

/** The engine scores a response alike with a downloaded run folder and its exported reward
 * model, and the reward head was trained. */
function assertScoreAlike(runDir, exported) {
  const reward = (args) => JSON.parse(execFileSync(hafrm, ["score", ...args, "--backend", "cpu", "--json", "--prompt", "Write a note to my neighbour.", "--response", "Could you please keep it down? Thank you."]).toString()).reward;
  const [fromRun, fromExport] = [reward(["--model", runDir]), reward(["--backbone", exported])];
  assert.ok(Math.abs(fromRun - fromExport) <= 1e-4 * Math.max(1, Math.abs(fromRun)), `the run scores ${fromRun}, its export ${fromExport}`);
  assert.notEqual(fromRun, 0, "a trained reward head");
}

// A pretrained model from the user's disk: the tiny random Llama folder of the engine's
// fixtures (transformers' own files: config.json, model.safetensors in BF16, a byte-level BPE
// tokenizer.json and a chat template). Bad files first, each refused by name with the current
// run untouched; then the folder, trained with LoRA on the CPU fallback, as `hafrm train
// --backbone <folder> --lora 8 --template chat` trains it.
const FIXTURES = path.join(path.dirname(new URL(import.meta.url).pathname), "../../engine/tests/fixtures");

test("a pretrained model opened from disk trains with LoRA as the command line does, and bad files keep the run", { timeout: 480_000 }, async () => {
  const llama = path.join(FIXTURES, "hf/llama");
  const query = "?data=polite&pairs=100&steps=6&batch=4&eval_every=3";
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], query);
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    const tinyTokens = await page.locator('#pair-view .response[data-label="chosen"] .tok').count();
    const refused = async (files, pattern) => {
      await page.setInputFiles("#backbone-files", files);
      const error = await page.locator("#backbone-error").innerText({ timeout: 60_000 });
      assert.match(error, pattern);
      assert.equal(await phase(page), "ready", "the current run stays");
      assert.match(await page.locator("footer").innerText(), /tiny GPT/);
    };
    await refused([path.join(llama, "model.safetensors"), path.join(llama, "tokenizer.json")], /has no config\.json/);
    const gguf = fs.readFileSync(path.join(FIXTURES, "gguf/llama-quants.gguf"));
    await refused({ name: "cut.gguf", mimeType: "application/octet-stream", buffer: gguf.subarray(0, gguf.length - 100) }, /cut\.gguf: truncated/);
    await refused([path.join(llama, "config.json"), path.join(llama, "model.safetensors")].map((f) => f).concat([path.join(FIXTURES, "gguf/gpt2.gguf")]), /gpt2\.gguf: a GGUF file holds the whole model/);
    await refused({ name: "q5.gguf", mimeType: "application/octet-stream", buffer: withGgmlType(gguf, 6) }, /q5\.gguf: tensor `[^`]+` has type Q5_0 \(ggml type 6\), which hafrm cannot read/);
    // The folder's files picked together, one of them spoilt: a truncated weight file, an
    // architecture hafrm does not read, a weight type it cannot read, a tokenizer that is not
    // the model's (one token more than the model has embeddings for).
    const spoilt = (name, bytes) => ["config.json", "model.safetensors", "tokenizer.json"].map((file) => ({ name: file, mimeType: "application/octet-stream", buffer: file === name ? bytes : fs.readFileSync(path.join(llama, file)) }));
    const weights = fs.readFileSync(path.join(llama, "model.safetensors"));
    await refused(spoilt("model.safetensors", weights.subarray(0, weights.length - 100)), /model\.safetensors: not a safetensors file: tensor `[^`]+` lies outside the file .*is it truncated\?/);
    const config = JSON.parse(fs.readFileSync(path.join(llama, "config.json"), "utf8"));
    await refused(spoilt("config.json", Buffer.from(JSON.stringify({ ...config, architectures: ["BertForMaskedLM"] }))), /config\.json: field `architectures`: `BertForMaskedLM` is not supported/);
    await refused(spoilt("model.safetensors", withDtype(weights, "model.norm.weight", "F64")), /model\.safetensors: tensor `model\.norm\.weight` has dtype F64; supported: F32, F16, BF16/);
    const tokenizer = JSON.parse(fs.readFileSync(path.join(llama, "tokenizer.json"), "utf8"));
    tokenizer.added_tokens.push({ id: 748, content: "<|not-this-model|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    await refused(spoilt("tokenizer.json", Buffer.from(JSON.stringify(tokenizer))), /the tokenizer tokenizer\.json emits token ids up to 748, but the model's vocabulary has 748 entries/);
    // A whole GGUF file is read and described.
    await page.setInputFiles("#backbone-files", path.join(FIXTURES, "gguf/llama-quants.gguf"));
    assert.match(await page.locator("#backbone-info").innerText({ timeout: 60_000 }), /llama-quants\.gguf[\s\S]*LlamaForCausalLM/);

    // The folder, picked whole.
    await page.setInputFiles("#backbone-folder", llama);
    const info = await page.locator("#backbone-info").innerText({ timeout: 60_000 });
    assert.match(info, /^llama\n/);
    assert.match(info, /LlamaForCausalLM · \d+k parameters · 2 layers, d_model 32, vocabulary 748/);
    assert.match(info, /training LoRA rank 8 \(\d+k parameters trained\), 4 pairs a step of up to \d+ tokens, needs about .* at most; a page holds up to 4 GiB/);
    assert.equal(await phase(page), "ready", "reading a model replaces nothing");
    await page.click("#use-backbone");
    await page.waitForFunction(() => /^llama · /.test(document.querySelector("footer")?.innerText ?? ""), null, { timeout: 120_000 });
    await waitForPhase(page, ["ready"], 240_000);
    assert.match(await page.locator("footer").innerText(), /llama · \d+k parameters, \d+k trained · 90 training \/ 10 held-out pairs/);
    await page.click("#train");
    await waitForPhase(page, ["finished", "failed"], 300_000);
    assert.equal(await page.locator("#failure").count(), 0);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hafrm-pretrained-"));
    execFileSync(hafrm, ["train", "--backbone", llama, "--lora", "8", "--template", "chat", "--max-length", "64", "--demo", "polite", "--demo-pairs", "100",
      "--steps", "6", "--batch", "4", "--eval-every", "3", "--backend", "cpu", "--out", path.join(dir, "run")]);
    const records = fs.readFileSync(path.join(dir, "run", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const lastTrain = records.filter((r) => r.kind === "train").pop();
    const lastEval = records.filter((r) => r.kind === "eval").pop();
    const loss = Number(await page.locator("#loss").getAttribute("data-last"));
    assert.ok(Math.abs(loss - lastTrain.loss) <= 1e-2 * Math.abs(lastTrain.loss) + 1e-4, `the page's loss ${loss}, hafrm train's ${lastTrain.loss}`);
    const accuracy = Number(await page.locator("#heldout-accuracy").getAttribute("data-value"));
    assert.ok(Math.abs(accuracy - lastEval.accuracy) <= 1 / lastEval.pairs + 1e-6, `the page's held-out accuracy ${accuracy}, hafrm train's ${lastEval.accuracy}`);

    // The model's own tokens, as text: byte-level BPE's space markers are spaces again, and the
    // pieces put together are the response.
    const pieces = await page.locator('#pair-view .response[data-label="chosen"] .tok').allInnerTexts();
    assert.notEqual(pieces.length, tinyTokens, "the model's tokenizer, not the built-in one");
    assert.ok(!pieces.some((p) => p.includes("Ġ")), `no byte-level markers: ${pieces}`);
    await page.locator("#pair-view .tok").first().hover();
    assert.match(await page.locator(".hover-card").innerText(), /id \d+/);

    // The downloads: the run folder, with the backbone's files kept, and the reward model as
    // `hafrm export` writes it. The engine reads both back, with equal rewards.
    const [runDir, exported] = await downloadRunAndRewardModel(page, "hafrm-pretrained-download-");
    assert.deepEqual(fs.readFileSync(path.join(runDir, "backbone/chat_template.jinja")), fs.readFileSync(path.join(llama, "chat_template.jinja")));
    assert.equal(JSON.parse(fs.readFileSync(path.join(exported, "config.json"), "utf8")).architectures[0], "LlamaForSequenceClassification");
    // A bare backbone scores with the plain template: the run does too, for the comparison.
    const runConfig = JSON.parse(fs.readFileSync(path.join(runDir, "config.json"), "utf8"));
    assert.equal(runConfig.encode.template, "chat");
    runConfig.encode.template = "plain";
    fs.writeFileSync(path.join(runDir, "config.json"), JSON.stringify(runConfig));
    assertScoreAlike(runDir, exported);
    assert.deepEqual(session.errors, [], "no console errors");
  } finally {
    await session.close();
  }
});

// A race of a pretrained model: each method starts from the folder's weights (read again for
// each lane) and trains as `hafrm train --backbone <folder> --mode <method>` does.
test("a race of a pretrained model trains each method from its weights as the command line does", { timeout: 480_000 }, async () => {
  const llama = path.join(FIXTURES, "hf/llama");
  const methods = ["haf", "baseline"];
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], `?data=polite&pairs=100&steps=4&batch=4&eval_every=2&compare=${methods}`);
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    await page.setInputFiles("#backbone-folder", llama);
    const info = await page.locator("#backbone-info").innerText({ timeout: 60_000 });
    assert.match(info, /for each of 2 methods/, info);
    await page.click("#use-backbone");
    await page.waitForFunction(() => /^llama · /.test(document.querySelector("footer")?.innerText ?? ""), null, { timeout: 120_000 });
    await waitForPhase(page, ["ready"], 240_000);
    await page.click("#train");
    await waitForPhase(page, ["finished", "failed"], 300_000);
    assert.equal(await page.locator("#failure").count(), 0);
    assert.match(page.url(), /compare=haf,baseline/);
    const losses = [];
    for (const method of methods) {
      const stat = page.locator(`#race-${method}`);
      assert.equal(await stat.getAttribute("data-step"), "4", method);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hafrm-pretrained-race-${method}-`));
      execFileSync(hafrm, ["train", "--backbone", llama, "--lora", "8", "--template", "chat", "--max-length", "64", "--demo", "polite", "--demo-pairs", "100",
        "--steps", "4", "--batch", "4", "--eval-every", "2", "--mode", method, "--backend", "cpu", "--out", path.join(dir, "run")]);
      const records = fs.readFileSync(path.join(dir, "run", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      const lastTrain = records.filter((r) => r.kind === "train").pop();
      const loss = Number(await stat.getAttribute("data-loss"));
      assert.ok(Math.abs(loss - lastTrain.loss) <= 1e-2 * Math.abs(lastTrain.loss) + 1e-4, `${method}: the page's loss ${loss}, hafrm train's ${lastTrain.loss}`);
      losses.push(loss);
      // The fixture's chat template leaves responses of a token or two in its 64 positions.
      const tokens = page.locator(`#pair-view .lane[data-method="${method}"] .response[data-label="chosen"] .tok`);
      assert.ok((await tokens.count()) >= 1, `${method}: the chosen response shows its tokens`);
    }
    assert.notEqual(losses[0], losses[1], "HaF's loss has the policy term the baseline lacks");
    assert.deepEqual(session.errors, [], "no console errors");
  } finally {
    await session.close();
  }
});

// The same model on WebGPU (SwiftShader), without its chat template (whose system prompt
// fills the fixture's 64 positions, leaving a response one token) so that the token views
// have whole responses. The worker's script is served with the adapter's
// `maxStorageBufferBindingSize` reported as 192 KiB (a real adapter reports at least 128 MiB,
// and some GPUs no more, against logits of hundreds of MiB for a real vocabulary). The page
// starts on the CPU; with WebGPU chosen, at 2 pairs a step of up to T tokens the logits,
// 4 rows x T tokens x 748 x 4 bytes, do not fit one buffer and the model is refused by name;
// at 1 pair (half as much) it is taken, and trains on WebGPU as `hafrm train` does on the
// CPU. (Any T from 17 to 32 falls between the two; the polite pairs have about 27.)
const SMALL_BUFFERS = `{
  const limits = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, "limits");
  Object.defineProperty(GPUAdapter.prototype, "limits", { get() {
    const real = limits.get.call(this);
    return new Proxy(real, { get: (l, key) => key === "maxStorageBufferBindingSize" ? 192 * 1024 : (typeof l[key] === "function" ? l[key].bind(l) : l[key]) });
  } });
}
`;
test("a pretrained model trains on WebGPU, and one whose tensors outgrow the adapter's buffers is refused by name", { timeout: 480_000 }, async () => {
  const llama = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "hafrm-plain-")), "llama");
  fs.mkdirSync(llama);
  for (const file of ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]) {
    fs.copyFileSync(path.join(FIXTURES, "hf/llama", file), path.join(llama, file));
  }
  const session = await open(["--enable-unsafe-webgpu"], "?data=polite&pairs=40&steps=2&batch=2&eval_every=2&backend=cpu", (page) =>
    page.route(WORKER_SCRIPT, async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, body: SMALL_BUFFERS + (await response.text()) });
    }));
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    assert.match(await page.locator("#backend-badge").innerText(), /CPU/);
    assert.deepEqual(builds(session.requests), ["hafrm_cpu_bg.wasm"]);
    await page.selectOption('select[name="backend"]', "webgpu");
    await page.setInputFiles("#backbone-folder", llama);
    const refusal = await page.locator("#backbone-refusal").innerText({ timeout: 60_000 });
    const [, longest, kib] = refusal.match(/2 pairs a step of up to (\d+) tokens.*the logits alone take ([\d.]+) KiB, more than the 192 KiB this WebGPU adapter allows in one buffer: try fewer pairs a step/) ?? [];
    assert.ok(longest, refusal);
    assert.equal(Number(kib), Number((4 * Number(longest) * 748 * 4 / 1024).toFixed(1)), refusal);
    assert.equal(await page.locator("#use-backbone").count(), 0);
    assert.equal(await phase(page), "ready", "the current run stays");
    assert.match(await page.locator("footer").innerText(), /tiny GPT/);

    await page.fill('input[name="batch"]', "1");
    await page.locator('input[name="batch"]').dispatchEvent("change");
    await page.setInputFiles("#backbone-folder", llama);
    await page.locator("#use-backbone").waitFor({ timeout: 60_000 });
    const half = (2 * Number(longest) * 748 * 4 / 1024).toFixed(1).replace(".", "\\.");
    assert.match(await page.locator("#backbone-info").innerText(), new RegExp(`1 pair a step of up to ${longest} tokens.*its largest tensor \\(the logits, ${half} KiB\\) fits this WebGPU adapter's 192 KiB buffers`));
    await page.click("#use-backbone");
    await page.waitForFunction(() => /^llama · /.test(document.querySelector("footer")?.innerText ?? ""), null, { timeout: 120_000 });
    await waitForPhase(page, ["ready"], 240_000);
    assert.match(await page.locator("#backend-badge").innerText(), /WebGPU/);
    assert.deepEqual(builds(session.requests), ["hafrm_bg.wasm", "hafrm_cpu_bg.wasm"], "the run on WebGPU went to a worker of the WebGPU build");
    await page.click("#train");
    await waitForPhase(page, ["finished", "failed"], 300_000);
    assert.equal(await page.locator("#failure").count(), 0);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hafrm-pretrained-webgpu-"));
    execFileSync(hafrm, ["train", "--backbone", llama, "--lora", "8", "--max-length", "64", "--demo", "polite", "--demo-pairs", "40",
      "--steps", "2", "--batch", "1", "--eval-every", "2", "--backend", "cpu", "--out", path.join(dir, "run")]);
    const records = fs.readFileSync(path.join(dir, "run", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const lastTrain = records.filter((r) => r.kind === "train").pop();
    const lastEval = records.filter((r) => r.kind === "eval").pop();
    const loss = Number(await page.locator("#loss").getAttribute("data-last"));
    assert.ok(Math.abs(loss - lastTrain.loss) <= 1e-2 * Math.abs(lastTrain.loss), `WebGPU's loss ${loss}, hafrm train's on the CPU ${lastTrain.loss}`);
    const accuracy = Number(await page.locator("#heldout-accuracy").getAttribute("data-value"));
    assert.ok(Math.abs(accuracy - lastEval.accuracy) <= 1 / lastEval.pairs + 1e-6, `WebGPU's held-out accuracy ${accuracy}, hafrm train's ${lastEval.accuracy}`);
    const pieces = await page.locator('#pair-view .response[data-label="chosen"] .tok').allInnerTexts();
    assert.ok(pieces.length > 10 && !pieces.some((p) => p.includes("Ġ")), `the model's tokens as text: ${pieces}`);
    // The fixture's vocabulary splits "é" into 2 byte-level tokens and "😊" into 4, and its
    // tokenizer's prefix space shares the offsets of "M": each character shows once, and the
    // later tokens over it are narrow tokens of their own (1 + 1 + 3).
    await page.fill("#own-response", "Merci, café 😊");
    await page.click("#score-own");
    await page.waitForFunction(() => document.querySelector("#own-view")?.innerText.includes("😊"), null, { timeout: 60_000 });
    const ownPieces = await page.locator("#own-view .tok").allInnerTexts();
    assert.ok(ownPieces.join("").startsWith("Merci, café 😊"), `the response, each character once: ${JSON.stringify(ownPieces)}`);
    assert.equal(ownPieces.filter((p) => p.includes("😊")).length, 1);
    assert.equal(await page.locator("#own-view .tok.piece").count(), 1 + 1 + 3);
    await page.locator("#own-view .tok.piece").last().hover();
    assert.match(await page.locator(".hover-card").innerText(), /"😊"[\s\S]*token 4 of 4 over this character/);

    // Written on WebGPU, in a build without a CPU backend: each weight read back from the GPU.
    assertScoreAlike(...(await downloadRunAndRewardModel(page, "hafrm-webgpu-download-")));
    assert.deepEqual(session.errors, [], "no console errors");
  } finally {
    await session.close();
  }
});

// A learning rate of 1e9 diverges within a few steps: the page shows the engine's message and
// keeps the model from before the step, which downloads and scores.
test("a diverging run stops with the engine's message and keeps a model that loads", { timeout: 300_000 }, async () => {
  const session = await open(["--disable-gpu", "--disable-features=WebGPU"], "?data=polite&pairs=40&steps=20&batch=4&eval_every=1&lr=1000000000");
  const { page } = session;
  try {
    await waitForPhase(page, ["ready"], 240_000);
    await page.click("#train");
    await waitForPhase(page, ["failed"], 240_000);
    const failure = await page.locator("#failure").innerText();
    assert.match(failure, /training diverged at step \d+: the [a-z -]+ is (NaN|inf|-inf)/, failure);
    assert.match(failure, /lower the learning rate \(--lr, now 1e9\)/, failure);
    const run = await downloadRun(page);
    const out = execFileSync(hafrm, ["score", "--model", run, "--backend", "cpu", "--json", "--prompt", "Hi", "--response", "Hello."]).toString();
    assert.ok(Number.isFinite(JSON.parse(out).reward), out);
    assert.deepEqual(session.errors, []);
  } finally {
    await session.close();
  }
});

/** A port nothing listens on now. */
async function freePort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// The README's serve command, as a user runs it: it builds (nothing to do after tests/run.sh
// built the app), serves, and the page trains a step from that server.
test("the README's serve command serves a page that trains", { timeout: 600_000 }, async () => {
  const port = await freePort();
  const server = spawn("bash", ["app/serve.sh"], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  server.stdout.on("data", (d) => { output += d; });
  server.stderr.on("data", (d) => { output += d; });
  let stopped = false;
  const exited = new Promise((resolve) => server.on("exit", (code, signal) => { stopped = true; resolve({ code, signal }); }));
  try {
    const origin = `http://127.0.0.1:${port}`;
    const listening = (async () => {
      while (!output.includes(origin) && !stopped) await new Promise((r) => setTimeout(r, 200));
    })();
    await listening;
    assert.ok(!stopped, `app/serve.sh exited before serving:\n${output}`);
    for (const file of ["hafrm_bg.wasm", "hafrm_cpu_bg.wasm"]) {
      const wasm = await fetch(`${origin}/${file}`);
      assert.equal(wasm.headers.get("content-type"), "application/wasm", file);
    }
    const session = await open(["--disable-gpu", "--disable-features=WebGPU"], "?data=polite&pairs=40&steps=5&batch=4", async () => {}, { server: null, origin });
    try {
      await waitForPhase(session.page, ["ready"], 240_000);
      await session.page.click("#step");
      await waitForPhase(session.page, ["paused"], 120_000);
      assert.match(await session.page.locator("#status").innerText(), /step 1\//);
      assert.deepEqual(session.errors, []);
    } finally {
      await session.close();
    }
    assert.equal(server.exitCode, null, `the server is still up:\n${output}`);
  } finally {
    server.kill("SIGTERM");
    await exited;
  }
});
