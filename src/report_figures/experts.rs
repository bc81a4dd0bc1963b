//! Figures of per-bin experts (seed 002): each bin's expert kinds side by
//! side, the kind chosen on validation marked, the mixtures against a
//! reference line, per-bin gains in green and red, and a mixture's
//! predictions against the truth.
//!
//! Like the rest of [`crate::report_figures`] these take plain numbers.
//! Every figure is [`FIGURE_SIZE`] pixels — the seed's `figsize=(6, 5)` at
//! 100 dpi — so titles wrap and legends flow into rows above the plot
//! rather than widening the image. Bad input is an [`crate::Error::Shape`],
//! checked before anything is written.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    category_color, ink_on, rgb, shape, text_size, wrap, Drawn, HeatScale, LinearChart, Root, FONT,
};
use crate::plot::{colors, ensure_font, plot_err};
use crate::Result;

/// Width and height of every figure here, in pixels.
pub const FIGURE_SIZE: (u32, u32) = (600, 500);

const TITLE_PX: f64 = 18.0;
const KEY_PX: f64 = 13.0;
const LABEL_PX: f64 = 12.0;
/// The shading behind marked bins.
const SHADE: RGBColor = RGBColor(236, 236, 236);

/// Each bin's test R² per expert kind, and the kind the validation fold
/// chose and the one the test rows would.
#[derive(Debug, Clone, Copy)]
pub struct ExpertScores<'a> {
    /// Bin names, in bin order.
    pub bins: &'a [String],
    /// Expert kinds, e.g. `["Ridge", "LightGBM"]`: bar series and columns.
    pub kinds: &'a [String],
    /// `r2[bin][kind]`: test R² of that kind on the bin's rows (NaN: no
    /// model).
    pub r2: &'a [Vec<f64>],
    /// Per bin: the kind chosen on validation (an index into `kinds`).
    pub chosen: &'a [usize],
    /// Per bin: the kind with the highest test R² (an index into `kinds`).
    pub best_on_test: &'a [usize],
}

impl ExpertScores<'_> {
    fn check(&self, what: &str) -> Result<()> {
        let (n, k) = (self.bins.len(), self.kinds.len());
        if n == 0 || k == 0 {
            return Err(shape(what, "at least one bin and one kind", "none"));
        }
        for (name, len) in [
            ("R² rows", self.r2.len()),
            ("chosen kinds", self.chosen.len()),
            ("best-on-test kinds", self.best_on_test.len()),
        ] {
            if len != n {
                return Err(shape(format!("{what}: {name}"), format!("{n} (bins)"), len));
            }
        }
        if let Some((b, row)) = self.r2.iter().enumerate().find(|(_, r)| r.len() != k) {
            return Err(shape(
                format!("{what}: R² of bin {b}"),
                format!("{k} (kinds)"),
                row.len(),
            ));
        }
        if let Some(&c) = self
            .chosen
            .iter()
            .chain(self.best_on_test)
            .find(|&&c| c >= k)
        {
            return Err(shape(format!("{what}: kind"), format!("< {k} (kinds)"), c));
        }
        Ok(())
    }
}

/// Grouped bars of each bin's test R² per kind, a star over the kind
/// chosen on validation (its bar outlined), and the `marked` bins (e.g.
/// the metal-poor ones) shaded and named `marked_label` in the legend.
/// Non-finite R² draws no bar.
pub fn expert_bars(
    path: &Path,
    title: &str,
    scores: &ExpertScores<'_>,
    marked: &[usize],
    marked_label: &str,
) -> Result<()> {
    scores.check("expert bars")?;
    if let Some(&b) = marked.iter().find(|&&b| b >= scores.bins.len()) {
        return Err(shape(
            "expert bars: marked bin",
            format!("< {} (bins)", scores.bins.len()),
            b,
        ));
    }
    ensure_font()?;
    draw_expert_bars(path, title, scores, marked, marked_label).map_err(|e| plot_err(path, e))
}

fn draw_expert_bars(
    path: &Path,
    title: &str,
    s: &ExpertScores<'_>,
    marked: &[usize],
    marked_label: &str,
) -> Drawn {
    let root = canvas(path)?;
    let mut keys: Vec<(Key, String)> = s
        .kinds
        .iter()
        .enumerate()
        .map(|(k, name)| (Key::Box(category_color(k)), name.clone()))
        .collect();
    keys.push((Key::Star, "chosen on validation".into()));
    if !marked.is_empty() {
        keys.push((Key::Shade, marked_label.to_string()));
    }
    let top = header(&root, title, &keys)?;
    let body = root.split_vertically(top).1;
    let values: Vec<f64> = s.r2.iter().flatten().copied().collect();
    let (y0, y1) = value_range(&values, &[], 0.16);
    let names = Categories::new(s.bins, LABEL_PX, s.bins.len());
    let mut chart = bar_axes(&body, s.bins.len(), (y0, y1), &names)?;
    for &b in marked {
        chart.draw_series([Rectangle::new(
            [(b as f64, y0), (b as f64 + 1.0, y1)],
            SHADE.filled(),
        )])?;
    }
    bar_mesh(&mut chart, "R² (test rows of the bin)")?;
    let bar_w = 0.8 / s.kinds.len() as f64;
    for (b, row) in s.r2.iter().enumerate() {
        for (k, &v) in row.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let x0 = b as f64 + 0.1 + k as f64 * bar_w;
            let x1 = x0 + bar_w * 0.9;
            chart.draw_series([Rectangle::new(
                [(x0, 0.0), (x1, v)],
                category_color(k).filled(),
            )])?;
            if s.chosen[b] == k {
                chart.draw_series([Rectangle::new([(x0, 0.0), (x1, v)], BLACK.stroke_width(2))])?;
                let (px, py) = chart.backend_coord(&((x0 + x1) / 2.0, v.max(0.0)));
                root.draw(&star((px, py - 12), 7, BLACK))?;
            }
        }
    }
    zero_line(&mut chart, s.bins.len(), y0)?;
    names.draw(&root, &chart, y0)?;
    root.present()?;
    Ok(())
}

/// A heatmap of each bin's (row) test R² per kind (column), the value in
/// each cell, a star in the cell of the kind chosen on validation and a
/// ring in the best-on-test cell where that differs; a colour bar right.
pub fn expert_heatmap(path: &Path, title: &str, scores: &ExpertScores<'_>) -> Result<()> {
    scores.check("expert heatmap")?;
    ensure_font()?;
    draw_expert_heatmap(path, title, scores).map_err(|e| plot_err(path, e))
}

fn draw_expert_heatmap(path: &Path, title: &str, s: &ExpertScores<'_>) -> Drawn {
    let (w, h) = FIGURE_SIZE;
    let root = canvas(path)?;
    let keys = [
        (Key::Star, "chosen on validation".to_string()),
        (Key::Ring, "best on test, where it differs".to_string()),
    ];
    let top = header(&root, title, &keys)?;
    let scale = HeatScale::of(s.r2, false);
    let fmt = |v: f64| format!("{v:.3}");
    let row_w = s
        .bins
        .iter()
        .map(|b| text_size(b, 13.0).0)
        .max()
        .unwrap_or(40)
        + 14;
    let tick_w = (0..5)
        .map(|i| scale.lo + (scale.hi - scale.lo) * i as f64 / 4.0)
        .map(|t| text_size(&fmt(t), 12.0).0)
        .max()
        .unwrap_or(40);
    let (bar_gap, bar_w) = (18u32, 16u32);
    let right = bar_gap + bar_w + 8 + tick_w + 8;
    let cell_w = ((w - 20 - row_w - right) / s.kinds.len() as u32).min(180);
    let col_h = 24u32;
    let cell_h = ((h - top as u32 - col_h - 12) / s.bins.len() as u32).min(60);
    let grid_w = cell_w * s.kinds.len() as u32;
    let grid_h = cell_h * s.bins.len() as u32;
    let gx = (w - row_w - grid_w - right) as i32 / 2 + row_w as i32;
    let gy = top + col_h as i32;
    for (k, name) in s.kinds.iter().enumerate() {
        root.draw(&Text::new(
            name.clone(),
            (gx + (k as u32 * cell_w + cell_w / 2) as i32, gy - 6),
            style(14.0).pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
    }
    for (b, row) in s.r2.iter().enumerate() {
        let y = gy + (b as u32 * cell_h) as i32;
        root.draw(&Text::new(
            s.bins[b].clone(),
            (gx - 8, y + cell_h as i32 / 2),
            style(13.0).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        for (k, &v) in row.iter().enumerate() {
            let x = gx + (k as u32 * cell_w) as i32;
            let fill = if v.is_finite() {
                scale.color(v)
            } else {
                RGBColor(200, 200, 200)
            };
            let cell = [(x, y), (x + cell_w as i32, y + cell_h as i32)];
            root.draw(&Rectangle::new(cell, fill.filled()))?;
            root.draw(&Rectangle::new(cell, WHITE.stroke_width(1)))?;
            let text = if v.is_finite() { fmt(v) } else { "n/a".into() };
            let ink = ink_on(fill);
            let (cx, cy) = (x + cell_w as i32 / 2, y + cell_h as i32 / 2);
            let half = text_size(&text, 14.0).0 as i32 / 2;
            root.draw(&Text::new(
                text,
                (cx, cy),
                style(14.0)
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
            if s.chosen[b] == k {
                root.draw(&star((cx + half + 14, cy), 8, ink))?;
            }
            if s.best_on_test[b] == k && s.chosen[b] != k {
                root.draw(&Circle::new((cx - half - 14, cy), 7, ink.stroke_width(2)))?;
            }
        }
    }
    // The colour bar: hi at the top.
    let bx = gx + grid_w as i32 + bar_gap as i32;
    for y in 0..grid_h as i32 {
        let t = 1.0 - y as f64 / (grid_h as i32 - 1).max(1) as f64;
        root.draw(&Rectangle::new(
            [(bx, gy + y), (bx + bar_w as i32, gy + y + 1)],
            super::ramp(scale.stops, t).filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(bx, gy), (bx + bar_w as i32, gy + grid_h as i32)],
        RGBColor(120, 120, 120).stroke_width(1),
    ))?;
    for i in 0..5 {
        let t = scale.lo + (scale.hi - scale.lo) * i as f64 / 4.0;
        let y = gy + ((1.0 - i as f64 / 4.0) * (grid_h - 1) as f64).round() as i32;
        let x = bx + bar_w as i32;
        root.draw(&PathElement::new(vec![(x, y), (x + 5, y)], BLACK))?;
        root.draw(&Text::new(
            fmt(t),
            (x + 8, y),
            style(12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    root.draw(&Text::new(
        "R² (test)",
        (bx + bar_w as i32 / 2, gy - 6),
        style(12.0).pos(Pos::new(HPos::Center, VPos::Bottom)),
    ))?;
    root.present()?;
    Ok(())
}

/// Bars, one per `(name, value, colour)`, the value written over each,
/// and a dashed horizontal `reference` line `(value, legend label)` (e.g.
/// a published model's R²). Non-finite values draw no bar.
pub fn bars_with_reference(
    path: &Path,
    title: &str,
    bars: &[(String, f64, (u8, u8, u8))],
    reference: Option<(f64, &str)>,
    y_label: &str,
) -> Result<()> {
    if bars.is_empty() {
        return Err(shape("bars with reference", "at least one bar", "none"));
    }
    ensure_font()?;
    draw_reference_bars(path, title, bars, reference, y_label).map_err(|e| plot_err(path, e))
}

fn draw_reference_bars(
    path: &Path,
    title: &str,
    bars: &[(String, f64, (u8, u8, u8))],
    reference: Option<(f64, &str)>,
    y_label: &str,
) -> Drawn {
    let root = canvas(path)?;
    let red = rgb(colors::RED);
    let keys: Vec<(Key, String)> = reference
        .iter()
        .map(|(_, label)| (Key::Dashed(red), label.to_string()))
        .collect();
    let top = header(&root, title, &keys)?;
    let body = root.split_vertically(top).1;
    let values: Vec<f64> = bars.iter().map(|b| b.1).collect();
    let extra: Vec<f64> = reference.iter().map(|r| r.0).collect();
    let (y0, y1) = value_range(&values, &extra, 0.12);
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let names = Categories::new(&names, 14.0, bars.len());
    let mut chart = bar_axes(&body, bars.len(), (y0, y1), &names)?;
    bar_mesh(&mut chart, y_label)?;
    for (c, (_, v, color)) in bars.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let (x0, x1) = (c as f64 + 0.2, c as f64 + 0.8);
        chart.draw_series([Rectangle::new([(x0, 0.0), (x1, *v)], rgb(*color).filled())])?;
        let (px, py) = chart.backend_coord(&(c as f64 + 0.5, *v));
        let (anchor, dy) = if *v >= 0.0 {
            (VPos::Bottom, -3)
        } else {
            (VPos::Top, 3)
        };
        root.draw(&Text::new(
            format!("{v:.4}"),
            (px, py + dy),
            style(13.0).pos(Pos::new(HPos::Center, anchor)),
        ))?;
    }
    zero_line(&mut chart, bars.len(), y0)?;
    if let Some((r, _)) = reference {
        chart.draw_series(DashedLineSeries::new(
            [(0.0, r), (bars.len() as f64, r)],
            8,
            5,
            red.stroke_width(2),
        ))?;
    }
    names.draw(&root, &chart, y0)?;
    root.present()?;
    Ok(())
}

/// Signed bars (e.g. ΔR²): green above zero, vermillion below, grey at
/// zero, each with its `value_labels` text, and a zero line. Categories
/// may hold a `\n` to start a line of their label. Non-finite values draw
/// no bar.
pub fn signed_bars(
    path: &Path,
    title: &str,
    categories: &[String],
    values: &[f64],
    value_labels: &[String],
    y_label: &str,
) -> Result<()> {
    if categories.is_empty() {
        return Err(shape("signed bars", "at least one category", "none"));
    }
    for (what, len) in [
        ("values", values.len()),
        ("value labels", value_labels.len()),
    ] {
        if len != categories.len() {
            return Err(shape(
                format!("signed bars: {what}"),
                format!("{} (categories)", categories.len()),
                len,
            ));
        }
    }
    ensure_font()?;
    draw_signed_bars(path, title, categories, values, value_labels, y_label)
        .map_err(|e| plot_err(path, e))
}

fn draw_signed_bars(
    path: &Path,
    title: &str,
    categories: &[String],
    values: &[f64],
    value_labels: &[String],
    y_label: &str,
) -> Drawn {
    let root = canvas(path)?;
    let (green, red) = (rgb(colors::GREEN), rgb(colors::RED));
    let keys = [
        (Key::Box(green), "gain".to_string()),
        (Key::Box(red), "loss".to_string()),
    ];
    let top = header(&root, title, &keys)?;
    let body = root.split_vertically(top).1;
    let (y0, y1) = value_range(values, &[], 0.14);
    let (y0, y1) = if y0 < 0.0 {
        (y0 - 0.04 * (y1 - y0), y1)
    } else {
        (y0, y1)
    };
    let names = Categories::new(categories, LABEL_PX, categories.len());
    let mut chart = bar_axes(&body, categories.len(), (y0, y1), &names)?;
    bar_mesh(&mut chart, y_label)?;
    for (c, (&v, label)) in values.iter().zip(value_labels).enumerate() {
        if !v.is_finite() {
            continue;
        }
        let color = if v > 0.0 {
            green
        } else if v < 0.0 {
            red
        } else {
            rgb(colors::GREY)
        };
        let (x0, x1) = (c as f64 + 0.15, c as f64 + 0.85);
        chart.draw_series([Rectangle::new([(x0, 0.0), (x1, v)], color.filled())])?;
        let (px, py) = chart.backend_coord(&(c as f64 + 0.5, v));
        let (anchor, dy) = if v >= 0.0 {
            (VPos::Bottom, -3)
        } else {
            (VPos::Top, 3)
        };
        root.draw(&Text::new(
            label.clone(),
            (px, py + dy),
            style(11.0).pos(Pos::new(HPos::Center, anchor)),
        ))?;
    }
    chart.draw_series(LineSeries::new(
        [(0.0, 0.0), (categories.len() as f64, 0.0)],
        BLACK.stroke_width(1),
    ))?;
    names.draw(&root, &chart, y0)?;
    root.present()?;
    Ok(())
}

/// One group of points of [`scatter_groups`]: its legend name and colour.
#[derive(Debug, Clone)]
pub struct PointGroup {
    /// Legend text (the point count is appended).
    pub name: String,
    /// Colour as RGB.
    pub rgb: (u8, u8, u8),
}

/// Predicted against true values on equal axes with the dashed 1:1 line,
/// one colour per group (`group[i]` indexes `groups`; empty groups are
/// left out of the legend). Non-finite points are skipped; above
/// [`super::SCATTER_MAX_POINTS`] a deterministic subset is drawn (the legend
/// says so); points are drawn shuffled so no group paints over the others.
pub fn scatter_groups(
    path: &Path,
    title: &str,
    y_true: &[f64],
    y_pred: &[f64],
    group: &[usize],
    groups: &[PointGroup],
) -> Result<()> {
    if y_true.is_empty() || groups.is_empty() {
        return Err(shape("scatter", "at least one point and group", "none"));
    }
    if y_pred.len() != y_true.len() || group.len() != y_true.len() {
        return Err(shape(
            "scatter predictions and groups",
            format!("{} of each (true values)", y_true.len()),
            format!("{} predictions, {} groups", y_pred.len(), group.len()),
        ));
    }
    if let Some(&g) = group.iter().find(|&&g| g >= groups.len()) {
        return Err(shape(
            "scatter group",
            format!("< {} (the groups given)", groups.len()),
            g,
        ));
    }
    ensure_font()?;
    draw_scatter(path, title, y_true, y_pred, group, groups).map_err(|e| plot_err(path, e))
}

fn draw_scatter(
    path: &Path,
    title: &str,
    y_true: &[f64],
    y_pred: &[f64],
    group: &[usize],
    groups: &[PointGroup],
) -> Drawn {
    let (w, h) = FIGURE_SIZE;
    let super::ScatterPoints {
        idx,
        n_finite,
        counts,
        lo,
        hi,
    } = super::ScatterPoints::new(y_true, y_pred, group, groups.len());
    let mut keys = vec![(Key::Dashed(BLACK), "1:1".to_string())];
    for (g, n) in groups.iter().zip(&counts).filter(|(_, &n)| n > 0) {
        keys.push((
            Key::Dot(rgb(g.rgb)),
            format!("{} ({})", g.name, super::auto_format(*n as f64)),
        ));
    }
    if idx.len() < n_finite {
        keys.push((
            Key::Note,
            format!(
                "a deterministic subset of {} points",
                super::auto_format(n_finite as f64)
            ),
        ));
    }
    let root = canvas(path)?;
    let top = header(&root, title, &keys)?;
    // A square plot, centred.
    let (y_area, x_area) = (58u32, 46u32);
    let side = (h - top as u32 - x_area - 14).min(w - y_area - 40);
    let left = (w - side - y_area) / 2;
    let body = root.split_vertically(top).1;
    let mut chart = ChartBuilder::on(&body)
        .margin_left(left)
        .margin_right(w - left - y_area - side)
        .margin_top(6)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(lo..hi, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("true log g")
        .y_desc("predicted log g")
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    let radius = if idx.len() > 5000 { 2 } else { 3 };
    chart.draw_series(idx.iter().map(|&i| {
        Circle::new(
            (y_true[i], y_pred[i]),
            radius,
            rgb(groups[group[i]].rgb).mix(0.6).filled(),
        )
    }))?;
    chart.draw_series(DashedLineSeries::new(
        [(lo, lo), (hi, hi)],
        8,
        5,
        BLACK.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

/// A legend entry's swatch.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// A filled square (a bar series).
    Box(RGBColor),
    /// A black star (the chosen kind).
    Star,
    /// A black ring (the best-on-test kind).
    Ring,
    /// A grey square (shaded bins).
    Shade,
    /// A dashed line (a reference line or the 1:1 line).
    Dashed(RGBColor),
    /// A dot (a group of points).
    Dot(RGBColor),
    /// No swatch: grey text.
    Note,
}

fn style(px: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, px).into_font())
}

/// A white [`FIGURE_SIZE`] bitmap.
fn canvas(path: &Path) -> Drawn<Root<'_>> {
    let root = BitMapBackend::new(path, FIGURE_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// The title, wrapped and centred, then the legend's entries flowing into
/// centred rows; returns the pixel row where the plot may start.
fn header(root: &Root<'_>, title: &str, keys: &[(Key, String)]) -> Drawn<i32> {
    let w = root.dim_in_pixel().0;
    let mut y = 8i32;
    for line in title_lines(title, w - 24) {
        root.draw(&Text::new(
            line,
            (w as i32 / 2, y),
            style(TITLE_PX).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        y += TITLE_PX as i32 + 5;
    }
    y += 4;
    let width = |(key, label): &(Key, String)| {
        let swatch = if matches!(key, Key::Note) { 0 } else { 24 };
        swatch + text_size(label, KEY_PX).0 + 18
    };
    let mut rows: Vec<(u32, Vec<&(Key, String)>)> = vec![];
    for k in keys {
        match rows.last_mut() {
            Some((used, row)) if *used + width(k) <= w - 20 => {
                *used += width(k);
                row.push(k);
            }
            _ => rows.push((width(k), vec![k])),
        }
    }
    for (used, row) in rows {
        let mut x = (w.saturating_sub(used) / 2) as i32;
        let cy = y + 8;
        for k @ (key, label) in row {
            let text_x = x + if matches!(key, Key::Note) { 0 } else { 24 };
            swatch(root, *key, (x, cy))?;
            root.draw(&Text::new(
                label.clone(),
                (text_x, cy),
                style(KEY_PX)
                    .color(&if matches!(key, Key::Note) {
                        RGBColor(90, 90, 90)
                    } else {
                        BLACK
                    })
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += width(k) as i32;
        }
        y += 20;
    }
    Ok(y + 4)
}

/// `title` in lines no wider than `width` where possible; a title too wide
/// for one line that ends in a parenthesis (e.g. `(noise 1, seed 42)`)
/// keeps the parenthesis whole on its own last line.
fn title_lines(title: &str, width: u32) -> Vec<String> {
    if text_size(title, TITLE_PX).0 <= width {
        return vec![title.to_string()];
    }
    match title.rfind(" (") {
        Some(i) if title.ends_with(')') => {
            let mut lines = wrap(&title[..i], TITLE_PX, width);
            lines.push(title[i + 1..].to_string());
            lines
        }
        _ => wrap(title, TITLE_PX, width),
    }
}

/// `key`'s swatch, 18 pixels wide, its left end at `x`, centred on `cy`.
fn swatch(root: &Root<'_>, key: Key, (x, cy): (i32, i32)) -> Drawn {
    match key {
        Key::Box(c) => root.draw(&Rectangle::new([(x, cy - 7), (x + 16, cy + 7)], c.filled())),
        Key::Shade => {
            root.draw(&Rectangle::new(
                [(x, cy - 7), (x + 16, cy + 7)],
                SHADE.filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(x, cy - 7), (x + 16, cy + 7)],
                RGBColor(170, 170, 170).stroke_width(1),
            ))
        }
        Key::Star => root.draw(&star((x + 8, cy), 8, BLACK)),
        Key::Ring => root.draw(&Circle::new((x + 8, cy), 6, BLACK.stroke_width(2))),
        Key::Dot(c) => root.draw(&Circle::new((x + 8, cy), 5, c.filled())),
        Key::Dashed(c) => {
            for x0 in [x, x + 11] {
                root.draw(&PathElement::new(
                    vec![(x0, cy), (x0 + 7, cy)],
                    c.stroke_width(2),
                ))?;
            }
            Ok(())
        }
        Key::Note => Ok(()),
    }
}

/// A five-pointed star of outer radius `r` pixels centred on `c`.
fn star(c: (i32, i32), r: i32, color: RGBColor) -> Polygon<(i32, i32)> {
    let points = (0..10)
        .map(|i| {
            let radius = if i % 2 == 0 {
                r as f64
            } else {
                r as f64 * 0.45
            };
            let a = -std::f64::consts::FRAC_PI_2 + i as f64 * std::f64::consts::PI / 5.0;
            (
                c.0 + (radius * a.cos()).round() as i32,
                c.1 + (radius * a.sin()).round() as i32,
            )
        })
        .collect::<Vec<_>>();
    Polygon::new(points, color.filled())
}

/// The y range of bars: from 0 (or below the lowest value) to `headroom`
/// of the span above the highest, over the finite `values` and `extra`
/// levels (e.g. a reference line).
fn value_range(values: &[f64], extra: &[f64], headroom: f64) -> (f64, f64) {
    let finite = values
        .iter()
        .chain(extra)
        .copied()
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let y0 = if lo < 0.0 { lo - 0.08 * span } else { 0.0 };
    let y1 = if hi > 0.0 || lo == hi {
        hi + headroom * span
    } else {
        0.02 * span
    };
    (y0, y1)
}

/// Category names under bar slots, each wrapped to its slot (a `\n`
/// starts a new line).
struct Categories {
    lines: Vec<Vec<String>>,
    px: f64,
}

/// Plot width of bars on a [`FIGURE_SIZE`] figure: less the y label area
/// and margins of [`bar_axes`].
const BAR_PLOT_W: u32 = FIGURE_SIZE.0 - 8 - 64 - 14;

impl Categories {
    fn new(names: &[String], px: f64, slots: usize) -> Categories {
        let slot = BAR_PLOT_W / slots.max(1) as u32;
        let lines = names
            .iter()
            .map(|n| {
                n.split('\n')
                    .flat_map(|part| wrap(part, px, slot.saturating_sub(12)))
                    .collect()
            })
            .collect();
        Categories { lines, px }
    }

    /// The height of the label area under the plot.
    fn height(&self) -> u32 {
        let n = self.lines.iter().map(Vec::len).max().unwrap_or(1) as u32;
        10 + n * (self.px as u32 + 3)
    }

    /// Draws on `root`, the whole figure, in the pixels `chart` maps to.
    fn draw(&self, root: &Root<'_>, chart: &LinearChart<'_, '_>, y0: f64) -> Drawn {
        for (c, lines) in self.lines.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(c as f64 + 0.5, y0));
            for (i, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (px, py + 6 + (self.px as i32 + 3) * i as i32),
                    style(self.px).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
        }
        Ok(())
    }
}

/// Axes of `n` bar slots (x has no labels of its own: [`Categories`]
/// draws them) and y over `y0..y1`; [`bar_mesh`] draws the grid.
fn bar_axes<'a, 'b>(
    area: &'a Root<'b>,
    n: usize,
    (y0, y1): (f64, f64),
    names: &Categories,
) -> Drawn<LinearChart<'a, 'b>> {
    ChartBuilder::on(area)
        .margin_left(8)
        .margin_right(14)
        .margin_top(4)
        .margin_bottom(4)
        .x_label_area_size(names.height())
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..n as f64, y0..y1)
}

/// The y axis, its label and horizontal grid lines, styled as
/// [`super::grouped_bars`]'s.
fn bar_mesh(chart: &mut LinearChart<'_, '_>, y_label: &str) -> Drawn {
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
}

/// A black line at y = 0 across `n` slots when the axis goes below it.
fn zero_line(chart: &mut LinearChart<'_, '_>, n: usize, y0: f64) -> Drawn {
    if y0 < 0.0 {
        chart.draw_series(LineSeries::new(
            [(0.0, 0.0), (n as f64, 0.0)],
            BLACK.stroke_width(1),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    use super::super::tests::{assert_png, names};

    /// A PNG of [`FIGURE_SIZE`] with more than a few bytes in it.
    fn assert_figure(path: &Path) {
        assert_png(path);
        let bytes = std::fs::read(path).expect("png written");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), FIGURE_SIZE);
    }

    /// The owned numbers behind an [`ExpertScores`].
    struct Owned {
        bins: Vec<String>,
        kinds: Vec<String>,
        r2: Vec<Vec<f64>>,
        chosen: Vec<usize>,
        best: Vec<usize>,
    }

    impl Owned {
        /// `n` bins of two kinds, some R² negative or missing.
        fn new(n: usize) -> Owned {
            let r2 = (0..n)
                .map(|b| {
                    let r = 0.1 * b as f64 - 0.05;
                    let tree = if b == 1 {
                        f64::NAN
                    } else {
                        r + 0.03 * (b as f64).sin()
                    };
                    vec![r, tree]
                })
                .collect();
            Owned {
                bins: (0..n).map(|b| format!("Bin {b}")).collect(),
                kinds: names(&["Ridge", "LightGBM"]),
                r2,
                chosen: (0..n).map(|b| b % 2).collect(),
                best: (0..n).map(|b| (b / 2) % 2).collect(),
            }
        }

        fn scores(&self) -> ExpertScores<'_> {
            ExpertScores {
                bins: &self.bins,
                kinds: &self.kinds,
                r2: &self.r2,
                chosen: &self.chosen,
                best_on_test: &self.best,
            }
        }
    }

    #[test]
    fn expert_figures_are_the_seeds_size_over_several_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for n in [1, 3, 9] {
            let o = Owned::new(n);
            let s = o.scores();
            let p = dir.path().join(format!("bars{n}.png"));
            expert_bars(&p, "per-bin experts", &s, &[0], "marked").unwrap();
            assert_figure(&p);
            let p = dir.path().join(format!("heat{n}.png"));
            expert_heatmap(&p, "selection", &s).unwrap();
            assert_figure(&p);
            let delta: Vec<f64> = (0..n).map(|b| 0.05 * b as f64 - 0.04).collect();
            let labels: Vec<String> = delta.iter().map(|d| format!("{d:+.3}")).collect();
            let p = dir.path().join(format!("delta{n}.png"));
            signed_bars(&p, "ΔR²", &o.bins, &delta, &labels, "ΔR²").unwrap();
            assert_figure(&p);
        }
    }

    #[test]
    fn expert_figures_refuse_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let o = Owned::new(3);
        let s = o.scores();
        assert!(matches!(
            expert_bars(&p, "t", &s, &[3], "m"),
            Err(Error::Shape { .. })
        ));
        let bad_kind = vec![0, 2, 0];
        let bad = ExpertScores {
            chosen: &bad_kind,
            ..s
        };
        assert!(expert_heatmap(&p, "t", &bad).is_err());
        let short = ExpertScores {
            r2: &o.r2[..2],
            ..s
        };
        assert!(expert_bars(&p, "t", &short, &[], "m").is_err());
        assert!(bars_with_reference(&p, "t", &[], None, "y").is_err());
        assert!(signed_bars(&p, "t", &o.bins, &[0.1], &names(&["a"]), "y").is_err());
        let g = [PointGroup {
            name: "a".into(),
            rgb: colors::BLUE,
        }];
        assert!(scatter_groups(&p, "t", &[1.0], &[1.0], &[1], &g).is_err());
        assert!(scatter_groups(&p, "t", &[1.0, 2.0], &[1.0], &[0, 0], &g).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn reference_bars_and_scatter_draw() {
        let dir = tempfile::tempdir().unwrap();
        let bars = [
            ("global".to_string(), 0.21, colors::GREY),
            ("oracle".to_string(), 0.29, colors::BLUE),
            ("missing".to_string(), f64::NAN, colors::ORANGE),
        ];
        let p = dir.path().join("r.png");
        bars_with_reference(&p, "overall", &bars, Some((0.7, "reference")), "R²").unwrap();
        assert_figure(&p);
        let n = 25_000;
        let y: Vec<f64> = (0..n).map(|i| 1.0 + 4.0 * i as f64 / n as f64).collect();
        let pred: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v + (i as f64).sin() * 0.3)
            .collect();
        let group: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let groups = [
            PointGroup {
                name: "a".into(),
                rgb: colors::BLUE,
            },
            PointGroup {
                name: "empty".into(),
                rgb: colors::GREY,
            },
            PointGroup {
                name: "b".into(),
                rgb: colors::ORANGE,
            },
        ];
        let group: Vec<usize> = group.iter().map(|&g| 2 * g).collect();
        let p = dir.path().join("s.png");
        scatter_groups(&p, "pred vs true", &y, &pred, &group, &groups).unwrap();
        assert_figure(&p);
    }
}
