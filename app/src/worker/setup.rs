//! Setting a run up: its backend, its model or models (one per lane of a race), its pairs.

use hafrm::data::PreferencePair;
use hafrm::data::formats::ReadLimits;
use hafrm::run::{EncodedPairs, Preparation, run_pairs};
use hafrm::tokenizer::TextEncoder;

use crate::browser::yield_to_browser;
use crate::protocol::{Event, Phase};
use crate::settings::Settings;

use super::backbone::{count, fits, open_backbone};
use super::backend::backend;
use super::drive::{ESTIMATE_PAIRS, Run};
use super::messages::{is_current, post};

pub(super) async fn run(
    settings: Settings,
    upload: Option<(String, Vec<PreferencePair>)>,
    files: Vec<web_sys::File>,
    cpu_because: Option<String>,
    generation: u64,
) -> Result<(), String> {
    let emit = |event| post(generation, 0, event);
    emit(Event::Phase(Phase::Starting("starting the backend".into())));
    let (device, badge, max_buffer) = match backend(settings.backend, cpu_because).await {
        Ok(backend) => backend,
        Err(reason) => {
            emit(Event::CpuBuild(reason));
            return Ok(());
        }
    };
    // On a software adapter the attribution check takes many minutes (integrated gradients
    // alone runs 32 copies of every held-out sequence); `hafrm eval --attribution` checks a
    // downloaded run.
    let checks = !badge.software;
    emit(Event::Badge(badge));

    // A pretrained backbone brings its tokenizer.
    let opened = match settings.backbone {
        Some(_) => {
            emit(Event::Phase(Phase::Starting("reading the model's files".into())));
            Some(open_backbone(&files).await?)
        }
        None => None,
    };
    let (encoder, tokenizer, backbone) = match &opened {
        Some(opened) => {
            let encoder = opened.folder.encoder(&opened.name).map_err(|e| e.to_string())?;
            let chat = encoder.has_chat_template();
            (encoder, opened.tokenizer.as_str(), Some((&opened.folder.config, chat)))
        }
        None => (TextEncoder::builtin(), "built in", None),
    };
    let upload_size = upload.as_ref().map(|(name, pairs)| (name.as_str(), pairs.len()));
    let runs = settings.runs();
    let configs = runs.iter().map(|run| run.run_config(encoder.vocab_size(), upload_size, backbone)).collect::<hafrm::Result<Vec<_>>>().map_err(|e| e.to_string())?;
    let encoder = configs[0].run_encoder(encoder, tokenizer).map_err(|e| e.to_string())?;
    // Every run of a race names the same data and tokenises it alike: read and tokenised once.
    let pairs = run_pairs(&configs[0], upload.map(|(_, pairs)| pairs), ReadLimits::default()).map_err(|e| e.to_string())?;
    let pairs = EncodedPairs::new(pairs, &encoder, &configs[0].encode).map_err(|e| e.to_string())?;
    fits(&configs[0], configs.len(), pairs.longest(), opened.is_some(), max_buffer)?;
    emit(Event::Pairs(pairs.eval_texts().iter().map(pair_label).collect()));
    // The files read above serve the first lane; a race's others read them again, since a
    // run's model takes the tensors it reads.
    let mut first_folder = opened.map(|opened| opened.folder);
    let mut lanes = Vec::with_capacity(runs.len());
    for (run, config) in runs.iter().zip(configs) {
        let what = match runs.len() {
            1 => "setting the model up".to_string(),
            n => format!("setting up {} ({} of {n})", run.mode.label(), lanes.len() + 1),
        };
        emit(Event::Phase(Phase::Starting(what.clone())));
        let preparation = if settings.backbone.is_none() {
            Preparation::new(config, encoder.clone(), pairs.clone(), &device, |_, _| {}).await
        } else {
            let folder = match first_folder.take() {
                Some(folder) => folder,
                None => open_backbone(&files).await?.folder,
            };
            let label = what.clone();
            let on_load = move |read: usize, total: usize| {
                if read % 8 == 0 || read == total {
                    post(generation, 0, Event::Phase(Phase::Starting(format!("{label}: {read} of {total} tensors read"))));
                }
            };
            Preparation::from_backbone(config, encoder.clone(), pairs.clone(), folder, &device, on_load).await
        }
        .map_err(|e| e.to_string())?;
        let mut session = preparation.finish().map_err(|e| e.to_string())?;
        emit(Event::Phase(Phase::Starting(format!("{what}: scoring held-out pairs before training"))));
        // The curves start at step 0, on the pairs of the early estimates.
        session.evaluate_now(ESTIMATE_PAIRS).await.map_err(|e| e.to_string())?;
        if !is_current(generation) {
            return Ok(());
        }
        lanes.push(session);
        yield_to_browser().await;
    }
    let lead = &lanes[0];
    let race = match settings.compare.as_slice() {
        [] => String::new(),
        methods => format!(" · racing {} on the same data and seed", methods.iter().map(|m| m.label()).collect::<Vec<_>>().join(", ")),
    };
    let model = match &settings.backbone {
        Some(name) => {
            let trained = hafrm::tuning::trainable_parameters(&lead.config.train, &lead.config.model);
            format!("{name} · {} parameters, {} trained", count(lead.parameter_count()), count(trained))
        }
        None => format!("{} GPT · {} parameters", settings.preset, count(lead.parameter_count())),
    };
    let summary = format!("{model} · {} training / {} held-out pairs{race}", lead.trainer.train_len(), lead.eval_texts.len());
    // Every lane has the same steps: the lead's say them.
    emit(Event::Model { total_steps: lead.trainer.total_steps(), summary });
    let run = Run { generation, lanes, selected: 0, own: None, download: None, checks, last_check: None };
    for lane in 0..run.lanes.len() {
        run.publish_records(lane, 0, 0.0);
    }
    emit(Event::Phase(Phase::Starting("attributing the held-out pairs' tokens".into())));
    // Not the attribution check: an untrained reward head scores every token zero.
    run.refresh_pair_views().await;
    emit(Event::Phase(Phase::Ready));
    run.drive().await
}

pub(super) fn pair_label(pair: &PreferencePair) -> String {
    let text: String = pair.prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 60 { format!("{}…", text.chars().take(59).collect::<String>()) } else { text }
}
