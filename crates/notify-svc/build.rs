//! Embeds the mail templates (`templates/<language>/<kind>.{subject,txt,html}`).

fn main() {
    minijinja_embed::embed_templates!("templates");
}
