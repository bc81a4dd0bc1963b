//! Report figures from plain numbers: grouped bars, annotated heatmaps,
//! predicted-vs-true scatter, bars (PNG, plotters bitmap backend).
//!
//! These functions know nothing of results files: the caller passes the
//! numbers (per-bin R², the T_eff × [M/H] ΔR² grid, a routing confusion
//! matrix, predictions) and each function writes one PNG. Text uses the
//! font the crate's plots use; categories take their colours in order
//! from the categorical palette (`plot::colors::CATEGORICAL`).
//!
//! Bad input (empty, mismatched lengths, ragged rows, a group index without
//! a name) is an [`Error::Shape`], checked before anything is written.
//!
//! [`experts`] holds the figures of per-bin experts (seed 002), drawn at
//! the seed's fixed size.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::{colors, ensure_font, plot_err};
use crate::{Error, Result};

pub mod experts;

/// Most points [`scatter_pred_true`] draws; above this it draws a
/// deterministic pseudo-random subset of this size.
pub const SCATTER_MAX_POINTS: usize = 20_000;

const FONT: &str = "sans-serif";

fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// The colour of category `i` (cycling after ten).
fn category_color(i: usize) -> RGBColor {
    rgb(colors::CATEGORICAL[i % colors::CATEGORICAL.len()])
}

/// Figure inputs that do not fit together: `what` expected `expected`, found `found`.
fn shape(
    what: impl Into<String>,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> Error {
    Error::shape(what, expected, found)
}

/// Text width and height in pixels at `size` (a rough estimate if the font
/// cannot measure it).
fn text_size(text: &str, size: f64) -> (u32, u32) {
    FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Normal)
        .box_size(text)
        .unwrap_or((
            (text.chars().count() as f64 * size * 0.6) as u32,
            size as u32,
        ))
}

/// Splits `text` at spaces into lines no wider than `width` pixels where
/// possible (a single word longer than `width` stays on its own line).
fn wrap(text: &str, size: f64, width: u32) -> Vec<String> {
    let mut lines: Vec<String> = vec![];
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if text_size(&format!("{line} {word}"), size).0 <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// Integers without decimals and with thousands separators; other values
/// with three decimals below 10, one above.
fn auto_format(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = format!("{}", v.abs() as u64);
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() < 10.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

fn check_categories(what: &str, categories: &[String]) -> Result<()> {
    if categories.is_empty() {
        return Err(shape(what, "at least one category", "none"));
    }
    Ok(())
}

/// One bar series: a legend label (if any) and per-category colours.
struct BarSeries<'a> {
    label: Option<&'a str>,
    values: &'a [f64],
    colors: Vec<RGBColor>,
}

/// Grouped bars: for each category, one bar per series side by side, the
/// value written on each bar, a legend of the series above the plot.
/// Non-finite values are skipped (no bar, no label).
///
/// E.g. per-bin R² of the oracle expert and of the global model:
/// `categories` are the bin names and `series` is
/// `[("oracle expert", r2_oracle), ("global", r2_global)]`.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    y_label: &str,
) -> Result<()> {
    check_categories("grouped bars", categories)?;
    if series.is_empty() {
        return Err(shape("grouped bars", "at least one series", "none"));
    }
    for (label, values) in series {
        if values.len() != categories.len() {
            return Err(shape(
                format!("grouped bars: series {label:?}"),
                format!("{} values (categories)", categories.len()),
                values.len(),
            ));
        }
    }
    let bar_series: Vec<BarSeries> = series
        .iter()
        .enumerate()
        .map(|(s, (label, values))| BarSeries {
            label: Some(label.as_str()),
            values,
            colors: vec![category_color(s); categories.len()],
        })
        .collect();
    draw_bars(path, title, categories, &bar_series, y_label)
}

/// Bars, one per category, each in its category's colour (the same colours
/// as the groups of [`scatter_pred_true`]), the value written on each bar.
/// Non-finite values are skipped. E.g. training samples per bin.
pub fn bars(
    path: &Path,
    title: &str,
    categories: &[String],
    values: &[f64],
    y_label: &str,
) -> Result<()> {
    check_categories("bars", categories)?;
    if values.len() != categories.len() {
        return Err(shape(
            "bars",
            format!("{} values (categories)", categories.len()),
            values.len(),
        ));
    }
    let one = [BarSeries {
        label: None,
        values,
        colors: (0..categories.len()).map(category_color).collect(),
    }];
    draw_bars(path, title, categories, &one, y_label)
}

/// A plotters failure on the bitmap; the figure's entry point turns it into
/// [`plot_err`] on its file.
type Drawn<T = ()> = std::result::Result<
    T,
    DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>,
>;

/// A chart with linear axes, drawn on a bitmap.
type LinearChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A drawing area in pixels: a figure's bitmap, or a part split off it.
type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws checked series (as many values as categories, at least one of
/// each): [`bars`] and [`grouped_bars`] differ only in their series.
fn draw_bars(
    path: &Path,
    title: &str,
    categories: &[String],
    series: &[BarSeries],
    y_label: &str,
) -> Result<()> {
    ensure_font()?;
    let fig = BarFigure { categories, series };
    fig.draw(path, title, y_label)
        .map_err(|e| plot_err(path, e))
}

/// What [`bars`] and [`grouped_bars`] draw: `series[s].values[c]` is the
/// bar of series `s` in category `c`.
struct BarFigure<'a> {
    categories: &'a [String],
    series: &'a [BarSeries<'a>],
}

/// Pixel sizes and the y range of a [`BarFigure`].
struct BarLayout {
    /// One bar, wide enough for its value label.
    bar_px: u32,
    /// One category: its bars side by side, and a gap.
    slot_px: u32,
    /// Left of the plot: the y labels.
    left: u32,
    w: u32,
    h: u32,
    /// Below the plot: the category names, wrapped.
    x_area: u32,
    /// Above the plot (0 without labelled series).
    legend_h: u32,
    /// The y axis: from 0 (or below the lowest bar) to above the highest.
    y0: f64,
    y1: f64,
    /// The span of the bars and 0 (1 when all are equal).
    span: f64,
}

impl BarFigure<'_> {
    /// Slots wide enough for their bars and value labels, a height for the
    /// wrapped category names, and a y range holding 0 and every finite
    /// value with 10 % to spare.
    fn layout(&self) -> BarLayout {
        let (n_cat, n_ser) = (self.categories.len(), self.series.len());
        // A category slot is wide enough for its bars and their value labels.
        let widest_value = self
            .series
            .iter()
            .flat_map(|s| s.values.iter())
            .filter(|v| v.is_finite())
            .map(|&v| text_size(&auto_format(v), 12.0).0)
            .max()
            .unwrap_or(30);
        let bar_px = (widest_value + 6).max(26);
        let slot_px = (bar_px * n_ser as u32 + 28).max(96);
        let left = 90u32;
        let w = (left + 30 + slot_px * n_cat as u32).max(640);
        let label_lines = self
            .categories
            .iter()
            .map(|c| wrap(c, 14.0, slot_px - 8).len())
            .max()
            .unwrap_or(1) as u32;
        let x_area = 14 + 18 * label_lines;
        let legend_h = if self.series.iter().any(|s| s.label.is_some()) {
            30
        } else {
            0
        };
        let h = 480 + x_area;

        let finite: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
            .collect();
        let lo = finite.iter().copied().fold(0.0f64, f64::min);
        let hi = finite.iter().copied().fold(0.0f64, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let y0 = if lo < 0.0 { lo - 0.1 * span } else { 0.0 };
        let y1 = if hi > 0.0 || lo == hi {
            hi + 0.1 * span
        } else {
            0.0
        };
        BarLayout {
            bar_px,
            slot_px,
            left,
            w,
            h,
            x_area,
            legend_h,
            y0,
            y1,
            span,
        }
    }

    /// Title, legend, axes, bars, value labels and category names, in that
    /// order (later ones paint over earlier ones).
    fn draw(&self, path: &Path, title: &str, y_label: &str) -> Drawn {
        let lay = &self.layout();
        let root = BitMapBackend::new(path, (lay.w, lay.h)).into_drawing_area();
        root.fill(&WHITE)?;
        let body = root.titled(title, (FONT, 22))?;
        if lay.legend_h > 0 {
            self.legend(&body, lay.w)?;
        }
        let (_, plot_area) = body.split_vertically(lay.legend_h);
        let mut chart = self.axes(&plot_area, y_label, lay)?;
        let labels = self.bars(&mut chart, lay)?;
        for (x, v, text) in labels {
            let (px, py) = chart.backend_coord(&(x, v));
            let (anchor, dy) = if v >= 0.0 {
                (VPos::Bottom, -3)
            } else {
                (VPos::Top, 3)
            };
            root.draw(&Text::new(
                text,
                (px, py + dy),
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, anchor)),
            ))?;
        }
        self.category_names(&root, &chart, lay)?;
        root.present()?;
        Ok(())
    }

    /// One row, centred, between the title and the plot: a swatch and the
    /// label of each labelled series.
    fn legend(&self, body: &Root<'_>, w: u32) -> Drawn {
        let items: Vec<(&str, RGBColor)> = self
            .series
            .iter()
            .filter_map(|s| s.label.map(|l| (l, s.colors[0])))
            .collect();
        let widths: Vec<u32> = items
            .iter()
            .map(|(l, _)| 22 + text_size(l, 15.0).0 + 24)
            .collect();
        let total: u32 = widths.iter().sum();
        let mut x = (w.saturating_sub(total) / 2) as i32;
        for ((label, color), width) in items.iter().zip(&widths) {
            body.draw(&Rectangle::new([(x, 6), (x + 16, 20)], color.filled()))?;
            body.draw(&Text::new(
                label.to_string(),
                (x + 22, 13),
                TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += *width as i32;
        }
        Ok(())
    }

    /// The axes and horizontal grid lines: x has one unit per category and
    /// no labels of its own; y labels are integers from a span of 100 up.
    fn axes<'a, 'b>(
        &self,
        area: &'a Root<'b>,
        y_label: &str,
        lay: &BarLayout,
    ) -> Drawn<LinearChart<'a, 'b>> {
        let mut chart = ChartBuilder::on(area)
            .margin_left(10)
            .margin_right(20)
            .margin_top(8)
            .margin_bottom(6)
            .x_label_area_size(lay.x_area)
            .y_label_area_size(lay.left - 10)
            .build_cartesian_2d(0f64..self.categories.len() as f64, lay.y0..lay.y1)?;
        let span = lay.span;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_label)
            .y_label_formatter(&|v| {
                if span >= 100.0 {
                    auto_format(v.round())
                } else {
                    format!("{v:.2}")
                }
            })
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        Ok(chart)
    }

    /// The finite bars, series by series, and a zero line when bars go both
    /// ways; returns each bar's label `(x, value, text)` to write over them.
    fn bars(
        &self,
        chart: &mut LinearChart<'_, '_>,
        lay: &BarLayout,
    ) -> Drawn<Vec<(f64, f64, String)>> {
        // Within a slot of width 1, the group takes `group_w`, centred.
        let slot_frac = lay.bar_px as f64 / lay.slot_px as f64;
        let group_w = slot_frac * self.series.len() as f64;
        let mut labels: Vec<(f64, f64, String)> = vec![];
        for (s, ser) in self.series.iter().enumerate() {
            let mut rects = vec![];
            for (c, &v) in ser.values.iter().enumerate() {
                if !v.is_finite() {
                    continue;
                }
                let x0 = c as f64 + 0.5 - group_w / 2.0 + s as f64 * slot_frac;
                let x1 = x0 + slot_frac * 0.92;
                rects.push(Rectangle::new([(x0, 0.0), (x1, v)], ser.colors[c].filled()));
                labels.push(((x0 + x1) / 2.0, v, auto_format(v)));
            }
            chart.draw_series(rects)?;
        }
        if lay.y0 < 0.0 {
            chart.draw_series(LineSeries::new(
                [(0.0, 0.0), (self.categories.len() as f64, 0.0)],
                BLACK.stroke_width(1),
            ))?;
        }
        Ok(labels)
    }

    /// Category names under their slots, wrapped to the slot width.
    fn category_names(
        &self,
        root: &Root<'_>,
        chart: &LinearChart<'_, '_>,
        lay: &BarLayout,
    ) -> Drawn {
        for (c, name) in self.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(c as f64 + 0.5, lay.y0));
            for (i, line) in wrap(name, 14.0, lay.slot_px - 8).iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (px, py + 8 + 18 * i as i32),
                    TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
        }
        Ok(())
    }
}

/// Linear interpolation between colour stops `(t, rgb)`, `t` ascending.
fn ramp(stops: &[(f64, (u8, u8, u8))], t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    for pair in stops.windows(2) {
        let ((t0, a), (t1, b)) = (pair[0], pair[1]);
        if t <= t1 {
            let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
            let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
            return RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2));
        }
    }
    rgb(stops[stops.len() - 1].1)
}

/// Diverging: vermillion (negative), near white (0), blue (positive).
const DIVERGING: [(f64, (u8, u8, u8)); 5] = [
    (0.0, (153, 52, 4)),
    (0.25, (230, 140, 80)),
    (0.5, (247, 247, 247)),
    (0.75, (110, 170, 215)),
    (1.0, (8, 69, 148)),
];
/// Sequential: near white (low) to dark blue (high).
const SEQUENTIAL: [(f64, (u8, u8, u8)); 3] = [
    (0.0, (247, 251, 255)),
    (0.5, (107, 174, 214)),
    (1.0, (8, 48, 107)),
];

/// Black or white, whichever reads better on `c`.
fn ink_on(c: RGBColor) -> RGBColor {
    let lum = 0.299 * c.0 as f64 + 0.587 * c.1 as f64 + 0.114 * c.2 as f64;
    if lum > 140.0 {
        BLACK
    } else {
        WHITE
    }
}

/// A heatmap of `values[row][col]`, each cell annotated with
/// `value_format(value)`, with a colour bar at the right.
///
/// `diverging`: a vermillion–white–blue map centred at 0 over
/// ±max|value| (for ΔR²); otherwise a white-to-blue map from
/// min(0, min value) to the max (for a confusion matrix or gate
/// probabilities). Non-finite cells are grey and read "n/a".
///
/// E.g. the 3 × 3 ΔR² grid: rows `T_eff Cool/Mid/Hot`, columns
/// `[M/H] Poor/Solar/Rich`, `&|v| format!("{v:+.3}")`, `diverging = true`.
pub fn heatmap(
    path: &Path,
    title: &str,
    row_labels: &[String],
    col_labels: &[String],
    values: &[Vec<f64>],
    value_format: &dyn Fn(f64) -> String,
    diverging: bool,
) -> Result<()> {
    if row_labels.is_empty() || col_labels.is_empty() {
        return Err(shape("heatmap", "at least one row and one column", "none"));
    }
    if values.len() != row_labels.len() {
        return Err(shape(
            "heatmap values",
            format!("{} rows (row labels)", row_labels.len()),
            values.len(),
        ));
    }
    if let Some((r, row)) = values
        .iter()
        .enumerate()
        .find(|(_, row)| row.len() != col_labels.len())
    {
        return Err(shape(
            format!("heatmap row {r}"),
            format!("{} values (column labels)", col_labels.len()),
            row.len(),
        ));
    }
    ensure_font()?;
    let fig = HeatmapFigure {
        title,
        row_labels,
        col_labels,
        values,
        value_format,
        scale: HeatScale::of(values, diverging),
    };
    fig.draw(path).map_err(|e| plot_err(path, e))
}

/// What [`heatmap`] draws, its input checked, with its colour scale.
struct HeatmapFigure<'a> {
    title: &'a str,
    row_labels: &'a [String],
    col_labels: &'a [String],
    values: &'a [Vec<f64>],
    value_format: &'a dyn Fn(f64) -> String,
    scale: HeatScale,
}

/// A heatmap's colour scale: `lo..hi` mapped linearly onto `stops`.
struct HeatScale {
    lo: f64,
    hi: f64,
    stops: &'static [(f64, (u8, u8, u8))],
}

impl HeatScale {
    /// Over the finite values: ±max|value| on [`DIVERGING`], or
    /// min(0, min value)..max on [`SEQUENTIAL`]; never an empty range.
    fn of(values: &[Vec<f64>], diverging: bool) -> HeatScale {
        let finite: Vec<f64> = values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = if diverging {
            let m = finite.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let m = if m > 0.0 { m } else { 1.0 };
            (-m, m)
        } else {
            let lo = finite.iter().copied().fold(0.0f64, f64::min);
            let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if hi > lo {
                (lo, hi)
            } else {
                (lo, lo + 1.0)
            }
        };
        let stops: &'static [(f64, (u8, u8, u8))] =
            if diverging { &DIVERGING } else { &SEQUENTIAL };
        HeatScale { lo, hi, stops }
    }

    /// The colour of the finite value `v`.
    fn color(&self, v: f64) -> RGBColor {
        ramp(self.stops, (v - self.lo) / (self.hi - self.lo))
    }
}

/// Pixel geometry of a heatmap: cells sized to their text, the grid's
/// top-left corner at (`gx`, `gy`), the colour bar right of it.
struct HeatLayout {
    cell_text: f64,
    cell_w: u32,
    cell_h: u32,
    /// Each column label, wrapped to the cell width.
    col_lines: Vec<Vec<String>>,
    /// The colour bar's five ticks, lo to hi.
    ticks: Vec<f64>,
    grid_w: u32,
    grid_h: u32,
    bar_gap: u32,
    bar_w: u32,
    gx: i32,
    gy: i32,
    w: u32,
    h: u32,
}

impl HeatmapFigure<'_> {
    /// Cells as wide as their widest text and tall enough for the rows;
    /// the image wide enough for the row labels, grid, colour bar and its
    /// tick labels, and for the title, over which the grid is centred.
    fn layout(&self) -> HeatLayout {
        let (lo, hi) = (self.scale.lo, self.scale.hi);
        let (n_rows, n_cols) = (self.row_labels.len(), self.col_labels.len());
        let cell_text = 16.0;
        let widest_cell = self
            .values
            .iter()
            .flatten()
            .map(|&v| text_size(&fmt_cell(v, self.value_format), cell_text).0)
            .max()
            .unwrap_or(40);
        let cell_w = (widest_cell + 24).max(104);
        let col_lines: Vec<Vec<String>> = self
            .col_labels
            .iter()
            .map(|c| wrap(c, 15.0, cell_w - 8))
            .collect();
        let col_h = 18 * col_lines.iter().map(Vec::len).max().unwrap_or(1) as u32 + 14;
        let cell_h = if n_rows > 6 { 52 } else { 80 };
        let row_w = self
            .row_labels
            .iter()
            .map(|r| text_size(r, 15.0).0)
            .max()
            .unwrap_or(40)
            + 24;
        let ticks: Vec<f64> = (0..5).map(|i| lo + (hi - lo) * i as f64 / 4.0).collect();
        let tick_w = ticks
            .iter()
            .map(|&t| text_size(&(self.value_format)(t), 13.0).0)
            .max()
            .unwrap_or(40);
        let (grid_w, grid_h) = (cell_w * n_cols as u32, cell_h * n_rows as u32);
        let title_h = 48u32;
        let bar_gap = 28u32;
        let bar_w = 20u32;
        let right = bar_gap + bar_w + 8 + tick_w + 24;
        let w = (row_w + grid_w + right).max(text_size(self.title, 22.0).0 + 40);
        let h = title_h + grid_h + col_h + 16;
        // Centred when the title is wider than the grid and its labels.
        let spare = w - (row_w + grid_w + right);
        let (gx, gy) = ((row_w + spare / 2) as i32, title_h as i32);
        HeatLayout {
            cell_text,
            cell_w,
            cell_h,
            col_lines,
            ticks,
            grid_w,
            grid_h,
            bar_gap,
            bar_w,
            gx,
            gy,
            w,
            h,
        }
    }

    /// The title, the cells, the row and column labels, the colour bar.
    fn draw(&self, path: &Path) -> Drawn {
        let lay = self.layout();
        let root = BitMapBackend::new(path, (lay.w, lay.h)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            self.title.to_string(),
            (lay.w as i32 / 2, 14),
            TextStyle::from((FONT, 22).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        self.cells(&root, &lay)?;
        self.labels(&root, &lay)?;
        self.colour_bar(&root, &lay)?;
        root.present()?;
        Ok(())
    }

    /// Each cell filled with its value's colour (grey when not finite),
    /// outlined in white, its text in black or white, whichever reads.
    fn cells(&self, root: &Root<'_>, lay: &HeatLayout) -> Drawn {
        let (gx, gy, cell_w, cell_h) = (lay.gx, lay.gy, lay.cell_w, lay.cell_h);
        for (r, row) in self.values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let x0 = gx + (c as u32 * cell_w) as i32;
                let y0 = gy + (r as u32 * cell_h) as i32;
                let fill = if v.is_finite() {
                    self.scale.color(v)
                } else {
                    RGBColor(200, 200, 200)
                };
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell_w as i32, y0 + cell_h as i32)],
                    fill.filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell_w as i32, y0 + cell_h as i32)],
                    WHITE.stroke_width(1),
                ))?;
                root.draw(&Text::new(
                    fmt_cell(v, self.value_format),
                    (x0 + cell_w as i32 / 2, y0 + cell_h as i32 / 2),
                    TextStyle::from((FONT, lay.cell_text).into_font())
                        .color(&ink_on(fill))
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))?;
            }
        }
        Ok(())
    }

    /// Row labels right-aligned left of their rows; column labels centred
    /// under their columns, wrapped.
    fn labels(&self, root: &Root<'_>, lay: &HeatLayout) -> Drawn {
        let (gx, gy, cell_w, cell_h) = (lay.gx, lay.gy, lay.cell_w, lay.cell_h);
        for (r, label) in self.row_labels.iter().enumerate() {
            root.draw(&Text::new(
                label.clone(),
                (gx - 10, gy + (r as u32 * cell_h + cell_h / 2) as i32),
                TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        for (c, lines) in lay.col_lines.iter().enumerate() {
            for (i, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (
                        gx + (c as u32 * cell_w + cell_w / 2) as i32,
                        gy + lay.grid_h as i32 + 8 + 18 * i as i32,
                    ),
                    TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
        }
        Ok(())
    }

    /// One-pixel rows from hi (top) to lo (bottom), a grey outline, then
    /// the ticks with their values.
    fn colour_bar(&self, root: &Root<'_>, lay: &HeatLayout) -> Drawn {
        let (lo, hi) = (self.scale.lo, self.scale.hi);
        let (gy, bar_w) = (lay.gy, lay.bar_w);
        let bx = lay.gx + lay.grid_w as i32 + lay.bar_gap as i32;
        let bar_h = lay.grid_h as i32;
        for y in 0..bar_h {
            let t = 1.0 - y as f64 / (bar_h - 1).max(1) as f64;
            root.draw(&Rectangle::new(
                [(bx, gy + y), (bx + bar_w as i32, gy + y + 1)],
                ramp(self.scale.stops, t).filled(),
            ))?;
        }
        root.draw(&Rectangle::new(
            [(bx, gy), (bx + bar_w as i32, gy + bar_h)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))?;
        for &t in &lay.ticks {
            let y = gy + ((1.0 - (t - lo) / (hi - lo)) * (bar_h - 1) as f64).round() as i32;
            root.draw(&PathElement::new(
                vec![(bx + bar_w as i32, y), (bx + bar_w as i32 + 5, y)],
                BLACK.stroke_width(1),
            ))?;
            root.draw(&Text::new(
                (self.value_format)(t),
                (bx + bar_w as i32 + 8, y),
                TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(())
    }
}

fn fmt_cell(v: f64, value_format: &dyn Fn(f64) -> String) -> String {
    if v.is_finite() {
        value_format(v)
    } else {
        "n/a".to_string()
    }
}

/// SplitMix64: a fixed pseudo-random key per point index.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Predicted against true values, one colour per group (e.g. the bin of
/// each test row), with the 1:1 line, equal axes and a legend giving each
/// group's name and point count.
///
/// `group[i]` indexes `group_names`. Non-finite points are skipped. Above
/// [`SCATTER_MAX_POINTS`] points a deterministic pseudo-random subset of
/// that size is drawn (a note says so); points are always drawn in a
/// shuffled order so no group paints over the others.
pub fn scatter_pred_true(
    path: &Path,
    title: &str,
    y_true: &[f64],
    y_pred: &[f64],
    group: &[usize],
    group_names: &[String],
) -> Result<()> {
    if y_true.is_empty() {
        return Err(shape("scatter", "at least one point", "none"));
    }
    if y_pred.len() != y_true.len() || group.len() != y_true.len() {
        return Err(shape(
            "scatter predictions and groups",
            format!("{} of each (true values)", y_true.len()),
            format!("{} predictions, {} groups", y_pred.len(), group.len()),
        ));
    }
    if group_names.is_empty() {
        return Err(shape("scatter group names", "at least one", "none"));
    }
    if let Some(&g) = group.iter().find(|&&g| g >= group_names.len()) {
        return Err(shape(
            "scatter group",
            format!("< {} (the names given)", group_names.len()),
            g,
        ));
    }
    ensure_font()?;
    let fig = ScatterFigure::new(y_true, y_pred, group, group_names);
    fig.draw(path, title).map_err(|e| plot_err(path, e))
}

/// What [`scatter_pred_true`] draws: the points kept, in drawing order,
/// the common range of both axes, and the legend's entries.
struct ScatterFigure<'a> {
    y_true: &'a [f64],
    y_pred: &'a [f64],
    group: &'a [usize],
    /// Indices of the points drawn: finite, shuffled, at most
    /// [`SCATTER_MAX_POINTS`].
    idx: Vec<usize>,
    /// Finite points before the subset.
    n_finite: usize,
    /// Both axes: the points' range, padded by 4 %.
    lo: f64,
    hi: f64,
    /// `name (count drawn)` of every group, in order.
    entries: Vec<String>,
}

/// Pixel sizes of a [`ScatterFigure`]: a square plotting area with its
/// margins and axis labels, the legend right of it, the title above and
/// the subset note (when there is one) below.
struct ScatterLayout {
    /// Margins left, top, right and bottom of the chart.
    margins: (u32, u32, u32, u32),
    /// The y and x label areas.
    y_area: u32,
    x_area: u32,
    chart_w: u32,
    chart_h: u32,
    title_h: u32,
    note_h: u32,
    w: u32,
    h: u32,
}

/// The points a scatter of predicted against true values draws: the
/// finite ones, shuffled deterministically, at most
/// [`SCATTER_MAX_POINTS`]; each group's count among them; both axes' range
/// (the points', padded by 4 %).
pub(crate) struct ScatterPoints {
    pub(crate) idx: Vec<usize>,
    pub(crate) n_finite: usize,
    pub(crate) counts: Vec<usize>,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
}

impl ScatterPoints {
    /// `group[i] < groups` for every point.
    pub(crate) fn new(y_true: &[f64], y_pred: &[f64], group: &[usize], groups: usize) -> Self {
        let mut idx: Vec<usize> = (0..y_true.len())
            .filter(|&i| y_true[i].is_finite() && y_pred[i].is_finite())
            .collect();
        let n_finite = idx.len();
        idx.sort_unstable_by_key(|&i| mix64(i as u64));
        idx.truncate(SCATTER_MAX_POINTS);
        let mut counts = vec![0usize; groups];
        for &i in &idx {
            counts[group[i]] += 1;
        }
        let (lo, hi) = idx
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &i| {
                (
                    a.min(y_true[i]).min(y_pred[i]),
                    b.max(y_true[i]).max(y_pred[i]),
                )
            });
        let (lo, hi) = if lo.is_finite() && hi > lo {
            let pad = 0.04 * (hi - lo);
            (lo - pad, hi + pad)
        } else if lo.is_finite() {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        };
        ScatterPoints {
            idx,
            n_finite,
            counts,
            lo,
            hi,
        }
    }
}

impl<'a> ScatterFigure<'a> {
    /// The shuffled finite points (their subset above the limit), each
    /// group's count among them, and the range of both axes.
    fn new(
        y_true: &'a [f64],
        y_pred: &'a [f64],
        group: &'a [usize],
        group_names: &[String],
    ) -> ScatterFigure<'a> {
        let ScatterPoints {
            idx,
            n_finite,
            counts,
            lo,
            hi,
        } = ScatterPoints::new(y_true, y_pred, group, group_names.len());

        // Legend entries: name and count of every group, in order.
        let entries: Vec<String> = group_names
            .iter()
            .zip(&counts)
            .map(|(name, &n)| format!("{name} ({})", auto_format(n as f64)))
            .collect();
        ScatterFigure {
            y_true,
            y_pred,
            group,
            idx,
            n_finite,
            lo,
            hi,
            entries,
        }
    }

    /// A 560-pixel square plot, the legend as wide as its widest entry, and
    /// room for the note when only a subset is drawn.
    fn layout(&self) -> ScatterLayout {
        let legend_w = self
            .entries
            .iter()
            .map(|e| text_size(e, 14.0).0)
            .max()
            .unwrap_or(60)
            + 50;
        let side = 560u32; // the square plotting area
        let (ml, mt, mr, mb, y_area, x_area) = (10u32, 10u32, 16u32, 10u32, 64u32, 50u32);
        let chart_w = ml + y_area + side + mr;
        let title_h = 44u32;
        let note_h = if self.n_finite > self.idx.len() {
            22
        } else {
            0
        };
        let chart_h = mt + side + x_area + mb;
        ScatterLayout {
            margins: (ml, mt, mr, mb),
            y_area,
            x_area,
            chart_w,
            chart_h,
            title_h,
            note_h,
            w: chart_w + legend_w,
            h: title_h + chart_h + note_h,
        }
    }

    /// The title, the chart, the legend and the subset note.
    fn draw(&self, path: &Path, title: &str) -> Drawn {
        let lay = self.layout();
        let (w, h) = (lay.w, lay.h);
        let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            title.to_string(),
            (w as i32 / 2, 12),
            TextStyle::from((FONT, 22).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        let (_, below) = root.split_vertically(lay.title_h);
        let (below, _note_area) = below.split_vertically(lay.chart_h);
        let (chart_area, legend_area) = below.split_horizontally(lay.chart_w);
        self.chart(&chart_area, &lay)?;
        self.legend(&legend_area, &lay)?;
        if lay.note_h > 0 {
            root.draw(&Text::new(
                format!(
                    "showing a deterministic subset of {} of {} points",
                    auto_format(self.idx.len() as f64),
                    auto_format(self.n_finite as f64)
                ),
                (w as i32 / 2, h as i32 - 6),
                TextStyle::from((FONT, 13).into_font())
                    .color(&RGBColor(90, 90, 90))
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))?;
        }
        root.present()?;
        Ok(())
    }

    /// Equal axes with one decimal, the points (smaller above 5000,
    /// translucent) and the dashed 1:1 line over them.
    fn chart(&self, area: &Root<'_>, lay: &ScatterLayout) -> Drawn {
        let (lo, hi) = (self.lo, self.hi);
        let (ml, mt, mr, mb) = lay.margins;
        let mut chart = ChartBuilder::on(area)
            .margin_left(ml)
            .margin_top(mt)
            .margin_right(mr)
            .margin_bottom(mb)
            .x_label_area_size(lay.x_area)
            .y_label_area_size(lay.y_area)
            .build_cartesian_2d(lo..hi, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("true")
            .y_desc("predicted")
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        let radius = if self.idx.len() > 5000 { 2 } else { 3 };
        chart.draw_series(self.idx.iter().map(|&i| {
            Circle::new(
                (self.y_true[i], self.y_pred[i]),
                radius,
                category_color(self.group[i]).mix(0.6).filled(),
            )
        }))?;
        chart.draw_series(DashedLineSeries::new(
            [(lo, lo), (hi, hi)],
            8,
            5,
            BLACK.stroke_width(2),
        ))?;
        Ok(())
    }

    /// The 1:1 line's entry, then a dot and entry per group, top-aligned
    /// with the plotting area.
    fn legend(&self, area: &Root<'_>, lay: &ScatterLayout) -> Drawn {
        let mut y = lay.margins.1 as i32 + 8;
        area.draw(&PathElement::new(
            vec![(4, y), (26, y)],
            BLACK.stroke_width(2),
        ))?;
        area.draw(&Text::new(
            "1:1".to_string(),
            (34, y),
            TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        for (g, entry) in self.entries.iter().enumerate() {
            y += 24;
            area.draw(&Circle::new((15, y), 6, category_color(g).filled()))?;
            area.draw(&Text::new(
                entry.clone(),
                (34, y),
                TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    pub(super) fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).expect("png written");
        assert!(
            bytes.len() > 2000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn grouped_bars_writes_png_and_skips_nan() {
        let dir = tmp();
        let p = dir.path().join("g.png");
        let cats = names(&["Cool Poor", "Cool Solar", "Hot Rich"]);
        let series = vec![
            ("oracle".to_string(), vec![0.5, f64::NAN, 0.8]),
            ("global".to_string(), vec![0.3, 0.6, -0.1]),
        ];
        grouped_bars(&p, "R² per bin", &cats, &series, "R²").unwrap();
        assert_png(&p);
    }

    #[test]
    fn grouped_bars_bad_input_is_an_error() {
        let dir = tmp();
        let p = dir.path().join("g.png");
        let cats = names(&["a", "b"]);
        let short = vec![("s".to_string(), vec![1.0])];
        assert!(matches!(
            grouped_bars(&p, "t", &cats, &short, "y"),
            Err(Error::Shape { .. })
        ));
        assert!(grouped_bars(&p, "t", &[], &[], "y").is_err());
        assert!(grouped_bars(&p, "t", &cats, &[], "y").is_err());
        assert!(!p.exists());
    }

    #[test]
    fn bars_writes_png_and_rejects_mismatch() {
        let dir = tmp();
        let p = dir.path().join("b.png");
        let cats = names(&["a", "b", "c"]);
        bars(
            &p,
            "samples",
            &cats,
            &[120_000.0, 98_765.0, f64::NAN],
            "rows",
        )
        .unwrap();
        assert_png(&p);
        let q = dir.path().join("c.png");
        assert!(matches!(
            bars(&q, "t", &cats, &[1.0], "y"),
            Err(Error::Shape { .. })
        ));
        assert!(bars(&q, "t", &[], &[], "y").is_err());
        assert!(!q.exists());
    }

    #[test]
    fn all_nan_bars_still_draw() {
        let dir = tmp();
        let p = dir.path().join("n.png");
        bars(&p, "nothing", &names(&["a"]), &[f64::NAN], "y").unwrap();
        assert_png(&p);
    }

    #[test]
    fn heatmap_writes_png_both_scales() {
        let dir = tmp();
        let rows = names(&["Cool", "Mid", "Hot"]);
        let cols = names(&["Poor", "Solar", "Rich"]);
        let v = vec![
            vec![0.19, 0.12, -0.02],
            vec![0.17, f64::NAN, 0.05],
            vec![0.18, 0.1, 0.0],
        ];
        let p = dir.path().join("d.png");
        heatmap(&p, "ΔR²", &rows, &cols, &v, &|x| format!("{x:+.3}"), true).unwrap();
        assert_png(&p);
        let q = dir.path().join("s.png");
        heatmap(&q, "p", &rows, &cols, &v, &|x| format!("{x:.2}"), false).unwrap();
        assert_png(&q);
        // Constant values: a degenerate scale is widened, not a division by 0.
        let r = dir.path().join("z.png");
        let zeros = vec![vec![0.0; 3]; 3];
        heatmap(&r, "0", &rows, &cols, &zeros, &|x| format!("{x:.1}"), true).unwrap();
        heatmap(&r, "0", &rows, &cols, &zeros, &|x| format!("{x:.1}"), false).unwrap();
        assert_png(&r);
    }

    #[test]
    fn heatmap_bad_input_is_an_error() {
        let dir = tmp();
        let p = dir.path().join("h.png");
        let rows = names(&["a", "b"]);
        let cols = names(&["x", "y"]);
        let f = |x: f64| format!("{x}");
        let ragged = vec![vec![1.0, 2.0], vec![3.0]];
        assert!(matches!(
            heatmap(&p, "t", &rows, &cols, &ragged, &f, false),
            Err(Error::Shape { .. })
        ));
        let one_row = vec![vec![1.0, 2.0]];
        assert!(heatmap(&p, "t", &rows, &cols, &one_row, &f, false).is_err());
        assert!(heatmap(&p, "t", &[], &cols, &[], &f, false).is_err());
        assert!(heatmap(&p, "t", &rows, &[], &[vec![], vec![]], &f, false).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn scatter_writes_png_and_subsamples() {
        let dir = tmp();
        let n = 30_000;
        let y_true: Vec<f64> = (0..n).map(|i| 1.0 + 4.0 * (i as f64 / n as f64)).collect();
        let y_pred: Vec<f64> = y_true
            .iter()
            .enumerate()
            .map(|(i, y)| y + 0.3 * ((i as f64 * 0.7).sin()))
            .collect();
        let group: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let p = dir.path().join("s.png");
        scatter_pred_true(
            &p,
            "pred vs true",
            &y_true,
            &y_pred,
            &group,
            &names(&["a", "b", "c"]),
        )
        .unwrap();
        assert_png(&p);
    }

    #[test]
    fn scatter_bad_input_is_an_error() {
        let dir = tmp();
        let p = dir.path().join("s.png");
        let g = names(&["a"]);
        assert!(scatter_pred_true(&p, "t", &[], &[], &[], &g).is_err());
        assert!(matches!(
            scatter_pred_true(&p, "t", &[1.0, 2.0], &[1.0], &[0, 0], &g),
            Err(Error::Shape { .. })
        ));
        assert!(scatter_pred_true(&p, "t", &[1.0], &[1.0], &[1], &g).is_err());
        assert!(scatter_pred_true(&p, "t", &[1.0], &[1.0], &[0], &[]).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn helpers() {
        assert_eq!(auto_format(1234567.0), "1,234,567");
        assert_eq!(auto_format(-1000.0), "-1,000");
        assert_eq!(auto_format(0.12345), "0.123");
        assert_eq!(auto_format(12.34), "12.3");
        // The subset is deterministic.
        assert_eq!(mix64(7), mix64(7));
        assert_ne!(mix64(7), mix64(8));
    }
}
