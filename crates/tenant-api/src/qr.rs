//! QR rendering with the `qrcode` crate (no hand-written encoder); PNG through `image`.

use crate::error::{Error, Result};
use qrcode::QrCode;
use qrcode::render::svg;

fn code(content: &str) -> Result<QrCode> {
    QrCode::new(content.as_bytes())
        .map_err(|e| Error::Unavailable(format!("QR content cannot be encoded: {e}")))
}

/// SVG document of the QR.
pub fn svg(content: &str) -> Result<String> {
    Ok(code(content)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build())
}

/// PNG bytes of the QR.
pub fn png(content: &str) -> Result<Vec<u8>> {
    let img = code(content)?
        .render::<image::Luma<u8>>()
        .min_dimensions(256, 256)
        .build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::Unavailable(format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_svg_and_png() {
        let s = super::svg("https://qr.example/P01").expect("svg");
        assert!(s.contains("<svg"));
        let p = super::png("https://qr.example/P01").expect("png");
        assert_eq!(&p[1..4], b"PNG");
    }
}
