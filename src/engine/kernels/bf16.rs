//! bf16 matrix products for the fused dense layers: both operands rounded to bfloat16 as they
//! are packed, products summed in f32, on AMX tiles where the CPU has `amx_bf16`, on AVX512-BF16
//! dot products where it has `avx512_bf16`, and emulated (rounded operands, an f32 product)
//! elsewhere, so the same arithmetic is testable on any CPU. The f32 tensors stay the master
//! copy: training rounds weights, activations and gradients per product and AdamW updates f32.
//!
//! Written here rather than taken from a crate: `gemm` (candle's) has f16 but no bf16 dot
//! products, and no maintained Rust crate offers an AMX product over strided f32 operands.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::fused::{gemm_into, Shared};

/// What the analyst asks for (`--precision`, the Train panel, `TWEETLAB_PRECISION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 where the CPU multiplies bf16 natively, f32 elsewhere.
    #[default]
    Auto = 0,
    Fp32 = 1,
    /// bf16 everywhere: emulated (and slower than f32) on a CPU without bf16 units.
    Bf16 = 2,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::Auto, Precision::Fp32, Precision::Bf16];

    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Precision::Auto),
            "fp32" | "f32" => Some(Precision::Fp32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }
}

/// The dense-layer arithmetic that actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulPath {
    Fp32,
    /// AMX tiles (`tdpbf16ps`).
    Amx,
    /// AVX-512 bf16 dot products (`vdpbf16ps`).
    Avx512Bf16,
    /// Operands rounded to bf16, multiplied in f32: the same numbers, without bf16 units.
    Emulated,
}

impl MatmulPath {
    /// What `auto` runs on this CPU, where the fused kernels run.
    pub fn auto_here() -> Self {
        choose(Precision::Auto, Bf16Units::detect())
    }

    pub fn name(self) -> &'static str {
        match self {
            MatmulPath::Fp32 => "fp32",
            MatmulPath::Amx => "bf16-amx",
            MatmulPath::Avx512Bf16 => "bf16-avx512",
            MatmulPath::Emulated => "bf16-emulated",
        }
    }

    pub fn is_bf16(self) -> bool {
        self != MatmulPath::Fp32
    }
}

/// The CPU's native bf16 units, as far as this process may use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bf16Units {
    pub amx: bool,
    pub avx512_bf16: bool,
}

impl Bf16Units {
    /// Detected once per process. `TWEETLAB_BF16_UNITS=avx512` hides AMX and `none` hides both
    /// (to measure or test the other paths on a CPU that has everything).
    pub fn detect() -> Self {
        static UNITS: OnceLock<Bf16Units> = OnceLock::new();
        *UNITS.get_or_init(|| {
            let found = Self {
                amx: amx_usable(),
                avx512_bf16: avx512_bf16_present(),
            };
            match std::env::var("TWEETLAB_BF16_UNITS").as_deref() {
                Ok("none") => Self::default(),
                Ok("avx512") => Self {
                    amx: false,
                    ..found
                },
                _ => found,
            }
        })
    }

    /// The fastest native path, if any.
    pub fn best(self) -> Option<MatmulPath> {
        if self.amx {
            Some(MatmulPath::Amx)
        } else if self.avx512_bf16 {
            Some(MatmulPath::Avx512Bf16)
        } else {
            None
        }
    }
}

/// The path `precision` runs on a CPU with `units`.
pub fn choose(precision: Precision, units: Bf16Units) -> MatmulPath {
    match precision {
        Precision::Fp32 => MatmulPath::Fp32,
        Precision::Auto => units.best().unwrap_or(MatmulPath::Fp32),
        Precision::Bf16 => units.best().unwrap_or(MatmulPath::Emulated),
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512_bf16_present() -> bool {
    std::arch::is_x86_feature_detected!("avx512bf16")
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512_bf16_present() -> bool {
    false
}

/// AMX-BF16 in CPUID and Linux's permission to use the tile registers (which the kernel grants
/// per process on request; without it the first tile instruction faults).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn amx_usable() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // Leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
    #[allow(unused_unsafe)]
    let leaf7 = unsafe { std::arch::x86_64::__cpuid_count(7, 0) };
    let cpu_has = leaf7.edx & (1 << 22) != 0 && leaf7.edx & (1 << 24) != 0;
    // SAFETY: arch_prctl with these arguments only asks for a permission; it touches no memory.
    cpu_has
        && unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        } == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn amx_usable() -> bool {
    false
}

/// `x` rounded to the nearest bfloat16 (ties to even), as bits; NaN stays NaN.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16) | 0x0040;
    }
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// `x` rounded to the nearest bfloat16, back in an f32.
#[inline(always)]
pub fn round_to_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(x)) << 16)
}

/// Rows of one tile, and bf16 values along the inner dimension in one tile row (64 bytes).
const TILE_ROWS: usize = 16;
const TILE_K: usize = 32;
const TILE: usize = TILE_ROWS * TILE_K;

/// An operand rounded to bf16 and cut into 16 x 32 tiles, 1 KiB each, in the order the kernels
/// read them: all the inner-dimension tiles of one 16-row (or 16-column) strip together. The
/// strip count is even (a zero strip pads it) so the kernels always work on pairs.
struct Packed {
    /// At least `len` values; only the first `len` are this operand's.
    data: Vec<u16>,
    len: usize,
    /// Tiles along the inner dimension.
    kt: usize,
}

impl Packed {
    fn strip(&self, s: usize) -> *const u16 {
        self.data[s * self.kt * TILE..self.len].as_ptr()
    }

    /// A buffer for `strips` strips of `kt` tiles: this thread's last one when it is free (the
    /// buffers are megabytes; fresh ones cost page faults and zeroing on every product). It only
    /// grows, so it is zeroed only when it does; packing writes every value it uses.
    fn buffer(strips: usize, kt: usize) -> Self {
        let mut data = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
        let len = strips * kt * TILE;
        if data.len() < len {
            data.resize(len, 0);
        }
        Self { data, len, kt }
    }

    /// Hands the buffer back for the next product on this thread.
    fn recycle(self) {
        SPARE.with(|s| {
            let mut spare = s.borrow_mut();
            if spare.len() < 2 {
                spare.push(self.data);
            }
        });
    }
}

thread_local! {
    /// Up to two buffers (a product packs two operands).
    static SPARE: std::cell::RefCell<Vec<Vec<u16>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn strips(len: usize) -> usize {
    len.div_ceil(TILE_ROWS).next_multiple_of(2)
}

/// Strip `s` of the left operand `A[i, j] = src[i * rs + j * cs]` (`m x k`): tile rows are A's
/// rows. Every element of the strip is written, padding with zeros.
fn pack_lhs_strip(
    src: &[f32],
    (rs, cs): (usize, usize),
    m: usize,
    k: usize,
    s: usize,
    strip: &mut [u16],
) {
    let rows = m.saturating_sub(s * TILE_ROWS).min(TILE_ROWS);
    if rows < TILE_ROWS || !k.is_multiple_of(TILE_K) {
        strip.fill(0);
    }
    if cs == 1 {
        pack_lhs_rows(src, rs, s * TILE_ROWS, rows, k, strip);
    } else {
        pack_lhs_columns(src, (rs, cs), s * TILE_ROWS, rows, k, strip);
    }
}

super::fused::multiversion! {
    /// Rows `first..first + rows` of a row-major A, 32 values at a time into tile rows.
    fn pack_lhs_rows(src: &[f32], rs: usize, first: usize, rows: usize, k: usize, strip: &mut [u16]) {
        for r in 0..rows {
            let row = &src[(first + r) * rs..][..k];
            for (kb, chunk) in row.chunks(TILE_K).enumerate() {
                let dst = &mut strip[kb * TILE + r * TILE_K..][..chunk.len()];
                for (d, x) in dst.iter_mut().zip(chunk) {
                    *d = bf16_bits(*x);
                }
            }
        }
    }
}

super::fused::multiversion! {
    /// The same from an A whose columns are contiguous (a transposed operand): 16 rows' values
    /// of one column are adjacent in memory.
    fn pack_lhs_columns(src: &[f32], strides: (usize, usize), first: usize, rows: usize, k: usize, strip: &mut [u16]) {
        let (rs, cs) = strides;
        for j in 0..k {
            let (kb, c) = (j / TILE_K, j % TILE_K);
            let tile = &mut strip[kb * TILE..][..TILE];
            for r in 0..rows {
                tile[r * TILE_K + c] = bf16_bits(src[(first + r) * rs + j * cs]);
            }
        }
    }
}

/// Strip `s` of the right operand `B[i, j] = src[i * rs + j * cs]` (`k x n`) in the
/// pair-interleaved layout `tdpbf16ps` and `vdpbf16ps` read: tile row `kk` holds, for each of
/// 16 columns, the pair `B[2kk, j], B[2kk + 1, j]`.
fn pack_rhs_strip(
    src: &[f32],
    (rs, cs): (usize, usize),
    k: usize,
    n: usize,
    s: usize,
    strip: &mut [u16],
) {
    let cols = n.saturating_sub(s * TILE_ROWS).min(TILE_ROWS);
    if cols < TILE_ROWS || !k.is_multiple_of(TILE_K) {
        strip.fill(0);
    }
    if cols == 0 {
        return;
    }
    if cs == 1 {
        pack_rhs_rows(src, rs, s * TILE_ROWS, cols, k, strip);
    } else {
        pack_rhs_columns(src, (rs, cs), s * TILE_ROWS, cols, k, strip);
    }
}

super::fused::multiversion! {
    /// From a row-major B: rows `2kk` and `2kk + 1` interleave into tile row `kk`.
    fn pack_rhs_rows(src: &[f32], rs: usize, first: usize, cols: usize, k: usize, strip: &mut [u16]) {
        for i in (0..k).step_by(2) {
            let base = (i / TILE_K) * TILE + ((i % TILE_K) / 2) * 32;
            let dst = &mut strip[base..][..2 * cols];
            let even = &src[i * rs + first..][..cols];
            if i + 1 < k {
                let odd = &src[(i + 1) * rs + first..][..cols];
                for ((d, e), o) in dst.chunks_exact_mut(2).zip(even).zip(odd) {
                    d[0] = bf16_bits(*e);
                    d[1] = bf16_bits(*o);
                }
            } else {
                for (d, e) in dst.chunks_exact_mut(2).zip(even) {
                    d[0] = bf16_bits(*e);
                    d[1] = 0;
                }
            }
        }
    }
}

super::fused::multiversion! {
    /// From a B whose columns are contiguous (a transposed weight, `rs` 1): 32 values of a
    /// column fill one column's pair slots in each of a tile's 16 rows.
    fn pack_rhs_columns(src: &[f32], strides: (usize, usize), first: usize, cols: usize, k: usize, strip: &mut [u16]) {
        let (rs, cs) = strides;
        let mut chunk = [0u16; TILE_K];
        for c in 0..cols {
            let col = first + c;
            for kb in 0..k.div_ceil(TILE_K) {
                let len = (k - kb * TILE_K).min(TILE_K);
                if rs == 1 {
                    let column = &src[col * cs + kb * TILE_K..][..len];
                    for (d, x) in chunk.iter_mut().zip(column) {
                        *d = bf16_bits(*x);
                    }
                } else {
                    for (i, d) in chunk.iter_mut().enumerate().take(len) {
                        *d = bf16_bits(src[(kb * TILE_K + i) * rs + col * cs]);
                    }
                }
                chunk[len..].fill(0);
                let tile = &mut strip[kb * TILE..][..TILE];
                for (kk, pair) in chunk.chunks_exact(2).enumerate() {
                    tile[kk * 32 + 2 * c..][..2].copy_from_slice(pair);
                }
            }
        }
    }
}

/// Packs an operand strip by strip over the threads.
fn pack(count: usize, kt: usize, fill: impl Fn(usize, &mut [u16]) + Sync) -> Packed {
    let mut packed = Packed::buffer(strips(count), kt);
    packed.data[..packed.len]
        .par_chunks_mut(kt * TILE)
        .enumerate()
        .for_each(|(s, strip)| fill(s, strip));
    packed
}

/// `dst[m, n] (+)= A · B` with A `m x k` and B `k x n` given by (row, column) strides, `dst`
/// row-major; `accumulate` adds to what `dst` holds (the bias, in the dense layers).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    path: MatmulPath,
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    assert!(dst.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    match path {
        MatmulPath::Fp32 => gemm_into(
            dst,
            (m, n, k),
            accumulate,
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
        ),
        MatmulPath::Emulated => {
            let round = |src: &[f32], (rs, cs): (usize, usize), rows: usize, cols: usize| {
                let mut out = Vec::with_capacity(rows * cols);
                for i in 0..rows {
                    out.extend((0..cols).map(|j| round_to_bf16(src[i * rs + j * cs])));
                }
                out
            };
            let a = round(lhs, lhs_strides, m, k);
            let b = round(rhs, rhs_strides, k, n);
            gemm_into(dst, (m, n, k), accumulate, &a, (k, 1), &b, (n, 1));
        }
        MatmulPath::Amx | MatmulPath::Avx512Bf16 => {
            if k == 0 {
                if !accumulate {
                    dst[..m * n].fill(0.0);
                }
                return;
            }
            let kt = k.div_ceil(TILE_K);
            let a = pack(m, kt, |s, strip| {
                pack_lhs_strip(lhs, lhs_strides, m, k, s, strip)
            });
            let b = pack(n, kt, |s, strip| {
                pack_rhs_strip(rhs, rhs_strides, k, n, s, strip)
            });
            run_native(path, dst, (m, n), accumulate, &a, &b);
            a.recycle();
            b.recycle();
        }
    }
}

/// Splits the output's 32 x 32 blocks over the threads and runs the native kernel on each.
fn run_native(
    path: MatmulPath,
    dst: &mut [f32],
    (m, n): (usize, usize),
    accumulate: bool,
    a: &Packed,
    b: &Packed,
) {
    let (row_pairs, col_pairs) = (strips(m) / 2, strips(n) / 2);
    // Up to four row pairs (128 rows) per task keep a column strip of B in L1 across them; the
    // columns split further only when there are fewer row groups than threads.
    let row_groups = row_pairs.div_ceil(4);
    let col_parts = rayon::current_num_threads()
        .div_ceil(row_groups)
        .clamp(1, col_pairs);
    let out = Shared::new(dst);
    (0..row_groups * col_parts)
        .into_par_iter()
        .for_each(|task| {
            let (rg, cp) = (task / col_parts, task % col_parts);
            let rows = rg * 4..((rg + 1) * 4).min(row_pairs);
            let cols = cp * col_pairs / col_parts..(cp + 1) * col_pairs / col_parts;
            let blocks = Blocks {
                out,
                m,
                n,
                accumulate,
                a,
                b,
            };
            match path {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Amx` is only chosen where CPUID has AMX-BF16 and Linux granted the tiles.
                MatmulPath::Amx => unsafe { amx::blocks(&blocks, rows, cols) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Avx512Bf16` is only chosen where the CPU has AVX512-BF16/F/BW/VL.
                MatmulPath::Avx512Bf16 => unsafe { avx512::blocks(&blocks, rows, cols) },
                _ => unreachable!("no native bf16 kernel for {path:?}"),
            }
        });
}

/// What a task needs to compute and write its 32 x 32 output blocks.
struct Blocks<'a> {
    out: Shared<f32>,
    m: usize,
    n: usize,
    accumulate: bool,
    a: &'a Packed,
    b: &'a Packed,
}

impl Blocks<'_> {
    /// Writes a finished `rows x 32`-wide block held in `tmp` (row stride 32) to the output at
    /// (`i0`, `j0`), clipped to the output, added to it when `add`.
    ///
    /// # Safety
    /// The block must belong to the calling task alone.
    unsafe fn write(&self, tmp: &[f32], i0: usize, j0: usize, rows: usize, add: bool) {
        let cols = self.n.saturating_sub(j0).min(32);
        for r in 0..rows.min(self.m.saturating_sub(i0)) {
            let dst = self.out.block((i0 + r) * self.n + j0, cols);
            let src = &tmp[r * 32..][..cols];
            if add {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += s;
                }
            } else {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Copies the output's 32 x 32 block at (`i0`, `j0`) into `tmp`, zeros outside the output.
    ///
    /// # Safety
    /// As [`Blocks::write`].
    unsafe fn read(&self, tmp: &mut [f32], i0: usize, j0: usize) {
        tmp.fill(0.0);
        let cols = self.n.saturating_sub(j0).min(32);
        for r in 0..32.min(self.m.saturating_sub(i0)) {
            let src = self.out.block((i0 + r) * self.n + j0, cols);
            tmp[r * 32..][..cols].copy_from_slice(src);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod amx {
    use std::arch::asm;
    use std::ops::Range;

    use super::{Blocks, TILE};

    /// Palette 1, all eight tiles 16 rows x 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    const CONFIG: TileConfig = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
        rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
    };

    /// The output blocks of row pairs `rows` and column pairs `cols`: tmm0..3 hold a 32 x 32
    /// block (four 16 x 16 f32 tiles), tmm4/5 two A tiles, tmm6/7 two B tiles.
    ///
    /// # Safety
    /// The CPU has AMX-BF16 and the OS granted this process the tile registers; the blocks are
    /// this task's alone.
    pub(super) unsafe fn blocks(t: &Blocks, rows: Range<usize>, cols: Range<usize>) {
        asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly));
        let (kt, a, b) = (t.a.kt, t.a, t.b);
        let mut tmp = [0f32; 32 * 32];
        for jp in cols {
            let (b0, b1) = (b.strip(2 * jp), b.strip(2 * jp + 1));
            for ip in rows.clone() {
                let (a0, a1) = (a.strip(2 * ip), a.strip(2 * ip + 1));
                let (i0, j0) = (ip * 32, jp * 32);
                // Whole blocks go straight to and from the output; edges through `tmp`, which
                // starts from the output too, so every element sums in the same order (a
                // text's numbers must not depend on which block its row fell in).
                let whole = i0 + 32 <= t.m && j0 + 32 <= t.n;
                let (c, ldc) = if whole {
                    (t.out.0.add(i0 * t.n + j0), t.n * 4)
                } else {
                    if t.accumulate {
                        t.read(&mut tmp, i0, j0);
                    }
                    (tmp.as_mut_ptr(), 32 * 4)
                };
                let (c1, c2) = (c.add(16), c.add(16 * ldc / 4));
                let c3 = c2.add(16);
                if t.accumulate {
                    asm!(
                        "tileloadd tmm0, [{c0} + {s}*1]",
                        "tileloadd tmm1, [{c1} + {s}*1]",
                        "tileloadd tmm2, [{c2} + {s}*1]",
                        "tileloadd tmm3, [{c3} + {s}*1]",
                        c0 = in(reg) c, c1 = in(reg) c1, c2 = in(reg) c2, c3 = in(reg) c3,
                        s = in(reg) ldc, options(nostack, readonly),
                    );
                } else {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    );
                }
                for kb in 0..kt {
                    asm!(
                        "tileloadd tmm4, [{a0} + {s}*1]",
                        "tileloadd tmm6, [{b0} + {s}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tileloadd tmm7, [{b1} + {s}*1]",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tileloadd tmm5, [{a1} + {s}*1]",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0.add(kb * TILE), a1 = in(reg) a1.add(kb * TILE),
                        b0 = in(reg) b0.add(kb * TILE), b1 = in(reg) b1.add(kb * TILE),
                        s = in(reg) 64usize, options(nostack, readonly),
                    );
                }
                asm!(
                    "tilestored [{c0} + {s}*1], tmm0",
                    "tilestored [{c1} + {s}*1], tmm1",
                    "tilestored [{c2} + {s}*1], tmm2",
                    "tilestored [{c3} + {s}*1], tmm3",
                    c0 = in(reg) c, c1 = in(reg) c1, c2 = in(reg) c2, c3 = in(reg) c3,
                    s = in(reg) ldc, options(nostack),
                );
                if !whole {
                    t.write(&tmp, i0, j0, 32, false);
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{Blocks, TILE, TILE_K};

    /// The output blocks of row pairs `rows` and column pairs `cols`, 8 rows x 32 columns at a
    /// time in 16 accumulators: per tile row `kk`, two B vectors (16 column pairs each) and one
    /// broadcast A pair per output row.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16, F, BW and VL; the blocks are this task's alone.
    #[target_feature(enable = "avx512bf16,avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn blocks(t: &Blocks, rows: Range<usize>, cols: Range<usize>) {
        let (kt, a, b) = (t.a.kt, t.a, t.b);
        let mut tmp = [0f32; 8 * 32];
        for jp in cols {
            let (b0, b1) = (b.strip(2 * jp), b.strip(2 * jp + 1));
            for ip in rows.clone() {
                for eighth in 0..4 {
                    let strip = a.strip(2 * ip + eighth / 2);
                    let first_row = (eighth % 2) * 8;
                    let i0 = ip * 32 + eighth * 8;
                    if i0 >= t.m {
                        break;
                    }
                    let mut acc = [[_mm512_setzero_ps(); 2]; 8];
                    for kb in 0..kt {
                        let at = strip.add(kb * TILE + first_row * TILE_K);
                        let (bt0, bt1) = (b0.add(kb * TILE), b1.add(kb * TILE));
                        for kk in 0..16 {
                            let v0: __m512bh =
                                std::mem::transmute(_mm512_loadu_si512(bt0.add(kk * 32).cast()));
                            let v1: __m512bh =
                                std::mem::transmute(_mm512_loadu_si512(bt1.add(kk * 32).cast()));
                            for (r, acc) in acc.iter_mut().enumerate() {
                                let pair =
                                    at.add(r * TILE_K + kk * 2).cast::<i32>().read_unaligned();
                                let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                                acc[0] = _mm512_dpbf16_ps(acc[0], av, v0);
                                acc[1] = _mm512_dpbf16_ps(acc[1], av, v1);
                            }
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        _mm512_storeu_ps(tmp.as_mut_ptr().add(r * 32), acc[0]);
                        _mm512_storeu_ps(tmp.as_mut_ptr().add(r * 32 + 16), acc[1]);
                    }
                    t.write(&tmp, i0, jp * 32, 8, t.accumulate);
                }
            }
        }
    }
}
