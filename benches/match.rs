//! Benchmark of `match_names` on 10,000 × 10,000 generated coworking names (1,000 × 1,000 with
//! FLEXGATE_BENCH_QUICK=1). Prints wall time and peak RSS (VmHWM).
//!
//! With FLEXGATE_BENCH_NAMES_DIR=DIR it also writes the inputs to DIR/left.txt and DIR/right.txt,
//! one name per line, for scripts/bench-match.sh to feed the CLI and RapidFuzz.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use flexgate::matching::{match_names, MatchOptions};

/// splitmix64: tiny, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const PREFIXES: &[&str] = &[
    "Blue", "Red", "Green", "Silver", "Golden", "North", "South", "East", "West", "Bright",
    "Quantum", "Pixel", "Copper", "Harbour", "Atlas", "Zenith", "Lumen", "Cobalt", "Oak", "Cedar",
    "Maple", "Stellar", "Nova", "Vertex", "Apex", "Summit", "River", "Stone", "Iron", "Crystal",
    "Urban", "Wild", "Swift", "Bold", "Clear", "Open", "Smart", "True", "Prime", "Alpha", "Delta",
    "Orbit", "Falcon", "Fox",
];
const STEMS: &[&str] = &[
    "wave", "leaf", "line", "field", "bridge", "gate", "works", "point", "path", "stone", "light",
    "craft", "mind", "forge", "yard", "peak", "port", "well", "view", "side", "wood", "brook",
    "spark", "loop",
];
const SECTORS: &[&str] = &[
    "Analytics",
    "Consulting",
    "Design",
    "Studio",
    "Labs",
    "Technologies",
    "Media",
    "Partners",
    "Capital",
    "Legal",
    "Ventures",
    "Robotics",
    "Health",
    "Marketing",
    "Architects",
    "Events",
    "Education",
    "Coffee",
    "Software",
    "Systems",
    "Solutions",
    "Creative",
    "Productions",
    "Logistics",
    "Foods",
    "Energy",
];
const LEGAL: &[&str] = &[
    "Ltd", "Limited", "LLP", "Inc.", "Inc", "LLC", "GmbH", "Co.", "", "", "", "",
];
const ROOM_KINDS: &[&str] = &[
    "Meeting Room",
    "Phone Booth",
    "Private Office",
    "Focus Room",
    "Conference Room",
    "Event Space",
    "Dedicated Desk",
    "Suite",
    "Studio",
    "Training Room",
    "Podcast Studio",
    "Hot Desk Zone",
];
const ROOM_NAMES: &[&str] = &[
    "Everest",
    "Kilimanjaro",
    "Denali",
    "Aconcagua",
    "Elbrus",
    "Vinson",
    "Matterhorn",
    "Fuji",
    "Olympus",
    "Atlas",
    "Andes",
    "Alps",
    "Rhine",
    "Danube",
    "Thames",
    "Seine",
    "Hudson",
    "Amazon",
    "Nile",
    "Yukon",
];
const WINGS: &[&str] = &[
    "East Wing",
    "West Wing",
    "North Wing",
    "South Wing",
    "Annex",
    "Tower",
];
const BUILDINGS: &[&str] = &[
    "Kings Cross",
    "Shoreditch",
    "Canary Wharf",
    "Soho",
    "Camden",
    "Holborn",
];

fn company(rng: &mut Rng) -> String {
    let name = format!("{}{}", rng.pick(PREFIXES), rng.pick(STEMS));
    let spaced = if rng.chance(30) {
        format!("{} {}", rng.pick(PREFIXES), rng.pick(PREFIXES))
    } else {
        name
    };
    format!("{} {} {}", spaced, rng.pick(SECTORS), rng.pick(LEGAL))
        .trim()
        .to_owned()
}

fn resource(rng: &mut Rng) -> String {
    let kind = rng.pick(ROOM_KINDS);
    match rng.below(3) {
        0 => format!("{kind} {}", rng.below(400) + 1),
        1 => format!("{kind} {}", rng.pick(ROOM_NAMES)),
        _ => format!("{} {kind} {}", rng.pick(BUILDINGS), rng.below(60) + 1),
    }
}

fn floor(rng: &mut Rng) -> String {
    let level = rng.below(40) + 1;
    match rng.below(3) {
        0 => format!("Floor {level}"),
        1 => format!("{} - Level {level}", rng.pick(BUILDINGS)),
        _ => format!("Floor {level} - {}", rng.pick(WINGS)),
    }
}

fn any_name(rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=9 => floor(rng),
        10..=44 => resource(rng),
        _ => company(rng),
    }
}

/// The same thing as another system might spell it.
fn variant(rng: &mut Rng, name: &str) -> String {
    let mut out = name.to_owned();
    for (long, short) in [
        ("Meeting", "Mtg"),
        ("Room", "Rm"),
        ("Floor", "Flr"),
        ("Limited", "Ltd"),
        ("Suite", "Ste"),
    ] {
        if rng.chance(50) {
            out = out.replace(long, short);
        }
    }
    match rng.below(6) {
        0 => out = out.to_uppercase(),
        1 => out = out.to_lowercase(),
        2 => out = out.replace(' ', "  ").replace(" - ", ", "),
        _ => {}
    }
    if rng.chance(40) && out.len() > 6 {
        // One typo: drop, double or swap a letter (never a digit).
        let chars: Vec<char> = out.chars().collect();
        let at = 1 + rng.below(chars.len() - 2);
        if chars[at].is_alphabetic() && chars[at + 1].is_alphabetic() {
            let mut typo = chars.clone();
            match rng.below(3) {
                0 => {
                    typo.remove(at);
                }
                1 => typo.insert(at, chars[at]),
                _ => typo.swap(at, at + 1),
            }
            out = typo.into_iter().collect();
        }
    }
    out
}

/// Left names, right names, and for each right name generated from a left name, that left name.
fn generate(count: usize) -> (Vec<String>, Vec<String>, HashMap<String, String>) {
    let mut rng = Rng(0x5EED_F1E8_6A7E);
    let mut left = Vec::with_capacity(count);
    let mut seen = HashSet::new();
    while left.len() < count {
        let name = any_name(&mut rng);
        if seen.insert(name.clone()) {
            left.push(name);
        }
    }
    let mut right = Vec::with_capacity(count);
    let mut seen = HashSet::new();
    let mut truth = HashMap::new();
    let mut source = 0;
    while right.len() < count {
        let origin = (rng.chance(85) && source < left.len()).then(|| {
            source += 1;
            &left[source - 1]
        });
        let name = match origin {
            Some(origin) => variant(&mut rng, origin),
            None => any_name(&mut rng),
        };
        if seen.insert(name.clone()) {
            if let Some(origin) = origin {
                truth.insert(name.clone(), origin.clone());
            }
            right.push(name);
        }
    }
    // Shuffle the right side (Fisher-Yates) so pairs are not aligned by position.
    for i in (1..right.len()).rev() {
        let j = rng.below(i + 1);
        right.swap(i, j);
    }
    (left, right, truth)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::var_os("FLEXGATE_BENCH_QUICK").is_some_and(|v| v == "1");
    let count = if quick { 1_000 } else { 10_000 };
    let (left, right, truth) = generate(count);
    if let Some(dir) = std::env::var_os("FLEXGATE_BENCH_NAMES_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("left.txt"), left.join("\n") + "\n")?;
        std::fs::write(dir.join("right.txt"), right.join("\n") + "\n")?;
        println!(
            "wrote {} and {} names to {}",
            left.len(),
            right.len(),
            dir.display()
        );
    }

    let started = Instant::now();
    let result = match_names(&left, &right, &MatchOptions::default())?;
    let elapsed = started.elapsed();
    // A pair is wrong when its right name was generated from another left name. (A right name
    // generated independently may legitimately equal a left name, so it is not counted.)
    let wrong = result
        .pairs
        .iter()
        .filter(|p| truth.get(&p.right).is_some_and(|origin| *origin != p.left))
        .count();
    println!(
        "match_names {count} x {count}: {:.3} s wall, {} pairs ({wrong} wrong, {} generated pairs), \
         {} ambiguous, {} unmatched left, peak RSS {} KiB",
        elapsed.as_secs_f64(),
        result.pairs.len(),
        truth.len(),
        result.ambiguous.len(),
        result.unmatched_left.len(),
        peak_rss_kib().map_or_else(|| "n/a".to_owned(), |k| k.to_string()),
    );
    Ok(())
}
