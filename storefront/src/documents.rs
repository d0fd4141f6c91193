//! The terms of service and the privacy notice: built-in texts that the
//! company replaces by putting `terms.md` or `privacy.md` in the data folder
//! (read at each request, so an edit shows at once).

use maud::{html, Markup};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, Request, Response};
use switchboard_web::layout::html_response;
use switchboard_web::{AppState, Nav, Page, PageContext};

const TERMS: &str = include_str!("../documents/terms.md");
const PRIVACY: &str = include_str!("../documents/privacy.md");

/// One of the public documents.
#[derive(Clone, Copy)]
struct Document {
    file: &'static str,
    title: &'static str,
    built_in: &'static str,
}

const TERMS_OF_SERVICE: Document = Document {
    file: "terms.md",
    title: "Terms of service",
    built_in: TERMS,
};

const PRIVACY_NOTICE: Document = Document {
    file: "privacy.md",
    title: "Privacy notice",
    built_in: PRIVACY,
};

/// A block of a document's text.
#[derive(Debug, PartialEq, Eq)]
pub enum Block {
    Heading(u8, String),
    Paragraph(String),
    List(Vec<String>),
}

/// Reads the little Markdown a policy needs: `#` and `##` headings,
/// paragraphs separated by blank lines, `- ` lists, and `**strong**`
/// inside them. Anything else is text, escaped when drawn.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines: Vec<&str> = Vec::new();
    let flush = |lines: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if lines.is_empty() {
            return;
        }
        if lines.iter().all(|l| !l.is_empty()) && lines[0].starts_with("- ") {
            let mut items: Vec<String> = Vec::new();
            for line in lines.iter() {
                match line.strip_prefix("- ") {
                    Some(item) => items.push(item.trim().to_owned()),
                    None => {
                        if let Some(last) = items.last_mut() {
                            last.push(' ');
                            last.push_str(line.trim());
                        }
                    }
                }
            }
            blocks.push(Block::List(items));
        } else {
            blocks.push(Block::Paragraph(
                lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "),
            ));
        }
        lines.clear();
    };
    for line in text.lines() {
        let trimmed = line.trim_end();
        if let Some(heading) = trimmed.strip_prefix("## ") {
            flush(&mut lines, &mut blocks);
            blocks.push(Block::Heading(2, heading.trim().to_owned()));
        } else if let Some(heading) = trimmed.strip_prefix("# ") {
            flush(&mut lines, &mut blocks);
            blocks.push(Block::Heading(1, heading.trim().to_owned()));
        } else if trimmed.trim().is_empty() {
            flush(&mut lines, &mut blocks);
        } else {
            lines.push(trimmed);
        }
    }
    flush(&mut lines, &mut blocks);
    blocks
}

/// Text with `**strong**` parts.
fn inline(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split("**").enumerate() {
            @if i % 2 == 1 { strong { (part) } } @else { (part) }
        }
    }
}

fn render(blocks: &[Block]) -> Markup {
    html! {
        @for block in blocks {
            @match block {
                Block::Heading(1, text) => h1 { (text) },
                Block::Heading(_, text) => h2 { (text) },
                Block::Paragraph(text) => p { (inline(text)) },
                Block::List(items) => ul { @for item in items { li { (inline(item)) } } },
            }
        }
    }
}

async fn show(req: &Request, state: &AppState, document: Document) -> Response {
    let ctx = PageContext::of(req);
    let path = state.settings.data_dir.join(document.file);
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(error) => {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), %error, "showing the built-in text instead");
            }
            document.built_in.to_owned()
        }
    };
    let blocks = blocks(&text);
    let title = match blocks.first() {
        Some(Block::Heading(1, heading)) => heading.clone(),
        _ => document.title.to_owned(),
    };
    let page = Page {
        title: &title,
        nav: Nav::Storefront,
        ctx: &ctx,
    };
    let has_heading = matches!(blocks.first(), Some(Block::Heading(1, _)));
    html_response(
        StatusCode::OK,
        page.render(html! {
            article.card.document {
                @if !has_heading { h1 { (title) } }
                (render(&blocks))
            }
        }),
    )
}

/// `GET /terms`: the terms of service a visitor accepts at checkout.
#[handler]
pub async fn terms(req: &Request, Data(state): Data<&AppState>) -> Response {
    show(req, state, TERMS_OF_SERVICE).await
}

/// `GET /privacy`: what is kept about customers, and why.
#[handler]
pub async fn privacy(req: &Request, Data(state): Data<&AppState>) -> Response {
    show(req, state, PRIVACY_NOTICE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_as_headings_paragraphs_and_lists() {
        let text = "# Terms\n\nFirst line\nwraps here.\n\n## Paying\n- **One**: a\n  b\n- Two\n\n<script>x</script>\n";
        assert_eq!(
            blocks(text),
            vec![
                Block::Heading(1, "Terms".into()),
                Block::Paragraph("First line wraps here.".into()),
                Block::Heading(2, "Paying".into()),
                Block::List(vec!["**One**: a b".into(), "Two".into()]),
                Block::Paragraph("<script>x</script>".into()),
            ]
        );
        let html = render(&blocks(text)).into_string();
        assert!(html.contains("<li><strong>One</strong>: a b</li>"));
        assert!(html.contains("&lt;script&gt;"), "text is escaped: {html}");
    }

    #[test]
    fn the_built_in_texts_start_with_their_title() {
        for document in [TERMS_OF_SERVICE, PRIVACY_NOTICE] {
            assert_eq!(
                blocks(document.built_in).first(),
                Some(&Block::Heading(1, document.title.into()))
            );
        }
    }
}
