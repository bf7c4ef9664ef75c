//! The mail templates: `templates/<language>/<kind>.subject`, `.txt` and `.html`, embedded
//! at build time. A language is added as a directory of the same files; a template a
//! language lacks is taken from English. HTML is escaped, the text parts are not.

use minijinja::Environment;

use crate::domain::Kind;

const FALLBACK: &str = "en";

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
    language: String,
}

impl Templates {
    /// The templates, in `language` where it has them. A language with no templates at
    /// all is refused.
    pub fn new(language: &str) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        minijinja_embed::load_templates!(&mut env);
        // `{% extends "layout.html" %}` means the layout of the template's own language.
        env.set_path_join_callback(|name, parent| match parent.rsplit_once('/') {
            Some((dir, _)) if !name.contains('/') => format!("{dir}/{name}").into(),
            _ => name.into(),
        });
        // HTML escapes what HTML needs (& < > " '), leaving links readable.
        env.set_formatter(|out, state, value| {
            if *state.auto_escape() == minijinja::AutoEscape::Html && !value.is_safe() {
                let text = value.to_string();
                let mut escaped = String::with_capacity(text.len());
                for c in text.chars() {
                    match c {
                        '&' => escaped.push_str("&amp;"),
                        '<' => escaped.push_str("&lt;"),
                        '>' => escaped.push_str("&gt;"),
                        '"' => escaped.push_str("&quot;"),
                        '\'' => escaped.push_str("&#39;"),
                        c => escaped.push(c),
                    }
                }
                out.write_str(&escaped).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let templates = Self {
            env,
            language: language.to_owned(),
        };
        anyhow::ensure!(
            templates.has(language, Kind::Alert),
            "there are no mail templates in the language {language:?}"
        );
        Ok(templates)
    }

    fn has(&self, language: &str, kind: Kind) -> bool {
        self.env
            .get_template(&format!("{language}/{}.subject", kind.as_str()))
            .is_ok()
    }

    /// Renders `kind` with `facts`.
    pub fn render(&self, kind: Kind, facts: &serde_json::Value) -> anyhow::Result<Rendered> {
        let language = if self.has(&self.language, kind) {
            self.language.as_str()
        } else {
            FALLBACK
        };
        let facts = minijinja::Value::from(minijinja::value::Serde(facts));
        let part = |ext: &str| -> anyhow::Result<String> {
            let name = format!("{language}/{}.{ext}", kind.as_str());
            Ok(self.env.get_template(&name)?.render(&facts)?)
        };
        let subject = part("subject")?;
        Ok(Rendered {
            // One line, whatever the template's whitespace.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: part("txt")?,
            html: part("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(extra: serde_json::Value) -> serde_json::Value {
        let mut base = json!({
            "user": {"username": "fay"},
            "panel_url": "https://panel.example.com",
        });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn every_kind_renders_in_english() {
        let templates = Templates::new("en").expect("templates");
        let server =
            json!({"id": 3, "name": "web", "hostname": "web.example", "status": "running"});
        let cases = [
            (Kind::ServerCreated, json!({"server": server})),
            (
                Kind::Alert,
                json!({"server": server, "metric": "cpu", "level": "warning", "value": "95",
                       "threshold": "90", "message": "CPU usage is at 95%"}),
            ),
            (
                Kind::TicketReply,
                json!({"ticket": {"id": 9, "subject": "Disk"}, "body": "Fixed."}),
            ),
            (
                Kind::PaymentReminder,
                json!({"balance": 5, "needed": 10, "stage": "overdue", "days_left": 0}),
            ),
            (
                Kind::ServerSuspended,
                json!({"server": server, "reason": "payment overdue"}),
            ),
        ];
        for (kind, extra) in cases {
            let mail = templates.render(kind, &facts(extra)).expect("renders");
            assert!(
                !mail.subject.is_empty() && !mail.subject.contains('\n'),
                "{kind:?}"
            );
            assert!(mail.text.contains("fay"), "{kind:?}: {}", mail.text);
            assert!(
                mail.html.contains("<p>Hello fay,</p>"),
                "{kind:?}: {}",
                mail.html
            );
        }
        let alert = templates
            .render(
                Kind::Alert,
                &facts(
                    json!({"server": server, "metric": "cpu", "level": "critical",
                              "value": "99", "threshold": "90", "message": "CPU usage is at 99%"}),
                ),
            )
            .unwrap();
        assert_eq!(alert.subject, "Critical: CPU usage on web is at 99%");
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let templates = Templates::new("en").unwrap();
        let mail = templates
            .render(
                Kind::TicketReply,
                &facts(json!({"ticket": {"id": 9, "subject": "<b>x</b>"}, "body": "a < b & c"})),
            )
            .unwrap();
        assert!(mail.html.contains("a &lt; b &amp; c"), "{}", mail.html);
        assert!(!mail.html.contains("<b>x</b>"));
        assert!(
            mail.html.contains("https://panel.example.com/tickets/9"),
            "{}",
            mail.html
        );
        assert!(mail.text.contains("a < b & c"));
    }

    #[test]
    fn a_language_without_templates_is_refused() {
        assert!(Templates::new("xx").is_err());
    }

    #[test]
    fn a_low_balance_reminder_says_how_many_days_are_left() {
        let templates = Templates::new("en").unwrap();
        let mail = templates
            .render(
                Kind::PaymentReminder,
                &facts(
                    json!({"balance": 40, "needed": 10, "stage": "low_balance", "days_left": 1}),
                ),
            )
            .unwrap();
        assert_eq!(mail.subject, "Your balance covers 1 more day");
        assert!(mail.text.contains("40 credits"), "{}", mail.text);
    }
}
