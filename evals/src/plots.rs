//! PNG plots for reports: confusion heatmap, reliability diagram,
//! accuracy-vs-coverage curve and latency histogram + CDF.
//!
//! plotters is built without system font discovery, so a TrueType font is
//! registered at run time: `XIAOER_FONT` if set, else DejaVu Sans from the
//! Debian package `fonts-dejavu-core`. Plot labels are ASCII (intent names,
//! numbers), which DejaVu covers.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::classification::{Calibration, CoveragePoint};
use crate::latency::{percentile, sorted_finite};

/// Where the font is looked for when `XIAOER_FONT` is not set.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Environment variable naming a TTF/OTF file to draw text with.
pub const FONT_ENV: &str = "XIAOER_FONT";

const FAMILY: &str = "sans-serif";

/// Why a plot could not be drawn.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlotError {
    /// No usable font; plots need one for every label.
    #[error("cannot load the plot font {path}: {reason}. Install the Debian package fonts-dejavu-core or set {FONT_ENV} to a .ttf file")]
    Font {
        /// The font file tried.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Drawing or encoding the PNG failed.
    #[error("cannot draw {}: {message}", path.display())]
    Draw {
        /// The PNG being written.
        path: PathBuf,
        /// The plotting error.
        message: String,
    },
}

/// Registers the plot font once per process; later calls return the first
/// outcome. Called by every plot function, public so callers can fail early.
pub fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), PlotError>> = OnceLock::new();
    REGISTERED.get_or_init(register_font).clone()
}

fn register_font() -> Result<(), PlotError> {
    let path = std::env::var(FONT_ENV)
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| DEFAULT_FONT.to_string());
    register_font_file(&path)
}

fn register_font_file(path: &str) -> Result<(), PlotError> {
    let bytes = std::fs::read(path).map_err(|err| PlotError::Font {
        path: path.to_string(),
        reason: err.to_string(),
    })?;
    // plotters keeps fonts for the life of the process and wants `'static`
    // bytes; this runs once (guarded by `ensure_font`), so leaking is bounded.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).map_err(|_| PlotError::Font {
        path: path.to_string(),
        reason: "not a TrueType/OpenType font".to_string(),
    })
}

type DrawResult = Result<(), Box<dyn Error + Send + Sync>>;

fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> Result<(), PlotError> {
    ensure_font()?;
    let wrap = |err: Box<dyn Error + Send + Sync>| PlotError::Draw {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|err| wrap(err.into()))?;
    draw(&root).map_err(wrap)?;
    root.present().map_err(|err| wrap(err.into()))
}

fn font(size: u32) -> FontDesc<'static> {
    (FAMILY, size).into_font()
}

/// White → dark blue by share in `0..=1`.
fn heat(share: f64) -> RGBColor {
    let share = share.clamp(0.0, 1.0);
    let channel = |from: f64, to: f64| (from + (to - from) * share).round() as u8;
    RGBColor(
        channel(255.0, 8.0),
        channel(255.0, 48.0),
        channel(255.0, 107.0),
    )
}

/// Confusion-matrix heatmap: rows are gold labels, columns predictions,
/// colour is the row share (so rare labels are as visible as common ones)
/// and each non-empty cell shows its count.
pub fn confusion_heatmap(
    path: &Path,
    title: &str,
    labels: &[String],
    matrix: &[Vec<usize>],
) -> Result<(), PlotError> {
    const CELL: i32 = 34;
    const LEFT: i32 = 210;
    const TOP: i32 = 70;
    const BOTTOM: i32 = 210;
    const RIGHT: i32 = 40;
    let n = labels.len().max(1) as i32;
    let width = LEFT + n * CELL + RIGHT;
    let height = TOP + n * CELL + BOTTOM;
    render(path, (width as u32, height as u32), |root| {
        root.draw(&Text::new(
            title.to_string(),
            (width / 2, 14),
            font(22)
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        root.draw(&Text::new(
            "rows: expected · columns: predicted · colour: share of the row".to_string(),
            (width / 2, 44),
            font(14)
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        for (row, counts) in matrix.iter().enumerate() {
            let row_total: usize = counts.iter().sum();
            for (col, &count) in counts.iter().enumerate() {
                let x = LEFT + col as i32 * CELL;
                let y = TOP + row as i32 * CELL;
                let share = if row_total == 0 {
                    0.0
                } else {
                    count as f64 / row_total as f64
                };
                let fill = heat(share);
                root.draw(&Rectangle::new(
                    [(x, y), (x + CELL, y + CELL)],
                    fill.filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + CELL, y + CELL)],
                    RGBColor(220, 220, 220).stroke_width(1),
                ))?;
                if count > 0 {
                    let ink = if share > 0.5 { WHITE } else { BLACK };
                    root.draw(&Text::new(
                        count.to_string(),
                        (x + CELL / 2, y + CELL / 2),
                        font(12)
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ))?;
                }
            }
        }
        // The diagonal outlined, so right answers stand out from confusions.
        for index in 0..labels.len() as i32 {
            let corner = (LEFT + index * CELL, TOP + index * CELL);
            root.draw(&Rectangle::new(
                [corner, (corner.0 + CELL, corner.1 + CELL)],
                RGBColor(230, 120, 0).stroke_width(2),
            ))?;
        }
        for (index, label) in labels.iter().enumerate() {
            let center = index as i32 * CELL + CELL / 2;
            root.draw(&Text::new(
                label.clone(),
                (LEFT - 6, TOP + center),
                font(14)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            // Rotated 90°: the text runs downwards, its glyphs to the left of x.
            root.draw(&Text::new(
                label.clone(),
                (LEFT + center + 7, TOP + n * CELL + 6),
                font(14).color(&BLACK).transform(FontTransform::Rotate90),
            ))?;
        }
        Ok(())
    })
}

/// Reliability diagram: accuracy per confidence bin against the diagonal
/// of perfect calibration, with the ECE in the title.
pub fn reliability_diagram(
    path: &Path,
    title: &str,
    calibration: &Calibration,
) -> Result<(), PlotError> {
    let ece = calibration
        .ece
        .map_or("n/a".to_string(), |ece| format!("{ece:.3}"));
    let caption = format!("{title} (ECE {ece})");
    render(path, (800, 700), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, font(22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1.08f64)?;
        chart
            .configure_mesh()
            .x_desc("confidence")
            .y_desc("accuracy")
            .label_style(font(14))
            .axis_desc_style(font(16))
            .y_label_formatter(&|value| format!("{:.0}%", value * 100.0))
            .draw()?;
        let bars = calibration.bins.iter().filter_map(|bin| {
            bin.accuracy.map(|accuracy| {
                Rectangle::new(
                    [(bin.lower + 0.005, 0.0), (bin.upper - 0.005, accuracy)],
                    BLUE.mix(0.55).filled(),
                )
            })
        });
        chart
            .draw_series(bars)?
            .label("accuracy in bin")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 16, y + 5)], BLUE.mix(0.55).filled())
            });
        let gaps = calibration.bins.iter().filter_map(|bin| {
            bin.mean_confidence.map(|confidence| {
                PathElement::new(
                    vec![
                        (bin.lower + 0.01, confidence),
                        (bin.upper - 0.01, confidence),
                    ],
                    RED.stroke_width(3),
                )
            })
        });
        chart
            .draw_series(gaps)?
            .label("mean confidence in bin")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED.stroke_width(3)));
        let counts = calibration
            .bins
            .iter()
            .filter(|bin| bin.count > 0)
            .map(|bin| {
                Text::new(
                    format!("n={}", bin.count),
                    (
                        (bin.lower + bin.upper) / 2.0,
                        bin.accuracy
                            .unwrap_or(0.0)
                            .max(bin.mean_confidence.unwrap_or(0.0))
                            + 0.035,
                    ),
                    font(12)
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )
            });
        chart.draw_series(counts)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                BLACK.stroke_width(1),
            ))?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Accuracy-vs-coverage: what accuracy a "only act above threshold t"
/// policy keeps as t rises and fewer messages are handled.
pub fn accuracy_coverage_plot(
    path: &Path,
    title: &str,
    points: &[CoveragePoint],
) -> Result<(), PlotError> {
    let mut curve: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|point| point.accuracy.map(|accuracy| (point.coverage, accuracy)))
        .collect();
    curve.sort_by(|a, b| a.0.total_cmp(&b.0));
    curve.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let lowest = curve.iter().map(|point| point.1).fold(1.0f64, f64::min);
    let y_floor = ((lowest - 0.05).max(0.0) * 10.0).floor() / 10.0;
    render(path, (800, 650), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1.02f64, y_floor..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc("coverage (share of messages kept)")
            .y_desc("accuracy on kept messages")
            .label_style(font(14))
            .axis_desc_style(font(16))
            .x_label_formatter(&|value| format!("{:.0}%", value * 100.0))
            .y_label_formatter(&|value| format!("{:.0}%", value * 100.0))
            .draw()?;
        chart.draw_series(LineSeries::new(curve.iter().copied(), BLUE.stroke_width(2)))?;
        chart.draw_series(
            curve
                .iter()
                .map(|&point| Circle::new(point, 3, BLUE.filled())),
        )?;
        Ok(())
    })
}

/// Horizontal bars, one per labelled value, labels on the left where they
/// read without rotation (a share drawn as a percentage when `as_share`); a
/// note instead when there is nothing to draw. Labels are ASCII (dates,
/// intent and reason names).
pub fn bar_chart(
    path: &Path,
    title: &str,
    bars: &[(String, f64)],
    as_share: bool,
) -> Result<(), PlotError> {
    let height = (140 + 34 * bars.len() as u32).clamp(360, 1400);
    render(path, (960, height), |root| {
        if bars.is_empty() {
            let body = root.titled(title, font(22))?;
            body.draw(&Text::new(
                "nothing to show for this window".to_string(),
                (480, height as i32 / 3),
                font(18)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
            return Ok(());
        }
        let top = if as_share {
            1.0
        } else {
            bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.1
        };
        let labels: Vec<&str> = bars.iter().map(|b| b.0.as_str()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(22))
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(230)
            .build_cartesian_2d(0f64..top, (0..bars.len()).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.12))
            .y_labels(bars.len())
            .y_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(i) => labels.get(*i).copied().unwrap_or("").to_string(),
                _ => String::new(),
            })
            .x_label_formatter(&|v| {
                if as_share {
                    format!("{:.0}%", v * 100.0)
                } else {
                    format!("{v:.0}")
                }
            })
            .label_style(font(14))
            .draw()?;
        chart.draw_series(
            Histogram::horizontal(&chart)
                .style(BLUE.mix(0.6).filled())
                .margin(6)
                .data(bars.iter().enumerate().map(|(i, (_, value))| (i, *value))),
        )?;
        Ok(())
    })
}

/// Latency histogram (left) and cumulative distribution with p50/p90/p99
/// markers (right); a note instead when there are no samples.
pub fn latency_plot(path: &Path, title: &str, samples_ms: &[f64]) -> Result<(), PlotError> {
    let sorted = sorted_finite(samples_ms);
    render(path, (1200, 550), |root| {
        let body = root.titled(title, font(22))?;
        let Some(&max) = sorted.last() else {
            body.draw(&Text::new(
                "no successful calls to plot".to_string(),
                (600, 220),
                font(18)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
            return Ok(());
        };
        let upper = (max * 1.05).max(1.0);
        const BINS: usize = 30;
        let width = upper / BINS as f64;
        let mut counts = [0usize; BINS];
        for &value in &sorted {
            counts[((value / width) as usize).min(BINS - 1)] += 1;
        }
        let tallest = counts.iter().copied().max().unwrap_or(1).max(1);
        let (left, right) = body.split_horizontally(600);

        let mut histogram = ChartBuilder::on(&left)
            .caption("histogram", font(16))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..upper, 0f64..(tallest as f64 * 1.1))?;
        histogram
            .configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("calls")
            .label_style(font(13))
            .x_label_formatter(&|value| format!("{value:.0}"))
            .axis_desc_style(font(15))
            .y_label_formatter(&|value| format!("{value:.0}"))
            .draw()?;
        histogram.draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(bin, &count)| {
                    let start = bin as f64 * width;
                    Rectangle::new(
                        [(start, 0.0), (start + width, count as f64)],
                        BLUE.mix(0.6).filled(),
                    )
                }),
        )?;

        let mut cdf = ChartBuilder::on(&right)
            .caption("cumulative share of calls", font(16))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..upper, 0f64..1.02f64)?;
        cdf.configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("share ≤ latency")
            .label_style(font(13))
            .x_label_formatter(&|value| format!("{value:.0}"))
            .axis_desc_style(font(15))
            .y_label_formatter(&|value| format!("{:.0}%", value * 100.0))
            .draw()?;
        let total = sorted.len() as f64;
        let steps = sorted
            .iter()
            .enumerate()
            .map(|(index, &value)| (value, (index + 1) as f64 / total));
        cdf.draw_series(LineSeries::new(
            std::iter::once((0.0, 0.0)).chain(steps),
            BLUE.stroke_width(2),
        ))?;
        for (name, q, color) in [
            ("p50", 0.50, GREEN),
            ("p90", 0.90, MAGENTA),
            ("p99", 0.99, RED),
        ] {
            if let Some(value) = percentile(&sorted, q) {
                cdf.draw_series(LineSeries::new(
                    [(value, 0.0), (value, 1.0)],
                    color.stroke_width(1),
                ))?
                .label(format!("{name} {value:.1} ms"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
        }
        cdf.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(font(13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classification::{calibration, coverage_curve};

    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).expect("png written");
        assert!(
            bytes.len() > 1000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn missing_or_bad_font_explains_the_fix() {
        let message = register_font_file("/no/such/font.ttf")
            .expect_err("missing")
            .to_string();
        assert!(
            message.contains("/no/such/font.ttf")
                && message.contains("fonts-dejavu-core")
                && message.contains(FONT_ENV),
            "{message}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.ttf");
        std::fs::write(&junk, b"not a font").expect("write");
        let message = register_font_file(&junk.to_string_lossy())
            .expect_err("junk")
            .to_string();
        assert!(
            message.contains("not a TrueType/OpenType font"),
            "{message}"
        );
    }

    #[test]
    fn plots_produce_png_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let labels: Vec<String> = ["greeting", "order_tracking", "refund_status"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let matrix = vec![vec![5, 1, 0], vec![0, 7, 2], vec![0, 0, 4]];
        let heatmap = dir.path().join("confusion.png");
        confusion_heatmap(&heatmap, "intents", &labels, &matrix).expect("heatmap");
        assert_png(&heatmap);

        let confidences = [0.95, 0.9, 0.85, 0.6, 0.55, 0.3, 0.99, 0.72];
        let correct = [true, true, false, true, false, false, true, true];
        let reliability = dir.path().join("reliability.png");
        reliability_diagram(
            &reliability,
            "intent confidence",
            &calibration(&confidences, &correct, 10),
        )
        .expect("reliability");
        assert_png(&reliability);

        let thresholds: Vec<f64> = (0..=100).map(|step| f64::from(step) / 100.0).collect();
        let coverage = dir.path().join("coverage.png");
        accuracy_coverage_plot(
            &coverage,
            "accuracy vs coverage",
            &coverage_curve(&confidences, &correct, &thresholds),
        )
        .expect("coverage");
        assert_png(&coverage);

        let latency = dir.path().join("latency.png");
        let samples: Vec<f64> = (0..200)
            .map(|i| 5.0 + f64::from(i % 37) * 1.7 + f64::from(i / 190) * 80.0)
            .collect();
        latency_plot(&latency, "Reply latency", &samples).expect("latency");
        assert_png(&latency);

        let empty = dir.path().join("empty.png");
        latency_plot(&empty, "no data", &[]).expect("empty latency plot");
        assert_png(&empty);
    }
}
