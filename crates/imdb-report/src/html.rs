//! Self-contained HTML pages: figures are embedded as PNG data, nothing is fetched.

use base64::Engine;

use crate::figures::RenderedFigure;

/// Escapes text for HTML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An `<img>` holding the figure's PNG inline.
pub fn figure_img(figure: &RenderedFigure, alt: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(&figure.png);
    format!(
        "<figure><img alt=\"{}\" src=\"data:image/png;base64,{data}\"><figcaption>{}</figcaption></figure>",
        escape(alt),
        escape(alt)
    )
}

/// A table from a header row and body rows (cells are escaped), in a box that scrolls
/// sideways when the table is wider than the page.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell)).collect())
        .collect();
    table_html(header, &rows)
}

/// [`table`] whose body cells are HTML already (the caller escapes what it must).
pub fn table_html(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<div class=\"table-scroll\"><table><thead><tr>");
    for h in header {
        out += &format!("<th>{}</th>", escape(h));
    }
    out += "</tr></thead><tbody>";
    for row in rows {
        out += "<tr>";
        for cell in row {
            out += &format!("<td>{cell}</td>");
        }
        out += "</tr>";
    }
    out + "</tbody></table></div>"
}

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        escape(title)
    )
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
        assert_eq!(
            escape("<b>\"a\" & 'b'</b>"),
            "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
        );
        let t = table(&["x"], &[vec!["<script>".into()]]);
        assert!(t.contains("&lt;script&gt;") && !t.contains("<script>"));
        assert!(page("a<b", "body").contains("<title>a&lt;b</title>"));
    }
}
