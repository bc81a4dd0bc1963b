//! PNG plots (plotters, bitmap backend).
//!
//! Text needs a TrueType font: plotters' `ab_glyph` renderer takes one from
//! `GRAMSTREAM_FONT`, or DejaVu Sans / Liberation Sans from the usual system
//! locations (Debian: `fonts-dejavu-core`, which `scripts/setup.sh`
//! installs). Without one the plot fails with an error saying so.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Error, Result};

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a system font as plotters' `sans-serif` (once per process).
pub(crate) fn ensure_font() -> Result<()> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let env = std::env::var("GRAMSTREAM_FONT").ok();
        let candidates = env.iter().map(String::as_str).chain(FONT_CANDIDATES.iter().copied());
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // The registry keeps the bytes for the process lifetime.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err("plots need a TrueType font: install fonts-dejavu-core (Debian) or set GRAMSTREAM_FONT to a .ttf file".to_string())
    })
    .clone()
    .map_err(|problem| Error::InvalidParameter {
        name: "font",
        problem,
    })
}

/// A plotters failure while drawing `path`, as an I/O error on that file.
pub(crate) fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::other(format!("drawing the plot: {e}")),
    )
}

/// A line on a panel.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Text of its legend entry.
    pub label: String,
    /// Colour as RGB.
    pub rgb: (u8, u8, u8),
    /// (x, y) points; non-finite ones break the line.
    pub points: Vec<(f64, f64)>,
}

/// One panel of a figure.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// Caption drawn above the panel (and before its empty note).
    pub title: String,
    /// The curves, drawn in order as lines with dots.
    pub series: Vec<Series>,
    /// A vertical marker (e.g. the selected α) with its label.
    pub marker: Option<(f64, String)>,
    /// A note drawn inside the panel when there is nothing to plot.
    pub empty_note: Option<String>,
}

/// Colours used across gramstream's plots (colour-blind safe, Okabe–Ito).
pub(crate) mod colors {
    pub(crate) const BLUE: (u8, u8, u8) = (0, 114, 178);
    pub(crate) const ORANGE: (u8, u8, u8) = (230, 159, 0);
    /// Okabe–Ito bluish green.
    pub(crate) const GREEN: (u8, u8, u8) = (0, 158, 115);
    /// Mid grey, not Okabe–Ito: the training curve; the tenth category ("outside every bin").
    pub(crate) const GREY: (u8, u8, u8) = (120, 120, 120);
    /// Okabe–Ito vermillion: the panels' vertical marker (e.g. the selected α).
    pub(crate) const RED: (u8, u8, u8) = (213, 94, 0);
    /// Okabe–Ito reddish purple.
    pub(crate) const PURPLE: (u8, u8, u8) = (204, 121, 167);
    pub(crate) const SKY: (u8, u8, u8) = (86, 180, 233);
    pub(crate) const YELLOW: (u8, u8, u8) = (240, 228, 66);
    /// Black (the eighth Okabe–Ito colour).
    pub(crate) const BLACK: (u8, u8, u8) = (0, 0, 0);
    /// Brown: not Okabe–Ito, a tenth category distinct from the others.
    pub(crate) const BROWN: (u8, u8, u8) = (140, 86, 45);

    /// Colours for up to ten categories, in order (e.g. the nine
    /// T_eff × [M/H] bins, then "outside every bin" in grey). Callers with
    /// more categories cycle.
    pub(crate) const CATEGORICAL: [(u8, u8, u8); 10] = [
        BLUE, ORANGE, GREEN, RED, PURPLE, SKY, YELLOW, BLACK, BROWN, GREY,
    ];
}

/// Splits a series at non-finite points into drawable runs.
fn runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![];
    let mut cur = vec![];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() && x > 0.0 {
            cur.push((x, y));
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The legend corner covering the fewest points: the legend takes about the
/// outer 40 % of the (log) x range and 45 % of the y range of its corner.
fn legend_corner(
    panel: &Panel,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    y_floor: Option<f64>,
) -> SeriesLabelPosition {
    let (lx0, lx1) = (x0.ln(), x1.ln());
    let count = |right: bool, top: bool| {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && *x > 0.0 && y.is_finite())
            .filter(|(x, y)| {
                let fx = (x.ln() - lx0) / (lx1 - lx0);
                let fy = (y_floor.map_or(*y, |f| y.max(f)) - y0) / (y1 - y0);
                let in_x = if right { fx >= 0.6 } else { fx <= 0.4 };
                let in_y = if top { fy >= 0.55 } else { fy <= 0.45 };
                in_x && in_y
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperRight, count(true, true)),
        (SeriesLabelPosition::LowerLeft, count(false, false)),
        (SeriesLabelPosition::LowerRight, count(true, false)),
        (SeriesLabelPosition::UpperLeft, count(false, true)),
    ]
    .into_iter()
    .min_by_key(|(_, n)| *n)
    .map(|(p, _)| p)
    .unwrap_or(SeriesLabelPosition::UpperRight)
}

/// A figure of panels on a grid, x on a log axis (α), written as PNG.
/// `y_floor` clips very bad values (e.g. R² ≪ 0 at tiny α) so the
/// interesting range stays readable; clipped points are drawn at the floor.
pub(crate) fn log_x_panels(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    panels: &[Panel],
    cols: usize,
    y_floor: Option<f64>,
) -> Result<()> {
    ensure_font()?;
    let cols = cols.max(1).min(panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (420 * cols as u32, 40 + 330 * rows as u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| plot_err(path, e))?;
    let areas = root.split_evenly((rows, cols));
    let axes = LogXAxes {
        path,
        x_label,
        y_label,
        y_floor,
    };
    for (panel, area) in panels.iter().zip(areas.iter()) {
        axes.panel(area, panel)?;
    }
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// A panel's drawing area in [`log_x_panels`].
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// A panel's chart: log α against a linear y.
type LogXChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<LogCoord<f64>, RangedCoordf64>>;

/// What every panel of one [`log_x_panels`] figure shares: the file (for
/// errors), the axis labels and the floor of y.
struct LogXAxes<'a> {
    path: &'a Path,
    x_label: &'a str,
    y_label: &'a str,
    y_floor: Option<f64>,
}

impl LogXAxes<'_> {
    /// One panel: its series, marker and legend on axes fitted to its
    /// points, or its note when it has nothing drawable.
    fn panel(&self, area: &Area<'_>, panel: &Panel) -> Result<()> {
        let path = self.path;
        let Some(((x0, x1), (y0, y1))) = self.ranges(panel) else {
            let note = panel.empty_note.as_deref().unwrap_or("nothing to plot");
            area.draw(&Text::new(
                format!("{}: {note}", panel.title),
                (20, 40),
                ("sans-serif", 15),
            ))
            .map_err(|e| plot_err(path, e))?;
            return Ok(());
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style(("sans-serif", 12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        self.lines(&mut chart, panel)?;
        if let Some((x, label)) = &panel.marker {
            let red = RGBColor(colors::RED.0, colors::RED.1, colors::RED.2);
            chart
                .draw_series(DashedLineSeries::new(
                    [(*x, y0), (*x, y1)],
                    6,
                    4,
                    red.stroke_width(2),
                ))
                .map_err(|e| plot_err(path, e))?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], red.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(legend_corner(panel, (x0, x1), (y0, y1), self.y_floor))
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        Ok(())
    }

    /// The axes' ranges, padded: x by ×1.5 each side (×10 for a single α),
    /// y by 6 % of its span (at least 1e-3), over the finite points with y
    /// floored. None when the panel has no finite x > 0 or no finite y.
    fn ranges(&self, panel: &Panel) -> Option<((f64, f64), (f64, f64))> {
        let xs: Vec<f64> = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        let mut ys: Vec<f64> = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
            .collect();
        if let Some(f) = self.y_floor {
            ys.iter_mut().for_each(|y| *y = y.max(f));
        }
        if xs.is_empty() || ys.is_empty() {
            return None;
        }
        let (x0, x1) = xs
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let (y0, y1) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        let pad = ((y1 - y0) * 0.06).max(1e-3);
        let (x0, x1) = if x1 > x0 {
            (x0 / 1.5, x1 * 1.5)
        } else {
            (x0 / 10.0, x0 * 10.0)
        };
        Some(((x0, x1), (y0 - pad, y1 + pad)))
    }

    /// Each series as lines with dots, broken at non-finite points, its
    /// legend entry on its first run only.
    fn lines(&self, chart: &mut LogXChart<'_, '_>, panel: &Panel) -> Result<()> {
        let path = self.path;
        for s in &panel.series {
            let color = RGBColor(s.rgb.0, s.rgb.1, s.rgb.2);
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (x, self.y_floor.map_or(y, |f| y.max(f))))
                .collect();
            let mut first = true;
            for run in runs(&pts) {
                let series = chart
                    .draw_series(LineSeries::new(run.clone(), color.stroke_width(2)))
                    .map_err(|e| plot_err(path, e))?;
                if first {
                    series.label(s.label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                    first = false;
                }
                chart
                    .draw_series(run.iter().map(|&p| Circle::new(p, 2, color.filled())))
                    .map_err(|e| plot_err(path, e))?;
            }
        }
        Ok(())
    }
}
