//! PKLot-style bay files: `<parking><space id occupied><contour><point x y/>…`
//! (the format of the PKLot data set and of many labelling tools derived from
//! it). Used to import bays into the config and as ground truth by
//! `lotsense eval occupancy`.

use super::{BayConfig, Config, ConfigPath, Problem};
use std::path::Path;

/// One `<space>` of a PKLot file.
#[derive(Debug, Clone, PartialEq)]
pub struct PklotSpace {
    pub id: String,
    /// `occupied="1"` / `"0"`; absent when the file has no ground truth for it.
    pub occupied: Option<bool>,
    /// Image pixels, in the file's order.
    pub polygon: Vec<[f32; 2]>,
}

/// Parses a PKLot XML document. A space's polygon is its `<contour>`; when
/// that is missing, the corners of its `<rotatedRect>` (centre, size, angle
/// in degrees). Tag names are matched case-insensitively (both spellings occur).
pub fn parse(text: &str) -> Result<Vec<PklotSpace>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not valid XML: {e}"))?;
    let root = doc.root_element();
    if !root.tag_name().name().eq_ignore_ascii_case("parking") {
        return Err(format!(
            "the root element is <{}>, expected <parking>",
            root.tag_name().name()
        ));
    }
    let is = |n: &roxmltree::Node, name: &str| {
        n.is_element() && n.tag_name().name().eq_ignore_ascii_case(name)
    };
    let num = |n: &roxmltree::Node, attr: &str| -> Result<f32, String> {
        let v = n.attribute(attr).ok_or_else(|| {
            format!(
                "line {}: <{}> has no `{attr}`",
                line(&doc, n),
                n.tag_name().name()
            )
        })?;
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("line {}: `{attr}=\"{v}\"` is not a number", line(&doc, n)))
    };
    let mut out = Vec::new();
    for space in root.children().filter(|n| is(n, "space")) {
        let id = space
            .attribute("id")
            .ok_or_else(|| format!("line {}: <space> has no `id`", line(&doc, &space)))?
            .trim()
            .to_string();
        let occupied = match space.attribute("occupied").map(str::trim) {
            None | Some("") => None,
            Some("1") | Some("true") => Some(true),
            Some("0") | Some("false") => Some(false),
            Some(v) => {
                return Err(format!(
                    "line {}: space {id}: occupied=\"{v}\" is not 0 or 1",
                    line(&doc, &space)
                ))
            }
        };
        let mut polygon = Vec::new();
        if let Some(contour) = space.children().find(|n| is(n, "contour")) {
            for p in contour.children().filter(|n| is(n, "point")) {
                polygon.push([num(&p, "x")?, num(&p, "y")?]);
            }
        }
        if polygon.is_empty() {
            if let Some(rr) = space.children().find(|n| is(n, "rotatedRect")) {
                let child = |name: &str| {
                    rr.children()
                        .find(|n| is(n, name))
                        .ok_or_else(|| format!("space {id}: <rotatedRect> has no <{name}>"))
                };
                let (c, s, a) = (child("center")?, child("size")?, child("angle")?);
                polygon = rotated_rect(
                    [num(&c, "x")?, num(&c, "y")?],
                    [num(&s, "w")?, num(&s, "h")?],
                    num(&a, "d")?,
                );
            }
        }
        if polygon.len() < 3 {
            return Err(format!(
                "line {}: space {id} has neither a <contour> of 3+ points nor a <rotatedRect>",
                line(&doc, &space)
            ));
        }
        out.push(PklotSpace {
            id,
            occupied,
            polygon,
        });
    }
    Ok(out)
}

fn line(doc: &roxmltree::Document, n: &roxmltree::Node) -> u32 {
    doc.text_pos_at(n.range().start).row
}

/// Corners of a rectangle of `size` centred at `c`, rotated by `deg` (clockwise on screen).
fn rotated_rect(c: [f32; 2], size: [f32; 2], deg: f32) -> Vec<[f32; 2]> {
    let (s, co) = deg.to_radians().sin_cos();
    let (hw, hh) = (size[0] / 2.0, size[1] / 2.0);
    [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
        .iter()
        .map(|&(x, y)| [c[0] + x * co - y * s, c[1] + x * s + y * co])
        .collect()
}

/// Reads every `[[occupancy.imports]]` file and appends its spaces to
/// `config.bays`. Problems (unreadable file, bad XML, a space id that is not
/// in `[[spaces]]`) are reported against the import; the bays that are added
/// are then checked by the ordinary bay rules.
pub fn expand_imports(config: &mut Config, base: &Path, problems: &mut Vec<Problem>) {
    let imports = config.occupancy.imports.clone();
    for (i, imp) in imports.iter().enumerate() {
        let path_key = ConfigPath::root()
            .key("occupancy")
            .key("imports")
            .index(i)
            .key("file");
        let mut problem = |message: String| {
            problems.push(Problem {
                path: path_key.clone(),
                line: None,
                message,
            })
        };
        let file = if imp.file.is_absolute() {
            imp.file.clone()
        } else {
            base.join(&imp.file)
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                problem(format!("cannot read bay file {}: {e}", file.display()));
                continue;
            }
        };
        let spaces = match parse(&text) {
            Ok(s) => s,
            Err(e) => {
                problem(format!("bay file {}: {e}", file.display()));
                continue;
            }
        };
        let scale = if imp.scale.is_finite() && imp.scale > 0.0 {
            imp.scale
        } else {
            1.0
        };
        let mut missing = Vec::new();
        for s in spaces {
            let space = format!("{}{}", imp.space_prefix, s.id);
            if !config.spaces.iter().any(|sp| sp.id == space) {
                missing.push(space);
                continue;
            }
            let polygon = s
                .polygon
                .iter()
                .map(|p| [p[0] * scale, p[1] * scale])
                .collect();
            config.bays.push(BayConfig {
                space,
                camera: imp.camera.clone(),
                polygon,
            });
        }
        if !missing.is_empty() {
            let shown: Vec<_> = missing.iter().take(5).map(|m| format!("`{m}`")).collect();
            problem(format!(
                "bay file {}: {} space(s) not defined in [[spaces]]: {}{}",
                file.display(),
                missing.len(),
                shown.join(", "),
                if missing.len() > 5 { ", …" } else { "" }
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?>
<parking id="lot">
  <space id="1" occupied="1">
    <rotatedRect><center x="50" y="20"/><size w="40" h="20"/><angle d="0"/></rotatedRect>
    <contour><point x="30" y="10"/><point x="70" y="10"/><point x="70" y="30"/><point x="30" y="30"/></contour>
  </space>
  <space id="2" occupied="0">
    <rotatedRect><center x="100" y="100"/><size w="40" h="20"/><angle d="90"/></rotatedRect>
  </space>
  <space id="3">
    <contour><Point x="0" y="0"/><Point x="10" y="0"/><Point x="10" y="5"/></contour>
  </space>
</parking>"#;

    #[test]
    fn parses_contours_rotated_rects_and_missing_labels() {
        let s = parse(XML).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].occupied, Some(true));
        assert_eq!(
            s[0].polygon,
            vec![[30.0, 10.0], [70.0, 10.0], [70.0, 30.0], [30.0, 30.0]]
        );
        assert_eq!(s[1].occupied, Some(false));
        // 90°: the 40-wide rectangle stands upright.
        let xs: Vec<f32> = s[1].polygon.iter().map(|p| p[0]).collect();
        let ys: Vec<f32> = s[1].polygon.iter().map(|p| p[1]).collect();
        let span = |v: &[f32]| {
            v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
        };
        assert!((span(&xs) - 20.0).abs() < 1e-3 && (span(&ys) - 40.0).abs() < 1e-3);
        assert_eq!(s[2].occupied, None);
        assert_eq!(s[2].polygon.len(), 3);
    }

    #[test]
    fn reports_problems_with_lines() {
        assert!(parse("<notparking/>")
            .unwrap_err()
            .contains("expected <parking>"));
        assert!(
            parse("<parking><space id=\"4\"><contour/></space></parking>")
                .unwrap_err()
                .contains("space 4")
        );
        let e = parse("<parking>\n<space id=\"5\" occupied=\"x\"/></parking>").unwrap_err();
        assert!(e.contains("line 2") && e.contains("occupied"), "{e}");
        assert!(parse("<parking><space id=\"6\"><contour><point x=\"a\" y=\"1\"/></contour></space></parking>").unwrap_err().contains("not a number"));
        assert!(parse("<parking").is_err());
    }
}
