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
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::ReportError;
use crate::examples::LengthBucket;
use crate::tables::RunSummary;

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

/// Draws `points` as one named series in `color` with `marker` at each point, with its legend
/// entry (the line and the marker).
fn draw_styled_series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    name: &str,
    (color, marker): (RGBColor, Marker),
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
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

/// An axis label. On a log axis: scientific notation far from 1 (`1e-9`), otherwise as many
/// decimals as the value's order of magnitude needs (`0.01`, `0.5`, `100`). On a linear axis:
/// as [`tick`] writes them, whole numbers without decimals when the axis spans 2 or more.
fn axis_label(value: f64, span: f64, log: bool) -> String {
    if log && value > 0.0 {
        let exponent = value.log10().floor();
        if (-2.0..4.0).contains(&exponent) {
            format!("{value:.*}", (-exponent).max(0.0) as usize)
        } else {
            format!("{value:.0e}")
        }
    } else if value.fract() == 0.0 && span >= 2.0 {
        format!("{value:.0}")
    } else {
        tick(value, span)
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
    spread: &[Vec<f64>],
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
        // Several values behind a bar (one per seed): each as a dot, and the bar's value ± one
        // standard deviation as a whisker; the label goes above the highest of them.
        let values = spread.get(i).filter(|v| v.len() > 1);
        let mut top = *value;
        if let Some(values) = values {
            let n = values.len() as f64;
            let std = (values.iter().map(|v| (v - value).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let ink = BLACK.stroke_width(2);
            let (low, high) = (value - std, value + std);
            chart
                .draw_series([
                    PathElement::new(vec![(x, low), (x, high)], ink),
                    PathElement::new(vec![(x - 0.1, low), (x + 0.1, low)], ink),
                    PathElement::new(vec![(x - 0.1, high), (x + 0.1, high)], ink),
                ])
                .map_err(e)?;
            chart
                .draw_series(values.iter().enumerate().map(|(k, &v)| {
                    // Spread sideways so that equal values stay visible.
                    let dx = (k as f64 - (n - 1.0) / 2.0) * 0.08;
                    Circle::new((x + dx, v), 4, BLACK.mix(0.7).filled())
                }))
                .map_err(e)?;
            top = values.iter().copied().fold(high, f64::max);
        }
        chart
            .draw_series(std::iter::once(Text::new(
                text.clone(),
                (x, top + y_max * 0.01),
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
                &[],
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
            &[],
        )
    }
}

/// An experiment's runs compared: test accuracy and training time per run.
#[derive(Debug, Clone)]
pub struct RunComparison {
    /// One entry per run (several seeds each drawn with their spread).
    pub runs: Vec<RunSummary>,
}

impl Plot for RunComparison {
    fn stem(&self) -> String {
        "comparison".into()
    }

    fn size(&self) -> (u32, u32) {
        (1500, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let areas = root.split_evenly((1, 3));
        let seeds = self.runs.iter().any(|r| r.seeds.len() > 1);
        let bars = |of: &dyn Fn(&RunSummary) -> (f64, f64)| -> Vec<(String, f64, String)> {
            self.runs
                .iter()
                .map(|r| {
                    let (mean, std) = of(r);
                    let label = if r.seeds.len() > 1 {
                        format!("{mean:.4} ± {std:.4}")
                    } else {
                        format!("{mean:.4}")
                    };
                    (
                        r.run.clone(),
                        if mean.is_finite() { mean } else { 0.0 },
                        label,
                    )
                })
                .collect()
        };
        let spread = |of: &dyn Fn(&RunSummary) -> Vec<f64>| -> Vec<Vec<f64>> {
            self.runs.iter().map(of).collect()
        };
        let suffix = if seeds {
            " (mean, ± 1 std, each seed)"
        } else {
            ""
        };
        bar_chart(
            &areas[0],
            &format!("Validation accuracy: what runs are chosen by{suffix}"),
            "Accuracy",
            &bars(&RunSummary::validation_accuracy),
            1.1,
            &PALETTE,
            &spread(&|r| r.validation.clone()),
        )?;
        bar_chart(
            &areas[1],
            &format!("Test accuracy, reported{suffix}"),
            "Accuracy",
            &bars(&RunSummary::test_accuracy),
            1.1,
            &PALETTE,
            &spread(&RunSummary::accuracies),
        )?;
        let time: Vec<(String, f64, String)> = self
            .runs
            .iter()
            .map(|r| {
                let seconds = r.mean(|m| m.train_seconds);
                (r.run.clone(), seconds, format!("{seconds:.0}s"))
            })
            .collect();
        let top = time.iter().map(|t| t.1).fold(1.0, f64::max) * 1.15;
        bar_chart(
            &areas[2],
            "Training time per run",
            "Seconds",
            &time,
            top,
            &PALETTE,
            &[],
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
            draw_styled_series(&mut chart, points, name, series_style(i))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// One line of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    /// Legend name.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Index of its colour in matplotlib's `tab10` palette (lines of one subject share it).
    pub colour: usize,
    /// Drawn dashed, e.g. the state before training beside the solid state after it.
    pub dashed: bool,
    /// The marker at each point, if any (lines of many points read better without).
    pub marker: Option<Marker>,
}

impl ChartSeries {
    /// A solid line in colour `colour` with `marker` at its points.
    pub fn solid(
        name: impl Into<String>,
        points: Vec<(f64, f64)>,
        colour: usize,
        marker: Marker,
    ) -> Self {
        Self {
            name: name.into(),
            points,
            colour,
            dashed: false,
            marker: Some(marker),
        }
    }
}

/// A line chart of named series, for results that are not a training history (the long-range
/// task's accuracy by distance, gradient norms by step, the filler probe).
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
    /// The lines.
    pub series: Vec<ChartSeries>,
    /// Logarithmic x axis (points with x ≤ 0 are left out).
    pub log_x: bool,
    /// Logarithmic y axis (points with y ≤ 0 are left out).
    pub log_y: bool,
    /// A dashed horizontal reference line and its label (e.g. chance level).
    pub reference: Option<(f64, String)>,
}

/// The range an axis spans over `values`: on a log axis the positive ones, with a margin of a
/// factor of 2 on the y axis (`pad`) and 1.1 on x.
fn axis_range(values: &[f64], log: bool, pad: f64) -> (f64, f64) {
    let kept = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && (!log || *v > 0.0));
    let (lo, hi) = kept.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    match (lo.is_finite(), log) {
        (false, true) => (1e-6, 1.0),
        (false, false) => (0.0, 1.0),
        (true, true) => (lo / pad, (hi * pad).max(lo * pad * pad)),
        (true, false) => (lo, hi.max(lo + 1.0)),
    }
}

impl Plot for LineChart {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(self.reference.iter().map(|r| r.0))
            .collect();
        let (x_lo, x_hi) = axis_range(&xs, self.log_x, 1.1);
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, (FONT, 22, FontStyle::Bold))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(80);
        let x = x_lo..x_hi;
        match (self.log_x, self.log_y) {
            (false, false) => {
                let y = y_range(ys.iter().copied());
                let chart = builder.build_cartesian_2d(x, y).map_err(e)?;
                self.draw_lines(chart, (x_lo, x_hi))
            }
            (false, true) => {
                let (lo, hi) = axis_range(&ys, true, 2.0);
                let chart = builder
                    .build_cartesian_2d(x, (lo..hi).log_scale())
                    .map_err(e)?;
                self.draw_lines(chart, (x_lo, x_hi))
            }
            (true, false) => {
                let y = y_range(ys.iter().copied());
                let chart = builder.build_cartesian_2d(x.log_scale(), y).map_err(e)?;
                self.draw_lines(chart, (x_lo, x_hi))
            }
            (true, true) => {
                let (lo, hi) = axis_range(&ys, true, 2.0);
                let chart = builder
                    .build_cartesian_2d(x.log_scale(), (lo..hi).log_scale())
                    .map_err(e)?;
                self.draw_lines(chart, (x_lo, x_hi))
            }
        }
    }
}

impl LineChart {
    /// The mesh, every series, the reference line and the legend, on axes of any scale.
    fn draw_lines<'a, DB, X, Y>(
        &self,
        mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
        (x_lo, x_hi): (f64, f64),
    ) -> Result<(), String>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let x_span = x_hi - x_lo;
        let y_span = {
            let r = chart.y_range();
            r.end - r.start
        };
        let (log_x, log_y) = (self.log_x, self.log_y);
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .x_label_formatter(&|v| axis_label(*v, x_span, log_x))
            .y_label_formatter(&|v| axis_label(*v, y_span, log_y))
            .label_style(label_font())
            .axis_desc_style((FONT, 18))
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(e)?;
        let shown = |p: &(f64, f64)| {
            p.0.is_finite()
                && p.1.is_finite()
                && (!self.log_x || p.0 > 0.0)
                && (!self.log_y || p.1 > 0.0)
        };
        for series in &self.series {
            let color = PALETTE[series.colour % PALETTE.len()];
            let style = color.stroke_width(2);
            let pts: Vec<(f64, f64)> = series.points.iter().copied().filter(shown).collect();
            match (series.dashed, series.marker) {
                (false, Some(marker)) => {
                    draw_styled_series(&mut chart, pts, &series.name, (color, marker))?;
                }
                (false, None) => {
                    chart
                        .draw_series(LineSeries::new(pts, style))
                        .map_err(e)?
                        .label(series.name.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                }
                (true, _) => {
                    // Two short strokes: a dashed line in the legend too. (Dashed lines carry
                    // no markers: they would hide the dashes.)
                    chart
                        .draw_series(DashedLineSeries::new(pts, 7, 5, style))
                        .map_err(e)?
                        .label(series.name.clone())
                        .legend(move |(x, y)| {
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(0, 0), (8, 0)], style)
                                + PathElement::new(vec![(12, 0), (20, 0)], style)
                        });
                }
            }
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
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
        }
        let (y_lo, y_hi) = {
            let r = chart.y_range();
            (r.start, r.end)
        };
        let corner = self.quietest_corner((x_lo, x_hi), (y_lo, y_hi));
        legend(&mut chart, corner)
    }

    /// The corner of the plot the lines cross least, for the legend: each line is followed in
    /// small steps across the plot's fraction of width and height (log axes in log space), and
    /// the steps inside each corner's box (40% of either side) are counted.
    fn quietest_corner(&self, x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
        let fraction = |v: f64, (lo, hi): (f64, f64), log: bool| {
            if log {
                (v.max(f64::MIN_POSITIVE).ln() - lo.ln()) / (hi.ln() - lo.ln())
            } else {
                (v - lo) / (hi - lo)
            }
        };
        let mut counts = [0usize; 4];
        for series in &self.series {
            let pts: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter(|p| p.1.is_finite() && (!self.log_y || p.1 > 0.0))
                .map(|p| (fraction(p.0, x, self.log_x), fraction(p.1, y, self.log_y)))
                .collect();
            for pair in pts
                .windows(2)
                .map(|w| (w[0], w[1]))
                .chain(pts.first().map(|&p| (p, p)))
            {
                for step in 0..=20 {
                    let t = step as f64 / 20.0;
                    let fx = pair.0.0 + t * (pair.1.0 - pair.0.0);
                    let fy = pair.0.1 + t * (pair.1.1 - pair.0.1);
                    let (right, top) = (fx > 0.6, fy > 0.6);
                    let (left, bottom) = (fx < 0.4, fy < 0.4);
                    for (i, inside) in [top && right, bottom && right, top && left, bottom && left]
                        .into_iter()
                        .enumerate()
                    {
                        counts[i] += usize::from(inside);
                    }
                }
            }
        }
        let corners = [
            SeriesLabelPosition::UpperRight,
            SeriesLabelPosition::LowerRight,
            SeriesLabelPosition::UpperLeft,
            SeriesLabelPosition::LowerLeft,
        ];
        // The first corner with the fewest crossings: upper right when all are equal.
        let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
        corners[best].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_read_cleanly_on_both_scales() {
        // Log axes: plotters' tick values are not exact powers of ten.
        assert_eq!(axis_label(0.10000000000000002, 1e6, true), "0.1");
        assert_eq!(axis_label(0.01, 1e6, true), "0.01");
        assert_eq!(axis_label(1.0, 1e6, true), "1");
        assert_eq!(axis_label(1000.0, 1e6, true), "1000");
        assert_eq!(axis_label(1e-9, 1e6, true), "1e-9");
        assert_eq!(axis_label(1e5, 1e6, true), "1e5");
        // Linear axes.
        assert_eq!(axis_label(0.9, 0.6, false), "0.90");
        assert_eq!(axis_label(1.0, 0.6, false), "1.00");
        assert_eq!(axis_label(200.0, 200.0, false), "200");
    }

    fn chart(series: Vec<ChartSeries>) -> LineChart {
        LineChart {
            stem: "t".into(),
            title: "t".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            series,
            log_x: false,
            log_y: false,
            reference: None,
        }
    }

    #[test]
    fn the_legend_goes_where_the_lines_are_not() {
        let line = |points: Vec<(f64, f64)>| ChartSeries::solid("a", points, 0, Marker::Circle);
        // A line along the top: a lower corner, the right one first.
        let top = chart(vec![line(vec![(0.0, 1.0), (10.0, 1.0)])]);
        assert_eq!(
            top.quietest_corner((0.0, 10.0), (0.0, 1.0)),
            SeriesLabelPosition::LowerRight
        );
        // Falling from the upper left to the lower right, plus a line along the top: the
        // lower left is free.
        let falling = chart(vec![
            line(vec![(0.0, 1.0), (5.0, 1.0), (10.0, 0.0)]),
            line(vec![(0.0, 0.9), (10.0, 0.9)]),
        ]);
        assert_eq!(
            falling.quietest_corner((0.0, 10.0), (0.0, 1.0)),
            SeriesLabelPosition::LowerLeft
        );
        // Nothing drawn: the usual upper right.
        assert_eq!(
            chart(vec![]).quietest_corner((0.0, 1.0), (0.0, 1.0)),
            SeriesLabelPosition::UpperRight
        );
    }
}
