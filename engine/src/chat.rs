//! A checkpoint's own chat template (`--template chat`), rendered as transformers'
//! `apply_chat_template` renders it: Jinja (minijinja, with Python's string methods) with
//! `trim_blocks` and `lstrip_blocks`, given `messages`, `add_generation_prompt`, `bos_token`
//! and `eos_token`.
//!
//! hafrm reads every dialogue into HH-RLHF's text form (`"\n\nHuman: …\n\nAssistant:"`,
//! `data::formats`); here its turns become messages again. A prompt without speaker tags is one
//! user message. Each response is cut from the rendered dialogue the way TRL's
//! `maybe_apply_chat_template` cuts it: the dialogue with the response as the last assistant
//! message, minus the prompt rendered with the generation prompt (so it keeps the template's
//! end-of-turn text; the tokenizer's EOS follows it).

use std::collections::BTreeMap;

use minijinja::{Environment, ErrorKind, context};
use serde_json::Value;

use crate::error::{Error, Result};

/// HH-RLHF's speaker tags and the chat roles they stand for.
const SPEAKERS: [(&str, &str); 4] = [("Human", "user"), ("Assistant", "assistant"), ("System", "system"), ("Tool", "tool")];

#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("source", &self.source).finish()
    }
}

impl PartialEq for ChatTemplate {
    fn eq(&self, other: &Self) -> bool {
        (&self.source, &self.bos_token, &self.eos_token) == (&other.source, &other.bos_token, &other.eos_token)
    }
}

/// One message of a dialogue.
#[derive(serde::Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

impl ChatTemplate {
    /// Compiles `source`; a template that does not parse is refused with minijinja's reason.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned("chat", source.to_string()).map_err(|e| Error::Tokenizer(format!("the chat template does not parse: {e}")))?;
        Ok(Self { env, source: source.to_string(), bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// The chat template of a model folder's files (by name): `chat_template.jinja`, else
    /// `tokenizer_config.json`'s `chat_template` (a string, or the one named `default` in a
    /// list); with that file's `bos_token` and `eos_token`. None when there is none.
    pub fn from_files(files: &BTreeMap<String, Vec<u8>>) -> Result<Option<Self>> {
        let config: Value = match files.get("tokenizer_config.json") {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| Error::checkpoint("tokenizer_config.json", format!("invalid JSON: {e}")))?,
            None => Value::Null,
        };
        let token = |name: &str| match &config[name] {
            Value::String(token) => token.clone(),
            Value::Object(token) => token.get("content").and_then(Value::as_str).unwrap_or_default().to_string(),
            _ => String::new(),
        };
        let source = match files.get("chat_template.jinja") {
            Some(bytes) => Some(String::from_utf8(bytes.clone()).map_err(|_| Error::checkpoint("chat_template.jinja", "not UTF-8 text"))?),
            None => match &config["chat_template"] {
                Value::String(source) => Some(source.clone()),
                Value::Array(named) => named
                    .iter()
                    .find(|t| t["name"] == "default")
                    .and_then(|t| t["template"].as_str())
                    .map(str::to_string),
                _ => None,
            },
        };
        source.map(|source| Self::new(&source, &token("bos_token"), &token("eos_token"))).transpose()
    }

    fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self.env.get_template("chat").expect("added in new");
        template
            .render(context! { messages => messages, add_generation_prompt => add_generation_prompt, bos_token => &self.bos_token, eos_token => &self.eos_token })
            .map_err(|e| Error::Tokenizer(format!("the chat template failed: {e}")))
    }

    /// The prompt as the model reads it, and each response as the text that follows it, with
    /// what to add to a byte offset in that text to make it an offset in the response as given.
    pub fn apply(&self, prompt: &str, responses: &[&str]) -> Result<(String, Vec<(String, isize)>)> {
        let (turns, tagged) = dialogue(prompt);
        let messages: Vec<Message> = turns.iter().map(|&(role, content)| Message { role, content }).collect();
        let rendered_prompt = self.render(&messages, true)?;
        let responses = responses
            .iter()
            .map(|response| {
                // A tagged dialogue's responses start with the space after "Assistant:".
                let content = if tagged { response.strip_prefix(' ').unwrap_or(response) } else { response };
                let mut dialogue: Vec<Message> = turns.iter().map(|&(role, content)| Message { role, content }).collect();
                dialogue.push(Message { role: "assistant", content });
                let rendered = self.render(&dialogue, false)?;
                let suffix = rendered.strip_prefix(rendered_prompt.as_str()).ok_or_else(|| {
                    Error::Tokenizer("the chat template renders the prompt differently once a response follows it, so the response cannot be cut from the dialogue".into())
                })?;
                // Where the response's own text is, so its tokens keep their offsets into it.
                let at = suffix.find(content).unwrap_or(0);
                let skipped = response.len() - content.len();
                Ok((suffix.to_string(), skipped as isize - at as isize))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((rendered_prompt, responses))
    }
}

/// The turns of an HH-style prompt as `(role, content)`, the empty last `Assistant:` turn (the
/// generation prompt) dropped; and whether it had speaker tags at all.
fn dialogue(prompt: &str) -> (Vec<(&'static str, &str)>, bool) {
    let mut turns = Vec::new();
    let mut rest = prompt;
    let next_tag = |text: &str| {
        SPEAKERS.iter().filter_map(|&(tag, role)| text.find(&format!("\n\n{tag}:")).map(|at| (at, tag, role))).min_by_key(|&(at, _, _)| at)
    };
    let Some((first, _, _)) = next_tag(rest) else { return (vec![("user", prompt)], false) };
    if !rest[..first].trim().is_empty() {
        turns.push(("user", rest[..first].trim()));
    }
    while let Some((at, tag, role)) = next_tag(rest) {
        let body = &rest[at + tag.len() + 3..];
        let end = next_tag(body).map_or(body.len(), |(next, _, _)| next);
        turns.push((role, body[..end].trim()));
        rest = &body[end..];
    }
    if turns.last().is_some_and(|&(role, content)| role == "assistant" && content.is_empty()) {
        turns.pop();
    }
    (turns, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as its tokenizer_config.json has it.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn a_plain_prompt_is_one_user_turn_and_the_response_keeps_the_end_of_turn() {
        let template = ChatTemplate::new(SMOLLM2, "<|im_start|>", "<|im_end|>").unwrap();
        let (prompt, responses) = template.apply("Capital of Peru?", &["Lima."]).unwrap();
        // transformers' apply_chat_template(..., add_generation_prompt=True) gives exactly this.
        assert_eq!(prompt, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nCapital of Peru?<|im_end|>\n<|im_start|>assistant\n");
        assert_eq!(responses, vec![("Lima.<|im_end|>\n".to_string(), 0)]);
    }

    #[test]
    fn hh_turns_become_messages() {
        let prompt = "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: A joke, please.\n\nAssistant:";
        let (turns, tagged) = dialogue(prompt);
        assert!(tagged);
        assert_eq!(turns, vec![("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "A joke, please.")]);
        let template = ChatTemplate::new("{% for m in messages %}[{{ m.role }}|{{ m.content.strip() }}]{% endfor %}{% if add_generation_prompt %}[assistant|{% endif %}", "", "").unwrap();
        let (prompt, responses) = template.apply(prompt, &[" Why did the chicken cross the road?"]).unwrap();
        assert_eq!(prompt, "[user|Hi][assistant|Hello! How can I help?][user|A joke, please.][assistant|");
        // The response follows the prompt; the HH response's leading space is the template's
        // business now, so offsets into the rendered text are one byte short of the response's.
        assert_eq!(responses[0], ("Why did the chicken cross the road?]".to_string(), 1));
    }

    #[test]
    fn templates_are_read_from_either_file_and_errors_are_named() {
        let config = serde_json::json!({"chat_template": "{{ bos_token }}{{ messages[0].content }}", "bos_token": "<s>", "eos_token": {"content": "</s>"}});
        let files = BTreeMap::from([("tokenizer_config.json".to_string(), serde_json::to_vec(&config).unwrap())]);
        let template = ChatTemplate::from_files(&files).unwrap().unwrap();
        assert_eq!(template.apply("Hi", &[]).unwrap().0, "<s>Hi");
        assert!(ChatTemplate::from_files(&BTreeMap::new()).unwrap().is_none());
        let error = ChatTemplate::new("{% for %}", "", "").unwrap_err().to_string();
        assert!(error.contains("does not parse"), "{error}");
        let failing = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let error = failing.apply("Hi", &[]).unwrap_err().to_string();
        assert!(error.contains("roles must alternate"), "{error}");
    }
}
