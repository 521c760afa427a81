use anyhow::Result;
use twofold_core::{AdminService, Ctx};

use super::output::{self, out};
use crate::cli::QuestionsCommand;

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: QuestionsCommand) -> Result<()> {
    match cmd {
        QuestionsCommand::Add { language, text } => {
            let q = svc.add_question(ctx, &language, &text).await?;
            out!("added question {} ({}): {}", q.id, q.language, q.text);
        }
        QuestionsCommand::List { language, json } => {
            let qs = svc.questions(ctx, language.as_deref()).await?;
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
            svc.delete_question(ctx, id).await?;
            out!("deleted question {id}");
        }
        QuestionsCommand::Move { id, direction } => {
            let up = matches!(direction, crate::cli::Direction::Up);
            svc.move_question(ctx, id, up).await?;
            out!("moved question {id} {}", if up { "up" } else { "down" });
        }
    }
    Ok(())
}
