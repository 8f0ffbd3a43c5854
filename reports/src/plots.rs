//! Throughput and latency charts, drawn with plotters' SVG backend, one small chart per
//! outcome (ok, fail, info), with the fault intervals shaded behind the lines.

use crate::faults::Faults;
use crate::series::{Line, Panel, Series};
use crate::style;
use crate::text::{clip, thousands};
use plotters::coord::Shift;
use plotters::prelude::*;

const WIDTH: u32 = 440;
const HEIGHT: u32 = 250;

/// A chart, or why there is none.
pub struct Chart {
    pub svg: Option<String>,
    pub empty_note: String,
}

fn fault_color(kind: &str) -> RGBColor {
    let (r, g, b) = style::fault_rgb(kind);
    RGBColor(r, g, b)
}

fn op_color(i: usize) -> RGBColor {
    let (r, g, b) = style::op_rgb(i);
    RGBColor(r, g, b)
}

/// `(start, end)` in seconds of each fault interval, with its kind, for shading.
fn bands(faults: &Faults, end_ns: u64) -> Vec<(f64, f64, RGBColor)> {
    faults
        .intervals
        .iter()
        .map(|iv| {
            (
                iv.start_ns as f64 / 1e9,
                iv.end_ns(end_ns) as f64 / 1e9,
                fault_color(&iv.kind),
            )
        })
        .collect()
}

/// Consecutive present values as separate runs of points (a gap breaks the line).
fn segments(values: &[Option<f64>], x_of: impl Fn(usize) -> f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(y) => cur.push((x_of(i), *y)),
            None => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

type DrawResult<T> = Result<T, String>;

/// Tick labels with as many decimals as an axis up to `max` needs to tell its ticks apart.
fn axis_format(max: f64) -> impl Fn(&f64) -> String {
    let decimals = if max >= 8.0 {
        0
    } else if max >= 0.8 {
        1
    } else {
        2
    };
    move |v: &f64| format!("{v:.decimals$}")
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// The throughput chart of one panel.
pub fn throughput(panel: &Panel, series: &Series, faults: &Faults, fs: &[String]) -> Chart {
    if panel.throughput.is_empty() {
        return Chart {
            svg: None,
            empty_note: format!("No {} operations.", panel.outcome.name()),
        };
    }
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw_throughput(&root, panel, series, faults, fs)
    };
    finish(svg, drawn)
}

/// The latency chart of one panel (log scale).
pub fn latency(panel: &Panel, series: &Series, faults: &Faults, fs: &[String]) -> Chart {
    if panel.latency.is_empty() {
        return Chart {
            svg: None,
            empty_note: format!("No {} operations.", panel.outcome.name()),
        };
    }
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw_latency(&root, panel, series, faults, fs)
    };
    finish(svg, drawn)
}

fn finish(svg: String, drawn: DrawResult<()>) -> Chart {
    match drawn {
        Ok(()) => Chart {
            svg: Some(svg),
            empty_note: String::new(),
        },
        Err(e) => Chart {
            svg: None,
            empty_note: format!("The chart could not be drawn: {e}"),
        },
    }
}

fn color_of(line: &Line, fs: &[String]) -> RGBColor {
    op_color(fs.iter().position(|f| *f == line.f).unwrap_or(fs.len()))
}

fn draw_throughput(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel,
    series: &Series,
    faults: &Faults,
    fs: &[String],
) -> DrawResult<()> {
    root.fill(&WHITE).map_err(err)?;
    let x_end = series.end_ns as f64 / 1e9;
    let bucket_s = series.bucket_ns as f64 / 1e9;
    let x_fmt = axis_format(x_end);
    let y_max = panel
        .throughput
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1.0)
        * 1.15;
    let y_fmt = axis_format(y_max);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{} operations per second", panel.outcome.name()),
            ("sans-serif", 17),
        )
        .margin(6)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..x_end, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time since the run began (s)")
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 13))
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bands(faults, series.end_ns).into_iter().map(|(a, b, c)| {
            Rectangle::new(
                [(a, 0.0), (b.max(a + bucket_s / 4.0), y_max)],
                c.mix(0.13).filled(),
            )
        }))
        .map_err(err)?;
    for line in &panel.throughput {
        let color = color_of(line, fs);
        for seg in segments(&line.values, |i| (i as f64 + 0.5) * bucket_s) {
            chart
                .draw_series(LineSeries::new(seg, color.stroke_width(2)))
                .map_err(err)?;
        }
        // A legend entry without a line of its own.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
            .map_err(err)?
            .label(format!(
                "{} ({})",
                clip(&line.f, 20),
                thousands(line.total as u64)
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn draw_latency(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel,
    series: &Series,
    faults: &Faults,
    fs: &[String],
) -> DrawResult<()> {
    root.fill(&WHITE).map_err(err)?;
    let x_end = series.end_ns as f64 / 1e9;
    let bucket_s = series.bucket_ns as f64 / 1e9;
    let x_fmt = axis_format(x_end);
    let all = || {
        panel
            .latency
            .iter()
            .flat_map(|l| l.values.iter().chain(l.p99.iter()).flatten().copied())
    };
    let y_min = all().fold(f64::INFINITY, f64::min).max(1e-3);
    let y_max = all().fold(0.0f64, f64::max).max(y_min * 10.0);
    let (lo, hi) = (y_min / 1.5, y_max * 1.5);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{} latency (ms, log scale)", panel.outcome.name()),
            ("sans-serif", 17),
        )
        .margin(6)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..x_end, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time since the run began (s)")
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 13))
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bands(faults, series.end_ns).into_iter().map(|(a, b, c)| {
            Rectangle::new(
                [(a, lo), (b.max(a + bucket_s / 4.0), hi)],
                c.mix(0.13).filled(),
            )
        }))
        .map_err(err)?;
    for line in &panel.latency {
        let color = color_of(line, fs);
        let x_of = |i: usize| (i as f64 + 0.5) * bucket_s;
        for seg in segments(&line.p99, x_of) {
            if seg.len() == 1 {
                chart
                    .draw_series(seg.into_iter().map(|p| Circle::new(p, 2, color.mix(0.6))))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(DashedLineSeries::new(
                        seg,
                        4,
                        3,
                        color.mix(0.6).stroke_width(1),
                    ))
                    .map_err(err)?;
            }
        }
        for seg in segments(&line.values, x_of) {
            if seg.len() == 1 {
                chart
                    .draw_series(seg.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(seg, color.stroke_width(2)))
                    .map_err(err)?;
            }
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
            .map_err(err)?
            .label(clip(&line.f, 20))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
