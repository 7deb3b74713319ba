//! The bindings' `unsafe` for buffers: writing mask rows into a caller's
//! int32 buffer (numpy array, CPU torch tensor, array.array, memoryview), or
//! at a raw address the caller passes (the pointer entry point).
#![allow(unsafe_code)]

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A checked, writable view of one row of an int32 bitmask buffer.
pub(crate) struct MaskRow {
    // Keeps the exporter alive and its memory pinned while we write (`None`:
    // a raw address, kept alive by the caller).
    _buf: Option<PyBuffer<i32>>,
    ptr: *mut u32,
    len: usize,
}

// SAFETY: the buffer is kept alive by `_buf`; the row is only written through
// the `&mut [u32]` handed out by `as_mut_slice`, by one thread at a time.
unsafe impl Send for MaskRow {}

/// A checked int32 bitmask buffer (1-D or 2-D, C-contiguous), acquired
/// once for any number of rows: writable for fills ([`MaskBuffer::new`]),
/// possibly read-only when only read ([`MaskBuffer::read`], applying it).
pub(crate) struct MaskBuffer {
    buf: PyBuffer<i32>,
    rows: usize,
    width: usize,
}

impl MaskBuffer {
    /// Check `obj` (1-D or 2-D, C-contiguous, writable, int32).
    pub(crate) fn new(obj: &Bound<'_, PyAny>) -> PyResult<MaskBuffer> {
        let buf = MaskBuffer::read(obj)?;
        if buf.buf.readonly() {
            return Err(PyValueError::new_err("bitmask buffer is read-only"));
        }
        Ok(buf)
    }

    /// Check `obj` (1-D or 2-D, C-contiguous, int32), to be read only.
    pub(crate) fn read(obj: &Bound<'_, PyAny>) -> PyResult<MaskBuffer> {
        let wrong = |err: PyErr| {
            PyTypeError::new_err(format!(
                "bitmask must be an int32 array in CPU memory (allocate it with \
                 corral.allocate_token_bitmask and move it to the device after filling): {err}"
            ))
        };
        let buf = match PyBuffer::<i32>::get(obj) {
            Ok(b) => b,
            // CPU torch tensors do not export buffers; their `.numpy()` view shares memory.
            Err(e) => match obj.getattr("numpy") {
                Ok(f) => PyBuffer::<i32>::get(&f.call0().map_err(wrong)?).map_err(wrong)?,
                Err(_) => return Err(wrong(e)),
            },
        };
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("bitmask must be C-contiguous"));
        }
        let shape = buf.shape();
        let (rows, width) = match *shape {
            [w] => (1, w),
            [r, w] => (r, w),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "bitmask must be 1-D or 2-D, got {} dimensions",
                    shape.len()
                )))
            }
        };
        Ok(MaskBuffer { buf, rows, width })
    }

    /// The buffer's first word (rows follow every `width` words).
    fn base(&self) -> *mut u32 {
        self.buf.buf_ptr().cast::<u32>()
    }

    /// The start of row `index`, checked to exist and to hold `min_words`.
    fn row_ptr(&self, index: usize, min_words: usize) -> PyResult<*mut u32> {
        if self.width < min_words {
            return Err(PyValueError::new_err(format!(
                "bitmask rows have {} words, need at least {min_words} for the vocabulary",
                self.width
            )));
        }
        if index >= self.rows {
            return Err(PyValueError::new_err(format!(
                "index {index} is out of range for a bitmask with {} rows",
                self.rows
            )));
        }
        // SAFETY: the buffer is C-contiguous with rows*width i32 elements, so the row
        // `index` lies inside it; i32 and u32 have the same size and alignment.
        Ok(unsafe { self.base().add(index * self.width) })
    }

    /// Rows `(index, min_words)`, each checked; an index may appear once
    /// only (each row is written through its own `&mut` slice).
    pub(crate) fn rows(
        &self,
        wanted: impl Iterator<Item = (usize, usize)>,
    ) -> PyResult<Vec<BufferRow<'_>>> {
        // Checked in one pass over plain integers, the errors built after:
        // per row through `row_ptr` this was ~8 ns a row, a twentieth of a
        // warm two-thread call of 64 rows.
        let mut taken = vec![false; self.rows];
        let (mut widest, mut bad, mut twice) = (0, None, None);
        let rows: Vec<BufferRow<'_>> = wanted
            .map(|(index, min_words)| {
                widest = widest.max(min_words);
                match taken.get_mut(index) {
                    Some(t) if *t => twice = twice.or(Some(index)),
                    Some(t) => *t = true,
                    None => bad = bad.or(Some(index)),
                }
                BufferRow {
                    ptr: self.base().wrapping_add(index.wrapping_mul(self.width)),
                    len: self.width,
                    _buf: std::marker::PhantomData,
                }
            })
            .collect();
        if let Some(index) = bad {
            self.row_ptr(index, widest)?;
        }
        if widest > self.width {
            self.row_ptr(0, widest)?;
        }
        if let Some(index) = twice {
            return Err(PyValueError::new_err(format!(
                "row {index} appears twice in indices"
            )));
        }
        Ok(rows)
    }
}

/// One row of a [`MaskBuffer`], distinct from every other row handed out.
pub(crate) struct BufferRow<'a> {
    ptr: *mut u32,
    len: usize,
    _buf: std::marker::PhantomData<&'a MaskBuffer>,
}

// SAFETY: the buffer outlives the row (the borrow), and no two rows of one
// `rows` call overlap, so each is written by one thread at a time.
unsafe impl Send for BufferRow<'_> {}

impl BufferRow<'_> {
    /// The row as a mutable slice.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u32] {
        // SAFETY: `ptr..ptr+len` is a row of the live, writable buffer (checked
        // in `MaskBuffer::rows`), and `&mut self` makes this the only slice of it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl MaskRow {
    /// Check `obj` (1-D or 2-D, C-contiguous, writable, int32) and select row `index`
    /// of width at least `min_words`.
    pub(crate) fn new(obj: &Bound<'_, PyAny>, index: usize, min_words: usize) -> PyResult<MaskRow> {
        let buf = MaskBuffer::new(obj)?;
        let ptr = buf.row_ptr(index, min_words)?;
        Ok(MaskRow {
            len: buf.width,
            _buf: Some(buf.buf),
            ptr,
        })
    }

    /// A row at a raw address the caller vouches for (`tensor.data_ptr()`,
    /// `array.ctypes.data`): `words` writable int32 words in CPU memory, kept
    /// alive during the call. Only null and misaligned addresses are caught.
    pub(crate) fn from_address(
        address: usize,
        words: usize,
        min_words: usize,
    ) -> PyResult<MaskRow> {
        if address == 0 || address & (std::mem::align_of::<u32>() - 1) != 0 {
            return Err(PyValueError::new_err(format!(
                "bitmask address {address:#x} is null or not aligned to 4 bytes"
            )));
        }
        if words < min_words {
            return Err(PyValueError::new_err(format!(
                "bitmask rows have {words} words, need at least {min_words} for the vocabulary"
            )));
        }
        Ok(MaskRow {
            _buf: None,
            ptr: address as *mut u32,
            len: words,
        })
    }

    /// The row as a mutable slice.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u32] {
        // SAFETY: `ptr..ptr+len` is inside the live, writable buffer (checked in `new`),
        // and `&mut self` guarantees this is the only slice handed out.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// A writable 2-D buffer of logits (`T`: `f32`, `f64`, or `u16` for IEEE
/// half floats viewed as integers) whose rows are contiguous; the row stride
/// may exceed the width (rows of a slice of a wider array).
pub(crate) struct LogitsBuffer<T: Element> {
    buf: PyBuffer<T>,
    rows: usize,
    width: usize,
    /// Elements from one row's start to the next's.
    stride: usize,
}

impl<T: Element> LogitsBuffer<T> {
    /// `obj` as such a buffer, or `None` if its element type is not `T`.
    pub(crate) fn new(obj: &Bound<'_, PyAny>) -> PyResult<Option<LogitsBuffer<T>>> {
        let Ok(buf) = PyBuffer::<T>::get(obj) else {
            return Ok(None);
        };
        if buf.readonly() {
            return Err(PyValueError::new_err("logits must be writable"));
        }
        let (&[rows, width], &[s0, s1]) = (buf.shape(), buf.strides()) else {
            return Err(PyValueError::new_err(format!(
                "logits must be 2-D here, got {} dimensions",
                buf.dimensions()
            )));
        };
        let size = std::mem::size_of::<T>() as isize;
        if width > 1 && s1 != size {
            return Err(PyValueError::new_err("logits rows must be contiguous"));
        }
        // Elements from row to row: forward, rows not overlapping.
        let stride = match rows {
            0 | 1 => width,
            _ => match usize::try_from(s0 / size) {
                Ok(st) if s0 % size == 0 && st >= width => st,
                _ => {
                    return Err(PyValueError::new_err(
                        "logits rows must not overlap or run backwards",
                    ))
                }
            },
        };
        Ok(Some(LogitsBuffer {
            buf,
            rows,
            width,
            stride,
        }))
    }

    /// Logits per row.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Every row's index.
    pub(crate) fn all_rows(&self) -> Vec<usize> {
        (0..self.rows).collect()
    }

    /// The bytes the rows span.
    fn span(&self) -> std::ops::Range<usize> {
        let start = self.buf.buf_ptr() as usize;
        let len = match self.rows {
            0 => 0,
            r => ((r - 1) * self.stride + self.width) * std::mem::size_of::<T>(),
        };
        start..start + len
    }
}

impl MaskBuffer {
    /// Words per row.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The bytes the buffer spans.
    fn span(&self) -> std::ops::Range<usize> {
        let start = self.buf.buf_ptr() as usize;
        start..start + self.rows * self.width * 4
    }
}

/// Row `r` of a [`LogitsBuffer`] with row `r` of a [`MaskBuffer`], no
/// logits row handed out twice.
pub(crate) struct MaskedRow<'a, T> {
    logits: *mut T,
    width: usize,
    words: *const u32,
    n_words: usize,
    _bufs: std::marker::PhantomData<&'a MaskBuffer>,
}

// SAFETY: the buffers outlive the row (the borrow); logits rows are distinct
// and do not overlap the bitmask (checked in `masked_rows`), so each row's
// logits are written by one thread at a time and the words only read.
unsafe impl<T: Send> Send for MaskedRow<'_, T> {}

impl<T> MaskedRow<'_, T> {
    /// The row's logits and its words.
    pub(crate) fn parts(&mut self) -> (&mut [T], &[u32]) {
        // SAFETY: both ranges lie in their live buffers (`masked_rows`), the
        // logits row is this row's alone (`&mut self`, distinct rows), and
        // the words are in a buffer no logits row overlaps; i32 and u32 have
        // the same size and alignment.
        unsafe {
            (
                std::slice::from_raw_parts_mut(self.logits, self.width),
                std::slice::from_raw_parts(self.words, self.n_words),
            )
        }
    }
}

/// Rows `rows` (sorted, distinct) of `logits`, each with the bitmask row of
/// the same index.
pub(crate) fn masked_rows<'a, T: Element>(
    logits: &'a LogitsBuffer<T>,
    words: &'a MaskBuffer,
    rows: &[usize],
) -> PyResult<Vec<MaskedRow<'a, T>>> {
    if rows.windows(2).any(|w| w[0] >= w[1]) {
        return Err(PyValueError::new_err("rows must be sorted and distinct"));
    }
    if let Some(&last) = rows.last() {
        if last >= logits.rows.min(words.rows) {
            return Err(PyValueError::new_err(format!(
                "index {last} is out of range: logits have {} rows, the bitmask has {}",
                logits.rows, words.rows
            )));
        }
    }
    let (a, b) = (logits.span(), words.span());
    if a.start < b.end && b.start < a.end {
        return Err(PyValueError::new_err("logits and bitmask share memory"));
    }
    let (lbase, wbase) = (
        logits.buf.buf_ptr().cast::<T>(),
        words.buf.buf_ptr().cast::<u32>(),
    );
    Ok(rows
        .iter()
        .map(|&r| MaskedRow {
            logits: lbase.wrapping_add(r * logits.stride),
            width: logits.width,
            words: wbase.wrapping_add(r * words.width).cast_const(),
            n_words: words.width,
            _bufs: std::marker::PhantomData,
        })
        .collect())
}
