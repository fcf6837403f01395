//! Loss curves as PNG (plotters draws into an RGB buffer, the `png` crate encodes it:
//! plotters' own encoder would bring the whole `image` crate). Text needs a TrueType font: DejaVu Sans
//! or Liberation Sans from the system is used when present, else the curves are drawn
//! without labels (the CSV beside the PNG always has the numbers).

use std::path::Path;

use plotters::prelude::*;

/// Fonts tried for labels, in order.
const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn register_font() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        FONT_PATHS.iter().filter_map(|p| std::fs::read(p).ok()).any(|bytes| {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Width and height of the loss plot, in pixels.
const SIZE: (u32, u32) = (900, 540);

/// Draws `series` (name, points `(round, loss)`) into a 900×540 PNG at `path`.
pub fn loss_png(path: &Path, title: &str, series: &[(&str, Vec<(f64, f64)>)]) -> anyhow::Result<()> {
    let labels = register_font();
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-6);
    let mut rgb = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(20);
        if labels {
            builder.caption(title, ("sans-serif", 24)).x_label_area_size(40).y_label_area_size(60);
        }
        let mut chart = builder.build_cartesian_2d(0f64..x_max, (y_min - pad)..(y_max + pad))?;
        let mut mesh = chart.configure_mesh();
        if labels {
            mesh.x_desc("round").y_desc("validation loss");
        } else {
            mesh.disable_x_mesh().disable_y_mesh().x_labels(0).y_labels(0);
        }
        mesh.draw()?;
        let colors = [RED, BLUE, GREEN, MAGENTA];
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = colors[i % colors.len()];
            // Later series are drawn thinner, with a marker at every point, so a curve lying
            // exactly on an earlier one (4-bit updates tracking f32) still shows as two.
            let width = (4 - i.min(2)) as u32;
            let line = chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(width)))?;
            if labels {
                line.label(*name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(width)));
            }
            if i > 0 {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3 + i as i32, color.stroke_width(1))))?;
            }
        }
        if labels {
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }
        root.present()?;
    }
    write_png(path, &rgb)
}

/// Encodes an RGB buffer of [`SIZE`] as PNG and writes it to `path` atomically.
fn write_png(path: &Path, rgb: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("writing the PNG header")?;
    writer.write_image_data(rgb).context("writing the PNG pixels")?;
    writer.finish().context("finishing the PNG")?;
    pogo_circuits::files::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_png_decodes_to_the_plot_size_with_curves_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let series = [("f32", vec![(0.0, 2.0), (1.0, 1.5), (2.0, 1.2)]), ("4-bit", vec![(0.0, 2.0), (1.0, 1.6)])];
        loss_png(&path, "test", &series).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), SIZE);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        // Red (the first series) appears somewhere: the curve was drawn, not just the background.
        assert!(pixels.chunks(3).any(|p| p == [255, 0, 0]));
        assert!(!dir.path().join("loss.tmp.png").exists(), "the temporary file was renamed");
    }
}
