//! Every figure of the notebook, drawn with plotters into PNG and SVG files.
//!
//! Each figure is a small struct implementing [`Plot`]; [`render`] draws it twice (bitmap and
//! vector) and [`write_figure`] writes `<stem>.png` and `<stem>.svg` atomically. Text uses the
//! DejaVu Sans font embedded in the crate, so figures look the same on every machine.

use std::path::Path;
use std::sync::OnceLock;

use imdb_data::{ClassCounts, write_atomic};
use imdb_train::{Confusion, History, RocPoint};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::ReportError;
use crate::examples::LengthBucket;
use crate::tables::RunMetrics;

const REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");
const FONT: &str = "sans-serif";

/// Blue for training, orange for validation (matplotlib's first two colours).
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALID: RGBColor = RGBColor(255, 127, 14);
/// matplotlib's ten `tab10` colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The point marker of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A filled circle.
    Circle,
    /// A filled triangle.
    Triangle,
    /// A filled square.
    Square,
    /// A cross.
    Cross,
}

/// The colour and marker of series `i`: ten colours, then the next marker, so that each of up
/// to forty runs has its own pair.
pub fn series_style(i: usize) -> (RGBColor, Marker) {
    const MARKERS: [Marker; 4] = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Cross,
    ];
    (
        PALETTE[i % PALETTE.len()],
        MARKERS[(i / PALETTE.len()) % MARKERS.len()],
    )
}

/// Draws `points` as one named series in `i`'s colour and marker, with its legend entry (the
/// line and the marker).
fn draw_styled_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    points: Vec<(f64, f64)>,
    name: &str,
    i: usize,
) -> Result<(), String> {
    let (color, marker) = series_style(i);
    let line = color.stroke_width(2);
    let fill = color.filled();
    chart
        .draw_series(LineSeries::new(points.clone(), line))
        .map_err(e)?;
    // One arm per shape: each is its own element type. The legend entry is the line with the
    // marker at its middle.
    macro_rules! markers {
        ($shape:expr) => {{
            let shape = $shape;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| EmptyElement::at(p) + shape(line, fill)),
                )
                .map_err(e)?
                .label(name.to_string())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (20, 0)], line)
                        + EmptyElement::at((10, 0))
                        + shape(line, fill)
                });
        }};
    }
    match marker {
        Marker::Circle => markers!(|_, fill| Circle::new((0, 0), 4, fill)),
        Marker::Triangle => markers!(|_, fill| TriangleMarker::new((0, 0), 6, fill)),
        Marker::Square => markers!(|_, fill| Rectangle::new([(-4, -4), (4, 4)], fill)),
        Marker::Cross => markers!(|line, _| Cross::new((0, 0), 5, line)),
    }
    Ok(())
}

fn fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT, FontStyle::Normal, REGULAR)
                .and_then(|()| register_font(FONT, FontStyle::Bold, BOLD))
                .map_err(|_| "the embedded font is unreadable".to_string())
        })
        .clone()
}

/// A figure that can draw itself on any plotters backend.
pub trait Plot {
    /// File stem, e.g. `roc_curve`.
    fn stem(&self) -> String;
    /// Size in pixels.
    fn size(&self) -> (u32, u32) {
        (900, 500)
    }
    /// Draws the figure on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// A figure drawn in both formats.
#[derive(Debug, Clone)]
pub struct RenderedFigure {
    /// File stem.
    pub stem: String,
    /// PNG bytes.
    pub png: Vec<u8>,
    /// SVG text.
    pub svg: String,
}

fn plot_err(stem: &str, message: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        figure: stem.to_string(),
        message: message.to_string(),
    }
}

/// Draws `plot` as PNG and SVG, in memory.
pub fn render<P: Plot>(plot: &P) -> Result<RenderedFigure, ReportError> {
    let stem = plot.stem();
    fonts().map_err(|e| plot_err(&stem, e))?;
    let (w, h) = plot.size();
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(&stem, e))?;
        plot.draw(&root).map_err(|e| plot_err(&stem, e))?;
        root.present().map_err(|e| plot_err(&stem, e))?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(&stem, e))?;
        plot.draw(&root).map_err(|e| plot_err(&stem, e))?;
        root.present().map_err(|e| plot_err(&stem, e))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| plot_err(&stem, e))?;
        writer
            .write_image_data(&rgb)
            .map_err(|e| plot_err(&stem, e))?;
        writer.finish().map_err(|e| plot_err(&stem, e))?;
    }
    Ok(RenderedFigure {
        stem,
        png: png_bytes,
        svg,
    })
}

/// Draws `plot` and writes `<dir>/<stem>.png` and `<dir>/<stem>.svg`.
pub fn write_figure<P: Plot>(plot: &P, dir: &Path) -> Result<RenderedFigure, ReportError> {
    let figure = render(plot)?;
    write_atomic(&dir.join(format!("{}.png", figure.stem)), &figure.png)?;
    write_atomic(
        &dir.join(format!("{}.svg", figure.stem)),
        figure.svg.as_bytes(),
    )?;
    Ok(figure)
}

fn e<T: std::fmt::Display>(err: T) -> String {
    err.to_string()
}

fn label_font() -> (&'static str, u32) {
    (FONT, 16)
}

/// Text centred horizontally on its position, sitting on it.
fn centered(size: u32) -> TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    (FONT, size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom))
}

/// Tick labels without useless decimals.
fn tick(value: f64, range: f64) -> String {
    if range >= 20.0 {
        format!("{value:.0}")
    } else if range >= 2.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Draws the series' legend box at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(label_font())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(e)
}

/// Bars at `x = 0, 1, …` with labels below and values above.
fn bar_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    bars: &[(String, f64, String)],
    y_max: f64,
    colors: &[RGBColor],
) -> Result<(), String> {
    let n = bars.len().max(1);
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    // About 9 pixels per character at the label size: names that would run into each other
    // are written downwards instead.
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0) as u32;
    let slot = area.dim_in_pixel().0.saturating_sub(90) / n as u32;
    let vertical = longest * 9 > slot;
    let label_area = if vertical { longest * 9 + 16 } else { 50 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22, FontStyle::Bold))
        .margin(12)
        .x_label_area_size(label_area)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && !vertical {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .y_label_formatter(&|y| tick(*y, y_max))
        .light_line_style(TRANSPARENT)
        .label_style(label_font())
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(e)?;
    if vertical {
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        // Drawn here rather than by the mesh, which centres rotated labels on the axis.
        let style = TextStyle::from(label_font())
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let (base_x, base_y) = area.get_base_pixel();
        for (i, name) in names.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, 0.0));
            area.draw(&Text::new(
                name.clone(),
                (px - base_x, py - base_y + 8),
                style.clone(),
            ))
            .map_err(e)?;
        }
    }
    for (i, (_, value, text)) in bars.iter().enumerate() {
        let x = i as f64;
        let color = colors[i % colors.len()];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.35, 0.0), (x + 0.35, *value)],
                color.filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                text.clone(),
                (x, value + y_max * 0.01),
                centered(15),
            )))
            .map_err(e)?;
    }
    Ok(())
}

/// Class distribution of train and test, side by side (notebook §2).
#[derive(Debug, Clone)]
pub struct ClassDistribution {
    /// Training classes.
    pub train: ClassCounts,
    /// Test classes.
    pub test: ClassCounts,
}

impl Plot for ClassDistribution {
    fn stem(&self) -> String {
        "class_distribution".into()
    }

    fn size(&self) -> (u32, u32) {
        (1000, 450)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let areas = root.split_evenly((1, 2));
        let y_max = self
            .train
            .counts
            .iter()
            .chain(&self.test.counts)
            .copied()
            .max()
            .unwrap_or(0) as f64
            * 1.15
            + 1.0;
        for (area, (name, counts)) in areas
            .iter()
            .zip([("train", &self.train), ("test", &self.test)])
        {
            let bars: Vec<(String, f64, String)> = counts
                .names
                .iter()
                .zip(&counts.counts)
                .enumerate()
                .map(|(k, (class, &count))| {
                    (format!("{class} ({k})"), count as f64, count.to_string())
                })
                .collect();
            bar_chart(
                area,
                &format!("Class distribution ({name})"),
                "Texts",
                &bars,
                y_max,
                &PALETTE,
            )?;
        }
        Ok(())
    }
}

/// Histogram of training review lengths with a dashed line at `maxlen` (notebook §2).
#[derive(Debug, Clone)]
pub struct LengthHistogram {
    /// Lengths in tokens.
    pub lengths: Vec<usize>,
    /// Where sequences are cut.
    pub maxlen: usize,
    /// Number of bins (the notebook uses 50).
    pub bins: usize,
}

impl Plot for LengthHistogram {
    fn stem(&self) -> String {
        "length_histogram".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let max = self
            .lengths
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(self.maxlen)
            .max(1) as f64;
        let bins = self.bins.max(1);
        let width = max / bins as f64;
        let mut counts = vec![0usize; bins];
        for &l in &self.lengths {
            counts[((l as f64 / width) as usize).min(bins - 1)] += 1;
        }
        let top = *counts.iter().max().unwrap_or(&1) as f64 * 1.1 + 1.0;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Review length distribution (train)",
                (FONT, 24, FontStyle::Bold),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..max, 0.0..top)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("Tokens per review")
            .y_desc("Reviews")
            .x_label_formatter(&|x| tick(*x, max))
            .y_label_formatter(&|y| tick(*y, top))
            .light_line_style(TRANSPARENT)
            .label_style(label_font())
            .axis_desc_style((FONT, 18))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], TRAIN.mix(0.8).filled())
            }))
            .map_err(e)?;
        let m = self.maxlen as f64;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(m, 0.0), (m, top)],
                10,
                6,
                RED.stroke_width(2),
            ))
            .map_err(e)?
            .label(format!("maxlen = {}", self.maxlen))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// Which metric a training-curve figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveMetric {
    /// Binary cross-entropy.
    Loss,
    /// Accuracy.
    Accuracy,
    /// ROC AUC.
    Auc,
}

impl CurveMetric {
    /// `loss`, `accuracy` or `auc`.
    pub fn name(self) -> &'static str {
        match self {
            CurveMetric::Loss => "loss",
            CurveMetric::Accuracy => "accuracy",
            CurveMetric::Auc => "auc",
        }
    }

    fn of(self, m: &imdb_train::Metrics) -> f64 {
        match self {
            CurveMetric::Loss => m.loss,
            CurveMetric::Accuracy => m.accuracy,
            CurveMetric::Auc => m.auc,
        }
    }
}

fn y_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.1).max(0.01);
    (lo - pad)..(hi + pad)
}

/// Train vs validation per epoch for one metric, with the kept epoch marked (notebook §5).
#[derive(Debug, Clone)]
pub struct TrainingCurve {
    /// The run's history.
    pub history: History,
    /// The metric.
    pub metric: CurveMetric,
}

impl Plot for TrainingCurve {
    fn stem(&self) -> String {
        format!("curve_{}", self.metric.name())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let m = self.metric;
        let epochs = self.history.epochs.len().max(1) as f64;
        let values = self
            .history
            .epochs
            .iter()
            .flat_map(|r| [m.of(&r.train), m.of(&r.val)]);
        let y = y_range(values);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{} per epoch", m.name()),
                (FONT, 24, FontStyle::Bold),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5..epochs + 0.5, y.clone())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc(m.name())
            .x_labels(self.history.epochs.len().max(2))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(label_font())
            .axis_desc_style((FONT, 18))
            .light_line_style(BLACK.mix(0.06))
            .draw()
            .map_err(e)?;
        for (name, color, pick) in [("train", TRAIN, true), ("validation", VALID, false)] {
            let points: Vec<(f64, f64)> = self
                .history
                .epochs
                .iter()
                .map(|r| (r.epoch as f64, m.of(if pick { &r.train } else { &r.val })))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)).point_size(4))
                .map_err(e)?
                .label(format!("{name}_{}", m.name()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if let Some(best) = self.history.best_epoch {
            let b = best as f64;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(b, y.start), (b, y.end)],
                    8,
                    6,
                    BLACK.mix(0.6).stroke_width(2),
                ))
                .map_err(e)?
                .label(format!("kept weights (epoch {best})"))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6).stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// The test confusion matrix as an annotated heatmap (notebook §6), true classes as rows
/// (the first at the top, as in seaborn), predicted classes as columns.
#[derive(Debug, Clone)]
pub struct ConfusionHeatmap {
    /// The counts.
    pub confusion: Confusion,
    /// Class names by class id.
    pub classes: Vec<String>,
}

impl Plot for ConfusionHeatmap {
    fn stem(&self) -> String {
        "confusion_matrix".into()
    }

    fn size(&self) -> (u32, u32) {
        let n = self.confusion.num_classes().max(2) as u32;
        (420 + 100 * n, 340 + 100 * n)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let cells = &self.confusion.counts;
        let n = cells.len().max(1);
        let nf = n as f64;
        let max = cells.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        let names: Vec<String> = (0..n)
            .map(|k| match self.classes.get(k) {
                Some(name) => format!("{name} ({k})"),
                None => k.to_string(),
            })
            .collect();
        let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0) as u32;
        let mut chart = ChartBuilder::on(root)
            .caption("Confusion matrix (test)", (FONT, 24, FontStyle::Bold))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size((longest * 9 + 40).max(120))
            .build_cartesian_2d(0.0..nf, 0.0..nf)
            .map_err(e)?;
        // Class names at the cell centres; the true class 0 is the top row.
        let name = |v: f64, from_top: bool| -> String {
            let k = (v - 0.5).round();
            if (v - 0.5 - k).abs() > 1e-9 || k < 0.0 || k >= nf {
                return String::new();
            }
            let k = if from_top {
                n - 1 - k as usize
            } else {
                k as usize
            };
            names[k].clone()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(2 * n + 1)
            .y_labels(2 * n + 1)
            .x_desc("Predicted")
            .y_desc("True")
            .x_label_formatter(&|v| name(*v, false))
            .y_label_formatter(&|v| name(*v, true))
            .label_style(label_font())
            .axis_desc_style((FONT, 18))
            .draw()
            .map_err(e)?;
        let font_size = if n <= 3 { 30 } else { 22 };
        for (t, row) in cells.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                let level = count as f64 / max;
                // White to matplotlib's dark blue ("Blues").
                let mix = |lo: f64, hi: f64| (lo + (hi - lo) * level) as u8;
                let color = RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0));
                let (x, y) = (p as f64, nf - 1.0 - t as f64);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        color.filled(),
                    )))
                    .map_err(e)?;
                let text_color = if level > 0.5 { WHITE } else { BLACK };
                chart
                    .draw_series(std::iter::once(Text::new(
                        count.to_string(),
                        (x + 0.5, y + 0.5),
                        (FONT, font_size).into_font().color(&text_color).pos(
                            plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            ),
                        ),
                    )))
                    .map_err(e)?;
            }
        }
        Ok(())
    }
}

/// One ROC curve of a [`RocFigure`].
#[derive(Debug, Clone)]
pub struct RocSeries {
    /// What the curve is of, e.g. `positive` (one-vs-rest for n classes).
    pub label: String,
    /// Points from (0, 0) to (1, 1).
    pub points: Vec<RocPoint>,
    /// Area under the curve.
    pub auc: f64,
}

/// The test ROC curves with their AUCs and the chance diagonal (notebook §6): one curve for
/// two classes, one per class (one-vs-rest) for more.
#[derive(Debug, Clone)]
pub struct RocFigure {
    /// The curves.
    pub curves: Vec<RocSeries>,
}

impl Plot for RocFigure {
    fn stem(&self) -> String {
        "roc_curve".into()
    }

    fn size(&self) -> (u32, u32) {
        (640, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let title = if self.curves.len() > 1 {
            "ROC curves, one-vs-rest (test)"
        } else {
            "ROC curve (test)"
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24, FontStyle::Bold))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("False positive rate")
            .y_desc("True positive rate")
            .label_style(label_font())
            .axis_desc_style((FONT, 18))
            .light_line_style(BLACK.mix(0.06))
            .draw()
            .map_err(e)?;
        let single = self.curves.len() == 1;
        for (i, curve) in self.curves.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let label = if single {
                format!("AUC = {:.4}", curve.auc)
            } else {
                format!("{} (AUC {:.4})", curve.label, curve.auc)
            };
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().map(|p| (p.fpr, p.tpr)),
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                BLACK.mix(0.7).stroke_width(1),
            ))
            .map_err(e)?
            .label("chance")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.7)));
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}

/// Test accuracy by review length, to show whether long (truncated) reviews suffer.
#[derive(Debug, Clone)]
pub struct LengthAccuracy {
    /// The buckets.
    pub buckets: Vec<LengthBucket>,
    /// Where sequences were cut.
    pub maxlen: usize,
}

impl Plot for LengthAccuracy {
    fn stem(&self) -> String {
        "accuracy_by_length".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let bars: Vec<(String, f64, String)> = self
            .buckets
            .iter()
            .map(|b| {
                (
                    b.label(),
                    b.accuracy,
                    format!("{:.3} (n={})", b.accuracy, b.count),
                )
            })
            .collect();
        let colors: Vec<RGBColor> = self
            .buckets
            .iter()
            .map(|b| if b.low >= self.maxlen { VALID } else { TRAIN })
            .collect();
        bar_chart(
            root,
            &format!(
                "Test accuracy by review length (orange: longer than maxlen = {})",
                self.maxlen
            ),
            "Accuracy",
            &bars,
            1.1,
            &colors,
        )
    }
}

/// An experiment's runs compared: test accuracy and training time per run.
#[derive(Debug, Clone)]
pub struct RunComparison {
    /// One entry per run.
    pub runs: Vec<RunMetrics>,
}

impl Plot for RunComparison {
    fn stem(&self) -> String {
        "comparison".into()
    }

    fn size(&self) -> (u32, u32) {
        (1200, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let areas = root.split_evenly((1, 2));
        let acc: Vec<(String, f64, String)> = self
            .runs
            .iter()
            .map(|r| {
                (
                    r.run.clone(),
                    r.test_accuracy,
                    format!("{:.4}", r.test_accuracy),
                )
            })
            .collect();
        bar_chart(
            &areas[0],
            "Test accuracy per run",
            "Accuracy",
            &acc,
            1.1,
            &PALETTE,
        )?;
        let time: Vec<(String, f64, String)> = self
            .runs
            .iter()
            .map(|r| {
                (
                    r.run.clone(),
                    r.train_seconds,
                    format!("{:.0}s", r.train_seconds),
                )
            })
            .collect();
        let top = time.iter().map(|t| t.1).fold(1.0, f64::max) * 1.15;
        bar_chart(
            &areas[1],
            "Training time per run",
            "Seconds",
            &time,
            top,
            &PALETTE,
        )
    }
}

/// The validation curves of an experiment's runs, overlaid.
#[derive(Debug, Clone)]
pub struct ValidationOverlay {
    /// (run name, history) per run.
    pub runs: Vec<(String, History)>,
    /// The metric.
    pub metric: CurveMetric,
}

impl Plot for ValidationOverlay {
    fn stem(&self) -> String {
        format!("val_{}_by_run", self.metric.name())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let m = self.metric;
        let epochs = self
            .runs
            .iter()
            .map(|(_, h)| h.epochs.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let y = y_range(
            self.runs
                .iter()
                .flat_map(|(_, h)| h.epochs.iter().map(move |r| m.of(&r.val))),
        );
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Validation {} per epoch, by run", m.name()),
                (FONT, 24, FontStyle::Bold),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5..epochs as f64 + 0.5, y)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc(format!("val_{}", m.name()))
            .x_labels(epochs.max(2))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(label_font())
            .axis_desc_style((FONT, 18))
            .light_line_style(BLACK.mix(0.06))
            .draw()
            .map_err(e)?;
        for (i, (name, history)) in self.runs.iter().enumerate() {
            let points = history
                .epochs
                .iter()
                .map(|r| (r.epoch as f64, m.of(&r.val)))
                .collect();
            draw_styled_series(&mut chart, points, name, i)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// A line chart of named series, for results that are not a training history (the long-range
/// task's accuracy by distance, gradient norms by step).
#[derive(Debug, Clone)]
pub struct LineChart {
    /// File stem.
    pub stem: String,
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_desc: String,
    /// Y axis label.
    pub y_desc: String,
    /// (name, points) per series.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Logarithmic y axis (values ≤ 0 are left out).
    pub log_y: bool,
    /// A dashed horizontal reference line and its label (e.g. chance level).
    pub reference: Option<(f64, String)>,
}

impl Plot for LineChart {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let points = || self.series.iter().flat_map(|(_, p)| p.iter());
        let (x_lo, x_hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        let (x_lo, x_hi) = if x_lo.is_finite() {
            (x_lo, x_hi.max(x_lo + 1.0))
        } else {
            (0.0, 1.0)
        };
        let ys = points()
            .map(|p| p.1)
            .chain(self.reference.iter().map(|r| r.0));
        let mut chart = ChartBuilder::on(root);
        chart
            .caption(&self.title, (FONT, 22, FontStyle::Bold))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(80);
        macro_rules! finish {
            ($chart:expr, $y:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(&self.x_desc)
                    .y_desc(&self.y_desc)
                    .label_style(label_font())
                    .axis_desc_style((FONT, 18))
                    .light_line_style(BLACK.mix(0.05))
                    .draw()
                    .map_err(e)?;
                for (i, (name, pts)) in self.series.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|p| $y(p.1)).collect();
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)).point_size(3))
                        .map_err(e)?
                        .label(name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                }
                if let Some((value, label)) = &self.reference {
                    chart
                        .draw_series(DashedLineSeries::new(
                            vec![(x_lo, *value), (x_hi, *value)],
                            8,
                            6,
                            BLACK.mix(0.6).stroke_width(1),
                        ))
                        .map_err(e)?
                        .label(label.clone())
                        .legend(|(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6))
                        });
                }
                legend(&mut chart, SeriesLabelPosition::UpperRight)?;
            }};
        }
        if self.log_y {
            let positive: Vec<f64> = ys.filter(|v| *v > 0.0 && v.is_finite()).collect();
            let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = positive.iter().copied().fold(0.0, f64::max);
            let (lo, hi) = if lo.is_finite() {
                (lo / 2.0, hi * 2.0)
            } else {
                (1e-6, 1.0)
            };
            finish!(
                chart
                    .build_cartesian_2d(x_lo..x_hi, (lo..hi).log_scale())
                    .map_err(e)?,
                |v: f64| v > 0.0
            );
        } else {
            finish!(
                chart
                    .build_cartesian_2d(x_lo..x_hi, y_range(ys))
                    .map_err(e)?,
                |v: f64| v.is_finite()
            );
        }
        Ok(())
    }
}
