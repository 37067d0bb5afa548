//! OpenCV interop (cargo feature `opencv`): the project's images as OpenCV `Mat`s without
//! copying pixels.
//!
//! Kept apart from the stages that call OpenCV (today the perspective crop,
//! [`super::crop`]) because it holds this tree's only `unsafe` code: a `Mat` header built
//! over memory Rust owns. The header borrows the buffer (`BoxedRef` / `BoxedRefMut`
//! carry its lifetime), so the buffer outlives every use of the `Mat`.
//!
//! - [`mat_view`]: a frame ([`ImageView`], e.g. a GStreamer buffer) as a `CV_8UC3` `Mat`
//!   whose `step` is the view's stride. OpenCV accepts any row step of at least
//!   `width * 3` bytes for 8-bit images, so padded rows never force a copy.
//! - [`write_into`]: lets an OpenCV function write its output straight into an
//!   [`RgbImage`]'s buffer.
//!
//! Channel order is whatever the buffer holds (RGB here); the geometric functions used
//! do not care.

use std::ffi::c_void;

use opencv::boxed_ref::{BoxedRef, BoxedRefMut};
use opencv::core::{Mat, MatTraitConst, StsBadArg, Vec3b, CV_8UC3};

use super::image::{ImageView, RgbImage};

fn bad(msg: String) -> opencv::Error {
    opencv::Error::new(StsBadArg, msg)
}

fn dim(n: usize, what: &str) -> opencv::Result<i32> {
    i32::try_from(n).map_err(|_| bad(format!("image {what} {n} is too large for OpenCV")))
}

/// `img` as a read-only `CV_8UC3` `Mat` over the same bytes (no copy), `step = stride`.
/// The view's fields are public, so they are checked again here before OpenCV is given
/// a raw pointer: an error, never a read past the buffer.
pub fn mat_view<'a>(img: &ImageView<'a>) -> opencv::Result<BoxedRef<'a, Mat>> {
    let row = img
        .width
        .checked_mul(3)
        .ok_or_else(|| bad("image width overflows".into()))?;
    if img.width == 0 || img.height == 0 || img.stride < row {
        return Err(bad(format!(
            "image {}x{} with stride {} is not a valid RGB view",
            img.width, img.height, img.stride
        )));
    }
    let need = (img.height - 1)
        .checked_mul(img.stride)
        .and_then(|n| n.checked_add(row));
    if need.is_none_or(|n| img.data.len() < n) {
        return Err(bad(format!(
            "RGB buffer of {} bytes is too small for {}x{} with stride {}",
            img.data.len(),
            img.width,
            img.height,
            img.stride
        )));
    }
    let (rows, cols) = (dim(img.height, "height")?, dim(img.width, "width")?);
    // SAFETY: the buffer holds `rows` rows of `cols * 3` bytes `stride` apart (checked
    // above) and outlives the returned header (`'a`). OpenCV only reads through it: the
    // header is handed out as a `BoxedRef`, which gives no mutable access to the Mat.
    let m = unsafe {
        Mat::new_rows_cols_with_data_unsafe(
            rows,
            cols,
            CV_8UC3,
            img.data.as_ptr().cast::<c_void>().cast_mut(),
            img.stride,
        )
    }?;
    Ok(BoxedRef::from(m))
}

/// `img` as a writable `CV_8UC3` `Mat` over its buffer (no copy).
pub fn mat_view_mut(img: &mut RgbImage) -> opencv::Result<BoxedRefMut<'_, Mat>> {
    let (rows, cols) = (dim(img.height, "height")?, dim(img.width, "width")?);
    Mat::new_rows_cols_with_bytes_mut::<Vec3b>(rows, cols, &mut img.data)
}

/// Runs `f` with `out` lent as its output `Mat`, so an OpenCV function that is given an
/// output of the right size and type (OpenCV then keeps it) writes straight into `out`.
/// Should OpenCV allocate a new matrix instead, its pixels are copied back.
pub fn write_into(
    out: &mut RgbImage,
    f: impl FnOnce(&mut BoxedRefMut<'_, Mat>) -> opencv::Result<()>,
) -> opencv::Result<()> {
    let (w, h) = (out.width, out.height);
    let ptr = out.data.as_ptr();
    let mut dst = mat_view_mut(out)?;
    f(&mut dst)?;
    if dst.data() == ptr {
        return Ok(());
    }
    if dst.typ() != CV_8UC3 || dst.cols() as usize != w || dst.rows() as usize != h {
        return Err(bad(format!(
            "OpenCV returned a {}x{} matrix of type {}, expected {w}x{h} CV_8UC3",
            dst.cols(),
            dst.rows(),
            dst.typ()
        )));
    }
    let mut packed = Vec::with_capacity(w * h * 3);
    for y in 0..h as i32 {
        let row = dst.ptr(y)?;
        // SAFETY: row `y` of a CV_8UC3 matrix `w` wide holds `w * 3` bytes.
        packed.extend_from_slice(unsafe { std::slice::from_raw_parts(row, w * 3) });
    }
    drop(dst);
    out.data = packed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::prelude::*;

    #[test]
    fn mat_view_shares_the_buffer_and_respects_stride() {
        // 3x2 image, stride 3*3 + 2 bytes of padding (not a multiple of 3 on purpose).
        let stride = 11;
        let mut data = vec![0xEEu8; stride + 9];
        for y in 0..2 {
            for x in 0..3 {
                let i = y * stride + x * 3;
                data[i..i + 3].copy_from_slice(&[(10 * y + x) as u8, 100, 200]);
            }
        }
        let view = ImageView::new(&data, 3, 2, stride).unwrap();
        let m = mat_view(&view).unwrap();
        assert_eq!(m.data(), data.as_ptr(), "the Mat reads the frame in place");
        assert_eq!((m.cols(), m.rows(), m.typ()), (3, 2, CV_8UC3));
        assert_eq!(m.mat_step()[0], stride);
        assert!(!m.is_continuous());
        for y in 0..2 {
            for x in 0..3 {
                let p = *m.at_2d::<Vec3b>(y, x).unwrap();
                assert_eq!(p.0, view.pixel(x as usize, y as usize), "pixel ({x}, {y})");
            }
        }
        // A sub-view (ImageView::crop) keeps the parent's stride.
        let sub = view.crop(1, 1, 2, 1).unwrap();
        let ms = mat_view(&sub).unwrap();
        assert_eq!(ms.at_2d::<Vec3b>(0, 0).unwrap().0, [11, 100, 200]);
    }

    #[test]
    fn mat_view_refuses_inconsistent_views() {
        let data = [0u8; 20];
        // Fields are public: a view can claim more than its buffer holds.
        let short = ImageView {
            data: &data,
            width: 3,
            height: 3,
            stride: 9,
        };
        assert!(mat_view(&short).is_err());
        let narrow = ImageView {
            data: &data,
            width: 3,
            height: 1,
            stride: 8,
        };
        assert!(mat_view(&narrow).is_err());
        let empty = ImageView {
            data: &data,
            width: 0,
            height: 1,
            stride: 0,
        };
        assert!(mat_view(&empty).is_err());
        let ok = ImageView {
            data: &data,
            width: 3,
            height: 2,
            stride: 10,
        };
        assert!(mat_view(&ok).is_ok());
    }

    #[test]
    fn write_into_keeps_the_output_buffer_or_copies_back() {
        // Same size and type: OpenCV writes in place.
        let src = RgbImage::filled(4, 2, [1, 2, 3]);
        let mut out = RgbImage::filled(4, 2, [0, 0, 0]);
        let ptr = out.data.as_ptr();
        write_into(&mut out, |dst| mat_view(&src.view())?.copy_to(dst)).unwrap();
        assert_eq!(out.data.as_ptr(), ptr);
        assert_eq!(out, src);
        // A function that lets go of the lent buffer and allocates its own matrix: its
        // pixels are copied back.
        let mut out = RgbImage::filled(4, 2, [0, 0, 0]);
        write_into(&mut out, |dst| {
            // SAFETY: the new matrix is filled before it is read.
            unsafe {
                dst.release()?;
                dst.create_rows_cols(2, 4, CV_8UC3)?;
            }
            dst.set_to_def(&opencv::core::Scalar::new(7.0, 8.0, 9.0, 0.0))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(out, RgbImage::filled(4, 2, [7, 8, 9]));
        // ... unless it is not the image asked for.
        let mut out = RgbImage::filled(4, 2, [0, 0, 0]);
        // SAFETY: the new matrix is never read.
        let r = write_into(&mut out, |dst| unsafe {
            dst.release()?;
            dst.create_rows_cols(3, 4, CV_8UC3)
        });
        assert!(r.is_err());
    }
}
