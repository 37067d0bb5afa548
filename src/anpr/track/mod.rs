//! Per-camera plate tracking and multi-frame read fusion (pure, no I/O, no clock: the
//! caller passes timestamps in milliseconds).
//!
//! A car passing a gate camera is read in several frames; single reads confuse O/0, I/1
//! or pick up band characters. [`Tracker`] links detections across frames into tracks
//! (IoU, centroid fallback), fuses each track's reads by character voting, and decides
//! once per track:
//! - as soon as the fused score reaches `decide_score` with at least
//!   `min_agreeing_reads` reads equal to the fused plate (fast path for clean reads);
//! - otherwise when `max_decision_delay_ms` has passed since the first sighting;
//! - otherwise when the track ends (unseen for `track_timeout_ms`).
//!
//! A decided track is never announced again, and a plate decided on this camera is not
//! announced again until it has been out of sight for `reannounce_gap_ms` (a car waiting
//! at the barrier keeps producing tracks when detections flicker).

use serde::{Deserialize, Serialize};

use crate::core::text_distance;
use crate::vision::geometry::BoxF;
use crate::vision::read::LineRead;

/// Tracker settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackerConfig {
    /// Minimum IoU to continue a track.
    pub iou_match: f32,
    /// Centroid fallback: a detection continues a track if the centres are closer than
    /// this × the wider of the two boxes (fast cars at low frame rates have IoU 0).
    pub centroid_match: f32,
    /// A track unseen for this long has ended.
    pub track_timeout_ms: u64,
    /// Decide at the latest this long after the first sighting.
    pub max_decision_delay_ms: u64,
    /// Fused score needed for an early decision...
    pub decide_score: f32,
    /// ...together with this many reads equal to the fused plate.
    pub min_agreeing_reads: usize,
    /// Timed-out or ended tracks are announced only at or above this fused score.
    pub min_final_score: f32,
    /// A plate is not re-announced on this camera until unseen for this long.
    pub reannounce_gap_ms: u64,
    /// Plates within this many edits (after folding O→0, Q→0, I→1) count as the same plate
    /// for re-announcement suppression (plates of 5+ characters only).
    pub suppress_max_edits: usize,
    /// Reads within this normalised edit distance belong to one cluster.
    pub cluster_distance: f32,
    /// Weight of the reader's alternatives in the per-position vote.
    pub alt_vote_weight: f32,
    /// Weight factor for reads that matched no plate format.
    pub unmatched_weight: f32,
    /// Reads kept per track (lowest-score read replaced beyond this).
    pub max_reads_per_track: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            iou_match: 0.3,
            centroid_match: 1.0,
            track_timeout_ms: 1500,
            max_decision_delay_ms: 1000,
            decide_score: 0.8,
            min_agreeing_reads: 2,
            min_final_score: 0.2,
            reannounce_gap_ms: 60_000,
            suppress_max_edits: 1,
            cluster_distance: 0.34,
            alt_vote_weight: 0.5,
            unmatched_weight: 0.6,
            max_reads_per_track: 32,
        }
    }
}

/// One plate seen in one frame: its box (frame coordinates) and read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateObservation {
    pub bbox: BoxF,
    /// Normalised (and ideally format-matched) read.
    pub read: LineRead,
    /// Quality of the read in `[0, 1]`, e.g. mean character confidence × detector score.
    pub score: f32,
    /// Whether the read fitted a configured plate format.
    pub format_matched: bool,
}

/// A read stored in a track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedRead {
    pub obs: PlateObservation,
    pub ts_ms: u64,
}

/// Why a track was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionReason {
    /// Fused score and agreement reached the thresholds.
    Confident,
    /// `max_decision_delay_ms` elapsed.
    Timeout,
    /// The track ended before either.
    TrackEnded,
}

/// An announced plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedRead {
    pub camera: String,
    pub track_id: u64,
    pub plate: String,
    /// `[0, 1]`: mean per-position confidence × `(1 + share) / 2`, `share` being the
    /// winning cluster's part of the total read weight.
    pub score: f32,
    /// Distinct texts with normalised support, fused plate first.
    pub candidates: Vec<(String, f32)>,
    pub char_confidences: Vec<f32>,
    pub first_seen_ms: u64,
    pub decided_ms: u64,
    pub n_reads: usize,
    /// Index (in the track's reads, arrival order) of the best read supporting the plate:
    /// the frame to keep as the snapshot.
    pub best_read_index: usize,
    /// Box of that read.
    pub bbox: BoxF,
    pub format_matched: bool,
    pub reason: DecisionReason,
    /// How the plate moved between its first sighting and the decision.
    pub motion: Option<Motion>,
}

/// How a plate moved relative to the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Motion {
    /// The plate grew: the car came towards the camera.
    Approaching,
    /// The plate shrank: the car drove away from the camera.
    Receding,
}

/// A plate must grow or shrink by this factor (area) to count as moving;
/// detector boxes of a still plate jitter by a few per cent.
pub const MOTION_AREA_RATIO: f32 = 1.25;

/// The plate's motion from its first box to its latest: a fixed camera sees
/// an approaching plate grow and a receding one shrink, whatever the mounting
/// angle. `None` when it changed too little to tell (a single sighting, a
/// parked car, a car crossing the picture).
pub fn plate_motion(first: &BoxF, last: &BoxF) -> Option<Motion> {
    let (a0, a1) = (first.area(), last.area());
    if a0 <= 0.0 || a1 <= 0.0 {
        return None;
    }
    let r = a1 / a0;
    if r >= MOTION_AREA_RATIO {
        Some(Motion::Approaching)
    } else if r <= 1.0 / MOTION_AREA_RATIO {
        Some(Motion::Receding)
    } else {
        None
    }
}

/// Result of fusing a set of reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fusion {
    pub plate: String,
    pub score: f32,
    pub char_confidences: Vec<f32>,
    pub candidates: Vec<(String, f32)>,
    /// Reads whose text equals `plate`.
    pub agreeing: usize,
    pub best_read_index: usize,
    pub format_matched: bool,
}

/// The one plate distance ([`text_distance`]) divided by the longer length (0 for two empty strings).
pub fn normalized_read_distance(a: &str, b: &str) -> f32 {
    let n = a.chars().count().max(b.chars().count());
    if n == 0 {
        0.0
    } else {
        text_distance(a, b) as f32 / n as f32
    }
}

fn fold_for_identity(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'O' | 'Q' => '0',
            'I' => '1',
            c => c,
        })
        .collect()
}

/// Whether two plate texts should be treated as the same vehicle for suppression.
pub fn same_plate(a: &str, b: &str, max_edits: usize) -> bool {
    let (fa, fb) = (fold_for_identity(a), fold_for_identity(b));
    if fa == fb {
        return true;
    }
    let short = fa.chars().count().min(fb.chars().count()) < 5;
    !short && max_edits > 0 && text_distance(&fa, &fb) <= max_edits as f64
}

fn find(parent: &mut [usize], i: usize) -> usize {
    let mut r = i;
    while parent[r] != r {
        r = parent[r];
    }
    let mut i = i;
    while parent[i] != r {
        let next = parent[i];
        parent[i] = r;
        i = next;
    }
    r
}

/// Fuse reads (typically one track's): cluster texts by [`normalized_read_distance`]
/// (single-link), keep the cluster with the largest total weight (weight = read score,
/// × `unmatched_weight` without a format match), then vote per position over the
/// cluster's reads of its (weighted) modal length; votes are `weight × confidence`, plus
/// `alt_vote_weight ×` the reader's alternatives. `None` when no read has text.
pub fn fuse_reads(reads: &[TimedRead], cfg: &TrackerConfig) -> Option<Fusion> {
    let texts: Vec<String> = reads.iter().map(|r| r.obs.read.text()).collect();
    let valid: Vec<usize> = (0..reads.len()).filter(|&i| !texts[i].is_empty()).collect();
    if valid.is_empty() {
        return None;
    }
    let weight = |i: usize| {
        let o = &reads[i].obs;
        o.score.max(1e-3)
            * if o.format_matched {
                1.0
            } else {
                cfg.unmatched_weight
            }
    };
    let total_w: f32 = valid.iter().map(|&i| weight(i)).sum();

    // Single-link clustering.
    let mut parent: Vec<usize> = (0..reads.len()).collect();
    for (x, &i) in valid.iter().enumerate() {
        for &j in &valid[x + 1..] {
            if normalized_read_distance(&texts[i], &texts[j]) <= cfg.cluster_distance {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                if ri != rj {
                    parent[rj] = ri;
                }
            }
        }
    }
    // Best cluster: largest weight, then more members, then earliest root.
    let mut clusters: Vec<(usize, f32, usize)> = Vec::new(); // (root, weight, members)
    for &i in &valid {
        let r = find(&mut parent, i);
        match clusters.iter_mut().find(|c| c.0 == r) {
            Some(c) => {
                c.1 += weight(i);
                c.2 += 1;
            }
            None => clusters.push((r, weight(i), 1)),
        }
    }
    let best = clusters
        .iter()
        .copied()
        .reduce(|a, b| {
            if b.1 > a.1 + 1e-6 || ((b.1 - a.1).abs() <= 1e-6 && b.2 > a.2) {
                b
            } else {
                a
            }
        })
        .expect("non-empty");
    let members: Vec<usize> = valid
        .iter()
        .copied()
        .filter(|&i| find(&mut parent, i) == best.0)
        .collect();

    // Modal length by weight (ties: more reads, then longer).
    let mut lengths: Vec<(usize, f32, usize)> = Vec::new();
    for &i in &members {
        let l = reads[i].obs.read.len();
        match lengths.iter_mut().find(|x| x.0 == l) {
            Some(x) => {
                x.1 += weight(i);
                x.2 += 1;
            }
            None => lengths.push((l, weight(i), 1)),
        }
    }
    let modal = lengths
        .iter()
        .copied()
        .reduce(|a, b| {
            let better = b.1 > a.1 + 1e-6 || ((b.1 - a.1).abs() <= 1e-6 && (b.2, b.0) > (a.2, a.0));
            if better {
                b
            } else {
                a
            }
        })
        .expect("non-empty")
        .0;
    let voters: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| reads[i].obs.read.len() == modal)
        .collect();
    let voter_w: f32 = voters.iter().map(|&i| weight(i)).sum();

    let mut plate = String::with_capacity(modal);
    let mut char_conf = Vec::with_capacity(modal);
    for pos in 0..modal {
        let mut votes: Vec<(char, f32)> = Vec::new();
        let mut add = |c: char, v: f32| match votes.iter_mut().find(|x| x.0 == c) {
            Some(x) => x.1 += v,
            None => votes.push((c, v)),
        };
        for &i in &voters {
            let pc = &reads[i].obs.read.chars[pos];
            add(pc.ch, weight(i) * pc.conf);
            for &(a, p) in &pc.alts {
                add(a, weight(i) * p * cfg.alt_vote_weight);
            }
        }
        // Highest vote; ties go to the character read first (votes keep read order).
        let winner = votes
            .iter()
            .copied()
            .reduce(|a, b| if b.1 > a.1 + 1e-6 { b } else { a })
            .expect("voters non-empty")
            .0;
        let support: f32 = voters
            .iter()
            .map(|&i| {
                let pc = &reads[i].obs.read.chars[pos];
                if pc.ch == winner {
                    weight(i) * pc.conf
                } else {
                    0.0
                }
            })
            .sum();
        plate.push(winner);
        char_conf.push((support / voter_w).clamp(0.0, 1.0));
    }
    let agreeing = members.iter().filter(|&&i| texts[i] == plate).count();
    let mean_conf = char_conf.iter().sum::<f32>() / char_conf.len().max(1) as f32;
    // Reads outside the winning cluster (a badge read, a mis-associated box) reduce the
    // score, by at most half.
    let share = best.1 / total_w;
    let score = (mean_conf * (0.5 + 0.5 * share)).clamp(0.0, 1.0);

    // Snapshot read: best score among exact supporters, else among voters.
    let pool: Vec<usize> = if agreeing > 0 {
        members
            .iter()
            .copied()
            .filter(|&i| texts[i] == plate)
            .collect()
    } else {
        voters.clone()
    };
    let best_read_index = pool
        .iter()
        .copied()
        .reduce(|a, b| {
            if reads[b].obs.score > reads[a].obs.score {
                b
            } else {
                a
            }
        })
        .expect("pool non-empty");

    let mut candidates: Vec<(String, f32)> = vec![(plate.clone(), score)];
    let mut others: Vec<(String, f32)> = Vec::new();
    for &i in &valid {
        if texts[i] == plate {
            continue;
        }
        match others.iter_mut().find(|x| x.0 == texts[i]) {
            Some(x) => x.1 += weight(i) / total_w,
            None => others.push((texts[i].clone(), weight(i) / total_w)),
        }
    }
    others.sort_by(|a, b| b.1.total_cmp(&a.1));
    candidates.extend(others.into_iter().take(4));

    Some(Fusion {
        format_matched: reads[best_read_index].obs.format_matched,
        plate,
        score,
        char_confidences: char_conf,
        candidates,
        agreeing,
        best_read_index,
    })
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    first_seen_ms: u64,
    last_seen_ms: u64,
    /// Box at the first sighting and the latest one (for the direction).
    first_bbox: BoxF,
    bbox: BoxF,
    reads: Vec<TimedRead>,
    /// Total reads received (kept reads may be fewer).
    n_reads: usize,
    /// Decided plate (announced or suppressed).
    decided: Option<String>,
}

/// Tracks and decisions for one camera.
#[derive(Debug, Clone)]
pub struct Tracker {
    camera: String,
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    /// Plates decided on this camera and when they were last seen.
    recent: Vec<(String, u64)>,
}

impl Tracker {
    pub fn new(camera: impl Into<String>, cfg: TrackerConfig) -> Self {
        Self {
            camera: camera.into(),
            cfg,
            tracks: Vec::new(),
            next_id: 1,
            recent: Vec::new(),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Number of live tracks.
    pub fn active_tracks(&self) -> usize {
        self.tracks.len()
    }

    /// Feed one frame's plate observations; returns plates decided now.
    pub fn update(&mut self, now_ms: u64, dets: &[PlateObservation]) -> Vec<FusedRead> {
        let mut assigned = self.associate(dets);
        // A clearly different plate where a decided one was is the next car
        // (a queue at the barrier, cars stopping at the same spot): the old
        // track ends, so the new car gets its own track and decision.
        let mut ended = Vec::new();
        for (d, obs) in dets.iter().enumerate() {
            if let Some(t) = assigned[d] {
                if let Some(p) = &self.tracks[t].decided {
                    let text = obs.read.text();
                    if obs.format_matched
                        && text.len() >= 4
                        && !same_plate(&text, p, self.cfg.suppress_max_edits.max(2))
                    {
                        ended.push(t);
                        assigned[d] = None;
                    }
                }
            }
        }
        if !ended.is_empty() {
            ended.sort_unstable();
            ended.dedup();
            // Indices of later tracks shift as earlier ones are removed.
            let remap = |t: usize| t - ended.iter().filter(|&&e| e < t).count();
            for a in assigned.iter_mut() {
                *a = a.filter(|t| !ended.contains(t)).map(remap);
            }
            for &t in ended.iter().rev() {
                self.tracks.remove(t);
            }
        }
        for (d, obs) in dets.iter().enumerate() {
            let ti = match assigned[d] {
                Some(t) => t,
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        first_seen_ms: now_ms,
                        last_seen_ms: now_ms,
                        first_bbox: obs.bbox,
                        bbox: obs.bbox,
                        reads: Vec::new(),
                        n_reads: 0,
                        decided: None,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let t = &mut self.tracks[ti];
            t.last_seen_ms = t.last_seen_ms.max(now_ms);
            t.bbox = obs.bbox;
            if let Some(p) = &t.decided {
                // Keep the plate "seen" while its car stays in view.
                let p = p.clone();
                self.touch_recent(&p, now_ms);
                continue;
            }
            if obs.read.is_empty() {
                continue;
            }
            t.n_reads += 1;
            let tr = TimedRead {
                obs: obs.clone(),
                ts_ms: now_ms,
            };
            if t.reads.len() < self.cfg.max_reads_per_track.max(1) {
                t.reads.push(tr);
            } else if let Some(worst) = (0..t.reads.len())
                .min_by(|&a, &b| t.reads[a].obs.score.total_cmp(&t.reads[b].obs.score))
                .filter(|&w| t.reads[w].obs.score < tr.obs.score)
            {
                t.reads[worst] = tr;
            }
        }
        self.evaluate(now_ms)
    }

    /// Advance time without a frame (no detections): timeouts and track ends.
    pub fn tick(&mut self, now_ms: u64) -> Vec<FusedRead> {
        self.evaluate(now_ms)
    }

    /// End every track now (stream stopped), announcing undecided ones.
    pub fn flush(&mut self, now_ms: u64) -> Vec<FusedRead> {
        let mut out = Vec::new();
        for t in std::mem::take(&mut self.tracks) {
            if t.decided.is_none() {
                if let Outcome::Announce(f) = self.decide(&t, now_ms, true) {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Greedy association: highest IoU pairs first, then nearest centroids.
    fn associate(&self, dets: &[PlateObservation]) -> Vec<Option<usize>> {
        let mut assigned: Vec<Option<usize>> = vec![None; dets.len()];
        let mut used = vec![false; self.tracks.len()];
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in dets.iter().enumerate() {
                let iou = t.bbox.iou(&d.bbox);
                if iou >= self.cfg.iou_match {
                    pairs.push((iou, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, ti, di) in pairs {
            if !used[ti] && assigned[di].is_none() {
                used[ti] = true;
                assigned[di] = Some(ti);
            }
        }
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate().filter(|(ti, _)| !used[*ti]) {
            for (di, d) in dets
                .iter()
                .enumerate()
                .filter(|(di, _)| assigned[*di].is_none())
            {
                let dist = t.bbox.center().dist(d.bbox.center());
                let limit = self.cfg.centroid_match * t.bbox.width().max(d.bbox.width());
                if dist <= limit {
                    pairs.push((dist, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, ti, di) in pairs {
            if !used[ti] && assigned[di].is_none() {
                used[ti] = true;
                assigned[di] = Some(ti);
            }
        }
        assigned
    }

    fn touch_recent(&mut self, plate: &str, now_ms: u64) {
        let max_edits = self.cfg.suppress_max_edits;
        match self
            .recent
            .iter_mut()
            .find(|(p, _)| same_plate(p, plate, max_edits))
        {
            Some(e) => e.1 = e.1.max(now_ms),
            None => self.recent.push((plate.to_string(), now_ms)),
        }
    }

    fn is_suppressed(&self, plate: &str, now_ms: u64) -> bool {
        self.recent.iter().any(|(p, seen)| {
            now_ms.saturating_sub(*seen) < self.cfg.reannounce_gap_ms
                && same_plate(p, plate, self.cfg.suppress_max_edits)
        })
    }

    /// Fuse `t` and apply the decision policy. `ended`: the track is over.
    fn decide(&mut self, t: &Track, now_ms: u64, ended: bool) -> Outcome {
        let Some(f) = fuse_reads(&t.reads, &self.cfg) else {
            return Outcome::NotYet;
        };
        let reason =
            if f.score >= self.cfg.decide_score && f.agreeing >= self.cfg.min_agreeing_reads {
                DecisionReason::Confident
            } else if ended {
                DecisionReason::TrackEnded
            } else if now_ms.saturating_sub(t.first_seen_ms) >= self.cfg.max_decision_delay_ms {
                DecisionReason::Timeout
            } else {
                return Outcome::NotYet;
            };
        if reason != DecisionReason::Confident && f.score < self.cfg.min_final_score {
            // Too weak to announce; a live track keeps collecting reads.
            return Outcome::NotYet;
        }
        let suppressed = self.is_suppressed(&f.plate, now_ms);
        self.touch_recent(&f.plate, t.last_seen_ms);
        if suppressed {
            Outcome::Suppressed(f.plate)
        } else {
            Outcome::Announce(self.to_fused(t, f, now_ms, reason))
        }
    }

    fn to_fused(&self, t: &Track, f: Fusion, now_ms: u64, reason: DecisionReason) -> FusedRead {
        FusedRead {
            camera: self.camera.clone(),
            track_id: t.id,
            bbox: t.reads[f.best_read_index].obs.bbox,
            plate: f.plate,
            score: f.score,
            candidates: f.candidates,
            char_confidences: f.char_confidences,
            first_seen_ms: t.first_seen_ms,
            decided_ms: now_ms,
            n_reads: t.n_reads,
            best_read_index: f.best_read_index,
            format_matched: f.format_matched,
            reason,
            motion: plate_motion(&t.first_bbox, &t.bbox),
        }
    }

    fn evaluate(&mut self, now_ms: u64) -> Vec<FusedRead> {
        let mut out = Vec::new();
        let tracks = std::mem::take(&mut self.tracks);
        let mut keep = Vec::with_capacity(tracks.len());
        for mut t in tracks {
            let ended = now_ms.saturating_sub(t.last_seen_ms) > self.cfg.track_timeout_ms;
            if t.decided.is_none() {
                match self.decide(&t, now_ms, ended) {
                    Outcome::Announce(f) => {
                        t.decided = Some(f.plate.clone());
                        out.push(f);
                    }
                    Outcome::Suppressed(p) => t.decided = Some(p),
                    Outcome::NotYet => {}
                }
            }
            if !ended {
                keep.push(t);
            }
        }
        self.tracks = keep;
        let gap = self.cfg.reannounce_gap_ms;
        self.recent
            .retain(|(_, seen)| now_ms.saturating_sub(*seen) < gap);
        out
    }
}

enum Outcome {
    NotYet,
    Announce(FusedRead),
    Suppressed(String),
}

#[cfg(test)]
mod tests;
