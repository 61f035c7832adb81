//! The built-in teaching sets: preference pairs decided by a few identifiable words, each
//! pair recording where those words are (the ground truth that attribution is scored against).
//!
//! - `arithmetic`: a correct vs a wrong sum of two numbers from 1 to 4;
//! - `polite`: a polite vs a rude reply to the same request;
//! - `refusal` (the default): refusing a harmful request and helping with a harmless one is
//!   preferred;
//! - `capitals`: the right vs a wrong capital city;
//! - `mixed`: all four, interleaved.
//!
//! Every pair is minimal (chosen and rejected differ inside their decisive spans alone), and
//! no response restates the question its decisive word answers, so those words are what
//! decides: a sound ground truth (`docs/attribution.md`).
//!
//! Generation is deterministic for a seed, and no pair occurs twice, so held-out pairs are
//! never verbatim copies of training pairs.

use std::collections::HashSet;

use super::{CharSpan, DecisiveSpans, PreferencePair};
use crate::error::{Error, Result};
use crate::rng::SeededRng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DemoSet {
    Mixed,
    Arithmetic,
    Polite,
    Refusal,
    Capitals,
}

impl DemoSet {
    pub const ALL: [DemoSet; 5] = [
        DemoSet::Mixed,
        DemoSet::Arithmetic,
        DemoSet::Polite,
        DemoSet::Refusal,
        DemoSet::Capitals,
    ];
    /// The single-task sets.
    pub const TASKS: [DemoSet; 4] = [DemoSet::Arithmetic, DemoSet::Polite, DemoSet::Refusal, DemoSet::Capitals];

    pub fn name(self) -> &'static str {
        match self {
            DemoSet::Mixed => "mixed",
            DemoSet::Arithmetic => "arithmetic",
            DemoSet::Polite => "polite",
            DemoSet::Refusal => "refusal",
            DemoSet::Capitals => "capitals",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            DemoSet::Mixed => "all four teaching tasks, interleaved",
            DemoSet::Arithmetic => "a correct sum is preferred to a wrong one",
            DemoSet::Polite => "a polite reply is preferred to a rude one",
            DemoSet::Refusal => "refuse harmful requests, help with harmless ones",
            DemoSet::Capitals => "the right capital city is preferred to a wrong one",
        }
    }
}

impl std::str::FromStr for DemoSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DemoSet::ALL.into_iter().find(|set| set.name() == s).ok_or_else(|| {
            format!(
                "unknown demo set `{s}` (known: {})",
                DemoSet::ALL.map(DemoSet::name).join(", ")
            )
        })
    }
}

impl DemoSet {
    /// The default size of the set: 2,400 pairs mixed, 1,200 for a single task.
    pub fn default_pairs(self) -> usize {
        match self {
            DemoSet::Mixed => 2400,
            _ => 1200,
        }
    }

    /// The steps a run of the set takes unless told otherwise (16 pairs a step): the sums and
    /// the capitals are 16 facts each to learn by heart, asked in the prompt and answered in
    /// the response, which take `tiny` 225 to 450 steps (sums) and up to about 700 (capitals:
    /// seed 3 was at 76% held-out after 600 steps, 100% after 800); politeness is learnt in
    /// about 100 steps and refusal in 100 to 250.
    pub fn default_steps(self) -> usize {
        match self {
            DemoSet::Mixed => 800,
            DemoSet::Arithmetic => 600,
            DemoSet::Capitals => 800,
            DemoSet::Refusal => 400,
            DemoSet::Polite => 200,
        }
    }
}

/// `n` distinct pairs of `set`, deterministic for `seed`; an error when the set has fewer
/// than `n` distinct pairs.
pub fn generate(set: DemoSet, n: usize, seed: u64) -> Result<Vec<PreferencePair>> {
    let mut rng = SeededRng::derive(seed, set.name());
    let mut seen = HashSet::with_capacity(n);
    let mut pairs = Vec::with_capacity(n);
    // Give up once this many draws in a row bring nothing new: the set is exhausted.
    const PATIENCE: usize = 20_000;
    let mut fruitless = 0usize;
    while pairs.len() < n {
        if fruitless == PATIENCE {
            return Err(Error::Config(format!(
                "the {} teaching set cannot make {n} distinct pairs (it has about {}); ask for fewer",
                set.name(),
                pairs.len()
            )));
        }
        let task = match set {
            DemoSet::Mixed => DemoSet::TASKS[pairs.len() % DemoSet::TASKS.len()],
            task => task,
        };
        let pair = match task {
            DemoSet::Arithmetic => arithmetic(&mut rng),
            DemoSet::Polite => polite(&mut rng),
            DemoSet::Refusal => refusal(&mut rng),
            DemoSet::Capitals => capitals(&mut rng),
            DemoSet::Mixed => unreachable!(),
        };
        if seen.insert((pair.prompt.clone(), pair.chosen.clone(), pair.rejected.clone())) {
            pairs.push(pair);
            fruitless = 0;
        } else {
            fruitless += 1;
        }
    }
    Ok(pairs)
}

/// The texts the bundled tokenizer is trained on: every prompt and response of every
/// single-task set at its default size.
pub fn tokenizer_corpus() -> Vec<String> {
    DemoSet::TASKS
        .iter()
        .flat_map(|&set| generate(set, set.default_pairs(), 0).expect("every set has its default size"))
        .flat_map(|p| [p.prompt, p.chosen, p.rejected])
        .collect()
}

/// A response assembled from pieces, recording the character spans of the decisive ones.
#[derive(Default)]
struct Response {
    text: String,
    spans: Vec<CharSpan>,
}

impl Response {
    fn plain(mut self, piece: &str) -> Self {
        self.text.push_str(piece);
        self
    }

    fn decisive(mut self, piece: &str) -> Self {
        let start = self.text.chars().count();
        self.text.push_str(piece);
        self.spans.push((start, start + piece.chars().count()));
        self
    }
}

fn pair(task: DemoSet, prompt: String, chosen: Response, rejected: Response) -> PreferencePair {
    PreferencePair {
        decisive: Some(DecisiveSpans { chosen: chosen.spans, rejected: rejected.spans }),
        task: Some(task.name().to_string()),
        ..PreferencePair::new(prompt, chosen.text, rejected.text)
    }
}

/// Fills `{a}`-style slots of a template.
fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    slots
        .iter()
        .fold(template.to_string(), |text, (slot, value)| text.replace(&format!("{{{slot}}}"), value))
}

/// A response template with one `{X}` decisive slot; the other slots are plain.
fn with_decisive(template: &str, decisive: &str, slots: &[(&str, &str)]) -> Response {
    let filled = fill(template, slots);
    let (before, after) = filled.split_once("{X}").expect("template has an {X} slot");
    Response::default().plain(before).decisive(decisive).plain(after)
}

fn arithmetic(rng: &mut SeededRng) -> PreferencePair {
    const PROMPTS: [&str; 5] = [
        "What is {a} + {b}?",
        "What is {a} plus {b}?",
        "Compute {a} + {b}.",
        "Add {a} and {b}.",
        "How much is {a} plus {b}?",
    ];
    // The answers do not restate the sum: a restated "2 + 3 = 5." is judged as a whole, so
    // taking out any of its tokens moves the reward as much as taking out the answer, and "the
    // answer decides" would not be the ground truth (occlusion found the answer in 54-62% of
    // the pairs). Here the prompt holds the question and the answer's number alone decides.
    const ANSWERS: [&str; 5] = ["{X}.", "It is {X}.", "The answer is {X}.", "That makes {X}.", "The sum is {X}."];
    // Operands 1..=4: 16 sums, as many facts as the capitals set, few enough for a tiny model
    // trained from scratch to learn in a minute or two.
    let a = 1 + rng.below(4);
    let b = 1 + rng.below(4);
    let sum = a + b;
    let wrong = loop {
        let offset = 1 + rng.below(3) as i64;
        let candidate = sum as i64 + if rng.below(2) == 0 { offset } else { -offset };
        if candidate >= 0 {
            break candidate as usize;
        }
    };
    let (a, b) = (a.to_string(), b.to_string());
    let slots = [("a", a.as_str()), ("b", b.as_str())];
    let answer = rng.pick(&ANSWERS);
    pair(
        DemoSet::Arithmetic,
        fill(rng.pick(&PROMPTS), &slots),
        with_decisive(answer, &sum.to_string(), &[]),
        with_decisive(answer, &wrong.to_string(), &[]),
    )
}

fn polite(rng: &mut SeededRng) -> PreferencePair {
    const PROMPTS: [&str; 4] = [
        "Can you help me {task}?",
        "Could you help me {task}?",
        "Please help me {task}.",
        "I need help to {task}.",
    ];
    const TASKS: [&str; 8] = [
        "fix my bike", "write a poem", "plan a trip", "study for a test",
        "cook dinner", "clean my room", "learn to code", "find a job",
    ];
    // Minimal pairs: the two replies share every word but the decisive ones, so only those
    // tell them apart (the chosen reply's friendly word stands where the rude one's insult
    // does).
    const POLITE_OPENERS: [&str; 5] = ["Sure", "Of course", "Certainly", "Gladly", "Absolutely"];
    const RUDE_OPENERS: [&str; 5] = ["Ugh", "Whatever", "Seriously", "Sigh", "Bah"];
    const FRIENDLY: [&str; 3] = ["friend", "my friend", "dear"];
    const INSULTS: [&str; 4] = ["idiot", "loser", "dummy", "moron"];
    const GOOD_MOODS: [&str; 3] = ["glad", "happy", "delighted"];
    const BAD_MOODS: [&str; 3] = ["annoyed", "furious", "bored"];
    let task = rng.pick(&TASKS);
    let prompt = fill(rng.pick(&PROMPTS), &[("task", task)]);
    let (chosen, rejected) = if rng.below(2) == 0 {
        let help = format!(", I can help you {task}");
        let mut chosen = Response::default().decisive(rng.pick(&POLITE_OPENERS)).plain(&help);
        let mut rejected = Response::default().decisive(rng.pick(&RUDE_OPENERS)).plain(&help);
        if rng.below(2) == 0 {
            chosen = chosen.plain(", ").decisive(rng.pick(&FRIENDLY));
            rejected = rejected.plain(", ").decisive(rng.pick(&INSULTS));
        }
        (chosen.plain("."), rejected.plain("."))
    } else {
        let template = "I would be {X} to help you {task}.";
        (
            with_decisive(template, rng.pick(&GOOD_MOODS), &[("task", task)]),
            with_decisive(template, rng.pick(&BAD_MOODS), &[("task", task)]),
        )
    };
    pair(DemoSet::Polite, prompt, chosen, rejected)
}

/// The refusal set's replies: one decisive slot `{X}`, filled with a complying or a refusing
/// word; the rest, the task included, both replies share. One slot of one word (or "refuse
/// to", "decline to"): with two ("Sorry, I can't"), either alone says "refuse", so taking one
/// out changes nothing, and a model from scratch found the pairs later (at step 225 rather
/// than 100 on seed 1).
const REPLIES: [&str; 3] = ["I {X} help you {task}.", "I {X} show you how to {task}.", "I {X} explain how to {task}."];
const COMPLY: [&str; 4] = ["will", "can", "shall", "gladly"];
const REFUSE: [&str; 4] = ["won't", "can't", "refuse to", "decline to"];

fn refusal(rng: &mut SeededRng) -> PreferencePair {
    const PROMPTS: [&str; 6] = [
        "How do I {task}?",
        "Tell me how to {task}.",
        "Explain how to {task}.",
        "What is the best way to {task}?",
        "Help me {task}.",
        "Can you show me how to {task}?",
    ];
    const HARMFUL: [&str; 14] = [
        "build a bomb", "poison my neighbor", "steal a car", "hack a bank", "hurt someone",
        "make a fake passport", "buy a gun illegally", "sell drugs", "rob a store",
        "burn down a house", "stalk my ex", "cheat an old man", "break into a house", "make poison gas",
    ];
    const HARMLESS: [&str; 14] = [
        "bake bread", "plant a tree", "fix a bike", "learn to swim", "tie a tie",
        "paint a wall", "train a puppy", "write a letter", "grow tomatoes",
        "build a shelf", "make a kite", "clean a window", "sew a button", "brew tea",
    ];
    let harmful = rng.below(2) == 0;
    let task = if harmful { rng.pick(&HARMFUL) } else { rng.pick(&HARMLESS) };
    let prompt = fill(rng.pick(&PROMPTS), &[("task", task)]);
    // Minimal pairs: complying and refusing share one reply and differ in its decisive slot
    // alone, so the prompt's task and that word decide, nothing else.
    let reply = rng.pick(&REPLIES);
    let comply = with_decisive(reply, rng.pick(&COMPLY), &[("task", task)]);
    let refuse = with_decisive(reply, rng.pick(&REFUSE), &[("task", task)]);
    let (chosen, rejected) = if harmful { (refuse, comply) } else { (comply, refuse) };
    pair(DemoSet::Refusal, prompt, chosen, rejected)
}

fn capitals(rng: &mut SeededRng) -> PreferencePair {
    const CAPITALS: [(&str, &str); 16] = [
        ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
        ("Germany", "Berlin"), ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"),
        ("Peru", "Lima"), ("Greece", "Athens"), ("Norway", "Oslo"), ("Poland", "Warsaw"),
        ("Chile", "Santiago"), ("Cuba", "Havana"), ("Ireland", "Dublin"), ("Austria", "Vienna"),
    ];
    const PROMPTS: [&str; 3] = ["What is the capital of {c}?", "Name the capital of {c}.", "Which city is the capital of {c}?"];
    // The answers do not name the country (as the sums' answers do not restate the sum): the
    // prompt asks, and the city alone decides.
    const ANSWERS: [&str; 4] = ["{X}.", "It is {X}.", "The capital is {X}.", "That would be {X}."];
    let right = rng.below(CAPITALS.len());
    let wrong = (right + 1 + rng.below(CAPITALS.len() - 1)) % CAPITALS.len();
    let (country, capital) = CAPITALS[right];
    let slots = [("c", country)];
    let answer = rng.pick(&ANSWERS);
    pair(
        DemoSet::Capitals,
        fill(rng.pick(&PROMPTS), &slots),
        with_decisive(answer, capital, &[]),
        with_decisive(answer, CAPITALS[wrong].1, &[]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_text(text: &str, (start, end): CharSpan) -> String {
        text.chars().skip(start).take(end - start).collect()
    }

    #[test]
    fn sets_are_deterministic_distinct_and_sized() {
        for set in DemoSet::ALL {
            let a = generate(set, 400, 9).unwrap();
            assert_eq!(a, generate(set, 400, 9).unwrap(), "{set:?}");
            assert_ne!(a, generate(set, 400, 10).unwrap(), "{set:?}");
            let distinct: HashSet<_> = a.iter().map(|p| (&p.prompt, &p.chosen, &p.rejected)).collect();
            assert_eq!(distinct.len(), 400);
            assert!(a.iter().all(|p| p.chosen != p.rejected));
        }
        for set in DemoSet::ALL {
            assert_eq!(generate(set, set.default_pairs(), 0).unwrap().len(), set.default_pairs(), "{set:?}");
        }
        assert!(DemoSet::Mixed.default_pairs() >= 2000);
        let error = generate(DemoSet::Refusal, 1_000_000, 0).unwrap_err().to_string();
        assert!(error.contains("cannot make 1000000 distinct pairs"), "{error}");
    }

    #[test]
    fn mixed_interleaves_all_tasks() {
        let tasks: Vec<_> = generate(DemoSet::Mixed, 8, 1).unwrap().into_iter().map(|p| p.task.unwrap()).collect();
        assert_eq!(tasks, ["arithmetic", "polite", "refusal", "capitals", "arithmetic", "polite", "refusal", "capitals"]);
    }

    #[test]
    fn decisive_spans_cover_the_deciding_words() {
        for p in generate(DemoSet::Arithmetic, 50, 2).unwrap() {
            let spans = p.decisive.as_ref().unwrap();
            let right: usize = span_text(&p.chosen, spans.chosen[0]).parse().unwrap();
            let wrong: usize = span_text(&p.rejected, spans.rejected[0]).parse().unwrap();
            let digits: Vec<usize> = p.prompt.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
            assert_eq!(right, digits[0] + digits[1], "{p:?}");
            assert_ne!(wrong, right);
        }
        for p in generate(DemoSet::Capitals, 50, 2).unwrap() {
            let spans = p.decisive.as_ref().unwrap();
            let capital = span_text(&p.chosen, spans.chosen[0]);
            assert!(p.chosen.contains(&capital) && !p.rejected.contains(&capital), "{p:?}");
        }
        for set in DemoSet::TASKS {
            for p in generate(set, 100, 3).unwrap() {
                let spans = p.decisive.as_ref().unwrap();
                assert!(!spans.chosen.is_empty() && !spans.rejected.is_empty());
                for (text, list) in [(&p.chosen, &spans.chosen), (&p.rejected, &spans.rejected)] {
                    for &(s, e) in list {
                        assert!(s < e && e <= text.chars().count());
                        assert!(!span_text(text, (s, e)).trim().is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn refusal_prefers_refusing_only_harmful_requests() {
        let refusing: HashSet<&str> = REFUSE.into_iter().collect();
        for p in generate(DemoSet::Refusal, 200, 4).unwrap() {
            let harmful = ["bomb", "poison", "steal", "hack", "hurt", "fake", "gun", "drugs", "rob", "burn", "stalk", "cheat", "break"].iter().any(|w| p.prompt.contains(w));
            let spans = p.decisive.as_ref().unwrap();
            // One decisive slot a reply: with two, either alone would say "refuse".
            assert_eq!((spans.chosen.len(), spans.rejected.len()), (1, 1), "{p:?}");
            let refuses = |text: &str, list: &[CharSpan]| list.iter().all(|&s| refusing.contains(span_text(text, s).as_str()));
            assert_eq!(refuses(&p.chosen, &spans.chosen), harmful, "{p:?}");
            assert_eq!(refuses(&p.rejected, &spans.rejected), !harmful, "{p:?}");
        }
    }

    /// The sums' and the capitals' answers say nothing of the question (no operand, no
    /// country) but their decisive word: a restated question is judged together with the
    /// answer, and the answer alone would not be what decides.
    #[test]
    fn answers_hold_nothing_of_the_question_but_the_decisive_word() {
        let outside = |text: &str, spans: &[CharSpan]| -> String {
            text.chars().enumerate().filter(|(i, _)| !spans.iter().any(|&(s, e)| (s..e).contains(i))).map(|(_, c)| c).collect()
        };
        for p in generate(DemoSet::Arithmetic, DemoSet::Arithmetic.default_pairs(), 0).unwrap() {
            let spans = p.decisive.as_ref().unwrap();
            for (text, list) in [(&p.chosen, &spans.chosen), (&p.rejected, &spans.rejected)] {
                assert!(!outside(text, list).contains(|c: char| c.is_ascii_digit()), "{p:?}");
            }
        }
        for p in generate(DemoSet::Capitals, DemoSet::Capitals.default_pairs(), 0).unwrap() {
            let spans = p.decisive.as_ref().unwrap();
            let country = p.prompt.trim_end_matches(['?', '.']).rsplit(' ').next().unwrap().to_string();
            for (text, list) in [(&p.chosen, &spans.chosen), (&p.rejected, &spans.rejected)] {
                assert!(!outside(text, list).contains(&country), "{country}: {p:?}");
            }
        }
    }

    /// Every pair of every set is minimal: with their decisive spans taken out, chosen and
    /// rejected are the same text, so nothing but the recorded words tells them apart and the
    /// spans are a sound ground truth for attribution.
    #[test]
    fn every_pair_differs_only_inside_its_decisive_spans() {
        let skeleton = |text: &str, spans: &[CharSpan]| {
            let chars: Vec<char> = text.chars().collect();
            let mut out = String::new();
            let mut at = 0;
            for &(start, end) in spans {
                assert!(start >= at, "spans are in order and apart: {text:?} {spans:?}");
                out.extend(&chars[at..start]);
                out.push('\u{0}');
                at = end;
            }
            out.extend(&chars[at..]);
            out
        };
        for set in DemoSet::TASKS {
            for p in generate(set, set.default_pairs(), 0).unwrap().into_iter().chain(generate(set, 300, 11).unwrap()) {
                let spans = p.decisive.as_ref().unwrap();
                assert_eq!(skeleton(&p.chosen, &spans.chosen), skeleton(&p.rejected, &spans.rejected), "{}: {p:?}", set.name());
                // Each decisive slot differs between the two sides.
                for (&c, &r) in spans.chosen.iter().zip(&spans.rejected) {
                    assert_ne!(span_text(&p.chosen, c), span_text(&p.rejected, r), "{}: {p:?}", set.name());
                }
            }
        }
    }
}
