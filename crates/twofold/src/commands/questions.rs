use anyhow::Result;
use twofold_core::{Ctx, Engine};

use super::output::{self, out};
use crate::cli::QuestionsCommand;

pub async fn run(engine: &Engine, cmd: QuestionsCommand) -> Result<()> {
    let ctx = Ctx::cli();
    match cmd {
        QuestionsCommand::Add { language, text } => {
            let q = engine.admin_add_question(&ctx, &language, &text).await?;
            out!("added question {} ({}): {}", q.id, q.language, q.text);
        }
        QuestionsCommand::List { language, json } => {
            let qs = engine.admin_questions(language.as_deref()).await?;
            if json {
                return output::json(&qs);
            }
            let rows: Vec<Vec<String>> = qs
                .iter()
                .map(|q| vec![q.id.to_string(), q.language.clone(), q.text.clone()])
                .collect();
            output::table(&["ID", "LANG", "QUESTION"], &rows);
        }
        QuestionsCommand::Delete { id } => {
            engine.admin_delete_question(&ctx, id).await?;
            out!("deleted question {id}");
        }
    }
    Ok(())
}
