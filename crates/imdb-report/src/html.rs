//! Self-contained HTML pages: figures are embedded as PNG data, nothing is fetched. Pages are
//! maud templates, which escape every value put into them; only [`Markup`] (itself made by a
//! template) goes in as it is.

use base64::Engine;
pub use maud::{Markup, PreEscaped, html};

use crate::figures::RenderedFigure;

/// An `<img>` holding the figure's PNG inline, captioned by `alt`.
pub fn figure_img(figure: &RenderedFigure, alt: &str) -> Markup {
    let data = base64::engine::general_purpose::STANDARD.encode(&figure.png);
    html! {
        figure {
            img alt=(alt) src={ "data:image/png;base64," (data) };
            figcaption { (alt) }
        }
    }
}

/// A table from a header row and body rows of text, in a box that scrolls sideways when the
/// table is wider than the page.
pub fn table<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> Markup {
    let rows: Vec<Vec<Markup>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| html! { (cell) }).collect())
        .collect();
    table_markup(header, &rows)
}

/// [`table`] whose body cells are markup.
pub fn table_markup<S: AsRef<str>>(header: &[S], rows: &[Vec<Markup>]) -> Markup {
    html! {
        div.table-scroll {
            table {
                thead { tr { @for h in header { th { (h.as_ref()) } } } }
                tbody {
                    @for row in rows {
                        tr { @for cell in row { td { (cell) } } }
                    }
                }
            }
        }
    }
}

/// A whole page around `body`.
pub fn page(title: &str, body: Markup) -> String {
    let page = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    };
    page.into_string() + "\n"
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:0;\
background:#f6f7f9;color:#1d2430}main{max-width:1100px;margin:0 auto;padding:24px 32px;\
background:#fff}h1{font-size:28px;margin-bottom:4px}h2{font-size:21px;margin-top:36px;\
border-bottom:1px solid #dde;padding-bottom:4px}p.lead{color:#556;margin-top:0}\
.table-scroll{max-width:100%;overflow-x:auto}table{border-collapse:collapse;margin:10px 0;font-size:14px}th,td{border:1px solid #d5d9e0;\
padding:4px 9px;text-align:left;vertical-align:top}th{background:#eef1f5}\
td.text,div.text{font-size:13px;max-width:720px}.explained span{border-radius:2px}pre{background:#f3f4f7;padding:10px;overflow-x:auto;\
font-size:13px}figure{margin:14px 0}figure img{max-width:100%;border:1px solid #e3e6ea}\
figcaption{font-size:13px;color:#667}.grid{display:flex;flex-wrap:wrap;gap:12px}\
.metric{display:inline-block;margin:6px 18px 6px 0}.metric b{display:block;font-size:24px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        let t = table(&["x<"], &[vec!["<script>\"a\" & 'b'".into()]]).into_string();
        assert!(t.contains("<th>x&lt;</th>"), "{t}");
        assert!(
            t.contains("<td>&lt;script&gt;&quot;a&quot; &amp; 'b'</td>"),
            "{t}"
        );
        assert!(!t.contains("<script>"));
        let p = page("a<b", html! { p { "body" } });
        assert!(p.starts_with("<!DOCTYPE html>"), "{p}");
        assert!(p.contains("<title>a&lt;b</title>") && p.contains("<main><p>body</p></main>"));
    }
}
