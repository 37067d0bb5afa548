//! Borrowed and owned RGB8 images. Frames arrive from GStreamer with a row stride that may
//! exceed `width * 3` (alignment padding), so every pixel function takes a view with an
//! explicit stride instead of assuming packed rows.

use super::error::{Result, VisionError};

/// Borrowed interleaved RGB8 image (`R, G, B` per pixel) with a row stride in bytes.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    /// Bytes from the start of one row to the start of the next (`>= width * 3`).
    pub stride: usize,
}

impl<'a> ImageView<'a> {
    /// Checked constructor: the buffer must hold `height - 1` full strides plus one row.
    pub fn new(data: &'a [u8], width: usize, height: usize, stride: usize) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(VisionError::InvalidDimensions(format!(
                "image {width}x{height} is empty"
            )));
        }
        if stride < width * 3 {
            return Err(VisionError::InvalidDimensions(format!(
                "stride {stride} < width*3 = {}",
                width * 3
            )));
        }
        let need = (height - 1) * stride + width * 3;
        if data.len() < need {
            return Err(VisionError::BufferTooSmall {
                what: "RGB image",
                need,
                got: data.len(),
            });
        }
        Ok(Self {
            data,
            width,
            height,
            stride,
        })
    }

    /// Packed view (`stride = width * 3`).
    pub fn packed(data: &'a [u8], width: usize, height: usize) -> Result<Self> {
        Self::new(data, width, height, width * 3)
    }

    /// Bytes of row `y` (exactly `width * 3` long).
    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        let s = y * self.stride;
        &self.data[s..s + self.width * 3]
    }

    /// `[r, g, b]` at `(x, y)`.
    #[inline]
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = y * self.stride + x * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Zero-copy axis-aligned sub-image; the rectangle is clamped to the image. Returns
    /// `None` when the clamped rectangle is empty.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Option<ImageView<'a>> {
        let x2 = (x + w).min(self.width);
        let y2 = (y + h).min(self.height);
        if x >= x2 || y >= y2 {
            return None;
        }
        let start = y * self.stride + x * 3;
        Some(ImageView {
            data: &self.data[start..],
            width: x2 - x,
            height: y2 - y,
            stride: self.stride,
        })
    }
}

/// Owned packed RGB8 image (output of perspective crops, test fixtures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl RgbImage {
    /// Image filled with one colour.
    pub fn filled(width: usize, height: usize, rgb: [u8; 3]) -> Self {
        let mut data = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            data.extend_from_slice(&rgb);
        }
        Self {
            data,
            width,
            height,
        }
    }

    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            data: &self.data,
            width: self.width,
            height: self.height,
            stride: self.width * 3,
        }
    }

    pub fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let i = (y * self.width + x) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
    }

    /// Fill an axis-aligned rectangle (clamped); handy for synthetic fixtures.
    pub fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.put(xx, yy, rgb);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_and_crop() {
        // 2x2 image with 8-byte stride (2 bytes padding per row).
        let data = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12];
        let v = ImageView::new(&data, 2, 2, 8).unwrap();
        assert_eq!(v.pixel(1, 1), [10, 11, 12]);
        assert_eq!(v.row(1), &[7, 8, 9, 10, 11, 12]);
        let c = v.crop(1, 1, 5, 5).unwrap();
        assert_eq!((c.width, c.height), (1, 1));
        assert_eq!(c.pixel(0, 0), [10, 11, 12]);
        assert!(v.crop(2, 0, 1, 1).is_none());
        assert!(ImageView::new(&data[..13], 2, 2, 8).is_err());
        assert!(ImageView::new(&data, 3, 2, 8).is_err());
    }
}
